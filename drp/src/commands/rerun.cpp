// `drp rerun`: mark tasks for redoing, with everything that depends on them. Works from the
// journals alone (done events record their inputs), so it needs no pipeline definition: it appends
// a new journal with one "supersede" event per invalidated done task (old journals are never
// edited), and the next `drp run` on the repository redoes exactly those tasks plus whatever is
// failed, blocked or not yet done. Outputs are not deleted: each redone task replaces its files
// atomically, so the repository stays readable meanwhile.
//
//   drp rerun --repo R --stage coadd --ids "tract=1,patch=5;tract=1,patch=6"
//   drp rerun --repo R --task multifit:tract=1,patch=5 --dry-run
//   drp rerun --repo R --patches "1:5;1:6" --from-stage deblend
//   drp rerun --repo R --failed        # lists what the next run will retry
//
// --patches selects every task whose data id names one of the patches (tract=T,patch=P, any
// band): by default the patch's tasks of every stage (from its coadds on), with --from-stage S
// only its tasks of stage S; in both cases everything downstream follows (a later stage of the
// patch, the release).
#include <iostream>
#include <set>

#include "cli/command.h"
#include "drp/drp/multifit_checkpoint.h"
#include "drp/jobs/engine.h"
#include "drp/jobs/journal.h"

namespace po = boost::program_options;

