// `drp status` on journals written by the engine's JournalWriter: the table, the JSON view, the
// per-task history and the exit code (non-zero while something failed or is blocked).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "drp/jobs/journal.h"

namespace fs = std::filesystem;
using drp::jobs::Json;
using drp::jobs::JsonObject;

namespace {

struct Run {
    int code = -1;
    std::string out;
};

Run runDrp(const std::string& args, const fs::path& dir) {
    const fs::path out = dir / "stdout";
    const std::string cmd =
        std::string(DRP_EXE) + " " + args + " >" + out.string() + " 2>/dev/null";
    int status = std::system(cmd.c_str());
    std::ifstream in(out);
    std::stringstream ss;
    ss << in.rdbuf();
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, ss.str()};
}

Json task(const char* stage, const char* id, const char* state, const char* cls = "") {
    return Json(JsonObject{{"event", Json("task")},
                           {"run", Json("r1")},
                           {"stage", Json(stage)},
                           {"id", Json(id)},
                           {"state", Json(state)},
                           {"class", Json(cls)},
                           {"error", Json(std::string(cls).empty() ? "" : "injected")}});
}

}  // namespace

TEST(StatusCommand, FoldsJournalsIntoCountsFailuresAndJson) {
    const fs::path dir =
        fs::temp_directory_path() / ("drp_status_test_" + std::to_string(getpid()));
    fs::create_directories(dir);
    {
        drp::jobs::JournalWriter w(drp::jobs::journalDir(dir.string()) + "/r1.jsonl");
        w.append(Json(
            JsonObject{{"event", Json("run_start")},
                       {"run", Json("r1")},
                       {"time", Json("2026-01-01T00:00:00Z")},
                       {"plan", Json(JsonObject{{"coadd", Json(4)}, {"multifit", Json(2)}})}}));
        w.append(task("coadd", "patch=1", "done"));
        w.append(task("coadd", "patch=2", "degraded"));
        w.append(task("coadd", "patch=3", "failed", "memory_limit"));
        w.append(task("multifit", "patch=3", "blocked"));
        w.append(Json(JsonObject{{"event", Json("run_end")},
                                 {"run", Json("r1")},
                                 {"status", Json("failed")},
                                 {"exit_code", Json(1)}}));
    }
    auto table = runDrp("status --repo " + dir.string(), dir);
    EXPECT_EQ(table.code, 1) << table.out;
    EXPECT_NE(table.out.find("failed[memory_limit]: 1"), std::string::npos) << table.out;
    EXPECT_NE(table.out.find("coadd:patch=3 failed [memory_limit] injected"), std::string::npos)
        << table.out;
    // The degraded task, unflagged here, is listed under its own heading.
    EXPECT_NE(table.out.find("degraded[unflagged]: 1"), std::string::npos) << table.out;
    EXPECT_NE(table.out.find("degraded tasks (outputs complete, dependents ran):\n  coadd:patch=2"),
              std::string::npos)
        << table.out;

    auto json = runDrp("status --json --repo " + dir.string(), dir);
    Json j = Json::parse(json.out);
    const auto& stages = j.get("stages")->asArray();
    ASSERT_EQ(stages.size(), 2u);
    EXPECT_EQ(stages[0].stringOr("stage"), "coadd");
    EXPECT_EQ(stages[0].get("states")->numberOr("done", 0), 1);
    EXPECT_EQ(stages[0].get("states")->numberOr("degraded", 0), 1);
    EXPECT_EQ(stages[0].get("states")->numberOr("not_started", 0), 1);
    EXPECT_EQ(stages[1].get("states")->numberOr("blocked", 0), 1);
    EXPECT_EQ(j.get("failures")->asArray().size(), 1u);
    ASSERT_EQ(j.get("degraded")->asArray().size(), 1u);
    EXPECT_EQ(j.get("degraded")->asArray().at(0).stringOr("id"), "patch=2");

    auto history = runDrp("status --repo " + dir.string() + " --task coadd:patch=3", dir);
    EXPECT_EQ(history.code, 0);
    EXPECT_NE(history.out.find("\"class\":\"memory_limit\""), std::string::npos) << history.out;
    fs::remove_all(dir);
}

