// Child fluxes against truth on the issue's pairs of one or more simulated patches (sim_patch.h),
// pooled: a larger sample than deblend_sim_test's (which also needs source-extractor to find
// them), for measurements, not a test. Usage:
//     deblend_pairs_dump [--noise-free] [--list] [--decompose] [--profile-floor]
//                        [--groupfit | --childfit] [--variant K=V[,K=V...]]... SIZE:SEED ...
// e.g. `deblend_pairs_dump 1000:7 1000:8 1400:7` (the test patch, another realisation, the
// benchmark's patch). The sample: truth objects with coadd S/N ≥ 10 in a patch's interior that
// we detect (0.5" greedy match) and whose neighbours (S/N ≥ 5 within 3") are all ≥ 1 PSF FWHM
// away with a flux ratio (r) ≤ 10 to the nearest — the issue's pairs. Printed: per band, the
// median |ΔF/F| of the template and footprint fluxes, their signed medians, what noise alone
// would give (0.674 × median σ/F), and the median colour errors; the template figures again by
// the child's S/N (10–25, 25–60, ≥ 60: photon noise dominates the first, the deblender's own
// error the last); the INFORMATION FLOOR of each figure (informationFloor below: what no unbiased
// estimator beats on these children's S/N, with the morphology known, with a galaxy's size
// fitted, and with every object within 20 px fitted at once: blendedFloor); the same on the
// SPLIT pairs (every neighbour of the pair condition found as an object of its own: the rest
// lost a neighbour to detection, not to deblending), stars and galaxies apart; and the
// detection metrics of deblend_sim_test (completeness, purity, undeblended multi-peak parents)
// over all the patches. --list prints every object (with its aperture correction φ = model /
// template flux per band and its size-fitted and blended floors) and every missed one.
// --noise-free simulates the visits without noise (the deblender's systematic errors alone).
// --variant (repeatable) deblends each simulated patch again with the default DeblendConfig
// changed as given (keys: matchSmoothing, symmetric, subpixelCentres, maxIterations, minIterations,
// relativeTolerance, residualPeaks, residualThreshold, prune, pruneRadius), and prints each
// variant's statistics after the default's: configurations compared on the same simulated skies,
// simulated once. The CPU time of deblendPatch is printed per variant.
// Also printed: the median |ΔF| / templateFluxErr (0.674 if the errors were right), and it and
// |ΔF/F| by the child's blendedness.
// --decompose simulates each patch a second time without noise and deblends it with the same
// configuration: each pair child's noise-free error b_i (the deblender's own) and, with the
// blended floor σ_i on top, informationFloor(σ, b): the best an estimator with that systematic
// error could do with noise. And the NOISE PULLS: the median |F − F(no noise)| / σ of the
// template and footprint fluxes, all and by blendedness (0.674 if the errors are right; what
// kSplitNoiseGain in deblender.cpp is calibrated on), and the footprint fluxes' pulls split by
// whether the noise changed the parent footprint's area by 5% or more.
// --profile-floor adds the PROFILE FLOORS (profile_floor.h): the blended floor with the
// simulator's own bulge + disk profiles, with the shape known, the size fitted, the size and
// ellipticity fitted, and the bulge and disk fluxes free in every band too (about 3 s per patch).
// --groupfit measures each pair child's parent again with multifit's group fit (point, exp, dev,
// CModel) on the native coadd pixels of the footprint; --childfit fits each child alone on its
// re-apportioned image. Their median |ΔF/F| is printed beside the template flux's
// (docs/deblend.md: neither is better).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>
#include <stdexcept>
#include <string>

#include <Eigen/Dense>

#include "drp/multifit/object_fit.h"
#include "patch_floor.h"

using namespace drp;
using namespace drp::deblend;
using namespace drp::deblend::testing;

