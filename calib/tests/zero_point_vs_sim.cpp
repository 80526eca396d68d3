// Total-flux calibration against the simulator's truth: detectors observed through the
// simulator's Moffat PSF (sim/moffat_psf.h) at the seeing and β range of the demo survey
// (0.7"–1.1" FWHM at 0.2"/px, β 3–4.5), characterized with the default configuration. The
// zero point of a detector is set by its stars' psf_flux against their true fluxes (this is what
// the global photometric calibration transfers from the reference catalogue), so the error of
// that detector's zero point is the weighted mean of 2.5 log10(psf_flux / true flux) over its
// bright stars. Issue #4 asks for ≤ 3 mmag RMS vs truth over the visit-detectors (goal 2); the
// light beyond the 17-px calibration aperture alone moves it by 0–8 mmag over these seeings.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <random>
#include <vector>

#include "drp/calib/characterize.h"
#include "drp/sim/moffat_psf.h"

namespace drp::calib {
namespace {

struct Detector {
    Exposure exposure;
    std::vector<Point2D> pos;
    std::vector<double> flux;  // true total flux (electrons)
};

// 768² detector, 120 stars on a jittered 60-px grid with fluxes log-uniform in [3e4, 3e6] e-,
// a 300 e-/px sky, read noise 5 e-, Gaussian approximation of the Poisson noise. The PSF is
// truncated at 10 FWHM (a real PSF's wings go on; at 10 FWHM a β = 3 Moffat has < 1e-4 left).
Detector render(double fwhm, double beta, std::uint64_t seed) {
    const int size = 768;
    const double sky = 300, readNoise = 5;
    const sim::TruncatedMoffat psf(fwhm, beta, 0.02, -0.01, 10.0);
    Detector d;
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> uni(0, 1);
    ImageD model(Box2I({0, 0}, {size, size}), 0.0);
    const double spacing = 60;
    for (int cy = 0; cy < 12; ++cy)
        for (int cx = 0; cx < 12; ++cx) {
            if (uni(rng) < 0.17) continue;
            const Point2D p{30 + (cx + 0.25 + 0.5 * uni(rng)) * spacing,
                            30 + (cy + 0.25 + 0.5 * uni(rng)) * spacing};
            const double f = 3e4 * std::pow(100.0, uni(rng));
            const Box2I box = sim::supportBox(psf, p).clippedTo(model.bbox());
            const Image<double> star = sim::integrateOverPixels(psf, p, box);
            for (int y = box.minY(); y <= box.maxY(); ++y)
                for (int x = box.minX(); x <= box.maxX(); ++x)
                    model(x, y) += f * star(x - box.minX(), y - box.minY());
            d.pos.push_back(p);
            d.flux.push_back(f);
        }
    d.exposure = Exposure(model.bbox());
    std::normal_distribution<double> gauss(0, 1);
    for (int y = 0; y < size; ++y)
        for (int x = 0; x < size; ++x) {
            const double var = sky + model(x, y) + readNoise * readNoise;
            d.exposure.image()(x, y) =
                static_cast<float>(sky + model(x, y) + std::sqrt(var) * gauss(rng));
            d.exposure.variance()(x, y) = static_cast<float>(var);
        }
    d.exposure.visitInfo().visit = static_cast<std::int64_t>(seed);
    d.exposure.visitInfo().band = std::string(1, 'r');  // (a literal trips GCC 12 -Wrestrict)
    d.exposure.visitInfo().gain = 1.0;
    d.exposure.visitInfo().readNoise = readNoise;
    return d;
}

// Zero-point error of a characterized detector (mmag): clipped weighted mean over the matched,
// unflagged stars with S/N > 100 of 2.5 log10(psf_flux / true flux).
double zeroPointError(const Detector& d, const CharacterizeResult& r, double* err) {
    const Table& t = r.sources;
    const auto& x = t.column<double>("x");
    const auto& y = t.column<double>("y");
    const auto& f = t.column<double>("psf_flux");
    const auto& fe = t.column<double>("psf_flux_err");
    const auto& flags = t.column<std::int64_t>("flags");
    const std::int64_t bad = kFlagEdge | kFlagSaturated | kFlagBlended | kFlagBadPsfFlux |
                             kFlagBadCentroid | kFlagBadPixels | kFlagCosmicRay;
    std::vector<double> m, s;
    for (std::size_t k = 0; k < d.pos.size(); ++k)
        for (std::size_t i = 0; i < x.size(); ++i) {
            if (std::hypot(x[i] - d.pos[k].x, y[i] - d.pos[k].y) > 1.0) continue;
            if ((flags[i] & bad) || !(f[i] / fe[i] > 100)) break;
            m.push_back(2500 * std::log10(f[i] / d.flux[k]));
            s.push_back(1085.7 * fe[i] / f[i]);
            break;
        }
    std::vector<char> use(m.size(), 1);
    double mean = 0, w = 0;
    for (int it = 0; it < 4; ++it) {
        mean = w = 0;
        for (std::size_t k = 0; k < m.size(); ++k)
            if (use[k]) mean += m[k] / (s[k] * s[k]), w += 1 / (s[k] * s[k]);
        mean /= w;
        for (std::size_t k = 0; k < m.size(); ++k) use[k] = std::abs(m[k] - mean) < 4 * s[k];
    }
    *err = 1 / std::sqrt(w);
    return mean;
}

TEST(ZeroPointVsSim, TotalFluxIsIndependentOfTheSeeing) {
    // (FWHM px, β): the demo's seeing range with its extreme β.
    const std::vector<std::pair<double, double>> psfs = {
        {3.5, 4.5}, {3.5, 3.0}, {4.5, 3.0}, {5.5, 3.0}, {5.5, 4.5}};
    std::vector<double> withWings, apertureOnly;
    std::uint64_t seed = 11;
    for (auto [fwhm, beta] : psfs) {
        const Detector d = render(fwhm, beta, seed++);
        CharacterizeConfig cfg;
        const CharacterizeResult r = characterize(d.exposure, cfg);
        double e = 0;
        const double zp = zeroPointError(d, r, &e);
        // The same measurement without the wings (the aperture correction alone).
        const double wing = 2500 * std::log10(1 + r.summary.apertureWingFraction);
        // The truth: light of this (10-FWHM truncated) Moffat beyond 17 px, relative to 17 px.
        const double a = fwhm / (2 * std::sqrt(std::pow(2.0, 1 / beta) - 1)), rt = 10 * fwhm;
        auto beyond = [&](double rr) { return std::pow(1 + rr * rr / (a * a), 1 - beta); };
        const double trueWing = 2500 * std::log10(1 + (beyond(17) - beyond(rt)) / (1 - beyond(17)));
        std::cout << "FWHM " << fwhm << " beta " << beta << ": zero-point error " << zp << " +- "
                  << e << " mmag (aperture correction only: " << zp - wing << "); wings " << wing
                  << " mmag, true " << trueWing << ", fitted beta " << r.summary.psfMoffatBeta
                  << "\n";
        // The wing fit: within 0.6 mmag of the truth (demo sky: 0.46 mmag RMS).
        EXPECT_NEAR(wing, trueWing, 0.6) << "FWHM " << fwhm << " beta " << beta;
        withWings.push_back(zp);
        apertureOnly.push_back(zp - wing);
        // Each detector's zero point within 3 mmag of the truth (its own noise is ~0.5 mmag).
        EXPECT_LT(std::abs(zp), 3.0) << "FWHM " << fwhm << " beta " << beta;
    }
    auto rms = [](const std::vector<double>& v) {
        double s = 0;
        for (double x : v) s += x * x;
        return std::sqrt(s / v.size());
    };
    std::cout << "RMS zero-point error: " << rms(withWings) << " mmag (aperture only "
              << rms(apertureOnly) << ")\n";
    EXPECT_LT(rms(withWings), 2.0);  // issue #4 goal
    // Without the wings the error is seeing-dependent and larger than the requirement: the
    // test would see a regression of the extrapolation.
    EXPECT_GT(rms(apertureOnly), 3.0);
}

}  // namespace
}  // namespace drp::calib
