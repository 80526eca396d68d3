#include "drp/slurm/submit.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <set>
#include <sstream>
#include <stdexcept>

#include "drp/jobs/json.h"
#include "drp/slurm/shell.h"

namespace fs = std::filesystem;

namespace drp::slurm {
namespace {

using jobs::Json;
using jobs::JsonArray;

std::string formatCost(double c) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.6g", c);
    return buf;
}

std::string joinStages(const std::vector<std::string>& stages, const char* sep) {
    return join(stages, sep);
}

std::string varName(const std::string& group) {
    std::string v = "job_";
    for (char c : group) v += (c == '.' || c == '-') ? '_' : c;
    return v;
}

std::string relativeTo(const std::string& repo, const std::string& path) {
    return fs::path(path).lexically_relative(repo).string();
}

/// Writes `text` to `path` atomically (temp file in the same directory, fsync, rename).
void writeAtomically(const std::string& path, const std::string& text) {
    fs::create_directories(fs::path(path).parent_path());
    const std::string tmp = path + ".tmp." + std::to_string(::getpid());
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw std::runtime_error("cannot create " + tmp + ": " + std::strerror(errno));
    std::size_t off = 0;
    while (off < text.size()) {
        ssize_t n = ::write(fd, text.data() + off, text.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int e = errno;
            ::close(fd);
            throw std::runtime_error("cannot write " + tmp + ": " + std::strerror(e));
        }
        off += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0 || ::close(fd) != 0)
        throw std::runtime_error("cannot flush " + tmp + ": " + std::strerror(errno));
    fs::rename(tmp, path);
}

/// Appends one JSON line to the submissions journal (O_APPEND + fsync).
void appendEvent(const std::string& repo, const Json& event) {
    const std::string path = submissionsPath(repo);
    fs::create_directories(fs::path(path).parent_path());
    const std::string line = event.dump() + "\n";
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno));
    const ssize_t n = ::write(fd, line.data(), line.size());
    const int e = errno;
    ::fsync(fd);
    ::close(fd);
    if (n != static_cast<ssize_t>(line.size()))
        throw std::runtime_error("cannot append to " + path + ": " + std::strerror(e));
}

Json intsToJson(const std::vector<int>& v) {
    JsonArray a;
    for (int i : v) a.emplace_back(i);
    return Json(std::move(a));
}

