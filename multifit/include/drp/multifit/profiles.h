// Galaxy light profiles as Gaussian mixtures.
//
// The Sérsic profile I(r) ∝ exp(−b_n [(r/r_e)^{1/n} − 1]) is approximated by a mixture of
// concentric circular Gaussians with *fixed* log-spaced variances and non-negative amplitudes
// found by NNLS on the radial profile (weights ∝ r, so that the fit is in flux rather than in
// surface brightness). This is the idea of Hogg & Lang (2013) with the non-linear variance fit
// replaced by a dense variance grid: the problem is linear, the solution unique and computed
// once at start-up (milliseconds), and the accuracy is stated and tested (profiles_test.cpp):
// total flux exact (pinned), flux inside r for 0.25 r_e ≤ r ≤ 6 r_e to 5e-3 (the exp cusp-less
// core, the dev cusp and the truncation edge are where a mixture is least exact: Gaussians
// cannot make a hard edge, so ~1% of the n = 4 mixture's light lies between 8 and 12 r_e; after
// PSF convolution the pixel-level difference is far below noise for the sizes we fit).
//
// The mixture is for the *truncated* profile normalised to unit total flux, with r in units of
// the half-light radius r_e of the untruncated profile (circularised: r_e = sqrt(a b) for an
// elliptical profile). Truncation at r_t = min(8 r_e, the radius enclosing 99.9% of the
// untruncated flux) — 8 r_e is the de Vaucouleurs truncation of SDSS's and Tractor's "luv"
// profile (Lang, Hogg & Mykytyn 2016; Tractor softens the edge over 7–8 r_e); for n = 1 the rule
// gives 5.5 r_e, beyond which 0.1% of the light lies. It is the convention of the survey
// simulator (sim/include/drp/sim/render.h), whose truth fluxes are those of the truncated
// profiles. It defines what a model flux *is*: an untruncated de Vaucouleurs profile puts 5.7%
// of its light beyond 8 r_e, where no image constrains it (a cutout reaches a few r_e), so its
// flux is an extrapolation of the wings. On the demo release the untruncated profiles made the
// model fluxes of galaxies 5.8% too bright (docs/multifit.md).
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
/// Truncation radius r_t / r_e of the profiles (see the file comment): 8 for n = 4, 5.50 for n = 1.
double sersicTruncation(double n);
/// Fraction of the truncated profile's flux inside x = r / r_e (1 for x ≥ r_t / r_e).
double truncatedSersicEnclosedFraction(double n, double x);

}  // namespace drp::multifit
