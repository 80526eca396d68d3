#include "drp/calib/photometry.h"

#include <gtest/gtest.h>

#include <random>

#include "characterize_test_support.h"
#include "drp/calib/detection.h"

using namespace drp;
using namespace drp::calib;
using namespace drp::calib::testing;

TEST(Aperture, ExactOverlapSumsToCircleArea) {
    for (double r : {0.3, 1.0, 2.7, 6.0, 12.0}) {
        double cx = 0.37, cy = -0.21, s = 0;
        for (int y = -15; y <= 15; ++y)
            for (int x = -15; x <= 15; ++x)
                s += circleRectangleOverlap(cx, cy, r, x - 0.5, x + 0.5, y - 0.5, y + 0.5);
        EXPECT_NEAR(s, M_PI * r * r, 1e-9 * r * r) << r;
    }
    // Quarter disc: circle centred on a pixel corner, square of side ≥ r.
    EXPECT_NEAR(circleRectangleOverlap(0, 0, 2, 0, 5, 0, 5), M_PI, 1e-12);
    // Small circle fully inside.
    EXPECT_NEAR(circleRectangleOverlap(0.1, 0.1, 0.3, -0.5, 0.5, -0.5, 0.5), M_PI * 0.09, 1e-12);
    // Half-plane cut at x = 0 of a unit circle.
    EXPECT_NEAR(circleRectangleOverlap(0, 0, 1, 0, 3, -3, 3), M_PI / 2, 1e-12);
}

TEST(Aperture, FluxPullsAgainstTruth) {
    PsfTruth psf;
    psf.sigma0 = 1.8;
    SkyTruth sky;
    std::vector<double> pulls, rel;
    for (std::uint64_t seed = 61; seed < 64; ++seed) {
        SyntheticImage im = makeImage(psf, sky, 120, 2e3, 1e5, seed, 40, 25);
        MaskedImage mi = im.exposure.maskedImage();
        for (std::size_t k = 0; k < mi.image().pixels().size(); ++k)
            mi.image().pixels()[k] -= im.sky.pixels()[k];
        for (const auto& s : im.stars) {
            // 12 px = 6.7σ: the Gaussian's light outside is exp(−r²/2σ²) ~ 1e-10.
            ApertureFlux a = measureApertureFlux(mi, {s.x, s.y}, 12.0, 0);
            ASSERT_FALSE(a.truncated);
            EXPECT_NEAR(a.area, M_PI * 144, 1e-6);
            pulls.push_back((a.flux - s.flux) / a.fluxErr);
        }
    }
    double m, sd;
    meanStd(pulls, m, sd);
    EXPECT_NEAR(sd, 1.0, 0.15);
    EXPECT_NEAR(m, 0.0, 0.15);
}

namespace {

// A Psf that is a fixed pixel-integrated circular Gaussian, for testing PSF photometry alone.
class GaussianPsf final : public Psf {
  public:
    explicit GaussianPsf(double sigma) : _sigma(sigma) {}
    Image<double> computeKernelImage(Point2D) const override { return gaussianKernel(_sigma, 10); }
    Image<double> computeImage(Point2D p) const override {
        Point2I c = p.nearestPixel();
        Image<double> out(Box2I({c.x - 10, c.y - 10}, {21, 21}));
        double s2 = std::sqrt(2.0) * _sigma, sum = 0;
        for (int j = 0; j < 21; ++j)
            for (int i = 0; i < 21; ++i) {
                double x = c.x - 10 + i - p.x, y = c.y - 10 + j - p.y;
                double gx = 0.5 * (std::erf((x + 0.5) / s2) - std::erf((x - 0.5) / s2));
                double gy = 0.5 * (std::erf((y + 0.5) / s2) - std::erf((y - 0.5) / s2));
                sum += out(i, j) = gx * gy;
            }
        for (auto& v : out.pixels()) v /= sum;
        return out;
    }
    int kernelRadius() const override { return 10; }
    std::string typeName() const override { return "test_gaussian"; }

  private:
    double _sigma;
};

}  // namespace

