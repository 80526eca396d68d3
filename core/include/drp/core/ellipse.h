// Second moments of a light profile and the ellipticity conventions used throughout drp.
//
//   Ixx = Σ w I (x-x̄)² / Σ w I,  Iyy, Ixy likewise;   T = Ixx + Iyy (the "trace", arcsec² or px²)
//   e1 = (Ixx - Iyy) / T,  e2 = 2 Ixy / T   ("distortion" convention, |e| = (a²-b²)/(a²+b²))
//   determinant radius r_det = (Ixx Iyy - Ixy²)^{1/4};  for a Gaussian, FWHM = 2.3548 r_det.
#pragma once

#include <cmath>

namespace drp {

struct Quadrupole final {
    double ixx = 0, iyy = 0, ixy = 0;

    double trace() const { return ixx + iyy; }
    double determinant() const { return ixx * iyy - ixy * ixy; }
    double determinantRadius() const { return std::pow(std::max(determinant(), 0.0), 0.25); }
    double e1() const { return (ixx - iyy) / trace(); }
    double e2() const { return 2 * ixy / trace(); }
    /// FWHM of the Gaussian with these moments.
    double gaussianFwhm() const { return 2.0 * std::sqrt(2.0 * std::log(2.0)) * determinantRadius(); }
    /// Moments of a Gaussian with trace T and ellipticity (e1, e2) in the convention above.
    static Quadrupole fromTraceEllipticity(double t, double e1, double e2) {
        return {0.5 * t * (1 + e1), 0.5 * t * (1 - e1), 0.5 * t * e2};
    }
};

}  // namespace drp
