// Master calibrations and ISR against the simulator's truth (sim/raw.h): the tiny preset's
// detector 0 (512² pixels, 4 × 2 amplifiers), the default calibration series (10 biases, 10
// darks, 10 flats per band).
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <memory>
#include <vector>

#include "drp/calib/isr.h"
#include "drp/calib/master_calib.h"
#include "drp/sim/raw.h"
#include "drp/sim/survey.h"

namespace drp::calib {
namespace {

struct Series {
    sim::SurveyConfig cfg = sim::presetConfig("tiny");
    sim::SurveyPlan plan;
    std::unique_ptr<sim::Camera> camera;
    sim::RawConfig raw;
    sim::CalibrationTruth truth;
    std::map<std::string, std::vector<RawExposure>> frames;  // "bias", "dark", "flat-r", ...
    static constexpr std::uint64_t kSeed = 7;
    static constexpr int kDet = 0;

    explicit Series(const sim::RawConfig& rawConfig, double cosmicRayRate = -1) : raw(rawConfig) {
        if (cosmicRayRate >= 0) cfg.observing.cosmicRayRate = cosmicRayRate;
        plan = sim::makePlan(cfg, kSeed);
        camera = std::make_unique<sim::Camera>(cfg.camera);
        truth = sim::trueCalibration(*camera, raw, cfg.observing, kDet, {"r"}, kSeed);
        for (const sim::CalibExposureSpec& s : sim::calibrationPlan(plan, raw)) {
            if (!s.band.empty() && s.band != "r") continue;
            const std::string key = s.band.empty() ? s.obsType : s.obsType + "-" + s.band;
            frames[key].push_back(
                sim::simulateCalibExposure(*camera, s, kDet, cfg.observing, raw, truth, kSeed));
        }
    }
};

struct Masters {
    Exposure bias, dark, flat;
};

Masters buildMasters(const Series& s, const MasterCalibConfig& mc = {}) {
    Masters m;
    m.bias = makeMasterBias(s.frames.at("bias"), mc);
    m.dark = makeMasterDark(s.frames.at("dark"), m.bias, mc);
    m.flat = makeMasterFlat(s.frames.at("flat-r"), m.bias, m.dark, mc);
    return m;
}

// (master − truth)² / variance over pixels that are not defects; also the RMS of the residual.
struct Residual {
    double chi2 = 0, rms = 0, mean = 0, maxAbsNorm = 0, maxSmoothed = 0;
    std::int64_t n = 0;
};
Residual residual(const Exposure& master, const ImageF& truth, const Mask& defects,
                  bool relative = false) {
    Residual r;
    const int w = truth.width(), h = truth.height();
    const MaskPixel skip = defects.planes().bits({"BAD", "NO_DATA"});
    ImageF norm(truth.bbox(), 0.0f);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            if ((defects(x, y) & skip) || (master.mask()(x, y) & skip)) continue;
            const double t = truth(x, y), m = master.image()(x, y);
            const double d = relative ? m / t - 1 : m - t;
            const double z = (m - t) / std::sqrt(master.variance()(x, y));
            norm(x, y) = static_cast<float>(z);
            r.chi2 += z * z;
            r.rms += d * d;
            r.mean += d;
            r.maxAbsNorm = std::max(r.maxAbsNorm, std::abs(z));
            ++r.n;
        }
    r.chi2 /= static_cast<double>(r.n);
    r.rms = std::sqrt(r.rms / static_cast<double>(r.n));
    r.mean /= static_cast<double>(r.n);
    // A trace left by a star or a cosmic ray is coherent over several pixels: the mean of z over
    // 5 × 5 boxes (σ = 1/5 for pure noise) finds it even below the single-pixel threshold.
    for (int y = 2; y < h - 2; ++y)
        for (int x = 2; x < w - 2; ++x) {
            double s = 0;
            for (int dy = -2; dy <= 2; ++dy)
                for (int dx = -2; dx <= 2; ++dx) s += norm(x + dx, y + dy);
            r.maxSmoothed = std::max(r.maxSmoothed, std::abs(s / 25.0) * 5.0);  // in σ units
        }
    return r;
}

class MasterVsTruth : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        series = new Series(sim::RawConfig{});
        masters = new Masters(buildMasters(*series));
    }
    static void TearDownTestSuite() {
        delete masters;
        delete series;
    }
    static Series* series;
    static Masters* masters;
};
Series* MasterVsTruth::series = nullptr;
Masters* MasterVsTruth::masters = nullptr;

TEST_F(MasterVsTruth, FlatPixelToPixelErrorBelowTwoPerMille) {
    const Residual r =
        residual(masters->flat, series->truth.flats.at("r"), series->truth.defectMask, true);
    // Expected: 1 / sqrt(10 flats × 40000 e-) = 0.16% (Poisson), plus read noise and the bias
    // and dark errors (< 0.01%).
    EXPECT_LT(r.rms, 0.002);
    EXPECT_NEAR(r.mean, 0.0, 1e-4);  // both normalised to mean 1 over the live pixels
    // The variance plane describes the error: χ² per pixel ≈ 1.
    EXPECT_NEAR(r.chi2, 1.0, 0.05);
    std::cout << "master flat: pixel-to-pixel rms error " << r.rms * 100 << "%, chi2/pixel "
              << r.chi2 << ", max |z| " << r.maxAbsNorm << " over " << r.n << " pixels\n";
}

