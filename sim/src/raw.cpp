#include "drp/sim/raw.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <numbers>

#include "drp/core/error.h"
#include "drp/sim/random.h"

namespace drp::sim {

void RawConfig::validate(const CameraConfig& camera) const {
    auto need = [](bool ok, const std::string& what) {
        if (!ok) throw configError("raw config: " + what);
    };
    need(nAmpX >= 1 && nAmpY >= 1, "nAmpX and nAmpY must be >= 1");
    need(camera.detWidth % nAmpX == 0 && camera.detHeight % nAmpY == 0,
         "the detector size must be a multiple of the amplifier grid");
    need(overscanColumns >= 4, "overscanColumns must be >= 4");
    need(biasLevelAdu > 0 && biasLevelScatterAdu >= 0 && biasJitterAdu >= 0 && biasDriftAdu >= 0,
         "bias levels must be > 0 and scatters >= 0");
    need(biasLevelAdu + 5 * biasLevelScatterAdu + camera.fullWell / camera.gain * 1.5 < adcMax,
         "bias level + full well does not fit in the ADC range");
    need(biasColumnRms >= 0 && biasGlow >= 0 && biasGlowScale > 0, "bias structure out of range");
    need(darkCurrent >= 0 && warmPixelFraction >= 0 && warmPixelFraction < 1 &&
             warmPixelMeanRate >= 0,
         "dark current out of range");
    need(gainScatter >= 0 && gainScatter < 0.3 && readNoiseScatter >= 0 && readNoiseScatter < 0.5,
         "amplifier scatters out of range");
    need(flatPixelRms >= 0 && flatPixelRms < 0.1 && flatVignetting >= 0 && flatVignetting < 0.5,
         "flat structure out of range");
    need(deadColumnResponse >= 0 && deadColumnResponse < 0.5, "deadColumnResponse out of range");
    need(biasCount >= 0 && darkCount >= 0 && flatCount >= 0, "calibration counts must be >= 0");
    need(darkExposureTime > 0 && flatExposureTime > 0, "calibration exposure times must be > 0");
    need(flatLevel > 0 && flatLevel * (1 + flatLevelScatter) < camera.fullWell,
         "flat level must be > 0 and below full well");
    need(flatLevelScatter >= 0 && flatLevelScatter < 1, "flatLevelScatter must be in [0, 1)");
    need(twilightFraction >= 0 && twilightFraction <= 1, "twilightFraction must be in [0, 1]");
    need(starsPerTwilightFlat >= 0 && starSigma > 0, "twilight stars out of range");
    need(calibLeadDays >= 0, "calibLeadDays must be >= 0");
}

namespace {

// Pixel-to-pixel response amplitude relative to r, u..y (see raw.h).
constexpr std::array<double, kNumBands> kFlatBandFactor = {1.6, 1.3, 1.0, 0.9, 0.8, 0.8};

std::uint64_t u64(std::int64_t v) {
    return static_cast<std::uint64_t>(v);
}

// The electronics of one exposure read out the detector's charge image `q` (e-, detector
// pixels, after bleeding; `saturated` marks pixels at full well) into raw ADU.
RawExposure readOut(const CalibrationTruth& truth, const RawConfig& cfg, const Image<double>& q,
                    const Mask& saturated, Rng& rng) {
    RawExposure raw;
    raw.pixels = ImageF(truth.rawBox, 0.0f);
    raw.amps = truth.amps;
    raw.detectorBox = truth.detectorBox;
    const MaskPixel sat = saturated.planes().bit("SAT");
    for (std::size_t a = 0; a < truth.amps.size(); ++a) {
        const Amplifier& amp = truth.amps[a];
        const double level = truth.biasLevels[a] + rng.normal(0, cfg.biasJitterAdu);
        const double phase = rng.uniform(0, 2 * std::numbers::pi);
        const double cycles = rng.uniform(0.5, 3.0);
        const double drift = cfg.biasDriftAdu * rng.uniform(-1.0, 1.0);
        const int h = amp.dataBox.height();
        auto rowLevel = [&](int row) {
            return level + drift * std::sin(phase + 2 * std::numbers::pi * cycles * row / h);
        };
        auto digitise = [&](double adu) {
            return static_cast<float>(std::clamp(std::round(adu), 0.0, cfg.adcMax));
        };
        for (int row = 0; row < h; ++row) {
            const double base = rowLevel(row);
            const int ry = amp.dataBox.min().y + row, dy = amp.detectorBox.min().y + row;
            for (int col = 0; col < amp.dataBox.width(); ++col) {
                const int dx = amp.detectorBox.min().x + col;
                const double e = q(dx, dy) + truth.bias(dx, dy) + rng.normal(0, amp.readNoise);
                double adu = base + e / amp.gain;
                if (saturated(dx, dy) & sat) adu = amp.saturation;
                raw.pixels(amp.dataBox.min().x + col, ry) = digitise(std::min(adu, amp.saturation));
            }
            for (int col = 0; col < amp.overscanBox.width(); ++col)
                raw.pixels(amp.overscanBox.min().x + col, ry) =
                    digitise(base + rng.normal(0, amp.readNoise) / amp.gain);
        }
    }
    return raw;
}

void fillVisitInfo(RawExposure& raw, const CameraConfig& cc, std::int64_t id, int det,
                   const std::string& band, double mjd, double exposureTime, double airmass) {
    VisitInfo& vi = raw.visitInfo;
    vi.visit = id;
    vi.detector = det;
    vi.band = band;
    vi.mjd = mjd;
    vi.exposureTime = exposureTime;
    vi.gain = cc.gain;
    vi.saturation = cc.fullWell;
    vi.readNoise = cc.readNoise;
    vi.airmass = airmass;
}

// Poisson charge of `expected` (e-) plus dark current over `t` seconds, cosmic rays, bleeding.
Image<double> collectCharge(const Image<double>& expected, const CalibrationTruth& truth, double t,
                            const std::vector<CosmicRay>& crs, double fullWell, Mask& mask,
                            Rng& rng) {
    Image<double> q(expected.bbox(), 0.0);
    for (int y = 0; y < q.height(); ++y)
        for (int x = 0; x < q.width(); ++x)
            q(x, y) = static_cast<double>(
                rng.poisson(std::max(0.0, expected(x, y)) + truth.dark(x, y) * t));
    depositCosmicRays(q, crs);
    bleed(q, mask, fullWell);
    return q;
}

}  // namespace

CalibrationTruth trueCalibration(const Camera& camera, const RawConfig& cfg,
                                 const ObservingConfig& observing, int det,
                                 const std::vector<std::string>& bands, std::uint64_t seed) {
    const CameraConfig& cc = camera.config();
    cfg.validate(cc);
    CalibrationTruth t;
    t.detector = det;
    t.detectorBox = camera.detectorBox();
    const int ampW = cc.detWidth / cfg.nAmpX, ampH = cc.detHeight / cfg.nAmpY;
    const int rawW = cfg.nAmpX * (ampW + cfg.overscanColumns);
    t.rawBox = Box2I(Point2I(0, 0), Extent2I(rawW, cc.detHeight));
    const auto d = static_cast<std::uint64_t>(det);

    // Amplifiers: geometry and electronics.
    Rng amps = Rng::forStream(seed, Stream::kRawSensor, {d, 1});
    for (int ay = 0; ay < cfg.nAmpY; ++ay)
        for (int ax = 0; ax < cfg.nAmpX; ++ax) {
            Amplifier a;
            char name[32];
            std::snprintf(name, sizeof name, "C%d%d", ax, ay);
            a.name = name;
            const int rx = ax * (ampW + cfg.overscanColumns);
            a.dataBox = Box2I(Point2I(rx, ay * ampH), Extent2I(ampW, ampH));
            a.overscanBox =
                Box2I(Point2I(rx + ampW, ay * ampH), Extent2I(cfg.overscanColumns, ampH));
            a.detectorBox = Box2I(Point2I(ax * ampW, ay * ampH), Extent2I(ampW, ampH));
            a.gain = cc.gain * std::max(0.5, 1 + cfg.gainScatter * amps.normal());
            a.readNoise = cc.readNoise * std::max(0.3, 1 + cfg.readNoiseScatter * amps.normal());
            const double level = cfg.biasLevelAdu + cfg.biasLevelScatterAdu * amps.normal();
            a.saturation = std::floor(level + cc.fullWell / a.gain);
            t.amps.push_back(a);
            t.biasLevels.push_back(level);
        }

    // Bias structure: column pattern per amplifier + glow from the readout corner.
    t.bias = ImageF(t.detectorBox, 0.0f);
    Rng biasRng = Rng::forStream(seed, Stream::kRawSensor, {d, 2});
    for (const Amplifier& a : t.amps) {
        const Box2I& b = a.detectorBox;
        const int cornerY = (b.min().y == 0) ? b.min().y : b.max().y;
        for (int x = b.min().x; x <= b.max().x; ++x) {
            const double column = cfg.biasColumnRms * biasRng.normal();
            for (int y = b.min().y; y <= b.max().y; ++y) {
                const double r = std::hypot(x - b.min().x, y - cornerY);
                t.bias(x, y) =
                    static_cast<float>(column + cfg.biasGlow * std::exp(-r / cfg.biasGlowScale));
            }
        }
    }

    // Dark current: uniform + warm pixels + hot columns.
    t.defects = drawBadColumns(seed, det, t.detectorBox, observing.badColumnsPerDetector);
    t.dark = ImageF(t.detectorBox, static_cast<float>(cfg.darkCurrent));
    Rng darkRng = Rng::forStream(seed, Stream::kRawSensor, {d, 3});
    for (int y = 0; y < t.dark.height(); ++y)
        for (int x = 0; x < t.dark.width(); ++x)
            if (darkRng.uniform() < cfg.warmPixelFraction)
                t.dark(x, y) += static_cast<float>(darkRng.exponential(cfg.warmPixelMeanRate));
    t.defectMask = Mask(t.detectorBox);
    const MaskPixel bad = t.defectMask.planes().bit("BAD");
    for (const BadColumn& bc : t.defects)
        for (int y = bc.y0; y <= bc.y1; ++y) {
            t.defectMask.set(bc.x, y, bad);
            if (bc.hot)
                t.dark(bc.x, y) = static_cast<float>(0.5 * cc.fullWell / observing.exposureTime);
        }

    // Flats: vignetting × (1 + a_b P), dead columns, normalised over live pixels.
    Image<double> p2p(t.detectorBox, 0.0);
    Rng flatRng = Rng::forStream(seed, Stream::kRawSensor, {d, 4});
    for (int y = 0; y < p2p.height(); ++y)
        for (int x = 0; x < p2p.width(); ++x) p2p(x, y) = flatRng.normal();
    const double rc = camera.cornerRadius();
    for (const std::string& band : bands) {
        const double amp =
            cfg.flatPixelRms * kFlatBandFactor[static_cast<std::size_t>(bandIndex(band))];
        ImageF f(t.detectorBox, 0.0f);
        double sum = 0;
        std::int64_t n = 0;
        for (int y = 0; y < f.height(); ++y)
            for (int x = 0; x < f.width(); ++x) {
                const Point2D fp = camera.toFocalPlane(det, {double(x), double(y)});
                const double r2 = (fp.x * fp.x + fp.y * fp.y) / (rc * rc);
                const double v = (1 - cfg.flatVignetting * r2) * (1 + amp * p2p(x, y));
                f(x, y) = static_cast<float>(v);
                bool dead = false;
                for (const BadColumn& bc : t.defects)
                    dead = dead || (!bc.hot && bc.x == x && y >= bc.y0 && y <= bc.y1);
                if (dead) {
                    f(x, y) = -1.0f;  // marked; set after normalisation
                } else {
                    sum += v;
                    ++n;
                }
            }
        const double norm = sum / static_cast<double>(std::max<std::int64_t>(n, 1));
        for (int y = 0; y < f.height(); ++y)
            for (int x = 0; x < f.width(); ++x)
                f(x, y) = f(x, y) < 0 ? static_cast<float>(cfg.deadColumnResponse)
                                      : static_cast<float>(f(x, y) / norm);
        t.flats.emplace(band, std::move(f));
    }
    return t;
}

std::vector<CalibExposureSpec> calibrationPlan(const SurveyPlan& plan, const RawConfig& cfg) {
    std::vector<CalibExposureSpec> out;
    std::int64_t id = plan.visits.empty() ? plan.config.firstVisit : plan.visits.back().visit + 1;
    double mjd = plan.config.mjdStart - cfg.calibLeadDays;
    const double minute = 60.0 / 86400.0;
    auto add = [&](CalibExposureSpec s) {
        s.id = id++;
        s.mjd = mjd;
        mjd += minute;
        out.push_back(std::move(s));
    };
    for (int k = 0; k < cfg.biasCount; ++k) add({0, obs_type::kBias, "", 0, 0.0, 0, false});
    for (int k = 0; k < cfg.darkCount; ++k)
        add({0, obs_type::kDark, "", 0, cfg.darkExposureTime, 0, false});
    Rng rng = Rng::forStream(plan.seed, Stream::kRawNoise, {0, 0, 1});
    for (const std::string& band : plan.config.bands) {
        // The twilight flats are the first of the series (taken at dusk), the rest dome flats.
        const int nTwilight = static_cast<int>(
            std::lround(cfg.twilightFraction * static_cast<double>(cfg.flatCount)));
        for (int k = 0; k < cfg.flatCount; ++k) {
            const double level = cfg.flatLevel * (1 + cfg.flatLevelScatter * rng.uniform(-1, 1));
            add({0, obs_type::kFlat, band, 0, cfg.flatExposureTime, level, k < nTwilight});
        }
    }
    return out;
}

RawExposure simulateRawDetector(const Camera& camera, const VisitConditions& cond, int det,
                                const std::vector<TrueObject>& sky,
                                const ObservingConfig& observing, const RawConfig& cfg,
                                const CalibrationTruth& truth, std::uint64_t seed) {
    const CameraConfig& cc = camera.config();
    const VisitSpec& spec = cond.spec;
    const std::string band = kBandNames[static_cast<std::size_t>(spec.band)];
    auto flat = truth.flats.find(band);
    if (flat == truth.flats.end())
        throw badInput("simulateRawDetector: no true flat for band " + band);
    const DetectorTruth dt = describeDetector(camera, cond, det, sky, observing, seed);
    Image<double> expected = expectedImage(camera, cond, det, sky, dt);
    for (int y = 0; y < expected.height(); ++y)
        for (int x = 0; x < expected.width(); ++x) expected(x, y) *= flat->second(x, y);
    Rng rng = Rng::forStream(seed, Stream::kRawNoise, {u64(spec.visit), u64(det), 2});
    Mask mask(truth.detectorBox);
    const Image<double> q = collectCharge(expected, truth, observing.exposureTime, dt.cosmicRays,
                                          cc.fullWell, mask, rng);
    RawExposure raw = readOut(truth, cfg, q, mask, rng);
    raw.obsType = obs_type::kScience;
    fillVisitInfo(raw, cc, spec.visit, det, band, spec.mjd, observing.exposureTime, spec.airmass);
    raw.wcs = dt.headerWcs.toWcs(truth.detectorBox);
    raw.photoCalib = nominalPhotoCalib(spec, observing);
    return raw;
}

RawExposure simulateCalibExposure(const Camera& camera, const CalibExposureSpec& spec, int det,
                                  const ObservingConfig& observing, const RawConfig& cfg,
                                  const CalibrationTruth& truth, std::uint64_t seed) {
    const CameraConfig& cc = camera.config();
    Image<double> expected(truth.detectorBox, 0.0);
    Rng rng = Rng::forStream(seed, Stream::kRawNoise, {u64(spec.id), u64(det), 3});
    if (spec.obsType == obs_type::kFlat) {
        auto flat = truth.flats.find(spec.band);
        if (flat == truth.flats.end())
            throw badInput("simulateCalibExposure: no true flat for band " + spec.band);
        for (int y = 0; y < expected.height(); ++y)
            for (int x = 0; x < expected.width(); ++x)
                expected(x, y) = spec.level * flat->second(x, y);
        if (spec.twilight) {
            // Stars seen through the flat-field response, like the twilight sky.
            for (int s = 0; s < cfg.starsPerTwilightFlat; ++s) {
                const double cx = rng.uniform(0, expected.width() - 1);
                const double cy = rng.uniform(0, expected.height() - 1);
                const double peak = spec.level * rng.uniform(0.3, 1.2);
                const int r = static_cast<int>(std::ceil(6 * cfg.starSigma));
                for (int y = std::max(0, int(cy) - r);
                     y <= std::min(expected.height() - 1, int(cy) + r); ++y)
                    for (int x = std::max(0, int(cx) - r);
                         x <= std::min(expected.width() - 1, int(cx) + r); ++x) {
                        const double d2 = (x - cx) * (x - cx) + (y - cy) * (y - cy);
                        expected(x, y) += peak *
                                          std::exp(-0.5 * d2 / (cfg.starSigma * cfg.starSigma)) *
                                          flat->second(x, y);
                    }
            }
        }
    } else if (spec.obsType != obs_type::kBias && spec.obsType != obs_type::kDark) {
        throw badInput("simulateCalibExposure: unknown obsType '" + spec.obsType + "'");
    }
    const std::vector<CosmicRay> crs =
        spec.exposureTime > 0
            ? drawCosmicRays(rng, truth.detectorBox, observing.cosmicRayRate, spec.exposureTime)
            : std::vector<CosmicRay>{};
    Mask mask(truth.detectorBox);
    const Image<double> q =
        collectCharge(expected, truth, spec.exposureTime, crs, cc.fullWell, mask, rng);
    RawExposure raw = readOut(truth, cfg, q, mask, rng);
    raw.obsType = spec.obsType;
    fillVisitInfo(raw, cc, spec.id, det, spec.band, spec.mjd, spec.exposureTime, 1.0);
    raw.metadata.set("TWILIGHT", spec.twilight, "twilight flat (stars in the frame)");
    return raw;
}

}  // namespace drp::sim
