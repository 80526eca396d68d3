// An independent "truth" renderer for multifit tests: exact (truncated) Sérsic profiles convolved
// with Moffat PSFs by FFT on a 5× oversampled grid, binned to pixels. It shares nothing with the
// Gaussian-mixture machinery being tested (no inverse crime).
#pragma once

#include <cmath>
#include <complex>
#include <memory>
#include <numbers>
#include <random>
#include <vector>

#include <Eigen/Dense>
#include <unsupported/Eigen/FFT>

#include "drp/core/image.h"
#include "drp/core/psf.h"
#include "drp/multifit/profiles.h"

namespace drp::multifit::testing {

struct MoffatShape {
    double fwhm = 4.0;  // pixels
    double beta = 3.5;
    double e1 = 0, e2 = 0;
    /// Value per unit area (integral 1) at pixel offset (dx, dy).
    double operator()(double dx, double dy) const {
        double e = std::hypot(e1, e2);
        // unit-determinant metric from the distortion e (see profiles.h / core/ellipse.h)
        double s = std::sqrt(1 - e * e);
        double mxx = (1 + e1) / s, myy = (1 - e1) / s, mxy = e2 / s;  // M; we need M⁻¹
        double ixx = myy, iyy = mxx, ixy = -mxy;                      // det M = 1
        double rho2 = ixx * dx * dx + 2 * ixy * dx * dy + iyy * dy * dy;
        double alpha = fwhm / (2 * std::sqrt(std::pow(2.0, 1 / beta) - 1));
        return (beta - 1) / (std::numbers::pi * alpha * alpha) *
               std::pow(1 + rho2 / (alpha * alpha), -beta);
    }
};

/// The pixelized Moffat centred at a parent position, as a drp::Psf (perfect PSF knowledge).
class MoffatPsf final : public Psf {
  public:
    explicit MoffatPsf(MoffatShape s, int radius = 15) : _s(s), _r(radius) {}
    Image<double> computeKernelImage(Point2D) const override { return render({0.0, 0.0}); }
    Image<double> computeImage(Point2D p) const override { return render(p); }
    int kernelRadius() const override { return _r; }
    std::string typeName() const override { return "test-moffat"; }

