// The issue's pairs ("truth pairs with separation ≥ 1 PSF FWHM and flux ratio ≤ 10: median
// |Δflux/flux| of the deblended children ≤ 5% per band, colour error ≤ 0.05 mag median") on
// three simulated patches, each simulated twice: with its visits' photon noise and without it
// (the same sky, visits, coadds and deblender, deblend_sim_test's; only the noise differs).
//
// 1. IssuePairsWithoutNoise: the deblender's OWN error — what it does to the light (partition,
//    templates, aperture corrections) — held to the issue's bounds.
// 2. TemplateNoiseAtTheProfileFloor: what the noise adds, against the Cramér–Rao bound of an
//    unbiased estimator that has to measure each galaxy's size and ellipticity from the same
//    pixels (profile_floor.h, "size and ellipticity fitted": every object within 20 px rendered
//    as the simulator renders it, bulge + disk, fitted at once). On these children (coadd
//    S/N ≥ 10, median ≈ 20) that bound alone is a median |ΔF/F| of 0.053–0.060 per band and
//    0.050–0.056 mag in colour, at or above the issue's bounds before any deblending error
//    (docs/deblend.md "Profile floors"), so with noise the issue's bounds cannot be asserted;
//    what is asserted is that the deblender's noise stays near that bound and that the
//    with-noise errors are what its own error plus that noise allow.
//
// Sample: three patches chosen before these tests existed (the test patch, another realisation,
// the benchmark's patch: docs/deblend.md "A larger sample"). The simulation is deterministic,
// so the figures are too.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <map>

#include "patch_floor.h"

using namespace drp;
using namespace drp::deblend;
using namespace drp::deblend::testing;

namespace {

double colourError(const std::vector<double>& f, const std::vector<double>& truth, int b) {
    return -2.5 * std::log10(f[b] / f[b + 1]) + 2.5 * std::log10(truth[b] / truth[b + 1]);
}

/// Per issue's-pair child, pooled over the three patches.
struct PairChild {
    std::vector<double> truth;      ///< true flux per band, nJy
    std::vector<double> clean;      ///< template flux without noise (empty: not found there)
    std::vector<double> noisy;      ///< template flux with noise (empty: not an issue's pair there)
    bool splitClean = false;        ///< every neighbour found as its own object, without noise
    std::vector<double> floorFlux;  ///< profile floor σ(F)/F, size and ellipticity fitted
    std::vector<double> floorColour;  ///< its colour σ, mag
};

const std::vector<PairChild>& pairChildren() {
    static const std::vector<PairChild> all = [] {
        std::vector<PairChild> out;
        for (const auto& [size, seed] :
             {std::pair{1000, 7}, std::pair{1000, 8}, std::pair{1400, 7}}) {
            std::map<long long, PairChild> byId;
            for (bool noise : {false, true}) {
                SimPatchConfig pc;
                pc.size = size;
                pc.seed = seed;
                pc.addNoise = noise;
                SimPatch patch = makeSimPatch(pc);
                const PatchDeblend out =
                    deblendPatch(patch.maskedImages(), patch.psfSigma, {}, {}, patch.psfKernel);
                const std::vector<int> mo = matchTruthToObjects(patch, out, 2.5);
                const std::vector<sim::TruncatedMoffat> moffats =
                    noise ? patchMoffats(patch) : std::vector<sim::TruncatedMoffat>{};
                for (const IssuePair& ip : issuePairs(patch, mo)) {
                    const TruthEntry& tr = patch.truth[ip.truth];
                    PairChild& c = byId[static_cast<long long>(tr.object.id)];
                    c.truth = tr.flux;
                    const PatchObject& o = out.objects[std::size_t(ip.object)];
                    if (!noise) {
                        c.clean = o.templateFlux;
                        c.splitClean = ip.around.split;
                        continue;
                    }
                    c.noisy = o.templateFlux;
                    const ProfileFloor pf = childProfileFloor(patch, moffats, ip.truth, 20.0);
                    c.floorFlux = pf.flux[2];
                    c.floorColour = pf.colour[2];
                }
            }
            for (auto& [id, c] : byId) out.push_back(std::move(c));
        }
        return out;
    }();
    return all;
}

}  // namespace

