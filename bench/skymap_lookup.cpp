// Skymap benchmarks: sky point -> (tract, patch) lookups per second on one core (goal >= 1e6/s,
// the rate at which ingest and release assign millions of sources), footprint overlap queries,
// and the time to build the full 18,938-tract LSST-like skymap.
#include <cmath>
#include <numbers>
#include <random>

#include "drp/bench/bench.h"
#include "drp/skymap/sky_map.h"

namespace drp::bench {
namespace {

std::vector<SpherePoint> uniformPoints(std::size_t n, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> uni(0.0, 1.0);
    std::vector<SpherePoint> pts;
    pts.reserve(n);
    for (std::size_t i = 0; i < n; ++i)
        pts.emplace_back(radians(2 * std::numbers::pi * uni(rng)),
                         radians(std::asin(2 * uni(rng) - 1)));
    return pts;
}

std::vector<Measurement> run(Context& ctx) {
    std::vector<Measurement> out;
    std::unique_ptr<RingSkyMap> map;
    Timing build = timeIt(ctx.quick ? 1 : 3, [&] { map = std::make_unique<RingSkyMap>(); });
    {
        Measurement m;
        m.metric = "build 18,938-tract rings skymap";
        m.unit = "CPU-s";
        m.value = build.cpuMedian;
        m.higherIsBetter = false;
        m.note = "default config (120 rings, 0.2\"/px, 10x10 patches of 3000 px)";
        out.push_back(m);
    }

    const std::size_t n = ctx.quick ? 20000 : 2000000;
    auto pts = uniformPoints(n, 12345);
    long checksum = 0;
    Timing full = timeIt(ctx.repeats, [&] {
        for (const auto& p : pts) {
            auto tp = map->findTractPatch(p);
            checksum += tp->tract + tp->patchSequential;
        }
    });
    doNotOptimize(checksum);
    {
        Measurement m;
        m.metric = "sky point -> (tract, patch) lookups";
        m.unit = "1/CPU-s";
        m.value = n / full.cpuMedian;
        m.goal = 1e6;
        m.note = std::to_string(n) + " uniform random points, 1 thread, median of " +
                 std::to_string(full.samples.size()) +
                 " (per CPU second); wall: " + std::to_string(static_cast<long>(n / full.median)) +
                 "/s";
        out.push_back(m);
    }
    Timing tractOnly = timeIt(ctx.repeats, [&] {
        for (const auto& p : pts) checksum += map->findTractId(p);
    });
    doNotOptimize(checksum);
    {
        Measurement m;
        m.metric = "sky point -> tract lookups";
        m.unit = "1/CPU-s";
        m.value = n / tractOnly.cpuMedian;
        m.note = "ring geometry only, 1 thread";
        out.push_back(m);
    }

    // Detector footprints: 0.2° x 0.1° quadrilaterals (a CCD of 4k x 2k 0.2" pixels).
    const std::size_t nf = ctx.quick ? 200 : 20000;
    std::vector<std::vector<SpherePoint>> footprints;
    for (std::size_t i = 0; i < nf; ++i) {
        const SpherePoint& c = pts[i];
        std::vector<SpherePoint> poly;
        for (double bearing : {63.4, 116.6, 243.4, 296.6})
            poly.push_back(c.offset(degrees(bearing), degrees(0.1118)));
        footprints.push_back(std::move(poly));
    }
    std::size_t pairs = 0;
    Timing ov = timeIt(ctx.repeats, [&] {
        pairs = 0;
        for (const auto& f : footprints) pairs += map->findOverlaps(f).size();
    });
    {
        Measurement m;
        m.metric = "detector footprint -> overlapping patches";
        m.unit = "1/CPU-s";
        m.value = nf / ov.cpuMedian;
        m.note = "0.2x0.1 deg footprints, outer boxes; mean " +
                 std::to_string(double(pairs) / nf).substr(0, 4) + " patches each";
        out.push_back(m);
    }
    return out;
}

const RegisterBenchmark registration{{
    .name = "skymap_lookup",
    .description = "sky point -> (tract, patch) lookup rate on one core; footprint overlaps",
    .run = run,
}};

}  // namespace
}  // namespace drp::bench