namespace {

/// The information floors (validate::informationFloor): with each child's morphology known,
/// σ = 1/S/N (its optimal-measurement S/N alone on the sky); with a galaxy's size fitted too,
/// validate::kSizeFittedFluxErrorFactor times that.
using validate::informationFloor;

/// The default DeblendConfig with "K=V,K=V" applied.
DeblendConfig variantConfig(const std::string& spec) {
    DeblendConfig c;
    std::size_t pos = 0;
    while (pos < spec.size()) {
        std::size_t end = spec.find(',', pos);
        if (end == std::string::npos) end = spec.size();
        const std::string kv = spec.substr(pos, end - pos);
        pos = end + 1;
        const std::size_t eq = kv.find('=');
        if (eq == std::string::npos) throw std::runtime_error("variant: expected K=V in " + kv);
        const std::string k = kv.substr(0, eq);
        const double v = std::stod(kv.substr(eq + 1));
        if (k == "matchSmoothing")
            c.matchSmoothing = v;
        else if (k == "symmetric")
            c.symmetric = v != 0;
        else if (k == "maxIterations")
            c.maxIterations = static_cast<int>(v);
        else if (k == "minIterations")
            c.minIterations = static_cast<int>(v);
        else if (k == "relativeTolerance")
            c.relativeTolerance = v;
        else if (k == "subpixelCentres")
            c.subpixelCentres = v != 0;
        else if (k == "residualPeaks")
            c.residualPeaks = v != 0;
        else if (k == "prune")
            c.prune = v != 0;
        else if (k == "residualThreshold")
            c.residualThreshold = v;
        else if (k == "pruneRadius")
            c.pruneRadius = v;

        else
            throw std::runtime_error("variant: unknown key " + k);
    }
    c.validate();
    return c;
}

/// Per-variant pooled statistics.
struct Stats {
    std::vector<std::vector<double>> tmpl{3}, tmplSigned{3}, fp{3}, fpSigned{3}, tmplSig{3},
        fpSig{3}, colT{2}, colF{2}, floorSig{3}, colSig{2};
    // The issue's pairs that were split: each neighbour of the pair condition found as an object
    // of its own. The rest lost a neighbour to detection (S/N 5-10 ones mostly), not deblending.
    std::vector<std::vector<double>> splitT{3}, splitFloor{3}, splitCol{2}, splitColFloor{2};
    // Information floors with each galaxy's size fitted too (sizeFactor), and the split pairs'
    // template errors of stars and of galaxies apart.
    std::vector<std::vector<double>> blendFloor{3}, splitBlendFloor{3}, blendColFloor{2},
        splitBlendColFloor{2};  // blendedFloor
    std::vector<std::vector<double>> floorSize{3}, splitFloorSize{3}, splitStarT{3}, splitGalT{3},
        splitStarFloor{3}, splitGalFloorSize{3};
    // The same by the child's S/N (best band): [10, 25), [25, 60), >= 60 — where photon noise
    // dominates and where the deblender's own error does.
    std::vector<std::vector<std::vector<double>>> binT{3, std::vector<std::vector<double>>(3)},
        binSig{3, std::vector<std::vector<double>>(3)},
        binFloor{3, std::vector<std::vector<double>>(3)},
        binCol{3, std::vector<std::vector<double>>(2)};
    // Every blend member (S/N >= 10, a deblended parent's child), pairs or not: deblend_sim_test's
    // "blend members" on a pooled sample.
    std::vector<std::vector<double>> members{3};
    // deblend_sim_test's detection metrics, pooled: completeness of interior truth objects with
    // S/N >= 10 (and of those without a brighter one within 1 FWHM), purity of interior
    // detections with peak S/N >= 10, multi-peak parents left undeblended.
    int nTruth = 0, nFound = 0, nResolvable = 0, nResolvableFound = 0, nDet = 0, nReal = 0,
        multi = 0, undeblended = 0;
    double cpu = 0;
    int unconverged = 0;
    // --groupfit / --childfit: |ΔF/F|, signed, colour errors, CPU.
    std::vector<std::vector<double>> gfit{3}, gfitSigned{3}, gcol{2};
    double gcpu = 0;
    // |ΔF| / templateFluxErr of the pair children (0.674 if the errors are right)
    std::vector<std::vector<double>> pull{3};
    // The same and |ΔF/F| by the child's blendedness (blendEdges).
    std::vector<std::vector<std::vector<double>>> betaPull{4, std::vector<std::vector<double>>(3)},
        betaErr{4, std::vector<std::vector<double>>(3)};
    // --decompose: each pair child's error on the same patch simulated without noise (the
    // deblender's own; flux signed, colour absolute), with its blended floor σ, per band and
    // colour.
    std::vector<std::vector<double>> decBias{3}, decSigma{3}, decColBias{2}, decColSigma{2};
    // ... and the noise's share of its template and footprint fluxes against their errors,
    // |F − F(no noise)| / σ, by blendedness (0.674 if the errors are right: TEMPLATE FLUX ERROR).
    std::vector<std::vector<std::vector<double>>> decPullT{4, std::vector<std::vector<double>>(3)},
        decPullF{4, std::vector<std::vector<double>>(3)};
    // The footprint fluxes' noise pulls of children whose parent footprint's area the noise
    // changed by < 5% ([0]) and by more ([1]): the footprint sum moves with the footprint.
    std::vector<std::vector<std::vector<double>>> decPullFArea{2,
                                                               std::vector<std::vector<double>>(3)};
    // --profile-floor: each pair child's profileFloor σ(F)/F per variant and band, and colours.
    std::vector<std::vector<std::vector<double>>> profFloor{4, std::vector<std::vector<double>>(3)},
        profColFloor{4, std::vector<std::vector<double>>(2)};
    // ... the template flux error over the size-and-ellipticity floor (variant 2); with
    // --decompose too, the floor as the noise in the error budget, and the noise's share of the
    // template flux |F − F(no noise)| over it (0.674 for an estimator at the floor).
    std::vector<std::vector<double>> errVsFloor{3}, decSigmaProf{3}, decNoiseVsFloor{3};
};

constexpr double snEdges[3] = {10, 25, 60};
constexpr double blendEdges[4] = {0, 0.01, 0.03, 0.1};

/// The blendEdges bin of a blendedness β.
int blendBin(double beta) {
    return beta >= blendEdges[3] ? 3 : beta >= blendEdges[2] ? 2 : beta >= blendEdges[1] ? 1 : 0;
}

constexpr double sizeFactor = validate::kSizeFittedFluxErrorFactor;

/// The BLENDED information floor of child t: σ(F_b) / F_b per band from the Fisher matrix of
/// the child and every truth object within `radius` px of it, all fitted at once on the coadd
/// pixels (background-limited, the coadd variance at the child): each a round Gaussian of
/// variance s_b = σ_g,b² + σ_PSF,b² (σ_g,b = rHalf / √(2 ln 2) in band b) with free per-band
/// fluxes and a free centre, and a galaxy a free size scale λ (σ_g,b² → λ σ_g,b², shared by the
/// bands, as the deblender's one morphology is). Alone on the sky it is the size-fitted floor,
/// made a little lower by the bands sharing the size; a close neighbour raises it as much as the
/// two models are alike. Approximations: Gaussian and round profiles, Gaussian PSFs.
struct BlendedFloor {
    std::vector<double> flux;    ///< σ(F_b) / F_b
    std::vector<double> colour;  ///< σ of colour b − (b+1), mag (with the bands' covariance)
};

BlendedFloor blendedFloor(const SimPatch& patch, std::size_t t, double radius) {
    const std::size_t nb = patch.psfSigma.size();
    const TruthEntry& tr = patch.truth[t];
    const std::vector<std::size_t> group = floorGroup(patch, t, radius);
    // Parameters: per object [F_0 .. F_nb-1, x, y, (λ for galaxies)].
    std::vector<int> first;
    int np = 0;
    for (std::size_t u : group) {
        first.push_back(np);
        np += int(nb) + 2 + (patch.truth[u].object.isStar ? 0 : 1);
    }
    auto sg2 = [&](std::size_t u, std::size_t b) {
        const double r = patch.truth[u].rHalfPx[b];
        return r * r / (2 * std::log(2.0));
    };
    Eigen::MatrixXd fisher = Eigen::MatrixXd::Zero(np, np);
    const Point2I c = tr.pixel.nearestPixel();
    std::vector<double> grad(std::size_t(np), 0.0);
    for (std::size_t b = 0; b < nb; ++b) {
        const double var = patch.coadds[b].variance().at(c);
        if (!(var > 0)) return {std::vector<double>(nb, NAN), std::vector<double>(nb - 1, NAN)};
        double reach = 0;
        for (std::size_t u : group)
            reach = std::max(reach, 5 * std::sqrt(sg2(u, b) + std::pow(patch.psfSigma[b], 2)));
        const Box2I win =
            Box2I(c, Extent2I{1, 1}).grownBy(int(std::ceil(radius + reach))).clippedTo(patch.box);
        for (int y = win.minY(); y <= win.maxY(); ++y)
            for (int x = win.minX(); x <= win.maxX(); ++x) {
                std::fill(grad.begin(), grad.end(), 0.0);
                for (std::size_t gi = 0; gi < group.size(); ++gi) {
                    const TruthEntry& o = patch.truth[group[gi]];
                    const double s = sg2(group[gi], b) + std::pow(patch.psfSigma[b], 2);
                    const double dx = x - o.pixel.x, dy = y - o.pixel.y, r2 = dx * dx + dy * dy;
                    if (r2 > 40 * s) continue;  // < 2e-9 of its peak
                    const double g = o.flux[b] / (2 * M_PI * s) * std::exp(-0.5 * r2 / s);
                    const int p0 = first[gi];
                    grad[std::size_t(p0) + b] = o.flux[b] > 0 ? g / o.flux[b] : 0.0;
                    grad[std::size_t(p0) + nb] = g * dx / s;
                    grad[std::size_t(p0) + nb + 1] = g * dy / s;
                    if (!o.object.isStar)
                        grad[std::size_t(p0) + nb + 2] =
                            g * (r2 / (2 * s * s) - 1 / s) * sg2(group[gi], b);
                }
                for (int i = 0; i < np; ++i)
                    if (grad[std::size_t(i)] != 0)
                        for (int j = 0; j < np; ++j)
                            fisher(i, j) += grad[std::size_t(i)] * grad[std::size_t(j)] / var;
            }
    }
    // Parameters nothing constrains (a zero flux's derivative) are pinned.
    for (int i = 0; i < np; ++i)
        if (!(fisher(i, i) > 0)) fisher(i, i) = 1;
    const Eigen::MatrixXd cov = fisher.ldlt().solve(Eigen::MatrixXd::Identity(np, np));
    BlendedFloor out;
    for (std::size_t b = 0; b < nb; ++b)
        out.flux.push_back(std::sqrt(std::max(0.0, cov(int(b), int(b)))) / tr.flux[b]);
    for (std::size_t b = 0; b + 1 < nb; ++b) {
        const int i = int(b), j = int(b) + 1;
        const double v = cov(i, i) / std::pow(tr.flux[b], 2) +
                         cov(j, j) / std::pow(tr.flux[b + 1], 2) -
                         2 * cov(i, j) / (tr.flux[b] * tr.flux[b + 1]);
        out.colour.push_back(2.5 / std::log(10.0) * std::sqrt(std::max(0.0, v)));
    }
    return out;
}

}  // namespace

