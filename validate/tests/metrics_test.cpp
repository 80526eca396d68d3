// Metrics on synthetic tables with known answers.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "drp/validate/metrics.h"

using namespace drp;
using namespace drp::validate;

namespace {
// Objects on a grid near RA = 0 (so the index must handle the wrap), 10" apart.
void grid(std::vector<double>& ra, std::vector<double>& dec, int n) {
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j) {
            double r = -0.01 + i * 10.0 / 3600.0;
            ra.push_back(r < 0 ? r + 360.0 : r);
            dec.push_back(-30.0 + j * 10.0 / 3600.0);
        }
}
Table objectTable(const std::vector<double>& ra, const std::vector<double>& dec,
                  const std::vector<bool>& primary) {
    Table t;
    auto& r = t.addColumn<double>("ra", "deg");
    auto& d = t.addColumn<double>("dec", "deg");
    auto& p = t.addColumn<Bool>("is_primary");
    for (std::size_t i = 0; i < ra.size(); ++i)
        r.push_back(ra[i]), d.push_back(dec[i]), p.push_back(primary[i]);
    return t;
}
}  // namespace

TEST(SkyIndex, NearestMatchesBruteForceAcrossRaZero) {
    std::mt19937 rng(7);
    std::uniform_real_distribution<double> u(-0.02, 0.02);
    std::vector<double> ra, dec;
    for (int i = 0; i < 2000; ++i) {
        double r = u(rng);
        ra.push_back(r < 0 ? r + 360 : r);
        dec.push_back(45 + u(rng));
    }
    const Angle radius = arcseconds(3.0);
    SkyIndex index(ra, dec, radius);
    for (int q = 0; q < 300; ++q) {
        double qr = u(rng), qd = 45 + u(rng);
        if (qr < 0) qr += 360;
        std::int64_t best = -1;
        double bestSep = 1e9;
        for (std::size_t i = 0; i < ra.size(); ++i) {
            double s = separationArcsec(qr, qd, ra[i], dec[i]);
            if (s <= 3.0 && s < bestSep) best = std::int64_t(i), bestSep = s;
        }
        EXPECT_EQ(index.nearest(qr, qd), best) << "query " << q;
    }
}

TEST(Metrics, SeparationKnownValues) {
    EXPECT_NEAR(separationArcsec(10, 0, 10, 1), 3600.0, 1e-6);
    EXPECT_NEAR(separationArcsec(359.9999, 0, 0.0001, 0), 0.72, 1e-6);
    // 1" in RA at dec 60 is 0.5" on the sky.
    EXPECT_NEAR(separationArcsec(0, 60, 1.0 / 3600, 60), 0.5, 1e-6);
}

TEST(Metrics, CompletenessAndUniqueness) {
    std::vector<double> tRa, tDec;
    grid(tRa, tDec, 10);  // 100 truth objects
    // Objects: every truth object except every 10th, offset by 0.1"; object 5 duplicated
    // (a seam duplicate) 0.05" away; one spurious object far from any truth.
    std::vector<double> oRa, oDec;
    std::vector<bool> primary;
    for (std::size_t i = 0; i < tRa.size(); ++i) {
        if (i % 10 == 0) continue;
        oRa.push_back(tRa[i]), oDec.push_back(tDec[i] + 0.1 / 3600), primary.push_back(true);
        if (i == 5)
            oRa.push_back(tRa[i]), oDec.push_back(tDec[i] + 0.15 / 3600), primary.push_back(true);
    }
    oRa.push_back(1.0), oDec.push_back(-30.0), primary.push_back(true);
    // A non-primary (deblended parent) on top of truth 7 must not count.
    oRa.push_back(tRa[7]), oDec.push_back(tDec[7]), primary.push_back(false);
    Table objects = objectTable(oRa, oDec, primary);

    Match m = matchCatalogs(oRa, oDec, tRa, tDec, arcseconds(1.0));
    int matchedTruth = 0;
    for (auto a : m.aForB) matchedTruth += a >= 0;
    EXPECT_EQ(matchedTruth, 90);
    EXPECT_EQ(m.bForA[oRa.size() - 2], -1);  // the spurious object

    SeamStats seam = duplicatePrimaries(objects, arcseconds(0.2));
    EXPECT_EQ(seam.nPrimary, 92);
    EXPECT_EQ(seam.nDuplicatePairs, 1);

    std::vector<double> sn(tRa.size(), 20.0);
    sn[20] = 5.0;  // below threshold: missing but not counted
    UniquenessStats u = truthUniqueness(tRa, tDec, sn, objects, arcseconds(1.0), 10.0);
    EXPECT_EQ(u.nTruth, 99);
    EXPECT_EQ(u.nMissing, 9);  // 10 removed, one of them (20) below threshold
    EXPECT_EQ(u.nMultiple, 1);
    EXPECT_EQ(u.nExactlyOnce, 89);
}

