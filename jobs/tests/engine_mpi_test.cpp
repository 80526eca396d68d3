// The engine over MPI with the synthetic pipeline (synthetic.h): injected failures of every
// class are isolated (the run goes on, dependents are blocked, the exit code says so), a rerun
// after removing the faults completes to outputs identical to a clean run, reruns supersede
// downstream work, and outputs do not depend on the number of ranks. Runs with 2 ranks (and 4,
// registered in jobs/CMakeLists.txt).
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <map>
#include <sstream>

#include "drp/jobs/engine.h"
#include "drp/jobs/journal.h"
#include "synthetic.h"
#include "test_util.h"

using namespace drp::jobs;

namespace {

int worldRank() {
    int r = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &r);
    return r;
}
int worldSize() {
    int s = 0;
    MPI_Comm_size(MPI_COMM_WORLD, &s);
    return s;
}

/// A scratch directory created by rank 0 and shared (same path) by every rank.
class SharedDir {
  public:
    explicit SharedDir(const std::string& tag) {
        std::string path;
        if (worldRank() == 0) {
            _dir = std::make_unique<jobtest::ScratchDir>(tag);
            path = _dir->path();
        }
        int n = static_cast<int>(path.size());
        MPI_Bcast(&n, 1, MPI_INT, 0, MPI_COMM_WORLD);
        path.resize(static_cast<std::size_t>(n));
        MPI_Bcast(path.data(), n, MPI_CHAR, 0, MPI_COMM_WORLD);
        _path = path;
    }
    ~SharedDir() { MPI_Barrier(MPI_COMM_WORLD); }  // nobody still uses it when rank 0 removes it
    const std::string& path() const { return _path; }

  private:
    std::unique_ptr<jobtest::ScratchDir> _dir;
    std::string _path;
};

synthetic::Config testConfig() {
    synthetic::Config c;
    // The injected hang costs this much wall time; an honest synthetic task takes milliseconds
    // of CPU but, forked on a machine at load 20 with 4 ranks, up to a few seconds of wall time.
    c.timeLimitSeconds = 5.0;
    // The injected blow-up reserves one 64 MiB block and fails on the second.
    c.memoryLimitBytes = 96ull << 20;
    return c;
}

EngineOptions options(const std::string& repo) {
    EngineOptions o;
    o.repo = repo;
    o.command = "engine_mpi_test";
    o.configHash = "test";
    o.softwareVersion = "test";
    o.progressSeconds = 0;
    return o;
}

/// Runs on the first `ranks` ranks of COMM_WORLD (the others wait); returns rank 0's summary
/// (other ranks get a default summary). Every rank must call it.
RunSummary runOn(int ranks, const EngineOptions& opt, const synthetic::Config& cfg = testConfig()) {
    MPI_Comm sub;
    MPI_Comm_split(MPI_COMM_WORLD, worldRank() < ranks ? 0 : MPI_UNDEFINED, worldRank(), &sub);
    RunSummary s;
    if (sub != MPI_COMM_NULL) {
        s = runPipeline(synthetic::makePipeline(cfg), opt, sub);
        MPI_Comm_free(&sub);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    return s;
}

void writeFaults(const std::string& repo, const std::string& text) {
    if (worldRank() == 0) jobtest::writeText(repo + "/faults.txt", text);
    MPI_Barrier(MPI_COMM_WORLD);
}

}  // namespace

TEST(EngineMpi, FaultsAreIsolatedClassifiedAndBlockDependents) {
    SharedDir repo("faults"), clean("clean");
    writeFaults(repo.path(),
                "gen u=001 throw\n"
                "gen u=006 segv\n"
                "gen u=013 oom\n"
                "gen u=022 hang\n"
                "gen u=003 io_once\n"
                "gen u=009 degrade\n");
    const int n = worldSize();
    auto s = runOn(n, options(repo.path()));
    if (worldRank() == 0) {
        EXPECT_EQ(s.exitCode, kExitFailed);
        EXPECT_EQ(s.planned, 43u);
        EXPECT_EQ(s.failed, 4u);
        EXPECT_EQ(s.failedByClass["std::runtime_error"], 1u);
        EXPECT_EQ(s.failedByClass["crash"], 1u);
        EXPECT_EQ(s.failedByClass["memory_limit"], 1u);
        EXPECT_EQ(s.failedByClass["timeout"], 1u);
        EXPECT_EQ(s.retried, 1u);  // io_once: retried, then done
        // Groups 0, 1, 3, 5 lose a unit: their combine and gather are blocked, and the global
        // solve and therefore every final.
        EXPECT_EQ(s.blocked, 4u + 4u + 1u + 6u);
        EXPECT_EQ(s.degraded, 1u);
        EXPECT_EQ(s.done + s.degraded, 43u - 4u - 15u);

        auto view = makeStatusView(foldJournals(repo.path()));
        std::map<std::string, StageStatus> byStage;
        for (const auto& st : view.stages) byStage[st.stage] = st;
        EXPECT_EQ(byStage["gen"].byState["failed"], 4);
        EXPECT_EQ(byStage["gen"].byState["degraded"], 1);
        EXPECT_EQ(byStage["gen"].failedByClass["timeout"], 1);
        EXPECT_EQ(byStage["final"].byState["blocked"], 6);
        EXPECT_EQ(view.failures.size(), 4u);

        const std::string why = explainTask(synthetic::makePipeline(testConfig()),
                                            options(repo.path()), {"combine", "g=03"});
        EXPECT_NE(why.find("waiting for 1 of 4 inputs: gen:u=013 (ready)"), std::string::npos)
            << why;
        const std::string done = explainTask(synthetic::makePipeline(testConfig()),
                                             options(repo.path()), {"gen", "u=009"});
        EXPECT_NE(done.find("degraded (degraded in run"), std::string::npos) << done;
    }
    // Remove the faults and resume: only the 19 failed/blocked tasks run.
    writeFaults(repo.path(), "");
    auto r = runOn(n, options(repo.path()));
    auto c = runOn(n, options(clean.path()));
    if (worldRank() == 0) {
        EXPECT_EQ(r.exitCode, kExitOk);
        EXPECT_EQ(r.priorDone, 24u);
        EXPECT_EQ(r.done, 19u);
        EXPECT_EQ(c.exitCode, kExitOk);
        EXPECT_EQ(jobtest::snapshot(repo.path()), jobtest::snapshot(clean.path()));
        EXPECT_EQ(makeStatusView(foldJournals(repo.path())).failures.size(), 0u);
    }
}

