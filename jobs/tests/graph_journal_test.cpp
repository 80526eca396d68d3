// Unit tests of the engine's building blocks: JSON, task graph planning and explain(), the
// journal (including a torn last line) and output commit/verification.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>

#include "drp/jobs/commit.h"
#include "drp/jobs/journal.h"
#include "drp/jobs/json.h"
#include "drp/jobs/task_graph.h"
#include "synthetic.h"
#include "test_util.h"

using namespace drp::jobs;

namespace {

Stage simpleStage(std::string name, std::vector<PlannedTask> tasks) {
    return Stage{std::move(name),
                 "unit",
                 [tasks] { return tasks; },
                 [](const TaskContext&) { return TaskResult::ok(); },
                 {}};
}

Json event(const char* kind, const char* run, std::vector<std::pair<const char*, Json>> fields) {
    Json ev;
    ev["event"] = kind;
    ev["run"] = run;
    for (auto& [k, v] : fields) ev[k] = std::move(v);
    return ev;
}

}  // namespace

TEST(Json, RoundTripsEscapesAndNumbers) {
    Json j;
    j["text"] = "line1\nline2 \"quoted\" \\ \x01";
    j["int"] = 9007199254740991LL;
    j["real"] = 0.1;
    j["list"] = JsonArray{Json(1), Json("a"), Json(true), Json()};
    const std::string s = j.dump();
    EXPECT_EQ(s.find('\n'), std::string::npos);  // one event per line
    Json k = Json::parse(s);
    EXPECT_EQ(k.stringOr("text"), j.stringOr("text"));
    EXPECT_EQ(k.get("int")->asInt(), 9007199254740991LL);
    EXPECT_EQ(k.get("real")->asNumber(), 0.1);  // shortest round-trip formatting
    EXPECT_EQ(k.dump(), s);
    EXPECT_THROW(Json::parse("{\"a\":1"), JsonError);
    EXPECT_THROW(Json::parse("{\"a\":1} x"), JsonError);
    EXPECT_EQ(Json::parse("\"\\u00e9\\ud83d\\ude00\"").asString(), "\xc3\xa9\xf0\x9f\x98\x80");
}

TEST(TaskGraph, BuildsDependenciesAndReverseEdges) {
    auto p = synthetic::makePipeline({});
    auto g = TaskGraph::build(p);
    // 24 gen + 6 combine + 6 gather + 1 solve + 6 final
    ASSERT_EQ(g.size(), 43u);
    ASSERT_EQ(g.stageCount(), 5u);
    auto c = g.find({"combine", "g=01"});
    ASSERT_TRUE(c);
    ASSERT_EQ(g.deps(*c).size(), 4u);
    EXPECT_EQ(g.key(g.deps(*c)[0]).str(), "gen:u=004");
    auto solve = g.find({"cal", "global"});
    ASSERT_TRUE(solve);
    EXPECT_EQ(g.deps(*solve).size(), 6u);
    EXPECT_EQ(g.dependents(*solve).size(), 6u);  // every final
    // Downstream of one gen unit: its combine, its gather, the solve, every final.
    auto down = g.downstream({*g.find({"gen", "u=005"})});
    EXPECT_EQ(down.size(), 1u + 1 + 1 + 1 + 6);
}

TEST(TaskGraph, RejectsBadPlans) {
    Pipeline unknown;
    unknown.add(simpleStage("a", {{"x", {{"b", "y"}}, 1, {}}}));
    try {
        TaskGraph::build(unknown);
        FAIL() << "expected PlanError";
    } catch (const PlanError& e) {
        EXPECT_NE(std::string(e.what()).find("no stage 'b'"), std::string::npos) << e.what();
    }
    Pipeline missingId;
    missingId.add(simpleStage("a", {{"x", {}, 1, {}}}));
    missingId.add(simpleStage("b", {{"y", {{"a", "z"}}, 1, {}}}));
    EXPECT_THROW(TaskGraph::build(missingId), PlanError);
    Pipeline dup;
    dup.add(simpleStage("a", {{"x", {}, 1, {}}, {"x", {}, 1, {}}}));
    EXPECT_THROW(TaskGraph::build(dup), PlanError);
    Pipeline cycle;
    cycle.add(simpleStage("a", {{"x", {{"a", "y"}}, 1, {}}, {"y", {{"a", "x"}}, 1, {}}}));
    try {
        TaskGraph::build(cycle);
        FAIL() << "expected PlanError";
    } catch (const PlanError& e) {
        EXPECT_NE(std::string(e.what()).find("cycle"), std::string::npos) << e.what();
    }
}

