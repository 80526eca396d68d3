// Visit-level stages: characterize, astrometry, and the global calibration (joint astrometry,
// then photometry: one gather/solve pair).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "drp/calib/joint_astrometry.h"
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

// The gather blob: one line per bright, clean star: band visit det ra dec flux flux_err; then
// the astrometric section (gatherPhotocal).
constexpr const char* kAstrometrySection = "#astrometry";
/// Point sources above this S/N feed the joint astrometry (σ ≈ FWHM / (2.35 S/N) ≲ 15 mas).
constexpr double kJointAstrometryMinSnr = 20.0;
}  // namespace

std::shared_ptr<const Wcs> readCalibratedWcs(const Repository& repo, std::int64_t visit, int det) {
    const std::string joint = repo.abs(Repository::kJointAstrometry);
    if (std::filesystem::exists(joint)) {
        Table t = h5::readTable(joint, "wcs");
        const auto& tv = t.column<std::int64_t>("visit");
        const auto& td = t.column<std::int64_t>("detector");
        for (std::size_t i = 0; i < tv.size(); ++i)
            if (tv[i] == visit && td[i] == det)
                return Wcs::fromFitsHeader(t.column<std::string>("wcs_header")[i], joint);
    }
    return readFittedWcs(repo, visit, det);
}

std::string gatherPhotocal(const Repository& repo, const PipelineConfig& config,
                           const InputExposure& in) {
    Table s =
        h5::readTable(repo.abs(Repository::characterizeFile(in.visit, in.detector)), "sources");
    auto wcs = readFittedWcs(repo, in.visit, in.detector);
    const auto& x = s.column<double>("x");
    const auto& y = s.column<double>("y");
    const auto& xe = s.column<double>("x_err");
    const auto& ye = s.column<double>("y_err");
    const auto& f = s.column<double>("psf_flux");
    const auto& fe = s.column<double>("psf_flux_err");
    const auto& flags = s.column<std::int64_t>("flags");
    const auto& ixx = s.column<double>("ixx");
    const auto& iyy = s.column<double>("iyy");
    // Point sources only: a galaxy's PSF flux depends on the seeing, so galaxies would tie the
    // visits together with seeing-dependent fluxes and bias the zero points (on the demo sky,
    // by ~5 mmag RMS); for astrometry a galaxy's centroid is a poorer, band-dependent position.
    // A source is point-like when its adaptive-moment size T = Ixx + Iyy is that of the PSF
    // stars (median over the stars of the PSF fit) within the PSF's variation across the
    // detector plus the size's noise, σ_T/T ≈ 2/(S/N) for a Gaussian profile.
    std::vector<double> starT;
    for (std::size_t i = 0; i < x.size(); ++i)
        if ((flags[i] & calib::kFlagPsfUsed) && std::isfinite(ixx[i] + iyy[i]))
            starT.push_back(ixx[i] + iyy[i]);
    if (starT.empty()) return {};
    std::nth_element(starT.begin(), starT.begin() + starT.size() / 2, starT.end());
    const double psfT = starT[starT.size() / 2];
    std::ostringstream out, astro;
    out.precision(17);
    astro.precision(17);
    for (std::size_t i = 0; i < x.size(); ++i) {
        if ((flags[i] & kBadForCalib) || !(f[i] > 0) || !(fe[i] > 0)) continue;
        const double snr = f[i] / fe[i];
        if (snr < std::min(config.photocalMinSnr, kJointAstrometryMinSnr)) continue;
        const double tolerance = config.photocalStarSizeTolerance + 2 * 2.0 / snr;
        if (!(std::abs((ixx[i] + iyy[i]) / psfT - 1) <= tolerance)) continue;
        if (snr >= kJointAstrometryMinSnr && xe[i] > 0 && ye[i] > 0)
            astro << x[i] << ' ' << y[i] << ' ' << std::sqrt(0.5 * (xe[i] * xe[i] + ye[i] * ye[i]))
                  << '\n';
        if (snr < config.photocalMinSnr) continue;
        SpherePoint p = wcs->pixelToSky({x[i], y[i]});
        out << in.band << ' ' << in.visit << ' ' << in.detector << ' ' << p.ra().asDegrees() << ' '
            << p.dec().asDegrees() << ' ' << f[i] << ' ' << fe[i] << '\n';
    }
    // The astrometric section: the unit, its per-visit WCS (FITS cards, no newlines), then one
    // "x y sigma" line per point source (pixels).
    std::string cards = wcs->toFitsHeader();
    std::replace(cards.begin(), cards.end(), '\n', ' ');
    out << kAstrometrySection << ' ' << in.visit << ' ' << in.detector << ' ' << in.bbox.minX()
        << ' ' << in.bbox.minY() << ' ' << in.bbox.width() << ' ' << in.bbox.height() << '\n'
        << cards << '\n'
        << astro.str();
    return out.str();
}

