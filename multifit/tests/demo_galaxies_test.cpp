// Model fluxes of demo-survey-like galaxies against the simulator's own truth: bulge (de
// Vaucouleurs) + disk (exponential) galaxies drawn as sim/src/sky_model.cpp draws them, rendered
// by the simulator's renderer (sim/src/render.cpp: truncated Sérsic components ⊗ truncated
// Moffat, exact to rounding), with the truth flux defined as the simulator defines it (the flux
// of the truncated profiles), and measured by fitObject exactly as the release does.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <random>

#include "drp/multifit/object_fit.h"
#include "drp/sim/moffat_psf.h"
#include "drp/sim/render.h"
#include "test_scene.h"

using namespace drp;
using namespace drp::multifit;
using namespace drp::multifit::testing;

namespace {

constexpr double kScale = 0.2;  // arcsec per pixel

struct DemoGalaxy {
    double bt[2];          // bulge fraction per band
    double diskR, bulgeR;  // arcsec
    double diskE1, diskE2, bulgeE1, bulgeE2;
    double flux[2];  // nJy, truncated profiles
    double u, v;
};

std::pair<double, double> ellipticity(double q, double phi) {
    const double e = (1 - q * q) / (1 + q * q);
    return {e * std::cos(2 * phi), e * std::sin(2 * phi)};
}

/// As sim/src/sky_model.cpp's makeGalaxy, at r magnitude `r`.
DemoGalaxy drawGalaxy(std::mt19937_64& rng, double r) {
    std::uniform_real_distribution<double> u01(0, 1);
    std::normal_distribution<double> gauss;
    DemoGalaxy g{};
    const bool early = u01(rng) < 0.3;
    const double bt = early ? 0.5 + 0.4 * u01(rng) : 0.3 * u01(rng);
    // Bulges are redder than disks: ~0.4 mag in g − r (sky_model's colours).
    const double redder = std::pow(10.0, -0.4 * 0.4);
    g.bt[1] = bt;
    g.bt[0] = bt * redder / (bt * redder + (1 - bt));
    g.diskR = std::max(0.05, 0.6 * std::pow(10.0, -0.1 * (r - 22.0) + 0.2 * gauss(rng)));
    g.bulgeR = std::max(0.03, g.diskR * (0.2 + 0.4 * u01(rng)));
    const double phi = M_PI * u01(rng);
    std::tie(g.diskE1, g.diskE2) = ellipticity(0.2 + 0.8 * u01(rng), phi);
    std::tie(g.bulgeE1, g.bulgeE2) = ellipticity(0.6 + 0.4 * u01(rng), phi);
    g.flux[1] = std::pow(10.0, -0.4 * (r - 31.4));
    g.flux[0] = g.flux[1] * std::pow(10.0, -0.4 * 0.5);
    g.u = (u01(rng) - 0.5) * kScale;
    g.v = (u01(rng) - 0.5) * kScale;
    return g;
}

struct EpochPsf {
    sim::TruncatedMoffat profile;
    std::shared_ptr<const Psf> model;
    GaussianMixture mixture;
};

/// Epoch PSFs as the demo's visits: seeing lognormal about 0.8" (σ_ln 0.2, clipped to
/// 0.55"–1.3"), Moffat β 3–4.5 (sim/include/drp/sim/observe.h).
std::vector<EpochPsf> makePsfs(std::mt19937_64& rng, int n) {
    std::uniform_real_distribution<double> u01(0, 1);
    std::normal_distribution<double> gauss;
    std::vector<EpochPsf> out;
    for (int k = 0; k < n; ++k) {
        sim::MoffatPsfModel m;
        m.fwhm = std::clamp(0.8 * std::exp(0.2 * gauss(rng)), 0.55, 1.3) / kScale;
        m.beta = 3.0 + 1.5 * u01(rng);
        m.e1 = 0.04 * (u01(rng) - 0.5);
        m.e2 = 0.04 * (u01(rng) - 0.5);
        auto shared = std::make_shared<const sim::MoffatPsfModel>(m);
        auto psf = std::make_shared<sim::TruePsf>(shared, Extent2D(0, 0));
        out.push_back(
            {m.at({0, 0}), psf, fitPsfMixture(psf->computeKernelImage({0, 0}), 3).mixture});
    }
    return out;
}

/// The galaxy on `nEpochs` epochs (bands alternating) of sky noise `sigma` [counts], cutout of
/// half-size `half` pixels; epochs' grids shifted by sub-pixel offsets.
std::vector<Epoch> observe(const DemoGalaxy& g, const std::vector<EpochPsf>& psfs, double sigma,
                           int half, std::mt19937_64& rng) {
    std::uniform_real_distribution<double> usub(-0.5, 0.5);
    std::normal_distribution<double> gauss;
    std::vector<Epoch> eps;
    for (std::size_t k = 0; k < psfs.size(); ++k) {
        Epoch ep;
        ep.band = static_cast<int>(k % 2);
        ep.uvToPixel = Eigen::Matrix2d::Identity() / kScale;
        const Box2I box({1000 - half, 2000 - half}, {2 * half + 1, 2 * half + 1});
        ep.refPixel = Eigen::Vector2d(1000 + usub(rng), 2000 + usub(rng));
        ep.countsPerNJy = 0.02;
        ep.psf = psfs[k].mixture;
        ep.psfModel = psfs[k].model;
        const Eigen::Vector2d c = ep.refPixel + ep.uvToPixel * Eigen::Vector2d(g.u, g.v);
        std::vector<sim::SersicComponent> comps;
        const double f = g.flux[ep.band] * ep.countsPerNJy, bt = g.bt[ep.band];
        if (bt > 0) comps.push_back({4.0, g.bulgeR / kScale, g.bulgeE1, g.bulgeE2, bt * f});
        if (bt < 1) comps.push_back({1.0, g.diskR / kScale, g.diskE1, g.diskE2, (1 - bt) * f});
        ImageD model(box, 0.0);
        sim::addGalaxy(model.view(), comps, {c.x(), c.y()}, psfs[k].profile);
        ep.image = ImageD(box, 0.0);
        ep.inverseVariance = ImageD(box, 0.0);
        const double gain = 20.0;  // electrons per count: the object's Poisson noise
        for (std::size_t i = 0; i < model.pixels().size(); ++i) {
            const double var = sigma * sigma + std::max(model.data()[i], 0.0) / gain;
            ep.image.data()[i] = model.data()[i] + std::sqrt(var) * gauss(rng);
            ep.inverseVariance.data()[i] = 1.0 / var;
        }
        ep.id = "epoch" + std::to_string(k);
        eps.push_back(std::move(ep));
    }
    return eps;
}

}  // namespace