TEST(Schedule, LargestCostFirstAndBlocking) {
    Pipeline p;
    p.add(simpleStage(
        "a", {{"small", {}, 1, {}}, {"big", {}, 5, {}}, {"mid", {}, 3, {}}, {"mid2", {}, 3, {}}}));
    p.add(simpleStage(
        "b", {{"x", {{"a", "big"}, {"a", "small"}}, 1, {}}, {"y", {{"a", "mid"}}, 1, {}}}));
    p.add(simpleStage("c", {{"z", {{"b", "x"}}, 1, {}}}));
    auto g = TaskGraph::build(p);
    Schedule s(g);
    s.start();
    std::vector<std::string> order;
    while (s.hasReady()) order.push_back(g.dataId(s.popReady()));
    // Cost order; equal costs in plan order (deterministic).
    EXPECT_EQ(order, (std::vector<std::string>{"big", "mid", "mid2", "small"}));
    s.markFinished(*g.find({"a", "big"}), false);
    EXPECT_EQ(s.state(*g.find({"b", "x"})), TaskState::Waiting);
    EXPECT_NE(s.explain({"b", "x"}).find("waiting for 1 of 2 inputs: a:small (running)"),
              std::string::npos)
        << s.explain({"b", "x"});
    auto blocked = s.markFailed(*g.find({"a", "small"}), "[crash] boom");
    EXPECT_EQ(blocked.size(), 2u);  // b:x and c:z
    EXPECT_EQ(s.state(*g.find({"c", "z"})), TaskState::Blocked);
    const std::string why = s.explain({"c", "z"});
    EXPECT_NE(why.find("blocked: its input a:small failed ([crash] boom)"), std::string::npos)
        << why;
    s.markFinished(*g.find({"a", "mid"}), true);
    EXPECT_EQ(s.state(*g.find({"b", "y"})), TaskState::Ready);
    EXPECT_EQ(s.count(TaskState::Degraded), 1u);
    EXPECT_NE(s.explain({"b", "nope"}).find("did not produce 'nope'"), std::string::npos);
    EXPECT_NE(s.explain({"q", "x"}).find("no stage 'q'; stages are: a b c"), std::string::npos);
}

TEST(Schedule, OptionalDependenciesRunWithoutFailedInputs) {
    // c:sum uses a:1..3 optionally and b:req required; d:after needs c:sum. a:2 fails and a:3 is
    // blocked by the failure of a0:root: c:sum still runs, with only the inputs that succeeded.
    Pipeline p;
    p.add(simpleStage("a0", {{"root", {}, 1, {}}}));
    p.add(simpleStage("a", {{"1", {}, 1, {}}, {"2", {}, 1, {}}, {"3", {{"a0", "root"}}, 1, {}}}));
    p.add(simpleStage("b", {{"req", {}, 1, {}}}));
    PlannedTask sum{"sum", {{"b", "req"}}, 1, {}};
    sum.optionalDeps = {{"a", "1"}, {"a", "2"}, {"a", "3"}};
    p.add(simpleStage("c", {sum}));
    p.add(simpleStage("d", {{"after", {{"c", "sum"}}, 1, {}}}));
    auto g = TaskGraph::build(p);
    const auto t = [&](const char* st, const char* id) { return *g.find({st, id}); };
    const auto c = t("c", "sum");
    ASSERT_EQ(g.deps(c).size(), 4u);
    EXPECT_FALSE(g.depOptional(c, 0));
    EXPECT_TRUE(g.depOptional(c, 1) && g.depOptional(c, 2) && g.depOptional(c, 3));
    Schedule s(g);
    s.start();
    while (s.hasReady()) s.popReady();
    s.markFinished(t("a", "1"), false);
    s.markFinished(t("b", "req"), false);
    EXPECT_EQ(s.state(c), TaskState::Waiting);
    EXPECT_TRUE(s.markFailed(t("a", "2"), "[bad_input] x").empty());  // optional: nothing blocked
    EXPECT_EQ(s.state(c), TaskState::Waiting);
    EXPECT_NE(s.explain({"c", "sum"}).find("waiting for 1 of 4 inputs: a:3 (waiting)"),
              std::string::npos)
        << s.explain({"c", "sum"});
    auto blocked = s.markFailed(t("a0", "root"), "[crash] boom");
    EXPECT_EQ(blocked, (std::vector<std::uint32_t>{t("a", "3")}));  // not c:sum
    EXPECT_EQ(s.state(c), TaskState::Ready);
    EXPECT_EQ(s.popReady(), c);
    s.markFinished(c, false);
    EXPECT_EQ(s.state(t("d", "after")), TaskState::Ready);

    // A failed *required* input still blocks.
    Schedule s2(g);
    s2.start();
    while (s2.hasReady()) s2.popReady();
    auto b2 = s2.markFailed(t("b", "req"), "[crash] boom");
    EXPECT_EQ(b2, (std::vector<std::uint32_t>{c, t("d", "after")}));
}

