// DECam Community Pipeline (CP) InstCal products -> drp::Exposure.
//
// The NOIRLab/NOAO CP delivers each DECam exposure as three files with one HDU per CCD:
//   *_ooi_*  image, ADU (sky not subtracted)          -> IMAGE = ooi × gain [electrons]
//   *_oow_*  inverse variance, ADU⁻²                   -> VARIANCE = gain² / oow [electrons²]
//   *_ood_*  data-quality codes                        -> MASK planes
// with a TPV WCS in the image header (read by WCSLIB; ignoring the TPV polynomial would move
// positions by arcseconds). These are the inputs of the DESI Legacy Imaging Surveys; the mapping
// follows legacypipe (legacysurvey/legacypipe, py/legacypipe/image.py and decam.py):
//   gain       = mean(GAINA, GAINB) of the CCD header (legacypipe DecamImage.get_gain)
//   DQ codes   1 bad -> BAD, 2 no value -> NO_DATA, 3 saturated -> SAT, 4 bleed -> SUSPECT,
//              5 cosmic ray -> CR, 6 low weight -> BAD, 7 difference detection -> TRANSIENT
//              (a plane added to the defaults), 8 long streak -> STREAK; any other non-zero
//              code -> BAD (conservative). (legacypipe remap_dq_cp_codes; its extra step that
//              turns BAD pixels bordering saturated cores into SAT is not applied.)
//   oow <= 0 or not finite: VARIANCE = +inf and NO_DATA (the pixel carries no information).
// VisitInfo: visit = EXPNUM, detector = CCDNUM, band = BAND (else the first letter of FILTER),
// mjd = MJD-OBS converted from UTC (TIMESYS) to TAI with the leap-second table (TAI-UTC = 34 s
// from 2009-01-01, 35 s from 2012-07-01, 36 s from 2015-07-01, 37 s from 2017-01-01; earlier
// dates are rejected, DECam started in 2012), exposureTime = EXPTIME, gain as above,
// saturation = SATURATE × gain [electrons], readNoise = mean(RDNOISEA, RDNOISEB) [electrons],
// airmass = AIRMASS. xy0 from the image's LTV1/LTV2 (fits.h). No PhotoCalib (uncalibrated).
// Metadata: the primary and CCD header keywords except structural, WCS and reserved ones.
#pragma once

#include <string>

#include "drp/core/exposure.h"

namespace drp::fits {

struct DecamCpFiles {
    std::string image;   ///< *_ooi_*
    std::string invvar;  ///< *_oow_*
    std::string dq;      ///< *_ood_*
    /// The triplet named after the image file: "_ooi_" -> "_oow_" / "_ood_" in the file name.
    /// Throws Error(bad_input) if the name has no "_ooi_".
    static DecamCpFiles fromImagePath(const std::string& ooi);
};

/// Read one CCD (EXTNAME such as "N11"; empty: the first 2-D image HDU) of a CP triplet.
/// Throws Error(bad_input) for non-DECam files, missing keywords or HDUs that disagree.
Exposure readDecamCp(const DecamCpFiles& files, const std::string& ccd = "");

/// MJD (UTC) -> MJD (TAI) for dates from 2009 on (see above).
double utcToTaiMjd(double mjdUtc);

}  // namespace drp::fits
