#include "drp/sim/render.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <complex>
#include <numbers>

#include <boost/math/special_functions/gamma.hpp>
#include <unsupported/Eigen/FFT>

#include "drp/core/error.h"

namespace drp::sim {

double sersicB(double n) {
    if (!(n >= 0.2 && n <= 10))
        throw badInput("Sersic index " + std::to_string(n) + " outside [0.2, 10]");
    return boost::math::gamma_p_inv(2 * n, 0.5);
}

double sersicTruncation(double n) {
    const double b = sersicB(n);
    const double x = boost::math::gamma_q_inv(2 * n, 1e-3);  // encloses 99.9% of the flux
    return std::min(8.0, std::pow(x / b, n));
}

namespace {
// Shape matrix C (det 1) and its inverse for ellipticity (e1, e2).
struct Shape {
    double c00, c01, c11;  // C
    double i00, i01, i11;  // C⁻¹
};
Shape shapeMatrix(double e1, double e2) {
    const double e = std::hypot(e1, e2);
    if (!(e < 0.95)) throw badInput("ellipticity " + std::to_string(e) + " must be < 0.95");
    const double s = 1.0 / std::sqrt(1 - e * e);
    Shape m{(1 + e1) * s, e2 * s, (1 - e1) * s, 0, 0, 0};
    m.i00 = m.c11;
    m.i11 = m.c00;
    m.i01 = -m.c01;
    return m;
}

// One truncated Sérsic component, evaluated up to a constant factor.
struct SersicEval {
    Shape m;
    double n, invRe, invN, b, rt2;  // rt2: truncation radius² in units of r_e²
    double extentX, extentY;        // support half-extents, pixels
    SersicEval(const SersicComponent& c) : m(shapeMatrix(c.e1, c.e2)) {
        if (!(c.rEff > 0)) throw badInput("Sersic rEff must be > 0");
        n = c.n;
        invRe = 1.0 / c.rEff;
        invN = 1.0 / c.n;
        b = sersicB(c.n);
        const double t = sersicTruncation(c.n);
        rt2 = t * t;
        extentX = t * c.rEff * std::sqrt(m.c00);
        extentY = t * c.rEff * std::sqrt(m.c11);
    }
    double operator()(double dx, double dy) const {
        const double q = (m.i00 * dx * dx + 2 * m.i01 * dx * dy + m.i11 * dy * dy) * invRe * invRe;
        if (q > rt2) return 0.0;
        return std::exp(-b * (root(q) - 1.0));
    }
    // (r / r_e)^(1/n) = q^(1/2n). The survey's profiles are exponential disks (n = 1) and de
    // Vaucouleurs bulges (n = 4): square roots are several times cheaper than pow there, and
    // these evaluations are a large part of rendering a sky.
    double root(double q) const {
        if (n == 1.0) return std::sqrt(q);
        if (n == 4.0) return std::sqrt(std::sqrt(std::sqrt(q)));
        return std::pow(q, 0.5 * invN);
    }
};

constexpr std::array<double, 4> kGl4X = {-0.4305681557970263, -0.1699905217924281,
                                         0.1699905217924281, 0.4305681557970263};
constexpr std::array<double, 4> kGl4W = {0.1739274225687269, 0.3260725774312731, 0.3260725774312731,
                                         0.1739274225687269};

// Integral of f over the square [x0, x0+h] × [y0, y0+h] (offsets from the profile centre).
// Squares within one side of the centre are split 2×2 recursively: the Sérsic profile has a kink
// (n = 1) or cusp (n > 1) at r = 0 that fixed quadrature would integrate poorly.
double integrateCell(const SersicEval& f, double x0, double y0, double h, int depth) {
    const double dx = std::max({x0 - 0.0, 0.0 - (x0 + h), 0.0});
    const double dy = std::max({y0 - 0.0, 0.0 - (y0 + h), 0.0});
    if (depth > 0 && std::max(dx, dy) < h) {
        const double g = 0.5 * h;
        return integrateCell(f, x0, y0, g, depth - 1) + integrateCell(f, x0 + g, y0, g, depth - 1) +
               integrateCell(f, x0, y0 + g, g, depth - 1) +
               integrateCell(f, x0 + g, y0 + g, g, depth - 1);
    }
    if (std::max(dx, dy) > 4 * h) {
        // Far from the centre the profile is smooth on the cell scale: 2×2 Gauss–Legendre
        // (exact for bicubics) is enough; the normalisation keeps the total exact anyway.
        constexpr double g = 0.2113248654051871;  // (1 - 1/sqrt(3)) / 2
        return 0.25 * h * h *
               (f(x0 + g * h, y0 + g * h) + f(x0 + (1 - g) * h, y0 + g * h) +
                f(x0 + g * h, y0 + (1 - g) * h) + f(x0 + (1 - g) * h, y0 + (1 - g) * h));
    }
    double s = 0;
    for (int b = 0; b < 4; ++b) {
        double sb = 0;
        const double y = y0 + h * (0.5 + kGl4X[b]);
        for (int a = 0; a < 4; ++a) sb += kGl4W[a] * f(x0 + h * (0.5 + kGl4X[a]), y);
        s += kGl4W[b] * sb;
    }
    return s * h * h;
}

// Smallest multiple of 4 >= n whose only prime factors are 2, 3 and 5 (fast kissfft radices;
// a multiple of 4 takes kissfft's packed real-FFT path).
int niceFftSize(int n) {
    for (int m = std::max(4, (n + 3) / 4 * 4);; m += 4) {
        int r = m;
        for (int p : {2, 3, 5})
            while (r % p == 0) r /= p;
        if (r == 1) return m;
    }
}

using Complex = std::complex<double>;

// Real-to-complex 2-D FFT of an ny × nx row-major real array: rows first (half spectra of
// nx/2 + 1 bins), then the columns of those. Returns ny × (nx/2 + 1), row-major.
std::vector<Complex> rfft2(const std::vector<double>& data, int nx, int ny,
                           Eigen::FFT<double>& fft) {
    const int hx = nx / 2 + 1;
    std::vector<Complex> spec(std::size_t(ny) * hx), out;
    std::vector<double> row(nx);
    for (int j = 0; j < ny; ++j) {
        const auto first = data.begin() + std::ptrdiff_t(j) * nx;
        // The stamps hold a galaxy or a PSF kernel padded for linear convolution: many rows are
        // zero, and so is their transform (spec is zero-initialised).
        if (std::all_of(first, first + nx, [](double v) { return v == 0.0; })) continue;
        std::copy(first, first + nx, row.begin());
        fft.fwd(out, row);
        std::copy(out.begin(), out.begin() + hx, spec.begin() + std::ptrdiff_t(j) * hx);
    }
    std::vector<Complex> col(ny);
    for (int i = 0; i < hx; ++i) {
        for (int j = 0; j < ny; ++j) col[j] = spec[std::size_t(j) * hx + i];
        fft.fwd(out, col);
        for (int j = 0; j < ny; ++j) spec[std::size_t(j) * hx + i] = out[j];
    }
    return spec;
}

// Inverse of rfft2 (scaled by 1/(nx ny)); destroys `spec`.
std::vector<double> irfft2(std::vector<Complex>& spec, int nx, int ny, Eigen::FFT<double>& fft) {
    const int hx = nx / 2 + 1;
    std::vector<Complex> col(ny), out;
    for (int i = 0; i < hx; ++i) {
        for (int j = 0; j < ny; ++j) col[j] = spec[std::size_t(j) * hx + i];
        fft.inv(out, col);
        for (int j = 0; j < ny; ++j) spec[std::size_t(j) * hx + i] = out[j];
    }
    std::vector<double> data(std::size_t(nx) * ny), row;
    std::vector<Complex> half(hx);
    for (int j = 0; j < ny; ++j) {
        std::copy(spec.begin() + std::ptrdiff_t(j) * hx, spec.begin() + std::ptrdiff_t(j + 1) * hx,
                  half.begin());
        fft.inv(row, half, nx);
        std::copy(row.begin(), row.end(), data.begin() + std::ptrdiff_t(j) * nx);
    }
    return data;
}

// Oversampling factor: the PSF is point-sampled on the sub-grid, so the sub-grid step must
// resolve it; a step <= FWHM/4 keeps the sampled PSF's moments within 1e-4 of the continuum.
int oversampling(const TruncatedMoffat& psf) {
    return std::clamp(static_cast<int>(std::ceil(8.0 / psf.fwhm())), 2, 4);
}

}  // namespace

Quadrupole sersicMoments(const SersicComponent& c) {
    const double b = sersicB(c.n), t = sersicTruncation(c.n);
    const double x = b * std::pow(t, 1.0 / c.n);
    const double ratio = boost::math::tgamma_ratio(4 * c.n, 2 * c.n) *
                         boost::math::gamma_p(4 * c.n, x) / boost::math::gamma_p(2 * c.n, x);
    const double halfR2 = 0.5 * c.rEff * c.rEff * std::pow(b, -2 * c.n) * ratio;
    const Shape m = shapeMatrix(c.e1, c.e2);
    return {halfR2 * m.c00, halfR2 * m.c11, halfR2 * m.c01};
}

double addStar(ImageView<double> image, const TruncatedMoffat& psf, Point2D center, double flux) {
    const Box2I box = supportBox(psf, center);
    if (!box.overlaps(image.bbox())) return 0.0;
    Image<double> stamp = integrateOverPixels(psf, center, box);
    double sum = 0;
    for (double v : stamp.pixels()) sum += v;
    const double scale = flux / sum;
    const Box2I ov = box.clippedTo(image.bbox());
    double added = 0;
    for (int y = ov.minY(); y <= ov.maxY(); ++y) {
        const double* s = stamp.row(y - box.minY()) - box.minX();
        double* d = image.row(y - image.bbox().minY()) - image.bbox().minX();
        for (int x = ov.minX(); x <= ov.maxX(); ++x) {
            const double v = s[x] * scale;
            d[x] += v;
            added += v;
        }
    }
    return added;
}

Image<double> renderGalaxy(const std::vector<SersicComponent>& components, Point2D center,
                           const TruncatedMoffat& psf, int oversample) {
    if (components.empty()) throw badInput("renderGalaxy: no components");
    std::vector<SersicEval> evals;
    double gx = 0, gy = 0;
    for (const auto& c : components) {
        evals.emplace_back(c);
        gx = std::max(gx, evals.back().extentX);
        gy = std::max(gy, evals.back().extentY);
    }
    const int n = oversample > 0 ? oversample : oversampling(psf);
    const double h = 1.0 / n;
    // Stamp: galaxy support + PSF support + one pixel, centred on the nearest pixel.
    const int hx = static_cast<int>(std::ceil(gx + psf.extentX())) + 2;
    const int hy = static_cast<int>(std::ceil(gy + psf.extentY())) + 2;
    const Point2I c0 = center.nearestPixel();
    const Box2I stamp({c0.x - hx, c0.y - hy}, Extent2I{2 * hx + 1, 2 * hy + 1});
    const int nx = niceFftSize(stamp.width() * n), ny = niceFftSize(stamp.height() * n);
    // Output sub-cell (a, b) covers x in [e + a h, e + (a+1) h), e = stamp.minX() - 0.5 (pixel
    // edges). The galaxy is integrated over sub-cells of the same size but shifted by (δx, δy),
    // |δ| <= h/2, so that the profile centre is the centre of one of them: the cusp then sits
    // symmetrically in its cell and the discretised galaxy keeps the exact centroid. The shift is
    // undone by sampling the PSF at (k h - δ), so O_a = Σ G_a' P((a - a') h - δ) is the image on
    // the pixel-aligned sub-grid.
    const double ax = std::round((center.x - (stamp.minX() - 0.5)) / h - 0.5);
    const double ay = std::round((center.y - (stamp.minY() - 0.5)) / h - 0.5);
    const double dxShift = center.x - (stamp.minX() - 0.5 + (ax + 0.5) * h);
    const double dyShift = center.y - (stamp.minY() - 0.5 + (ay + 0.5) * h);
    // Lower-left corner of galaxy cell (0, 0) relative to the galaxy centre.
    const double x0 = -(ax + 0.5) * h, y0 = -(ay + 0.5) * h;

    std::vector<double> gal(std::size_t(nx) * ny, 0.0);
    std::vector<double> cells;
    for (std::size_t k = 0; k < evals.size(); ++k) {
        const auto& f = evals[k];
        const int a0 = std::max(0, static_cast<int>(std::floor((-f.extentX - x0) / h)) - 1);
        const int a1 =
            std::min(stamp.width() * n - 1, static_cast<int>(std::ceil((f.extentX - x0) / h)) + 1);
        const int b0 = std::max(0, static_cast<int>(std::floor((-f.extentY - y0) / h)) - 1);
        const int b1 =
            std::min(stamp.height() * n - 1, static_cast<int>(std::ceil((f.extentY - y0) / h)) + 1);
        const int w = a1 - a0 + 1;
        cells.assign(std::size_t(w) * (b1 - b0 + 1), 0.0);
        const int depth = components[k].n >= 0.9 ? 7 : 2;
        double sum = 0;
        for (int b = b0; b <= b1; ++b)
            for (int a = a0; a <= a1; ++a) {
                const double v = integrateCell(f, x0 + a * h, y0 + b * h, h, depth);
                cells[std::size_t(b - b0) * w + (a - a0)] = v;
                sum += v;
            }
        if (!(sum > 0))
            throw Error(error_class::kNumerical, "renderGalaxy: component integrates to zero");
        const double scale = components[k].flux / sum;
        for (int b = b0; b <= b1; ++b)
            for (int a = a0; a <= a1; ++a)
                gal[std::size_t(b) * nx + a] += cells[std::size_t(b - b0) * w + (a - a0)] * scale;
    }

    // PSF point-sampled at sub-cell offsets (k h), wrapped around the origin, unit sum.
    std::vector<double> ker(std::size_t(nx) * ny, 0.0);
    const int kx = static_cast<int>(std::ceil(psf.extentX() / h)) + 1;
    const int ky = static_cast<int>(std::ceil(psf.extentY() / h)) + 1;
    if (2 * kx + 1 > nx || 2 * ky + 1 > ny)
        throw logicError("renderGalaxy: FFT grid smaller than the PSF");
    double psum = 0;
    for (int j = -ky; j <= ky; ++j)
        for (int i = -kx; i <= kx; ++i) {
            const double v = psf(i * h - dxShift, j * h - dyShift);
            ker[std::size_t((j + ny) % ny) * nx + (i + nx) % nx] = v;
            psum += v;
        }
    for (auto& v : ker) v /= psum;

    Eigen::FFT<double> fft;
    fft.SetFlag(Eigen::FFT<double>::HalfSpectrum);
    std::vector<Complex> gs = rfft2(gal, nx, ny, fft);
    const std::vector<Complex> ks = rfft2(ker, nx, ny, fft);
    for (std::size_t i = 0; i < gs.size(); ++i) gs[i] *= ks[i];
    gal = irfft2(gs, nx, ny, fft);

    Image<double> out(stamp, 0.0);
    for (int j = 0; j < stamp.height(); ++j)
        for (int i = 0; i < stamp.width(); ++i) {
            double s = 0;
            for (int b = 0; b < n; ++b)
                for (int a = 0; a < n; ++a) s += gal[std::size_t(j * n + b) * nx + (i * n + a)];
            out(i, j) = s;
        }
    return out;
}

double addGalaxy(ImageView<double> image, const std::vector<SersicComponent>& components,
                 Point2D center, const TruncatedMoffat& psf) {
    Image<double> stamp = renderGalaxy(components, center, psf);
    const Box2I ov = stamp.bbox().clippedTo(image.bbox());
    if (ov.empty()) return 0.0;
    auto s = stamp.subview(ov);
    auto d = image.subview(ov);
    double added = 0;
    for (int j = 0; j < ov.height(); ++j)
        for (int i = 0; i < ov.width(); ++i) {
            d(i, j) += s(i, j);
            added += s(i, j);
        }
    return added;
}

}  // namespace drp::sim
