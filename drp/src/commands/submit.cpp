// `drp submit`: run a release on a Slurm cluster as a chain of batch jobs.
//
//   drp submit --repo R [--partition P --account A --qos Q --time 12:00:00 --nodes 1
//               --ranks-per-node 32 --mem 180G --constraint C] [--site FILE] [--dry-run]
//   drp submit --repo R --rerun-failed        # only the chunks that did not complete
//
// The pipeline's stages are grouped into jobs (--groups; default below): the per-visit stages
// and the per-patch stages become job arrays over chunks of units (balanced by the planners'
// predicted costs), the global calibration and the release merge are single jobs; each group
// waits for the previous one with --dependency=afterok. Every job runs `drp run` on the
// repository with the group's --stages and, for an array task, its chunk's --select-file, so the
// journals stay the single record of what is done. Scripts, chunk lists and logs are written under
// R/slurm/<submission>/, the job ids into R/runs/slurm/submissions.jsonl; `drp status` shows the
// Slurm state of every chunk and `drp cancel` cancels what is still queued or running.
// See docs/slurm.md.
#include <unistd.h>

#include <filesystem>
#include <iostream>

#include "cli/command.h"
#include "drp/drp/pipeline.h"
#include "drp/slurm/commands.h"

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace drp {
namespace {

// Master calibrations (raw data only; no tasks otherwise: the group is then left out) and the
// per-visit work as arrays, the global calibration as one job, per-patch work as an array, then
// the release merge. Each array unit is a master frame, a visit-detector (isr -> characterize ->
// astrometry) or a patch (its coadds in every band -> deblend -> multifit).
const char* const kDefaultGroups =
    "masters=bias,dark,flat:array;visit=isr,characterize,astrometry:array;"
    "calibrate=photocal.gather,photocal;patch=coadd,deblend,multifit:array;release=release";

// Predicted costs are in megapixels of input processed (pipeline_build.cpp). A chunk of 2000
// (about 250 full 8-Mpix CCD exposures through characterize+astrometry, or a patch stack of that
// depth through coadd+deblend+multifit) is a few node-hours: long enough that the start-up of a
// job is negligible, short enough for ordinary queue limits. A release smaller than one chunk
// runs as one job per group.
constexpr double kDefaultChunkCost = 2000;

slurm::ChunkingOptions chunkingDefaults() {
    slurm::ChunkingOptions c;
    c.chunkCost = kDefaultChunkCost;
    return c;
}

void addOptions(po::options_description& o) {
    o.add_options()("repo", po::value<std::string>()->required(), "release repository")(
        "groups", po::value<std::string>()->default_value(kDefaultGroups),
        "job groups NAME=STAGE,STAGE[:array];... in pipeline order (':array': job array over "
        "chunks)")("program", po::value<std::string>(),
                   "path of the drp program the jobs run (default: this program)")(
        "run-arg", po::value<std::vector<std::string>>()->composing(),
        "extra `drp run` argument for every job, e.g. --run-arg=--time-limit=3600 "
        "(repeatable)");
    slurm::addSubmitOptions(o, chunkingDefaults());
}

/// Absolute path of the running executable (the jobs run the same build).
std::string selfPath() {
    std::error_code ec;
    auto p = fs::read_symlink("/proc/self/exe", ec);
    if (ec)
        throw std::runtime_error("cannot find the drp executable (/proc/self/exe): " +
                                 ec.message() + "; give --program");
    return p.string();
}

int run(const cli::Invocation& inv) {
    using namespace drp::pipeline;
    const auto& vm = inv.options;
    slurm::SubmitContext ctx;
    ctx.repo = fs::absolute(vm["repo"].as<std::string>()).lexically_normal().string();
    if (ctx.repo.size() > 1 && ctx.repo.back() == '/') ctx.repo.pop_back();
    ctx.program = "drp";
    const std::string program =
        vm.count("program") ? fs::absolute(vm["program"].as<std::string>()).string() : selfPath();
    // Task failures are the engine's business (recorded, dependants blocked, the rest goes on);
    // a job fails Slurm's afterok only when the run itself failed or was interrupted.
    ctx.command = {program, "run", "--repo", ctx.repo, "--tolerate-task-failures"};
    if (vm.count("run-arg"))
        for (const auto& a : vm["run-arg"].as<std::vector<std::string>>()) {
            if (a.rfind("--stages", 0) == 0 || a.rfind("--select-file", 0) == 0 ||
                a.rfind("--repo", 0) == 0)
                throw configError("--run-arg " + a + ": set by drp submit itself");
            ctx.command.push_back(a);
        }
    try {
        ctx.groups = slurm::parseGroups(vm["groups"].as<std::string>());
    } catch (const std::invalid_argument& e) {
        throw configError(std::string("--groups: ") + e.what());
    }
    ctx.chunkingDefaults = chunkingDefaults();
    ctx.plan = [&ctx, &inv] {
        Repository repo(ctx.repo);
        std::shared_ptr<const SkyMap> skymap = makeSkyMap(readSkyMapConfig(repo));
        // The jobs must not race to ingest: do it here, once, as `drp run` would.
        if (!fs::exists(repo.abs(Repository::kIngest))) {
            std::vector<std::string> problems;
            Registry reg = ingest(repo, *skymap, &problems);
            inv.out << "drp submit: ingested " << reg.exposures.size() << " exposures in "
                    << reg.bands.size() << " bands overlapping " << reg.overlaps.size()
                    << " patches\n";
            for (auto& p : problems) inv.err << "drp submit: ingest: skipped " << p << "\n";
        }
        auto registry = std::make_shared<const Registry>(readRegistry(repo));
        PipelineConfig config;
        return jobs::TaskGraph::build(makePipeline(repo, config, skymap, registry));
    };
    slurm::ProcessRunner runner;
    try {
        return slurm::submitCommand(vm, ctx, runner, inv.out);
    } catch (const std::invalid_argument& e) {
        throw configError(e.what());
    }
}

const cli::RegisterCommand registration{{
    .name = "submit",
    .summary = "Submit the release to Slurm as a chain of batch jobs (arrays over chunks)",
    .addOptions = addOptions,
    .run = run,
}};

}  // namespace
}  // namespace drp
