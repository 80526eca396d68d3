// The run journal: append-only JSON lines, one file per run, runs/<run-id>.jsonl under the
// repository. Only a run's coordinator writes its journal, so concurrent runs on one repository
// never write the same file and need no locks or database. Every line is one event object:
//
//   {"event":"run_start","run":ID,"time":ISO-8601,"command":...,"config_hash":...,
//    "version":...,"ranks":N,"host":...,"pid":...,"isolation":"fork","plan":{stage:count}}
//   {"event":"task","run":ID,"stage":S,"id":D,"state":"running","attempt":A,"rank":R,"host":H}
//   {"event":"task",...,"state":"done"|"degraded"|"failed"|"interrupted"|"lost",
//    "wall":s,"cpu":s,"maxrss_kb":k,"class":C,"error":text,"flags":[...],
//    "outputs":[{"path":rel,"sha256":hex,"bytes":n}]}
//   {"event":"task",...,"state":"blocked","blocked_by":"stage:id"}
//   {"event":"supersede","run":ID,"stage":S,"id":D,"reason":...}   (rerun invalidation)
//   {"event":"run_end","run":ID,"status":"complete"|"failed"|"interrupted","exit_code":E,...}
//
// Lines are written with write(2) as soon as an event happens (so a SIGKILLed process loses
// nothing the kernel has) and fsync'ed at the start, at most every EngineOptions::fsyncSeconds,
// and at the end (so a node loss loses at most that interval, whose tasks are simply redone).
// Readers tolerate a torn last line. Journals are never edited: invalidation is a new event.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "drp/jobs/json.h"
#include "drp/jobs/pipeline.h"

namespace drp::jobs {

class JournalWriter final {
  public:
    /// Creates `path` exclusively (fails if it exists: run ids are unique) and its directory.
    explicit JournalWriter(const std::string& path);
    ~JournalWriter();  ///< flushes and fsyncs; never throws
    JournalWriter(const JournalWriter&) = delete;
    JournalWriter& operator=(const JournalWriter&) = delete;

    /// Queues one event; the text is written by flush().
    void append(const Json& event);
    /// write(2)s every queued line (survives a SIGKILL of this process).
    void flush();
    /// flush() + fsync (survives a node loss).
    void sync();
    const std::string& path() const { return _path; }

