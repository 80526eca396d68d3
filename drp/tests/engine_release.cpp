// The engine on the REAL release pipeline (issue #8 "Must show"): `mpirun drp run` on a
// simulated `tiny` sky, with fault injection (DRP_JOBS_INJECT_FAULTS), whole-job SIGKILLs, and
// 1/2/4 ranks. One executable, four CTest entries sharing one simulated repository (a CTest
// fixture, so the sky is simulated once per ctest invocation):
//
//   engine_release_setup  EngineFixture.*  drp simulate --preset tiny --seed 1 (2 ranks), then
//                                          the reference release of the "mini" layout below,
//                                          uninterrupted, on 2 ranks
//   engine_faults_test    EngineFaults.*   k = 5 of N = 9 patches broken (exception, segfault,
//                                          memory blow-up, hang past the time limit, bad input)
//                                          on 2 and 4 ranks; rerun without the faults
//   engine_kill_test      EngineKill.*     the whole mpirun SIGKILLed at seeded random moments,
//                                          resumed, outputs byte-identical to the reference
//   engine_ranks_test     EngineRanks.*    1 and 4 ranks byte-identical to the 2-rank reference
//
// Layouts: the simulated exposures (6 visits x 4 detectors) with a tract smaller than the one
// drp simulate writes for tiny (3x3 patches of 400 px, where the central patch alone needs
// ~19 CPU-s of deblending and ~25 of multifit): radius 20" about the field centre, 25 px patch
// borders, and
//   mini   2x2 patches of 105 px: every stage down to the release catalog in ~30 CPU-s (the
//          visit stages are unchanged, ~7 CPU-s; multifit sees ~1/10 of the sky)
//   grid9  3x3 patches of 70 px: for the fault test, which stops after deblend (`--stages`)
// The visit-level stages (characterize, astrometry, photocal) are the same as on the full tract.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "../../jobs/tests/process_util.h"
#include "../../jobs/tests/test_util.h"
#include "drp/core/atomic_file.h"
#include "drp/jobs/engine.h"
#include "drp/jobs/fault_injection.h"
#include "drp/jobs/journal.h"

namespace fs = std::filesystem;
using namespace drp::jobs;
using namespace drp::jobs::jobtest;

namespace {

const fs::path kFixture = ENGINE_FIXTURE_DIR;
fs::path simRepo() {
    return kFixture / "sim";
}
fs::path miniRef() {
    return kFixture / "mini-ref";
}
fs::path readyMarker() {
    return kFixture / "ready";
}

// The stages of a fault run: every stage up to deblend (multifit and release unselected).
const std::string kStagesToDeblend = "characterize,astrometry,photocal,coadd,deblend";

std::string slurp(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

constexpr int kMini = 105, kGrid9 = 70;  // patch inner sizes of the two layouts [px]

/// A fresh repository holding the simulated inputs (input/, refcat/, truth/) and the skymap of
/// a layout (above) given by its patch inner size.
void makeRepo(const fs::path& dst, int patchInner) {
    fs::remove_all(dst);
    fs::create_directories(dst);
    for (const char* d : {"input", "refcat", "truth"})
        fs::copy(simRepo() / d, dst / d, fs::copy_options::recursive);
    std::istringstream in(slurp(simRepo() / "skymap.ini"));
    std::ostringstream out;
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("radius", 0) == 0) line = "radius = 0.00555556";  // 20"
        if (line.rfind("patch_inner", 0) == 0) line = "patch_inner = " + std::to_string(patchInner);
        if (line.rfind("patch_border", 0) == 0) line = "patch_border = 25";
        out << line << "\n";
    }
    std::ofstream(dst / "skymap.ini") << out.str();
}

/// argv of `mpirun -np N [-x ENV=...] drp run --repo REPO --progress 0 <extra>`.
std::vector<std::string> drpRun(int np, const fs::path& repo, std::vector<std::string> extra = {},
                                const std::string& faultFile = {}) {
    std::vector<std::string> a = {
        MPIEXEC, "--allow-run-as-root", "--oversubscribe", "--bind-to", "none",
        "-np",   std::to_string(np)};
    if (!faultFile.empty()) {
        a.push_back("-x");
        a.push_back(std::string(kInjectFaultsEnv) + "=" + faultFile);
    }
    for (std::string s : {std::string(DRP_EXE), std::string("run"), std::string("--repo"),
                          repo.string(), std::string("--progress"), std::string("0")})
        a.push_back(s);
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
}

