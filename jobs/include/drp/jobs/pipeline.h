// Pipeline definition for the generic execution engine.
//
// A pipeline is an ordered list of *stages*. Each stage has a name, a data-id kind (free text such
// as "visit-detector", "patch", "patch-band" or "release"; the engine only displays it), a
// *planner* that enumerates the stage's data ids with, for each, its dependencies on other
// stages' data ids, a predicted cost and its declared output files, and a *task function* that
// does the work for one data id. The engine knows nothing else about the science: a data id is an
// opaque string chosen by the pipeline (e.g. "tract=9813,patch=42,band=i"), compared bytewise.
//
// A task is (stage, data id). It is *done* exactly when every declared output was committed:
// written under TaskContext::tempPath(i), fsync'ed, checksummed and renamed to its final path by
// the engine, then recorded in the run's journal. A task may instead write a final path itself
// with its own atomic writer (temp + rename); the engine then only checksums it. A declared output
// missing after the task returns fails the task with class "missing_output".
//
// Global stages (gather -> solve -> broadcast, e.g. a survey-wide calibration) are two ordinary
// stages built by makeGlobalStages(): a gather stage that condenses each input data id into a
// small blob (committed like any output, so a killed run does not redo gathers), and a solve
// stage whose single task depends on every gather task and receives the blobs in data-id order
// (a fixed-order reduction, so the solution does not depend on rank count or timing). Its outputs
// are the "broadcast": downstream tasks declare a dependency on it and read them.
#pragma once

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace drp::jobs {

/// Identity of a task: a stage name and one of that stage's data ids.
struct TaskKey {
    std::string stage;
    std::string dataId;
    friend bool operator==(const TaskKey&, const TaskKey&) = default;
    friend auto operator<=>(const TaskKey&, const TaskKey&) = default;
    std::string str() const { return stage + ":" + dataId; }
};

/// One data id of a stage as returned by its planner.
struct PlannedTask {
    std::string dataId;
    std::vector<TaskKey> deps;         ///< tasks (of earlier or same-pipeline stages) it needs
    double cost = 1.0;                 ///< predicted cost, any consistent unit; largest first
    std::vector<std::string> outputs;  ///< output files, relative to the repository root
    /// Tasks it uses when they succeed: it waits until each has finished one way or another
    /// (done, degraded, failed or blocked) and then runs; only the done/degraded ones appear in
    /// TaskContext::inputs(). A failed optional input never blocks it. This is how one bad
    /// visit-detector leaves a coadd or a global calibration a little shallower instead of
    /// blocking it.
    std::vector<TaskKey> optionalDeps = {};
};

/// Finished-task result returned by a task function. Non-empty `flags` make the task *degraded*:
/// its outputs are complete and usable (dependents run), but carry documented limitations.
struct TaskResult {
    std::vector<std::string> flags;
    std::string message;  ///< optional note recorded in the journal
    static TaskResult ok() { return {}; }
    static TaskResult degraded(std::vector<std::string> flags, std::string message = {}) {
        return {std::move(flags), std::move(message)};
    }
};

/// An exception carrying an explicit error class, for task code that does not use drp::Error.
/// (The pipeline can map its own exception types with EngineOptions::classify.)
class TaskError : public std::runtime_error {
  public:
    TaskError(std::string errorClass, const std::string& message)
        : std::runtime_error(message), _class(std::move(errorClass)) {}
    const std::string& errorClass() const noexcept { return _class; }

  private:
    std::string _class;
};

/// The outputs of one dependency of a task (absolute paths), handed to the task in
/// (stage, data id) order. Optional dependencies that did not succeed are left out.
struct InputRef {
    TaskKey key;
    std::vector<std::string> outputs;
};

/// What a task function sees. Immutable during the task.
class TaskContext {
  public:
    TaskContext(TaskKey key, int attempt, std::uint64_t seed, std::string repo,
                std::vector<std::string> outputs, std::vector<std::string> tempOutputs,
                std::vector<InputRef> inputs)
        : _key(std::move(key)),
          _attempt(attempt),
          _seed(seed),
          _repo(std::move(repo)),
          _outputs(std::move(outputs)),
          _temps(std::move(tempOutputs)),
          _inputs(std::move(inputs)) {}

    const TaskKey& key() const { return _key; }
    const std::string& stage() const { return _key.stage; }
    const std::string& dataId() const { return _key.dataId; }
    int attempt() const { return _attempt; }  ///< 1 for the first attempt
    /// Deterministic seed derived from (stage, data id) only: never from rank, time or attempt.
    std::uint64_t seed() const { return _seed; }
    const std::string& repo() const { return _repo; }  ///< repository root (absolute)
    /// Final absolute paths of the declared outputs (in the planner's order).
    const std::vector<std::string>& outputs() const { return _outputs; }
    /// Where to write output i; the engine fsyncs, checksums and renames it on success.
    const std::string& tempPath(std::size_t i) const { return _temps.at(i); }
    const std::vector<InputRef>& inputs() const { return _inputs; }

  private:
    TaskKey _key;
    int _attempt;
    std::uint64_t _seed;
    std::string _repo;
    std::vector<std::string> _outputs, _temps;
    std::vector<InputRef> _inputs;
};

using TaskFunction = std::function<TaskResult(const TaskContext&)>;
using Planner = std::function<std::vector<PlannedTask>()>;

/// Per-stage resource limits; 0 means "use EngineOptions' default".
struct StageLimits {
    double timeLimitSeconds = 0;  ///< wall-clock limit per attempt (killed past it: "timeout")
    std::uint64_t memoryLimitBytes = 0;  ///< address-space allowance per attempt ("memory_limit")
};

struct Stage {
    std::string name;
    std::string kind;  ///< data-id kind, e.g. "patch"; informational
    Planner plan;
    TaskFunction run;
    StageLimits limits;
};

/// Ordered list of stages. Stage names are unique; validate() checks names and callbacks.
class Pipeline {
  public:
    Pipeline& add(Stage stage);
    const std::vector<Stage>& stages() const { return _stages; }
    /// Index of a stage by name, or -1.
    int stageIndex(const std::string& name) const;
    /// Throws std::invalid_argument naming the stage and the problem.
    void validate() const;

  private:
    std::vector<Stage> _stages;
};

/// Global-stage description for makeGlobalStages().
struct GlobalStageSpec {
    std::string name;        ///< name of the solve stage; the gather stage is name + ".gather"
    std::string gatherKind;  ///< data-id kind of the gathered units
    /// Units to gather: data ids with their deps and costs (their outputs are ignored: the
    /// engine stores each gather blob under gather/<name>/<data id>.blob in the repository).
    Planner gatherPlan;
    /// Condenses one unit into a small byte string (e.g. matched star positions of a visit).
    std::function<std::string(const TaskContext&)> gather;
    /// Solves from all blobs in ascending data-id order; writes its declared outputs.
    std::function<TaskResult(const std::vector<std::pair<std::string, std::string>>& blobs,
                             const TaskContext&)>
        solve;
    std::string solveDataId = "global";     ///< data id of the single solve task
    std::vector<std::string> solveOutputs;  ///< the broadcast products (relative paths)
    double solveCost = 1.0;
    /// When true the solve depends on the gathers optionally: it runs once every gather has
    /// finished, with the blobs of those that succeeded (the solve decides whether that is
    /// enough). When false a failed gather blocks the solve.
    bool gathersOptional = false;
    StageLimits gatherLimits, solveLimits;
};

/// Builds the gather stage and the solve stage of a global stage (see the file comment).
std::pair<Stage, Stage> makeGlobalStages(GlobalStageSpec spec);

/// 64-bit seed of a task from (stage, data id): FNV-1a over the bytes, finished by SplitMix64
/// (Steele, Lea & Flood 2014) so that similar ids give unrelated seeds.
std::uint64_t taskSeed(const TaskKey& key);

}  // namespace drp::jobs
