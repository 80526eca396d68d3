// Observing a simulated sky: per-visit conditions and the image of one detector, as the camera
// pipeline (ISR) would deliver it.
//
// Photometry. Pixel values are electrons. A source of AB magnitude m gives
//   N_e = 10^(-0.4 (m - ZP)),  ZP = ZP₁(band) + 2.5 log10(t_exp) - k(band) (X - 1) - A_cloud +
//   δ_det(band),
// ZP₁ = magnitude giving 1 e⁻/s, k = extinction per airmass, A_cloud >= 0 a per-visit grey
// extinction (exponential, mean `cloudMean`, capped at `cloudMax`), δ_det a per-detector, per-band
// QE offset (normal, σ = `detectorZpSigma`, fixed for the detector). flux[nJy] = N_e ×
// nJyPerElectron with nJyPerElectron = 10^(0.4 (31.4 - ZP)). ZP₁, dark-sky brightness and k are
// LSST-like (approximately SMTN-002 and Ivezić et al. 2019, ApJ 873, 111, Table 2).
//
// Image = Poisson(sky + sources + satellite) + cosmic rays → charge bleeding above full well
// along columns → + read noise → quantised to ADU (gain) and written back in electrons.
// Mask: BAD (bad columns), SAT (at or above full well), SUSPECT (pixels that received bled
// charge, and the 1-pixel border of saturated areas). Cosmic rays and satellite trails are NOT
// masked (the camera pipeline does not know them before characterisation); they are recorded in
// the truth. Variance = expected variance: sky + sources + satellite (e⁻) + read noise² + gain²/12
// (quantisation), in e⁻².
// The exposure carries the nominal PhotoCalib a camera pipeline knows (ZP without clouds and
// QE offsets: the truth differs by up to a few tenths of a magnitude).
// Header WCS: the true TAN-SIP WCS with the boresight moved by a pointing error (normal,
// `pointingErrorArcsec` per axis) and the rotation off by `rotationErrorArcsec` (normal).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include <Eigen/Core>

#include "drp/core/exposure.h"
#include "drp/sim/camera.h"
#include "drp/sim/moffat_psf.h"
#include "drp/sim/random.h"
#include "drp/sim/render.h"
#include "drp/sim/sky_model.h"

