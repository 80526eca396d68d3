#include "drp/sim/observe.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <numbers>

#include <Eigen/Dense>

#include "drp/core/error.h"
#include "drp/core/wcs.h"
#include "drp/sim/random.h"
#include "drp/sim/render.h"

namespace drp::sim {

const BandConstants& bandConstants(int band) {
    // LSST-like, approximately SMTN-002 / Ivezić et al. (2019) Table 2.
    static const std::array<BandConstants, kNumBands> k = {{{26.52, 22.96, 0.47},
                                                            {28.51, 22.26, 0.21},
                                                            {28.36, 21.20, 0.13},
                                                            {28.17, 20.48, 0.10},
                                                            {27.78, 19.60, 0.07},
                                                            {26.82, 18.61, 0.18}}};
    if (band < 0 || band >= kNumBands)
        throw badInput("band index " + std::to_string(band) + " out of range");
    return k[static_cast<std::size_t>(band)];
}

void ObservingConfig::validate() const {
    auto need = [](bool ok, const std::string& what) {
        if (!ok) throw configError("observing config: " + what);
    };
    need(exposureTime > 0, "exposureTime must be > 0");
    need(seeingMedian > 0 && seeingMin > 0 && seeingMin <= seeingMax,
         "need 0 < seeingMin <= seeingMax");
    need(seeingSigmaLn >= 0, "seeingSigmaLn must be >= 0");
    need(betaMin > 2 && betaMin <= betaMax, "need 2 < betaMin <= betaMax");
    need(psfEllipticityRms >= 0 && psfEllipticityRms < 0.1,
         "psfEllipticityRms must be in [0, 0.1)");
    need(std::abs(psfAstigmatism) < 0.15, "|psfAstigmatism| must be < 0.15");
    need(std::abs(psfRadialFwhm) < 0.25 && std::abs(psfGradient) < 0.1,
         "PSF FWHM variation too large");
    need(airmassMax >= 1, "airmassMax must be >= 1");
    need(cloudMean >= 0 && cloudMax >= 0, "cloudMean and cloudMax must be >= 0");
    need(detectorZpSigma >= 0 && skyMagSigma >= 0 && skyGradient >= 0, "scatters must be >= 0");
    need(pointingErrorArcsec >= 0 && rotationErrorArcsec >= 0, "WCS errors must be >= 0");
    need(cosmicRayRate >= 0 && badColumnsPerDetector >= 0, "artefact rates must be >= 0");
    need(satelliteProbability >= 0 && satelliteProbability <= 1,
         "satelliteProbability must be in [0, 1]");
}

VisitConditions drawConditions(const VisitSpec& spec, const Camera& camera,
                               const ObservingConfig& cfg, std::uint64_t seed) {
    cfg.validate();
    Rng rng = Rng::forStream(seed, Stream::kVisit, {static_cast<std::uint64_t>(spec.visit)});
    VisitConditions c;
    c.spec = spec;
    const double scale = camera.config().pixelScaleArcsec;
    c.seeing = std::clamp(cfg.seeingMedian * std::exp(rng.normal(0, cfg.seeingSigmaLn)),
                          cfg.seeingMin, cfg.seeingMax);
    auto psf = std::make_shared<MoffatPsfModel>();
    psf->fwhm = c.seeing / scale;
    psf->beta = rng.uniform(cfg.betaMin, cfg.betaMax);
    psf->e1 = std::clamp(rng.normal(0, cfg.psfEllipticityRms), -0.15, 0.15);
    psf->e2 = std::clamp(rng.normal(0, cfg.psfEllipticityRms), -0.15, 0.15);
    psf->astigmatism = rng.uniform(-cfg.psfAstigmatism, cfg.psfAstigmatism);
    psf->radialFwhm = rng.uniform(0.0, cfg.psfRadialFwhm);  // focal planes blur outwards
    psf->gradX = rng.uniform(-cfg.psfGradient, cfg.psfGradient);
    psf->gradY = rng.uniform(-cfg.psfGradient, cfg.psfGradient);
    psf->cornerRadius = camera.cornerRadius();
    psf->validate();
    c.psf = psf;
    c.cloud = std::min(cfg.cloudMax, rng.exponential(cfg.cloudMean > 0 ? cfg.cloudMean : 1e-300));
    if (cfg.cloudMean == 0) c.cloud = 0;
    const BandConstants& bc = bandConstants(spec.band);
    c.zeroPoint =
        bc.zp1s + 2.5 * std::log10(cfg.exposureTime) - bc.extinction * (spec.airmass - 1) - c.cloud;
    c.skyBrightness = bc.skyMag + rng.normal(0, cfg.skyMagSigma);
    c.skyLevel = std::pow(10.0, -0.4 * (c.skyBrightness - c.zeroPoint)) * scale * scale;
    c.skyGradX = rng.uniform(-cfg.skyGradient, cfg.skyGradient);
    c.skyGradY = rng.uniform(-cfg.skyGradient, cfg.skyGradient);
    // Header pointing: boresight off by a normal error per axis, rotation off by a small angle.
    const double ex = rng.normal(0, cfg.pointingErrorArcsec),
                 ey = rng.normal(0, cfg.pointingErrorArcsec);
    c.headerPointing.boresight =
        spec.pointing.boresight.offset(radians(std::atan2(ex, ey)), arcseconds(std::hypot(ex, ey)));
    c.headerPointing.rotation =
        spec.pointing.rotation + arcseconds(rng.normal(0, cfg.rotationErrorArcsec));
    if (rng.uniform() < cfg.satelliteProbability) {
        SatelliteTrail s;
        s.angle = rng.uniform(0, std::numbers::pi);
        s.offset = rng.uniform(-0.8, 0.8) * camera.cornerRadius();
        s.peak = std::exp(rng.uniform(std::log(50.0), std::log(2000.0)));
        s.sigma = std::max(1.0, psf->fwhm / 2.3548 * rng.uniform(1.0, 2.0));
        c.satellite = s;
    }
    return c;
}

double detectorZeroPointOffset(std::uint64_t seed, int det, int band, const ObservingConfig& cfg) {
    Rng rng =
        Rng::forStream(seed, Stream::kDetector,
                       {static_cast<std::uint64_t>(det), static_cast<std::uint64_t>(band), 1});
    return rng.normal(0, cfg.detectorZpSigma);
}

double skyAt(const Camera& camera, const VisitConditions& cond, int det, double zpOffset,
             Point2D p) {
    const Point2D fp = camera.toFocalPlane(det, p);
    const double r = camera.cornerRadius();
    return cond.skyLevel * std::pow(10.0, 0.4 * zpOffset) *
           (1 + cond.skyGradX * fp.x / r + cond.skyGradY * fp.y / r);
}

std::vector<SersicComponent> galaxyComponents(const TrueObject& o, int band, double nJyPerUnit,
                                              const Eigen::Matrix2d& jacobian) {
    std::vector<SersicComponent> comps;
    if (o.isStar) return comps;
    // A sky-frame Sérsic shape (r_e arcsec, e1/e2 in the east/north frame) on the pixel grid.
    const Eigen::Matrix2d jacInv = jacobian.inverse();
    auto onPixels = [&](double n, double reArcsec, double e1, double e2, double flux) {
        const double e = std::hypot(e1, e2), s = 1 / std::sqrt(1 - e * e);
        Eigen::Matrix2d q;
        q << (1 + e1) * s, e2 * s, e2 * s, (1 - e1) * s;
        q *= reArcsec * reArcsec;
        const Eigen::Matrix2d qp = jacInv * q * jacInv.transpose();
        const double re2 = std::sqrt(qp.determinant());
        const double tr = qp(0, 0) + qp(1, 1);
        comps.push_back({n, std::sqrt(re2), (qp(0, 0) - qp(1, 1)) / tr, 2 * qp(0, 1) / tr, flux});
    };
    const double bulge = o.bulgeFlux[band] / nJyPerUnit, total = o.flux[band] / nJyPerUnit;
    if (bulge > 0) onPixels(o.bulgeN, o.bulgeREff, o.bulgeE1, o.bulgeE2, bulge);
    if (total - bulge > 0) onPixels(o.diskN, o.diskREff, o.diskE1, o.diskE2, total - bulge);
    return comps;
}

void bleed(Image<double>& e, Mask& mask, double fullWell) {
    const MaskPixel sat = mask.planes().bit("SAT"), suspect = mask.planes().bit("SUSPECT");
    const int w = e.width(), h = e.height();
    for (int x = 0; x < w; ++x) {
        int y = 0;
        while (y < h) {
            if (e(x, y) <= fullWell) {
                ++y;
                continue;
            }
            int y1 = y;
            double excess = 0;
            while (y1 < h && e(x, y1) > fullWell) {
                excess += e(x, y1) - fullWell;
                e(x, y1) = fullWell;
                ++y1;
            }
            // Half the excess flows each way; returns the first row not reached.
            auto spill = [&](int from, int step) {
                double charge = 0.5 * excess;
                int yy = from;
                for (; yy >= 0 && yy < h && charge > 0; yy += step) {
                    const double room = fullWell - e(x, yy);
                    mask.set(x, yy, suspect);
                    e(x, yy) += std::min(room, charge);
                    charge -= std::min(room, charge);
                }
                return yy;
            };
            const int yy = spill(y1, +1);
            spill(y - 1, -1);
            y = std::max(y1, yy);
        }
    }
    // SAT where at full well; SUSPECT on the 1-pixel border of saturated areas.
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
            if (e(x, y) >= fullWell) mask.set(x, y, sat);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            if (mask(x, y) & sat) continue;
            for (int dy = -1; dy <= 1; ++dy)
                for (int dx = -1; dx <= 1; ++dx) {
                    const int xx = x + dx, yy = y + dy;
                    if (xx >= 0 && yy >= 0 && xx < w && yy < h && (mask(xx, yy) & sat))
                        mask.set(x, y, suspect);
                }
        }
}

