// PROFILE FLOORS: the Cramér–Rao bound of a blended object's per-band fluxes when the objects are
// the simulator's own (bulge + disk Sérsic galaxies with per-band bulge fractions, point-source
// stars), shared by deblend_pairs_dump (--profile-floor) and profile_floor_mc (its check against
// maximum-likelihood fits on noise realisations).
//
// A scene is a window of coadd pixels with a constant variance per band (background-limited),
// one Moffat PSF per band and the objects within reach of a child (objects[0]). Each object is
// rendered exactly as the simulator renders it (sim::galaxyComponents, sim::addGalaxy,
// sim::addStar). The parameters, per object, are fitted at once (Fisher matrix F = Σ_b Σ_pixels
// ∂m/∂θ_i ∂m/∂θ_j / V_b; derivatives of the centre, size and ellipticity by central differences
// of rendered images):
//   variant 0, shape known: per-band flux and centre;
//   variant 1, + a size scale λ shared by the bands and both components (r_e → λ r_e);
//   variant 2, + an ellipticity change (δe1, δe2) of both components;
//   variant 3, + bulge and disk fluxes free in every band (an unknown colour gradient) instead of
//              the per-band total at the truth's bulge fraction.
// Stars have flux and centre in every variant. The result is σ(F_b) / F_b of objects[0] per
// variant and band, and the σ (mag) of its colours b − (b+1) with the bands' covariance. No
// unbiased estimator of those fluxes that must also measure what the variant leaves free does
// better (a biased one, e.g. with a prior on sizes, can).
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include <Eigen/Dense>

#include "drp/core/image.h"
#include "drp/sim/moffat_psf.h"
#include "drp/sim/observe.h"
#include "drp/sim/render.h"

