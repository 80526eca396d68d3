// Splitting a group of pipeline stages into chunks for a Slurm job array, and the chunk-list
// ("select") files that tell one array task which tasks to run.
//
// A *job group* is a run of consecutive pipeline stages submitted together (e.g. the per-patch
// stages coadd, deblend, multifit). Its tasks are split into *units*: the connected components
// of the dependency graph restricted to the group (a patch's coadds in every band, its deblend
// and its multifit form one unit, because each depends on the previous inside the group). A
// unit never straddles two chunks, so each chunk can run on its own once the earlier groups are
// done. Units are assigned to chunks by the LPT rule (largest predicted cost first, each to the
// least-loaded chunk; Graham 1969, within 4/3 of the optimal makespan), using the planners'
// predicted costs (the engine's cost model). Ties are broken by task order, so the chunking is a
// pure function of the plan.
//
// Select file: plain text, one task key "STAGE:DATAID" per line (the syntax of
// `drp status --task`), '#' comments and blank lines ignored. The runner given
// `--select-file FILE` runs exactly the listed tasks (whose dependencies must be done already or
// listed too).
#pragma once

#include <cstddef>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "drp/jobs/journal.h"
#include "drp/jobs/pipeline.h"
#include "drp/jobs/task_graph.h"

namespace drp::slurm {

/// How many chunks a chunked group gets.
struct ChunkingOptions {
    /// Fixed number of chunks (0: from chunkCost).
    int chunks = 0;
    /// Target predicted cost per chunk, in the pipeline's cost units (0 with chunks == 0: one
    /// chunk, i.e. a single job — the right thing for a small release).
    double chunkCost = 0;
    /// Upper bound on the array size (sites cap MaxArraySize; 1001 by default in Slurm).
    int maxChunks = 1000;
    /// Throws std::invalid_argument naming the field.
    void validate() const;
};

/// One job group: consecutive stages of the pipeline.
struct JobGroupSpec {
    std::string name;                 ///< [A-Za-z0-9_.-]; names the script, logs, chunk dir
    std::vector<std::string> stages;  ///< in pipeline order
    bool chunked = false;             ///< job array over chunks (else one job)
};

/// One chunk: its index, predicted cost and task keys (sorted).
struct Chunk {
    int index = 0;
    double cost = 0;
    std::vector<jobs::TaskKey> tasks;
};

/// The chunks of one group (a single chunk with every task when the group is not chunked).
struct GroupPlan {
    JobGroupSpec spec;
    std::vector<Chunk> chunks;
    std::size_t units = 0;  ///< connected components found
    double cost = 0;        ///< total predicted cost
};

/// Checks that the groups cover stages of `graph` in pipeline order without overlap, and that no
/// task depends on a task of a later group. Stages in no group are allowed (the user may submit a
/// part of the pipeline) but then must be done before the jobs run. Throws std::invalid_argument.
void validateGroups(const jobs::TaskGraph& graph, const std::vector<JobGroupSpec>& groups);

/// Chunks every group (see the file comment). Validates the groups first.
std::vector<GroupPlan> planChunks(const jobs::TaskGraph& graph,
                                  const std::vector<JobGroupSpec>& groups,
                                  const ChunkingOptions& options);

/// Parses "name=stage,stage[:array];name=..." (':array' marks a chunked group), e.g.
/// "visit=characterize,astrometry:array;cal=cal.gather,cal;patch=coadd,deblend:array".
std::vector<JobGroupSpec> parseGroups(const std::string& text);
/// The inverse of parseGroups.
std::string formatGroups(const std::vector<JobGroupSpec>& groups);

/// Text of a select file for `tasks` (a header comment, then one key per line).
std::string selectFileText(const std::vector<jobs::TaskKey>& tasks, const std::string& comment);
/// Reads a select file; throws std::invalid_argument naming file and line for a bad line and
/// std::runtime_error if it cannot be read.
std::set<jobs::TaskKey> readSelectFile(const std::string& path);
/// Predicate for jobs::EngineOptions::select: true for the tasks listed in the file.
std::function<bool(const jobs::TaskKey&)> selectFromFile(const std::string& path);

/// The tasks upstream of `selected` (through required and optional dependencies, not crossing
/// done or degraded tasks) whose latest journal state is anything but done/degraded (failed,
/// blocked, interrupted, lost, superseded, ...), sorted. A chunk's run selects them too: the
/// engine treats an unselected dependency as "not yet run", so without them a task whose input
/// failed in an earlier job (e.g. the release, whose per-patch inputs are optional) would wait
/// forever instead of running without that input as it does within one run. They are retried,
/// as any `drp run` retries failed tasks; tasks that never ran stay unselected (the afterok chain
/// guarantees that earlier groups ran).
std::vector<jobs::TaskKey> unfinishedUpstream(const jobs::TaskGraph& graph,
                                              const jobs::History& history,
                                              const std::set<jobs::TaskKey>& selected);

/// "chunk-0007.txt": the name of chunk i's select file inside its group directory.
std::string chunkFileName(int index);

}  // namespace drp::slurm
