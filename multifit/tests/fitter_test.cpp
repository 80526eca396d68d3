// Multi-epoch fitting against truth rendered independently (truth_render.h: exact Sérsic ⊗
// Moffat by FFT): PSF fluxes of stars, exp/dev model fluxes and sizes of galaxies, honest
// errors, χ²/dof, and failure handling. Deterministic seeds, so the statistics are fixed numbers
// that either meet the thresholds or not.
#include <gtest/gtest.h>

#include <random>

#include "drp/multifit/fitter.h"
#include "test_scene.h"

using namespace drp;
using namespace drp::multifit;
using namespace drp::multifit::testing;

TEST(PsfMixture, FitsMoffat) {
    MoffatPsf psf(MoffatShape{4.5, 3.5, 0.04, -0.03});
    ImageD k = psf.computeKernelImage({0, 0});
    PsfMixtureFit fit = fitPsfMixture(k, 4);
    // A 4-Gaussian mixture reproduces a β=3.5 Moffat to ~1% of the peak (the wings fall as
    // r^-7, which no finite mixture follows exactly); the flux is conserved to 2e-3.
    EXPECT_LT(fit.residualRms, 0.01);
    double sum = 0;
    for (double v : k.pixels()) sum += v;
    EXPECT_NEAR(fit.mixture.totalAmplitude(), sum, 2e-3);
    // Second moments within 3%: the mixture may not reproduce the extreme wings.
    Quadrupole qk = measureMoments(k);
    Eigen::Matrix2d c = Eigen::Matrix2d::Zero();
    for (auto& g : fit.mixture.components())
        c += g.amplitude * (g.cov + g.mean * g.mean.transpose());
    c /= fit.mixture.totalAmplitude();
    EXPECT_NEAR(c(0, 0) / qk.ixx, 1.0, 0.03);
    EXPECT_NEAR(c(1, 1) / qk.iyy, 1.0, 0.03);
}

TEST(Multifit, AnalyticDerivativesMatchFiniteDifferences) {
    std::mt19937_64 rng(3);
    TrueGalaxy g;
    Scene sc = makeScene(g, {1.0}, 1, 1.0, rng, 31);
    Epoch& ep = sc.epochs[0];
    for (ModelKind kind : {ModelKind::Point, ModelKind::Exponential, ModelKind::DeVaucouleurs}) {
        Eigen::VectorXd theta(kind == ModelKind::Point ? 2 : 5);
        theta(0) = 0.13;
        theta(1) = -0.07;
        if (kind != ModelKind::Point) theta.tail(3) << 0.3, -0.2, std::log(0.6);
        // Large nSigma so that the cut-off does not create discontinuities in the differences.
        Template t = renderTemplate(ep, kind, theta, 20.0);
        for (int k = 0; k < theta.size(); ++k) {
            const double h = 1e-5;
            Eigen::VectorXd tp = theta, tm = theta;
            tp(k) += h;
            tm(k) -= h;
            ImageD a = renderTemplate(ep, kind, tp, 20.0).t,
                   b = renderTemplate(ep, kind, tm, 20.0).t;
            double maxErr = 0, maxVal = 0;
            for (std::size_t i = 0; i < a.pixels().size(); ++i) {
                double fd = (a.data()[i] - b.data()[i]) / (2 * h);
                maxErr = std::max(maxErr, std::abs(fd - t.derivatives[k].data()[i]));
                maxVal = std::max(maxVal, std::abs(fd));
            }
            // Central differences are accurate to O(h²) ≈ 1e-10 relative; allow 1e-6.
            EXPECT_LT(maxErr, 1e-6 * maxVal) << modelName(kind) << " parameter " << k;
        }
    }
}

