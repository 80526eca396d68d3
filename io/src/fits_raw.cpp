// The drp raw-exposure file (layout in raw_fits.h).
#include <fitsio.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <set>

#include "drp/core/atomic_file.h"
#include "drp/core/error.h"
#include "drp/core/wcs.h"
#include "drp/io/fits.h"
#include "drp/io/raw_fits.h"
#include "fits_internal.h"

namespace drp::fits {

namespace {

// Keywords of the primary HDU that describe the exposure (not metadata).
const std::set<std::string> kRawKeys = {
    "OBSTYPE", "DETSIZE", "NAMPS",    "VISIT",   "DETECTOR", "BAND",     "MJD-OBS",
    "EXPTIME", "GAIN",    "SATURATE", "RDNOISE", "AIRMASS",  "NJYSCALE", "NJYSCERR",
    "MAGZERO", "SIMPLE",  "BITPIX",   "NAXIS",   "EXTEND",   "CHECKSUM", "DATASUM"};

std::string ampKey(std::size_t k, const char* what) {
    return (k < 10 ? "AMP0" : "AMP") + std::to_string(k) + "_" + what;
}

std::string upper(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    return s;
}

bool isValidObsType(const std::string& t) {
    return t == obs_type::kScience || t == obs_type::kBias || t == obs_type::kDark ||
           t == obs_type::kFlat;
}

}  // namespace

std::string toSection(const Box2I& box) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "[%d:%d,%d:%d]", box.minX() + 1, box.maxX() + 1, box.minY() + 1,
                  box.maxY() + 1);
    return buf;
}

Box2I fromSection(const std::string& section, const std::string& what) {
    int x1 = 0, x2 = 0, y1 = 0, y2 = 0, used = 0;
    if (std::sscanf(section.c_str(), " [%d:%d,%d:%d]%n", &x1, &x2, &y1, &y2, &used) != 4 ||
        section.find_first_not_of(' ', static_cast<std::size_t>(used)) != std::string::npos)
        throw badInput(what + ": malformed section '" + section + "' (expected [x1:x2,y1:y2])");
    if (x1 < 1 || y1 < 1 || x2 < x1 || y2 < y1)
        throw badInput(what + ": section '" + section +
                       "' must be 1-based with x1 <= x2 and y1 <= y2");
    return Box2I::fromCorners({x1 - 1, y1 - 1}, {x2 - 1, y2 - 1});
}

void writeRawExposure(const std::string& path, const RawExposure& raw,
                      const PropertyList& provenance) {
    if (!isValidObsType(raw.obsType))
        throw logicError("writing " + path + ": unknown OBSTYPE '" + raw.obsType + "'");
    if (raw.amps.empty()) throw logicError("writing " + path + ": raw exposure without amplifiers");
    for (const PropertyList* md : {&raw.metadata, &provenance})
        for (const auto& e : md->entries()) {
            const std::string k = upper(e.key);
            if (kRawKeys.count(k) || k.rfind("NAXIS", 0) == 0 || k.rfind("AMP", 0) == 0)
                throw logicError("writing " + path + ": metadata key '" + e.key +
                                 "' is reserved by the raw format");
        }
    Image<std::int32_t> adu(raw.pixels.bbox());
    for (int y = 0; y < adu.height(); ++y)
        for (int x = 0; x < adu.width(); ++x) {
            const float v = raw.pixels(x, y);
            if (!(std::nearbyint(v) == v) || std::abs(v) > 2147483647.0f)
                throw logicError("writing " + path + ": raw pixel (" + std::to_string(x) + ", " +
                                 std::to_string(y) + ") = " + std::to_string(v) +
                                 " is not an integer ADU");
            adu(x, y) = static_cast<std::int32_t>(v);
        }
    AtomicFile out(path);
    {
        FitsFile f = FitsFile::create(out.tempPath());
        int status = 0;
        fits_create_img(ff(f.handle()), BYTE_IMG, 0, nullptr, &status);
        f.check(status, "creating the primary HDU of");
        // WCS cards first: the keywords below replace any clash (MJD-OBS).
        if (raw.wcs) f.writeCards(raw.wcs->toFitsHeader());
        PropertyList head;
        head.set("OBSTYPE", raw.obsType, "observation type: science, bias, dark, flat");
        f.writeMetadata(head);
        f.writeMetadata(visitInfoKeywords(raw.visitInfo));
        f.writeMetadata(photoCalibKeywords(raw.photoCalib));
        PropertyList geom;
        geom.set("DETSIZE", toSection(raw.detectorBox), "assembled detector (ISR output) size");
        geom.set("NAMPS", static_cast<std::int64_t>(raw.amps.size()), "number of amplifiers");
        f.writeMetadata(geom);
        f.writeMetadata(raw.metadata);
        f.writeMetadata(provenance);
        f.writeChecksum();

        // Rice-compressed tiles (one row each), lossless on integers, as camera raws are
        // stored (LSST, HSC): read noise of a few ADU compresses 32-bit pixels about 4-fold.
        fits_set_compression_type(ff(f.handle()), RICE_1, &status);
        f.check(status, "setting the compression of");
        f.writeImage<std::int32_t>(adu.cview());
        fits_set_compression_type(ff(f.handle()), NOCOMPRESS, &status);
        f.check(status, "setting the compression of");
        PropertyList amps;
        amps.set("EXTNAME", "RAW", "raw pixels [ADU], amplifiers with overscan");
        amps.set("BUNIT", "adu", "analogue-to-digital units");
        for (std::size_t k = 0; k < raw.amps.size(); ++k) {
            const Amplifier& a = raw.amps[k];
            amps.set(ampKey(k, "NAME"), a.name, "amplifier name");
            amps.set(ampKey(k, "DATASEC"), toSection(a.dataBox), "data pixels in this image");
            amps.set(ampKey(k, "BIASSEC"), toSection(a.overscanBox), "serial overscan pixels");
            amps.set(ampKey(k, "DETSEC"), toSection(a.detectorBox), "place in the detector");
            amps.set(ampKey(k, "GAIN"), a.gain, "[e-/ADU]");
            amps.set(ampKey(k, "RDNOISE"), a.readNoise, "[e-] read noise");
            amps.set(ampKey(k, "SATURATE"), a.saturation, "[ADU] saturation of the chain");
        }
        f.writeMetadata(amps);
        // A compressed HDU's heap is completed on flush; checksum it after that.
        fits_flush_file(ff(f.handle()), &status);
        f.check(status, "flushing");
        f.writeChecksum();
        f.close();
    }
    out.commit();
}