/// Runs a command (no shell) to completion, output appended to `log`; its exit code.
int runToEnd(const std::vector<std::string>& args, const fs::path& log) {
    return waitExit(launchInSession(args, log.string()));
}

/// `drp <args...>` (not under mpirun), stdout+stderr to `log`; exit code.
int drpCommand(std::vector<std::string> args, const fs::path& log) {
    args.insert(args.begin(), DRP_EXE);
    return runToEnd(args, log);
}

/// Relative path -> SHA-256 of every committed file of a repository: everything except the
/// journals (runs/), which name runs, hosts and times.
std::map<std::string, std::string> committedOutputs(const fs::path& repo) {
    std::map<std::string, std::string> out;
    for (const auto& e : fs::recursive_directory_iterator(repo)) {
        if (!e.is_regular_file()) continue;
        std::string rel = fs::relative(e.path(), repo).string();
        if (rel.rfind("runs/", 0) == 0) continue;
        out[rel] = drp::sha256File(e.path().string());
    }
    return out;
}

/// The files present in only one of a and b, or different: a readable list for failures.
std::string diffOutputs(const std::map<std::string, std::string>& a,
                        const std::map<std::string, std::string>& b) {
    std::string d;
    std::set<std::string> names;
    for (auto& [k, v] : a) names.insert(k);
    for (auto& [k, v] : b) names.insert(k);
    for (auto& n : names) {
        auto ia = a.find(n), ib = b.find(n);
        if (ia == a.end())
            d += "  only in the second: " + n + "\n";
        else if (ib == b.end())
            d += "  only in the first: " + n + "\n";
        else if (ia->second != ib->second)
            d += "  differs: " + n + "\n";
    }
    return d;
}

std::size_t countWithPrefix(const std::map<std::string, std::string>& files,
                            const std::string& prefix) {
    std::size_t n = 0;
    for (auto& [k, v] : files) n += k.rfind(prefix, 0) == 0;
    return n;
}

void requireFixture() {
    ASSERT_TRUE(fs::exists(readyMarker()))
        << "the shared repository " << kFixture
        << " is missing: run these tests through ctest (fixture engine_release_setup)";
}

TaskKey key(const std::string& stage, const std::string& id) {
    return {stage, id};
}

/// Keys of the tasks that a given run (by index in fold order) completed (done or degraded).
std::set<TaskKey> completedInRun(const std::string& repo, std::size_t runIndex) {
    auto files = readJournals(repo);
    std::set<TaskKey> out;
    if (runIndex >= files.size()) return out;
    for (const auto& e : files[runIndex].events) {
        if (e.stringOr("event") != "task") continue;
        const std::string state = e.stringOr("state");
        if (state == "done" || state == "degraded")
            out.insert(TaskKey{e.stringOr("stage"), e.stringOr("id")});
    }
    return out;
}

}  // namespace

// ---- fixture ---------------------------------------------------------------------------------

TEST(EngineFixture, SimulateAndRunTheMiniReleaseUninterrupted) {
    fs::remove_all(kFixture);
    fs::create_directories(kFixture);
    const fs::path log = kFixture / "setup.log";
    ASSERT_EQ(runToEnd({MPIEXEC, "--allow-run-as-root", "--oversubscribe", "--bind-to", "none",
                        "-np", "2", DRP_EXE, "simulate", "--preset", "tiny", "--seed", "1", "--out",
                        simRepo().string()},
                       log),
              0)
        << slurp(log);
    makeRepo(miniRef(), kMini);
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_EQ(runToEnd(drpRun(2, miniRef()), log), kExitOk) << slurp(log);
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    // Every stage ran to the release catalog: 24 visit-detectors, 4 patches x 3 bands.
    auto h = foldJournals(miniRef().string());
    std::map<std::string, int> doneByStage;
    for (auto& [k, r] : h.tasks) {
        EXPECT_TRUE(r.state == "done" || r.state == "degraded") << k.str() << ": " << r.state;
        ++doneByStage[k.stage];
    }
    EXPECT_EQ(doneByStage["characterize"], 24);
    EXPECT_EQ(doneByStage["astrometry"], 24);
    EXPECT_EQ(doneByStage["photocal"], 1);
    EXPECT_EQ(doneByStage["coadd"], 12);
    EXPECT_EQ(doneByStage["deblend"], 4);
    EXPECT_EQ(doneByStage["multifit"], 4);
    EXPECT_EQ(doneByStage["release"], 1);
    ASSERT_TRUE(fs::exists(miniRef() / "release/object.h5"));
    std::ofstream(readyMarker()) << "ok\n";
    std::cout << "[ fixture  ] mini release on 2 ranks: " << wall << " s wall\n";
}

