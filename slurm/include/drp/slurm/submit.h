// Submitting a pipeline to Slurm as a chain of jobs, and following it.
//
// A submission turns job groups (chunks.h) into batch scripts (script.h) and submits them in
// pipeline order, each group's job depending on the previous groups' jobs with
// --dependency=afterok (on an array job this waits for every array task). The cluster must set
// DependencyParameters=kill_invalid_depend, else a job whose dependency failed pends forever.
//
// Everything lands in the repository:
//   slurm/<submission>/<group>.sbatch            the scripts (readable, rerunnable by hand)
//   slurm/<submission>/<group>/chunk-NNNN.txt    the select file of each chunk
//   slurm/<submission>/logs/<group>-<job>.out    one log per job or array task, all attempts
//   runs/slurm/submissions.jsonl                 one JSON line per event:
//     {"event":"plan","submission":S,"time":T,"program":P,"command":[argv],"settings":[[k,v]..],
//      "groups":[{"name":G,"stages":[..],"chunked":b,"chunks":n,"chunk_dir":rel}]}
//     {"event":"job","submission":S,"plan":S0,"time":T,"group":G,"job":"123","array":b,
//      "chunks":[i..],"script":rel,"after":["122"]}
//     {"event":"cancel","time":T,"jobs":["123",..]}
// (a subdirectory of runs/, so the engine's journal reader does not take it for a run journal).
//
// A chunk's truth is the engine journal: it is complete when every task in its select file is
// done (or degraded). Slurm's view of its job (squeue, then sacct when accounting exists, then
// the jobcomp/filetxt log) tells whether it is still queued or running. --rerun-failed resubmits
// the incomplete chunks whose jobs are no longer active (same chunk files, same array indices),
// chained again with afterok.
#pragma once

#include <cstddef>
#include <functional>
#include <iosfwd>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "drp/jobs/journal.h"
#include "drp/jobs/task_graph.h"
#include "drp/slurm/chunks.h"
#include "drp/slurm/process.h"
#include "drp/slurm/script.h"

