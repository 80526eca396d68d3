// Joint astrometric calibration (calib/joint_astrometry.h): CPU seconds of one solve of all
// visits together — association, Gauss–Newton on the sparse normal equations, clipping, and the
// TAN-SIP output of every visit-detector — on synthetic surveys of the simulator's camera
// (calib/tests/joint_astrometry_survey.h; the per-visit fits that start it are made before the
// timing). Two sizes: the demo release's (15 visits × 4 detectors, ~2000 detections; the demo's
// journal gives 0.23 CPU-s for its whole global calibration, astrometry and photometry) and a
// larger one (100 visits × a 3×3 mosaic of 1024² detectors, 1000 stars, ~10^5 detections).
// No reference tool: gbdes and jointcal are not packaged for Debian.
#include "../calib/tests/joint_astrometry_survey.h"
#include "drp/bench/bench.h"

namespace drp::bench {
namespace {

Measurement solveOnce(Context& ctx, const std::string& label, int nVisits, int nStars, int nRef,
                      const sim::CameraConfig& camera) {
    test::Survey s = test::makeSurvey(nVisits, nStars, nRef, 4.5, 1, camera);
    std::size_t nDetections = 0;
    for (const auto& u : s.units) nDetections += u.pixels.size();
    JointAstrometryResult r;
    const int repeats = std::max(1, std::min(ctx.repeats, 3));
    Timing t = timeIt(repeats, [&] { r = solveJointAstrometry(s.units, s.ref, {}); });
    doNotOptimize(r.summary.chi2);
    Measurement m;
    m.metric = "joint astrometric solve, " + label;
    m.unit = "CPU-s";
    m.value = t.cpuMedian;
    m.higherIsBetter = false;
    m.note = std::to_string(s.units.size()) + " visit-detectors, " + std::to_string(nDetections) +
             " detections, " + std::to_string(r.summary.numStars) + " stars, " +
             std::to_string(r.summary.numParameters) + " model parameters, " +
             std::to_string(r.summary.iterations) + " Gauss-Newton iterations, solved " +
             (r.summary.solved ? "yes" : "no") + "; wall " + std::to_string(t.median) + " s";
    return m;
}

std::vector<Measurement> run(Context& ctx) {
    sim::CameraConfig demo = test::smallMosaic();  // the demo camera: 2×2 of 1024²
    demo.detWidth = demo.detHeight = ctx.quick ? 512 : 1024;
    sim::CameraConfig large = demo;
    large.nDetX = large.nDetY = 3;
    std::vector<Measurement> out;
    out.push_back(solveOnce(ctx, "demo size", ctx.quick ? 3 : 15, ctx.quick ? 300 : 400,
                            ctx.quick ? 80 : 180, demo));
    out.back().goal = 1.0;
    if (!ctx.quick)
        out.push_back(solveOnce(ctx, "100 visits x 9 detectors", 100, 1000, 300, large));
    return out;
}

const RegisterBenchmark reg{{.name = "joint_astrometry",
                             .description = "joint astrometric calibration of all visits: CPU-s "
                                            "per solve at the demo's size and at 100 visits x 9 "
                                            "detectors (synthetic, simulator's camera)",
                             .run = run}};

}  // namespace
}  // namespace drp::bench
