// The warper's pixel mapping from two WCSs: target pixel -> sky (patch WCS) -> source pixel
// (the exposure's calibrated WCS). Evaluated exactly only at the GridMapping nodes
// (pixel_transform.h), in one batch per warp.
#pragma once

#include <memory>
#include <vector>

#include "drp/coadd/pixel_transform.h"
#include "drp/coadd/warp.h"
#include "drp/core/wcs.h"

namespace drp::coadd {

class WcsPixelTransform final : public PixelTransform {
  public:
    WcsPixelTransform(std::shared_ptr<const Wcs> target, std::shared_ptr<const Wcs> source);
    Point2D apply(Point2D target) const override;
    std::vector<Point2D> apply(const std::vector<Point2D>& targets) const override;

  private:
    std::shared_ptr<const Wcs> _target, _source;
};

/// Warp a calibrated exposure (with WCS, PSF and PhotoCalib) onto `targetBox` of the patch WCS
/// `target`. Throws Error(bad_input) naming the input if it is unusable, Error("no_overlap") if
/// it does not overlap the box.
Warp warpExposure(const Exposure& calibrated, std::shared_ptr<const Wcs> target,
                  const Box2I& targetBox, const WarpConfig& config = {});

}  // namespace drp::coadd