std::vector<CosmicRay> drawCosmicRays(Rng& rng, const Box2I& bbox, double rate,
                                      double exposureTime) {
    std::vector<CosmicRay> out;
    const double mpix = bbox.width() * static_cast<double>(bbox.height()) / 1e6;
    const std::int64_t n = rng.poisson(rate * mpix * exposureTime / 30.0);
    for (std::int64_t k = 0; k < n; ++k) {
        CosmicRay cr;
        cr.x0 = rng.uniform(-0.5, bbox.width() - 0.5);
        cr.y0 = rng.uniform(-0.5, bbox.height() - 0.5);
        // Most tracks are short (near-normal incidence); a few graze the sensor.
        const double len = rng.uniform() < 0.3 ? 0.0 : rng.exponential(6.0);
        const double phi = rng.uniform(0, 2 * std::numbers::pi);
        cr.x1 = cr.x0 + len * std::cos(phi);
        cr.y1 = cr.y0 + len * std::sin(phi);
        // Minimum-ionising deposit ≈ 80 e-/µm × ~10–100 µm path: lognormal around 2000 e-.
        cr.electrons = 2000.0 * std::exp(rng.normal(0, 0.6)) * (1 + len / 3);
        out.push_back(cr);
    }
    return out;
}

void depositCosmicRays(Image<double>& e, const std::vector<CosmicRay>& crs) {
    for (const CosmicRay& cr : crs) {
        const double len = std::hypot(cr.x1 - cr.x0, cr.y1 - cr.y0);
        const int steps = std::max(1, static_cast<int>(std::ceil(len * 4)));
        const double per = cr.electrons / steps;
        for (int s = 0; s < steps; ++s) {
            const double t = steps == 1 ? 0.0 : static_cast<double>(s) / (steps - 1);
            const int x = static_cast<int>(std::floor(cr.x0 + t * (cr.x1 - cr.x0) + 0.5));
            const int y = static_cast<int>(std::floor(cr.y0 + t * (cr.y1 - cr.y0) + 0.5));
            if (x >= 0 && y >= 0 && x < e.width() && y < e.height()) e(x, y) += per;
        }
    }
}

