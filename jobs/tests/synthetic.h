// A synthetic pipeline for the engine's tests, benchmark and demo: small deterministic text
// outputs, a global gather/solve stage, and failures injected from <repo>/faults.txt so that a
// rerun "after removing the fault" is deleting that file.
//
//   gen      unit  "u=NNN"  writes gen/u=NNN.txt: 8 pseudo-random numbers from the task seed
//   combine  group "g=NN"   depends on gen of its units; writes the inputs' sum (fixed order)
//   cal      global         gather: each group's sum; solve: the mean over groups, in id order
//   final    group "g=NN"   depends on combine g and cal; writes sum - mean
//
// faults.txt lines: "<stage> <data id> <kind>" with kind one of throw, taskerror, segv, oom,
// hang, io_once (fails with class "io" on attempt 1 only) as in drp/jobs/fault_injection.h,
// degrade, nooutput.
#pragma once

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "drp/jobs/fault_injection.h"
#include "drp/jobs/pipeline.h"

namespace drp::jobs::synthetic {

struct Config {
    int units = 24;
    int groupSize = 4;
    int sleepMs = 0;  ///< per gen/combine/final task (to make runs long enough to kill)
    double timeLimitSeconds = 3;
    std::uint64_t memoryLimitBytes = 256ull << 20;
};

inline std::string unitId(int u) {
    char b[16];
    std::snprintf(b, sizeof b, "u=%03d", u);
    return b;
}
inline std::string groupId(int g) {
    char b[16];
    std::snprintf(b, sizeof b, "g=%02d", g);
    return b;
}

inline std::string readFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw TaskError("bad_input", "cannot read " + path);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

inline void writeFile(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    if (!out) throw TaskError("io", "cannot write " + path);
}

/// Applies the fault configured for this task in <repo>/faults.txt, if any (kinds of
/// fault_injection.h, plus "taskerror" = bad_input, "degrade" and "nooutput"). Returns degrade
/// flags.
inline std::vector<std::string> applyFault(const TaskContext& ctx, const Config& cfg,
                                           bool* skipOutput = nullptr) {
    const auto kind = faultFor(ctx.repo() + "/faults.txt", ctx.key());
    if (!kind) return {};
    if (*kind == "degrade") return {"injected_degradation"};
    if (*kind == "nooutput") {
        if (skipOutput) *skipOutput = true;
        return {};
    }
    raiseFault(*kind == "taskerror" ? "bad_input" : *kind, ctx.key(), ctx.attempt(),
               cfg.timeLimitSeconds, cfg.memoryLimitBytes);
    return {};
}

inline double sumOfFile(const std::string& path) {
    std::istringstream in(readFile(path));
    double s = 0, x = 0;
    while (in >> x) s += x;
    return s;
}

inline Pipeline makePipeline(const Config& cfg) {
    const int groups = (cfg.units + cfg.groupSize - 1) / cfg.groupSize;
    StageLimits limits{cfg.timeLimitSeconds, cfg.memoryLimitBytes};
    auto nap = [cfg] {
        if (cfg.sleepMs > 0) std::this_thread::sleep_for(std::chrono::milliseconds(cfg.sleepMs));
    };
    auto finish = [cfg](const TaskContext& ctx, const std::string& text) {
        bool skip = false;
        auto flags = applyFault(ctx, cfg, &skip);
        if (!skip) writeFile(ctx.tempPath(0), text);
        return TaskResult{flags, {}};
    };
    Pipeline p;
    p.add(Stage{"gen", "unit",
                [cfg] {
                    std::vector<PlannedTask> out;
                    for (int u = 0; u < cfg.units; ++u)
                        out.push_back({unitId(u), {}, 1.0 + u % 5, {"gen/" + unitId(u) + ".txt"}});
                    return out;
                },
                [nap, finish](const TaskContext& ctx) {
                    nap();
                    std::uint64_t x = ctx.seed();
                    std::ostringstream os;
                    for (int i = 0; i < 8; ++i) {
                        x = x * 6364136223846793005ULL + 1442695040888963407ULL;  // LCG (Knuth)
                        os << (x >> 40) % 100000 << "\n";
                    }
                    return finish(ctx, os.str());
                },
                limits});
    p.add(Stage{"combine", "group",
                [cfg, groups] {
                    std::vector<PlannedTask> out;
                    for (int g = 0; g < groups; ++g) {
                        PlannedTask t{groupId(g), {}, 2.0, {"combine/" + groupId(g) + ".txt"}};
                        for (int u = g * cfg.groupSize;
                             u < std::min(cfg.units, (g + 1) * cfg.groupSize); ++u)
                            t.deps.push_back({"gen", unitId(u)});
                        out.push_back(std::move(t));
                    }
                    return out;
                },
                [nap, finish](const TaskContext& ctx) {
                    nap();
                    double s = 0;
                    for (const auto& in : ctx.inputs()) s += sumOfFile(in.outputs.at(0));
                    std::ostringstream os;
                    os.precision(17);
                    os << s << "\n";
                    return finish(ctx, os.str());
                },
                limits});
    GlobalStageSpec cal;
    cal.name = "cal";
    cal.gatherKind = "group";
    cal.gatherPlan = [groups] {
        std::vector<PlannedTask> out;
        for (int g = 0; g < groups; ++g)
            out.push_back({groupId(g), {{"combine", groupId(g)}}, 1.0, {}});
        return out;
    };
    cal.gather = [cfg](const TaskContext& ctx) {
        applyFault(ctx, cfg);
        return readFile(ctx.inputs().at(0).outputs.at(0));
    };
    cal.solve = [cfg](const std::vector<std::pair<std::string, std::string>>& blobs,
                      const TaskContext& ctx) {
        double s = 0;  // fixed (data id) order: the same bits for any rank count
        for (const auto& [id, blob] : blobs) s += std::stod(blob);
        std::ostringstream os;
        os.precision(17);
        os << s / double(blobs.size()) << "\n";
        writeFile(ctx.tempPath(0), os.str());
        return TaskResult{applyFault(ctx, cfg), {}};
    };
    cal.solveOutputs = {"global/cal.txt"};
    cal.solveCost = 10;
    cal.gatherLimits = limits;
    cal.solveLimits = limits;
    auto [gather, solve] = makeGlobalStages(cal);
    p.add(std::move(gather));
    p.add(std::move(solve));
    p.add(Stage{"final", "group",
                [groups] {
                    std::vector<PlannedTask> out;
                    for (int g = 0; g < groups; ++g)
                        out.push_back({groupId(g),
                                       {{"combine", groupId(g)}, {"cal", "global"}},
                                       1.0,
                                       {"final/" + groupId(g) + ".txt"}});
                    return out;
                },
                [nap, finish](const TaskContext& ctx) {
                    nap();
                    double s = 0, mean = 0;
                    for (const auto& in : ctx.inputs()) {
                        if (in.key.stage == "cal")
                            mean = sumOfFile(in.outputs.at(0));
                        else
                            s = sumOfFile(in.outputs.at(0));
                    }
                    std::ostringstream os;
                    os.precision(17);
                    os << s - mean << " " << ctx.seed() << "\n";
                    return finish(ctx, os.str());
                },
                limits});
    return p;
}

}  // namespace drp::jobs::synthetic
