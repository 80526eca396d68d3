// Aperture and PSF photometry, and the aperture correction.
//
// Aperture flux: F = Σ a_i I_i over the pixels, with a_i the exact area of the pixel square
// inside the circle (computed analytically from the primitive of √(r² − u²); no sub-sampling),
// σ_F² = Σ a_i² V_i. Pixels with bad mask bits inside the aperture set `badPixels` (they are
// still summed: after cosmic-ray repair they hold interpolated values); an aperture that leaves
// the image sets `truncated`. Radii follow LSST's list (3, 4.5, 6, 9, 12, 17, 25 … px); the
// "calibration" aperture is 17 px here (LSST uses 12 px, anchors §2.5; at 1.1" seeing a Moffat
// star has ~1.5% of its flux outside 12 px, which would go into the zero points vs truth).
//
// PSF flux (LSST meas_base PsfFlux): with P the normalised PSF model at the centroid, over the
// PSF stamp ∩ good pixels, F = Σ P_i D_i / Σ P_i², σ_F² = Σ P_i² V_i / (Σ P_i²)² (unweighted
// estimator, exact propagated error), χ² and effective area (Σ P)² / Σ P² are reported.
//
// Aperture correction (LSST measureApCorr): on the PSF stars the ratio calibFlux / psfFlux is
// fitted with a polynomial of `order` (0: constant) in detector position with 4σ MAD clipping
// (4 iterations), each star weighted by the inverse variance of its ratio when errors are given
// (the characterization gives them: bright stars' ratios are far more precise); psf fluxes (and
// errors) are multiplied by it, putting them on the calibration-aperture system that the
// photometric calibration anchors.
#pragma once

#include <vector>

#include "drp/core/exposure.h"
#include "drp/core/psf.h"

namespace drp::calib {

/// Exact area of the intersection of the circle of radius r centred at (cx, cy) with the
/// axis-aligned rectangle [x0, x1] × [y0, y1].
double circleRectangleOverlap(double cx, double cy, double r, double x0, double x1, double y0,
                              double y1);

struct ApertureFlux final {
    double flux = NAN, fluxErr = NAN;
    double area = 0;         ///< Σ a_i (π r² when not truncated)
    bool truncated = false;  ///< aperture extends beyond the image
    bool badPixels = false;  ///< a pixel with a bad mask bit lies inside the aperture
};

ApertureFlux measureApertureFlux(const MaskedImage& image, Point2D center, double radius,
                                 MaskPixel badBits);

struct PsfFlux final {
    double flux = NAN, fluxErr = NAN;
    double chi2 = NAN;  ///< Σ (D − F P)² / V over the fitted pixels
    int numPixels = 0;
    double effectiveArea = NAN;
    bool edge = false;    ///< PSF stamp truncated by the image edge
    bool failed = false;  ///< no usable pixels
};

PsfFlux measurePsfFlux(const MaskedImage& image, const Psf& psf, Point2D center, MaskPixel badBits);

struct ApertureCorrectionConfig final {
    /// Polynomial order in detector position (LSST: Chebyshev order 2 per detector; 0 = constant).
    int order = 0;
    /// Clipping in units of the MAD-derived σ, and number of iterations (LSST: 4σ, 4).
    double clipSigma = 4.0;
    int clipIterations = 4;
    /// Fewer stars than this: fall back to a constant; none: correction 1 with `valid` false.
    int minStarsPerTerm = 3;
    void validate() const;
};

class ApertureCorrection final {
  public:
    ApertureCorrection() = default;
    ApertureCorrection(Box2I bbox, int order, std::vector<double> coefficients, double rms,
                       int numStars);
    /// The multiplicative correction at a detector position.
    double evaluate(Point2D p) const;
    int order() const { return _order; }
    const std::vector<double>& coefficients() const { return _coef; }
    double rms() const { return _rms; }  ///< scatter of the ratio on the stars kept
    int numStars() const { return _n; }
    bool valid() const { return _n > 0; }

  private:
    Box2I _bbox{};
    int _order = 0;
    std::vector<double> _coef{1.0};
    double _rms = 0;
    int _n = 0;
};

/// Fit calibFlux / psfFlux on stars at `positions` (non-finite ratios are skipped), every star
/// with the same weight.
ApertureCorrection fitApertureCorrection(const Box2I& bbox, const std::vector<Point2D>& positions,
                                         const std::vector<double>& calibFlux,
                                         const std::vector<double>& psfFlux,
                                         const ApertureCorrectionConfig& config);
/// The same, weighting each star by the inverse variance of its ratio (from the flux errors)
/// and clipping on normalised residuals: bright stars, whose ratios are precise, dominate.
ApertureCorrection fitApertureCorrection(const Box2I& bbox, const std::vector<Point2D>& positions,
                                         const std::vector<double>& calibFlux,
                                         const std::vector<double>& calibFluxErr,
                                         const std::vector<double>& psfFlux,
                                         const std::vector<double>& psfFluxErr,
                                         const ApertureCorrectionConfig& config);

/// Light of a PSF beyond a circular aperture, from its Moffat wings.
///
/// A pixel PSF model ends at its stamp (PSFEx/Piff: 25² pixels), and an aperture correction
/// measured on stars reaches the calibration aperture (17 px); the light beyond it still depends
/// on the seeing (a β = 3 Moffat of 1.1" FWHM puts 0.8% of its flux beyond 17 px = 3.4", one of
/// 0.6" less than 0.1%), so calibrating on the aperture flux makes the zero points depend on
/// the seeing. Atmospheric PSFs have Moffat wings, I ∝ (1 + r²/α²)^(−β) with β ≈ 2.5–4.8
/// (Moffat 1969; Racine 1996, PASP 108, 699; Trujillo et al. 2001, MNRAS 328, 977); fitting
/// that profile to the model's azimuthal profile beyond its core (r ≥ minRadius) and integrating
/// it analytically beyond the aperture gives the missing light:
///   F(> R) = A π α² / (β − 1) · (1 + R²/α²)^(1−β)
/// in units of the kernel's normalisation (unit sum over the stamp).
struct MoffatWings final {
    double amplitude = NAN, alpha = NAN, beta = NAN;
    bool valid = false;
    /// Flux beyond radius r (kernel units); 0 when invalid.
    double fluxBeyond(double r) const;
};
/// Least-squares fit of A (1 + r²/α²)^(−β) to the kernel pixels at r ≥ minRadius from its centre
/// (pixel 0, 0 of `kernel`'s bbox), α in [0.5, 30] px, β in (1.05, 12]; not valid if the fit
/// stays on a bound or the kernel has no positive wings.
MoffatWings fitMoffatWings(const Image<double>& kernel, double minRadius = 2.0);

}  // namespace drp::calib
