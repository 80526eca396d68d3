// Signals delivered the way Slurm delivers them. slurmstepd signals every process of a job step
// (proctrack/linuxproc and cgroup track the whole process tree), not just the ranks: the warning
// signal of `sbatch --signal=USR1@T` forwarded by `srun`, and the SIGTERM of `scancel` or of a
// time limit, reach the ranks *and* the task children they forked. The children must leave the
// decision to their rank's engine: a stop signal must never kill a task by itself, which the
// engine would record as a crash (a failure) instead of an interruption.
//
// Each test runs `mpirun -np 2 jobs_demo` (coordinator + one worker, both running tasks in forked
// children), waits until task children are running, sends the signal to every process of the run
// except mpirun (the launcher: under srun it is not in the step), and checks that the run stops
// with exit code 75, every task in flight recorded "interrupted" and none "failed", and that a
// second run resumes (the tasks done before are not doneOnResume) to outputs byte-identical to an
// uninterrupted run.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "drp/jobs/engine.h"
#include "drp/jobs/journal.h"
#include "process_util.h"
#include "test_util.h"

using namespace drp::jobs;
using namespace drp::jobs::jobtest;

namespace {

struct Proc {
    pid_t pid = 0, ppid = 0;
    std::string comm;
};

/// Live processes of session `sid` (from /proc/<pid>/stat: comm, state, ppid, pgrp, session).
std::vector<Proc> sessionProcesses(pid_t sid) {
    std::vector<Proc> out;
    for (const auto& e : std::filesystem::directory_iterator("/proc")) {
        const std::string name = e.path().filename().string();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        std::ifstream in(e.path() / "stat");
        std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        auto open = stat.find('('), close = stat.rfind(')');
        if (open == std::string::npos || close == std::string::npos) continue;
        std::istringstream rest(stat.substr(close + 2));
        std::string state;
        long ppid = 0, pgrp = 0, session = 0;
        rest >> state >> ppid >> pgrp >> session;
        if (session != sid || state == "Z") continue;
        out.push_back({static_cast<pid_t>(std::stol(name)), static_cast<pid_t>(ppid),
                       stat.substr(open + 1, close - open - 1)});
    }
    return out;
}

/// A task child: a jobs_demo process whose parent is a jobs_demo process (a rank).
bool isTaskChild(const Proc& p, const std::vector<Proc>& procs) {
    return p.comm == "jobs_demo" && std::any_of(procs.begin(), procs.end(), [&](const Proc& q) {
               return q.pid == p.ppid && q.comm == "jobs_demo";
           });
}

/// Whether process `pid` catches signal `sig` with a handler (/proc/<pid>/status SigCgt). A task
/// child inherits its rank's stop handler with fork() until it sets up its own dispositions.
bool catchesSignal(pid_t pid, int sig) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("SigCgt:", 0) == 0)
            return (std::stoull(line.substr(7), nullptr, 16) >> (sig - 1)) & 1;
    return true;  // gone, or not readable yet
}

/// How many ranks run a task child that has set up its signal dispositions (a child signalled
/// before that would only reach its rank's inherited handler, whatever it does later).
std::size_t ranksWithTaskChild(const std::vector<Proc>& procs, int sig) {
    std::set<pid_t> parents;
    for (const auto& p : procs)
        if (isTaskChild(p, procs) && !catchesSignal(p.pid, sig)) parents.insert(p.ppid);
    return parents.size();
}

pid_t launch(const std::string& repo) {
    // 150 ms per task: long enough to catch both ranks' children in flight; 8 units (2 groups)
    // keep each run short.
    return launchInSession({MPIEXEC, "--allow-run-as-root", "--oversubscribe", "--bind-to", "none",
                            "-np", "2", JOBS_DEMO, "--repo", repo, "--units", "8", "--sleep-ms",
                            "150"});
}

std::vector<Json> taskEvents(const std::string& repo) {
    std::vector<Json> out;
    for (const auto& j : readJournals(repo))
        for (const auto& e : j.events)
            if (e.stringOr("event") == "task") out.push_back(e);
    return out;
}

