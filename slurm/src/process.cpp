#include "drp/slurm/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "drp/slurm/shell.h"

namespace drp::slurm {

std::string commandLine(const std::vector<std::string>& argv) {
    std::vector<std::string> words;
    for (const auto& a : argv) words.push_back(shellQuote(a));
    return join(words, " ");
}

CommandResult ProcessRunner::run(const std::vector<std::string>& argv) {
    CommandResult r;
    if (argv.empty()) {
        r.exitCode = 127;
        r.err = "empty command";
        return r;
    }
    int outPipe[2], errPipe[2];
    if (::pipe2(outPipe, O_CLOEXEC) != 0) {
        r.exitCode = 127;
        r.err = std::string("pipe: ") + std::strerror(errno);
        return r;
    }
    if (::pipe2(errPipe, O_CLOEXEC) != 0) {
        ::close(outPipe[0]);
        ::close(outPipe[1]);
        r.exitCode = 127;
        r.err = std::string("pipe: ") + std::strerror(errno);
        return r;
    }
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const pid_t pid = ::fork();
    if (pid < 0) {
        for (int fd : {outPipe[0], outPipe[1], errPipe[0], errPipe[1]}) ::close(fd);
        r.exitCode = 127;
        r.err = std::string("fork: ") + std::strerror(errno);
        return r;
    }
    if (pid == 0) {
        int devnull = ::open("/dev/null", O_RDONLY);
        if (devnull >= 0) ::dup2(devnull, 0);
        ::dup2(outPipe[1], 1);
        ::dup2(errPipe[1], 2);
        ::execvp(args[0], args.data());
        const char* msg = "cannot execute program\n";
        (void)!::write(2, msg, std::strlen(msg));
        ::_exit(127);
    }
    ::close(outPipe[1]);
    ::close(errPipe[1]);
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::duration<double>(_timeout);
    bool timedOut = false;
    pollfd fds[2] = {{outPipe[0], POLLIN, 0}, {errPipe[0], POLLIN, 0}};
    int open = 2;
    char buf[4096];
    while (open > 0) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                              deadline - std::chrono::steady_clock::now())
                              .count();
        if (left <= 0) {
            timedOut = true;
            ::kill(pid, SIGKILL);
            break;
        }
        int n = ::poll(fds, 2, static_cast<int>(std::min<long long>(left, 1000)));
        if (n < 0 && errno != EINTR) break;
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
            if (got > 0) {
                (i == 0 ? r.out : r.err).append(buf, static_cast<std::size_t>(got));
            } else if (got == 0 || errno != EINTR) {
                ::close(fds[i].fd);
                fds[i].fd = -1;
                --open;
            }
        }
    }
    for (auto& f : fds)
        if (f.fd >= 0) ::close(f.fd);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (timedOut) {
        r.exitCode = 124;
        r.err += "timed out after " + std::to_string(_timeout) + " s";
    } else if (WIFEXITED(status)) {
        r.exitCode = WEXITSTATUS(status);
        if (r.exitCode == 127 && r.err.empty()) r.err = "cannot execute " + argv[0];
    } else {
        r.exitCode = 128 + WTERMSIG(status);
    }
    if (r.exitCode == 127) r.err = "cannot execute " + argv[0] + ": " + r.err;
    return r;
}

}  // namespace drp::slurm
