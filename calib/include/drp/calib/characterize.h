// Single-visit characterization: background, cosmic rays, detection, centroids and shapes, PSF
// model, photometry and aperture correction, as one pure function on an in-memory exposure.
//
// The sequence follows LSST CalibrateImageTask / CharacterizeImageTask (anchors §2):
//   1. Input checks: non-finite pixels → NO_DATA (and zero weight); pixels at or above
//      VisitInfo::saturation → SAT. An image with no finite pixel is Error(bad_input).
//   2. Background (BackgroundConfig, 128-px cells) estimated and subtracted.
//   3. PSF size: unless given, estimated from the stellar locus of bright compact detections
//      (the densest window of determinant radii among ≥ 30σ single-peak sources).
//   4. Cosmic rays found (sharper than a Gaussian of the smallest stellar size) and repaired.
//   5. Detection at thresholdSigma (5σ); the background is re-estimated with DETECTED pixels
//      masked (LSST reEstimateBackground) and detection is repeated on the new residual image.
//   6. One source per peak: Gaussian-weighted centroid with errors, adaptive moments.
//   7. PSF stars: single-peak, isolated (no other peak within the stamp), S/N ≥ psfMinSnr
//      (LSST ≥ 50σ), no SAT/CR/INTRP/BAD/EDGE pixel in the stamp, (A−B)/(A+B) ≤ 0.3 and size
//      within ±psfSizeTolerance of the locus (PSFEx sample selection). reserveFraction of them
//      (seeded by the data id, so deterministic) are held out for validation; the rest fit the
//      PsfModel. Too few stars → Error("psf_failed").
//   8. Photometry of every source: aperture fluxes at apertureRadii, PSF flux; the aperture
//      correction calibAperture/psfFlux is fitted on the PSF stars used and applied to psf_flux,
//      and the light beyond the calibration aperture (the PSF model's Moffat wings) is added,
//      so that psf_flux is a total flux (extrapolateToTotalFlux).
//
// Fluxes in the Source table are in image units (electrons) before the global photometric
// calibration; ra/dec are NaN until the global astrometric calibration fills them.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "drp/calib/background.h"
#include "drp/calib/detection.h"
#include "drp/calib/photometry.h"
#include "drp/calib/psf_model.h"
#include "drp/core/exposure.h"
#include "drp/core/footprint.h"
#include "drp/core/table.h"

namespace drp::calib {

struct CharacterizeConfig final {
    BackgroundConfig background;
    DetectionConfig detection;
    CosmicRayConfig cosmicRay;
    PsfModelConfig psf;
    ApertureCorrectionConfig apertureCorrection;
    /// Find and repair cosmic rays (single visits: yes; coadds: no).
    bool doCosmicRays = true;
    /// The cosmic-ray sharpness test uses a Gaussian of this fraction of the sharpest stars' σ:
    /// real PSF cores (Moffat-like, seeing + optics) are more peaked than the Gaussian of the
    /// same second moments; at 1.0 the cores of bright stars on the NTT/EMMI frame are flagged.
    double cosmicRayPsfScale = 0.8;
    /// PSF FWHM in pixels if known (e.g. from the seeing in the header); 0 = estimate.
    double initialPsfFwhm = 0.0;
    /// Minimum detection S/N of PSF stars (LSST calibrateImage PSF-star peaks ≥ 50σ).
    double psfMinSnr = 50.0;
    /// Maximum relative deviation of a PSF star's size from the stellar locus (PSFEx 0.2).
    double psfSizeTolerance = 0.2;
    /// Maximum (A−B)/(A+B) of a PSF star (PSFEx MAXELLIP 0.3).
    double psfMaxEllipticity = 0.3;
    /// Fraction of PSF stars reserved for validation (LSST reserve 10%).
    double reserveFraction = 0.1;
    /// Seed of the reservation; 0 derives it from (visit, detector) of the exposure.
    std::uint64_t reserveSeed = 0;
    /// Aperture radii in pixels (LSST's list up to 17 px) and the calibration aperture: 17 px, the
    /// largest, so that aperture-corrected PSF fluxes are nearly total (a 12-px aperture misses
    /// ~1.5% of a Moffat star at 1.1" seeing, which would enter the zero points).
    std::vector<double> apertureRadii = {3.0, 4.5, 6.0, 9.0, 12.0, 17.0};
    double calibApertureRadius = 17.0;
    /// Extrapolate the calibration aperture to total flux with the PSF model's Moffat wings
    /// (fitMoffatWings): psf_flux = PSF flux × aperture correction × (1 + light beyond the
    /// aperture). Without it the zero points absorb a seeing-dependent 0–1% (demo sky: 2.3 mmag
    /// RMS over the visit-detectors).
    bool extrapolateToTotalFlux = true;
    /// Mask planes whose pixels are left out of centroids, shapes and PSF fluxes.
    std::vector<std::string> badMaskPlanes = {"BAD", "SAT", "NO_DATA"};

