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

// Centre shifts are measured from the deblender's position (ObjectInit u, v), not from where
// each fit started. The object: a compact core 0.25" from the deblender's position on a
// brighter extended exponential 0.55" away, in the same direction. The point fit locks on the
// core (0.25" from the anchor), the exp and dev fits start there and move to the light-weighted
// centre (~0.5"): ~0.25" from their start but ~0.5" from the anchor. With maxCentreShift 0.35"
// (standing in for the pipeline's 2", scaled so that the scene stays small) the galaxy fits have
// walked too far from the deblender: they must be flagged, and the reported position must be
// the point fit's (the old per-fit check accepted them and reported the galaxy's centre).
TEST(ObjectFit, CentreShiftIsMeasuredFromTheDeblenderPosition) {
    std::mt19937_64 rng(11);
    std::vector<TrueObject> objs(2);
    objs[0].shape.n = 0;  // point-like core
    objs[0].shape.u = 0.25;
    objs[0].flux = {20000.0};
    objs[1].shape.n = 1;
    objs[1].shape.rEff = 1.2;
    objs[1].shape.u = 0.55;
    objs[1].flux = {60000.0};
    Scene sc = makeScene(objs, 6, 20.0, rng, 41);
    ObjectFitConfig cfg;
    cfg.fit.maxCentreShift = 0.35;
    ObjectInit anchor;  // the deblender's position: (0, 0)
    ObjectFit f = fitObject(sc.epochs, 1, anchor, cfg);
    // The premise: the point fit stays within the limit, the galaxy fits end beyond it.
    ASSERT_TRUE(f.point.failure.empty()) << f.point.failure;
    ASSERT_LT(std::hypot(f.point.u, f.point.v), 0.35);
    for (const FitResult* g : {&f.exp, &f.dev}) {
        EXPECT_EQ(g->failure, "centre_shift")
            << modelName(g->kind) << " at " << g->u << "," << g->v;
        EXPECT_GT(std::hypot(g->u, g->v), 0.35);
    }
    EXPECT_TRUE(f.flags & kFlagCentreShift);
    EXPECT_TRUE(f.flags & kFlagExpFailed);
    EXPECT_TRUE(f.flags & kFlagDevFailed);
    EXPECT_FALSE(f.extended);
    const FitResult& c = f.chosen();
    EXPECT_LE(std::hypot(c.u, c.v), 0.35);

    // In a group, every pass is held to the same anchor: the second member's deblender position
    // is 0.3" from the core, so its fits may reach the core but not the extended light's centre.
    std::vector<ObjectInit> members(2);
    members[0].u = 3.0;  // an empty spot 3" away, so the group has subtraction passes
    members[0].halfSize = 1.0;
    members[1].u = -0.05;
    std::vector<ObjectFit> fits = fitGroup(sc.epochs, 1, members, cfg);
    for (std::size_t k = 0; k < members.size(); ++k) {
        const ObjectFit& g = fits[k];
        if (g.flags & kFlagDuplicate) continue;
        for (const FitResult* r : {&g.point, &g.exp, &g.dev}) {
            if (!r->failure.empty()) continue;
            EXPECT_LE(std::hypot(r->u - members[k].u, r->v - members[k].v), 0.35)
                << "member " << k << " " << modelName(r->kind);
        }
        const FitResult& ch = g.chosen();
        EXPECT_LE(std::hypot(ch.u - members[k].u, ch.v - members[k].v), 0.35) << "member " << k;
    }
}

