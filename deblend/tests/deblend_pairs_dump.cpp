// Child fluxes against truth on the pairs of one or more simulated patches (sim_patch.h),
// pooled: a larger sample than deblend_sim_test's (which also needs source-extractor to find
// them), for measurements, not a test. Usage:
//     deblend_pairs_dump [--noise-free] [--list] SIZE:SEED [SIZE:SEED ...]
// e.g. `deblend_pairs_dump 1000:7 1000:8 1400:7` (the test patch, another realisation, the
// benchmark's patch). The sample: truth objects with coadd S/N ≥ 10 in a patch's interior that
// we detect (0.5" greedy match) and whose neighbours (S/N ≥ 5 within 3") are all ≥ 1 PSF FWHM
// away with a flux ratio (r) ≤ 10 to the nearest — the pairs. Printed: per band, the
// median |ΔF/F| of the template and footprint fluxes, their signed medians, what noise alone
// would give (0.674 × median σ/F), and the median colour errors. --list prints every object.
// --noise-free simulates the visits without noise (the deblender's systematic errors alone).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "sim_patch.h"

using namespace drp;
using namespace drp::deblend;
using namespace drp::deblend::testing;

namespace {

double medianOf(std::vector<double> v) {
    if (v.empty()) return NAN;
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    bool noiseFree = false, list = false;
    std::vector<std::pair<int, int>> specs;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        int size = 0, seed = 0;
        if (a == "--noise-free")
            noiseFree = true;
        else if (a == "--list")
            list = true;
        else if (std::sscanf(a.c_str(), "%d:%d", &size, &seed) == 2 && size >= 200)
            specs.emplace_back(size, seed);
        else {
            std::fprintf(stderr, "usage: %s [--noise-free] [--list] SIZE:SEED ...\n", argv[0]);
            return 2;
        }
    }
    if (specs.empty()) specs.emplace_back(1000, 7);
    const char* bands = "gri";
    std::vector<std::vector<double>> tmpl(3), tmplSigned(3), fp(3), fpSigned(3), tmplSig(3),
        fpSig(3), colT(2), colF(2);
    for (const auto& [size, seed] : specs) {
        SimPatchConfig pc;
        pc.size = size;
        pc.seed = static_cast<std::uint64_t>(seed);
        pc.addNoise = !noiseFree;
        SimPatch patch = makeSimPatch(pc);
        const PatchDeblend out =
            deblendPatch(patch.maskedImages(), patch.psfSigma, {}, {}, patch.psfKernel);
        const double fwhm =
            2.3548 * *std::max_element(patch.psfSigma.begin(), patch.psfSigma.end());
        const std::vector<int> mo = matchTruthToObjects(patch, out, 2.5);
        int n = 0;
        for (std::size_t t = 0; t < patch.truth.size(); ++t) {
            const TruthEntry& tr = patch.truth[t];
            if (tr.snMax < 10 || !patch.interior(tr.pixel) || mo[t] < 0) continue;
            bool blended = false, resolved = true;
            double nearest = 1e300, ratio = 0;
            for (const TruthEntry& u : patch.truth) {
                const double d = std::hypot(u.pixel.x - tr.pixel.x, u.pixel.y - tr.pixel.y);
                if (&u == &tr || u.snMax < 5 || d >= 15) continue;
                blended = true;
                resolved = resolved && d >= fwhm;
                if (d < nearest) {
                    nearest = d;
                    ratio = std::max(u.flux[1] / tr.flux[1], tr.flux[1] / u.flux[1]);
                }
            }
            if (!blended || !resolved || ratio > 10) continue;
            ++n;
            const PatchObject& o = out.objects[mo[t]];
            for (int b = 0; b < 3; ++b) {
                const double f = tr.flux[b];
                tmpl[b].push_back(std::abs(o.templateFlux[b] / f - 1));
                tmplSigned[b].push_back(o.templateFlux[b] / f - 1);
                fp[b].push_back(std::abs(o.flux[b] / f - 1));
                fpSigned[b].push_back(o.flux[b] / f - 1);
                tmplSig[b].push_back(o.templateFluxErr[b] / f);
                fpSig[b].push_back(o.fluxErr[b] / f);
            }
            auto colour = [&](const std::vector<double>& m, int b) {
                return std::abs(-2.5 * std::log10(m[b] / m[b + 1]) +
                                2.5 * std::log10(tr.flux[b] / tr.flux[b + 1]));
            };
            for (int b = 0; b < 2; ++b) {
                if (o.templateFlux[b] > 0 && o.templateFlux[b + 1] > 0)
                    colT[b].push_back(colour(o.templateFlux, b));
                if (o.flux[b] > 0 && o.flux[b + 1] > 0) colF[b].push_back(colour(o.flux, b));
            }
            if (list)
                std::printf(
                    "  %d:%d truth %lld S/N %.1f sep %.1f px ratio %.2f siblings %d: template "
                    "%+.3f %+.3f %+.3f footprint %+.3f %+.3f %+.3f\n",
                    size, seed, static_cast<long long>(tr.object.id), tr.snMax, nearest, ratio,
                    o.nSiblings, o.templateFlux[0] / tr.flux[0] - 1,
                    o.templateFlux[1] / tr.flux[1] - 1, o.templateFlux[2] / tr.flux[2] - 1,
                    o.flux[0] / tr.flux[0] - 1, o.flux[1] / tr.flux[1] - 1,
                    o.flux[2] / tr.flux[2] - 1);
        }
        std::printf("patch %d² px seed %d%s: %d of the issue's pairs\n", size, seed,
                    noiseFree ? " (noise-free)" : "", n);
    }
    std::printf("pooled: %zu children\n", tmpl[0].size());
    for (int b = 0; b < 3; ++b)
        std::printf(
            "  %c: median |dF/F| template %.3f (signed %+.3f, noise alone %.3f), footprint %.3f "
            "(signed %+.3f, noise alone %.3f)\n",
            bands[b], medianOf(tmpl[b]), medianOf(tmplSigned[b]), 0.674 * medianOf(tmplSig[b]),
            medianOf(fp[b]), medianOf(fpSigned[b]), 0.674 * medianOf(fpSig[b]));
    for (int b = 0; b < 2; ++b)
        std::printf("  %c-%c: median colour error template %.3f mag, footprint %.3f mag\n",
                    bands[b], bands[b + 1], medianOf(colT[b]), medianOf(colF[b]));
    return 0;
}