  private:
    std::string _path;
    int _fd = -1;
    std::string _pending;
};

/// One journal read back. Lines that do not parse are skipped: a torn final line (the writer
/// was killed mid-write) silently, any other bad line counted in `badLines`.
struct JournalFile {
    std::string path;
    std::string runId;
    std::string startTime;  ///< ISO time of run_start ("" if missing)
    std::vector<Json> events;
    std::size_t badLines = 0;
    bool tornTail = false;
};
JournalFile readJournal(const std::string& path);
/// All runs/<id>.jsonl of a repository, ordered by start time then run id (the fold order).
std::vector<JournalFile> readJournals(const std::string& repo);
std::string journalDir(const std::string& repo);

/// A committed output as recorded in a done event.
struct OutputRecord {
    std::string path;  ///< relative to the repository root
    std::string sha256;
    std::uint64_t bytes = 0;
};

/// JSON forms of output records and string lists as they appear in events and messages.
Json outputsToJson(const std::vector<OutputRecord>& outputs);
std::vector<OutputRecord> outputsFromJson(const Json* array);  ///< null or non-array: empty
Json stringsToJson(const std::vector<std::string>& strings);
std::vector<std::string> stringsFromJson(const Json* array);  ///< non-strings are skipped

/// Latest known fact about one task after folding all journals.
struct TaskRecord {
    std::string state;  ///< done, degraded, failed, blocked, running, interrupted, lost, superseded
    std::string run;
    int attempt = 0;
    std::string errorClass, error, blockedBy, host;
    std::string message;  ///< what a done/degraded task said (why it is degraded)
    int rank = -1;
    double wall = 0, cpu = 0;
    double maxRssKb = 0;
    std::vector<std::string> flags;
    std::vector<OutputRecord> outputs;  ///< of a done/degraded record
    /// Inputs recorded with a done/degraded record: the dependency keys, or for tasks with many
    /// dependencies (a global solve) only the stages they come from (conservative).
    std::vector<TaskKey> inputs;
    std::vector<std::string> inputStages;
};

struct RunInfo {
    std::string runId, startTime, command, configHash, version, host, status;
    int ranks = 0, exitCode = -1;
    long pid = 0;
    bool ended = false;
    std::map<std::string, std::int64_t> plan;  ///< stage -> planned task count
};

/// The folded view of every journal of a repository.
struct History {
    std::map<TaskKey, TaskRecord> tasks;
    std::vector<RunInfo> runs;  ///< fold order
    std::size_t badLines = 0;
};
History foldJournals(const std::vector<JournalFile>& journals);
inline History foldJournals(const std::string& repo) {
    return foldJournals(readJournals(repo));
}

/// Generic release-manager status view (astronomy-free): per stage the counts of tasks by state
/// (done, degraded, failed by class, blocked, running, interrupted/lost, not started = planned
/// minus known) and of degraded tasks by flag, plus every failed task with its error and every
/// degraded task with its flags and message.
struct StageStatus {
    std::string stage;
    std::int64_t planned = 0;  ///< from the latest run_start that planned this stage
    std::map<std::string, std::int64_t> byState;
    std::map<std::string, std::int64_t> failedByClass;
    /// Degraded tasks per flag (a task with two flags counts under both; "unflagged" if none).
    std::map<std::string, std::int64_t> degradedByFlag;
};
struct StatusView {
    std::vector<StageStatus> stages;  ///< in first-seen order
    struct Failure {
        TaskKey key;
        std::string state, errorClass, error, run, blockedBy;
        int attempt = 0;
    };
    std::vector<Failure> failures;  ///< failed, lost and interrupted tasks
    struct Degraded {
        TaskKey key;
        std::vector<std::string> flags;
        std::string message, run;
    };
    std::vector<Degraded> degraded;  ///< degraded tasks, in key order
    std::vector<RunInfo> runs;
    std::size_t blocked = 0;
    std::size_t badLines = 0;
    Json toJson() const;
    /// The table; failed tasks in full, degraded tasks at most `degradedPerFlag` per flag (the
    /// JSON form lists them all).
    std::string toText(std::size_t degradedPerFlag = 10) const;
};
StatusView makeStatusView(const History& history);

/// Task states per GROUP of data ids: the tasks whose id ("k=v,k=v,...") has every one of
/// `fields` (e.g. tract and patch: every stage of a patch, any band), grouped by those fields'
/// values; per stage the tasks by state (a running task of a run that is gone: lost). Groups are
/// ordered by their values, numbers as numbers. Tasks not yet in any journal are not counted.
struct GroupStatus {
    std::vector<std::string> values;                                     ///< of `fields`, in order
    std::map<std::string, std::map<std::string, std::int64_t>> byStage;  ///< stage -> state -> n
    /// Whether every task of the group is done.
    bool allDone() const;
};
std::vector<GroupStatus> groupStatus(const History& history,
                                     const std::vector<std::string>& fields);

/// Done/degraded tasks that depend, directly or transitively through the inputs recorded in
/// their done events, on any of `roots`; done roots included. Sorted. This lets a rerun be
/// planned from the journals alone, without the pipeline definition.
std::vector<TaskKey> recordedDownstream(const History& history, const std::vector<TaskKey>& roots);

/// Appends a new run journal (run_start with `command`, one supersede event per key, run_end)
/// so that the next run redoes those tasks. Old journals are never edited. Returns its path.
std::string writeSupersedeJournal(const std::string& repo, const std::vector<TaskKey>& keys,
                                  const std::string& command, const std::string& reason);

/// "STAGE:DATAID" -> TaskKey (split at the first ':'); throws std::invalid_argument.
TaskKey parseTaskKey(const std::string& text);
/// The fields of a data id "k=v,k=v,..." (items without '=' are skipped: journals are read as
/// they are; pipeline::parseDataId is the strict form for ids the pipeline makes).
std::map<std::string, std::string> dataIdFields(const std::string& dataId);

/// "YYYY-MM-DDTHH:MM:SS.uuuuuuZ" of the current time (UTC).
std::string isoNow();
/// New unique run id: <UTC time>-<host>-<pid> (sortable, unique per process).
std::string makeRunId();

}  // namespace drp::jobs
