// Detection + deblending speed, and child-flux accuracy side by side with SExtractor's
// multi-threshold deblending, on one simulated g r i patch (deblend/tests/sim_patch.h: sim/
// galaxies and stars, 3 visits per band warped and coadded with coadd/). In one run:
//   * ours: deblend::deblendPatch (multi-band detection, then the scarlet-lite-style fit of every
//     multi-peak parent and flux re-apportioning) — CPU seconds per patch, per blend (the fits of
//     the multi-peak parents alone, divided by their number) and per object;
//   * source-extractor 2.25 in dual-image mode on the same coadds (detection on r, measurement
//     in g r i, DEBLEND_NTHRESH 32 / MINCONT 0.005; deblend/tests/sextractor_harness.h): its CPU
//     time for the three runs (detection, deblending and its photometry, with FITS I/O), and its
//     child flux errors vs truth;
//   * child flux errors vs truth on the same matched blends: median |ΔF/F| per band, ours vs
//     SExtractor FLUX_AUTO (goal: ours ≥ 2× smaller).
// The two programs do different work (a model fit per blend vs a threshold tree), so the time
// ratio says what our deblending costs relative to the classic one, not that they are
// equivalent.
#if __has_include("drp/io/fits.h")
#include <cstdio>
#include <filesystem>

#include "../deblend/tests/sextractor_harness.h"
#include "drp/bench/bench.h"