TEST_F(MasterVsTruth, BiasWithinExpectedNoise) {
    const Residual r = residual(masters->bias, series->truth.bias, series->truth.defectMask);
    // Expected per pixel: σ_read / sqrt(10) ≈ 2.9 e-; the variance plane carries it exactly.
    EXPECT_NEAR(r.chi2, 1.0, 0.05);
    EXPECT_LT(r.rms, 1.15 * 9.0 * 1.3 / std::sqrt(10.0));  // read noise ≤ 1.3 × nominal per amp
    EXPECT_LT(std::abs(r.mean), 0.1);                      // e-
    std::cout << "master bias: rms error " << r.rms << " e-, chi2/pixel " << r.chi2 << "\n";
}

TEST_F(MasterVsTruth, DarkWithinExpectedNoiseAndHotColumnsFlagged) {
    const Residual r = residual(masters->dark, series->truth.dark, series->truth.defectMask);
    EXPECT_NEAR(r.chi2, 1.0, 0.05);
    EXPECT_LT(std::abs(r.mean), 0.01);  // e-/s; per-pixel σ ≈ 0.1 e-/s over 2.6e5 pixels
    std::cout << "master dark: rms error " << r.rms << " e-/s, chi2/pixel " << r.chi2 << "\n";
    // Every defect of the sensor is BAD in the master dark (hot) or the master flat (dead), and
    // nothing else is.
    const MaskPixel bad = masters->flat.mask().planes().bit("BAD");
    std::int64_t agree = 0, extra = 0, missing = 0;
    for (int y = 0; y < series->truth.bias.height(); ++y)
        for (int x = 0; x < series->truth.bias.width(); ++x) {
            const bool isBad = (masters->dark.mask()(x, y) | masters->flat.mask()(x, y)) & bad;
            const bool trueBad = series->truth.defectMask(x, y) & bad;
            agree += isBad && trueBad;
            extra += isBad && !trueBad;
            missing += !isBad && trueBad;
        }
    EXPECT_EQ(extra, 0);
    EXPECT_EQ(missing, 0);
    std::cout << "defects: " << agree << " BAD pixels agree\n";
}

TEST_F(MasterVsTruth, ProvenanceAndValidity) {
    const PropertyList& md = masters->flat.metadata();
    EXPECT_EQ(md.get<std::string>("CALTYPE"), "flat");
    EXPECT_EQ(md.get<std::string>("CALBAND"), "r");
    EXPECT_EQ(md.get<std::int64_t>("NCOMBINE"), 10);
    std::string expect;
    for (const RawExposure& f : series->frames.at("flat-r")) {
        if (!expect.empty()) expect.push_back(',');
        expect.append(std::to_string(f.visitInfo.visit));
    }
    EXPECT_EQ(md.get<std::string>("CALINPUT"), expect);
    const double start = md.get<double>("VALIDSTA"), end = md.get<double>("VALIDEND");
    for (const auto& v : series->plan.visits) {
        EXPECT_GE(v.mjd, start);
        EXPECT_LE(v.mjd, end);
    }
}

// A flat series where a third of the frames are twilight flats with stars and every frame has
// many cosmic rays (75 per frame): the master shows no trace of them, while a plain mean of the
// same frames does (so the test can fail).
TEST(MasterFlat, StarsAndCosmicRaysLeaveNoTrace) {
    sim::RawConfig raw;
    raw.starsPerTwilightFlat = 6;
    raw.twilightFraction = 0.3;
    Series s(raw, 900.0);  // cosmic rays per Mpix per 30 s
    Masters m = buildMasters(s);
    const Residual r = residual(m.flat, s.truth.flats.at("r"), s.truth.defectMask, true);
    std::cout << "robust master flat: rms " << r.rms * 100 << "%, max |z| " << r.maxAbsNorm
              << ", max 5x5-smoothed |z| " << r.maxSmoothed << "\n";
    // 2.6e5 pixels of Gaussian noise: max |z| ≈ 4.9; 5 × 5 means (≈ 1e4 independent): ≈ 4.
    EXPECT_LT(r.maxAbsNorm, 6.0);
    EXPECT_LT(r.maxSmoothed, 5.5);
    EXPECT_LT(r.rms, 0.002);
    EXPECT_NEAR(r.chi2, 1.0, 0.05);

    MasterCalibConfig plain;
    plain.clipSigma = 1e6;
    plain.growSigma = 1e6;
    Exposure naive = makeMasterFlat(s.frames.at("flat-r"), m.bias, m.dark, plain);
    const Residual rn = residual(naive, s.truth.flats.at("r"), s.truth.defectMask, true);
    std::cout << "plain-mean master flat: max |z| " << rn.maxAbsNorm << "\n";
    EXPECT_GT(rn.maxAbsNorm, 20.0);
}