TEST(TaskGraph, PlansAHundredThousandTasksQuickly) {
    // Scaling sanity check (the timed 1e6 figure is in the benchmark): 1e5 patches, each with a
    // dependency on a visit-like stage of 1e4 tasks.
    Pipeline p;
    p.add(Stage{"visit",
                "visit",
                [] {
                    std::vector<PlannedTask> out(10000);
                    for (int i = 0; i < 10000; ++i) out[i].dataId = "visit=" + std::to_string(i);
                    return out;
                },
                [](const TaskContext&) { return TaskResult::ok(); },
                {}});
    p.add(Stage{"patch",
                "patch",
                [] {
                    std::vector<PlannedTask> out(100000);
                    for (int i = 0; i < 100000; ++i) {
                        out[i].dataId = "patch=" + std::to_string(i);
                        out[i].deps = {{"visit", "visit=" + std::to_string(i % 10000)}};
                        out[i].outputs = {"patch/" + std::to_string(i) + ".h5"};
                    }
                    return out;
                },
                [](const TaskContext&) { return TaskResult::ok(); },
                {}});
    auto g = TaskGraph::build(p);
    EXPECT_EQ(g.size(), 110000u);
    EXPECT_LT(g.planSeconds(), 10.0);  // generous: ~0.1 s measured; catches quadratic behaviour
}

TEST(TaskSeed, DependsOnlyOnStageAndId) {
    EXPECT_EQ(taskSeed({"a", "b"}), taskSeed({"a", "b"}));
    EXPECT_NE(taskSeed({"a", "bc"}), taskSeed({"ab", "c"}));
    EXPECT_NE(taskSeed({"a", "u=001"}), taskSeed({"a", "u=002"}));
}

