#include "drp/coadd/lanczos.h"

#include <cmath>
#include <numbers>

#include "drp/core/error.h"

namespace drp::coadd {

namespace {
double sinc(double x) {
    if (std::abs(x) < 1e-12) return 1.0;
    double px = std::numbers::pi * x;
    return std::sin(px) / px;
}
}  // namespace

double lanczos(double x, int order) {
    if (std::abs(x) >= order) return 0.0;
    return sinc(x) * sinc(x / order);
}

LanczosTable::LanczosTable(int order, int binsPerPixel)
    : _order(order), _bins(binsPerPixel), _quads((2 * order + 3) / 4) {
    if (order < 2 || order > 8)
        throw configError("LanczosTable: order must be in [2, 8], got " + std::to_string(order));
    if (binsPerPixel < 16) throw configError("LanczosTable: binsPerPixel must be >= 16");
    const int n = taps();
    _table.resize(static_cast<std::size_t>(_bins + 1) * n);
    _squared.resize(_table.size());
    _sumSquared.assign(_bins + 1, 0.0);
    _tableF.resize(_table.size());
    _squaredF.resize(_table.size());
    _packed.assign(static_cast<std::size_t>(_bins + 1) * 4 * _quads, 0.f);
    _packedSquared.assign(_packed.size(), 0.f);
    for (int k = 0; k <= _bins; ++k) {
        double f = static_cast<double>(k) / _bins;
        double* w = _table.data() + static_cast<std::size_t>(k) * n;
        double sum = 0;
        for (int t = 0; t < n; ++t) {
            w[t] = lanczos((t + firstTap()) - f, order);
            sum += w[t];
        }
        for (int t = 0; t < n; ++t) {
            w[t] /= sum;
            _squared[static_cast<std::size_t>(k) * n + t] = w[t] * w[t];
            _sumSquared[k] += w[t] * w[t];
            _tableF[static_cast<std::size_t>(k) * n + t] = static_cast<float>(w[t]);
            _squaredF[static_cast<std::size_t>(k) * n + t] = static_cast<float>(w[t] * w[t]);
        }
        // Packed quads: the last one ends at the last tap; taps already covered stay zero.
        float* p = _packed.data() + static_cast<std::size_t>(k) * 4 * _quads;
        float* p2 = _packedSquared.data() + static_cast<std::size_t>(k) * 4 * _quads;
        for (int q = 0, covered = 0; q < _quads; ++q) {
            const int off = quadOffset(q);
            for (int u = 0; u < 4; ++u)
                if (off + u >= covered) {
                    p[4 * q + u] = static_cast<float>(w[off + u]);
                    p2[4 * q + u] = static_cast<float>(w[off + u] * w[off + u]);
                }
            covered = off + 4;
        }
    }
}

const LanczosTable& lanczos3Table() {
    static const LanczosTable table(3, 1024);
    return table;
}

double interpolateZeroPadded(ConstImageView<double> image, double x, double y,
                             const LanczosTable& table) {
    const double ax = x - image.xy0().x, ay = y - image.xy0().y;
    const int ix = static_cast<int>(std::floor(ax)), iy = static_cast<int>(std::floor(ay));
    const double* wx = table.weights(ax - ix);
    const double* wy = table.weights(ay - iy);
    const int n = table.taps(), t0 = table.firstTap();
    double sum = 0;
    for (int v = 0; v < n; ++v) {
        int j = iy + t0 + v;
        if (j < 0 || j >= image.height()) continue;
        const double* row = image.row(j);
        double s = 0;
        for (int u = 0; u < n; ++u) {
            int i = ix + t0 + u;
            if (i < 0 || i >= image.width()) continue;
            s += wx[u] * row[i];
        }
        sum += wy[v] * s;
    }
    return sum;
}

}  // namespace drp::coadd
