#include "drp/calib/background.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>

#include "drp/core/error.h"

namespace drp::calib {

void BackgroundConfig::validate() const {
    auto fail = [](const std::string& what) { throw configError("BackgroundConfig: " + what); };
    if (binSize < 8) fail("binSize = " + std::to_string(binSize) + " must be >= 8 pixels");
    if (!(clipSigma > 1.0)) fail("clipSigma = " + std::to_string(clipSigma) + " must be > 1");
    if (maxIterations < 1) fail("maxIterations must be >= 1");
    if (!(convergence > 0)) fail("convergence must be > 0");
    if (!(modeSkewLimit >= 0)) fail("modeSkewLimit must be >= 0");
    if (!(minGoodFraction > 0 && minGoodFraction <= 1))
        fail("minGoodFraction = " + std::to_string(minGoodFraction) + " must be in (0, 1]");
    if (filterSize < 1 || filterSize % 2 == 0)
        fail("filterSize = " + std::to_string(filterSize) + " must be odd and >= 1");
}

namespace {

// Order-preserving map of a finite or infinite float to an unsigned key (IEEE 754: flip the sign
// bit of positives, all bits of negatives).
inline std::uint32_t floatKey(float f) {
    std::uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// Ascending sort of floats without NaN: LSD radix sort on the order-preserving keys, 3 passes of
// 11 bits (O(n), ~6× faster than std::sort on a 128² cell). Passes whose digit is the same for
// every value are skipped.
void radixSort(std::vector<float>& v) {
    const std::size_t n = v.size();
    if (n < 64) {
        std::sort(v.begin(), v.end());
        return;
    }
    std::vector<std::uint32_t> a(n), b(n);
    std::uint32_t counts[3][2048] = {};
    for (std::size_t k = 0; k < n; ++k) {
        const std::uint32_t u = a[k] = floatKey(v[k]);
        ++counts[0][u & 2047];
        ++counts[1][(u >> 11) & 2047];
        ++counts[2][u >> 22];
    }
    std::uint32_t* src = a.data();
    std::uint32_t* dst = b.data();
    for (int pass = 0; pass < 3; ++pass) {
        const int shift = 11 * pass;
        std::uint32_t* c = counts[pass];
        if (c[(src[0] >> shift) & 2047] == n) continue;  // one digit value: already in order
        std::uint32_t sum = 0;
        for (int d = 0; d < 2048; ++d) {
            const std::uint32_t t = c[d];
            c[d] = sum;
            sum += t;
        }
        for (std::size_t k = 0; k < n; ++k) dst[c[(src[k] >> shift) & 2047]++] = src[k];
        std::swap(src, dst);
    }
    for (std::size_t k = 0; k < n; ++k) {
        const std::uint32_t u = src[k];
        const std::uint32_t bits = (u & 0x80000000u) ? (u & 0x7fffffffu) : ~u;
        std::memcpy(&v[k], &bits, sizeof bits);
    }
}

}  // namespace

ClippedStats clippedStats(std::vector<float>& v, const BackgroundConfig& config) {
    ClippedStats s;
    const std::size_t total = v.size();
    if (total == 0) return s;
    // Every iteration keeps the values within [median − kσ, median + kσ] of the current sample,
    // i.e. an index range of the sorted values: one sort, then each iteration is two binary
    // searches and prefix-sum differences. The sums are taken about a fixed reference (the
    // first median) in double precision, which keeps precision for sky levels >> σ.
    radixSort(v);
    std::size_t a = 0, b = total;  // current sample: v[a, b)
    auto medianOf = [&](std::size_t lo, std::size_t hi) {
        const std::size_t m = hi - lo;
        double med = v[lo + m / 2];
        if (m % 2 == 0) med = 0.5 * (med + v[lo + m / 2 - 1]);
        return med;
    };
    const double ref = medianOf(a, b);
    std::vector<double> p1(total + 1), p2(total + 1);  // prefix sums of (v − ref), (v − ref)²
    p1[0] = p2[0] = 0;
    for (std::size_t k = 0; k < total; ++k) {
        const double d = v[k] - ref;
        p1[k + 1] = p1[k] + d;
        p2[k + 1] = p2[k] + d * d;
    }
    double prevSigma = std::numeric_limits<double>::infinity();
    for (int it = 0; it < config.maxIterations && b > a; ++it) {
        const std::size_t n = b - a;
        const double med = medianOf(a, b);
        const double t1 = p1[b] - p1[a], t2 = p2[b] - p2[a], off = med - ref;
        const double s1 = t1 - n * off;                       // Σ (v − med)
        const double s2 = t2 - 2 * off * t1 + n * off * off;  // Σ (v − med)²
        const double mean = med + s1 / n;
        const double var = n > 1 ? (s2 - s1 * s1 / n) / (n - 1) : 0.0;
        const double sigma = std::sqrt(std::max(var, 0.0));
        s = {mean, med, sigma, med, n};
        if (sigma == 0 || std::abs(sigma / prevSigma - 1) < config.convergence) break;
        prevSigma = sigma;
        // Kept: lo <= x <= hi, compared in double as the partition of a float sample would.
        const double lo = med - config.clipSigma * sigma, hi = med + config.clipSigma * sigma;
        const std::size_t na = std::lower_bound(v.begin() + a, v.begin() + b, lo,
                                                [](float x, double t) { return double(x) < t; }) -
                               v.begin();
        const std::size_t nb = std::upper_bound(v.begin() + na, v.begin() + b, hi,
                                                [](double t, float x) { return t < double(x); }) -
                               v.begin();
        if (na == a && nb == b) break;
        a = na;
        b = nb;
    }
    // SExtractor's mode: Pearson's 2.5 med - 1.5 mean when the clipped histogram is nearly
    // symmetric; in crowded cells (strong positive skew) the median is more robust.
    if (s.sigma > 0 && std::abs(s.mean - s.median) < config.modeSkewLimit * s.sigma)
        s.mode = 2.5 * s.median - 1.5 * s.mean;
    else
        s.mode = s.median;
    return s;
}

namespace {

std::vector<double> evalHermite(const std::vector<double>& x, const std::vector<double>& y,
                                const std::vector<double>& slope, const std::vector<double>& xs) {
    std::vector<double> out(xs.size());
    const std::size_t last = x.size() - 2;
    std::size_t i = 0;
    while (i < xs.size()) {
        // Segment: largest k with x[k] <= t, clamped to [0, n-2] (ends extrapolate).
        auto it = std::upper_bound(x.begin(), x.end(), xs[i]);
        const std::size_t k = it == x.begin() ? 0 : std::min(std::size_t(it - x.begin()) - 1, last);
        // The following increasing xs in the same segment (a row of pixels: a whole cell).
        const double end = k == last ? std::numeric_limits<double>::infinity() : x[k + 1];
        std::size_t e = i + 1;
        while (e < xs.size() && xs[e] >= xs[e - 1] && xs[e] < end) ++e;
        // The cubic Hermite segment as a polynomial in t = (x − x_k)/h (Horner).
        const double h = x[k + 1] - x[k], inv = 1.0 / h;
        const double y0 = y[k], y1 = y[k + 1], m0 = h * slope[k], m1 = h * slope[k + 1];
        const double c1 = m0, c2 = 3 * (y1 - y0) - 2 * m0 - m1, c3 = 2 * (y0 - y1) + m0 + m1;
        const double x0 = x[k];
        for (std::size_t q = i; q < e; ++q) {
            const double t = (xs[q] - x0) * inv;
            out[q] = y0 + t * (c1 + t * (c2 + t * c3));
        }
        i = e;
    }
    return out;
}

std::vector<double> constantOrLinear(const std::vector<double>& x, const std::vector<double>& y,
                                     const std::vector<double>& xs) {
    std::vector<double> out(xs.size(), y.empty() ? 0.0 : y[0]);
    if (y.size() == 2) {
        double slope = (y[1] - y[0]) / (x[1] - x[0]);
        for (std::size_t i = 0; i < xs.size(); ++i) out[i] = y[0] + slope * (xs[i] - x[0]);
    }
    return out;
}

}  // namespace

std::vector<double> interpolateCubicSpline(const std::vector<double>& x,
                                           const std::vector<double>& y,
                                           const std::vector<double>& xs) {
    std::size_t n = x.size();
    if (n < 3) return constantOrLinear(x, y, xs);
    // Natural cubic spline: solve the tridiagonal system for the second derivatives M_k
    // (M_0 = M_{n-1} = 0), then express it as a Hermite spline with slopes at the knots.
    std::vector<double> h(n - 1), a(n, 0), b(n, 1), c(n, 0), d(n, 0);
    for (std::size_t k = 0; k + 1 < n; ++k) h[k] = x[k + 1] - x[k];
    for (std::size_t k = 1; k + 1 < n; ++k) {
        a[k] = h[k - 1];
        b[k] = 2 * (h[k - 1] + h[k]);
        c[k] = h[k];
        d[k] = 6 * ((y[k + 1] - y[k]) / h[k] - (y[k] - y[k - 1]) / h[k - 1]);
    }
    for (std::size_t k = 1; k < n; ++k) {  // Thomas algorithm
        double m = a[k] / b[k - 1];
        b[k] -= m * c[k - 1];
        d[k] -= m * d[k - 1];
    }
    std::vector<double> M(n);
    M[n - 1] = d[n - 1] / b[n - 1];
    for (std::size_t k = n - 1; k-- > 0;) M[k] = (d[k] - c[k] * M[k + 1]) / b[k];
    std::vector<double> slope(n);
    for (std::size_t k = 0; k + 1 < n; ++k)
        slope[k] = (y[k + 1] - y[k]) / h[k] - h[k] * (2 * M[k] + M[k + 1]) / 6;
    slope[n - 1] = (y[n - 1] - y[n - 2]) / h[n - 2] + h[n - 2] * (M[n - 2] + 2 * M[n - 1]) / 6;
    return evalHermite(x, y, slope, xs);
}

std::vector<double> interpolateAkima(const std::vector<double>& x, const std::vector<double>& y,
                                     const std::vector<double>& xs) {
    std::size_t n = x.size();
    if (n < 3) return constantOrLinear(x, y, xs);
    // Akima (1970): secant slopes m_k, extended by two on each side by linear extrapolation of
    // the slopes; knot slope = weighted mean of neighbouring secants with weights |m_{k+1}-m_k|.
    std::vector<double> m(n + 3);
    for (std::size_t k = 0; k + 1 < n; ++k) m[k + 2] = (y[k + 1] - y[k]) / (x[k + 1] - x[k]);
    m[1] = 2 * m[2] - m[3];
    m[0] = 2 * m[1] - m[2];
    m[n + 1] = 2 * m[n] - m[n - 1];
    m[n + 2] = 2 * m[n + 1] - m[n];
    std::vector<double> slope(n);
    for (std::size_t k = 0; k < n; ++k) {
        double w1 = std::abs(m[k + 3] - m[k + 2]), w2 = std::abs(m[k + 1] - m[k]);
        slope[k] = (w1 + w2 > 1e-300) ? (w1 * m[k + 1] + w2 * m[k + 2]) / (w1 + w2)
                                      : 0.5 * (m[k + 1] + m[k + 2]);
    }
    return evalHermite(x, y, slope, xs);
}

BackgroundModel::BackgroundModel(Box2I bbox, int nx, int ny, std::vector<double> values,
                                 std::vector<double> rms, BackgroundInterpolation interpolation)
    : _bbox(bbox),
      _nx(nx),
      _ny(ny),
      _values(std::move(values)),
      _rms(std::move(rms)),
      _interp(interpolation) {
    if (nx < 1 || ny < 1 || _values.size() != std::size_t(nx) * ny || _rms.size() != _values.size())
        throw badInput("BackgroundModel: grid " + std::to_string(nx) + "x" + std::to_string(ny) +
                       " does not match " + std::to_string(_values.size()) + " values");
}

// Cells have equal widths up to rounding: cell ix spans [edge(ix), edge(ix+1)).
int BackgroundModel::cellEdgeX(int ix) const {
    return _bbox.minX() + static_cast<int>((std::int64_t(ix) * _bbox.width()) / _nx);
}
int BackgroundModel::cellEdgeY(int iy) const {
    return _bbox.minY() + static_cast<int>((std::int64_t(iy) * _bbox.height()) / _ny);
}
double BackgroundModel::cellCenterX(int ix) const {
    return 0.5 * (cellEdgeX(ix) + cellEdgeX(ix + 1) - 1);
}
double BackgroundModel::cellCenterY(int iy) const {
    return 0.5 * (cellEdgeY(iy) + cellEdgeY(iy + 1) - 1);
}

void BackgroundModel::forEachRow(const std::vector<double>& grid, const Box2I& box,
                                 const std::function<void(int, const double*)>& f) const {
    if (box.empty()) return;
    auto interp =
        _interp == BackgroundInterpolation::Akima ? interpolateAkima : interpolateCubicSpline;
    std::vector<double> cx(_nx), cy(_ny), ys(box.height()), xs(box.width());
    for (int ix = 0; ix < _nx; ++ix) cx[ix] = cellCenterX(ix);
    for (int iy = 0; iy < _ny; ++iy) cy[iy] = cellCenterY(iy);
    for (int j = 0; j < box.height(); ++j) ys[j] = box.minY() + j;
    for (int i = 0; i < box.width(); ++i) xs[i] = box.minX() + i;
    // Separable: first along y for every cell column, then along x for every row.
    std::vector<std::vector<double>> columns(_nx);
    std::vector<double> col(_ny);
    for (int ix = 0; ix < _nx; ++ix) {
        for (int iy = 0; iy < _ny; ++iy) col[iy] = grid[std::size_t(iy) * _nx + ix];
        columns[ix] = interp(cy, col, ys);
    }
    std::vector<double> rowKnots(_nx);
    for (int j = 0; j < box.height(); ++j) {
        for (int ix = 0; ix < _nx; ++ix) rowKnots[ix] = columns[ix][j];
        f(j, interp(cx, rowKnots, xs).data());
    }
}

ImageF BackgroundModel::evaluate(const std::vector<double>& grid, const Box2I& box) const {
    ImageF out(box);
    forEachRow(grid, box, [&](int j, const double* row) {
        float* dst = out.row(j);
        for (int i = 0; i < box.width(); ++i) dst[i] = static_cast<float>(row[i]);
    });
    return out;
}

void BackgroundModel::subtractFrom(ImageView<float> image) const {
    const int w = image.width();
    forEachRow(_values, image.bbox(), [&](int j, const double* row) {
        float* im = image.row(j);
        for (int i = 0; i < w; ++i) im[i] -= static_cast<float>(row[i]);
    });
}

double BackgroundModel::meanValue() const {
    double s = 0;
    for (double v : _values) s += v;
    return _values.empty() ? 0.0 : s / _values.size();
}
double BackgroundModel::meanRms() const {
    double s = 0;
    for (double v : _rms) s += v;
    return _rms.empty() ? 0.0 : s / _rms.size();
}

Table BackgroundModel::toTable() const {
    Table t;
    auto& cix = t.addColumn<std::int32_t>("ix", "", "cell column index");
    auto& ciy = t.addColumn<std::int32_t>("iy", "", "cell row index");
    auto& cv = t.addColumn<double>("value", "count", "background level of the cell");
    auto& cr = t.addColumn<double>("rms", "count", "sky noise RMS of the cell (clipped sigma)");
    for (int iy = 0; iy < _ny; ++iy)
        for (int ix = 0; ix < _nx; ++ix) {
            cix.push_back(ix);
            ciy.push_back(iy);
            cv.push_back(_values[std::size_t(iy) * _nx + ix]);
            cr.push_back(_rms[std::size_t(iy) * _nx + ix]);
        }
    auto& md = t.metadata();
    md.set("BG_X0", _bbox.minX(), "bbox min x (parent pixel)");
    md.set("BG_Y0", _bbox.minY(), "bbox min y (parent pixel)");
    md.set("BG_W", _bbox.width(), "bbox width");
    md.set("BG_H", _bbox.height(), "bbox height");
    md.set("BG_NX", _nx, "cells along x");
    md.set("BG_NY", _ny, "cells along y");
    md.set("BG_INTERP", _interp == BackgroundInterpolation::Akima ? "akima" : "cubic_spline",
           "interpolation between cell centres");
    return t;
}

BackgroundModel BackgroundModel::fromTable(const Table& t) {
    const auto& md = t.metadata();
    Box2I box({int(md.get<std::int64_t>("BG_X0")), int(md.get<std::int64_t>("BG_Y0"))},
              {int(md.get<std::int64_t>("BG_W")), int(md.get<std::int64_t>("BG_H"))});
    int nx = int(md.get<std::int64_t>("BG_NX")), ny = int(md.get<std::int64_t>("BG_NY"));
    std::string method = md.get<std::string>("BG_INTERP");
    BackgroundInterpolation interp;
    if (method == "akima")
        interp = BackgroundInterpolation::Akima;
    else if (method == "cubic_spline")
        interp = BackgroundInterpolation::CubicSpline;
    else
        throw badInput("background table: unknown BG_INTERP '" + method + "'");
    const auto& ix = t.column<std::int32_t>("ix");
    const auto& iy = t.column<std::int32_t>("iy");
    const auto& v = t.column<double>("value");
    const auto& r = t.column<double>("rms");
    if (ix.size() != std::size_t(nx) * ny) throw badInput("background table: wrong number of rows");
    std::vector<double> values(ix.size()), rms(ix.size());
    for (std::size_t k = 0; k < ix.size(); ++k) {
        if (ix[k] < 0 || ix[k] >= nx || iy[k] < 0 || iy[k] >= ny)
            throw badInput("background table: cell index out of range");
        values[std::size_t(iy[k]) * nx + ix[k]] = v[k];
        rms[std::size_t(iy[k]) * nx + ix[k]] = r[k];
    }
    return BackgroundModel(box, nx, ny, std::move(values), std::move(rms), interp);
}

namespace {

// Fill bad cells (NaN) with the mean of the good cells at the smallest Euclidean cell distance
// (SExtractor `fillback` uses the nearest valid meshes in the same spirit).
void fillBadCells(std::vector<double>& g, int nx, int ny) {
    std::vector<double> src = g;
    for (int iy = 0; iy < ny; ++iy)
        for (int ix = 0; ix < nx; ++ix) {
            if (std::isfinite(src[std::size_t(iy) * nx + ix])) continue;
            double best = std::numeric_limits<double>::infinity(), sum = 0;
            int count = 0;
            for (int jy = 0; jy < ny; ++jy)
                for (int jx = 0; jx < nx; ++jx) {
                    double v = src[std::size_t(jy) * nx + jx];
                    if (!std::isfinite(v)) continue;
                    double d = std::hypot(jx - ix, jy - iy);
                    if (d < best - 1e-9) {
                        best = d;
                        sum = v;
                        count = 1;
                    } else if (d < best + 1e-9) {
                        sum += v;
                        ++count;
                    }
                }
            g[std::size_t(iy) * nx + ix] = sum / count;
        }
}

// Median filter over size × size cells. A plain median filter is biased wherever the grid has
// a gradient and the window is truncated (edges, corners: half a cell of gradient, i.e. tens of
// electrons for a typical twilight/moon gradient), so the filter works on the residuals from a
// least-squares plane fitted to the grid (one 3-MAD clipping pass so that the outlying cells the
// filter is meant to remove do not tilt the plane) and the plane is added back.
std::vector<double> medianFilter(const std::vector<double>& g, int nx, int ny, int size) {
    if (size <= 1) return g;
    auto fitPlane = [&](const std::vector<std::uint8_t>& use, double p[3]) {
        double a[3][3] = {}, b[3] = {};
        for (int iy = 0; iy < ny; ++iy)
            for (int ix = 0; ix < nx; ++ix) {
                std::size_t k = std::size_t(iy) * nx + ix;
                if (!use[k]) continue;
                double f[3] = {1.0, double(ix), double(iy)};
                for (int r = 0; r < 3; ++r) {
                    b[r] += f[r] * g[k];
                    for (int c = 0; c < 3; ++c) a[r][c] += f[r] * f[c];
                }
            }
        // Degenerate directions (a single row or column of cells) get no slope.
        if (nx == 1) {
            a[1][1] = 1;
            a[0][1] = a[1][0] = a[1][2] = a[2][1] = 0;
            b[1] = 0;
        }
        if (ny == 1) {
            a[2][2] = 1;
            a[0][2] = a[2][0] = a[1][2] = a[2][1] = 0;
            b[2] = 0;
        }
        // Gaussian elimination on the 3×3 normal equations.
        for (int c = 0; c < 3; ++c)
            for (int r = c + 1; r < 3; ++r) {
                double m = a[r][c] / a[c][c];
                for (int k = c; k < 3; ++k) a[r][k] -= m * a[c][k];
                b[r] -= m * b[c];
            }
        for (int r = 2; r >= 0; --r) {
            double v = b[r];
            for (int k = r + 1; k < 3; ++k) v -= a[r][k] * p[k];
            p[r] = v / a[r][r];
        }
    };
    std::vector<std::uint8_t> use(g.size(), 1);
    double p[3] = {0, 0, 0};
    if (g.size() >= 3) {
        fitPlane(use, p);
        std::vector<double> res(g.size()), absres;
        for (int iy = 0; iy < ny; ++iy)
            for (int ix = 0; ix < nx; ++ix) {
                std::size_t k = std::size_t(iy) * nx + ix;
                res[k] = g[k] - (p[0] + p[1] * ix + p[2] * iy);
                absres.push_back(std::abs(res[k]));
            }
        std::nth_element(absres.begin(), absres.begin() + absres.size() / 2, absres.end());
        double mad = absres[absres.size() / 2];
        std::size_t kept = 0;
        for (std::size_t k = 0; k < g.size(); ++k)
            kept += use[k] = std::abs(res[k]) <= 3 * 1.4826 * mad;
        if (kept >= 3 && mad > 0) fitPlane(use, p);
    }
    int h = size / 2;
    std::vector<double> out(g.size()), buf;
    for (int iy = 0; iy < ny; ++iy)
        for (int ix = 0; ix < nx; ++ix) {
            buf.clear();
            for (int jy = std::max(0, iy - h); jy <= std::min(ny - 1, iy + h); ++jy)
                for (int jx = std::max(0, ix - h); jx <= std::min(nx - 1, ix + h); ++jx)
                    buf.push_back(g[std::size_t(jy) * nx + jx] - (p[0] + p[1] * jx + p[2] * jy));
            auto mid = buf.begin() + buf.size() / 2;
            std::nth_element(buf.begin(), mid, buf.end());
            double med = *mid;
            if (buf.size() % 2 == 0) med = 0.5 * (med + *std::max_element(buf.begin(), mid));
            out[std::size_t(iy) * nx + ix] = med + p[0] + p[1] * ix + p[2] * iy;
        }
    return out;
}

}  // namespace

BackgroundModel estimateBackground(const MaskedImage& mi, const BackgroundConfig& config) {
    config.validate();
    const Box2I box = mi.bbox();
    if (box.empty()) throw badInput("estimateBackground: empty image");
    int nx = std::max(1, static_cast<int>(std::lround(double(box.width()) / config.binSize)));
    int ny = std::max(1, static_cast<int>(std::lround(double(box.height()) / config.binSize)));
    MaskPixel ignore = 0;
    for (const auto& p : config.ignoredMaskPlanes)
        if (mi.mask().planes().has(p)) ignore |= mi.mask().planes().bit(p);
    BackgroundModel geometry(box, nx, ny, std::vector<double>(std::size_t(nx) * ny),
                             std::vector<double>(std::size_t(nx) * ny), config.interpolation);
    std::vector<double> values(std::size_t(nx) * ny, NAN), rms(values.size(), NAN);
    std::vector<float> buf;
    bool anyGood = false;
    for (int iy = 0; iy < ny; ++iy)
        for (int ix = 0; ix < nx; ++ix) {
            int x0 = geometry.cellEdgeX(ix) - box.minX(),
                x1 = geometry.cellEdgeX(ix + 1) - box.minX();
            int y0 = geometry.cellEdgeY(iy) - box.minY(),
                y1 = geometry.cellEdgeY(iy + 1) - box.minY();
            buf.clear();
            for (int j = y0; j < y1; ++j) {
                const float* im = mi.image().row(j);
                const MaskPixel* mk = mi.mask().image().row(j);
                for (int i = x0; i < x1; ++i)
                    if (!(mk[i] & ignore) && std::isfinite(im[i])) buf.push_back(im[i]);
            }
            std::size_t total = std::size_t(x1 - x0) * (y1 - y0);
            if (buf.size() < 3 || buf.size() < config.minGoodFraction * total) continue;
            ClippedStats s = clippedStats(buf, config);
            values[std::size_t(iy) * nx + ix] = s.mode;
            rms[std::size_t(iy) * nx + ix] = s.sigma;
            anyGood = true;
        }
    if (!anyGood)
        throw badInput(
            "estimateBackground: no background cell has enough usable pixels (all masked or "
            "non-finite)");
    fillBadCells(values, nx, ny);
    fillBadCells(rms, nx, ny);
    values = medianFilter(values, nx, ny, config.filterSize);
    rms = medianFilter(rms, nx, ny, config.filterSize);
    return BackgroundModel(box, nx, ny, std::move(values), std::move(rms), config.interpolation);
}

void subtractBackground(MaskedImage& mi, const BackgroundModel& model) {
    model.subtractFrom(mi.image().view());
}

}  // namespace drp::calib
