// Shared between the io/src/fits_*.cpp files; not installed.
#pragma once

#include <fitsio.h>

#include <string>

#include "drp/core/exposure.h"
#include "drp/core/metadata.h"

namespace drp::fits {

/// The CFITSIO handle behind a FitsFile's opaque pointer.
inline fitsfile* ff(void* handle) {
    return static_cast<fitsfile*>(handle);
}

/// Keywords of 80-character header cards. `userOnly` drops structural, compression, scaling,
/// checksum and HDU-identity keywords (NAXIS, BITPIX, ZIMAGE, BZERO, CHECKSUM, EXTNAME, ...).
/// Errors name `source`.
PropertyList parseCards(const std::string& cards, const std::string& source, bool userOnly);

/// The VisitInfo and PhotoCalib keywords of drp files (table in fits.h), and their inverses
/// (absent keywords keep the defaults; no NJYSCALE: no PhotoCalib). Shared by the exposure and
/// raw-exposure formats.
PropertyList visitInfoKeywords(const VisitInfo& v);
VisitInfo visitInfoFrom(const PropertyList& p);
PropertyList photoCalibKeywords(const std::optional<PhotoCalib>& pc);
std::optional<PhotoCalib> photoCalibFrom(const PropertyList& p);

}  // namespace drp::fits