/// --groupfit / --childfit: multifit's fits (point / exp / dev, CModel) of a parent's children on
/// the native coadd pixels of its footprint, one "epoch" per band with the coadd PSF as a
/// 3-Gaussian mixture: all children together (multifit::fitGroup), or (childMode) each alone on
/// its re-apportioned image (childImage). Returns per object of the patch (empty for the other
/// parents' objects) the chosen flux per band: PSF flux for point sources, CModel for galaxies.
std::vector<std::vector<double>> groupFit(const SimPatch& patch, const PatchDeblend& out,
                                          std::size_t parent, bool childMode) {
    const Footprint& fp = out.footprints[parent];
    std::vector<std::size_t> members;
    for (std::size_t j = 0; j < out.objects.size(); ++j)
        if (out.objects[j].parent == parent) members.push_back(j);
    const double scale = 0.2;
    const Point2D ref = out.objects[members.front()].position;
    std::vector<multifit::ObjectInit> inits;
    for (std::size_t j : members) {
        const PatchObject& o = out.objects[j];
        multifit::ObjectInit in;
        in.u = (o.position.x - ref.x) * scale;
        in.v = (o.position.y - ref.y) * scale;
        in.rEff = std::max(0.2, 0.5 * o.radius * scale);
        in.halfSize = std::clamp(2.5 * o.radius + 4, 8.0, 40.0) * scale;
        inits.push_back(in);
    }
    const int nb = static_cast<int>(patch.coadds.size());
    std::vector<multifit::Epoch> eps;
    const Box2I cut = fp.bbox();
    for (int b = 0; b < nb; ++b) {
        const MaskedImage& mi = patch.coadds[b].maskedImage();
        multifit::Epoch e;
        e.band = b;
        e.image = ImageD(cut, 0.0);
        e.inverseVariance = ImageD(cut, 0.0);
        for (int y = cut.minY(); y <= cut.maxY(); ++y)
            for (int x = cut.minX(); x <= cut.maxX(); ++x) {
                if (!fp.spans().contains({x, y})) continue;
                const float v = mi.variance().at({x, y});
                const float d = mi.image().at({x, y});
                if (!(v > 0) || !std::isfinite(d)) continue;
                e.image.at({x, y}) = d;
                e.inverseVariance.at({x, y}) = 1.0 / v;
            }
        e.uvToPixel = Eigen::Matrix2d::Identity() / scale;
        e.refPixel = Eigen::Vector2d(ref.x, ref.y);
        ImageD k = patch.psfKernel[b];
        k.setXY0({-(k.width() / 2), -(k.height() / 2)});
        e.psf = multifit::fitPsfMixture(k, 3).mixture;
        eps.push_back(std::move(e));
    }
    multifit::ObjectFitConfig cfg;
    std::vector<multifit::ObjectFit> fits;
    if (!childMode || !out.results[parent].deblended)
        fits = multifit::fitGroup(eps, nb, inits, cfg);
    else
        for (std::size_t m = 0; m < members.size(); ++m) {
            std::vector<multifit::Epoch> ce = eps;
            for (int b = 0; b < nb; ++b) {
                const Image<float> ci =
                    childImage(out.results[parent], m, fp, patch.coadds[b].maskedImage(), b);
                for (int y = cut.minY(); y <= cut.maxY(); ++y)
                    for (int x = cut.minX(); x <= cut.maxX(); ++x)
                        if (ce[b].inverseVariance.at({x, y}) > 0)
                            ce[b].image.at({x, y}) = ci.at({x, y});
            }
            fits.push_back(multifit::fitObject(ce, nb, inits[m], cfg));
        }
    std::vector<std::vector<double>> res(out.objects.size());
    for (std::size_t m = 0; m < members.size(); ++m) {
        const multifit::ObjectFit& f = fits[m];
        std::vector<double> v(nb, NAN);
        for (int b = 0; b < nb; ++b) v[b] = f.extended ? f.modelFlux[b] : f.psfFlux[b];
        res[members[m]] = v;
    }
    return res;
}