// A spurious deblender peak on a bright star's wing (1.2" from the star, nothing there): the
// refit on all pixels moves it onto the star, and two point sources at one place make the joint
// fluxes degenerate. It must be recognised as a duplicate of the star (no fluxes, the star's
// position), and the star measured alone: PSF flux within 1% and centre within 0.02" of the
// truth (S/N ~ 2000; the statistical errors are < 0.1% and < 1 mas).
TEST(Blends, SiblingConvergedOntoAStarIsADuplicate) {
    std::mt19937_64 rng(3);
    TrueGalaxy star;
    star.n = 0;
    star.u = 0.1;
    star.v = -0.05;
    const double flux = 400000.0;
    Scene sc = makeScene(star, {flux}, 6, 20.0, rng, 41);
    std::vector<ObjectInit> members(2);
    members[0].u = 0.12;  // the star's peak
    members[0].v = -0.03;
    members[1].u = -1.1;  // the spurious one
    members[1].v = 0.4;
    for (auto& m : members) m.halfSize = 3.0;
    std::vector<ObjectFit> fits = fitGroup(sc.epochs, 1, members, ObjectFitConfig{});
    ASSERT_TRUE(fits[1].flags & kFlagDuplicate)
        << "spurious member flags " << fits[1].flags << " at " << fits[1].chosen().u << ","
        << fits[1].chosen().v;
    EXPECT_FALSE(fits[0].flags & kFlagDuplicate);
    EXPECT_TRUE(std::isnan(fits[1].psfFlux(0)));
    EXPECT_EQ(fits[1].chosen().u, fits[0].chosen().u);
    EXPECT_EQ(fits[1].chosen().v, fits[0].chosen().v);
    EXPECT_NEAR(fits[0].psfFlux(0) / flux, 1.0, 0.01);
    EXPECT_LT(std::hypot(fits[0].chosen().u - star.u, fits[0].chosen().v - star.v), 0.02);
}

// Spurious peaks on the wings of bright objects (the deblender's shoulder peaks; on the demo
// release 1.5"-2.4" out): with the bright object's model subtracted, some fits walk towards it
// and end inside its deblender cell, 0.4"-0.9" from it (outside duplicateRadius: only the cell
// rule catches them), others stay out on the wing fitting noise. No spurious member may be
// reported as a second object within 1" (the release's match radius) of the bright one, which
// must be measured alone: flux within 1% (star) or 3% (galaxy, whose wings the spurious members
// that stay out share) and centre within 0.03" of the truth (S/N > 500).
TEST(Blends, SpuriousWingPeaksAreDuplicates) {
    std::mt19937_64 rng(17);
    for (const double n : {0.0, 1.0}) {  // a star, an exponential galaxy (r_e 0.6")
        TrueGalaxy g;
        g.n = n;
        g.rEff = 0.6;
        g.e1 = 0.1;
        g.u = 0.05;
        const double flux = 300000.0;
        Scene sc = makeScene(g, {flux}, 6, 20.0, rng, 51);
        std::vector<ObjectInit> members(4);
        members[0].u = 0.08;  // the object's own peak
        members[0].v = 0.03;
        const double ang[3] = {0.3, 2.4, 4.4}, rad[3] = {1.6, 2.0, 2.4};
        for (int m = 1; m < 4; ++m) {
            members[m].u = rad[m - 1] * std::cos(ang[m - 1]);
            members[m].v = rad[m - 1] * std::sin(ang[m - 1]);
        }
        for (auto& m : members) m.halfSize = 4.0;
        std::vector<ObjectFit> fits = fitGroup(sc.epochs, 1, members, ObjectFitConfig{});
        EXPECT_FALSE(fits[0].flags & kFlagDuplicate);
        const FitResult& c0 = fits[0].chosen();
        for (int m = 1; m < 4; ++m) {
            const FitResult& c = fits[m].chosen();
            EXPECT_TRUE((fits[m].flags & kFlagDuplicate) ||
                        std::hypot(c.u - c0.u, c.v - c0.v) > 1.0)
                << "n=" << n << " spurious member " << m << " at " << c.u << "," << c.v << " flux "
                << fits[m].psfFlux(0);
        }
        const double f = n == 0 ? fits[0].psfFlux(0) : fits[0].modelFlux(0);
        EXPECT_NEAR(f / flux, 1.0, n == 0 ? 0.01 : 0.03) << "n=" << n;
        EXPECT_LT(std::hypot(c0.u - g.u, c0.v - g.v), 0.03) << "n=" << n;
    }
}

