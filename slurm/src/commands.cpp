#include "drp/slurm/commands.h"

#include <filesystem>
#include <fstream>
#include <ostream>
#include <set>
#include <sstream>
#include <stdexcept>

#include "drp/jobs/journal.h"
#include "drp/slurm/shell.h"
#include "drp/slurm/submit.h"

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace drp::slurm {
namespace {

// Site settings that are also command-line options (single-valued, then repeatable).
const char* const kSingle[] = {
    "partition",  "account",  "qos", "time",           "nodes",        "ranks-per-node", "mem",
    "constraint", "launcher", "mpi", "signal-seconds", "max-requeues", "job-name-prefix"};
const char* const kRepeated[] = {"launcher-arg", "module", "env", "sbatch"};

std::string absolute(const std::string& repo) {
    return fs::weakly_canonical(fs::absolute(repo)).string();
}

}  // namespace

void addSubmitOptions(po::options_description& o, const ChunkingOptions& d) {
    const SiteConfig s;
    auto str = [] { return po::value<std::string>(); };
    auto many = [] { return po::value<std::vector<std::string>>()->composing(); };
    o.add_options()  //
        ("site", str()->value_name("FILE"),
         "site settings: 'key = value' lines with the option names below (module, env, sbatch "
         "repeatable); command-line options override them")               //
        ("partition", str(), "Slurm partition (default: the cluster's)")  //
        ("account", str(), "Slurm account")                               //
        ("qos", str(), "Slurm QOS")                                       //
        ("time", str(),
         ("time limit per job attempt, Slurm syntax (default " + formatTimeLimit(s.timeSeconds) +
          ")")
             .c_str())                                 //
        ("nodes", str(), "nodes per job (default 1)")  //
        ("ranks-per-node", str(),
         "MPI ranks per node (default 2; rank 0 coordinates, the others work)")    //
        ("mem", str(), "memory per node, e.g. 64G (default: the cluster's)")       //
        ("constraint", str(), "node feature constraint")                           //
        ("launcher", str(), "srun (default) or mpirun")                            //
        ("mpi", str(), "srun --mpi plugin (default pmix)")                         //
        ("launcher-arg", many(), "extra srun/mpirun argument (repeatable)")        //
        ("module", many(), "environment module to load (repeatable)")              //
        ("env", many(), "NAME=value to export in the job (repeatable)")            //
        ("sbatch", many(), "extra #SBATCH option, e.g. --exclusive (repeatable)")  //
        ("signal-seconds", str(),
         ("SIGUSR1 this long before the time limit so the engine stops cleanly (default " +
          std::to_string(s.signalSeconds) + ")")
             .c_str())  //
        ("max-requeues", str(),
         ("self-requeues of an interrupted job (default " + std::to_string(s.maxRequeues) + ")")
             .c_str())                                                                     //
        ("job-name-prefix", str(), "Slurm job names are PREFIX-GROUP (default drp)")       //
        ("chunks", po::value<int>(), "chunks per job array (default: from --chunk-cost)")  //
        ("chunk-cost", po::value<double>(),
         ("target predicted cost per array chunk, in the pipeline's cost units (default " +
          std::to_string(d.chunkCost) + "; 0: one job per group)")
             .c_str())  //
        ("max-chunks", po::value<int>(),
         ("largest job array (default " + std::to_string(d.maxChunks) + ")").c_str())  //
        ("dry-run", po::bool_switch(),
         "print the plan and the scripts; write no script and submit nothing (an unknown "
         "repository is still ingested, as drp run would)")  //
        ("rerun-failed", po::bool_switch(),
         "resubmit the incomplete chunks of the latest submission (chunk files reused)");
}

SiteConfig resolveSite(const po::variables_map& vm, SiteConfig base) {
    if (vm.count("site")) base = readSiteConfig(vm["site"].as<std::string>(), base, false);
    for (const char* k : kSingle)
        if (vm.count(k)) applySetting(base, k, vm[k].as<std::string>());
    for (const char* k : kRepeated)
        if (vm.count(k))
            for (const auto& v : vm[k].as<std::vector<std::string>>()) applySetting(base, k, v);
    base.validate();
    return base;
}

ChunkingOptions resolveChunking(const po::variables_map& vm, ChunkingOptions c) {
    if (vm.count("chunks")) c.chunks = vm["chunks"].as<int>();
    if (vm.count("chunk-cost")) c.chunkCost = vm["chunk-cost"].as<double>();
    if (vm.count("max-chunks")) c.maxChunks = vm["max-chunks"].as<int>();
    c.validate();
    return c;
}

int submitCommand(const po::variables_map& vm, const SubmitContext& ctx, CommandRunner& runner,
                  std::ostream& out) {
    const std::string repo = absolute(ctx.repo);
    if (!fs::is_directory(repo)) throw std::invalid_argument("no repository at " + repo);
    const bool dryRun = vm.count("dry-run") && vm["dry-run"].as<bool>();
    const std::string id = nextSubmissionId(repo);
    SubmissionPlan plan;
    if (vm.count("rerun-failed") && vm["rerun-failed"].as<bool>()) {
        const SubmissionLog log = readSubmissions(repo);
        if (log.latestPlan.empty())
            throw std::invalid_argument("--rerun-failed: no submission recorded in " +
                                        submissionsPath(repo));
        SiteConfig base;
        for (const auto& [k, v] : log.settings) applySetting(base, k, v);
        const SiteConfig site = resolveSite(vm, base);
        std::vector<std::string> notes;
        const auto states = queryJobStates(runner, latestJobIds(log), &notes);
        for (const auto& n : notes) out << ctx.program << " submit: note: " << n << "\n";
        const auto chunks = chunkStatus(repo, log, jobs::foldJournals(repo), states);
        plan = planRerun(log, chunks, repo, site, id);
        if (plan.jobs.empty()) {
            out << ctx.program << " submit: nothing to rerun: every chunk of " << log.latestPlan
                << " is complete\n";
            return 0;
        }
    } else {
        SubmitRequest req;
        req.repo = repo;
        req.program = ctx.program;
        req.command = ctx.command;
        req.groups = ctx.groups;
        req.chunking = resolveChunking(vm, ctx.chunkingDefaults);
        req.site = resolveSite(vm, SiteConfig{});
        plan = planSubmission(ctx.plan(), req, id);
        if (plan.jobs.empty()) {
            out << ctx.program << " submit: the selected stages have no tasks\n";
            return 0;
        }
    }
    if (dryRun) {
        out << plan.dryRunText();
        return 0;
    }
    const auto ids = executeSubmission(plan, runner, out);
    out << ctx.program << " submit: submission " << plan.id << ": " << ids.size()
        << (ids.size() == 1 ? " job" : " jobs") << "; scripts and logs in " << repo << "/slurm/"
        << plan.id << "; follow with `" << ctx.program << " status --repo " << repo << "`\n";
    return 0;
}

int cancelCommand(const std::string& repoArg, CommandRunner& runner, std::ostream& out) {
    const std::string repo = absolute(repoArg);
    const SubmissionLog log = readSubmissions(repo);
    if (log.jobs.empty()) {
        out << "no submission recorded in " << submissionsPath(repo) << "\n";
        return 0;
    }
    std::set<std::string> all;
    for (const auto& j : log.jobs) all.insert(j.jobId);
    std::vector<std::string> notes;
    const auto states = queryJobStates(runner, {all.begin(), all.end()}, &notes);
    std::set<std::string> active;
    for (const auto& [k, v] : states)
        if (isActive(v.state)) active.insert(k.substr(0, k.find('_')));
    for (const auto& n : notes) out << "note: " << n << "\n";
    if (active.empty()) {
        out << "no queued or running job\n";
        return 0;
    }
    std::vector<std::string> argv{"scancel"};
    argv.insert(argv.end(), active.begin(), active.end());
    CommandResult r = runner.run(argv);
    if (!r.ok())
        throw std::runtime_error("`" + commandLine(argv) + "` exited " +
                                 std::to_string(r.exitCode) + ": " + r.err);
    jobs::Json ev;
    ev["event"] = "cancel";
    ev["time"] = jobs::isoNow();
    ev["jobs"] = jobs::stringsToJson({active.begin(), active.end()});
    // Recorded for the audit trail; the jobs' final states come from Slurm.
    {
        std::ofstream f(submissionsPath(repo), std::ios::app);
        f << ev.dump() << "\n";
    }
    out << "cancelled";
    for (const auto& id : active) out << " " << id;
    out << "\n";
    return 0;
}

namespace {

/// The latest submission's chunks with their Slurm and engine state (empty planId: none).
struct Snapshot {
    std::string planId;
    std::vector<ChunkStatus> chunks;
    std::vector<std::string> notes;
};

Snapshot snapshot(const std::string& repoArg, CommandRunner& runner) {
    const std::string repo = absolute(repoArg);
    const SubmissionLog log = readSubmissions(repo);
    Snapshot s;
    if (log.latestPlan.empty()) return s;
    s.planId = log.latestPlan;
    const auto states = queryJobStates(runner, latestJobIds(log), &s.notes);
    s.chunks = chunkStatus(repo, log, jobs::foldJournals(repo), states);
    return s;
}

}  // namespace

std::string statusSection(const std::string& repo, CommandRunner& runner) {
    const Snapshot snap = snapshot(repo, runner);
    if (snap.planId.empty()) return "";
    std::string text = chunkStatusText(snap.chunks, snap.planId);
    for (const auto& n : snap.notes) text += "  note: " + n + "\n";
    return text;
}

jobs::Json statusJson(const std::string& repo, CommandRunner& runner) {
    const Snapshot snap = snapshot(repo, runner);
    if (snap.planId.empty()) return {};
    const auto& chunks = snap.chunks;
    jobs::Json out;
    out["submission"] = snap.planId;
    jobs::JsonArray list;
    int incomplete = 0, rerunnable = 0;
    for (const auto& c : chunks) {
        jobs::Json j;
        j["group"] = c.group;
        j["chunk"] = c.chunk;
        j["job"] = c.slurmId;
        j["state"] = c.slurm.state;
        j["reason"] = c.slurm.reason;
        j["exit_code"] = c.slurm.exitCode;
        j["source"] = c.slurm.source;
        j["tasks"] = c.tasks;
        j["done"] = c.done;
        list.push_back(std::move(j));
        if (!c.complete()) {
            ++incomplete;
            if (!isActive(c.slurm.state)) ++rerunnable;
        }
    }
    out["chunks"] = jobs::Json(std::move(list));
    out["incomplete"] = incomplete;
    out["rerunnable"] = rerunnable;
    out["notes"] = jobs::stringsToJson(snap.notes);
    return out;
}

}  // namespace drp::slurm