// ---- faults ----------------------------------------------------------------------------------

// k = 5 of N = 9 patches broken, each in its own way, on 2 and 4 ranks (concurrently, with a
// clean 2-rank run of the same stages as reference): the other 4 patches are done, each broken
// patch fails with its class, the patch's later stages are blocked, the run exits 1. A transient
// I/O error in a tenth task is retried and succeeds. Then the faults are removed: `drp rerun
// --failed` lists what is left, the next run redoes exactly the failed and blocked tasks of the
// selected stages and ends byte-identical to the clean run; `drp rerun --patches` redoes one
// patch's deblend and nothing else.
TEST(EngineFaults, KOfNPatchesFailWithTheirClassAndRerunCompletes) {
    requireFixture();
    ScratchDir scratch("engine-faults");
    const fs::path dir = scratch.path();
    const fs::path faults = dir / "faults.txt";
    writeText(faults.string(),
              "# stage data-id kind (drp/jobs/fault_injection.h)\n"
              "coadd tract=0,patch=1,band=g throw\n"
              "deblend tract=0,patch=3 segv\n"
              "deblend tract=0,patch=5 oom\n"
              "coadd tract=0,patch=7,band=r hang\n"
              "deblend tract=0,patch=8 bad_input\n"
              "coadd tract=0,patch=4,band=i io_once\n");
    // The time limit is what turns the hang into a failure: 30 s, 30x the CPU time of the
    // slowest real task of these stages (a deblend, 1 CPU-s; 5 s wall with three of these runs
    // side by side at load 9), so a loaded machine cannot make a healthy task time out. The memory
    // allowance (2 GiB above the worker's address space) is far above what these tasks use (< 0.3
    // GB) and what `oom` reserves past.
    const std::vector<std::string> opts = {"--stages", kStagesToDeblend, "--time-limit",
                                           "30",       "--memory-limit", "2"};
    makeRepo(dir / "clean", kGrid9);
    makeRepo(dir / "np2", kGrid9);
    makeRepo(dir / "np4", kGrid9);
    pid_t clean = launchInSession(drpRun(2, dir / "clean", opts), (dir / "clean.log").string());
    pid_t np2 =
        launchInSession(drpRun(2, dir / "np2", opts, faults.string()), (dir / "np2.log").string());
    pid_t np4 =
        launchInSession(drpRun(4, dir / "np4", opts, faults.string()), (dir / "np4.log").string());
    ASSERT_EQ(waitExit(clean), kExitOk) << slurp(dir / "clean.log");
    const int code2 = waitExit(np2), code4 = waitExit(np4);
    const auto reference = committedOutputs(dir / "clean");
    ASSERT_EQ(countWithPrefix(reference, "patch/"), 9u * 3 * 2 + 9);  // coadd+psf, deblend

    const std::map<TaskKey, std::string> failedClass = {
        {key("coadd", "tract=0,patch=1,band=g"), "std::runtime_error"},
        {key("deblend", "tract=0,patch=3"), "crash"},
        {key("deblend", "tract=0,patch=5"), "memory_limit"},
        {key("coadd", "tract=0,patch=7,band=r"), "timeout"},
        {key("deblend", "tract=0,patch=8"), "bad_input"}};
    // Downstream of each failure: the patch's deblend (if the coadd failed) and its multifit
    // (not selected, but blocked all the same: it can never run until the failure is fixed).
    const std::map<TaskKey, TaskKey> blockedBy = {
        {key("deblend", "tract=0,patch=1"), key("coadd", "tract=0,patch=1,band=g")},
        {key("multifit", "tract=0,patch=1"), key("coadd", "tract=0,patch=1,band=g")},
        {key("multifit", "tract=0,patch=3"), key("deblend", "tract=0,patch=3")},
        {key("multifit", "tract=0,patch=5"), key("deblend", "tract=0,patch=5")},
        {key("deblend", "tract=0,patch=7"), key("coadd", "tract=0,patch=7,band=r")},
        {key("multifit", "tract=0,patch=7"), key("coadd", "tract=0,patch=7,band=r")},
        {key("multifit", "tract=0,patch=8"), key("deblend", "tract=0,patch=8")}};
    const std::set<int> goodPatches = {0, 2, 4, 6};

    for (auto [np, code] : {std::pair{2, code2}, std::pair{4, code4}}) {
        SCOPED_TRACE("mpirun -np " + std::to_string(np));
        const fs::path repo = dir / ("np" + std::to_string(np));
        const fs::path log = dir / ("np" + std::to_string(np) + ".log");
        EXPECT_EQ(code, kExitFailed) << slurp(log);
        auto h = foldJournals(repo.string());
        ASSERT_EQ(h.runs.size(), 1u);
        EXPECT_EQ(h.runs[0].ranks, np);
        EXPECT_EQ(h.runs[0].status, "failed");
        std::size_t failed = 0, blocked = 0;
        for (auto& [k, r] : h.tasks) {
            if (r.state == "failed") {
                ++failed;
                ASSERT_TRUE(failedClass.count(k))
                    << "unexpected failure " << k.str() << " [" << r.errorClass << "] " << r.error;
                EXPECT_EQ(r.errorClass, failedClass.at(k)) << k.str() << ": " << r.error;
                EXPECT_EQ(r.attempt, 1) << k.str() << ": no retry for this class";
            } else if (r.state == "blocked") {
                ++blocked;
                ASSERT_TRUE(blockedBy.count(k)) << "unexpectedly blocked " << k.str();
                EXPECT_EQ(r.blockedBy, blockedBy.at(k).str()) << k.str();
            } else {
                EXPECT_TRUE(r.state == "done" || r.state == "degraded")
                    << k.str() << ": " << r.state;
            }
        }
        EXPECT_EQ(failed, failedClass.size());
        EXPECT_EQ(blocked, blockedBy.size());
        // The N - k good patches are complete: three coadds and the deblend each.
        for (int p : goodPatches) {
            const std::string pid = "tract=0,patch=" + std::to_string(p);
            for (const auto& k : {key("coadd", pid + ",band=g"), key("coadd", pid + ",band=r"),
                                  key("coadd", pid + ",band=i"), key("deblend", pid)}) {
                auto it = h.tasks.find(k);
                ASSERT_NE(it, h.tasks.end()) << k.str();
                EXPECT_TRUE(it->second.state == "done" || it->second.state == "degraded")
                    << k.str() << ": " << it->second.state;
            }
        }
        // Transient I/O: retried on the spot, done on attempt 2.
        const auto& io = h.tasks.at(key("coadd", "tract=0,patch=4,band=i"));
        EXPECT_TRUE(io.state == "done" || io.state == "degraded") << io.state;
        EXPECT_EQ(io.attempt, 2);
        // The hang was killed at the limit, not earlier and not much later.
        const auto& hung = h.tasks.at(key("coadd", "tract=0,patch=7,band=r"));
        EXPECT_GE(hung.wall, 30.0);
        EXPECT_LT(hung.wall, 70.0);

        // drp status: failed by class, exit code 1.
        const fs::path status = dir / ("status" + std::to_string(np) + ".txt");
        EXPECT_EQ(drpCommand({"status", "--repo", repo.string()}, status), 1);
        const std::string text = slurp(status);
        for (auto& [k, cls] : failedClass)
            EXPECT_NE(text.find("failed[" + cls + "]: 1"), std::string::npos) << cls << "\n"
                                                                              << text;
        // drp rerun --failed lists every failed and blocked task.
        const fs::path listed = dir / ("rerun" + std::to_string(np) + ".txt");
        EXPECT_EQ(drpCommand({"rerun", "--repo", repo.string(), "--failed"}, listed), 0);
        const std::string list = slurp(listed);
        for (auto& [k, cls] : failedClass)
            EXPECT_NE(list.find(k.str()), std::string::npos) << k.str() << "\n" << list;
        for (auto& [k, by] : blockedBy) {
            if (k.stage != "multifit") {
                EXPECT_NE(list.find(k.str()), std::string::npos) << k.str() << "\n" << list;
            }
        }

        // Faults removed: the rerun completes, doing exactly the failed and blocked tasks of the
        // selected stages (nothing done is redone), and the outputs equal the clean run's.
        const fs::path log2 = dir / ("np" + std::to_string(np) + "-rerun.log");
        ASSERT_EQ(runToEnd(drpRun(np, repo, opts), log2), kExitOk) << slurp(log2);
        std::set<TaskKey> expectRedone;
        for (auto& [k, cls] : failedClass) expectRedone.insert(k);
        for (auto& [k, by] : blockedBy)
            if (k.stage != "multifit") expectRedone.insert(k);
        EXPECT_EQ(completedInRun(repo.string(), 1), expectRedone);
        const auto outputs = committedOutputs(repo);
        EXPECT_EQ(outputs, reference) << diffOutputs(outputs, reference);
        EXPECT_FALSE(hasTempFiles(repo.string()));
    }

    // The release manager's form: redo one patch from its deblend on. Only that task runs, and
    // it rewrites the same bytes.
    const fs::path repo = dir / "np2";
    const fs::path log = dir / "patches.log";
    ASSERT_EQ(
        drpCommand(
            {"rerun", "--repo", repo.string(), "--patches", "0:4", "--from-stage", "deblend"}, log),
        0)
        << slurp(log);
    ASSERT_EQ(runToEnd(drpRun(2, repo, opts), log), kExitOk) << slurp(log);
    auto files = readJournals(repo.string());
    EXPECT_EQ(completedInRun(repo.string(), files.size() - 1),
              (std::set<TaskKey>{key("deblend", "tract=0,patch=4")}));
    EXPECT_EQ(committedOutputs(repo), reference);
}

