// A raw exposure: one detector's pixels as the camera reads them out, before instrument signal
// removal (ISR, calib/isr.h). Shared by the simulator (sim/raw.h), the FITS reader/writer
// (io/raw_fits.h) and ISR, so none of them depends on another.
//
// Layout. The detector is read by a grid of amplifiers. In the raw image every amplifier has a
// *data* box (its pixels of the detector) followed, to its right, by its serial *overscan*
// columns (pixels clocked after the last real pixel of each row: they see the amplifier's
// bias level and read noise but no charge). `Amplifier::detectorBox` says where the data box goes
// in the assembled (trimmed) detector image, whose pixel (x, y) is the detector pixel of the
// calibrated-image path. Pixel values are ADU (analogue-to-digital units), integers stored as
// float (exact below 2^24).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "drp/core/exposure.h"
#include "drp/core/geometry.h"
#include "drp/core/image.h"
#include "drp/core/metadata.h"
#include "drp/core/wcs.h"

namespace drp {

struct Amplifier final {
    std::string name;         ///< e.g. "C00" (column, row of the amplifier grid)
    Box2I dataBox;            ///< data pixels in the raw image
    Box2I overscanBox;        ///< serial overscan pixels in the raw image (same rows as dataBox)
    Box2I detectorBox;        ///< where dataBox goes in the assembled detector image
    double gain = 1.0;        ///< electrons per ADU
    double readNoise = 0.0;   ///< electrons rms
    double saturation = 0.0;  ///< raw ADU at or above which the amplifier chain is saturated
    bool operator==(const Amplifier&) const = default;
};

/// Observation types of raw exposures (FITS keyword OBSTYPE).
namespace obs_type {
inline constexpr const char* kScience = "science";
inline constexpr const char* kBias = "bias";
inline constexpr const char* kDark = "dark";
inline constexpr const char* kFlat = "flat";
}  // namespace obs_type

struct RawExposure final {
    ImageF pixels;                ///< raw ADU, raw-image coordinates (xy0 = 0)
    std::vector<Amplifier> amps;  ///< readout geometry and electronics
    Box2I detectorBox;            ///< the assembled detector image box
    std::string obsType = obs_type::kScience;
    VisitInfo visitInfo;             ///< visit = exposure id; band empty for bias/dark
    std::shared_ptr<const Wcs> wcs;  ///< header WCS in assembled detector coordinates (science)
    std::optional<PhotoCalib> photoCalib;  ///< nominal photometric calibration of electrons
    PropertyList metadata;                 ///< everything else in the header
};

}  // namespace drp
