// `drp status`: the release manager's view of a repository, folded from every run journal
// (<repo>/runs/*.jsonl): per stage done / degraded / failed (by class) / blocked / running /
// not started, the failed tasks with their errors, and the runs with their provenance. Generic:
// it needs no pipeline definition, only the journals, so it works while a run is in progress and
// on a copy of the runs/ directory.
//
// When the release was submitted to Slurm (`drp submit`), a second section shows each chunk of
// the latest submission: its job, Slurm's state (squeue, then sacct or the job-completion log)
// and how many of its tasks are done; see docs/slurm.md.
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
        "no-slurm", po::bool_switch(), "do not ask Slurm about submitted jobs");
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
