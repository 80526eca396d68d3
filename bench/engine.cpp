// Engine benchmarks (issue #8), run as separate MPI jobs from drp-bench:
//  - coordinator dispatch rate with no-op tasks (jobs_bench dispatch: 1 coordinator + 2
//    in-process workers, journal written; goal >= 1e4 tasks/s) and the coordinator's CPU per
//    task, which bounds the rate on a dedicated core;
//  - isolation overhead per task attempt (jobs_bench fork: fork + pipe + wait4 vs a direct call);
//  - parallel efficiency of a whole release 1 -> 2 ranks (`drp simulate` + `mpirun -np 1|2 drp
//    run` on copies of one repository; demo preset, or $DRP_BENCH_RELEASE_PRESET, or the
//    repository $DRP_BENCH_RELEASE_REPO; skipped in
//    quick mode). The development machine
//    is shared by several engineers (2 cores, load 10-20), so the wall-clock efficiency measures
//    the neighbours as much as drp. Two load-independent numbers go with it: the CPU overhead of
//    the 2-rank run (its total CPU over the 1-rank run's), and the efficiency of the engine's
//    schedule on 2 dedicated cores, computed from the 1-rank run's journal: every task's CPU
//    time and dependencies, list-scheduled largest first on 2 slots as the coordinator does
//    (T_serial / (2 x makespan); dispatch costs ~10 us per task and is left out).
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <queue>
#include <set>

#include "drp/bench/bench.h"
#include "drp/jobs/journal.h"