std::vector<BadColumn> drawBadColumns(std::uint64_t seed, int det, const Box2I& bbox, double mean) {
    // Bad columns are a property of the sensor: seeded by the detector only.
    Rng sensor = Rng::forStream(seed, Stream::kDetector, {static_cast<std::uint64_t>(det), 2});
    std::vector<BadColumn> out;
    const std::int64_t n = sensor.poisson(mean);
    for (std::int64_t k = 0; k < n; ++k) {
        BadColumn bc;
        bc.x = static_cast<int>(sensor.below(static_cast<std::uint64_t>(bbox.width())));
        bc.y0 = sensor.uniform() < 0.5
                    ? 0
                    : static_cast<int>(sensor.below(static_cast<std::uint64_t>(bbox.height())));
        bc.y1 = bbox.height() - 1;
        bc.hot = sensor.uniform() < 0.3;
        out.push_back(bc);
    }
    return out;
}

namespace {

// Signed distance (focal-plane pixels) of a detector pixel from the satellite's centre line.
double trailDistance(const Camera& camera, int det, const SatelliteTrail& s, Point2D p) {
    const Point2D fp = camera.toFocalPlane(det, p);
    return -fp.x * std::sin(s.angle) + fp.y * std::cos(s.angle) - s.offset;
}

std::array<std::uint64_t, 2> ids(std::int64_t visit, int det) {
    return {static_cast<std::uint64_t>(visit), static_cast<std::uint64_t>(det)};
}

}  // namespace

