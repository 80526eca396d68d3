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

/// Everything validation reads, in memory. Only `objects` is required.
struct ValidationInputs final {
    Table objects;                        ///< release "object" table
    std::vector<std::string> bands;       ///< bands present in `objects`
    std::optional<Table> zeroPoints;      ///< calib/photocal.h5 "zero_points"
    std::optional<Table> photocalStars;   ///< calib/photocal.h5 "stars"
    std::optional<Table> refcat;          ///< refcat/refcat.h5 "refcat"
    std::optional<Table> truthObjects;    ///< simulations: truth objects
    std::optional<Table> truthDetectors;  ///< simulations: per visit-detector truth
    std::vector<StageSummary> stages;     ///< from the journals
    std::vector<FailureMark> failures;
};

struct ValidationConfig final {
    double matchRadiusArcsec = 1.0;      ///< object <-> truth/refcat match radius
    double duplicateRadiusArcsec = 0.2;  ///< two primaries closer than this are one object twice
    double snThreshold = 10.0;           ///< S/N of the "appears exactly once" metric
    /// Truth S/N is estimated as true flux / (5-sigma depth flux / 5); the depth is measured
    /// from the release itself as the median PSF flux error of primaries in that band.
    double magBinWidth = 0.5;
    /// Stars used for astrometric residuals vs truth: S/N at least this. The centroid error is
    /// about FWHM / (2.35 S/N) per axis (King 1983), ~3 mas at 0.7" and S/N 100, so the RMS
    /// measures the calibration rather than photon noise.
    double astrometryMinSn = 100.0;
    /// Patch inner size [tract pixels] for the seam check (0: skip it) and the width of the
    /// band around patch boundaries whose objects are compared with the rest [pixels].
    int patchInnerX = 0, patchInnerY = 0;
    double seamWidthPixels = 50.0;
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
std::string metricsToJson(const ValidationResult& result, const std::string& runLabel,
                          const std::string& created);
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
                         const std::string& title);

}  // namespace drp::validate
