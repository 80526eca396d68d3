// Test support shared by the HDF5 tests: a private temporary directory removed at the end.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>

namespace drp::test {

class TempDir {
  public:
    explicit TempDir(const std::string& prefix) {
        static int counter = 0;
        _path = std::filesystem::temp_directory_path() /
                (prefix + "_" + std::to_string(getpid()) + "_" + std::to_string(counter++));
        std::filesystem::create_directories(_path);
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(_path, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    std::string operator/(const std::string& name) const { return (_path / name).string(); }
    const std::filesystem::path& path() const { return _path; }

  private:
    std::filesystem::path _path;
};

}  // namespace drp::test