// ---- SIGKILL + resume ------------------------------------------------------------------------

/// Completed (done/degraded) task events in the journals of `repo` not listed in `before`.
int completedSince(const fs::path& repo, const std::set<std::string>& before) {
    int n = 0;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(repo / "runs", ec)) {
        if (before.count(e.path().filename().string())) continue;
        const std::string text = slurp(e.path());
        for (const char* state : {"\"state\":\"done\"", "\"state\":\"degraded\""})
            for (auto at = text.find(state); at != std::string::npos; at = text.find(state, at + 1))
                ++n;
    }
    return n;
}

std::set<std::string> journalNames(const fs::path& repo) {
    std::set<std::string> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(repo / "runs", ec))
        out.insert(e.path().filename().string());
    return out;
}

// Like a node loss: every process of the job (mpirun, both ranks, the task children) gets
// SIGKILL at a seeded random moment; a plain `drp run` resumes. The moments are drawn in
// progress, not in seconds, so that the machine's load cannot move them past the end of the run:
// the job is killed once its journal holds K completed tasks (and a further 0-300 ms, so kills
// land inside tasks and writes). Two trials, each killing the run (K in 1-46 of the 94 tasks in
// trial 0: visit stages and photocal; 47-88 in trial 1: coadds, deblend, multifit) and then its
// first resume (K in the first half of what is left), then resuming to the end. All committed
// outputs must equal the uninterrupted reference byte for byte, with no temporary left (the
// engine's or the stages' own atomic writers') and nothing failed.
TEST(EngineKill, RandomSigkillsOfMpirunResumeToIdenticalOutputs) {
    requireFixture();
    const auto reference = committedOutputs(miniRef());
    const int total = static_cast<int>(foldJournals(miniRef().string()).tasks.size());
    ASSERT_EQ(total, 94);
    ScratchDir scratch("engine-kill");
    const fs::path dir = scratch.path();
    std::mt19937 rng(20261204);
    std::uniform_int_distribution<int> extraMs(0, 300);
    int kills = 0;
    for (int trial = 0; trial < 2; ++trial) {
        SCOPED_TRACE("trial " + std::to_string(trial));
        const fs::path repo = dir / ("t" + std::to_string(trial));
        const fs::path log = dir / ("t" + std::to_string(trial) + ".log");
        makeRepo(repo, kMini);
        int left = total, killedRuns = 0;
        std::ostringstream where;
        for (int k = 0; k < 2; ++k) {
            const int at =
                k == 0
                    ? std::uniform_int_distribution<int>(
                          trial == 0 ? 1 : total / 2, trial == 0 ? total / 2 - 1 : total - 6)(rng)
                    : std::uniform_int_distribution<int>(1, std::max(1, left / 2))(rng);
            const int pause = extraMs(rng);
            const auto before = journalNames(repo);
            pid_t pid = launchInSession(drpRun(2, repo), log.string());
            int code = -1, done = 0;
            while (code == -1 && (done = completedSince(repo, before)) < at)
                code = waitFor(pid, 0.02);
            if (code == -1) code = waitFor(pid, pause / 1000.0);
            if (code == -1) {
                killSession(pid);
                waitExit(pid);
                done = completedSince(repo, before);
                left -= done;
                ++kills;
                ++killedRuns;
                where << " after " << done << " tasks (target " << at << " + " << pause << " ms)";
            } else {
                ASSERT_EQ(code, kExitOk) << slurp(log);
                where << " (run ended before " << at << " tasks)";
                break;
            }
        }
        std::cout << "[ kill     ] trial " << trial << ": killed" << where.str() << "\n";
        ASSERT_EQ(runToEnd(drpRun(2, repo), log), kExitOk) << slurp(log);
        const auto outputs = committedOutputs(repo);
        EXPECT_EQ(outputs, reference) << diffOutputs(outputs, reference);
        EXPECT_FALSE(hasTempFiles(repo.string()));
        auto h = foldJournals(repo.string());
        EXPECT_TRUE(makeStatusView(h).failures.empty());
        // Each killed run left a journal without run_end; the last run completed.
        ASSERT_FALSE(h.runs.empty());
        EXPECT_EQ(h.runs.back().status, "complete");
        int unended = 0;
        for (auto& r : h.runs) unended += !r.ended;
        EXPECT_EQ(unended, killedRuns);
    }
    EXPECT_GE(kills, 3) << "the test must really interrupt runs";
}

