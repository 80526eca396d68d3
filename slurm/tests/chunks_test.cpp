// Chunking job groups for job arrays, and select files.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "../../jobs/tests/synthetic.h"
#include "../../jobs/tests/test_util.h"
#include "drp/slurm/chunks.h"

using namespace drp;
using namespace drp::slurm;
using jobs::TaskKey;

namespace {

// Synthetic pipeline: gen [unit] -> combine [group of 4 units] -> cal.gather, cal [global]
// -> final [group]. 24 units, 6 groups.
jobs::TaskGraph graph(int units = 24) {
    jobs::synthetic::Config cfg;
    cfg.units = units;
    return jobs::TaskGraph::build(jobs::synthetic::makePipeline(cfg));
}

std::vector<JobGroupSpec> groups() {
    return parseGroups("work=gen,combine:array;cal=cal.gather,cal;final=final:array");
}

}  // namespace

TEST(Groups, ParseAndFormatRoundTrip) {
    auto g = groups();
    ASSERT_EQ(g.size(), 3u);
    EXPECT_EQ(g[0].name, "work");
    EXPECT_EQ(g[0].stages, (std::vector<std::string>{"gen", "combine"}));
    EXPECT_TRUE(g[0].chunked);
    EXPECT_FALSE(g[1].chunked);
    EXPECT_EQ(formatGroups(g), "work=gen,combine:array;cal=cal.gather,cal;final=final:array");
    EXPECT_THROW(parseGroups(""), std::invalid_argument);
    EXPECT_THROW(parseGroups("gen,combine"), std::invalid_argument);
    EXPECT_THROW(parseGroups("a b=gen"), std::invalid_argument);
}

TEST(Groups, ValidationNamesTheProblem) {
    auto g = graph();
    auto message = [&](const std::string& spec) -> std::string {
        try {
            validateGroups(g, parseGroups(spec));
        } catch (const std::invalid_argument& e) {
            return e.what();
        }
        return "";
    };
    EXPECT_EQ(message("a=gen,combine;b=cal.gather,cal,final"), "");
    EXPECT_EQ(message("a=combine"), "");  // a part of the pipeline is allowed
    EXPECT_NE(message("a=gen,nosuch").find("unknown stage 'nosuch' (stages: gen, combine"),
              std::string::npos);
    EXPECT_NE(message("a=combine,gen").find("out of pipeline order"), std::string::npos);
    EXPECT_NE(message("a=gen;b=gen").find("'gen' is in two job groups"), std::string::npos);
    EXPECT_NE(message("a=gen;a=combine").find("used twice"), std::string::npos);
    EXPECT_NE(message("a=final;b=cal").find("out of pipeline order"), std::string::npos);
    // A planner may point forward (stage a's task needs stage b's); a job chain cannot.
    jobs::Pipeline p;
    auto noop = [](const jobs::TaskContext&) { return jobs::TaskResult::ok(); };
    p.add({"a",
           "x",
           [] {
               return std::vector<jobs::PlannedTask>{{"1", {{"b", "1"}}, 1, {}}};
           },
           noop,
           {}});
    p.add({"b", "x", [] { return std::vector<jobs::PlannedTask>{{"1", {}, 1, {}}}; }, noop, {}});
    auto forward = jobs::TaskGraph::build(p);
    try {
        validateGroups(forward, parseGroups("first=a;second=b"));
        FAIL();
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("a:1 (group 'first') depends on b:1 of the later "
                                             "group 'second'"),
                  std::string::npos)
            << e.what();
    }
    EXPECT_NO_THROW(validateGroups(forward, parseGroups("both=a,b")));
}

TEST(Chunks, EveryTaskInExactlyOneChunkAndUnitsNeverSplit) {
    auto g = graph();
    ChunkingOptions opt;
    opt.chunks = 4;
    auto plans = planChunks(g, groups(), opt);
    ASSERT_EQ(plans.size(), 3u);
    const GroupPlan& work = plans[0];
    EXPECT_EQ(work.units, 6u);  // one unit per combine group (its 4 gens + itself)
    ASSERT_EQ(work.chunks.size(), 4u);
    std::map<TaskKey, int> chunkOf;
    for (const auto& c : work.chunks)
        for (const auto& k : c.tasks) EXPECT_TRUE(chunkOf.emplace(k, c.index).second) << k.str();
    EXPECT_EQ(chunkOf.size(), 24u + 6u);
    // Each combine task sits with the gen tasks it depends on.
    for (int grp = 0; grp < 6; ++grp) {
        const int c = chunkOf.at({"combine", jobs::synthetic::groupId(grp)});
        for (int u = 4 * grp; u < 4 * grp + 4; ++u)
            EXPECT_EQ(chunkOf.at({"gen", jobs::synthetic::unitId(u)}), c);
    }
    // Not chunked: one chunk with everything.
    ASSERT_EQ(plans[1].chunks.size(), 1u);
    EXPECT_EQ(plans[1].chunks[0].tasks.size(), 6u + 1u);
    // Costs add up.
    double sum = 0;
    for (const auto& c : work.chunks) sum += c.cost;
    EXPECT_DOUBLE_EQ(sum, work.cost);
}

