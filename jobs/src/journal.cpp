#include "drp/jobs/journal.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>

namespace drp::jobs {

namespace fs = std::filesystem;

namespace {
std::string sysError(const std::string& what, const std::string& path) {
    return "journal: " + what + " " + path + ": " + std::strerror(errno);
}
std::string hostName() {
    char buf[256] = {};
    gethostname(buf, sizeof buf - 1);
    return buf;
}
}  // namespace

std::string isoNow() {
    auto now = std::chrono::system_clock::now();
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count();
    std::time_t secs = static_cast<std::time_t>(us / 1000000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<long long>(us % 1000000));
    return buf;
}

std::string makeRunId() {
    // Compact sortable UTC time, host and pid: unique per process on a shared filesystem.
    std::string t = isoNow();  // 2026-11-25T02:42:32.123456Z
    std::string compact;
    for (char c : t)
        if (std::isdigit(static_cast<unsigned char>(c))) compact += c;
    compact.insert(8, "T");
    std::string host = hostName();
    for (auto& c : host)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') c = '_';
    return compact + "-" + host + "-" + std::to_string(getpid());
}

std::string journalDir(const std::string& repo) {
    return (fs::path(repo) / "runs").string();
}

// ---------------------------------------------------------------------------------------------

JournalWriter::JournalWriter(const std::string& path) : _path(path) {
    std::error_code ec;
    fs::create_directories(fs::path(path).parent_path(), ec);
    _fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
    if (_fd < 0) throw std::runtime_error(sysError("cannot create", path));
    // Make the new directory entry durable too.
    int dfd = ::open(fs::path(path).parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
}

JournalWriter::~JournalWriter() {
    try {
        sync();
    } catch (...) {
    }
    if (_fd >= 0) ::close(_fd);
}

void JournalWriter::append(const Json& event) {
    event.dumpTo(_pending);
    _pending += '\n';
}

void JournalWriter::flush() {
    std::size_t done = 0;
    while (done < _pending.size()) {
        ssize_t n = ::write(_fd, _pending.data() + done, _pending.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw std::runtime_error(sysError("cannot write", _path));
        }
        done += static_cast<std::size_t>(n);
    }
    _pending.clear();
}

void JournalWriter::sync() {
    flush();
    if (_fd >= 0 && ::fsync(_fd) != 0) throw std::runtime_error(sysError("cannot fsync", _path));
}

// ---------------------------------------------------------------------------------------------

Json outputsToJson(const std::vector<OutputRecord>& outputs) {
    JsonArray out;
    for (const auto& r : outputs)
        out.push_back(Json(JsonObject{
            {"path", Json(r.path)}, {"sha256", Json(r.sha256)}, {"bytes", Json(r.bytes)}}));
    return Json(std::move(out));
}

std::vector<OutputRecord> outputsFromJson(const Json* array) {
    std::vector<OutputRecord> out;
    if (!array || !array->isArray()) return out;
    for (const auto& x : array->asArray())
        out.push_back({x.stringOr("path"), x.stringOr("sha256"),
                       static_cast<std::uint64_t>(x.numberOr("bytes", 0))});
    return out;
}

Json stringsToJson(const std::vector<std::string>& strings) {
    JsonArray out;
    for (const auto& s : strings) out.push_back(Json(s));
    return Json(std::move(out));
}

std::vector<std::string> stringsFromJson(const Json* array) {
    std::vector<std::string> out;
    if (!array || !array->isArray()) return out;
    for (const auto& x : array->asArray())
        if (x.isString()) out.push_back(x.asString());
    return out;
}

JournalFile readJournal(const std::string& path) {
    JournalFile jf;
    jf.path = path;
    jf.runId = fs::path(path).stem().string();
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("journal: cannot read " + path);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t nl = text.find('\n', pos);
        const bool last = nl == std::string::npos;
        std::string_view line(text.data() + pos, (last ? text.size() : nl) - pos);
        pos = last ? text.size() : nl + 1;
        if (line.empty()) continue;
        try {
            Json ev = Json::parse(line);
            if (!ev.isObject()) throw JsonError("not an object");
            if (last) {
                // A complete object without its newline: the write was cut exactly before
                // '\n'. The event is intact, so keep it.
            }
            jf.events.push_back(std::move(ev));
        } catch (const JsonError&) {
            if (last)
                jf.tornTail = true;
            else
                ++jf.badLines;
        }
    }
    for (const auto& ev : jf.events) {
        if (ev.stringOr("event") == "run_start") {
            jf.runId = ev.stringOr("run", jf.runId);
            jf.startTime = ev.stringOr("time");
            break;
        }
    }
    return jf;
}

std::vector<JournalFile> readJournals(const std::string& repo) {
    std::vector<JournalFile> out;
    std::error_code ec;
    fs::path dir = journalDir(repo);
    if (!fs::is_directory(dir, ec)) return out;
    for (const auto& entry : fs::directory_iterator(dir)) {
        if (entry.path().extension() != ".jsonl") continue;
        out.push_back(readJournal(entry.path().string()));
    }
    std::sort(out.begin(), out.end(), [](const JournalFile& a, const JournalFile& b) {
        return std::tie(a.startTime, a.runId) < std::tie(b.startTime, b.runId);
    });
    return out;
}

History foldJournals(const std::vector<JournalFile>& journals) {
    History h;
    for (const auto& jf : journals) {
        h.badLines += jf.badLines;
        RunInfo run;
        run.runId = jf.runId;
        run.startTime = jf.startTime;
        for (const auto& ev : jf.events) {
            const std::string kind = ev.stringOr("event");
            if (kind == "run_start") {
                run.command = ev.stringOr("command");
                run.configHash = ev.stringOr("config_hash");
                run.version = ev.stringOr("version");
                run.host = ev.stringOr("host");
                run.ranks = static_cast<int>(ev.numberOr("ranks", 0));
                run.pid = static_cast<long>(ev.numberOr("pid", 0));
                if (const Json* plan = ev.get("plan"); plan && plan->isObject())
                    for (const auto& [stage, n] : plan->asObject())
                        if (n.isNumber()) run.plan[stage] = n.asInt();
            } else if (kind == "run_end") {
                run.ended = true;
                run.status = ev.stringOr("status");
                run.exitCode = static_cast<int>(ev.numberOr("exit_code", -1));
            } else if (kind == "task" || kind == "supersede") {
                TaskKey key{ev.stringOr("stage"), ev.stringOr("id")};
                TaskRecord& rec = h.tasks[key];
                if (kind == "supersede") {
                    rec = TaskRecord{};
                    rec.state = "superseded";
                    rec.run = jf.runId;
                    continue;
                }
                TaskRecord next;
                next.state = ev.stringOr("state");
                next.run = jf.runId;
                next.attempt = static_cast<int>(ev.numberOr("attempt", 0));
                next.rank = static_cast<int>(ev.numberOr("rank", -1));
                next.host = ev.stringOr("host");
                next.errorClass = ev.stringOr("class");
                next.error = ev.stringOr("error");
                next.message = ev.stringOr("message");
                next.blockedBy = ev.stringOr("blocked_by");
                next.wall = ev.numberOr("wall", 0);
                next.cpu = ev.numberOr("cpu", 0);
                next.maxRssKb = ev.numberOr("maxrss_kb", 0);
                next.flags = stringsFromJson(ev.get("flags"));
                next.outputs = outputsFromJson(ev.get("outputs"));
                for (const auto& in : stringsFromJson(ev.get("inputs")))
                    next.inputs.push_back(parseTaskKey(in));
                next.inputStages = stringsFromJson(ev.get("input_stages"));
                rec = std::move(next);
            }
        }
        h.runs.push_back(std::move(run));
    }
    return h;
}

std::map<std::string, std::string> dataIdFields(const std::string& dataId) {
    std::map<std::string, std::string> kv;
    std::size_t start = 0;
    while (start < dataId.size()) {
        std::size_t end = dataId.find(',', start);
        if (end == std::string::npos) end = dataId.size();
        const std::string item = dataId.substr(start, end - start);
        if (const auto eq = item.find('='); eq != std::string::npos)
            kv[item.substr(0, eq)] = item.substr(eq + 1);
        start = end + 1;
    }
    return kv;
}

TaskKey parseTaskKey(const std::string& text) {
    auto colon = text.find(':');
    if (colon == std::string::npos || colon == 0)
        throw std::invalid_argument("task '" + text + "' is not STAGE:DATAID");
    return {text.substr(0, colon), text.substr(colon + 1)};
}

std::vector<TaskKey> recordedDownstream(const History& history, const std::vector<TaskKey>& roots) {
    std::map<TaskKey, std::vector<TaskKey>> byInput;
    std::map<std::string, std::vector<TaskKey>> byInputStage;
    for (const auto& [key, rec] : history.tasks) {
        if (rec.state != "done" && rec.state != "degraded") continue;
        for (const auto& in : rec.inputs) byInput[in].push_back(key);
        for (const auto& st : rec.inputStages) byInputStage[st].push_back(key);
    }
    std::set<TaskKey> seen(roots.begin(), roots.end());
    std::vector<TaskKey> stack(roots.begin(), roots.end());
    while (!stack.empty()) {
        TaskKey k = stack.back();
        stack.pop_back();
        auto visit = [&](const std::vector<TaskKey>& deps) {
            for (const auto& d : deps)
                if (seen.insert(d).second) stack.push_back(d);
        };
        if (auto it = byInput.find(k); it != byInput.end()) visit(it->second);
        if (auto it = byInputStage.find(k.stage); it != byInputStage.end()) visit(it->second);
    }
    std::vector<TaskKey> out;
    for (const auto& k : seen) {
        auto it = history.tasks.find(k);
        if (it != history.tasks.end() &&
            (it->second.state == "done" || it->second.state == "degraded"))
            out.push_back(k);
    }
    return out;
}

std::string writeSupersedeJournal(const std::string& repo, const std::vector<TaskKey>& keys,
                                  const std::string& command, const std::string& reason) {
    const std::string run = makeRunId();
    const std::string path = (fs::path(journalDir(repo)) / (run + ".jsonl")).string();
    JournalWriter w(path);
    w.append(Json(JsonObject{{"event", Json("run_start")},
                             {"run", Json(run)},
                             {"time", Json(isoNow())},
                             {"command", Json(command)},
                             {"host", Json(hostName())},
                             {"pid", Json(static_cast<long>(getpid()))},
                             {"ranks", Json(0)}}));
    for (const auto& k : keys)
        w.append(Json(JsonObject{{"event", Json("supersede")},
                                 {"run", Json(run)},
                                 {"stage", Json(k.stage)},
                                 {"id", Json(k.dataId)},
                                 {"reason", Json(reason)}}));
    w.append(Json(JsonObject{{"event", Json("run_end")},
                             {"run", Json(run)},
                             {"time", Json(isoNow())},
                             {"status", Json("complete")},
                             {"exit_code", Json(0)}}));
    w.sync();
    return path;
}

// ---------------------------------------------------------------------------------------------

namespace {
/// A run that has not ended but whose coordinator process is gone (same host only) was killed.
bool runIsDead(const RunInfo& run) {
    if (run.ended) return true;
    if (run.host != hostName() || run.pid <= 0) return false;  // cannot tell: assume alive
    return ::kill(static_cast<pid_t>(run.pid), 0) != 0 && errno == ESRCH;
}

/// Per run: whether it is over — ended, or its coordinator gone (a task still "running" in such
/// a run is lost).
std::map<std::string, bool> deadRuns(const History& history) {
    std::map<std::string, bool> dead;
    for (const auto& r : history.runs) dead[r.runId] = runIsDead(r);
    return dead;
}
}  // namespace

StatusView makeStatusView(const History& history) {
    StatusView view;
    view.runs = history.runs;
    view.badLines = history.badLines;
    std::map<std::string, bool> deadRun = deadRuns(history);
    std::map<std::string, std::size_t> index;
    auto stageEntry = [&](const std::string& name) -> StageStatus& {
        auto it = index.find(name);
        if (it == index.end()) {
            it = index.emplace(name, view.stages.size()).first;
            view.stages.push_back(StageStatus{name, 0, {}, {}, {}});
        }
        return view.stages[it->second];
    };
    for (const auto& r : history.runs)  // later runs override the planned count
        for (const auto& [stage, n] : r.plan) stageEntry(stage).planned = n;
    for (const auto& [key, rec] : history.tasks) {
        auto& st = stageEntry(key.stage);
        std::string state = rec.state;
        if (state == "running" && deadRun[rec.run]) state = "lost";
        ++st.byState[state];
        if (state == "failed")
            ++st.failedByClass[rec.errorClass.empty() ? "unknown" : rec.errorClass];
        if (state == "blocked") ++view.blocked;
        if (state == "degraded") {
            for (const auto& f : rec.flags) ++st.degradedByFlag[f];
            if (rec.flags.empty()) ++st.degradedByFlag["unflagged"];
            view.degraded.push_back({key, rec.flags, rec.message, rec.run});
        }
        if (state == "failed" || state == "lost" || state == "interrupted")
            view.failures.push_back(
                {key, state, rec.errorClass, rec.error, rec.run, rec.blockedBy, rec.attempt});
    }
    for (auto& st : view.stages) {
        std::int64_t known = 0;
        for (const auto& [s, n] : st.byState) known += n;
        if (st.planned > known) st.byState["not_started"] = st.planned - known;
    }
    return view;
}

bool GroupStatus::allDone() const {
    for (const auto& [stage, states] : byStage)
        for (const auto& [state, n] : states)
            if (state != "done" && n > 0) return false;
    return true;
}

std::vector<GroupStatus> groupStatus(const History& history,
                                     const std::vector<std::string>& fields) {
    std::map<std::string, bool> deadRun = deadRuns(history);
    // Numbers compare as numbers, then text.
    auto less = [](const std::vector<std::string>& a, const std::vector<std::string>& b) {
        for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
            if (a[i] == b[i]) continue;
            char* ea = nullptr;
            char* eb = nullptr;
            const long long na = std::strtoll(a[i].c_str(), &ea, 10);
            const long long nb = std::strtoll(b[i].c_str(), &eb, 10);
            if (!a[i].empty() && !b[i].empty() && *ea == 0 && *eb == 0) return na < nb;
            return a[i] < b[i];
        }
        return a.size() < b.size();
    };
    std::map<std::vector<std::string>, GroupStatus, decltype(less)> groups(less);
    for (const auto& [key, rec] : history.tasks) {
        const std::map<std::string, std::string> kv = dataIdFields(key.dataId);
        std::vector<std::string> values;
        for (const auto& f : fields) {
            const auto it = kv.find(f);
            if (it == kv.end()) break;
            values.push_back(it->second);
        }
        if (values.size() != fields.size()) continue;
        GroupStatus& g = groups[values];
        g.values = values;
        std::string state = rec.state;
        if (state == "running" && deadRun[rec.run]) state = "lost";
        if (state == "superseded") state = "not_started";  // to be redone (drp rerun)
        ++g.byStage[key.stage][state];
    }
    std::vector<GroupStatus> out;
    for (auto& [values, g] : groups) out.push_back(std::move(g));
    return out;
}