namespace drp {
namespace {

void addOptions(po::options_description& o) {
    o.add_options()("repo", po::value<std::string>()->required(), "repository root")(
        "task", po::value<std::vector<std::string>>()->composing(),
        "STAGE:DATAID to redo (repeatable)")("stage", po::value<std::string>(),
                                             "stage of the --ids")(
        "ids", po::value<std::string>(), "data ids of --stage to redo, separated by ';'")(
        "patches", po::value<std::string>(),
        "patches to redo, separated by ';' or spaces: T:P or tract=T,patch=P")(
        "from-stage", po::value<std::string>(),
        "with --patches: redo the patches from this stage on (default: every stage)")(
        "failed", po::bool_switch(),
        "list the failed/blocked/interrupted tasks (the next run retries them)")(
        "dry-run", po::bool_switch(), "print what would be invalidated, write nothing");
}

/// Non-empty pieces of `s` between any of the characters of `separators`.
std::vector<std::string> splitList(const std::string& s, const std::string& separators) {
    std::vector<std::string> out;
    std::string piece;
    for (char c : s + separators.substr(0, 1)) {
        if (separators.find(c) == std::string::npos) {
            piece += c;
        } else if (!piece.empty()) {
            out.push_back(piece);
            piece.clear();
        }
    }
    return out;
}

/// "T:P" or "tract=T,patch=P" -> (T, P); a usage error otherwise.
std::pair<std::string, std::string> parsePatch(const std::string& text) {
    auto isNumber = [](const std::string& s) {
        return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
    };
    std::string tract, patch;
    if (auto colon = text.find(':'); colon != std::string::npos) {
        tract = text.substr(0, colon);
        patch = text.substr(colon + 1);
    } else if (text.rfind("tract=", 0) == 0) {
        auto comma = text.find(",patch=");
        if (comma != std::string::npos) {
            tract = text.substr(6, comma - 6);
            patch = text.substr(comma + 7);
        }
    }
    if (!isNumber(tract) || !isNumber(patch))
        throw po::error("--patches: '" + text + "' is not T:P or tract=T,patch=P");
    return {tract, patch};
}

/// Whether a data id ("tract=1,patch=5,band=r") names this (tract, patch).
bool namesPatch(const std::string& dataId, const std::pair<std::string, std::string>& tp) {
    const auto kv = jobs::dataIdFields(dataId);
    const auto t = kv.find("tract"), p = kv.find("patch");
    return t != kv.end() && p != kv.end() && t->second == tp.first && p->second == tp.second;
}

/// The tasks of the journals that --patches/--from-stage select; a usage error names a patch
/// or stage without tasks.
std::vector<jobs::TaskKey> patchTasks(const jobs::History& history, const std::string& list,
                                      const std::string& fromStage) {
    const auto items = splitList(list, "; \t\n");
    if (items.empty()) throw po::error("--patches: empty list");
    std::vector<jobs::TaskKey> out;
    for (const auto& text : items) {
        const auto tp = parsePatch(text);
        std::set<std::string> stages;
        std::size_t n = 0;
        for (const auto& [key, rec] : history.tasks) {
            if (!namesPatch(key.dataId, tp)) continue;
            stages.insert(key.stage);
            if (!fromStage.empty() && key.stage != fromStage) continue;
            out.push_back(key);
            ++n;
        }
        if (n > 0) continue;
        std::string known;
        for (const auto& s : stages) known += (known.empty() ? "" : ", ") + s;
        throw po::error("--patches: no task " +
                        (fromStage.empty() ? std::string() : "of stage " + fromStage + " ") +
                        "for tract=" + tp.first + ",patch=" + tp.second + " in the journals" +
                        (known.empty() ? std::string(" (no stage has one)")
                                       : " (stages with tasks for it: " + known + ")"));
    }
    return out;
}

int run(const cli::Invocation& inv) {
    const std::string repo = inv.options["repo"].as<std::string>();
    const auto history = jobs::foldJournals(repo);
    std::vector<jobs::TaskKey> roots;
    if (inv.options.count("task"))
        for (const auto& t : inv.options["task"].as<std::vector<std::string>>())
            roots.push_back(jobs::parseTaskKey(t));
    if (inv.options.count("ids") != inv.options.count("stage"))
        throw po::error("--stage and --ids go together");
    if (inv.options.count("ids"))
        for (const auto& id : splitList(inv.options["ids"].as<std::string>(), ";"))
            roots.push_back({inv.options["stage"].as<std::string>(), id});
    if (inv.options.count("from-stage") && !inv.options.count("patches"))
        throw po::error("--from-stage goes with --patches");
    if (inv.options.count("patches")) {
        const std::string from =
            inv.options.count("from-stage") ? inv.options["from-stage"].as<std::string>() : "";
        for (auto& k : patchTasks(history, inv.options["patches"].as<std::string>(), from))
            roots.push_back(std::move(k));
    }
    const bool failed = inv.options["failed"].as<bool>();
    if (roots.empty() && !failed)
        throw po::error("nothing to rerun: give --task, --stage/--ids, --patches or --failed");

    for (const auto& r : roots)
        if (!history.tasks.count(r))
            throw po::error("task " + r.str() + " appears in no journal of " + repo);
    const auto invalid = jobs::recordedDownstream(history, roots);
    for (const auto& k : invalid) inv.out << "supersede " << k.str() << "\n";
    if (failed)
        for (const auto& k : jobs::failedTasks(history))
            inv.out << "retry " << k.str() << " (" << history.tasks.at(k).state << ")\n";
    if (!invalid.empty() && !inv.options["dry-run"].as<bool>()) {
        const auto path =
            jobs::writeSupersedeJournal(repo, invalid, "drp rerun", "rerun requested");
        inv.out << invalid.size() << " done task(s) superseded in " << path
                << "; the next `drp run` redoes them\n";
    }
    // A rerun recomputes: a multifit task's in-patch checkpoint (left by an interrupted attempt)
    // must not be replayed into it.
    if (!inv.options["dry-run"].as<bool>()) {
        std::set<jobs::TaskKey> redo(invalid.begin(), invalid.end());
        redo.insert(roots.begin(), roots.end());
        for (const auto& k : redo)
            if (k.stage == "multifit" && pipeline::discardMultifitCheckpoint(repo, k.dataId))
                inv.out << "discarded the multifit checkpoint of " << k.str() << "\n";
    }
    return 0;
}

const cli::RegisterCommand registration{{
    .name = "rerun",
    .summary = "Invalidate tasks and everything downstream so that the next run redoes them",
    .addOptions = addOptions,
    .run = run,
}};

}  // namespace
}  // namespace drp