TEST(Multifit, StarsPsfFluxUnbiasedWithHonestErrors) {
    std::mt19937_64 rng(20261125);
    std::uniform_real_distribution<double> usnr(20, 300), usub(-0.3, 0.3);
    std::vector<double> frac, pull, posPull;
    int nEpochsUsed = 0;
    const int nStars = 300;
    const double skyVar = 100.0;
    for (int s = 0; s < nStars; ++s) {
        TrueGalaxy star;
        star.n = 0;
        star.u = usub(rng) * 0.2;
        star.v = usub(rng) * 0.2;
        // Flux for the target S/N over 3 epochs of ~4.5 px FWHM: S/N ≈ F / sqrt(4π σ² skyVar × 3).
        double snr = usnr(rng);
        double f = snr * std::sqrt(4 * M_PI * 4.0 * skyVar / 3.0);
        std::vector<double> flux{f, 0.8 * f};
        Scene sc = makeScene(star, flux, 6, skyVar, rng, 25);
        FitResult init;
        FitResult pos = fitModel(sc.epochs, 2, ModelKind::Point, init);
        ASSERT_TRUE(pos.failure.empty()) << pos.failure;
        FitResult psf = fitPsfFlux(sc.epochs, 2, pos.u, pos.v);
        nEpochsUsed += psf.nEpochs;
        for (int b = 0; b < 2; ++b) {
            frac.push_back(psf.flux(b) / flux[b] - 1);
            pull.push_back((psf.flux(b) - flux[b]) / psf.fluxErr(b));
        }
        posPull.push_back((pos.u - star.u) / pos.uErr);
    }
    EXPECT_EQ(nEpochsUsed, nStars * 6);  // every epoch contributes
    double bias = median(frac), width = robustSigma(pull);
    std::printf("stars: median PSF-flux bias %.5f, pull width %.3f, position pull width %.3f\n",
                bias, width, robustSigma(posPull));
    // Issue thresholds: |bias| ≤ 0.3%, pull width 1.00 ± 0.10. (PSF flux at the fitted centre is
    // biased low by O(σ_pos²/σ_psf²) ~ 1e-4 at these S/N — below the threshold.)
    EXPECT_LE(std::abs(bias), 0.003);
    EXPECT_NEAR(width, 1.0, 0.10);
    EXPECT_NEAR(robustSigma(posPull), 1.0, 0.15);
}

TEST(Multifit, GalaxiesModelFluxSizeAndErrors) {
    std::mt19937_64 rng(42);
    std::uniform_real_distribution<double> ur(0.4, 1.0), ue(-0.35, 0.35), usnr(60, 250),
        usub(-0.1, 0.1);
    const double skyVar = 50.0;
    std::vector<double> frac, pull, rfrac, chi2dof;
    const int nGal =
        std::getenv("DRP_MULTIFIT_NGAL") ? std::atoi(std::getenv("DRP_MULTIFIT_NGAL")) : 60;
    for (int k = 0; k < nGal; ++k) {
        TrueGalaxy g;
        g.n = (k % 2 == 0) ? 1.0 : 4.0;
        g.rEff = ur(rng);
        g.e1 = ue(rng);
        g.e2 = ue(rng);
        g.u = usub(rng);
        g.v = usub(rng);
        double snr = usnr(rng);
        double area = 4 * M_PI * (std::pow(0.8 * 5, 2) / 5.5 + std::pow(g.rEff * 5, 2));
        double f = snr * std::sqrt(area * skyVar / 3.0);
        std::vector<double> flux{f, 1.3 * f};
        Scene sc = makeScene(g, flux, 6, skyVar, rng, 41);
        FitResult init;
        init.u = 0;
        init.v = 0;
        init.rEff = 0.5;
        ModelKind kind = g.n == 1.0 ? ModelKind::Exponential : ModelKind::DeVaucouleurs;
        FitResult fit = fitModel(sc.epochs, 2, kind, init);
        EXPECT_TRUE(fit.failure.empty()) << k << ": " << fit.failure;
        for (int b = 0; b < 2; ++b) {
            frac.push_back(fit.flux(b) / flux[b] - 1);
            pull.push_back((fit.flux(b) - flux[b]) / fit.fluxErr(b));
            if (std::getenv("DRP_MULTIFIT_VERBOSE"))
                std::printf(
                    "gal %d n=%.0f r=%.2f band %d: dflux/f %.4f err/f %.4f pull %.2f chi2/dof "
                    "%.3f\n",
                    k, g.n, g.rEff, b, fit.flux(b) / flux[b] - 1, fit.fluxErr(b) / flux[b],
                    pull.back(), fit.chi2 / fit.dof);
        }
        rfrac.push_back(fit.rEff / g.rEff - 1);
        chi2dof.push_back(fit.chi2 / fit.dof);
    }
    double bias = median(frac), rbias = median(rfrac), width = robustSigma(pull),
           chi = median(chi2dof);
    std::printf(
        "galaxies: median model-flux bias %.4f, r_eff bias %.4f, flux pull width %.3f, median "
        "chi2/dof %.3f\n",
        bias, rbias, width, chi);
    // Issue thresholds: |flux bias| ≤ 1%, |r_eff bias| ≤ 3%, pull width 1 ± 0.15, χ²/dof in
    // [0.9, 1.2]. The truth profiles (truncated at 8 r_e for dev, 5.5 r_e for exp, the survey's
    // convention) extend beyond the 41-px cutouts, which the model recovers because it shares
    // the profile shape and its truncation.
    EXPECT_LE(std::abs(bias), 0.01);
    EXPECT_LE(std::abs(rbias), 0.03);
    EXPECT_NEAR(width, 1.0, 0.15);
    EXPECT_GE(chi, 0.9);
    EXPECT_LE(chi, 1.2);
}

