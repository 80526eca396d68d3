// The task graph (stage x data id) and its execution state.
//
// TaskGraph::build() calls every stage's planner once, indexes the tasks (contiguous per stage,
// in the planner's order), resolves dependency keys to indices, and rejects unknown dependencies,
// duplicate data ids and cycles with a message naming the tasks. It is linear in tasks + edges:
// about a second for 1e6 tasks (see docs/engine.md).
//
// Schedule holds the mutable state of one run over a graph: per-task state, the count of unmet
// dependencies, a ready queue ordered by predicted cost (largest first, ties by task index, so
// the order is reproducible), and the reason a task ended up where it is, so that explain() can
// answer "why is this task not scheduled / what blocks it?".
#pragma once

#include <cstdint>
#include <optional>
#include <queue>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "drp/jobs/pipeline.h"

namespace drp::jobs {

/// Thrown by TaskGraph::build for an inconsistent plan (unknown dependency, duplicate, cycle).
class PlanError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

class TaskGraph final {
  public:
    static TaskGraph build(const Pipeline& pipeline);

    std::size_t size() const { return _dataId.size(); }
    std::size_t stageCount() const { return _stageNames.size(); }
    const std::string& stageName(std::size_t s) const { return _stageNames[s]; }
    const std::string& stageKind(std::size_t s) const { return _stageKinds[s]; }
    /// Tasks of stage s are the index range [stageBegin(s), stageEnd(s)).
    std::uint32_t stageBegin(std::size_t s) const { return _stageBegin[s]; }
    std::uint32_t stageEnd(std::size_t s) const { return _stageBegin[s + 1]; }

    std::uint32_t stageOf(std::uint32_t t) const { return _stage[t]; }
    const std::string& dataId(std::uint32_t t) const { return _dataId[t]; }
    TaskKey key(std::uint32_t t) const { return {_stageNames[_stage[t]], _dataId[t]}; }
    double cost(std::uint32_t t) const { return _cost[t]; }
    const std::vector<std::string>& outputs(std::uint32_t t) const { return _outputs[t]; }
    std::span<const std::uint32_t> deps(std::uint32_t t) const {
        return {_depIndex.data() + _depBegin[t], _depIndex.data() + _depBegin[t + 1]};
    }
    std::span<const std::uint32_t> dependents(std::uint32_t t) const {
        return {_revIndex.data() + _revBegin[t], _revIndex.data() + _revBegin[t + 1]};
    }
    /// Whether the k-th dependency of t (deps(t)[k]) is optional.
    bool depOptional(std::uint32_t t, std::size_t k) const {
        return _depOptional[_depBegin[t] + k] != 0;
    }
    /// Whether the k-th dependent of t (dependents(t)[k]) uses t optionally.
    bool dependentOptional(std::uint32_t t, std::size_t k) const {
        return _revOptional[_revBegin[t] + k] != 0;
    }
    std::optional<std::uint32_t> find(const TaskKey& key) const;
    /// Every task reachable from `roots` through dependents, roots included, sorted.
    std::vector<std::uint32_t> downstream(const std::vector<std::uint32_t>& roots) const;

    double planSeconds() const { return _planSeconds; }

  private:
    std::vector<std::string> _stageNames, _stageKinds;
    std::vector<std::uint32_t> _stageBegin;
    std::vector<std::unordered_map<std::string, std::uint32_t>> _lookup;  // per stage
    std::vector<std::uint32_t> _stage;
    std::vector<std::string> _dataId;
    std::vector<double> _cost;
    std::vector<std::vector<std::string>> _outputs;
    std::vector<std::uint64_t> _depBegin, _revBegin;
    std::vector<std::uint32_t> _depIndex, _revIndex;
    std::vector<char> _depOptional, _revOptional;  // per edge, parallel to _depIndex/_revIndex
    double _planSeconds = 0;
};

enum class TaskState : std::uint8_t {
    Waiting,     ///< some dependency not finished yet
    Ready,       ///< all dependencies finished; queued
    Running,     ///< dispatched to a worker
    Done,        ///< outputs committed and recorded (this run or an earlier one)
    Degraded,    ///< done, with flags
    Failed,      ///< last attempt failed, no retry left
    Blocked,     ///< a required dependency failed or is blocked
    Unselected,  ///< not selected for this run (and not done before)
    Interrupted  ///< was running when the run was stopped by a signal
};
const char* toString(TaskState s);

class Schedule final {
  public:
    /// All tasks start Waiting; call markPriorDone / markUnselected, then start().
    explicit Schedule(const TaskGraph& graph);

    /// Done in an earlier run (outputs verified); `note` is shown by explain().
    void markPriorDone(std::uint32_t t, bool degraded, std::string note);
    void markUnselected(std::uint32_t t);
    /// Computes unmet-dependency counts and fills the ready queue. Tasks whose dependency is
    /// unselected stay Waiting forever; explain() says so.
    void start();

    bool hasReady() const { return !_ready.empty(); }
    /// Highest-cost ready task; marks it Running.
    std::uint32_t popReady();
    /// Puts a Running task back in the ready queue (retry or interrupted dispatch).
    void requeue(std::uint32_t t);

    /// Finished successfully (degraded if flagged); releases dependents.
    void markFinished(std::uint32_t t, bool degraded);
    /// Failed for good; returns the tasks newly blocked (transitively), in index order.
    std::vector<std::uint32_t> markFailed(std::uint32_t t, std::string reason);
    void markInterrupted(std::uint32_t t);

    TaskState state(std::uint32_t t) const { return _state[t]; }
    const TaskGraph& graph() const { return _graph; }
    std::size_t count(TaskState s) const { return _counts[static_cast<int>(s)]; }
    /// Per-stage count of tasks in state s.
    std::size_t stageCount(std::size_t stage, TaskState s) const;
    /// First failed/blocked ancestor that blocks t (for blocked tasks), or nullopt.
    std::optional<std::uint32_t> blockedBy(std::uint32_t t) const;

    /// Human-readable answer to "why is this task (not) scheduled?"; names the stage and data
    /// id, the state, and what it waits for or what blocks it. Unknown tasks get a helpful text
    /// (unknown stage with the list of stages, or unknown data id with the stage's size).
    std::string explain(const TaskKey& key) const;

  private:
    void setState(std::uint32_t t, TaskState s);
    /// Whether dependency d, in its current state, no longer holds its user back.
    bool satisfies(std::uint32_t d, bool optional) const;
    /// One more dependency of u is satisfied; queue u when it was the last.
    void releaseOne(std::uint32_t u);
    struct ByCost {
        const TaskGraph* g;
        bool operator()(std::uint32_t a, std::uint32_t b) const {
            if (g->cost(a) != g->cost(b)) return g->cost(a) < g->cost(b);
            return a > b;  // ties: lower index first
        }
    };
    const TaskGraph& _graph;
    std::vector<TaskState> _state;
    std::vector<std::uint32_t> _unmet;
    std::vector<std::uint32_t> _blockedBy;                  // UINT32_MAX when not blocked
    std::unordered_map<std::uint32_t, std::string> _notes;  // failure reason / prior-run note
    std::priority_queue<std::uint32_t, std::vector<std::uint32_t>, ByCost> _ready;
    std::vector<std::size_t> _counts;
    std::vector<std::vector<std::size_t>> _stageCounts;
};

}  // namespace drp::jobs
