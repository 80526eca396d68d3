// Visit-level stages: characterize, astrometry, and the global photometric calibration.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>

#include "drp/calib/matching.h"
#include "drp/core/wcs.h"
#include "drp/drp/pipeline.h"
#include "drp/io/fits.h"
#include "drp/io/hdf5.h"
#include "drp/io/hdf5_table.h"

namespace drp::pipeline {

namespace {

constexpr double kNJyZeroPoint = 31.400065;  // AB mag of 1 nJy

/// Source flags that make a measurement unusable for calibration.
constexpr std::int64_t kBadForCalib = calib::kFlagEdge | calib::kFlagSaturated |
                                      calib::kFlagCosmicRay | calib::kFlagBlended |
                                      calib::kFlagBadCentroid | calib::kFlagBadPsfFlux |
                                      calib::kFlagInterpolated | calib::kFlagBadPixels;

/// Flags that make a centroid unusable for astrometry (blends are fine: their peaks are).
constexpr std::int64_t kBadForAstrometry = calib::kFlagEdge | calib::kFlagSaturated |
                                           calib::kFlagCosmicRay | calib::kFlagBadCentroid |
                                           calib::kFlagBadPixels;

/// Reference stars inside a sky polygon's bounding RA/Dec box (grown by `margin`), with the
/// columns fitAstrometry wants: ra, dec, mag (band `band`), plus ref_id.
Table referenceSubset(const Table& refcat, const std::vector<SpherePoint>& corners,
                      const std::string& band, Angle margin) {
    const SpherePoint centre = SpherePoint::fromVector([&] {
        std::array<double, 3> v{0, 0, 0};
        for (auto& c : corners) {
            auto u = c.toVector();
            for (int k = 0; k < 3; ++k) v[k] += u[k];
        }
        return v;
    }());
    Angle radius;
    for (auto& c : corners) radius = std::max(radius, centre.separation(c));
    radius += margin;
    Table out;
    auto& id = out.addColumn<std::int64_t>("ref_id");
    auto& ra = out.addColumn<double>("ra", "deg");
    auto& dec = out.addColumn<double>("dec", "deg");
    auto& mag = out.addColumn<double>("mag", "mag");
    auto& magErr = out.addColumn<double>("mag_err", "mag");
    const auto& rra = refcat.column<double>("ra");
    const auto& rdec = refcat.column<double>("dec");
    const auto& flux = refcat.column<double>(band + "_flux");
    const auto& fluxErr = refcat.column<double>(band + "_flux_err");
    const auto& rid = refcat.column<std::int64_t>("ref_id");
    for (std::size_t i = 0; i < rra.size(); ++i) {
        SpherePoint p = SpherePoint::fromDegrees(rra[i], rdec[i]);
        if (centre.separation(p) > radius || !(flux[i] > 0)) continue;
        id.push_back(rid[i]);
        ra.push_back(rra[i]);
        dec.push_back(rdec[i]);
        mag.push_back(kNJyZeroPoint - 2.5 * std::log10(flux[i]));
        magErr.push_back(2.5 / std::log(10.0) * fluxErr[i] / flux[i]);
    }
    return out;
}

}  // namespace

jobs::TaskResult runCharacterize(const Repository& repo, const PipelineConfig& config,
                                 const InputExposure& in) {
    const std::string id = visitDetectorId(in.visit, in.detector);
    Exposure ex = fits::readExposure(repo.abs(in.path));
    calib::CharacterizeResult r = calib::characterize(ex, config.characterize);
    PropertyList prov = provenance(config, id);
    prov.update(r.summary.toMetadata());
    fits::writeExposure(repo.abs(Repository::calexp(in.visit, in.detector)), r.exposure, prov);
    h5::AtomicFile out(repo.abs(Repository::characterizeFile(in.visit, in.detector)));
    h5::writeTable(out.file(), "sources", r.sources);
    h5::writeTable(out.file(), "psf", r.psf->toTable());
    h5::writeTable(out.file(), "background", r.background.toTable());
    out.file().setAttributes("/", prov);
    out.commit();
    if (r.summary.numPsfUsed < calib::kPsfNominalStars)
        return jobs::TaskResult::degraded(
            {"psf_few_stars"}, "PSF model from only " + std::to_string(r.summary.numPsfUsed) +
                                   " stars (constant in position)");
    return {};
}

jobs::TaskResult runAstrometry(const Repository& repo, const PipelineConfig& config,
                               const InputExposure& in) {
    const std::string id = visitDetectorId(in.visit, in.detector);
    Table sources =
        h5::readTable(repo.abs(Repository::characterizeFile(in.visit, in.detector)), "sources");
    std::vector<std::size_t> good;
    const auto& flags = sources.column<std::int64_t>("flags");
    const auto& flux = sources.column<double>("psf_flux");
    for (std::size_t i = 0; i < flags.size(); ++i)
        if (!(flags[i] & kBadForAstrometry) && flux[i] > 0) good.push_back(i);
    Table use = sources.select(good);
    Table refcat = h5::readTable(repo.abs(Repository::kRefcat), "refcat");
    fits::FitsHeader header =
        fits::readHeader(repo.abs(Repository::calexp(in.visit, in.detector)), std::string("IMAGE"));
    auto headerWcs = Wcs::fromFitsHeader(header.cards, Repository::calexp(in.visit, in.detector));
    Table ref = referenceSubset(refcat, in.corners, in.band, config.astrometry.maxOffset);
    if (ref.numRows() == 0)
        throw Error("no_reference_stars", "no reference stars in the footprint of " + id);
    // Lower the SIP order when there are too few matches for the configured one (a small
    // detector or a sparse field): order n needs (n+1)(n+2)/2 - 1 terms per axis beyond the
    // linear part, so the minimum number of matches scales with it.
    AstrometryResult r;
    int usedOrder = 0;
    for (int order = config.astrometry.sipOrder; order >= 1; --order) {
        AstrometryConfig acfg = config.astrometry;
        acfg.fluxColumn = "psf_flux";
        acfg.sipOrder = order;
        acfg.inverseSipOrder = std::max(order + 1, 2);
        acfg.minMatches = std::min(config.astrometry.minMatches, (order + 1) * (order + 2) + 2);
        try {
            r = fitAstrometry(use, ref, *headerWcs, in.bbox, acfg);
            usedOrder = order;
            break;
        } catch (const Error& e) {
            if (e.errorClass() != "astrometry_failed" || order == 1 ||
                e.message().find("too few matches") == std::string::npos)
                throw;
        }
    }
    h5::AtomicFile out(repo.abs(Repository::astrometryFile(in.visit, in.detector)));
    h5::writeTable(out.file(), "matches", r.matches);
    PropertyList attrs = provenance(config, id);
    attrs.set("wcs_header", r.wcs->toFitsHeader(), "fitted TAN-SIP WCS as FITS cards");
    attrs.set("rms_mas", r.summary.rmsMas, "per-coordinate rms of the kept matches");
    attrs.set("n_matches", static_cast<std::int64_t>(r.summary.numMatches));
    attrs.set("sip_order", static_cast<std::int64_t>(usedOrder), "SIP order used");
    out.file().setAttributes("/", attrs);
    out.commit();
    // Order 2 is enough for a small detector (the sip_order attribute records what was used);
    // a linear WCS cannot follow the optical distortion, so only that degrades the unit.
    if (usedOrder == 1 && config.astrometry.sipOrder > 1)
        return jobs::TaskResult::degraded({"astrometry_low_order"},
                                          "SIP order lowered to 1 (too few matches)");
    return {};
}

namespace {
/// Fitted WCS of a visit-detector (from its astrometry.h5).
std::shared_ptr<const Wcs> readFittedWcs(const Repository& repo, std::int64_t visit, int det) {
    std::string path = repo.abs(Repository::astrometryFile(visit, det));
    h5::File f = h5::File::open(path);
    auto v = f.attribute("/", "wcs_header");
    return Wcs::fromFitsHeader(std::get<std::string>(v), path);
}

// The gather blob: one line per bright, clean star: band visit det ra dec flux flux_err.
}  // namespace

std::string gatherPhotocal(const Repository& repo, const PipelineConfig& config,
                           const InputExposure& in) {
    Table s =
        h5::readTable(repo.abs(Repository::characterizeFile(in.visit, in.detector)), "sources");
    auto wcs = readFittedWcs(repo, in.visit, in.detector);
    const auto& x = s.column<double>("x");
    const auto& y = s.column<double>("y");
    const auto& f = s.column<double>("psf_flux");
    const auto& fe = s.column<double>("psf_flux_err");
    const auto& flags = s.column<std::int64_t>("flags");
    const auto& ixx = s.column<double>("ixx");
    const auto& iyy = s.column<double>("iyy");
    // Point sources only: a galaxy's PSF flux depends on the seeing, so galaxies would tie the
    // visits together with seeing-dependent fluxes and bias the zero points (on the demo sky,
    // by ~5 mmag RMS). A source is point-like when its adaptive-moment size T = Ixx + Iyy is
    // that of the PSF stars (median over the stars of the PSF fit) within the PSF's variation
    // across the detector plus the size's noise, σ_T/T ≈ 2/(S/N) for a Gaussian profile.
    std::vector<double> starT;
    for (std::size_t i = 0; i < x.size(); ++i)
        if ((flags[i] & calib::kFlagPsfUsed) && std::isfinite(ixx[i] + iyy[i]))
            starT.push_back(ixx[i] + iyy[i]);
    if (starT.empty()) return {};
    std::nth_element(starT.begin(), starT.begin() + starT.size() / 2, starT.end());
    const double psfT = starT[starT.size() / 2];
    std::ostringstream out;
    out.precision(17);
    for (std::size_t i = 0; i < x.size(); ++i) {
        if ((flags[i] & kBadForCalib) || !(f[i] > 0) || !(fe[i] > 0)) continue;
        const double snr = f[i] / fe[i];
        if (snr < config.photocalMinSnr) continue;
        const double tolerance = config.photocalStarSizeTolerance + 2 * 2.0 / snr;
        if (!(std::abs((ixx[i] + iyy[i]) / psfT - 1) <= tolerance)) continue;
        SpherePoint p = wcs->pixelToSky({x[i], y[i]});
        out << in.band << ' ' << in.visit << ' ' << in.detector << ' ' << p.ra().asDegrees() << ' '
            << p.dec().asDegrees() << ' ' << f[i] << ' ' << fe[i] << '\n';
    }
    return out.str();
}

jobs::TaskResult solvePhotocal(const Repository& repo, const PipelineConfig& config,
                               const std::vector<std::pair<std::string, std::string>>& blobs) {
    struct Row {
        std::int64_t visit;
        int det;
        double ra, dec, flux, fluxErr;
    };
    std::map<std::string, std::vector<Row>> byBand;  // blobs arrive in data-id order: deterministic
    for (const auto& [dataId, blob] : blobs) {
        std::istringstream in(blob);
        std::string band;
        Row r;
        while (in >> band >> r.visit >> r.det >> r.ra >> r.dec >> r.flux >> r.fluxErr)
            byBand[band].push_back(r);
    }
    Table refcat = h5::readTable(repo.abs(Repository::kRefcat), "refcat");
    Table allZp, allStars;
    std::vector<std::string> flags;
    for (const auto& [band, rows] : byBand) {
        Table meas;
        auto& oid = meas.addColumn<std::int64_t>("object_id");
        auto& mv = meas.addColumn<std::int64_t>("visit");
        auto& md = meas.addColumn<std::int64_t>("detector");
        auto& mf = meas.addColumn<double>("inst_flux");
        auto& mfe = meas.addColumn<double>("inst_flux_err");
        std::vector<SpherePoint> sky;
        std::vector<std::int64_t> key, group;
        for (std::size_t i = 0; i < rows.size(); ++i) {
            sky.push_back(SpherePoint::fromDegrees(rows[i].ra, rows[i].dec));
            key.push_back(static_cast<std::int64_t>(i));
            group.push_back(rows[i].visit);
        }
        AssociationConfig acfg;
        acfg.radius = arcseconds(config.photocalMatchRadius);
        acfg.minDetections = 1;
        Association assoc = associateDetections(sky, key, group, acfg);
        for (std::size_t i = 0; i < rows.size(); ++i) {
            if (assoc.objectId[i] < 0) continue;
            oid.push_back(assoc.objectId[i]);
            mv.push_back(rows[i].visit);
            md.push_back(rows[i].det);
            mf.push_back(rows[i].flux);
            mfe.push_back(rows[i].fluxErr);
        }
        // Reference magnitudes: the nearest reference star to each object's first detection.
        std::map<std::int64_t, SpherePoint> objPos;
        for (std::size_t i = 0; i < rows.size(); ++i)
            if (assoc.objectId[i] >= 0) objPos.emplace(assoc.objectId[i], sky[i]);
        std::vector<SpherePoint> objSky, refSky;
        std::vector<std::int64_t> objIds;
        for (auto& [o, p] : objPos) {
            objIds.push_back(o);
            objSky.push_back(p);
        }
        const auto& rra = refcat.column<double>("ra");
        const auto& rdec = refcat.column<double>("dec");
        for (std::size_t i = 0; i < rra.size(); ++i)
            refSky.push_back(SpherePoint::fromDegrees(rra[i], rdec[i]));
        Table ref;
        auto& rid = ref.addColumn<std::int64_t>("object_id");
        auto& rmag = ref.addColumn<double>("mag");
        auto& rmagErr = ref.addColumn<double>("mag_err");
        const auto& rflux = refcat.column<double>(band + "_flux");
        const auto& rfluxErr = refcat.column<double>(band + "_flux_err");
        for (const SkyMatch& m :
             matchNearest(objSky, refSky, arcseconds(config.photocalMatchRadius))) {
            if (!(rflux[m.b] > 0)) continue;
            rid.push_back(objIds[m.a]);
            rmag.push_back(kNJyZeroPoint - 2.5 * std::log10(rflux[m.b]));
            rmagErr.push_back(2.5 / std::log(10.0) * rfluxErr[m.b] / rflux[m.b]);
        }
        PhotoCalResult r = solvePhotometricCalibration(meas, ref, config.photocal);
        const std::size_t nZp = r.zeroPoints.numRows(), nStars = r.stars.numRows();
        r.zeroPoints.addColumn<std::string>("band", "", "band").assign(nZp, band);
        r.stars.addColumn<std::string>("band", "", "band").assign(nStars, band);
        allZp.append(r.zeroPoints);
        allStars.append(r.stars);
        if (r.summary.numUncalibrated > 0) flags.push_back("uncalibrated_" + band);
    }
    h5::AtomicFile out(repo.abs(Repository::kPhotocal));
    h5::writeTable(out.file(), "zero_points", allZp);
    h5::writeTable(out.file(), "stars", allStars);
    out.file().setAttributes("/", provenance(config, "global"));
    out.commit();
    return flags.empty() ? jobs::TaskResult::ok() : jobs::TaskResult::degraded(flags);
}

}  // namespace drp::pipeline
