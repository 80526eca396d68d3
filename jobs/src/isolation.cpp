#include "drp/jobs/isolation.h"

#include <cxxabi.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <new>
#include <typeinfo>

#include "drp/jobs/commit.h"
#include "drp/jobs/fault_injection.h"

namespace drp::jobs {

namespace fs = std::filesystem;

namespace {

std::string demangle(const char* name) {
    int status = 0;
    std::unique_ptr<char, void (*)(void*)> d(abi::__cxa_demangle(name, nullptr, nullptr, &status),
                                             std::free);
    return (status == 0 && d) ? std::string(d.get()) : std::string(name);
}

/// Runs the task body and commits outputs; returns the result as JSON. Never throws.
Json runBody(const TaskFunction& fn, const AttemptSpec& spec, const ErrorClassOf& errorClassOf) {
    Json out;
    try {
        std::vector<std::string> finals, temps;
        for (const auto& rel : spec.outputs) {
            finals.push_back((fs::path(spec.repo) / rel).string());
            prepareOutput(finals.back(), spec.temporaryPatterns);
            temps.push_back(tempOutputPath(finals.back()));
        }
        TaskContext ctx(spec.key, spec.attempt, taskSeed(spec.key), spec.repo, finals, temps,
                        spec.inputs);
        // Tests only (fault_injection.h): off unless DRP_JOBS_INJECT_FAULTS is set.
        injectConfiguredFault(spec.key, spec.attempt, spec.timeLimitSeconds, spec.memoryLimitBytes);
        TaskResult result = fn(ctx);
        std::vector<OutputRecord> outputs;
        for (std::size_t i = 0; i < finals.size(); ++i)
            outputs.push_back(commitOutput(spec.repo, temps[i], finals[i]));
        out["ok"] = true;
        out["outputs"] = outputsToJson(outputs);
        out["flags"] = stringsToJson(result.flags);
        out["message"] = result.message;
    } catch (const TaskError& e) {
        out["ok"] = false;
        out["class"] = e.errorClass();
        out["error"] = e.what();
    } catch (const std::bad_alloc& e) {
        out["ok"] = false;
        out["class"] = "memory_limit";
        out["error"] = std::string("allocation failed (std::bad_alloc): ") + e.what();
    } catch (const std::exception& e) {
        out["ok"] = false;
        std::optional<std::string> cls;
        if (errorClassOf) {
            try {
                cls = errorClassOf(e);
            } catch (...) {
            }
        }
        out["class"] = cls ? *cls : demangle(typeid(e).name());
        out["error"] = e.what();
    } catch (...) {
        out["ok"] = false;
        auto* type = abi::__cxa_current_exception_type();
        out["class"] = type ? demangle(type->name()) : std::string("unknown_exception");
        out["error"] = "non-standard exception";
    }
    return out;
}

void fillOutcome(const Json& j, AttemptOutcome& o) {
    o.ok = j.get("ok") && j.get("ok")->isBool() && j.get("ok")->asBool();
    if (o.ok) {
        o.outputs = outputsFromJson(j.get("outputs"));
        o.result.flags = stringsFromJson(j.get("flags"));
        o.result.message = j.stringOr("message");
    } else {
        o.errorClass = j.stringOr("class", "unknown");
        o.error = j.stringOr("error");
    }
}

double tvSeconds(const timeval& tv) {
    return double(tv.tv_sec) + 1e-6 * double(tv.tv_usec);
}

std::uint64_t currentAddressSpace() {
    std::FILE* f = std::fopen("/proc/self/statm", "r");
    if (!f) return 0;
    unsigned long pages = 0;
    if (std::fscanf(f, "%lu", &pages) != 1) pages = 0;
    std::fclose(f);
    return std::uint64_t(pages) * std::uint64_t(sysconf(_SC_PAGESIZE));
}

[[noreturn]] void childMain(pid_t parent, int fd, const TaskFunction& fn, const AttemptSpec& spec,
                            const ErrorClassOf& errorClassOf) {
    setpgid(0, 0);
    // Die with the worker: a SIGKILLed rank (node loss, scancel) must not leave a task running
    // that could still commit outputs into a repository another run is now using.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(4);
    // The stop signals are the engine's to act on, not the task's: Slurm delivers its time-limit
    // warning (SIGUSR1, forwarded by srun) and scancel's SIGTERM to every process of the job step,
    // task children included. A child dying of them would be recorded as a crash (a failure);
    // ignoring them lets the worker's engine decide (kill: the task is recorded "interrupted";
    // drain: it finishes). The engine kills its children with SIGKILL, and PR_SET_PDEATHSIG
    // still ends a child whose worker is gone.
    for (int sig : {SIGTERM, SIGUSR1}) ::signal(sig, SIG_IGN);
    for (int sig : {SIGUSR2, SIGINT, SIGHUP}) ::signal(sig, SIG_DFL);
    rlimit core{0, 0};
    setrlimit(RLIMIT_CORE, &core);
    if (spec.memoryLimitBytes > 0) {
        std::uint64_t limit = currentAddressSpace() + spec.memoryLimitBytes;
        rlimit as{limit, limit};
        setrlimit(RLIMIT_AS, &as);
    }
    std::string text = runBody(fn, spec, errorClassOf).dump();
    std::size_t done = 0;
    while (done < text.size()) {
        ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            _exit(3);
        }
        done += static_cast<std::size_t>(n);
    }
    std::fflush(stdout);
    std::fflush(stderr);
    std::cout.flush();
    _exit(0);  // no atexit handlers: MPI's belong to the parent
}

AttemptOutcome runForked(const TaskFunction& fn, const AttemptSpec& spec,
                         const ErrorClassOf& errorClassOf, const std::function<bool()>& poll,
                         double pollSeconds) {
    AttemptOutcome o;
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        o.errorClass = "io";
        o.error = std::string("cannot create pipe: ") + std::strerror(errno);
        return o;
    }
    std::fflush(stdout);  // do not let the child inherit and re-print buffered text
    std::fflush(stderr);
    std::cout.flush();
    const auto t0 = std::chrono::steady_clock::now();
    const pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) {
        ::close(fds[0]);
        ::close(fds[1]);
        o.errorClass = "io";
        o.error = std::string("cannot fork: ") + std::strerror(errno);
        return o;
    }
    if (pid == 0) {
        ::close(fds[0]);
        childMain(parent, fds[1], fn, spec, errorClassOf);
    }
    ::close(fds[1]);
    setpgid(pid, pid);  // also done by the child; whichever runs first

    std::string text;
    bool timedOut = false, killed = false;
    auto elapsed = [&] {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    };
    auto nextPoll = pollSeconds;
    char buf[65536];
    while (true) {
        double wait = nextPoll - elapsed();
        if (spec.timeLimitSeconds > 0) wait = std::min(wait, spec.timeLimitSeconds - elapsed());
        int ms = static_cast<int>(std::max(0.0, wait) * 1000.0) + 1;
        pollfd p{fds[0], POLLIN, 0};
        int rc = ::poll(&p, 1, ms);
        if (rc < 0 && errno != EINTR) break;
        if (rc > 0) {
            ssize_t n = ::read(fds[0], buf, sizeof buf);
            if (n > 0) {
                text.append(buf, static_cast<std::size_t>(n));
                continue;
            }
            if (n == 0) break;  // EOF: the child finished (or died)
            if (errno != EINTR && errno != EAGAIN) break;
        }
        if (spec.timeLimitSeconds > 0 && elapsed() >= spec.timeLimitSeconds) {
            timedOut = true;
            ::kill(-pid, SIGKILL);
            ::kill(pid, SIGKILL);
            break;
        }
        if (elapsed() >= nextPoll) {
            nextPoll = elapsed() + pollSeconds;
            if (poll && poll()) {
                killed = true;
                ::kill(-pid, SIGKILL);
                ::kill(pid, SIGKILL);
                break;
            }
        }
    }
    ::close(fds[0]);
    int status = 0;
    rusage ru{};
    while (::wait4(pid, &status, 0, &ru) < 0 && errno == EINTR) {
    }
    ::kill(-pid, SIGKILL);  // grandchildren the task may have left behind
    o.wallSeconds = elapsed();
    o.cpuSeconds = tvSeconds(ru.ru_utime) + tvSeconds(ru.ru_stime);
    o.maxRssKb = static_cast<double>(ru.ru_maxrss);

    if (timedOut) {
        o.errorClass = "timeout";
        o.error = "exceeded the time limit of " + std::to_string(spec.timeLimitSeconds) + " s";
        return o;
    }
    if (killed) {
        o.killedOnRequest = true;
        o.errorClass = "interrupted";
        o.error = "stopped by the worker (run interrupted)";
        return o;
    }
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        if (sig == SIGKILL) {
            o.errorClass = "oom";
            o.error = "killed by SIGKILL not sent by the engine (kernel OOM killer or operator)";
        } else {
            o.errorClass = "crash";
            o.error = "killed by signal " + std::to_string(sig) + " (" + strsignal(sig) + ")";
        }
        return o;
    }
    if (!text.empty()) {
        try {
            fillOutcome(Json::parse(text), o);
            if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return o;
        } catch (const JsonError&) {
        }
    }
    o.ok = false;
    o.errorClass = "crash";
    o.error = "task process exited with status " +
              std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) + " without a result";
    return o;
}

}  // namespace

AttemptOutcome runAttempt(const TaskFunction& fn, const AttemptSpec& spec, Isolation isolation,
                          const ErrorClassOf& errorClassOf, const std::function<bool()>& poll,
                          double pollSeconds) {
    if (isolation == Isolation::Fork) return runForked(fn, spec, errorClassOf, poll, pollSeconds);
    AttemptOutcome o;
    rusage r0{}, r1{};
    getrusage(RUSAGE_THREAD, &r0);
    auto t0 = std::chrono::steady_clock::now();
    fillOutcome(runBody(fn, spec, errorClassOf), o);
    o.wallSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    getrusage(RUSAGE_THREAD, &r1);
    o.cpuSeconds = tvSeconds(r1.ru_utime) + tvSeconds(r1.ru_stime) - tvSeconds(r0.ru_utime) -
                   tvSeconds(r0.ru_stime);
    rusage self{};
    getrusage(RUSAGE_SELF, &self);
    o.maxRssKb = static_cast<double>(self.ru_maxrss);
    return o;
}

}  // namespace drp::jobs
