// Calibration-product stages (master bias, dark, flat) and instrument signal removal: the raw
// path of the pipeline (see pipeline.h and docs/calibration_products.md).
#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>
#include <tuple>

#include "drp/calib/isr.h"
#include "drp/calib/master_calib.h"
#include "drp/drp/pipeline.h"
#include "drp/io/fits.h"
#include "drp/io/raw_fits.h"

namespace drp::pipeline {

namespace {

using jobs::PlannedTask;

/// Observing day of an MJD: the day rolls over at 12:00 UTC (as Rubin's day_obs, at UTC-12h),
/// so one night's calibrations and science share a day whatever the site.
int observingDay(double mjd) {
    return static_cast<int>(std::floor(mjd - 0.5));
}

/// "bias master for detector 2 (day 60309, exposures 1006-1015, valid MJD 60279.7-60339.7)".
std::string describe(const MasterCalibSpec& m, const Registry& reg) {
    std::ostringstream s;
    s.precision(10);
    s << m.type << " master" << (m.band.empty() ? "" : " (band " + m.band + ")") << " for detector "
      << m.detector << " of day " << m.day << " (exposures "
      << reg.calibExposures[m.inputs.front()].id << "-" << reg.calibExposures[m.inputs.back()].id
      << ", valid MJD " << m.validity.start << "-" << m.validity.end << ")";
    return s.str();
}

/// The Error(calibration_missing) for a unit that needs a `type` master for (detector, band)
/// at `mjd` and finds none valid. Lists what exists for the detector, so the operator sees
/// whether the series is absent or only out of date range.
Error noValidMaster(const std::string& unit, const std::string& type, int detector,
                    const std::string& band, double mjd, const std::vector<MasterCalibSpec>& all,
                    const Registry& reg) {
    std::ostringstream s;
    s.precision(10);
    s << unit << ": no " << type << " master" << (band.empty() ? "" : " for band " + band)
      << " of detector " << detector << " valid at MJD " << mjd;
    std::vector<std::string> others;
    for (const MasterCalibSpec& m : all)
        if (m.type == type && m.detector == detector && m.band == band)
            others.push_back(describe(m, reg));
    if (others.empty()) {
        s << ": the repository holds no " << type << " exposures"
          << (band.empty() ? "" : " in band " + band) << " of detector " << detector;
    } else {
        s << "; candidates:";
        for (const auto& o : others) s << " " << o << ";";
    }
    return Error("calibration_missing", s.str());
}

/// The master `m` as read from its task's output, or Error(calibration_missing) when its task
/// did not succeed in this run or an earlier one (it is not among the task's inputs).
Exposure loadMaster(const jobs::TaskContext& ctx, const Repository& repo, const Registry& reg,
                    const MasterCalibSpec& m, const std::string& unit) {
    const jobs::TaskKey key{m.type, m.dataId()};
    for (const jobs::InputRef& in : ctx.inputs())
        if (in.key == key) {
            try {
                return fits::readExposure(repo.abs(m.path()));
            } catch (Error& e) {
                throw e.addContext(unit + ": reading the " + m.type + " master");
            }
        }
    throw Error("calibration_missing",
                unit + ": the " + describe(m, reg) + " (task " + key.str() + ", " + m.path() +
                    ") is not available: its task failed or was blocked (drp status --explain " +
                    key.str() + ")");
}

/// Reads the raws of a master's inputs, checking that each is what the registry says.
std::vector<RawExposure> readInputs(const Repository& repo, const Registry& reg,
                                    const MasterCalibSpec& m) {
    std::vector<RawExposure> raws;
    for (std::size_t i : m.inputs) {
        const CalibExposure& c = reg.calibExposures[i];
        RawExposure r = fits::readRawExposure(repo.abs(c.path));
        if (r.obsType != c.obsType || r.visitInfo.visit != c.id ||
            r.visitInfo.detector != c.detector)
            throw badInput(repo.abs(c.path) + ": header (OBSTYPE " + r.obsType + ", VISIT " +
                           std::to_string(r.visitInfo.visit) + ", DETECTOR " +
                           std::to_string(r.visitInfo.detector) +
                           ") no longer matches the ingest registry; re-ingest (--reingest)");
        raws.push_back(std::move(r));
    }
    return raws;
}

const MasterCalibSpec& masterOf(const std::vector<MasterCalibSpec>& masters,
                                const std::string& type, const std::string& dataId) {
    for (const MasterCalibSpec& m : masters)
        if (m.type == type && m.dataId() == dataId) return m;
    throw notFound("no " + type + " master " + dataId + " in the plan");
}

const InputExposure& rawExposureOf(const Registry& reg, const std::string& dataId) {
    auto kv = parseDataId(dataId);
    const std::int64_t visit = std::stoll(kv.at("visit"));
    const int det = std::stoi(kv.at("det"));
    for (const auto& x : reg.exposures)
        if (x.visit == visit && x.detector == det && !x.raw.empty()) return x;
    throw notFound("no raw exposure " + dataId + " in the ingest registry");
}

/// The masters a unit needs and their kinds: a dark needs a bias; a flat a bias and a dark; a
/// science raw all three.
std::vector<std::string> neededKinds(const std::string& type) {
    if (type == obs_type::kDark) return {obs_type::kBias};
    if (type == obs_type::kFlat) return {obs_type::kBias, obs_type::kDark};
    if (type == obs_type::kBias) return {};
    return {obs_type::kBias, obs_type::kDark, obs_type::kFlat};
}

jobs::TaskResult runMasterCalib(const jobs::TaskContext& ctx, const Repository& repo,
                                const PipelineConfig& config, const Registry& reg,
                                const std::vector<MasterCalibSpec>& masters,
                                const MasterCalibSpec& m) {
    const std::string unit = m.type + ":" + m.dataId();
    PropertyList prov = provenance(config, m.dataId());
    std::map<std::string, Exposure> used;
    for (const std::string& kind : neededKinds(m.type)) {
        const MasterCalibSpec* dep =
            selectMasterCalib(masters, kind, m.detector, "", m.validity.mjd);
        if (!dep) throw noValidMaster(unit, kind, m.detector, "", m.validity.mjd, masters, reg);
        used.emplace(kind, loadMaster(ctx, repo, reg, *dep, unit));
        prov.set(kind == obs_type::kBias ? "CALBIAS" : "CALDARK", dep->path(),
                 "master subtracted from the inputs");
    }
    std::vector<RawExposure> raws = readInputs(repo, reg, m);
    Exposure master;
    if (m.type == obs_type::kBias)
        master = calib::makeMasterBias(raws, config.masterCalib);
    else if (m.type == obs_type::kDark)
        master = calib::makeMasterDark(raws, used.at(obs_type::kBias), config.masterCalib);
    else
        master = calib::makeMasterFlat(raws, used.at(obs_type::kBias), used.at(obs_type::kDark),
                                       config.masterCalib);
    raws.clear();
    fits::writeExposure(repo.abs(m.path()), master, prov);
    const double rejected = master.metadata().get<double>("REJFRAC", 0.0);
    return {{},
            "NCOMBINE " + std::to_string(m.inputs.size()) + ", rejected " +
                std::to_string(rejected * 100) + "% of input values"};
}

jobs::TaskResult runIsrTask(const jobs::TaskContext& ctx, const Repository& repo,
                            const PipelineConfig& config, const Registry& reg,
                            const std::vector<MasterCalibSpec>& masters, const InputExposure& in) {
    const std::string unit =
        "isr:" + visitDetectorId(in.visit, in.detector) + " (raw " + repo.abs(in.raw) + ")";
    PropertyList prov = provenance(config, visitDetectorId(in.visit, in.detector));
    prov.set("ISR_RAW", in.raw, "raw exposure (relative to the repository)");
    std::map<std::string, Exposure> used;
    for (const std::string& kind : neededKinds(obs_type::kScience)) {
        const std::string band = kind == obs_type::kFlat ? in.band : "";
        const MasterCalibSpec* m = selectMasterCalib(masters, kind, in.detector, band, in.mjd);
        if (!m) throw noValidMaster(unit, kind, in.detector, band, in.mjd, masters, reg);
        used.emplace(kind, loadMaster(ctx, repo, reg, *m, unit));
        prov.set("ISR_" + std::string(kind == obs_type::kBias   ? "BIAS"
                                      : kind == obs_type::kDark ? "DARK"
                                                                : "FLAT"),
                 m->path(), "master calibration applied");
    }
    RawExposure raw = fits::readRawExposure(repo.abs(in.raw));
    if (raw.obsType != obs_type::kScience || raw.visitInfo.visit != in.visit ||
        raw.visitInfo.detector != in.detector || raw.visitInfo.band != in.band)
        throw badInput(unit + ": the header (OBSTYPE " + raw.obsType + ", VISIT " +
                       std::to_string(raw.visitInfo.visit) + ", DETECTOR " +
                       std::to_string(raw.visitInfo.detector) + ", BAND " + raw.visitInfo.band +
                       ") no longer matches the ingest registry; re-ingest (--reingest)");
    calib::IsrCalibrations calibs{&used.at(obs_type::kBias), &used.at(obs_type::kDark),
                                  &used.at(obs_type::kFlat)};
    Exposure out = calib::runIsr(raw, calibs, config.isr);
    PropertyList md = out.metadata();
    md.update(prov);
    out.metadata() = std::move(md);
    fits::writeExposure(repo.abs(in.path), out);
    return {};
}

}  // namespace

std::string MasterCalibSpec::dataId() const {
    std::string id = "day=" + std::to_string(day) + ",det=" + std::to_string(detector);
    if (!band.empty()) id += ",band=" + band;
    return id;
}

std::string MasterCalibSpec::path() const {
    return "calib/" + type + "/" + std::to_string(day) + "/" + (band.empty() ? "" : band + "/") +
           std::to_string(detector) + ".fits";
}

std::vector<MasterCalibSpec> planMasterCalibs(const Registry& reg,
                                              const calib::MasterCalibConfig& config) {
    // (type order, day, detector, band) -> inputs; calibExposures are sorted by (id, detector).
    auto typeOrder = [](const std::string& t) {
        return t == obs_type::kBias ? 0 : t == obs_type::kDark ? 1 : 2;
    };
    std::map<std::tuple<int, int, int, std::string>, MasterCalibSpec> sets;
    for (std::size_t i = 0; i < reg.calibExposures.size(); ++i) {
        const CalibExposure& c = reg.calibExposures[i];
        const int day = observingDay(c.mjd);
        const std::string band = c.obsType == obs_type::kFlat ? c.band : "";
        MasterCalibSpec& m = sets[{typeOrder(c.obsType), day, c.detector, band}];
        m.type = c.obsType;
        m.detector = c.detector;
        m.band = band;
        m.day = day;
        m.inputs.push_back(i);
    }
    std::vector<MasterCalibSpec> out;
    for (auto& [key, m] : sets) {
        std::vector<double> mjds;
        for (std::size_t i : m.inputs) mjds.push_back(reg.calibExposures[i].mjd);
        m.validity = calib::calibValidity(mjds, config.validityDays);
        out.push_back(std::move(m));
    }
    return out;
}

const MasterCalibSpec* selectMasterCalib(const std::vector<MasterCalibSpec>& masters,
                                         const std::string& type, int detector,
                                         const std::string& band, double mjd) {
    std::vector<const MasterCalibSpec*> candidates;
    std::vector<calib::CalibValidity> validity;
    for (const MasterCalibSpec& m : masters)
        if (m.type == type && m.detector == detector && m.band == band) {
            candidates.push_back(&m);
            validity.push_back(m.validity);
        }
    auto best = calib::selectCalibration(validity, mjd);
    return best ? candidates[*best] : nullptr;
}

void addCalibrationStages(jobs::Pipeline& p, const Repository& repo, const PipelineConfig& config,
                          std::shared_ptr<const Registry> registry) {
    auto masters = std::make_shared<const std::vector<MasterCalibSpec>>(
        planMasterCalibs(*registry, config.masterCalib));
    // A unit's masters are *optional* dependencies: it waits for them, and when one failed it
    // fails itself with calibration_missing (naming the master) instead of being blocked, so
    // the journal says which raw lacked which product. Selection is done at plan time (for the
    // dependencies) and again in the task (same registry, same answer).
    auto masterDeps = [masters](PlannedTask& t, const std::vector<std::string>& kinds, int det,
                                const std::string& band, double mjd) {
        for (const std::string& kind : kinds)
            if (const MasterCalibSpec* m = selectMasterCalib(
                    *masters, kind, det, kind == obs_type::kFlat ? band : "", mjd))
                t.optionalDeps.push_back({m->type, m->dataId()});
    };
    for (const char* type : {obs_type::kBias, obs_type::kDark, obs_type::kFlat}) {
        const std::string stage = type;
        p.add({stage,
               stage == obs_type::kFlat ? "day-detector-band" : "day-detector",
               [registry, masters, stage, masterDeps] {
                   std::vector<PlannedTask> t;
                   for (const MasterCalibSpec& m : *masters) {
                       if (m.type != stage) continue;
                       // Cost: input pixels / 1e6 (read, partial ISR and combine are linear).
                       double cost = 0;
                       for (std::size_t i : m.inputs)
                           cost += double(registry->calibExposures[i].bbox.area()) / 1e6;
                       PlannedTask pt{m.dataId(), {}, cost, {m.path()}};
                       masterDeps(pt, neededKinds(stage), m.detector, "", m.validity.mjd);
                       t.push_back(std::move(pt));
                   }
                   return t;
               },
               [repo, config, registry, masters, stage](const jobs::TaskContext& ctx) {
                   return runMasterCalib(ctx, repo, config, *registry, *masters,
                                         masterOf(*masters, stage, ctx.dataId()));
               },
               {}});
    }
    p.add({"isr",
           "visit-detector",
           [registry, masterDeps] {
               std::vector<PlannedTask> t;
               for (const InputExposure& x : registry->exposures) {
                   if (x.raw.empty()) continue;
                   PlannedTask pt{visitDetectorId(x.visit, x.detector),
                                  {},
                                  0.3 * double(x.bbox.area()) / 1e6,
                                  {x.path}};
                   masterDeps(pt, neededKinds(obs_type::kScience), x.detector, x.band, x.mjd);
                   t.push_back(std::move(pt));
               }
               return t;
           },
           [repo, config, registry, masters](const jobs::TaskContext& ctx) {
               return runIsrTask(ctx, repo, config, *registry, *masters,
                                 rawExposureOf(*registry, ctx.dataId()));
           },
           {}});
}

}  // namespace drp::pipeline
