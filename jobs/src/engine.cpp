#include "drp/jobs/engine.h"

#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <deque>
#include <filesystem>
#include <iostream>
#include <limits>
#include <set>
#include <sstream>
#include <stdexcept>

#include "drp/jobs/journal.h"
#include "drp/jobs/progress.h"

namespace drp::jobs {

namespace fs = std::filesystem;

void EngineOptions::validate() const {
    auto bad = [](const std::string& what) {
        throw std::invalid_argument("engine options: " + what);
    };
    if (repo.empty()) bad("repo is empty");
    if (defaultTimeLimitSeconds < 0) bad("defaultTimeLimitSeconds < 0");
    if (!(heartbeatSeconds > 0)) bad("heartbeatSeconds must be > 0");
    if (!(workerTimeoutSeconds > heartbeatSeconds))
        bad("workerTimeoutSeconds must exceed heartbeatSeconds");
    if (fsyncSeconds < 0) bad("fsyncSeconds < 0");
    if (progressSeconds < 0) bad("progressSeconds < 0");
    if (tasksPerWorker < 1) bad("tasksPerWorker must be >= 1");
    for (const auto& [cls, n] : retry.retriesByClass)
        if (n < 0) bad("retry count for class '" + cls + "' is negative");
    if (retry.defaultRetries < 0) bad("retry.defaultRetries < 0");
}

namespace {

enum Tag : int { kTagTask = 4101, kTagStop, kTagKill, kTagResult, kTagHeartbeat };

volatile sig_atomic_t gStopSignal = 0;
extern "C" void drpJobsOnSignal(int sig) {
    gStopSignal = sig;
}

/// Installs the stop-signal handlers for the duration of a run and restores the old ones.
class SignalGuard {
  public:
    SignalGuard() {
        gStopSignal = 0;
        struct sigaction sa {};
        sa.sa_handler = drpJobsOnSignal;
        sigemptyset(&sa.sa_mask);
        for (std::size_t i = 0; i < kSignals.size(); ++i) sigaction(kSignals[i], &sa, &_old[i]);
    }
    ~SignalGuard() {
        for (std::size_t i = 0; i < kSignals.size(); ++i) sigaction(kSignals[i], &_old[i], nullptr);
    }

  private:
    static constexpr std::array<int, 3> kSignals{SIGTERM, SIGINT, SIGUSR1};
    std::array<struct sigaction, 3> _old{};
};

/// Polling back-off: spin briefly (low latency under load), then sleep up to 1 ms so that idle
/// ranks leave the cores to the ranks doing work.
class Backoff {
  public:
    void reset() { _n = 0; }
    void pause() {
        if (++_n < 100) return;
        long ns = std::min<long>(1000000, 1000L * (_n - 99));
        timespec ts{0, ns};
        nanosleep(&ts, nullptr);
    }

