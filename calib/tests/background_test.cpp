#include "drp/calib/background.h"

#include <gtest/gtest.h>

#include <random>

#include "characterize_test_support.h"

using namespace drp;
using namespace drp::calib;
using namespace drp::calib::testing;

TEST(ClippedStats, GaussianSampleModeNearMean) {
    std::mt19937_64 rng(1);
    std::normal_distribution<double> g(1000, 10);
    std::vector<float> v(20000);
    for (auto& x : v) x = static_cast<float>(g(rng));
    // 5% outliers far above (a source): the clip must remove them.
    for (int k = 0; k < 1000; ++k) v[k] = 5000;
    BackgroundConfig cfg;
    ClippedStats s = clippedStats(v, cfg);
    // σ of the mean of 19000 draws is 0.07; the Pearson mode is ~3x noisier; and 3σ clipping of
    // a Gaussian shrinks σ by ~1.3%.
    EXPECT_NEAR(s.mode, 1000, 0.5);
    EXPECT_NEAR(s.sigma, 10 * 0.987, 0.2);
}

TEST(Interpolation, SplinesReproduceLinearAndSmooth) {
    std::vector<double> x{0, 10, 20, 30, 40}, ylin, ysin;
    for (double v : x) {
        ylin.push_back(3 + 0.5 * v);
        ysin.push_back(std::sin(v / 15));
    }
    std::vector<double> xs;
    for (double t = -5; t <= 45; t += 0.5) xs.push_back(t);
    auto a = interpolateAkima(x, ylin, xs);
    auto c = interpolateCubicSpline(x, ylin, xs);
    for (std::size_t k = 0; k < xs.size(); ++k) {
        EXPECT_NEAR(a[k], 3 + 0.5 * xs[k], 1e-9);
        EXPECT_NEAR(c[k], 3 + 0.5 * xs[k], 1e-9);
    }
    // Through the knots exactly; between them close to the smooth function (knot spacing
    // 10 = 0.67 rad: cubic interpolation error ~ h^4 f''''/384 ~ 1e-3).
    auto c2 = interpolateCubicSpline(x, ysin, xs);
    for (std::size_t k = 0; k < xs.size(); ++k)
        if (xs[k] >= 10 && xs[k] <= 30) {
            EXPECT_NEAR(c2[k], std::sin(xs[k] / 15), 3e-3);
        }
}

namespace {

SyntheticImage skyImage(std::uint64_t seed, int nStars) {
    PsfTruth psf;
    psf.width = 768;
    psf.height = 512;
    SkyTruth sky;
    sky.level = 800;
    sky.gradX = 0.3;
    sky.gradY = -0.2;
    sky.curvature = 10;
    return makeImage(psf, sky, nStars, 2e3, 2e5, seed);
}

}  // namespace

TEST(Background, RecoversSkyGradientUnderStars) {
    SyntheticImage im = skyImage(11, 150);
    BackgroundConfig cfg;
    cfg.binSize = 128;
    for (auto method : {BackgroundInterpolation::CubicSpline, BackgroundInterpolation::Akima}) {
        cfg.interpolation = method;
        BackgroundModel bg = estimateBackground(im.exposure.maskedImage(), cfg);
        EXPECT_EQ(bg.nx(), 6);
        EXPECT_EQ(bg.ny(), 4);
        ImageF b = bg.image();
        double sum = 0, sum2 = 0, maxAbs = 0;
        for (int j = 0; j < b.height(); ++j)
            for (int i = 0; i < b.width(); ++i) {
                double d = b(i, j) - im.sky(i, j);
                sum += d;
                sum2 += d * d;
                maxAbs = std::max(maxAbs, std::abs(d));
            }
        double n = double(b.width()) * b.height();
        double noise = std::sqrt(im.sky(384, 256) + 25.0);  // ~ 32 e per pixel
        // Each cell has 16k pixels: the mode's noise is ~0.02σ; faint star wings that survive
        // the 3σ clip bias it upwards by a similar amount; the quadratic term (10 e at the
        // corners) is smoothed by the 3×3 median filter and only extrapolated linearly
        // beyond the outer cell centres.
        EXPECT_LT(std::abs(sum / n), 0.05 * noise) << "method " << int(method);
        EXPECT_LT(std::sqrt(sum2 / n), 0.12 * noise) << "method " << int(method);
        EXPECT_LT(maxAbs, 0.4 * noise) << "method " << int(method);
        // The cell RMS also contains the sky gradient across the cell (a uniform spread of
        // binSize·grad): σ² = noise² + (128·0.3)²/12 + (128·0.2)²/12.
        double expectedRms = std::sqrt(noise * noise + (38.4 * 38.4 + 25.6 * 25.6) / 12);
        EXPECT_NEAR(bg.meanRms(), expectedRms, 0.05 * expectedRms);
    }
}

TEST(Background, IgnoresMaskedPixelsAndNaN) {
    SyntheticImage im = skyImage(12, 0);
    MaskedImage mi = im.exposure.maskedImage();
    MaskPixel bad = mi.mask().planes().bit("BAD");
    // A huge artefact (a bleed trail/bad column block) and a NaN block.
    for (int j = 100; j < 400; ++j)
        for (int i = 200; i < 260; ++i) {
            mi.image()(i, j) = 60000;
            mi.mask().set(i, j, bad);
        }
    for (int j = 0; j < 50; ++j)
        for (int i = 0; i < 768; ++i) mi.image()(i, j) = NAN;
    BackgroundConfig cfg;
    BackgroundModel bg = estimateBackground(mi, cfg);
    ImageF b = bg.image();
    double maxAbs = 0;
    for (int j = 50; j < 512; ++j)
        for (int i = 0; i < 768; ++i)
            maxAbs = std::max(maxAbs, double(std::abs(b(i, j) - im.sky(i, j))));
    // 0.5σ: the cells cut by the NaN rows have their data off-centre (a 0.2 e/px gradient over
    // ~25 px) and the bottom rows are extrapolated; without masking the block would add ~1e4.
    EXPECT_LT(maxAbs, 15.0);
}

TEST(Background, AllMaskedIsBadInput) {
    MaskedImage mi(Box2I({0, 0}, {64, 64}));
    for (auto& v : mi.image().pixels()) v = NAN;
    try {
        estimateBackground(mi, BackgroundConfig{});
        FAIL() << "expected bad_input";
    } catch (const Error& e) {
        EXPECT_EQ(e.errorClass(), "bad_input");
    }
}

TEST(Background, TableRoundTripAndSubtraction) {
    SyntheticImage im = skyImage(13, 20);
    BackgroundConfig cfg;
    cfg.interpolation = BackgroundInterpolation::Akima;
    BackgroundModel bg = estimateBackground(im.exposure.maskedImage(), cfg);
    BackgroundModel back = BackgroundModel::fromTable(bg.toTable());
    EXPECT_EQ(back, bg);
    EXPECT_EQ(back.image(), bg.image());
    MaskedImage mi = im.exposure.maskedImage();
    subtractBackground(mi, bg);
    ImageF b = bg.image();
    EXPECT_FLOAT_EQ(mi.image()(5, 7), im.exposure.image()(5, 7) - b(5, 7));
}

TEST(Background, ConfigValidation) {
    BackgroundConfig cfg;
    cfg.filterSize = 2;
    EXPECT_THROW(cfg.validate(), Error);
    cfg = BackgroundConfig{};
    cfg.binSize = 0;
    try {
        cfg.validate();
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.errorClass(), "config");
        EXPECT_NE(std::string(e.what()).find("binSize"), std::string::npos);
    }
}
