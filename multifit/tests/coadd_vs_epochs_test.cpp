// Multi-epoch fit vs the same fit on the coadd, both against truth (docs/multifit.md).
//
// Eight epochs of one band on a common pixel grid (0.2"/px), equal sky noise, so the
// inverse-variance-weighted coadd is the plain mean and its PSF the mean of the epochs' PSFs —
// the best case for the coadd (no resampling, exact coadd PSF). Two regimes:
//   * "mixed seeing": epochs alternate 0.6" and 1.4" FWHM (Moffat β = 3.5);
//   * "steady seeing": every epoch 0.9".
// Objects: stars (PSF flux) and small exponential galaxies, r_e 0.15"–0.45" (flux and r_e of
// the exponential fit, the truth's profile family, so that the comparison is not mixed up with
// the composite model's own low-S/N bias), S/N 30–120, background-limited noise (the regime of
// most objects of a deep survey; for bright sources the photon noise of the source itself
// dominates and the PSF-size advantage fades, since the information then scales with the flux
// whatever the seeing). The coadd averages sharp and blurred images, so it throws away the sharp
// epochs' resolution; the multi-epoch fit weighs every epoch by its own PSF. For a point source the
// information lost is computable: with PSF variances s1² and s2², the flux variance of the
// optimal (multi-epoch) fit over the coadd's is
//   [1/s1² + 1/s2²] / ½[1/s1² + 1/s2² + 4/(s1² + s2²)]  → 0.76 for 0.6"/1.4" Gaussians,
// i.e. a coadd flux scatter ~15% larger; galaxies near the PSF size lose more (their size is
// measured mostly by the sharp epochs). In steady seeing the two are equivalent.
#include <gtest/gtest.h>

#include <cstdio>
#include <random>

#include "drp/multifit/object_fit.h"
#include "test_scene.h"

using namespace drp;
using namespace drp::multifit;
using namespace drp::multifit::testing;

namespace {

/// The coadd PSF of equal-weight epochs on a common grid: the mean of their PSFs.
class MeanPsf final : public Psf {
  public:
    explicit MeanPsf(std::vector<std::shared_ptr<const Psf>> psfs) : _psfs(std::move(psfs)) {}
    Image<double> computeKernelImage(Point2D p) const override {
        return mean([&](const Psf& q) { return q.computeKernelImage(p); });
    }
    Image<double> computeImage(Point2D p) const override {
        return mean([&](const Psf& q) { return q.computeImage(p); });
    }
    int kernelRadius() const override { return _psfs.front()->kernelRadius(); }
    std::string typeName() const override { return "test-mean"; }