  private:
    long _n = 0;
};

/// How often the coordinator serves the workers while its own forked task runs.
constexpr double kCoordinatorPollSeconds = 0.001;

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string hostName() {
    char buf[256] = {};
    gethostname(buf, sizeof buf - 1);
    return buf;
}

void sendText(const std::string& text, int dest, int tag, MPI_Comm comm) {
    MPI_Send(text.data(), static_cast<int>(text.size()), MPI_CHAR, dest, tag, comm);
}

/// Non-blocking receive of one message matching (source, tag); false if none is pending.
bool tryReceive(MPI_Comm comm, int source, int tag, std::string& text, MPI_Status& st) {
    int flag = 0;
    MPI_Iprobe(source, tag, comm, &flag, &st);
    if (!flag) return false;
    int count = 0;
    MPI_Get_count(&st, MPI_CHAR, &count);
    text.resize(static_cast<std::size_t>(count));
    MPI_Recv(text.data(), count, MPI_CHAR, st.MPI_SOURCE, st.MPI_TAG, comm, MPI_STATUS_IGNORE);
    return true;
}

Json specToJson(std::size_t stage, const AttemptSpec& s) {
    Json j;
    j["stage"] = stage;
    j["s"] = s.key.stage;
    j["d"] = s.key.dataId;
    j["a"] = s.attempt;
    j["repo"] = s.repo;
    j["tl"] = s.timeLimitSeconds;
    j["ml"] = static_cast<double>(s.memoryLimitBytes);
    JsonArray outs;
    for (const auto& o : s.outputs) outs.push_back(Json(o));
    j["o"] = std::move(outs);
    JsonArray ins;
    for (const auto& in : s.inputs) {
        JsonArray paths;
        for (const auto& p : in.outputs) paths.push_back(Json(p));
        ins.push_back(
            Json(JsonArray{Json(in.key.stage), Json(in.key.dataId), Json(std::move(paths))}));
    }
    j["i"] = std::move(ins);
    return j;
}

AttemptSpec specFromJson(const Json& j, std::size_t& stage) {
    AttemptSpec s;
    stage = static_cast<std::size_t>(j.get("stage")->asInt());
    s.key = {j.stringOr("s"), j.stringOr("d")};
    s.attempt = static_cast<int>(j.numberOr("a", 1));
    s.repo = j.stringOr("repo");
    s.timeLimitSeconds = j.numberOr("tl", 0);
    s.memoryLimitBytes = static_cast<std::uint64_t>(j.numberOr("ml", 0));
    for (const auto& o : j.get("o")->asArray()) s.outputs.push_back(o.asString());
    for (const auto& in : j.get("i")->asArray()) {
        const auto& a = in.asArray();
        InputRef r{{a.at(0).asString(), a.at(1).asString()}, {}};
        for (const auto& p : a.at(2).asArray()) r.outputs.push_back(p.asString());
        s.inputs.push_back(std::move(r));
    }
    return s;
}

Json outcomeToJson(const AttemptOutcome& o) {
    Json j;
    j["ok"] = o.ok;
    j["killed"] = o.killedOnRequest;
    j["class"] = o.errorClass;
    j["error"] = o.error;
    j["wall"] = o.wallSeconds;
    j["cpu"] = o.cpuSeconds;
    j["rss"] = o.maxRssKb;
    j["msg"] = o.result.message;
    j["flags"] = stringsToJson(o.result.flags);
    j["outputs"] = outputsToJson(o.outputs);
    return j;
}

AttemptOutcome outcomeFromJson(const Json& j) {
    AttemptOutcome o;
    o.ok = j.get("ok")->asBool();
    o.killedOnRequest = j.get("killed")->asBool();
    o.errorClass = j.stringOr("class");
    o.error = j.stringOr("error");
    o.wallSeconds = j.numberOr("wall", 0);
    o.cpuSeconds = j.numberOr("cpu", 0);
    o.maxRssKb = j.numberOr("rss", 0);
    o.result.message = j.stringOr("msg");
    o.result.flags = stringsFromJson(j.get("flags"));
    o.outputs = outputsFromJson(j.get("outputs"));
    return o;
}

// ---------------------------------------------------------------------------------------------

/// Planning plus the state folded from earlier runs: shared by runPipeline and explainTask.
struct PreparedPlan {
    std::unique_ptr<TaskGraph> graph;  // heap: the Schedule keeps a reference across moves
    std::unique_ptr<Schedule> schedule;
    std::vector<std::uint32_t> superseded;  ///< done before, invalidated by options.rerun
    std::size_t priorDone = 0;
};

PreparedPlan preparePlan(const Pipeline& pipeline, const EngineOptions& options) {
    PreparedPlan p{std::make_unique<TaskGraph>(TaskGraph::build(pipeline)), nullptr, {}, 0};
    const auto& g = *p.graph;
    p.schedule = std::make_unique<Schedule>(g);
    History history = foldJournals(options.repo);

    std::vector<char> invalid(g.size(), 0);
    if (!options.rerun.empty()) {
        std::vector<std::uint32_t> roots;
        for (const auto& k : options.rerun) {
            auto t = g.find(k);
            if (!t) throw PlanError("rerun: " + p.schedule->explain(k));
            roots.push_back(*t);
        }
        for (auto t : g.downstream(roots)) invalid[t] = 1;
    }
    for (std::uint32_t t = 0; t < g.size(); ++t) {
        auto it = history.tasks.find(g.key(t));
        if (it == history.tasks.end()) continue;
        const TaskRecord& rec = it->second;
        if (rec.state != "done" && rec.state != "degraded") continue;
        if (invalid[t]) {
            p.superseded.push_back(t);
            continue;
        }
        // The recorded outputs must be exactly the planned ones, and intact.
        std::vector<std::string> recorded;
        for (const auto& o : rec.outputs) recorded.push_back(o.path);
        std::vector<std::string> planned;
        for (const auto& o : g.outputs(t))
            planned.push_back(fs::path(o).lexically_normal().string());
        for (auto& r : recorded) r = fs::path(r).lexically_normal().string();
        if (recorded != planned) continue;
        if (!verifyOutputs(options.repo, rec.outputs, options.verify).empty()) continue;
        p.schedule->markPriorDone(t, rec.state == "degraded", rec.state + " in run " + rec.run);
        ++p.priorDone;
    }
    if (options.select) {
        for (std::uint32_t t = 0; t < g.size(); ++t)
            if (!options.select(g.key(t))) p.schedule->markUnselected(t);
    }
    p.schedule->start();
    return p;
}

// ---------------------------------------------------------------------------------------------

class Coordinator {
  public:
    Coordinator(const Pipeline& pipeline, const EngineOptions& options, MPI_Comm comm, int size)
        : _pipeline(pipeline),
          _opt(options),
          _comm(comm),
          _size(size),
          _log(options.log ? *options.log : std::cerr) {}