TEST(EngineMpi, OutputsDoNotDependOnRankCountOrIsolation) {
    std::vector<int> counts{1, 2, worldSize()};
    counts.erase(std::unique(counts.begin(), counts.end()), counts.end());
    SharedDir reference("ranks-ref");
    auto ref = runOn(1, options(reference.path()));
    for (int k : counts) {
        SharedDir repo("ranks");
        auto opt = options(repo.path());
        if (k == worldSize()) {  // also check in-process mode and tasks sent ahead
            opt.isolation = Isolation::InProcess;
            opt.tasksPerWorker = 3;
        }
        auto s = runOn(k, opt);
        if (worldRank() == 0) {
            EXPECT_EQ(s.exitCode, kExitOk) << k << " ranks";
            EXPECT_EQ(s.done, 43u);
            EXPECT_EQ(jobtest::snapshot(repo.path()), jobtest::snapshot(reference.path()))
                << k << " ranks";
        }
    }
}

TEST(EngineMpi, RerunSupersedesDownstreamAndProgressIsReported) {
    SharedDir repo("rerun");
    std::ostringstream log;
    auto opt = options(repo.path());
    opt.progressSeconds = 1e-6;  // a line per event
    opt.log = &log;
    auto first = runOn(worldSize(), opt);
    auto before =
        worldRank() == 0 ? jobtest::snapshot(repo.path()) : decltype(jobtest::snapshot("")){};
    // Corrupt one committed output behind the engine's back: resume must notice and redo it.
    if (worldRank() == 0) jobtest::writeText(repo.path() + "/combine/g=04.txt", "tampered\n");
    MPI_Barrier(MPI_COMM_WORLD);
    opt.rerun = {{"gen", "u=005"}};
    auto again = runOn(worldSize(), opt);
    if (worldRank() == 0) {
        EXPECT_EQ(first.exitCode, kExitOk);
        EXPECT_NE(log.str().find("43/43 done"), std::string::npos) << log.str();
        // gen u=005, combine g=01, cal.gather g=01, cal, 6 finals; plus the tampered combine g=04
        EXPECT_EQ(again.superseded, 10u);
        EXPECT_EQ(again.done, 11u);
        EXPECT_EQ(again.priorDone, 43u - 11u);
        EXPECT_EQ(jobtest::snapshot(repo.path()), before);
        auto h = foldJournals(repo.path());
        EXPECT_EQ(h.tasks.at({"final", "g=05"}).state, "done");
        EXPECT_EQ(h.tasks.at({"final", "g=05"}).run, again.runId);
    }
}

TEST(EngineMpi, UnknownRerunTargetIsAConfigErrorOnEveryRank) {
    SharedDir repo("badrerun");
    auto opt = options(repo.path());
    opt.rerun = {{"gen", "u=999"}};
    MPI_Comm sub;
    MPI_Comm_dup(MPI_COMM_WORLD, &sub);
    if (worldRank() == 0) {
        try {
            runPipeline(synthetic::makePipeline(testConfig()), opt, sub);
            ADD_FAILURE() << "expected PlanError";
        } catch (const PlanError& e) {
            EXPECT_NE(std::string(e.what()).find("did not produce 'u=999'"), std::string::npos)
                << e.what();
        }
    } else {
        EXPECT_EQ(runPipeline(synthetic::makePipeline(testConfig()), opt, sub).exitCode,
                  kExitConfig);
    }
    MPI_Comm_free(&sub);
}

TEST(EngineMpi, CoordinatorRunsTasksTooUnlessTurnedOff) {
    // Tasks long enough (30 ms) that every slot gets work; count the done events per rank.
    auto cfg = testConfig();
    cfg.sleepMs = 30;
    auto doneByRank = [](const std::string& repo) {
        std::map<int, int> n;
        for (const auto& jf : readJournals(repo))
            for (const auto& ev : jf.events)
                if (ev.stringOr("state") == "done") ++n[static_cast<int>(ev.numberOr("rank", -1))];
        return n;
    };
    SharedDir on("coord-on"), off("coord-off");
    auto a = runOn(worldSize(), options(on.path()), cfg);
    auto opt = options(off.path());
    opt.coordinatorRunsTasks = false;
    auto b = runOn(worldSize(), opt, cfg);
    if (worldRank() == 0) {
        EXPECT_EQ(a.exitCode, kExitOk);
        EXPECT_EQ(b.exitCode, kExitOk);
        auto na = doneByRank(on.path()), nb = doneByRank(off.path());
        for (int r = 0; r < worldSize(); ++r) EXPECT_GT(na[r], 0) << "rank " << r;
        EXPECT_EQ(nb.count(0), 0u);
        for (int r = 1; r < worldSize(); ++r) EXPECT_GT(nb[r], 0) << "rank " << r;
        EXPECT_EQ(jobtest::snapshot(on.path()), jobtest::snapshot(off.path()));
    }
}
