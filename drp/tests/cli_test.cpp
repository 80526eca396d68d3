// Runs the `drp` program as a user would: help, version, unknown options and commands, config
// files (value used, unknown key rejected, command line wins), --print-config round trip.
#include <sstream>

#include "run_drp.h"

namespace {

using DrpCli = drp::testing::DrpProgramTest;

TEST_F(DrpCli, TopLevelHelpListsCommands) {
    auto r = drp("--help");
    EXPECT_EQ(r.code, 0);
    EXPECT_NE(r.out.find("Usage: drp <command>"), std::string::npos);
    EXPECT_NE(r.out.find("version"), std::string::npos) << r.out;
    // With no command at all the usage goes to stderr and the exit code says "usage error".
    auto none = drp("");
    EXPECT_EQ(none.code, 2);
    EXPECT_NE(none.err.find("Usage: drp <command>"), std::string::npos);
}

TEST_F(DrpCli, EveryCommandHasHelp) {
    auto top = drp("--help");
    // Command lines are "  <name>  <summary>" after the "Commands:" header, up to a blank line.
    std::istringstream in(top.out.substr(top.out.find("Commands:")));
    std::string line;
    std::getline(in, line);
    int n = 0;
    while (std::getline(in, line) && !line.empty()) {
        std::string name = line.substr(2, line.find(' ', 2) - 2);
        auto r = drp(name + " --help");
        EXPECT_EQ(r.code, 0) << name;
        EXPECT_NE(r.out.find("Usage: drp " + name), std::string::npos) << name;
        EXPECT_NE(r.out.find("--print-config"), std::string::npos) << name;
        ++n;
    }
    EXPECT_GE(n, 1);
}

TEST_F(DrpCli, VersionPrintsGitCommit) {
    auto r = drp("--version");
    EXPECT_EQ(r.code, 0);
    EXPECT_EQ(r.out.rfind("drp ", 0), 0u) << r.out;
    EXPECT_NE(r.out.find("git "), std::string::npos) << r.out;
}

TEST_F(DrpCli, UnknownOptionAndCommandRejected) {
    auto r = drp("version --no-such-option");
    EXPECT_EQ(r.code, 2);
    EXPECT_NE(r.err.find("drp version: error:"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("no-such-option"), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.empty());

    auto c = drp("no-such-command");
    EXPECT_EQ(c.code, 2);
    EXPECT_NE(c.err.find("unknown command 'no-such-command'"), std::string::npos) << c.err;
}

TEST_F(DrpCli, ConfigFileValueUsed) {
    auto text = drp("version");
    ASSERT_EQ(text.code, 0);
    EXPECT_EQ(text.out.find('{'), std::string::npos);
    auto cfg = writeFile("v.ini", "# a comment\njson = true\n");
    auto r = drp("version --config " + cfg);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out.rfind("{\"version\": ", 0), 0u) << r.out;
}

TEST_F(DrpCli, UnknownConfigKeyRejected) {
    auto cfg = writeFile("bad.ini", "jsn = true\n");
    auto r = drp("version --config " + cfg);
    EXPECT_EQ(r.code, 2);
    EXPECT_NE(r.err.find("drp version: error: config file '" + cfg + "'"), std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("jsn"), std::string::npos) << r.err;

    auto missing = drp("version --config " + (dir / "absent.ini").string());
    EXPECT_EQ(missing.code, 2);
    EXPECT_NE(missing.err.find("absent.ini"), std::string::npos) << missing.err;
}

TEST_F(DrpCli, PrintConfigRoundTrips) {
    auto dump = drp("version --json --print-config");
    ASSERT_EQ(dump.code, 0) << dump.err;
    EXPECT_NE(dump.out.find("json = true"), std::string::npos) << dump.out;
    EXPECT_NE(dump.out.find("# command line"), std::string::npos) << dump.out;
    auto cfg = writeFile("dump.ini", dump.out);
    auto again = drp("version --config " + cfg + " --print-config");
    ASSERT_EQ(again.code, 0) << again.err;
    EXPECT_NE(again.out.find("json = true    # config " + cfg), std::string::npos) << again.out;
    auto defaults = drp("version --print-config");
    EXPECT_NE(defaults.out.find("json = false    # default"), std::string::npos) << defaults.out;
}

}  // namespace
