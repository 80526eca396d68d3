// In-patch checkpointing of the multifit stage (docs/multifit.md, "Checkpoints").
//
// A patch is measured one blend group at a time; a long patch killed by a time limit, a node
// loss or a signal would otherwise lose all its work. After each group the stage appends that
// group's result rows to REPO/patch/<tract>/<patch>/multifit.ckpt as one record:
//
//   record = "MFG1" | group index (u64) | rows (u32) | columns (u32) | rows×columns f64 |
//            FNV-1a 64 of everything before it in the record (u64)          (little-endian)
//
// written with one write() and fsync'd. A record is valid only whole and with its checksum, so
// an append interrupted half-way (SIGKILL, full disk) leaves a torn tail that the reader
// detects and cuts off: appending is atomic in effect. The file opens with a header holding a
// key — a hash of everything the rows depend on (config, deblender catalog, input epochs and
// their zero points, column layout) followed by the software that computed them (versionLine():
// version and git commit), so that a resumed patch never mixes rows of two code versions; a
// checkpoint with another key is stale and is discarded. `drp rerun` of a multifit task deletes
// its checkpoint (discardMultifitCheckpoint): a rerun recomputes every group.
// Values are stored as raw IEEE-754 doubles (integers < 2^53 exactly), so rows read back are
// bit-identical to the rows computed, and a resumed patch writes a byte-identical catalog.
// The file is removed once the stage's output is committed.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "drp/drp/version.h"

namespace drp::pipeline {

using CheckpointRows = std::vector<std::vector<double>>;

class MultifitCheckpoint final {
  public:
    /// Opens (or creates) the checkpoint at `path` for results with key `key` and `nColumns`
    /// values per row, computed by `software` (default: this build's versionLine()). Valid
    /// records of a file with the same key and software are loaded; a torn tail is truncated;
    /// a file with another key or software, or unreadable, is replaced by an empty one.
    MultifitCheckpoint(std::string path, std::string key, std::size_t nColumns,
                       const std::string& software = versionLine());

    /// Groups 0..doneGroups()-1 are stored (records are consecutive from group 0).
    std::size_t doneGroups() const { return _groups.size(); }
    const CheckpointRows& group(std::size_t g) const { return _groups.at(g); }
    /// Appends group doneGroups()'s rows (each of nColumns values) and makes them durable.
    void append(const CheckpointRows& rows);
    /// Deletes the file (after the stage's output is committed).
    void remove();
    const std::string& path() const { return _path; }

  private:
    std::string _path, _key;
    std::size_t _nColumns;
    std::vector<CheckpointRows> _groups;
};

/// Runs `fitGroup(g)` for groups 0..nGroups-1, resuming from the checkpoint: groups already in
/// it are read back instead of recomputed, each new group is appended as soon as it is done.
/// `stopAfter` (>= 0) makes it throw Error("interrupted") after that many groups have been
/// computed in this call — the test hook that stands in for a kill.
/// Deletes the multifit checkpoint of the task with data id `dataId` ("tract=T,patch=P") in the
/// repository at `repoRoot`, if there is one (drp rerun: the rerun task recomputes every
/// group). Returns whether a file was deleted; throws Error(io) naming the file if it exists
/// but cannot be deleted.
bool discardMultifitCheckpoint(const std::string& repoRoot, const std::string& dataId);

std::vector<CheckpointRows> runGroupsCheckpointed(
    MultifitCheckpoint& checkpoint, std::size_t nGroups,
    const std::function<CheckpointRows(std::size_t)>& fitGroup, long stopAfter = -1);

}  // namespace drp::pipeline