namespace {

struct Sample {
    std::vector<double> all, byBt[3], bySize[3], bySn[3];
};

/// Draws `n` galaxies with `draw`, observes and measures them as the release does, and collects
/// model flux / truth − 1 of every band with S/N ≥ 10.
template <class Draw>
Sample measure(int n, std::uint64_t seed, Draw draw) {
    const bool verbose = std::getenv("DRP_MULTIFIT_VERBOSE") != nullptr;
    std::mt19937_64 rng(seed);
    // Sky noise per pixel per epoch [counts at 0.02 counts/nJy]: S/N ≈ 10 at r ≈ 24.5 over the
    // 4 epochs of a band for a small galaxy, the demo's depth.
    const double sigma = 0.3;
    Sample s;
    for (int k = 0; k < n; ++k) {
        DemoGalaxy g = draw(rng);
        // Demo cutouts: 2.5 × the deblender's radius + 4 px, clamped to 8–40 px; that radius is
        // ~6 px + 4.5 px per arcsec of disk r_e on the demo release.
        const double radiusPx = 6.0 + 4.5 * g.diskR;
        const int half = static_cast<int>(std::clamp(2.5 * radiusPx + 4, 8.0, 40.0));
        auto psfs = makePsfs(rng, 8);
        std::vector<Epoch> eps = observe(g, psfs, sigma, half, rng);
        ObjectInit init;
        init.rEff = std::max(0.2, 0.5 * radiusPx * kScale);
        init.halfSize = half * kScale;
        ObjectFit fit = fitObject(eps, 2, init, ObjectFitConfig{});
        for (int b = 0; b < 2; ++b) {
            const double d = fit.modelFlux(b) / g.flux[b] - 1;
            const double sn = g.flux[b] / fit.modelFluxErr(b);
            if (!(sn >= 10)) continue;
            s.all.push_back(d);
            s.byBt[g.bt[1] < 0.3 ? 0 : g.bt[1] < 0.6 ? 1 : 2].push_back(d);
            s.bySize[g.diskR < 0.4 ? 0 : g.diskR < 0.8 ? 1 : 2].push_back(d);
            s.bySn[sn < 30 ? 0 : sn < 100 ? 1 : 2].push_back(d);
            if (verbose)
                std::printf(
                    "gal %3d band %d S/N %6.1f B/T %.2f r_disk %.2f r_bulge %.2f half %2d | "
                    "frac_dev %.2f r_exp %.2f r_dev %.2f chi2_exp-chi2_dev %7.1f flags %ld | "
                    "df/f %+.3f\n",
                    k, b, sn, g.bt[b], g.diskR, g.bulgeR, half, fit.composite.fracDev, fit.exp.rEff,
                    fit.dev.rEff, fit.exp.chi2 - fit.dev.chi2, static_cast<long>(fit.flags), d);
        }
    }
    auto show = [](const char* name, const std::vector<double>& v) {
        if (!v.empty())
            std::printf("%-22s n=%4zu median %+.4f robust sigma %.4f\n", name, v.size(), median(v),
                        robustSigma(v));
    };
    show("all", s.all);
    show("B/T < 0.3", s.byBt[0]);
    show("B/T 0.3-0.6", s.byBt[1]);
    show("B/T > 0.6", s.byBt[2]);
    show("disk r_e < 0.4\"", s.bySize[0]);
    show("disk r_e 0.4-0.8\"", s.bySize[1]);
    show("disk r_e > 0.8\"", s.bySize[2]);
    show("S/N < 30", s.bySn[0]);
    show("S/N 30-100", s.bySn[1]);
    show("S/N > 100", s.bySn[2]);
    return s;
}

int envInt(const char* name, int fallback) {
    const char* v = std::getenv(name);
    return v ? std::atoi(v) : fallback;
}

}  // namespace

