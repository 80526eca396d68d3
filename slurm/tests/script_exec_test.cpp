// The rendered batch script run by bash, outside Slurm: fake `srun` and `scontrol` on PATH stand
// in for the cluster, a fake run command for drp. Checks the script's own logic: the exit code
// it passes on, the failure when the launcher exits 0 without having run anything (seen once on
// the localhost cluster: srun could not start its tasks yet exited 0, and the afterok chain went
// on), and the requeue on exit 75.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "drp/slurm/process.h"
#include "drp/slurm/script.h"

using namespace drp::slurm;
namespace fs = std::filesystem;

namespace {

class ScriptExec : public ::testing::Test {
  protected:
    fs::path dir;
    void SetUp() override {
        dir = fs::temp_directory_path() / ("drp_script_exec_" + std::to_string(::getpid()));
        fs::remove_all(dir);
        fs::create_directories(dir / "bin");
        fs::create_directories(dir / "logs");
        // scontrol: records the requeue request.
        writeExecutable("bin/scontrol",
                        "#!/bin/sh\necho \"$@\" >> \"" + (dir / "scontrol.log").string() + "\"\n");
        // The run command: writes its exit status file like drp run, exits with $FAKE_RC.
        writeExecutable("fake-run",
                        "#!/bin/sh\n"
                        "while [ $# -gt 0 ]; do\n"
                        "  if [ \"$1\" = --exit-status-file ]; then echo \"$FAKE_RC run-1\" > "
                        "\"$2\"; fi\n"
                        "  shift\n"
                        "done\n"
                        "exit \"$FAKE_RC\"\n");
    }
    void TearDown() override { fs::remove_all(dir); }
    void writeExecutable(const std::string& rel, const std::string& text) {
        std::ofstream(dir / rel) << text;
        fs::permissions(dir / rel, fs::perms::owner_all);
    }
    /// `srun` either runs the command (dropping its own --options) or exits 0 doing nothing.
    void fakeSrun(bool runsCommand) {
        writeExecutable("bin/srun", runsCommand
                                        ? "#!/bin/sh\n"
                                          "while [ \"${1#--}\" != \"$1\" ]; do shift; done\n"
                                          "exec \"$@\"\n"
                                        : "#!/bin/sh\nexit 0\n");
    }
    CommandResult runScript(int fakeRc) {
        JobScript job;
        job.submission = "sub-0001";
        job.group = "patch";
        job.stages = {"coadd"};
        job.repo = (dir / "repo").string();
        job.logDir = (dir / "logs").string();
        job.chunkDir = (dir / "chunks").string();
        job.tasks = 1;
        job.command = {(dir / "fake-run").string(), "run", "--repo", job.repo};
        SiteConfig site;
        std::ofstream(dir / "job.sbatch") << renderScript(job, site);
        const std::string path = (dir / "bin").string() + ":/usr/bin:/bin";
        ProcessRunner runner;
        return runner.run({"env", "PATH=" + path, "SLURM_JOB_ID=41",
                           "FAKE_RC=" + std::to_string(fakeRc), "bash",
                           (dir / "job.sbatch").string()});
    }
};

}  // namespace

TEST_F(ScriptExec, PassesTheRunsExitCodeOn) {
    fakeSrun(true);
    CommandResult r = runScript(0);
    EXPECT_EQ(r.exitCode, 0) << r.out << r.err;
    EXPECT_TRUE(fs::exists(dir / "logs/patch-41-0.exit"));
    r = runScript(1);
    EXPECT_EQ(r.exitCode, 1) << r.out << r.err;
    EXPECT_FALSE(fs::exists(dir / "scontrol.log"));
}

TEST_F(ScriptExec, ALauncherThatRanNothingFailsTheJob) {
    fakeSrun(false);
    std::ofstream(dir / "logs/patch-41-0.exit") << "0 stale\n";  // from an earlier attempt
    CommandResult r = runScript(0);
    EXPECT_EQ(r.exitCode, 1) << r.out << r.err;
    EXPECT_NE(r.out.find("the launcher exited 0 but the run wrote no exit status"),
              std::string::npos)
        << r.out;
}

TEST_F(ScriptExec, AnInterruptedRunRequeuesItsJob) {
    fakeSrun(true);
    CommandResult r = runScript(75);
    EXPECT_EQ(r.exitCode, 75) << r.out << r.err;
    std::ifstream log(dir / "scontrol.log");
    std::string line;
    std::getline(log, line);
    EXPECT_EQ(line, "requeue 41");
}
