// Helpers shared by the FITS tests: scratch directories, running the astropy checker.
#pragma once

#include <gtest/gtest.h>

#include <unistd.h>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace drp::testing {

/// A fresh directory removed at the end of the test.
class ScratchDir {
  public:
    explicit ScratchDir(const std::string& name)
        : _path(std::filesystem::temp_directory_path() /
                ("drp_" + name + "_" + std::to_string(::getpid()))) {
        std::filesystem::remove_all(_path);
        std::filesystem::create_directories(_path);
    }
    ~ScratchDir() {
        std::error_code ec;
        std::filesystem::remove_all(_path, ec);
    }
    std::string file(const std::string& name) const { return (_path / name).string(); }
    const std::filesystem::path& path() const { return _path; }

  private:
    std::filesystem::path _path;
};

/// DRP_PYTHON, or "" when the interoperability check cannot run.
inline std::string python() {
    const char* p = std::getenv("DRP_PYTHON");
    return p ? p : "";
}

inline std::string sourceDir() {
    const char* s = std::getenv("DRP_SOURCE_DIR");
    return s ? s : ".";
}

/// Run a command, returning its stdout lines; fails the test if it exits non-zero.
inline std::vector<std::string> runLines(const std::string& cmd) {
    std::vector<std::string> lines;
    FILE* pipe = ::popen(cmd.c_str(), "r");
    if (pipe == nullptr) {
        ADD_FAILURE() << "cannot run " << cmd;
        return lines;
    }
    std::string cur;
    int c;
    while ((c = std::fgetc(pipe)) != EOF) {
        if (c == '\n') {
            lines.push_back(cur);
            cur.clear();
        } else {
            cur += static_cast<char>(c);
        }
    }
    if (!cur.empty()) lines.push_back(cur);
    int rc = ::pclose(pipe);
    EXPECT_EQ(rc, 0) << "command failed: " << cmd;
    return lines;
}

/// The shared real-data directory (DRP_SHARED_DIR/realdata), or "" if absent.
inline std::string realDataDir() {
    const char* s = std::getenv("DRP_SHARED_DIR");
    std::filesystem::path p = std::filesystem::path(s ? s : "../shared") / "realdata";
    return std::filesystem::is_directory(p) ? p.string() : "";
}

}  // namespace drp::testing
