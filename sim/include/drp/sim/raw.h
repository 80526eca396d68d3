// Raw exposures: the simulated survey as the camera reads it out, before instrument signal
// removal, plus the calibration exposures (bias, dark, flat series) a data facility takes to
// build its master calibrations, with the true calibration frames kept as truth.
//
// Signal chain of one detector pixel (x, y) of a science exposure, in order:
//   detected charge  q = Poisson(S(x, y) · F_b(x, y) + D(x, y) · t) + cosmic rays,
//                    S = expectedImage (the same scene as the calibrated path, sim/observe.h),
//                    F_b = true flat of band b, D = true dark current [e-/s], t = exposure time;
//   full well        charge above CameraConfig::fullWell bleeds along the column (bleed());
//   readout          ADU = round(L_a + j_a + d_a(y) + (q + B(x, y) + N(0, σ_a)) / g_a), with
//                    L_a the amplifier's bias level, j_a a per-exposure jump of it, d_a(y) a
//                    per-exposure drift along the rows (sinusoid), B the fixed 2-D bias structure
//                    [e-] (column pattern + amplifier glow at the readout corner), σ_a the
//                    amplifier's read noise [e-] and g_a its gain [e-/ADU];
//   saturation       the amplifier chain clips at Amplifier::saturation = floor(L_a + W / g_a)
//                    ADU (W = full well); pixels at full well read exactly that value;
//   overscan         each amplifier's serial overscan columns read L_a + j_a + d_a(y) + N(0, σ_a)
//                    / g_a (no charge, no bias structure).
// The calibrated path (simulateDetector) of the same visit and detector draws its noise from
// other streams: the two are independent observations of the same scene, with the same cosmic
// rays and defects.
//
// True calibration (per detector, fixed for the survey):
//   B   bias structure: per-column offsets N(0, biasColumnRms) per amplifier + glow
//       biasGlow · exp(-r / biasGlowScale), r = distance from the amplifier's readout corner;
//   D   dark current: darkCurrent everywhere, warm pixels (fraction warmPixelFraction, extra rate
//       exponential with mean warmPixelMeanRate), and the sensor's hot columns (drawBadColumns)
//       at 0.5 W / exposureTime (so a science exposure shows half full well there, as in the
//       calibrated path);
//   F_b flat: vignetting 1 - flatVignetting (r_fp / r_corner)² over the focal plane × (1 +
//       a_b P(x, y)), P ~ N(0, 1) per pixel (fixed), a_b = flatPixelRms × (1.6, 1.3, 1.0, 0.9,
//       0.8, 0.8) for u..y (bluer light converts closer to the surface: more pixel-to-pixel
//       structure); dead columns respond deadColumnResponse; normalised to mean 1 over the live
//       pixels of the detector (so the ISR output has the calibrated path's scale).
//   Amplifier gains g_a = CameraConfig::gain (1 + gainScatter N(0, 1)), read noise σ_a =
//   CameraConfig::readNoise (1 + readNoiseScatter N(0, 1)), bias levels L_a = biasLevelAdu +
//   biasLevelScatterAdu N(0, 1).
//
// Calibration exposures (calibrationPlan): biasCount biases (t = 0), darkCount darks
// (darkExposureTime, shutter closed), flatCount flats per survey band at levels flatLevel ·
// (1 + flatLevelScatter U(-1, 1)) e-; a fraction twilightFraction of the flats are twilight flats
// with starsPerTwilightFlat stars (Gaussian, σ = starSigma px, peak U(0.3, 1.2) × the level).
// Every calibration exposure gets cosmic rays at ObservingConfig::cosmicRayRate. They are taken
// calibLeadDays before the first visit, one minute apart; their ids follow the last visit id.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "drp/core/image.h"
#include "drp/core/mask.h"
#include "drp/core/raw_exposure.h"
#include "drp/sim/camera.h"
#include "drp/sim/observe.h"
#include "drp/sim/survey.h"

