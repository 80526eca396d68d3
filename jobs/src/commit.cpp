#include "drp/jobs/commit.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>

namespace drp::jobs {

namespace fs = std::filesystem;

namespace {
[[noreturn]] void ioFail(const std::string& what, const std::string& path) {
    throw TaskError("io", what + " " + path + ": " + std::strerror(errno));
}

void fsyncPath(const std::string& path, bool directory) {
    int fd = ::open(path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
    if (fd < 0) ioFail("cannot open for fsync", path);
    int rc = ::fsync(fd);
    ::close(fd);
    if (rc != 0) ioFail("cannot fsync", path);
}

std::string hostTag() {
    char buf[256] = {};
    gethostname(buf, sizeof buf - 1);
    std::string h = buf;
    for (auto& c : h)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') c = '_';
    return h;
}

constexpr const char* kTempMarker = ".drp-tmp-";
}  // namespace

std::string sha256OfFile(const std::string& path, std::uint64_t* bytes) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) ioFail("cannot open", path);
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
    std::vector<unsigned char> buf(1 << 16);
    std::uint64_t total = 0;
    while (true) {
        ssize_t n = ::read(fd, buf.data(), buf.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            ::close(fd);
            ioFail("cannot read", path);
        }
        if (n == 0) break;
        EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<std::size_t>(n));
        total += static_cast<std::uint64_t>(n);
    }
    ::close(fd);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EVP_DigestFinal_ex(ctx.get(), md, &len);
    static const char* hex = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < len; ++i) {
        out += hex[md[i] >> 4];
        out += hex[md[i] & 15];
    }
    if (bytes) *bytes = total;
    return out;
}

std::string tempOutputPath(const std::string& finalPath) {
    return finalPath + kTempMarker + hostTag() + "-" + std::to_string(getpid());
}

void prepareOutput(const std::string& finalPath, const std::vector<std::string>& patterns) {
    fs::path p(finalPath);
    std::error_code ec;
    fs::create_directories(p.parent_path(), ec);
    if (ec)
        throw TaskError(
            "io", "cannot create directory " + p.parent_path().string() + ": " + ec.message());
    const std::string name = p.filename().string();
    std::vector<std::string> prefixes = {name + kTempMarker};
    for (std::string pattern : patterns) {
        for (auto at = pattern.find("{name}"); at != std::string::npos;
             at = pattern.find("{name}", at + name.size()))
            pattern.replace(at, 6, name);
        // A pattern must leave something after the name: never remove the output itself.
        if (pattern.size() > name.size() && pattern != name) prefixes.push_back(pattern);
    }
    for (const auto& entry : fs::directory_iterator(p.parent_path(), ec)) {
        const std::string file = entry.path().filename().string();
        if (file == name) continue;
        for (const auto& prefix : prefixes)
            if (file.compare(0, prefix.size(), prefix) == 0) {
                fs::remove(entry.path(), ec);
                break;
            }
    }
}

OutputRecord commitOutput(const std::string& repo, const std::string& tempPath,
                          const std::string& finalPath) {
    std::error_code ec;
    if (fs::exists(tempPath, ec)) {
        fsyncPath(tempPath, false);
        if (::rename(tempPath.c_str(), finalPath.c_str()) != 0)
            ioFail("cannot rename to", finalPath);
        fsyncPath(fs::path(finalPath).parent_path().string(), true);
    } else if (!fs::exists(finalPath, ec)) {
        throw TaskError("missing_output", "declared output was not written: " + finalPath);
    }
    OutputRecord rec;
    rec.path = fs::path(finalPath).lexically_relative(repo).string();
    rec.sha256 = sha256OfFile(finalPath, &rec.bytes);
    return rec;
}

std::string verifyOutputs(const std::string& repo, const std::vector<OutputRecord>& outputs,
                          VerifyMode mode) {
    for (const auto& o : outputs) {
        const std::string path = (fs::path(repo) / o.path).string();
        std::error_code ec;
        auto size = fs::file_size(path, ec);
        if (ec) return "output " + o.path + " is missing";
        if (size != o.bytes)
            return "output " + o.path + " has " + std::to_string(size) + " bytes, recorded " +
                   std::to_string(o.bytes);
        if (mode == VerifyMode::Checksum) {
            std::string sum;
            try {
                sum = sha256OfFile(path);
            } catch (const std::exception& e) {
                return e.what();
            }
            if (sum != o.sha256)
                return "output " + o.path + " does not match its recorded checksum";
        }
    }
    return {};
}

}  // namespace drp::jobs
