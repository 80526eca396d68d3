#include "drp/calib/characterize.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <iostream>
#include <variant>

#include "characterize_test_support.h"

using namespace drp;
using namespace drp::calib;
using namespace drp::calib::testing;

namespace {

struct Scene {
    PsfTruth psf;
    SkyTruth sky;
    SyntheticImage im;
    std::vector<Point2I> cosmicRays;
};

// 1024² visit: PSF σ 1.5–1.9 px with ellipticity gradients, sky 300 e/px with a gradient,
// read noise 5 e, 450 stars (flux 300–3e6 e: S/N ~ 5 to ~1500), 80 cosmic rays.
Scene makeScene(std::uint64_t seed, int nStars = 450) {
    Scene s;
    s.psf.width = s.psf.height = 1024;
    s.psf.sigma0 = 1.7;
    s.psf.sigmaGradX = 0.25;
    s.psf.sigmaGradY = -0.15;
    s.psf.e1GradX = 0.1;
    s.psf.e2_0 = 0.02;
    s.psf.e2GradY = 0.08;
    s.sky.level = 300;
    s.sky.gradX = 0.05;
    s.sky.gradY = 0.03;
    s.im = makeImage(s.psf, s.sky, nStars, 300, 3e6, seed, 45, 30);
    std::mt19937_64 rng(seed + 1000);
    std::uniform_real_distribution<double> u(0, 1);
    while (s.cosmicRays.size() < 80) {
        Point2I p{20 + int(u(rng) * 980), 20 + int(u(rng) * 980)};
        bool nearStar = false;
        for (const auto& st : s.im.stars) nearStar |= std::hypot(st.x - p.x, st.y - p.y) < 15;
        if (nearStar) continue;
        int len = 1 + int(u(rng) * 4);
        double amp = 400 * std::pow(20.0, u(rng));
        for (int k = 0; k < len; ++k) s.im.exposure.image()(p.x + k, p.y + (k % 2)) += float(amp);
        s.cosmicRays.push_back(p);
    }
    return s;
}

// Optimal PSF S/N of a truth star in the sky-limited approximation: F / √(4π σ² (sky + rn²)).
double approxSnr(const Scene& s, const TruthStar& t) {
    double ixx, iyy, ixy;
    s.psf.covariance(t.x, t.y, ixx, iyy, ixy);
    double area = 4 * M_PI * std::sqrt(ixx * iyy - ixy * ixy);
    return t.flux / std::sqrt(area * (s.sky.at(t.x, t.y, 1024, 1024) + 25) + t.flux);
}

}  // namespace

