// DECam CP triplet reader (conventions and sources in decam.h).
#include <fitsio.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>

#include "drp/core/error.h"
#include "drp/core/wcs.h"
#include "drp/io/decam.h"
#include "drp/io/fits.h"
#include "fits_internal.h"

namespace drp::fits {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

/// Move to `ccd` (EXTNAME) or, if empty, to the first 2-D image HDU; returns its EXTNAME.
std::string moveToCcd(FitsFile& f, const std::string& ccd) {
    if (!ccd.empty()) {
        f.moveTo(ccd);
        return ccd;
    }
    int n = f.numHdus();
    for (int i = 0; i < n; ++i) {
        f.moveTo(i);
        if (!f.currentIsImage()) continue;
        int naxis = 0, status = 0;
        fits_get_img_dim(ff(f.handle()), &naxis, &status);
        f.check(status, "reading the image dimensions of");
        if (naxis == 2) {
            PropertyList keys = parseCards(f.readHeaderCards(), f.path(), false);
            return keys.get<std::string>("EXTNAME", "");
        }
    }
    throw badInput(f.path() + " has no 2-D image HDU");
}

double required(const PropertyList& p, const std::string& key, const std::string& where) {
    if (!p.has(key)) throw badInput(where + ": keyword " + key + " is missing");
    return p.get<double>(key);
}

bool isWcsOrLayoutKey(const std::string& k) {
    for (const char* prefix : {"WAT", "LTV", "LTM", "WCSDIM", "A_", "B_", "AP_", "BP_"})
        if (k.rfind(prefix, 0) == 0) return true;
    return false;
}

}  // namespace

double utcToTaiMjd(double mjdUtc) {
    // (MJD of the start of the interval, TAI - UTC in seconds): IERS Bulletin C.
    static constexpr std::pair<double, double> kLeaps[] = {
        {57754.0, 37.0}, {57204.0, 36.0}, {56109.0, 35.0}, {54832.0, 34.0}};
    for (const auto& [start, seconds] : kLeaps)
        if (mjdUtc >= start) return mjdUtc + seconds / 86400.0;
    throw badInput("MJD " + std::to_string(mjdUtc) +
                   " (UTC) is before 2009-01-01, outside drp's leap-second table");
}

DecamCpFiles DecamCpFiles::fromImagePath(const std::string& ooi) {
    namespace fs = std::filesystem;
    fs::path p(ooi);
    std::string name = p.filename().string();
    auto pos = name.find("_ooi_");
    if (pos == std::string::npos)
        throw badInput(ooi + " is not named like a CP InstCal image (no '_ooi_' in the file name)");
    auto with = [&](const char* code) {
        std::string n = name;
        n.replace(pos, 5, code);
        return (p.parent_path() / n).string();
    };
    return {ooi, with("_oow_"), with("_ood_")};
}

