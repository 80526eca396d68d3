// jobs_bench: the engine's performance numbers (docs/engine.md quotes them).
//
//   build/jobs/jobs_bench plan [tasks]               planning time for a visit+patch graph
//   mpirun -np R build/jobs/jobs_bench dispatch N [K] coordinator dispatch rate, no-op tasks,
//                                                   in-process (journal written, fsync 1 s),
//                                                   K tasks sent ahead per worker (default 1)
//   mpirun -np R build/jobs/jobs_bench isolation N [K] same with a forked child per task
//   build/jobs/jobs_bench fork N                     runAttempt cost: fork vs in-process, 1 rank
//
// Each mode prints one JSON object on stdout (rank 0).
#include <mpi.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>

#include "drp/jobs/engine.h"

using namespace drp::jobs;
namespace fs = std::filesystem;

namespace {

double now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

/// A DR1-shaped graph: `patches` patch tasks, each depending on 4 of `patches/100` visit tasks,
/// every patch with one declared output.
Pipeline planPipeline(int patches, bool withOutputs) {
    const int visits = std::max(1, patches / 100);
    Pipeline p;
    p.add(Stage{"visit",
                "visit",
                [visits] {
                    std::vector<PlannedTask> out(static_cast<std::size_t>(visits));
                    for (int i = 0; i < visits; ++i) out[i].dataId = "visit=" + std::to_string(i);
                    return out;
                },
                [](const TaskContext&) { return TaskResult::ok(); },
                {}});
    p.add(Stage{
        "patch",
        "patch",
        [patches, visits, withOutputs] {
            std::vector<PlannedTask> out(static_cast<std::size_t>(patches));
            for (int i = 0; i < patches; ++i) {
                auto& t = out[i];
                t.dataId = "tract=" + std::to_string(i / 100) + ",patch=" + std::to_string(i % 100);
                t.cost = 1 + (i * 7919) % 13;
                for (int k = 0; k < 4; ++k)
                    t.deps.push_back({"visit", "visit=" + std::to_string((i + k * 31) % visits)});
                if (withOutputs) t.outputs = {"patch/" + t.dataId + "/catalog.h5"};
            }
            return out;
        },
        [](const TaskContext&) { return TaskResult::ok(); },
        {}});
    return p;
}

/// `n` independent no-op tasks.
Pipeline noopPipeline(int n) {
    Pipeline p;
    p.add(Stage{"noop",
                "unit",
                [n] {
                    std::vector<PlannedTask> out(static_cast<std::size_t>(n));
                    for (int i = 0; i < n; ++i) out[i].dataId = "u=" + std::to_string(i);
                    return out;
                },
                [](const TaskContext&) { return TaskResult::ok(); },
                {}});
    return p;
}

std::string scratch(const char* tag) {
    std::string t =
        (fs::temp_directory_path() / (std::string("jobs-bench-") + tag + "-XXXXXX")).string();
    if (!mkdtemp(t.data())) throw std::runtime_error("mkdtemp");
    return t;
}

int runDispatch(int n, Isolation iso, const char* mode, int depth) {
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    std::string repo;
    if (rank == 0) repo = scratch(mode);
    int len = static_cast<int>(repo.size());
    MPI_Bcast(&len, 1, MPI_INT, 0, MPI_COMM_WORLD);
    repo.resize(static_cast<std::size_t>(len));
    MPI_Bcast(repo.data(), len, MPI_CHAR, 0, MPI_COMM_WORLD);
    EngineOptions opt;
    opt.repo = repo;
    opt.isolation = iso;
    opt.tasksPerWorker = depth;
    opt.progressSeconds = 0;
    rusage r0{}, r1{};
    getrusage(RUSAGE_SELF, &r0);
    auto s = runPipeline(noopPipeline(n), opt, MPI_COMM_WORLD);
    getrusage(RUSAGE_SELF, &r1);
    auto cpu = [](const rusage& r) {
        return double(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
               1e-6 * double(r.ru_utime.tv_usec + r.ru_stime.tv_usec);
    };
    // CPU per task of each rank: the coordinator's bounds the dispatch rate of a dedicated core.
    const double myCpu = cpu(r1) - cpu(r0);
    const double contribution = rank == 0 ? 0.0 : myCpu;
    double workerCpu = 0;
    MPI_Reduce(&contribution, &workerCpu, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    if (rank == 0) {
        const double run = s.wallSeconds - s.planSeconds;
        std::printf(
            "{\"mode\":\"%s\",\"tasks_per_worker\":%d,\"ranks\":%d,\"tasks\":%d,\"done\":%zu,"
            "\"plan_s\":%.3f,"
            "\"wall_s\":%.3f,\"tasks_per_s\":%.0f,\"us_per_task\":%.1f,"
            "\"coordinator_cpu_us_per_task\":%.1f,\"max_worker_cpu_s\":%.2f,"
            "\"journal_bytes\":%llu}\n",
            mode, depth, size, n, s.done, s.planSeconds, s.wallSeconds, double(n) / run,
            1e6 * run / double(n), 1e6 * myCpu / double(n), workerCpu,
            static_cast<unsigned long long>(fs::file_size(s.journalPath)));
        fs::remove_all(repo);
    }
    return s.exitCode;
}

}  // namespace

int main(int argc, char** argv) {
    std::string mode = argc > 1 ? argv[1] : "plan";
    int n = argc > 2 ? std::stoi(argv[2]) : 0;
    if (mode == "plan") {
        if (!n) n = 1000000;
        double t0 = now();
        auto p = planPipeline(n, true);
        auto g = TaskGraph::build(p);
        double t1 = now();
        Schedule s(g);
        s.start();
        std::size_t ready = 0;
        while (s.hasReady() && ready < 1000) {
            s.popReady();
            ++ready;
        }
        double t2 = now();
        rusage ru{};
        getrusage(RUSAGE_SELF, &ru);
        std::printf(
            "{\"mode\":\"plan\",\"tasks\":%zu,\"edges_per_patch\":4,\"plan_s\":%.3f,"
            "\"graph_build_s\":%.3f,\"schedule_start_s\":%.3f,\"peak_rss_mb\":%.0f,"
            "\"explain\":\"%s\"}\n",
            g.size(), t1 - t0, g.planSeconds(), t2 - t1, double(ru.ru_maxrss) / 1024.0,
            s.explain({"patch", "tract=5,patch=7"}).c_str());
        return 0;
    }
    if (mode == "fork") {
        if (!n) n = 2000;
        std::string repo = scratch("fork");
        AttemptSpec spec;
        spec.key = {"noop", "u=1"};
        spec.repo = repo;
        auto fn = [](const TaskContext&) { return TaskResult::ok(); };
        // CPU of this process and of its waited-for children (the forked attempts).
        auto cpuAll = [] {
            double s = 0;
            for (int who : {RUSAGE_SELF, RUSAGE_CHILDREN}) {
                rusage r{};
                getrusage(who, &r);
                s += double(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
                     1e-6 * double(r.ru_utime.tv_usec + r.ru_stime.tv_usec);
            }
            return s;
        };
        double results[2], cpu[2];
        for (int m = 0; m < 2; ++m) {
            auto iso = m == 0 ? Isolation::InProcess : Isolation::Fork;
            double t0 = now(), c0 = cpuAll();
            for (int i = 0; i < n; ++i) runAttempt(fn, spec, iso);
            results[m] = (now() - t0) / n;
            cpu[m] = (cpuAll() - c0) / n;
        }
        fs::remove_all(repo);
        std::printf(
            "{\"mode\":\"fork\",\"attempts\":%d,\"in_process_us\":%.1f,\"fork_us\":%.1f,"
            "\"fork_overhead_us\":%.1f,\"fork_cpu_us\":%.1f}\n",
            n, 1e6 * results[0], 1e6 * results[1], 1e6 * (results[1] - results[0]), 1e6 * cpu[1]);
        return 0;
    }
    if (mode == "dispatch" || mode == "isolation") {
        MPI_Init(&argc, &argv);
        int code = runDispatch(n ? n : (mode == "dispatch" ? 200000 : 5000),
                               mode == "dispatch" ? Isolation::InProcess : Isolation::Fork,
                               mode.c_str(), argc > 3 ? std::stoi(argv[3]) : 1);
        MPI_Finalize();
        return code;
    }
    std::cerr << "usage: jobs_bench plan|dispatch|isolation|fork [n]\n";
    return 64;
}