  private:
    template <typename F>
    Image<double> mean(F f) const {
        Image<double> out = f(*_psfs.front());
        out.fill(0.0);
        for (const auto& q : _psfs) {
            Image<double> img = f(*q);
            for (std::size_t i = 0; i < img.pixels().size(); ++i)
                out.data()[i] += img.data()[i] / _psfs.size();
        }
        return out;
    }
    std::vector<std::shared_ptr<const Psf>> _psfs;
};

struct Regime {
    const char* name;
    std::vector<PsfEntry> psfs;  // one per epoch
    Epoch coaddTemplate;         // PSF of the coadd
};

Regime makeRegime(const char* name, const std::vector<double>& fwhmArcsec) {
    Regime r;
    r.name = name;
    std::vector<std::shared_ptr<const Psf>> models;
    for (double f : fwhmArcsec) {
        r.psfs.push_back(makePsfEntry({f * 5.0, 3.5, 0.0, 0.0}));
        models.push_back(r.psfs.back().model);
    }
    auto mean = std::make_shared<MeanPsf>(models);
    r.coaddTemplate.psfModel = mean;
    r.coaddTemplate.psf = fitPsfMixture(mean->computeKernelImage({0, 0}), 4).mixture;
    return r;
}

struct Stats {
    std::vector<double> meFlux, coFlux, meR, coR, mePull, coPull;
};

/// Epochs of one object on the common grid, and their coadd.
std::pair<std::vector<Epoch>, Epoch> observe(const TrueGalaxy& g, double flux, const Regime& regime,
                                             double skyVar, std::mt19937_64& rng) {
    std::normal_distribution<double> gauss;
    const int size = 25;
    const Box2I box({0, 0}, {size, size});
    std::uniform_real_distribution<double> usub(-0.5, 0.5);
    const Eigen::Vector2d ref(size / 2 + usub(rng), size / 2 + usub(rng));
    std::vector<Epoch> eps;
    Epoch co = regime.coaddTemplate;
    co.image = ImageD(box, 0.0);
    co.inverseVariance = ImageD(box, 0.0);
    ImageD coVar(box, 0.0);
    const double n = static_cast<double>(regime.psfs.size());
    for (std::size_t k = 0; k < regime.psfs.size(); ++k) {
        Epoch ep;
        ep.uvToPixel = 5.0 * Eigen::Matrix2d::Identity();
        ep.refPixel = ref;
        ep.psf = regime.psfs[k].mixture;
        ep.psfModel = regime.psfs[k].model;
        ImageD model = renderTrue(g, regime.psfs[k].shape, ep.uvToPixel, ref, box, flux);
        ep.image = ImageD(box, 0.0);
        ep.inverseVariance = ImageD(box, 0.0);
        for (std::size_t i = 0; i < model.pixels().size(); ++i) {
            const double var = skyVar;  // background-limited (see the header)
            ep.image.data()[i] = model.data()[i] + std::sqrt(var) * gauss(rng);
            ep.inverseVariance.data()[i] = 1.0 / var;
            co.image.data()[i] += ep.image.data()[i] / n;
            coVar.data()[i] += var / (n * n);
        }
        ep.id = "epoch" + std::to_string(k);
        eps.push_back(std::move(ep));
    }
    for (std::size_t i = 0; i < coVar.pixels().size(); ++i)
        co.inverseVariance.data()[i] = 1.0 / coVar.data()[i];
    co.uvToPixel = 5.0 * Eigen::Matrix2d::Identity();
    co.refPixel = ref;
    co.id = "coadd";
    return {std::move(eps), std::move(co)};
}

Stats measure(const Regime& regime, int nObjects, bool stars, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> ur(0.15, 0.45), ue(-0.3, 0.3), usnr(30, 120),
        usub(-0.1, 0.1);
    const double skyVar = 40.0;
    Stats s;
    for (int k = 0; k < nObjects; ++k) {
        TrueGalaxy g;
        g.n = stars ? 0 : 1;
        g.rEff = ur(rng);
        g.e1 = ue(rng);
        g.e2 = ue(rng);
        g.u = usub(rng);
        g.v = usub(rng);
        // Total S/N over the 8 epochs for a 1" PSF.
        double area = 4 * M_PI * (std::pow(5.0 / 2.355, 2) + (stars ? 0 : std::pow(g.rEff * 5, 2)));
        double flux = usnr(rng) * std::sqrt(area * skyVar / 8.0);
        auto [eps, co] = observe(g, flux, regime, skyVar, rng);
        ObjectInit init;
        init.rEff = 0.3;
        ObjectFitConfig cfg;
        ObjectFit me = fitObject(eps, 1, init, cfg);
        ObjectFit cf = fitObject({co}, 1, init, cfg);
        EXPECT_FALSE(me.flags & (kFlagFitError | kFlagNoEpochs));
        EXPECT_FALSE(cf.flags & (kFlagFitError | kFlagNoEpochs));
        auto flux0 = [&](const ObjectFit& f) { return stars ? f.psfFlux(0) : f.exp.flux(0); };
        auto err0 = [&](const ObjectFit& f) { return stars ? f.psfFluxErr(0) : f.exp.fluxErr(0); };
        s.meFlux.push_back(flux0(me) / flux - 1);
        s.coFlux.push_back(flux0(cf) / flux - 1);
        s.mePull.push_back((flux0(me) - flux) / err0(me));
        s.coPull.push_back((flux0(cf) - flux) / err0(cf));
        if (!stars) {
            const FitResult& gm = me.exp;
            const FitResult& gc = cf.exp;
            s.meR.push_back(gm.rEff / g.rEff - 1);
            s.coR.push_back(gc.rEff / g.rEff - 1);
        }
    }
    return s;
}

void printRow(const char* regime, const char* kind, const Stats& s) {
    std::printf("%-14s %-8s %3zu | %+7.4f %7.4f %6.3f | %+7.4f %7.4f %6.3f", regime, kind,
                s.meFlux.size(), median(s.meFlux), robustSigma(s.meFlux), robustSigma(s.mePull),
                median(s.coFlux), robustSigma(s.coFlux), robustSigma(s.coPull));
    if (!s.meR.empty())
        std::printf(" | %+7.4f %7.4f | %+7.4f %7.4f", median(s.meR), robustSigma(s.meR),
                    median(s.coR), robustSigma(s.coR));
    std::printf("\n");
}

}  // namespace

