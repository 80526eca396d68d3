#include "drp/coadd/pixel_transform.h"

#include <algorithm>
#include <cmath>

#include <Eigen/LU>

#include "drp/core/error.h"

namespace drp::coadd {

std::vector<Point2D> PixelTransform::apply(const std::vector<Point2D>& targets) const {
    std::vector<Point2D> out;
    out.reserve(targets.size());
    for (const Point2D& t : targets) out.push_back(apply(t));
    return out;
}

Eigen::Matrix2d PixelTransform::jacobian(Point2D t, double step) const {
    std::vector<Point2D> pts{
        {t.x + step, t.y}, {t.x - step, t.y}, {t.x, t.y + step}, {t.x, t.y - step}};
    auto s = apply(pts);
    Eigen::Matrix2d j;
    j(0, 0) = (s[0].x - s[1].x) / (2 * step);
    j(1, 0) = (s[0].y - s[1].y) / (2 * step);
    j(0, 1) = (s[2].x - s[3].x) / (2 * step);
    j(1, 1) = (s[2].y - s[3].y) / (2 * step);
    return j;
}

AffineTransform AffineTransform::inverted() const {
    Eigen::Matrix2d inv = _m.inverse();
    return AffineTransform(inv, -inv * _o);
}

namespace {
std::vector<int> nodesAlong(int lo, int hi, int spacing) {
    std::vector<int> v;
    for (int x = lo; x < hi; x += spacing) v.push_back(x);
    v.push_back(hi);  // always include the last pixel; a 1-pixel box has a single node twice
    if (v.size() == 1) v.push_back(hi);
    return v;
}

// df/dc at node k of a function sampled at m >= 3 strictly increasing coordinates c (values
// f[q * stride]): the second-order three-point formula for uneven spacing (exact for quadratics),
// central inside, one-sided at the two ends.
double nodeDerivative(const std::vector<int>& c, const double* f, std::size_t stride,
                      std::size_t k) {
    const std::size_t m = c.size();
    auto F = [&](std::size_t q) { return f[q * stride]; };
    if (k == 0) {
        const double h1 = c[1] - c[0], h2 = c[2] - c[1];
        return -(2 * h1 + h2) / (h1 * (h1 + h2)) * F(0) + (h1 + h2) / (h1 * h2) * F(1) -
               h1 / (h2 * (h1 + h2)) * F(2);
    }
    if (k == m - 1) {
        const double h1 = c[m - 1] - c[m - 2], h2 = c[m - 2] - c[m - 3];
        return (2 * h1 + h2) / (h1 * (h1 + h2)) * F(m - 1) - (h1 + h2) / (h1 * h2) * F(m - 2) +
               h1 / (h2 * (h1 + h2)) * F(m - 3);
    }
    const double h1 = c[k] - c[k - 1], h2 = c[k + 1] - c[k];
    return (h1 * h1 * F(k + 1) - h2 * h2 * F(k - 1) + (h2 * h2 - h1 * h1) * F(k)) /
           (h1 * h2 * (h1 + h2));
}
}  // namespace

GridMapping::GridMapping(const PixelTransform& transform, const Box2I& box, int spacing)
    : _box(box), _spacing(spacing) {
    if (spacing < 1) throw configError("GridMapping: spacing must be >= 1");
    if (box.empty()) throw logicError("GridMapping: empty box");
    _xs = nodesAlong(box.minX(), box.maxX(), spacing);
    _ys = nodesAlong(box.minY(), box.maxY(), spacing);
    const std::size_t nx = _xs.size(), ny = _ys.size();
    _sx.resize(nx * ny);
    _sy.resize(nx * ny);
    _det.resize(nx * ny);
    // With >= 3 (then distinct) nodes per axis, one transform evaluation per node: the Jacobian
    // comes from second-order finite differences of the node positions (pixel_transform.h).
    // Smaller grids (boxes narrower than two cells) also evaluate four ±h neighbours per node.
    const bool fromNodes = nx >= 3 && ny >= 3;
    const int perNode = fromNodes ? 1 : 5;
    const double h = 0.5;
    std::vector<Point2D> pts;
    pts.reserve(nx * ny * perNode);
    for (int y : _ys)
        for (int x : _xs) {
            pts.push_back({double(x), double(y)});
            if (fromNodes) continue;
            pts.push_back({x + h, double(y)});
            pts.push_back({x - h, double(y)});
            pts.push_back({double(x), y + h});
            pts.push_back({double(x), y - h});
        }
    auto s = transform.apply(pts);  // one batch, so that a WCS-backed transform can vectorise
    for (std::size_t k = 0; k < nx * ny; ++k) {
        const Point2D* p = &s[perNode * k];
        _sx[k] = p[0].x;
        _sy[k] = p[0].y;
        if (fromNodes) continue;
        double a = (p[1].x - p[2].x) / (2 * h), c = (p[1].y - p[2].y) / (2 * h);
        double b = (p[3].x - p[4].x) / (2 * h), d = (p[3].y - p[4].y) / (2 * h);
        _det[k] = std::abs(a * d - b * c);
    }
    if (fromNodes) {
        for (std::size_t j = 0; j < ny; ++j)
            for (std::size_t i = 0; i < nx; ++i) {
                const std::size_t k = j * nx + i;
                const double a = nodeDerivative(_xs, &_sx[j * nx], 1, i),
                             c = nodeDerivative(_xs, &_sy[j * nx], 1, i),
                             b = nodeDerivative(_ys, &_sx[i], nx, j),
                             d = nodeDerivative(_ys, &_sy[i], nx, j);
                _det[k] = std::abs(a * d - b * c);
            }
    }
    for (std::size_t k = 0; k < nx * ny; ++k)
        if (!std::isfinite(_sx[k]) || !std::isfinite(_sy[k]) || !std::isfinite(_det[k]))
            throw Error(error_class::kNumerical,
                        "GridMapping: transform is not finite at target pixel (" +
                            std::to_string(_xs[k % nx]) + ", " + std::to_string(_ys[k / nx]) + ")");
    _cellOfX.resize(box.width());
    for (int x = box.minX(); x <= box.maxX(); ++x) _cellOfX[x - box.minX()] = cellOf(_xs, x);
}

int GridMapping::cellOf(const std::vector<int>& nodes, int v) const {
    // nodes are evenly spaced except the last cell.
    int k = (v - nodes.front()) / _spacing;
    return std::clamp(k, 0, static_cast<int>(nodes.size()) - 2);
}

void GridMapping::row(int y, int x0, int x1, double* sx, double* sy, double* det) const {
    const std::size_t nx = _xs.size();
    const int cy = cellOf(_ys, y);
    const double dy = _ys[cy + 1] - _ys[cy];
    const double ty = dy > 0 ? (y - _ys[cy]) / dy : 0.0;
    // Interpolate the two node rows to this y once per node column, then along x.
    thread_local std::vector<double> rx, ry, rd;
    rx.resize(nx);
    ry.resize(nx);
    rd.resize(nx);
    const std::size_t r0 = cy * nx, r1 = (cy + 1) * nx;
    for (std::size_t k = 0; k < nx; ++k) {
        rx[k] = _sx[r0 + k] + ty * (_sx[r1 + k] - _sx[r0 + k]);
        ry[k] = _sy[r0 + k] + ty * (_sy[r1 + k] - _sy[r0 + k]);
        rd[k] = _det[r0 + k] + ty * (_det[r1 + k] - _det[r0 + k]);
    }
    int x = x0;
    while (x <= x1) {
        const int c = _cellOfX[x - _box.minX()];
        const int cellEnd = (c + 2 == static_cast<int>(nx)) ? x1 : std::min(x1, _xs[c + 1] - 1);
        const double dx = _xs[c + 1] - _xs[c];
        const double inv = dx > 0 ? 1.0 / dx : 0.0;
        const double gx = (rx[c + 1] - rx[c]) * inv, gy = (ry[c + 1] - ry[c]) * inv,
                     gd = (rd[c + 1] - rd[c]) * inv;
        for (; x <= cellEnd; ++x) {
            const double t = x - _xs[c];
            const int o = x - x0;
            sx[o] = rx[c] + gx * t;
            sy[o] = ry[c] + gy * t;
            det[o] = rd[c] + gd * t;
        }
    }
}

Point2D GridMapping::operator()(double x, double y) const {
    const std::size_t nx = _xs.size();
    const int cx = cellOf(_xs, static_cast<int>(std::floor(x))),
              cy = cellOf(_ys, static_cast<int>(std::floor(y)));
    const double dx = _xs[cx + 1] - _xs[cx], dy = _ys[cy + 1] - _ys[cy];
    const double tx = dx > 0 ? (x - _xs[cx]) / dx : 0.0, ty = dy > 0 ? (y - _ys[cy]) / dy : 0.0;
    auto bil = [&](const std::vector<double>& v) {
        double a = v[cy * nx + cx], b = v[cy * nx + cx + 1], c = v[(cy + 1) * nx + cx],
               d = v[(cy + 1) * nx + cx + 1];
        return (1 - ty) * ((1 - tx) * a + tx * b) + ty * ((1 - tx) * c + tx * d);
    };
    return {bil(_sx), bil(_sy)};
}

double GridMapping::maxErrorAtCellCentres(const PixelTransform& exact) const {
    std::vector<Point2D> centres;
    for (std::size_t j = 0; j + 1 < _ys.size(); ++j)
        for (std::size_t i = 0; i + 1 < _xs.size(); ++i)
            centres.push_back({0.5 * (_xs[i] + _xs[i + 1]), 0.5 * (_ys[j] + _ys[j + 1])});
    auto s = exact.apply(centres);
    double worst = 0;
    for (std::size_t k = 0; k < centres.size(); ++k) {
        Point2D g = (*this)(centres[k].x, centres[k].y);
        worst = std::max(worst, std::hypot(g.x - s[k].x, g.y - s[k].y));
    }
    return worst;
}

Box2I GridMapping::targetBoxCovering(const Box2D& src, double margin) const {
    const std::size_t nx = _xs.size(), ny = _ys.size();
    int x0 = INT32_MAX, x1 = INT32_MIN, y0 = INT32_MAX, y1 = INT32_MIN;
    for (std::size_t j = 0; j < ny; ++j)
        for (std::size_t i = 0; i < nx; ++i) {
            double sx = _sx[j * nx + i], sy = _sy[j * nx + i];
            if (sx < src.min().x - margin || sx > src.max().x + margin ||
                sy < src.min().y - margin || sy > src.max().y + margin)
                continue;
            // The whole cells around an inside node may be (partly) inside.
            x0 = std::min(x0, _xs[i == 0 ? 0 : i - 1]);
            x1 = std::max(x1, _xs[std::min(i + 1, nx - 1)]);
            y0 = std::min(y0, _ys[j == 0 ? 0 : j - 1]);
            y1 = std::max(y1, _ys[std::min(j + 1, ny - 1)]);
        }
    if (x0 > x1) return {};
    return Box2I::fromCorners({x0, y0}, {x1, y1}).clippedTo(_box);
}

}  // namespace drp::coadd