std::string trimmed(const std::string& s) {
    const auto b = s.find_first_not_of(" \t\r\n");
    if (b == std::string::npos) return "";
    return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

bool allDigits(const std::string& s) {
    return !s.empty() &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

std::string submissionsPath(const std::string& repo) {
    return (fs::path(jobs::journalDir(repo)) / "slurm" / "submissions.jsonl").string();
}

std::string nextSubmissionId(const std::string& repo) {
    int highest = 0;
    for (const auto& id : readSubmissions(repo).submissions)
        if (id.rfind("sub-", 0) == 0 && allDigits(id.substr(4)))
            highest = std::max(highest, std::stoi(id.substr(4)));
    char buf[32];
    std::snprintf(buf, sizeof buf, "sub-%04d", highest + 1);
    return buf;
}

std::vector<std::pair<std::string, std::string>> toSettings(const SiteConfig& site) {
    std::vector<std::pair<std::string, std::string>> s;
    if (!site.partition.empty()) s.emplace_back("partition", site.partition);
    if (!site.account.empty()) s.emplace_back("account", site.account);
    if (!site.qos.empty()) s.emplace_back("qos", site.qos);
    s.emplace_back("time", formatTimeLimit(site.timeSeconds));
    s.emplace_back("nodes", std::to_string(site.nodes));
    s.emplace_back("ranks-per-node", std::to_string(site.ranksPerNode));
    if (!site.mem.empty()) s.emplace_back("mem", site.mem);
    if (!site.constraint.empty()) s.emplace_back("constraint", site.constraint);
    s.emplace_back("launcher", toString(site.launcher));
    s.emplace_back("mpi", site.mpi);
    for (const auto& a : site.launcherArgs) s.emplace_back("launcher-arg", a);
    for (const auto& m : site.modules) s.emplace_back("module", m);
    for (const auto& [k, v] : site.env) s.emplace_back("env", k + "=" + v);
    for (const auto& o : site.sbatchOptions) s.emplace_back("sbatch", o);
    s.emplace_back("signal-seconds", std::to_string(site.signalSeconds));
    s.emplace_back("max-requeues", std::to_string(site.maxRequeues));
    s.emplace_back("job-name-prefix", site.jobNamePrefix);
    return s;
}

SubmissionPlan planSubmission(const jobs::TaskGraph& graph, const SubmitRequest& request,
                              const std::string& id) {
    request.site.validate();
    checkName("submission id", id);
    if (request.repo.empty() || request.repo[0] != '/')
        throw std::invalid_argument("repository: '" + request.repo + "' is not an absolute path");
    SubmissionPlan plan;
    plan.id = plan.planId = id;
    plan.repo = request.repo;
    plan.command = request.command;
    plan.settings = toSettings(request.site);
    plan.groups = planChunks(graph, request.groups, request.chunking);
    const std::string dir = request.repo + "/slurm/" + id;
    for (const auto& g : plan.groups) {
        if (g.chunks.empty()) continue;  // no tasks: nothing to submit for this group
        const std::string chunkDir = dir + "/" + g.spec.name;
        std::size_t tasks = 0;
        for (const auto& c : g.chunks) {
            plan.chunkFiles.push_back(
                {chunkDir + "/" + chunkFileName(c.index),
                 selectFileText(c.tasks, "submission " + id + ", job group " + g.spec.name +
                                             ", chunk " + std::to_string(c.index) + " of " +
                                             std::to_string(g.chunks.size()) + ": " +
                                             std::to_string(c.tasks.size()) +
                                             " tasks, predicted cost " + formatCost(c.cost))});
            tasks += c.tasks.size();
        }
        PlannedJob pj;
        JobScript& j = pj.job;
        j.program = request.program;
        j.submission = id;
        j.group = g.spec.name;
        j.stages = g.spec.stages;
        j.repo = request.repo;
        j.logDir = dir + "/logs";
        j.chunkDir = chunkDir;
        j.chunkCount = static_cast<int>(g.chunks.size());
        for (const auto& c : g.chunks) pj.chunks.push_back(c.index);
        if (g.chunks.size() > 1) j.arrayIndices = pj.chunks;
        j.units = g.units;
        j.tasks = tasks;
        j.cost = g.cost;
        j.command = request.command;
        pj.scriptPath = dir + "/" + g.spec.name + ".sbatch";
        pj.scriptText = renderScript(j, request.site);
        if (!plan.jobs.empty()) pj.after = {plan.jobs.size() - 1};
        plan.jobs.push_back(std::move(pj));
    }
    return plan;
}

std::string SubmissionPlan::commandsText() const {
    std::ostringstream s;
    s << "# Submission " << id << ": " << jobs.size() << (jobs.size() == 1 ? " job" : " jobs");
    if (jobs.size() > 1) s << " chained with --dependency=afterok";
    s << ".\n";
    for (const auto& j : jobs) {
        s << varName(j.job.group) << "=$(sbatch --parsable";
        if (!j.after.empty()) {
            s << " --dependency=afterok";
            for (auto a : j.after) s << ":\"$" << varName(jobs[a].job.group) << "\"";
        }
        s << " " << shellQuote(j.scriptPath) << ")\n";
    }
    return s.str();
}

std::string SubmissionPlan::dryRunText() const {
    std::ostringstream s;
    s << "# Dry run: no script or chunk file written, nothing submitted. Repository " << repo
      << ".\n";
    if (planId != id) s << "# Resubmission of the incomplete chunks of " << planId << ".\n";
    for (const auto& g : groups) {
        s << "# Job group " << g.spec.name << " (" << joinStages(g.spec.stages, ", ")
          << "): " << g.units << (g.units == 1 ? " unit" : " units") << ", predicted cost "
          << formatCost(g.cost) << ", " << g.chunks.size()
          << (g.chunks.size() == 1 ? " chunk" : " chunks") << "\n";
        if (g.chunks.size() > 1)
            for (const auto& c : g.chunks)
                s << "#   chunk " << c.index << ": " << c.tasks.size() << " tasks, cost "
                  << formatCost(c.cost) << "\n";
    }
    s << commandsText();
    for (const auto& j : jobs) s << "\n# ---- " << j.scriptPath << "\n" << j.scriptText;
    return s.str();
}

SubmissionLog readSubmissions(const std::string& repo) {
    SubmissionLog log;
    std::ifstream in(submissionsPath(repo));
    if (!in) return log;
    for (std::string line; std::getline(in, line);) {
        if (line.empty()) continue;
        Json ev;
        try {
            ev = Json::parse(line);
            if (!ev.isObject()) throw jobs::JsonError("not an object");
        } catch (const std::exception&) {
            ++log.badLines;
            continue;
        }
        const std::string kind = ev.stringOr("event");
        const std::string sub = ev.stringOr("submission");
        if (!sub.empty() &&
            std::find(log.submissions.begin(), log.submissions.end(), sub) == log.submissions.end())
            log.submissions.push_back(sub);
        if (kind == "plan") {
            log.latestPlan = sub;
            log.program = ev.stringOr("program", "drp");
            log.command = jobs::stringsFromJson(ev.get("command"));
            log.settings.clear();
            if (const Json* st = ev.get("settings"); st && st->isArray())
                for (const auto& kv : st->asArray())
                    if (kv.isArray() && kv.asArray().size() == 2 && kv.asArray()[0].isString() &&
                        kv.asArray()[1].isString())
                        log.settings.emplace_back(kv.asArray()[0].asString(),
                                                  kv.asArray()[1].asString());
            log.groups.clear();
            if (const Json* gs = ev.get("groups"); gs && gs->isArray())
                for (const auto& g : gs->asArray()) {
                    if (!g.isObject()) continue;
                    SubmissionLog::Group grp;
                    grp.name = g.stringOr("name");
                    grp.stages = jobs::stringsFromJson(g.get("stages"));
                    grp.chunked = g.get("chunked") && g.get("chunked")->isBool() &&
                                  g.get("chunked")->asBool();
                    grp.chunks = static_cast<int>(g.numberOr("chunks", 0));
                    grp.chunkDir = g.stringOr("chunk_dir");
                    log.groups.push_back(std::move(grp));
                }
        } else if (kind == "job") {
            SubmissionLog::Job j;
            j.submission = sub;
            j.plan = ev.stringOr("plan", sub);
            j.group = ev.stringOr("group");
            j.jobId = ev.stringOr("job");
            j.time = ev.stringOr("time");
            j.script = ev.stringOr("script");
            j.array = ev.get("array") && ev.get("array")->isBool() && ev.get("array")->asBool();
            if (const Json* cs = ev.get("chunks"); cs && cs->isArray())
                for (const auto& c : cs->asArray())
                    if (c.isNumber()) j.chunks.push_back(static_cast<int>(c.asNumber()));
            log.jobs.push_back(std::move(j));
        }
    }
    return log;
}

std::string SubmissionLog::latestSlurmId(const std::string& group, int chunk) const {
    for (auto it = jobs.rbegin(); it != jobs.rend(); ++it) {
        if (it->plan != latestPlan || it->group != group) continue;
        if (std::find(it->chunks.begin(), it->chunks.end(), chunk) == it->chunks.end()) continue;
        return it->array ? it->jobId + "_" + std::to_string(chunk) : it->jobId;
    }
    return "";
}

std::vector<std::string> executeSubmission(const SubmissionPlan& plan, CommandRunner& runner,
                                           std::ostream& log) {
    const std::string& repo = plan.repo;
    if (plan.id == plan.planId) {
        for (const auto& f : plan.chunkFiles) writeAtomically(f.path, f.text);
        Json ev;
        ev["event"] = "plan";
        ev["submission"] = plan.id;
        ev["time"] = jobs::isoNow();
        ev["program"] = plan.jobs.empty() ? "drp" : plan.jobs.front().job.program;
        ev["command"] = jobs::stringsToJson(plan.command);
        JsonArray settings;
        for (const auto& [k, v] : plan.settings) settings.push_back(JsonArray{k, v});
        ev["settings"] = Json(std::move(settings));
        JsonArray groups;
        for (const auto& g : plan.groups) {
            if (g.chunks.empty()) continue;
            Json gj;
            gj["name"] = g.spec.name;
            gj["stages"] = jobs::stringsToJson(g.spec.stages);
            gj["chunked"] = g.spec.chunked;
            gj["chunks"] = static_cast<int>(g.chunks.size());
            gj["chunk_dir"] = "slurm/" + plan.id + "/" + g.spec.name;
            groups.push_back(std::move(gj));
        }
        ev["groups"] = Json(std::move(groups));
        appendEvent(repo, ev);
    }
    std::vector<std::string> ids;
    for (const auto& j : plan.jobs) {
        fs::create_directories(j.job.logDir);
        writeAtomically(j.scriptPath, j.scriptText);
        std::vector<std::string> argv{"sbatch", "--parsable"};
        std::vector<std::string> after;
        for (auto a : j.after) after.push_back(ids.at(a));
        if (!after.empty()) {
            std::string dep = "--dependency=afterok";
            for (const auto& a : after) dep += ":" + a;
            argv.push_back(dep);
        }
        argv.push_back(j.scriptPath);
        CommandResult r = runner.run(argv);
        // --parsable prints "jobid" or "jobid;cluster".
        std::string id = trimmed(r.out);
        if (auto semi = id.find(';'); semi != std::string::npos) id.resize(semi);
        if (!r.ok() || !allDigits(id)) {
            std::string done;
            for (std::size_t i = 0; i < ids.size(); ++i) {
                if (i) done += ", ";
                done += ids[i] + " (" + plan.jobs[i].job.group + ")";
            }
            throw std::runtime_error("submitting job group " + j.job.group + " failed: `" +
                                     commandLine(argv) + "` exited " + std::to_string(r.exitCode) +
                                     ": " + trimmed(r.err + " " + r.out) +
                                     (done.empty() ? std::string(" (nothing was submitted)")
                                                   : "; already submitted: " + done));
        }
        ids.push_back(id);
        Json ev;
        ev["event"] = "job";
        ev["submission"] = plan.id;
        ev["plan"] = plan.planId;
        ev["time"] = jobs::isoNow();
        ev["group"] = j.job.group;
        ev["job"] = id;
        ev["array"] = !j.job.arrayIndices.empty();
        ev["chunks"] = intsToJson(j.chunks);
        ev["script"] = relativeTo(repo, j.scriptPath);
        ev["after"] = jobs::stringsToJson(after);
        appendEvent(repo, ev);
        log << "submitted job " << id << ": group " << j.job.group << " ("
            << joinStages(j.job.stages, ",") << ")";
        if (!j.job.arrayIndices.empty())
            log << ", array " << formatArrayIndices(j.job.arrayIndices);
        if (!after.empty()) log << ", after " << joinStages(after, ",");
        log << "\n";
    }
    return ids;
}

bool isActive(const std::string& state) {
    static const std::set<std::string> active{
        "PENDING",   "RUNNING",  "REQUEUED",      "CONFIGURING",   "COMPLETING",
        "SUSPENDED", "RESIZING", "REQUEUE_HOLD",  "REQUEUE_FED",   "SIGNALING",
        "STAGE_OUT", "STOPPED",  "RESV_DEL_HOLD", "POWER_UP_NODE", "UPDATE_DB"};
    return active.count(state) > 0;
}

namespace {

// Lines of "id|field|field" (squeue -o '%i|%T|%r', sacct -P): {id, [fields]}.
std::vector<std::pair<std::string, std::vector<std::string>>> pipeRows(const std::string& text) {
    std::vector<std::pair<std::string, std::vector<std::string>>> rows;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        line = trimmed(line);
        std::vector<std::string> fields;
        std::stringstream ss(line);
        for (std::string f; std::getline(ss, f, '|');) fields.push_back(f);
        if (fields.size() < 2) continue;
        std::string id = fields.front();
        fields.erase(fields.begin());
        rows.emplace_back(std::move(id), std::move(fields));
    }
    return rows;
}

}  // namespace

std::map<std::string, JobState> parseSqueue(const std::string& text) {
    std::map<std::string, JobState> out;
    for (const auto& [id, f] : pipeRows(text)) {
        JobState s;
        s.state = f[0];
        if (f.size() > 1 && f[1] != "None") s.reason = f[1];
        s.source = "squeue";
        out[id] = s;
    }
    return out;
}

std::map<std::string, JobState> parseSacct(const std::string& text) {
    std::map<std::string, JobState> out;
    for (const auto& [id, f] : pipeRows(text)) {
        JobState s;
        s.state = f[0].substr(0, f[0].find(' '));  // "CANCELLED by 0"
        if (f.size() > 1) s.exitCode = f[1];
        s.source = "sacct";
        out[id] = s;
    }
    return out;
}

std::map<std::string, JobState> parseJobComp(const std::string& text) {
    std::map<std::string, JobState> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        std::map<std::string, std::string> kv;
        std::istringstream words(line);
        for (std::string w; words >> w;)
            if (auto eq = w.find('='); eq != std::string::npos && eq > 0)
                kv[w.substr(0, eq)] = w.substr(eq + 1);
        if (!kv.count("JobId") || !kv.count("JobState")) continue;
        std::string key = kv["JobId"];
        // Array tasks carry their array job id and index (4294967294 = NO_VAL: not an array).
        const std::string aj = kv.count("ArrayJobId") ? kv["ArrayJobId"] : "";
        const std::string at = kv.count("ArrayTaskId") ? kv["ArrayTaskId"] : "";
        if (allDigits(aj) && aj != "0" && allDigits(at) && at != "4294967294" && at != "4294967295")
            key = aj + "_" + at;
        JobState s;
        s.state = kv["JobState"];
        s.exitCode = kv.count("ExitCode") ? kv["ExitCode"] : "";
        s.source = "jobcomp";
        out[key] = s;  // later lines (a requeued job's next attempt) win
    }
    return out;
}