namespace drp::deblend::testing {

inline constexpr int kProfileVariants = 4;

struct FloorObject {
    sim::TrueObject object;
    Point2D pixel;             ///< true centre on the window's pixel grid
    std::vector<double> flux;  ///< per scene band, nJy (the truth's, in sim band order)
    Eigen::Matrix2d jacobian;  ///< sim::localJacobian of the pixel grid at the object
};

struct FloorScene {
    std::vector<FloorObject> objects;       ///< [0]: the object whose flux floor is wanted
    std::vector<int> simBands;              ///< sim band index of each scene band
    std::vector<sim::TruncatedMoffat> psf;  ///< per scene band
    std::vector<double> variance;           ///< per scene band, nJy² per pixel
    Box2I window;
};

/// A change of an object's parameters from the truth, for rendering.
struct Perturbation {
    double dx = 0, dy = 0;  ///< centre, pixels
    double lnScale = 0;     ///< ln λ: both components' r_e × λ
    double de1 = 0, de2 = 0;
    int only = 0;  ///< 0: the whole object, 1: the bulge alone, 2: the disk alone
};

/// Object `i` of the scene in band `b` at its truth fluxes, perturbed by `p`, on the window.
inline ImageD renderFloorObject(const FloorScene& s, std::size_t i, std::size_t b,
                                const Perturbation& p = {}) {
    const FloorObject& o = s.objects[i];
    ImageD im(s.window, 0.0);
    const Point2D at{o.pixel.x + p.dx, o.pixel.y + p.dy};
    if (o.object.isStar) {
        if (p.only == 0) sim::addStar(im.view(), s.psf[b], at, o.flux[b]);
        return im;
    }
    const int sb = s.simBands[b];
    const std::vector<sim::SersicComponent> comps =
        sim::galaxyComponents(o.object, sb, 1.0, o.jacobian);
    const bool hasBulge = o.object.bulgeFlux[std::size_t(sb)] > 0;  // then comps[0] is the bulge
    std::vector<sim::SersicComponent> keep;
    for (std::size_t k = 0; k < comps.size(); ++k) {
        const bool isBulge = hasBulge && k == 0;
        if ((p.only == 1 && !isBulge) || (p.only == 2 && isBulge)) continue;
        sim::SersicComponent c = comps[k];
        c.rEff *= std::exp(p.lnScale);
        c.e1 += p.de1;
        c.e2 += p.de2;
        keep.push_back(c);
    }
    if (!keep.empty()) sim::addGalaxy(im.view(), keep, at, s.psf[b]);
    return im;
}

/// Finite-difference steps of the derivatives (pixels, ln λ, ellipticity).
inline constexpr double kFloorStepCentre = 0.1, kFloorStepScale = 0.02,
                        kFloorStepEllipticity = 0.02;

/// One parameter of one object: kind 0 flux_b (the object's shape), 1 bulge flux_b, 2 disk flux_b,
/// 3 x, 4 y, 5 ln λ, 6 e1, 7 e2; its derivative image per band (empty where it does not act).
struct FloorParam {
    std::size_t object = 0;
    int kind = 0;
    std::size_t band = 0;  ///< flux kinds
    std::vector<ImageD> grad;
};

/// The member of a Perturbation that parameter kind 3–7 moves.
inline double& floorParamMember(Perturbation& p, int kind) {
    switch (kind) {
        case 3:
            return p.dx;
        case 4:
            return p.dy;
        case 5:
            return p.lnScale;
        case 6:
            return p.de1;
        default:
            return p.de2;
    }
}

/// Every parameter of every object of the scene with its derivative images, at `at` (one
/// Perturbation per object: the point the derivatives are taken at; truth when empty).
inline std::vector<FloorParam> floorParams(const FloorScene& s,
                                           const std::vector<Perturbation>& at = {}) {
    const std::size_t nb = s.simBands.size();
    std::vector<FloorParam> params;
    auto diff = [](const ImageD& a, const ImageD& m, double h) {
        ImageD d(a.bbox(), 0.0);
        for (int y = 0; y < d.height(); ++y)
            for (int x = 0; x < d.width(); ++x) d(x, y) = (a(x, y) - m(x, y)) / (2 * h);
        return d;
    };
    for (std::size_t i = 0; i < s.objects.size(); ++i) {
        const FloorObject& o = s.objects[i];
        const Perturbation base = at.empty() ? Perturbation{} : at[i];
        const int fluxKinds = o.object.isStar ? 1 : 3;
        for (int kind = 0; kind < fluxKinds; ++kind)
            for (std::size_t b = 0; b < nb; ++b) {
                const std::size_t sb = std::size_t(s.simBands[b]);
                const double f = kind == 0   ? o.flux[b]
                                 : kind == 1 ? o.object.bulgeFlux[sb]
                                             : o.object.flux[sb] - o.object.bulgeFlux[sb];
                if (!(f > 0)) continue;
                Perturbation p = base;
                p.only = kind;
                ImageD g = renderFloorObject(s, i, b, p);
                for (int y = 0; y < g.height(); ++y)
                    for (int x = 0; x < g.width(); ++x) g(x, y) /= f;
                FloorParam fp{i, kind, b, std::vector<ImageD>(nb)};
                fp.grad[b] = std::move(g);
                params.push_back(std::move(fp));
            }
        for (int kind = 3; kind <= (o.object.isStar ? 4 : 7); ++kind) {
            FloorParam fp{i, kind, 0, std::vector<ImageD>(nb)};
            const double h = kind <= 4   ? kFloorStepCentre
                             : kind == 5 ? kFloorStepScale
                                         : kFloorStepEllipticity;
            for (std::size_t b = 0; b < nb; ++b) {
                Perturbation up = base, down = base;
                floorParamMember(up, kind) += h;
                floorParamMember(down, kind) -= h;
                fp.grad[b] =
                    diff(renderFloorObject(s, i, b, up), renderFloorObject(s, i, b, down), h);
            }
            params.push_back(std::move(fp));
        }
    }
    return params;
}

/// Whether variant v (file comment) fits parameter p.
inline bool floorVariantUses(const FloorScene& s, const FloorParam& p, int v) {
    const bool star = s.objects[p.object].object.isStar;
    if (p.kind == 0) return star || v < 3;
    if (p.kind <= 2) return !star && v == 3;
    if (p.kind <= 4) return true;
    return p.kind == 5 ? v >= 1 : v >= 2;
}

/// Σ_b Σ_pixels a_b c_b / V_b of two per-band image sets (derivative images, residuals); an
/// empty image is zero in its band.
inline double floorDot(const FloorScene& s, const std::vector<ImageD>& a,
                       const std::vector<ImageD>& c) {
    double sum = 0;
    for (std::size_t b = 0; b < s.simBands.size(); ++b) {
        const ImageD &ga = a[b], &gc = c[b];
        if (ga.width() == 0 || gc.width() == 0) continue;
        double sb = 0;
        for (int y = 0; y < ga.height(); ++y)
            for (int x = 0; x < ga.width(); ++x) sb += ga(x, y) * gc(x, y);
        sum += sb / s.variance[b];
    }
    return sum;
}

/// The Fisher matrix of `params` (floorDot of every pair of derivative images).
inline Eigen::MatrixXd floorFisher(const FloorScene& s, const std::vector<FloorParam>& params) {
    const int np = int(params.size());
    Eigen::MatrixXd fisher(np, np);
    for (int i = 0; i < np; ++i)
        for (int j = i; j < np; ++j)
            fisher(i, j) = fisher(j, i) =
                floorDot(s, params[std::size_t(i)].grad, params[std::size_t(j)].grad);
    return fisher;
}

struct ProfileFloor {
    std::vector<std::vector<double>> flux{kProfileVariants};    ///< [variant][band]: σ(F_b)/F_b
    std::vector<std::vector<double>> colour{kProfileVariants};  ///< [variant][band]: σ, mag
};

inline ProfileFloor profileFloor(const FloorScene& s) {
    const std::size_t nb = s.simBands.size();
    const std::vector<FloorParam> params = floorParams(s);
    const int np = int(params.size());
    const Eigen::MatrixXd fisher = floorFisher(s, params);
    const std::vector<double>& truth = s.objects[0].flux;
    ProfileFloor out;
    for (int v = 0; v < kProfileVariants; ++v) {
        std::vector<int> use;
        for (int i = 0; i < np; ++i)
            if (floorVariantUses(s, params[std::size_t(i)], v)) use.push_back(i);
        const int n = int(use.size());
        Eigen::MatrixXd f(n, n);
        for (int i = 0; i < n; ++i)
            for (int j = 0; j < n; ++j) f(i, j) = fisher(use[std::size_t(i)], use[std::size_t(j)]);
        for (int i = 0; i < n; ++i)
            if (!(f(i, i) > 0)) f(i, i) = 1;  // nothing constrains it (outside the window): pinned
        const Eigen::MatrixXd cov = f.ldlt().solve(Eigen::MatrixXd::Identity(n, n));
        // objects[0]'s total flux in band b: the sum of its flux parameters in that band.
        std::vector<Eigen::VectorXd> w(nb, Eigen::VectorXd::Zero(n));
        for (int i = 0; i < n; ++i) {
            const FloorParam& p = params[std::size_t(use[std::size_t(i)])];
            if (p.object == 0 && p.kind <= 2) w[p.band](i) = 1;
        }
        for (std::size_t b = 0; b < nb; ++b)
            out.flux[std::size_t(v)].push_back(std::sqrt(std::max(0.0, w[b].dot(cov * w[b]))) /
                                               truth[b]);
        for (std::size_t b = 0; b + 1 < nb; ++b) {
            const Eigen::VectorXd d = w[b] / truth[b] - w[b + 1] / truth[b + 1];
            out.colour[std::size_t(v)].push_back(2.5 / std::log(10.0) *
                                                 std::sqrt(std::max(0.0, d.dot(cov * d))));
        }
    }
    return out;
}

/// A Moffat PSF (β = 3.5) with the effective area 1 / Σψ² of a PSF kernel image (which sets a
/// point source's flux noise), FWHM found by bisection.
inline sim::TruncatedMoffat matchedMoffat(const ImageD& kernel) {
    double sum = 0, sum2 = 0;
    for (int y = 0; y < kernel.height(); ++y)
        for (int x = 0; x < kernel.width(); ++x) sum += kernel(x, y);
    for (int y = 0; y < kernel.height(); ++y)
        for (int x = 0; x < kernel.width(); ++x) sum2 += std::pow(kernel(x, y) / sum, 2);
    auto effectiveArea = [](double fwhm) {
        const sim::TruncatedMoffat m(fwhm, 3.5, 0, 0);
        const ImageD im = sim::integrateOverPixels(m, {0, 0}, sim::supportBox(m, {0, 0}));
        double s2 = 0;
        for (int y = 0; y < im.height(); ++y)
            for (int x = 0; x < im.width(); ++x) s2 += im(x, y) * im(x, y);
        return 1 / s2;
    };
    double lo = 1, hi = 20;  // pixels; the effective area grows with the FWHM
    for (int it = 0; it < 40; ++it) {
        const double mid = 0.5 * (lo + hi);
        (effectiveArea(mid) < 1 / sum2 ? lo : hi) = mid;
    }
    return sim::TruncatedMoffat(0.5 * (lo + hi), 3.5, 0, 0);
}

}  // namespace drp::deblend::testing