    RunSummary run() {
        _t0 = Clock::now();
        setup();
        if (_size == 1)
            runLocal();  // no workers: the coordinator runs every task itself
        else
            runDistributed();
        return finish();
    }

    /// Tells every worker to stop with `exitCode` (used on success and on setup errors).
    void stopWorkers(int exitCode) {
        for (int w = 1; w < _size; ++w) {
            if (_lostWorker.size() > std::size_t(w) && _lostWorker[w]) continue;
            sendText(std::to_string(exitCode), w, kTagStop, _comm);
        }
    }

  private:
    const Pipeline& _pipeline;
    const EngineOptions& _opt;
    MPI_Comm _comm;
    int _size;
    std::ostream& _log;
    Clock::time_point _t0, _lastSync;
    std::optional<PreparedPlan> _plan;
    std::unique_ptr<JournalWriter> _journal;
    std::unique_ptr<Progress> _progress;
    RunSummary _sum;
    std::vector<std::uint8_t> _attempt;
    std::string _host = hostName();
    bool _stopping = false;
    // distributed state
    std::vector<std::deque<std::uint32_t>> _inFlight;  // per worker, in dispatch order
    std::vector<char> _lostWorker;
    std::vector<Clock::time_point> _lastHeard;
    std::vector<std::string> _rankHost;  // learnt from each worker's first result

    const TaskGraph& graph() const { return *_plan->graph; }
    Schedule& schedule() { return *_plan->schedule; }

    void setup() {
        _opt.validate();
        _sum.runId = _opt.runId.empty() ? makeRunId() : _opt.runId;
        _plan.emplace(preparePlan(_pipeline, _opt));
        const auto& g = graph();
        _sum.planned = g.size();
        _sum.planSeconds = g.planSeconds();
        _sum.priorDone = _plan->priorDone;
        _attempt.assign(g.size(), 0);
        _sum.journalPath = (fs::path(journalDir(_opt.repo)) / (_sum.runId + ".jsonl")).string();
        _journal = std::make_unique<JournalWriter>(_sum.journalPath);

        Json start;
        start["event"] = "run_start";
        start["run"] = _sum.runId;
        start["time"] = isoNow();
        start["command"] = _opt.command;
        start["config_hash"] = _opt.configHash;
        start["version"] = _opt.softwareVersion;
        start["ranks"] = _size;
        start["host"] = _host;
        start["pid"] = static_cast<long>(getpid());
        start["isolation"] = _opt.isolation == Isolation::Fork ? "fork" : "in_process";
        start["prior_done"] = _plan->priorDone;
        for (std::size_t s = 0; s < g.stageCount(); ++s)
            start["plan"][g.stageName(s)] = g.stageEnd(s) - g.stageBegin(s);
        _journal->append(start);
        for (auto t : _plan->superseded) {
            Json ev;
            ev["event"] = "supersede";
            ev["run"] = _sum.runId;
            ev["stage"] = g.stageName(g.stageOf(t));
            ev["id"] = g.dataId(t);
            ev["reason"] = "rerun requested";
            _journal->append(ev);
        }
        _sum.superseded = _plan->superseded.size();
        _journal->sync();
        _lastSync = Clock::now();

        std::vector<std::pair<std::string, std::size_t>> totals;
        for (std::size_t s = 0; s < g.stageCount(); ++s)
            totals.emplace_back(g.stageName(s), g.stageEnd(s) - g.stageBegin(s));
        _progress = std::make_unique<Progress>(_log, totals, _opt.progressSeconds);
        for (std::uint32_t t = 0; t < g.size(); ++t) {
            auto st = schedule().state(t);
            if (st == TaskState::Done || st == TaskState::Degraded)
                _progress->addPriorDone(g.stageOf(t));
        }
        if (_opt.progressSeconds > 0)
            _log << "[drp.jobs] run " << _sum.runId << ": " << g.size() << " tasks planned in "
                 << g.planSeconds() << " s, " << _plan->priorDone << " already done, "
                 << _plan->superseded.size() << " superseded, " << _size << " rank(s)" << std::endl;
    }

