// Joint astrometric calibration of many visits, in the spirit of gbdes (Bernstein et al. 2017,
// PASP 129, 074503) and LSST's jointcal.
//
// Why: a single-visit fit (astrometry.h) of one detector sees only the few reference stars in
// its footprint (8-26 on the demo sky): it absorbs their catalogue errors into its SIP terms,
// often has to lower the SIP order, and small dithers hand the same reference stars, hence the
// same errors, to every visit. Averaging visits does not remove such errors; solving all visits
// together does: the distortion is a property of the camera, measured once from every visit.
//
// Model. Every visit v has a tangent plane T_v (the mean of its detectors' centres); a detection
// at pixel p of detector d in visit v lands at standard coordinates (arcsec)
//
//     ξ_v = A_v · P_d(p) + b_v,
//
// P_d a full 2-D polynomial of order `detectorOrder` in the detector's normalised pixel
// coordinates (the distortion, shared by every visit), A_v, b_v an affine map per visit (pointing,
// rotation, scale). The gauge (P_d → M P_d + c for all d) is fixed by holding one reference
// visit's (A, b) at its starting value. Unknowns are the model parameters and the positions of
// the stars (in the gnomonic plane T_0 about the field centre); constraints are
//   - every detection of a star (internal: the same star in different visits must coincide),
//     weighted by its centroid error ⊕ `systematicErrorMas`;
//   - the reference-catalogue position of the stars that have one, weighted by its stated error.
// The normal equations are sparse (a star touches only its own visits and detectors): built as
// JᵀWJ from the sparse Jacobian and solved by Eigen's SimplicialLDLT (AMD ordering eliminates the
// stars first, like the Schur complement of bundle adjustment), with a small Levenberg damping
// (1e-6 of the diagonal) that pins directions no data constrains. Gauss–Newton (the model is
// bilinear in A_v and P_d) until no star and no detection model moves by more than
// `convergenceMas`; then outliers beyond `clipSigma` × the robust scale of the normalised
// residuals (median χ² / (2 ln 2)) are clipped (detections and reference matches separately),
// and the fit is redone, until nothing more is clipped.
//
// Start and fallback: the per-visit fits. They predict each detection's sky position for the
// association (friends-of-friends within `matchRadius`; groups holding two detections from one
// visit-detector are dropped as blends), give P_d (from the reference visit, else from any visit
// already placed) and A_v, b_v (least squares over a grid of each visit's detectors). A visit
// with fewer than `minVisitMeasurements` detections on constrained stars (two or more
// detections, or one and a reference star), or a detector with fewer than
// `minDetectorMeasurements` over all visits, is left out: its visit-detectors keep their
// per-visit WCS (reported, not an error); so does everything when the whole solve cannot run
// (fewer than two visits, fewer than `minReferenceStars` reference stars, a singular system).
//
// Output: per visit-detector a TAN-SIP WCS of order `detectorOrder` (the model sampled on a grid
// and fitted by sip_fit.h; exact to < 0.01 mas for order 3, the change of tangent point being the
// only non-polynomial part) with inverse polynomials of `inverseSipOrder`.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "drp/core/angle.h"
#include "drp/core/geometry.h"
#include "drp/core/sphere_point.h"
#include "drp/core/wcs.h"

namespace drp {

struct JointAstrometryConfig {
    int detectorOrder = 3;                ///< per-detector polynomial order (shared by visits)
    int inverseSipOrder = 4;              ///< AP/BP order of the written TAN-SIP
    Angle matchRadius = arcseconds(1.0);  ///< association radius (gbdes: 1″)
    /// Error added in quadrature to every detection [mas]: unmodelled per-visit effects
    /// (atmosphere; gbdes finds a few mas for DECam). The simulator has none, so it is small.
    double systematicErrorMas = 1.0;
    double clipSigma = 5.0;  ///< gbdes/jointcal outlier threshold
    int maxClipRounds = 10;
    int maxIterations = 20;        ///< Gauss–Newton iterations per clipping round
    double convergenceMas = 0.01;  ///< largest change of any star or detection model [mas]
    /// Detections (on constrained stars) a visit needs over all its detectors for its affine
    /// map, and a detector over all visits for its polynomial; a visit-detector itself has no
    /// parameters of its own, so one with few detections is still calibrated by the others.
    int minVisitMeasurements = 20;
    int minDetectorMeasurements = 50;
    int minReferenceStars = 10;  ///< matched reference stars needed for the absolute frame
    void validate() const;       ///< throws Error("config") naming the bad field
};

/// One visit-detector's input: its detections of point sources and its per-visit WCS.
struct JointAstrometryUnit {
    std::int64_t visit = 0;
    int detector = 0;
    Box2I bbox;                       ///< detector pixels
    std::shared_ptr<const Wcs> wcs;   ///< per-visit fit: starting point and fallback
    std::vector<Point2D> pixels;      ///< centroids, 0-based pixels
    std::vector<double> sigmaPixels;  ///< per-coordinate centroid error [pixels], > 0
};

struct JointAstrometryReference {
    std::vector<SpherePoint> sky;
    std::vector<double> sigmaMas;  ///< per-coordinate position error [mas], > 0
};

struct JointAstrometryUnitResult {
    std::shared_ptr<const Wcs> wcs;  ///< joint solution, or the input WCS when not `joint`
    bool joint = false;
    std::string note;                 ///< why the unit kept its per-visit WCS
    std::size_t numMeasurements = 0;  ///< detections used in the final fit
    std::size_t numClipped = 0;
    double rmsMas = 0.0;  ///< per-coordinate rms residual of the used detections
};

struct JointAstrometryStar {
    SpherePoint sky;            ///< fitted position
    int numMeasurements = 0;    ///< detections used
    bool hasReference = false;  ///< matched (and not clipped) to a reference star
};

struct JointAstrometrySummary {
    bool solved = false;  ///< false: every unit kept its per-visit WCS (see `note`)
    std::string note;
    std::size_t numUnits = 0, numJointUnits = 0;
    std::size_t numStars = 0, numReferenceStars = 0;
    std::size_t numMeasurements = 0, numClipped = 0, numReferenceClipped = 0;
    std::size_t numParameters = 0;  ///< model parameters (detectors + visits)
    int iterations = 0;             ///< Gauss–Newton iterations, all rounds
    int clipRounds = 0;
    bool converged = false;  ///< last round met `convergenceMas`
    double chi2 = 0.0, dof = 0.0;
    double measurementRmsMas = 0.0;  ///< per-coordinate rms of the used detections
    double referenceRmsMas = 0.0;    ///< per-coordinate rms of star - reference
    std::int64_t referenceVisit = -1;
};

struct JointAstrometryResult {
    std::vector<JointAstrometryUnitResult> units;  ///< in input order
    std::vector<JointAstrometryStar> stars;
    JointAstrometrySummary summary;
};

/// Solve all visit-detectors together (see the file comment). Never throws for data that cannot
/// be solved jointly (the affected units keep their per-visit WCS); throws Error("bad_input") for
/// malformed input (missing WCS, mismatched array sizes) and Error("config") for a bad config.
JointAstrometryResult solveJointAstrometry(const std::vector<JointAstrometryUnit>& units,
                                           const JointAstrometryReference& reference,
                                           const JointAstrometryConfig& config);

}  // namespace drp
