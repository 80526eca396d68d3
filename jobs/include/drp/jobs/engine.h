// The execution engine: runs a Pipeline's task graph over an MPI communicator.
//
// Rank 0 coordinates; with forked tasks it also runs tasks itself, serving the workers every
// millisecond while its own task's child runs (EngineOptions::coordinatorRunsTasks). It plans the
// graph, folds the repository's journals to find work already done (verifying the recorded
// outputs), opens this run's journal, and hands ready tasks to idle workers one at a time, largest
// predicted cost first. Everything is point-to-point: the coordinator never enters a collective
// with a rank that might be dead, polls with MPI_Iprobe (with back-off, so idle ranks do not spin a
// shared core), and declares a worker lost when it has been silent for
// EngineOptions::workerTimeoutSeconds while busy (workers send heartbeats while a forked task
// runs); the lost worker's task is recorded as "lost" and retried elsewhere.
//
// Fault isolation, retries, blocking and degraded results: see isolation.h and RetryPolicy.
// Signals: SIGTERM, SIGINT and SIGUSR1 (Slurm's --signal warning; note that mpirun forwards
// SIGUSR1/SIGUSR2 to the ranks but turns SIGTERM into a job kill, so under mpirun send SIGUSR1)
// make the coordinator stop dispatching; in-flight tasks are either killed (StopPolicy::Kill,
// recorded "interrupted") or allowed to finish (StopPolicy::Drain); the run then ends with
// kExitInterrupted so a requeue resumes it.
//
// Determinism: task seeds come from (stage, data id) only; inputs reach a task in (stage, data id)
// order; which rank runs a task never enters its outputs. So outputs do not depend on rank count.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "drp/jobs/commit.h"
#include "drp/jobs/isolation.h"
#include "drp/jobs/pipeline.h"
#include "drp/jobs/task_graph.h"

namespace drp::jobs {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;        ///< some task failed, was blocked or lost
inline constexpr int kExitConfig = 64;       ///< invalid options or plan (EX_USAGE); nothing ran
inline constexpr int kExitInterrupted = 75;  ///< stopped by a signal; resumable (EX_TEMPFAIL)

/// How many times an attempt failing with a given class is retried (within one run). Defaults:
/// transient classes ("io", "transient", "lost") twice; everything else — bad input, config, logic
/// errors, crashes, timeouts, memory — never, because a retry would fail the same way.
struct RetryPolicy {
    std::map<std::string, int> retriesByClass{{"io", 2}, {"transient", 2}, {"lost", 2}};
    int defaultRetries = 0;
    int retries(const std::string& errorClass) const {
        auto it = retriesByClass.find(errorClass);
        return it == retriesByClass.end() ? defaultRetries : it->second;
    }
};

enum class StopPolicy {
    Kill,   ///< kill in-flight tasks on a stop signal (default: exit within seconds)
    Drain,  ///< let in-flight tasks finish, dispatch nothing new
};

struct EngineOptions {
    std::string repo;   ///< repository root; journals go to <repo>/runs (required)
    std::string runId;  ///< empty: makeRunId()
    std::string command, configHash, softwareVersion;  ///< provenance for run_start
    Isolation isolation = Isolation::Fork;
    double defaultTimeLimitSeconds = 0;         ///< per attempt, when the stage sets none; 0: none
    std::uint64_t defaultMemoryLimitBytes = 0;  ///< per attempt, when the stage sets none; 0: none
    RetryPolicy retry;
    ErrorClassOf errorClassOf;  ///< maps pipeline exception types (e.g. drp::Error) to classes
    VerifyMode verify = VerifyMode::Checksum;  ///< how done records are verified on resume
    StopPolicy onStop = StopPolicy::Kill;
    /// Only tasks for which this returns true run (null: all). Unselected tasks that are not done
    /// stay so, and their dependents wait (explain() says why).
    std::function<bool(const TaskKey&)> select;
    /// Rerun: these tasks and everything downstream of them are invalidated (a "supersede" event
    /// per done task in this run's journal) and run again.
    std::vector<TaskKey> rerun;
    /// Name patterns of the temporary files that the pipeline's own atomic writers leave next to
    /// an output when killed mid-write, "{name}" standing for the output's file name (e.g.
    /// ".{name}.tmp." for "<dir>/.<name>.tmp.<anything>"). Before an attempt, files of the
    /// output's directory whose names start with an expanded pattern are removed, like the
    /// engine's own "<name>.drp-tmp-*" (only one attempt of a task runs at a time).
    std::vector<std::string> temporaryPatterns;
    /// Tasks sent ahead to each worker (1: one at a time, best load balance for long tasks;
    /// 2-4 hide the round trip for very short tasks; see docs/engine.md).
    int tasksPerWorker = 1;
    /// With Isolation::Fork and more than one rank, the coordinator runs tasks too: while its own
    /// forked task runs it serves the workers about every millisecond, so N ranks give N task
    /// slots (2 ranks on 2 cores do twice the work of 1 rank, not the same). Off: rank 0 only
    /// coordinates, which keeps its dispatch latency in microseconds (for very short tasks or
    /// thousands of ranks; see docs/engine.md). In-process mode never runs tasks on the
    /// coordinator when there are workers (it could not serve them meanwhile).
    bool coordinatorRunsTasks = true;
    double heartbeatSeconds = 0.5;
    double workerTimeoutSeconds = 120;  ///< silence of a busy worker before it is declared lost
    double fsyncSeconds = 1.0;          ///< journal fsync interval
    double progressSeconds = 10;        ///< progress line interval on the coordinator; 0: off
    std::ostream* log = nullptr;        ///< progress and messages (null: std::cerr)
    /// Throws std::invalid_argument naming the field.
    void validate() const;
};

struct RunSummary {
    std::string runId, journalPath;
    std::size_t planned = 0, priorDone = 0, superseded = 0;
    std::size_t done = 0, degraded = 0, failed = 0, blocked = 0, interrupted = 0, lost = 0;
    std::size_t notRun = 0;  ///< unselected, or waiting on an unselected task
    std::size_t attempts = 0, retried = 0;
    std::map<std::string, std::size_t> failedByClass;
    double planSeconds = 0, wallSeconds = 0;
    int exitCode = kExitOk;
    bool interruptedBySignal = false;
};

/// Runs the pipeline. Collective over `comm`: every rank calls it with the same pipeline (only
/// rank 0 calls the planners). Returns the same summary exit code on every rank (the full
/// summary on rank 0). Throws on rank 0 for invalid options or plans (other ranks then return
/// kExitConfig); never throws for task failures.
RunSummary runPipeline(const Pipeline& pipeline, const EngineOptions& options, MPI_Comm comm);

/// Plans the pipeline and folds the repository's journals (no MPI, no journal written) and
/// explains one task: done (in which run), failed (why), blocked (by what), waiting (for what).
std::string explainTask(const Pipeline& pipeline, const EngineOptions& options, const TaskKey& key);

/// Tasks whose latest journal state is failed, lost, interrupted or blocked (for rerun --failed:
/// pass them as EngineOptions::rerun, or use them in `select`).
std::vector<TaskKey> failedTasks(const History& history);

}  // namespace drp::jobs