    AttemptSpec makeSpec(std::uint32_t t) {
        const auto& g = graph();
        const auto& stage = _pipeline.stages()[g.stageOf(t)];
        AttemptSpec s;
        s.temporaryPatterns = _opt.temporaryPatterns;
        s.key = g.key(t);
        s.attempt = _attempt[t];
        s.repo = fs::absolute(_opt.repo).lexically_normal().string();
        s.outputs = g.outputs(t);
        std::vector<std::uint32_t> deps(g.deps(t).begin(), g.deps(t).end());
        std::sort(deps.begin(), deps.end(), [&](auto a, auto b) { return g.key(a) < g.key(b); });
        for (auto d : deps) {
            // Optional inputs that failed or were blocked are not handed over.
            const TaskState st = schedule().state(d);
            if (st != TaskState::Done && st != TaskState::Degraded) continue;
            InputRef r{g.key(d), {}};
            for (const auto& o : g.outputs(d)) r.outputs.push_back((fs::path(s.repo) / o).string());
            s.inputs.push_back(std::move(r));
        }
        s.timeLimitSeconds = stage.limits.timeLimitSeconds > 0 ? stage.limits.timeLimitSeconds
                                                               : _opt.defaultTimeLimitSeconds;
        s.memoryLimitBytes = stage.limits.memoryLimitBytes > 0 ? stage.limits.memoryLimitBytes
                                                               : _opt.defaultMemoryLimitBytes;
        return s;
    }

    Json taskEvent(std::uint32_t t, const char* state) {
        const auto& g = graph();
        Json ev;
        ev["event"] = "task";
        ev["run"] = _sum.runId;
        ev["time"] = isoNow();
        ev["stage"] = g.stageName(g.stageOf(t));
        ev["id"] = g.dataId(t);
        ev["state"] = state;
        return ev;
    }

    void journalRunning(std::uint32_t t, int rank, const std::string& host) {
        Json ev = taskEvent(t, "running");
        ev["attempt"] = _attempt[t];
        ev["rank"] = rank;
        ev["host"] = host;
        _journal->append(ev);
    }

    /// Next task to run, with its attempt number set and its "running" event queued.
    std::uint32_t take() {
        auto t = schedule().popReady();
        ++_attempt[t];
        ++_sum.attempts;
        return t;
    }

