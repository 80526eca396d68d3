// Synthetic inputs for the coadd tests: analytic PSFs and calibrated exposures with known stars,
// drawn through known pixel mappings, plus artefacts (cosmic rays, satellite trails).
#pragma once

#include <cmath>
#include <memory>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include <Eigen/LU>

#include "drp/coadd/pixel_transform.h"
#include "drp/core/exposure.h"
#include "drp/core/psf.h"

namespace drp::coadd::testing {

/// Elliptical Gaussian or Moffat PSF sampled at pixel centres, normalised to unit sum over its
/// stamp (radius `radius`). Spatially constant.
class AnalyticPsf final : public Psf {
  public:
    enum class Kind { kGaussian, kMoffat };
    AnalyticPsf(Kind kind, double fwhm, double e1, double e2, int radius, double beta = 3.0)
        : _kind(kind), _radius(radius), _beta(beta) {
        // Gaussian-equivalent second moments with trace T and ellipticity (e1, e2); the Moffat
        // uses the same metric with core width alpha.
        double sigma = fwhm / (2 * std::sqrt(2 * std::log(2.0)));
        double t = 2 * sigma * sigma;
        Quadrupole q = Quadrupole::fromTraceEllipticity(t, e1, e2);
        // Normalise so the determinant radius equals sigma (ellipticity keeps the area).
        double scale = sigma * sigma / std::sqrt(q.determinant());
        Eigen::Matrix2d c;
        c << q.ixx * scale, q.ixy * scale, q.ixy * scale, q.iyy * scale;
        _inv = c.inverse();
        if (kind == Kind::kMoffat) {
            // FWHM = 2 alpha sqrt(2^{1/beta} - 1); express in units of the Gaussian sigma metric.
            double alpha = fwhm / (2 * std::sqrt(std::pow(2.0, 1.0 / beta) - 1));
            _alpha2OverSigma2 = alpha * alpha / (sigma * sigma);
        }
    }
    double profile(double dx, double dy) const {
        double r2 =
            dx * (_inv(0, 0) * dx + _inv(0, 1) * dy) + dy * (_inv(1, 0) * dx + _inv(1, 1) * dy);
        if (_kind == Kind::kGaussian) return std::exp(-0.5 * r2);
        return std::pow(1 + r2 / _alpha2OverSigma2, -_beta);
    }
    Image<double> computeKernelImage(Point2D) const override {
        Image<double> k(Box2I({-_radius, -_radius}, {2 * _radius + 1, 2 * _radius + 1}));
        fill(k, {0, 0});
        return k;
    }
    Image<double> computeImage(Point2D p) const override {
        Point2I c = p.nearestPixel();
        Image<double> k(Box2I({c.x - _radius, c.y - _radius}, {2 * _radius + 1, 2 * _radius + 1}));
        fill(k, p);
        return k;
    }
    int kernelRadius() const override { return _radius; }
    std::string typeName() const override { return "analytic"; }

