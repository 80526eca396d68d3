#include "drp/core/exposure.h"

#include <cmath>

namespace drp {

MaskedImage::MaskedImage(ImageF image, Mask mask, ImageF variance)
    : _image(std::move(image)), _mask(std::move(mask)), _variance(std::move(variance)) {
    if (!(_image.bbox() == _mask.bbox()) || !(_image.bbox() == _variance.bbox()))
        throw logicError("MaskedImage: image, mask and variance bounding boxes differ");
}

// m_AB = -2.5 log10(f / 3631 Jy); for f = 1 nJy, m = 2.5 log10(3631e9) = 31.4000...
static constexpr double kNJyZeroPoint = 31.400065;  // 2.5*log10(3631e9)

// m = zp - 2.5 log10(counts) and m = 31.4 - 2.5 log10(f / nJy)  =>  f = counts * 10^(-(zp - 31.4)
// / 2.5).
double PhotoCalib::zeroPoint() const {
    return kNJyZeroPoint - 2.5 * std::log10(nJyPerCount);
}

PhotoCalib PhotoCalib::fromZeroPoint(double zp, double zpErr) {
    double scale = std::pow(10.0, -(zp - kNJyZeroPoint) / 2.5);
    return {scale, scale * zpErr * std::log(10.0) / 2.5};
}

}  // namespace drp