TEST(Characterize, SyntheticVisitAgainstTruth) {
    Scene s = makeScene(81);
    CharacterizeConfig cfg;
    CharacterizeResult r = characterize(s.im.exposure, cfg);
    const Table& t = r.sources;
    const auto& x = t.column<double>("x");
    const auto& y = t.column<double>("y");
    const auto& xe = t.column<double>("x_err");
    const auto& ye = t.column<double>("y_err");
    const auto& pf = t.column<double>("psf_flux");
    const auto& pfe = t.column<double>("psf_flux_err");
    const auto& ap = t.column<double>("ap_flux");
    const auto& flags = t.column<std::int64_t>("flags");
    const CharacterizeSummary& sm = r.summary;
    std::cout << "sources " << sm.numSources << " footprints " << sm.numFootprints
              << " psf cand/used/res " << sm.numPsfCandidates << "/" << sm.numPsfUsed << "/"
              << sm.numPsfReserved << " CR " << sm.numCosmicRays << " fwhm " << sm.psfFwhm
              << " sigma0 " << sm.initialPsfSigma << " apcorr " << sm.apCorr << " +- "
              << sm.apCorrRms << " (" << sm.apCorrStars << ") reserved dT/T "
              << sm.reserved.meanDeltaTOverT << " de1 " << sm.reserved.meanDeltaE1 << " de2 "
              << sm.reserved.meanDeltaE2 << " (rms dT/T " << sm.reserved.rmsDeltaTOverT
              << ", rms de " << sm.reserved.rmsDeltaE << ", n " << sm.reserved.numStars << ")\n";

    // Background vs truth (after re-estimation with sources masked).
    {
        ImageF b = r.background.image();
        double sum2 = 0;
        for (int j = 0; j < 1024; ++j)
            for (int i = 0; i < 1024; ++i) sum2 += std::pow(b(i, j) - s.im.sky(i, j), 2);
        double rms = std::sqrt(sum2 / (1024.0 * 1024.0));
        EXPECT_LT(rms, 0.05 * std::sqrt(325.0)) << "background residual rms " << rms;
    }
    // Match truth stars to sources (nearest within 1.5 px).
    std::vector<double> pullX, pullY, pullF, apRatio;
    int bright = 0, found = 0;
    for (const auto& st : s.im.stars) {
        double snr = approxSnr(s, st);
        std::size_t best = t.numRows();
        double bd = 1.5;
        for (std::size_t k = 0; k < t.numRows(); ++k) {
            double d = std::hypot(x[k] - st.x, y[k] - st.y);
            if (d < bd) {
                bd = d;
                best = k;
            }
        }
        if (snr >= 8) {
            ++bright;
            found += best < t.numRows();
        }
        if (best == t.numRows() ||
            flags[best] != (flags[best] & (kFlagPsfCandidate | kFlagPsfUsed | kFlagPsfReserved |
                                           kFlagApCorrUsed)))
            continue;
        if (snr > 10 && snr < 200) {  // PSF-model and aperture-correction errors ~1e-3 matter above
            pullX.push_back((x[best] - st.x) / xe[best]);
            pullY.push_back((y[best] - st.y) / ye[best]);
            pullF.push_back((pf[best] - st.flux) / pfe[best]);
        }
        if (snr > 100) apRatio.push_back(ap[best] / st.flux);
    }
    // Completeness: S/N ≥ 8 stars (approximate S/N) are all found but a few per cent.
    EXPECT_GE(double(found) / bright, 0.97) << found << "/" << bright;
    // No cosmic ray became a source.
    for (Point2I p : s.cosmicRays)
        for (std::size_t k = 0; k < t.numRows(); ++k)
            EXPECT_GT(std::hypot(x[k] - p.x, y[k] - p.y), 2.0) << p;
    // No spurious sources: every source is near a star.
    int spurious = 0;
    for (std::size_t k = 0; k < t.numRows(); ++k) {
        bool near = false;
        for (const auto& st : s.im.stars) near |= std::hypot(x[k] - st.x, y[k] - st.y) < 3;
        spurious += !near;
    }
    EXPECT_LE(spurious, 2);
    double m, sd;
    ASSERT_GT(pullF.size(), 100u);
    meanStd(pullX, m, sd);
    std::cout << "centroid x pull " << m << " +- " << sd << " (n=" << pullX.size() << ")\n";
    EXPECT_NEAR(sd, 1.0, 0.15);
    EXPECT_NEAR(m, 0.0, 0.25);  // 3σ of the mean of ~180 pulls
    meanStd(pullY, m, sd);
    std::cout << "centroid y pull " << m << " +- " << sd << "\n";
    EXPECT_NEAR(sd, 1.0, 0.15);
    EXPECT_NEAR(m, 0.0, 0.25);
    meanStd(pullF, m, sd);
    std::cout << "psf flux pull " << m << " +- " << sd << "\n";
    EXPECT_NEAR(sd, 1.0, 0.15);
    EXPECT_NEAR(m, 0.0, 0.25);
    // 12-px aperture vs the true total flux: a Gaussian of σ ≤ 2 px has all its light inside.
    std::sort(apRatio.begin(), apRatio.end());
    ASSERT_GT(apRatio.size(), 50u);
    std::cout << "ap12/truth median " << apRatio[apRatio.size() / 2] << " (n=" << apRatio.size()
              << ")\n";
    EXPECT_NEAR(apRatio[apRatio.size() / 2], 1.0, 0.005);
    // PSF model quality on the ~30 reserved stars (S/N 50–1500): the means must be within the
    // brief's 1e-3 or within 3σ of their own noise (rms/√n, ~5e-4 to 1e-3 here; the 1e-3 goal
    // itself is shown on brighter stars in psf_model_test).
    EXPECT_GE(sm.numPsfReserved, 15);
    const double n = sm.reserved.numStars;
    EXPECT_LE(std::abs(sm.reserved.meanDeltaTOverT),
              std::max(1e-3, 3 * sm.reserved.rmsDeltaTOverT / std::sqrt(n)));
    const double eTol = std::max(1e-3, 3 * sm.reserved.rmsDeltaE / std::sqrt(2 * n));
    EXPECT_LE(std::abs(sm.reserved.meanDeltaE1), eTol);
    EXPECT_LE(std::abs(sm.reserved.meanDeltaE2), eTol);
    EXPECT_NEAR(sm.apCorr, 1.0, 0.005);
    EXPECT_EQ(r.exposure.psf(), std::static_pointer_cast<const Psf>(r.psf));
}