TEST(CoaddVsMultiEpoch, MultiEpochWinsWhenSeeingVaries) {
    const int n =
        std::getenv("DRP_MULTIFIT_NCOADD") ? std::atoi(std::getenv("DRP_MULTIFIT_NCOADD")) : 30;
    Regime mixed = makeRegime("mixed 0.6/1.4", {0.6, 1.4, 0.6, 1.4, 0.6, 1.4, 0.6, 1.4});
    Regime steady = makeRegime("steady 0.9", std::vector<double>(8, 0.9));
    Stats mixStars = measure(mixed, n, true, 1);
    Stats mixGal = measure(mixed, n, false, 2);
    Stats stStars = measure(steady, n, true, 1);
    Stats stGal = measure(steady, n, false, 2);
    std::printf(
        "multi-epoch (ME) vs coadd fit, against truth (flux: PSF flux for stars, exponential-fit "
        "flux for galaxies)\n"
        "%-14s %-8s %3s | %-7s %-7s %-6s | %-7s %-7s %-6s | %-7s %-7s | %-7s %-7s\n",
        "seeing", "objects", "N", "ME bias", "ME sig", "pull", "co bias", "co sig", "pull",
        "ME r_e", "ME sig", "co r_e", "co sig");
    printRow("mixed 0.6/1.4", "stars", mixStars);
    printRow("mixed 0.6/1.4", "galaxies", mixGal);
    printRow("steady 0.9", "stars", stStars);
    printRow("steady 0.9", "galaxies", stGal);

    // Mixed seeing: the multi-epoch flux scatter is smaller. Theory for stars: ratio
    // sqrt(0.76) = 0.87; we require < 0.95 (the robust σ of 30 paired objects is uncertain by
    // a few per cent, both fits seeing the same noise). Sizes: smaller scatter too.
    EXPECT_LT(robustSigma(mixStars.meFlux), 0.95 * robustSigma(mixStars.coFlux));
    EXPECT_LT(robustSigma(mixGal.meFlux), 0.95 * robustSigma(mixGal.coFlux));
    EXPECT_LT(robustSigma(mixGal.meR), robustSigma(mixGal.coR));
    // Steady seeing: equivalent within 10% (same information; the coadd PSF is exact).
    EXPECT_NEAR(robustSigma(stStars.meFlux) / robustSigma(stStars.coFlux), 1.0, 0.1);
    EXPECT_NEAR(robustSigma(stGal.meFlux) / robustSigma(stGal.coFlux), 1.0, 0.1);
    // Both unbiased within 1% for the fluxes in every regime. (Pull widths are printed, not
    // asserted here: 30 objects pin a robust width only to ±0.15; the error calibration is
    // tested on 300 stars and 60 galaxies in fitter_test.)
    for (const Stats* s : {&mixStars, &mixGal, &stStars, &stGal}) {
        EXPECT_LE(std::abs(median(s->meFlux)), 0.01);
        EXPECT_LE(std::abs(median(s->coFlux)), 0.01);
    }
}