Exposure readDecamCp(const DecamCpFiles& files, const std::string& ccd) {
    // ---- image and headers
    FitsFile fi = FitsFile::openRead(files.image);
    PropertyList primary = parseCards(fi.readHeaderCards(), files.image + " HDU 0", true);
    std::string instrument = primary.get<std::string>("INSTRUME", "");
    if (instrument != "DECam")
        throw badInput(files.image + " is not a DECam image (INSTRUME = '" + instrument +
                       "'); only DECam CP products are supported");
    std::string extname = moveToCcd(fi, ccd);
    const std::string where = files.image + " " + fi.describeCurrentHdu();
    std::string cards = fi.readHeaderCards();
    PropertyList ext = parseCards(cards, where, true);
    ImageF adu = fi.readImage<float>();

    // ---- visit info
    VisitInfo vi;
    vi.visit = primary.get<std::int64_t>("EXPNUM");
    vi.detector = static_cast<int>(ext.get<std::int64_t>("CCDNUM"));
    if (primary.has("BAND")) {
        vi.band = primary.get<std::string>("BAND");
    } else {
        std::string filter = primary.get<std::string>("FILTER", "");
        if (filter.empty()) throw badInput(files.image + ": neither BAND nor FILTER is present");
        vi.band = filter.substr(0, 1);
    }
    std::string timesys = primary.get<std::string>("TIMESYS", "UTC");
    double mjd = required(primary, "MJD-OBS", files.image);
    vi.mjd = timesys == "TAI" ? mjd : utcToTaiMjd(mjd);
    vi.exposureTime = required(primary, "EXPTIME", files.image);
    const double gain = 0.5 * (required(ext, "GAINA", where) + required(ext, "GAINB", where));
    if (!(gain > 0)) throw badInput(where + ": GAINA/GAINB give a non-positive gain");
    vi.gain = gain;
    vi.saturation = required(ext, "SATURATE", where) * gain;
    if (ext.has("RDNOISEA") && ext.has("RDNOISEB"))
        vi.readNoise = 0.5 * (ext.get<double>("RDNOISEA") + ext.get<double>("RDNOISEB"));
    vi.airmass = primary.get<double>("AIRMASS", 1.0);

    // ---- inverse variance and data quality, same CCD
    FitsFile fw = FitsFile::openRead(files.invvar);
    fw.moveTo(extname.empty() ? HduRef(fi.currentHdu()) : HduRef(extname));
    ImageF invvar = fw.readImage<float>();
    FitsFile fd = FitsFile::openRead(files.dq);
    fd.moveTo(extname.empty() ? HduRef(fi.currentHdu()) : HduRef(extname));
    Image<std::int32_t> dq = fd.readImage<std::int32_t>();
    if (invvar.width() != adu.width() || invvar.height() != adu.height() ||
        dq.width() != adu.width() || dq.height() != adu.height())
        throw badInput(files.image + ", " + files.invvar + ", " + files.dq + " CCD '" + extname +
                       "': image, inverse variance and data-quality sizes differ");

    // ---- pixels
    Exposure exp(adu.bbox());
    MaskPlanes& planes = exp.mask().planes();
    planes.addPlane("TRANSIENT");
    const MaskPixel kBad = planes.bit("BAD"), kNoData = planes.bit("NO_DATA");
    const MaskPixel codeBits[9] = {0,
                                   kBad,
                                   kNoData,
                                   planes.bit("SAT"),
                                   planes.bit("SUSPECT"),
                                   planes.bit("CR"),
                                   kBad,
                                   planes.bit("TRANSIENT"),
                                   planes.bit("STREAK")};
    for (int j = 0; j < adu.height(); ++j)
        for (int i = 0; i < adu.width(); ++i) {
            exp.image()(i, j) = static_cast<float>(adu(i, j) * gain);
            double w = invvar(i, j);
            MaskPixel m = 0;
            if (w > 0 && std::isfinite(w)) {
                exp.variance()(i, j) = static_cast<float>(gain * gain / w);
            } else {
                exp.variance()(i, j) = static_cast<float>(kInf);
                m |= kNoData;
            }
            int code = dq(i, j);
            if (code != 0) m |= (code > 0 && code <= 8) ? codeBits[code] : kBad;
            exp.mask()(i, j) = m;
        }

    // ---- WCS (array coordinates in the file; parent = array + xy0)
    auto fileWcs = Wcs::fromFitsHeader(cards, where);
    Point2I xy0 = adu.xy0();
    exp.setWcs(fileWcs->shiftedBy(Extent2D{-double(xy0.x), -double(xy0.y)}));
    exp.visitInfo() = vi;

    // ---- metadata: primary then CCD keywords, minus WCS/layout/reserved ones
    const auto& reserved = reservedExposureKeywords();
    for (const PropertyList* src : {&primary, &ext}) {
        for (const auto& e : src->entries()) {
            if (std::find(reserved.begin(), reserved.end(), e.key) != reserved.end()) continue;
            if (isWcsOrLayoutKey(e.key)) continue;
            std::string card = e.key;
            card.resize(80, ' ');
            char buf[81];
            std::snprintf(buf, sizeof buf, "%-80s", card.c_str());
            int cls = fits_get_keyclass(buf);
            if (cls == TYP_WCS_KEY || cls == TYP_REFSYS_KEY) continue;
            exp.metadata().set(e.key, e.value, e.comment);
        }
    }
    return exp;
}

}  // namespace drp::fits
