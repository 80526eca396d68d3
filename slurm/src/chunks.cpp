#include "drp/slurm/chunks.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <memory>
#include <numeric>
#include <queue>
#include <sstream>
#include <stdexcept>

#include "drp/jobs/journal.h"
#include "drp/slurm/shell.h"

namespace drp::slurm {

void ChunkingOptions::validate() const {
    if (chunks < 0)
        throw std::invalid_argument("chunks: must be >= 0, got " + std::to_string(chunks));
    if (!(chunkCost >= 0) || !std::isfinite(chunkCost))
        throw std::invalid_argument("chunk cost: must be finite and >= 0");
    if (maxChunks < 1)
        throw std::invalid_argument("max chunks: must be >= 1, got " + std::to_string(maxChunks));
}

void validateGroups(const jobs::TaskGraph& graph, const std::vector<JobGroupSpec>& groups) {
    if (groups.empty()) throw std::invalid_argument("job groups: none given");
    std::map<std::string, int> groupOfStage;
    std::set<std::string> names;
    int lastStage = -1;
    for (std::size_t g = 0; g < groups.size(); ++g) {
        const auto& spec = groups[g];
        checkName("job group name", spec.name);
        if (!names.insert(spec.name).second)
            throw std::invalid_argument("job groups: name '" + spec.name + "' used twice");
        if (spec.stages.empty())
            throw std::invalid_argument("job group '" + spec.name + "' has no stages");
        for (const auto& stage : spec.stages) {
            int s = -1;
            for (std::size_t i = 0; i < graph.stageCount(); ++i)
                if (graph.stageName(i) == stage) s = static_cast<int>(i);
            if (s < 0) {
                std::string known;
                for (std::size_t i = 0; i < graph.stageCount(); ++i) {
                    if (i) known += ", ";
                    known += graph.stageName(i);
                }
                throw std::invalid_argument("job group '" + spec.name + "': unknown stage '" +
                                            stage + "' (stages: " + known + ")");
            }
            if (groupOfStage.count(stage))
                throw std::invalid_argument("stage '" + stage + "' is in two job groups");
            if (s <= lastStage)
                throw std::invalid_argument("job group '" + spec.name + "': stage '" + stage +
                                            "' is out of pipeline order");
            lastStage = s;
            groupOfStage[stage] = static_cast<int>(g);
        }
    }
    // No task may need a task of a later group: afterok dependencies only point backwards.
    for (std::uint32_t t = 0; t < graph.size(); ++t) {
        auto it = groupOfStage.find(graph.stageName(graph.stageOf(t)));
        if (it == groupOfStage.end()) continue;
        for (std::uint32_t d : graph.deps(t)) {
            auto jt = groupOfStage.find(graph.stageName(graph.stageOf(d)));
            if (jt != groupOfStage.end() && jt->second > it->second)
                throw std::invalid_argument("task " + graph.key(t).str() + " (group '" +
                                            groups[it->second].name + "') depends on " +
                                            graph.key(d).str() + " of the later group '" +
                                            groups[jt->second].name + "'");
        }
    }
}

namespace {

struct UnionFind {
    std::vector<std::uint32_t> parent;
    explicit UnionFind(std::size_t n) : parent(n) { std::iota(parent.begin(), parent.end(), 0u); }
    std::uint32_t find(std::uint32_t x) {
        while (parent[x] != x) x = parent[x] = parent[parent[x]];
        return x;
    }
    void unite(std::uint32_t a, std::uint32_t b) {
        a = find(a), b = find(b);
        if (a != b) parent[std::max(a, b)] = std::min(a, b);  // root = smallest index
    }
};

GroupPlan planGroup(const jobs::TaskGraph& graph, const JobGroupSpec& spec,
                    const ChunkingOptions& options) {
    GroupPlan plan{spec, {}, 0, 0};
    // Tasks of the group, in graph order (stages are contiguous index ranges).
    std::vector<std::uint32_t> tasks;
    std::set<std::uint32_t> stageIdx;
    for (const auto& stage : spec.stages)
        for (std::size_t s = 0; s < graph.stageCount(); ++s)
            if (graph.stageName(s) == stage) stageIdx.insert(static_cast<std::uint32_t>(s));
    for (std::uint32_t s : stageIdx)
        for (std::uint32_t t = graph.stageBegin(s); t < graph.stageEnd(s); ++t) tasks.push_back(t);
    if (tasks.empty()) return plan;
    std::map<std::uint32_t, std::uint32_t> local;  // graph index -> position in `tasks`
    for (std::uint32_t i = 0; i < tasks.size(); ++i) local[tasks[i]] = i;
    UnionFind uf(tasks.size());
    for (std::uint32_t i = 0; i < tasks.size(); ++i)
        for (std::uint32_t d : graph.deps(tasks[i]))
            if (auto it = local.find(d); it != local.end()) uf.unite(i, it->second);
    // Units: root -> members (roots are the smallest member, so map order = task order).
    std::map<std::uint32_t, std::vector<std::uint32_t>> units;
    for (std::uint32_t i = 0; i < tasks.size(); ++i) units[uf.find(i)].push_back(i);
    plan.units = units.size();
    struct Unit {
        double cost;
        std::uint32_t first;
        const std::vector<std::uint32_t>* members;
    };
    std::vector<Unit> order;
    for (const auto& [root, members] : units) {
        double c = 0;
        for (auto i : members) c += graph.cost(tasks[i]);
        order.push_back({c, root, &members});
        plan.cost += c;
    }
    int k = 1;
    if (spec.chunked) {
        if (options.chunks > 0)
            k = options.chunks;
        else if (options.chunkCost > 0)
            k = static_cast<int>(std::min(1e9, std::ceil(plan.cost / options.chunkCost)));
        k = std::max(1, std::min({k, options.maxChunks, static_cast<int>(units.size())}));
    }
    // LPT: largest unit first (ties: earlier task first) onto the least-loaded chunk (ties:
    // lowest index).
    std::stable_sort(order.begin(), order.end(), [](const Unit& a, const Unit& b) {
        if (a.cost != b.cost) return a.cost > b.cost;
        return a.first < b.first;
    });
    std::vector<std::vector<std::uint32_t>> members(k);
    plan.chunks.resize(k);
    using Load = std::pair<double, int>;
    std::priority_queue<Load, std::vector<Load>, std::greater<>> heap;
    for (int c = 0; c < k; ++c) heap.push({0.0, c});
    for (const auto& u : order) {
        auto [load, c] = heap.top();
        heap.pop();
        for (auto i : *u.members) members[c].push_back(tasks[i]);
        heap.push({load + u.cost, c});
        plan.chunks[c].cost += u.cost;
    }
    for (int c = 0; c < k; ++c) {
        std::sort(members[c].begin(), members[c].end());
        plan.chunks[c].index = c;
        for (auto t : members[c]) plan.chunks[c].tasks.push_back(graph.key(t));
    }
    return plan;
}

}  // namespace

std::vector<GroupPlan> planChunks(const jobs::TaskGraph& graph,
                                  const std::vector<JobGroupSpec>& groups,
                                  const ChunkingOptions& options) {
    options.validate();
    validateGroups(graph, groups);
    std::vector<GroupPlan> out;
    for (const auto& g : groups) out.push_back(planGroup(graph, g, options));
    return out;
}

std::vector<JobGroupSpec> parseGroups(const std::string& text) {
    std::vector<JobGroupSpec> out;
    std::stringstream ss(text);
    for (std::string item; std::getline(ss, item, ';');) {
        if (item.empty()) continue;
        const auto eq = item.find('=');
        if (eq == std::string::npos || eq == 0)
            throw std::invalid_argument("job groups: '" + printable(item) +
                                        "' is not NAME=STAGE,STAGE[:array]");
        JobGroupSpec g;
        g.name = item.substr(0, eq);
        std::string stages = item.substr(eq + 1);
        const std::string suffix = ":array";
        if (stages.size() > suffix.size() &&
            stages.compare(stages.size() - suffix.size(), suffix.size(), suffix) == 0) {
            g.chunked = true;
            stages.resize(stages.size() - suffix.size());
        }
        std::stringstream st(stages);
        for (std::string s; std::getline(st, s, ',');)
            if (!s.empty()) g.stages.push_back(s);
        checkName("job group name", g.name);
        for (const auto& s : g.stages) checkNoControl("stage name", s);
        out.push_back(std::move(g));
    }
    if (out.empty()) throw std::invalid_argument("job groups: none in '" + printable(text) + "'");
    return out;
}

std::string formatGroups(const std::vector<JobGroupSpec>& groups) {
    std::string out;
    for (std::size_t g = 0; g < groups.size(); ++g) {
        if (g) out += ";";
        out += groups[g].name + "=";
        out += join(groups[g].stages, ",");
        if (groups[g].chunked) out += ":array";
    }
    return out;
}

std::string selectFileText(const std::vector<jobs::TaskKey>& tasks, const std::string& comment) {
    std::string out;
    std::stringstream cs(comment);
    for (std::string line; std::getline(cs, line);) out += "# " + line + "\n";
    for (const auto& k : tasks) {
        checkNoControl("task key", k.str());
        out += k.str() + "\n";
    }
    return out;
}

std::set<jobs::TaskKey> readSelectFile(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot read select file " + path);
    std::set<jobs::TaskKey> out;
    std::size_t lineNo = 0;
    for (std::string line; std::getline(in, line);) {
        ++lineNo;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty() || line[0] == '#') continue;
        try {
            auto key = jobs::parseTaskKey(line);
            if (key.stage.empty() || key.dataId.empty())
                throw std::invalid_argument("empty stage or data id");
            out.insert(std::move(key));
        } catch (const std::exception& e) {
            throw std::invalid_argument(path + ":" + std::to_string(lineNo) + ": '" +
                                        printable(line) + "' is not STAGE:DATAID (" + e.what() +
                                        ")");
        }
    }
    return out;
}

