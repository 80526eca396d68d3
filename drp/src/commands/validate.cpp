// `drp validate`: the release manager's quality check of a repository. Reads the release
// catalog (required), and when present the photometric calibration, the reference catalog, the
// Source catalogs of every calibrated visit-detector (with their fitted WCS and zero point), the
// truth of a simulated repository and the run journals; computes the metric set of
// drp/validate/report.h (docs/validation.md), gates it on thresholds, and writes
// REPO/validate/metrics.json and REPO/validate/report.html atomically with provenance. Prints a
// short summary; exit code 1 when a gated metric fails its threshold.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <tuple>

#include "cli/command.h"
#include "drp/calib/characterize.h"
#include "drp/core/atomic_file.h"
#include "drp/core/error.h"
#include "drp/core/wcs.h"
#include "drp/drp/pipeline.h"
#include "drp/drp/version.h"
#include "drp/io/fits.h"
#include "drp/io/hdf5.h"
#include "drp/io/hdf5_table.h"
#include "drp/jobs/journal.h"
#include "drp/validate/report.h"

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace drp {
namespace {

using pipeline::Repository;

void addOptions(po::options_description& o) {
    o.add_options()("repo", po::value<std::string>()->required(), "repository root")(
        "thresholds", po::value<std::string>(),
        "INI file of thresholds ('metric = max|min|absmax N' or 'none'), over the defaults")(
        "compare", po::value<std::string>(),
        "metrics.json of a previous validation: print and report the trend")(
        "out", po::value<std::string>(), "output directory (default REPO/validate)")(
        "match-radius", po::value<double>()->default_value(1.0),
        "object <-> truth/refcat match radius [arcsec]")(
        "sn-threshold", po::value<double>()->default_value(10.0),
        "S/N of the completeness, purity and exactly-once metrics")(
        "seam-width", po::value<double>()->default_value(10.0),
        "width of the band around patch/tract boundaries for seam metrics [arcsec]")(
        "pa1-min-sn", po::value<double>()->default_value(100.0),
        "per-visit S/N of the stars in the repeatability metrics")(
        "pa1-min-measurements", po::value<int>()->default_value(3),
        "visits per star and band in the repeatability metrics")(
        "no-sources", po::bool_switch(),
        "skip the single-visit Source catalogs (no PA1 and single-visit astrometry)");
}

std::string readText(const std::string& path, const char* what) {
    std::ifstream in(path);
    if (!in) throw Error("not_found", std::string(what) + " '" + path + "' cannot be read");
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

void writeTextAtomically(const std::string& path, const std::string& text) {
    AtomicFile out(path);
    {
        std::ofstream f(out.tempPath(), std::ios::binary);
        f << text;
        f.flush();
        if (!f) throw Error("io", "writing '" + path + "' failed");
    }
    out.commit();
}

std::optional<Table> readOptional(const Repository& repo, const std::string& rel,
                                  const std::string& table, std::vector<std::string>& used) {
    const std::string path = repo.abs(rel);
    if (!fs::exists(path)) return std::nullopt;
    try {
        Table t = h5::readTable(path, table);
        used.push_back(rel + ":" + table);
        return t;
    } catch (Error& e) {
        e.addContext("drp validate: reading table '" + table + "' of " + path);
        throw;
    }
}

/// Bands of the release: the DRP_BANDS attribute, else the <b>_psf_flux columns.
std::vector<std::string> releaseBands(const std::string& path, const Table& objects) {
    std::vector<std::string> bands;
    const auto attrs = h5::File::open(path).attributes("/");
    std::string list = attrs.get<std::string>("DRP_BANDS", std::string());
    std::istringstream in(list);
    for (std::string b; std::getline(in, b, ',');)
        if (!b.empty()) bands.push_back(b);
    if (bands.empty())
        for (const char* b : {"u", "g", "r", "i", "z", "y"})
            if (objects.has(std::string(b) + "_psf_flux")) bands.push_back(b);
    return bands;
}

/// Clean calibrated single-visit measurements of every calibrated visit-detector: Source
/// catalog positions through the fitted WCS, PSF fluxes times the zero point's nJy per count.
/// Measurements that photometric calibration itself would not use (edge, saturated, cosmic
/// ray, blended, bad centroid or flux, interpolated or bad pixels) are left out.
Table calibratedSources(const Repository& repo, std::vector<std::string>& used) {
    constexpr std::int64_t kBad = calib::kFlagEdge | calib::kFlagSaturated | calib::kFlagCosmicRay |
                                  calib::kFlagBlended | calib::kFlagBadCentroid |
                                  calib::kFlagBadPsfFlux | calib::kFlagInterpolated |
                                  calib::kFlagBadPixels;
    Table out;
    auto& oBand = out.addColumn<std::string>("band");
    auto& oVisit = out.addColumn<std::int64_t>("visit");
    auto& oRa = out.addColumn<double>("ra", "deg");
    auto& oDec = out.addColumn<double>("dec", "deg");
    auto& oFlux = out.addColumn<double>("psf_flux", "nJy");
    auto& oErr = out.addColumn<double>("psf_flux_err", "nJy");
    std::size_t nFiles = 0;
    for (const auto& [key, nJyPerCount] : pipeline::readZeroPoints(repo)) {
        const auto [visit, det] = key;
        const std::string charPath = repo.abs(Repository::characterizeFile(visit, det));
        const std::string astPath = repo.abs(Repository::astrometryFile(visit, det));
        if (!fs::exists(charPath) || !fs::exists(astPath)) continue;
        try {
            auto wcs = pipeline::readCalibratedWcs(repo, visit, det);
            Table s = h5::readTable(charPath, "sources");
            const auto& x = s.column<double>("x");
            const auto& y = s.column<double>("y");
            const auto& f = s.column<double>("psf_flux");
            const auto& fe = s.column<double>("psf_flux_err");
            const auto& flags = s.column<std::int64_t>("flags");
            const auto& band = s.column<std::string>("band");
            for (std::size_t i = 0; i < x.size(); ++i) {
                if ((flags[i] & kBad) || !(f[i] > 0) || !(fe[i] > 0)) continue;
                const SpherePoint p = wcs->pixelToSky({x[i], y[i]});
                oBand.push_back(band[i]);
                oVisit.push_back(visit);
                oRa.push_back(p.ra().asDegrees());
                oDec.push_back(p.dec().asDegrees());
                oFlux.push_back(f[i] * nJyPerCount);
                oErr.push_back(fe[i] * nJyPerCount);
            }
            ++nFiles;
        } catch (Error& e) {
            e.addContext("drp validate: Source catalog of " +
                         pipeline::visitDetectorId(visit, det));
            throw;
        }
    }
    used.push_back("visit/*/*/characterize.h5:sources + astrometry.h5 (" + std::to_string(nFiles) +
                   " visit-detectors)");
    return out;
}

/// Stage counts and failed/degraded tasks from the journals, placed on the sky when the data
/// id names a patch (its centre) or a visit-detector (its footprint's centre).
void journalSummary(const Repository& repo, const SkyMap& skymap,
                    const std::optional<pipeline::Registry>& registry,
                    validate::ValidationInputs& in) {
    const auto history = jobs::foldJournals(repo.root());
    const auto view = jobs::makeStatusView(history);
    for (const auto& st : view.stages) {
        validate::StageSummary s;
        s.stage = st.stage;
        s.planned = st.planned;
        auto count = [&](const char* state) {
            auto it = st.byState.find(state);
            return it == st.byState.end() ? std::int64_t(0) : it->second;
        };
        s.done = count("done");
        s.degraded = count("degraded");
        s.failed = count("failed") + count("lost") + count("interrupted");
        s.blocked = count("blocked");
        in.stages.push_back(s);
    }
    for (const auto& [key, rec] : history.tasks) {
        if (rec.state != "failed" && rec.state != "lost" && rec.state != "interrupted" &&
            rec.state != "degraded")
            continue;
        validate::FailureMark f{key.stage, key.dataId, rec.state, rec.errorClass, {}, {}};
        if (rec.state == "degraded" && f.errorClass.empty())
            for (const auto& flag : rec.flags)
                f.errorClass += (f.errorClass.empty() ? "" : ",") + flag;
        try {
            const auto id = pipeline::parseDataId(key.dataId);
            if (id.count("tract") && id.count("patch")) {
                const TractGeometry& g = skymap.tractGeometry(std::stoi(id.at("tract")));
                const int p = std::stoi(id.at("patch"));
                const Box2I box = g.patchInnerBox({p % g.numPatches.x, p / g.numPatches.x});
                const SpherePoint c = g.plane.toSky(
                    {0.5 * (box.minX() + box.maxX()), 0.5 * (box.minY() + box.maxY())});
                f.ra = c.ra().asDegrees(), f.dec = c.dec().asDegrees();
            } else if (id.count("visit") && id.count("det") && registry) {
                const std::int64_t v = std::stoll(id.at("visit"));
                const int d = std::stoi(id.at("det"));
                for (const auto& e : registry->exposures)
                    if (e.visit == v && e.detector == d && !e.corners.empty()) {
                        double x = 0, y = 0, z = 0;
                        for (const auto& c : e.corners) {
                            const double ra = c.ra().asRadians(), dec = c.dec().asRadians();
                            x += std::cos(dec) * std::cos(ra), y += std::cos(dec) * std::sin(ra),
                                z += std::sin(dec);
                        }
                        const double ra = std::atan2(y, x) * 180 / M_PI;
                        f.ra = ra < 0 ? ra + 360 : ra;
                        f.dec = std::atan2(z, std::hypot(x, y)) * 180 / M_PI;
                    }
            }
        } catch (const std::exception&) {
            // A data id this pipeline does not define (another tool's journal): no position.
        }
        in.failures.push_back(f);
    }
}

int run(const cli::Invocation& inv) {
    const auto& opt = inv.options;
    const Repository repo(opt["repo"].as<std::string>());
    const std::string outDir =
        opt.count("out") ? opt["out"].as<std::string>() : repo.abs("validate");

    validate::ValidationConfig config;
    config.matchRadiusArcsec = opt["match-radius"].as<double>();
    config.snThreshold = opt["sn-threshold"].as<double>();
    config.seamWidthArcsec = opt["seam-width"].as<double>();
    config.pa1MinSn = opt["pa1-min-sn"].as<double>();
    config.pa1MinMeasurements = opt["pa1-min-measurements"].as<int>();
    config.validate();
    validate::Thresholds thresholds = validate::Thresholds::defaults();
    std::string thresholdSource = "defaults";
    if (opt.count("thresholds")) {
        const std::string path = opt["thresholds"].as<std::string>();
        thresholds =
            validate::Thresholds::parseIni(readText(path, "threshold file"), path, thresholds);
        thresholdSource = path;
    }
    std::optional<std::map<std::string, double>> previous;
    if (opt.count("compare")) {
        const std::string path = opt["compare"].as<std::string>();
        try {
            previous = validate::metricValuesFromJson(readText(path, "previous metrics"));
        } catch (Error& e) {
            e.addContext("--compare " + path);
            throw;
        }
    }

    // Inputs.
    const std::string releasePath = repo.abs(Repository::kRelease);
    if (!fs::exists(releasePath))
        throw Error("not_found", releasePath + ": no release catalog (run `drp run --repo " +
                                     repo.root() + "` first)");
    validate::ValidationInputs in;
    std::vector<std::string> used;
    try {
        in.objects = h5::readTable(releasePath, "object");
        in.bands = releaseBands(releasePath, in.objects);
    } catch (Error& e) {
        e.addContext("drp validate: reading the release catalog " + releasePath);
        throw;
    }
    used.push_back(std::string(Repository::kRelease) + ":object");
    const auto skymap = makeSkyMap(pipeline::readSkyMapConfig(repo));
    in.owner = [&sm = *skymap](double ra, double dec) -> std::optional<std::pair<int, int>> {
        auto tp = sm.findTractPatch(SpherePoint::fromDegrees(ra, dec));
        if (!tp) return std::nullopt;
        return std::pair<int, int>{tp->tract, tp->patchSequential};
    };
    // Local depth for the truth metrics: the variance plane and PSF width of the owning patch's
    // coadd, read once per patch and band (a patch or band without a coadd is not observed).
    struct PatchCoadd {
        std::optional<ImageF> variance;
        double psfSigmaArcsec = NAN;
    };
    std::map<std::tuple<int, int, std::string>, PatchCoadd> coadds;
    const SkyMapConfig smc = pipeline::readSkyMapConfig(repo);
    const double pixelArcsec =
        (smc.type == "rings" ? smc.rings.tract : smc.discrete.tract).pixelScale.asArcseconds();
    in.coaddDepth = [&](const std::string& band, double ra, double dec) {
        validate::CoaddDepth d;
        const auto tp = skymap->findTractPatch(SpherePoint::fromDegrees(ra, dec));
        if (!tp) return d;
        auto [it, fresh] = coadds.try_emplace({tp->tract, tp->patchSequential, band});
        PatchCoadd& c = it->second;
        if (fresh) {
            const std::string image =
                repo.abs(Repository::coadd(tp->tract, tp->patchSequential, band));
            const std::string psf =
                repo.abs(Repository::coaddPsf(tp->tract, tp->patchSequential, band));
            if (fs::exists(image)) c.variance = fits::readExposure(image).variance();
            if (fs::exists(psf))
                c.psfSigmaArcsec =
                    h5::File::open(psf).attributes("/").get<double>("psf_sigma", NAN) * pixelArcsec;
        }
        if (!c.variance) return d;
        const Point2I p{int(std::lround(tp->pixel.x)), int(std::lround(tp->pixel.y))};
        if (c.variance->bbox().contains(p)) d.variance = c.variance->at(p);
        d.psfSigmaArcsec = c.psfSigmaArcsec;
        return d;
    };
    in.zeroPoints = readOptional(repo, Repository::kPhotocal, "zero_points", used);
    in.photocalStars = readOptional(repo, Repository::kPhotocal, "stars", used);
    in.refcat = readOptional(repo, Repository::kRefcat, "refcat", used);
    in.truthObjects = readOptional(repo, Repository::kTruth, "objects", used);
    in.truthDetectors = readOptional(repo, Repository::kTruth, "detectors", used);
    if (in.zeroPoints && !opt["no-sources"].as<bool>()) in.sources = calibratedSources(repo, used);
    std::optional<pipeline::Registry> registry;
    if (fs::exists(repo.abs(Repository::kIngest))) registry = pipeline::readRegistry(repo);
    journalSummary(repo, *skymap, registry, in);

    const validate::ValidationResult result = validate::validateRelease(in, config, thresholds);

    // Provenance of the validation itself.
    const std::string created = jobs::isoNow();
    std::map<std::string, std::string> prov;
    prov["software_version"] = versionString();
    prov["git_commit"] = gitCommit();
    prov["repository"] = fs::absolute(repo.root()).lexically_normal().string();
    prov["release_sha256"] = sha256File(releasePath);
    const auto relAttrs = h5::File::open(releasePath).attributes("/");
    prov["release_config_hash"] = relAttrs.get<std::string>("DRP_CONFIG_HASH", std::string());
    prov["release_software_version"] = relAttrs.get<std::string>("DRP_VERSION", std::string());
    prov["skymap_hash"] = skymap->hash();
    prov["thresholds"] = thresholdSource;
    prov["thresholds_sha256"] = sha256Hex(thresholds.toIni());
    std::string inputs;
    for (const auto& u : used) inputs += (inputs.empty() ? "" : "; ") + u;
    prov["inputs"] = inputs;
    std::ostringstream cfg;
    cfg << "match_radius_arcsec=" << config.matchRadiusArcsec
        << " sn_threshold=" << config.snThreshold << " seam_width_arcsec=" << config.seamWidthArcsec
        << " pa1_min_sn=" << config.pa1MinSn
        << " pa1_min_measurements=" << config.pa1MinMeasurements;
    prov["validation_config"] = cfg.str();
    if (opt.count("compare")) prov["compared_with"] = opt["compare"].as<std::string>();

    std::vector<validate::TrendRow> trend;
    if (previous) trend = validate::compareMetrics(*previous, result);
    const std::string jsonPath = outDir + "/metrics.json", htmlPath = outDir + "/report.html";
    writeTextAtomically(jsonPath,
                        validate::metricsToJson(result, jobs::makeRunId(), created, prov));
    writeTextAtomically(
        htmlPath, validate::reportToHtml(result, trend, "drp validation: " + repo.root(), prov));

    const validate::Metric* nObj = result.find("n_objects");
    const validate::Metric* nPrim = result.find("n_primary");
    inv.out << "drp validate: " << repo.root() << ": "
            << (nObj && nObj->value ? std::int64_t(*nObj->value) : 0) << " objects, "
            << (nPrim && nPrim->value ? std::int64_t(*nPrim->value) : 0) << " primary, bands ";
    for (std::size_t b = 0; b < in.bands.size(); ++b) inv.out << (b ? "," : "") << in.bands[b];
    inv.out << (in.truthObjects ? " (simulated: truth metrics)" : "") << "\n"
            << validate::summaryText(result);
    if (previous)
        inv.out << "trend vs " << opt["compare"].as<std::string>() << ":\n"
                << validate::trendToText(trend);
    inv.out << "report:  " << htmlPath << "\nmetrics: " << jsonPath << "\n";
    return result.passed() ? 0 : 1;
}

const cli::RegisterCommand registration{{
    .name = "validate",
    .summary = "Quality metrics of a release vs thresholds (gating), metrics JSON and HTML report",
    .addOptions = addOptions,
    .run = run,
}};

}  // namespace
}  // namespace drp
