// FITS files: a thin, honest CFITSIO wrapper plus the drp file formats built on it.
//
// Every CFITSIO status becomes a drp::Error whose message names the file, the HDU and
// CFITSIO's own message stack, e.g.
//   "reading /repo/v1234/det42.fits HDU 2 (EXTNAME 'MASK'): CFITSIO status 107 (tried to move
//    past end of file): ffgpv: ..."
// Error classes: not_found for a missing file or HDU; bad_input for a file that is not FITS,
// is truncated or corrupt (including a failed CHECKSUM), or lacks what the reader needs; io for
// operating-system failures (permissions, disk full, read/write errors).
//
// HDU numbers are 0-based here (0 = primary), as in astropy; CFITSIO's 1-based numbers stay
// inside io/src.
//
// ---- The drp exposure file (writeExposure / readExposure) --------------------------------
//   HDU 0  PRIMARY   no data. VisitInfo and PhotoCalib keywords (below), then the exposure's
//                    metadata, then the provenance given to writeExposure.
//   HDU 1  IMAGE     float32 pixels.
//   HDU 2  MASK      int32 bits; MP_<NAME> = <bit index> for every mask plane.
//   HDU 3  VARIANCE  float32.
// Every image HDU carries EXTNAME, the full WCS of the exposure (if it has one) in array
// coordinates, the VisitInfo and PhotoCalib keywords, and the origin keywords, so that each
// extension opened alone (DS9, astropy) is self-describing. Each HDU has CHECKSUM/DATASUM;
// the readers of drp's own formats (readExposure, readMaskedImage, readTable) verify them when
// present; the generic readers (readImage, readMask, readHeader) do not, because foreign files
// often carry stale checksums after header edits.
//
// Keywords:
//   VISIT    int     VisitInfo::visit            DETECTOR int    VisitInfo::detector
//   BAND     string  VisitInfo::band             MJD-OBS  float  VisitInfo::mjd (TAI)
//   EXPTIME  float   VisitInfo::exposureTime [s] GAIN     float  VisitInfo::gain [e-/ADU]
//   SATURATE float   VisitInfo::saturation       RDNOISE  float  VisitInfo::readNoise [e-]
//   AIRMASS  float   VisitInfo::airmass
//   NJYSCALE float   PhotoCalib::nJyPerCount     NJYSCERR float  PhotoCalib::nJyPerCountErr
//   MAGZERO  float   informational AB zero point of counts (written with NJYSCALE, not read)
//   LTV1, LTV2 int   image origin (xy0), in IRAF's convention physical = (array - LTV) / LTM:
//                    LTV1 = -xy0.x, LTV2 = -xy0.y with LTM1_1 = LTM2_2 = 1, so DS9's
//                    "physical" coordinates are drp parent coordinates + 1 (FITS 1-based).
//                    Written only when xy0 != (0, 0). On read, absent, non-integral or with
//                    LTM != 1 means xy0 = (0, 0).
// The WCS written is the exposure's Wcs shifted to array coordinates (CRPIX = parent CRPIX -
// xy0 + 1), so that astropy/DS9 see the right sky at every pixel; readExposure shifts back.
// A PhotoCalib is absent when NJYSCALE is absent. Metadata keys may not use the reserved
// keywords above or FITS structural ones (Error(logic) on write). On read, every other
// primary keyword (including the provenance) comes back in Exposure::metadata(). The PSF is
// not stored in this file.
//
// Header values: bool <-> logical, int64 <-> integer, double <-> real (written with 17
// significant digits, so they round-trip exactly; NaN/inf cannot be written: Error(logic)),
// string <-> string (long strings with the CONTINUE convention; trailing blanks are not
// significant in FITS and are dropped). Keys longer than 8 characters or not upper-case use
// the HIERARCH convention.
//
// ---- Binary tables (writeTable / readTable) ----------------------------------------------
// One BINTABLE HDU (EXTNAME given, default "TABLE") after an empty primary HDU. Column types:
// Int32 'J', Int64 'K', Float32 'E', Float64 'D', Bool 'L' (FITS logical), String 'nA' with n
// the longest string (at least 1). TTYPEn = name (its comment = the description), TUNITn =
// unit (when not empty), and TDOCn = the full description as a long string when it does not
// fit in the TTYPE comment. Table metadata are header keywords of the table HDU. readTable
// also reads integer 'B'/'I' (as Int32) and accepts only scalar columns.
#pragma once

#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "drp/core/exposure.h"
#include "drp/core/image.h"
#include "drp/core/mask.h"
#include "drp/core/metadata.h"
#include "drp/core/table.h"