int main(int argc, char** argv) {
    bool noiseFree = false, list = false, groupfit = false, childfit = false, decompose = false,
         profile = false;
    std::vector<std::pair<int, int>> specs;
    std::vector<std::string> variants{""};
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        int size = 0, seed = 0;
        if (a == "--noise-free")
            noiseFree = true;
        else if (a == "--decompose")
            decompose = true;
        else if (a == "--profile-floor")
            profile = true;
        else if (a == "--groupfit")
            groupfit = true;
        else if (a == "--childfit")
            groupfit = childfit = true;
        else if (a == "--list")
            list = true;
        else if (a == "--variant" && i + 1 < argc)
            variants.push_back(argv[++i]);
        else if (std::sscanf(a.c_str(), "%d:%d", &size, &seed) == 2 && size >= 200)
            specs.emplace_back(size, seed);
        else {
            std::fprintf(stderr,
                         "usage: %s [--noise-free] [--list] [--decompose] [--profile-floor] "
                         "[--groupfit | --childfit] "
                         "[--variant K=V[,K=V...]]... "
                         "SIZE:SEED ...\n",
                         argv[0]);
            return 2;
        }
    }
    if (specs.empty()) specs.emplace_back(1000, 7);
    std::vector<DeblendConfig> configs;
    for (const std::string& v : variants) configs.push_back(variantConfig(v));
    const char* bands = "gri";
    std::vector<Stats> stats(configs.size());
    for (const auto& [size, seed] : specs) {
        SimPatchConfig pc;
        pc.size = size;
        pc.seed = static_cast<std::uint64_t>(seed);
        pc.addNoise = !noiseFree;
        SimPatch sim;
        try {
            sim = makeSimPatch(pc);
        } catch (const std::exception& e) {
            std::printf("patch %d² px seed %d: cannot simulate (%s), skipped\n", size, seed,
                        e.what());
            continue;
        }
        SimPatch simNoiseFree;
        if (decompose && !noiseFree) {
            SimPatchConfig pn = pc;
            pn.addNoise = false;
            simNoiseFree = makeSimPatch(pn);
        }
        std::vector<sim::TruncatedMoffat> moffats;
        if (profile) {
            moffats = patchMoffats(sim);
            std::printf(
                "patch %d² px seed %d: Moffat FWHM matched to the coadd PSFs %.3f %.3f %.3f px\n",
                size, seed, moffats[0].fwhm(), moffats[1].fwhm(), moffats[2].fwhm());
        }
        for (std::size_t vi = 0; vi < configs.size(); ++vi) {
            Stats& st = stats[vi];
            SimPatch patch = sim;  // deblendPatch sets mask planes
            const std::clock_t t0 = std::clock();
            const PatchDeblend out = deblendPatch(patch.maskedImages(), patch.psfSigma, {},
                                                  configs[vi], patch.psfKernel);
            st.cpu += double(std::clock() - t0) / CLOCKS_PER_SEC;
            for (const DeblendResult& r : out.results)
                st.unconverged += r.deblended && !r.converged;
            const std::vector<int> mo = matchTruthToObjects(patch, out, 2.5);
            {
                const DetectionCounts dc = detectionCounts(patch, out, mo);
                st.nTruth += dc.nTruth;
                st.nFound += dc.nFound;
                st.nResolvable += dc.nResolvable;
                st.nResolvableFound += dc.nResolvableFound;
                st.nDet += dc.nDet;
                st.nReal += dc.nReal;
                st.multi += dc.multi;
                st.undeblended += dc.undeblended;
                for (std::size_t t : list ? dc.missed : std::vector<std::size_t>{}) {
                    const TruthEntry& tr = patch.truth[t];
                    double dd = 1e9, dn = 1e9, sn = 0, dsig = 0;
                    int nsib = 0;
                    for (const PatchObject& o : out.objects) {
                        const double r =
                            std::hypot(o.position.x - tr.pixel.x, o.position.y - tr.pixel.y);
                        if (r < dd) {
                            dd = r;
                            dsig = o.significance;
                            nsib = o.nSiblings;
                        }
                    }
                    for (const TruthEntry& u : patch.truth) {
                        const double r = std::hypot(u.pixel.x - tr.pixel.x, u.pixel.y - tr.pixel.y);
                        if (&u != &tr && r < dn) {
                            dn = r;
                            sn = u.snMax;
                        }
                    }
                    std::printf(
                        "  %d:%d missed truth %lld %s S/N %.1f rdisk %.2f\": nearest "
                        "detection %.1f px (S/N %.1f, %d siblings), nearest truth "
                        "%.1f px (S/N %.1f)%s%s\n",
                        size, seed, static_cast<long long>(tr.object.id),
                        tr.object.isStar ? "star" : "galaxy", tr.snMax, tr.object.diskREff, dd,
                        dsig, nsib, dn, sn, vi ? " variant " : "", variants[vi].c_str());
                }
            }
            for (std::size_t t = 0; t < patch.truth.size(); ++t) {
                const TruthEntry& tr = patch.truth[t];
                if (tr.snMax < 10 || !patch.interior(tr.pixel) || mo[t] < 0) continue;
                if (out.objects[mo[t]].nSiblings > 1)
                    for (int b = 0; b < 3; ++b)
                        st.members[b].push_back(
                            std::abs(out.objects[mo[t]].templateFlux[b] / tr.flux[b] - 1));
            }
            const std::vector<IssuePair> pairs = issuePairs(patch, mo);
            // --decompose: the same sky without noise, deblended with the same configuration;
            // truth object id -> that child's template and footprint fluxes per band.
            std::map<std::int64_t, std::vector<double>> noiseFreeFlux, noiseFreeFootprint;
            std::map<std::int64_t, double> noiseFreeArea;  // of the child's parent footprint
            if (!simNoiseFree.coadds.empty()) {
                SimPatch pn = simNoiseFree;
                const PatchDeblend outNf =
                    deblendPatch(pn.maskedImages(), pn.psfSigma, {}, configs[vi], pn.psfKernel);
                const std::vector<int> moNf = matchTruthToObjects(pn, outNf, 2.5);
                for (std::size_t u = 0; u < pn.truth.size(); ++u)
                    if (moNf[u] >= 0) {
                        noiseFreeFlux[pn.truth[u].object.id] =
                            outNf.objects[std::size_t(moNf[u])].templateFlux;
                        noiseFreeFootprint[pn.truth[u].object.id] =
                            outNf.objects[std::size_t(moNf[u])].flux;
                        noiseFreeArea[pn.truth[u].object.id] = static_cast<double>(
                            outNf.footprints[outNf.objects[std::size_t(moNf[u])].parent].area());
                    }
            }
            std::map<std::size_t, std::vector<std::vector<double>>> gf;
            for (const IssuePair& ip : pairs) {
                const std::size_t t = ip.truth;
                const TruthEntry& tr = patch.truth[t];
                const double nearest = ip.around.nearest, ratio = ip.around.ratio;
                const bool split = ip.around.split;
                const PatchObject& o = out.objects[mo[t]];
                const double kSize = tr.object.isStar ? 1.0 : sizeFactor;
                auto colour = [&](const std::vector<double>& m, int b) {
                    return std::abs(-2.5 * std::log10(m[b] / m[b + 1]) +
                                    2.5 * std::log10(tr.flux[b] / tr.flux[b + 1]));
                };
                // The colour's information floor σ (informationFloor), morphology known.
                auto colourSigma = [&](int b) {
                    return 1.0857 * std::hypot(1 / tr.sn[b], 1 / tr.sn[b + 1]);
                };
                const BlendedFloor bf = blendedFloor(patch, t, 20.0);
                ProfileFloor pf;
                if (profile) {
                    pf = childProfileFloor(patch, moffats, t, 20.0);
                    for (int b = 0; b < 3; ++b)
                        st.errVsFloor[b].push_back(o.templateFluxErr[b] / tr.flux[b] /
                                                   pf.flux[2][std::size_t(b)]);
                    for (int v = 0; v < kProfileVariants; ++v) {
                        for (int b = 0; b < 3; ++b)
                            st.profFloor[v][b].push_back(pf.flux[std::size_t(v)][std::size_t(b)]);
                        for (int b = 0; b < 2; ++b)
                            st.profColFloor[v][b].push_back(
                                pf.colour[std::size_t(v)][std::size_t(b)]);
                    }
                    if (list)
                        std::printf(
                            "  %d:%d truth %lld profile floors g/r/i: shape known %.3f %.3f %.3f, "
                            "size %.3f %.3f %.3f, +ellipticity %.3f %.3f %.3f, +bulge/disk %.3f "
                            "%.3f %.3f (blended Gaussian %.3f %.3f %.3f)\n",
                            size, seed, static_cast<long long>(tr.object.id), pf.flux[0][0],
                            pf.flux[0][1], pf.flux[0][2], pf.flux[1][0], pf.flux[1][1],
                            pf.flux[1][2], pf.flux[2][0], pf.flux[2][1], pf.flux[2][2],
                            pf.flux[3][0], pf.flux[3][1], pf.flux[3][2], bf.flux[0], bf.flux[1],
                            bf.flux[2]);
                }
                if (auto nf = noiseFreeFlux.find(tr.object.id); nf != noiseFreeFlux.end()) {
                    const std::vector<double>& m = nf->second;
                    const std::vector<double>& mf = noiseFreeFootprint[tr.object.id];
                    const int bb = blendBin(o.blendedness);
                    for (int b = 0; b < 3; ++b) {
                        st.decBias[b].push_back(m[b] / tr.flux[b] - 1);
                        st.decSigma[b].push_back(bf.flux[b]);
                        if (profile) {
                            st.decSigmaProf[b].push_back(pf.flux[2][std::size_t(b)]);
                            st.decNoiseVsFloor[b].push_back(std::abs(o.templateFlux[b] - m[b]) /
                                                            tr.flux[b] /
                                                            pf.flux[2][std::size_t(b)]);
                        }
                        st.decPullT[bb][b].push_back(std::abs(o.templateFlux[b] - m[b]) /
                                                     o.templateFluxErr[b]);
                        st.decPullF[bb][b].push_back(std::abs(o.flux[b] - mf[b]) / o.fluxErr[b]);
                        const double area = static_cast<double>(out.footprints[o.parent].area());
                        const double areaNf = noiseFreeArea[tr.object.id];
                        st.decPullFArea[std::abs(area / areaNf - 1) < 0.05 ? 0 : 1][b].push_back(
                            st.decPullF[bb][b].back());
                    }
                    for (int b = 0; b < 2; ++b) {
                        st.decColBias[b].push_back(m[b] > 0 && m[b + 1] > 0 ? colour(m, b) : NAN);
                        st.decColSigma[b].push_back(bf.colour[b]);
                    }
                }
                std::vector<double> gflux;
                if (groupfit) {
                    if (!gf.count(o.parent)) {
                        const std::clock_t g0 = std::clock();
                        gf[o.parent] = groupFit(patch, out, o.parent, childfit);
                        st.gcpu += double(std::clock() - g0) / CLOCKS_PER_SEC;
                    }
                    gflux = gf[o.parent][std::size_t(mo[t])];
                    for (int b = 0; b < 3; ++b) {
                        st.gfit[b].push_back(std::abs(gflux[b] / tr.flux[b] - 1));
                        st.gfitSigned[b].push_back(gflux[b] / tr.flux[b] - 1);
                    }
                    for (int b = 0; b < 2; ++b)
                        if (gflux[b] > 0 && gflux[b + 1] > 0)
                            st.gcol[b].push_back(colour(gflux, b));
                    if (list)
                        std::printf("  groupfit truth %lld: %+.3f %+.3f %+.3f\n",
                                    static_cast<long long>(tr.object.id), gflux[0] / tr.flux[0] - 1,
                                    gflux[1] / tr.flux[1] - 1, gflux[2] / tr.flux[2] - 1);
                }
                for (int b = 0; b < 3; ++b) {
                    st.blendFloor[b].push_back(bf.flux[b]);
                    if (split) st.splitBlendFloor[b].push_back(bf.flux[b]);
                }
                for (int b = 0; b < 2; ++b) {
                    st.blendColFloor[b].push_back(bf.colour[b]);
                    if (split) st.splitBlendColFloor[b].push_back(bf.colour[b]);
                }
                if (split) {
                    for (int b = 0; b < 3; ++b) {
                        const double e = std::abs(o.templateFlux[b] / tr.flux[b] - 1);
                        st.splitT[b].push_back(e);
                        st.splitFloor[b].push_back(1 / tr.sn[b]);
                        st.splitFloorSize[b].push_back(kSize / tr.sn[b]);
                        (tr.object.isStar ? st.splitStarT : st.splitGalT)[b].push_back(e);
                        (tr.object.isStar ? st.splitStarFloor : st.splitGalFloorSize)[b].push_back(
                            kSize / tr.sn[b]);
                    }
                    for (int b = 0; b < 2; ++b)
                        if (o.templateFlux[b] > 0 && o.templateFlux[b + 1] > 0) {
                            st.splitCol[b].push_back(colour(o.templateFlux, b));
                            st.splitColFloor[b].push_back(colourSigma(b));
                        }
                }
                for (int b = 0; b < 3; ++b) {
                    const double f = tr.flux[b];
                    st.tmpl[b].push_back(std::abs(o.templateFlux[b] / f - 1));
                    st.tmplSigned[b].push_back(o.templateFlux[b] / f - 1);
                    st.fp[b].push_back(std::abs(o.flux[b] / f - 1));
                    st.fpSigned[b].push_back(o.flux[b] / f - 1);
                    st.tmplSig[b].push_back(o.templateFluxErr[b] / f);
                    st.pull[b].push_back(std::abs(o.templateFlux[b] - f) / o.templateFluxErr[b]);
                    const int bb = blendBin(o.blendedness);
                    st.betaPull[bb][b].push_back(st.pull[b].back());
                    st.betaErr[bb][b].push_back(std::abs(o.templateFlux[b] / f - 1));
                    st.fpSig[b].push_back(o.fluxErr[b] / f);
                    st.floorSig[b].push_back(1 / tr.sn[b]);
                    st.floorSize[b].push_back(kSize / tr.sn[b]);
                }
                const int bin = tr.snMax >= snEdges[2] ? 2 : tr.snMax >= snEdges[1] ? 1 : 0;
                for (int b = 0; b < 3; ++b) {
                    st.binT[bin][b].push_back(std::abs(o.templateFlux[b] / tr.flux[b] - 1));
                    st.binSig[bin][b].push_back(o.templateFluxErr[b] / tr.flux[b]);
                    st.binFloor[bin][b].push_back(1 / tr.sn[b]);
                }
                for (int b = 0; b < 2; ++b) {
                    if (o.templateFlux[b] > 0 && o.templateFlux[b + 1] > 0) {
                        st.binCol[bin][b].push_back(colour(o.templateFlux, b));
                        st.colT[b].push_back(colour(o.templateFlux, b));
                        st.colSig[b].push_back(colourSigma(b));
                    }
                    if (o.flux[b] > 0 && o.flux[b + 1] > 0) st.colF[b].push_back(colour(o.flux, b));
                }
                // Undetected truth objects (any S/N) within 15 px whose nearest object is this
                // child: their light is in it whatever the deblender does (r band, relative).
                double absorbed = 0;
                for (std::size_t u = 0; u < patch.truth.size(); ++u) {
                    const TruthEntry& tu = patch.truth[u];
                    if (mo[u] >= 0 ||
                        std::hypot(tu.pixel.x - tr.pixel.x, tu.pixel.y - tr.pixel.y) >= 15)
                        continue;
                    std::size_t best = 0;
                    double bd = 1e300;
                    for (std::size_t j = 0; j < out.objects.size(); ++j) {
                        const Point2D q = out.objects[j].position;
                        const double d = std::hypot(q.x - tu.pixel.x, q.y - tu.pixel.y);
                        if (d < bd) {
                            bd = d;
                            best = j;
                        }
                    }
                    if (static_cast<int>(best) == mo[t]) absorbed += tu.flux[1] / tr.flux[1];
                }
                if (list)
                    std::printf(
                        "  %d:%d truth %lld %s S/N %.1f sep %.1f px ratio %.2f siblings %d: "
                        "template %+.3f %+.3f %+.3f footprint %+.3f %+.3f %+.3f undetected %.3f "
                        "phi %.3f %.3f %.3f floor %.3f %.3f %.3f blended %.3f %.3f %.3f pull %.2f "
                        "%.2f %.2f blendedness %.3f%s%s%s\n",
                        size, seed, static_cast<long long>(tr.object.id),
                        tr.object.isStar ? "star" : "galaxy", tr.snMax, nearest, ratio, o.nSiblings,
                        o.templateFlux[0] / tr.flux[0] - 1, o.templateFlux[1] / tr.flux[1] - 1,
                        o.templateFlux[2] / tr.flux[2] - 1, o.flux[0] / tr.flux[0] - 1,
                        o.flux[1] / tr.flux[1] - 1, o.flux[2] / tr.flux[2] - 1, absorbed,
                        o.modelFlux[0] / o.templateFlux[0], o.modelFlux[1] / o.templateFlux[1],
                        o.modelFlux[2] / o.templateFlux[2], kSize / tr.sn[0], kSize / tr.sn[1],
                        kSize / tr.sn[2], bf.flux[0], bf.flux[1], bf.flux[2], st.pull[0].back(),
                        st.pull[1].back(), st.pull[2].back(), o.blendedness,
                        split ? "" : " not-split", vi ? " variant " : "", variants[vi].c_str());
            }
            std::printf("patch %d² px seed %d%s%s%s: %zu of the issue's pairs\n", size, seed,
                        noiseFree ? " (noise-free)" : "", vi ? " variant " : "",
                        variants[vi].c_str(), pairs.size());
        }
    }
    for (std::size_t vi = 0; vi < configs.size(); ++vi) {
        const Stats& st = stats[vi];
        std::printf("pooled%s%s: %zu children (deblendPatch %.1f CPU-s, %d parents unconverged)\n",
                    vi ? " variant " : "", variants[vi].c_str(), st.tmpl[0].size(), st.cpu,
                    st.unconverged);
        std::printf(
            "  completeness (S/N >= 10) %d / %d = %.4f, without truth objects within 1 FWHM "
            "of a brighter one %d / %d = %.4f; purity (peak S/N >= 10) %d / %d = %.4f; "
            "multi-peak parents undeblended %d / %d\n",
            st.nFound, st.nTruth, double(st.nFound) / st.nTruth, st.nResolvableFound,
            st.nResolvable, double(st.nResolvableFound) / st.nResolvable, st.nReal, st.nDet,
            double(st.nReal) / st.nDet, st.undeblended, st.multi);
        auto absMedian = [](const std::vector<double>& v) {
            std::vector<double> a;
            for (double x : v)
                if (std::isfinite(x)) a.push_back(std::abs(x));
            return medianOf(a);
        };
        std::printf(
            "  median |dF| / template error g/r/i %.3f %.3f %.3f (0.674 if the errors "
            "were right)\n",
            medianOf(st.pull[0]), medianOf(st.pull[1]), medianOf(st.pull[2]));
        for (int q = 0; q < 4; ++q)
            std::printf(
                "    blendedness %s %.2f (%zu children): |dF/F| %.3f %.3f %.3f, |dF| / error "
                "%.2f %.2f %.2f\n",
                q < 3 ? "<" : ">=", q < 3 ? blendEdges[q + 1] : blendEdges[3],
                st.betaErr[q][0].size(), medianOf(st.betaErr[q][0]), medianOf(st.betaErr[q][1]),
                medianOf(st.betaErr[q][2]), medianOf(st.betaPull[q][0]),
                medianOf(st.betaPull[q][1]), medianOf(st.betaPull[q][2]));
        if (!st.decBias[0].empty())
            std::printf(
                "  DECOMPOSITION (%zu children also found without noise): the deblender's own "
                "error (without noise) g/r/i %.3f %.3f %.3f, colours %.3f %.3f; with the blended "
                "floor's noise on top (informationFloor with bias: the best an estimator with "
                "this systematic error could do) %.3f %.3f %.3f, colours %.3f %.3f\n",
                st.decBias[0].size(), absMedian(st.decBias[0]), absMedian(st.decBias[1]),
                absMedian(st.decBias[2]), absMedian(st.decColBias[0]), absMedian(st.decColBias[1]),
                informationFloor(st.decSigma[0], st.decBias[0]),
                informationFloor(st.decSigma[1], st.decBias[1]),
                informationFloor(st.decSigma[2], st.decBias[2]),
                informationFloor(st.decColSigma[0], st.decColBias[0]),
                informationFloor(st.decColSigma[1], st.decColBias[1]));
        if (!st.decSigmaProf[0].empty())
            std::printf(
                "  with the profile floor's noise instead (size and ellipticity fitted) %.3f %.3f "
                "%.3f; the noise's share of the template flux |F - F(no noise)| / (F floor) "
                "%.2f %.2f %.2f (0.674 for an estimator at the floor)\n",
                informationFloor(st.decSigmaProf[0], st.decBias[0]),
                informationFloor(st.decSigmaProf[1], st.decBias[1]),
                informationFloor(st.decSigmaProf[2], st.decBias[2]),
                medianOf(st.decNoiseVsFloor[0]), medianOf(st.decNoiseVsFloor[1]),
                medianOf(st.decNoiseVsFloor[2]));
        if (!st.decBias[0].empty()) {
            std::vector<std::vector<double>> allT(3), allF(3);
            for (int q = 0; q < 4; ++q)
                for (int b = 0; b < 3; ++b) {
                    allT[b].insert(allT[b].end(), st.decPullT[q][b].begin(),
                                   st.decPullT[q][b].end());
                    allF[b].insert(allF[b].end(), st.decPullF[q][b].begin(),
                                   st.decPullF[q][b].end());
                }
            std::printf(
                "  NOISE PULLS |F - F(no noise)| / error g/r/i (0.674 if the errors are right): "
                "template %.2f %.2f %.2f, footprint %.2f %.2f %.2f\n",
                medianOf(allT[0]), medianOf(allT[1]), medianOf(allT[2]), medianOf(allF[0]),
                medianOf(allF[1]), medianOf(allF[2]));
            for (int q = 0; q < 2; ++q)
                std::printf(
                    "    footprint area %s 5%% by the noise (%zu): footprint %.2f %.2f %.2f\n",
                    q ? "changed by >=" : "changed by <", st.decPullFArea[q][0].size(),
                    medianOf(st.decPullFArea[q][0]), medianOf(st.decPullFArea[q][1]),
                    medianOf(st.decPullFArea[q][2]));
            for (int q = 0; q < 4; ++q)
                std::printf(
                    "    blendedness %s %.2f (%zu): template %.2f %.2f %.2f, footprint "
                    "%.2f %.2f %.2f\n",
                    q < 3 ? "<" : ">=", q < 3 ? blendEdges[q + 1] : blendEdges[3],
                    st.decPullT[q][0].size(), medianOf(st.decPullT[q][0]),
                    medianOf(st.decPullT[q][1]), medianOf(st.decPullT[q][2]),
                    medianOf(st.decPullF[q][0]), medianOf(st.decPullF[q][1]),
                    medianOf(st.decPullF[q][2]));
        }
        if (!st.gfit[0].empty())
            std::printf(
                "  GROUPFIT (%zu, %.1f CPU-s): g/r/i %.3f %.3f %.3f (signed %+.3f %+.3f "
                "%+.3f), colours %.3f %.3f\n",
                st.gfit[0].size(), st.gcpu, medianOf(st.gfit[0]), medianOf(st.gfit[1]),
                medianOf(st.gfit[2]), medianOf(st.gfitSigned[0]), medianOf(st.gfitSigned[1]),
                medianOf(st.gfitSigned[2]), medianOf(st.gcol[0]), medianOf(st.gcol[1]));
        for (int b = 0; b < 3; ++b)
            std::printf(
                "  %c: median |dF/F| template %.3f (signed %+.3f, noise alone %.3f), footprint "
                "%.3f (signed %+.3f, noise alone %.3f)\n",
                bands[b], medianOf(st.tmpl[b]), medianOf(st.tmplSigned[b]),
                0.674 * medianOf(st.tmplSig[b]), medianOf(st.fp[b]), medianOf(st.fpSigned[b]),
                0.674 * medianOf(st.fpSig[b]));
        std::printf(
            "  information floor g/r/i %.3f %.3f %.3f (no unbiased estimator does better: "
            "isolated-object Cramér–Rao bound of each child's flux), %.3f %.3f %.3f with each "
            "galaxy's size fitted, %.3f %.3f %.3f blended (every object within 20 px fitted too: "
            "blendedFloor)\n",
            informationFloor(st.floorSig[0]), informationFloor(st.floorSig[1]),
            informationFloor(st.floorSig[2]), informationFloor(st.floorSize[0]),
            informationFloor(st.floorSize[1]), informationFloor(st.floorSize[2]),
            informationFloor(st.blendFloor[0]), informationFloor(st.blendFloor[1]),
            informationFloor(st.blendFloor[2]));
        if (!st.profFloor[0][0].empty()) {
            static const char* names[kProfileVariants] = {
                "shape known", "size fitted", "size and ellipticity fitted",
                "size, ellipticity, bulge and disk fluxes fitted"};
            std::printf(
                "  PROFILE FLOORS (%zu children; the simulator's bulge + disk profiles, Moffat "
                "PSFs, every object within 20 px fitted at once: profileFloor):\n",
                st.profFloor[0][0].size());
            std::printf(
                "    the template flux error over the floor with size and ellipticity fitted: "
                "median %.2f %.2f %.2f\n",
                medianOf(st.errVsFloor[0]), medianOf(st.errVsFloor[1]), medianOf(st.errVsFloor[2]));
            for (int v = 0; v < kProfileVariants; ++v)
                std::printf(
                    "    %s: g/r/i %.3f %.3f %.3f, colours %.3f %.3f mag\n", names[v],
                    informationFloor(st.profFloor[v][0]), informationFloor(st.profFloor[v][1]),
                    informationFloor(st.profFloor[v][2]), informationFloor(st.profColFloor[v][0]),
                    informationFloor(st.profColFloor[v][1]));
        }
        for (int b = 0; b < 2; ++b)
            std::printf(
                "  %c-%c: median colour error template %.3f mag, footprint %.3f mag, information "
                "floor %.3f mag, blended %.3f mag\n",
                bands[b], bands[b + 1], medianOf(st.colT[b]), medianOf(st.colF[b]),
                informationFloor(st.colSig[b]), informationFloor(st.blendColFloor[b]));
        std::printf(
            "  split pairs (%zu children, every neighbour found as an object of its own): template "
            "g/r/i %.3f %.3f %.3f (information floor %.3f %.3f %.3f, size fitted %.3f %.3f %.3f, "
            "blended %.3f %.3f %.3f), "
            "colours %.3f %.3f mag (floor %.3f %.3f, blended %.3f %.3f)\n",
            st.splitT[0].size(), medianOf(st.splitT[0]), medianOf(st.splitT[1]),
            medianOf(st.splitT[2]), informationFloor(st.splitFloor[0]),
            informationFloor(st.splitFloor[1]), informationFloor(st.splitFloor[2]),
            informationFloor(st.splitFloorSize[0]), informationFloor(st.splitFloorSize[1]),
            informationFloor(st.splitFloorSize[2]), informationFloor(st.splitBlendFloor[0]),
            informationFloor(st.splitBlendFloor[1]), informationFloor(st.splitBlendFloor[2]),
            medianOf(st.splitCol[0]), medianOf(st.splitCol[1]),
            informationFloor(st.splitColFloor[0]), informationFloor(st.splitColFloor[1]),
            informationFloor(st.splitBlendColFloor[0]), informationFloor(st.splitBlendColFloor[1]));
        std::printf(
            "    of which stars (%zu) %.3f %.3f %.3f (floor %.3f %.3f %.3f), galaxies (%zu) %.3f "
            "%.3f %.3f (floor, size fitted, %.3f %.3f %.3f)\n",
            st.splitStarT[0].size(), medianOf(st.splitStarT[0]), medianOf(st.splitStarT[1]),
            medianOf(st.splitStarT[2]), informationFloor(st.splitStarFloor[0]),
            informationFloor(st.splitStarFloor[1]), informationFloor(st.splitStarFloor[2]),
            st.splitGalT[0].size(), medianOf(st.splitGalT[0]), medianOf(st.splitGalT[1]),
            medianOf(st.splitGalT[2]), informationFloor(st.splitGalFloorSize[0]),
            informationFloor(st.splitGalFloorSize[1]), informationFloor(st.splitGalFloorSize[2]));
        std::printf("  all blend members (%zu): template g/r/i %.3f %.3f %.3f\n",
                    st.members[0].size(), medianOf(st.members[0]), medianOf(st.members[1]),
                    medianOf(st.members[2]));
        for (int bin = 0; bin < 3; ++bin) {
            char range[64];
            if (bin < 2)
                std::snprintf(range, sizeof range, "%g <= S/N < %g", snEdges[bin],
                              snEdges[bin + 1]);
            else
                std::snprintf(range, sizeof range, "S/N >= %g", snEdges[bin]);
            std::printf(
                "  %s (%zu children): template g/r/i %.3f %.3f %.3f (noise alone %.3f "
                "%.3f %.3f, information floor %.3f %.3f %.3f), colours %.3f %.3f mag\n",
                range, st.binT[bin][0].size(), medianOf(st.binT[bin][0]), medianOf(st.binT[bin][1]),
                medianOf(st.binT[bin][2]), 0.674 * medianOf(st.binSig[bin][0]),
                0.674 * medianOf(st.binSig[bin][1]), 0.674 * medianOf(st.binSig[bin][2]),
                informationFloor(st.binFloor[bin][0]), informationFloor(st.binFloor[bin][1]),
                informationFloor(st.binFloor[bin][2]), medianOf(st.binCol[bin][0]),
                medianOf(st.binCol[bin][1]));
        }
    }
    return 0;
}
