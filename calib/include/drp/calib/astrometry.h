// Single-detector astrometric calibration: match detected sources to a reference catalogue
// starting from an approximate header WCS, then fit a TAN-SIP WCS.
//
// 1. Both catalogues go to the gnomonic plane about the header's detector centre: sources via the
//    header WCS, references directly. References outside the header footprint padded by
//    `maxOffset` are ignored.
// 2. Pattern matching (in the spirit of LSST's matchOptimisticB and of SCAMP's pattern stage,
//    anchor §3.1): for the brightest `patternSources` sources and `patternReferences`
//    references, every source pair is compared with every reference pair of similar length
//    (sorted lengths, binary search); a pair of pairs defines a similarity transform (rotation,
//    scale, shift) which must lie within the header's stated uncertainty (`maxRotation`,
//    `maxScaleError`, `maxOffset`); each admissible transform is verified by counting bright
//    sources landing within `patternTolerance` of a reference, and the transform with the most
//    such matches wins (ties: smaller residual sum, then first found — deterministic). A wrong
//    transform collects ~N·M·π·tol²/area chance matches (≪ 1 for the defaults), so
//    `minPatternMatches` = 8 is a very significant detection (the best of thousands of wrong
//    transforms verifies 1–3 in the tests).
// 3. Iterative nearest-neighbour matching with a shrinking radius: match all sources to all
//    references under the current model, fit (affine first, then the full SIP order), clip at
//    `clipSigma` times the robust scale of the normalised residuals, shrink the radius to
//    `radiusFactor` × the residual rms (not below `finalMatchRadius`), until the match set is
//    stable.
// 4. The TAN-SIP fit itself is sip_fit.h (linear least squares in the tangent plane with the
//    inverse AP/BP fitted too).
//
// Failure classes (drp::Error): "no_reference_stars" (no reference star in the footprint),
// "astrometry_failed" (too few sources, no pattern match, too few final matches, residual rms
// above `maxRmsResidual`).
#pragma once

#include <memory>
#include <string>

#include "drp/calib/sip_fit.h"
#include "drp/core/angle.h"
#include "drp/core/geometry.h"
#include "drp/core/table.h"
#include "drp/core/wcs.h"

namespace drp {

struct AstrometryConfig {
    // Source catalogue columns (reference: ra, dec [deg], mag).
    std::string xColumn = "x", yColumn = "y";                ///< 0-based pixels
    std::string xErrColumn = "x_err", yErrColumn = "y_err";  ///< pixels; "" -> defaultCentroidError
    std::string fluxColumn = "flux";                         ///< ranks sources by brightness
    double defaultCentroidError = 0.05;  ///< pixels, when no error columns are given

    // Header uncertainty (the pattern search space). SCAMP's defaults are POSITION_MAXERR 1′,
    // POSANGLE_MAXERR 5°, PIXSCALE_MAXERR 1.2 (×); a survey header is far better than that.
    Angle maxOffset = arcseconds(60.0);
    Angle maxRotation = degrees(2.0);
    double maxScaleError = 0.01;  ///< fractional pixel-scale error allowed

    // Pattern matching.
    int patternSources = 50;     ///< brightest sources used
    int patternReferences = 80;  ///< brightest references used
    /// Pair-length and verification tolerance: must cover what the header misses within one
    /// detector after a similarity transform (distortion, ≲ 0.5″ for survey cameras).
    Angle patternTolerance = arcseconds(1.0);
    Angle minPairLength = arcseconds(30.0);  ///< shorter pairs give poor angles
    int minPatternMatches = 8;

    // Iterative matching and fit.
    Angle initialMatchRadius = arcseconds(2.0);
    Angle finalMatchRadius = arcseconds(0.3);
    double radiusFactor = 5.0;  ///< next radius = radiusFactor × rms of the residuals
    int sipOrder = 3;           ///< forward polynomial order (SCAMP DISTORT_DEGREES 3)
    int inverseSipOrder = 4;    ///< AP/BP order (one more than forward keeps the inverse < 1e-3 px)
    double clipSigma = 5.0;     ///< gbdes/jointcal outlier threshold
    int maxIterations = 12;
    /// Systematic error added in quadrature to each match [arcsec]; gbdes uses 3.4 mas.
    double systematicError = 0.0034;
    /// Reference position error [arcsec] (Gaia-like: sub-mas at the bright end).
    double referenceError = 0.001;
    int minMatches = 20;
    Angle maxRmsResidual = arcseconds(0.2);  ///< per-coordinate rms of all kept matches

    void validate() const;
};

struct AstrometrySummary {
    std::size_t numSources = 0;
    std::size_t numReferences = 0;  ///< in the padded footprint
    int patternMatches = 0;         ///< verified bright matches of the winning transform
    Angle patternRotation;          ///< header -> truth rotation found by the pattern
    double patternScale = 1.0;
    Angle patternOffset;         ///< shift of the field centre
    std::size_t numMatches = 0;  ///< kept in the final fit
    std::size_t numClipped = 0;  ///< matched but clipped in the final fit
    double rmsMas = 0.0;         ///< per-coordinate rms residual of kept matches [mas]
    double chi2 = 0.0;
    double dof = 0.0;
    double maxInverseErrorPixels = 0.0;
    int iterations = 0;
};

struct AstrometryResult {
    std::shared_ptr<const Wcs> wcs;  ///< TAN-SIP (TAN if sipOrder == 1)
    SipFit fit;
    /// Final matches: source_row, ref_row (int64), dxi, deta [mas] (reference - model, east/north),
    /// sigma [mas], used (Bool: not clipped).
    Table matches;
    AstrometrySummary summary;
};

/// Fit the WCS of one detector. `sources`: x, y (+ errors, flux) in 0-based pixels of `bbox`;
/// `reference`: ra, dec [deg], mag; `headerWcs`: the approximate WCS.
AstrometryResult fitAstrometry(const Table& sources, const Table& reference, const Wcs& headerWcs,
                               const Box2I& bbox, const AstrometryConfig& config);

}  // namespace drp