namespace drp::fits {

/// An HDU chosen by 0-based number or by EXTNAME.
using HduRef = std::variant<int, std::string>;

/// RAII handle on an open FITS file; the file is closed by the destructor (errors on that
/// close are swallowed; call close() to see them). Movable, not copyable.
class FitsFile final {
  public:
    /// Open an existing file read-only. Extended filename syntax is NOT interpreted (paths
    /// containing '[' are plain paths).
    static FitsFile openRead(const std::string& path);
    /// Create a new file (the path must not exist; use AtomicFile's temporary name).
    static FitsFile create(const std::string& path);

    ~FitsFile();
    FitsFile(FitsFile&& o) noexcept;
    FitsFile& operator=(FitsFile&& o) noexcept;
    FitsFile(const FitsFile&) = delete;
    FitsFile& operator=(const FitsFile&) = delete;

    /// Flush and close; throws Error on failure. Further use of the handle is a logic error.
    void close();

    const std::string& path() const { return _path; }
    /// CFITSIO's `fitsfile*` (as void*: fitsio.h stays out of drp headers), for io/src.
    void* handle() const { return _fptr; }

    int numHdus();
    /// Move to an HDU; throws Error(not_found) naming the file if it does not exist.
    void moveTo(const HduRef& hdu);
    int currentHdu();  ///< 0-based
    /// "HDU 2 (EXTNAME 'MASK')" for messages.
    std::string describeCurrentHdu();
    bool currentIsImage();
    bool currentIsCompressedImage();

    /// Raw header cards of the current HDU (80-character cards, concatenated, no END); for a
    /// tile-compressed image, the equivalent uncompressed image header.
    std::string readHeaderCards();
    /// The current HDU's keywords (COMMENT/HISTORY/blank cards are skipped).
    PropertyList readMetadata();
    /// Write keywords into the current HDU (see the value rules above).
    void writeMetadata(const PropertyList& metadata);
    /// Append raw 80-character cards (e.g. Wcs::toFitsHeader()) to the current HDU.
    void writeCards(const std::string& cards);
    /// Write CHECKSUM/DATASUM for the current HDU.
    void writeChecksum();
    /// If the current HDU has CHECKSUM/DATASUM, verify them (Error(bad_input) on mismatch).
    void verifyChecksum();

    /// Append an image HDU with these pixels (float32, float64 or int32) and move to it.
    template <typename T>
    void writeImage(ConstImageView<T> image);
    /// Read the current image HDU (2-D) into an Image<T>, converting type as CFITSIO does;
    /// xy0 from LTV1/LTV2 (see above).
    template <typename T>
    Image<T> readImage();

    /// Throw the drp::Error for CFITSIO `status` raised while doing `what` on the current HDU.
    [[noreturn]] void fail(int status, const std::string& what);
    /// Throw if status != 0.
    void check(int status, const std::string& what) {
        if (status != 0) fail(status, what);
    }

  private:
    FitsFile(void* f, std::string path, bool writing)
        : _fptr(f), _path(std::move(path)), _writing(writing) {}
    void* _fptr = nullptr;
    std::string _path;
    bool _writing = false;
};

/// A header: its keywords and its raw cards (the cards go to Wcs::fromFitsHeader).
struct FitsHeader {
    PropertyList metadata;
    std::string cards;
};

/// The header of one HDU.
FitsHeader readHeader(const std::string& path, const HduRef& hdu = 0);

/// One image HDU (float32, float64 or int32 result; any FITS pixel type is converted).
template <typename T>
Image<T> readImage(const std::string& path, const HduRef& hdu);
/// One mask HDU with its MP_* planes (planes absent from the header: the defaults).
Mask readMask(const std::string& path, const HduRef& hdu = std::string("MASK"));
/// The IMAGE, MASK and VARIANCE HDUs of a drp exposure file.
MaskedImage readMaskedImage(const std::string& path);

/// Write a drp exposure file atomically (AtomicFile); see the layout above.
void writeExposure(const std::string& path, const Exposure& exposure,
                   const PropertyList& provenance = {});
/// Read a drp exposure file (bit-exact inverse of writeExposure for pixels, WCS, VisitInfo,
/// PhotoCalib and metadata).
Exposure readExposure(const std::string& path);

/// The keywords of writeExposure that belong to VisitInfo/PhotoCalib/xy0 (reserved).
const std::vector<std::string>& reservedExposureKeywords();

/// Write a table as a FITS binary table atomically; `provenance` goes to the primary header.
void writeTable(const std::string& path, const Table& table, const PropertyList& provenance = {},
                const std::string& extname = "TABLE");
/// Read a binary table HDU (default: the first HDU after the primary). `columns` selects and
/// orders columns (empty: all).
Table readTable(const std::string& path, const HduRef& hdu = 1,
                const std::vector<std::string>& columns = {});

}  // namespace drp::fits