// Close truth pairs: a primary counts for the truth object nearest to it.
TEST(Metrics, UniquenessAssignsEachPrimaryToItsNearestTruthObject) {
    const double d = 2.0, a = 1.0 / 3600;  // Dec 2 deg; a = 1" in Dec
    const double ca = a / std::cos(d * M_PI / 180);
    // Pair A 0.6" apart (both measured, 0.05" off each); pair B 1.2" apart (one primary
    // 0.5" from the brighter, 0.7" from the fainter: both within 1"); a lone object C measured
    // twice 0.3" apart (a split object).
    const std::vector<double> tRa{10, 10 + 0.6 * ca, 20, 20 + 1.2 * ca, 30}, tDec{d, d, d, d, d};
    const std::vector<double> oRa{10, 10 + 0.6 * ca, 20 + 0.5 * ca, 30, 30 + 0.3 * ca},
        oDec{d + 0.05 * a, d - 0.05 * a, d, d, d};
    Table objects = objectTable(oRa, oDec, std::vector<bool>(oRa.size(), true));
    const std::vector<double> sn(tRa.size(), 20.0);
    UniquenessStats u = truthUniqueness(tRa, tDec, sn, objects, arcseconds(1.0), 10.0);
    EXPECT_EQ(u.nTruth, 5);
    EXPECT_EQ(u.nExactlyOnce, 3);  // both of pair A, the brighter of pair B
    EXPECT_EQ(u.nMissing, 1);      // the fainter of pair B: its only neighbour is the other's
    EXPECT_EQ(u.nMultiple, 1);     // C
}

TEST(Metrics, InformationFloor) {
    // Equal σ: the median of |N(0, σ²)|, σ Φ⁻¹(3/4) = 0.67449 σ.
    EXPECT_NEAR(informationFloor({0.1, 0.1, 0.1}), 0.067449, 1e-6);
    // Mixed σ: the pooled fraction below the floor is one half.
    const std::vector<double> s{0.02, 0.05, 0.2, 0.5};
    const double m = informationFloor(s);
    double below = 0;
    for (double x : s) below += std::erf(m / (x * std::sqrt(2.0)));
    EXPECT_NEAR(below / s.size(), 0.5, 1e-12);
    EXPECT_GT(m, 0.6745 * 0.05);  // between the 2nd and 3rd members' own medians
    EXPECT_LT(m, 0.6745 * 0.2);
    // Non-finite and non-positive σ are left out; none left: NaN.
    EXPECT_DOUBLE_EQ(informationFloor({0.1, NAN, 0.0, INFINITY, 0.1, 0.1}),
                     informationFloor({0.1, 0.1, 0.1}));
    EXPECT_TRUE(std::isnan(informationFloor({})));
}

