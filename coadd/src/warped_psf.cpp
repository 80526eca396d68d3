#include "drp/coadd/warped_psf.h"

#include <cmath>

#include <Eigen/SVD>

#include "drp/coadd/lanczos.h"
#include "drp/core/error.h"

namespace drp::coadd {

WarpedPsf::WarpedPsf(std::shared_ptr<const Psf> sourcePsf,
                     std::shared_ptr<const PixelTransform> toSource, Point2D referencePoint)
    : _source(std::move(sourcePsf)), _toSource(std::move(toSource)) {
    if (!_source || !_toSource) throw logicError("WarpedPsf: null PSF or transform");
    // A source offset of r pixels maps to at most r / σ_min(A) target pixels.
    Eigen::Matrix2d a = _toSource->jacobian(referencePoint);
    Eigen::JacobiSVD<Eigen::Matrix2d> svd(a);
    double smin = svd.singularValues()(1);
    if (!(smin > 0)) throw Error(error_class::kNumerical, "WarpedPsf: singular pixel mapping");
    _radius = static_cast<int>(std::ceil(_source->kernelRadius() / smin));
}

void WarpedPsf::render(Point2D position, Point2D centre, Image<double>& out) const {
    // Offsets d (target pixels) from `centre` map to source offsets A·d, with the source PSF and
    // A = ∂s/∂p both evaluated for the target position `position`.
    const Eigen::Matrix2d a = _toSource->jacobian(position);
    Image<double> k = _source->computeKernelImage(_toSource->apply(position));
    const int r = _source->kernelRadius();
    k.setXY0({-r, -r});  // the source kernel is centred on its stamp's central pixel
    const LanczosTable& table = lanczos3Table();
    double sum = 0;
    for (int j = 0; j < out.height(); ++j)
        for (int i = 0; i < out.width(); ++i) {
            double dx = out.xy0().x + i - centre.x, dy = out.xy0().y + j - centre.y;
            double v = interpolateZeroPadded(k.cview(), a(0, 0) * dx + a(0, 1) * dy,
                                             a(1, 0) * dx + a(1, 1) * dy, table);
            out(i, j) = v;
            sum += v;
        }
    if (!(sum > 0)) throw Error(error_class::kNumerical, "WarpedPsf: warped kernel has no flux");
    for (double& v : out.pixels()) v /= sum;
}

Image<double> WarpedPsf::computeKernelImage(Point2D position) const {
    Image<double> out(Box2I({-_radius, -_radius}, {2 * _radius + 1, 2 * _radius + 1}));
    render(position, {0.0, 0.0}, out);
    return out;
}

Image<double> WarpedPsf::computeImage(Point2D position) const {
    // Sample the source PSF image centred at the source position itself, so that the source
    // lattice phase is the one a real star at `position` has: the model then reproduces what
    // the warp does to that star, including the phase-dependent resampling response.
    Point2I c = position.nearestPixel();
    Image<double> out(Box2I({c.x - _radius, c.y - _radius}, {2 * _radius + 1, 2 * _radius + 1}));
    const Point2D s = _toSource->apply(position);
    const Eigen::Matrix2d a = _toSource->jacobian(position);
    Image<double> src = _source->computeImage(s);
    const LanczosTable& table = lanczos3Table();
    double sum = 0;
    for (int j = 0; j < out.height(); ++j)
        for (int i = 0; i < out.width(); ++i) {
            double dx = out.xy0().x + i - position.x, dy = out.xy0().y + j - position.y;
            double v = interpolateZeroPadded(src.cview(), s.x + a(0, 0) * dx + a(0, 1) * dy,
                                             s.y + a(1, 0) * dx + a(1, 1) * dy, table);
            out(i, j) = v;
            sum += v;
        }
    if (!(sum > 0)) throw Error(error_class::kNumerical, "WarpedPsf: warped PSF has no flux");
    for (double& v : out.pixels()) v /= sum;
    return out;
}

}  // namespace drp::coadd
