// Synthetic single-visit images for the calib tests: stars with a known, spatially varying
// elliptical Gaussian or Moffat PSF, a sky gradient, Poisson + read noise (Gaussian
// approximation, electrons with gain 1), and an exact variance plane.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "drp/core/exposure.h"

namespace drp::calib::testing {

struct TruthStar {
    double x = 0, y = 0, flux = 0;
};

/// PSF truth: covariance as a function of position (linear in x, y across the image).
struct PsfTruth {
    double sigma0 = 1.6;      ///< σ at the image centre (pixels)
    double sigmaGradX = 0.0;  ///< dσ/dx per full image width
    double sigmaGradY = 0.0;
    double e1_0 = 0.0, e1GradX = 0.0, e2_0 = 0.0, e2GradY = 0.0;
    double moffatBeta =
        0.0;  ///< 0: Gaussian; > 0: Moffat with this β whose core matches the Gaussian
    int width = 512, height = 512;

    // Covariance (ixx, iyy, ixy) at (x, y): T = 2σ², e1, e2 in the distortion convention.
    void covariance(double x, double y, double& ixx, double& iyy, double& ixy) const {
        double u = x / width - 0.5, v = y / height - 0.5;
        double s = sigma0 + sigmaGradX * u + sigmaGradY * v;
        double e1 = e1_0 + e1GradX * u, e2 = e2_0 + e2GradY * v;
        double t = 2 * s * s;
        ixx = 0.5 * t * (1 + e1);
        iyy = 0.5 * t * (1 - e1);
        ixy = 0.5 * t * e2;
    }
};

struct SkyTruth {
    double level = 500;                ///< electrons per pixel at (0, 0)
    double gradX = 0.2, gradY = -0.1;  ///< electrons per pixel per pixel
    double curvature = 0.0;  ///< electrons per pixel at the image corners from a quadratic term
    double readNoise = 5.0;  ///< electrons RMS
    double at(double x, double y, int w, int h) const {
        double u = x / w - 0.5, v = y / h - 0.5;
        return level + gradX * x + gradY * y + curvature * 4 * (u * u + v * v);
    }
};

/// Add the pixel-integrated profile of `star` to `img` (5×5 sub-samples per pixel).
inline void addStar(ImageF& img, const TruthStar& star, const PsfTruth& psf, int sub = 5) {
    double ixx, iyy, ixy;
    psf.covariance(star.x, star.y, ixx, iyy, ixy);
    double det = ixx * iyy - ixy * ixy;
    double ia = iyy / det, ib = ixx / det, ic = -ixy / det;
    double smax = std::sqrt(std::max(ixx, iyy));
    int r = static_cast<int>(std::ceil((psf.moffatBeta > 0 ? 10 : 6) * smax));
    // Moffat: I ∝ (1 + q/α²)^-β with q the Mahalanobis distance² in the covariance's metric
    // (scale α chosen so that the core matches the Gaussian of the same covariance).
    double beta = psf.moffatBeta, alpha2 = beta > 0 ? 2 * beta : 0;
    double norm = beta > 0 ? (beta - 1) / (M_PI * alpha2 * std::sqrt(det))
                           : 1.0 / (2 * M_PI * std::sqrt(det));
    Point2I c = Point2D(star.x, star.y).nearestPixel();
    const Box2I box = img.bbox();
    for (int y = c.y - r; y <= c.y + r; ++y)
        for (int x = c.x - r; x <= c.x + r; ++x) {
            if (!box.contains({x, y})) continue;
            double s = 0;
            for (int b = 0; b < sub; ++b)
                for (int a = 0; a < sub; ++a) {
                    double dx = x - 0.5 + (a + 0.5) / sub - star.x;
                    double dy = y - 0.5 + (b + 0.5) / sub - star.y;
                    double q = ia * dx * dx + ib * dy * dy + 2 * ic * dx * dy;
                    s += beta > 0 ? std::pow(1 + q / alpha2, -beta) : std::exp(-0.5 * q);
                }
            img(x - box.minX(), y - box.minY()) +=
                static_cast<float>(star.flux * norm * s / (sub * sub));
        }
}

struct SyntheticImage {
    Exposure exposure;
    ImageF model;  ///< noiseless stars (no sky)
    ImageF sky;    ///< true sky
    std::vector<TruthStar> stars;
};

/// Stars on a jittered grid (isolated: spacing ≥ `spacing` pixels), fluxes log-uniform in
/// [fluxMin, fluxMax], positions at random sub-pixel offsets.
inline SyntheticImage makeImage(const PsfTruth& psf, const SkyTruth& sky, int nStarsTarget,
                                double fluxMin, double fluxMax, std::uint64_t seed,
                                double spacing = 40, int margin = 20) {
    SyntheticImage out;
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> uni(0, 1);
    int w = psf.width, h = psf.height;
    int nx = static_cast<int>((w - 2 * margin) / spacing),
        ny = static_cast<int>((h - 2 * margin) / spacing);
    std::vector<int> cells(nx * ny);
    for (int k = 0; k < nx * ny; ++k) cells[k] = k;
    std::shuffle(cells.begin(), cells.end(), rng);
    int n = std::min(nStarsTarget, nx * ny);
    for (int k = 0; k < n; ++k) {
        int cx = cells[k] % nx, cy = cells[k] / nx;
        TruthStar s;
        s.x = margin + (cx + 0.25 + 0.5 * uni(rng)) * spacing;
        s.y = margin + (cy + 0.25 + 0.5 * uni(rng)) * spacing;
        s.flux = fluxMin * std::pow(fluxMax / fluxMin, uni(rng));
        out.stars.push_back(s);
    }
    out.model = ImageF(Box2I({0, 0}, {w, h}), 0.f);
    for (const auto& s : out.stars) addStar(out.model, s, psf);
    out.sky = ImageF(out.model.bbox());
    for (int j = 0; j < h; ++j)
        for (int i = 0; i < w; ++i) out.sky(i, j) = static_cast<float>(sky.at(i, j, w, h));
    out.exposure = Exposure(out.model.bbox());
    std::normal_distribution<double> gauss(0, 1);
    for (int j = 0; j < h; ++j)
        for (int i = 0; i < w; ++i) {
            double mean = out.sky(i, j) + out.model(i, j);
            double var = mean + sky.readNoise * sky.readNoise;
            out.exposure.image()(i, j) = static_cast<float>(mean + std::sqrt(var) * gauss(rng));
            out.exposure.variance()(i, j) = static_cast<float>(var);
        }
    out.exposure.visitInfo().visit = static_cast<std::int64_t>(seed);
    out.exposure.visitInfo().detector = 1;
    out.exposure.visitInfo().band = std::string(1, 'r');
    out.exposure.visitInfo().gain = 1.0;
    out.exposure.visitInfo().readNoise = sky.readNoise;
    return out;
}

/// Mean and standard deviation of a sample.
inline void meanStd(const std::vector<double>& v, double& mean, double& sd) {
    mean = 0;
    for (double x : v) mean += x;
    mean /= v.size();
    sd = 0;
    for (double x : v) sd += (x - mean) * (x - mean);
    sd = std::sqrt(sd / (v.size() - 1));
}

}  // namespace drp::calib::testing