// A resolved profile whose ellipticity ends pinned at the cap (e = 0.98, b/a = 0.1) is
// unconstrained and flagged, like one at the radius limit: here a needle (e = 0.999, axis ratio
// 0.02) that the model can only approach. The moderate ellipticities of the test above are never
// flagged.
TEST(Multifit, EllipticityAtTheCapIsAFailure) {
    std::mt19937_64 rng(11);
    TrueGalaxy g;
    g.n = 1.0;
    g.rEff = 1.2;
    g.e1 = 0.999;
    Scene sc = makeScene(g, {2e5}, 4, 10.0, rng, 41);
    FitResult init;
    init.rEff = 0.5;
    const FitResult fit = fitModel(sc.epochs, 1, ModelKind::Exponential, init);
    EXPECT_NEAR(std::hypot(fit.e1, fit.e2), std::tanh(std::log(10.0)), 1e-3);
    EXPECT_EQ(fit.failure, "ellipticity_at_limit");
}

TEST(Multifit, MaskedEpochsIgnoredAndFailuresFlagged) {
    std::mt19937_64 rng(7);
    TrueGalaxy star;
    star.n = 0;
    Scene sc = makeScene(star, {5000.0}, 4, 10.0, rng, 21);
    // Mask one epoch entirely: it must not count, and the fit must still work.
    sc.epochs[1].inverseVariance.fill(0.0);
    FitResult fit = fitModel(sc.epochs, 1, ModelKind::Point, FitResult{});
    EXPECT_EQ(fit.nEpochs, 3);
    EXPECT_TRUE(fit.failure.empty());
    // A band with no unmasked pixels reports NaN rather than a number.
    for (auto& ep : sc.epochs) ep.inverseVariance.fill(0.0);
    FitResult none = fitPsfFlux(sc.epochs, 1, 0, 0);
    EXPECT_TRUE(std::isnan(none.flux(0)));
    // Pure noise: an extended fit wanders; it must flag, not crash.
    for (auto& ep : sc.epochs) {
        ep.inverseVariance.fill(0.1);
        for (double& v : ep.image.pixels()) v = std::normal_distribution<double>(0, 3)(rng);
    }
    FitResult init;
    init.rEff = 0.5;
    FitResult noise = fitModel(sc.epochs, 1, ModelKind::Exponential, init);
    EXPECT_TRUE(std::isfinite(noise.chi2));
    EXPECT_THROW(fitModel({}, 1, ModelKind::Point, init), Error);
}
