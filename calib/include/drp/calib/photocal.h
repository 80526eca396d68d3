// Global photometric self-calibration ("ubercal", Padmanabhan et al. 2008, ApJ 674, 1217).
//
// Measurement i of star s in visit v on detector d has instrumental magnitude
// m_i = -2.5 log10(inst_flux_i). The model is
//
//     m_i + ZP(v, d) = m_s            (ZP: zero point, m_AB = -2.5 log10(inst_flux) + ZP)
//
// with either one ZP per (visit, detector) ("VisitDetector") or the factorisation
// ZP(v, d) = V_v + D_d ("VisitPlusDetector": clouds/exposure times per visit, throughput/flat-field
// offsets per detector; ~10× fewer unknowns). Reference-catalogue stars add prior terms
// (m_s - m_ref,s)² / σ_ref² that fix the absolute scale (as jointcal's reference-star terms); the
// relative calibration comes from the overlaps. We minimise
//
//     χ² = Σ_i w_i (m_i + u_i·Z - m_s)² + Σ_{s∈ref} w_ref,s (m_s - m_ref,s)²,
//     w_i = 1 / (σ_i² + pedestal²)
//
// The star magnitudes are eliminated analytically (science-anchors §3.3: each is a 1×1 block;
// m_s is the weighted mean of its calibrated measurements and reference magnitude), leaving the
// sparse reduced normal equations over the calibration parameters Z:
//
//     [Σ_i w_i u_i u_iᵀ - Σ_s g_s g_sᵀ / W_s] Z = -Σ_i w_i u_i m_i + Σ_s g_s a_s / W_s,
//     g_s = Σ_{i∈s} w_i u_i,  W_s = Σ_{i∈s} w_i + w_ref,s,  a_s = Σ_{i∈s} w_i m_i + w_ref,s
//     m_ref,s,
//
// solved with Eigen's SimplicialLDLT (sparse LDLᵀ, AMD ordering). Gauge freedoms are fixed
// explicitly: parameters in connected components (stars linking parameters) without any
// reference star are not solved and are reported uncalibrated; in the factorised model one
// detector term per component is pinned to zero (the V+c, D-c degeneracy) and the detector terms
// are re-centred to zero mean for output (the sums, i.e. the zero points, are gauge-invariant).
//
// Outliers are clipped iteratively: per star, if χ²/dof without its worst measurement still
// exceeds `maxStarChi2Dof` the star is rejected (a variable); otherwise its worst measurement is
// dropped if its normalised residual exceeds `clipSigma` (a transient: cosmic ray, blend,
// satellite). At most one measurement per star per iteration, and only candidates scoring at
// least half the worst score of the iteration, so that gross outliers, which bias the early
// solutions, go first and cannot drag good measurements over the threshold (jointcal likewise
// removes outliers progressively, anchor §3.1).
//
// Zero-point errors: √(u_jᵀ N⁻¹ u_j) from the reduced normal matrix N (the marginal covariance
// of Z after eliminating the stars), computed exactly by one sparse triangular solve per output
// zero point when the number of parameters is at most `maxExactErrorParameters`; above that the
// fast approximation Σ_p 1/N_pp over the zero point's parameters is used, which ignores
// correlations and underestimates the error (the result says which method was used). Errors are
// not rescaled by χ²/dof (reported separately).
//
// Determinism: measurements are put into a canonical order (object, visit, detector, flux, error)
// before anything is accumulated, so the result is bit-identical for any permutation of the input
// rows (e.g. whatever order MPI ranks gathered them in).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "drp/core/table.h"

namespace drp {

enum class PhotoCalModel {
    VisitDetector,      ///< one zero point per (visit, detector)
    VisitPlusDetector,  ///< ZP = visit term + detector term
};

struct PhotoCalConfig {
    PhotoCalModel model = PhotoCalModel::VisitDetector;
    /// Measurement columns (besides object_id int64, visit and detector int32/int64).
    std::string fluxColumn = "inst_flux";         ///< instrumental flux (counts), > 0
    std::string fluxErrColumn = "inst_flux_err";  ///< its 1σ error, > 0
    /// Systematic error added in quadrature to every measurement [mag]. DECam star flats reach
    /// 2–3 mmag rms for bright stars (anchor §3.2), so a 2 mmag floor keeps the brightest stars
    /// from dominating beyond what the model can represent.
    double errorPedestal = 0.002;
    /// Systematic error added in quadrature to reference magnitudes [mag].
    double referenceErrorPedestal = 0.0;
    /// Stars need at least this many measurements, or one plus a reference magnitude.
    int minMeasurements = 2;
    /// Measurement clipping threshold on |residual| / σ_residual (jointcal, gbdes: 5σ).
    double clipSigma = 5.0;
    /// A star whose χ²/dof, without its worst measurement, exceeds this is rejected as variable
    /// (0 disables).
    double maxStarChi2Dof = 10.0;
    /// Outer iterations (solve + clip); stops earlier when nothing is clipped. Each iteration
    /// rejects candidates scoring at least half the largest score, so ~log2(max σ / clipSigma)
    /// iterations are needed (≈ 8 for 1000σ outliers).
    int maxIterations = 30;
    /// Exact zero-point errors up to this many unknowns, the diagonal approximation above.
    int maxExactErrorParameters = 5000;
    void validate() const;
};

struct PhotoCalSummary {
    int iterations = 0;
    std::size_t numMeasurements = 0;    ///< input rows
    std::size_t numUsed = 0;            ///< measurements in the final fit
    std::size_t numClipped = 0;         ///< measurements clipped as outliers
    std::size_t numInvalid = 0;         ///< non-finite or non-positive flux/error
    std::size_t numStars = 0;           ///< stars in the final fit
    std::size_t numVariableStars = 0;   ///< stars rejected as variable
    std::size_t numReferenceStars = 0;  ///< reference stars in the final fit
    std::size_t numParameters = 0;      ///< solved unknowns
    std::size_t numUncalibrated = 0;    ///< zero points without a reference star in their component
    double chi2 = 0.0;
    double dof = 0.0;
    std::string errorMethod;  ///< "exact" or "diagonal"
};

struct PhotoCalResult {
    /// One row per (visit, detector) seen in the input, sorted by visit then detector:
    /// visit (int64), detector (int64), zero_point [mag], zero_point_err [mag], n_measurements
    /// (int64, used in the fit), calibrated (Bool; false: zero_point is NaN).
    Table zeroPoints;
    /// Factorised model only (else empty): visit (int64), visit_term [mag]; detector (int64),
    /// detector_term [mag], detector terms with zero mean.
    Table visitTerms, detectorTerms;
    /// One row per object seen, sorted by object_id: object_id, mag (calibrated weighted mean,
    /// including the reference prior), mag_err, n_measurements (used), chi2_dof, has_reference
    /// (Bool), variable (Bool: rejected as variable).
    Table stars;
    /// Per input row (input order): used in the final fit.
    std::vector<Bool> measurementUsed;
    PhotoCalSummary summary;
};

/// Solve for zero points. `measurements`: object_id, visit, detector, flux and flux error
/// columns (config). `reference`: object_id, mag, mag_err (AB) for reference-catalogue stars
/// (objects not measured are ignored).
/// Throws Error("no_reference_stars") if no measured star has a reference magnitude,
/// Error("photocal_failed") if the normal matrix cannot be factorised, Error(bad_input) for
/// malformed tables, Error(config) for an invalid config.
PhotoCalResult solvePhotometricCalibration(const Table& measurements, const Table& reference,
                                           const PhotoCalConfig& config);

}  // namespace drp