  private:
    void fill(Image<double>& k, Point2D c) const {
        double s = 0;
        for (int j = 0; j < k.height(); ++j)
            for (int i = 0; i < k.width(); ++i) {
                // 3×3 sub-pixel integration: pixel-convolved profile.
                double v = 0;
                for (int b = -1; b <= 1; ++b)
                    for (int a = -1; a <= 1; ++a)
                        v += profile(k.xy0().x + i + a / 3.0 - c.x, k.xy0().y + j + b / 3.0 - c.y);
                k(i, j) = v;
                s += v;
            }
        for (double& v : k.pixels()) v /= s;
    }
    Kind _kind;
    int _radius;
    double _beta;
    Eigen::Matrix2d _inv;
    double _alpha2OverSigma2 = 1;
};

struct Star final {
    Point2D target;  ///< position on the target (patch) grid
    double flux;     ///< nJy
};

struct InputSpec final {
    std::int64_t visit = 0;
    Box2I box{{0, 0}, {300, 300}};  ///< source bbox
    double rotationDeg = 0;         ///< rotation of the source grid relative to the target
    double scale = 1.0;             ///< source pixels per target pixel
    Eigen::Vector2d sourceOfTargetOrigin{0, 0};
    std::shared_ptr<const Psf> psf;
    double nJyPerCount = 1.0;
    double skySigma = 10.0;  ///< counts
    double gain = 1.0;       ///< electrons/count for the star shot-noise variance
    unsigned seed = 1;
};

/// target -> source affine map of a spec.
inline std::shared_ptr<const AffineTransform> makeTransform(const InputSpec& s) {
    double th = s.rotationDeg * std::numbers::pi / 180;
    Eigen::Matrix2d m;
    m << std::cos(th), -std::sin(th), std::sin(th), std::cos(th);
    return std::make_shared<AffineTransform>(s.scale * m, s.sourceOfTargetOrigin);
}

/// Add a star of `counts` at source position `p`.
inline void addStar(Exposure& e, const Psf& psf, Point2D p, double counts) {
    Image<double> img = psf.computeImage(p);
    for (int j = 0; j < img.height(); ++j)
        for (int i = 0; i < img.width(); ++i) {
            Point2I q{img.xy0().x + i, img.xy0().y + j};
            if (e.bbox().contains(q)) e.image().at(q) += static_cast<float>(counts * img(i, j));
        }
}

/// An exposure with the given stars (and per-star flux multipliers, e.g. for variables),
/// Gaussian noise with variance sky² + star/gain, and a consistent variance plane.
inline Exposure makeExposure(const InputSpec& s, const std::vector<Star>& stars,
                             const std::vector<double>& fluxFactor = {}, bool noise = true) {
    Exposure e(s.box);
    e.setPsf(s.psf);
    e.setPhotoCalib(PhotoCalib{s.nJyPerCount, 0});
    e.visitInfo().visit = s.visit;
    e.visitInfo().detector = 0;
    auto t = makeTransform(s);
    for (std::size_t k = 0; k < stars.size(); ++k) {
        double f = fluxFactor.empty() ? 1.0 : fluxFactor[k];
        // Source counts: the warp conserves flux (nJy = counts × nJyPerCount).
        addStar(e, *s.psf, t->apply(stars[k].target), f * stars[k].flux / s.nJyPerCount);
    }
    std::mt19937_64 rng(s.seed);
    std::normal_distribution<double> g(0, 1);
    for (int j = 0; j < s.box.height(); ++j)
        for (int i = 0; i < s.box.width(); ++i) {
            double var = s.skySigma * s.skySigma + std::max(0.0, double(e.image()(i, j))) / s.gain;
            e.variance()(i, j) = static_cast<float>(var);
            if (noise) e.image()(i, j) += static_cast<float>(std::sqrt(var) * g(rng));
        }
    return e;
}

/// Cosmic rays: `n` hits of 1-3 pixels with amplitudes 30-300 σ_sky, not flagged (the coadd must
/// reject them), at least `avoidRadius` px from the `avoid` positions (source coordinates).
/// Returns the hit pixels (source coordinates).
inline std::vector<Point2I> addCosmicRays(Exposure& e, int n, double skySigma, unsigned seed,
                                          const std::vector<Point2D>& avoid = {},
                                          double avoidRadius = 0) {
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<int> ux(e.bbox().minX() + 5, e.bbox().maxX() - 5),
        uy(e.bbox().minY() + 5, e.bbox().maxY() - 5), len(1, 3);
    std::uniform_real_distribution<double> amp(30, 300);
    std::vector<Point2I> hits;
    for (int k = 0; k < n; ++k) {
        Point2I p{ux(rng), uy(rng)};
        int l = len(rng);
        bool near = false;
        for (const Point2D& a : avoid)
            near = near || std::hypot(p.x - a.x, p.y - a.y) < avoidRadius;
        if (near) {
            --k;
            continue;
        }
        for (int d = 0; d < l; ++d) {
            Point2I q{p.x + d, p.y + (d == 2 ? 1 : 0)};
            e.image().at(q) += static_cast<float>(amp(rng) * skySigma);
            hits.push_back(q);
        }
    }
    return hits;
}

/// A satellite trail: a line through `a` and `b` (source pixels) with a Gaussian cross-section
/// of sigma `width` px and peak `peak` counts, not flagged.
inline void addTrail(Exposure& e, Point2D a, Point2D b, double peak, double width) {
    double dx = b.x - a.x, dy = b.y - a.y, len = std::hypot(dx, dy);
    double nx = -dy / len, ny = dx / len;
    for (int j = 0; j < e.bbox().height(); ++j)
        for (int i = 0; i < e.bbox().width(); ++i) {
            double d = (e.bbox().minX() + i - a.x) * nx + (e.bbox().minY() + j - a.y) * ny;
            if (std::abs(d) < 6 * width)
                e.image()(i, j) +=
                    static_cast<float>(peak * std::exp(-0.5 * d * d / (width * width)));
        }
}

}  // namespace drp::coadd::testing
