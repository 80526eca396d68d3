// jobs_demo: runs the engine's synthetic pipeline (jobs/tests/synthetic.h) on a repository.
// Used by the kill/resume and signal tests (launched under mpirun as a subprocess) and handy to
// watch the engine by hand:
//   mpirun -np 3 build/jobs/jobs_demo --repo /tmp/demo --units 200 --sleep-ms 20 --progress 1
//   build/jobs/jobs_demo --repo /tmp/demo --status        # folded journals, no MPI work
// Exit code: the run's (0 done, 1 failures, 75 interrupted, 64 bad usage).
#include <mpi.h>
#include <signal.h>

#include <cstring>
#include <iostream>
#include <string>

#include "../tests/synthetic.h"
#include "drp/jobs/engine.h"

using namespace drp::jobs;

int main(int argc, char** argv) {
    // A stop signal that arrives before the engine installs its handlers must not kill the rank
    // (default action of SIGUSR1 is to terminate); the engine's handlers replace this.
    ::signal(SIGUSR1, SIG_IGN);
    synthetic::Config cfg;
    EngineOptions opt;
    opt.progressSeconds = 0;
    opt.command = "jobs_demo";
    opt.softwareVersion = "demo";
    bool status = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::cerr << "jobs_demo: " << a << " needs a value\n";
                std::exit(kExitConfig);
            }
            return argv[++i];
        };
        if (a == "--repo")
            opt.repo = next();
        else if (a == "--units")
            cfg.units = std::stoi(next());
        else if (a == "--sleep-ms")
            cfg.sleepMs = std::stoi(next());
        else if (a == "--progress")
            opt.progressSeconds = std::stod(next());
        else if (a == "--in-process")
            opt.isolation = Isolation::InProcess;
        else if (a == "--drain")
            opt.onStop = StopPolicy::Drain;
        else if (a == "--status")
            status = true;
        else {
            std::cerr << "jobs_demo: unknown argument " << a << "\n";
            return kExitConfig;
        }
    }
    if (opt.repo.empty()) {
        std::cerr << "jobs_demo: --repo is required\n";
        return kExitConfig;
    }
    if (status) {
        std::cout << makeStatusView(foldJournals(opt.repo)).toText();
        return 0;
    }
    MPI_Init(&argc, &argv);
    int code = kExitConfig;
    try {
        code = runPipeline(synthetic::makePipeline(cfg), opt, MPI_COMM_WORLD).exitCode;
    } catch (const std::exception& e) {
        std::cerr << "jobs_demo: " << e.what() << "\n";
    }
    MPI_Finalize();
    return code;
}
