#include "drp/drp/multifit_checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "drp/core/error.h"
#include "drp/drp/pipeline.h"

namespace drp::pipeline {

namespace {

constexpr char kFileMagic[8] = {'D', 'R', 'P', 'M', 'F', 'C', 'K', '1'};
constexpr char kRecordMagic[4] = {'M', 'F', 'G', '1'};

std::uint64_t fnv1a(const char* p, std::size_t n) {
    std::uint64_t h = 1469598103934665603ull;
    for (std::size_t i = 0; i < n; ++i) {
        h ^= static_cast<unsigned char>(p[i]);
        h *= 1099511628211ull;
    }
    return h;
}

template <typename T>
void put(std::string& s, T v) {
    s.append(reinterpret_cast<const char*>(&v), sizeof(T));
}
template <typename T>
bool get(const std::string& s, std::size_t& off, T& v) {
    if (off + sizeof(T) > s.size()) return false;
    std::memcpy(&v, s.data() + off, sizeof(T));
    off += sizeof(T);
    return true;
}

std::string header(const std::string& key) {
    std::string h(kFileMagic, sizeof kFileMagic);
    put<std::uint32_t>(h, static_cast<std::uint32_t>(key.size()));
    h += key;
    return h;
}

/// Writes all of `bytes` at the end of fd and fsyncs; throws Error(io) naming the file.
void appendDurable(const std::string& path, const std::string& bytes, bool truncate) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | (truncate ? O_TRUNC : 0), 0644);
    if (fd < 0) throw ioError("multifit checkpoint " + path + ": open: " + std::strerror(errno));
    std::size_t done = 0;
    while (done < bytes.size()) {
        ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (w < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            ::close(fd);
            throw ioError("multifit checkpoint " + path + ": write: " + std::strerror(e));
        }
        done += static_cast<std::size_t>(w);
    }
    if (::fsync(fd) != 0) {
        int e = errno;
        ::close(fd);
        throw ioError("multifit checkpoint " + path + ": fsync: " + std::strerror(e));
    }
    ::close(fd);
}

}  // namespace

MultifitCheckpoint::MultifitCheckpoint(std::string path, std::string key, std::size_t nColumns,
                                       const std::string& software)
    : _path(std::move(path)), _key(std::move(key) + "|software:" + software), _nColumns(nColumns) {
    std::filesystem::create_directories(std::filesystem::path(_path).parent_path());
    std::string bytes;
    {
        std::ifstream in(_path, std::ios::binary);
        if (in) bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    const std::string head = header(_key);
    std::size_t good = 0;
    if (bytes.size() >= head.size() && bytes.compare(0, head.size(), head) == 0) {
        std::size_t off = head.size();
        good = off;
        while (true) {
            const std::size_t start = off;
            char magic[4];
            if (off + 4 > bytes.size()) break;
            std::memcpy(magic, bytes.data() + off, 4);
            off += 4;
            std::uint64_t g;
            std::uint32_t nRows, nCols;
            if (std::memcmp(magic, kRecordMagic, 4) != 0 || !get(bytes, off, g) ||
                !get(bytes, off, nRows) || !get(bytes, off, nCols) || g != _groups.size() ||
                nCols != _nColumns)
                break;
            const std::size_t payload = std::size_t(nRows) * nCols * sizeof(double);
            if (off + payload + sizeof(std::uint64_t) > bytes.size()) break;
            CheckpointRows rows(nRows, std::vector<double>(nCols));
            for (auto& r : rows) {
                std::memcpy(r.data(), bytes.data() + off, nCols * sizeof(double));
                off += nCols * sizeof(double);
            }
            std::uint64_t sum = 0;
            if (!get(bytes, off, sum) ||
                sum != fnv1a(bytes.data() + start, off - start - sizeof sum))
                break;
            _groups.push_back(std::move(rows));
            good = off;
        }
    }
    if (good == 0) {
        appendDurable(_path, head, true);  // new, stale or unreadable: start over
    } else if (good < bytes.size()) {
        // A torn or corrupt tail: keep the valid prefix so later appends follow it.
        std::filesystem::resize_file(_path, good);
    }
}

void MultifitCheckpoint::append(const CheckpointRows& rows) {
    std::string rec(kRecordMagic, 4);
    put<std::uint64_t>(rec, _groups.size());
    put<std::uint32_t>(rec, static_cast<std::uint32_t>(rows.size()));
    put<std::uint32_t>(rec, static_cast<std::uint32_t>(_nColumns));
    for (const auto& r : rows) {
        if (r.size() != _nColumns)
            throw logicError("multifit checkpoint: row with " + std::to_string(r.size()) +
                             " values, expected " + std::to_string(_nColumns));
        rec.append(reinterpret_cast<const char*>(r.data()), r.size() * sizeof(double));
    }
    put<std::uint64_t>(rec, fnv1a(rec.data(), rec.size()));
    appendDurable(_path, rec, false);
    _groups.push_back(rows);
}

void MultifitCheckpoint::remove() {
    std::error_code ec;
    std::filesystem::remove(_path, ec);
}

bool discardMultifitCheckpoint(const std::string& repoRoot, const std::string& dataId) {
    int tract = -1, patch = -1;
    char tail = 0;
    if (std::sscanf(dataId.c_str(), "tract=%d,patch=%d%c", &tract, &patch, &tail) != 2 ||
        tract < 0 || patch < 0)
        throw badInput("multifit checkpoint: data id '" + dataId +
                       "' is not of the form tract=T,patch=P");
    const std::filesystem::path p =
        std::filesystem::path(repoRoot) / Repository::patchDir(tract, patch) / "multifit.ckpt";
    std::error_code ec;
    const bool removed = std::filesystem::remove(p, ec);
    if (ec) throw ioError("multifit checkpoint " + p.string() + ": delete: " + ec.message());
    return removed;
}

std::vector<CheckpointRows> runGroupsCheckpointed(
    MultifitCheckpoint& checkpoint, std::size_t nGroups,
    const std::function<CheckpointRows(std::size_t)>& fitGroup, long stopAfter) {
    std::vector<CheckpointRows> out;
    out.reserve(nGroups);
    long computed = 0;
    for (std::size_t g = 0; g < nGroups; ++g) {
        if (g < checkpoint.doneGroups()) {
            out.push_back(checkpoint.group(g));
            continue;
        }
        if (stopAfter >= 0 && computed >= stopAfter)
            throw Error("interrupted", "multifit stopped after " + std::to_string(computed) +
                                           " groups (test hook)");
        out.push_back(fitGroup(g));
        checkpoint.append(out.back());
        ++computed;
    }
    return out;
}

}  // namespace drp::pipeline