TEST(Journal, WritesReadsAndToleratesATornLastLine) {
    jobtest::ScratchDir dir("journal");
    const std::string path = journalDir(dir.path()) + "/r1.jsonl";
    {
        JournalWriter w(path);
        w.append(event(
            "run_start", "r1",
            {{"time", "2026-01-01T00:00:00.000000Z"}, {"plan", JsonObject{{"gen", Json(3)}}}}));
        for (const char* state : {"running", "failed", "running", "done"})
            w.append(event("task", "r1",
                           {{"stage", "gen"},
                            {"id", "u=1"},
                            {"state", state},
                            {"outputs", outputsToJson({{"gen/u=1.txt", "ab", 3}})}}));
        w.append(event("task", "r1",
                       {{"stage", "gen"},
                        {"id", "u=2"},
                        {"state", "failed"},
                        {"class", "crash"},
                        {"error", "killed by signal 11"}}));
        EXPECT_THROW(JournalWriter again(path), std::runtime_error);  // one file per run
    }
    // A SIGKILL in the middle of a write leaves a torn line.
    { std::ofstream(path, std::ios::app) << "{\"event\":\"task\",\"run\":\"r1\",\"sta"; }
    auto jf = readJournal(path);
    EXPECT_TRUE(jf.tornTail);
    EXPECT_EQ(jf.badLines, 0u);
    EXPECT_EQ(jf.events.size(), 6u);
    auto h = foldJournals(readJournals(dir.path()));
    ASSERT_EQ(h.tasks.size(), 2u);
    EXPECT_EQ(h.tasks.at({"gen", "u=1"}).state, "done");
    ASSERT_EQ(h.tasks.at({"gen", "u=1"}).outputs.size(), 1u);
    EXPECT_EQ(h.tasks.at({"gen", "u=1"}).outputs[0].bytes, 3u);

    // A later run supersedes u=1; the status view counts it as not done.
    {
        JournalWriter w(journalDir(dir.path()) + "/r2.jsonl");
        w.append(event("run_start", "r2", {{"time", "2026-01-02T00:00:00.000000Z"}}));
        w.append(event("supersede", "r2", {{"stage", "gen"}, {"id", "u=1"}}));
        w.append(event("run_end", "r2", {{"status", "complete"}, {"exit_code", 0}}));
    }
    auto view = makeStatusView(foldJournals(dir.path()));
    ASSERT_EQ(view.stages.size(), 1u);
    EXPECT_EQ(view.stages[0].planned, 3);
    EXPECT_EQ(view.stages[0].byState.at("superseded"), 1);
    EXPECT_EQ(view.stages[0].failedByClass.at("crash"), 1);
    EXPECT_EQ(view.stages[0].byState.at("not_started"), 1);
    ASSERT_EQ(view.failures.size(), 1u);
    EXPECT_EQ(view.failures[0].key.dataId, "u=2");
    Json j = Json::parse(view.toJson().dump());
    EXPECT_EQ(j.get("failures")->asArray().at(0).stringOr("class"), "crash");
    EXPECT_NE(view.toText().find("failed[crash]: 1"), std::string::npos) << view.toText();
}

// Degraded tasks: counted per flag in each stage, listed with their flags and message (the
// text cut per stage and first flag, the JSON whole), and the exit status unaffected (no failure).
TEST(Journal, StatusListsDegradedTasksByFlag) {
    jobtest::ScratchDir dir("journal-degraded");
    {
        JournalWriter w(journalDir(dir.path()) + "/r1.jsonl");
        w.append(event(
            "run_start", "r1",
            {{"time", "2026-01-01T00:00:00.000000Z"}, {"plan", JsonObject{{"fit", Json(6)}}}}));
        for (int u = 1; u <= 4; ++u)
            w.append(event("task", "r1",
                           {{"stage", "fit"},
                            {"id", Json("u=" + std::to_string(u))},
                            {"state", "degraded"},
                            {"flags", stringsToJson({"low_order"})},
                            {"message", Json("order lowered for u=" + std::to_string(u))}}));
        w.append(event("task", "r1",
                       {{"stage", "fit"},
                        {"id", "u=5"},
                        {"state", "degraded"},
                        {"flags", stringsToJson({"not_converged", "low_order"})},
                        {"message", "2 of 9 parents"}}));
        w.append(event("task", "r1", {{"stage", "fit"}, {"id", "u=6"}, {"state", "done"}}));
        w.append(event("run_end", "r1", {{"status", "complete"}, {"exit_code", 0}}));
    }
    const auto view = makeStatusView(foldJournals(dir.path()));
    ASSERT_EQ(view.stages.size(), 1u);
    EXPECT_EQ(view.stages[0].byState.at("degraded"), 5);
    EXPECT_EQ(view.stages[0].degradedByFlag.at("low_order"), 5);
    EXPECT_EQ(view.stages[0].degradedByFlag.at("not_converged"), 1);
    EXPECT_TRUE(view.failures.empty());
    ASSERT_EQ(view.degraded.size(), 5u);
    EXPECT_EQ(view.degraded[4].message, "2 of 9 parents");
    const std::string all = view.toText();
    EXPECT_NE(all.find("degraded[low_order]: 5"), std::string::npos) << all;
    EXPECT_NE(all.find("fit:u=3 [low_order] order lowered for u=3"), std::string::npos) << all;
    EXPECT_NE(all.find("fit:u=5 [not_converged,low_order] 2 of 9 parents"), std::string::npos)
        << all;
    // Cut at 2 per (stage, first flag): u=1, u=2 shown, u=3 and u=4 summed; u=5 is its own group.
    const std::string cut = view.toText(2);
    EXPECT_NE(cut.find("fit:u=2 [low_order]"), std::string::npos) << cut;
    EXPECT_EQ(cut.find("fit:u=3 [low_order]"), std::string::npos) << cut;
    EXPECT_NE(cut.find("... and 2 more fit [low_order]"), std::string::npos) << cut;
    EXPECT_NE(cut.find("fit:u=5 [not_converged,low_order]"), std::string::npos) << cut;
    // A group one longer than the cut is shown whole.
    EXPECT_NE(view.toText(3).find("fit:u=4 [low_order]"), std::string::npos);
    const Json j = Json::parse(view.toJson().dump());
    ASSERT_EQ(j.get("degraded")->asArray().size(), 5u);
    EXPECT_EQ(j.get("degraded")->asArray().at(0).stringOr("message"), "order lowered for u=1");
    EXPECT_EQ(j.get("stages")->asArray().at(0).get("degraded_by_flag")->numberOr("low_order", 0),
              5);
}