TEST(Chunks, LptBalanceAndDeterminism) {
    auto g = graph(200);  // 50 units of varying cost
    ChunkingOptions opt;
    opt.chunks = 7;
    auto a = planChunks(g, groups(), opt)[0];
    auto b = planChunks(g, groups(), opt)[0];
    double lo = 1e300, hi = 0, largestUnit = 0;
    for (std::size_t i = 0; i < a.chunks.size(); ++i) {
        EXPECT_EQ(a.chunks[i].tasks, b.chunks[i].tasks);  // a pure function of the plan
        lo = std::min(lo, a.chunks[i].cost);
        hi = std::max(hi, a.chunks[i].cost);
    }
    // Unit cost: 4 gens (cost 1 + u % 5) + combine (2); at most 4 * 5 + 2 = 22.
    largestUnit = 22;
    // LPT guarantee: every chunk's load is within one unit of the least-loaded chunk.
    EXPECT_LE(hi - lo, largestUnit) << "lo " << lo << " hi " << hi;
    // ... and the makespan is within 4/3 of the ideal (total / chunks) bound (Graham 1969).
    EXPECT_LE(hi, 4.0 / 3.0 * std::max(a.cost / 7, largestUnit));
}

TEST(Chunks, CountFromCostModelAndLimits) {
    auto g = graph();
    auto chunksFor = [&](ChunkingOptions o) { return planChunks(g, groups(), o)[0].chunks.size(); };
    ChunkingOptions o;
    EXPECT_EQ(chunksFor(o), 1u);  // default: a small release is one job per group
    const double total = planChunks(g, groups(), o)[0].cost;
    o.chunkCost = total / 3;  // three chunks' worth
    EXPECT_EQ(chunksFor(o), 3u);
    o.chunkCost = total / 3.5;  // rounds up
    EXPECT_EQ(chunksFor(o), 4u);
    o.chunkCost = 1e-3;  // more chunks than units: one unit per chunk
    EXPECT_EQ(chunksFor(o), 6u);
    o.maxChunks = 2;  // array size cap
    EXPECT_EQ(chunksFor(o), 2u);
    ChunkingOptions bad;
    bad.chunks = -1;
    EXPECT_THROW(bad.validate(), std::invalid_argument);
    bad = {};
    bad.maxChunks = 0;
    EXPECT_THROW(bad.validate(), std::invalid_argument);
}

TEST(SelectFile, RoundTripAndErrorsNameTheLine) {
    jobs::jobtest::ScratchDir dir("select");
    std::vector<TaskKey> keys{{"gen", "u=001"}, {"combine", "tract=1,patch=5:x"}};
    const std::string path = dir.path() + "/chunk.txt";
    jobs::jobtest::writeText(path, selectFileText(keys, "chunk 0 of 2\nsecond line"));
    auto read = readSelectFile(path);
    EXPECT_EQ(read, std::set<TaskKey>(keys.begin(), keys.end()));
    auto pred = selectFromFile(path);
    EXPECT_TRUE(pred({"gen", "u=001"}));
    EXPECT_FALSE(pred({"gen", "u=002"}));
    EXPECT_FALSE(pred({"combine", "u=001"}));

    jobs::jobtest::writeText(path, "# header\ngen:u=001\n\nno-colon-here\n");
    try {
        readSelectFile(path);
        FAIL();
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find(path + ":4: 'no-colon-here'"), std::string::npos)
            << e.what();
    }
    EXPECT_THROW(readSelectFile(dir.path() + "/missing.txt"), std::runtime_error);
    EXPECT_EQ(chunkFileName(7), "chunk-0007.txt");
}

TEST(SelectFile, UnfinishedUpstreamTasksAreRetriedWithTheChunk) {
    // final:g=01 needs combine:g=01 (done) and the global cal, which was blocked because
    // combine:g=00 failed (via cal.gather:g=00). The chunk's run must retry that chain (else
    // final waits forever on an unselected task), but nothing that is done and nothing that
    // never ran.
    auto g = graph();
    jobs::History h;
    auto set = [&](const std::string& stage, const std::string& id, const char* state) {
        h.tasks[{stage, id}].state = state;
    };
    for (int u = 0; u < 24; ++u) set("gen", jobs::synthetic::unitId(u), "done");
    for (int grp = 0; grp < 6; ++grp) {
        const std::string id = jobs::synthetic::groupId(grp);
        set("combine", id, grp == 0 ? "failed" : "done");
        if (grp != 5) set("cal.gather", id, grp == 0 ? "blocked" : "degraded");
    }
    set("cal", "global", "blocked");
    const auto retry = unfinishedUpstream(g, h, {{"final", "g=01"}});
    EXPECT_EQ(retry, (std::vector<TaskKey>{
                         {"cal", "global"}, {"cal.gather", "g=00"}, {"combine", "g=00"}}));
    // Nothing unfinished upstream: nothing extra.
    set("cal", "global", "done");
    EXPECT_TRUE(unfinishedUpstream(g, h, {{"final", "g=01"}}).empty());
}