std::map<std::string, std::string> parseShowConfig(const std::string& text) {
    std::map<std::string, std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        auto eq = line.find(" = ");
        if (eq == std::string::npos) continue;
        out[trimmed(line.substr(0, eq))] = trimmed(line.substr(eq + 3));
    }
    return out;
}

std::map<std::string, JobState> queryJobStates(CommandRunner& runner,
                                               const std::vector<std::string>& jobIds,
                                               std::vector<std::string>* notes) {
    std::map<std::string, JobState> out;
    if (jobIds.empty()) return out;
    const std::set<std::string> bases(jobIds.begin(), jobIds.end());
    auto ours = [&](const std::string& key) {
        return bases.count(key.substr(0, key.find('_'))) > 0;
    };
    auto note = [&](const std::string& n) {
        if (notes) notes->push_back(n);
    };
    auto merge = [&](const std::map<std::string, JobState>& found) {
        for (const auto& [k, v] : found)
            if (ours(k) && !out.count(k)) out[k] = v;
    };
    auto squeue = [&](const std::string& ids) {
        return runner.run({"squeue", "-h", "-r", "-t", "all", "--jobs=" + ids, "-o", "%i|%T|%r"});
    };
    const std::string all = join({bases.begin(), bases.end()}, ",");
    CommandResult r = squeue(all);
    if (r.ok()) {
        merge(parseSqueue(r.out));
    } else if (r.exitCode == 127) {
        note("squeue not available: " + trimmed(r.err));
    } else {
        // squeue refuses the whole list when one id is unknown (purged): ask one by one.
        for (const auto& id : bases)
            if (CommandResult one = squeue(id); one.ok()) merge(parseSqueue(one.out));
    }
    // Finished jobs leave squeue after MinJobAge, array tasks one by one: always complete the
    // picture from accounting or the job-completion log (squeue's live view wins).
    CommandResult cfg = runner.run({"scontrol", "show", "config"});
    if (!cfg.ok()) {
        if (r.exitCode != 127) note("scontrol show config failed: " + trimmed(cfg.err));
        return out;
    }
    auto conf = parseShowConfig(cfg.out);
    const std::string acct = conf["AccountingStorageType"];
    if (!acct.empty() && acct != "accounting_storage/none" && acct != "(null)") {
        CommandResult sa =
            runner.run({"sacct", "-n", "-P", "-X", "-j", all, "-o", "JobID,State,ExitCode"});
        if (sa.ok())
            merge(parseSacct(sa.out));
        else
            note("sacct failed: " + trimmed(sa.err));
    }
    if (conf["JobCompType"] == "jobcomp/filetxt" || conf["JobCompType"] == "completion/filetxt") {
        const std::string path = conf["JobCompLoc"];
        std::ifstream in(path);
        if (in) {
            std::ostringstream ss;
            ss << in.rdbuf();
            merge(parseJobComp(ss.str()));
        } else {
            note("cannot read the job completion log " + path);
        }
    }
    return out;
}