// ISR of a raw science exposure vs the calibrated image of the same exposure (independent noise
// realisations of the same scene, cosmic rays and defects): the residual is consistent with the
// two variance planes, and the masks agree.
TEST(Isr, MatchesCalibratedPathWithinNoise) {
    Series s{sim::RawConfig{}};
    Masters m = buildMasters(s);
    const sim::VisitSpec& spec = s.plan.visits[1];  // an r-band visit
    ASSERT_EQ(sim::kBandNames[static_cast<std::size_t>(spec.band)], std::string("r"));
    auto sky = sim::generateSky(s.cfg.sky, s.plan.skyRegion, Series::kSeed);
    const auto cond = sim::drawConditions(spec, *s.camera, s.cfg.observing, Series::kSeed);
    // A 14th-magnitude star on the detector: saturated core and bleed trail in both paths.
    sim::TrueObject bright;
    bright.id = sky.back().id + 1;
    bright.isStar = true;
    bright.position = sim::trueWcs(*s.camera, spec.pointing, Series::kDet).pixelToSky({200, 300});
    bright.flux.fill(sim::magToNJy(14.0));
    sky.push_back(bright);
    const sim::SimulatedDetector cal =
        sim::simulateDetector(*s.camera, cond, Series::kDet, sky, s.cfg.observing, Series::kSeed);
    const RawExposure raw = sim::simulateRawDetector(
        *s.camera, cond, Series::kDet, sky, s.cfg.observing, s.raw, s.truth, Series::kSeed);
    const Exposure isr = runIsr(raw, {&m.bias, &m.dark, &m.flat}, IsrConfig{});

    const MaskPlanes& planes = isr.mask().planes();
    const MaskPixel masked = planes.bits({"BAD", "SAT", "SUSPECT", "NO_DATA"});
    double chi2 = 0, meanZ = 0;
    std::int64_t n = 0;
    std::map<std::string, std::array<std::int64_t, 3>> agree;  // both, isr only, cal only
    for (int y = 0; y < isr.bbox().height(); ++y)
        for (int x = 0; x < isr.bbox().width(); ++x) {
            const MaskPixel a = isr.mask()(x, y), b = cal.exposure.mask()(x, y);
            for (const char* plane : {"BAD", "SAT", "SUSPECT"}) {
                const MaskPixel bit = planes.bit(plane);
                auto& c = agree[plane];
                c[0] += (a & bit) && (b & bit);
                c[1] += (a & bit) && !(b & bit);
                c[2] += !(a & bit) && (b & bit);
            }
            if ((a | b) & masked) continue;
            const double d = isr.image()(x, y) - cal.exposure.image()(x, y);
            const double v = isr.variance()(x, y) + cal.exposure.variance()(x, y);
            chi2 += d * d / v;
            meanZ += d / std::sqrt(v);
            ++n;
        }
    chi2 /= static_cast<double>(n);
    meanZ /= static_cast<double>(n);
    std::cout << "ISR vs calibrated: chi2/pixel " << chi2 << ", mean z " << meanZ << " over " << n
              << " pixels; BAD both/isr-only/cal-only " << agree["BAD"][0] << "/" << agree["BAD"][1]
              << "/" << agree["BAD"][2] << "; SAT " << agree["SAT"][0] << "/" << agree["SAT"][1]
              << "/" << agree["SAT"][2] << "; SUSPECT " << agree["SUSPECT"][0] << "/"
              << agree["SUSPECT"][1] << "/" << agree["SUSPECT"][2] << "\n";
    EXPECT_NEAR(chi2, 1.0, 0.03);
    EXPECT_LT(std::abs(meanZ), 0.02);  // a 2% of σ offset: bias/dark/flat scale errors
    EXPECT_EQ(agree["BAD"][1], 0);
    EXPECT_EQ(agree["BAD"][2], 0);
    const auto& sat = agree["SAT"];
    ASSERT_GT(sat[0], 20);  // the bright star saturates
    // Independent noise: only pixels within the noise of full well can differ.
    EXPECT_GE(double(sat[0]) / double(sat[0] + sat[1] + sat[2]), 0.9);
}

TEST(Isr, SelectCalibrationByDate) {
    std::vector<CalibValidity> c = {calibValidity({100.0, 100.1}, 30), calibValidity({140.0}, 30)};
    EXPECT_EQ(selectCalibration(c, 95.0), 0u);
    EXPECT_EQ(selectCalibration(c, 125.0), 1u);  // both valid: the closer one
    EXPECT_EQ(selectCalibration(c, 169.0), 1u);
    EXPECT_FALSE(selectCalibration(c, 171.0).has_value());
    EXPECT_FALSE(selectCalibration(c, 60.0).has_value());
}

TEST(Isr, TooFewInputsIsCalibrationFailed) {
    sim::RawConfig raw;
    raw.biasCount = 2;
    raw.darkCount = 0;
    raw.flatCount = 0;
    Series s(raw);
    try {
        makeMasterBias(s.frames.at("bias"), MasterCalibConfig{});
        FAIL() << "expected an error";
    } catch (const Error& e) {
        EXPECT_EQ(e.errorClass(), "calibration_failed");
    }
}

}  // namespace
}  // namespace drp::calib
