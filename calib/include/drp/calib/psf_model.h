// A PSFEx-like empirical PSF model: a pixel basis whose every pixel varies as a polynomial in
// detector position, fitted by linear least squares to star stamps.
//
//   PSF(i, j; x, y) = Σ_k X_k(u, v) c_k(i, j),   X_k = u^a v^b (a + b ≤ spatialOrder),
//   u, v = detector position scaled to [−1, 1] over the fitted bbox,
//
// i.e. PSFEx with BASIS_TYPE PIXEL at native sampling (the Piff PixelGrid default in Rubin
// production, samplingSize 1) and PSFVAR_DEGREES = spatialOrder (PSFEx/LSST default 2), stamp
// (2·kernelRadius+1)² (PSFEx PSF_SIZE 25).
//
// Fitting (Bertin 2011, ASP Conf. 442, 435; Jarvis et al. 2021, MNRAS 501, 1282): every star
// stamp is shifted so that its centroid falls on the central pixel, with a periodic-sinc
// (Dirichlet) interpolant over the whole stamp — exact for band-limited stamps whose edges are
// ~0, 1e-5 of the peak for σ = 1.2 px, whereas Lanczos-5 errs by ~1e-3, which alone would bias
// the model size by a few 1e-3 (measured in psf_model_test) —, then
// normalised to unit sum, and weighted by min(S/N, maxWeightSnr)² (Piff caps bright stars at S/N
// 200 so that they do not dominate and the brighter-fatter effect is diluted). Because the basis is
// per-pixel and the weights per-star, all pixels share one small normal matrix (n_coef²).
// Outliers (neighbours, CR residuals, binaries) are rejected by their χ²/dof, ≥ rejectSigma
// robust σ above the median, at most 5% of the stars per iteration (Piff `Chisq` outliers).
// When too few stars remain for the requested order, the order is lowered (as PSFEx does); fewer
// than minStars raises Error("psf_failed").
//
// Spatial variation. PixelPolynomial (PSFEx): every pixel's value is a free polynomial in
// position. Deformation (default): the model at p is a template T plus its first-order
// deformations,
//
//   PSF(p) = T + Σ_{k=1..3} a_k(p) B_k,   a_k(p) = Σ_t a_kt X_t(u, v),
//   B_1 = −(2T + x ∂_x T + y ∂_y T)   (dilation: d/ds of T(x/(1+s)) / (1+s)²),
//   B_2 = −(x ∂_x T − y ∂_y T),  B_3 = −(y ∂_x T + x ∂_y T)   (the two shears),
//
// with the derivatives of the periodic-sinc interpolant (the same interpolant that centres the
// stamps). A change of seeing, focus or astigmatism across the field is mainly such an affine
// deformation of the profile (exactly so for the simulator's Moffat of varying FWHM and
// ellipticity); this is the low-dimensional spatial model of the SDSS/LSST PCA PSFs (Lupton et
// al. 2001, ASP Conf. 238, 269: a few eigen-images with polynomial coefficients) with physical
// instead of empirical modes, so that 10–20 stars constrain it. The fit alternates a linear
// solve for the a_kt (3 × n_terms unknowns, stars weighted as in the pixel fit) with T =
// weighted mean of the stamps minus their fitted deformations (templateIterations passes). The
// result is stored in the same pixel × polynomial form (c_0 = T + Σ a_k0 B_k, c_t = Σ a_kt B_k).
//
// Evaluation: computeKernelImage(p) is the polynomial sum at p normalised to unit sum;
// computeImage(p) shifts that kernel with the same periodic-sinc interpolant so that its centre
// falls at the sub-pixel position p on the parent grid.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "drp/core/exposure.h"
#include "drp/core/psf.h"
#include "drp/core/table.h"