// Single-profile galaxies, the simulator's truncated profiles: pure de Vaucouleurs (truncated
// at 8 r_e) and pure exponential (at 5.5 r_e), r_e 0.3"–1.2", S/N ≈ 40–300 per band. The truth
// flux is the truncated profile's. With untruncated model profiles the de Vaucouleurs fluxes
// came out +5.2% high (the model extrapolates the 5.7% of an untruncated profile's light beyond
// 8 r_e, which no cutout constrains) and the exponential ones +0.9%; with the truncated ones
// −0.7% and +0.55%. Tolerance 1.5% on the median of 40 bands (statistical error ~0.3%).
TEST(DemoGalaxies, TruncatedSingleProfileFluxes) {
    for (double n : {4.0, 1.0}) {
        std::uniform_real_distribution<double> u01(0, 1);
        const Sample s = measure(envInt("DRP_MULTIFIT_NGAL", 20), n == 4 ? 41 : 42, [&](auto& rng) {
            DemoGalaxy g = drawGalaxy(rng, 20.0 + 1.5 * u01(rng));
            g.bt[0] = g.bt[1] = n == 4 ? 1.0 : 0.0;
            g.diskR = 0.3 + 0.9 * u01(rng);
            g.bulgeR = g.diskR;
            g.bulgeE1 = g.diskE1;
            g.bulgeE2 = g.diskE2;
            return g;
        });
        std::printf("n = %.0f: median model flux / truth - 1 = %+.4f\n", n, median(s.all));
        EXPECT_LE(std::abs(median(s.all)), 0.015) << "n=" << n;
    }
}

// Demo-like bulge + disk galaxies (B/T, sizes, ellipticities and bulge colours as the
// simulator draws them, r = 19.5–24, 60 galaxies, 110 bands with S/N ≥ 10). Median model flux /
// truth − 1: +0.5% overall and −0.3% for B/T > 0.6 (with untruncated profiles +2.5% and
// +3.0%). Tolerances 2% and 1.5% (statistical errors ~0.5% and ~0.6%). The model is the
// composite of separately fitted exp and dev profiles, not the truth's two components of
// different sizes, so a bias remains for large disk-dominated galaxies with a small bulge
// (disk r_e > 0.8": +4.2%; the dev fit to the whole galaxy has r_e 1.5–2× the exp fit's, and
// its wings, mixed in, add light the disk does not have).
TEST(DemoGalaxies, BulgeDiskGalaxyFluxes) {
    std::uniform_real_distribution<double> umag(19.5, 24.0);
    const Sample s = measure(envInt("DRP_MULTIFIT_NGAL", 60), 20261205,
                             [&](auto& rng) { return drawGalaxy(rng, umag(rng)); });
    // Bulge-dominated: the truncation is what matters (with untruncated profiles +3.0%).
    EXPECT_LE(std::abs(median(s.byBt[2])), 0.015);
    EXPECT_LE(std::abs(median(s.all)), 0.02);
}