Json StatusView::toJson() const {
    Json out;
    JsonArray stagesJson;
    for (const auto& st : stages) {
        Json s;
        s["stage"] = st.stage;
        s["planned"] = st.planned;
        for (const auto& [k, n] : st.byState) s["states"][k] = n;
        if (!st.byState.empty() && !s.get("states")) s["states"] = JsonObject{};
        for (const auto& [k, n] : st.failedByClass) s["failed_by_class"][k] = n;
        for (const auto& [k, n] : st.degradedByFlag) s["degraded_by_flag"][k] = n;
        stagesJson.push_back(std::move(s));
    }
    out["stages"] = std::move(stagesJson);
    JsonArray fails;
    for (const auto& f : failures) {
        Json j;
        j["stage"] = f.key.stage;
        j["id"] = f.key.dataId;
        j["state"] = f.state;
        j["class"] = f.errorClass;
        j["error"] = f.error;
        j["run"] = f.run;
        j["attempt"] = f.attempt;
        fails.push_back(std::move(j));
    }
    out["failures"] = std::move(fails);
    JsonArray degr;
    for (const auto& d : degraded) {
        Json j;
        j["stage"] = d.key.stage;
        j["id"] = d.key.dataId;
        j["flags"] = stringsToJson(d.flags);
        j["message"] = d.message;
        j["run"] = d.run;
        degr.push_back(std::move(j));
    }
    out["degraded"] = std::move(degr);
    JsonArray runsJson;
    for (const auto& r : runs) {
        Json j;
        j["run"] = r.runId;
        j["start"] = r.startTime;
        j["command"] = r.command;
        j["config_hash"] = r.configHash;
        j["version"] = r.version;
        j["ranks"] = r.ranks;
        j["status"] = r.ended ? r.status : std::string("unfinished");
        if (r.ended) j["exit_code"] = r.exitCode;
        runsJson.push_back(std::move(j));
    }
    out["runs"] = std::move(runsJson);
    out["blocked"] = blocked;
    out["bad_journal_lines"] = badLines;
    return out;
}