namespace drp::calib {

/// Fewer PSF stars than this: the model is usable but poorly constrained (flag psf_few_stars).
constexpr int kPsfNominalStars = 5;

/// How the model varies across the detector.
enum class PsfSpatialModel {
    /// A pixel template T plus its three deformation modes (dilation and the two shears, the
    /// derivatives of T), each scaled by a polynomial in position: 3 × n_terms unknowns.
    Deformation,
    /// Every pixel a free polynomial in position (PSFEx PIXEL basis): n_pix × n_terms unknowns.
    PixelPolynomial,
};

struct PsfModelConfig final {
    /// Half-size of the model stamp (PSFEx PSF_SIZE 25 → 12; Piff modelSize 25).
    int kernelRadius = 12;
    /// Polynomial order of the spatial variation (PSFEx/LSST 2; Rubin production Piff 4).
    int spatialOrder = 2;
    /// Deformation (default): with the ~15 PSF stars of a 1024² detector, a free polynomial per
    /// pixel follows each star's noise and misses the PSF between them by ~1% in PSF flux; the
    /// deformation modes carry the physical variation (seeing, focus, astigmatism) with
    /// 3 × n_terms numbers instead of n_pix × n_terms.
    PsfSpatialModel spatialModel = PsfSpatialModel::Deformation;
    /// Deformation model: passes of (solve the mode coefficients, update the template).
    int templateIterations = 3;
    /// S/N above which a star's χ² (outlier test) is computed with its variance inflated to that
    /// S/N (Piff maxSNR 200): model imperfections of ~1e-3 must not make every bright star an
    /// outlier.
    double maxSnr = 200.0;
    /// S/N cap of the star weights in the fit (weight = min(S/N, maxWeightSnr)²). Piff caps the
    /// weights at maxSNR too, which dilutes the brighter-fatter effect; without it (or after its
    /// correction) the brightest stars carry the information on the PSF's size across the
    /// detector: with weights capped at 200, stars of S/N 500–1000 counted as S/N 200 ones and
    /// the PSF fluxes of reserved stars scattered by ~1% (demo sky).
    double maxWeightSnr = 1000.0;
    /// Outlier rejection threshold on χ²/dof in robust σ (Piff nsigma 4) and iterations (Piff 15).
    double rejectSigma = 4.0;
    int maxRejectIterations = 15;
    /// At most this fraction of the stars, rounded up, is rejected per iteration (Piff
    /// max_remove 0.05: ceil(0.05 n), so at least one star when the fraction is > 0).
    double maxRejectFraction = 0.05;
    /// Fewer usable stars than this → Error("psf_failed"). With few stars the spatial order is
    /// lowered (to a constant model for 3–5 stars, as PSFEx does): a small or sparse detector
    /// keeps a usable PSF instead of losing the unit (the pipeline marks it degraded,
    /// psf_few_stars, below kPsfNominalStars).
    int minStars = 3;

    void validate() const;
};

/// One star offered to the PSF fitter.
struct PsfStar final {
    Point2D position;      ///< centroid (parent pixels)
    double snr = 0;        ///< S/N of the star's flux
    std::int64_t id = -1;  ///< caller's identifier (e.g. source row), echoed in the fit report
};

class PsfModel final : public Psf {
  public:
    PsfModel(Box2I bbox, int kernelRadius, int spatialOrder, std::vector<double> coefficients);

    Image<double> computeKernelImage(Point2D position) const override;
    Image<double> computeImage(Point2D position) const override;
    int kernelRadius() const override { return _r; }
    std::string typeName() const override { return "pixel_poly"; }

    const Box2I& bbox() const { return _bbox; }
    int spatialOrder() const { return _order; }
    int numSpatialTerms() const { return (_order + 1) * (_order + 2) / 2; }
    /// Coefficients, term-major: c[k·n_pix + (j·(2r+1) + i)].
    const std::vector<double>& coefficients() const { return _coef; }

    /// Serialise: one float64 column "coefficient" (term-major) with the geometry in metadata
    /// (PSF_TYPE, PSF_R, PSF_ORDER, PSF_X0, PSF_Y0, PSF_W, PSF_H).
    Table toTable() const;
    static std::shared_ptr<const PsfModel> fromTable(const Table& table);

    /// The spatial basis X_k at a position (exposed for tests and diagnostics).
    std::vector<double> spatialBasis(Point2D position) const;

  private:
    Box2I _bbox;
    int _r, _order;
    std::vector<double> _coef;
};

struct PsfFitReport final {
    std::vector<std::int64_t> usedIds;  ///< stars kept in the final fit
    std::vector<std::int64_t>
        rejectedIds;       ///< stars rejected as outliers or unusable (stamp off the image, masked)
    int spatialOrder = 0;  ///< order actually used
    double meanChi2Dof = 0;  ///< mean χ²/dof of the used stars
};

/// Fit the model to `stars` on a background-subtracted image. Stamp pixels with `badBits` (and
/// non-finite ones) are left out; a star whose stamp leaves the image is unusable.
std::shared_ptr<const PsfModel> fitPsfModel(const MaskedImage& image,
                                            const std::vector<PsfStar>& stars,
                                            const PsfModelConfig& config, MaskPixel badBits,
                                            PsfFitReport* report = nullptr);

/// Shape residuals of a PSF model against stars (e.g. the reserved ones): adaptive moments of
/// each star and of the model drawn at the same centroid. δT/T = (T_star − T_model)/T_model,
/// δe = e_star − e_model (distortion convention, ellipse.h). Stars whose moments fail are skipped.
struct PsfShapeResiduals final {
    int numStars = 0;
    double meanDeltaTOverT = NAN, meanDeltaE1 = NAN, meanDeltaE2 = NAN;
    double rmsDeltaTOverT = NAN, rmsDeltaE = NAN;
};
PsfShapeResiduals psfShapeResiduals(const MaskedImage& image, const Psf& psf,
                                    const std::vector<Point2D>& positions, MaskPixel badBits);

/// Shift an n×n stamp (n odd, row-major) by a sub-pixel amount with the periodic-sinc
/// interpolant: out(i, j) = in at continuous stamp position (i + fx, j + fy). With `squared`,
/// the squared weights are used (propagation of a variance plane).
void shiftStamp(const double* in, double* out, int n, double fx, double fy, bool squared);

}  // namespace drp::calib
