// The raw path of the simulator: geometry, electronics against the true calibration, and
// determinism. (Master calibrations and ISR against this truth: calib/tests/isr_vs_sim.cpp.)
#include <gtest/gtest.h>

#include <cmath>

#include "drp/sim/raw.h"
#include "drp/sim/survey.h"

namespace drp::sim {
namespace {

struct Fixture {
    SurveyConfig cfg = presetConfig("tiny");
    SurveyPlan plan = makePlan(cfg, 3);
    Camera camera{cfg.camera};
    RawConfig raw;
    CalibrationTruth truth = trueCalibration(camera, raw, cfg.observing, 1, {"g", "r"}, 3);
};

TEST(Raw, GeometryAndCalibrationPlan) {
    Fixture f;
    ASSERT_EQ(f.truth.amps.size(), 8u);
    EXPECT_EQ(f.truth.rawBox.width(), 4 * (128 + 32));
    EXPECT_EQ(f.truth.rawBox.height(), 512);
    // The data boxes tile the detector exactly once.
    std::int64_t area = 0;
    for (const Amplifier& a : f.truth.amps) {
        area += a.detectorBox.area();
        EXPECT_EQ(a.dataBox.width(), a.detectorBox.width());
        EXPECT_GT(a.gain, 1.0);
        EXPECT_GT(a.saturation, f.raw.biasLevelAdu);
    }
    EXPECT_EQ(area, f.truth.detectorBox.area());
    // Flats: mean 1 over the live pixels.
    for (const char* band : {"g", "r"}) {
        double s = 0;
        std::int64_t n = 0;
        for (int y = 0; y < 512; ++y)
            for (int x = 0; x < 512; ++x)
                if (!(f.truth.defectMask(x, y) & 1)) {
                    s += f.truth.flats.at(band)(x, y);
                    ++n;
                }
        EXPECT_NEAR(s / n, 1.0, 1e-6) << band;
    }
    const auto specs = calibrationPlan(f.plan, f.raw);
    EXPECT_EQ(specs.size(), 10u + 10u + 10u * f.cfg.bands.size());
    for (const auto& s : specs) {
        EXPECT_GT(s.id, f.plan.visits.back().visit);
        EXPECT_LT(s.mjd, f.plan.visits.front().mjd);
    }
}

TEST(Raw, BiasFrameReadsTheTrueElectronics) {
    Fixture f;
    CalibExposureSpec bias{
        f.plan.visits.back().visit + 1, obs_type::kBias, "", 60000.0, 0, 0, false};
    const RawExposure r =
        simulateCalibExposure(f.camera, bias, 1, f.cfg.observing, f.raw, f.truth, 3);
    EXPECT_EQ(r.pixels.bbox(), f.truth.rawBox);
    for (std::size_t a = 0; a < r.amps.size(); ++a) {
        const Amplifier& amp = r.amps[a];
        double os = 0, data = 0, truthBias = 0;
        for (int y = amp.dataBox.min().y; y <= amp.dataBox.max().y; ++y) {
            for (int x = amp.overscanBox.min().x; x <= amp.overscanBox.max().x; ++x)
                os += r.pixels(x, y);
            for (int x = amp.dataBox.min().x; x <= amp.dataBox.max().x; ++x) data += r.pixels(x, y);
            for (int x = amp.detectorBox.min().x; x <= amp.detectorBox.max().x; ++x)
                truthBias += f.truth.bias(x, y - amp.dataBox.min().y + amp.detectorBox.min().y);
        }
        os /= double(amp.overscanBox.area());
        data /= double(amp.dataBox.area());
        truthBias /= double(amp.detectorBox.area());
        // Overscan = level + jitter (5 ADU rms) + drift (≤ 3 ADU): within 25 ADU of the level.
        EXPECT_NEAR(os, f.truth.biasLevels[a], 25.0) << amp.name;
        // Data − overscan = bias structure / gain (noise of the means: < 0.1 ADU).
        EXPECT_NEAR((data - os) * amp.gain, truthBias, 0.3) << amp.name;
    }
    // Deterministic in (seed, exposure, detector).
    const RawExposure again =
        simulateCalibExposure(f.camera, bias, 1, f.cfg.observing, f.raw, f.truth, 3);
    EXPECT_EQ(r.pixels, again.pixels);
}

}  // namespace
}  // namespace drp::sim
