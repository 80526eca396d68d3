// An exposure: a masked image (IMAGE float32, MASK int32, VARIANCE float32) plus its WCS, PSF,
// photometric calibration, visit information and free-form metadata.
//
// Units: before calibration IMAGE is in electrons (ADU × gain) and VARIANCE in electrons²; a
// calibrated exposure or coadd carries a PhotoCalib whose `nJyPerCount` turns pixel values into
// nJy (coadds are stored directly in nJy with nJyPerCount = 1).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "drp/core/image.h"
#include "drp/core/mask.h"
#include "drp/core/metadata.h"
#include "drp/core/psf.h"

namespace drp {

class Wcs;

class MaskedImage final {
public:
    MaskedImage() = default;
    explicit MaskedImage(Box2I bbox, MaskPlanes planes = MaskPlanes::defaults())
        : _image(bbox, 0.f), _mask(bbox, std::move(planes)), _variance(bbox, 0.f) {}
    MaskedImage(ImageF image, Mask mask, ImageF variance);

    ImageF& image() { return _image; }
    const ImageF& image() const { return _image; }
    Mask& mask() { return _mask; }
    const Mask& mask() const { return _mask; }
    ImageF& variance() { return _variance; }
    const ImageF& variance() const { return _variance; }
    const Box2I& bbox() const { return _image.bbox(); }
    int width() const { return _image.width(); }
    int height() const { return _image.height(); }
    bool operator==(const MaskedImage&) const = default;

private:
    ImageF _image;
    Mask _mask;
    ImageF _variance;
};

/// Multiplicative photometric calibration: flux[nJy] = counts × nJyPerCount.
struct PhotoCalib final {
    double nJyPerCount = 1.0;
    double nJyPerCountErr = 0.0;
    /// AB magnitude zero point: m = zeroPoint - 2.5 log10(counts). 31.4 = -2.5 log10(1 nJy / 3631 Jy).
    double zeroPoint() const;
    static PhotoCalib fromZeroPoint(double zp, double zpErr = 0.0);
    bool operator==(const PhotoCalib&) const = default;
};

/// What an exposure is: written to and read from the documented FITS keywords
/// (VISIT, DETECTOR, BAND, MJD-OBS, EXPTIME, GAIN, SATURATE, RDNOISE, AIRMASS).
struct VisitInfo final {
    std::int64_t visit = -1;
    int detector = -1;
    std::string band;            ///< one of u g r i z y
    double mjd = 0.0;            ///< MJD (TAI) at the start of the exposure
    double exposureTime = 0.0;   ///< seconds
    double gain = 1.0;           ///< electrons per ADU (of the raw data)
    double saturation = 0.0;     ///< saturation level in the image's units (0: unknown)
    double readNoise = 0.0;      ///< electrons RMS
    double airmass = 1.0;
    bool operator==(const VisitInfo&) const = default;
};

class Exposure final {
public:
    Exposure() = default;
    explicit Exposure(Box2I bbox) : _mi(bbox) {}
    explicit Exposure(MaskedImage mi) : _mi(std::move(mi)) {}

    MaskedImage& maskedImage() { return _mi; }
    const MaskedImage& maskedImage() const { return _mi; }
    ImageF& image() { return _mi.image(); }
    const ImageF& image() const { return _mi.image(); }
    Mask& mask() { return _mi.mask(); }
    const Mask& mask() const { return _mi.mask(); }
    ImageF& variance() { return _mi.variance(); }
    const ImageF& variance() const { return _mi.variance(); }
    const Box2I& bbox() const { return _mi.bbox(); }

    const std::shared_ptr<const Wcs>& wcs() const { return _wcs; }
    void setWcs(std::shared_ptr<const Wcs> wcs) { _wcs = std::move(wcs); }
    const std::shared_ptr<const Psf>& psf() const { return _psf; }
    void setPsf(std::shared_ptr<const Psf> psf) { _psf = std::move(psf); }
    const std::optional<PhotoCalib>& photoCalib() const { return _photoCalib; }
    void setPhotoCalib(std::optional<PhotoCalib> pc) { _photoCalib = pc; }
    VisitInfo& visitInfo() { return _visitInfo; }
    const VisitInfo& visitInfo() const { return _visitInfo; }
    PropertyList& metadata() { return _metadata; }
    const PropertyList& metadata() const { return _metadata; }

private:
    MaskedImage _mi;
    std::shared_ptr<const Wcs> _wcs;
    std::shared_ptr<const Psf> _psf;
    std::optional<PhotoCalib> _photoCalib;
    VisitInfo _visitInfo;
    PropertyList _metadata;
};

}  // namespace drp