    void onOutcome(std::uint32_t t, int rank, const std::string& host, const AttemptOutcome& o) {
        const auto& g = graph();
        const char* state = o.ok ? (o.result.flags.empty() ? "done" : "degraded")
                                 : (o.killedOnRequest ? "interrupted" : "failed");
        Json ev = taskEvent(t, state);
        ev["attempt"] = _attempt[t];
        ev["rank"] = rank;
        ev["host"] = host;
        ev["wall"] = o.wallSeconds;
        ev["cpu"] = o.cpuSeconds;
        ev["maxrss_kb"] = o.maxRssKb;
        if (o.ok) {
            ev["outputs"] = outputsToJson(o.outputs);
            // Inputs, so that `drp rerun` can invalidate downstream work from the journals alone.
            // Beyond kMaxRecordedInputs (a global solve) only the input stages are recorded.
            constexpr std::size_t kMaxRecordedInputs = 64;
            const auto deps = g.deps(t);
            std::vector<std::string> inputs;
            if (deps.size() <= kMaxRecordedInputs) {
                for (auto d : deps) inputs.push_back(g.key(d).str());
                if (!inputs.empty()) ev["inputs"] = stringsToJson(inputs);
            } else {
                std::set<std::string> stages;
                for (auto d : deps) stages.insert(g.stageName(g.stageOf(d)));
                ev["input_stages"] = stringsToJson({stages.begin(), stages.end()});
            }
            if (!o.result.flags.empty()) ev["flags"] = stringsToJson(o.result.flags);
            if (!o.result.message.empty()) ev["message"] = o.result.message;
        } else {
            ev["class"] = o.errorClass;
            ev["error"] = o.error;
        }
        _journal->append(ev);

        if (o.ok) {
            const bool degraded = !o.result.flags.empty();
            schedule().markFinished(t, degraded);
            ++(degraded ? _sum.degraded : _sum.done);
            _progress->addDone(g.stageOf(t));
            return;
        }
        if (o.killedOnRequest) {
            schedule().markInterrupted(t);
            ++_sum.interrupted;
            return;
        }
        if (!_stopping && _attempt[t] <= _opt.retry.retries(o.errorClass)) {
            ++_sum.retried;
            schedule().requeue(t);
            return;
        }
        if (o.errorClass == "lost") ++_sum.lost;
        ++_sum.failed;
        ++_sum.failedByClass[o.errorClass];
        _progress->addFailed(g.stageOf(t));
        auto blocked = schedule().markFailed(t, "[" + o.errorClass + "] " + o.error);
        const std::string by = g.key(t).str();
        for (auto b : blocked) {
            Json bev = taskEvent(b, "blocked");
            bev["blocked_by"] = by;
            _journal->append(bev);
            _progress->addFailed(g.stageOf(b));
        }
        _sum.blocked += blocked.size();
    }

    void housekeeping() {
        _journal->flush();
        if (since(_lastSync) >= _opt.fsyncSeconds) {
            _journal->sync();
            _lastSync = Clock::now();
        }
        _progress->tick(false);
        if (gStopSignal && !_stopping) {
            _stopping = true;
            _sum.interruptedBySignal = true;
            _log << "[drp.jobs] signal " << int(gStopSignal) << ": no new tasks; "
                 << (_opt.onStop == StopPolicy::Kill ? "killing" : "draining")
                 << " the tasks in flight" << std::endl;
            if (_opt.onStop == StopPolicy::Kill)
                for (int w = 1; w < _size; ++w)
                    if (!_inFlight[w].empty() && !_lostWorker[w])
                        sendText("kill", w, kTagKill, _comm);
        }
    }

    void runLocal() {
        const auto& g = graph();
        while (!_stopping && schedule().hasReady()) {
            auto t = take();
            journalRunning(t, 0, _host);
            housekeeping();
            if (_stopping) {  // signal arrived just now: put the task back untouched
                schedule().requeue(t);
                break;
            }
            const auto& fn = _pipeline.stages()[g.stageOf(t)].run;
            auto poll = [this] {
                _progress->tick(false);
                return gStopSignal && _opt.onStop == StopPolicy::Kill;
            };
            auto o = runAttempt(fn, makeSpec(t), _opt.isolation, _opt.errorClassOf, poll,
                                _opt.heartbeatSeconds);
            onOutcome(t, 0, _host, o);
            housekeeping();
        }
    }

