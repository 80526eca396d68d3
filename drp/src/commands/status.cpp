// `drp status`: the release manager's view of a repository, folded from every run journal
// (<repo>/runs/*.jsonl): per stage done / degraded / failed (by class) / blocked / running /
// not started, the failed tasks with their errors, the degraded ones with their flags and
// messages, and the runs with their provenance; with --patches, one line per patch with the
// states of its stages instead (jobs::groupStatus on tract and patch). Generic:
// it needs no pipeline definition, only the journals, so it works while a run is in progress and
// on a copy of the runs/ directory.
//
// When the release was submitted to Slurm (`drp submit`), a second section shows each chunk of
// the latest submission: its job, Slurm's state (squeue, then sacct or the job-completion log)
// and how many of its tasks are done; see docs/slurm.md.
#include <algorithm>
#include <cstdio>
#include <iostream>

#include "cli/command.h"
#include "drp/jobs/journal.h"
#include "drp/slurm/commands.h"

namespace po = boost::program_options;

namespace drp {
namespace {

void addOptions(po::options_description& o) {
    o.add_options()("repo", po::value<std::string>()->required(), "repository root")(
        "json", po::bool_switch(), "print one JSON object instead of a table")(
        "task", po::value<std::string>(),
        "STAGE:DATAID — print every journal event of this task (all runs, all attempts)")(
        "no-slurm", po::bool_switch(), "do not ask Slurm about submitted jobs")(
        "patches", po::value<std::string>()->implicit_value("problems"),
        "per patch, the state of each of its stages: 'problems' (the default) lists the patches "
        "with a task that is not done, 'all' every patch");
}

/// One cell of the per-patch table: "done", "3 done", "2 done 1 failed".
std::string stateCell(const std::map<std::string, std::int64_t>& states) {
    std::int64_t total = 0;
    for (const auto& [state, n] : states) total += n;
    std::string cell;
    for (const auto& [state, n] : states) {
        if (n <= 0) continue;
        if (!cell.empty()) cell += ' ';
        if (total > 1) cell.append(std::to_string(n)).append(" ");
        cell += state;
    }
    return cell.empty() ? "-" : cell;
}

/// `drp status --patches`: every patch (tasks whose data id names a tract and a patch) with the
/// states of its stages' tasks, problems only or all, and a summary line.
int patchView(const cli::Invocation& inv, const jobs::History& history, bool all, bool json) {
    const std::vector<jobs::GroupStatus> groups = jobs::groupStatus(history, {"tract", "patch"});
    std::vector<std::string> stages;  // columns: the stages of patch tasks (ordered below)
    for (const auto& g : groups)
        for (const auto& [stage, states] : g.byStage)
            if (std::find(stages.begin(), stages.end(), stage) == stages.end())
                stages.push_back(stage);
    // Pipeline order where known (the order tasks of a patch run in), else alphabetical.
    const std::vector<std::string> order = {"coadd", "deblend", "multifit"};
    std::stable_sort(stages.begin(), stages.end(), [&](const std::string& a, const std::string& b) {
        const auto ia = std::find(order.begin(), order.end(), a) - order.begin();
        const auto ib = std::find(order.begin(), order.end(), b) - order.begin();
        return ia != ib ? ia < ib : a < b;
    });
    // Each patch in one class: failed (a failed, lost, interrupted or blocked task), else
    // unfinished (running or pending), else degraded, else done.
    std::size_t nDone = 0, nDegraded = 0, nFailed = 0, nUnfinished = 0;
    for (const auto& g : groups) {
        bool failed = false, unfinished = false, degraded = false;
        for (const auto& [stage, states] : g.byStage)
            for (const auto& [state, n] : states) {
                if (n <= 0 || state == "done") continue;
                if (state == "degraded")
                    degraded = true;
                else if (state == "running" || state == "not_started")
                    unfinished = true;
                else
                    failed = true;
            }
        nFailed += failed;
        nUnfinished += !failed && unfinished;
        nDegraded += !failed && !unfinished && degraded;
        nDone += !failed && !unfinished && !degraded;
    }
    if (json) {
        jobs::JsonArray rows;
        for (const auto& g : groups) {
            if (!all && g.allDone()) continue;
            jobs::Json row;
            row["tract"] = g.values[0];
            row["patch"] = g.values[1];
            for (const auto& [stage, states] : g.byStage)
                for (const auto& [state, n] : states) row["stages"][stage][state] = n;
            rows.push_back(std::move(row));
        }
        jobs::Json out;
        out["patches"] = std::move(rows);
        out["n_patches"] = groups.size();
        out["n_all_done"] = nDone;
        out["n_degraded"] = nDegraded;
        out["n_unfinished"] = nUnfinished;
        out["n_failed"] = nFailed;
        inv.out << out.dump() << "\n";
    } else {
        inv.out << groups.size() << " patches in the journals: " << nDone << " done, " << nDegraded
                << " done with degraded tasks, " << nUnfinished << " unfinished (running or to be "
                << "redone), " << nFailed << " with failed or blocked tasks\n";
        char cell[64];
        std::snprintf(cell, sizeof cell, "%-8s %-8s", "tract", "patch");
        std::string header = cell;
        for (const auto& st : stages) {
            std::snprintf(cell, sizeof cell, " %-22s", st.c_str());
            header += cell;
        }
        bool any = false;
        for (const auto& g : groups) {
            if (!all && g.allDone()) continue;
            if (!any) inv.out << header << "\n";
            any = true;
            std::snprintf(cell, sizeof cell, "%-8s %-8s", g.values[0].c_str(), g.values[1].c_str());
            std::string line = cell;
            for (const auto& st : stages) {
                const auto it = g.byStage.find(st);
                std::snprintf(cell, sizeof cell, " %-22s",
                              it == g.byStage.end() ? "-" : stateCell(it->second).c_str());
                line += cell;
            }
            inv.out << line << "\n";
        }
    }
    // As the stage table: non-zero while anything is failed or blocked.
    return nFailed == 0 ? 0 : 1;
}

int run(const cli::Invocation& inv) {
    const std::string repo = inv.options["repo"].as<std::string>();
    const auto journals = jobs::readJournals(repo);
    if (inv.options.count("task")) {
        const std::string spec = inv.options["task"].as<std::string>();
        const auto colon = spec.find(':');
        if (colon == std::string::npos)
            throw po::error("--task must be STAGE:DATAID, got '" + spec + "'");
        const std::string stage = spec.substr(0, colon), id = spec.substr(colon + 1);
        std::size_t n = 0;
        for (const auto& jf : journals)
            for (const auto& ev : jf.events)
                if (ev.stringOr("stage") == stage && ev.stringOr("id") == id) {
                    inv.out << ev.dump() << "\n";
                    ++n;
                }
        if (n == 0) inv.err << "drp status: no journal event for " << spec << "\n";
        return n == 0 ? 1 : 0;
    }
    if (inv.options.count("patches")) {
        const std::string which = inv.options["patches"].as<std::string>();
        if (which != "problems" && which != "all")
            throw po::error("--patches takes 'problems' or 'all', got '" + which + "'");
        return patchView(inv, jobs::foldJournals(journals), which == "all",
                         inv.options["json"].as<bool>());
    }
    const auto view = jobs::makeStatusView(jobs::foldJournals(journals));
    const bool slurmSection = !inv.options["no-slurm"].as<bool>();
    slurm::ProcessRunner runner(30);
    if (inv.options["json"].as<bool>()) {
        jobs::Json j = view.toJson();
        if (slurmSection)
            if (jobs::Json s = slurm::statusJson(repo, runner); !s.isNull()) j["slurm"] = s;
        inv.out << j.dump() << "\n";
    } else {
        inv.out << view.toText();
        if (slurmSection)
            if (std::string s = slurm::statusSection(repo, runner); !s.empty())
                inv.out << "\n" << s;
    }
    // Non-zero when anything needs attention, so scripts can gate on it.
    return (view.failures.empty() && view.blocked == 0) ? 0 : 1;
}

const cli::RegisterCommand registration{{
    .name = "status",
    .summary = "Show what is done, running, failed (by class), degraded or blocked, per stage",
    .addOptions = addOptions,
    .run = run,
}};

}  // namespace
}  // namespace drp