// Stars: the galaxy fits of a point source run to tiny radii, where the ellipticity is not
// constrained and often ends at its cap (e = 0.98). The data do not prefer the galaxy over the
// point source, so that is an unmeasured shape, not a failed fit: on the demo release flagging
// it marked ~20% of the objects as failed and every multifit patch as degraded. The test needs
// at least one star whose fit ended at the cap (else it would test nothing), and none of them
// may carry an exp/dev failure flag; each is a point source with its PSF flux within 5σ.
TEST(ObjectFit, UnresolvedObjectsWithEllipticityAtTheCapAreNotFailures) {
    std::mt19937_64 rng(23);
    std::uniform_real_distribution<double> usub(-0.1, 0.1);
    int atCap = 0;
    for (int k = 0; k < 12; ++k) {
        TrueGalaxy star;
        star.n = 0;
        star.u = usub(rng);
        star.v = usub(rng);
        const double flux = 3000.0 * (1 + k);
        Scene sc = makeScene(star, {flux, 1.3 * flux}, 6, 30.0, rng, 31);
        ObjectFit fit = fitObject(sc.epochs, 2, ObjectInit{}, ObjectFitConfig{});
        for (const FitResult* g : {&fit.exp, &fit.dev})
            if (g->failure == "ellipticity_at_limit") ++atCap;
        EXPECT_FALSE(fit.flags & (kFlagExpFailed | kFlagDevFailed))
            << "star " << k << " flags " << fit.flags << " exp " << fit.exp.failure << " dev "
            << fit.dev.failure;
        EXPECT_EQ(fit.model, ModelChoice::Point) << k;
        EXPECT_NEAR(fit.psfFlux(0), flux, 5 * fit.psfFluxErr(0)) << k;
    }
    EXPECT_GT(atCap, 0) << "no star's galaxy fit ended at the ellipticity cap";
}

