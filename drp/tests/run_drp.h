// Test helper: run the `drp` program (DRP_EXE, set by CMake) in a scratch directory and capture
// its exit code, stdout and stderr.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <map>

#include "drp/core/atomic_file.h"

namespace drp::testing {

/// Relative path -> SHA-256 of every regular file under `root`.
inline std::map<std::string, std::string> treeDigest(const std::filesystem::path& root) {
    std::map<std::string, std::string> out;
    for (const auto& e : std::filesystem::recursive_directory_iterator(root))
        if (e.is_regular_file())
            out[std::filesystem::relative(e.path(), root).string()] =
                drp::sha256File(e.path().string());
    return out;
}

struct DrpResult {
    int code = -1;
    std::string out, err;
};

class DrpProgramTest : public ::testing::Test {
  protected:
    void SetUp() override {
        dir = std::filesystem::temp_directory_path() /
              ("drp_cli_test_" + std::to_string(::getpid()) + "_" +
               ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::create_directories(dir);
    }
    void TearDown() override { std::filesystem::remove_all(dir); }

    /// Runs `drp <args>` (args are shell words; the test controls them).
    DrpResult drp(const std::string& args) const {
        std::string cmd = std::string(DRP_EXE) + " " + args + " >" + (dir / "out").string() +
                          " 2>" + (dir / "err").string();
        int status = std::system(cmd.c_str());
        DrpResult r;
        r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        r.out = slurp(dir / "out");
        r.err = slurp(dir / "err");
        return r;
    }
    std::string writeFile(const std::string& name, const std::string& text) const {
        auto p = dir / name;
        std::ofstream(p) << text;
        return p.string();
    }
    static std::string slurp(const std::filesystem::path& p) {
        std::ifstream in(p);
        std::stringstream ss;
        ss << in.rdbuf();
        return ss.str();
    }
    static bool contains(const std::string& text, const std::string& what) {
        return text.find(what) != std::string::npos;
    }

    std::filesystem::path dir;
};

}  // namespace drp::testing
