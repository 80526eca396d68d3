// Object and blended-group measurement (object_fit.h) against truth rendered independently
// (truth_render.h): neighbours subtracted vs masked on blended pairs, per-object failure flags,
// and the output quantities (covariances, epochs per band, model choice).
#include <gtest/gtest.h>

#include <cstdio>
#include <random>

#include "drp/multifit/object_fit.h"
#include "test_scene.h"

using namespace drp;
using namespace drp::multifit;
using namespace drp::multifit::testing;

namespace {

struct PairStats {
    std::vector<double> frac, absFrac, fainterFrac;
};

}  // namespace

// Blended pairs of galaxies (exp or dev, r_e 0.3"–0.6") at 1.0"–1.6" separation — about one
// FWHM of the epochs' 0.6"–1.3" seeing — with flux ratios 0.25–1, S/N ≈ 80–200 for the brighter
// member. Both members are fitted as a group starting from the true positions jittered by
// 0.05" (a deblender's peak accuracy), once with the other member's pixels masked (Voronoi
// partition, the previous behaviour) and once with its model subtracted.
TEST(Blends, SubtractingNeighboursBeatsMasking) {
    std::mt19937_64 rng(2026);
    std::uniform_real_distribution<double> ur(0.3, 0.6), ue(-0.3, 0.3), usep(1.0, 1.6),
        uang(0, 2 * M_PI), uratio(0.25, 1.0), usnr(80, 200), ujit(-0.05, 0.05);
    const double skyVar = 50.0;
    const int nPairs =
        std::getenv("DRP_MULTIFIT_NPAIRS") ? std::atoi(std::getenv("DRP_MULTIFIT_NPAIRS")) : 16;
    PairStats mask, sub;
    int flagged = 0;
    for (int k = 0; k < nPairs; ++k) {
        double sep = usep(rng), ang = uang(rng), ratio = uratio(rng);
        std::vector<TrueObject> objs(2);
        for (int m = 0; m < 2; ++m) {
            TrueGalaxy& g = objs[m].shape;
            g.n = (k + m) % 2 == 0 ? 1.0 : 4.0;
            g.rEff = ur(rng);
            g.e1 = ue(rng);
            g.e2 = ue(rng);
            double s = m == 0 ? -0.5 : 0.5;
            g.u = s * sep * std::cos(ang);
            g.v = s * sep * std::sin(ang);
        }
        double area = 4 * M_PI * (std::pow(0.8 * 5, 2) / 5.5 + std::pow(objs[0].shape.rEff * 5, 2));
        double f = usnr(rng) * std::sqrt(area * skyVar / 3.0);
        objs[0].flux = {f, 1.2 * f};
        objs[1].flux = {ratio * f, 1.2 * ratio * f};
        Scene sc = makeScene(objs, 6, skyVar, rng, 41);
        std::vector<ObjectInit> members(2);
        for (int m = 0; m < 2; ++m) {
            members[m].u = objs[m].shape.u + ujit(rng);
            members[m].v = objs[m].shape.v + ujit(rng);
            members[m].rEff = 0.5;
            members[m].halfSize = 3.0;
        }
        for (NeighbourMode mode : {NeighbourMode::Mask, NeighbourMode::Subtract}) {
            ObjectFitConfig cfg;
            cfg.neighbours = mode;
            std::vector<ObjectFit> fits = fitGroup(sc.epochs, 2, members, cfg);
            PairStats& st = mode == NeighbourMode::Mask ? mask : sub;
            for (int m = 0; m < 2; ++m) {
                if (fits[m].flags & (kFlagFitError | kFlagNoEpochs)) ++flagged;
                for (int b = 0; b < 2; ++b) {
                    double d = fits[m].modelFlux(b) / objs[m].flux[b] - 1;
                    st.frac.push_back(d);
                    st.absFrac.push_back(std::abs(d));
                    if (m == 1) st.fainterFrac.push_back(d);
                    if (std::getenv("DRP_MULTIFIT_VERBOSE"))
                        std::printf(
                            "pair %d %s member %d band %d: n=%.0f r=%.2f sep=%.2f ratio=%.2f "
                            "df/f=%+.3f model=%s r_fit=%.2f u=%.2f/%.2f flags=%ld\n",
                            k, mode == NeighbourMode::Mask ? "mask" : "sub ", m, b, objs[m].shape.n,
                            objs[m].shape.rEff, sep, ratio, d, modelChoiceName(fits[m].model),
                            fits[m].chosen().rEff, fits[m].chosen().u, objs[m].shape.u,
                            long(fits[m].flags));
                }
            }
        }
    }
    EXPECT_EQ(flagged, 0);
    std::printf(
        "blended pairs (%d): model-flux bias median / median |bias| / fainter-member median\n"
        "  neighbours masked:     %+.4f  %.4f  %+.4f\n"
        "  neighbours subtracted: %+.4f  %.4f  %+.4f\n",
        nPairs, median(mask.frac), median(mask.absFrac), median(mask.fainterFrac), median(sub.frac),
        median(sub.absFrac), median(sub.fainterFrac));
    // Subtraction must reduce the typical flux error of blended members (median |Δf/f|) and
    // bring the median bias within 1.5% (the isolated-galaxy budget is 1%; the residual comes
    // from the neighbour's model errors, which are of the same size as its own flux error).
    EXPECT_LT(median(sub.absFrac), median(mask.absFrac));
    EXPECT_LE(std::abs(median(sub.frac)), 0.015);
    EXPECT_LE(std::abs(median(sub.frac)), std::abs(median(mask.frac)));
}

