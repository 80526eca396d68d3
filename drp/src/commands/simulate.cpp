// drp simulate: write a simulated survey (with truth) into a release repository.
//
//   drp simulate --preset demo --out REPO [--seed N] [--raw]  (also under mpirun: visits are
//                                                               spread over ranks)
// Layout written (see drp/include/drp/drp/pipeline.h): input/visit-<v>/det-<d>.fits,
// refcat/refcat.h5, truth/truth.h5 (tables "objects", "detectors"), skymap.ini (a discrete
// skymap on the field, patch sizes from the preset). With --raw, instead of input/: the same
// visits as raw exposures raw/exp-<v>/det-<d>.fits (io/raw_fits.h; sim/raw.h: amplifiers with
// overscan, bias, dark current, flat response, gains, saturation), the calibration exposures
// taken before the survey (bias, dark, flats per band; same layout, OBSTYPE says which), and the
// true calibration of every detector in truth/calib/<det>/{bias,dark,flat-<band>}.fits (drp
// exposure files: bias [e-], dark [e-/s], flat [1]; MASK = the sensor's defects).
// Deterministic: same seed, same bytes, whatever the number of ranks (each file depends only on
// the seed and its own ids).
#include <mpi.h>

#include <filesystem>
#include <iostream>

#include "cli/command.h"
#include "drp/drp/pipeline.h"
#include "drp/io/fits.h"
#include "drp/io/hdf5.h"
#include "drp/io/hdf5_table.h"
#include "drp/io/raw_fits.h"
#include "drp/sim/catalogs.h"
#include "drp/sim/raw.h"
#include "drp/sim/survey.h"

namespace po = boost::program_options;
namespace sim = drp::sim;

namespace {

void addOptions(po::options_description& o) {
    o.add_options()("preset", po::value<std::string>()->default_value("tiny"),
                    "tiny, demo or bench")("out", po::value<std::string>()->required(),
                                           "repository to create or fill")(
        "seed", po::value<std::uint64_t>()->default_value(1), "random seed")(
        "raw", po::bool_switch(),
        "write raw exposures and calibration exposures (bias, dark, flats) instead of calibrated "
        "images (drp run then builds master calibrations and runs ISR)")(
        "calib-frames", po::value<int>()->default_value(sim::RawConfig{}.flatCount),
        "with --raw: biases, darks, and flats per band in the calibration series");
}

// Calibrated detector images, spread over ranks (round-robin over (visit, detector)).
void writeCalibrated(const drp::pipeline::Repository& repo, const drp::sim::SurveyConfig& cfg,
                     const drp::sim::SurveyPlan& plan, const drp::sim::Camera& camera,
                     const std::vector<drp::sim::TrueObject>& sky,
                     const std::vector<drp::sim::VisitConditions>& conds, std::uint64_t seed,
                     int rank, int size) {
    using namespace drp;
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
}

// Raw science and calibration exposures and the true calibration (see the file comment), spread
// over ranks round-robin over (exposure, detector); the true calibration of a detector is
// recomputed by every rank that needs it (it depends only on the seed and the detector).
void writeRaw(const drp::pipeline::Repository& repo, const drp::sim::SurveyConfig& cfg,
              const drp::sim::SurveyPlan& plan, const drp::sim::Camera& camera,
              const std::vector<drp::sim::TrueObject>& sky,
              const std::vector<drp::sim::VisitConditions>& conds, std::uint64_t seed,
              int calibFrames, int rank, int size) {
    using namespace drp;
    sim::RawConfig rawConfig;
    rawConfig.biasCount = rawConfig.darkCount = rawConfig.flatCount = calibFrames;
    rawConfig.validate(cfg.camera);
    std::map<int, sim::CalibrationTruth> truths;
    auto truthOf = [&](int det) -> const sim::CalibrationTruth& {
        auto it = truths.find(det);
        if (it == truths.end())
            it = truths
                     .emplace(det, sim::trueCalibration(camera, rawConfig, cfg.observing, det,
                                                        cfg.bands, seed))
                     .first;
        return it->second;
    };
    auto rawPath = [&](std::int64_t id, int det) {
        return repo.abs("raw/exp-" + std::to_string(id) + "/det-" + std::to_string(det) + ".fits");
    };
    int k = 0;
    for (std::size_t vi = 0; vi < plan.visits.size(); ++vi)
        for (int det = 0; det < camera.detectorCount(); ++det, ++k) {
            if (k % size != rank) continue;
            fits::writeRawExposure(
                rawPath(plan.visits[vi].visit, det),
                sim::simulateRawDetector(camera, conds[vi], det, sky, cfg.observing, rawConfig,
                                         truthOf(det), seed));
        }
    for (const sim::CalibExposureSpec& spec : sim::calibrationPlan(plan, rawConfig))
        for (int det = 0; det < camera.detectorCount(); ++det, ++k) {
            if (k % size != rank) continue;
            fits::writeRawExposure(rawPath(spec.id, det),
                                   sim::simulateCalibExposure(camera, spec, det, cfg.observing,
                                                              rawConfig, truthOf(det), seed));
        }
    // The true calibration, one detector per rank in turn.
    for (int det = 0; det < camera.detectorCount(); ++det) {
        if (det % size != rank) continue;
        const sim::CalibrationTruth& t = truthOf(det);
        const std::string dir = "truth/calib/" + std::to_string(det) + "/";
        auto write = [&](const std::string& name, const ImageF& image, const char* what) {
            Exposure e(MaskedImage(image, t.defectMask, ImageF(image.bbox(), 0.0f)));
            e.visitInfo().detector = det;
            e.metadata().set("TRUECAL", what, "true calibration frame of the simulator");
            fits::writeExposure(repo.abs(dir + name + ".fits"), e);
        };
        write("bias", t.bias, "bias structure [e-]");
        write("dark", t.dark, "dark current [e-/s]");
        for (const auto& [band, flat] : t.flats) write("flat-" + band, flat, "flat response");
    }
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
    if (inv.options["raw"].as<bool>()) {
        writeRaw(repo, cfg, plan, camera, sky, conds, seed, inv.options["calib-frames"].as<int>(),
                 rank, size);
    } else {
        writeCalibrated(repo, cfg, plan, camera, sky, conds, seed, rank, size);
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
