// The PROFILE FLOORS (profile_floor.h) against the scatter of real fits: a bulge + disk galaxy
// with a colour gradient, alone and blended with a disk galaxy 1.5 FWHM away, is rendered as the
// simulator renders it, Gaussian noise of the scene's variance is added, and the per-band fluxes,
// centres and sizes (variant 1) of every object are fitted to each realisation by maximum
// likelihood. The fitted fluxes' scatter must equal the Cramér–Rao floor that deblend_pairs_dump
// --profile-floor reports (docs/deblend.md): that checks the derivative images and the Fisher
// matrix, the parts of the floor a typo would break.
//
// The fit: Gauss–Newton with the derivative images at the truth (profile_floor.h floorParams)
// and the residuals of the model rendered at the current parameters, iterated to convergence.
// At the truth's Jacobian this converges to the estimator J₀ᵀ V⁻¹ (D − m(θ̂)) = 0, which differs
// from the maximum-likelihood one by terms of second order in the noise (S/N 20–40 here: ~1%).
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "profile_floor.h"

using namespace drp;
using namespace drp::deblend::testing;

namespace {

sim::TrueObject bulgeDisk(double flux, std::vector<double> bulgeFraction) {
    sim::TrueObject o;
    o.isStar = false;
    o.bulgeREff = 0.3;  // arcsec: 1.5 px
    o.diskREff = 0.8;   // 4 px
    o.bulgeE1 = 0.1;
    o.diskE1 = 0.25;
    o.diskE2 = 0.1;
    for (int b = 1; b <= 3; ++b) {  // g r i
        o.flux[std::size_t(b)] = flux;
        o.bulgeFlux[std::size_t(b)] = flux * bulgeFraction[std::size_t(b - 1)];
    }
    return o;
}

FloorScene scene(bool blended) {
    FloorScene s;
    s.window = Box2I({0, 0}, Extent2I{64, 64});
    s.simBands = {1, 2, 3};
    s.psf = {sim::TruncatedMoffat(4.7, 3.5, 0, 0), sim::TruncatedMoffat(4.5, 3.5, 0, 0),
             sim::TruncatedMoffat(4.0, 3.5, 0, 0)};
    s.variance = {2.0, 2.5, 4.0};  // nJy² per pixel: the galaxy at S/N ~20–40 per band
    const Eigen::Matrix2d jac = Eigen::Matrix2d::Identity() * 0.2;  // 0.2"/px, east along x
    const sim::TrueObject a = bulgeDisk(1500, {0.2, 0.35, 0.5});
    s.objects.push_back({a, {31.3, 32.2}, {1500, 1500, 1500}, jac});
    if (blended) {
        sim::TrueObject b = bulgeDisk(750, {0, 0, 0});
        b.diskREff = 0.5;
        b.diskE1 = -0.2;
        s.objects.push_back({b, {31.3 + 7.0, 32.2 + 1.5}, {750, 750, 750}, jac});
    }
    return s;
}

/// Scatter of the fitted fluxes of objects[0] per band over `n` noise realisations, relative to
/// the truth.
std::vector<double> fittedScatter(const FloorScene& s, int n, std::uint64_t seed) {
    const std::size_t nb = s.simBands.size(), no = s.objects.size();
    const int variant = 1;
    std::vector<FloorParam> all = floorParams(s);
    std::vector<FloorParam> params;
    for (FloorParam& p : all)
        if (floorVariantUses(s, p, variant)) params.push_back(std::move(p));
    const int np = int(params.size());
    const Eigen::LDLT<Eigen::MatrixXd> solver(floorFisher(s, params));
    // The model at parameters θ (offsets from the truth): flux ratios, centre and ln λ per object.
    auto model = [&](const Eigen::VectorXd& theta) {
        std::vector<ImageD> m(nb, ImageD(s.window, 0.0));
        for (std::size_t o = 0; o < no; ++o) {
            Perturbation p;
            std::vector<double> fluxScale(nb, 1.0);
            for (int i = 0; i < np; ++i) {
                const FloorParam& q = params[std::size_t(i)];
                if (q.object != o) continue;
                if (q.kind == 0)
                    fluxScale[q.band] = 1 + theta(i) / s.objects[o].flux[q.band];
                else
                    floorParamMember(p, q.kind) = theta(i);
            }
            for (std::size_t b = 0; b < nb; ++b) {
                const ImageD r = renderFloorObject(s, o, b, p);
                for (int y = 0; y < r.height(); ++y)
                    for (int x = 0; x < r.width(); ++x) m[b](x, y) += fluxScale[b] * r(x, y);
            }
        }
        return m;
    };
    const std::vector<ImageD> truth = model(Eigen::VectorXd::Zero(np));
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> gauss;
    std::vector<std::vector<double>> fitted(nb);
    for (int r = 0; r < n; ++r) {
        std::vector<ImageD> data = truth;
        for (std::size_t b = 0; b < nb; ++b)
            for (int y = 0; y < data[b].height(); ++y)
                for (int x = 0; x < data[b].width(); ++x)
                    data[b](x, y) += std::sqrt(s.variance[b]) * gauss(rng);
        Eigen::VectorXd theta = Eigen::VectorXd::Zero(np);
        for (int it = 0; it < 30; ++it) {
            std::vector<ImageD> resid = model(theta);  // data − model
            for (std::size_t b = 0; b < nb; ++b)
                for (int y = 0; y < resid[b].height(); ++y)
                    for (int x = 0; x < resid[b].width(); ++x)
                        resid[b](x, y) = data[b](x, y) - resid[b](x, y);
            Eigen::VectorXd g(np);
            for (int i = 0; i < np; ++i) g(i) = floorDot(s, params[std::size_t(i)].grad, resid);
            const Eigen::VectorXd step = solver.solve(g);
            theta += step;
            bool small = true;  // flux steps below 1e-4 of the flux, others below 1e-4
            for (int i = 0; i < np; ++i) {
                const FloorParam& q = params[std::size_t(i)];
                const double scale = q.kind == 0 ? s.objects[q.object].flux[q.band] : 1.0;
                small = small && std::abs(step(i)) < 1e-4 * scale;
            }
            if (small) break;
        }
        for (int i = 0; i < np; ++i) {
            const FloorParam& q = params[std::size_t(i)];
            if (q.object == 0 && q.kind == 0)
                fitted[q.band].push_back(theta(i) / s.objects[0].flux[q.band]);
        }
    }
    std::vector<double> scatter;
    for (const std::vector<double>& f : fitted) {
        double mean = 0, var = 0;
        for (double v : f) mean += v / double(f.size());
        for (double v : f) var += (v - mean) * (v - mean) / double(f.size() - 1);
        scatter.push_back(std::sqrt(var));
    }
    return scatter;
}

// 150 realisations: the sample standard deviation is uncertain by 1/√(2·149) = 5.8%, so 20% is
// 3.4σ. The floor with the size known (variant 0) is 21–48% lower for these galaxies, so a
// floor that missed the size's cost would fail.
void checkScene(bool blended) {
    const FloorScene s = scene(blended);
    const ProfileFloor floor = profileFloor(s);
    const std::vector<double> scatter = fittedScatter(s, 150, blended ? 2 : 1);
    for (std::size_t b = 0; b < 3; ++b) {
        std::printf(
            "%s, band %zu: fitted scatter %.4f, floor %.4f (size fitted), %.4f (size "
            "known): ratio %.3f\n",
            blended ? "blended" : "alone", b, scatter[b], floor.flux[1][b], floor.flux[0][b],
            scatter[b] / floor.flux[1][b]);
        EXPECT_NEAR(scatter[b] / floor.flux[1][b], 1.0, 0.2) << "band " << b;
        EXPECT_GT(floor.flux[1][b], 1.1 * floor.flux[0][b]) << "band " << b;
    }
}

}  // namespace

TEST(ProfileFloor, MatchesFittedScatterAlone) {
    checkScene(false);
}

TEST(ProfileFloor, MatchesFittedScatterBlended) {
    checkScene(true);
}