namespace drp::bench {
namespace {

namespace fs = std::filesystem;

/// Sibling program of drp-bench in the build tree (build/bench/drp-bench -> build/<rel>).
std::string buildTreeProgram(const std::string& rel) {
    const fs::path self = fs::read_symlink("/proc/self/exe");
    const fs::path p = self.parent_path().parent_path() / rel;
    if (!fs::exists(p)) throw std::runtime_error("engine bench: " + p.string() + " is not built");
    return p.string();
}

double childrenCpu() {
    rusage r{};
    getrusage(RUSAGE_CHILDREN, &r);
    return double(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
           1e-6 * double(r.ru_utime.tv_usec + r.ru_stime.tv_usec);
}

struct Captured {
    std::string out;
    int exitCode = -1;
    double wall = 0, cpu = 0;  ///< of the command and every process it waited for
};

/// Runs a shell command, capturing stdout (stderr goes to the log file `errLog` if given).
Captured capture(const std::string& cmd) {
    Captured c;
    const double c0 = childrenCpu();
    const auto t0 = std::chrono::steady_clock::now();
    std::FILE* f = ::popen(cmd.c_str(), "r");
    if (!f) throw std::runtime_error("engine bench: cannot run " + cmd);
    char buf[4096];
    while (std::size_t n = std::fread(buf, 1, sizeof buf, f)) c.out.append(buf, n);
    const int status = ::pclose(f);
    c.wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    c.cpu = childrenCpu() - c0;
    c.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return c;
}

std::string mpirun(int ranks) {
    auto tool = findTool("mpirun");
    if (!tool) throw std::runtime_error("engine bench: mpirun not found");
    return *tool + " --allow-run-as-root --oversubscribe --bind-to none -np " +
           std::to_string(ranks) + " ";
}

/// The JSON object jobs_bench prints (last line starting with '{').
jobs::Json jobsBench(const std::string& command) {
    Captured c = capture(command);
    if (c.exitCode != 0)
        throw std::runtime_error("engine bench: '" + command + "' exited " +
                                 std::to_string(c.exitCode) + ":\n" + c.out);
    const auto start = c.out.rfind("\n{");
    return jobs::Json::parse(c.out.substr(start == std::string::npos ? 0 : start + 1));
}

std::string fixed(double v, int digits) {
    char b[64];
    std::snprintf(b, sizeof b, "%.*f", digits, v);
    return b;
}

/// Makespan of the done tasks of a 1-rank run's journal on `slots` dedicated cores: each task
/// takes its recorded CPU time, starts when its recorded inputs are done, and ready tasks go
/// largest first (the coordinator's order with a perfect cost model). Returns {serial, makespan}.
std::pair<double, double> scheduleModel(const std::string& repo, int slots) {
    const auto history = jobs::foldJournals(repo);
    std::map<jobs::TaskKey, double> cost;
    std::map<std::string, std::vector<jobs::TaskKey>> byStage;
    for (const auto& [k, rec] : history.tasks) {
        if (rec.state != "done" && rec.state != "degraded") continue;
        cost[k] = rec.cpu;
        byStage[k.stage].push_back(k);
    }
    std::map<jobs::TaskKey, std::vector<jobs::TaskKey>> dependents;
    std::map<jobs::TaskKey, int> waiting;
    for (const auto& [k, c] : cost) {
        const auto& rec = history.tasks.at(k);
        std::set<jobs::TaskKey> deps(rec.inputs.begin(), rec.inputs.end());
        for (const auto& st : rec.inputStages)
            for (const auto& d : byStage[st]) deps.insert(d);
        waiting[k] = 0;
        for (const auto& d : deps)
            if (cost.count(d)) {
                dependents[d].push_back(k);
                ++waiting[k];
            }
    }
    std::priority_queue<std::pair<double, jobs::TaskKey>> ready;
    for (const auto& [k, n] : waiting)
        if (n == 0) ready.push({cost[k], k});
    // (finish time, task) of running tasks, earliest first.
    using Running = std::pair<double, jobs::TaskKey>;
    std::priority_queue<Running, std::vector<Running>, std::greater<>> running;
    double now = 0, serial = 0;
    for (const auto& [k, c] : cost) serial += c;
    while (!ready.empty() || !running.empty()) {
        while (!ready.empty() && int(running.size()) < slots) {
            auto [c, k] = ready.top();
            ready.pop();
            running.push({now + c, k});
        }
        auto [t, k] = running.top();
        running.pop();
        now = t;
        for (const auto& d : dependents[k])
            if (--waiting[d] == 0) ready.push({cost[d], d});
    }
    return {serial, now};
}

std::vector<Measurement> run(Context& ctx) {
    std::vector<Measurement> out;
    const std::string jobsBenchExe = buildTreeProgram("jobs/jobs_bench");
    // --- dispatch ---------------------------------------------------------------------------
    const int n = ctx.quick ? 2000 : 100000;
    for (int ahead : {4, 1}) {
        const auto j = jobsBench(mpirun(3) + jobsBenchExe + " dispatch " + std::to_string(n) + " " +
                                 std::to_string(ahead));
        Measurement m;
        m.metric = "dispatch, no-op tasks, 2 workers, " + std::to_string(ahead) + " sent ahead";
        m.unit = "tasks/s";
        m.value = j.numberOr("tasks_per_s", 0);
        m.goal = 1e4;
        const double us = j.numberOr("coordinator_cpu_us_per_task", 0);
        m.note = std::to_string(n) + " tasks in-process, journal written; coordinator " +
                 fixed(us, 1) + " us CPU/task (capacity " + fixed(1e6 / us, 0) +
                 "/s on a dedicated core); wall rate on a shared machine";
        out.push_back(m);
    }
    // --- isolation ----------------------------------------------------------------------------
    {
        const auto j = jobsBench(jobsBenchExe + " fork " + std::to_string(ctx.quick ? 100 : 2000));
        Measurement m;
        m.metric = "isolation overhead per task attempt (fork + pipe + wait4)";
        m.unit = "us";
        m.value = j.numberOr("fork_overhead_us", 0);
        m.higherIsBetter = false;
        m.note = "wall per forked no-op attempt minus in-process (" +
                 fixed(j.numberOr("in_process_us", 0), 1) + " us); CPU (parent + child) " +
                 fixed(j.numberOr("fork_cpu_us", 0), 0) + " us per attempt";
        out.push_back(m);
    }
    // --- release 1 -> 2 ranks ----------------------------------------------------------------
    // Not in quick mode: even the tiny release takes ~190 CPU-s (multifit 80%), too long for CI.
    if (ctx.quick) return out;
    const std::string drp = buildTreeProgram("drp/drp");
    const std::string preset =
        std::getenv("DRP_BENCH_RELEASE_PRESET") ? std::getenv("DRP_BENCH_RELEASE_PRESET") : "demo";
    // $DRP_BENCH_RELEASE_REPO: an existing simulated repository (inputs and skymap.ini, e.g. a
    // smaller tract than the preset's; nothing else) instead of simulating the preset.
    const char* givenRepo = std::getenv("DRP_BENCH_RELEASE_REPO");
    const std::string label = givenRepo ? fs::path(givenRepo).filename().string() : preset;
    fs::path base = fs::path(ctx.workDir) / "release-base";
    Captured sim;
    if (givenRepo) {
        base = givenRepo;
    } else {
        sim = capture(drp + " simulate --preset " + preset + " --out " + base.string() + " 2>&1");
        if (sim.exitCode != 0)
            throw std::runtime_error("engine bench: drp simulate failed:\n" + sim.out);
    }
    std::map<int, Captured> runs;
    for (int ranks : {1, 2}) {
        const fs::path repo = fs::path(ctx.workDir) / ("release-" + std::to_string(ranks));
        fs::remove_all(repo);
        fs::copy(base, repo, fs::copy_options::recursive);
        if (ctx.log) *ctx.log << "engine: drp run, " << ranks << " rank(s) ..." << std::endl;
        runs[ranks] =
            capture(mpirun(ranks) + drp + " run --progress 0 --repo " + repo.string() + " 2>&1");
        if (runs[ranks].exitCode != 0 && runs[ranks].exitCode != 1)
            throw std::runtime_error("engine bench: drp run failed:\n" + runs[ranks].out);
    }
    const auto [serial, makespan] =
        scheduleModel((fs::path(ctx.workDir) / "release-1").string(), 2);
    const double t1 = runs[1].wall, t2 = runs[2].wall;
    double load[3] = {0, 0, 0};
    if (getloadavg(load, 3) < 1) load[0] = -1;
    {
        Measurement m;
        m.metric = label + " release 1 -> 2 ranks, parallel efficiency (wall)";
        m.unit = "%";
        m.value = 100 * t1 / (2 * t2);
        m.goal = 90;
        m.note = "simulate " + fixed(sim.wall, 0) + " s; drp run wall " + fixed(t1, 1) +
                 " s (1 rank) vs " + fixed(t2, 1) + " s (2 ranks), CPU " + fixed(runs[1].cpu, 1) +
                 " vs " + fixed(runs[2].cpu, 1) + " s; load average " + fixed(load[0], 1) +
                 " on 2 shared cores: wall time measures the neighbours too";
        out.push_back(m);
    }
    {
        Measurement m;
        m.metric = label + " release 1 -> 2 ranks, schedule efficiency on 2 dedicated cores";
        m.unit = "%";
        m.value = 100 * serial / (2 * makespan);
        m.goal = 90;
        m.note = "list schedule of the 1-rank run's task CPU times and dependencies: " +
                 fixed(serial, 1) + " CPU-s of tasks, makespan " + fixed(makespan, 1) +
                 " s on 2 slots (critical path and load balance; no machine load)";
        out.push_back(m);
    }
    {
        // How busy the engine kept the 2 task slots: summed task wall over 2 x the run's wall,
        // from the 2-rank run's journal. Load slows every task alike, so this measures the gaps
        // (start-up, planning, dispatch, waiting for dependencies) rather than the neighbours.
        double taskWall = 0;
        for (const auto& [k, rec] :
             jobs::foldJournals((fs::path(ctx.workDir) / "release-2").string()).tasks)
            if (rec.state == "done" || rec.state == "degraded") taskWall += rec.wall;
        Measurement m;
        m.metric = label + " release, 2 ranks, task-slot occupancy";
        m.unit = "%";
        m.value = 100 * taskWall / (2 * t2);
        m.goal = 90;
        m.note = "summed task wall " + fixed(taskWall, 1) + " s over 2 x " + fixed(t2, 1) +
                 " s of run wall (journal of the 2-rank run); times the schedule efficiency "
                 "above, it predicts the 1 -> 2 rank efficiency on dedicated cores";
        out.push_back(m);
    }
    {
        Measurement m;
        m.metric = label + " release 1 -> 2 ranks, CPU overhead";
        m.unit = "%";
        m.value = 100 * (runs[2].cpu / runs[1].cpu - 1);
        m.higherIsBetter = false;
        m.note = "extra CPU of all processes of the 2-rank run (mpirun, ranks, task children)";
        out.push_back(m);
    }
    return out;
}

const RegisterBenchmark reg{{.name = "engine",
                             .description = "engine dispatch rate, isolation overhead, release "
                                            "parallel efficiency 1 -> 2 ranks",
                             .run = run}};

}  // namespace
}  // namespace drp::bench
