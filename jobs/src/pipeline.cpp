#include "drp/jobs/pipeline.h"

#include <algorithm>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>

namespace drp::jobs {

Pipeline& Pipeline::add(Stage stage) {
    _stages.push_back(std::move(stage));
    return *this;
}

int Pipeline::stageIndex(const std::string& name) const {
    for (std::size_t i = 0; i < _stages.size(); ++i)
        if (_stages[i].name == name) return static_cast<int>(i);
    return -1;
}

void Pipeline::validate() const {
    std::set<std::string> names;
    for (const auto& s : _stages) {
        if (s.name.empty()) throw std::invalid_argument("pipeline: a stage has an empty name");
        if (s.name.find_first_of(": \t\n") != std::string::npos)
            throw std::invalid_argument("pipeline: stage name '" + s.name +
                                        "' contains ':' or white space");
        if (!names.insert(s.name).second)
            throw std::invalid_argument("pipeline: duplicate stage name '" + s.name + "'");
        if (!s.plan) throw std::invalid_argument("pipeline: stage '" + s.name + "' has no planner");
        if (!s.run)
            throw std::invalid_argument("pipeline: stage '" + s.name + "' has no task function");
        if (s.limits.timeLimitSeconds < 0)
            throw std::invalid_argument("pipeline: stage '" + s.name +
                                        "' has a negative time limit");
    }
}

std::uint64_t taskSeed(const TaskKey& key) {
    std::uint64_t h = 1469598103934665603ULL;  // FNV-1a offset basis
    auto mix = [&h](std::string_view s) {
        for (unsigned char c : s) {
            h ^= c;
            h *= 1099511628211ULL;  // FNV prime
        }
    };
    mix(key.stage);
    mix(std::string_view("\x1f", 1));  // unit separator: ("ab","c") != ("a","bc")
    mix(key.dataId);
    // SplitMix64 finaliser.
    h += 0x9e3779b97f4a7c15ULL;
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
    return h ^ (h >> 31);
}

namespace {

/// File-name-safe form of a data id (keeps [A-Za-z0-9=,._-], escapes the rest as %XX), so that
/// distinct ids map to distinct blob files.
std::string safeName(const std::string& id) {
    std::string out;
    for (unsigned char c : id) {
        if (std::isalnum(c) || c == '=' || c == ',' || c == '.' || c == '_' || c == '-') {
            out += static_cast<char>(c);
        } else {
            char buf[4];
            std::snprintf(buf, sizeof buf, "%%%02X", c);
            out += buf;
        }
    }
    return out;
}

std::string readWhole(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw TaskError("io", "cannot read gather blob " + path);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

}  // namespace

std::pair<Stage, Stage> makeGlobalStages(GlobalStageSpec specIn) {
    auto spec = std::make_shared<const GlobalStageSpec>(std::move(specIn));
    const std::string gatherName = spec->name + ".gather";
    // The gather planner is shared by both stages (the solve task depends on every gather id);
    // it is called twice at planning time, which is fine for a pure planner.
    Stage gather;
    gather.name = gatherName;
    gather.kind = spec->gatherKind;
    gather.limits = spec->gatherLimits;
    gather.plan = [spec, gatherName] {
        auto tasks = spec->gatherPlan();
        for (auto& t : tasks)
            t.outputs = {"gather/" + spec->name + "/" + safeName(t.dataId) + ".blob"};
        return tasks;
    };
    gather.run = [spec](const TaskContext& ctx) {
        std::string blob = spec->gather(ctx);
        std::ofstream out(ctx.tempPath(0), std::ios::binary | std::ios::trunc);
        out.write(blob.data(), static_cast<std::streamsize>(blob.size()));
        out.close();
        if (!out) throw TaskError("io", "cannot write gather blob " + ctx.tempPath(0));
        return TaskResult::ok();
    };

    Stage solve;
    solve.name = spec->name;
    solve.kind = "global";
    solve.limits = spec->solveLimits;
    solve.plan = [spec, gatherName] {
        PlannedTask t;
        t.dataId = spec->solveDataId;
        t.cost = spec->solveCost;
        t.outputs = spec->solveOutputs;
        for (const auto& g : spec->gatherPlan())
            (spec->gathersOptional ? t.optionalDeps : t.deps).push_back({gatherName, g.dataId});
        return std::vector<PlannedTask>{std::move(t)};
    };
    solve.run = [spec](const TaskContext& ctx) {
        // inputs() is sorted by (stage, data id): a fixed reduction order.
        std::vector<std::pair<std::string, std::string>> blobs;
        blobs.reserve(ctx.inputs().size());
        for (const auto& in : ctx.inputs())
            blobs.emplace_back(in.key.dataId, readWhole(in.outputs.at(0)));
        return spec->solve(blobs, ctx);
    };
    return {std::move(gather), std::move(solve)};
}

}  // namespace drp::jobs
