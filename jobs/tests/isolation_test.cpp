// Fault isolation of one attempt in a forked child: every failure mode is recorded with its
// class while the calling process carries on.
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <thread>

#include "drp/jobs/fault_injection.h"
#include "drp/jobs/isolation.h"
#include "test_util.h"

using namespace drp::jobs;

namespace {

struct Fixture : ::testing::Test {
    jobtest::ScratchDir dir{"isolation"};
    AttemptSpec spec(std::vector<std::string> outputs = {"out/x.txt"}) {
        AttemptSpec s;
        s.key = {"stage", "id=1"};
        s.repo = dir.path();
        s.outputs = std::move(outputs);
        s.timeLimitSeconds = 2;
        s.memoryLimitBytes = 128ull << 20;
        return s;
    }
};

TaskResult writeOk(const TaskContext& ctx) {
    jobtest::writeText(ctx.tempPath(0), "seed " + std::to_string(ctx.seed()) + "\n");
    return TaskResult::ok();
}

}  // namespace

TEST_F(Fixture, SuccessCommitsOutputsAndMeasuresTheChild) {
    auto o = runAttempt(writeOk, spec(), Isolation::Fork);
    ASSERT_TRUE(o.ok) << o.errorClass << ": " << o.error;
    ASSERT_EQ(o.outputs.size(), 1u);
    EXPECT_EQ(o.outputs[0].path, "out/x.txt");
    EXPECT_EQ(o.outputs[0].sha256.size(), 64u);
    EXPECT_TRUE(std::filesystem::exists(dir.path() + "/out/x.txt"));
    EXPECT_GT(o.maxRssKb, 0);
    EXPECT_GT(o.wallSeconds, 0);
    // The same attempt in-process gives the same bytes (the seed depends only on the key).
    auto first = jobtest::snapshot(dir.path());
    auto o2 = runAttempt(writeOk, spec(), Isolation::InProcess);
    ASSERT_TRUE(o2.ok);
    EXPECT_EQ(o2.outputs[0].sha256, o.outputs[0].sha256);
    EXPECT_EQ(jobtest::snapshot(dir.path()), first);
}

TEST_F(Fixture, ExceptionsKeepTheirClass) {
    auto o =
        runAttempt([](const TaskContext&) -> TaskResult { throw std::out_of_range("index 7"); },
                   spec(), Isolation::Fork);
    EXPECT_FALSE(o.ok);
    EXPECT_EQ(o.errorClass, "std::out_of_range");
    EXPECT_EQ(o.error, "index 7");
    auto t = runAttempt(
        [](const TaskContext&) -> TaskResult { throw TaskError("bad_input", "no pixels"); }, spec(),
        Isolation::Fork);
    EXPECT_EQ(t.errorClass, "bad_input");
    // A pipeline-supplied mapping (the drp pipeline maps drp::Error to its errorClass()).
    ErrorClassOf mapper = [](const std::exception& e) -> std::optional<std::string> {
        if (dynamic_cast<const std::logic_error*>(&e)) return "logic";
        return std::nullopt;
    };
    auto m = runAttempt([](const TaskContext&) -> TaskResult { throw std::invalid_argument("x"); },
                        spec(), Isolation::Fork, mapper);
    EXPECT_EQ(m.errorClass, "logic");
}

TEST_F(Fixture, SegfaultIsACrashWithTheSignal) {
    auto o = runAttempt(
        [](const TaskContext&) -> TaskResult {
            std::raise(SIGSEGV);
            return TaskResult::ok();
        },
        spec(), Isolation::Fork);
    EXPECT_FALSE(o.ok);
    EXPECT_EQ(o.errorClass, "crash");
    EXPECT_NE(o.error.find("signal 11"), std::string::npos) << o.error;
    EXPECT_FALSE(std::filesystem::exists(dir.path() + "/out/x.txt"));
}

TEST_F(Fixture, MemoryBlowUpHitsTheLimit) {
    // Touching 128 MiB takes ~0.3 CPU-s: many seconds of wall time on a loaded machine, so the
    // time limit here is only a backstop.
    auto s = spec();
    s.timeLimitSeconds = 60;
    auto o = runAttempt(
        [](const TaskContext&) -> TaskResult {
            std::vector<std::vector<char>> hog;
            while (true) hog.emplace_back(16u << 20, 'x');
        },
        s, Isolation::Fork);
    EXPECT_FALSE(o.ok);
    EXPECT_EQ(o.errorClass, "memory_limit") << o.error;
    // Peak RSS stays near the allowance (128 MiB on top of what the process had at fork).
    EXPECT_LT(o.maxRssKb, 1024.0 * 1024.0);
}

