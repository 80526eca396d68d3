// The pipeline definition (stages, planners, dependencies). The release stage is in
// pipeline_release.cpp.
#include <algorithm>
#include <cmath>
#include <filesystem>

#include "drp/drp/pipeline.h"
#include "drp/io/hdf5.h"
#include "drp/io/hdf5_table.h"

namespace drp::pipeline {

namespace {

using jobs::PlannedTask;
using jobs::TaskKey;

std::vector<std::size_t> exposuresOf(const Registry& reg, TractPatchId tp,
                                     const std::string& band = {}) {
    std::vector<std::size_t> out;
    auto it = reg.overlaps.find(tp);
    if (it == reg.overlaps.end()) return out;
    for (std::size_t i : it->second)
        if (band.empty() || reg.exposures[i].band == band) out.push_back(i);
    return out;
}

const InputExposure& exposureOf(const Registry& reg, const std::string& dataId) {
    auto kv = parseDataId(dataId);
    std::int64_t visit = std::stoll(kv.at("visit"));
    int det = std::stoi(kv.at("det"));
    for (const auto& x : reg.exposures)
        if (x.visit == visit && x.detector == det) return x;
    throw notFound("no exposure " + dataId + " in the ingest registry");
}

TractPatchId patchOf(const std::string& dataId) {
    auto kv = parseDataId(dataId);
    return {std::stoi(kv.at("tract")), std::stoi(kv.at("patch"))};
}

}  // namespace

jobs::Pipeline makePipeline(const Repository& repo, const PipelineConfig& config,
                            std::shared_ptr<const SkyMap> skymap,
                            std::shared_ptr<const Registry> registry) {
    config.validate();
    jobs::Pipeline p;
    const Registry& reg = *registry;
    auto vdCost = [](const InputExposure& x) { return double(x.bbox.area()) / 1e6; };
    // Raw path: master bias/dark/flat and isr (pipeline_isr.cpp); no tasks without raws.
    addCalibrationStages(p, repo, config, registry);

    p.add({"characterize",
           "visit-detector",
           [registry, vdCost] {
               std::vector<PlannedTask> t;
               for (const auto& x : registry->exposures) {
                   // A raw exposure is characterized from its ISR output (x.path).
                   std::vector<TaskKey> deps;
                   if (!x.raw.empty())
                       deps.push_back({"isr", visitDetectorId(x.visit, x.detector)});
                   t.push_back({visitDetectorId(x.visit, x.detector),
                                deps,
                                vdCost(x),
                                {Repository::calexp(x.visit, x.detector),
                                 Repository::characterizeFile(x.visit, x.detector)}});
               }
               return t;
           },
           [repo, config, registry](const jobs::TaskContext& ctx) {
               return runCharacterize(repo, config, exposureOf(*registry, ctx.dataId()));
           },
           {}});
    p.add({"astrometry",
           "visit-detector",
           [registry] {
               std::vector<PlannedTask> t;
               for (const auto& x : registry->exposures) {
                   std::string id = visitDetectorId(x.visit, x.detector);
                   t.push_back({id,
                                {{"characterize", id}},
                                0.1,
                                {Repository::astrometryFile(x.visit, x.detector)}});
               }
               return t;
           },
           [repo, config, registry](const jobs::TaskContext& ctx) {
               return runAstrometry(repo, config, exposureOf(*registry, ctx.dataId()));
           },
           {}});
    jobs::GlobalStageSpec photocal;
    photocal.name = "photocal";
    photocal.gatherKind = "visit-detector";
    photocal.gatherPlan = [registry] {
        std::vector<PlannedTask> t;
        for (const auto& x : registry->exposures) {
            std::string id = visitDetectorId(x.visit, x.detector);
            t.push_back({id, {{"characterize", id}, {"astrometry", id}}, 0.05, {}});
        }
        return t;
    };
    photocal.gather = [repo, config, registry](const jobs::TaskContext& ctx) {
        return gatherPhotocal(repo, config, exposureOf(*registry, ctx.dataId()));
    };
    photocal.solve = [repo, config](const std::vector<std::pair<std::string, std::string>>& blobs,
                                    const jobs::TaskContext&) {
        return solvePhotocal(repo, config, blobs);
    };
    // One global calibration: the joint astrometric solve, then the photometric one.
    photocal.solveOutputs = {Repository::kPhotocal, Repository::kJointAstrometry};
    photocal.solveCost = 1.0;
    // The solve uses every visit-detector that could be gathered; failed ones are left out
    // (and their coadd/multifit inputs skipped) instead of stopping the release.
    photocal.gathersOptional = true;
    auto [gather, solve] = jobs::makeGlobalStages(photocal);
    p.add(gather);
    p.add(solve);

    p.add({"coadd",
           "patch-band",
           [registry] {
               std::vector<PlannedTask> t;
               for (const auto& [tp, idx] : registry->overlaps)
                   for (const auto& band : registry->bands) {
                       auto ex = exposuresOf(*registry, tp, band);
                       if (ex.empty()) continue;
                       PlannedTask pt{patchBandId(tp.tract, tp.patch, band),
                                      {{"photocal", "global"}},
                                      0.0,
                                      {Repository::coadd(tp.tract, tp.patch, band),
                                       Repository::coaddPsf(tp.tract, tp.patch, band)}};
                       // Inputs are optional: a visit-detector that failed leaves the coadd
                       // shallower (it has no zero point and is skipped), it does not block it.
                       for (std::size_t i : ex) {
                           const auto& x = registry->exposures[i];
                           std::string id = visitDetectorId(x.visit, x.detector);
                           pt.optionalDeps.push_back({"characterize", id});
                           pt.optionalDeps.push_back({"astrometry", id});
                           pt.cost += double(x.bbox.area()) / 1e6;
                       }
                       t.push_back(std::move(pt));
                   }
               return t;
           },
           [repo, config, skymap, registry](const jobs::TaskContext& ctx) {
               auto kv = parseDataId(ctx.dataId());
               return runCoadd(repo, config, *skymap, *registry, patchOf(ctx.dataId()),
                               kv.at("band"));
           },
           {}});
    // Patches with every band present: detection and deblending need all bands' coadds.
    auto fullPatches = [registry] {
        std::vector<TractPatchId> out;
        for (const auto& [tp, idx] : registry->overlaps) {
            bool all = true;
            for (const auto& b : registry->bands)
                all = all && !exposuresOf(*registry, tp, b).empty();
            if (all) out.push_back(tp);
        }
        return out;
    };
    p.add({"deblend",
           "patch",
           [registry, fullPatches] {
               std::vector<PlannedTask> t;
               for (TractPatchId tp : fullPatches()) {
                   PlannedTask pt{patchId(tp.tract, tp.patch),
                                  {},
                                  1.0,
                                  {Repository::deblendFile(tp.tract, tp.patch)}};
                   for (const auto& b : registry->bands)
                       pt.deps.push_back({"coadd", patchBandId(tp.tract, tp.patch, b)});
                   t.push_back(std::move(pt));
               }
               return t;
           },
           [repo, config, skymap, registry](const jobs::TaskContext& ctx) {
               return runDeblend(repo, config, *skymap, *registry, patchOf(ctx.dataId()));
           },
           {}});
    p.add({"multifit",
           "patch",
           [registry, fullPatches] {
               std::vector<PlannedTask> t;
               for (TractPatchId tp : fullPatches()) {
                   std::string id = patchId(tp.tract, tp.patch);
                   PlannedTask pt{id,
                                  {{"deblend", id}, {"photocal", "global"}},
                                  0.0,
                                  {Repository::multifitFile(tp.tract, tp.patch)}};
                   for (std::size_t i : exposuresOf(*registry, tp)) {
                       const auto& x = registry->exposures[i];
                       std::string vid = visitDetectorId(x.visit, x.detector);
                       pt.optionalDeps.push_back({"characterize", vid});
                       pt.optionalDeps.push_back({"astrometry", vid});
                       pt.cost += double(x.bbox.area()) / 1e6;
                   }
                   t.push_back(std::move(pt));
               }
               return t;
           },
           [repo, config, skymap, registry](const jobs::TaskContext& ctx) {
               return runMultifit(repo, config, *skymap, *registry, patchOf(ctx.dataId()));
           },
           {}});
    p.add({"release",
           "release",
           [fullPatches] {
               PlannedTask pt{"release", {}, 1.0, {Repository::kRelease}};
               // One failed patch must not stop the release: the release merges the patches
               // that finished and validation reports the missing ones.
               for (TractPatchId tp : fullPatches())
                   pt.optionalDeps.push_back({"multifit", patchId(tp.tract, tp.patch)});
               return std::vector<PlannedTask>{pt};
           },
           [repo, skymap, registry](const jobs::TaskContext&) {
               return runRelease(repo, *skymap, *registry);
           },
           {}});
    (void)reg;
    return p;
}

}  // namespace drp::pipeline