namespace drp::bench {
namespace {

using namespace drp::deblend;
using namespace drp::deblend::testing;

std::vector<Measurement> run(Context& ctx) {
    SimPatchConfig pc;
    pc.size = ctx.quick ? 250 : 1400;
    SimPatch patch = makeSimPatch(pc);
    const int repeats = ctx.quick ? 1 : std::max(1, std::min(ctx.repeats, 3));
    const std::string size = std::to_string(pc.size) + "² px g r i coadd patch";

    // Ours: the whole patch (fresh copies of the coadds: detection writes the DETECTED plane).
    PatchDeblend out;
    Timing perPatch = timeIt(repeats, [&] {
        SimPatch copy = patch;
        out = deblendPatch(copy.maskedImages(), copy.psfSigma, {}, {}, copy.psfKernel);
    });
    // Ours: the fits of the multi-peak parents alone.
    std::vector<const MaskedImage*> bands;
    for (const auto& c : patch.coadds) bands.push_back(&c.maskedImage());
    std::vector<std::size_t> blends;
    for (std::size_t p = 0; p < out.footprints.size(); ++p)
        if (out.footprints[p].peaks().size() >= 2) blends.push_back(p);
    Timing blendFits = timeIt(repeats, [&] {
        for (std::size_t p : blends)
            doNotOptimize(
                deblendFootprint(out.footprints[p], bands, patch.psfSigma, {}).iterations);
    });
    const double nBlends = std::max<std::size_t>(1, blends.size());

    // SExtractor on the same coadds.
    std::optional<double> sexCpu;
    std::optional<BlendComparison> cmp;
    std::vector<SexObject> sex;
    if (findTool("source-extractor")) {
        writeSexInputs(patch, ctx.workDir);
        std::vector<double> cpus;
        for (int r = 0; r < repeats; ++r) {
            double cpu = 0;
            for (const auto& band : patch.bands)
                cpu += runTimed(sexCommand(ctx.workDir, "r", band)).cpu;
            cpus.push_back(cpu);
        }
        std::sort(cpus.begin(), cpus.end());
        sexCpu = cpus[cpus.size() / 2];
        sex = readSexCatalogs(patch, ctx.workDir);
        cmp = compareBlendFluxes(patch, out, sex);
    }
    const std::string sexTool =
        "source-extractor 2.25 (3 dual-image runs, NTHRESH 32, MINCONT 0.005)";

    char buf[400];
    std::snprintf(buf, sizeof buf,
                  "%s; %zu parents, %zu multi-peak, %zu objects; wall %.2f s per patch; "
                  "SExtractor %zu detections",
                  size.c_str(), out.footprints.size(), blends.size(), out.objects.size(),
                  perPatch.median, sex.size());
    const std::string note = buf;
    if (ctx.log) *ctx.log << "deblend: " << note << "\n";

    std::vector<Measurement> ms;
    Measurement m;
    m.metric = "detect + deblend CPU time per patch";
    m.unit = "s";
    m.value = perPatch.cpuMedian;
    m.higherIsBetter = false;
    m.reference = sexCpu;
    m.referenceTool = sexCpu ? sexTool : "";
    m.note = note + "; SExtractor's time includes its FITS I/O and photometry";
    ms.push_back(m);

    Measurement pb;
    pb.metric = "deblend CPU time per blend (multi-peak parent)";
    pb.unit = "ms";
    pb.value = 1e3 * blendFits.cpuMedian / nBlends;
    pb.higherIsBetter = false;
    pb.note =
        std::to_string(blends.size()) + " blends; Rubin scarlet_lite: O(0.1-1) CPU-s per object";
    ms.push_back(pb);

    Measurement po;
    po.metric = "detect + deblend CPU time per object";
    po.unit = "ms";
    po.value = 1e3 * perPatch.cpuMedian / std::max<std::size_t>(1, out.objects.size());
    po.higherIsBetter = false;
    po.note = std::to_string(out.objects.size()) + " objects in the catalogue";
    ms.push_back(po);

    if (cmp && cmp->nBlended > 0) {
        auto vsAuto = [&](const std::string& metric, const std::string& unit, double value,
                          double reference, double goal) {
            Measurement f;
            f.metric = metric;
            f.unit = unit;
            f.value = value;
            f.higherIsBetter = false;
            f.reference = reference;
            f.referenceTool = "source-extractor FLUX_AUTO";
            f.goal = goal;
            f.note = buf;
            ms.push_back(f);
        };
        for (std::size_t b = 0; b < patch.bands.size(); ++b) {
            std::snprintf(
                buf, sizeof buf,
                "%d blend members (S/N >= 10, neighbour within 3\", found by both); SExtractor "
                "FLUX_ISO %.4f; isolated: ours %.4f, AUTO %.4f",
                cmp->nBlended, cmp->sexIso[b], cmp->oursIsolated[b], cmp->sexAutoIsolated[b]);
            vsAuto("median |dF/F| of deblended children vs truth, " + patch.bands[b], "",
                   cmp->ours[b], cmp->sexAuto[b], cmp->sexAuto[b] / 2);
        }
        for (std::size_t b = 0; b < patch.bands.size(); ++b) {
            std::snprintf(buf, sizeof buf,
                          "same %d blend members; issue's pairs (%d): template %.4f (signed "
                          "%+.4f, sigma/F %.4f), footprint sums %.4f (sigma/F %.4f), AUTO %.4f",
                          cmp->nBlended, cmp->nPairs, cmp->oursTmplPairs[b],
                          cmp->oursTmplPairsSigned[b], cmp->oursTmplNoisePairs[b],
                          cmp->oursPairs[b], cmp->oursNoisePairs[b], cmp->sexAutoPairs[b]);
            vsAuto(
                "median |dF/F| of deblended children's template fluxes vs truth, " + patch.bands[b],
                "", cmp->oursTmpl[b], cmp->sexAuto[b], cmp->sexAuto[b] / 2);
        }
        for (std::size_t b = 0; b + 1 < patch.bands.size(); ++b) {
            std::snprintf(buf, sizeof buf, "%d pairs; footprint sums %.3f mag", cmp->nPairs,
                          cmp->oursColourPairs[b]);
            vsAuto("median colour error on the issue's pairs, template fluxes, " + patch.bands[b] +
                       "-" + patch.bands[b + 1],
                   "mag", cmp->oursTmplColourPairs[b], cmp->sexAutoColourPairs[b], 0.05);
        }
    }
    return ms;
}

const RegisterBenchmark reg{
    {.name = "deblend",
     .description = "multi-band detection + scarlet-lite deblending of a simulated patch; child "
                    "fluxes and time vs source-extractor",
     .run = run}};

}  // namespace
}  // namespace drp::bench
#endif
