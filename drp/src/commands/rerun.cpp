// `drp rerun`: mark tasks for redoing, with everything that depends on them. Works from the
// journals alone (done events record their inputs), so it needs no pipeline definition: it appends
// a new journal with one "supersede" event per invalidated done task (old journals are never
// edited), and the next `drp run` on the repository redoes exactly those tasks plus whatever is
// failed, blocked or not yet done. Outputs are not deleted: each redone task replaces its files
// atomically, so the repository stays readable meanwhile.
//
//   drp rerun --repo R --stage coadd --ids "tract=1,patch=5;tract=1,patch=6"
//   drp rerun --repo R --task multifit:tract=1,patch=5 --dry-run
//   drp rerun --repo R --failed        # lists what the next run will retry
#include <iostream>
#include <set>

#include "cli/command.h"
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
        "failed", po::bool_switch(),
        "list the failed/blocked/interrupted tasks (the next run retries them)")(
        "dry-run", po::bool_switch(), "print what would be invalidated, write nothing");
}

std::vector<std::string> splitIds(const std::string& s) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start <= s.size()) {
        auto end = s.find(';', start);
        if (end == std::string::npos) end = s.size();
        if (end > start) out.push_back(s.substr(start, end - start));
        start = end + 1;
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
        for (const auto& id : splitIds(inv.options["ids"].as<std::string>()))
            roots.push_back({inv.options["stage"].as<std::string>(), id});
    const bool failed = inv.options["failed"].as<bool>();
    if (roots.empty() && !failed)
        throw po::error("nothing to rerun: give --task, --stage/--ids or --failed");

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