DetectorTruth describeDetector(const Camera& camera, const VisitConditions& cond, int det,
                               const std::vector<TrueObject>& sky, const ObservingConfig& cfg,
                               std::uint64_t seed) {
    cfg.validate();
    const VisitSpec& spec = cond.spec;
    DetectorTruth t;
    t.visit = spec.visit;
    t.detector = det;
    t.band = spec.band;
    t.bbox = camera.detectorBox();
    const double zpOffset = detectorZeroPointOffset(seed, det, spec.band, cfg);
    t.zeroPoint = cond.zeroPoint + zpOffset;
    t.nJyPerElectron = std::pow(10.0, 0.4 * (31.4 - t.zeroPoint));
    t.trueWcs = trueWcs(camera, spec.pointing, det);
    t.headerWcs = trueWcs(camera, cond.headerPointing, det);
    t.psf = std::make_shared<TruePsf>(cond.psf, camera.origin(det));
    const Point2D center{(t.bbox.width() - 1) / 2.0, (t.bbox.height() - 1) / 2.0};
    t.skyLevel = skyAt(camera, cond, det, zpOffset, center);
    const Box2D area(t.bbox);
    const SpherePoint detCenter = t.trueWcs.pixelToSky(center);
    const double reach =
        0.6 * std::hypot(t.bbox.width(), t.bbox.height()) * camera.config().pixelScaleArcsec;
    for (const TrueObject& o : sky) {
        if (o.position.separation(detCenter).asArcseconds() > reach) continue;
        if (area.contains(t.trueWcs.skyToPixel(o.position))) ++(o.isStar ? t.nStars : t.nGalaxies);
    }
    if (cfg.addNoise && cfg.addArtefacts) {
        const auto [v, d] = ids(spec.visit, det);
        Rng art = Rng::forStream(seed, Stream::kArtefact, {v, d});
        t.cosmicRays = drawCosmicRays(art, t.bbox, cfg.cosmicRayRate, cfg.exposureTime);
        t.badColumns = drawBadColumns(seed, det, t.bbox, cfg.badColumnsPerDetector);
        if (cond.satellite) {
            // The trail crosses the detector if its ±8σ band meets the pixel box: the signed
            // distances of the corners change sign or one corner is within the band.
            double lo = 1e300, hi = -1e300;
            for (Point2D c : {area.min(), area.max(), Point2D{area.min().x, area.max().y},
                              Point2D{area.max().x, area.min().y}}) {
                const double dist = trailDistance(camera, det, *cond.satellite, c);
                lo = std::min(lo, dist);
                hi = std::max(hi, dist);
            }
            const double band = 8 * cond.satellite->sigma;
            t.satellite = lo < band && hi > -band;
        }
    }
    return t;
}

Image<double> expectedImage(const Camera& camera, const VisitConditions& cond, int det,
                            const std::vector<TrueObject>& sky, const DetectorTruth& t) {
    const VisitSpec& spec = cond.spec;
    const CameraConfig& cc = camera.config();
    const Box2I bbox = t.bbox;
    const double zpOffset = t.zeroPoint - cond.zeroPoint;
    // Sky, then sources in truth_id order (deterministic sums).
    Image<double> model(bbox, 0.0);
    for (int y = 0; y < bbox.height(); ++y)
        for (int x = 0; x < bbox.width(); ++x)
            model(x, y) = skyAt(camera, cond, det, zpOffset, {double(x), double(y)});
    const Point2D center{(bbox.width() - 1) / 2.0, (bbox.height() - 1) / 2.0};
    const SpherePoint detCenter = t.trueWcs.pixelToSky(center);
    const double scale = cc.pixelScaleArcsec;
    const double halfDiag = 0.5 * std::hypot(bbox.width(), bbox.height()) * scale;
    const double psfMargin = cond.psf->maxRadius() * scale;
    for (const TrueObject& o : sky) {
        // 8 r_e truncation × up to 2.2 stretch for |e| <= 0.93.
        const double reach =
            halfDiag + psfMargin + (o.isStar ? 0.0 : 18.0 * std::max(o.diskREff, o.bulgeREff));
        if (o.position.separation(detCenter).asArcseconds() > reach) continue;
        const Point2D p = t.trueWcs.skyToPixel(o.position);
        const double fluxE = o.flux[spec.band] / t.nJyPerElectron;
        const TruncatedMoffat psf = t.psf->profileAt(p);
        if (o.isStar) {
            addStar(model.view(), psf, p, fluxE);
            continue;
        }
        const std::vector<SersicComponent> comps = galaxyComponents(
            o, spec.band, t.nJyPerElectron, localJacobian(t.trueWcs, o.position, p));
        if (!comps.empty()) addGalaxy(model.view(), comps, p, psf);
    }
    // Satellite light is real light (Poisson noise, in the variance); it is not masked.
    if (t.satellite) {
        const SatelliteTrail& s = *cond.satellite;
        for (int y = 0; y < bbox.height(); ++y)
            for (int x = 0; x < bbox.width(); ++x) {
                const double d = trailDistance(camera, det, s, {double(x), double(y)});
                if (std::abs(d) < 8 * s.sigma)
                    model(x, y) += s.peak * std::exp(-0.5 * d * d / (s.sigma * s.sigma));
            }
    }

    return model;
}