// A faint exponential galaxy (r_e 0.3", S/N ~ 40-70) 1.3"-2" from a 20-40x brighter bulge+disk
// galaxy (bulge dev r_e 0.35", disk exp r_e 0.9", B/T 0.4: the fits' single profiles and their
// composite do not match it, as on the demo release, whose faint neighbours' free centres
// walked 0.8"-1.6" onto such residuals and out of the release's match), and a spurious
// deblender peak at the same place on the wing of a star and of the same bright galaxy with
// nothing there. The faint galaxy must survive as its own object within 0.1" of its truth (the
// deblender's peak is 0.05" off): with the old rules (no separate-source test) its centre ended
// 0.4"-0.7" off, or it was merged as a duplicate. Its PSF flux (at the fixed centre) must be
// within 35% of the truth at 1.65"-2" and within a factor 2 at 1.3", and the bright galaxy's
// model flux within 6%: the bright galaxy's model residual is what remains in the faint one's
// flux (measured: PSF flux 1.04-1.27 x truth at 1.65"-2", 1.34-1.89 at 1.3"; bright
// 0.945-0.993) — the composite's profile mismatch (docs/multifit.md), not noise (the faint flux
// errors are 2-4%). The spurious peaks must never be kept at their peak; they are merged into
// the bright object (duplicates) unless their fit walked on along the wing and stayed in its
// own deblender cell, which the test leaves alone (see the comment below): then they must not
// be a second object within 1".
TEST(Blends, FaintNeighbourSurvivesWhereWingPeaksMerge) {
    std::mt19937_64 rng(41);
    const bool verbose = std::getenv("DRP_MULTIFIT_VERBOSE") != nullptr;
    const double bright = 1.0e5;
    const double seps[3] = {1.3, 1.65, 2.0}, ratios[3] = {40, 20, 40};
    int lostWithout = 0;
    for (int trial = 0; trial < 3; ++trial) {
        const double sep = seps[trial], ratio = ratios[trial], ang = 0.7 + 2.1 * trial;
        const double du = sep * std::cos(ang), dv = sep * std::sin(ang);
        TrueGalaxy bulge, disk, faint;
        bulge.n = 4;
        bulge.rEff = 0.35;
        disk.n = 1;
        disk.rEff = 0.9;
        disk.e1 = 0.15;
        faint.n = 1;
        faint.rEff = 0.3;
        faint.u = du;
        faint.v = dv;
        const double fFaint = bright / ratio;
        Scene sc = makeScene({{bulge, {0.4 * bright}}, {disk, {0.6 * bright}}, {faint, {fFaint}}},
                             6, 20.0, rng, 51);
        std::vector<ObjectInit> members(2);
        members[0].u = 0.03;
        members[0].v = -0.02;
        members[1].u = du + 0.04;  // the deblender's peak, 0.05" off
        members[1].v = dv - 0.03;
        for (auto& m : members) m.halfSize = 4.0;
        std::vector<ObjectFit> fits = fitGroup(sc.epochs, 1, members, ObjectFitConfig{});
        const ObjectFit& f = fits[1];
        const FitResult& c = f.chosen();
        if (verbose)
            std::printf(
                "faint sep %.2f ratio %.0f: flags %lld at %+.3f %+.3f (truth %+.3f %+.3f) "
                "model/true %.3f psf/true %.3f (err %.3f) r_e %.2f gain %.1f control "
                "%.1f; bright model/true %.4f\n",
                sep, ratio, static_cast<long long>(f.flags), c.u, c.v, du, dv,
                f.modelFlux(0) / fFaint, f.psfFlux(0) / fFaint, f.psfFluxErr(0) / fFaint,
                f.exp.rEff, f.separateDeltaChi2, f.separateControlChi2,
                fits[0].modelFlux(0) / bright);
        ASSERT_FALSE(f.flags & kFlagDuplicate) << "trial " << trial;
        if (f.flags & kFlagCentreFixed) {  // held exactly at the deblender's peak
            EXPECT_EQ(c.u, members[1].u);
            EXPECT_EQ(c.v, members[1].v);
        }
        EXPECT_LT(std::hypot(c.u - du, c.v - dv), 0.1) << "trial " << trial;
        EXPECT_NEAR(f.psfFlux(0) / fFaint, 1.0, sep < 1.5 ? 1.0 : 0.35) << "trial " << trial;
        EXPECT_NEAR(fits[0].modelFlux(0) / bright, 1.0, 0.06) << "trial " << trial;
        // Without the test (the previous rules) the same data lose the faint galaxy: merged, or
        // its centre pulled off its peak.
        ObjectFitConfig without;
        without.separateDeltaChi2 = 0;
        const ObjectFit old = fitGroup(sc.epochs, 1, members, without)[1];
        const bool lost = (old.flags & kFlagDuplicate) ||
                          !(std::hypot(old.chosen().u - du, old.chosen().v - dv) < 0.1);
        if (verbose)
            std::printf("  without the test: flags %lld at %+.3f %+.3f\n",
                        static_cast<long long>(old.flags), old.chosen().u, old.chosen().v);
        lostWithout += lost ? 1 : 0;

        for (const bool star : {true, false}) {
            TrueGalaxy s;
            s.n = 0;
            Scene sw = star ? makeScene(s, {4 * bright}, 6, 20.0, rng, 51)
                            : makeScene({{bulge, {0.4 * bright}}, {disk, {0.6 * bright}}}, 6, 20.0,
                                        rng, 51);
            std::vector<ObjectFit> w = fitGroup(sw.epochs, 1, members, ObjectFitConfig{});
            if (verbose)
                std::printf(
                    "  spurious on %s: flags %lld at %+.3f %+.3f psf flux %.0f +- %.0f "
                    "gain %.1f control %.1f\n",
                    star ? "star" : "galaxy", static_cast<long long>(w[1].flags), w[1].chosen().u,
                    w[1].chosen().v, w[1].psfFlux(0), w[1].psfFluxErr(0), w[1].separateDeltaChi2,
                    w[1].separateControlChi2);
            // Never kept at its peak as a source; merged, or (its fit having walked on along
            // the wing, where the test leaves a moved fit alone: on the demo release merging
            // those lost real faint galaxies) no second object within the release's 1" match.
            EXPECT_FALSE(w[1].flags & kFlagCentreFixed) << "trial " << trial << " star " << star;
            EXPECT_TRUE((w[1].flags & kFlagDuplicate) ||
                        std::hypot(w[1].chosen().u - w[0].chosen().u,
                                   w[1].chosen().v - w[0].chosen().v) > 1.0)
                << "trial " << trial << " star " << star;
        }
    }
    EXPECT_EQ(lostWithout, 3);
}