TEST(Metrics, InformationFloorWithBias) {
    // ε ~ N(1, 1): the median of a folded normal, 1.0505 (2e7 draws with numpy gave 1.05046; the
    // sampling error of that median is ~3e-4).
    EXPECT_NEAR(informationFloor({1.0}, {1.0}), 1.0505, 5e-4);
    // No noise to speak of: the median of |b_i|.
    EXPECT_NEAR(informationFloor({1e-9, 1e-9, 1e-9}, {0.3, -0.1, 0.2}), 0.2, 1e-6);
    // The sign of a bias does not matter; zero biases are the unbiased floor.
    EXPECT_DOUBLE_EQ(informationFloor({0.05, 0.1}, {0.04, -0.02}),
                     informationFloor({0.05, 0.1}, {-0.04, 0.02}));
    EXPECT_DOUBLE_EQ(informationFloor({0.05, 0.1}, {0.0, 0.0}), informationFloor({0.05, 0.1}));
    // A bias only raises the floor.
    EXPECT_GT(informationFloor({0.05, 0.1}, {0.03, 0.0}), informationFloor({0.05, 0.1}));
    // Members with a non-finite bias are left out with their σ; sizes must agree.
    EXPECT_DOUBLE_EQ(informationFloor({0.1, 0.2}, {0.0, NAN}), informationFloor({0.1}));
    EXPECT_THROW(informationFloor({0.1, 0.2}, {0.0}), drp::Error);
}

TEST(Metrics, SizeFittedFluxErrorFactorIsTheFisherMatrixOfAPixelisedGaussian) {
    // Flux and size of a round Gaussian (σ² = σ_g² + σ_PSF²) on pixels in white noise: the flux
    // error with the size fitted, relative to it with the size known, from the 2×2 Fisher matrix
    // by finite differences.
    for (double sg : {0.5, 1.5, 3.0}) {
        auto model = [](double f, double sigmaG, int x, int y) {
            const double s2 = sigmaG * sigmaG + 4.0;  // σ_PSF = 2 px
            return f / (2 * M_PI * s2) * std::exp(-(x * x + y * y) / (2 * s2));
        };
        double iff = 0, ifs = 0, iss = 0;
        const double h = 1e-5;
        for (int y = -40; y <= 40; ++y)
            for (int x = -40; x <= 40; ++x) {
                const double df = (model(1 + h, sg, x, y) - model(1 - h, sg, x, y)) / (2 * h);
                const double ds = (model(1, sg + h, x, y) - model(1, sg - h, x, y)) / (2 * h);
                iff += df * df;
                ifs += df * ds;
                iss += ds * ds;
            }
        const double varFitted = iss / (iff * iss - ifs * ifs), varKnown = 1 / iff;
        EXPECT_NEAR(std::sqrt(varFitted / varKnown), kSizeFittedFluxErrorFactor, 1e-5) << sg;
    }
}

TEST(Metrics, BinnedFraction) {
    std::vector<double> mag{20.1, 20.5, 21.2, 21.9, 22.5, 23.0, 30.0, std::nan("")};
    std::vector<bool> matched{true, true, true, false, false, true, true, true};
    auto bins = binnedFraction(mag, matched, 20.0, 23.0, 1.0);
    ASSERT_EQ(bins.size(), 3u);
    EXPECT_EQ(bins[0].n, 2);
    EXPECT_DOUBLE_EQ(bins[0].fraction(), 1.0);
    EXPECT_EQ(bins[1].n, 2);
    EXPECT_DOUBLE_EQ(bins[1].fraction(), 0.5);
    EXPECT_EQ(bins[2].n, 1);  // 23.0 is outside [20, 23)
    EXPECT_DOUBLE_EQ(bins[2].fraction(), 0.0);
}