// ---- 1 / 2 / 4 ranks -------------------------------------------------------------------------

// The whole release (every stage to the release catalog) on 1 and 4 ranks, concurrently, gives
// the same bytes as the 2-rank reference: every committed file, the release catalog included.
TEST(EngineRanks, OneTwoFourRanksGiveByteIdenticalOutputs) {
    requireFixture();
    const auto reference = committedOutputs(miniRef());
    ASSERT_EQ(reference.count("release/object.h5"), 1u);
    ScratchDir scratch("engine-ranks");
    const fs::path dir = scratch.path();
    makeRepo(dir / "np1", kMini);
    makeRepo(dir / "np4", kMini);
    pid_t p1 = launchInSession(drpRun(1, dir / "np1"), (dir / "np1.log").string());
    pid_t p4 = launchInSession(drpRun(4, dir / "np4"), (dir / "np4.log").string());
    ASSERT_EQ(waitExit(p1), kExitOk) << slurp(dir / "np1.log");
    ASSERT_EQ(waitExit(p4), kExitOk) << slurp(dir / "np4.log");
    for (int np : {1, 4}) {
        SCOPED_TRACE("mpirun -np " + std::to_string(np));
        const fs::path repo = dir / ("np" + std::to_string(np));
        const auto outputs = committedOutputs(repo);
        EXPECT_EQ(outputs.at("release/object.h5"), reference.at("release/object.h5"));
        EXPECT_EQ(outputs, reference) << diffOutputs(outputs, reference);
        // The work really was spread: with 4 ranks, at least 3 of them ran tasks.
        auto h = foldJournals(repo.string());
        ASSERT_EQ(h.runs.size(), 1u);
        EXPECT_EQ(h.runs[0].ranks, np);
        std::set<int> ranks;
        for (auto& [k, r] : h.tasks) ranks.insert(r.rank);
        EXPECT_GE(ranks.size(), np == 1 ? 1u : 3u);
    }
    std::cout << "[ ranks    ] " << reference.size() << " committed files compared\n";
}
