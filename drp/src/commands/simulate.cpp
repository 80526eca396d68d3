// drp simulate: write a simulated survey (with truth) into a release repository.
//
//   drp simulate --preset demo --out REPO [--seed N]          (also under mpirun: visits are
//                                                               spread over ranks)
// Layout written (see drp/include/drp/drp/pipeline.h): input/visit-<v>/det-<d>.fits,
// refcat/refcat.h5, truth/truth.h5 (tables "objects", "detectors"), skymap.ini (a discrete
// skymap on the field, patch sizes from the preset). Deterministic: same seed, same bytes,
// whatever the number of ranks (each file depends only on the seed and its own ids).
#include <mpi.h>

#include <filesystem>
#include <iostream>

#include "cli/command.h"
#include "drp/drp/pipeline.h"
#include "drp/io/fits.h"
#include "drp/io/hdf5.h"
#include "drp/io/hdf5_table.h"
#include "drp/sim/catalogs.h"
#include "drp/sim/survey.h"

namespace po = boost::program_options;

namespace {

void addOptions(po::options_description& o) {
    o.add_options()("preset", po::value<std::string>()->default_value("tiny"),
                    "tiny, demo or bench")("out", po::value<std::string>()->required(),
                                           "repository to create or fill")(
        "seed", po::value<std::uint64_t>()->default_value(1), "random seed");
}

int run(const drp::cli::Invocation& inv) {
    using namespace drp;
    int init = 0;
    MPI_Initialized(&init);
    bool owns = false;
    if (!init) {
        MPI_Init(nullptr, nullptr);
        owns = true;
    }
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    const std::string outDir = inv.options["out"].as<std::string>();
    const std::uint64_t seed = inv.options["seed"].as<std::uint64_t>();
    sim::SurveyConfig cfg = sim::presetConfig(inv.options["preset"].as<std::string>());
    cfg.validate();
    sim::SurveyPlan plan = sim::makePlan(cfg, seed);
    sim::Camera camera(cfg.camera);
    std::vector<sim::TrueObject> sky = sim::generateSky(cfg.sky, plan.skyRegion, seed);
    pipeline::Repository repo(outDir);
    std::vector<sim::VisitConditions> conds;
    for (const auto& v : plan.visits)
        conds.push_back(sim::drawConditions(v, camera, cfg.observing, seed));
    // Detector images, spread over ranks (round-robin over (visit, detector)).
    int k = 0;
    for (std::size_t vi = 0; vi < plan.visits.size(); ++vi)
        for (int det = 0; det < camera.detectorCount(); ++det, ++k) {
            if (k % size != rank) continue;
            sim::SimulatedDetector d =
                sim::simulateDetector(camera, conds[vi], det, sky, cfg.observing, seed);
            std::string path = repo.abs("input/visit-" + std::to_string(plan.visits[vi].visit) +
                                        "/det-" + std::to_string(det) + ".fits");
            d.exposure.setPsf(nullptr);  // the true PSF is truth, not an input
            fits::writeExposure(path, d.exposure);
        }
    if (rank == 0) {
        std::vector<sim::DetectorTruth> truths;
        for (std::size_t vi = 0; vi < plan.visits.size(); ++vi)
            for (int det = 0; det < camera.detectorCount(); ++det)
                truths.push_back(
                    sim::describeDetector(camera, conds[vi], det, sky, cfg.observing, seed));
        h5::writeTable(repo.abs(pipeline::Repository::kRefcat), "refcat",
                       sim::referenceCatalog(sky, sim::RefcatConfig{}, seed));
        h5::AtomicFile truth(repo.abs(pipeline::Repository::kTruth));
        h5::writeTable(truth.file(), "objects", sim::truthTable(sky));
        h5::writeTable(truth.file(), "detectors", sim::detectorTruthTable(truths, conds));
        truth.commit();
        SkyMapConfig sm;
        sm.type = "discrete";
        sm.discrete.fields = {
            {plan.field.center, degrees(plan.field.halfSizeDeg * std::sqrt(2.0))}};
        sm.discrete.tract.pixelScale = arcseconds(cfg.camera.pixelScaleArcsec);
        sm.discrete.tract.patchInnerDimensions = {cfg.patchInnerPixels, cfg.patchInnerPixels};
        sm.discrete.tract.patchBorder = cfg.patchBorderPixels;
        pipeline::writeSkyMapConfig(repo, sm);
        inv.out << "drp simulate: preset " << cfg.preset << ", seed " << seed << ": "
                << plan.visits.size() << " visits x " << camera.detectorCount() << " detectors, "
                << sky.size() << " objects -> " << repo.root() << "\n";
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (owns) MPI_Finalize();
    return 0;
}

const drp::cli::RegisterCommand reg{
    {.name = "simulate",
     .summary = "Write a simulated survey with truth into a repository",
     .addOptions = addOptions,
     .run = run}};

}  // namespace