namespace {

/// Writes calib/astrometry.h5 from the joint solution (`units` and `r.units` in step).
std::vector<std::string> writeJointAstrometry(const Repository& repo, const PipelineConfig& config,
                                              const std::vector<JointAstrometryUnit>& units,
                                              const JointAstrometryResult& r) {
    Table t;
    auto& tv = t.addColumn<std::int64_t>("visit");
    auto& td = t.addColumn<std::int64_t>("detector");
    auto& th = t.addColumn<std::string>("wcs_header", "", "calibrated TAN-SIP WCS as FITS cards");
    auto& tj = t.addColumn<Bool>("joint", "", "from the joint solve (else the per-visit fit)");
    auto& tn = t.addColumn<std::string>("note", "", "why the per-visit fit was kept");
    auto& tm = t.addColumn<std::int64_t>("n_measurements", "", "detections used");
    auto& tc = t.addColumn<std::int64_t>("n_clipped", "", "detections clipped");
    auto& tr = t.addColumn<double>("rms_mas", "mas", "per-coordinate rms residual");
    std::size_t nFallback = 0;
    for (std::size_t u = 0; u < units.size(); ++u) {
        const auto& ur = r.units[u];
        tv.push_back(units[u].visit);
        td.push_back(units[u].detector);
        th.push_back(ur.wcs->toFitsHeader());
        tj.push_back(ur.joint);
        tn.push_back(ur.note);
        tm.push_back(static_cast<std::int64_t>(ur.numMeasurements));
        tc.push_back(static_cast<std::int64_t>(ur.numClipped));
        tr.push_back(ur.rmsMas);
        nFallback += !ur.joint;
    }
    const auto& sum = r.summary;
    PropertyList attrs = provenance(config, "global");
    attrs.set("solved", static_cast<std::int64_t>(sum.solved), "joint solve ran (1) or not (0)");
    attrs.set("note", sum.note, "why the joint solve did not run");
    attrs.set("converged", static_cast<std::int64_t>(sum.converged));
    attrs.set("iterations", static_cast<std::int64_t>(sum.iterations));
    attrs.set("clip_rounds", static_cast<std::int64_t>(sum.clipRounds));
    attrs.set("n_stars", static_cast<std::int64_t>(sum.numStars));
    attrs.set("n_reference_stars", static_cast<std::int64_t>(sum.numReferenceStars));
    attrs.set("n_measurements", static_cast<std::int64_t>(sum.numMeasurements));
    attrs.set("n_clipped", static_cast<std::int64_t>(sum.numClipped));
    attrs.set("chi2", sum.chi2);
    attrs.set("dof", sum.dof);
    attrs.set("measurement_rms_mas", sum.measurementRmsMas);
    attrs.set("reference_rms_mas", sum.referenceRmsMas);
    attrs.set("reference_visit", sum.referenceVisit);
    h5::AtomicFile out(repo.abs(Repository::kJointAstrometry));
    h5::writeTable(out.file(), "wcs", t);
    out.file().setAttributes("/", attrs);
    out.commit();
    std::vector<std::string> flags;
    if (!sum.solved)
        flags.push_back("astrometry_joint_not_solved");
    else if (nFallback > 0)
        flags.push_back("astrometry_joint_fallback");
    return flags;
}

/// The joint astrometric solve over every gathered visit-detector; writes calib/astrometry.h5
/// (every unit's calibrated WCS: joint, or its per-visit fit when the joint solve could not
/// constrain it) and returns the degradation flags.
std::vector<std::string> solveAstrometry(const Repository& repo, const PipelineConfig& config,
                                         const std::vector<std::string>& sections) {
    std::vector<JointAstrometryUnit> units;
    for (const std::string& sec : sections) {
        std::istringstream in(sec);
        std::string tag, cards;
        JointAstrometryUnit u;
        int x0, y0, w, h;
        if (!(in >> tag >> u.visit >> u.detector >> x0 >> y0 >> w >> h) ||
            tag != kAstrometrySection)
            throw badInput("photocal gather blob: malformed astrometric section");
        u.bbox = Box2I(Point2I(x0, y0), Extent2I{w, h});
        in >> std::ws;
        std::getline(in, cards);
        u.wcs = Wcs::fromFitsHeader(cards, "gather blob of visit " + std::to_string(u.visit) +
                                               " detector " + std::to_string(u.detector));
        double x, y, sig;
        while (in >> x >> y >> sig) {
            u.pixels.emplace_back(x, y);
            u.sigmaPixels.push_back(sig);
        }
        units.push_back(std::move(u));
    }
    Table refcat = h5::readTable(repo.abs(Repository::kRefcat), "refcat");
    JointAstrometryReference ref;
    {
        const auto& ra = refcat.column<double>("ra");
        const auto& dec = refcat.column<double>("dec");
        // Per-star errors [mas] when the catalogue has them, else the configured one.
        const bool hasErr = refcat.has("ra_err") && refcat.has("dec_err");
        const std::vector<double> raErr = hasErr ? realColumn(refcat, "ra_err") : ra;
        const std::vector<double> decErr = hasErr ? realColumn(refcat, "dec_err") : ra;
        const double defaultErr = config.astrometry.referenceError * 1e3;
        for (std::size_t i = 0; i < ra.size(); ++i) {
            const double sig = hasErr
                                   ? std::sqrt(0.5 * (raErr[i] * raErr[i] + decErr[i] * decErr[i]))
                                   : defaultErr;
            if (!(sig > 0) || !std::isfinite(ra[i] + dec[i])) continue;
            ref.sky.push_back(SpherePoint::fromDegrees(ra[i], dec[i]));
            ref.sigmaMas.push_back(sig);
        }
    }
    JointAstrometryConfig jcfg;
    jcfg.detectorOrder = config.astrometry.sipOrder;
    jcfg.clipSigma = config.astrometry.clipSigma;
    JointAstrometryResult r;
    try {
        r = solveJointAstrometry(units, ref, jcfg);
    } catch (const Error& e) {  // malformed input of one unit must not stop the release
        r = JointAstrometryResult{};
        r.summary.note = "joint solve failed: " + e.message();
        for (const auto& u : units) {
            JointAstrometryUnitResult ur;
            ur.wcs = u.wcs;
            ur.note = r.summary.note;
            r.units.push_back(ur);
        }
    }
    return writeJointAstrometry(repo, config, units, r);
}

}  // namespace

