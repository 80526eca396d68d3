// The drp raw-exposure file: one detector of one exposure as the camera reads it out (before
// instrument signal removal, calib/isr.h), in the spirit of the single-HDU-per-CCD raws of DECam
// and HSC (DATASEC/BIASSEC/DETSEC sections per amplifier).
//
//   HDU 0  PRIMARY  no data. OBSTYPE (science, bias, dark, flat), the VisitInfo keywords of the
//                   exposure file (fits.h: VISIT = exposure id, DETECTOR, BAND (empty for bias
//                   and dark), MJD-OBS, EXPTIME, GAIN, SATURATE, RDNOISE, AIRMASS: the camera's
//                   nominal values), NJYSCALE/NJYSCERR when a nominal photometric calibration
//                   of electrons is known, the approximate (header) WCS of science exposures in
//                   *assembled detector* pixels (the pixels of the ISR output, not of HDU 1),
//                   DETSIZE = '[1:W,1:H]' (the assembled detector), NAMPS, then the exposure's
//                   metadata and the provenance given to writeRawExposure.
//   HDU 1  RAW      int32 ADU, Rice tile-compressed (lossless), in raw-image layout (every
//   amplifier's data box followed by its
//                   serial overscan columns), and per amplifier k = 00 .. NAMPS-1 (HIERARCH):
//                     AMPkk_NAME      amplifier name
//                     AMPkk_DATASEC   its data pixels in this image, '[x1:x2,y1:y2]' (1-based,
//                                     inclusive, IRAF section syntax)
//                     AMPkk_BIASSEC   its serial overscan pixels in this image (same rows)
//                     AMPkk_DETSEC    where DATASEC goes in the assembled detector image
//                     AMPkk_GAIN      [e-/ADU]     AMPkk_RDNOISE [e-]
//                     AMPkk_SATURATE  [ADU] raw value at or above which the chain is saturated
// Both HDUs carry CHECKSUM/DATASUM; readRawExposure verifies them. Pixel values must be integers
// (ADU); int32 holds any ADC's range exactly.
//
// readRawExposure checks the geometry (sections inside the image and the detector, data and
// overscan on the same rows, data and detector sections of equal size, amplifiers tiling the
// detector without overlap) and throws Error(bad_input) naming the file and the keyword.
#pragma once

#include <string>

#include "drp/core/metadata.h"
#include "drp/core/raw_exposure.h"

namespace drp::fits {

/// Write a raw exposure atomically (AtomicFile); see the layout above. Error(logic) for
/// non-integral pixel values or metadata keys the format reserves.
void writeRawExposure(const std::string& path, const RawExposure& raw,
                      const PropertyList& provenance = {});
/// Read a raw exposure (exact inverse of writeRawExposure).
RawExposure readRawExposure(const std::string& path);

/// IRAF section '[x1:x2,y1:y2]' (1-based inclusive) of a 0-based box, and back (Error(bad_input)
/// naming `what` for a malformed section).
std::string toSection(const Box2I& box);
Box2I fromSection(const std::string& section, const std::string& what);

}  // namespace drp::fits