namespace drp::slurm {

/// A submission request (everything except the pipeline's plan).
struct SubmitRequest {
    std::string repo;                  ///< absolute repository path
    std::string program = "drp";       ///< name in hints and comments
    std::vector<std::string> command;  ///< the run command (argv); --stages etc. are appended
    std::vector<JobGroupSpec> groups;
    ChunkingOptions chunking;
    SiteConfig site;
};

struct PlannedFile {
    std::string path;  ///< absolute
    std::string text;
};

struct PlannedJob {
    JobScript job;
    std::string scriptPath;  ///< absolute
    std::string scriptText;
    std::vector<int> chunks;         ///< chunk indices this job runs
    std::vector<std::size_t> after;  ///< indices of earlier jobs of this plan (afterok)
};

struct SubmissionPlan {
    std::string id;      ///< "sub-0001"
    std::string planId;  ///< the plan whose chunks these are (== id unless a rerun)
    std::string repo;
    std::vector<GroupPlan> groups;        ///< fresh plans only
    std::vector<PlannedFile> chunkFiles;  ///< fresh plans only
    std::vector<PlannedJob> jobs;
    std::vector<std::string> command;
    std::vector<std::pair<std::string, std::string>> settings;  ///< the site config used
    /// The sbatch chain as a shell snippet (what executeSubmission runs).
    std::string commandsText() const;
    /// Stable --dry-run text: summary, sbatch chain, then every script.
    std::string dryRunText() const;
};

/// runs/slurm/submissions.jsonl of a repository.
std::string submissionsPath(const std::string& repo);
/// "sub-NNNN", one more than the highest recorded (sub-0001 for the first).
std::string nextSubmissionId(const std::string& repo);

/// The settings of a site config as "key = value" pairs that applySetting reads back.
std::vector<std::pair<std::string, std::string>> toSettings(const SiteConfig& site);

/// Plans a fresh submission (pure: no files, no Slurm).
SubmissionPlan planSubmission(const jobs::TaskGraph& graph, const SubmitRequest& request,
                              const std::string& id);

/// What the submissions journal says.
struct SubmissionLog {
    struct Group {
        std::string name;
        std::vector<std::string> stages;
        bool chunked = false;
        int chunks = 0;
        std::string chunkDir;  ///< relative to the repository
    };
    struct Job {
        std::string submission, plan, group, jobId, time, script;
        bool array = false;
        std::vector<int> chunks;
    };
    std::string latestPlan;  ///< id of the latest fresh submission ("" if none)
    std::string program;
    std::vector<std::string> command;                           ///< of the latest plan
    std::vector<std::pair<std::string, std::string>> settings;  ///< of the latest plan
    std::vector<Group> groups;                                  ///< of the latest plan
    std::vector<Job> jobs;                                      ///< every job, in order
    std::vector<std::string> submissions;                       ///< every id, in order
    std::size_t badLines = 0;
    /// Slurm id of the latest job of (group, chunk) in the latest plan: "123_4" for an array
    /// task, "123" for a single job; "" if never submitted.
    std::string latestSlurmId(const std::string& group, int chunk) const;
};
SubmissionLog readSubmissions(const std::string& repo);

/// Writes the chunk files and scripts (atomically), submits the jobs in order with sbatch
/// (afterok on the job ids of `after`), and appends the plan and job events. Returns the job ids
/// in plan order. On an sbatch failure throws std::runtime_error naming the job, after recording
/// the jobs already submitted (their ids are in the message: cancel them or rerun the rest).
std::vector<std::string> executeSubmission(const SubmissionPlan& plan, CommandRunner& runner,
                                           std::ostream& log);

/// Slurm's view of one job or array task.
struct JobState {
    std::string state;   ///< PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT, ...
    std::string reason;  ///< squeue's reason (pending/failed), if any
    std::string exitCode;
    std::string source;  ///< "squeue", "sacct" or "jobcomp"
};
/// True for states in which the job may still run (pending, running, requeued, suspended, ...).
bool isActive(const std::string& state);

/// States of the given jobs (base ids; array tasks come back as "ID_N"), from squeue, then
/// sacct if accounting storage is configured, then the jobcomp/filetxt file. Problems reaching
/// Slurm are appended to `notes` rather than thrown.
std::map<std::string, JobState> queryJobStates(CommandRunner& runner,
                                               const std::vector<std::string>& jobIds,
                                               std::vector<std::string>* notes = nullptr);
/// Parsers for the three sources (exposed for tests).
std::map<std::string, JobState> parseSqueue(const std::string& text);
std::map<std::string, JobState> parseSacct(const std::string& text);
std::map<std::string, JobState> parseJobComp(const std::string& text);
/// "Key = Value" lines of `scontrol show config`.
std::map<std::string, std::string> parseShowConfig(const std::string& text);

/// One chunk of the latest plan, with its engine and Slurm state.
struct ChunkStatus {
    std::string group;
    int chunk = 0;
    bool array = false;
    std::string slurmId;  ///< "" if never submitted
    JobState slurm;
    std::size_t tasks = 0, done = 0;  ///< done includes degraded
    bool complete() const { return tasks == done; }
};
/// Reads each chunk's select file and folds it with the journals and `states`.
std::vector<ChunkStatus> chunkStatus(const std::string& repo, const SubmissionLog& log,
                                     const jobs::History& history,
                                     const std::map<std::string, JobState>& states);
/// Every job id (base ids) of the latest plan's latest jobs.
std::vector<std::string> latestJobIds(const SubmissionLog& log);
/// Table of chunk statuses for `drp status`.
std::string chunkStatusText(const std::vector<ChunkStatus>& chunks, const std::string& planId);

/// Plans a resubmission of the incomplete chunks of the latest plan (their select files and
/// array indices are reused; site settings: `site`). Throws std::runtime_error if a job of the
/// plan is still active (wait, or cancel first). A plan without jobs means nothing to rerun.
SubmissionPlan planRerun(const SubmissionLog& log, const std::vector<ChunkStatus>& chunks,
                         const std::string& repo, const SiteConfig& site, const std::string& id);

}  // namespace drp::slurm
