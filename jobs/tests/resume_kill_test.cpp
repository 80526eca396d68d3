// Crash consistency of the whole engine: `mpirun -np 2 jobs_demo` is SIGKILLed (every process of
// its session: mpirun, both ranks — Open MPI gives each rank its own process group — and the
// worker's task children, like a node loss) at random moments, several
// times per trial; resumed runs must end with outputs byte-identical to an uninterrupted run and
// no leftover temporary file. A SIGUSR1 (Slurm's warning signal, forwarded by mpirun) must stop
// the run cleanly with exit code 75 and a resumable journal.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "drp/jobs/engine.h"
#include "test_util.h"

using namespace drp::jobs;

namespace {

pid_t launch(const std::string& repo) {
    pid_t pid = fork();
    if (pid == 0) {
        setsid();
        std::vector<std::string> args{MPIEXEC,
                                      "--allow-run-as-root",
                                      "--oversubscribe",
                                      "--bind-to",
                                      "none",
                                      "-np",
                                      "2",
                                      JOBS_DEMO,
                                      "--repo",
                                      repo,
                                      "--units",
                                      "32",
                                      "--sleep-ms",
                                      "10"};
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        execv(argv[0], argv.data());
        _exit(127);
    }
    return pid;
}

/// SIGKILLs every process of session `sid` (read from /proc/<pid>/stat, field 6).
void killSession(pid_t sid) {
    for (int round = 0; round < 50; ++round) {
        int found = 0;
        for (const auto& e : std::filesystem::directory_iterator("/proc")) {
            const std::string name = e.path().filename().string();
            if (name.find_first_not_of("0123456789") != std::string::npos) continue;
            std::ifstream in(e.path() / "stat");
            std::string stat((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
            auto close = stat.rfind(')');
            if (close == std::string::npos) continue;
            std::istringstream rest(stat.substr(close + 2));
            std::string state;
            long ppid = 0, pgrp = 0, session = 0;
            rest >> state >> ppid >> pgrp >> session;
            if (session == sid && state != "Z") {
                ::kill(static_cast<pid_t>(std::stol(name)), SIGKILL);
                ++found;
            }
        }
        if (found == 0) return;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

int waitExit(pid_t pid) {
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/// Waits up to `seconds`; returns the exit code, or -1 if still running.
int waitFor(pid_t pid, double seconds) {
    auto t0 = std::chrono::steady_clock::now();
    while (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < seconds) {
        int status = 0;
        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return -1;
}

bool hasTempFiles(const std::string& root) {
    for (const auto& e : std::filesystem::recursive_directory_iterator(root))
        if (e.path().filename().string().find(".drp-tmp-") != std::string::npos) return true;
    return false;
}

}  // namespace

TEST(ResumeKill, RandomSigkillsResumeToIdenticalOutputs) {
    jobtest::ScratchDir reference("kill-ref");
    ASSERT_EQ(waitExit(launch(reference.path())), kExitOk);
    const auto expected = jobtest::snapshot(reference.path());
    ASSERT_EQ(expected.size(), 32u + 8 + 8 + 1 + 8);

    std::mt19937 rng(20261125);  // fixed: the same kill schedule every time
    std::uniform_real_distribution<double> delay(0.25, 1.0);
    int kills = 0;
    for (int trial = 0; trial < 3; ++trial) {
        jobtest::ScratchDir repo("kill");
        for (int k = 0; k < 3; ++k) {
            pid_t pid = launch(repo.path());
            int code = waitFor(pid, delay(rng));
            if (code == -1) {
                killSession(pid);
                waitExit(pid);
                ++kills;
            } else {
                ASSERT_EQ(code, kExitOk);
                break;
            }
        }
        ASSERT_EQ(waitExit(launch(repo.path())), kExitOk) << "trial " << trial;
        EXPECT_EQ(jobtest::snapshot(repo.path()), expected) << "trial " << trial;
        EXPECT_FALSE(hasTempFiles(repo.path()));
        auto view = makeStatusView(foldJournals(repo.path()));
        EXPECT_TRUE(view.failures.empty());
    }
    EXPECT_GE(kills, 3);  // the test really interrupted runs
}

TEST(ResumeKill, WarningSignalStopsCleanlyAndResumes) {
    jobtest::ScratchDir repo("usr1"), reference("usr1-ref");
    pid_t pid = launch(repo.path());
    // Wait until the coordinator has opened its journal, then give it time to start work.
    const auto runs = std::filesystem::path(repo.path()) / "runs";
    for (int i = 0; i < 500 && !std::filesystem::exists(runs); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    kill(pid, SIGUSR1);  // to mpirun, which forwards it to both ranks
    EXPECT_EQ(waitExit(pid), kExitInterrupted);
    auto h = foldJournals(repo.path());
    ASSERT_EQ(h.runs.size(), 1u);
    EXPECT_TRUE(h.runs[0].ended);
    EXPECT_EQ(h.runs[0].status, "interrupted");
    EXPECT_EQ(waitExit(launch(repo.path())), kExitOk);
    ASSERT_EQ(waitExit(launch(reference.path())), kExitOk);
    EXPECT_EQ(jobtest::snapshot(repo.path()), jobtest::snapshot(reference.path()));
}
