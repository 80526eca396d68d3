// The simulator's true PSF: an elliptical Moffat profile, truncated, varying smoothly across the
// focal plane.
//
// Profile (Moffat 1969, A&A 3, 455), in pixel units about the centre:
//   I(x) = N (1 + q(x)/α²)^(-β)  for q(x) <= R_t²,  0 beyond;   q(x) = xᵀ C⁻¹ x,
//   C = [[1+e1, e2], [e2, 1-e1]] / sqrt(1 - e²)   (det C = 1: the shear preserves area),
//   FWHM = 2 α sqrt(2^(1/β) - 1) (along the geometric-mean axis), R_t = truncation × FWHM.
// Truncation makes the profile's support finite so that every stamp holds all the light; the
// normalisation is analytic, N⁻¹ = π α² [1 - (1 + R_t²/α²)^(1-β)] / (β - 1), so the *defined*
// profile has unit flux exactly. Its second moments are analytic too:
//   <r²> = α² [((1+U)^(2-β) - 1)/(2-β) - ((1+U)^(1-β) - 1)/(1-β)] / [(1 - (1+U)^(1-β))/(β-1)],
//   U = R_t²/α²,  and  Q = (<r²>/2) C,
// which the tests compare with moments measured in rendered images. Atmospheric PSFs are
// Moffat-like with β ≈ 2.5–4.8 (Trujillo et al. 2001, MNRAS 328, 977; β = 4.765 for Kolmogorov
// turbulence).
//
// Spatial variation over the focal plane (u, v in focal-plane pixels, ρ = (u, v)/R_corner):
//   FWHM(u, v) = FWHM₀ (1 + c_r |ρ|² + g_x ρ_x + g_y ρ_y)
//   e1 = e1₀ + a (ρ_x² - ρ_y²),  e2 = e2₀ + a 2 ρ_x ρ_y      (astigmatism-like pattern)
#pragma once

#include <memory>
#include <string>

#include "drp/core/ellipse.h"
#include "drp/core/image.h"
#include "drp/core/psf.h"

namespace drp::sim {

class TruncatedMoffat final {
  public:
    /// `fwhm` in pixels, `truncation` in units of FWHM.
    TruncatedMoffat(double fwhm, double beta, double e1, double e2, double truncation = 5.0);

    /// Surface brightness at offset (dx, dy) from the centre (unit total flux).
    double operator()(double dx, double dy) const {
        const double q = _ci00 * dx * dx + 2 * _ci01 * dx * dy + _ci11 * dy * dy;
        if (q > _rt2) return 0.0;
        return _norm * std::pow(1.0 + q * _invAlpha2, -_beta);
    }
    double fwhm() const { return _fwhm; }
    double beta() const { return _beta; }
    double e1() const { return _e1; }
    double e2() const { return _e2; }
    double alpha() const { return _alpha; }
    double truncationRadius() const { return std::sqrt(_rt2); }
    /// Half-extents of the support along x and y (pixels).
    double extentX() const { return std::sqrt(_rt2 * _c00); }
    double extentY() const { return std::sqrt(_rt2 * _c11); }
    /// Analytic second moments of the continuous profile (pixels²).
    Quadrupole moments() const;

  private:
    double _fwhm, _beta, _e1, _e2, _alpha;
    double _c00, _c11;           // shape matrix C diagonal
    double _ci00, _ci01, _ci11;  // C⁻¹
    double _rt2, _invAlpha2, _norm;
};

/// Pixel integral of `profile` centred at `center` over every pixel of `box`, by 5×5-point
/// Gauss–Legendre quadrature per pixel within 1.5 FWHM of the centre and 3×3 points in the
/// smooth wings beyond (the Moffat is analytic, so this converges to ~1e-8 of the peak for
/// FWHM >= 2 px).
Image<double> integrateOverPixels(const TruncatedMoffat& profile, Point2D center, const Box2I& box);

/// Smallest pixel box holding the whole support of `profile` centred at `center`.
Box2I supportBox(const TruncatedMoffat& profile, Point2D center);

/// A visit's PSF over the focal plane (see the file comment).
struct MoffatPsfModel final {
    double fwhm = 4.0;                ///< FWHM at the boresight, pixels
    double beta = 3.5;                ///< Moffat β (same over the field)
    double e1 = 0.0, e2 = 0.0;        ///< ellipticity at the boresight
    double radialFwhm = 0.0;          ///< c_r: fractional FWHM change at the field corner
    double gradX = 0.0, gradY = 0.0;  ///< g_x, g_y: linear fractional FWHM gradients
    double astigmatism = 0.0;         ///< a: ellipticity amplitude of the pattern at the corner
    double cornerRadius = 1.0;        ///< R_corner, focal-plane pixels
    double truncation = 5.0;          ///< R_t in units of the local FWHM

    /// The profile at focal-plane position (u, v).
    TruncatedMoffat at(Point2D focalPlane) const;
    /// A radius that bounds the support anywhere in the focal plane (for fixed-size kernels).
    int maxRadius() const;
    void validate() const;
};

/// drp::Psf for one detector of one visit: the model evaluated at origin + (x, y).
class TruePsf final : public Psf {
  public:
    TruePsf(std::shared_ptr<const MoffatPsfModel> model, Extent2D detectorOrigin);

    Image<double> computeKernelImage(Point2D position) const override;
    Image<double> computeImage(Point2D position) const override;
    /// Moments of the pixel-integrated kernel (analytic continuum moments + 1/12 px² per axis).
    Quadrupole computeShape(Point2D position) const override;
    int kernelRadius() const override { return _radius; }
    std::string typeName() const override { return "moffat"; }

    TruncatedMoffat profileAt(Point2D position) const { return _model->at(position + _origin); }
    const MoffatPsfModel& model() const { return *_model; }
    Extent2D detectorOrigin() const { return _origin; }

  private:
    std::shared_ptr<const MoffatPsfModel> _model;
    Extent2D _origin;
    int _radius;
};

}  // namespace drp::sim