  private:
    Image<double> render(Point2D p) const {
        Point2I c = p.nearestPixel();
        Image<double> img(Box2I({c.x - _r, c.y - _r}, {2 * _r + 1, 2 * _r + 1}), 0.0);
        const int os = 5;
        for (int j = 0; j < img.height(); ++j)
            for (int i = 0; i < img.width(); ++i) {
                double s = 0;
                for (int b = 0; b < os; ++b)
                    for (int a = 0; a < os; ++a) {
                        double x = img.xy0().x + i - 0.5 + (a + 0.5) / os - p.x;
                        double y = img.xy0().y + j - 0.5 + (b + 0.5) / os - p.y;
                        s += _s(x, y);
                    }
                img(i, j) = s / (os * os);
            }
        return img;
    }
    MoffatShape _s;
    int _r;
};

struct TrueGalaxy {
    double n = 1;       // Sérsic index (0 => point source)
    double rEff = 0.5;  // arcsec, sqrt(ab)
    double e1 = 0, e2 = 0;
    double u = 0, v = 0;  // arcsec offset of the centre
};

/// Noise-free image (flux 1 nJy × countsPerNJy) of a galaxy on `box`, for an epoch with affine
/// map `a` (pixels per arcsec) and reference pixel `ref`.
inline ImageD renderTrue(const TrueGalaxy& g, const MoffatShape& psf, const Eigen::Matrix2d& a,
                         const Eigen::Vector2d& ref, Box2I box, double countsPerNJy) {
    if (g.n <= 0) {
        // Point source: the pixelized PSF at the centre, scaled.
        MoffatPsf star(psf, std::max(box.width(), box.height()) / 2 + 2);
        const Eigen::Vector2d c = ref + a * Eigen::Vector2d(g.u, g.v);
        ImageD img = star.computeImage(Point2D(c.x(), c.y()));
        ImageD out(box, 0.0);
        copyOverlap<double, double>(img.cview(), out.view());
        for (double& v : out.pixels()) v *= countsPerNJy;
        return out;
    }
    const int os = 4;
    const int pad = 8;
    int n = 1;
    while (n < (std::max(box.width(), box.height()) + 2 * pad) * os) n *= 2;
    const double x0 = box.minX() - pad - 0.5,
                 y0 = box.minY() - pad - 0.5;  // fine grid origin (edge)
    const Eigen::Vector2d centre = ref + a * Eigen::Vector2d(g.u, g.v);
    const Eigen::Matrix2d ainv = a.inverse();
    const double jac = std::abs(ainv.determinant());  // arcsec² per pixel²
    std::vector<std::complex<double>> gal(n * n), ker(n * n);
    double bn = g.n > 0 ? sersicB(g.n) : 0;
    double norm = 0;
    // The survey's convention (the simulator's, sim/include/drp/sim/render.h): the profile is cut
    // at r_t = min(8 r_e, the 99.9% radius) and `flux` is the flux of the truncated profile.
    const double rt = g.n > 0 ? sersicTruncation(g.n) : 0;
    if (g.n > 0) {
        // I(r) = I_e exp(−b[(r/re)^{1/n} − 1]); total flux = 2π n re² I_e e^b b^{−2n} Γ(2n),
        // times the enclosed fraction at r_t when truncated.
        norm =
            1.0 / (2 * std::numbers::pi * g.n * g.rEff * g.rEff * std::exp(bn) *
                   std::pow(bn, -2 * g.n) * std::tgamma(2 * g.n) * sersicEnclosedFraction(g.n, rt));
    }
    double e = std::hypot(g.e1, g.e2), s = std::sqrt(1 - e * e);
    double ixx = (1 - g.e1) / s, iyy = (1 + g.e1) / s, ixy = -g.e2 / s;  // M⁻¹
    auto profile = [&](double px, double py) {  // surface brightness per pixel² at pixel (px, py)
        Eigen::Vector2d uv = ainv * (Eigen::Vector2d(px, py) - centre);
        double r = std::sqrt(std::max(
            0.0, ixx * uv.x() * uv.x() + 2 * ixy * uv.x() * uv.y() + iyy * uv.y() * uv.y()));
        if (r > rt * g.rEff) return 0.0;
        return norm * std::exp(-bn * (std::pow(r / g.rEff, 1 / g.n) - 1)) * jac;
    };
    const double cell = 1.0 / os;
    for (int j = 0; j < n; ++j)
        for (int i = 0; i < n; ++i) {
            double px = x0 + (i + 0.5) * cell, py = y0 + (j + 0.5) * cell;
            double val;
            if (g.n <= 0) {
                val = 0;
            } else if (std::hypot(px - centre.x(), py - centre.y()) < 3 * cell) {
                // Sub-sample cells near the centre (the dev cusp).
                const int ss = 16;
                val = 0;
                for (int b = 0; b < ss; ++b)
                    for (int aa = 0; aa < ss; ++aa)
                        val += profile(px + ((aa + 0.5) / ss - 0.5) * cell,
                                       py + ((b + 0.5) / ss - 0.5) * cell);
                val *= cell * cell / (ss * ss);
            } else {
                val = profile(px, py) * cell * cell;
            }
            gal[j * n + i] = val;
            int di = i < n / 2 ? i : i - n, dj = j < n / 2 ? j : j - n;
            ker[j * n + i] = psf(di * cell, dj * cell) * cell * cell;
        }
    if (g.n <= 0) {
        // Point source: place unit flux at the centre by shifting the kernel analytically.
        for (int j = 0; j < n; ++j)
            for (int i = 0; i < n; ++i) {
                double px = x0 + (i + 0.5) * cell, py = y0 + (j + 0.5) * cell;
                gal[j * n + i] = psf(px - centre.x(), py - centre.y()) * cell * cell;
            }
    } else {
        Eigen::FFT<double> fft;
        auto fft2 = [&](std::vector<std::complex<double>>& d, bool inverse) {
            std::vector<std::complex<double>> in(n), out(n);
            for (int pass = 0; pass < 2; ++pass)
                for (int r = 0; r < n; ++r) {
                    for (int k = 0; k < n; ++k) in[k] = pass == 0 ? d[r * n + k] : d[k * n + r];
                    if (inverse)
                        fft.inv(out, in);
                    else
                        fft.fwd(out, in);
                    for (int k = 0; k < n; ++k) (pass == 0 ? d[r * n + k] : d[k * n + r]) = out[k];
                }
        };
        fft2(gal, false);
        fft2(ker, false);
        for (int k = 0; k < n * n; ++k) gal[k] *= ker[k];
        fft2(gal, true);
    }
    ImageD out(box, 0.0);
    for (int j = 0; j < box.height(); ++j)
        for (int i = 0; i < box.width(); ++i) {
            double sum = 0;
            for (int b = 0; b < os; ++b)
                for (int aa = 0; aa < os; ++aa)
                    sum += gal[((j + pad) * os + b) * n + (i + pad) * os + aa].real();
            out(i, j) = sum * countsPerNJy;
        }
    return out;
}

}  // namespace drp::multifit::testing
