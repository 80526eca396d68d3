// Batch scripts for `drp submit`: site configuration, resources, and the pure renderer.
//
// One script per job group (see chunks.h). A chunked group becomes a job array whose task N runs
// the engine on chunk N's select file; the other groups are single jobs. Inside, the run command
// is started by srun (--mpi=pmix; Debian's Open MPI has PMIx only) or mpirun (which reads the
// Slurm allocation). Walltime: Slurm sends SIGUSR1 to the batch shell signalSeconds before the
// limit (--signal=B:USR1@T); the script forwards it to the launcher, which passes it to the
// ranks; the engine stops taking tasks and exits 75 (resumable, jobs/engine.h), and the script
// requeues its own job (--requeue), so the next attempt resumes from the journal. Logs of all
// attempts of a job go to one file (--open-mode=append).
//
// Everything is a pure function of its inputs: the --dry-run output is stable and covered by
// golden files (slurm/tests/golden). All values are validated or shell-quoted (shell.h).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace drp::slurm {

enum class Launcher { Srun, Mpirun };
const char* toString(Launcher l);
Launcher parseLauncher(const std::string& text);  ///< "srun" | "mpirun"; throws

/// Resources and site settings applied to every job of a submission. Read from a site file
/// (readSiteConfig) and overridden by command-line options.
struct SiteConfig {
    std::string partition, account, qos;  ///< empty: the cluster's default
    std::int64_t timeSeconds = 3600;      ///< time limit per job (each attempt)
    int nodes = 1;
    int ranksPerNode = 2;    ///< MPI ranks per node (rank 0 coordinates, the others work)
    std::string mem;         ///< memory per node (sbatch --mem), empty: default
    std::string constraint;  ///< node features (sbatch --constraint), empty: none
    Launcher launcher = Launcher::Srun;
    std::string mpi = "pmix";                              ///< srun --mpi plugin
    std::vector<std::string> launcherArgs;                 ///< extra srun/mpirun arguments
    std::vector<std::string> modules;                      ///< `module load` these first
    std::vector<std::pair<std::string, std::string>> env;  ///< exported NAME=value
    std::vector<std::string> sbatchOptions;                ///< extra "#SBATCH --x=y" lines
    /// SIGUSR1 this many seconds before the time limit. Must leave the engine time to stop:
    /// with StopPolicy::Kill it exits within seconds of the signal (docs/engine.md), but Slurm
    /// checks time limits only every 30 s, so the warning can come up to 30 s late.
    int signalSeconds = 120;
    int maxRequeues = 3;  ///< self-requeues after an interruption (SLURM_RESTART_COUNT)
    std::string jobNamePrefix = "drp";
    /// Checks every field (shell.h rules) and that signalSeconds < timeSeconds. Throws
    /// std::invalid_argument naming the setting.
    void validate() const;
};

/// Applies one "key = value" setting (the site-file keys, which are also the long option names
/// of drp submit: partition, account, qos, time, nodes, ranks-per-node, mem, constraint,
/// launcher, mpi, launcher-arg, module, env (NAME=value), sbatch, signal-seconds, max-requeues,
/// job-name-prefix). Repeatable keys append. Throws std::invalid_argument for unknown keys.
void applySetting(SiteConfig& site, const std::string& key, const std::string& value);
/// Reads a site file: "key = value" lines, '#' comments, blank lines; errors name file:line.
/// Settings apply on top of `base`; the result is validated unless `validate` is false (when
/// command-line options still follow).
SiteConfig readSiteConfig(const std::string& path, SiteConfig base = {}, bool validate = true);

/// Everything the renderer needs for one job.
struct JobScript {
    std::string program = "drp";  ///< for the hints in the header comment
    std::string submission;       ///< e.g. "sub-0001"
    std::string group;            ///< job group name
    std::vector<std::string> stages;
    std::string repo;               ///< absolute repository path
    std::string logDir;             ///< absolute; one log per job or array task
    std::string chunkDir;           ///< absolute directory of the chunk select files
    int chunkCount = 1;             ///< chunks of the group in its plan
    std::vector<int> arrayIndices;  ///< chunks this job runs; empty: a single job, no array
    std::size_t units = 0, tasks = 0;
    double cost = 0;
    std::vector<std::string> command;  ///< the run command (argv), literal
    std::string selectOption = "--select-file";
};

/// "0-3", "1,4,7-9": Slurm's --array syntax for sorted, distinct indices.
std::string formatArrayIndices(const std::vector<int>& indices);

/// The batch script text. Throws std::invalid_argument for an invalid site config or a path
/// that cannot appear on an #SBATCH line (see checkDirectivePath).
std::string renderScript(const JobScript& job, const SiteConfig& site);

/// Paths on #SBATCH lines are not shell-parsed: they must be absolute and made of
/// [A-Za-z0-9_./+,@:=-] ('%' is Slurm's pattern character).
void checkDirectivePath(const std::string& what, const std::string& path);

}  // namespace drp::slurm
