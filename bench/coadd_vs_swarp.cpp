// Coaddition speed against SWarp (Debian `swarp` 2.41.5), same inputs, same output grid, same
// invocation: 6 detector images (2200² px, rotated by up to ±35°, scales ±3%) resampled with
// Lanczos-3 onto a 2000² px patch TAN grid (0.2"/px) and combined. Both single-threaded (SWarp
// NTHREADS 1; ours has no threads), both end to end from FITS files on disk to FITS files on disk:
//   SWarp: read image + variance-map FITS, resample image and weight (to its temporary files),
//          combine, write coadd + weight FITS;
//   ours:  read the drp exposure MEFs (image, mask, variance), warp (image, mask, variance),
//          combine, write the coadd MEF (image, mask, variance) — the same work, slightly more
//          bytes read and written (the mask plane).
// Two pairs, run interleaved (SWarp, ours, SWarp, ours, ... per repetition) so that both sides
// see the same machine load:
//   1. weighted mean: SWarp COMBINE_TYPE WEIGHTED vs ours with doArtifactRejection = false;
//   2. with artefact rejection: SWarp COMBINE_TYPE CLIPPED (its outlier rejection, Gruen et al.
//      2014) vs ours with compare-warp rejection (the pipeline's default).
// Wall and CPU seconds (ours: the calling thread; SWarp: the child process, user + system) are
// both reported, since the development machine is shared; goal: ours ≥ 2× faster than SWarp.
// Inputs and SWarp settings: coadd/tests/swarp_harness.h. Built only with the FITS I/O.
#if __has_include("drp/io/fits.h")
#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "../coadd/tests/swarp_harness.h"
#include "drp/bench/bench.h"

namespace drp::bench {
namespace {

using namespace drp::coadd;
using namespace drp::coadd::testing;

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

struct Samples {
    std::vector<double> wall, cpu;
    void add(double w, double c) {
        wall.push_back(w);
        cpu.push_back(c);
    }
};

std::vector<Measurement> run(Context& ctx) {
    const int patch = ctx.quick ? 200 : 2000, det = ctx.quick ? 240 : 2200, n = ctx.quick ? 3 : 6;
    const int nStars = ctx.quick ? 20 : 400;
    SwarpScene scene = makeSwarpScene(patch, det, n, nStars, 3);
    const std::string dir = ctx.workDir;
    writeSwarpInputs(scene, dir);
    std::vector<std::string> drpFiles;
    for (int k = 0; k < n; ++k) {
        drpFiles.push_back(dir + "/exp_" + std::to_string(k) + ".fits");
        fits::writeExposure(drpFiles.back(), scene.inputs[k]);
    }
    const int repeats = ctx.quick ? 1 : std::max(1, std::min(ctx.repeats, 5));

    // Ours, end to end: read, warp, assemble, write.
    auto ours = [&](bool reject) {
        std::vector<Warp> warps;
        for (int k = 0; k < n; ++k) {
            Exposure e = fits::readExposure(drpFiles[k]);
            e.setPsf(scene.inputs[k].psf());  // PSF models live in their own files (calib)
            warps.push_back(warpExposure(e, scene.patchWcs, scene.patch));
        }
        AssembleConfig cfg;
        cfg.doArtifactRejection = reject;
        CoaddResult r = assembleCoadd(warps, scene.patch, cfg, scene.patchWcs);
        const std::string out = dir + (reject ? "/ours_clipped.fits" : "/ours_weighted.fits");
        std::filesystem::remove(out);
        fits::writeExposure(out, r.coadd);
    };
    const bool haveSwarp = findTool("SWarp").has_value();
    Samples oursW, oursC, swarpW, swarpC;
    for (int rep = 0; rep < repeats; ++rep) {
        if (haveSwarp) {
            const ToolTiming t = runTimed(swarpCommand(dir, n, 1, "WEIGHTED"));
            swarpW.add(t.wall, t.cpu);
        }
        Timing t = timeIt(1, [&] { ours(false); });
        oursW.add(t.median, t.cpuMedian);
        if (haveSwarp) {
            const ToolTiming tc = runTimed(swarpCommand(dir, n, 1, "CLIPPED", "coadd_clipped"));
            swarpC.add(tc.wall, tc.cpu);
        }
        t = timeIt(1, [&] { ours(true); });
        oursC.add(t.median, t.cpuMedian);
    }

    // Pixel agreement with SWarp's weighted coadd on bright pixels (also a coadd test).
    std::string agreement;
    if (haveSwarp) {
        const CoaddResult mine = runOurs(scene);
        ImageF sw = fits::readImage<float>(dir + "/coadd.fits", 0);
        auto [med, npix] = compareBright(mine.coadd, sw, 50.0);
        char buf[160];
        std::snprintf(buf, sizeof buf,
                      "; pixel agreement with SWarp on %zu bright pixels: median |rel. diff| "
                      "%.3f%%",
                      npix, 100 * med);
        agreement = buf;
    }
    char size[200];
    std::snprintf(size, sizeof size,
                  "%d inputs of %d² px -> %d² px patch, 1 thread each, FITS to FITS, %d "
                  "interleaved repetitions (median)",
                  n, det, patch, repeats);
    auto fmt = [](const Samples& s) {
        char b[64];
        std::snprintf(b, sizeof b, "%.2f s wall, %.2f CPU-s", median(s.wall), median(s.cpu));
        return std::string(b);
    };
    if (ctx.log) {
        *ctx.log << "coadd_vs_swarp: weighted mean: ours " << fmt(oursW) << ", SWarp "
                 << (haveSwarp ? fmt(swarpW) : "n/a") << "; with rejection: ours " << fmt(oursC)
                 << ", SWarp CLIPPED " << (haveSwarp ? fmt(swarpC) : "n/a") << " [" << size
                 << agreement << "]\n";
    }
    std::vector<Measurement> out;
    auto add = [&](const std::string& metric, const Samples& o, const Samples& ref, bool cpu,
                   const std::string& tool, const std::string& note) {
        Measurement m;
        m.metric = metric;
        m.unit = cpu ? "CPU-s" : "s";
        m.value = median(cpu ? o.cpu : o.wall);
        m.higherIsBetter = false;
        if (haveSwarp) {
            m.reference = median(cpu ? ref.cpu : ref.wall);
            m.referenceTool = tool;
            m.goal = *m.reference / 2;  // ≥ 2× faster than SWarp
        }
        m.note = note;
        out.push_back(m);
    };
    const std::string weighted = "SWarp 2.41.5 LANCZOS3 WEIGHTED NTHREADS 1";
    const std::string clipped = "SWarp 2.41.5 LANCZOS3 CLIPPED NTHREADS 1";
    add("coadd wall time, weighted mean", oursW, swarpW, false, weighted,
        std::string(size) + agreement);
    add("coadd CPU time, weighted mean", oursW, swarpW, true, weighted,
        "ours: calling thread; SWarp: its process, user + system");
    add("coadd wall time, with artefact rejection", oursC, swarpC, false, clipped,
        "ours: compare-warp rejection (pipeline default); SWarp: CLIPPED combine");
    add("coadd CPU time, with artefact rejection", oursC, swarpC, true, clipped, "");
    return out;
}

const RegisterBenchmark reg{
    {.name = "coadd_vs_swarp",
     .description = "Lanczos-3 warp + coadd vs SWarp on the same inputs, FITS to FITS",
     .run = run}};

}  // namespace
}  // namespace drp::bench
#endif
