// Centroids with propagated errors, and adaptive second moments.
//
// Centroid: the Gaussian-weighted centroid (SExtractor XWIN/YWIN; the weight of σ_w = σ_PSF is
// the matched filter, so in the sky-limited regime its error approaches the Cramér–Rao bound
// σ_x ≈ √2 σ_PSF / SNR quoted in the anchors for a Gaussian PSF). The centroid c solves
//     F(c) = Σ_i w_i(c) I_i (x_i − c) = 0,   w_i = exp(−|x_i − c|² / 2σ_w²),
// found by Newton's method with the exact Jacobian J = ∂F/∂c = Σ w I [(x−c)(x−c)ᵀ/σ_w² − 1].
// Errors by linear propagation (the sandwich formula): Cov(c) = J⁻¹ [Σ w² V (x−c)(x−c)ᵀ] J⁻ᵀ,
// with V the variance plane (which includes the source's own Poisson noise).
//
// Adaptive moments (Bernstein & Jarvis 2002, AJ 123, 583; GalSim HSM): the elliptical Gaussian
// weight W(M) whose covariance equals twice the W-weighted second moments of the object. For a
// Gaussian object of covariance C the weighted moments are Mw = (M⁻¹ + C⁻¹)⁻¹, so the update
// M ← (Mw⁻¹ − M⁻¹)⁻¹ reaches C in one step; it has the same fixed point (M = 2 Mw) for any
// profile and falls back to M ← 2 Mw when the difference is not positive definite. The centre is
// updated with twice the weighted mean offset (exact for Gaussians). Moments include the pixel
// response (a pixel adds 1/12 px² per axis), identically for stars and PSF model images.
#pragma once

#include "drp/core/ellipse.h"
#include "drp/core/exposure.h"

namespace drp::calib {

struct CentroidResult final {
    Point2D position;               ///< parent coordinates
    double xErr = NAN, yErr = NAN;  ///< 1σ (pixels)
    double xyCov = NAN;
    int iterations = 0;
    bool failed = false;     ///< did not converge, moved too far, or no usable pixels
    bool edge = false;       ///< weight window (4σ_w) truncated by the image edge
    bool badPixels = false;  ///< masked pixels within 2σ_w of the centroid
};

/// Gaussian-weighted centroid starting at `initial`, with weight σ = weightSigma (pixels).
/// Pixels with any of `badBits` are ignored. On failure, position = initial and failed = true.
CentroidResult measureCentroid(const MaskedImage& image, Point2D initial, double weightSigma,
                               MaskPixel badBits);

struct ShapeResult final {
    Quadrupole moments;  ///< adaptive moments (pixels²)
    Point2D center;      ///< adaptive centre (parent coordinates)
    int iterations = 0;
    bool failed = false;
};

/// Adaptive moments of `image` (any pixel type; parent coordinates from its bbox) starting at
/// `initial` with a round weight of σ = initialSigma. `mask`, if given, has the same bbox and
/// pixels with `badBits` are ignored.
template <typename T>
ShapeResult measureAdaptiveMoments(ConstImageView<T> image, Point2D initial, double initialSigma,
                                   const Mask* mask = nullptr, MaskPixel badBits = 0);

}  // namespace drp::calib