namespace drp::sim {

struct RawConfig final {
    int nAmpX = 4, nAmpY = 2;          ///< amplifier grid per detector (LSSTCam: 8 × 2)
    int overscanColumns = 32;          ///< serial overscan columns per amplifier (LSSTCam: 64)
    double biasLevelAdu = 20000;       ///< mean amplifier bias level [ADU] (LSSTCam: ~2e4)
    double biasLevelScatterAdu = 500;  ///< amplifier-to-amplifier scatter of the level [ADU]
    double biasJitterAdu = 5;          ///< per-exposure jump of each amplifier's level [ADU, rms]
    double biasDriftAdu = 3;           ///< per-exposure drift amplitude along the rows [ADU]
    double biasColumnRms = 2.0;        ///< fixed column-to-column bias pattern [e-, rms]
    double biasGlow = 30.0;            ///< amplifier glow at the readout corner [e-]
    double biasGlowScale = 20.0;       ///< e-folding distance of the glow [px]
    double darkCurrent = 0.02;         ///< [e-/s/px] (LSSTCam requirement: < 0.2? measured ~0.02)
    double warmPixelFraction = 1e-3;   ///< fraction of pixels with extra dark current
    double warmPixelMeanRate = 0.3;    ///< mean extra dark current of warm pixels [e-/s]
    double gainScatter = 0.05;         ///< fractional amplifier-to-amplifier gain scatter
    double readNoiseScatter = 0.1;     ///< fractional amplifier-to-amplifier read-noise scatter
    double flatPixelRms = 0.01;        ///< pixel-to-pixel response rms in r (see a_b above)
    double flatVignetting = 0.08;      ///< response fall-off at the focal-plane corner
    double deadColumnResponse = 0.02;  ///< response of dead columns
    double adcMax = 262143;            ///< ADC full scale [ADU] (18 bits)
    int biasCount = 10;                ///< bias exposures per calibration set
    int darkCount = 10;                ///< dark exposures per calibration set
    int flatCount = 10;                ///< flats per band per calibration set
    double darkExposureTime = 30.0;    ///< [s]
    double flatExposureTime = 10.0;    ///< [s] (dark current and cosmic rays accumulate)
    double flatLevel = 40000;          ///< mean flat level [e-] (well below full well)
    double flatLevelScatter = 0.2;     ///< frame-to-frame level variation (uniform ±)
    double twilightFraction = 0.3;     ///< fraction of flats that are twilight flats with stars
    int starsPerTwilightFlat = 4;
    double starSigma = 2.0;      ///< [px]
    double calibLeadDays = 0.3;  ///< calibrations are taken this long before visit 1
    void validate(const CameraConfig& camera) const;  ///< throws Error(config)
};

/// The true calibration of one detector (see the file comment).
struct CalibrationTruth final {
    int detector = 0;
    Box2I detectorBox;
    Box2I rawBox;
    std::vector<Amplifier> amps;          ///< geometry, gains, read noise, saturation ADU
    std::vector<double> biasLevels;       ///< L_a [ADU]
    ImageF bias;                          ///< B [e-]
    ImageF dark;                          ///< D [e-/s]
    std::map<std::string, ImageF> flats;  ///< F_b by band name
    std::vector<BadColumn> defects;       ///< hot and dead columns
    Mask defectMask;                      ///< BAD on the defects (detector pixels)
};

/// The true calibration of detector `det` with flats for `bands` (deterministic in seed, det).
CalibrationTruth trueCalibration(const Camera& camera, const RawConfig& raw,
                                 const ObservingConfig& observing, int det,
                                 const std::vector<std::string>& bands, std::uint64_t seed);

/// One calibration exposure of the survey.
struct CalibExposureSpec final {
    std::int64_t id = 0;
    std::string obsType;  ///< obs_type::kBias / kDark / kFlat
    std::string band;     ///< flats only
    double mjd = 0;
    double exposureTime = 0;
    double level = 0;       ///< flats: mean illumination [e-]
    bool twilight = false;  ///< flats: stars in the frame
};

/// The calibration exposures taken before the survey `plan` (see the file comment).
std::vector<CalibExposureSpec> calibrationPlan(const SurveyPlan& plan, const RawConfig& raw);

/// The raw science exposure of one detector of one visit.
RawExposure simulateRawDetector(const Camera& camera, const VisitConditions& cond, int det,
                                const std::vector<TrueObject>& sky,
                                const ObservingConfig& observing, const RawConfig& raw,
                                const CalibrationTruth& truth, std::uint64_t seed);

/// One detector of a calibration exposure.
RawExposure simulateCalibExposure(const Camera& camera, const CalibExposureSpec& spec, int det,
                                  const ObservingConfig& observing, const RawConfig& raw,
                                  const CalibrationTruth& truth, std::uint64_t seed);

}  // namespace drp::sim