// `drp status --patches`: per patch (tract and patch in the data id, any band) the states of its
// stages; patches ordered as numbers (10 after 9); a superseded task is pending; the exit code
// is non-zero only while a task is failed or blocked.
TEST(StatusCommand, PatchViewShowsEveryStageOfEachPatch) {
    const fs::path dir =
        fs::temp_directory_path() / ("drp_status_patches_" + std::to_string(getpid()));
    fs::create_directories(dir);
    {
        drp::jobs::JournalWriter w(drp::jobs::journalDir(dir.string()) + "/r1.jsonl");
        w.append(Json(JsonObject{{"event", Json("run_start")},
                                 {"run", Json("r1")},
                                 {"time", Json("2026-01-01T00:00:00Z")}}));
        for (const char* patch : {"9", "10", "11"})
            for (const char* band : {"g", "r"})
                w.append(task("coadd",
                              (std::string("tract=0,patch=") + patch + ",band=" + band).c_str(),
                              "done"));
        w.append(task("deblend", "tract=0,patch=9", "done"));
        w.append(task("deblend", "tract=0,patch=10", "degraded"));
        w.append(task("deblend", "tract=0,patch=11", "failed", "crash"));
        w.append(task("multifit", "tract=0,patch=11", "blocked"));
        w.append(task("characterize", "visit=1,det=0", "done"));  // not a patch: left out
        w.append(Json(JsonObject{{"event", Json("run_end")},
                                 {"run", Json("r1")},
                                 {"status", Json("failed")},
                                 {"exit_code", Json(1)}}));
    }
    auto problems = runDrp("status --repo " + dir.string() + " --patches", dir);
    EXPECT_EQ(problems.code, 1) << problems.out;  // patch 11 failed
    EXPECT_NE(problems.out.find("3 patches in the journals: 1 done, 1 done with degraded tasks, 0 "
                                "unfinished (running or to be redone), 1 with failed or blocked"),
              std::string::npos)
        << problems.out;
    EXPECT_EQ(problems.out.find("\n0        9 "), std::string::npos) << problems.out;  // all done
    const auto p10 = problems.out.find("\n0        10       2 done                 degraded");
    const auto p11 = problems.out.find(
        "\n0        11       2 done                 failed  "
        "               blocked");
    EXPECT_NE(p10, std::string::npos) << problems.out;
    EXPECT_NE(p11, std::string::npos) << problems.out;
    EXPECT_LT(p10, p11);

    auto all = runDrp("status --repo " + dir.string() + " --patches all", dir);
    const auto p9 = all.out.find("\n0        9        2 done                 done");
    EXPECT_NE(p9, std::string::npos) << all.out;
    EXPECT_LT(p9, all.out.find("\n0        10 "));  // 9 before 10: numbers, not text

    // After `drp rerun` of patch 10's deblend, it is pending and the patch unfinished.
    EXPECT_EQ(runDrp("rerun --repo " + dir.string() + " --task deblend:tract=0,patch=10", dir).code,
              0);
    auto json = runDrp("status --repo " + dir.string() + " --patches --json", dir);
    Json j = Json::parse(json.out);
    EXPECT_EQ(j.numberOr("n_patches", 0), 3);
    EXPECT_EQ(j.numberOr("n_unfinished", 0), 1);
    EXPECT_EQ(j.numberOr("n_failed", 0), 1);
    const auto& rows = j.get("patches")->asArray();
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[0].stringOr("patch"), "10");
    EXPECT_EQ(rows[0].get("stages")->get("deblend")->numberOr("not_started", 0), 1);
    EXPECT_EQ(rows[1].get("stages")->get("multifit")->numberOr("blocked", 0), 1);

    EXPECT_EQ(runDrp("status --repo " + dir.string() + " --patches some", dir).code, 2);
    fs::remove_all(dir);
}

TEST(RerunCommand, SupersedesRecordedDownstreamInANewJournal) {
    const fs::path dir = fs::temp_directory_path() / ("drp_rerun_test_" + std::to_string(getpid()));
    fs::create_directories(dir);
    {
        drp::jobs::JournalWriter w(drp::jobs::journalDir(dir.string()) + "/r1.jsonl");
        w.append(Json(JsonObject{{"event", Json("run_start")},
                                 {"run", Json("r1")},
                                 {"time", Json("2026-01-01T00:00:00Z")}}));
        Json a = task("coadd", "p=1", "done"), b = task("coadd", "p=2", "done");
        Json c = task("detect", "p=1", "done"), d = task("release", "all", "done");
        c["inputs"] = drp::jobs::stringsToJson({"coadd:p=1"});
        d["input_stages"] = drp::jobs::stringsToJson({"detect"});  // a global task
        for (const auto& e : {a, b, c, d}) w.append(e);
    }
    auto dry = runDrp("rerun --repo " + dir.string() + " --stage coadd --ids 'p=1' --dry-run", dir);
    EXPECT_EQ(dry.code, 0);
    EXPECT_EQ(dry.out, "supersede coadd:p=1\nsupersede detect:p=1\nsupersede release:all\n");
    EXPECT_EQ(drp::jobs::foldJournals(dir.string()).runs.size(), 1u);  // nothing written
    auto real = runDrp("rerun --repo " + dir.string() + " --task coadd:p=1", dir);
    EXPECT_EQ(real.code, 0) << real.out;
    auto h = drp::jobs::foldJournals(dir.string());
    EXPECT_EQ(h.runs.size(), 2u);
    EXPECT_EQ(h.tasks.at({"detect", "p=1"}).state, "superseded");
    EXPECT_EQ(h.tasks.at({"coadd", "p=2"}).state, "done");
    EXPECT_NE(runDrp("rerun --repo " + dir.string() + " --task coadd:p=9", dir).code, 0);
    fs::remove_all(dir);
}

