// `drp submit --dry-run` output: stable, readable, valid bash, and the sbatch chain it runs.
//
// The golden files in slurm/tests/golden are the reviewed form of the generated scripts: a change
// of the renderer shows up as a diff of these files in review. To accept a deliberate change,
// run the test with DRP_UPDATE_GOLDEN=1 and review the diff before committing.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "../../jobs/tests/synthetic.h"
#include "../../jobs/tests/test_util.h"
#include "drp/slurm/submit.h"

using namespace drp;
using namespace drp::slurm;

namespace {

const char* const kRepo = "/data/survey/release-1";

jobs::TaskGraph graph() {
    jobs::synthetic::Config cfg;
    cfg.units = 24;
    return jobs::TaskGraph::build(jobs::synthetic::makePipeline(cfg));
}

SubmitRequest request() {
    SubmitRequest r;
    r.repo = kRepo;
    r.command = {"/opt/drp/bin/drp", "run", "--repo", kRepo};
    r.groups = parseGroups("work=gen,combine:array;cal=cal.gather,cal;final=final:array");
    return r;
}

std::string goldenPath(const std::string& name) {
    const char* src = std::getenv("DRP_SOURCE_DIR");
    return std::string(src ? src : ".") + "/slurm/tests/golden/" + name;
}

void expectGolden(const std::string& name, const std::string& text) {
    const std::string path = goldenPath(name);
    if (std::getenv("DRP_UPDATE_GOLDEN")) {
        std::ofstream(path, std::ios::binary) << text;
        GTEST_SKIP() << "rewrote " << path;
    }
    std::ifstream in(path, std::ios::binary);
    ASSERT_TRUE(in) << "missing golden file " << path << " (run with DRP_UPDATE_GOLDEN=1)";
    std::ostringstream ss;
    ss << in.rdbuf();
    // Compare line by line so that a failure points at the first differing line.
    std::istringstream want(ss.str()), got(text);
    std::string w, g;
    int line = 0;
    while (true) {
        ++line;
        const bool hw = static_cast<bool>(std::getline(want, w));
        const bool hg = static_cast<bool>(std::getline(got, g));
        if (!hw && !hg) break;
        ASSERT_EQ(hg ? g : "<end of output>", hw ? w : "<end of file>")
            << name << ":" << line << " differs (DRP_UPDATE_GOLDEN=1 to accept a change)";
    }
}

/// `bash -n` on every script of a plan: the generated text parses.
void expectBashParses(const SubmissionPlan& plan) {
    jobs::jobtest::ScratchDir dir("slurm-bash");
    for (const auto& j : plan.jobs) {
        const std::string path = dir.path() + "/job.sbatch";
        jobs::jobtest::writeText(path, j.scriptText);
        std::string cmd = "bash -n '" + path + "'";
        EXPECT_EQ(std::system(cmd.c_str()), 0) << j.scriptPath;
    }
}

}  // namespace

TEST(DryRun, SmallReleaseIsOneJobPerGroup) {
    SubmitRequest r = request();
    r.chunking.chunkCost = 0;  // default: no arrays
    const SubmissionPlan plan = planSubmission(graph(), r, "sub-0001");
    ASSERT_EQ(plan.jobs.size(), 3u);
    for (const auto& j : plan.jobs) EXPECT_TRUE(j.job.arrayIndices.empty());
    expectBashParses(plan);
    expectGolden("single_jobs.txt", plan.dryRunText());
}

TEST(DryRun, ArraysWithSiteSettings) {
    SubmitRequest r = request();
    r.chunking.chunks = 3;
    SiteConfig& s = r.site;
    for (const auto& [k, v] : std::vector<std::pair<std::string, std::string>>{
             {"partition", "regular"},
             {"account", "survey_dr1"},
             {"qos", "normal"},
             {"time", "12:00:00"},
             {"nodes", "2"},
             {"ranks-per-node", "32"},
             {"mem", "180G"},
             {"constraint", "cpu&ib"},
             {"module", "openmpi/4.1.4"},
             {"module", "hdf5-parallel/1.10.8"},
             {"env", "HDF5_USE_FILE_LOCKING=FALSE"},
             {"env", "DRP_NOTE=it's $(not) run"},  // quoted literally in the script
             {"sbatch", "--exclusive"},
             {"launcher-arg", "--cpu-bind=cores"},
             {"signal-seconds", "300"}})
        applySetting(s, k, v);
    const SubmissionPlan plan = planSubmission(graph(), r, "sub-0002");
    ASSERT_EQ(plan.jobs.size(), 3u);
    EXPECT_EQ(plan.jobs[0].job.arrayIndices, (std::vector<int>{0, 1, 2}));
    EXPECT_TRUE(plan.jobs[1].job.arrayIndices.empty());  // the global calibration: one job
    EXPECT_EQ(plan.jobs[2].after, (std::vector<std::size_t>{1}));
    EXPECT_EQ(plan.chunkFiles.size(), 3u + 1u + 3u);
    expectBashParses(plan);
    expectGolden("arrays_site.txt", plan.dryRunText());
}

TEST(DryRun, RerunOfIncompleteChunksWithMpirun) {
    // The journal of sub-0001 (planned with 3 work chunks and 2 final chunks), whose work chunk 1
    // was cancelled: its final job then never ran (kill_invalid_depend).
    SubmissionLog log;
    log.latestPlan = "sub-0001";
    log.program = "drp";
    log.command = {"/opt/drp/bin/drp", "run", "--repo", kRepo};
    log.groups = {{"work", {"gen", "combine"}, true, 3, "slurm/sub-0001/work"},
                  {"cal", {"cal.gather", "cal"}, false, 1, "slurm/sub-0001/cal"},
                  {"final", {"final"}, true, 2, "slurm/sub-0001/final"}};
    std::vector<ChunkStatus> chunks;
    auto add = [&](const char* group, int chunk, std::size_t tasks, std::size_t done,
                   const char* state) {
        ChunkStatus c;
        c.group = group;
        c.chunk = chunk;
        c.slurmId = "100_" + std::to_string(chunk);
        c.slurm.state = state;
        c.tasks = tasks;
        c.done = done;
        chunks.push_back(c);
    };
    add("work", 0, 10, 10, "COMPLETED");
    add("work", 1, 10, 4, "CANCELLED");
    add("work", 2, 10, 10, "COMPLETED");
    add("cal", 0, 7, 0, "CANCELLED");
    add("final", 0, 3, 0, "CANCELLED");
    add("final", 1, 3, 0, "CANCELLED");
    SiteConfig site;
    site.launcher = Launcher::Mpirun;
    const SubmissionPlan plan = planRerun(log, chunks, kRepo, site, "sub-0002");
    ASSERT_EQ(plan.jobs.size(), 3u);
    EXPECT_EQ(plan.jobs[0].job.arrayIndices, (std::vector<int>{1}));  // only the cancelled chunk
    EXPECT_EQ(plan.jobs[2].job.arrayIndices, (std::vector<int>{0, 1}));
    expectBashParses(plan);
    expectGolden("rerun_mpirun.txt", plan.dryRunText());

    // A chunk still running: no rerun (it could double-run tasks).
    chunks[1].slurm.state = "RUNNING";
    EXPECT_THROW(planRerun(log, chunks, kRepo, site, "sub-0002"), std::runtime_error);
}