std::vector<ChunkStatus> chunkStatus(const std::string& repo, const SubmissionLog& log,
                                     const jobs::History& history,
                                     const std::map<std::string, JobState>& states) {
    std::vector<ChunkStatus> out;
    for (const auto& g : log.groups) {
        for (int c = 0; c < g.chunks; ++c) {
            ChunkStatus cs;
            cs.group = g.name;
            cs.chunk = c;
            cs.array = g.chunks > 1;
            cs.slurmId = log.latestSlurmId(g.name, c);
            if (auto it = states.find(cs.slurmId); it != states.end()) cs.slurm = it->second;
            const std::string file = repo + "/" + g.chunkDir + "/" + chunkFileName(c);
            for (const auto& key : readSelectFile(file)) {
                ++cs.tasks;
                auto it = history.tasks.find(key);
                if (it != history.tasks.end() &&
                    (it->second.state == "done" || it->second.state == "degraded"))
                    ++cs.done;
            }
            out.push_back(std::move(cs));
        }
    }
    return out;
}

std::vector<std::string> latestJobIds(const SubmissionLog& log) {
    std::set<std::string> ids;
    for (const auto& g : log.groups)
        for (int c = 0; c < g.chunks; ++c) {
            std::string id = log.latestSlurmId(g.name, c);
            if (!id.empty()) ids.insert(id.substr(0, id.find('_')));
        }
    return {ids.begin(), ids.end()};
}

