#include "drp/validate/report.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <optional>
#include <set>
#include <sstream>

#include "drp/core/error.h"

namespace drp::validate {

namespace {

std::string num(double v, int digits = 6) {
    if (!std::isfinite(v)) return "null";
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.*g", digits, v);
    return buf;
}

std::string trim(std::string s) {
    const auto b = s.find_first_not_of(" \t\r");
    if (b == std::string::npos) return "";
    const auto e = s.find_last_not_of(" \t\r");
    return s.substr(b, e - b + 1);
}

std::string jsonEscape(const std::string& s) {
    std::string o;
    for (char c : s) {
        if (c == '"' || c == '\\')
            o += '\\', o += c;
        else if (c == '\n')
            o += "\\n";
        else if (static_cast<unsigned char>(c) < 0x20)
            o += ' ';
        else
            o += c;
    }
    return o;
}

std::string htmlEscape(const std::string& s) {
    std::string o;
    for (char c : s) {
        if (c == '<')
            o += "&lt;";
        else if (c == '>')
            o += "&gt;";
        else if (c == '&')
            o += "&amp;";
        else if (c == '"')
            o += "&quot;";
        else
            o += c;
    }
    return o;
}

struct MetricSpec {
    const char* name;
    const char* unit;
    const char* description;
};
// The metric catalogue, in report order.
const MetricSpec kSpecs[] = {
    {"n_objects", "", "Rows in the release Object table (children, isolated objects, parents)"},
    {"n_primary", "", "Primary objects in the release"},
    {"duplicate_primary_pairs", "",
     "Pairs of primary objects closer than the duplicate radius (seam duplicates)"},
    {"failed_tasks", "",
     "Pipeline tasks whose latest state is failed, lost or interrupted (journals)"},
    {"degraded_tasks", "", "Pipeline tasks that finished degraded (journals)"},
    {"blocked_tasks", "", "Pipeline tasks blocked by a failed input (journals)"},
    {"zero_point_calibrated_fraction", "",
     "Fraction of visit-detectors with a calibrated zero point"},
    {"zero_point_rms_mmag", "mmag",
     "RMS of zero point minus true zero point about their mean offset, per visit-detector "
     "(relative calibration)"},
    {"zero_point_offset_mmag", "mmag",
     "Mean zero point minus true zero point (absolute calibration offset)"},
    {"pa1_mmag", "mmag",
     "PA1-like repeatability: median over isolated point sources of the sample standard "
     "deviation of their calibrated single-visit PSF magnitudes (S/N >= pa1 min S/N)"},
    {"pa1_noise_mmag", "mmag",
     "Median RMS of the quoted single-visit magnitude errors of those stars"},
    {"pa1_intrinsic_mmag", "mmag",
     "Noise-subtracted repeatability: extra scatter beyond the quoted errors (median chi2 "
     "probability 1/2)"},
    {"pa1_n_stars", "", "Stars in the repeatability metrics"},
    {"photocal_star_scatter_mmag", "mmag",
     "Median per-visit scatter of the photometric-calibration stars (photocal summary)"},
    {"refcat_mag_offset_mmag", "mmag",
     "Median PSF magnitude minus reference-catalog magnitude of matched stars, all bands"},
    {"astrometry_refcat_rms_mas", "mas",
     "RMS offset of primaries from matched reference-catalog stars (includes catalog errors)"},
    {"astrometry_truth_rms_mas", "mas",
     "RMS offset of bright isolated primary stars from their true positions (multi-epoch fit)"},
    {"source_astrometry_truth_rms_mas", "mas",
     "RMS offset of calibrated single-visit positions of bright isolated stars from their "
     "true positions"},
    {"source_astrometry_refcat_rms_mas", "mas",
     "RMS offset of calibrated single-visit positions of bright stars from the reference "
     "catalog (includes catalog errors)"},
    {"completeness_sn10", "",
     "Fraction of truth objects above the S/N threshold matched by a primary"},
    {"purity_sn10", "", "Fraction of primaries above the S/N threshold matched to a truth object"},
    {"unique_sn10", "",
     "Fraction of truth objects above the S/N threshold that appear exactly once among primaries "
     "(a primary is an appearance of its nearest truth object)"},
    {"missing_sn10", "",
     "Truth objects above the S/N threshold with no primary within the match radius whose "
     "nearest truth object they are"},
    {"unresolved_companions_sn10", "",
     "Truth objects above the S/N threshold closer than the coadd PSF FWHM to a brighter one, "
     "or inside its observed half-light radius: part of its image, left out of completeness "
     "and uniqueness"},
    {"blend_pair_objects", "",
     "Truth objects above the S/N threshold in resolved pairs (issue #6: all neighbours at least "
     "the coadd PSF FWHM away, flux ratio to the nearest <= 10) matched to a primary"},
    {"blend_pair_flux_error", "",
     "Median |flux / true flux - 1| of those objects (PSF flux for stars, model flux for "
     "galaxies), the worst band"},
    {"blend_pair_flux_error_bright", "",
     "The same for those above the bright S/N (60), where the error is the measurement's, "
     "not photon noise"},
    {"blend_pair_colour_error", "",
     "Median |colour - true colour| [mag] of those objects, the worst pair of adjacent bands"},
    {"blend_pair_flux_floor", "",
     "Information floor of blend_pair_flux_error: the median |dF/F| that unbiased estimators at "
     "the Cramer-Rao bound would give on the same objects alone on the sky (sigma = 1/(truth "
     "S/N), sqrt(2) more for galaxies, whose size is fitted too), the worst band"},
    {"blend_pair_colour_floor", "",
     "Information floor of blend_pair_colour_error [mag] (1.0857 sqrt(1/S/N_1^2 + 1/S/N_2^2) per "
     "object), the worst pair of adjacent bands"},
    {"psf_flux_bias_stars", "",
     "Median PSF flux / true flux - 1 of matched stars above the S/N threshold, all bands"},
    {"psf_flux_scatter_stars", "", "Robust sigma of PSF flux / true flux - 1 of those stars"},
    {"model_flux_bias_galaxies", "",
     "Median model flux / true flux - 1 of matched galaxies above the S/N threshold"},
    {"model_flux_scatter_galaxies", "",
     "Robust sigma of model flux / true flux - 1 of those galaxies"},
    {"seam_completeness_sn10", "",
     "Completeness (S/N above threshold) of truth objects at patch and tract seams"},
    {"seam_flux_jump", "",
     "Median flux / true flux at patch and tract seams minus the median elsewhere, stars (PSF "
     "flux) and galaxies (model flux) apart: the larger of those measured to 1/3 of the "
     "tolerance (else the better measured)"},
    {"seam_flux_jump_stars", "", "seam_flux_jump of stars (PSF flux)"},
    {"seam_flux_jump_stars_err", "", "statistical error of seam_flux_jump_stars"},
    {"seam_flux_jump_galaxies", "", "seam_flux_jump of galaxies (model flux)"},
    {"seam_flux_jump_galaxies_err", "", "statistical error of seam_flux_jump_galaxies"},
    {"seam_orphans", "",
     "Objects above the S/N threshold measured by a neighbouring patch whose owning patch, "
     "although in the release, has no primary there (missing across a seam)"},
    {"seam_overlap_pairs", "",
     "Objects measured by two patches (the owner's primary and the neighbour's copy)"},
    {"seam_overlap_flux_offset", "",
     "Median PSF flux of the neighbour's copy / owner's primary - 1 (photometric jump across "
     "seams, reference band)"},
};

}  // namespace

bool Threshold::passes(double value) const {
    switch (kind) {
        case Kind::Max:
            return value <= limit;
        case Kind::Min:
            return value >= limit;
        case Kind::AbsMax:
            return std::abs(value) <= limit;
    }
    return false;
}

std::string Threshold::text() const {
    switch (kind) {
        case Kind::Max:
            return "<= " + num(limit);
        case Kind::Min:
            return ">= " + num(limit);
        case Kind::AbsMax:
            return "|x| <= " + num(limit);
    }
    return "";
}

const std::vector<std::string>& knownMetricNames() {
    static const std::vector<std::string> names = [] {
        std::vector<std::string> n;
        for (const auto& s : kSpecs) n.push_back(s.name);
        return n;
    }();
    return names;
}

Thresholds Thresholds::defaults() {
    using K = Threshold::Kind;
    Thresholds t;
    t.byMetric = {
        {"duplicate_primary_pairs", {K::Max, 0}},
        {"failed_tasks", {K::Max, 0}},
        {"zero_point_calibrated_fraction", {K::Min, 0.95}},
        {"zero_point_rms_mmag", {K::Max, 3}},  // issue #4: <= 3 mmag vs truth
        // LSST SRD (LPM-17) PA1 design 5 mmag is a systematics requirement; at S/N 100 photon
        // noise alone is 10.9 mmag, so the gate is on the noise-subtracted value.
        {"pa1_intrinsic_mmag", {K::Max, 5}},
        {"refcat_mag_offset_mmag", {K::AbsMax, 10}},
        {"astrometry_refcat_rms_mas", {K::Max, 20}},
        {"astrometry_truth_rms_mas", {K::Max, 10}},
        {"source_astrometry_truth_rms_mas", {K::Max, 10}},  // issue #4: <= 10 mas vs truth
        {"completeness_sn10", {K::Min, 0.98}},
        {"purity_sn10", {K::Min, 0.95}},
        {"unique_sn10", {K::Min, 0.98}},
        {"psf_flux_bias_stars", {K::AbsMax, 0.01}},
        {"psf_flux_scatter_stars", {K::Max, 0.1}},
        {"model_flux_bias_galaxies", {K::AbsMax, 0.05}},
        {"seam_completeness_sn10", {K::Min, 0.98}},
        {"seam_flux_jump", {K::AbsMax, 0.01}},
        {"seam_overlap_flux_offset", {K::AbsMax, 0.01}},
    };
    return t;
}

Thresholds Thresholds::parseIni(const std::string& text, const std::string& sourceName,
                                Thresholds base) {
    const auto& known = knownMetricNames();
    std::istringstream in(text);
    std::string line;
    int lineNo = 0;
    while (std::getline(in, line)) {
        ++lineNo;
        const std::string where = sourceName + ":" + std::to_string(lineNo) + ": ";
        if (auto c = line.find_first_of("#;"); c != std::string::npos) line.resize(c);
        line = trim(line);
        if (line.empty()) continue;
        if (line.front() == '[') {
            if (line != "[thresholds]")
                throw configError(where + "unknown section " + line + " (only [thresholds])");
            continue;
        }
        const auto eq = line.find('=');
        if (eq == std::string::npos)
            throw configError(where + "expected 'metric = max|min|absmax <number>'");
        const std::string name = trim(line.substr(0, eq));
        std::istringstream rhs(line.substr(eq + 1));
        std::string kind, rest;
        double limit = 0;
        if (std::find(known.begin(), known.end(), name) == known.end())
            throw configError(where + "unknown metric '" + name + "'");
        if (!(rhs >> kind)) throw configError(where + "missing 'max', 'min', 'absmax' or 'none'");
        if (kind == "none") {
            base.byMetric.erase(name);
            continue;
        }
        if (!(rhs >> limit) || (rhs >> rest) || !std::isfinite(limit))
            throw configError(where + "expected one finite number after '" + kind + "'");
        Threshold t;
        if (kind == "max")
            t.kind = Threshold::Kind::Max;
        else if (kind == "min")
            t.kind = Threshold::Kind::Min;
        else if (kind == "absmax")
            t.kind = Threshold::Kind::AbsMax;
        else
            throw configError(where + "threshold kind '" + kind +
                              "' is not max, min, absmax or none");
        t.limit = limit;
        base.byMetric[name] = t;
    }
    return base;
}

std::string Thresholds::toIni() const {
    std::string s = "[thresholds]\n";
    for (const auto& name : knownMetricNames()) {
        auto it = byMetric.find(name);
        if (it == byMetric.end()) continue;
        const char* k = it->second.kind == Threshold::Kind::Max   ? "max"
                        : it->second.kind == Threshold::Kind::Min ? "min"
                                                                  : "absmax";
        s += name + " = " + k + " " + num(it->second.limit) + "\n";
    }
    return s;
}

void ValidationConfig::validate() const {
    auto positive = [](double v, const char* n) {
        if (!(v > 0)) throw configError(std::string(n) + " = " + num(v) + ": must be > 0");
    };
    positive(matchRadiusArcsec, "match_radius_arcsec");
    positive(duplicateRadiusArcsec, "duplicate_radius_arcsec");
    positive(snThreshold, "sn_threshold");
    positive(magBinWidth, "mag_bin_width");
    positive(astrometryMinSn, "astrometry_min_sn");
    positive(astrometryIsolationFluxRatio, "astrometry_isolation_flux_ratio");
    positive(seamWidthArcsec, "seam_width_arcsec");
    positive(sourceMatchRadiusArcsec, "source_match_radius_arcsec");
    positive(pa1MinSn, "pa1_min_sn");
    positive(isolationRadiusArcsec, "isolation_radius_arcsec");
    positive(blendPairRadiusArcsec, "blend_pair_radius_arcsec");
    positive(blendPairNeighbourSn, "blend_pair_neighbour_sn");
    positive(blendPairMaxRatio, "blend_pair_max_ratio");
    positive(blendPairBrightSn, "blend_pair_bright_sn");
    if (pa1MinMeasurements < 2)
        throw configError("pa1_min_measurements = " + std::to_string(pa1MinMeasurements) +
                          ": must be >= 2");
}

bool ValidationResult::passed() const {
    return std::none_of(metrics.begin(), metrics.end(), [](const Metric& m) { return m.failed(); });
}

std::vector<std::string> ValidationResult::failedNames() const {
    std::vector<std::string> out;
    for (const auto& m : metrics)
        if (m.failed()) out.push_back(m.name);
    return out;
}

const Metric* ValidationResult::find(const std::string& name) const {
    for (const auto& m : metrics)
        if (m.name == name) return &m;
    return nullptr;
}

namespace {

std::vector<double> col(const Table& t, const std::string& name) {
    const Column& c = t.columnInfo(name);
    if (c.type() == ColumnType::Float64) return t.column<double>(name);
    if (c.type() == ColumnType::Float32) {
        const auto& v = t.column<float>(name);
        return {v.begin(), v.end()};
    }
    if (c.type() == ColumnType::Int32) {
        const auto& v = t.column<std::int32_t>(name);
        return {v.begin(), v.end()};
    }
    if (c.type() == ColumnType::Int64) {
        const auto& v = t.column<std::int64_t>(name);
        return {v.begin(), v.end()};
    }
    throw badInput("column '" + name + "' is not numeric");
}

/// Total true flux of each truth object over `bands` (positive fluxes only).
std::vector<double> truthBrightness(const Table& truth, const std::vector<std::string>& bands) {
    std::vector<double> brightness(truth.numRows(), 0.0);
    for (const auto& b : bands)
        if (truth.has(b + "_flux")) {
            const auto f = col(truth, b + "_flux");
            for (std::size_t i = 0; i < f.size(); ++i)
                if (f[i] > 0) brightness[i] += f[i];
        }
    return brightness;
}

/// Truth stars fit for astrometry vs truth: stars with no other truth object within `radius`
/// holding `ratio` of their brightness or more (see
/// ValidationConfig::astrometryIsolationFluxRatio).
std::vector<bool> isolatedTruthStars(const std::vector<double>& ra, const std::vector<double>& dec,
                                     const std::vector<double>& brightness,
                                     const std::vector<bool>& isStar, Angle radius, double ratio) {
    std::vector<bool> iso(ra.size(), false);
    const SkyIndex index(ra, dec, radius);
    for (std::size_t i = 0; i < ra.size(); ++i) {
        if (!isStar[i]) continue;
        iso[i] = true;
        for (const std::int64_t j : index.within(ra[i], dec[i]))
            if (std::size_t(j) != i && brightness[std::size_t(j)] >= ratio * brightness[i])
                iso[i] = false;
    }
    return iso;
}

std::vector<double> colOr(const Table& t, const std::string& name, double fill, std::size_t n) {
    return t.has(name) ? col(t, name) : std::vector<double>(n, fill);
}

}  // namespace

namespace {

constexpr double kDeg = 3.14159265358979323846 / 180.0;

/// True when a point `widthArcsec` away in one of 8 directions has another owner (patch or
/// tract). Points outside every tract (the survey edge of a discrete skymap) are not seams.
/// True if `pred` holds for the owner of any of the 8 points `widthArcsec` away from (ra, dec)
/// in the directions 0°, 45°, ... (an owner lookup gives nullopt beyond the release area).
template <typename Pred>
bool anyNeighbourOwner(const SkyOwner& owner, double ra, double dec, double widthArcsec,
                       Pred pred) {
    const double w = widthArcsec / 3600.0, cosDec = std::max(1e-6, std::cos(dec * kDeg));
    for (int k = 0; k < 8; ++k) {
        const double th = k * 45.0 * kDeg;
        const double d = std::clamp(dec + w * std::sin(th), -90.0, 90.0);
        if (pred(owner(ra + w * std::cos(th) / cosDec, d))) return true;
    }
    return false;
}

bool atSeam(const SkyOwner& owner, double ra, double dec, double widthArcsec) {
    if (!owner || !std::isfinite(ra) || !std::isfinite(dec)) return false;
    const auto here = owner(ra, dec);
    if (!here) return false;
    return anyNeighbourOwner(owner, ra, dec, widthArcsec,
                             [&](const auto& there) { return there && *there != *here; });
}

/// Within `marginArcsec` of the outer edge of the release area: a point that far in one of 8
/// directions belongs to no tract (beyond a discrete skymap's fields).
bool nearAreaEdge(const SkyOwner& owner, double ra, double dec, double marginArcsec) {
    if (!owner || !std::isfinite(ra) || !std::isfinite(dec) || !(marginArcsec > 0)) return false;
    return anyNeighbourOwner(owner, ra, dec, marginArcsec,
                             [](const auto& there) { return !there; });
}

/// Everything computed from the calibrated single-visit measurements: PA1-like repeatability
/// of isolated point sources and the astrometric residuals of bright stars.
void sourceMetrics(const ValidationInputs& in, const ValidationConfig& config,
                   const std::vector<std::size_t>& prim, const std::vector<double>& pRa,
                   const std::vector<double>& pDec, std::map<std::string, double>& values) {
    const Table& s = *in.sources;
    const Table& obj = in.objects;
    const auto sRa = col(s, "ra"), sDec = col(s, "dec");
    const auto flux = col(s, "psf_flux"), err = col(s, "psf_flux_err");
    const auto& band = s.column<std::string>("band");
    const std::size_t n = sRa.size();
    // Isolated point-source primaries: extendedness < 0.5 and no other primary within the
    // isolation radius (LSST's PA1 uses isolated unresolved sources).
    const auto ext = obj.has("extendedness") ? col(obj, "extendedness")
                                             : std::vector<double>(obj.numRows(), 0.0);
    const SkyIndex all(pRa, pDec, arcseconds(config.isolationRadiusArcsec));
    std::vector<double> iRa, iDec;
    std::vector<std::int64_t> iRow;
    for (std::size_t k = 0; k < prim.size(); ++k) {
        if (!(ext[prim[k]] < 0.5) || all.within(pRa[k], pDec[k]).size() != 1) continue;
        iRa.push_back(pRa[k]), iDec.push_back(pDec[k]), iRow.push_back(std::int64_t(k));
    }
    const Angle radius = arcseconds(config.sourceMatchRadiusArcsec);
    std::map<std::string, std::int64_t> bandIndex;
    for (const auto& b : in.bands) bandIndex.emplace(b, std::int64_t(bandIndex.size()));
    if (!iRa.empty()) {
        const SkyIndex stars(iRa, iDec, radius);
        std::vector<std::int64_t> id;
        std::vector<double> mag, magErr;
        for (std::size_t i = 0; i < n; ++i) {
            if (!(flux[i] > 0) || !(flux[i] / err[i] >= config.pa1MinSn)) continue;
            const auto j = stars.nearest(sRa[i], sDec[i]);
            auto b = bandIndex.find(band[i]);
            if (j < 0 || b == bandIndex.end()) continue;
            // One series per (object, band).
            id.push_back(iRow[std::size_t(j)] * std::int64_t(8) + b->second);
            mag.push_back(njyToAbMag(flux[i]));
            magErr.push_back(2.5 / std::log(10.0) * err[i] / flux[i]);
        }
        RepeatabilityStats r = photometricRepeatability(id, mag, magErr, config.pa1MinMeasurements);
        values["pa1_n_stars"] = double(r.nStars);
        if (r.nStars > 0) {
            values["pa1_mmag"] = r.pa1Mmag;
            values["pa1_noise_mmag"] = r.noiseMmag;
            values["pa1_intrinsic_mmag"] = r.intrinsicMmag;
        }
    }
    // Bright single-visit positions vs truth stars and vs the reference catalog.
    auto residuals = [&](const std::vector<double>& ra, const std::vector<double>& dec,
                         const std::vector<bool>& use) {
        std::vector<double> a1, d1, a2, d2;
        const SkyIndex index(ra, dec, radius);
        for (std::size_t i = 0; i < n; ++i) {
            if (!(flux[i] > 0) || !(flux[i] / err[i] >= config.astrometryMinSn)) continue;
            const auto j = index.nearest(sRa[i], sDec[i]);
            if (j < 0 || !use[std::size_t(j)]) continue;
            a1.push_back(sRa[i]), d1.push_back(sDec[i]);
            a2.push_back(ra[std::size_t(j)]), d2.push_back(dec[std::size_t(j)]);
        }
        return astrometricResiduals(a1, d1, a2, d2);
    };
    if (in.truthObjects) {
        const Table& t = *in.truthObjects;
        std::vector<bool> star(t.numRows(), true);
        if (t.has("is_star"))
            for (std::size_t i = 0; i < star.size(); ++i) star[i] = t.column<Bool>("is_star")[i];
        const auto tRa = col(t, "ra"), tDec = col(t, "dec");
        AstrometryStats a =
            residuals(tRa, tDec,
                      isolatedTruthStars(tRa, tDec, truthBrightness(t, in.bands), star,
                                         arcseconds(config.isolationRadiusArcsec),
                                         config.astrometryIsolationFluxRatio));
        if (a.n > 0) values["source_astrometry_truth_rms_mas"] = a.rmsMas;
    }
    if (in.refcat) {
        const Table& rc = *in.refcat;
        AstrometryStats a =
            residuals(col(rc, "ra"), col(rc, "dec"), std::vector<bool>(rc.numRows(), true));
        if (a.n > 0) values["source_astrometry_refcat_rms_mas"] = a.rmsMas;
    }
}

/// Truth-free seam checks: every non-primary copy of an object measured by a neighbouring
/// patch should have a primary in its owning patch (when that patch is in the release), and
/// both measurements should agree photometrically.
void overlapSeamMetrics(const ValidationInputs& in, const ValidationConfig& config,
                        const std::vector<double>& pRa, const std::vector<double>& pDec,
                        const std::vector<std::size_t>& prim,
                        const std::map<std::string, std::vector<double>>& psfFlux,
                        const std::map<std::string, std::vector<double>>& psfErr,
                        const std::string& refBand, std::map<std::string, double>& values) {
    const Table& obj = in.objects;
    if (!in.owner || !obj.has("tract") || !obj.has("patch")) return;
    const auto tract = col(obj, "tract"), patch = col(obj, "patch");
    const auto nChildren =
        obj.has("n_children") ? col(obj, "n_children") : std::vector<double>(obj.numRows(), 0.0);
    const auto& ra = obj.column<double>("ra");
    const auto& dec = obj.column<double>("dec");
    const auto& primary = obj.column<Bool>("is_primary");
    std::set<std::pair<int, int>> inRelease;
    for (std::size_t i = 0; i < tract.size(); ++i) inRelease.insert({int(tract[i]), int(patch[i])});
    const SkyIndex index(pRa, pDec, arcseconds(config.matchRadiusArcsec));
    std::int64_t orphans = 0, pairs = 0;
    std::vector<double> ratio;
    for (std::size_t i = 0; i < obj.numRows(); ++i) {
        if (primary[i] || nChildren[i] > 0 || !std::isfinite(ra[i]) || !std::isfinite(dec[i]))
            continue;
        const auto own = in.owner(ra[i], dec[i]);
        if (!own || *own == std::pair<int, int>{int(tract[i]), int(patch[i])} ||
            !inRelease.count(*own))
            continue;
        double sn = 0;
        for (const auto& b : in.bands) sn = std::max(sn, psfFlux.at(b)[i] / psfErr.at(b)[i]);
        const auto j = index.nearest(ra[i], dec[i]);
        if (j < 0) {
            orphans += sn >= config.snThreshold;
            continue;
        }
        ++pairs;
        if (refBand.empty()) continue;
        const std::size_t p = prim[std::size_t(j)];
        const double f1 = psfFlux.at(refBand)[i], f0 = psfFlux.at(refBand)[p];
        if (f0 / psfErr.at(refBand)[p] >= config.snThreshold &&
            f1 / psfErr.at(refBand)[i] >= config.snThreshold)
            ratio.push_back(f1 / f0 - 1);
    }
    values["seam_orphans"] = double(orphans);
    values["seam_overlap_pairs"] = double(pairs);
    if (!ratio.empty()) values["seam_overlap_flux_offset"] = median(ratio);
}

/// The blend_pair_* metrics (ValidationConfig::blendPair*): how well the release measures the
/// members of resolved pairs, issue #6's sample (truth S/N, PSF FWHM per truth object).
void blendPairMetrics(const ValidationConfig& config, const std::vector<std::string>& bands,
                      const std::string& refBand, const std::vector<double>& tRa,
                      const std::vector<double>& tDec, const std::vector<double>& tSn,
                      const std::map<std::string, std::vector<double>>& tSnBand,
                      const std::vector<double>& fwhm, const std::vector<bool>& isStar,
                      const std::map<std::string, std::vector<double>>& tFlux,
                      const std::vector<std::size_t>& prim, const Match& m,
                      const std::map<std::string, std::vector<double>>& psfFlux,
                      const std::map<std::string, std::vector<double>>& modelFlux,
                      std::map<std::string, double>& values) {
    const std::vector<double>& fRef = tFlux.at(refBand);
    const SkyIndex index(tRa, tDec, arcseconds(config.blendPairRadiusArcsec));
    // Per band (and per adjacent-band colour, e.g. "g-r"): the objects' absolute errors.
    std::map<std::string, std::vector<double>> err, errBright, colour;
    // ... and the Cramér–Rao σ of each (informationFloor).
    std::map<std::string, std::vector<double>> errSigma, colourSigma;
    std::int64_t n = 0;
    for (std::size_t k = 0; k < prim.size(); ++k) {
        const auto j = m.bForA[k];
        if (j < 0 || m.aForB[std::size_t(j)] != std::int64_t(k)) continue;  // mutual best only
        const std::size_t i = prim[k], t = std::size_t(j);
        if (!(tSn[t] >= config.snThreshold) || !std::isfinite(fwhm[t]) || !(fRef[t] > 0)) continue;
        bool blended = false, resolved = true;
        double nearest = INFINITY, ratio = 0;
        for (const std::int64_t q : index.within(tRa[t], tDec[t])) {
            const auto u = std::size_t(q);
            if (u == t || !(tSn[u] >= config.blendPairNeighbourSn)) continue;
            const double d = separationArcsec(tRa[t], tDec[t], tRa[u], tDec[u]);
            if (d > config.blendPairRadiusArcsec) continue;
            blended = true;
            resolved = resolved && d >= fwhm[t];
            if (d < nearest) {
                nearest = d;
                ratio = fRef[u] > 0 ? std::max(fRef[u] / fRef[t], fRef[t] / fRef[u]) : INFINITY;
            }
        }
        if (!blended || !resolved || !(ratio <= config.blendPairMaxRatio)) continue;
        ++n;
        std::vector<double> meas(bands.size(), NAN), truth(bands.size(), NAN);
        for (std::size_t b = 0; b < bands.size(); ++b) {
            const auto tf = tFlux.find(bands[b]);
            if (tf == tFlux.end() || !(tf->second[t] > 0)) continue;
            meas[b] = (isStar[t] ? psfFlux : modelFlux).at(bands[b])[i];
            truth[b] = tf->second[t];
            if (!std::isfinite(meas[b])) continue;
            const double e = std::abs(meas[b] / truth[b] - 1);
            err[bands[b]].push_back(e);
            errSigma[bands[b]].push_back((isStar[t] ? 1.0 : kSizeFittedFluxErrorFactor) /
                                         tSnBand.at(bands[b])[t]);
            if (tSn[t] >= config.blendPairBrightSn) errBright[bands[b]].push_back(e);
        }
        for (std::size_t b = 0; b + 1 < bands.size(); ++b)
            if (meas[b] > 0 && meas[b + 1] > 0 && std::isfinite(truth[b] + truth[b + 1])) {
                const std::string key = bands[b] + "-" + bands[b + 1];
                colour[key].push_back(std::abs(
                    2.5 * std::log10((meas[b] / meas[b + 1]) / (truth[b] / truth[b + 1]))));
                colourSigma[key].push_back(
                    2.5 / std::log(10.0) *
                    std::hypot(1 / tSnBand.at(bands[b])[t], 1 / tSnBand.at(bands[b + 1])[t]));
            }
    }
    values["blend_pair_objects"] = double(n);
    auto worst = [](const std::map<std::string, std::vector<double>>& e) {
        double w = NAN;
        for (const auto& [b, v] : e)
            if (!v.empty()) w = std::fmax(w, median(v));
        return w;
    };
    if (const double w = worst(err); std::isfinite(w)) values["blend_pair_flux_error"] = w;
    if (const double w = worst(errBright); std::isfinite(w))
        values["blend_pair_flux_error_bright"] = w;
    if (const double w = worst(colour); std::isfinite(w)) values["blend_pair_colour_error"] = w;
    auto worstFloor = [](const std::map<std::string, std::vector<double>>& sigma) {
        double w = NAN;
        for (const auto& [b, v] : sigma) w = std::fmax(w, informationFloor(v));
        return w;
    };
    if (const double w = worstFloor(errSigma); std::isfinite(w))
        values["blend_pair_flux_floor"] = w;
    if (const double w = worstFloor(colourSigma); std::isfinite(w))
        values["blend_pair_colour_floor"] = w;
}

}  // namespace

ValidationResult validateRelease(const ValidationInputs& in, const ValidationConfig& config,
                                 const Thresholds& thresholds) {
    config.validate();
    ValidationResult r;
    std::map<std::string, double> values;

    const Table& obj = in.objects;
    for (const char* c : {"ra", "dec", "is_primary"})
        if (!obj.has(c)) throw badInput(std::string("release objects have no column '") + c + "'");
    const auto prim = primaryRows(obj);
    const auto& ra = obj.column<double>("ra");
    const auto& dec = obj.column<double>("dec");
    std::vector<double> pRa, pDec;
    for (auto i : prim) pRa.push_back(ra[i]), pDec.push_back(dec[i]);
    values["n_objects"] = double(obj.numRows());
    values["n_primary"] = double(prim.size());
    values["duplicate_primary_pairs"] =
        double(duplicatePrimaries(obj, arcseconds(config.duplicateRadiusArcsec)).nDuplicatePairs);
    r.plots.primaryRa = pRa;
    r.plots.primaryDec = pDec;
    if (obj.has("n_epochs")) {
        const auto ne = col(obj, "n_epochs");
        for (auto i : prim) r.plots.primaryEpochs.push_back(ne[i]);
    }

    // Journals.
    if (!in.stages.empty()) {
        double failed = 0, degraded = 0, blocked = 0;
        for (const auto& s : in.stages)
            failed += double(s.failed), degraded += double(s.degraded),
                blocked += double(s.blocked);
        values["failed_tasks"] = failed;
        values["degraded_tasks"] = degraded;
        values["blocked_tasks"] = blocked;
    }
    r.stages = in.stages;
    r.failures = in.failures;

    // Per band: PSF S/N and noise of primaries.
    const std::size_t nObj = obj.numRows();
    std::map<std::string, std::vector<double>> psfFlux, psfErr, modelFlux;
    std::vector<double> objSn(nObj, 0.0);
    std::map<std::string, double> bandNoise;
    for (const auto& b : in.bands) {
        psfFlux[b] = colOr(obj, b + "_psf_flux", NAN, nObj);
        psfErr[b] = colOr(obj, b + "_psf_flux_err", NAN, nObj);
        modelFlux[b] = colOr(obj, b + "_model_flux", NAN, nObj);
        std::vector<double> errs;
        for (auto i : prim) {
            errs.push_back(psfErr[b][i]);
            const double sn = psfFlux[b][i] / psfErr[b][i];
            if (std::isfinite(sn)) objSn[i] = std::max(objSn[i], sn);
        }
        bandNoise[b] = median(errs);
    }
    const std::string refBand = std::find(in.bands.begin(), in.bands.end(), "r") != in.bands.end()
                                    ? "r"
                                    : (in.bands.empty() ? "" : in.bands.front());

    overlapSeamMetrics(in, config, pRa, pDec, prim, psfFlux, psfErr, refBand, values);
    if (in.sources && in.sources->numRows() > 0) sourceMetrics(in, config, prim, pRa, pDec, values);

    // Zero points.
    if (in.zeroPoints) {
        const Table& zp = *in.zeroPoints;
        const std::size_t n = zp.numRows();
        std::int64_t nCal = 0;
        const bool hasCal = zp.has("calibrated");
        for (std::size_t i = 0; i < n; ++i) nCal += !hasCal || zp.column<Bool>("calibrated")[i];
        if (n > 0) values["zero_point_calibrated_fraction"] = double(nCal) / double(n);
        std::map<std::pair<std::int64_t, std::int64_t>, double> trueZp;
        if (in.truthDetectors) {
            ZeroPointStats s = zeroPointResiduals(zp, *in.truthDetectors);
            if (s.n > 0) {
                values["zero_point_rms_mmag"] = s.rmsAboutMeanMmag;
                values["zero_point_offset_mmag"] = s.meanOffsetMmag;
            }
            const auto tv = col(*in.truthDetectors, "visit"),
                       td = col(*in.truthDetectors, "detector");
            const auto tz = col(*in.truthDetectors, "zero_point");
            for (std::size_t i = 0; i < tv.size(); ++i)
                trueZp[{std::int64_t(tv[i]), std::int64_t(td[i])}] = tz[i];
        }
        const auto v = col(zp, "visit"), d = col(zp, "detector"), z = col(zp, "zero_point");
        for (std::size_t i = 0; i < n; ++i) {
            auto it = trueZp.find({std::int64_t(v[i]), std::int64_t(d[i])});
            const double res = it == trueZp.end() ? NAN : (z[i] - it->second) * 1000.0;
            r.plots.zeroPoints.push_back({std::int64_t(v[i]), std::int64_t(d[i]), z[i], res});
        }
    }

    // Repeatability from the photocal star summary: each star's weighted-mean error times
    // sqrt(n) is the per-visit error, and sqrt(chi2/dof) scales it to the observed scatter.
    if (in.photocalStars && in.photocalStars->has("mag_err") && in.photocalStars->has("chi2_dof")) {
        const Table& s = *in.photocalStars;
        const auto err = col(s, "mag_err"), n = col(s, "n_measurements"), chi = col(s, "chi2_dof");
        std::vector<double> rms;
        for (std::size_t i = 0; i < err.size(); ++i) {
            if (s.has("variable") && s.column<Bool>("variable")[i]) continue;
            if (n[i] < 3 || !std::isfinite(chi[i]) || !std::isfinite(err[i])) continue;
            rms.push_back(err[i] * std::sqrt(n[i]) * std::sqrt(chi[i]) * 1000.0);
        }
        if (!rms.empty()) values["photocal_star_scatter_mmag"] = median(rms);
    }

    // Reference catalog: astrometry and photometric offset of matched primaries.
    if (in.refcat) {
        const Table& rc = *in.refcat;
        Match m = matchCatalogs(pRa, pDec, rc.column<double>("ra"), rc.column<double>("dec"),
                                arcseconds(config.matchRadiusArcsec));
        std::vector<double> a1, d1, a2, d2, dmag;
        for (std::size_t k = 0; k < prim.size(); ++k) {
            const auto j = m.bForA[k];
            if (j < 0 || m.aForB[std::size_t(j)] != std::int64_t(k)) continue;  // mutual best only
            a1.push_back(pRa[k]), d1.push_back(pDec[k]);
            a2.push_back(rc.column<double>("ra")[std::size_t(j)]),
                d2.push_back(rc.column<double>("dec")[std::size_t(j)]);
            for (const auto& b : in.bands) {
                if (!rc.has(b + "_flux")) continue;
                const double ref = col(rc, b + "_flux")[std::size_t(j)];
                const double f = psfFlux[b][prim[k]];
                if (f > 0 && ref > 0 && f / psfErr[b][prim[k]] >= config.snThreshold)
                    dmag.push_back((njyToAbMag(f) - njyToAbMag(ref)) * 1000.0);
            }
        }
        if (!a1.empty())
            values["astrometry_refcat_rms_mas"] = astrometricResiduals(a1, d1, a2, d2).rmsMas;
        if (!dmag.empty()) values["refcat_mag_offset_mmag"] = median(dmag);
    }

    // Truth (simulated releases).
    if (in.truthObjects) {
        const Table& t = *in.truthObjects;
        const auto& tRa = t.column<double>("ra");
        const auto& tDec = t.column<double>("dec");
        const std::size_t nT = t.numRows();
        std::vector<bool> isStar(nT, false);
        if (t.has("is_star"))
            for (std::size_t i = 0; i < nT; ++i) isStar[i] = t.column<Bool>("is_star")[i];
        std::vector<double> tSn(nT, 0.0), rHalf(nT, INFINITY);
        std::map<std::string, std::vector<double>> tFlux, tSnBand;  // S/N: max over bands, per band
        for (const auto& b : in.bands) {
            if (!t.has(b + "_flux")) continue;
            tFlux[b] = col(t, b + "_flux");
            tSnBand[b].assign(nT, NAN);
            // Local depth: the PSF flux error scales as the square root of the coadd variance;
            // the band's median error belongs to the median variance at the primaries.
            double medianVariance = NAN;
            if (in.coaddDepth) {
                std::vector<double> v;
                for (std::size_t k = 0; k < prim.size(); ++k) {
                    const double var = in.coaddDepth(b, pRa[k], pDec[k]).variance;
                    if (std::isfinite(var) && var > 0) v.push_back(var);
                }
                if (!v.empty()) medianVariance = median(v);
            }
            // Half-light radius of the truth profile in this band (bulge and disk weighted by
            // flux); 0 for stars.
            const auto diskR = colOr(t, "disk_r_eff", 0.0, nT),
                       bulgeR = colOr(t, "bulge_r_eff", 0.0, nT),
                       bulgeF = colOr(t, b + "_bulge_flux", 0.0, nT);
            for (std::size_t i = 0; i < nT; ++i) {
                double noise = bandNoise[b];
                if (std::isfinite(medianVariance)) {
                    const CoaddDepth d = in.coaddDepth(b, tRa[i], tDec[i]);
                    if (!(std::isfinite(d.variance) && d.variance > 0)) continue;  // unobserved
                    noise *= std::sqrt(d.variance / medianVariance);
                    const double fb =
                        tFlux[b][i] > 0 ? std::clamp(bulgeF[i] / tFlux[b][i], 0.0, 1.0) : 0.0;
                    const double rEff = isStar[i] ? 0.0 : (1 - fb) * diskR[i] + fb * bulgeR[i];
                    rHalf[i] = std::fmin(rHalf[i], rEff);
                    noise *= extendedNoiseFactor(rEff, d.psfSigmaArcsec);
                }
                const double sn = tFlux[b][i] / noise;
                tSnBand[b][i] = sn;
                if (std::isfinite(sn)) tSn[i] = std::max(tSn[i], sn);
            }
        }
        // Only the release area counts: truth objects that no tract owns (beyond the edge of a
        // discrete skymap's fields; the simulator's sky extends past the field) are left out.
        // So are those within the position error of an S/N ~ 10 object of that edge
        // (config.areaEdgeMarginArcsec): whether their measured position falls inside is chance.
        std::vector<bool> inArea(nT, true);
        if (in.owner)
            for (std::size_t i = 0; i < nT; ++i) {
                inArea[i] = in.owner(tRa[i], tDec[i]).has_value() &&
                            !nearAreaEdge(in.owner, tRa[i], tDec[i], config.areaEdgeMarginArcsec);
                if (!inArea[i]) tSn[i] = 0;
            }
        const Angle radius = arcseconds(config.matchRadiusArcsec);
        Match m = matchCatalogs(pRa, pDec, tRa, tDec, radius);
        // Blends under the PSF: a truth object closer than the coadd PSF FWHM (the sharpest band
        // there) to a brighter one is part of that object's image, not an object that can appear
        // by itself (issue #6 deblends pairs from 1 FWHM apart); so is one inside a brighter
        // galaxy's observed half-light radius (its intrinsic one, the smallest over the bands,
        // in quadrature with the PSF's, FWHM / 2): it sits on the galaxy's half-light
        // isophote. Either leaves the uniqueness sample, but a primary nearest to it (a pair
        // the deblender did resolve) is its appearance, not a second one of the brighter.
        std::vector<bool> companion(nT, false);
        std::vector<double> fwhm(nT, NAN);  // coadd PSF FWHM at each truth object (arcsec)
        if (in.coaddDepth) {
            std::vector<double> brightness(nT, 0.0), rObs(nT, 0.0);
            double maxRadius = 0;
            for (std::size_t i = 0; i < nT; ++i) {
                if (!inArea[i]) continue;
                for (const auto& [b, flux] : tFlux) {
                    const double sigma = in.coaddDepth(b, tRa[i], tDec[i]).psfSigmaArcsec;
                    if (sigma > 0)
                        fwhm[i] = std::fmin(fwhm[i], 2 * std::sqrt(2 * std::log(2.0)) * sigma);
                    if (flux[i] > 0) brightness[i] += flux[i];
                }
                if (!std::isfinite(fwhm[i])) continue;
                rObs[i] = std::hypot(std::isfinite(rHalf[i]) ? rHalf[i] : 0.0, 0.5 * fwhm[i]);
                maxRadius = std::max({maxRadius, fwhm[i], rObs[i]});
            }
            if (maxRadius > 0) {
                const SkyIndex truthIndex(tRa, tDec, arcseconds(maxRadius));
                for (std::size_t i = 0; i < nT; ++i) {
                    if (!std::isfinite(fwhm[i])) continue;
                    for (const std::int64_t j : truthIndex.within(tRa[i], tDec[i])) {
                        const auto k = std::size_t(j);
                        if (k == i || separationArcsec(tRa[i], tDec[i], tRa[k], tDec[k]) >
                                          std::max(fwhm[i], rObs[k]))
                            continue;
                        if (brightness[k] > brightness[i] ||
                            (brightness[k] == brightness[i] && k < i))
                            companion[i] = true;
                    }
                }
            }
        }
        std::vector<double> uSn = tSn;
        std::int64_t nCompanions = 0;
        for (std::size_t i = 0; i < nT; ++i)
            if (companion[i]) {
                nCompanions += tSn[i] >= config.snThreshold;
                uSn[i] = 0;  // out of the sample; still the nearest truth of a primary on it
            }
        if (in.coaddDepth) values["unresolved_companions_sn10"] = double(nCompanions);
        UniquenessStats u = truthUniqueness(tRa, tDec, uSn, obj, radius, config.snThreshold);
        if (u.nTruth > 0) {
            values["unique_sn10"] = u.fraction();
            values["missing_sn10"] = double(u.nMissing);
            values["completeness_sn10"] = double(u.nTruth - u.nMissing) / double(u.nTruth);
        }
        if (in.owner) {
            std::int64_t nSeam = 0, nSeamFound = 0;
            for (std::size_t i = 0; i < nT; ++i) {
                if (!(tSn[i] >= config.snThreshold) ||
                    !atSeam(in.owner, tRa[i], tDec[i], config.seamWidthArcsec))
                    continue;
                ++nSeam;
                nSeamFound += m.nAForB[i] > 0;
            }
            if (nSeam > 0) values["seam_completeness_sn10"] = double(nSeamFound) / double(nSeam);
        }
        std::int64_t nPur = 0, nPurMatched = 0;
        for (std::size_t k = 0; k < prim.size(); ++k) {
            if (!(objSn[prim[k]] >= config.snThreshold)) continue;
            ++nPur;
            nPurMatched += m.bForA[k] >= 0;
        }
        if (nPur > 0) values["purity_sn10"] = double(nPurMatched) / double(nPur);

        // Curves per band.
        for (const auto& [b, flux] : tFlux) {
            std::vector<double> tMag(nT), oMag;
            std::vector<bool> tMatched(nT), oMatched;
            for (std::size_t i = 0; i < nT; ++i)
                tMag[i] = inArea[i] ? njyToAbMag(flux[i]) : NAN, tMatched[i] = m.aForB[i] >= 0;
            for (std::size_t k = 0; k < prim.size(); ++k)
                oMag.push_back(njyToAbMag(psfFlux[b][prim[k]])),
                    oMatched.push_back(m.bForA[k] >= 0);
            const double lo =
                std::floor(*std::min_element(tMag.begin(), tMag.end(), [](double a, double c) {
                    return std::isfinite(a) && (!std::isfinite(c) || a < c);
                }));
            const double depth = njyToAbMag(5.0 * bandNoise[b]);
            double hi = std::isfinite(depth) ? std::ceil(depth + 1.5) : lo + 10;
            if (!std::isfinite(lo) || hi <= lo) continue;
            r.plots.curves.push_back({b, binnedFraction(tMag, tMatched, lo, hi, config.magBinWidth),
                                      binnedFraction(oMag, oMatched, lo, hi, config.magBinWidth)});
        }

        // Flux bias/scatter, astrometry vs truth, photometric jump at seams.
        std::vector<double> sMeas, sTrue, gMeas, gTrue, a1, d1, a2, d2;
        // Flux / true flux near seams and elsewhere, stars [0] and galaxies [1] apart: the two
        // have different biases (PSF vs model fluxes), so a median over both would move with the
        // star fraction of each sample, not with the seam.
        std::array<std::vector<double>, 2> ratioNear, ratioFar;
        const std::vector<bool> isolatedStar = isolatedTruthStars(
            tRa, tDec, truthBrightness(t, in.bands), isStar,
            arcseconds(config.isolationRadiusArcsec), config.astrometryIsolationFluxRatio);
        r.plots.residualBand = refBand;
        for (std::size_t k = 0; k < prim.size(); ++k) {
            const auto j = m.bForA[k];
            if (j < 0 || m.aForB[std::size_t(j)] != std::int64_t(k)) continue;
            const std::size_t i = prim[k], tj = std::size_t(j);
            for (const auto& [b, flux] : tFlux) {
                const double meas = isStar[tj] ? psfFlux[b][i] : modelFlux[b][i];
                if (!(flux[tj] / bandNoise[b] >= config.snThreshold)) continue;
                (isStar[tj] ? sMeas : gMeas).push_back(meas);
                (isStar[tj] ? sTrue : gTrue).push_back(flux[tj]);
                if (b == refBand)
                    r.plots.fluxResiduals.push_back({njyToAbMag(flux[tj]),
                                                     njyToAbMag(meas) - njyToAbMag(flux[tj]),
                                                     isStar[tj]});
                if (in.owner && b == refBand)
                    (atSeam(in.owner, pRa[k], pDec[k], config.seamWidthArcsec)
                         ? ratioNear
                         : ratioFar)[isStar[tj] ? 0 : 1]
                        .push_back(meas / flux[tj]);
            }
            if (isolatedStar[tj] && objSn[i] >= config.astrometryMinSn)
                a1.push_back(pRa[k]), d1.push_back(pDec[k]), a2.push_back(tRa[tj]),
                    d2.push_back(tDec[tj]);
        }
        if (!sMeas.empty()) {
            FluxStats s = fluxRatioStats(sMeas, sTrue);
            values["psf_flux_bias_stars"] = s.bias;
            values["psf_flux_scatter_stars"] = s.scatter;
        }
        if (!gMeas.empty()) {
            FluxStats s = fluxRatioStats(gMeas, gTrue);
            values["model_flux_bias_galaxies"] = s.bias;
            values["model_flux_scatter_galaxies"] = s.scatter;
        }
        if (!a1.empty())
            values["astrometry_truth_rms_mas"] = astrometricResiduals(a1, d1, a2, d2).rmsMas;
        if (in.coaddDepth && tFlux.count(refBand))
            blendPairMetrics(config, in.bands, refBand, tRa, tDec, tSn, tSnBand, fwhm, isStar,
                             tFlux, prim, m, psfFlux, modelFlux, values);
        auto& res = r.plots.fluxResiduals;
        if (res.size() > config.maxPlotPoints && config.maxPlotPoints > 0) {
            std::vector<PlotData::Residual> keep;
            const double step = double(res.size()) / double(config.maxPlotPoints);
            for (std::size_t k = 0; k < config.maxPlotPoints; ++k)
                keep.push_back(res[std::size_t(double(k) * step)]);
            res = std::move(keep);
        }
        // The jump of each class with enough objects on both sides, and its statistical error
        // (standard error of a median, 1.2533 σ/√n, σ robust, both sides). The gated value is
        // the larger jump among the classes measured to a third of the gate's tolerance or
        // better; a class whose error is larger (galaxies on the demo release: σ ≈ 0.13, 1%
        // error) cannot gate a 1% threshold, so then the best-measured class stands.
        struct ClassJump {
            double jump, err;
        };
        std::vector<ClassJump> classes;
        for (int c = 0; c < 2; ++c) {
            if (ratioNear[c].size() < config.seamJumpMinObjects ||
                ratioFar[c].size() < config.seamJumpMinObjects)
                continue;
            const double j = median(ratioNear[c]) - median(ratioFar[c]);
            const double e =
                1.2533 *
                std::hypot(robustSigma(ratioNear[c]) / std::sqrt(double(ratioNear[c].size())),
                           robustSigma(ratioFar[c]) / std::sqrt(double(ratioFar[c].size())));
            const std::string name = c == 0 ? "seam_flux_jump_stars" : "seam_flux_jump_galaxies";
            values[name] = j;
            values[name + "_err"] = e;
            classes.push_back({j, e});
        }
        std::optional<ClassJump> gated;
        for (const ClassJump& c : classes)  // the largest jump among the well-measured
            if (c.err <= config.seamJumpMaxError &&
                (!gated || std::abs(c.jump) > std::abs(gated->jump)))
                gated = c;
        if (!gated)
            for (const ClassJump& c : classes)  // none: the best measured
                if (!gated || c.err < gated->err) gated = c;
        if (gated) values["seam_flux_jump"] = gated->jump;
    }

    for (const auto& s : kSpecs) {
        Metric m{s.name, s.unit, s.description, std::nullopt, std::nullopt};
        if (auto it = values.find(s.name); it != values.end() && std::isfinite(it->second))
            m.value = it->second;
        if (auto it = thresholds.byMetric.find(s.name); it != thresholds.byMetric.end())
            m.threshold = it->second;
        r.metrics.push_back(m);
    }
    return r;
}

std::string metricsToJson(const ValidationResult& r, const std::string& runLabel,
                          const std::string& created,
                          const std::map<std::string, std::string>& provenance) {
    std::ostringstream o;
    o << "{\n  \"format\": \"drp.validate/1\",\n  \"run\": \"" << jsonEscape(runLabel)
      << "\",\n  \"created\": \"" << jsonEscape(created)
      << "\",\n  \"passed\": " << (r.passed() ? "true" : "false") << ",\n  \"provenance\": {";
    bool firstProv = true;
    for (const auto& [k, v] : provenance) {
        o << (firstProv ? "" : ", ") << "\"" << jsonEscape(k) << "\": \"" << jsonEscape(v) << "\"";
        firstProv = false;
    }
    o << "},\n  \"metrics\": {";
    bool first = true;
    for (const auto& m : r.metrics) {
        o << (first ? "\n" : ",\n") << "    \"" << m.name
          << "\": {\"value\": " << (m.value ? num(*m.value, 10) : "null") << ", \"unit\": \""
          << m.unit << "\", \"threshold\": ";
        if (m.threshold)
            o << '"' << m.threshold->text() << '"';
        else
            o << "null";
        o << ", \"passed\": "
          << (!m.value || !m.threshold ? "null" : (m.failed() ? "false" : "true"))
          << ", \"description\": \"" << jsonEscape(m.description) << "\"}";
        first = false;
    }
    o << "\n  },\n  \"stages\": [";
    first = true;
    for (const auto& s : r.stages) {
        o << (first ? "\n" : ",\n") << "    {\"stage\": \"" << jsonEscape(s.stage)
          << "\", \"planned\": " << s.planned << ", \"done\": " << s.done
          << ", \"degraded\": " << s.degraded << ", \"failed\": " << s.failed
          << ", \"blocked\": " << s.blocked << "}";
        first = false;
    }
    o << "\n  ]\n}\n";
    return o.str();
}

std::map<std::string, double> metricValuesFromJson(const std::string& json) {
    // Reads the fixed layout metricsToJson writes: one metric per line inside "metrics".
    if (json.find("\"format\": \"drp.validate/1\"") == std::string::npos)
        throw badInput("not a drp.validate/1 metrics file");
    std::map<std::string, double> out;
    std::istringstream in(json);
    std::string line;
    bool inMetrics = false;
    while (std::getline(in, line)) {
        if (line.find("\"metrics\": {") != std::string::npos) {
            inMetrics = true;
            continue;
        }
        if (!inMetrics) continue;
        if (trim(line).rfind("}", 0) == 0) break;
        const auto q1 = line.find('"'), q2 = line.find('"', q1 + 1);
        const auto v = line.find("\"value\": ");
        if (q1 == std::string::npos || q2 == std::string::npos || v == std::string::npos)
            throw badInput("malformed metrics line: " + trim(line));
        const std::string name = line.substr(q1 + 1, q2 - q1 - 1);
        const std::string val = line.substr(v + 9, line.find(',', v) - v - 9);
        if (val == "null") continue;
        try {
            out[name] = std::stod(val);
        } catch (const std::exception&) {
            throw badInput("metric '" + name + "': bad value '" + val + "'");
        }
    }
    return out;
}

std::vector<TrendRow> compareMetrics(const std::map<std::string, double>& previous,
                                     const ValidationResult& current) {
    std::vector<TrendRow> rows;
    for (const auto& m : current.metrics) {
        TrendRow t{m.name, std::nullopt, m.value};
        if (auto it = previous.find(m.name); it != previous.end()) t.previous = it->second;
        if (t.previous || t.current) rows.push_back(t);
    }
    return rows;
}

std::string trendToText(const std::vector<TrendRow>& rows) {
    std::ostringstream o;
    char buf[200];
    std::snprintf(buf, sizeof buf, "%-32s %14s %14s %14s\n", "metric", "previous", "current",
                  "change");
    o << buf;
    for (const auto& t : rows) {
        auto s = [](const std::optional<double>& v) { return v ? num(*v) : std::string("-"); };
        std::string change = t.previous && t.current ? num(*t.current - *t.previous) : "-";
        std::snprintf(buf, sizeof buf, "%-32s %14s %14s %14s\n", t.name.c_str(),
                      s(t.previous).c_str(), s(t.current).c_str(), change.c_str());
        o << buf;
    }
    return o.str();
}

// ---------------------------------------------------------------------------------------------
// SVG plots

namespace {

struct Axis {
    double lo, hi;
    double map(double v, double a, double b) const { return a + (v - lo) / (hi - lo) * (b - a); }
};

Axis range(const std::vector<double>& v, double pad = 0.05) {
    double lo = INFINITY, hi = -INFINITY;
    for (double x : v)
        if (std::isfinite(x)) lo = std::min(lo, x), hi = std::max(hi, x);
    if (!std::isfinite(lo)) return {0, 1};
    if (hi <= lo) hi = lo + 1;
    const double p = (hi - lo) * pad;
    return {lo - p, hi + p};
}

// A plot frame 560x340 with margins, ticks and labels; returns the opening of the SVG.
struct Frame {
    Axis x, y;
    double w = 560, h = 340, l = 60, r = 20, t = 30, b = 45;
    double px(double v) const { return x.map(v, l, w - r); }
    double py(double v) const { return y.map(v, h - b, t); }
    std::string open(const std::string& title, const std::string& xl, const std::string& yl) const {
        std::ostringstream o;
        o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << w << "\" height=\"" << h
          << "\" viewBox=\"0 0 " << w << " " << h
          << "\" font-family=\"sans-serif\" font-size=\"11\">"
          << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>"
          << "<text x=\"" << w / 2 << "\" y=\"18\" text-anchor=\"middle\" font-size=\"13\">"
          << htmlEscape(title) << "</text><rect x=\"" << l << "\" y=\"" << t << "\" width=\""
          << w - l - r << "\" height=\"" << h - t - b << "\" fill=\"none\" stroke=\"#333\"/>";
        for (int k = 0; k <= 4; ++k) {
            const double vx = x.lo + (x.hi - x.lo) * k / 4, vy = y.lo + (y.hi - y.lo) * k / 4;
            o << "<text x=\"" << px(vx) << "\" y=\"" << h - b + 14 << "\" text-anchor=\"middle\">"
              << num(vx, 4) << "</text><text x=\"" << l - 4 << "\" y=\"" << py(vy) + 4
              << "\" text-anchor=\"end\">" << num(vy, 4) << "</text>";
        }
        o << "<text x=\"" << (l + w - r) / 2 << "\" y=\"" << h - 8 << "\" text-anchor=\"middle\">"
          << htmlEscape(xl) << "</text><text transform=\"translate(14," << (t + h - b) / 2
          << ") rotate(-90)\" text-anchor=\"middle\">" << htmlEscape(yl) << "</text>";
        return o.str();
    }
};

const char* kColors[] = {"#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#ff7f0e", "#8c564b"};

std::string emptyPlot(const std::string& title, const std::string& why) {
    return "<div class=\"empty\"><b>" + htmlEscape(title) + "</b>: " + htmlEscape(why) + "</div>";
}

std::string residualPlot(const PlotData& p) {
    const std::string title = "Flux residuals vs true magnitude (" + p.residualBand + ")";
    if (p.fluxResiduals.empty())
        return emptyPlot(title, "no truth matches (not a simulated release)");
    std::vector<double> xs, ys;
    for (const auto& r : p.fluxResiduals)
        xs.push_back(r.mag), ys.push_back(std::clamp(r.dmag, -0.5, 0.5));
    Frame f{range(xs), range(ys)};
    std::ostringstream o;
    o << f.open(title, "true AB magnitude", "measured - true [mag]");
    o << "<line x1=\"" << f.l << "\" x2=\"" << f.w - f.r << "\" y1=\"" << f.py(0) << "\" y2=\""
      << f.py(0) << "\" stroke=\"#999\" stroke-dasharray=\"4\"/>";
    for (std::size_t i = 0; i < xs.size(); ++i)
        o << "<circle cx=\"" << num(f.px(xs[i]), 5) << "\" cy=\"" << num(f.py(ys[i]), 5)
          << "\" r=\"1.5\" fill=\"" << (p.fluxResiduals[i].star ? "#1f77b4" : "#ff7f0e")
          << "\" fill-opacity=\"0.6\"/>";
    o << "<text x=\"" << f.w - f.r - 110 << "\" y=\"" << f.t + 14
      << "\" fill=\"#1f77b4\">stars (PSF flux)</text>"
      << "<text x=\"" << f.w - f.r - 110 << "\" y=\"" << f.t + 28
      << "\" fill=\"#ff7f0e\">galaxies (model)</text></svg>";
    return o.str();
}

std::string curvePlot(const PlotData& p, bool purity) {
    const std::string title =
        purity ? "Purity vs magnitude (primaries)" : "Completeness vs true magnitude";
    if (p.curves.empty()) return emptyPlot(title, "no truth (not a simulated release)");
    std::vector<double> xs;
    for (const auto& c : p.curves)
        for (const auto& b : (purity ? c.purity : c.completeness))
            xs.push_back(b.magMin), xs.push_back(b.magMax);
    Frame f{range(xs, 0), {0, 1.05}};
    std::ostringstream o;
    o << f.open(title, "AB magnitude",
                purity ? "matched fraction of objects" : "detected fraction of truth");
    for (std::size_t c = 0; c < p.curves.size(); ++c) {
        const auto& bins = purity ? p.curves[c].purity : p.curves[c].completeness;
        std::string pts;
        for (const auto& b : bins)
            if (b.n > 0)
                pts += num(f.px(0.5 * (b.magMin + b.magMax)), 5) + "," +
                       num(f.py(b.fraction()), 5) + " ";
        o << "<polyline fill=\"none\" stroke-width=\"2\" stroke=\"" << kColors[c % 6]
          << "\" points=\"" << pts << "\"/><text x=\"" << f.l + 8 << "\" y=\""
          << f.h - f.b - 8 - 14.0 * double(c) << "\" fill=\"" << kColors[c % 6] << "\">"
          << htmlEscape(p.curves[c].band) << "</text>";
    }
    return o.str() + "</svg>";
}

// Colour ramp for maps: blue (low) to red (high).
std::string ramp(double t) {
    t = std::clamp(t, 0.0, 1.0);
    char buf[16];
    std::snprintf(buf, sizeof buf, "#%02x%02x%02x", int(40 + 215 * t),
                  int(80 + 60 * (1 - std::abs(2 * t - 1))), int(255 - 215 * t));
    return buf;
}

std::string zeroPointMap(const PlotData& p) {
    const std::string title = "Zero points per visit x detector";
    if (p.zeroPoints.empty()) return emptyPlot(title, "no calib/photocal.h5");
    std::set<std::int64_t> visits, dets;
    for (const auto& z : p.zeroPoints) visits.insert(z.visit), dets.insert(z.detector);
    const bool haveRes = std::any_of(p.zeroPoints.begin(), p.zeroPoints.end(),
                                     [](auto& z) { return std::isfinite(z.residualMmag); });
    std::vector<double> vals;
    for (const auto& z : p.zeroPoints) vals.push_back(haveRes ? z.residualMmag : z.zpMag);
    Axis a = range(vals, 0);
    if (haveRes) {  // symmetric about zero
        const double m = std::max({std::abs(a.lo), std::abs(a.hi), 1.0});
        a = {-m, m};
    }
    const double cw = std::clamp(480.0 / double(dets.size()), 2.0, 40.0),
                 ch = std::clamp(280.0 / double(visits.size()), 2.0, 20.0);
    const double w = 70 + cw * double(dets.size()) + 20, h = 60 + ch * double(visits.size()) + 30;
    std::ostringstream o;
    o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << w << "\" height=\"" << h
      << "\" font-family=\"sans-serif\" font-size=\"11\"><rect width=\"100%\" height=\"100%\" "
         "fill=\"white\"/>"
      << "<text x=\"10\" y=\"18\" font-size=\"13\">" << title << " — "
      << (haveRes ? "zero point - truth [mmag], " : "zero point [mag], ") << "blue " << num(a.lo, 4)
      << " to red " << num(a.hi, 4) << "; grey: uncalibrated</text><text x=\"70\" y=\"" << h - 8
      << "\">detector →</text><text x=\"4\" y=\"40\">visit ↓</text>";
    std::map<std::int64_t, std::size_t> vi, di;
    for (auto v : visits) vi.emplace(v, vi.size());
    for (auto d : dets) di.emplace(d, di.size());
    for (const auto& z : p.zeroPoints) {
        const double v = haveRes ? z.residualMmag : z.zpMag;
        const std::string fill = std::isfinite(v) ? ramp((v - a.lo) / (a.hi - a.lo)) : "#bbbbbb";
        o << "<rect x=\"" << 70 + cw * double(di[z.detector]) << "\" y=\""
          << 50 + ch * double(vi[z.visit]) << "\" width=\"" << cw << "\" height=\"" << ch
          << "\" fill=\"" << fill << "\"><title>visit " << z.visit << " det " << z.detector << ": "
          << num(v, 5) << "</title></rect>";
    }
    return o.str() + "</svg>";
}

std::string skyMap(const PlotData& p, const std::vector<FailureMark>& failures) {
    const std::string title = "Sky map: primary density (depth) and failed/degraded tasks";
    if (p.primaryRa.empty()) return emptyPlot(title, "no primary objects");
    // RA across 0: unwrap around the median RA so that a field at RA 0 is contiguous.
    const double ra0 = median(p.primaryRa);
    auto unwrap = [&](double ra) { return ra - 360.0 * std::round((ra - ra0) / 360.0); };
    std::vector<double> xs;
    for (double ra : p.primaryRa) xs.push_back(unwrap(ra));
    Axis ax = range(xs, 0.02), ay = range(p.primaryDec, 0.02);
    std::swap(ax.lo, ax.hi);  // east to the left, as on the sky
    Frame f{ax, ay};
    constexpr int kGrid = 40;
    std::vector<double> count(kGrid * kGrid, 0), epochs(kGrid * kGrid, 0);
    for (std::size_t i = 0; i < xs.size(); ++i) {
        const int gx = std::clamp(int((xs[i] - ax.hi) / (ax.lo - ax.hi) * kGrid), 0, kGrid - 1);
        const int gy =
            std::clamp(int((p.primaryDec[i] - ay.lo) / (ay.hi - ay.lo) * kGrid), 0, kGrid - 1);
        count[std::size_t(gy * kGrid + gx)] += 1;
        if (i < p.primaryEpochs.size()) epochs[std::size_t(gy * kGrid + gx)] += p.primaryEpochs[i];
    }
    const double cmax = *std::max_element(count.begin(), count.end());
    std::ostringstream o;
    o << f.open(title, "RA [deg]", "Dec [deg]");
    const double cw = (f.w - f.l - f.r) / kGrid, ch = (f.h - f.t - f.b) / kGrid;
    for (int gy = 0; gy < kGrid; ++gy)
        for (int gx = 0; gx < kGrid; ++gx) {
            const double c = count[std::size_t(gy * kGrid + gx)];
            if (c == 0) continue;
            o << "<rect x=\"" << num(f.l + cw * (kGrid - 1 - gx), 5) << "\" y=\""
              << num(f.h - f.b - ch * (gy + 1), 5) << "\" width=\"" << num(cw, 4) << "\" height=\""
              << num(ch, 4) << "\" fill=\"" << ramp(c / cmax) << "\"><title>" << c << " primaries";
            if (!p.primaryEpochs.empty())
                o << ", mean n_epochs " << num(epochs[std::size_t(gy * kGrid + gx)] / c, 3);
            o << "</title></rect>";
        }
    int nMarked = 0;
    for (const auto& fm : failures) {
        if (!fm.ra || !fm.dec) continue;
        ++nMarked;
        const double x = f.px(unwrap(*fm.ra)), y = f.py(*fm.dec);
        o << "<g stroke=\"" << (fm.state == "degraded" ? "#e0a000" : "black")
          << "\" stroke-width=\"2\"><title>"
          << htmlEscape(fm.stage + " " + fm.dataId + ": " + fm.state + " " + fm.errorClass)
          << "</title><line x1=\"" << x - 5 << "\" y1=\"" << y - 5 << "\" x2=\"" << x + 5
          << "\" y2=\"" << y + 5 << "\"/><line x1=\"" << x - 5 << "\" y1=\"" << y + 5 << "\" x2=\""
          << x + 5 << "\" y2=\"" << y - 5 << "\"/></g>";
    }
    o << "<text x=\"" << f.l + 6 << "\" y=\"" << f.t + 14 << "\">colour: primaries per cell (max "
      << cmax << "); X: failed (black) / degraded (orange) tasks: " << nMarked << "</text>";
    return o.str() + "</svg>";
}

}  // namespace

const std::vector<std::string>& keyMetricNames() {
    static const std::vector<std::string> names = {
        "n_objects",
        "n_primary",
        "zero_point_rms_mmag",
        "pa1_mmag",
        "pa1_intrinsic_mmag",
        "source_astrometry_truth_rms_mas",
        "astrometry_truth_rms_mas",
        "completeness_sn10",
        "unique_sn10",
        "duplicate_primary_pairs",
        "seam_completeness_sn10",
        "seam_overlap_flux_offset",
        "failed_tasks",
    };
    return names;
}

std::string summaryText(const ValidationResult& r) {
    std::ostringstream o;
    char buf[240];
    // The key metrics in their order, then every other metric that gates (so a release manager
    // sees each threshold the verdict depends on, not only the ones listed as key).
    std::vector<const Metric*> shown;
    for (const auto& name : keyMetricNames())
        if (const Metric* m = r.find(name)) shown.push_back(m);
    for (const auto& m : r.metrics)
        if (m.threshold && std::find(shown.begin(), shown.end(), &m) == shown.end())
            shown.push_back(&m);
    for (const Metric* m : shown) {
        const std::string& name = m->name;
        const std::string value = m->value
                                      ? num(*m->value, 5) + (m->unit.empty() ? "" : " " + m->unit)
                                      : std::string("n/a");
        const std::string status = !m->value       ? "not computed"
                                   : !m->threshold ? ""
                                   : m->failed()   ? "FAIL (" + m->threshold->text() + ")"
                                                   : "pass (" + m->threshold->text() + ")";
        std::snprintf(buf, sizeof buf, "  %-33s %-16s %s\n", name.c_str(), value.c_str(),
                      status.c_str());
        o << buf;
    }
    const auto failed = r.failedNames();
    o << "  " << (failed.empty() ? "PASSED: every gated metric meets its threshold" : "FAILED:");
    for (const auto& f : failed) o << " " << f;
    o << "\n";
    return o.str();
}

std::string reportToHtml(const ValidationResult& r, const std::vector<TrendRow>& trend,
                         const std::string& title,
                         const std::map<std::string, std::string>& provenance) {
    std::ostringstream o;
    o << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>"
      << htmlEscape(title)
      << "</title><style>body{font-family:sans-serif;margin:20px;max-width:1180px}"
         "table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px "
         "8px;text-align:left}"
         ".fail{background:#f8c0c0}.pass{background:#c8f0c8}.na{color:#888}.empty{padding:10px;"
         "border:1px dashed #aaa;"
         "margin:6px 0}svg{margin:6px;border:1px solid "
         "#ddd}.verdict{font-size:20px;padding:8px}</style></head><body>\n";
    o << "<h1>" << htmlEscape(title) << "</h1>\n<div class=\"verdict "
      << (r.passed() ? "pass\">PASSED" : "fail\">FAILED");
    if (!r.passed()) {
        o << ": ";
        for (const auto& n : r.failedNames()) o << htmlEscape(n) << " ";
    }
    o << "</div>\n<h2>Metrics</h2><table><tr><th>metric</th><th>value</th><th>unit</"
         "th><th>threshold</th><th>status</th>"
         "<th>meaning</th></tr>\n";
    for (const auto& m : r.metrics) {
        const char* cls = !m.value ? "na" : (!m.threshold ? "" : (m.failed() ? "fail" : "pass"));
        o << "<tr class=\"" << cls << "\"><td>" << m.name << "</td><td>"
          << (m.value ? num(*m.value) : "n/a") << "</td><td>" << m.unit << "</td><td>"
          << (m.threshold ? htmlEscape(m.threshold->text()) : "") << "</td><td>"
          << (!m.value ? "not computed" : (!m.threshold ? "info" : (m.failed() ? "FAIL" : "pass")))
          << "</td><td>" << htmlEscape(m.description) << "</td></tr>\n";
    }
    o << "</table>\n";
    if (!trend.empty()) {
        o << "<h2>Trend vs previous "
             "validation</h2><table><tr><th>metric</th><th>previous</th><th>current</"
             "th><th>change</th></tr>\n";
        for (const auto& t : trend)
            o << "<tr><td>" << t.name << "</td><td>" << (t.previous ? num(*t.previous) : "-")
              << "</td><td>" << (t.current ? num(*t.current) : "-") << "</td><td>"
              << (t.previous && t.current ? num(*t.current - *t.previous) : "-") << "</td></tr>\n";
        o << "</table>\n";
    }
    o << "<h2>Pipeline stages</h2>";
    if (r.stages.empty())
        o << "<div class=\"empty\">no journals</div>";
    else {
        o << "<table><tr><th>stage</th><th>planned</th><th>done</th><th>degraded</th><th>failed</"
             "th><th>blocked</th></tr>\n";
        for (const auto& s : r.stages)
            o << "<tr" << (s.failed > 0 ? " class=\"fail\"" : "") << "><td>" << htmlEscape(s.stage)
              << "</td><td>" << s.planned << "</td><td>" << s.done << "</td><td>" << s.degraded
              << "</td><td>" << s.failed << "</td><td>" << s.blocked << "</td></tr>\n";
        o << "</table>\n";
    }
    if (!r.failures.empty()) {
        o << "<details><summary>" << r.failures.size() << " failed/degraded tasks</summary><table>"
          << "<tr><th>stage</th><th>data id</th><th>state</th><th>class</th></tr>";
        for (const auto& f : r.failures)
            o << "<tr><td>" << htmlEscape(f.stage) << "</td><td>" << htmlEscape(f.dataId)
              << "</td><td>" << htmlEscape(f.state) << "</td><td>" << htmlEscape(f.errorClass)
              << "</td></tr>";
        o << "</table></details>\n";
    }
    if (!provenance.empty()) {
        o << "<h2>Provenance</h2><table>";
        for (const auto& [k, v] : provenance)
            o << "<tr><td>" << htmlEscape(k) << "</td><td>" << htmlEscape(v) << "</td></tr>";
        o << "</table>\n";
    }
    o << "<h2>Plots</h2>\n"
      << residualPlot(r.plots) << "\n"
      << curvePlot(r.plots, false) << "\n"
      << curvePlot(r.plots, true) << "\n"
      << zeroPointMap(r.plots) << "\n"
      << skyMap(r.plots, r.failures) << "\n</body></html>\n";
    return o.str();
}

}  // namespace drp::validate
