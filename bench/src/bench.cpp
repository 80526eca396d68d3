#include "drp/bench/bench.h"

#include <sys/resource.h>
#include <sys/wait.h>

#include <ctime>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace drp::bench {

std::optional<double> Measurement::ratio() const {
    if (!reference || *reference <= 0 || value <= 0) return std::nullopt;
    return higherIsBetter ? value / *reference : *reference / value;
}

std::optional<bool> Measurement::meetsGoal() const {
    if (!goal) return std::nullopt;
    return higherIsBetter ? value >= *goal : value <= *goal;
}

BenchmarkRegistry& BenchmarkRegistry::instance() {
    static BenchmarkRegistry registry;
    return registry;
}

void BenchmarkRegistry::add(Benchmark b) {
    if (find(b.name)) {
        _duplicates.push_back(b.name);
        return;
    }
    _benchmarks.push_back(std::move(b));
}

const Benchmark* BenchmarkRegistry::find(const std::string& name) const {
    for (const auto& b : _benchmarks)
        if (b.name == name) return &b;
    return nullptr;
}

std::vector<const Benchmark*> BenchmarkRegistry::all() const {
    std::vector<const Benchmark*> out;
    for (const auto& b : _benchmarks) out.push_back(&b);
    std::sort(out.begin(), out.end(), [](auto* a, auto* b) { return a->name < b->name; });
    return out;
}

namespace {
double threadCpuSeconds() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}
double childrenCpuSeconds() {
    rusage ru{};
    getrusage(RUSAGE_CHILDREN, &ru);
    auto sec = [](const timeval& t) { return t.tv_sec + 1e-6 * t.tv_usec; };
    return sec(ru.ru_utime) + sec(ru.ru_stime);
}
double medianOf(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    std::size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}
}  // namespace

Timing timeIt(int repeats, const std::function<void()>& f) {
    Timing t;
    std::vector<double> cpu;
    for (int i = 0; i < std::max(1, repeats); ++i) {
        double c0 = threadCpuSeconds();
        auto start = std::chrono::steady_clock::now();
        f();
        std::chrono::duration<double> d = std::chrono::steady_clock::now() - start;
        cpu.push_back(threadCpuSeconds() - c0);
        t.samples.push_back(d.count());
    }
    t.median = medianOf(t.samples);
    t.best = *std::min_element(t.samples.begin(), t.samples.end());
    t.cpuMedian = medianOf(cpu);
    t.cpuBest = *std::min_element(cpu.begin(), cpu.end());
    return t;
}

std::optional<std::string> findTool(const std::string& name) {
    const char* path = std::getenv("PATH");
    if (!path) return std::nullopt;
    std::istringstream dirs(path);
    std::string dir;
    while (std::getline(dirs, dir, ':')) {
        std::filesystem::path p = std::filesystem::path(dir) / name;
        std::error_code ec;
        if (std::filesystem::is_regular_file(p, ec) &&
            (std::filesystem::status(p, ec).permissions() & std::filesystem::perms::owner_exec) !=
                std::filesystem::perms::none)
            return p.string();
    }
    return std::nullopt;
}

ToolTiming runTimed(const std::string& shellCommand) {
    double c0 = childrenCpuSeconds();
    auto start = std::chrono::steady_clock::now();
    int status = std::system(shellCommand.c_str());
    std::chrono::duration<double> d = std::chrono::steady_clock::now() - start;
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        throw std::runtime_error("reference command failed (status " + std::to_string(status) +
                                 "): " + shellCommand);
    return {d.count(), childrenCpuSeconds() - c0};
}

ToolTiming runTimedMedian(const std::string& shellCommand, int repeats) {
    std::vector<double> walls, cpus;
    for (int r = 0; r < std::max(repeats, 1); ++r) {
        ToolTiming t = runTimed(shellCommand);
        walls.push_back(t.wall);
        cpus.push_back(t.cpu);
    }
    std::sort(walls.begin(), walls.end());
    std::sort(cpus.begin(), cpus.end());
    return {walls[walls.size() / 2], cpus[cpus.size() / 2]};
}

}  // namespace drp::bench
