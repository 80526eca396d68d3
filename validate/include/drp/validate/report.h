// Release validation: the metric set of `drp validate`, thresholds from an INI file, gating,
// metrics JSON, trend comparison with a previous run, and a self-contained HTML report with
// inline SVG plots (no JavaScript, opens in any browser from a file:// URL).
//
// Thresholds. One line per gated metric in an INI file:
//     zero_point_rms_mmag = max 3
//     completeness_sn10   = min 0.98
//     psf_flux_bias_stars = absmax 0.01
// `max` means the metric passes when value <= limit, `min` when value >= limit, `absmax` when
// |value| <= limit. Unknown metric
// names are errors (a misspelt threshold would otherwise silently gate nothing). A metric that
// could not be computed (no truth, no photocal) is reported as missing and does not gate.
// Defaults (Thresholds::defaults(), documented in docs/validation.md) follow the project's
// targets: zero-point RMS <= 3 mmag (LSST SRD relative photometry 10 mmag design, 5 mmag
// stretch; our simulated target is tighter), astrometry <= 10 mas, completeness >= 98% for
// S/N >= 10, no duplicate primaries.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "drp/core/table.h"
#include "drp/validate/metrics.h"

namespace drp::validate {

struct Threshold final {
    /// Max: value <= limit; Min: value >= limit; AbsMax: |value| <= limit (biases, offsets).
    enum class Kind { Max, Min, AbsMax } kind = Kind::Max;
    double limit = 0;
    bool passes(double value) const;
    std::string text() const;  ///< "<= 3", ">= 0.98" or "|x| <= 0.01"
};

/// The metric names `drp validate` computes (the only names a threshold file may use).
const std::vector<std::string>& knownMetricNames();

struct Thresholds final {
    std::map<std::string, Threshold> byMetric;
    static Thresholds defaults();
    /// Parse "name = max|min <number>" lines (# and ; comments, blank lines, an optional
    /// [thresholds] section header). Entries override the defaults given in `base`.
    /// Throws Error(config) naming the line and problem.
    static Thresholds parseIni(const std::string& text, const std::string& sourceName,
                               Thresholds base);
    std::string toIni() const;
};

/// One computed metric.
struct Metric final {
    std::string name, unit, description;
    std::optional<double> value;  ///< empty: not computable from the inputs
    std::optional<Threshold> threshold;
    bool failed() const { return value && threshold && !threshold->passes(*value); }
};

/// Task counts of one pipeline stage from the journals (filled by the runner).
struct StageSummary final {
    std::string stage;
    std::int64_t planned = 0, done = 0, degraded = 0, failed = 0, blocked = 0;
};
/// A failed or degraded task with a sky position (for the failure map), if known.
struct FailureMark final {
    std::string stage, dataId, state, errorClass;
    std::optional<double> ra, dec;
};

/// Owner (tract, patch) of a sky position (ICRS degrees) per the skymap; nullopt outside every
/// tract. The runner binds it to SkyMap::findTractPatch; validation only calls it.
using SkyOwner = std::function<std::optional<std::pair<int, int>>(double raDeg, double decDeg)>;

/// The coadd of a band at a sky position (ICRS degrees), from the patch that owns it: the
/// pixel variance (non-finite or <= 0 where no input exposure covered that pixel: chip gaps,
/// the survey edge) and the PSF's Gaussian-equivalent sigma in arcsec (NaN if unknown). The
/// runner reads both from the patch coadds; validation only calls it.
struct CoaddDepth final {
    double variance = NAN;
    double psfSigmaArcsec = NAN;
};
using CoaddDepthAt =
    std::function<CoaddDepth(const std::string& band, double raDeg, double decDeg)>;

/// Everything validation reads, in memory. Only `objects` is required.
struct ValidationInputs final {
    Table objects;                        ///< release "object" table
    std::vector<std::string> bands;       ///< bands present in `objects`
    std::optional<Table> zeroPoints;      ///< calib/photocal.h5 "zero_points"
    std::optional<Table> photocalStars;   ///< calib/photocal.h5 "stars"
    std::optional<Table> refcat;          ///< refcat/refcat.h5 "refcat"
    std::optional<Table> truthObjects;    ///< simulations: truth objects
    std::optional<Table> truthDetectors;  ///< simulations: per visit-detector truth
    /// Calibrated single-visit measurements of clean sources (Source catalogs with the fitted
    /// WCS and zero point applied): band (string), visit (int64), ra, dec (deg), psf_flux,
    /// psf_flux_err (nJy).
    std::optional<Table> sources;
    /// Ownership of the sky (seam checks across patch and tract boundaries); empty: no seam
    /// checks beyond duplicates.
    SkyOwner owner;
    /// Local depth (simulated releases). A truth object's S/N is the S/N of an optimal
    /// measurement of its total flux at its own position: the band's median PSF flux error of
    /// primaries, scaled by sqrt(variance there / median variance at the primaries) and, for a
    /// galaxy, by sqrt(1 + sigma_gal^2 / sigma_psf^2) (noise-equivalent area of the PSF-convolved
    /// profile, Gaussian with the truth half-light radius: within 2% of an exponential disk's);
    /// 0 where the coadd has no data. Empty: uniform depth, every object a point source.
    CoaddDepthAt coaddDepth;
    std::vector<StageSummary> stages;  ///< from the journals
    std::vector<FailureMark> failures;
};

struct ValidationConfig final {
    double matchRadiusArcsec = 1.0;      ///< object <-> truth/refcat match radius
    double duplicateRadiusArcsec = 0.2;  ///< two primaries closer than this are one object twice
    double snThreshold = 10.0;           ///< S/N of the "appears exactly once" metric
    /// Truth S/N is estimated as true flux / (5-sigma depth flux / 5); the depth is measured
    /// from the release itself as the median PSF flux error of primaries in that band, scaled
    /// to the local coadd depth when ValidationInputs::coaddVariance is given.
    double magBinWidth = 0.5;
    /// Stars used for astrometric residuals vs truth: S/N at least this. The centroid error is
    /// about FWHM / (2.35 S/N) per axis (King 1983), ~3 mas at 0.7" and S/N 100, so the RMS
    /// measures the calibration rather than photon noise.
    double astrometryMinSn = 100.0;
    /// ... and isolated: no other truth object within isolationRadiusArcsec holds this fraction
    /// of the star's flux (summed over bands) or more. A neighbour the deblender cannot separate
    /// moves the measured centroid by up to separation × f / (1 + f): 1% at 1" is 10 mas, the
    /// whole threshold. (Demo release: 14 of 140 bright stars fail the cut; their positions are
    /// off by 44 mas RMS — one pair 0.48" apart, f = 0.34, by 156 mas — the other 126 by 8.4.)
    double astrometryIsolationFluxRatio = 0.01;
    /// Seam band: a position is "at a seam" when a point this far from it, in any of 8
    /// directions, belongs to another patch or tract (10" = 50 LSST pixels: several PSF FWHM,
    /// wide enough to hold the objects whose measurement an overlap edge could disturb).
    double seamWidthArcsec = 10.0;
    /// Truth objects within this distance of the release area's outer edge (beyond it no tract
    /// owns the sky) are left out of the truth samples, like those outside: an object's
    /// measured position decides whether it is primary, and at S/N 10 it is uncertain by
    /// ~0.05" (point source; more for galaxies), so whether it lands inside is chance.
    double areaEdgeMarginArcsec = 0.2;
    /// A class (stars, galaxies) enters seam_flux_jump with at least this many objects above
    /// the S/N threshold both at seams and elsewhere.
    std::size_t seamJumpMinObjects = 20;
    /// A class gates seam_flux_jump only if its jump's statistical error is at most this (a
    /// third of the default 1% tolerance).
    double seamJumpMaxError = 0.0033;
    /// Single-visit measurements: association radius to release objects and truth [arcsec]
    /// (a few centroid errors of faint stars, far below the isolation radius), the
    /// per-measurement S/N of the stars used for repeatability (issue #4: S/N > 100), the
    /// isolation radius (no other primary within it) and the minimum number of visits.
    double sourceMatchRadiusArcsec = 0.5;
    double pa1MinSn = 100.0;
    double isolationRadiusArcsec = 2.0;
    int pa1MinMeasurements = 3;
    /// Issue #6's pairs in the release (blend_pair_* metrics): a truth object above the S/N
    /// threshold whose truth neighbours with S/N >= blendPairNeighbourSn within
    /// blendPairRadiusArcsec are all at least the coadd PSF FWHM away, the nearest with a
    /// reference-band flux ratio of at most blendPairMaxRatio; blendPairBrightSn splits off
    /// the bright ones, where photon noise is small beside the deblending error.
    double blendPairRadiusArcsec = 3.0;
    double blendPairNeighbourSn = 5.0;
    double blendPairMaxRatio = 10.0;
    double blendPairBrightSn = 60.0;
    /// Most points drawn in a scatter plot (an evenly spaced subset beyond): keeps the report a
    /// few MB for a 10^6-object release.
    std::size_t maxPlotPoints = 5000;
    void validate() const;
};

/// Data behind the report's plots.
struct PlotData final {
    struct Curve {
        std::string band;
        std::vector<MagBin> completeness, purity;
    };
    std::vector<Curve> curves;
    struct Residual {
        double mag, dmag;  ///< true AB mag, measured - true [mag]
        bool star;
    };
    std::vector<Residual> fluxResiduals;  ///< reference band
    std::string residualBand;
    struct ZeroPoint {
        std::int64_t visit, detector;
        double zpMag, residualMmag;  ///< residual NaN when there is no truth
    };
    std::vector<ZeroPoint> zeroPoints;
    std::vector<double> primaryRa, primaryDec;  ///< depth map (object density / n_epochs)
    std::vector<double> primaryEpochs;
};

struct ValidationResult final {
    std::vector<Metric> metrics;
    PlotData plots;
    std::vector<StageSummary> stages;
    std::vector<FailureMark> failures;
    bool passed() const;
    std::vector<std::string> failedNames() const;
    const Metric* find(const std::string& name) const;
};

/// Compute every metric the inputs allow and apply the thresholds. Pure function.
ValidationResult validateRelease(const ValidationInputs& inputs, const ValidationConfig& config,
                                 const Thresholds& thresholds);

/// Metrics JSON: {"format": "drp.validate/1", "run": ..., "created": ..., "passed": bool,
/// "metrics": {name: {"value", "unit", "threshold", "passed", "description"}}, "stages": [...]}.
/// `provenance` (software version, inputs, thresholds, ...) is written as a "provenance" object.
std::string metricsToJson(const ValidationResult& result, const std::string& runLabel,
                          const std::string& created,
                          const std::map<std::string, std::string>& provenance = {});
/// The metric values of a metrics JSON written by metricsToJson (name -> value; null values
/// are left out). Throws Error(bad_input) if the text is not such a file.
std::map<std::string, double> metricValuesFromJson(const std::string& json);

/// Change of each metric between a previous run and this one.
struct TrendRow final {
    std::string name;
    std::optional<double> previous, current;
};
std::vector<TrendRow> compareMetrics(const std::map<std::string, double>& previous,
                                     const ValidationResult& current);
std::string trendToText(const std::vector<TrendRow>& rows);

/// Self-contained HTML report (inline CSS and SVG).
std::string reportToHtml(const ValidationResult& result, const std::vector<TrendRow>& trend,
                         const std::string& title,
                         const std::map<std::string, std::string>& provenance = {});

/// The few key metrics a release manager reads first, in summary order (objects, calibration,
/// repeatability, astrometry, completeness, seams, failures).
const std::vector<std::string>& keyMetricNames();
/// A short text summary: one line per key metric, then one per other gated metric, each with
/// its value, threshold and pass/FAIL, and the verdict naming the failed metrics.
std::string summaryText(const ValidationResult& result);

}  // namespace drp::validate
