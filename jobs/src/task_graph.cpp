#include "drp/jobs/task_graph.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <sstream>

namespace drp::jobs {

namespace {
constexpr std::uint32_t kNone = std::numeric_limits<std::uint32_t>::max();
constexpr int kStateCount = 9;
}  // namespace

const char* toString(TaskState s) {
    switch (s) {
        case TaskState::Waiting:
            return "waiting";
        case TaskState::Ready:
            return "ready";
        case TaskState::Running:
            return "running";
        case TaskState::Done:
            return "done";
        case TaskState::Degraded:
            return "degraded";
        case TaskState::Failed:
            return "failed";
        case TaskState::Blocked:
            return "blocked";
        case TaskState::Unselected:
            return "unselected";
        case TaskState::Interrupted:
            return "interrupted";
    }
    return "?";
}

TaskGraph TaskGraph::build(const Pipeline& pipeline) {
    auto t0 = std::chrono::steady_clock::now();
    pipeline.validate();
    TaskGraph g;
    const auto& stages = pipeline.stages();
    g._lookup.resize(stages.size());
    g._stageBegin.push_back(0);
    std::vector<std::vector<TaskKey>> depKeys;  // per task, resolved after all stages are planned
    std::vector<std::size_t> nRequired;  // per task: depKeys[t][0..n) required, rest optional
    for (std::size_t s = 0; s < stages.size(); ++s) {
        g._stageNames.push_back(stages[s].name);
        g._stageKinds.push_back(stages[s].kind);
        std::vector<PlannedTask> planned;
        try {
            planned = stages[s].plan();
        } catch (const std::exception& e) {
            throw PlanError("planning stage '" + stages[s].name + "': " + e.what());
        }
        auto& lookup = g._lookup[s];
        lookup.reserve(planned.size());
        for (auto& p : planned) {
            auto idx = static_cast<std::uint32_t>(g._dataId.size());
            if (!lookup.emplace(p.dataId, idx).second)
                throw PlanError("planning stage '" + stages[s].name + "': duplicate data id '" +
                                p.dataId + "'");
            if (!(p.cost >= 0))
                throw PlanError("planning stage '" + stages[s].name + "': data id '" + p.dataId +
                                "' has a negative or NaN cost");
            g._stage.push_back(static_cast<std::uint32_t>(s));
            g._dataId.push_back(std::move(p.dataId));
            g._cost.push_back(p.cost);
            g._outputs.push_back(std::move(p.outputs));
            nRequired.push_back(p.deps.size());
            depKeys.push_back(std::move(p.deps));
            for (auto& o : p.optionalDeps) depKeys.back().push_back(std::move(o));
        }
        g._stageBegin.push_back(static_cast<std::uint32_t>(g._dataId.size()));
    }
    if (g._dataId.size() >= kNone) throw PlanError("planning: too many tasks");

    // Resolve dependencies into CSR arrays.
    const std::size_t n = g._dataId.size();
    g._depBegin.assign(n + 1, 0);
    for (std::size_t t = 0; t < n; ++t) g._depBegin[t + 1] = g._depBegin[t] + depKeys[t].size();
    g._depIndex.resize(g._depBegin[n]);
    g._depOptional.assign(g._depBegin[n], 0);
    std::vector<std::uint64_t> revCount(n + 1, 0);
    for (std::size_t t = 0; t < n; ++t) {
        std::uint64_t k = g._depBegin[t];
        for (const auto& dk : depKeys[t]) {
            g._depOptional[k] = (k - g._depBegin[t]) >= nRequired[t];
            auto d = g.find(dk);
            if (!d) {
                const bool stageKnown = pipeline.stageIndex(dk.stage) >= 0;
                throw PlanError("planning: task " + g.key(static_cast<std::uint32_t>(t)).str() +
                                " depends on " + dk.str() +
                                (stageKnown ? ", which that stage's planner did not produce"
                                            : ", but there is no stage '" + dk.stage + "'"));
            }
            g._depIndex[k++] = *d;
            ++revCount[*d + 1];
        }
        depKeys[t].clear();
        depKeys[t].shrink_to_fit();
    }
    g._revBegin.assign(n + 1, 0);
    for (std::size_t t = 0; t < n; ++t) g._revBegin[t + 1] = g._revBegin[t] + revCount[t + 1];
    g._revIndex.resize(g._revBegin[n]);
    g._revOptional.assign(g._revBegin[n], 0);
    std::vector<std::uint64_t> fill(g._revBegin.begin(), g._revBegin.end() - 1);
    for (std::uint32_t t = 0; t < n; ++t) {
        auto deps = g.deps(t);
        for (std::size_t k = 0; k < deps.size(); ++k) {  // dependents in index order
            g._revOptional[fill[deps[k]]] = g._depOptional[g._depBegin[t] + k];
            g._revIndex[fill[deps[k]]++] = t;
        }
    }

    // Cycle check (Kahn): every task must become dependency-free eventually.
    std::vector<std::uint32_t> unmet(n);
    std::vector<std::uint32_t> queue;
    for (std::uint32_t t = 0; t < n; ++t) {
        unmet[t] = static_cast<std::uint32_t>(g.deps(t).size());
        if (unmet[t] == 0) queue.push_back(t);
    }
    std::size_t seen = 0;
    while (seen < queue.size()) {
        auto t = queue[seen++];
        for (auto u : g.dependents(t))
            if (--unmet[u] == 0) queue.push_back(u);
    }
    if (seen != n) {
        for (std::uint32_t t = 0; t < n; ++t)
            if (unmet[t] != 0)
                throw PlanError("planning: dependency cycle through task " + g.key(t).str());
    }
    g._planSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return g;
}

std::optional<std::uint32_t> TaskGraph::find(const TaskKey& key) const {
    for (std::size_t s = 0; s < _stageNames.size(); ++s) {
        if (_stageNames[s] != key.stage) continue;
        auto it = _lookup[s].find(key.dataId);
        if (it == _lookup[s].end()) return std::nullopt;
        return it->second;
    }
    return std::nullopt;
}

std::vector<std::uint32_t> TaskGraph::downstream(const std::vector<std::uint32_t>& roots) const {
    std::vector<char> seen(size(), 0);
    std::vector<std::uint32_t> stack(roots.begin(), roots.end()), out;
    for (auto r : roots) seen[r] = 1;
    while (!stack.empty()) {
        auto t = stack.back();
        stack.pop_back();
        out.push_back(t);
        for (auto u : dependents(t))
            if (!seen[u]) {
                seen[u] = 1;
                stack.push_back(u);
            }
    }
    std::sort(out.begin(), out.end());
    return out;
}

// ---------------------------------------------------------------------------------------------

Schedule::Schedule(const TaskGraph& graph)
    : _graph(graph),
      _state(graph.size(), TaskState::Waiting),
      _unmet(graph.size(), 0),
      _blockedBy(graph.size(), kNone),
      _ready(ByCost{&graph}),
      _counts(kStateCount, 0),
      _stageCounts(graph.stageCount(), std::vector<std::size_t>(kStateCount, 0)) {
    _counts[0] = graph.size();
    for (std::size_t s = 0; s < graph.stageCount(); ++s)
        _stageCounts[s][0] = graph.stageEnd(s) - graph.stageBegin(s);
}

void Schedule::setState(std::uint32_t t, TaskState s) {
    auto stage = _graph.stageOf(t);
    --_counts[static_cast<int>(_state[t])];
    --_stageCounts[stage][static_cast<int>(_state[t])];
    _state[t] = s;
    ++_counts[static_cast<int>(s)];
    ++_stageCounts[stage][static_cast<int>(s)];
}

std::size_t Schedule::stageCount(std::size_t stage, TaskState s) const {
    return _stageCounts[stage][static_cast<int>(s)];
}

void Schedule::markPriorDone(std::uint32_t t, bool degraded, std::string note) {
    setState(t, degraded ? TaskState::Degraded : TaskState::Done);
    _notes[t] = std::move(note);
}

void Schedule::markUnselected(std::uint32_t t) {
    if (_state[t] == TaskState::Waiting) setState(t, TaskState::Unselected);
}

void Schedule::start() {
    for (std::uint32_t t = 0; t < _graph.size(); ++t) {
        if (_state[t] != TaskState::Waiting) continue;
        std::uint32_t unmet = 0;
        auto deps = _graph.deps(t);
        for (std::size_t k = 0; k < deps.size(); ++k)
            if (!satisfies(deps[k], _graph.depOptional(t, k))) ++unmet;
        _unmet[t] = unmet;
        if (unmet == 0) {
            setState(t, TaskState::Ready);
            _ready.push(t);
        }
    }
}

std::uint32_t Schedule::popReady() {
    auto t = _ready.top();
    _ready.pop();
    setState(t, TaskState::Running);
    return t;
}

void Schedule::requeue(std::uint32_t t) {
    setState(t, TaskState::Ready);
    _ready.push(t);
}

bool Schedule::satisfies(std::uint32_t d, bool optional) const {
    const TaskState s = _state[d];
    if (s == TaskState::Done || s == TaskState::Degraded) return true;
    return optional && (s == TaskState::Failed || s == TaskState::Blocked);
}

void Schedule::releaseOne(std::uint32_t u) {
    if (_state[u] != TaskState::Waiting) return;
    if (--_unmet[u] == 0) {
        setState(u, TaskState::Ready);
        _ready.push(u);
    }
}

void Schedule::markFinished(std::uint32_t t, bool degraded) {
    setState(t, degraded ? TaskState::Degraded : TaskState::Done);
    _notes.erase(t);
    for (auto u : _graph.dependents(t)) releaseOne(u);
}

std::vector<std::uint32_t> Schedule::markFailed(std::uint32_t t, std::string reason) {
    setState(t, TaskState::Failed);
    _notes[t] = std::move(reason);
    // Required edges block transitively; optional edges count the failed (or blocked) task as
    // finished, so that its optional users run without it. Ready tasks are released only after
    // the whole blocked set is known, in index order.
    std::vector<std::uint32_t> blocked, stack{t}, released;
    while (!stack.empty()) {
        auto x = stack.back();
        stack.pop_back();
        auto users = _graph.dependents(x);
        for (std::size_t k = 0; k < users.size(); ++k) {
            auto u = users[k];
            if (_graph.dependentOptional(x, k)) {
                released.push_back(u);
                continue;
            }
            if (_state[u] != TaskState::Waiting && _state[u] != TaskState::Unselected) continue;
            setState(u, TaskState::Blocked);
            _blockedBy[u] = t;
            blocked.push_back(u);
            stack.push_back(u);
        }
    }
    for (auto u : released) releaseOne(u);
    std::sort(blocked.begin(), blocked.end());
    return blocked;
}

void Schedule::markInterrupted(std::uint32_t t) {
    setState(t, TaskState::Interrupted);
}

std::optional<std::uint32_t> Schedule::blockedBy(std::uint32_t t) const {
    if (_blockedBy[t] == kNone) return std::nullopt;
    return _blockedBy[t];
}

std::string Schedule::explain(const TaskKey& key) const {
    std::ostringstream out;
    auto found = _graph.find(key);
    if (!found) {
        std::size_t s = 0;
        while (s < _graph.stageCount() && _graph.stageName(s) != key.stage) ++s;
        if (s == _graph.stageCount()) {
            out << key.str() << ": not in the plan: there is no stage '" << key.stage
                << "'; stages are:";
            for (std::size_t i = 0; i < _graph.stageCount(); ++i) out << ' ' << _graph.stageName(i);
        } else {
            out << key.str() << ": not in the plan: stage '" << key.stage << "' ("
                << _graph.stageKind(s) << ") has " << (_graph.stageEnd(s) - _graph.stageBegin(s))
                << " data ids and its planner did not produce '" << key.dataId << "'";
            if (_graph.stageEnd(s) > _graph.stageBegin(s))
                out << " (first one: '" << _graph.dataId(_graph.stageBegin(s)) << "')";
        }
        return out.str();
    }
    const auto t = *found;
    out << key.str() << ": ";
    if (_state[t] != TaskState::Waiting) out << toString(_state[t]);
    auto note = _notes.find(t);
    switch (_state[t]) {
        case TaskState::Done:
        case TaskState::Degraded:
            if (note != _notes.end() && !note->second.empty()) out << " (" << note->second << ")";
            break;
        case TaskState::Failed:
        case TaskState::Interrupted:
            if (note != _notes.end()) out << ": " << note->second;
            break;
        case TaskState::Blocked: {
            auto b = _blockedBy[t];
            out << ": its input " << _graph.key(b).str() << " failed";
            auto bn = _notes.find(b);
            if (bn != _notes.end()) out << " (" << bn->second << ")";
            break;
        }
        case TaskState::Unselected:
            out << ": not selected for this run";
            break;
        case TaskState::Ready:
            out << ": all inputs available; queued by predicted cost " << _graph.cost(t);
            break;
        case TaskState::Running:
            out << ": in flight";
            break;
        case TaskState::Waiting: {
            std::vector<std::uint32_t> pending;
            auto deps = _graph.deps(t);
            for (std::size_t k = 0; k < deps.size(); ++k)
                if (!satisfies(deps[k], _graph.depOptional(t, k))) pending.push_back(deps[k]);
            out << "waiting for " << pending.size() << " of " << _graph.deps(t).size()
                << " inputs:";
            std::size_t shown = 0;
            for (auto d : pending) {
                if (shown++ == 5) {
                    out << " ...";
                    break;
                }
                out << ' ' << _graph.key(d).str() << " (" << toString(_state[d]) << ")";
            }
            break;
        }
    }
    return out.str();
}

}  // namespace drp::jobs
