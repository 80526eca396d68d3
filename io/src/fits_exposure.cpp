// The drp exposure file: PRIMARY (metadata) + IMAGE + MASK + VARIANCE (layout in fits.h).
#include <fitsio.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "drp/core/atomic_file.h"
#include "drp/core/error.h"
#include "drp/core/wcs.h"
#include "drp/io/fits.h"
#include "fits_internal.h"

namespace drp::fits {

namespace {

const std::vector<std::string> kVisitKeys = {"VISIT", "DETECTOR", "BAND",    "MJD-OBS", "EXPTIME",
                                             "GAIN",  "SATURATE", "RDNOISE", "AIRMASS"};
const std::vector<std::string> kCalibKeys = {"NJYSCALE", "NJYSCERR", "MAGZERO"};
const std::vector<std::string> kOriginKeys = {"LTV1", "LTV2", "LTM1_1", "LTM2_2"};
// Structural keywords a metadata list must never carry into a header.
const std::vector<std::string> kStructural = {
    "SIMPLE", "BITPIX",  "NAXIS",  "NAXIS1", "NAXIS2",   "EXTEND",  "XTENSION", "PCOUNT",
    "GCOUNT", "EXTNAME", "BSCALE", "BZERO",  "CHECKSUM", "DATASUM", "END"};

bool contains(const std::vector<std::string>& v, const std::string& k) {
    return std::find(v.begin(), v.end(), k) != v.end();
}

}  // namespace

PropertyList visitInfoKeywords(const VisitInfo& v) {
    PropertyList p;
    p.set("VISIT", PropertyList::Value(v.visit), "visit (exposure) id");
    p.set("DETECTOR", v.detector, "detector id");
    p.set("BAND", v.band, "band (u g r i z y)");
    p.set("MJD-OBS", v.mjd, "[d] MJD (TAI) at the start of the exposure");
    p.set("EXPTIME", v.exposureTime, "[s] exposure time");
    p.set("GAIN", v.gain, "[e-/ADU] gain of the raw data");
    p.set("SATURATE", v.saturation, "saturation level in image units (0: unknown)");
    p.set("RDNOISE", v.readNoise, "[e-] read noise (RMS)");
    p.set("AIRMASS", v.airmass, "airmass");
    return p;
}

VisitInfo visitInfoFrom(const PropertyList& p) {
    VisitInfo v;
    v.visit = p.get<std::int64_t>("VISIT", v.visit);
    v.detector = static_cast<int>(p.get<std::int64_t>("DETECTOR", v.detector));
    v.band = p.get<std::string>("BAND", v.band);
    v.mjd = p.get<double>("MJD-OBS", v.mjd);
    v.exposureTime = p.get<double>("EXPTIME", v.exposureTime);
    v.gain = p.get<double>("GAIN", v.gain);
    v.saturation = p.get<double>("SATURATE", v.saturation);
    v.readNoise = p.get<double>("RDNOISE", v.readNoise);
    v.airmass = p.get<double>("AIRMASS", v.airmass);
    return v;
}

PropertyList photoCalibKeywords(const std::optional<PhotoCalib>& pc) {
    PropertyList p;
    if (!pc) return p;
    p.set("NJYSCALE", pc->nJyPerCount, "[nJy/count] flux = counts * NJYSCALE");
    p.set("NJYSCERR", pc->nJyPerCountErr, "[nJy/count] uncertainty of NJYSCALE");
    if (pc->nJyPerCount > 0)
        p.set("MAGZERO", pc->zeroPoint(), "[mag] AB zero point (informational)");
    return p;
}

std::optional<PhotoCalib> photoCalibFrom(const PropertyList& p) {
    if (!p.has("NJYSCALE")) return std::nullopt;
    return PhotoCalib{p.get<double>("NJYSCALE"), p.get<double>("NJYSCERR", 0.0)};
}

namespace {

void checkMetadataKeys(const PropertyList& md, const std::string& path, const char* what) {
    for (const auto& e : md.entries()) {
        std::string k = e.key;
        std::transform(k.begin(), k.end(), k.begin(),
                       [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
        bool reserved = contains(kVisitKeys, k) || contains(kCalibKeys, k) ||
                        contains(kOriginKeys, k) || contains(kStructural, k) ||
                        k.rfind("NAXIS", 0) == 0;
        if (reserved)
            throw logicError(
                "writing " + path + ": " + what + " key '" + e.key +
                "' is reserved by the exposure format (VisitInfo/PhotoCalib/structure)");
    }
}

/// Everything an image HDU of an exposure carries besides pixels.
void writeImageHduHeader(FitsFile& f, const char* extname, const Exposure& exp,
                         const std::string& wcsCards) {
    PropertyList id;
    id.set("EXTNAME", extname, "drp exposure plane");
    f.writeMetadata(id);
    f.writeCards(wcsCards);  // before the keywords below, which replace any clash (MJD-OBS)
    f.writeMetadata(visitInfoKeywords(exp.visitInfo()));
    f.writeMetadata(photoCalibKeywords(exp.photoCalib()));
}

}  // namespace

const std::vector<std::string>& reservedExposureKeywords() {
    static const std::vector<std::string> all = [] {
        std::vector<std::string> v = kVisitKeys;
        v.insert(v.end(), kCalibKeys.begin(), kCalibKeys.end());
        v.insert(v.end(), kOriginKeys.begin(), kOriginKeys.end());
        return v;
    }();
    return all;
}

void writeExposure(const std::string& path, const Exposure& exposure,
                   const PropertyList& provenance) {
    checkMetadataKeys(exposure.metadata(), path, "metadata");
    checkMetadataKeys(provenance, path, "provenance");
    const MaskedImage& mi = exposure.maskedImage();
    if (!(mi.mask().bbox() == mi.image().bbox()) || !(mi.variance().bbox() == mi.image().bbox()))
        throw logicError("writing " + path + ": image, mask and variance bounding boxes differ");
    // The file's WCS works on array pixels; ours on parent pixels (array + xy0).
    std::string wcsCards;
    if (exposure.wcs()) {
        Point2I xy0 = exposure.bbox().min();
        wcsCards =
            exposure.wcs()->shiftedBy(Extent2D{double(xy0.x), double(xy0.y)})->toFitsHeader();
    }
    AtomicFile out(path);
    {
        FitsFile f = FitsFile::create(out.tempPath());
        int status = 0;
        fits_create_img(ff(f.handle()), BYTE_IMG, 0, nullptr, &status);
        f.check(status, "creating the primary HDU of");
        f.writeMetadata(visitInfoKeywords(exposure.visitInfo()));
        f.writeMetadata(photoCalibKeywords(exposure.photoCalib()));
        f.writeMetadata(exposure.metadata());
        f.writeMetadata(provenance);
        f.writeChecksum();

        f.writeImage<float>(mi.image().cview());
        writeImageHduHeader(f, "IMAGE", exposure, wcsCards);
        f.writeChecksum();

        f.writeImage<MaskPixel>(mi.mask().image().cview());
        writeImageHduHeader(f, "MASK", exposure, wcsCards);
        PropertyList planes;
        for (const auto& [name, index] : mi.mask().planes().planes())
            planes.set("MP_" + name, index, "mask plane: bit index");
        f.writeMetadata(planes);
        f.writeChecksum();

        f.writeImage<float>(mi.variance().cview());
        writeImageHduHeader(f, "VARIANCE", exposure, wcsCards);
        f.writeChecksum();
        f.close();
    }
    out.commit();
}

namespace {

template <typename T>
Image<T> readVerifiedPlane(FitsFile& f);

// The MASK HDU; its checksums are verified when `verify`.
Mask maskFrom(FitsFile& f, bool verify = false) {
    Image<MaskPixel> pixels = verify ? readVerifiedPlane<MaskPixel>(f) : f.readImage<MaskPixel>();
    PropertyList keys = f.readMetadata();
    MaskPlanes planes;
    bool any = false;
    for (const auto& e : keys.entries()) {
        if (e.key.rfind("MP_", 0) != 0) continue;
        const auto* index = std::get_if<std::int64_t>(&e.value);
        if (index == nullptr || *index < 0 || *index > 30)
            throw badInput(f.path() + " " + f.describeCurrentHdu() + ": mask plane keyword " +
                           e.key + " must be an integer bit index in [0, 30]");
        try {
            planes.setPlane(e.key.substr(3), static_cast<int>(*index));
        } catch (Error& err) {
            err.addContext("reading mask planes of " + f.path());
            throw;
        }
        any = true;
    }
    Mask mask(pixels.bbox(), any ? planes : MaskPlanes::defaults());
    mask.image() = std::move(pixels);
    return mask;
}

// Fold a ones'-complement 32-bit sum kept as 16-bit halves (CFITSIO ffcsum's arithmetic).
unsigned long foldHalves(unsigned long long hi, unsigned long long lo) {
    unsigned long long hicarry = hi >> 16, locarry = lo >> 16;
    while (hicarry | locarry) {
        hi = (hi & 0xFFFF) + locarry;
        lo = (lo & 0xFFFF) + hicarry;
        hicarry = hi >> 16;
        locarry = lo >> 16;
    }
    return static_cast<unsigned long>((hi << 16) + lo);
}

// The current image HDU's pixels, with its DATASUM and CHECKSUM verified as
// FitsFile::verifyChecksum does (fits_verify_chksum), but in one pass over the data: the data
// unit of a 32-bit, unscaled image is exactly the big-endian words of the pixel values read, so
// its ones'-complement sum is taken on the pixels in memory instead of reading the data unit
// twice (once through CFITSIO's checksum, once for the pixels: that second read was 2/3 of the
// time of readExposure). The header is summed by CFITSIO (ffcsum) from its records. Any other
// HDU (scaled, other BITPIX) falls back to verifyChecksum + readImage.
template <typename T>
Image<T> readVerifiedPlane(FitsFile& f) {
    static_assert(sizeof(T) == 4, "32-bit pixels only");
    fitsfile* fp = ff(f.handle());
    int status = 0, bitpix = 0, equiv = 0;
    fits_get_img_type(fp, &bitpix, &status);
    fits_get_img_equivtype(fp, &equiv, &status);
    const int want = std::is_floating_point_v<T> ? FLOAT_IMG : LONG_IMG;
    if (status != 0 || bitpix != want || equiv != want) {
        f.verifyChecksum();
        return f.readImage<T>();
    }
    auto keyword = [&](const char* name, std::string& value) {
        char buf[FLEN_VALUE] = {0};
        int st = 0;
        fits_read_key(fp, TSTRING, name, buf, nullptr, &st);
        value = buf;
        return st == 0;
    };
    std::string dataSumKey, checksumKey;
    const bool hasDataSum = keyword("DATASUM", dataSumKey);
    const bool hasChecksum = keyword("CHECKSUM", checksumKey);
    Image<T> out = f.readImage<T>();
    if (!hasDataSum && !hasChecksum) return out;
    unsigned long long hi = 0, lo = 0;
    const T* px = out.data();
    const std::size_t n = static_cast<std::size_t>(out.bbox().area());
    for (std::size_t k = 0; k < n; ++k) {
        std::uint32_t w;
        std::memcpy(&w, px + k, 4);
        hi += w >> 16;
        lo += w & 0xFFFF;
    }
    const unsigned long dataSum = foldHalves(hi, lo);
    LONGLONG headStart = 0, dataStart = 0, dataEnd = 0;
    fits_get_hduaddrll(fp, &headStart, &dataStart, &dataEnd, &status);
    unsigned long headerSum = 0;
    ffmbyt(fp, headStart, 0 /* REPORT_EOF (fitsio2.h) */, &status);
    ffcsum(fp, static_cast<long>((dataStart - headStart) / 2880), &headerSum, &status);
    f.check(status, "verifying the checksum of");
    const unsigned long hduSum =
        foldHalves((headerSum >> 16) + (dataSum >> 16), (headerSum & 0xFFFF) + (dataSum & 0xFFFF));
    const bool dataBad = hasDataSum && std::strtoul(dataSumKey.c_str(), nullptr, 10) != dataSum;
    const bool hduBad = hasChecksum && hduSum != 0 && hduSum != 0xFFFFFFFFUL;
    if (dataBad || hduBad)
        throw badInput(f.path() + " " + f.describeCurrentHdu() + " is corrupt: its " +
                       (dataBad ? "DATASUM" : "CHECKSUM") + " does not match its contents");
    return out;
}

MaskedImage maskedImageFrom(FitsFile& f) {
    f.moveTo(std::string("IMAGE"));
    ImageF image = readVerifiedPlane<float>(f);
    f.moveTo(std::string("MASK"));
    Mask mask = maskFrom(f, true);
    f.moveTo(std::string("VARIANCE"));
    ImageF variance = readVerifiedPlane<float>(f);
    if (!(mask.bbox() == image.bbox()) || !(variance.bbox() == image.bbox()))
        throw badInput(f.path() +
                       ": IMAGE, MASK and VARIANCE HDUs have different sizes or origins");
    return MaskedImage(std::move(image), std::move(mask), std::move(variance));
}

}  // namespace

Mask readMask(const std::string& path, const HduRef& hdu) {
    FitsFile f = FitsFile::openRead(path);
    f.moveTo(hdu);
    return maskFrom(f);
}

MaskedImage readMaskedImage(const std::string& path) {
    FitsFile f = FitsFile::openRead(path);
    return maskedImageFrom(f);
}

Exposure readExposure(const std::string& path) {
    FitsFile f = FitsFile::openRead(path);
    f.moveTo(0);
    f.verifyChecksum();
    PropertyList primary = parseCards(f.readHeaderCards(), path + " HDU 0", true);
    Exposure exp(maskedImageFrom(f));
    f.moveTo(std::string("IMAGE"));
    std::string cards = f.readHeaderCards();
    if (cards.find("CTYPE1  =") != std::string::npos) {
        auto fileWcs = Wcs::fromFitsHeader(cards, path + " HDU IMAGE");
        Point2I xy0 = exp.bbox().min();
        exp.setWcs(fileWcs->shiftedBy(Extent2D{-double(xy0.x), -double(xy0.y)}));
    }
    exp.visitInfo() = visitInfoFrom(primary);
    exp.setPhotoCalib(photoCalibFrom(primary));
    PropertyList md;
    for (const auto& e : primary.entries()) {
        std::string k = e.key;
        if (contains(kVisitKeys, k) || contains(kCalibKeys, k) || contains(kStructural, k) ||
            k.rfind("NAXIS", 0) == 0)
            continue;
        md.set(e.key, e.value, e.comment);
    }
    exp.metadata() = std::move(md);
    return exp;
}

}  // namespace drp::fits