    void runDistributed() {
        _inFlight.assign(_size, {});
        _lostWorker.assign(_size, 0);
        _lastHeard.assign(_size, Clock::now());
        _rankHost.assign(_size, "");
        // Free dispatch slots, tasksPerWorker per worker; popped from the back, so every worker
        // gets its first task before any gets a second.
        const int depth = std::max(1, _opt.tasksPerWorker);
        std::vector<int> slots;
        for (int level = 0; level < depth; ++level)
            for (int w = _size - 1; w >= 1; --w) slots.push_back(w);
        const bool detectLost = _opt.isolation == Isolation::Fork;
        // The coordinator's own task slot (see EngineOptions::coordinatorRunsTasks): only with
        // forked tasks, whose supervision loop lets it keep serving the workers.
        const bool ownSlot = _opt.coordinatorRunsTasks && _opt.isolation == Isolation::Fork;
        std::size_t busy = 0;
        bool allLost = false;
        std::string text;

        auto dispatch = [&] {
            while (!_stopping && !slots.empty() && schedule().hasReady()) {
                int w = slots.back();
                slots.pop_back();
                if (_lostWorker[w]) continue;
                auto t = take();
                journalRunning(t, w, _rankHost[w]);
                sendText(specToJson(graph().stageOf(t), makeSpec(t)).dump(), w, kTagTask, _comm);
                if (_inFlight[w].empty()) _lastHeard[w] = Clock::now();
                _inFlight[w].push_back(t);
                ++busy;
            }
        };
        // One round of coordination: hand out work, take every pending message, look for lost
        // workers. Returns whether a message arrived. Also called from the supervision loop of
        // the coordinator's own task, so it must not start a task of its own.
        auto pump = [&] {
            dispatch();
            bool received = false;
            MPI_Status st;
            while (tryReceive(_comm, MPI_ANY_SOURCE, MPI_ANY_TAG, text, st)) {
                received = true;
                const int w = st.MPI_SOURCE;
                _lastHeard[w] = Clock::now();
                // A worker runs its tasks in the order received: results come back in order.
                if (st.MPI_TAG == kTagResult && !_lostWorker[w] && !_inFlight[w].empty()) {
                    Json j = Json::parse(text);
                    auto t = _inFlight[w].front();
                    _inFlight[w].pop_front();
                    --busy;
                    slots.push_back(w);
                    _rankHost[w] = j.stringOr("host");
                    onOutcome(t, w, _rankHost[w], outcomeFromJson(*j.get("outcome")));
                    dispatch();
                }
            }
            if (!received && detectLost) {
                for (int w = 1; w < _size; ++w) {
                    if (_inFlight[w].empty() || _lostWorker[w]) continue;
                    if (since(_lastHeard[w]) < _opt.workerTimeoutSeconds) continue;
                    // Silent while busy: the rank (or its node) is gone. Never talk to it again.
                    _lostWorker[w] = 1;
                    AttemptOutcome o;
                    o.errorClass = "lost";
                    o.error = "worker rank " + std::to_string(w) + " silent for " +
                              std::to_string(_opt.workerTimeoutSeconds) + " s";
                    while (!_inFlight[w].empty()) {
                        auto t = _inFlight[w].front();
                        _inFlight[w].pop_front();
                        --busy;
                        _log << "[drp.jobs] " << o.error << "; its task " << graph().key(t).str()
                             << " is lost" << std::endl;
                        onOutcome(t, w, "", o);
                    }
                }
                allLost = std::count(_lostWorker.begin() + 1, _lostWorker.end(), 1) == _size - 1;
            }
            housekeeping();
            return received;
        };

        Backoff backoff;
        while (true) {
            const bool received = pump();
            if (allLost && !ownSlot) {
                _log << "[drp.jobs] every worker is lost; stopping" << std::endl;
                break;
            }
            if (ownSlot && !_stopping && schedule().hasReady()) {
                // Run one task here; the workers are served about every millisecond meanwhile.
                auto t = take();
                journalRunning(t, 0, _host);
                const auto& fn = _pipeline.stages()[graph().stageOf(t)].run;
                auto poll = [&] {
                    pump();
                    return gStopSignal && _opt.onStop == StopPolicy::Kill;
                };
                auto o = runAttempt(fn, makeSpec(t), _opt.isolation, _opt.errorClassOf, poll,
                                    kCoordinatorPollSeconds);
                onOutcome(t, 0, _host, o);
                housekeeping();
                backoff.reset();
                continue;
            }
            if (busy == 0 && (_stopping || !schedule().hasReady())) break;
            if (received)
                backoff.reset();
            else
                backoff.pause();
        }
    }