TEST(PsfPhotometry, FluxPullsWithTruePsfAndApertureCorrection) {
    PsfTruth psf;
    psf.sigma0 = 1.7;
    SkyTruth sky;
    GaussianPsf model(psf.sigma0);
    std::vector<double> pulls;
    std::vector<Point2D> pos;
    std::vector<double> ap, pf;
    for (std::uint64_t seed = 71; seed < 74; ++seed) {
        SyntheticImage im = makeImage(psf, sky, 120, 1e3, 1e5, seed, 40, 25);
        MaskedImage mi = im.exposure.maskedImage();
        for (std::size_t k = 0; k < mi.image().pixels().size(); ++k)
            mi.image().pixels()[k] -= im.sky.pixels()[k];
        for (const auto& s : im.stars) {
            PsfFlux p = measurePsfFlux(mi, model, {s.x, s.y}, 0);
            ASSERT_FALSE(p.failed);
            // Effective area of a Gaussian PSF: 4πσ² (plus the pixel response).
            EXPECT_NEAR(p.effectiveArea, 4 * M_PI * (1.7 * 1.7 + 1.0 / 12), 0.5);
            pulls.push_back((p.flux - s.flux) / p.fluxErr);
            if (s.flux < 3e4) continue;  // aperture-correction stars are bright (S/N > 60 here)
            pos.push_back({s.x, s.y});
            pf.push_back(p.flux);
            ap.push_back(measureApertureFlux(mi, {s.x, s.y}, 12.0, 0).flux);
        }
    }
    double m, sd;
    meanStd(pulls, m, sd);
    EXPECT_NEAR(sd, 1.0, 0.15);
    EXPECT_NEAR(m, 0.0, 0.15);
    // Both fluxes are total fluxes here: the aperture correction must be 1 within its noise
    // (~0.1% for ~170 stars whose 12-px aperture fluxes have 0.5–1.6% errors).
    ApertureCorrection corr = fitApertureCorrection(Box2I({0, 0}, {512, 512}), pos, ap, pf, {});
    EXPECT_TRUE(corr.valid());
    EXPECT_NEAR(corr.evaluate({100, 100}), 1.0, 3e-3);
    // A known spatial trend (1 + 2% across x) is recovered at order 1.
    for (std::size_t k = 0; k < ap.size(); ++k) ap[k] = pf[k] * (1.0 + 0.02 * pos[k].x / 512);
    ApertureCorrectionConfig c1;
    c1.order = 1;
    ApertureCorrection lin = fitApertureCorrection(Box2I({0, 0}, {512, 512}), pos, ap, pf, c1);
    EXPECT_NEAR(lin.evaluate({400, 200}), 1.0 + 0.02 * 400 / 512, 1e-9);
}

// The weighted fit: stars whose ratio errors span 0.1% .. 5% (a bright star's 17-px aperture is
// precise, a faint one's is sky-noise dominated). The true correction is 0.985. With inverse-
// variance weights the estimate's error is σ_w = (Σ 1/σ²)^-1/2 (≈ 0.07% here); the unweighted
// mean's is ~1%/√n·(rms σ) ≈ 0.5%. Over 200 independent draws the weighted estimate's scatter
// must be within 25% of σ_w (200 draws: the scatter's own error is 5%) and ≥ 3× smaller than the
// unweighted one's; clipping must not bias it (|mean − 0.985| < 3 σ_w / √200 · 2).
TEST(ApertureCorrectionFit, InverseVarianceWeightsFollowTheRatioErrors) {
    const double truth = 0.985;
    const Box2I box({0, 0}, {512, 512});
    std::mt19937_64 rng(20261204);
    std::normal_distribution<double> g(0.0, 1.0);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    std::vector<double> wEst, uEst;
    double sigmaW = 0;
    for (int draw = 0; draw < 200; ++draw) {
        std::vector<Point2D> pos;
        std::vector<double> ap, apErr, pf, pfErr;
        double sumW = 0;
        for (int k = 0; k < 20; ++k) {
            // Ratio error from 0.1% to 5%, log-uniform; the PSF flux is exact (error 0).
            const double rel = 0.001 * std::pow(50.0, u(rng));
            const double psfFlux = 1e4 / (rel * rel);
            pos.push_back({u(rng) * 511, u(rng) * 511});
            pf.push_back(psfFlux);
            pfErr.push_back(0.0);
            ap.push_back(psfFlux * truth * (1 + rel * g(rng)));
            apErr.push_back(psfFlux * truth * rel);
            sumW += 1 / std::pow(truth * rel, 2);
        }
        sigmaW += std::sqrt(1 / sumW) / 200;
        wEst.push_back(fitApertureCorrection(box, pos, ap, apErr, pf, pfErr, {}).evaluate({0, 0}));
        uEst.push_back(fitApertureCorrection(box, pos, ap, pf, {}).evaluate({0, 0}));
    }
    double mw, sw, mu, su;
    meanStd(wEst, mw, sw);
    meanStd(uEst, mu, su);
    EXPECT_NEAR(sw / sigmaW, 1.0, 0.25) << "weighted scatter " << sw << " expected " << sigmaW;
    EXPECT_GT(su / sw, 3.0) << "unweighted " << su << " weighted " << sw;
    EXPECT_NEAR(mw, truth, 6 * sigmaW / std::sqrt(200.0));
    // Mismatched error vectors are rejected.
    EXPECT_THROW(fitApertureCorrection(box, {{1, 1}}, {1.0}, {0.1, 0.1}, {1.0}, {0.1}, {}), Error);
}