namespace drp::sim {

struct BandConstants final {
    double zp1s;        ///< AB magnitude giving 1 e-/s
    double skyMag;      ///< dark sky, AB mag / arcsec²
    double extinction;  ///< mag per airmass
};
const BandConstants& bandConstants(int band);

struct ObservingConfig final {
    double exposureTime = 30.0;                ///< seconds (LSST: 30)
    double seeingMedian = 0.8;                 ///< arcsec FWHM, median of a lognormal
    double seeingSigmaLn = 0.2;                ///< lognormal σ of the seeing
    double seeingMin = 0.55, seeingMax = 1.3;  ///< clip, arcsec
    double betaMin = 3.0, betaMax = 4.5;       ///< Moffat β, uniform
    double psfEllipticityRms = 0.03;           ///< per component, at the boresight
    double psfAstigmatism = 0.03;  ///< max |amplitude| of the ellipticity pattern at the corner
    double psfRadialFwhm = 0.08;   ///< max fractional FWHM change at the corner
    double psfGradient = 0.03;     ///< max linear fractional FWHM gradient per axis
    double airmassMax = 1.5;
    double cloudMean = 0.08;             ///< mean grey extinction, mag (exponential)
    double cloudMax = 0.4;               ///< cap, mag
    double detectorZpSigma = 0.01;       ///< per-detector QE offset, mag
    double skyMagSigma = 0.15;           ///< visit-to-visit sky brightness scatter, mag
    double skyGradient = 0.04;           ///< max fractional sky gradient across the field per axis
    double pointingErrorArcsec = 2.0;    ///< header WCS pointing error, σ per axis
    double rotationErrorArcsec = 30.0;   ///< header WCS rotation error, σ
    double cosmicRayRate = 4.0;          ///< cosmic rays per megapixel per 30 s
    double satelliteProbability = 0.15;  ///< chance that a visit has a satellite trail
    double badColumnsPerDetector = 1.0;  ///< mean number of bad columns per detector
    bool addNoise = true;                ///< false: the image is the expected (noise-free) image
    bool addArtefacts = true;            ///< cosmic rays, bad columns, satellites (need addNoise)
    void validate() const;
};

/// What a visit is: id, band, pointing, time and airmass.
struct VisitSpec final {
    std::int64_t visit = 0;
    int band = 2;  ///< index in kBandNames
    Pointing pointing;
    double mjd = 60000.0;
    double airmass = 1.0;
};

struct SatelliteTrail final {
    double angle = 0;   ///< direction in the focal plane, radians from +u
    double offset = 0;  ///< signed perpendicular distance from the boresight, focal-plane pixels
    double peak = 0;    ///< electrons per pixel on the trail's centre line
    double sigma = 1;   ///< Gaussian cross-section σ, pixels
};

struct VisitConditions final {
    VisitSpec spec;
    std::shared_ptr<const MoffatPsfModel> psf;
    double seeing = 0;         ///< FWHM at the boresight, arcsec
    double cloud = 0;          ///< grey extinction, mag
    double zeroPoint = 0;      ///< ZP without the detector term (mag giving 1 e- in the exposure)
    double skyBrightness = 0;  ///< AB mag / arcsec² (before clouds)
    double skyLevel = 0;       ///< sky at the boresight, e-/pixel, for δ_det = 0
    double skyGradX = 0, skyGradY = 0;  ///< fractional change at the corner radius
    Pointing headerPointing;
    std::optional<SatelliteTrail> satellite;
};

/// Draw the conditions of a visit (deterministic in seed and visit id).
VisitConditions drawConditions(const VisitSpec& spec, const Camera& camera,
                               const ObservingConfig& config, std::uint64_t seed);

struct CosmicRay final {
    double x0, y0, x1, y1;  ///< track ends, detector pixels
    double electrons;       ///< total deposit
};
struct BadColumn final {
    int x;
    int y0, y1;  ///< inclusive row range
    bool hot;    ///< hot (bright) or dead
};

struct DetectorTruth final {
    std::int64_t visit = 0;
    int detector = 0;
    int band = 0;
    Box2I bbox;            ///< detector pixel box
    double zeroPoint = 0;  ///< true ZP (mag giving 1 e-), including δ_det
    double nJyPerElectron = 0;
    TanSip trueWcs, headerWcs;
    std::shared_ptr<const TruePsf> psf;
    double skyLevel = 0;  ///< sky at the detector centre, e-/pixel
    std::vector<CosmicRay> cosmicRays;
    std::vector<BadColumn> badColumns;
    bool satellite = false;                  ///< a satellite trail crosses this detector
    std::int64_t nStars = 0, nGalaxies = 0;  ///< sources whose true centre is on the detector
};

struct SimulatedDetector final {
    Exposure exposure;  ///< image/mask/variance (e-), header WCS, true PSF, VisitInfo, metadata
    DetectorTruth truth;
};

/// Sky background (e-/pixel) at detector pixel `p`.
double skyAt(const Camera& camera, const VisitConditions& cond, int det, double zeroPointOffset,
             Point2D p);

/// The per-detector, per-band QE offset δ_det (mag) of the survey `seed`.
double detectorZeroPointOffset(std::uint64_t seed, int det, int band,
                               const ObservingConfig& config);

/// Everything true about one detector of one visit except its pixels (zero point, WCS, PSF,
/// artefact lists): cheap, so rank 0 can write the truth of every detector without rendering.
DetectorTruth describeDetector(const Camera& camera, const VisitConditions& cond, int det,
                               const std::vector<TrueObject>& sky, const ObservingConfig& config,
                               std::uint64_t seed);

/// Local Jacobian d(east, north)[arcsec] / d(x, y)[pixel] of a WCS (anything with
/// `SpherePoint pixelToSky(Point2D)`: TanSip, drp::Wcs) at pixel `p` near sky position `at`, by
/// central differences (the distortion is cubic, so a 1-pixel step is accurate to ~1e-9).
template <class W>
Eigen::Matrix2d localJacobian(const W& wcs, const SpherePoint& at, Point2D p) {
    Eigen::Matrix2d j;
    j.col(0) = (gnomonicProject(at, wcs.pixelToSky({p.x + 1, p.y})) -
                gnomonicProject(at, wcs.pixelToSky({p.x - 1, p.y}))) *
               1800.0;
    j.col(1) = (gnomonicProject(at, wcs.pixelToSky({p.x, p.y + 1})) -
                gnomonicProject(at, wcs.pixelToSky({p.x, p.y - 1}))) *
               1800.0;
    return j;
}

/// A galaxy's Sérsic components (bulge, disk; empty for a star) in `band` on a pixel grid whose
/// local Jacobian at the galaxy is `jacobian` (localJacobian): sizes and ellipticities mapped
/// from the sky frame, fluxes in units of `nJyPerUnit` nJy (the detector's nJy per electron,
/// or 1 for nJy). What expectedImage renders.
std::vector<SersicComponent> galaxyComponents(const TrueObject& o, int band, double nJyPerUnit,
                                              const Eigen::Matrix2d& jacobian);

/// The expected (noise-free) image of one detector in electrons: sky, sources and satellite
/// light, before noise, cosmic rays, saturation and defects. `truth` is describeDetector's.
/// Both the calibrated path (simulateDetector) and the raw path (sim/raw.h) observe this scene.
Image<double> expectedImage(const Camera& camera, const VisitConditions& cond, int det,
                            const std::vector<TrueObject>& sky, const DetectorTruth& truth);

/// The nominal photometric calibration a camera pipeline knows for a visit (electrons): ZP
/// without clouds and per-detector QE offsets.
PhotoCalib nominalPhotoCalib(const VisitSpec& spec, const ObservingConfig& config);

/// Cosmic rays hitting a detector box during an exposure (rate per megapixel per 30 s).
std::vector<CosmicRay> drawCosmicRays(Rng& rng, const Box2I& bbox, double rate,
                                      double exposureTime);

/// Add the charge of cosmic-ray tracks (electrons) into an image (detector pixels).
void depositCosmicRays(Image<double>& electrons, const std::vector<CosmicRay>& crs);

/// Move charge above full well along each column (both directions equally), as CCDs bleed.
/// Marks SAT on pixels at full well and SUSPECT on pixels that received bled charge and on the
/// 1-pixel border of saturated areas.
void bleed(Image<double>& electrons, Mask& mask, double fullWell);

/// The bad columns of detector `det` (a property of the sensor: seeded by the detector only),
/// Poisson with mean `meanCount`.
std::vector<BadColumn> drawBadColumns(std::uint64_t seed, int det, const Box2I& bbox,
                                      double meanCount);

/// Simulate one detector of one visit (its truth is describeDetector's). `sky` must be ordered by
/// truth_id (generateSky's order).
SimulatedDetector simulateDetector(const Camera& camera, const VisitConditions& cond, int det,
                                   const std::vector<TrueObject>& sky,
                                   const ObservingConfig& config, std::uint64_t seed);

}  // namespace drp::sim