    RunSummary finish() {
        auto& s = schedule();
        _sum.notRun = s.count(TaskState::Unselected) + s.count(TaskState::Waiting) +
                      s.count(TaskState::Ready);
        _sum.wallSeconds = since(_t0);
        if (_sum.interruptedBySignal)
            _sum.exitCode = kExitInterrupted;
        else if (_sum.failed > 0 || _sum.blocked > 0 || _sum.lost > 0)
            _sum.exitCode = kExitFailed;
        else
            _sum.exitCode = kExitOk;
        Json end;
        end["event"] = "run_end";
        end["run"] = _sum.runId;
        end["time"] = isoNow();
        end["status"] = _sum.exitCode == kExitOk            ? "complete"
                        : _sum.exitCode == kExitInterrupted ? "interrupted"
                                                            : "failed";
        end["exit_code"] = _sum.exitCode;
        end["wall"] = _sum.wallSeconds;
        end["done"] = _sum.done;
        end["degraded"] = _sum.degraded;
        end["failed"] = _sum.failed;
        end["blocked"] = _sum.blocked;
        end["interrupted"] = _sum.interrupted;
        end["not_run"] = _sum.notRun;
        end["prior_done"] = _sum.priorDone;
        _journal->append(end);
        _journal->sync();
        _progress->tick(true);
        _progress->finish();
        if (_opt.progressSeconds > 0)
            _log << "[drp.jobs] run " << _sum.runId << " " << end.stringOr("status") << ": "
                 << _sum.done << " done, " << _sum.degraded << " degraded, " << _sum.failed
                 << " failed, " << _sum.blocked << " blocked, " << _sum.interrupted
                 << " interrupted, " << _sum.priorDone << " done before, " << _sum.notRun
                 << " not run; " << _sum.wallSeconds << " s" << std::endl;
        return _sum;
    }
};

int workerLoop(const Pipeline& pipeline, const EngineOptions& options, MPI_Comm comm) {
    const std::string host = hostName();
    Backoff backoff;
    std::string text;
    MPI_Status st;
    bool killed = false;  // the run is stopping: tasks still queued here are not started
    while (true) {
        if (!tryReceive(comm, 0, MPI_ANY_TAG, text, st)) {
            backoff.pause();
            continue;
        }
        backoff.reset();
        if (st.MPI_TAG == kTagStop) return std::stoi(text);
        if (st.MPI_TAG == kTagKill) {  // arrived between tasks
            killed = true;
            continue;
        }
        if (st.MPI_TAG != kTagTask) continue;
        std::size_t stage = 0;
        AttemptSpec spec = specFromJson(Json::parse(text), stage);
        spec.temporaryPatterns = options.temporaryPatterns;
        auto poll = [&] {
            sendText("", 0, kTagHeartbeat, comm);
            std::string k;
            MPI_Status ks;
            if (tryReceive(comm, 0, kTagKill, k, ks)) killed = true;
            return killed;
        };
        AttemptOutcome o;
        if (killed) {
            o.killedOnRequest = true;
            o.errorClass = "interrupted";
            o.error = "not started: the run was interrupted";
        } else {
            o = runAttempt(pipeline.stages().at(stage).run, spec, options.isolation,
                           options.errorClassOf, poll, options.heartbeatSeconds);
        }
        Json reply;
        reply["host"] = host;
        reply["outcome"] = outcomeToJson(o);
        sendText(reply.dump(), 0, kTagResult, comm);
    }
}

}  // namespace

RunSummary runPipeline(const Pipeline& pipeline, const EngineOptions& options, MPI_Comm comm) {
    int rank = 0, size = 1;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    SignalGuard signals;
    if (rank != 0) {
        RunSummary s;
        s.exitCode = workerLoop(pipeline, options, comm);
        return s;
    }
    Coordinator coordinator(pipeline, options, comm, size);
    RunSummary summary;
    try {
        summary = coordinator.run();
    } catch (...) {
        coordinator.stopWorkers(kExitConfig);
        throw;
    }
    coordinator.stopWorkers(summary.exitCode);
    return summary;
}

std::string explainTask(const Pipeline& pipeline, const EngineOptions& options,
                        const TaskKey& key) {
    auto plan = preparePlan(pipeline, options);
    return plan.schedule->explain(key);
}

std::vector<TaskKey> failedTasks(const History& history) {
    std::vector<TaskKey> out;
    for (const auto& [key, rec] : history.tasks)
        if (rec.state == "failed" || rec.state == "lost" || rec.state == "interrupted" ||
            rec.state == "blocked" || rec.state == "running")
            out.push_back(key);
    return out;
}

}  // namespace drp::jobs
