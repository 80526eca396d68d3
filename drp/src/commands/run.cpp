// drp run: ingest a repository and run the release pipeline under MPI.
//
//   mpirun -np 4 drp run --repo REPO
//   srun drp run --repo REPO --stages coadd,deblend,multifit --select-file chunk-0003.txt
//
// Rank 0 ingests (unless the registry exists and --reingest is not given), plans the task graph
// and coordinates; the other ranks run tasks in supervised child processes (jobs/). A second run
// resumes: done tasks are skipped. Exit code 0 when every task is done (or degraded), 1 when
// something failed or was blocked, 75 when stopped by a signal (resumable), 2 for usage errors.
#include <mpi.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <set>
#include <sstream>

#include "cli/command.h"
#include "cli/deblend_options.h"
#include "drp/core/atomic_file.h"
#include "drp/drp/pipeline.h"
#include "drp/drp/version.h"
#include "drp/jobs/engine.h"
#include "drp/jobs/journal.h"
#include "drp/slurm/chunks.h"

namespace po = boost::program_options;

namespace {

void addOptions(po::options_description& o) {
    o.add_options()("repo", po::value<std::string>()->required(), "release repository")(
        "reingest", po::bool_switch(), "re-scan REPO/input even if ingest/visits.h5 exists")(
        "isolation", po::value<std::string>()->default_value("fork"),
        "task isolation: fork (child process per task: survives crashes/OOM) or none")(
        "time-limit", po::value<double>()->default_value(0),
        "wall-clock limit per task attempt [s] (0: none)")(
        "memory-limit", po::value<double>()->default_value(0),
        "address-space limit per task attempt [GiB] (0: none)")(
        "stages", po::value<std::string>()->default_value(""),
        "comma-separated stages to run (default: all); earlier stages must have run (their "
        "failed or blocked tasks upstream of the selection are retried)")(
        "tolerate-task-failures", po::bool_switch(),
        "exit 0 when the run finished but some tasks failed or are blocked (they stay in the "
        "journal; drp status reports them); drp submit's jobs use it so that, as within one run, "
        "a failed unit does not stop the rest of the release (Slurm's afterok sees only the "
        "exit code)")(
        "select-file", po::value<std::string>(),
        "run only the tasks listed in FILE (one STAGE:DATAID per line, '#' comments; written by "
        "drp submit for each job-array chunk); combined with --stages")(
        "progress", po::value<double>()->default_value(10),
        "seconds between progress lines (0: off)")(
        "exit-status-file", po::value<std::string>(),
        "when the run ends, rank 0 writes its exit code to FILE (atomically). drp submit's "
        "batch scripts check it: a launcher (srun, mpirun) that exits 0 without having run drp "
        "leaves no file, and the job then fails instead of letting the next stage start");
    drp::cli::addDeblendOptions(o);
}

struct MpiSession {
    bool owns = false;
    MpiSession() {
        int init = 0;
        MPI_Initialized(&init);
        if (!init) {
            int provided = 0;
            MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
            owns = true;
        }
    }
    ~MpiSession() {
        if (owns) MPI_Finalize();
    }
};

int run(const drp::cli::Invocation& inv) {
    using namespace drp;
    using namespace drp::pipeline;
    // Slurm's time-limit warning (SIGUSR1) may come while this rank is still starting up, before
    // the engine installs its stop handler: ignore it until then rather than die of it (the
    // scripts of drp submit repeat the signal until the run stops). Task children ignore it.
    std::signal(SIGUSR1, SIG_IGN);
    MpiSession mpi;
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    Repository repo(inv.options["repo"].as<std::string>());
    PipelineConfig config;
    cli::deblendConfigFromOptions(inv.options, config.detect, config.deblend);
    config.validate();
    std::string isolation = inv.options["isolation"].as<std::string>();
    if (isolation != "fork" && isolation != "none")
        throw configError("--isolation must be fork or none");

    // Rank 0 ingests; everybody waits for the registry (a collective at start-up, before any
    // task runs, so no rank can be dead in it).
    int ingestOk = 1;
    std::string ingestError;
    if (rank == 0) {
        try {
            if (!std::filesystem::is_directory(repo.root()))
                throw notFound("no repository at " + repo.root());
            auto skymap = makeSkyMap(readSkyMapConfig(repo));
            if (inv.options["reingest"].as<bool>() ||
                !std::filesystem::exists(repo.abs(Repository::kIngest))) {
                std::vector<std::string> problems;
                Registry reg = ingest(repo, *skymap, &problems);
                inv.out << "drp run: ingested " << reg.exposures.size() << " exposures in "
                        << reg.bands.size() << " bands overlapping " << reg.overlaps.size()
                        << " patches\n";
                for (auto& p : problems) inv.err << "drp run: ingest: skipped " << p << "\n";
            }
        } catch (const std::exception& e) {
            ingestOk = 0;
            ingestError = e.what();
        }
    }
    MPI_Bcast(&ingestOk, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (!ingestOk) {
        if (rank == 0) throw badInput(ingestError);
        return 2;
    }
    std::shared_ptr<const SkyMap> skymap = makeSkyMap(readSkyMapConfig(repo));
    auto registry = std::make_shared<const Registry>(readRegistry(repo));
    jobs::Pipeline pipeline = makePipeline(repo, config, skymap, registry);

    jobs::EngineOptions opt;
    opt.repo = repo.root();
    opt.command = "drp run --repo " + repo.root();
    if (!inv.options["stages"].as<std::string>().empty())
        opt.command += " --stages " + inv.options["stages"].as<std::string>();
    if (inv.options.count("select-file"))
        opt.command += " --select-file " + inv.options["select-file"].as<std::string>();
    // Under Slurm, which job (or array task) this run is: `drp status` and the Slurm tests map
    // journals to jobs with it.
    if (const char* job = std::getenv("SLURM_JOB_ID")) {
        const char* arrayJob = std::getenv("SLURM_ARRAY_JOB_ID");
        const char* arrayTask = std::getenv("SLURM_ARRAY_TASK_ID");
        opt.command +=
            " (slurm job " +
            (arrayJob && arrayTask ? std::string(arrayJob) + "_" + arrayTask : std::string(job));
        if (const char* restarts = std::getenv("SLURM_RESTART_COUNT"))
            opt.command += ", restart " + std::string(restarts);
        opt.command += ")";
    }
    opt.configHash = config.hash();
    opt.softwareVersion = drp::versionString();
    opt.isolation = isolation == "fork" ? jobs::Isolation::Fork : jobs::Isolation::InProcess;
    opt.defaultTimeLimitSeconds = inv.options["time-limit"].as<double>();
    opt.defaultMemoryLimitBytes =
        static_cast<std::uint64_t>(inv.options["memory-limit"].as<double>() * 1073741824.0);
    opt.errorClassOf = errorClassOf;
    // drp::AtomicFile (core/src/atomic_file.cpp), which the stages use to commit their outputs,
    // writes "<dir>/.<name>.tmp.<pid>.<n>.<random>": a task killed mid-write (node loss,
    // SIGKILL) leaves one behind; the engine removes it when the task runs again.
    opt.temporaryPatterns = {".{name}.tmp."};
    opt.progressSeconds = inv.options["progress"].as<double>();
    opt.log = &inv.out;
    std::string stages = inv.options["stages"].as<std::string>();
    if (!stages.empty()) {
        std::vector<std::string> names;
        std::stringstream ss(stages);
        for (std::string s; std::getline(ss, s, ',');) {
            if (pipeline.stageIndex(s) < 0)
                throw configError("--stages: unknown stage '" + s + "'");
            names.push_back(s);
        }
        opt.select = [names](const jobs::TaskKey& k) {
            for (auto& n : names)
                if (k.stage == n || k.stage == n + ".gather") return true;
            return false;
        };
    }
    if (inv.options.count("select-file")) {
        // Read on every rank before the run starts (a bad file is a usage error, not a failure).
        std::function<bool(const jobs::TaskKey&)> inFile;
        try {
            inFile = slurm::selectFromFile(inv.options["select-file"].as<std::string>());
        } catch (const std::exception& e) {
            throw configError(std::string("--select-file: ") + e.what());
        }
        auto byStage = opt.select;
        opt.select = [inFile, byStage](const jobs::TaskKey& k) {
            return inFile(k) && (!byStage || byStage(k));
        };
    }
    if (opt.select) {
        // Upstream tasks that failed (or were blocked) in earlier runs, e.g. earlier Slurm jobs,
        // are retried with the selection, so that the selected tasks see them finish one way or
        // the other instead of waiting on an unselected task (see slurm::unfinishedUpstream).
        // Only the coordinator plans, so only rank 0 needs them.
        auto chosen = opt.select;
        auto retry = std::make_shared<std::set<jobs::TaskKey>>();
        if (rank == 0) {
            const auto graph = jobs::TaskGraph::build(pipeline);
            std::set<jobs::TaskKey> selected;
            for (std::uint32_t t = 0; t < graph.size(); ++t)
                if (chosen(graph.key(t))) selected.insert(graph.key(t));
            for (const auto& k :
                 slurm::unfinishedUpstream(graph, jobs::foldJournals(repo.root()), selected)) {
                retry->insert(k);
                inv.out << "drp run: retrying " << k.str()
                        << " (unfinished upstream of the selected tasks)\n";
            }
        }
        opt.select = [chosen, retry](const jobs::TaskKey& k) {
            return chosen(k) || retry->count(k) > 0;
        };
    }
    jobs::RunSummary s = jobs::runPipeline(pipeline, opt, MPI_COMM_WORLD);
    if (rank == 0) {
        inv.out << "drp run: " << s.planned << " tasks: " << s.priorDone << " already done, "
                << s.done << " done, " << s.degraded << " degraded, " << s.failed << " failed, "
                << s.blocked << " blocked";
        if (s.interrupted) inv.out << ", " << s.interrupted << " interrupted";
        inv.out << " (" << size << " ranks, " << s.wallSeconds << " s); journal " << s.journalPath
                << "\n";
        for (auto& [cls, n] : s.failedByClass)
            inv.out << "drp run:   failed [" << cls << "]: " << n << "\n";
    }
    int code = s.exitCode;
    if (code == jobs::kExitFailed && inv.options["tolerate-task-failures"].as<bool>())
        code = jobs::kExitOk;
    if (rank == 0 && inv.options.count("exit-status-file")) {
        AtomicFile f(inv.options["exit-status-file"].as<std::string>());
        {
            std::ofstream o(f.tempPath());
            o << code << " " << s.runId << "\n";
            if (!o.flush()) throw ioError("cannot write the exit status file " + f.tempPath());
        }
        f.commit();
    }
    return code;
}

const drp::cli::RegisterCommand reg{
    {.name = "run",
     .summary = "Ingest a repository and run the release pipeline (under mpirun)",
     .addOptions = addOptions,
     .run = run}};

}  // namespace