std::string StatusView::toText(std::size_t degradedPerFlag) const {
    std::ostringstream out;
    out << runs.size() << " run(s)";
    if (!runs.empty()) {
        const auto& r = runs.back();
        out << "; latest " << r.runId << " (" << (r.ended ? r.status : "unfinished") << ")";
    }
    out << "\n";
    char line[512];
    std::snprintf(line, sizeof line, "%-24s %9s %9s %9s %9s %9s %9s %11s\n", "stage", "planned",
                  "done", "degraded", "failed", "blocked", "running", "not_started");
    out << line;
    for (const auto& st : stages) {
        auto get = [&](const char* k) {
            auto it = st.byState.find(k);
            return it == st.byState.end() ? std::int64_t{0} : it->second;
        };
        std::snprintf(line, sizeof line, "%-24s %9lld %9lld %9lld %9lld %9lld %9lld %11lld\n",
                      st.stage.c_str(), static_cast<long long>(st.planned),
                      static_cast<long long>(get("done")), static_cast<long long>(get("degraded")),
                      static_cast<long long>(get("failed") + get("lost") + get("interrupted")),
                      static_cast<long long>(get("blocked")),
                      static_cast<long long>(get("running")),
                      static_cast<long long>(get("not_started") + get("superseded")));
        out << line;
        for (const auto& [cls, n] : st.failedByClass)
            out << "    failed[" << cls << "]: " << n << "\n";
        for (const auto& [flag, n] : st.degradedByFlag)
            out << "    degraded[" << flag << "]: " << n << "\n";
    }
    if (!failures.empty()) {
        out << "failed tasks:\n";
        for (const auto& f : failures)
            out << "  " << f.key.str() << " " << f.state << " [" << f.errorClass << "] "
                << f.error.substr(0, 200) << " (run " << f.run << ", attempt " << f.attempt
                << ")\n";
    }
    if (!degraded.empty()) {
        // Grouped by stage and first flag (the task's main reason), each group cut at
        // degradedPerFlag lines.
        out << "degraded tasks (outputs complete, dependents ran):\n";
        // (A group one longer than the cut is shown whole: "... and 1 more" saves nothing.)
        std::map<std::pair<std::string, std::string>, std::size_t> shown, total;
        for (const auto& d : degraded)
            ++total[{d.key.stage, d.flags.empty() ? "unflagged" : d.flags.front()}];
        for (const auto& d : degraded) {
            const std::pair<std::string, std::string> group{
                d.key.stage, d.flags.empty() ? "unflagged" : d.flags.front()};
            const std::size_t k = shown[group]++;
            const std::size_t cut =
                total[group] <= degradedPerFlag + 1 ? total[group] : degradedPerFlag;
            if (k < cut) {
                out << "  " << d.key.str() << " [";
                for (std::size_t i = 0; i < d.flags.size(); ++i)
                    out << (i ? "," : "") << d.flags[i];
                out << "] " << d.message.substr(0, 200) << " (run " << d.run << ")\n";
            } else if (k == cut) {
                out << "  ... and " << total[group] - cut << " more " << group.first << " ["
                    << group.second << "] (--json lists every one)\n";
            }
        }
    }
    if (badLines) out << "warning: " << badLines << " unreadable journal line(s) skipped\n";
    return out.str();
}

}  // namespace drp::jobs