TEST(ObjectFit, OutputsForAnIsolatedGalaxy) {
    std::mt19937_64 rng(11);
    TrueGalaxy g;
    g.n = 1;
    g.rEff = 0.6;
    g.e1 = 0.2;
    Scene sc = makeScene(g, {20000.0, 30000.0, 25000.0}, 6, 30.0, rng, 41);
    // Mask every pixel of the two band-2 epochs but one: band 2 must count 1 epoch.
    sc.epochs[2].inverseVariance.fill(0.0);
    ObjectFitConfig cfg;
    ObjectFit fit = fitObject(sc.epochs, 3, ObjectInit{}, cfg);
    EXPECT_EQ(fit.flags, 0);
    EXPECT_EQ(fit.nEpochs(0), 2);
    EXPECT_EQ(fit.nEpochs(1), 2);
    EXPECT_EQ(fit.nEpochs(2), 1);
    EXPECT_EQ(fit.model, ModelChoice::Exponential);
    EXPECT_TRUE(fit.extended);
    for (int b = 0; b < 3; ++b) {
        EXPECT_NEAR(fit.modelFluxCov(b, b), fit.modelFluxErr(b) * fit.modelFluxErr(b),
                    1e-9 * fit.modelFluxCov(b, b));
        EXPECT_NEAR(fit.psfFluxCov(b, b), fit.psfFluxErr(b) * fit.psfFluxErr(b),
                    1e-9 * fit.psfFluxCov(b, b));
        for (int c = 0; c < 3; ++c) {
            EXPECT_DOUBLE_EQ(fit.modelFluxCov(b, c), fit.modelFluxCov(c, b));
            // A valid correlation: |ρ| ≤ 1.
            EXPECT_LE(std::abs(fit.modelFluxCov(b, c)),
                      fit.modelFluxErr(b) * fit.modelFluxErr(c) * (1 + 1e-12));
        }
    }
    // Fluxes share the shape parameters, so the model fluxes of different bands are positively
    // correlated (a larger radius raises every band's flux).
    EXPECT_GT(fit.modelFluxCov(0, 1), 0);
    EXPECT_TRUE(std::isfinite(fit.chi2Dof));
    EXPECT_NEAR(fit.chosen().rEff, 0.6, 0.1);
}

TEST(ObjectFit, NonConvergenceAndBadInputAreFlaggedPerObject) {
    std::mt19937_64 rng(5);
    TrueGalaxy g;
    g.n = 1;
    g.rEff = 0.5;
    Scene sc = makeScene(g, {8000.0}, 4, 30.0, rng, 31);
    // One LM iteration cannot converge from a 0.5" guess for a 3" galaxy.
    ObjectFitConfig tight;
    tight.fit.maxIterations = 1;
    tight.fit.relTolerance = 1e-12;
    ObjectInit far;
    far.rEff = 3.0;
    ObjectFit nc = fitObject(sc.epochs, 1, far, tight);
    EXPECT_TRUE(nc.flags & kFlagExpFailed) << nc.flags;
    EXPECT_TRUE(nc.flags & kFlagDevFailed) << nc.flags;
    EXPECT_EQ(nc.exp.failure, "no_convergence");
    EXPECT_TRUE(std::isfinite(nc.psfFlux(0)));  // still measured, just flagged

    // An epoch without a PSF mixture is bad input: that object is flagged with the message, not
    // thrown, so its group and patch go on.
    std::vector<Epoch> bad = sc.epochs;
    bad[1].psf = GaussianMixture();
    ObjectFit err = fitObject(bad, 1, ObjectInit{}, ObjectFitConfig{});
    EXPECT_TRUE(err.flags & kFlagFitError);
    EXPECT_TRUE(err.flags & kFlagPointFailed);
    EXPECT_NE(err.error.find("no PSF mixture"), std::string::npos) << err.error;
    EXPECT_TRUE(std::isnan(err.modelFlux(0)));

    // In a group, a member outside every epoch gets kFlagNoEpochs; the other is measured and
    // (its neighbour being unusable) flagged as not having it subtracted.
    std::vector<ObjectInit> members(2);
    members[0].halfSize = 2.5;
    members[1].u = 50;  // 50" away: outside every cutout
    std::vector<ObjectFit> fits = fitGroup(sc.epochs, 1, members, ObjectFitConfig{});
    EXPECT_EQ(fits[1].flags, kFlagNoEpochs);
    EXPECT_FALSE(fits[0].flags & (kFlagFitError | kFlagNoEpochs));
    EXPECT_TRUE(fits[0].flags & kFlagNeighbourFailed);
    EXPECT_NEAR(fits[0].modelFlux(0) / 8000.0, 1.0, 0.1);
    // Bad configuration is an error before any work.
    ObjectFitConfig badCfg;
    badCfg.subtractionPasses = -1;
    EXPECT_THROW(fitObject(sc.epochs, 1, ObjectInit{}, badCfg), Error);
}
