// Simulator speed (issue #3): seconds to render one detector of the `bench` preset — an
// LSSTCam-like 4096² detector at 0.2"/px with LSST-like source density (galaxies to r = 26.5,
// ≈3.3e5 deg⁻²; stars 5000 deg⁻² to r = 24) — through the whole simulateDetector path: sky with
// gradient, every star and bulge+disk galaxy rendered with subpixel integration and the
// spatially varying PSF, Poisson and read noise, cosmic rays, bleed trails, bad columns, masks
// and variance. Generating the sky model (once per survey) is timed separately. No reference
// tool: GalSim is not packaged for Debian 12.
#include <cmath>

#include "drp/bench/bench.h"
#include "drp/sim/observe.h"
#include "drp/sim/survey.h"

namespace drp::bench {
namespace {

std::vector<Measurement> run(Context& ctx) {
    // Quick mode (CI smoke test): the tiny preset's 512² detectors; the numbers mean nothing.
    const std::string preset = ctx.quick ? "tiny" : "bench";
    const sim::SurveyPlan plan = sim::makePlan(sim::presetConfig(preset), 42);
    const sim::Camera camera(plan.config.camera);
    std::vector<sim::TrueObject> sky;
    const Timing skyTime =
        timeIt(1, [&] { sky = sim::generateSky(plan.config.sky, plan.skyRegion, plan.seed); });
    // Visit 0 (g band), detector 0; every repetition renders the same detector from scratch.
    const sim::VisitConditions cond =
        sim::drawConditions(plan.visits.front(), camera, plan.config.observing, plan.seed);
    const int det = 0;
    sim::DetectorTruth truth;
    // One 4k² render takes tens of CPU-seconds: 3 repetitions unless asked for fewer.
    const Timing t = timeIt(std::min(ctx.repeats, 3), [&] {
        auto d = sim::simulateDetector(camera, cond, det, sky, plan.config.observing, plan.seed);
        truth = d.truth;
        doNotOptimize(d.exposure.image()(0, 0));
    });
    const Extent2I dims = truth.bbox.dimensions();
    const double mpix = double(dims.x) * double(dims.y) / 1e6;
    const std::string what = std::to_string(dims.x) + "x" + std::to_string(dims.y) + " px, " +
                             std::to_string(truth.nStars) + " stars + " +
                             std::to_string(truth.nGalaxies) + " galaxies centred on it (" +
                             preset + " preset, seed 42, visit " + std::to_string(cond.spec.visit) +
                             " det 0), seeing " + std::to_string(cond.seeing).substr(0, 4) + "\"";
    std::vector<Measurement> out;
    {
        Measurement m;
        m.metric = "render one " + preset + " detector";
        m.unit = "CPU-s";
        m.value = t.cpuMedian;
        m.higherIsBetter = false;
        m.note = what + "; 1 thread, median of " + std::to_string(t.samples.size()) + "; wall " +
                 std::to_string(t.median).substr(0, 6) + " s on a shared machine";
        out.push_back(m);
    }
    {
        Measurement m;
        m.metric = "render rate";
        m.unit = "Mpx/CPU-s";
        m.value = mpix / t.cpuMedian;
        m.note =
            "same run; sources per CPU-s: " +
            std::to_string(static_cast<long>(double(truth.nStars + truth.nGalaxies) / t.cpuMedian));
        out.push_back(m);
    }
    {
        Measurement m;
        m.metric = "generate the sky model (" + std::to_string(sky.size()) + " objects)";
        m.unit = "CPU-s";
        m.value = skyTime.cpuMedian;
        m.higherIsBetter = false;
        m.note =
            "once per survey, " + std::to_string(plan.skyRegion.areaDeg2()).substr(0, 6) + " deg2";
        out.push_back(m);
    }
    return out;
}

const RegisterBenchmark reg{{.name = "sim_render",
                             .description = "seconds to simulate one bench-preset detector "
                                            "(4k x 4k, 0.2\"/px, LSST-like density)",
                             .run = run}};

}  // namespace
}  // namespace drp::bench
