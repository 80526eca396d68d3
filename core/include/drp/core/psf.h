// The point-spread function interface.
//
// A Psf is immutable and shared as `std::shared_ptr<const Psf>`. Implementations live in the
// modules that produce them (the simulator's true PSF, calib's fitted PSF model, coadd's
// combined PSF); consumers only use this interface.
//
// Images returned are normalised to unit sum over the stamp and use the pixel convention of
// geometry.h: `computeKernelImage` is centred on array pixel (r, r) of a (2r+1)² stamp whose bbox
// runs from (-r, -r) to (r, r); `computeImage(p)` is the PSF as it would appear at parent position
// p, sampled on the parent pixel grid (bbox around p.nearestPixel()), for fitting and subtraction.
#pragma once

#include <memory>
#include <string>

#include "drp/core/ellipse.h"
#include "drp/core/geometry.h"
#include "drp/core/image.h"

namespace drp {

class Psf {
public:
    virtual ~Psf() = default;

    /// Kernel centred on the stamp's central pixel, evaluated for the PSF at `position`.
    virtual Image<double> computeKernelImage(Point2D position) const = 0;
    /// The PSF centred at sub-pixel `position`, on the parent pixel grid.
    virtual Image<double> computeImage(Point2D position) const = 0;
    /// Second moments of the PSF (pixels²), unweighted unless the implementation says otherwise.
    virtual Quadrupole computeShape(Point2D position) const;
    /// Half-size r of the kernel stamp.
    virtual int kernelRadius() const = 0;
    /// A short name of the implementation, for provenance ("moffat", "pca", "coadd").
    virtual std::string typeName() const = 0;
};

/// Moments of a normalised image about its own centroid (used by Psf::computeShape's default).
Quadrupole measureMoments(ConstImageView<double> image);

}  // namespace drp
