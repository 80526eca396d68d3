// Quoting and validation: every value that reaches a batch script.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "drp/slurm/process.h"
#include "drp/slurm/shell.h"

using namespace drp::slurm;

namespace {

// Hostile strings: command substitution, variable expansion, quotes of both kinds, globbing,
// separators, comments, backslashes, non-ASCII bytes.
const char* const kHostile[] = {"$(touch /tmp/drp-pwned)",
                                "`touch /tmp/drp-pwned`",
                                "a'b",
                                "'; touch /tmp/drp-pwned; '",
                                "\"$HOME\"",
                                "${PATH}",
                                "*",
                                "~root",
                                "a b  c",
                                "x;y&z|w",
                                "# not a comment",
                                "back\\slash\\",
                                "tract=0,patch=5,band=r",
                                "caf\xc3\xa9",
                                "-n",
                                "!event",
                                ""};

}  // namespace

TEST(ShellQuote, BashReadsBackEveryStringUnchanged) {
    ProcessRunner runner;
    for (const char* s : kHostile) {
        // printf '%s' <quoted> prints the word exactly as bash parsed it.
        CommandResult r = runner.run({"bash", "-c", "printf '%s' " + shellQuote(s)});
        ASSERT_TRUE(r.ok()) << s << ": " << r.err;
        EXPECT_EQ(r.out, s) << "quoted as " << shellQuote(s);
    }
}

TEST(ShellQuote, SafeWordsStayReadable) {
    EXPECT_EQ(shellQuote("/data/release"), "/data/release");
    EXPECT_EQ(shellQuote("--stages"), "--stages");
    EXPECT_EQ(shellQuote("coadd,deblend"), "coadd,deblend");
    EXPECT_EQ(shellQuote("a b"), "'a b'");
    EXPECT_EQ(shellQuote("it's"), "'it'\\''s'");
    EXPECT_EQ(shellQuote(""), "''");
    EXPECT_EQ(shellQuote("~"), "'~'");  // no tilde expansion
}

TEST(Validate, ControlCharactersAreRejectedEverywhere) {
    EXPECT_THROW(checkNoControl("x", "a\nb"), std::invalid_argument);
    EXPECT_THROW(checkNoControl("x", "a\rb"), std::invalid_argument);
    EXPECT_THROW(checkNoControl("x", std::string("a\0b", 3)), std::invalid_argument);
    EXPECT_THROW(checkNoControl("x", ""), std::invalid_argument);
    EXPECT_NO_THROW(checkNoControl("x", "", true));
    try {
        checkName("--partition", "normal\n#SBATCH --uid=0");
        FAIL() << "accepted a newline";
    } catch (const std::invalid_argument& e) {
        // The message names the option and shows the value escaped, on one line.
        EXPECT_NE(std::string(e.what()).find("--partition: 'normal\\n#SBATCH --uid=0'"),
                  std::string::npos)
            << e.what();
    }
}

TEST(Validate, Names) {
    EXPECT_NO_THROW(checkName("p", "normal"));
    EXPECT_NO_THROW(checkName("p", "gpu_a100-80g.v2"));
    for (const char* bad : {"a b", "a,b", "a;b", "$x", "a=b", "--x", "a'"})
        EXPECT_THROW(checkName("p", bad), std::invalid_argument) << bad;
    EXPECT_THROW(checkName("p", std::string(129, 'a')), std::invalid_argument);
}

