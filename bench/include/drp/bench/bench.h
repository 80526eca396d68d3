// Benchmarks: speed claims live here, not in unit tests (HELPERS.md).
//
// A benchmark is a file bench/<name>.cpp that registers itself (nothing shared needs editing):
//
//     namespace {
//     std::vector<drp::bench::Measurement> run(drp::bench::Context& ctx) {
//         auto t = drp::bench::timeIt(ctx.repeats, [&] { ...work... });
//         drp::bench::Measurement m;
//         m.metric = "widgets per second";  m.unit = "1/s";
//         m.value = nWidgets / t.median;    m.goal = 1e6;
//         // Optional: run the reference tool in the same run and record its number:
//         // m.reference = ...; m.referenceTool = "source-extractor 2.25";
//         return {m};
//     }
//     const drp::bench::RegisterBenchmark reg{{.name = "widgets", .description = "...",
//                                              .run = run}};
//     }
//
// `bench/run.sh [names...]` builds drp-bench, runs the named (default: all) benchmarks, prints
// a table (name, metric, ours, reference, ratio, goal) and writes bench/results/latest.json.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace drp::bench {

struct Measurement {
    std::string metric;  ///< what is measured, e.g. "sky point -> (tract, patch) lookups"
    std::string unit;    ///< e.g. "1/s", "s", "MB"
    double value = 0;    ///< ours (median over repeats unless the benchmark says otherwise)
    bool higherIsBetter = true;
    std::optional<double> reference;  ///< the reference tool's value, measured in this run
    std::string referenceTool;        ///< e.g. "SWarp 2.41.5" (empty: no reference)
    std::optional<double> goal;       ///< the target we hold ourselves to
    std::string note;                 ///< conditions: data size, threads, ...

    /// How many times better than the reference we are (> 1 = better), whatever the direction
    /// of the metric: ours/ref for rates, ref/ours for times. nullopt without a reference.
    std::optional<double> ratio() const;
    /// Whether the goal is met (nullopt without a goal).
    std::optional<bool> meetsGoal() const;
};

/// What a benchmark gets from the runner.
struct Context {
    int repeats = 5;              ///< timed repetitions (report the median)
    bool quick = false;           ///< smoke-test mode (tests, CI): tiny sizes, numbers meaningless
    std::string workDir;          ///< scratch directory for files (created, emptied by the runner)
    std::ostream* log = nullptr;  ///< progress messages
};

struct Benchmark {
    std::string name;
    std::string description;
    std::function<std::vector<Measurement>(Context&)> run;
};

class BenchmarkRegistry final {
  public:
    static BenchmarkRegistry& instance();
    void add(Benchmark b);
    const Benchmark* find(const std::string& name) const;
    std::vector<const Benchmark*> all() const;  ///< sorted by name
    const std::vector<std::string>& duplicates() const { return _duplicates; }

  private:
    std::vector<Benchmark> _benchmarks;
    std::vector<std::string> _duplicates;
};

struct RegisterBenchmark final {
    explicit RegisterBenchmark(Benchmark b) { BenchmarkRegistry::instance().add(std::move(b)); }
};

/// Timing of `repeats` runs of f: wall clock, and CPU time of the calling thread. The machine
/// may be shared (several builds on 2 cores), so a single-thread "per core" rate should divide
/// by CPU time, which other processes do not inflate; wall time is what a user waits.
struct Timing {
    double median = 0, best = 0;        ///< wall seconds
    double cpuMedian = 0, cpuBest = 0;  ///< CPU seconds of the calling thread
    std::vector<double> samples;        ///< wall seconds
};
Timing timeIt(int repeats, const std::function<void()>& f);

/// Keeps the compiler from optimising away a computed value.
template <typename T>
inline void doNotOptimize(const T& value) {
    asm volatile("" : : "r,m"(value) : "memory");
}

/// Full path of an executable on PATH, or nullopt (for reference tools).
std::optional<std::string> findTool(const std::string& name);
/// Wall and CPU (user + system, of the command and its children) seconds of a command.
struct ToolTiming {
    double wall = 0, cpu = 0;
};
/// Runs a shell command (e.g. a reference tool), timing it; throws std::runtime_error with the
/// command if it exits non-zero.
ToolTiming runTimed(const std::string& shellCommand);
/// runTimed `repeats` times; the median wall and the median CPU seconds (each over the runs).
ToolTiming runTimedMedian(const std::string& shellCommand, int repeats);

}  // namespace drp::bench
