// Helpers for tests that launch a program (usually under mpirun) in its own session and kill the
// whole session at a random moment, like a node loss: every process of it — mpirun, the ranks
// (Open MPI gives each rank its own process group) and the ranks' task children — gets SIGKILL.
// Used by jobs/tests/resume_kill_test.cpp.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace drp::jobs::jobtest {

/// fork + setsid + execv(args); the child's stdout/stderr go to `logPath` (appended) when given.
/// Returns the child's pid, which is also its session id.
inline pid_t launchInSession(std::vector<std::string> args, const std::string& logPath = {}) {
    // Flush first: the child's freopen would otherwise write the parent's pending output again.
    std::fflush(nullptr);
    pid_t pid = fork();
    if (pid == 0) {
        setsid();
        if (!logPath.empty() && std::freopen(logPath.c_str(), "a", stdout) != nullptr)
            dup2(fileno(stdout), 2);
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        execv(argv[0], argv.data());
        _exit(127);
    }
    return pid;
}

/// SIGKILLs every process of session `sid` (read from /proc/<pid>/stat, field 6).
inline void killSession(pid_t sid) {
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

/// Waits for `pid`; its exit code, or 128 + signal.
inline int waitExit(pid_t pid) {
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/// Waits up to `seconds`; returns the exit code, or -1 if still running.
inline int waitFor(pid_t pid, double seconds) {
    auto t0 = std::chrono::steady_clock::now();
    while (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < seconds) {
        int status = 0;
        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return -1;
}

/// Whether any file under `root` is an engine temporary (a half-written output).
inline bool hasTempFiles(const std::string& root) {
    for (const auto& e : std::filesystem::recursive_directory_iterator(root))
        if (e.path().filename().string().find(".drp-tmp-") != std::string::npos) return true;
    return false;
}

}  // namespace drp::jobs::jobtest