TEST(DeblendPairs, IssuePairsWithoutNoise) {
    // The SPLIT pairs (sim_patch.h IssuePair: every neighbour found as an object of its own; a
    // neighbour lost to detection is a completeness matter, deblend_sim_test's). Measured 0.038 /
    // 0.028 / 0.025 per band and 0.020 / 0.021 mag on 83 children (all 95, the 12 that lost a
    // neighbour to detection included: 0.041 / 0.034 / 0.030).
    std::vector<std::vector<double>> flux(3), colour(2), allFlux(3);
    std::size_t notSplit = 0;
    for (const PairChild& c : pairChildren()) {
        if (c.clean.empty()) continue;
        for (int b = 0; b < 3; ++b) allFlux[b].push_back(std::abs(c.clean[b] / c.truth[b] - 1));
        if (!c.splitClean) {
            ++notSplit;
            continue;
        }
        for (int b = 0; b < 3; ++b) flux[b].push_back(std::abs(c.clean[b] / c.truth[b] - 1));
        for (int b = 0; b < 2; ++b) {
            ASSERT_GT(c.clean[b], 0);
            ASSERT_GT(c.clean[b + 1], 0);
            colour[b].push_back(std::abs(colourError(c.clean, c.truth, b)));
        }
    }
    std::printf(
        "issue's pairs without noise: %zu split children (%zu more lost a neighbour to "
        "detection)\n  template flux median |dF/F| g/r/i %.3f %.3f %.3f (all %zu: %.3f "
        "%.3f %.3f); colours g-r %.3f r-i %.3f mag\n",
        flux[0].size(), notSplit, medianOf(flux[0]), medianOf(flux[1]), medianOf(flux[2]),
        allFlux[0].size(), medianOf(allFlux[0]), medianOf(allFlux[1]), medianOf(allFlux[2]),
        medianOf(colour[0]), medianOf(colour[1]));
    // A sample big enough for a median to mean something (83 at this writing; one child moves
    // a median of 80 by ~0.002).
    ASSERT_GE(flux[0].size(), 60u);
    // The issue's bounds, as they stand.
    for (int b = 0; b < 3; ++b)
        EXPECT_LE(medianOf(flux[b]), 0.05) << "band "
                                           << "gri"[b];
    for (int b = 0; b < 2; ++b) EXPECT_LE(medianOf(colour[b]), 0.05) << "colour " << b;
}

TEST(DeblendPairs, TemplateNoiseAtTheProfileFloor) {
    // The children that are issue's pairs with noise and were found without it too.
    std::vector<std::vector<double>> share(3), measured(3), sigma(3), bias(3);
    std::vector<std::vector<double>> colMeasured(2), colSigma(2), colBias(2), floorFlux(3);
    for (const PairChild& c : pairChildren()) {
        if (c.noisy.empty() || c.clean.empty() || !std::isfinite(c.floorFlux[0])) continue;
        for (int b = 0; b < 3; ++b) {
            // The noise's share of the template flux in units of the floor: |F − F(no noise)|
            // / (F σ_floor), whose median is 0.674 for an estimator at the bound.
            share[b].push_back(std::abs(c.noisy[b] - c.clean[b]) / c.truth[b] / c.floorFlux[b]);
            measured[b].push_back(std::abs(c.noisy[b] / c.truth[b] - 1));
            sigma[b].push_back(c.floorFlux[b]);
            bias[b].push_back(c.clean[b] / c.truth[b] - 1);
        }
        for (int b = 0; b < 2; ++b) {
            if (!(c.noisy[b] > 0 && c.noisy[b + 1] > 0 && c.clean[b] > 0 && c.clean[b + 1] > 0))
                continue;
            colMeasured[b].push_back(std::abs(colourError(c.noisy, c.truth, b)));
            colSigma[b].push_back(c.floorColour[b]);
            colBias[b].push_back(colourError(c.clean, c.truth, b));
        }
    }
    const std::size_t n = share[0].size();
    std::printf("issue's pairs with noise, found without it too: %zu children\n", n);
    // 94 at this writing; a median of 60 draws of |N(0, 1)| scatters by 0.10 (15%).
    ASSERT_GE(n, 60u);
    for (int b = 0; b < 3; ++b) {
        const double floor = validate::informationFloor(sigma[b]);
        const double budget = validate::informationFloor(sigma[b], bias[b]);
        const double noiseRatio = medianOf(share[b]) / 0.6745;
        const double budgetRatio = medianOf(measured[b]) / budget;
        std::printf(
            "  %c: median |dF/F| %.3f; profile floor %.3f; own error + floor noise %.3f "
            "(measured / that %.2f); noise's share / the floor's %.2f\n",
            "gri"[b], medianOf(measured[b]), floor, budget, budgetRatio, noiseRatio);
        // The noise the template flux takes on: within 1.3x the bound's (measured 0.96 / 1.01
        // / 1.14 on 94 children, whose median scatters by 12%; on five other patches
        // docs/deblend.md gives 1.08-1.41). A deblender whose templates took on more noise —
        // 14% more in i, 29% in r, 35% in g — fails this.
        EXPECT_LE(noiseRatio, 1.3) << "band "
                                   << "gri"[b];
        // The with-noise error is what the own error and that noise allow, within 20%
        // (measured 1.06 / 1.10 / 0.97; colours below 0.97 / 0.83).
        EXPECT_LE(budgetRatio, 1.2) << "band "
                                    << "gri"[b];
        // And the bound itself is not below the issue's 5% in g on this sample: if it were,
        // the bound would no longer explain why the issue's bound is not asserted with noise.
        if (b == 0) {
            EXPECT_GT(floor, 0.05);
        }
    }
    for (int b = 0; b < 2; ++b) {
        const double budget = validate::informationFloor(colSigma[b], colBias[b]);
        std::printf(
            "  colour %d: median error %.3f mag; profile floor %.3f; own error + floor noise "
            "%.3f (measured / that %.2f)\n",
            b, medianOf(colMeasured[b]), validate::informationFloor(colSigma[b]), budget,
            medianOf(colMeasured[b]) / budget);
        EXPECT_LE(medianOf(colMeasured[b]) / budget, 1.2) << "colour " << b;
    }
}
