// Shared between the io/src/fits_*.cpp files; not installed.
#pragma once

#include <fitsio.h>

#include <string>

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

}  // namespace drp::fits