std::string chunkStatusText(const std::vector<ChunkStatus>& chunks, const std::string& planId) {
    std::ostringstream s;
    s << "Slurm jobs of submission " << planId << ":\n";
    char line[256];
    std::snprintf(line, sizeof line, "  %-14s %5s  %-14s %-12s %s\n", "group", "chunk", "job",
                  "state", "tasks done");
    s << line;
    std::size_t incomplete = 0, rerunnable = 0;
    for (const auto& c : chunks) {
        std::string state = c.slurmId.empty()       ? "not submitted"
                            : c.slurm.state.empty() ? "unknown"
                                                    : c.slurm.state;
        if (!c.slurm.reason.empty() && isActive(c.slurm.state))
            state += " (" + c.slurm.reason + ")";
        std::snprintf(line, sizeof line, "  %-14s %5d  %-14s %-12s %zu/%zu\n", c.group.c_str(),
                      c.chunk, c.slurmId.empty() ? "-" : c.slurmId.c_str(), state.c_str(), c.done,
                      c.tasks);
        s << line;
        if (!c.complete()) {
            ++incomplete;
            if (!isActive(c.slurm.state)) ++rerunnable;
        }
    }
    if (incomplete == 0)
        s << "  every chunk complete\n";
    else
        s << "  " << incomplete << " chunk(s) incomplete, " << rerunnable
          << " of them neither queued nor running (resubmit with --rerun-failed)\n";
    return s.str();
}

