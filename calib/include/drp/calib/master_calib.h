// Master calibrations: combine many bias, dark or flat exposures of one detector into a master
// frame with a variance plane, defect flags, a validity date range and the list of its inputs.
//
// Every input goes through partial ISR first (isr.h: overscan, gain; bias for darks and flats;
// dark for flats), so masters are in electrons (bias), e-/s (dark) and normalised response
// (flat), as in Rubin's cp_pipe (`cpCombine.py`, `cpFlatNormTasks.py`).
//
// Combination (per pixel, over the N inputs after scaling each input i by 1/s_i: s = 1 for
// biases, the exposure time for darks, the frame's clipped mean level for flats):
//   1. centre c = median of the scaled values, then iterated: reject values with
//      |v_i − c| > clipSigma σ_i(c), c = inverse-variance weighted mean of the kept values;
//      σ_i(c)² = (P · max(c, 0) · s_i + σ_read,i²) / s_i² is the *expected* noise of input i given
//      the centre (P = 1 for darks and flats: Poisson noise of the charge; 0 for biases). Using
//      the model instead of the sample scatter keeps the clip effective with N ~ 10 inputs and
//      keeps a cosmic ray or a star from inflating its own noise estimate.
//   2. growing: every value rejected at more than growSigma σ also rejects its neighbours within
//      growRadius pixels in that input (the faint wings of stars and cosmic rays in twilight
//      flats, below the per-pixel threshold, would otherwise leave a trace).
//   3. master = weighted mean of the kept values, variance = 1 / Σ w_i (+ the variance of the
//      masters subtracted from every input, which is common to all of them); NO_DATA where fewer
//      than one value survives. Saturated (SAT/SUSPECT) input pixels are never used.
// Flats are then normalised to mean 1 over the live pixels (not BAD, not NO_DATA).
// Defects: master dark > hotDarkThreshold → BAD (hot pixels/columns); master flat <
// deadFlatThreshold or > hotFlatThreshold → BAD (dead or anomalous response).
// Validity: a master is valid for raw exposures with MJD in [first input − validityDays,
// last input + validityDays]; selectCalibration picks, among the valid candidates, the one whose
// inputs are closest in time.
//
// Header of the result (Exposure::metadata): CALTYPE (bias/dark/flat), CALDET, CALBAND (flats),
// VALIDSTA, VALIDEND (MJD), CALMJD (mean input MJD), NCOMBINE, CALINPUT (comma-separated input
// exposure ids: provenance), REJFRAC (fraction of rejected input values), FLATNORM (flats).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "drp/calib/isr.h"
#include "drp/core/exposure.h"
#include "drp/core/raw_exposure.h"

namespace drp::calib {

struct MasterCalibConfig final {
    double clipSigma = 3.0;          ///< per-pixel rejection threshold (cp_pipe MEANCLIP: 3)
    int maxIterations = 3;           ///< clip iterations (cp_pipe: 3)
    double growSigma = 5.0;          ///< rejections beyond this also reject their neighbours
    int growRadius = 2;              ///< [px]
    int minInputs = 3;               ///< fewer inputs: Error(calibration_failed)
    double validityDays = 30.0;      ///< validity half-window around the inputs' dates
    double hotDarkThreshold = 50.0;  ///< [e-/s] master dark above → BAD
    double deadFlatThreshold = 0.5;  ///< master flat below → BAD
    double hotFlatThreshold = 1.5;   ///< master flat above → BAD
    IsrConfig isr;                   ///< partial ISR of the inputs
    void validate() const;           ///< throws Error(config)
};

/// Combination statistics.
struct CombineStats final {
    std::int64_t values = 0;    ///< input pixel values considered
    std::int64_t rejected = 0;  ///< of which rejected (clip + grow + saturation)
};

/// One input of robustCombine: `image->image()` / `scale` estimates the master;
/// `image->variance()` holds the input's *read-noise* variance (partial ISR's read noise +
/// quantisation + overscan terms, before any Poisson term) in unscaled units; pixels with SAT
/// or SUSPECT in `image->mask()` are not used.
struct CombineInput final {
    const MaskedImage* image = nullptr;
    double scale = 1.0;
};

/// Steps 1-3 of the file comment. `poisson`: the inputs' values carry Poisson noise (darks,
/// flats). Throws Error(bad_input) for no inputs or inputs of different boxes.
MaskedImage robustCombine(const std::vector<CombineInput>& inputs, bool poisson,
                          const MasterCalibConfig& config, CombineStats* stats = nullptr);

/// Master bias [e-] from bias exposures of one detector.
Exposure makeMasterBias(const std::vector<RawExposure>& biases, const MasterCalibConfig& config);
/// Master dark [e-/s] from dark exposures, after subtracting `bias`.
Exposure makeMasterDark(const std::vector<RawExposure>& darks, const Exposure& bias,
                        const MasterCalibConfig& config);
/// Master flat (normalised response) from flats of one band, after bias and dark.
Exposure makeMasterFlat(const std::vector<RawExposure>& flats, const Exposure& bias,
                        const Exposure& dark, const MasterCalibConfig& config);

/// What selection needs to know of a master calibration.
struct CalibValidity final {
    double start = 0, end = 0;  ///< validity range (MJD, inclusive)
    double mjd = 0;             ///< mean MJD of its inputs
};
/// Validity of a master built from inputs taken at `inputMjds`.
CalibValidity calibValidity(const std::vector<double>& inputMjds, double validityDays);
/// Index of the candidate valid at `mjd` whose inputs are closest in time (ties: the earlier
/// index), or nullopt when none is valid.
std::optional<std::size_t> selectCalibration(const std::vector<CalibValidity>& candidates,
                                             double mjd);

}  // namespace drp::calib