SimulatedDetector simulateDetector(const Camera& camera, const VisitConditions& cond, int det,
                                   const std::vector<TrueObject>& sky, const ObservingConfig& cfg,
                                   std::uint64_t seed) {
    const VisitSpec& spec = cond.spec;
    const CameraConfig& cc = camera.config();
    SimulatedDetector out;
    out.truth = describeDetector(camera, cond, det, sky, cfg, seed);
    const DetectorTruth& t = out.truth;
    const Box2I bbox = t.bbox;

    // 1. Expected image (e-).
    const Image<double> model = expectedImage(camera, cond, det, sky, t);

    // 2. Planes.
    Exposure& exp = out.exposure;
    exp = Exposure(bbox);
    Mask& mask = exp.mask();
    const double quantVar = cc.gain * cc.gain / 12.0;
    for (int y = 0; y < bbox.height(); ++y)
        for (int x = 0; x < bbox.width(); ++x)
            exp.variance()(x, y) =
                static_cast<float>(model(x, y) + cc.readNoise * cc.readNoise + quantVar);
    if (!cfg.addNoise) {
        for (int y = 0; y < bbox.height(); ++y)
            for (int x = 0; x < bbox.width(); ++x)
                exp.image()(x, y) = static_cast<float>(model(x, y));
    } else {
        const auto [v, d] = ids(spec.visit, det);
        Rng noise = Rng::forStream(seed, Stream::kNoise, {v, d});
        Image<double> e(bbox, 0.0);
        for (int y = 0; y < bbox.height(); ++y)
            for (int x = 0; x < bbox.width(); ++x)
                e(x, y) = static_cast<double>(noise.poisson(model(x, y)));
        depositCosmicRays(e, t.cosmicRays);
        bleed(e, mask, cc.fullWell);
        const MaskPixel sat = mask.planes().bit("SAT");
        for (int y = 0; y < bbox.height(); ++y)
            for (int x = 0; x < bbox.width(); ++x) {
                if (mask(x, y) & sat) {
                    exp.image()(x, y) = static_cast<float>(cc.fullWell);  // digital saturation
                    continue;
                }
                const double adu = std::round((e(x, y) + noise.normal(0, cc.readNoise)) / cc.gain);
                exp.image()(x, y) = static_cast<float>(std::min(adu * cc.gain, cc.fullWell));
            }
        const MaskPixel bad = mask.planes().bit("BAD");
        for (const BadColumn& bc : t.badColumns)
            for (int y = bc.y0; y <= bc.y1; ++y) {
                exp.image()(bc.x, y) =
                    static_cast<float>(bc.hot ? cc.fullWell * 0.5 : noise.normal(0, cc.readNoise));
                mask.set(bc.x, y, bad);
            }
    }

    // 3. Metadata: VisitInfo, header WCS, nominal photometric calibration, the true PSF.
    VisitInfo& vi = exp.visitInfo();
    vi.visit = spec.visit;
    vi.detector = det;
    vi.band = kBandNames[static_cast<std::size_t>(spec.band)];
    vi.mjd = spec.mjd;
    vi.exposureTime = cfg.exposureTime;
    vi.gain = cc.gain;
    vi.saturation = cc.fullWell;
    vi.readNoise = cc.readNoise;
    vi.airmass = spec.airmass;
    exp.setWcs(t.headerWcs.toWcs(bbox));
    exp.setPsf(t.psf);
    exp.setPhotoCalib(nominalPhotoCalib(spec, cfg));
    return out;
}

PhotoCalib nominalPhotoCalib(const VisitSpec& spec, const ObservingConfig& cfg) {
    // The nominal zero point a camera pipeline knows: no clouds, no per-detector QE.
    const BandConstants& bc = bandConstants(spec.band);
    return PhotoCalib::fromZeroPoint(bc.zp1s + 2.5 * std::log10(cfg.exposureTime) -
                                     bc.extinction * (spec.airmass - 1));
}

}  // namespace drp::sim
