// Noise-free rendering of stars and galaxies into pixel images.
//
// Stars: the truncated Moffat PSF integrated over each pixel by Gauss–Legendre quadrature
// (integrateOverPixels), then scaled so the stamp sums to the star's flux. Because the truncated
// PSF has finite support and the stamp covers it, that normalisation only removes quadrature
// error (~1e-8) and the total flux is exact.
//
// Galaxies: sums of Sérsic components (Sérsic 1963), each
//   I(r) ∝ exp(-b_n [(r/r_e)^(1/n) - 1]),  r² = xᵀ C⁻¹ x  (C as for the PSF: det C = 1),
// with b_n from γ(2n, b_n) = Γ(2n)/2 (so r_e is the half-light radius of the untruncated profile)
// and a hard truncation at r_t = min(8 r_e, radius enclosing 99.9% of the flux); 8 r_e is the
// de Vaucouleurs truncation of Tractor's "luv" profile (Lang, Hogg & Mykytyn 2016). The *truth*
// flux of a component is the flux of this truncated profile.
//
// The PSF convolution is done exactly, not with Gaussian-mixture approximations (which the
// model-fitting code uses: rendering with them would be an inverse crime). On a grid
// oversampled N× (N = 2–4, finer for smaller scales):
//   1. the galaxy is integrated over every sub-cell (Gauss–Legendre 2×2 far from the centre,
//      4×4 within 4 sub-cells of it, with recursive 2×2 subdivision of the cells around the cusp)
//      of a sub-grid shifted by δ (|δ| <= 1/2N) so that the profile centre is a cell centre (keeps
//      the centroid exact for cuspy, unresolved profiles), then normalised so the cells sum to the
//      component flux (the truncated support lies inside the grid, so this is exact);
//   2. the PSF is *point-sampled* at (k/N - δ) and normalised to unit sum (this undoes the shift);
//   3. the two are convolved by FFT (Eigen's kissfft) on a grid large enough that the circular
//      convolution never wraps (galaxy support + PSF support < grid);
//   4. N×N sub-cells are summed into each pixel.
// Cell-integration (box of width 1/N) followed by the N-point sum is exactly a unit-pixel box,
// so the result is the pixel-integrated PSF-convolved galaxy; every step preserves the total
// exactly, so the rendered flux equals the truth flux to rounding.
#pragma once

#include <vector>

#include "drp/core/ellipse.h"
#include "drp/core/geometry.h"
#include "drp/core/image.h"
#include "drp/sim/moffat_psf.h"

namespace drp::sim {

struct SersicComponent final {
    double n = 1.0;  ///< Sérsic index (0.3 .. 8)
    double rEff =
        2.0;  ///< half-light radius of the untruncated profile, pixels (geometric mean axis)
    double e1 = 0.0, e2 = 0.0;  ///< ellipticity (distortion convention, core/ellipse.h)
    double flux = 1.0;          ///< flux of the truncated profile (image units)
};

/// Sérsic b_n, from the regularised incomplete gamma function.
double sersicB(double n);
/// Truncation radius of a component, in units of rEff (see the file comment).
double sersicTruncation(double n);
/// Analytic second moments of the truncated, sheared Sérsic profile (pixels², about its centre).
Quadrupole sersicMoments(const SersicComponent& c);

/// Add flux × pixel-integrated PSF at `center` into `image` (parent coordinates; clipped to the
/// image). Returns the flux added inside the image.
double addStar(ImageView<double> image, const TruncatedMoffat& psf, Point2D center, double flux);

/// The PSF-convolved, pixel-integrated galaxy on a stamp holding its whole support.
/// `oversample` = sub-cells per pixel side; 0 picks clamp(ceil(8 / FWHM), 2, 4).
Image<double> renderGalaxy(const std::vector<SersicComponent>& components, Point2D center,
                           const TruncatedMoffat& psf, int oversample = 0);

/// renderGalaxy added into `image` (clipped). Returns the flux added inside the image.
double addGalaxy(ImageView<double> image, const std::vector<SersicComponent>& components,
                 Point2D center, const TruncatedMoffat& psf);

}  // namespace drp::sim
