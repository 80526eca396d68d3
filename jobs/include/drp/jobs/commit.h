// Committing task outputs: fsync, checksum, rename, fsync the directory; and verifying committed
// outputs when a run resumes. A task is done exactly when its outputs are committed *and* the
// done event naming their checksums is in the journal; on resume, a done record whose files are
// missing or whose checksums differ is not done (the task runs again).
#pragma once

#include <string>
#include <vector>

#include "drp/jobs/journal.h"

namespace drp::jobs {

/// SHA-256 of a file as lowercase hex (OpenSSL); throws TaskError("io") naming the file.
std::string sha256OfFile(const std::string& path, std::uint64_t* bytes = nullptr);

/// Temporary name for an output of one attempt: "<final>.drp-tmp-<host>-<pid>". Unique per
/// process, so concurrent runs never write the same temporary file.
std::string tempOutputPath(const std::string& finalPath);

/// Creates the parent directory of `finalPath` and removes stale temporary files of this output
/// left by killed attempts: the engine's ("<final>.drp-tmp-*") and those of the pipeline's own
/// writers matching `patterns` ("{name}" = the output's file name; see
/// EngineOptions::temporaryPatterns).
void prepareOutput(const std::string& finalPath, const std::vector<std::string>& patterns = {});

/// Commits one output: if `tempPath` exists it is fsync'ed and renamed over `finalPath`;
/// otherwise `finalPath` must exist (the task committed it itself). Returns the record with the
/// path relative to `repo`. Throws TaskError("missing_output") if neither exists, ("io") on
/// a system error.
OutputRecord commitOutput(const std::string& repo, const std::string& tempPath,
                          const std::string& finalPath);

enum class VerifyMode {
    Checksum,  ///< re-hash every output (safe; reads every byte)
    Size,      ///< existence and byte size only (fast for huge repositories)
};

/// Empty string when every recorded output exists and matches; otherwise why not.
std::string verifyOutputs(const std::string& repo, const std::vector<OutputRecord>& outputs,
                          VerifyMode mode);

}  // namespace drp::jobs
