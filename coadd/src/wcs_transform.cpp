#include "drp/coadd/wcs_transform.h"

#include <sstream>

#include "drp/core/error.h"

namespace drp::coadd {

WcsPixelTransform::WcsPixelTransform(std::shared_ptr<const Wcs> target,
                                     std::shared_ptr<const Wcs> source)
    : _target(std::move(target)), _source(std::move(source)) {
    if (!_target || !_source) throw logicError("WcsPixelTransform: null WCS");
}

Point2D WcsPixelTransform::apply(Point2D target) const {
    return _source->skyToPixel(_target->pixelToSky(target));
}

std::vector<Point2D> WcsPixelTransform::apply(const std::vector<Point2D>& targets) const {
    return _source->skyToPixel(_target->pixelToSky(targets));
}

Warp warpExposure(const Exposure& calibrated, std::shared_ptr<const Wcs> target,
                  const Box2I& targetBox, const WarpConfig& config) {
    if (!calibrated.wcs()) {
        std::ostringstream os;
        os << "visit " << calibrated.visitInfo().visit << " detector "
           << calibrated.visitInfo().detector << ": no WCS";
        throw badInput(os.str());
    }
    return warpExposure(calibrated,
                        std::make_shared<WcsPixelTransform>(std::move(target), calibrated.wcs()),
                        targetBox, config);
}

}  // namespace drp::coadd
