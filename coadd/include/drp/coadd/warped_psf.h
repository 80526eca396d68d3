// The PSF of a warp: the input exposure's PSF mapped into the target (patch) frame.
//
// At a target position p the warper samples the source at s = T(p) with the local linear map
// A = ∂s/∂p (pixel_transform.h). A star at p in the warp is the source's pixelised star
// resampled through T, so the warp's PSF at p is the input PSF's kernel image at s, resampled
// through the local affine map (as LSST's WarpedPsf does, with the same Lanczos-3 kernel):
//     P_warp(d) ∝ P_src(A · d),   d = offset from the PSF centre in target pixels,
// renormalised to unit sum (the Jacobian |det A| only scales, and Psf images are unit-sum).
// Higher-order terms of T over a PSF stamp (~30 px) are negligible for sky projections.
#pragma once

#include <memory>
#include <string>

#include <Eigen/Core>

#include "drp/coadd/pixel_transform.h"
#include "drp/core/psf.h"

namespace drp::coadd {

class WarpedPsf final : public Psf {
  public:
    /// `toSource` maps target pixels to source pixels; `referencePoint` (target pixels) fixes the
    /// stamp radius (the source radius scaled by the largest stretch of the local map there).
    WarpedPsf(std::shared_ptr<const Psf> sourcePsf, std::shared_ptr<const PixelTransform> toSource,
              Point2D referencePoint);

    Image<double> computeKernelImage(Point2D position) const override;
    Image<double> computeImage(Point2D position) const override;
    int kernelRadius() const override { return _radius; }
    std::string typeName() const override { return "warped"; }

    const std::shared_ptr<const Psf>& sourcePsf() const { return _source; }

  private:
    // Fill `out` (any bbox) with the PSF for target position `position`, centred at `centre`.
    void render(Point2D position, Point2D centre, Image<double>& out) const;

    std::shared_ptr<const Psf> _source;
    std::shared_ptr<const PixelTransform> _toSource;
    int _radius;
};

}  // namespace drp::coadd
