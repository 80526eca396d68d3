#include "drp/core/psf.h"

namespace drp {

Quadrupole Psf::computeShape(Point2D position) const {
    return measureMoments(computeKernelImage(position));
}

Quadrupole measureMoments(ConstImageView<double> image) {
    double s = 0, sx = 0, sy = 0;
    for (int j = 0; j < image.height(); ++j)
        for (int i = 0; i < image.width(); ++i) {
            double v = image(i, j);
            s += v;
            sx += v * (i + image.xy0().x);
            sy += v * (j + image.xy0().y);
        }
    if (!(s > 0)) throw Error(error_class::kNumerical, "measureMoments: image has non-positive sum");
    double cx = sx / s, cy = sy / s;
    Quadrupole q;
    for (int j = 0; j < image.height(); ++j)
        for (int i = 0; i < image.width(); ++i) {
            double v = image(i, j);
            double dx = i + image.xy0().x - cx, dy = j + image.xy0().y - cy;
            q.ixx += v * dx * dx;
            q.iyy += v * dy * dy;
            q.ixy += v * dx * dy;
        }
    q.ixx /= s;
    q.iyy /= s;
    q.ixy /= s;
    return q;
}

}  // namespace drp
