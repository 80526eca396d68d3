// Helpers shared by the engine's tests: scratch directories and file comparison.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

namespace drp::jobs::jobtest {

/// A fresh directory under $DRP_BUILD_DIR (or /tmp), removed by the destructor.
class ScratchDir {
  public:
    explicit ScratchDir(const std::string& tag) {
        const char* base = std::getenv("DRP_BUILD_DIR");
        std::string tmpl = std::string(base ? base : "/tmp") + "/jobs-" + tag + "-XXXXXX";
        if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed for " + tmpl);
        _path = tmpl;
    }
    ~ScratchDir() {
        std::error_code ec;
        if (!std::getenv("DRP_KEEP_TEST_DIRS")) std::filesystem::remove_all(_path, ec);
    }
    const std::string& path() const { return _path; }

  private:
    std::string _path;
};

/// Every regular file under `root` except the journals (runs/), relative path -> bytes.
inline std::map<std::string, std::string> snapshot(const std::string& root) {
    std::map<std::string, std::string> out;
    for (const auto& e : std::filesystem::recursive_directory_iterator(root)) {
        if (!e.is_regular_file()) continue;
        auto rel = std::filesystem::relative(e.path(), root).string();
        if (rel.rfind("runs/", 0) == 0 || rel == "faults.txt") continue;
        std::ifstream in(e.path(), std::ios::binary);
        std::ostringstream ss;
        ss << in.rdbuf();
        out[rel] = ss.str();
    }
    return out;
}

inline void writeText(const std::string& path, const std::string& text) {
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream(path) << text;
}

}  // namespace drp::jobs::jobtest
