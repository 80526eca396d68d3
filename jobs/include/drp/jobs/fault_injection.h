// Fault injection for tests: make chosen tasks of a *real* pipeline fail in a chosen way, without
// touching the pipeline's code, so that tests can show that the engine isolates every failure
// class in production binaries (`mpirun drp run`).
//
// Only for tests. Off unless the environment variable DRP_JOBS_INJECT_FAULTS names a file; every
// attempt then reads that file (in the task's child process, just before the task function) and
// applies the first line "<stage> <data id> <kind>" that matches its task. Data ids must not
// contain white space (the engine's ids do not). Removing the file (or the line) "removes the
// fault", so a rerun completes. Kinds:
//   throw      std::runtime_error                          -> class "std::runtime_error"
//   bad_input  TaskError("bad_input", ...)                  -> class "bad_input"
//   io_once    TaskError("io", ...) on attempt 1 only        -> retried, then done
//   segv       raise(SIGSEGV)                               -> class "crash"
//   oom        reserve 64 MiB blocks until std::bad_alloc           -> class "memory_limit";
//              refuses (class "config") unless the attempt has a memory limit, so a mistaken
//              injection cannot exhaust a shared machine
//   slow       sleep kSlowFaultSeconds, then run the task   -> done (in flight for that long)
//   hang       sleep until killed                           -> class "timeout"; refuses (class
//              "config") unless the attempt has a time limit
// Unknown kinds and unreadable files fail the attempt with class "config", naming the file.
#pragma once

#include <optional>
#include <string>

#include "drp/jobs/pipeline.h"

namespace drp::jobs {

/// How long a "slow" fault delays its task [s].
inline constexpr int kSlowFaultSeconds = 40;

/// The environment variable that switches injection on.
inline constexpr const char* kInjectFaultsEnv = "DRP_JOBS_INJECT_FAULTS";

/// The kind configured for (stage, dataId) in the fault file at `path`, if any. A missing file
/// means no faults; a malformed line throws TaskError("config") naming the file and line.
std::optional<std::string> faultFor(const std::string& path, const TaskKey& key);

/// Applies fault `kind` (see above) to the current attempt. Returns normally only for kinds that
/// do not apply to this attempt (io_once on a retry) and for "slow" (after its delay).
void raiseFault(const std::string& kind, const TaskKey& key, int attempt, double timeLimitSeconds,
                std::uint64_t memoryLimitBytes);

/// The engine's hook: applies the fault configured by DRP_JOBS_INJECT_FAULTS for this attempt.
void injectConfiguredFault(const TaskKey& key, int attempt, double timeLimitSeconds,
                           std::uint64_t memoryLimitBytes);

}  // namespace drp::jobs
