// `drp cancel --repo R`: scancel every job of the repository's latest Slurm submission (and its
// reruns) that is still queued or running, as recorded by `drp submit` in
// R/runs/slurm/submissions.jsonl. Tasks that were running are recorded "interrupted" by the
// engine (it stops on Slurm's SIGTERM); `drp submit --rerun-failed` later resubmits what is not
// done.
#include <iostream>

#include "cli/command.h"
#include "drp/slurm/commands.h"

namespace po = boost::program_options;

namespace drp {
namespace {

void addOptions(po::options_description& o) {
    o.add_options()("repo", po::value<std::string>()->required(), "release repository");
}

int run(const cli::Invocation& inv) {
    slurm::ProcessRunner runner;
    return slurm::cancelCommand(inv.options["repo"].as<std::string>(), runner, inv.out);
}

const cli::RegisterCommand registration{{
    .name = "cancel",
    .summary = "Cancel the queued and running Slurm jobs of the latest submission",
    .addOptions = addOptions,
    .run = run,
}};

}  // namespace
}  // namespace drp
