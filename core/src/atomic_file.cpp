#include "drp/core/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "drp/core/error.h"

namespace drp {

namespace fs = std::filesystem;

namespace {
std::string uniqueSuffix() {
    static std::atomic<unsigned> counter{0};
    std::random_device rd;
    char buf[64];
    std::snprintf(buf, sizeof buf, ".tmp.%d.%u.%08x", static_cast<int>(getpid()), counter++, rd());
    return buf;
}

void fsyncPath(const std::string& path, bool directory) {
    int fd = ::open(path.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
    if (fd < 0) throw ioError("cannot open " + path + " to sync: " + std::strerror(errno));
    int rc = ::fsync(fd);
    int err = errno;
    ::close(fd);
    if (rc != 0 && !(directory && err == EINVAL))
        throw ioError("fsync of " + path + " failed: " + std::strerror(err));
}
}  // namespace

AtomicFile::AtomicFile(std::string finalPath) : _final(std::move(finalPath)) {
    fs::path p(_final);
    if (p.has_parent_path()) {
        std::error_code ec;
        fs::create_directories(p.parent_path(), ec);
        if (ec) throw ioError("cannot create directory " + p.parent_path().string() + ": " + ec.message());
    }
    // Hidden name in the same directory: rename is atomic only within one filesystem.
    std::string name = ".";  // built stepwise: GCC 12 gives a false -Wrestrict on "." + string
    name += p.filename().string();
    name += uniqueSuffix();
    _temp = (p.parent_path() / name).string();
}

AtomicFile::~AtomicFile() {
    if (!_committed) {
        std::error_code ec;
        fs::remove(_temp, ec);
    }
}

void AtomicFile::commit() {
    if (_committed) return;
    if (!fs::exists(_temp)) throw ioError("nothing was written to " + _temp + " for " + _final);
    fsyncPath(_temp, false);
    if (std::rename(_temp.c_str(), _final.c_str()) != 0)
        throw ioError("cannot rename " + _temp + " to " + _final + ": " + std::strerror(errno));
    _committed = true;
    fs::path parent = fs::path(_final).parent_path();
    fsyncPath(parent.empty() ? "." : parent.string(), true);
}

// ---- SHA-256 (FIPS 180-4) -------------------------------------------------------------------

namespace {
class Sha256 {
public:
    void update(const unsigned char* data, std::size_t n) {
        _length += n;
        while (n > 0) {
            std::size_t take = std::min(n, 64 - _fill);
            std::memcpy(_block.data() + _fill, data, take);
            _fill += take;
            data += take;
            n -= take;
            if (_fill == 64) {
                compress(_block.data());
                _fill = 0;
            }
        }
    }
    std::string hex() {
        std::uint64_t bits = _length * 8;
        unsigned char pad = 0x80;
        update(&pad, 1);
        unsigned char zero = 0;
        while (_fill != 56) update(&zero, 1);
        unsigned char len[8];
        for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(bits >> (56 - 8 * i));
        update(len, 8);
        static const char* digits = "0123456789abcdef";
        std::string out;
        for (std::uint32_t v : _h)
            for (int i = 7; i >= 0; --i) out += digits[(v >> (4 * i)) & 0xf];
        return out;
    }

private:
    static std::uint32_t rotr(std::uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }
    void compress(const unsigned char* p) {
        static constexpr std::uint32_t k[64] = {
            0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
            0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
            0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
            0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
            0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
            0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
            0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
            0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
        std::uint32_t w[64];
        for (int i = 0; i < 16; ++i)
            w[i] = (std::uint32_t(p[4 * i]) << 24) | (std::uint32_t(p[4 * i + 1]) << 16) |
                   (std::uint32_t(p[4 * i + 2]) << 8) | std::uint32_t(p[4 * i + 3]);
        for (int i = 16; i < 64; ++i) {
            std::uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
            std::uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }
        std::uint32_t a = _h[0], b = _h[1], c = _h[2], d = _h[3], e = _h[4], f = _h[5], g = _h[6], h = _h[7];
        for (int i = 0; i < 64; ++i) {
            std::uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + k[i] + w[i];
            std::uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
            h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
        }
        _h[0] += a; _h[1] += b; _h[2] += c; _h[3] += d; _h[4] += e; _h[5] += f; _h[6] += g; _h[7] += h;
    }
    std::array<std::uint32_t, 8> _h{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    std::array<unsigned char, 64> _block{};
    std::size_t _fill = 0;
    std::uint64_t _length = 0;
};
}  // namespace

std::string sha256Hex(const std::string& bytes) {
    Sha256 s;
    s.update(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
    return s.hex();
}

std::string sha256File(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw ioError("cannot open " + path + " for checksum");
    Sha256 s;
    std::array<char, 1 << 16> buf;
    while (in) {
        in.read(buf.data(), buf.size());
        s.update(reinterpret_cast<const unsigned char*>(buf.data()), static_cast<std::size_t>(in.gcount()));
    }
    if (in.bad()) throw ioError("read error on " + path + " while computing checksum");
    return s.hex();
}

}  // namespace drp