TEST(Metrics, FluxBiasAndScatterOfGaussianNoise) {
    // measured = true * (1 + 0.01 + 0.05 N(0,1)): bias 0.01, scatter 0.05. With 20000 samples the
    // median's standard error is 1.25 * 0.05 / sqrt(20000) = 4.4e-4 and the robust sigma's is
    // about 1.65 * 0.05 / sqrt(2 * 20000) = 4.1e-4: 2e-3 is ~5 sigma.
    std::mt19937 rng(3);
    std::normal_distribution<double> g(0, 1);
    std::vector<double> meas, truth;
    for (int i = 0; i < 20000; ++i) {
        double t = 1000.0 * (1 + i % 7);
        truth.push_back(t), meas.push_back(t * (1.01 + 0.05 * g(rng)));
    }
    // Outliers (blends) barely move robust statistics.
    for (int i = 0; i < 200; ++i) truth.push_back(1000), meas.push_back(3000);
    FluxStats s = fluxRatioStats(meas, truth);
    EXPECT_EQ(s.n, 20200);
    EXPECT_NEAR(s.bias, 0.01, 2e-3);
    EXPECT_NEAR(s.scatter, 0.05, 2e-3);
    EXPECT_DOUBLE_EQ(median({3, 1, 2, 4}), 2.5);
    EXPECT_DOUBLE_EQ(robustSigma({1, 1, 1, 1}), 0.0);
}

TEST(Metrics, AstrometricResiduals) {
    // Offsets of exactly 3 mas north and 4 mas east (in RA cos dec) at dec 60: 5 mas each.
    std::vector<double> ra1, dec1, ra2, dec2;
    for (int i = 0; i < 10; ++i) {
        ra2.push_back(0.001 * i), dec2.push_back(60.0);
        ra1.push_back(0.001 * i + 0.004 / 3600 / std::cos(60.0 * M_PI / 180)),
            dec1.push_back(60.0 + 0.003 / 3600);
    }
    AstrometryStats s = astrometricResiduals(ra1, dec1, ra2, dec2);
    EXPECT_EQ(s.n, 10);
    EXPECT_NEAR(s.rmsMas, 5.0, 1e-3);  // the dec difference between endpoints changes cos by 1e-8
    EXPECT_NEAR(s.medianDRaMas, 4.0, 1e-3);
    EXPECT_NEAR(s.medianDDecMas, 3.0, 1e-6);
}

TEST(Metrics, ZeroPointResiduals) {
    Table measured, truth;
    auto& mv = measured.addColumn<std::int64_t>("visit");
    auto& md = measured.addColumn<std::int64_t>("detector");
    auto& mz = measured.addColumn<double>("zero_point");
    auto& mc = measured.addColumn<Bool>("calibrated");
    auto& tv = truth.addColumn<std::int32_t>("visit");
    auto& td = truth.addColumn<std::int32_t>("detector");
    auto& tz = truth.addColumn<double>("zero_point");
    // Offsets +2, -2 mmag around a global +10 mmag; one uncalibrated (ignored -> missing).
    const double offs[] = {0.012, 0.008, 0.012, 0.008};
    for (int v = 0; v < 4; ++v) {
        tv.push_back(v), td.push_back(1), tz.push_back(27.0 + 0.1 * v);
        mv.push_back(v), md.push_back(1), mz.push_back(27.0 + 0.1 * v + offs[v]),
            mc.push_back(true);
    }
    tv.push_back(9), td.push_back(1), tz.push_back(27.0);
    mv.push_back(9), md.push_back(1), mz.push_back(99.0), mc.push_back(false);
    ZeroPointStats s = zeroPointResiduals(measured, truth);
    EXPECT_EQ(s.n, 4);
    EXPECT_EQ(s.nMissing, 1);
    EXPECT_NEAR(s.meanOffsetMmag, 10.0, 1e-9);
    EXPECT_NEAR(s.rmsAboutMeanMmag, 2.0, 1e-9);
    EXPECT_NEAR(s.rmsMmag, std::sqrt(104.0), 1e-9);
}