/// An uninterrupted run (once for both tests): its outputs and number of tasks done.
struct Reference {
    std::map<std::string, std::string> files;
    std::size_t done = 0;
};
const Reference& reference() {
    static const Reference ref = [] {
        ScratchDir dir("stepsig-ref");
        Reference r;
        EXPECT_EQ(waitExit(launch(dir.path())), kExitOk);
        r.files = snapshot(dir.path());
        for (const auto& e : taskEvents(dir.path())) r.done += e.stringOr("state") == "done";
        return r;
    }();
    return ref;
}

/// Interrupts a run with `sig` sent to every process of the step once task children run, then
/// checks the journal and resumes. Returns nothing; failures are recorded by gtest.
void interruptAndResume(int sig) {
    ScratchDir repo("stepsig");
    pid_t pid = launch(repo.path());
    // Wait until some tasks are done (so that the resume has something to skip), then until
    // both ranks run a task child, and signal at once (a task lasts 150 ms). The worker's child
    // matters most: its engine acts only on the coordinator's kill message, which comes later.
    auto doneSoFar = [&] {
        std::size_t n = 0;
        for (const auto& e : taskEvents(repo.path())) n += e.stringOr("state") == "done";
        return n;
    };
    for (int i = 0; i < 1000 && doneSoFar() < 2; ++i)  // up to 10 s
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::vector<Proc> procs;
    for (int i = 0; i < 1000; ++i) {
        procs = sessionProcesses(pid);
        if (ranksWithTaskChild(procs, sig) == 2) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ASSERT_EQ(ranksWithTaskChild(procs, sig), 2u) << "the ranks never ran tasks at the same time";
    // Task children first: slurmstepd's order is arbitrary, and this is the one in which a
    // child's own reaction to the signal would come before its engine's.
    const auto all = procs;
    std::stable_partition(procs.begin(), procs.end(),
                          [&](const Proc& p) { return isTaskChild(p, all); });
    int signalled = 0;
    for (const auto& p : procs)
        if (p.pid != pid && ::kill(p.pid, sig) == 0) ++signalled;
    EXPECT_GE(signalled, 4);  // two ranks and their task children
    EXPECT_EQ(waitExit(pid), kExitInterrupted) << "signal " << sig;

    auto events = taskEvents(repo.path());
    std::size_t interrupted = 0, done = 0;
    for (const auto& e : events) {
        const auto state = e.stringOr("state");
        EXPECT_NE(state, "failed") << e.dump();  // a child killed by the signal: a "crash"
        if (state == "interrupted") ++interrupted;
        if (state == "done") ++done;
    }
    EXPECT_GE(interrupted, 1u) << "the tasks in flight were not recorded as interrupted";
    EXPECT_GE(done, 2u);
    auto h = foldJournals(repo.path());
    ASSERT_EQ(h.runs.size(), 1u);
    EXPECT_TRUE(h.runs[0].ended);
    EXPECT_EQ(h.runs[0].status, "interrupted");
    EXPECT_EQ(h.runs[0].exitCode, kExitInterrupted);
    EXPECT_FALSE(hasTempFiles(repo.path()));

    // The rerun resumes: what was done is not doneOnResume, the rest completes.
    EXPECT_EQ(waitExit(launch(repo.path())), kExitOk);
    h = foldJournals(repo.path());
    ASSERT_EQ(h.runs.size(), 2u);
    EXPECT_EQ(h.runs[1].status, "complete");
    std::size_t doneOnResume = 0;
    for (const auto& j : readJournals(repo.path())) {
        if (j.runId != h.runs[1].runId) continue;
        for (const auto& e : j.events)
            if (e.stringOr("event") == "run_start")
                EXPECT_EQ(e.get("prior_done")->asNumber(), double(done));
            else if (e.stringOr("event") == "task" && e.stringOr("state") == "done")
                ++doneOnResume;
    }
    const Reference& ref = reference();
    EXPECT_EQ(done + doneOnResume, ref.done);
    EXPECT_EQ(snapshot(repo.path()), ref.files);
}

}  // namespace

// Slurm's time-limit warning (`--signal=USR1@T`), forwarded to the whole step by srun.
TEST(StepSignal, WarningSignalToEveryProcessInterruptsCleanly) {
    interruptAndResume(SIGUSR1);
}

// `scancel` (and the time limit itself): SIGTERM to every process of the step.
TEST(StepSignal, TerminateToEveryProcessInterruptsCleanly) {
    interruptAndResume(SIGTERM);
}