RawExposure readRawExposure(const std::string& path) {
    FitsFile f = FitsFile::openRead(path);
    f.moveTo(0);
    f.verifyChecksum();
    const std::string cards = f.readHeaderCards();
    const PropertyList primary = parseCards(cards, path + " HDU 0", true);
    RawExposure raw;
    try {
        raw.obsType = primary.get<std::string>("OBSTYPE");
        if (!isValidObsType(raw.obsType))
            throw badInput("OBSTYPE = '" + raw.obsType +
                           "' (expected science, bias, dark or flat)");
        raw.visitInfo = visitInfoFrom(primary);
        raw.photoCalib = photoCalibFrom(primary);
        raw.detectorBox = fromSection(primary.get<std::string>("DETSIZE"), "DETSIZE");
        if (raw.detectorBox.min() != Point2I(0, 0))
            throw badInput("DETSIZE must start at [1:..,1:..]");
    } catch (Error& e) {
        throw e.addContext("reading raw exposure " + path + " HDU 0");
    }
    std::set<std::string> wcsKeys;
    if (cards.find("CTYPE1  =") != std::string::npos) {
        raw.wcs = Wcs::fromFitsHeader(cards, path + " HDU 0");
        const PropertyList wcsCards = parseCards(raw.wcs->toFitsHeader(), "WCS", true);
        for (const auto& e : wcsCards.entries()) wcsKeys.insert(e.key);
    }
    for (const auto& e : primary.entries())
        if (!kRawKeys.count(e.key) && !wcsKeys.count(e.key) && e.key.rfind("NAXIS", 0) != 0)
            raw.metadata.set(e.key, e.value, e.comment);

    f.moveTo(std::string("RAW"));
    f.verifyChecksum();
    raw.pixels = f.readImage<float>();
    if (raw.pixels.xy0() != Point2I(0, 0)) raw.pixels.setXY0({0, 0});
    const PropertyList h = f.readMetadata();
    const std::string where = "reading raw exposure " + path + " HDU RAW";
    try {
        const std::int64_t n = primary.get<std::int64_t>("NAMPS");
        if (n < 1 || n > 1000) throw badInput("NAMPS = " + std::to_string(n) + " out of range");
        std::int64_t covered = 0;
        for (std::size_t k = 0; k < static_cast<std::size_t>(n); ++k) {
            Amplifier a;
            a.name = h.get<std::string>(ampKey(k, "NAME"));
            a.dataBox = fromSection(h.get<std::string>(ampKey(k, "DATASEC")), ampKey(k, "DATASEC"));
            a.overscanBox =
                fromSection(h.get<std::string>(ampKey(k, "BIASSEC")), ampKey(k, "BIASSEC"));
            a.detectorBox =
                fromSection(h.get<std::string>(ampKey(k, "DETSEC")), ampKey(k, "DETSEC"));
            a.gain = h.get<double>(ampKey(k, "GAIN"));
            a.readNoise = h.get<double>(ampKey(k, "RDNOISE"));
            a.saturation = h.get<double>(ampKey(k, "SATURATE"));
            const std::string amp = "amplifier " + std::to_string(k) + " (" + a.name + ")";
            if (!raw.pixels.bbox().contains(a.dataBox) ||
                !raw.pixels.bbox().contains(a.overscanBox))
                throw badInput(amp + ": DATASEC or BIASSEC outside the " +
                               std::to_string(raw.pixels.width()) + "x" +
                               std::to_string(raw.pixels.height()) + " image");
            if (!raw.detectorBox.contains(a.detectorBox))
                throw badInput(amp + ": DETSEC outside DETSIZE");
            if (a.dataBox.dimensions() != a.detectorBox.dimensions())
                throw badInput(amp + ": DATASEC and DETSEC differ in size");
            if (a.overscanBox.minY() != a.dataBox.minY() ||
                a.overscanBox.height() != a.dataBox.height())
                throw badInput(amp + ": BIASSEC must cover the rows of DATASEC");
            if (!(a.gain > 0) || !(a.readNoise >= 0) || !(a.saturation > 0))
                throw badInput(amp + ": GAIN must be > 0, RDNOISE >= 0, SATURATE > 0");
            for (const Amplifier& b : raw.amps)
                if (b.detectorBox.overlaps(a.detectorBox))
                    throw badInput(amp + ": DETSEC overlaps amplifier " + b.name);
            covered += a.detectorBox.area();
            raw.amps.push_back(std::move(a));
        }
        if (covered != raw.detectorBox.area())
            throw badInput("the amplifiers' DETSEC do not tile DETSIZE");
    } catch (Error& e) {
        throw e.addContext(where);
    }
    return raw;
}

}  // namespace drp::fits
