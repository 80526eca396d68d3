// The submit / cancel / status commands behind `drp submit`, `drp cancel` and the Slurm section
// of `drp status` (drp/src/commands), kept here so that they stay free of the astronomy.
//
// Option precedence for the site settings: built-in defaults (or, for --rerun-failed, the
// settings recorded with the submission being resubmitted) < --site FILE < command-line options.
#pragma once

#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include <boost/program_options.hpp>

#include "drp/jobs/json.h"
#include "drp/jobs/task_graph.h"
#include "drp/slurm/chunks.h"
#include "drp/slurm/process.h"
#include "drp/slurm/script.h"

namespace drp::slurm {

/// Adds --site, the resource options (--partition --account --qos --time --nodes
/// --ranks-per-node --mem --constraint), --launcher --mpi --launcher-arg --module --env --sbatch
/// --signal-seconds --max-requeues --job-name-prefix, the chunking options (--chunks
/// --chunk-cost --max-chunks), --dry-run and --rerun-failed. None has a stored default, so that
/// "given on the command line" can override the site file.
void addSubmitOptions(boost::program_options::options_description& options,
                      const ChunkingOptions& chunkingDefaults);

/// base < --site file < command-line options; validated. Throws std::invalid_argument.
SiteConfig resolveSite(const boost::program_options::variables_map& vm, SiteConfig base);
ChunkingOptions resolveChunking(const boost::program_options::variables_map& vm,
                                ChunkingOptions defaults);

/// What a submitting program provides.
struct SubmitContext {
    std::string repo;  ///< as given (made absolute)
    std::string program = "drp";
    std::vector<std::string> command;  ///< the run command (argv) for the jobs
    std::vector<JobGroupSpec> groups;
    ChunkingOptions chunkingDefaults;
    /// Builds the task graph (only for a fresh submission: --rerun-failed reuses chunk files).
    std::function<jobs::TaskGraph()> plan;
};

/// `submit`: plans and submits (or prints, --dry-run); --rerun-failed resubmits the incomplete
/// chunks of the latest submission. Returns the exit code (0 ok).
int submitCommand(const boost::program_options::variables_map& vm, const SubmitContext& context,
                  CommandRunner& runner, std::ostream& out);

/// `cancel`: scancel every queued or running job of the latest submission (and its reruns),
/// recorded in the submissions journal. Returns 0 (also when nothing was active).
int cancelCommand(const std::string& repo, CommandRunner& runner, std::ostream& out);

/// The Slurm part of `status`: per chunk of the latest submission its job, Slurm state and
/// tasks done; "" when the repository has no submission.
std::string statusSection(const std::string& repo, CommandRunner& runner);
/// The same as JSON: {"submission":S,"chunks":[{"group","chunk","job","state","reason",
/// "exit_code","source","tasks","done"}],"incomplete":n,"rerunnable":n,"notes":[..]}; null when
/// the repository has no submission.
jobs::Json statusJson(const std::string& repo, CommandRunner& runner);

}  // namespace drp::slurm