    /// Checks this struct and every nested config; throws Error(config).
    void validate() const;
};

/// Source flag bits (column `flags`; each also has a Bool column `flag_<name>`).
enum SourceFlag : std::int64_t {
    kFlagEdge = 1 << 0,  ///< centroid window, PSF stamp or calibration aperture leaves the image
    kFlagSaturated = 1 << 1,     ///< SAT pixel within 3σ_PSF of the centroid
    kFlagCosmicRay = 1 << 2,     ///< CR pixel within 3σ_PSF of the centroid
    kFlagBlended = 1 << 3,       ///< the footprint has more than one peak
    kFlagBadCentroid = 1 << 4,   ///< centroid did not converge (position = peak pixel)
    kFlagBadShape = 1 << 5,      ///< adaptive moments failed
    kFlagBadPsfFlux = 1 << 6,    ///< PSF flux could not be measured
    kFlagInterpolated = 1 << 7,  ///< INTRP pixel within 3σ_PSF
    kFlagBadPixels = 1 << 8,     ///< BAD or NO_DATA pixel within 3σ_PSF
    kFlagPsfCandidate = 1 << 9,  ///< passed the PSF-star selection
    kFlagPsfUsed = 1 << 10,      ///< used in the final PSF fit
    kFlagPsfReserved = 1 << 11,  ///< reserved for PSF validation (not fitted)
    kFlagApCorrUsed = 1 << 12,   ///< used in the aperture-correction fit
};
/// Names of the flag bits, index = bit number.
const std::vector<std::string>& sourceFlagNames();

struct CharacterizeSummary final {
    double skyLevel = NAN;         ///< mean background (electrons/pixel)
    double skyRms = NAN;           ///< mean background RMS (electrons/pixel)
    double psfFwhm = NAN;          ///< FWHM of the PSF model at the image centre (pixels)
    double initialPsfSigma = NAN;  ///< σ used for detection and cosmic rays (pixels)
    double depth5Sigma = NAN;  ///< 5σ point-source flux limit: 5 skyRms √(4π σ²) (electrons)
    int numSources = 0, numFootprints = 0;
    int numPsfCandidates = 0, numPsfUsed = 0, numPsfReserved = 0;
    int numCosmicRays = 0;
    double apCorr = NAN, apCorrRms = NAN;  ///< aperture correction at the centre and its scatter
    int apCorrStars = 0;
    /// Light beyond the calibration aperture relative to it (fitMoffatWings on the PSF model at
    /// the centre; NaN when not extrapolated), and the wings' Moffat β.
    double apertureWingFraction = NAN, psfMoffatBeta = NAN;
    PsfShapeResiduals reserved;  ///< PSF shape residuals on the reserved stars
    /// As key/value metadata (for provenance and the visit table).
    PropertyList toMetadata() const;
};

struct CharacterizeResult final {
    BackgroundModel background;
    Exposure exposure;  ///< background-subtracted, CR-repaired, PSF attached
    std::shared_ptr<const PsfModel> psf;
    ApertureCorrection apertureCorrection;
    std::vector<Footprint> footprints;
    Table sources;  ///< the Source catalogue (see characterize.cpp for columns)
    CharacterizeSummary summary;
};

CharacterizeResult characterize(const Exposure& exposure, const CharacterizeConfig& config);

/// The σ (pixels) of the stellar locus of a background-subtracted image: the densest window of
/// adaptive-moment determinant radii among bright (≥ minSnr) single-peak detections made with a
/// guess σ. Returns NaN when fewer than 3 such sources exist. `lowQuantile`, if given, receives
/// the lower edge of the locus (the sharpest stars), used for the cosmic-ray test. The image's
/// DETECTED plane is overwritten.
double estimatePsfSigma(MaskedImage& image, double guessSigma, double minSnr, MaskPixel badBits,
                        double* lowQuantile = nullptr);

}  // namespace drp::calib