jobs::TaskResult solvePhotocal(const Repository& repo, const PipelineConfig& config,
                               const std::vector<std::pair<std::string, std::string>>& blobs) {
    struct Row {
        std::int64_t visit;
        int det;
        double ra, dec, flux, fluxErr;
    };
    std::map<std::string, std::vector<Row>> byBand;  // blobs arrive in data-id order: deterministic
    std::vector<std::string> astrometrySections;
    for (const auto& [dataId, whole] : blobs) {
        const std::size_t cut = whole.find(kAstrometrySection);
        const std::string blob = whole.substr(0, cut);
        if (cut != std::string::npos) astrometrySections.push_back(whole.substr(cut));
        std::istringstream in(blob);
        std::string band;
        Row r;
        while (in >> band >> r.visit >> r.det >> r.ra >> r.dec >> r.flux >> r.fluxErr)
            byBand[band].push_back(r);
    }
    // Astrometry first: its products do not feed the zero points (photometry associates stars
    // within photocalMatchRadius, far above the per-visit WCS errors).
    std::vector<std::string> flags;
    try {
        flags = solveAstrometry(repo, config, astrometrySections);
    } catch (const Error& e) {  // e.g. a corrupt blob: the per-visit fits stay the calibration
        JointAstrometryResult none;
        none.summary.note = "joint solve failed: " + e.message();
        flags = writeJointAstrometry(repo, config, {}, none);
    }
    Table refcat = h5::readTable(repo.abs(Repository::kRefcat), "refcat");
    Table allZp, allStars;
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