TEST(Commit, RenamesChecksumsAndVerifies) {
    jobtest::ScratchDir dir("commit");
    const std::string final = dir.path() + "/a/b/out.txt";
    prepareOutput(final);
    const std::string temp = tempOutputPath(final);
    jobtest::writeText(temp, "abc");
    auto rec = commitOutput(dir.path(), temp, final);
    EXPECT_EQ(rec.path, "a/b/out.txt");
    // SHA-256("abc"), FIPS 180-2 appendix B.1.
    EXPECT_EQ(rec.sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(rec.bytes, 3u);
    EXPECT_FALSE(std::filesystem::exists(temp));
    EXPECT_EQ(verifyOutputs(dir.path(), {rec}, VerifyMode::Checksum), "");
    jobtest::writeText(final, "abd");  // same size, different bytes
    EXPECT_EQ(verifyOutputs(dir.path(), {rec}, VerifyMode::Size), "");
    EXPECT_NE(verifyOutputs(dir.path(), {rec}, VerifyMode::Checksum).find("checksum"),
              std::string::npos);
    std::filesystem::remove(final);
    EXPECT_NE(verifyOutputs(dir.path(), {rec}, VerifyMode::Size).find("missing"),
              std::string::npos);
    // Stale temporaries of killed attempts are removed when the output is prepared again.
    jobtest::writeText(final + ".drp-tmp-otherhost-123", "partial");
    prepareOutput(final);
    EXPECT_FALSE(std::filesystem::exists(final + ".drp-tmp-otherhost-123"));
    // ... and those of the pipeline's own atomic writers, by pattern; other files stay.
    const std::string dirOf = dir.path() + "/a/b/";
    jobtest::writeText(dirOf + ".out.txt.tmp.4242.0.deadbeef", "partial");
    jobtest::writeText(dirOf + ".other.txt.tmp.4242.0.deadbeef", "someone else's");
    jobtest::writeText(dirOf + "out.txt.keep", "not a temporary");
    jobtest::writeText(final, "abc");
    prepareOutput(final, {".{name}.tmp.", "{name}"});  // the second would match the output itself
    EXPECT_FALSE(std::filesystem::exists(dirOf + ".out.txt.tmp.4242.0.deadbeef"));
    EXPECT_TRUE(std::filesystem::exists(dirOf + ".other.txt.tmp.4242.0.deadbeef"));
    EXPECT_TRUE(std::filesystem::exists(dirOf + "out.txt.keep"));
    EXPECT_TRUE(std::filesystem::exists(final));
    std::filesystem::remove(final);
    try {
        commitOutput(dir.path(), temp, final);
        FAIL();
    } catch (const TaskError& e) {
        EXPECT_EQ(e.errorClass(), "missing_output");
    }
}