TEST(Metrics, Repeatability) {
    // Star 1: mags 20 +- 0.01 -> sample sd 0.01 (n-1): values 19.99, 20.00, 20.01.
    // Star 2: 0.02 sd; star 3: only 2 measurements, ignored. Median of {10, 20} mmag = 15.
    std::vector<std::int64_t> id{1, 1, 1, 2, 2, 2, 3, 3};
    std::vector<double> mag{19.99, 20.0, 20.01, 21.98, 22.0, 22.02, 18, 19};
    RepeatabilityStats s = photometricRepeatability(id, mag, 3);
    EXPECT_EQ(s.nStars, 2);
    EXPECT_NEAR(s.pa1Mmag, 15.0, 1e-6);
    EXPECT_NEAR(njyToAbMag(3631e9), 0.0, 1e-3);
    EXPECT_TRUE(std::isnan(njyToAbMag(-1)));
}

TEST(Metrics, RegularizedGammaKnownValues) {
    // P(1, x) = 1 - exp(-x); P(1/2, x) = erf(sqrt(x)): both branches (x < a + 1 and beyond).
    for (double x : {0.01, 0.3, 1.0, 2.5, 7.0, 30.0}) {
        EXPECT_NEAR(regularizedGammaP(1.0, x), 1 - std::exp(-x), 1e-12) << x;
        EXPECT_NEAR(regularizedGammaP(0.5, x), std::erf(std::sqrt(x)), 1e-12) << x;
    }
    // Median of chi2 with 1 dof is 0.45494 (tables); P(5, 5) = 0.559507 (Poisson sum).
    EXPECT_NEAR(regularizedGammaP(0.5, 0.5 * 0.454936), 0.5, 1e-5);
    EXPECT_NEAR(regularizedGammaP(5.0, 5.0), 0.5595067, 1e-6);
    EXPECT_EQ(regularizedGammaP(3.0, 0.0), 0.0);
}

namespace {
// 2000 stars with 2..6 visits, per-visit errors 5..15 mmag (quoted honestly) and an extra
// scatter `intrinsic` [mag] the errors do not include; a fraction `variable` of the stars
// vary by 0.1 mag rms (what the median must ignore).
RepeatabilityStats simulatedRepeatability(double intrinsic, double variable, unsigned seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<double> g(0, 1);
    std::uniform_real_distribution<double> u(0, 1);
    std::vector<std::int64_t> id;
    std::vector<double> mag, err;
    for (int s = 0; s < 2000; ++s) {
        const int n = 2 + s % 5;
        const bool var = u(rng) < variable;
        for (int k = 0; k < n; ++k) {
            const double e = 0.005 + 0.010 * u(rng);
            id.push_back(s);
            mag.push_back(20 + e * g(rng) + intrinsic * g(rng) + (var ? 0.1 * g(rng) : 0));
            err.push_back(e);
        }
    }
    return photometricRepeatability(id, mag, err, 2);
}
}  // namespace

TEST(Metrics, IntrinsicRepeatabilityRecoversTheExtraScatter) {
    // Statistical error of the estimate: the per-star chi2 of ~3 dof scatter by sqrt(2/3) of
    // their mean; over 2000 stars (median: x1.25) that is ~0.3 mmag on s = 4 mmag against
    // ~10 mmag errors. Tolerance 1 mmag (~3 sigma).
    RepeatabilityStats s = simulatedRepeatability(0.004, 0.0, 11);
    EXPECT_EQ(s.nStars, 2000);
    EXPECT_NEAR(s.intrinsicMmag, 4.0, 1.0);
    // The raw PA1 contains the photon noise: about sqrt(10^2 + 4^2) ~ 10.8 mmag (the median of
    // small-sample standard deviations runs low by ~10%).
    EXPECT_GT(s.pa1Mmag, 8.0);
    EXPECT_NEAR(s.noiseMmag, 10.4, 1.0);  // RMS of errors uniform on 5..15 mmag: 10.4
    // No extra scatter: estimate near 0.
    EXPECT_LT(simulatedRepeatability(0.0, 0.0, 12).intrinsicMmag, 1.0);
    // 5% variable stars (0.1 mag) barely move the median-based estimate.
    EXPECT_NEAR(simulatedRepeatability(0.004, 0.05, 13).intrinsicMmag, 4.0, 1.0);
}
