#include "drp/jobs/fault_injection.h"

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

namespace drp::jobs {

std::optional<std::string> faultFor(const std::string& path, const TaskKey& key) {
    std::ifstream in(path);
    if (!in) return std::nullopt;  // no file: no faults (the test removed it)
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
        ++n;
        std::istringstream words(line);
        std::string stage, id, kind, extra;
        if (!(words >> stage)) continue;  // blank line
        if (stage[0] == '#') continue;
        if (!(words >> id >> kind) || (words >> extra))
            throw TaskError("config", path + ":" + std::to_string(n) +
                                          ": expected '<stage> <data id> <kind>', got '" + line +
                                          "'");
        if (stage == key.stage && id == key.dataId) return kind;
    }
    return std::nullopt;
}

void raiseFault(const std::string& kind, const TaskKey& key, int attempt, double timeLimitSeconds,
                std::uint64_t memoryLimitBytes) {
    const std::string what = "injected " + kind + " in " + key.str();
    if (kind == "throw") throw std::runtime_error(what);
    if (kind == "bad_input") throw TaskError("bad_input", what);
    if (kind == "io_once") {
        if (attempt == 1) throw TaskError("io", what + " (attempt 1)");
        return;
    }
    if (kind == "segv") {
        std::raise(SIGSEGV);
        throw std::logic_error(what + ": SIGSEGV did not terminate the process");
    }
    if (kind == "oom") {
        if (memoryLimitBytes == 0)
            throw TaskError("config", what + " refused: the attempt has no memory limit");
        // Reserve address space in 64 MiB blocks until RLIMIT_AS turns the next one into
        // std::bad_alloc. The pages are not touched: the limit is on address space, and touching
        // them would only cost CPU time (seconds on a loaded machine, racing the time limit).
        std::vector<std::unique_ptr<char[]>> hog;
        while (true) hog.emplace_back(new char[std::size_t(64) << 20]);
    }
    if (kind == "slow") {
        // A task that is merely slow: it finishes normally after kSlowFaultSeconds, so a test can
        // be sure that it is in flight when a signal arrives, whatever the machine's speed.
        std::this_thread::sleep_for(std::chrono::seconds(kSlowFaultSeconds));
        return;
    }
    if (kind == "hang") {
        if (!(timeLimitSeconds > 0))
            throw TaskError("config", what + " refused: the attempt has no time limit");
        while (true) std::this_thread::sleep_for(std::chrono::seconds(1));
    }
    throw TaskError("config", "unknown injected fault kind '" + kind + "' for " + key.str());
}

void injectConfiguredFault(const TaskKey& key, int attempt, double timeLimitSeconds,
                           std::uint64_t memoryLimitBytes) {
    const char* path = std::getenv(kInjectFaultsEnv);
    if (path == nullptr || *path == '\0') return;
    if (auto kind = faultFor(path, key))
        raiseFault(*kind, key, attempt, timeLimitSeconds, memoryLimitBytes);
}

}  // namespace drp::jobs
