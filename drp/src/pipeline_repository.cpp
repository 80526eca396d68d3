// Repository paths, data ids, skymap.ini, ingest and the pipeline's shared helpers.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "drp/core/atomic_file.h"
#include "drp/core/wcs.h"
#include "drp/drp/pipeline.h"
#include "drp/drp/version.h"
#include "drp/io/fits.h"
#include "drp/io/hdf5.h"
#include "drp/io/hdf5_table.h"
#include "drp/io/raw_fits.h"

namespace drp::pipeline {

namespace fs = std::filesystem;

void PipelineConfig::validate() const {
    characterize.validate();
    astrometry.validate();
    photocal.validate();
    assemble.validate();
    detect.validate();
    deblend.validate();
    multifit.validate();
    masterCalib.validate();
    isr.validate();
    if (!(photocalMinSnr > 0)) throw configError("photocal_min_snr must be > 0");
    if (!(photocalMatchRadius > 0)) throw configError("photocal_match_radius must be > 0");
    if (!(photocalStarSizeTolerance > 0))
        throw configError("photocal_star_size_tolerance must be > 0");
    if (multifitMinHalfSize < 3 || multifitMaxHalfSize < multifitMinHalfSize)
        throw configError("multifit cutout sizes must satisfy 3 <= min <= max");
}

std::string PipelineConfig::hash() const {
    // The configuration's observable content: every value that changes outputs.
    std::ostringstream s;
    s.precision(17);
    s << "char:" << characterize.detection.thresholdSigma << "," << characterize.psfMinSnr << ","
      << characterize.reserveFraction << ";ast:" << astrometry.sipOrder << ","
      << astrometry.maxOffset.asArcseconds() << ";phot:" << photocal.errorPedestal << ","
      << photocal.clipSigma << "," << photocalMinSnr << "," << photocalMatchRadius << ","
      << photocalStarSizeTolerance << "," << characterize.calibApertureRadius
      << ";warp:" << warp.lanczosOrder << "," << warp.interpLength
      << ";asm:" << assemble.outlierSigma << ";det:" << detect.detection.thresholdSigma << ","
      << detect.peakMergeRadius << "," << detect.detection.nSigmaToGrow << ","
      << detect.detection.minPeakSeparation << "," << detect.detection.minPeakProminence << ","
      << detect.shoulderPeaks << "," << detect.shoulderMinSeparation << "," << detect.resolvedPairs
      << "," << detect.shoulderMinFraction << ";deb:" << deblend.maxIterations << ","
      << deblend.relativeTolerance << "," << deblend.maxPeaks << "," << deblend.maxPixels << ","
      << deblend.minIterations << "," << deblend.residualPeaks << "," << deblend.residualThreshold
      << "," << deblend.prune << ";mf:" << multifit.maxIterations << "," << multifit.relTolerance
      << "," << multifitMinHalfSize << "," << multifitMaxHalfSize << ";mc:" << masterCalib.clipSigma
      << "," << masterCalib.maxIterations << "," << masterCalib.growSigma << ","
      << masterCalib.growRadius << "," << masterCalib.minInputs << "," << masterCalib.validityDays
      << "," << masterCalib.hotDarkThreshold << "," << masterCalib.deadFlatThreshold << ","
      << masterCalib.hotFlatThreshold << ";isr:" << isr.overscanClipSigma << ","
      << isr.overscanSmoothRows << "," << isr.suspectGrow;
    return sha256Hex(s.str());
}

Repository::Repository(std::string root) : _root(fs::absolute(root).lexically_normal().string()) {
    while (_root.size() > 1 && _root.back() == '/') _root.pop_back();
}

std::string Repository::visitDir(std::int64_t visit, int det) {
    return "visit/" + std::to_string(visit) + "/" + std::to_string(det);
}
std::string Repository::patchDir(int tract, int patch) {
    return "patch/" + std::to_string(tract) + "/" + std::to_string(patch);
}
std::string Repository::coadd(int tract, int patch, const std::string& band) {
    return patchDir(tract, patch) + "/coadd-" + band + ".fits";
}
std::string Repository::coaddPsf(int tract, int patch, const std::string& band) {
    return patchDir(tract, patch) + "/coadd-" + band + "-psf.h5";
}

std::string visitDetectorId(std::int64_t visit, int det) {
    return "visit=" + std::to_string(visit) + ",det=" + std::to_string(det);
}
std::string patchId(int tract, int patch) {
    return "tract=" + std::to_string(tract) + ",patch=" + std::to_string(patch);
}
std::string patchBandId(int tract, int patch, const std::string& band) {
    return patchId(tract, patch) + ",band=" + band;
}

std::map<std::string, std::string> parseDataId(const std::string& id) {
    std::map<std::string, std::string> out;
    std::stringstream ss(id);
    std::string item;
    while (std::getline(ss, item, ',')) {
        auto eq = item.find('=');
        if (eq == std::string::npos || eq == 0) throw badInput("malformed data id '" + id + "'");
        out[item.substr(0, eq)] = item.substr(eq + 1);
    }
    return out;
}

std::optional<std::string> errorClassOf(const std::exception& e) {
    if (auto* d = dynamic_cast<const Error*>(&e)) return d->errorClass();
    return std::nullopt;
}

PropertyList provenance(const PipelineConfig& config, const std::string& dataId) {
    PropertyList p;
    p.set("DRP_VERSION", drp::versionString(), "drp software version");
    p.set("DRP_CONFIG_HASH", config.hash(), "SHA-256 of the pipeline configuration");
    p.set("DRP_DATA_ID", dataId, "data id of the task that wrote this");
    return p;
}

// ---- skymap.ini ------------------------------------------------------------------------------

SkyMapConfig readSkyMapConfig(const Repository& repo) {
    SkyMapConfig cfg;
    std::string path = repo.abs(Repository::kSkyMap);
    std::ifstream in(path);
    if (!in) return cfg;  // default: the whole-sky ring skymap
    std::map<std::string, std::string> kv;
    std::string line;
    int lineNo = 0;
    while (std::getline(in, line)) {
        ++lineNo;
        auto hash = line.find('#');
        if (hash != std::string::npos) line.resize(hash);
        auto eq = line.find('=');
        auto trim = [](std::string s) {
            s.erase(0, s.find_first_not_of(" \t\r"));
            s.erase(s.find_last_not_of(" \t\r") + 1);
            return s;
        };
        if (trim(line).empty()) continue;
        if (eq == std::string::npos)
            throw configError(path + ":" + std::to_string(lineNo) + ": expected key = value");
        kv[trim(line.substr(0, eq))] = trim(line.substr(eq + 1));
    }
    auto num = [&](const std::string& k, double def) {
        auto it = kv.find(k);
        if (it == kv.end()) return def;
        try {
            std::size_t used = 0;
            double v = std::stod(it->second, &used);
            if (used != it->second.size()) throw std::invalid_argument("trailing");
            kv.erase(it);
            return v;
        } catch (const std::exception&) {
            throw configError(path + ": " + k + " = '" + it->second + "' is not a number");
        }
    };
    std::string type = kv.count("type") ? kv["type"] : "rings";
    kv.erase("type");
    TractGeometryConfig geom = type == "discrete" ? cfg.discrete.tract : cfg.rings.tract;
    geom.pixelScale = arcseconds(num("pixel_scale", geom.pixelScale.asArcseconds()));
    int inner = static_cast<int>(num("patch_inner", geom.patchInnerDimensions.x));
    geom.patchInnerDimensions = {inner, inner};
    geom.patchBorder = static_cast<int>(num("patch_border", geom.patchBorder));
    if (type == "discrete") {
        cfg.type = "discrete";
        DiscreteField f{SpherePoint::fromDegrees(num("ra", 0), num("dec", 0)),
                        degrees(num("radius", 0.1))};
        cfg.discrete.fields = {f};
        cfg.discrete.tract = geom;
    } else if (type == "rings") {
        cfg.rings.numRings = static_cast<int>(num("num_rings", cfg.rings.numRings));
        cfg.rings.tract = geom;
    } else {
        throw configError(path + ": unknown skymap type '" + type + "' (rings, discrete)");
    }
    if (!kv.empty()) throw configError(path + ": unknown key '" + kv.begin()->first + "'");
    cfg.validate();
    return cfg;
}

void writeSkyMapConfig(const Repository& repo, const SkyMapConfig& cfg) {
    AtomicFile out(repo.abs(Repository::kSkyMap));
    {
        std::ofstream f(out.tempPath());
        f.precision(12);
        const TractGeometryConfig& g =
            cfg.type == "discrete" ? cfg.discrete.tract : cfg.rings.tract;
        f << "# drp skymap definition (read by drp run / drp skymap)\n";
        f << "type = " << cfg.type << "\n";
        if (cfg.type == "discrete") {
            if (cfg.discrete.fields.size() != 1)
                throw configError("skymap.ini holds exactly one discrete field");
            const auto& fl = cfg.discrete.fields.front();
            f << "ra = " << fl.centre.ra().asDegrees() << "\ndec = " << fl.centre.dec().asDegrees()
              << "\nradius = " << fl.radius.asDegrees() << "\n";
        } else {
            f << "num_rings = " << cfg.rings.numRings << "\n";
        }
        f << "pixel_scale = " << g.pixelScale.asArcseconds()
          << "\npatch_inner = " << g.patchInnerDimensions.x << "\npatch_border = " << g.patchBorder
          << "\n";
        if (!f) throw ioError("cannot write " + out.tempPath());
    }
    out.commit();
}

// ---- ingest ----------------------------------------------------------------------------------

namespace {
int bandOrder(const std::string& b) {
    static const std::vector<std::string> order{"u", "g", "r", "i", "z", "y"};
    auto it = std::find(order.begin(), order.end(), b);
    return it == order.end() ? 100 : int(it - order.begin());
}

std::vector<fs::path> fitsFilesUnder(const fs::path& dir) {
    std::vector<fs::path> files;
    if (!fs::is_directory(dir)) return files;
    for (auto& e : fs::recursive_directory_iterator(dir))
        if (e.is_regular_file() && e.path().extension() == ".fits") files.push_back(e.path());
    std::sort(files.begin(), files.end());
    return files;
}

/// Corners of a detector from its header WCS, grown by 100 px: the header WCS may be off by
/// arcseconds, and patches just outside must still receive the detector.
std::vector<SpherePoint> grownCorners(const Wcs& wcs, int nx, int ny) {
    std::vector<SpherePoint> out;
    for (Point2D c : {Point2D(-100, -100), Point2D(nx + 99, -100), Point2D(nx + 99, ny + 99),
                      Point2D(-100, ny + 99)})
        out.push_back(wcs.pixelToSky(c));
    return out;
}

/// Registers the raw exposures under REPO/raw (io/raw_fits.h; only the primary header is read):
/// science raws become InputExposures whose `path` is their ISR output, calibration raws
/// CalibExposures. Bad files go to `problems`.
void ingestRaws(const Repository& repo, Registry& reg, std::vector<std::string>* problems) {
    for (const fs::path& p : fitsFilesUnder(repo.abs("raw"))) {
        try {
            fits::FitsHeader h = fits::readHeader(p.string(), 0);
            const PropertyList& md = h.metadata;
            const std::string type = md.get<std::string>("OBSTYPE");
            const std::int64_t id = md.get<std::int64_t>("VISIT");
            const int det = static_cast<int>(md.get<std::int64_t>("DETECTOR"));
            const double mjd = md.get<double>("MJD-OBS");
            const Box2I box = fits::fromSection(md.get<std::string>("DETSIZE"), "DETSIZE");
            const std::string rel = fs::relative(p, repo.root()).string();
            if (type == obs_type::kScience) {
                InputExposure x;
                x.visit = id;
                x.detector = det;
                x.band = md.get<std::string>("BAND");
                x.mjd = mjd;
                x.path = Repository::postIsr(id, det);
                x.raw = rel;
                x.bbox = Box2I({0, 0}, box.dimensions());
                x.corners = grownCorners(*Wcs::fromFitsHeader(h.cards, p.string()), box.width(),
                                         box.height());
                reg.exposures.push_back(std::move(x));
            } else if (type == obs_type::kBias || type == obs_type::kDark ||
                       type == obs_type::kFlat) {
                CalibExposure c;
                c.id = id;
                c.detector = det;
                c.obsType = type;
                c.band = type == obs_type::kFlat ? md.get<std::string>("BAND") : "";
                if (type == obs_type::kFlat && c.band.empty())
                    throw badInput("a flat without BAND");
                c.mjd = mjd;
                c.exposureTime = md.get<double>("EXPTIME");
                c.path = rel;
                c.bbox = Box2I({0, 0}, box.dimensions());
                reg.calibExposures.push_back(std::move(c));
            } else {
                throw badInput("unknown OBSTYPE '" + type + "'");
            }
        } catch (const std::exception& e) {
            if (problems) problems->push_back(p.string() + ": " + e.what());
        }
    }
    std::sort(reg.calibExposures.begin(), reg.calibExposures.end(),
              [](const CalibExposure& a, const CalibExposure& b) {
                  return std::tie(a.id, a.detector) < std::tie(b.id, b.detector);
              });
    for (std::size_t i = 1; i < reg.calibExposures.size(); ++i) {
        const CalibExposure &a = reg.calibExposures[i - 1], &b = reg.calibExposures[i];
        if (a.id == b.id && a.detector == b.detector)
            throw badInput("two raw files for exposure " + std::to_string(a.id) + " detector " +
                           std::to_string(a.detector) + ": " + a.path + " and " + b.path);
    }
}

Table calibExposureTable(const std::vector<CalibExposure>& calibs) {
    Table t;
    auto& id = t.addColumn<std::int64_t>("id", "", "exposure id");
    auto& det = t.addColumn<std::int32_t>("detector", "", "detector id");
    auto& type = t.addColumn<std::string>("obs_type", "", "bias, dark or flat");
    auto& band = t.addColumn<std::string>("band", "", "band (flats)");
    auto& mjd = t.addColumn<double>("mjd", "d", "MJD at the start of the exposure");
    auto& exp = t.addColumn<double>("exposure_time", "s", "exposure time");
    auto& path = t.addColumn<std::string>("path", "", "raw file, relative to the repository root");
    auto& w = t.addColumn<std::int32_t>("width", "pixel", "assembled detector width");
    auto& h = t.addColumn<std::int32_t>("height", "pixel", "assembled detector height");
    for (const CalibExposure& c : calibs) {
        id.push_back(c.id);
        det.push_back(c.detector);
        type.push_back(c.obsType);
        band.push_back(c.band);
        mjd.push_back(c.mjd);
        exp.push_back(c.exposureTime);
        path.push_back(c.path);
        w.push_back(c.bbox.width());
        h.push_back(c.bbox.height());
    }
    return t;
}

std::vector<CalibExposure> calibExposuresFrom(const Table& t) {
    std::vector<CalibExposure> out;
    for (std::size_t i = 0; i < t.numRows(); ++i) {
        CalibExposure c;
        c.id = t.column<std::int64_t>("id")[i];
        c.detector = t.column<std::int32_t>("detector")[i];
        c.obsType = t.column<std::string>("obs_type")[i];
        c.band = t.column<std::string>("band")[i];
        c.mjd = t.column<double>("mjd")[i];
        c.exposureTime = t.column<double>("exposure_time")[i];
        c.path = t.column<std::string>("path")[i];
        c.bbox = Box2I({0, 0},
                       {t.column<std::int32_t>("width")[i], t.column<std::int32_t>("height")[i]});
        out.push_back(std::move(c));
    }
    return out;
}

}  // namespace

Registry ingest(const Repository& repo, const SkyMap& skymap, std::vector<std::string>* problems) {
    Registry reg;
    fs::path inputDir = repo.abs("input");
    if (!fs::is_directory(inputDir) && !fs::is_directory(repo.abs("raw")))
        throw notFound("no input directory " + inputDir.string() + " and no raw directory " +
                       repo.abs("raw"));
    for (const fs::path& p : fitsFilesUnder(inputDir)) {
        try {
            fits::FitsHeader h = fits::readHeader(p.string(), std::string("IMAGE"));
            const PropertyList& md = h.metadata;
            InputExposure x;
            x.visit = md.get<std::int64_t>("VISIT");
            x.detector = static_cast<int>(md.get<std::int64_t>("DETECTOR"));
            x.band = md.get<std::string>("BAND");
            x.mjd = md.get<double>("MJD-OBS", 0.0);
            x.path = fs::relative(p, repo.root()).string();
            int nx = static_cast<int>(md.get<std::int64_t>("NAXIS1")),
                ny = static_cast<int>(md.get<std::int64_t>("NAXIS2"));
            x.bbox = Box2I({0, 0}, {nx, ny});
            x.corners = grownCorners(*Wcs::fromFitsHeader(h.cards, p.string()), nx, ny);
            reg.exposures.push_back(std::move(x));
        } catch (const std::exception& e) {
            if (problems) problems->push_back(p.string() + ": " + e.what());
        }
    }
    ingestRaws(repo, reg, problems);
    std::sort(reg.exposures.begin(), reg.exposures.end(),
              [](const InputExposure& a, const InputExposure& b) {
                  return std::tie(a.visit, a.detector) < std::tie(b.visit, b.detector);
              });
    for (std::size_t i = 1; i < reg.exposures.size(); ++i)
        if (reg.exposures[i].visit == reg.exposures[i - 1].visit &&
            reg.exposures[i].detector == reg.exposures[i - 1].detector)
            throw badInput("two input files for visit " + std::to_string(reg.exposures[i].visit) +
                           " detector " + std::to_string(reg.exposures[i].detector) + ": " +
                           reg.exposures[i - 1].path + " and " + reg.exposures[i].path);
    for (std::size_t i = 0; i < reg.exposures.size(); ++i) {
        const auto& x = reg.exposures[i];
        if (std::find(reg.bands.begin(), reg.bands.end(), x.band) == reg.bands.end())
            reg.bands.push_back(x.band);
        for (const TractPatchId& tp : skymap.findOverlaps(x.corners)) reg.overlaps[tp].push_back(i);
    }
    std::sort(reg.bands.begin(), reg.bands.end(),
              [](auto& a, auto& b) { return bandOrder(a) < bandOrder(b); });

    // Write the registry: exposures and the overlap table.
    Table ex;
    auto& cv = ex.addColumn<std::int64_t>("visit", "", "visit id");
    auto& cd = ex.addColumn<std::int32_t>("detector", "", "detector id");
    auto& cb = ex.addColumn<std::string>("band", "", "band");
    auto& cm = ex.addColumn<double>("mjd", "d", "MJD at the start of the exposure");
    auto& cp = ex.addColumn<std::string>("path", "", "input file, relative to the repository root");
    auto& cr = ex.addColumn<std::string>(
        "raw", "", "raw file (relative) when `path` is its ISR output; empty: calibrated input");
    auto& cw = ex.addColumn<std::int32_t>("width", "pixel", "image width");
    auto& ch = ex.addColumn<std::int32_t>("height", "pixel", "image height");
    std::vector<std::vector<double>*> corner;
    for (int k = 0; k < 4; ++k) {
        corner.push_back(&ex.addColumn<double>("corner" + std::to_string(k) + "_ra", "deg",
                                               "grown header-WCS corner"));
        corner.push_back(&ex.addColumn<double>("corner" + std::to_string(k) + "_dec", "deg",
                                               "grown header-WCS corner"));
    }
    for (const auto& x : reg.exposures) {
        cv.push_back(x.visit);
        cd.push_back(x.detector);
        cb.push_back(x.band);
        cm.push_back(x.mjd);
        cp.push_back(x.path);
        cr.push_back(x.raw);
        cw.push_back(x.bbox.width());
        ch.push_back(x.bbox.height());
        for (int k = 0; k < 4; ++k) {
            corner[2 * k]->push_back(x.corners[k].ra().asDegrees());
            corner[2 * k + 1]->push_back(x.corners[k].dec().asDegrees());
        }
    }
    Table ov;
    auto& ot = ov.addColumn<std::int32_t>("tract", "", "tract id");
    auto& op = ov.addColumn<std::int32_t>("patch", "", "sequential patch index");
    auto& ovv = ov.addColumn<std::int64_t>("visit", "", "visit id");
    auto& od = ov.addColumn<std::int32_t>("detector", "", "detector id");
    Table pt;
    auto& ptt = pt.addColumn<std::int32_t>("tract", "", "tract id");
    auto& ptp = pt.addColumn<std::int32_t>("patch", "", "sequential patch index");
    auto& ptn =
        pt.addColumn<std::int32_t>("n_exposures", "", "visit-detectors overlapping the patch");
    auto& ptc = pt.addColumn<double>("cost", "", "predicted cost: overlapping pixels / 1e6");
    for (const auto& [tp, idx] : reg.overlaps) {
        double pix = 0;
        for (std::size_t i : idx) {
            ot.push_back(tp.tract);
            op.push_back(tp.patch);
            ovv.push_back(reg.exposures[i].visit);
            od.push_back(reg.exposures[i].detector);
            pix += double(reg.exposures[i].bbox.area());
        }
        ptt.push_back(tp.tract);
        ptp.push_back(tp.patch);
        ptn.push_back(static_cast<std::int32_t>(idx.size()));
        ptc.push_back(pix / 1e6);
    }
    h5::AtomicFile out(repo.abs(Repository::kIngest));
    h5::writeTable(out.file(), "exposures", ex);
    h5::writeTable(out.file(), "overlaps", ov);
    h5::writeTable(out.file(), "patches", pt);
    if (!reg.calibExposures.empty())
        h5::writeTable(out.file(), "calib_exposures", calibExposureTable(reg.calibExposures));
    PropertyList attrs = skymap.provenance();
    attrs.set("DRP_VERSION", drp::versionString());
    out.file().setAttributes("/", attrs);
    out.commit();
    return reg;
}

Registry readRegistry(const Repository& repo) {
    std::string path = repo.abs(Repository::kIngest);
    Table ex = h5::readTable(path, "exposures"), ov = h5::readTable(path, "overlaps");
    Registry reg;
    const auto& cv = ex.column<std::int64_t>("visit");
    for (std::size_t i = 0; i < cv.size(); ++i) {
        InputExposure x;
        x.visit = cv[i];
        x.detector = ex.column<std::int32_t>("detector")[i];
        x.band = ex.column<std::string>("band")[i];
        x.mjd = ex.column<double>("mjd")[i];
        x.path = ex.column<std::string>("path")[i];
        if (ex.has("raw")) x.raw = ex.column<std::string>("raw")[i];
        x.bbox = Box2I({0, 0},
                       {ex.column<std::int32_t>("width")[i], ex.column<std::int32_t>("height")[i]});
        for (int k = 0; k < 4; ++k)
            x.corners.push_back(SpherePoint::fromDegrees(
                ex.column<double>("corner" + std::to_string(k) + "_ra")[i],
                ex.column<double>("corner" + std::to_string(k) + "_dec")[i]));
        if (std::find(reg.bands.begin(), reg.bands.end(), x.band) == reg.bands.end())
            reg.bands.push_back(x.band);
        reg.exposures.push_back(std::move(x));
    }
    std::sort(reg.bands.begin(), reg.bands.end(),
              [](auto& a, auto& b) { return bandOrder(a) < bandOrder(b); });
    std::map<std::pair<std::int64_t, int>, std::size_t> index;
    for (std::size_t i = 0; i < reg.exposures.size(); ++i)
        index[{reg.exposures[i].visit, reg.exposures[i].detector}] = i;
    for (std::size_t r = 0; r < ov.numRows(); ++r) {
        TractPatchId tp{ov.column<std::int32_t>("tract")[r], ov.column<std::int32_t>("patch")[r]};
        reg.overlaps[tp].push_back(index.at(
            {ov.column<std::int64_t>("visit")[r], ov.column<std::int32_t>("detector")[r]}));
    }
    const auto tables = h5::listTables(path);
    if (std::find(tables.begin(), tables.end(), "/calib_exposures") != tables.end())
        reg.calibExposures = calibExposuresFrom(h5::readTable(path, "calib_exposures"));
    return reg;
}

std::map<std::pair<std::int64_t, int>, double> readZeroPoints(const Repository& repo) {
    Table zp = h5::readTable(repo.abs(Repository::kPhotocal), "zero_points");
    std::map<std::pair<std::int64_t, int>, double> out;
    for (std::size_t i = 0; i < zp.numRows(); ++i) {
        if (!zp.column<Bool>("calibrated")[i]) continue;
        double z = zp.column<double>("zero_point")[i];
        out[{zp.column<std::int64_t>("visit")[i],
             static_cast<int>(zp.column<std::int64_t>("detector")[i])}] =
            PhotoCalib::fromZeroPoint(z).nJyPerCount;
    }
    return out;
}

}  // namespace drp::pipeline