SubmissionPlan planRerun(const SubmissionLog& log, const std::vector<ChunkStatus>& chunks,
                         const std::string& repo, const SiteConfig& site, const std::string& id) {
    if (log.latestPlan.empty())
        throw std::runtime_error("no submission recorded in " + submissionsPath(repo));
    site.validate();
    std::vector<std::string> active;
    for (const auto& c : chunks)
        if (!c.slurmId.empty() && isActive(c.slurm.state))
            active.push_back(c.slurmId + " " + c.slurm.state);
    if (!active.empty()) {
        std::string list;
        for (std::size_t i = 0; i < active.size() && i < 10; ++i) {
            if (i) list += ", ";
            list += active[i];
        }
        if (active.size() > 10) list += ", ...";
        throw std::runtime_error(std::to_string(active.size()) + " job(s) of submission " +
                                 log.latestPlan + " still queued or running (" + list +
                                 "): wait for them, or cancel them first");
    }
    SubmissionPlan plan;
    plan.id = id;
    plan.planId = log.latestPlan;
    plan.repo = repo;
    plan.command = log.command;
    plan.settings = toSettings(site);
    const std::string dir = repo + "/slurm/" + id;
    for (const auto& g : log.groups) {
        std::vector<int> need;
        std::size_t tasks = 0;
        for (const auto& c : chunks)
            if (c.group == g.name && !c.complete()) {
                need.push_back(c.chunk);
                tasks += c.tasks;
            }
        if (need.empty()) continue;
        PlannedJob pj;
        JobScript& j = pj.job;
        j.program = log.program;
        j.submission = id;
        j.group = g.name;
        j.stages = g.stages;
        j.repo = repo;
        j.logDir = dir + "/logs";
        j.chunkDir = repo + "/" + g.chunkDir;
        j.chunkCount = g.chunks;
        if (g.chunks > 1) j.arrayIndices = need;
        j.tasks = tasks;
        j.command = log.command;
        pj.chunks = need;
        pj.scriptPath = dir + "/" + g.name + ".sbatch";
        pj.scriptText = renderScript(j, site);
        if (!plan.jobs.empty()) pj.after = {plan.jobs.size() - 1};
        plan.jobs.push_back(std::move(pj));
    }
    return plan;
}

}  // namespace drp::slurm
