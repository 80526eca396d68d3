// Galaxy light profiles as Gaussian mixtures.
//
// The Sérsic profile I(r) ∝ exp(−b_n [(r/r_e)^{1/n} − 1]) is approximated by a mixture of
// concentric circular Gaussians with *fixed* log-spaced variances and non-negative amplitudes
// found by NNLS on the radial profile (weights ∝ r, so that the fit is in flux rather than in
// surface brightness). This is the idea of Hogg & Lang (2013) with the non-linear variance fit
// replaced by a dense variance grid: the problem is linear, the solution unique and computed
// once at start-up (milliseconds), and the accuracy is stated and tested (profiles_test.cpp):
// total flux to 1e-3, half-light radius to 1e-3, flux inside r for r ≥ 0.25 r_e to a few 1e-3
// (the exp cusp-less core and the dev cusp are where a mixture is least exact; after PSF
// convolution the pixel-level difference is far below noise for the sizes we fit).
//
// The mixture is for the *untruncated* profile normalised to unit total flux, with r in units of
// the half-light radius r_e (circularised: r_e = sqrt(a b) for an elliptical profile).
#pragma once

#include <vector>

namespace drp::multifit {

struct RadialMixture {
    std::vector<double> amplitudes;  ///< sum to 1
    std::vector<double> variances;   ///< in units of r_e²
};

/// Mixture for Sérsic index n (0.5 ≤ n ≤ 6). n = 1: exponential; n = 4: de Vaucouleurs.
/// Cached per n; thread-safe.
const RadialMixture& sersicMixture(double n);
inline const RadialMixture& expMixture() {
    return sersicMixture(1.0);
}
inline const RadialMixture& devMixture() {
    return sersicMixture(4.0);
}

/// b_n such that r_e encloses half the light (Ciotti & Bertin 1999 asymptotic series, accurate
/// to < 1e-6 for n ≥ 0.36), and the exact Sérsic flux fraction inside radius x = r / r_e.
double sersicB(double n);
double sersicEnclosedFraction(double n, double x);

}  // namespace drp::multifit