TEST_F(Fixture, HangIsKilledAtTheTimeLimit) {
    auto s = spec();
    s.timeLimitSeconds = 0.3;
    auto o = runAttempt(
        [](const TaskContext&) -> TaskResult {
            while (true) std::this_thread::sleep_for(std::chrono::milliseconds(50));
        },
        s, Isolation::Fork);
    EXPECT_FALSE(o.ok);
    EXPECT_EQ(o.errorClass, "timeout");
    EXPECT_GE(o.wallSeconds, 0.3);
    EXPECT_LT(o.wallSeconds, 2.0);
}

TEST_F(Fixture, ExternalSigkillLooksLikeOom) {
    auto o = runAttempt(
        [](const TaskContext&) -> TaskResult {
            ::kill(::getpid(), SIGKILL);
            return TaskResult::ok();
        },
        spec(), Isolation::Fork);
    EXPECT_EQ(o.errorClass, "oom");
}

TEST_F(Fixture, MissingOutputFailsAndPollCanKill) {
    auto o =
        runAttempt([](const TaskContext&) { return TaskResult::ok(); }, spec(), Isolation::Fork);
    EXPECT_EQ(o.errorClass, "missing_output");
    int polls = 0;
    auto k = runAttempt(
        [](const TaskContext&) -> TaskResult {
            while (true) std::this_thread::sleep_for(std::chrono::milliseconds(50));
        },
        spec(), Isolation::Fork, {}, [&] { return ++polls >= 2; }, 0.05);
    EXPECT_TRUE(k.killedOnRequest);
    EXPECT_EQ(k.errorClass, "interrupted");
}

TEST_F(Fixture, DegradedFlagsComeBack) {
    auto o = runAttempt(
        [](const TaskContext& ctx) {
            jobtest::writeText(ctx.tempPath(0), "partial but valid\n");
            return TaskResult::degraded({"blend_too_large"}, "skipped 1 blend");
        },
        spec(), Isolation::Fork);
    ASSERT_TRUE(o.ok);
    EXPECT_EQ(o.result.flags, std::vector<std::string>{"blend_too_large"});
    EXPECT_EQ(o.result.message, "skipped 1 blend");
}

// The test-only injection hook (fault_injection.h): DRP_JOBS_INJECT_FAULTS names a file of
// "<stage> <data id> <kind>" lines applied to matching attempts of an unmodified task function.
TEST_F(Fixture, InjectedFaultsFromTheEnvironmentFailOnlyTheirTask) {
    const std::string faults = dir.path() + "/faults.txt";
    ASSERT_EQ(::setenv(kInjectFaultsEnv, faults.c_str(), 1), 0);
    auto withKind = [&](const std::string& kind, AttemptSpec s) {
        jobtest::writeText(faults, "# comment\n\nother id=1 segv\nstage id=1 " + kind + "\n");
        return runAttempt(writeOk, s, Isolation::Fork);
    };
    EXPECT_EQ(withKind("throw", spec()).errorClass, "std::runtime_error");
    EXPECT_EQ(withKind("bad_input", spec()).errorClass, "bad_input");
    EXPECT_EQ(withKind("segv", spec()).errorClass, "crash");
    auto s = spec();
    s.timeLimitSeconds = 60;  // a backstop only (see MemoryBlowUpHitsTheLimit)
    EXPECT_EQ(withKind("oom", s).errorClass, "memory_limit");
    s.timeLimitSeconds = 0.3;
    EXPECT_EQ(withKind("hang", s).errorClass, "timeout");
    // io_once fails the first attempt only.
    EXPECT_EQ(withKind("io_once", spec()).errorClass, "io");
    s = spec();
    s.attempt = 2;
    EXPECT_TRUE(withKind("io_once", s).ok);
    // Guards: no blow-up without a memory limit, no hang without a time limit; typos are loud.
    s = spec();
    s.memoryLimitBytes = 0;
    s.timeLimitSeconds = 0;
    auto oom = withKind("oom", s);
    EXPECT_EQ(oom.errorClass, "config");
    EXPECT_NE(oom.error.find("no memory limit"), std::string::npos) << oom.error;
    EXPECT_EQ(withKind("hang", s).errorClass, "config");
    auto typo = withKind("segfault", spec());
    EXPECT_EQ(typo.errorClass, "config");
    EXPECT_NE(typo.error.find("'segfault'"), std::string::npos) << typo.error;
    jobtest::writeText(faults, "stage id=1\n");
    auto bad = runAttempt(writeOk, spec(), Isolation::Fork);
    EXPECT_EQ(bad.errorClass, "config");
    EXPECT_NE(bad.error.find(faults + ":1"), std::string::npos) << bad.error;
    // Another task, or no file: untouched.
    jobtest::writeText(faults, "stage id=2 segv\n");
    EXPECT_TRUE(runAttempt(writeOk, spec(), Isolation::Fork).ok);
    std::filesystem::remove(faults);
    EXPECT_TRUE(runAttempt(writeOk, spec(), Isolation::Fork).ok);
    ::unsetenv(kInjectFaultsEnv);
}