TEST(RerunCommand, PatchesFromAStageWithEverythingDownstream) {
    const fs::path dir =
        fs::temp_directory_path() / ("drp_rerun_patches_test_" + std::to_string(getpid()));
    fs::create_directories(dir);
    {
        // Two patches (1 and 12: "patch=1" must not match "patch=12") through coadd (per band)
        // -> deblend -> multifit -> release, as the release pipeline records them.
        drp::jobs::JournalWriter w(drp::jobs::journalDir(dir.string()) + "/r1.jsonl");
        w.append(Json(JsonObject{{"event", Json("run_start")},
                                 {"run", Json("r1")},
                                 {"time", Json("2026-01-01T00:00:00Z")}}));
        std::vector<std::string> multifits;
        for (const std::string p : {"1", "12"}) {
            const std::string id = "tract=0,patch=" + p;
            std::vector<std::string> coadds;
            for (const std::string b : {"g", "r"}) {
                w.append(task("coadd", (id + ",band=" + b).c_str(), "done"));
                coadds.push_back("coadd:" + id + ",band=" + b);
            }
            Json d = task("deblend", id.c_str(), "done");
            d["inputs"] = drp::jobs::stringsToJson(coadds);
            Json m = task("multifit", id.c_str(), "done");
            m["inputs"] = drp::jobs::stringsToJson({"deblend:" + id, "photocal:global"});
            w.append(d);
            w.append(m);
            multifits.push_back("multifit:" + id);
        }
        w.append(task("photocal", "global", "done"));
        Json r = task("release", "release", "done");
        r["inputs"] = drp::jobs::stringsToJson(multifits);
        w.append(r);
    }
    const std::string repo = "rerun --dry-run --repo " + dir.string();
    auto all = runDrp(repo + " --patches 0:1", dir);
    EXPECT_EQ(all.code, 0);
    EXPECT_EQ(all.out,
              "supersede coadd:tract=0,patch=1,band=g\nsupersede coadd:tract=0,patch=1,band=r\n"
              "supersede deblend:tract=0,patch=1\nsupersede multifit:tract=0,patch=1\n"
              "supersede release:release\n");
    auto from = runDrp(repo + " --patches 'tract=0,patch=12' --from-stage multifit", dir);
    EXPECT_EQ(from.code, 0);
    EXPECT_EQ(from.out, "supersede multifit:tract=0,patch=12\nsupersede release:release\n");
    auto both = runDrp(repo + " --patches '0:1;0:12' --from-stage deblend", dir);
    EXPECT_EQ(both.out,
              "supersede deblend:tract=0,patch=1\nsupersede deblend:tract=0,patch=12\n"
              "supersede multifit:tract=0,patch=1\nsupersede multifit:tract=0,patch=12\n"
              "supersede release:release\n");
    // Unknown patch, stage without tasks for the patch, malformed item, --from-stage alone.
    EXPECT_EQ(runDrp(repo + " --patches 0:7", dir).code, 2);
    EXPECT_EQ(runDrp(repo + " --patches 0:1 --from-stage photocal", dir).code, 2);
    EXPECT_EQ(runDrp(repo + " --patches 0-1", dir).code, 2);
    EXPECT_EQ(runDrp(repo + " --from-stage deblend", dir).code, 2);
    // Without --dry-run a supersede journal is written and the tasks fold as superseded.
    auto real =
        runDrp("rerun --repo " + dir.string() + " --patches 0:12 --from-stage multifit", dir);
    EXPECT_EQ(real.code, 0);
    const auto h = drp::jobs::foldJournals(dir.string());
    EXPECT_EQ(h.tasks.at({"multifit", "tract=0,patch=12"}).state, "superseded");
    EXPECT_EQ(h.tasks.at({"deblend", "tract=0,patch=12"}).state, "done");
    EXPECT_EQ(h.tasks.at({"multifit", "tract=0,patch=1"}).state, "done");
    fs::remove_all(dir);
}