TEST(Validate, TimeLimitsInEverySlurmFormat) {
    EXPECT_EQ(parseTimeLimit("t", "30"), 30 * 60);                      // minutes
    EXPECT_EQ(parseTimeLimit("t", "30:15"), 30 * 60 + 15);              // minutes:seconds
    EXPECT_EQ(parseTimeLimit("t", "2:00:00"), 7200);                    // hours:minutes:seconds
    EXPECT_EQ(parseTimeLimit("t", "1-0"), 86400);                       // days-hours
    EXPECT_EQ(parseTimeLimit("t", "1-2:30"), 86400 + 2 * 3600 + 1800);  // days-hours:minutes
    EXPECT_EQ(parseTimeLimit("t", "2-00:00:05"), 2 * 86400 + 5);
    for (const char* bad : {"", "0", "00:00:00", "1:2:3:4", "x", "1h", "-1", "1-", "1--2",
                            "UNLIMITED", "1 0", "1:", ":1"})
        EXPECT_THROW(parseTimeLimit("t", bad), std::invalid_argument) << bad;
    EXPECT_EQ(formatTimeLimit(7200), "02:00:00");
    EXPECT_EQ(formatTimeLimit(59), "00:00:59");
    EXPECT_EQ(formatTimeLimit(86400 + 3661), "1-01:01:01");
    // Round trip.
    for (std::int64_t s : {1, 60, 3599, 86399, 86400, 200000})
        EXPECT_EQ(parseTimeLimit("t", formatTimeLimit(s)), s);
}

TEST(Validate, MemoryConstraintModulesEnv) {
    for (const char* ok : {"4000", "64G", "512M", "1T", "10K"})
        EXPECT_NO_THROW(checkMemory("m", ok)) << ok;
    for (const char* bad : {"", "G", "0", "64GB", "-1G", "4 G", "1.5G"})
        EXPECT_THROW(checkMemory("m", bad), std::invalid_argument) << bad;
    for (const char* ok : {"haswell", "knl&quad", "a|b", "[rack1*2&rack2*4]", "(a|b)&c"})
        EXPECT_NO_THROW(checkConstraint("c", ok)) << ok;
    for (const char* bad : {"a b", "a;b", "$(x)", "a'b"})
        EXPECT_THROW(checkConstraint("c", bad), std::invalid_argument) << bad;
    for (const char* ok : {"openmpi", "openmpi/4.1.4-gcc", "hdf5+mpi"})
        EXPECT_NO_THROW(checkModule("m", ok)) << ok;
    for (const char* bad : {"a b", "a;b", "$(x)", "`x`"})
        EXPECT_THROW(checkModule("m", bad), std::invalid_argument) << bad;
    EXPECT_NO_THROW(checkEnvName("e", "OMP_NUM_THREADS"));
    for (const char* bad : {"1X", "A-B", "A B", "A=B", "$A"})
        EXPECT_THROW(checkEnvName("e", bad), std::invalid_argument) << bad;
}

TEST(Validate, ExtraSbatchOptions) {
    for (const char* ok : {"--exclusive", "--mail-type=END,FAIL", "--gres=gpu:2",
                           "--cpus-per-task=4", "--licenses=scratch@lustre:1"})
        EXPECT_NO_THROW(checkSbatchOption("s", ok)) << ok;
    for (const char* bad :
         {"-x", "exclusive", "--", "--a b", "--x=$(id)", "--x='a'", "--comment=a b", "--X=1"})
        EXPECT_THROW(checkSbatchOption("s", bad), std::invalid_argument) << bad;
    // Options that would change the job chain are drp's own.
    for (const char* reserved : {"--array=0-9", "--dependency=afterany:1", "--output=/tmp/x",
                                 "--signal=USR2@10", "--no-requeue", "--time=10"})
        EXPECT_THROW(checkSbatchOption("s", reserved), std::invalid_argument) << reserved;
}

TEST(Process, CapturesOutputAndExitCode) {
    ProcessRunner runner(10);
    CommandResult r = runner.run({"sh", "-c", "echo out; echo err >&2; exit 3"});
    EXPECT_EQ(r.exitCode, 3);
    EXPECT_EQ(r.out, "out\n");
    EXPECT_EQ(r.err, "err\n");
    EXPECT_EQ(runner.run({"/nonexistent/program"}).exitCode, 127);
    ProcessRunner quick(0.5);
    EXPECT_EQ(quick.run({"sleep", "10"}).exitCode, 124);
}
