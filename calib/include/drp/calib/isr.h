// Instrument signal removal (ISR): a raw exposure (core/raw_exposure.h) → the exposure that
// characterization consumes (image in electrons, mask, variance).
//
// Steps, in the order of Rubin's IsrTaskLSST (lsst/ip_isr `isrTaskLSST.py`), restricted to the
// effects the data have:
//   1. saturation: raw ADU >= Amplifier::saturation → SAT (judged on the raw value, before any
//      correction, as the chain clips there);
//   2. overscan: per amplifier and row, the σ-clipped mean of the serial overscan pixels
//      (IsrTaskLSST's default "MEDIAN_PER_ROW" family; a mean is √(π/2) less noisy than a median
//      for Gaussian read noise), optionally smoothed over ±overscanSmoothRows rows, is
//      subtracted from the row's data pixels; the data boxes are then trimmed and assembled;
//   3. gain: ADU × Amplifier::gain → electrons (per amplifier), so every later product (master
//      bias/dark/flat) is in electrons, as in IsrTaskLSST;
//   4. bias: − master bias [e-];
//   5. dark: − master dark [e-/s] × exposure time;
//   6. variance: max(image, 0) + σ_a² + g_a²/12 (Poisson noise of the detected charge, read noise
//      of the amplifier, ADU quantisation) + the variances of the subtracted masters;
//   7. flat: image / flat, variance / flat² + image² σ_flat² / flat² (flat noise);
//   8. defects: BAD where a master says BAD (hot pixels from the dark, dead ones from the flat);
//      where the flat is not positive the pixel also gets NO_DATA and the value 0;
//   9. SUSPECT on the `suspectGrow`-pixel border of saturated areas (bleed-trail ends).
// Steps 4, 5 and 7 run only when the corresponding master is given (partial ISR is how the
// master builders process their inputs, master_calib.h). Pure function: no I/O.
#pragma once

#include "drp/core/exposure.h"
#include "drp/core/raw_exposure.h"

namespace drp::calib {

struct IsrConfig final {
    double overscanClipSigma = 3.0;  ///< σ-clip of the overscan row mean
    int overscanSmoothRows = 0;      ///< boxcar half-width over rows (0: per row, as LSST)
    int suspectGrow = 1;             ///< SUSPECT border around saturated pixels [px]
    void validate() const;           ///< throws Error(config)
};

/// The master calibrations to apply; absent ones are skipped.
struct IsrCalibrations final {
    const Exposure* bias = nullptr;  ///< [e-]
    const Exposure* dark = nullptr;  ///< [e-/s]
    const Exposure* flat = nullptr;  ///< normalised response
};

/// Steps 1-3 only: the assembled detector image in electrons (overscan-subtracted), SAT mask,
/// and the read-noise + quantisation variance (no Poisson term).
MaskedImage assembleElectrons(const RawExposure& raw, const IsrConfig& config);

/// The full ISR (see the file comment). Throws Error(bad_input) when a master's box differs
/// from the raw's detector box.
Exposure runIsr(const RawExposure& raw, const IsrCalibrations& calibs, const IsrConfig& config);

}  // namespace drp::calib
