// Source detection on a background-subtracted image, and cosmic-ray repair.
//
// Detection (LSST `SourceDetectionTask`, meas_algorithms detection.py):
//   * Matched filter: the image is correlated with a Gaussian of σ = the PSF's determinant
//     radius (the optimal linear filter for an isolated point source in sky-limited noise),
//     width nSigmaForKernel·σ rounded up to odd. With kernel K the smoothed value is
//     S = Σ K_i I_i and, for independent pixels, Var(S) = Σ K_i² V_i: both are computed
//     (the variance plane is convolved with K²), so S/√Var(S) is a true signal-to-noise and the
//     threshold is in units of it. Excluded pixels (BAD, NO_DATA) enter neither sum. For a point
//     source of flux F this S/N equals the PSF-flux S/N in the sky-limited regime.
//   * Footprints: 8-connected pixels with S/N ≥ thresholdSigma (default 5), kept if their
//     highest peak is ≥ thresholdSigma × includeThresholdMultiplier; grown isotropically by
//     nSigmaToGrow·σ (2.4σ ≈ 1 FWHM) and merged where the grown footprints touch.
//   * Peaks: local maxima of the S/N image (8 neighbours) inside the un-grown footprint; a peak
//     closer than minPeakSeparation to a brighter one, or without a dip of at least
//     minPeakProminence on the straight line to the nearest brighter peak, is dropped (noise
//     bumps on the wings of bright stars). The dip is measured on the smoothed image S, not on
//     the S/N: (S_peak − S_min) / σ_min, S_min the lowest S on the line and σ_min = √Var(S)
//     there. In sky-limited noise the two are the same; where the sources' own photon noise
//     dominates the variance, S/N ∝ √S flattens the light between two bright sources — two
//     equal stars 2.8 σ_S apart (σ_S the smoothed PSF's σ) have an S/N at their midpoint 0.998
//     of that at the stars, where S is 0.72 of it — and pixelisation made the midpoint a local
//     maximum of the S/N image with an S/N dip of 9 towards each star: a third peak between them
//     (deblend_test BlendednessOfPointSourcePairs, 8 px apart in a σ_PSF = 2 px band). S rises
//     from there to each star, so it has no dip and is dropped.
//   * The DETECTED mask plane is cleared and set on the grown footprints.
//
// Cosmic rays (LSST `findCosmicRays`, after Rhodes, Massey et al. 2000-style sharpness tests):
// a pixel is a cosmic-ray candidate when it is ≥ minSigma σ above the (subtracted) background
// and, in at least minDirections of the four directions (row, column, two diagonals), it is
// sharper than the PSF allows:
//     I_c − cond3Fac2·σ_c  >  R_d · ( (I_a + I_b)/2 + cond3Fac·σ_ab ),
// where a, b are the two neighbours in direction d, σ_ab = √((V_a+V_b)/2) and R_d is the ratio
// of the PSF's central pixel to the mean of its two neighbours in that direction (LSST: any one
// direction, cond3Fac 2.5, cond3Fac2 0.6; requiring two directions keeps every real track — a
// track is sharp across itself in three directions — and squares the false-alarm rate on the
// cores of bright stars). Candidates are grown by one pixel, flagged CR, and repaired by linear
// interpolation from the nearest good pixels along the row and the column (INTRP).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "drp/core/exposure.h"
#include "drp/core/footprint.h"

namespace drp::calib {

struct DetectionConfig final {
    /// Detection threshold in units of the matched-filter S/N (LSST/DRP: 5).
    double thresholdSigma = 5.0;
    /// A footprint is kept only if its highest peak reaches thresholdSigma × this (LSST: 1 for
    /// DRP sources, 5 for PSF-star detection in calibrateImage).
    double includeThresholdMultiplier = 1.0;
    /// Smoothing kernel width in units of σ_PSF (LSST nSigmaForKernel 7).
    double nSigmaForKernel = 7.0;
    /// Footprint growth radius in units of σ_PSF (LSST nSigmaToGrow 2.4 ≈ 1 FWHM).
    double nSigmaToGrow = 2.4;
    /// Minimum number of above-threshold pixels in a footprint before growth (LSST minPixels 1).
    int minPixels = 1;
    /// Peaks closer than this (pixels) to a brighter peak are dropped.
    double minPeakSeparation = 2.0;
    /// Minimum dip between a peak and the nearest brighter peak for both to be kept, in units
    /// of the smoothed image's σ at the dip (file comment).
    double minPeakProminence = 3.0;
    /// Pixels with these mask bits are left out of the smoothing (zero weight).
    std::vector<std::string> excludedMaskPlanes = {"BAD", "NO_DATA"};

    void validate() const;
};

struct DetectionResult final {
    std::vector<Footprint> footprints;  ///< grown footprints with their peaks, brightest peak first
    double psfSigma = 0;                ///< σ of the matched filter used (pixels)
    std::size_t numPeaks = 0;
};

/// The matched-filter S/N image: (K ⋆ I) / √(K² ⋆ V) for a Gaussian K of σ = psfSigma, with
/// excluded pixels (mask & excludeBits) given zero weight. Zero where the variance sum is zero.
/// With `smoothed`, also K ⋆ I (its σ is smoothed / S/N where the S/N is not zero).
ImageF matchedFilterSignificance(const MaskedImage& image, double psfSigma, double nSigmaForKernel,
                                 MaskPixel excludeBits, ImageF* smoothed = nullptr);

/// Detect sources on a background-subtracted image; sets the DETECTED mask plane.
DetectionResult detectSources(MaskedImage& image, double psfSigma, const DetectionConfig& config);

/// 8-connected components of the non-zero pixels of `binary`, as span sets in parent coordinates,
/// ordered by their first span.
std::vector<SpanSet> connectedComponents(ConstImageView<std::uint8_t> binary);

struct CosmicRayConfig final {
    /// Minimum significance of a cosmic-ray pixel above the background (LSST minSigma 6).
    double minSigma = 6.0;
    /// Minimum value (image units, electrons) of a cosmic-ray pixel (LSST min_DN 150).
    double minValue = 150.0;
    /// Noise margins of the sharpness test (LSST cond3_fac 2.5, cond3_fac2 0.6).
    double cond3Fac = 2.5;
    double cond3Fac2 = 0.6;
    /// Number of directions (of 4) in which the pixel must be sharper than the PSF.
    int minDirections = 2;
    /// Radius (pixels, Chebyshev) by which candidates are grown before repair.
    int growRadius = 1;
    /// Pixels with these bits are never cosmic rays (saturated cores are sharp but real).
    std::vector<std::string> ignoredMaskPlanes = {"BAD", "SAT", "NO_DATA", "SUSPECT"};

    void validate() const;
};

struct CosmicRayResult final {
    int numCosmicRays = 0;       ///< connected groups of candidate pixels
    std::int64_t numPixels = 0;  ///< pixels flagged CR (after growth)
};

/// Find cosmic rays on a background-subtracted image using the sharpness of a PSF kernel
/// (normalised, odd-sized, centred; e.g. gaussianKernel(σ) or Psf::computeKernelImage), set CR and
/// INTRP on them and replace their values by interpolation.
CosmicRayResult findAndRepairCosmicRays(MaskedImage& image, ConstImageView<double> psfKernel,
                                        const CosmicRayConfig& config);

/// A normalised, pixel-integrated circular Gaussian kernel of σ (pixels) and half-size r
/// (r = 0 chooses ceil(4σ)). Its bbox runs from (-r, -r) to (r, r).
Image<double> gaussianKernel(double sigma, int radius = 0);

}  // namespace drp::calib