std::function<bool(const jobs::TaskKey&)> selectFromFile(const std::string& path) {
    auto keys = std::make_shared<const std::set<jobs::TaskKey>>(readSelectFile(path));
    return [keys](const jobs::TaskKey& k) { return keys->count(k) > 0; };
}

std::vector<jobs::TaskKey> unfinishedUpstream(const jobs::TaskGraph& graph,
                                              const jobs::History& history,
                                              const std::set<jobs::TaskKey>& selected) {
    std::vector<char> seen(graph.size(), 0);
    std::vector<std::uint32_t> stack;
    for (const auto& key : selected)
        if (auto t = graph.find(key)) {
            seen[*t] = 1;
            stack.push_back(*t);
        }
    std::set<jobs::TaskKey> out;
    while (!stack.empty()) {
        const std::uint32_t t = stack.back();
        stack.pop_back();
        for (std::uint32_t d : graph.deps(t)) {
            if (seen[d]) continue;
            seen[d] = 1;
            const jobs::TaskKey key = graph.key(d);
            auto it = history.tasks.find(key);
            if (it == history.tasks.end()) continue;  // never ran: stays unselected
            if (it->second.state == "done" || it->second.state == "degraded") continue;
            out.insert(key);
            stack.push_back(d);
        }
    }
    return {out.begin(), out.end()};
}

std::string chunkFileName(int index) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "chunk-%04d.txt", index);
    return buf;
}

}  // namespace drp::slurm
