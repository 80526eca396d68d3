// Submission, state and rerun logic against a scripted stand-in for the Slurm commands (the real
// cluster is exercised by tests/cluster/release_test.py).
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "../../jobs/tests/synthetic.h"
#include "../../jobs/tests/test_util.h"
#include "drp/slurm/commands.h"
#include "drp/slurm/submit.h"

using namespace drp;
using namespace drp::slurm;

namespace {

/// Answers sbatch with increasing job ids and squeue / scontrol from scripted text.
class FakeSlurm final : public CommandRunner {
  public:
    std::vector<std::vector<std::string>> calls;
    std::string squeueOut, jobCompPath;
    int nextId = 100;
    CommandResult run(const std::vector<std::string>& argv) override {
        calls.push_back(argv);
        CommandResult r;
        r.exitCode = 0;
        if (argv[0] == "sbatch") {
            r.out = std::to_string(nextId++) + "\n";
        } else if (argv[0] == "squeue") {
            r.out = squeueOut;
        } else if (argv[0] == "scontrol") {
            r.out =
                "AccountingStorageType   = accounting_storage/none\n"
                "JobCompType             = jobcomp/filetxt\n"
                "JobCompLoc              = " +
                jobCompPath + "\n";
        } else if (argv[0] == "scancel") {
        } else {
            r.exitCode = 127;
        }
        return r;
    }
};

}  // namespace

TEST(Submit, ChainJournalStatusAndRerun) {
    jobs::jobtest::ScratchDir dir("slurm-submit");
    const std::string repo = dir.path();
    jobs::synthetic::Config cfg;
    const auto graph = jobs::TaskGraph::build(jobs::synthetic::makePipeline(cfg));
    SubmitRequest req;
    req.repo = repo;
    req.command = {"/opt/drp/bin/drp", "run", "--repo", repo};
    req.groups = parseGroups("work=gen,combine:array;cal=cal.gather,cal;final=final:array");
    req.chunking.chunks = 2;
    const SubmissionPlan plan = planSubmission(graph, req, nextSubmissionId(repo));
    EXPECT_EQ(plan.id, "sub-0001");

    FakeSlurm slurm;
    slurm.jobCompPath = repo + "/jobcomp.txt";
    std::ostringstream out;
    const auto ids = executeSubmission(plan, slurm, out);
    ASSERT_EQ(ids, (std::vector<std::string>{"100", "101", "102"}));
    // sbatch calls: the chain with afterok on the previous group's job.
    ASSERT_EQ(slurm.calls.size(), 3u);
    EXPECT_EQ(slurm.calls[0], (std::vector<std::string>{"sbatch", "--parsable",
                                                        repo + "/slurm/sub-0001/work.sbatch"}));
    EXPECT_EQ(slurm.calls[1][2], "--dependency=afterok:100");
    EXPECT_EQ(slurm.calls[2][2], "--dependency=afterok:101");
    for (const auto& f : plan.chunkFiles) EXPECT_TRUE(std::filesystem::exists(f.path)) << f.path;

    const SubmissionLog log = readSubmissions(repo);
    EXPECT_EQ(log.latestPlan, "sub-0001");
    EXPECT_EQ(log.latestSlurmId("work", 1), "100_1");
    EXPECT_EQ(log.latestSlurmId("cal", 0), "101");
    EXPECT_EQ(latestJobIds(log), (std::vector<std::string>{"100", "101", "102"}));
    EXPECT_EQ(nextSubmissionId(repo), "sub-0002");

    // Slurm's view: work chunk 1 cancelled, the rest cancelled by the failed dependency; one
    // record only in the job-completion log (squeue forgot it), which must be found there.
    slurm.squeueOut =
        "100_0|COMPLETED|None\n100_1|CANCELLED|None\n101|CANCELLED|DependencyNeverSatisfied\n";
    jobs::jobtest::writeText(slurm.jobCompPath,
                             "JobId=103 JobState=CANCELLED ArrayJobId=102 ArrayTaskId=0 "
                             "ExitCode=0:0\nJobId=104 JobState=CANCELLED ArrayJobId=102 "
                             "ArrayTaskId=1 ExitCode=0:0\n");
    const auto states = queryJobStates(slurm, latestJobIds(log));
    EXPECT_EQ(states.at("100_1").state, "CANCELLED");
    EXPECT_EQ(states.at("102_1").state, "CANCELLED");
    EXPECT_EQ(states.at("102_1").source, "jobcomp");
    // Nothing done in the journals yet: every chunk is incomplete and none is active.
    const auto chunks = chunkStatus(repo, log, jobs::foldJournals(repo), states);
    ASSERT_EQ(chunks.size(), 2u + 1u + 2u);
    const std::string text = chunkStatusText(chunks, log.latestPlan);
    EXPECT_NE(text.find("5 chunk(s) incomplete, 5 of them neither queued nor running"),
              std::string::npos)
        << text;
    const auto rerun = planRerun(log, chunks, repo, SiteConfig{}, nextSubmissionId(repo));
    ASSERT_EQ(rerun.jobs.size(), 3u);
    EXPECT_EQ(rerun.planId, "sub-0001");
    EXPECT_EQ(rerun.jobs[0].job.chunkDir, repo + "/slurm/sub-0001/work");  // files reused
    EXPECT_TRUE(rerun.chunkFiles.empty());

    // Cancel: only what is still active, recorded in the journal.
    slurm.calls.clear();
    slurm.squeueOut = "100_0|COMPLETED|None\n100_1|RUNNING|None\n101|PENDING|Dependency\n";
    std::ostringstream cancelOut;
    EXPECT_EQ(cancelCommand(repo, slurm, cancelOut), 0);
    bool scancelled = false;
    for (const auto& c : slurm.calls)
        if (c[0] == "scancel") {
            EXPECT_EQ(c, (std::vector<std::string>{"scancel", "100", "101"}));
            scancelled = true;
        }
    EXPECT_TRUE(scancelled) << cancelOut.str();
}

TEST(Submit, SbatchFailureNamesTheJobAndWhatWasSubmitted) {
    class FailSecond final : public CommandRunner {
      public:
        int n = 0;
        CommandResult run(const std::vector<std::string>&) override {
            CommandResult r;
            if (++n == 2) {
                r.exitCode = 1;
                r.err = "sbatch: error: Invalid account or account/partition combination";
            } else {
                r.exitCode = 0;
                r.out = "55;cluster\n";
            }
            return r;
        }
    } runner;
    jobs::jobtest::ScratchDir dir("slurm-submit-fail");
    SubmitRequest req;
    req.repo = dir.path();
    req.command = {"drp", "run"};
    req.groups = parseGroups("work=gen,combine;final=cal.gather,cal,final");
    jobs::synthetic::Config cfg;
    const auto plan =
        planSubmission(jobs::TaskGraph::build(jobs::synthetic::makePipeline(cfg)), req, "sub-0001");
    std::ostringstream out;
    try {
        executeSubmission(plan, runner, out);
        FAIL();
    } catch (const std::runtime_error& e) {
        const std::string m = e.what();
        EXPECT_NE(m.find("submitting job group final failed"), std::string::npos) << m;
        EXPECT_NE(m.find("Invalid account"), std::string::npos) << m;
        EXPECT_NE(m.find("already submitted: 55 (work)"), std::string::npos) << m;
    }
    EXPECT_EQ(readSubmissions(dir.path()).jobs.size(), 1u);  // the first job is recorded
}
