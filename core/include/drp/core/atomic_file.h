// Atomic output files: write under a temporary name in the destination's directory, flush to
// disk, then rename over the final name. A reader (or a resumed run) therefore sees either the
// complete old file, the complete new file, or no file — never a half-written one.
//
//   AtomicFile out("/repo/coadd/.../coadd.fits");
//   writeSomething(out.tempPath());   // any writer that takes a path
//   out.commit();                     // fsync + rename; without commit() the temp file is removed
#pragma once

#include <string>

namespace drp {

class AtomicFile final {
public:
    /// Creates the parent directory if needed. Does not touch `finalPath` until commit().
    explicit AtomicFile(std::string finalPath);
    ~AtomicFile();  ///< removes the temporary file if commit() was not called (never throws)
    AtomicFile(const AtomicFile&) = delete;
    AtomicFile& operator=(const AtomicFile&) = delete;

    const std::string& tempPath() const { return _temp; }
    const std::string& finalPath() const { return _final; }
    /// fsync the temporary file, rename it to the final path, fsync the directory.
    /// Throws Error(io) naming the file on failure.
    void commit();

private:
    std::string _final, _temp;
    bool _committed = false;
};

/// SHA-256 of a file's bytes as lowercase hex (for checksums recorded when outputs commit).
std::string sha256File(const std::string& path);
/// SHA-256 of a byte string as lowercase hex (config hashes, skymap hashes).
std::string sha256Hex(const std::string& bytes);

}  // namespace drp
