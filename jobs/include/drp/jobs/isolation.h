// Running one task attempt, isolated from the worker that runs it.
//
// A C++ process cannot survive a segfault, and cannot reliably catch an out-of-memory kill, in
// the code that caused it, so fault isolation is architectural: in Isolation::Fork mode every
// attempt runs in a child process forked from the worker rank (the child never calls MPI and
// leaves with _exit, so it cannot disturb the rank's MPI state). The child
//   - gets its own process group (terminal and Slurm job-step signals go to the worker, which
//     decides what happens to the task),
//   - gets RLIMIT_AS = its address space at fork + the memory allowance, and RLIMIT_CORE = 0,
//   - prepares the output directories, runs the task function, commits the outputs (fsync,
//     SHA-256, rename) and writes one JSON result to a pipe.
// The worker polls the pipe; past the time limit (or when asked to stop) it SIGKILLs the child's
// process group; wait4() gives the child's CPU time and peak RSS. The attempt's failure class:
//   exception    the exception's class: TaskError::errorClass(), EngineOptions::errorClassOf,
//                "memory_limit" for std::bad_alloc (what RLIMIT_AS turns a blow-up into), else
//                the demangled C++ type name (e.g. "std::runtime_error")
//   "crash"      killed by a signal other than SIGKILL (text names the signal), or exited
//                without writing a result
//   "oom"        killed by SIGKILL that the worker did not send (the kernel OOM killer)
//   "timeout"    killed by the worker past the time limit
//   "missing_output" / "io"  a declared output was not written / could not be committed
// Isolation::InProcess runs the task in the worker itself: no limits, no crash protection, for
// benchmarks of the dispatch machinery and for debugging under gdb.
#pragma once

#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "drp/jobs/journal.h"
#include "drp/jobs/pipeline.h"

namespace drp::jobs {

enum class Isolation { Fork, InProcess };

/// Maps an exception to an error class, or nullopt to fall back to the defaults above.
using ErrorClassOf = std::function<std::optional<std::string>(const std::exception&)>;

/// One attempt to run, as a worker receives it.
struct AttemptSpec {
    TaskKey key;
    int attempt = 1;
    std::string repo;                    ///< absolute repository root
    std::vector<std::string> outputs;    ///< relative to repo
    std::vector<InputRef> inputs;        ///< absolute paths
    double timeLimitSeconds = 0;         ///< 0: none
    std::uint64_t memoryLimitBytes = 0;  ///< 0: none
    /// EngineOptions::temporaryPatterns: stale temporaries removed before the attempt (set by
    /// the rank that runs it, not sent over MPI).
    std::vector<std::string> temporaryPatterns;
};

struct AttemptOutcome {
    bool ok = false;  ///< function returned and every output committed
    TaskResult result;
    std::vector<OutputRecord> outputs;
    std::string errorClass, error;
    bool killedOnRequest = false;  ///< stopped by shouldStop (signal policy "kill")
    double wallSeconds = 0, cpuSeconds = 0, maxRssKb = 0;
};

/// Runs one attempt. `poll` is called about every `pollSeconds` while a forked child runs (the
/// worker sends heartbeats and reads control messages there); returning true kills the child.
AttemptOutcome runAttempt(const TaskFunction& fn, const AttemptSpec& spec, Isolation isolation,
                          const ErrorClassOf& errorClassOf = {},
                          const std::function<bool()>& poll = {}, double pollSeconds = 0.5);

}  // namespace drp::jobs