TEST(Characterize, DeterministicAndErrors) {
    Scene s = makeScene(82, 200);
    CharacterizeConfig cfg;
    CharacterizeResult a = characterize(s.im.exposure, cfg);
    CharacterizeResult b = characterize(s.im.exposure, cfg);
    // Identical bit for bit (NaN columns compare equal as bits, not as values).
    ASSERT_EQ(a.sources.columns().size(), b.sources.columns().size());
    for (std::size_t c = 0; c < a.sources.columns().size(); ++c) {
        const Column& ca = a.sources.columns()[c];
        const Column& cb = b.sources.columns()[c];
        ASSERT_EQ(ca.size(), cb.size()) << ca.name;
        if (auto* va = std::get_if<std::vector<double>>(&ca.data)) {
            const auto& vb = std::get<std::vector<double>>(cb.data);
            EXPECT_EQ(0, std::memcmp(va->data(), vb.data(), va->size() * sizeof(double)))
                << ca.name;
        } else {
            EXPECT_TRUE(ca.data == cb.data) << ca.name;
        }
    }
    EXPECT_GT(a.summary.numPsfReserved, 0);
    // All NaN: bad_input.
    Exposure nan = s.im.exposure;
    for (auto& v : nan.image().pixels()) v = NAN;
    try {
        characterize(nan, cfg);
        FAIL() << "expected bad_input";
    } catch (const Error& e) {
        EXPECT_EQ(e.errorClass(), "bad_input");
    }
    // Only faint stars: no PSF stars → psf_failed.
    Scene faint;
    faint.psf.width = faint.psf.height = 512;
    faint.im = makeImage(faint.psf, faint.sky, 40, 2000, 4000, 83);
    cfg.initialPsfFwhm = 4.0;
    try {
        characterize(faint.im.exposure, cfg);
        FAIL() << "expected psf_failed";
    } catch (const Error& e) {
        EXPECT_EQ(e.errorClass(), "psf_failed") << e.what();
    }
}

// A detector where no reserved star could be measured (or no aperture-correction star was
// found) has NaN statistics; FITS header values cannot be NaN, so those keys are left out
// instead of failing the whole unit when the calexp is written (seen on tiny seed 7,
// characterize visit=1004 det=1: "metadata key 'PSFRES_DT' is not finite").
TEST(Characterize, SummaryMetadataLeavesOutStatisticsWithNothingToAverage) {
    CharacterizeSummary s;
    s.skyLevel = 300;
    s.skyRms = 18;
    s.psfFwhm = 4.1;
    s.depth5Sigma = 1200;
    s.apCorr = 0.98;
    s.apCorrRms = NAN;
    s.reserved = PsfShapeResiduals{};  // numStars 0: every mean is NaN
    const PropertyList md = s.toMetadata();
    EXPECT_TRUE(md.find("APCORR"));
    for (const char* key : {"APCORR_RMS", "PSFRES_DT", "PSFRES_DE1", "PSFRES_DE2"})
        EXPECT_FALSE(md.find(key)) << key;
    for (const auto& e : md.entries()) {
        if (const double* v = std::get_if<double>(&e.value)) {
            EXPECT_TRUE(std::isfinite(*v)) << e.key;
        }
    }
}
