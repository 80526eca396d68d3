// Multi-band detection and deblending against synthetic truth: pairs of sources with known
// fluxes and colours in three bands with different PSFs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <utility>

#include "drp/deblend/deblender.h"

using namespace drp;
using namespace drp::deblend;

namespace {

struct TrueSource {
    double x, y, sigma;        // centre (pixels) and intrinsic Gaussian σ (pixels)
    std::vector<double> flux;  // per band
};

/// Pixel-integrated circular Gaussian of total flux f, σ, at (x, y), added to img.
void addGaussian(ImageF& img, double x, double y, double sigma, double f) {
    const double s2 = std::sqrt(2.0) * sigma;
    for (int j = 0; j < img.height(); ++j) {
        double py = img.xy0().y + j;
        double gy = 0.5 * (std::erf((py + 0.5 - y) / s2) - std::erf((py - 0.5 - y) / s2));
        if (gy < 1e-12) continue;
        for (int i = 0; i < img.width(); ++i) {
            double px = img.xy0().x + i;
            double gx = 0.5 * (std::erf((px + 0.5 - x) / s2) - std::erf((px - 0.5 - x) / s2));
            img(i, j) += static_cast<float>(f * gx * gy);
        }
    }
}

std::vector<MaskedImage> render(const std::vector<TrueSource>& srcs,
                                const std::vector<double>& psfSigma,
                                const std::vector<double>& skyVar, Box2I box,
                                std::mt19937_64& rng) {
    std::vector<MaskedImage> out;
    std::normal_distribution<double> g;
    for (std::size_t b = 0; b < psfSigma.size(); ++b) {
        MaskedImage mi(box);
        ImageF model(box, 0.f);
        for (auto& s : srcs)
            addGaussian(model, s.x, s.y, std::hypot(s.sigma, psfSigma[b]), s.flux[b]);
        for (std::size_t i = 0; i < model.pixels().size(); ++i) {
            double v = skyVar[b] + std::max(0.0f, model.data()[i]) / 5.0;  // gain 5: Poisson term
            mi.image().data()[i] = static_cast<float>(model.data()[i] + std::sqrt(v) * g(rng));
            mi.variance().data()[i] = static_cast<float>(v);
        }
        out.push_back(std::move(mi));
    }
    return out;
}

/// Two sources `sep` pixels apart along angle `ang` about (40, 40) moved by up to half a pixel,
/// each a Gaussian of σ 0–1.5 px with random colours (±0.5 mag per band step), fluxes f1 and f2
/// in the first band.
std::pair<TrueSource, TrueSource> randomPair(std::mt19937_64& rng, double sep, double ang,
                                             double f1, double f2) {
    std::uniform_real_distribution<double> ucol(-0.5, 0.5), usig(0.0, 1.5), usub(-0.5, 0.5);
    const double cx = 40 + usub(rng), cy = 40 + usub(rng);
    TrueSource a{cx - 0.5 * sep * std::cos(ang), cy - 0.5 * sep * std::sin(ang), usig(rng), {}};
    TrueSource b{cx + 0.5 * sep * std::cos(ang), cy + 0.5 * sep * std::sin(ang), usig(rng), {}};
    for (int k = 0; k < 3; ++k) {
        a.flux.push_back(f1 * std::pow(10, -0.4 * ucol(rng) * k));
        b.flux.push_back(f2 * std::pow(10, -0.4 * ucol(rng) * k));
    }
    return {a, b};
}

/// The footprint containing a source's centre pixel (nullptr if none).
const Footprint* footprintOf(const std::vector<Footprint>& fps, const TrueSource& t) {
    for (const Footprint& f : fps)
        if (f.spans().contains(Point2D(t.x, t.y).nearestPixel())) return &f;
    return nullptr;
}

double median(std::vector<double> v) {
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    return v[v.size() / 2];
}

}  // namespace

TEST(DetectMultiBand, SourceInOneBandOnlyIsFound) {
    std::mt19937_64 rng(1);
    Box2I box({0, 0}, {60, 60});
    std::vector<TrueSource> srcs{{30, 30, 1.0, {0.0, 0.0, 3000.0}}};  // only in the third band
    auto bands = render(srcs, {1.5, 1.7, 2.0}, {4, 4, 4}, box, rng);
    std::vector<MaskedImage*> ptrs{&bands[0], &bands[1], &bands[2]};
    auto fps = detectMultiBand(ptrs, {1.5, 1.7, 2.0}, {});
    ASSERT_EQ(fps.size(), 1u);
    ASSERT_EQ(fps[0].peaks().size(), 1u);
    EXPECT_LE(std::abs(fps[0].peaks()[0].position.x - 30), 1);
}

TEST(Deblend, PairsFluxesColoursAndConservation) {
    std::mt19937_64 rng(2026);
    std::uniform_real_distribution<double> usep(1.0, 3.0), uratio(1.0, 10.0), uang(0, 2 * M_PI);
    const std::vector<double> psfSigma{1.5, 1.7, 2.0};
    const double fwhm = 2.3548 * 2.0;  // of the broadest band
    const std::vector<double> skyVar{4.0, 5.0, 6.0};
    std::vector<std::vector<double>> fracErr(3), tmplErr(3), noise(3), tmplNoise(3), tmplPull(3);
    std::vector<double> colourErr;
    int pairs = 0, undeblended = 0, multiPeak = 0;
    for (int n = 0; n < 120; ++n) {
        double sep = usep(rng) * fwhm, ratio = uratio(rng), ang = uang(rng);
        const double f1 = 20000, f2 = f1 / ratio;
        const auto [a, b] = randomPair(rng, sep, ang, f1, f2);
        Box2I box({0, 0}, {80, 80});
        auto bands = render({a, b}, psfSigma, skyVar, box, rng);
        std::vector<MaskedImage*> ptrs{&bands[0], &bands[1], &bands[2]};
        auto fps = detectMultiBand(ptrs, psfSigma, {});
        const Footprint* fp = footprintOf(fps, a);  // the one with the brighter source
        ASSERT_NE(fp, nullptr);
        if (!fp->spans().contains(Point2D(b.x, b.y).nearestPixel())) continue;  // not blended
        ++pairs;
        if (fp->peaks().size() < 2)
            continue;  // detection merged the pair: not the deblender's case
        ++multiPeak;
        std::vector<const MaskedImage*> cptrs{&bands[0], &bands[1], &bands[2]};
        DeblendResult r = deblendFootprint(*fp, cptrs, psfSigma, {});
        if (!r.deblended) {
            ++undeblended;
            continue;
        }
        // Invariant: children sum to the parent in every band (exactly, up to rounding).
        for (int k = 0; k < 3; ++k) {
            double sum = 0;
            for (auto& c : r.children) sum += c.flux[k];
            EXPECT_NEAR(sum, r.parentFlux[k], 1e-9 * std::abs(r.parentFlux[k]) + 1e-6);
        }
        // Match children to truth by nearest peak.
        for (const TrueSource* t : {&a, &b}) {
            const Child* best = nullptr;
            double bd = 1e9;
            for (auto& c : r.children) {
                double d = std::hypot(c.peak.position.x - t->x, c.peak.position.y - t->y);
                if (d < bd) {
                    bd = d;
                    best = &c;
                }
            }
            if (bd > 2.5) continue;
            for (int k = 0; k < 3; ++k) {
                fracErr[k].push_back(std::abs(best->flux[k] / t->flux[k] - 1));
                tmplErr[k].push_back(std::abs(best->templateFlux[k] / t->flux[k] - 1));
                noise[k].push_back(best->fluxErr[k] / t->flux[k]);
                tmplNoise[k].push_back(best->templateFluxErr[k] / t->flux[k]);
                tmplPull[k].push_back(std::abs(best->templateFlux[k] - t->flux[k]) /
                                      best->templateFluxErr[k]);
            }
            double colTrue = -2.5 * std::log10(t->flux[0] / t->flux[2]);
            double colMeas = -2.5 * std::log10(best->flux[0] / best->flux[2]);
            colourErr.push_back(std::abs(colMeas - colTrue));
        }
    }
    std::printf(
        "pairs %d, multi-peak %d, undeblended %d; median |dF/F| %.4f %.4f %.4f; median |colour "
        "err| %.4f\n",
        pairs, multiPeak, undeblended, median(fracErr[0]), median(fracErr[1]), median(fracErr[2]),
        median(colourErr));
    std::printf(
        "template fluxes: median |dF/F| %.4f %.4f %.4f; median sigma/F %.4f %.4f %.4f (footprint "
        "sums %.4f %.4f %.4f)\n",
        median(tmplErr[0]), median(tmplErr[1]), median(tmplErr[2]), median(tmplNoise[0]),
        median(tmplNoise[1]), median(tmplNoise[2]), median(noise[0]), median(noise[1]),
        median(noise[2]));
    std::printf("template fluxes: median |dF| / error %.3f %.3f %.3f\n", median(tmplPull[0]),
                median(tmplPull[1]), median(tmplPull[2]));
    ASSERT_GT(multiPeak, 50);
    // Template fluxes (Gaussian PSFs: the aperture correction is exact for the point sources
    // and short by the intrinsic width's extra light beyond the footprint for the others): the
    // issue's 5%, and no worse against truth than the footprint sums (0.0061 / 0.0050 / 0.0069
    // against 0.0080 / 0.0065 / 0.0071). Their errors are not compared: a free-form template
    // carries the noise of its pixels as the footprint sum does
    // (TemplateFluxErrorsMatchTheirNoise).
    for (int k = 0; k < 3; ++k) {
        EXPECT_LE(median(tmplErr[k]), 0.05) << "band " << k;
        EXPECT_LE(median(tmplErr[k]), median(fracErr[k])) << "band " << k;
    }
    // Issue thresholds: median |Δflux/flux| ≤ 5% per band, colour ≤ 0.05 mag, ≤ 2% undeblended.
    for (int k = 0; k < 3; ++k) EXPECT_LE(median(fracErr[k]), 0.05) << "band " << k;
    EXPECT_LE(median(colourErr), 0.05);
    EXPECT_LE(undeblended, 0.02 * multiPeak);
}

// BLENDEDNESS (deblender.h) of two point sources in the PSF-matched frame, where each template
// is a Gaussian of σ_T = hypot(σ_max, matchSmoothing): for Gaussians of equal σ,
// ⟨T_1, T_2⟩ / ⟨T_1, T_1⟩ = (F_2 / F_1) exp(−d² / 4σ_T²), so β_1 = 1 − 1 / (1 + (F_2 / F_1) e).
// Little noise (detection S/N ~ 900). Tolerance 15% + 0.01: the templates are the deblender's
// symmetric monotonic fits, not exact Gaussians (their fluxes are within 1-2% here, but β weighs
// the wing under the neighbour most), cut to the footprint and their boxes.
// TEMPLATE FLUX ERROR (deblender.h): the template flux's error is the scatter noise gives it.
// Each pair is rendered without noise and then with three noise realisations; the same footprint
// and peaks (detected on the noise-free image) are deblended each time, so the difference of a
// child's noisy and noise-free template fluxes is the noise's doing alone (the deblender's
// systematic error cancels). With honest errors the median |ΔF| / templateFluxErr is 0.674 (the
// median of |N(0, 1)|). Faint pairs (the brighter member 800–6000 counts on a sky variance of
// 4–6 per pixel: point-source S/N about 5–550, the simulated patches' pairs are 10–300),
// separations 1–2.5 FWHM, flux ratios 1–10, Gaussian galaxies of σ 0–1.5 px. Tolerance ±0.13
// about 0.674: with 474 children per band the median's own scatter is ~0.04, and the gain of
// the error's split term (kSplitNoiseGain) is calibrated on the simulated patches, not on these
// pairs (0.72 without it, 0.62 with it). The errors of a template taken as exact (before) give
// 1.02–1.11.
TEST(Deblend, TemplateFluxErrorsMatchTheirNoise) {
    std::mt19937_64 rng(77);
    std::uniform_real_distribution<double> usep(1.0, 2.5), uratio(1.0, 10.0), uang(0, 2 * M_PI),
        ulog(std::log(800.0), std::log(6000.0));
    const std::vector<double> psfSigma{1.5, 1.7, 2.0};
    const double fwhm = 2.3548 * 2.0;
    const std::vector<double> skyVar{4.0, 5.0, 6.0};
    std::vector<std::vector<double>> pull(3);
    int blends = 0;
    for (int n = 0; n < 80; ++n) {
        const double sep = usep(rng) * fwhm, ratio = uratio(rng), ang = uang(rng);
        const double f1 = std::exp(ulog(rng)), f2 = f1 / ratio;
        const auto [a, b] = randomPair(rng, sep, ang, f1, f2);
        const Box2I box({0, 0}, {80, 80});
        const std::vector<double> noNoise{0.0, 0.0, 0.0};
        std::vector<MaskedImage> clean = render({a, b}, psfSigma, noNoise, box, rng);
        for (std::size_t k = 0; k < 3; ++k)  // the noisy images' variance, no noise added
            for (float& v : clean[k].variance().pixels()) v += static_cast<float>(skyVar[k]);
        std::vector<MaskedImage*> ptrs{&clean[0], &clean[1], &clean[2]};
        const std::vector<Footprint> fps = detectMultiBand(ptrs, psfSigma, {});
        const Footprint* fp = footprintOf(fps, a);
        if (fp == nullptr || fp->peaks().size() != 2 ||
            !fp->spans().contains(Point2D(b.x, b.y).nearestPixel()))
            continue;
        const std::vector<const MaskedImage*> cc{&clean[0], &clean[1], &clean[2]};
        const DeblendResult ref = deblendFootprint(*fp, cc, psfSigma, {});
        if (!ref.deblended) continue;
        ++blends;
        for (int r = 0; r < 3; ++r) {
            std::vector<MaskedImage> noisy = render({a, b}, psfSigma, skyVar, box, rng);
            const std::vector<const MaskedImage*> nc{&noisy[0], &noisy[1], &noisy[2]};
            const DeblendResult res = deblendFootprint(*fp, nc, psfSigma, {});
            ASSERT_TRUE(res.deblended);
            for (std::size_t c = 0; c < 2; ++c)
                for (int k = 0; k < 3; ++k)
                    pull[k].push_back(std::abs(res.children[c].templateFlux[k] -
                                               ref.children[c].templateFlux[k]) /
                                      res.children[c].templateFluxErr[k]);
        }
    }
    std::printf(
        "%d blends, %zu children: median |F - F(no noise)| / templateFluxErr %.3f %.3f %.3f\n",
        blends, pull[0].size(), median(pull[0]), median(pull[1]), median(pull[2]));
    ASSERT_GE(blends, 40);
    for (int k = 0; k < 3; ++k) EXPECT_NEAR(median(pull[k]), 0.674, 0.13) << "band " << k;
}

TEST(Deblend, BlendednessOfPointSourcePairs) {
    std::mt19937_64 rng(11);
    const std::vector<double> psfSigma{1.5, 1.7, 2.0};
    const DeblendConfig config;
    const double sigmaT = std::hypot(2.0, config.matchSmoothing);
    for (double sep : {6.0, 7.0, 9.0, 12.0})
        for (double ratio : {1.0, 4.0}) {
            TrueSource a{40.3 - 0.5 * sep, 40.2, 0.0, {2e5, 2e5, 2e5}};
            TrueSource b{40.3 + 0.5 * sep, 40.2, 0.0, {2e5 / ratio, 2e5 / ratio, 2e5 / ratio}};
            auto bands = render({a, b}, psfSigma, {4.0, 5.0, 6.0}, Box2I({0, 0}, {80, 80}), rng);
            std::vector<MaskedImage*> ptrs{&bands[0], &bands[1], &bands[2]};
            auto fps = detectMultiBand(ptrs, psfSigma, {});
            const Footprint* fp = footprintOf(fps, a);
            ASSERT_NE(fp, nullptr);
            ASSERT_EQ(fp->peaks().size(), 2u) << "sep " << sep << " ratio " << ratio;
            const std::vector<const MaskedImage*> cptrs{&bands[0], &bands[1], &bands[2]};
            const DeblendResult r = deblendFootprint(*fp, cptrs, psfSigma, config);
            ASSERT_TRUE(r.deblended);
            const double e = std::exp(-sep * sep / (4 * sigmaT * sigmaT));
            for (const Child& c : r.children) {
                const bool isA =
                    std::abs(c.peak.position.x - a.x) < std::abs(c.peak.position.x - b.x);
                const double other = isA ? 1.0 / ratio : ratio;  // F_other / F_self
                const double expected = 1 - 1 / (1 + other * e);
                std::printf(
                    "sep %.0f ratio %.0f %s: flux %.0f centre %.1f %.1f blendedness %.4f "
                    "expected %.4f\n",
                    sep, ratio, isA ? "bright" : "faint", c.templateFlux[1], c.centroid.x,
                    c.centroid.y, c.blendedness, expected);
                EXPECT_NEAR(c.blendedness, expected, 0.15 * expected + 0.01)
                    << "sep " << sep << " ratio " << ratio;
                // RESOLVED PAIRS: an equal pair 1.3-1.5 FWHM apart in the broad bands, resolved
                // in g, was one peak between them plus a shoulder peak; the fluxes came out
                // +78% and -90% (sep 7) before. Within 8%: the 4:1 pair 6 px apart has +7%
                // on its faint member (the deblender's own error at 1.3 FWHM).
                const double truth = isA ? a.flux[1] : b.flux[1];
                EXPECT_NEAR(c.templateFlux[1] / truth, 1.0, 0.08)
                    << "sep " << sep << " ratio " << ratio;
            }
        }
}

// Close, nearly equal pairs without noise: the blend pulls each detection peak (a local maximum
// of the summed light) off its object, and a template symmetric about the peak pixel moves light
// from one side of the pair to the other; the half-pixel centres re-measured on the data minus
// the neighbour's model (CENTRES in deblender.h) follow the objects. Extended sources (intrinsic
// σ 1–2 px) 1.1–1.4 FWHM apart, flux ratio 1–2, centres at random sub-pixel positions; the noise
// is negligible (peak S/N ~ 3000), so what is measured is the deblender's systematic error.
TEST(Deblend, CloseExtendedPairsWithoutNoise) {
    std::mt19937_64 rng(7);
    std::uniform_real_distribution<double> usep(1.2, 1.6), uratio(1.0, 2.0), usig(0.5, 1.5),
        uang(0, 2 * M_PI), usub(-0.5, 0.5);
    const std::vector<double> psfSigma{1.5, 1.7, 2.0};
    const double fwhm = 2.3548 * 2.0;
    std::vector<std::vector<double>> tmplErr(3), fpErr(3);
    int multiPeak = 0;
    for (int n = 0; n < 24; ++n) {
        const double sep = usep(rng) * fwhm, ratio = uratio(rng), ang = uang(rng);
        const double cx = 40 + usub(rng), cy = 40 + usub(rng);
        TrueSource a{cx - 0.5 * sep * std::cos(ang),
                     cy - 0.5 * sep * std::sin(ang),
                     usig(rng),
                     {4e6, 4e6, 4e6}};
        TrueSource b{cx + 0.5 * sep * std::cos(ang), cy + 0.5 * sep * std::sin(ang), usig(rng), {}};
        for (double f : a.flux) b.flux.push_back(f / ratio);
        auto bands = render({a, b}, psfSigma, {4.0, 4.0, 4.0}, Box2I({0, 0}, {80, 80}), rng);
        std::vector<MaskedImage*> ptrs{&bands[0], &bands[1], &bands[2]};
        const std::vector<Footprint> fps = detectMultiBand(ptrs, psfSigma, {});
        const Footprint* fp = footprintOf(fps, a);
        ASSERT_NE(fp, nullptr);
        if (fp->peaks().size() != 2) continue;
        ++multiPeak;
        DeblendConfig sub;
        sub.subpixelCentres = true;
        DeblendResult r = deblendFootprint(*fp, {&bands[0], &bands[1], &bands[2]}, psfSigma, sub);
        ASSERT_TRUE(r.deblended);
        for (const TrueSource* t : {&a, &b}) {
            const Child* best = nullptr;
            double bd = 1e9;
            for (auto& c : r.children) {
                const double d = std::hypot(c.centroid.x - t->x, c.centroid.y - t->y);
                if (d < bd) {
                    bd = d;
                    best = &c;
                }
            }
            for (int k = 0; k < 3; ++k) {
                tmplErr[k].push_back(std::abs(best->templateFlux[k] / t->flux[k] - 1));
                fpErr[k].push_back(std::abs(best->flux[k] / t->flux[k] - 1));
            }
        }
    }
    std::printf(
        "close pairs without noise: %d two-peak blends; median |dF/F| template %.4f %.4f "
        "%.4f, footprint %.4f %.4f %.4f; worst template %.3f\n",
        multiPeak, median(tmplErr[0]), median(tmplErr[1]), median(tmplErr[2]), median(fpErr[0]),
        median(fpErr[1]), median(fpErr[2]),
        *std::max_element(tmplErr[0].begin(), tmplErr[0].end()));
    ASSERT_GE(multiPeak, 15);
    // The true centres are anywhere within a pixel (usub), so this measures SUB-PIXEL CENTRES
    // (deblender.h; switched on here, off by default). Measured (18 blends, 36 children): median
    // |ΔF/F| 0.029 / 0.029 / 0.027 (template) and 0.024 / 0.025 / 0.028 (footprint sums) with
    // sub-pixel centres; 0.048 / 0.047 / 0.049 and 0.040 / 0.041 / 0.039 with centres on the
    // half-pixel grid (subpixelCentres = false: a template symmetric about a point up to 1/4 px per
    // axis from the object's centre leaves an antisymmetric residual that the neighbour absorbs);
    // 0.58 in every band with templates symmetric about the peak pixels (main at 2204ad6). Asserted
    // between the two with ~0.01 of margin each way (one child moves a median of 36 by ~0.005).
    for (int k = 0; k < 3; ++k) {
        EXPECT_LE(median(tmplErr[k]), 0.04) << "band " << k;
        EXPECT_LE(median(fpErr[k]), 0.035) << "band " << k;
    }
}

TEST(Deblend, PathologicalBlendKeptAndDegraded) {
    std::mt19937_64 rng(5);
    std::vector<TrueSource> srcs;
    for (int k = 0; k < 40; ++k)
        srcs.push_back({20.0 + (k % 8) * 5.0, 20.0 + (k / 8) * 5.0, 0.5, {3000.0}});
    Box2I box({0, 0}, {70, 70});
    auto bands = render(srcs, {1.2}, {1.0}, box, rng);
    std::vector<MaskedImage*> ptrs{&bands[0]};
    MultiBandDetectionConfig dc;
    dc.detection.minPeakProminence = 1.0;
    auto fps = detectMultiBand(ptrs, {1.2}, dc);
    ASSERT_EQ(fps.size(), 1u);
    DeblendConfig cfg;
    cfg.maxPeaks = 10;
    ASSERT_GT(static_cast<int>(fps[0].peaks().size()), cfg.maxPeaks);
    DeblendResult r = deblendFootprint(fps[0], {&bands[0]}, {1.2}, cfg);
    EXPECT_FALSE(r.deblended);
    EXPECT_TRUE(r.degraded());
    EXPECT_EQ(r.flags.front(), "too_many_peaks");
    EXPECT_GT(r.parentFlux[0], 0.9 * 40 * 3000);  // the parent keeps all the flux
    // Non-convergence is flagged, not fatal.
    DeblendConfig tight;
    tight.maxIterations = 1;
    tight.maxPeaks = 100;
    DeblendResult r2 = deblendFootprint(fps[0], {&bands[0]}, {1.2}, tight);
    EXPECT_TRUE(r2.deblended);
    EXPECT_FALSE(r2.converged);
    EXPECT_TRUE(r2.degraded());
}

// Every pathological parent of a patch is kept (flagged, degraded) and nothing is dropped: one
// footprint too large, one with too many peaks, one with a non-finite pixel, next to a normal
// pair; deblendPatch must return an object for every parent and the normal pair deblended.
TEST(Deblend, PatchWithPathologicalParentsKeepsEverything) {
    std::mt19937_64 rng(11);
    std::vector<TrueSource> srcs;
    // A crowded group of 40 faint sources (too many peaks for maxPeaks = 10).
    for (int k = 0; k < 40; ++k)
        srcs.push_back({20.0 + (k % 8) * 5.0, 20.0 + (k / 8) * 5.0, 0.5, {3000.0, 3000.0}});
    srcs.push_back({100.0, 30.0, 1.0, {8000.0, 6000.0}});  // a pair
    srcs.push_back({106.0, 31.0, 0.5, {4000.0, 5000.0}});
    srcs.push_back({30.0, 100.0, 1.0, {8000.0, 6000.0}});  // a pair with a NaN pixel
    srcs.push_back({36.0, 101.0, 0.5, {4000.0, 5000.0}});
    srcs.push_back({100.0, 100.0, 8.0, {2e5, 2e5}});  // a large galaxy with a companion
    srcs.push_back({118.0, 100.0, 0.5, {3e4, 3e4}});
    Box2I box({0, 0}, {130, 130});
    auto bands = render(srcs, {1.2, 1.4}, {1.0, 1.0}, box, rng);
    std::vector<MaskedImage*> ptrs{&bands[0], &bands[1]};
    MultiBandDetectionConfig dc;
    dc.detection.minPeakProminence = 1.0;
    DeblendConfig cfg;
    cfg.maxPeaks = 10;
    cfg.maxPixels = 1500;  // the big galaxy's footprint is larger
    auto fps = detectMultiBand(ptrs, {1.2, 1.4}, dc);
    std::size_t nanPair = fps.size();
    for (std::size_t p = 0; p < fps.size(); ++p)
        if (fps[p].spans().contains(Point2I{30, 100})) nanPair = p;
    ASSERT_LT(nanPair, fps.size());
    ASSERT_GE(fps[nanPair].peaks().size(), 2u);
    // A non-finite pixel inside the second pair's footprint (as a corrupt coadd pixel, or a chip
    // gap's NaN variance, would be): it is left out of the fit and of every flux, the pair is
    // still deblended and the children sum to the parent over the usable pixels.
    bands[1].image().at({33, 100}) = std::numeric_limits<float>::quiet_NaN();
    auto r = deblendFootprint(fps[nanPair], {&bands[0], &bands[1]}, {1.2, 1.4}, cfg);
    EXPECT_TRUE(r.deblended);
    EXPECT_TRUE(r.flags.empty());
    for (std::size_t b = 0; b < 2; ++b) {
        double sum = 0, direct = 0;
        for (const Child& c : r.children) sum += c.flux[b];
        for (const Span& sp : fps[nanPair].spans().spans())
            for (int x = sp.x0; x <= sp.x1; ++x)
                if (std::isfinite(bands[b].image().at({x, sp.y})))
                    direct += bands[b].image().at({x, sp.y});
        EXPECT_TRUE(std::isfinite(sum));
        EXPECT_NEAR(r.parentFlux[b], direct, 1e-6 * std::abs(direct));
        EXPECT_NEAR(sum, r.parentFlux[b], 1e-9 * std::abs(r.parentFlux[b]));
    }

    PatchDeblend out = deblendPatch(ptrs, {1.2, 1.4}, dc, cfg);
    ASSERT_EQ(out.results.size(), out.footprints.size());
    std::vector<int> objectsPerParent(out.footprints.size(), 0);
    for (const auto& o : out.objects) objectsPerParent.at(o.parent)++;
    std::vector<std::string> seen;
    for (std::size_t p = 0; p < out.footprints.size(); ++p) {
        const DeblendResult& res = out.results[p];
        EXPECT_GE(objectsPerParent[p], 1) << "parent " << p << " dropped";
        if (res.deblended) {
            EXPECT_EQ(objectsPerParent[p], static_cast<int>(out.footprints[p].peaks().size()));
        } else {
            EXPECT_EQ(objectsPerParent[p], 1);
        }
        if (out.footprints[p].peaks().size() >= 2 && !res.deblended) {
            EXPECT_TRUE(res.degraded());
        }
        for (const auto& f : res.flags) seen.push_back(f);
    }
    for (const char* f : {"too_many_peaks", "too_large"}) {
        EXPECT_NE(std::find(seen.begin(), seen.end(), f), seen.end()) << f;
        EXPECT_NE(std::find(out.degradedFlags.begin(), out.degradedFlags.end(), f),
                  out.degradedFlags.end())
            << f;
    }
    // The normal pair is deblended and its children sum to the parent.
    bool pairDone = false;
    for (std::size_t p = 0; p < out.footprints.size(); ++p)
        if (out.footprints[p].spans().contains(Point2I{100, 30})) {
            const DeblendResult& res = out.results[p];
            pairDone = res.deblended && res.children.size() == 2;
            for (std::size_t b = 0; pairDone && b < 2; ++b) {
                double sum = 0;
                for (const Child& c : res.children) sum += c.flux[b];
                EXPECT_NEAR(sum, res.parentFlux[b], 1e-9 * std::abs(res.parentFlux[b]));
            }
        }
    EXPECT_TRUE(pairDone);
}

// A bright star whose PSF has a one-sided wing component (as the coadd PSF where visits'
// coverage changes across a star): the symmetric template leaves that wing as a shoulder
// residual, but with the band's PSF kernel it is what the star's PSF predicts there and is not a
// peak; a real neighbour 70x fainter 2 FWHM away still is.
TEST(DetectMultiBand, ShoulderOnAnAsymmetricPsfWingIsNotAPeak) {
    std::mt19937_64 rng(5);
    std::normal_distribution<double> g;
    auto addStar = [](ImageF& img, double x, double y, double f) {
        addGaussian(img, x, y, 2.0, 0.85 * f);
        addGaussian(img, x + 6.0, y, 2.5, 0.15 * f);  // the one-sided wing
    };
    ImageF k(Extent2I{41, 41}, 0.f);
    addStar(k, 20, 20, 1.0);
    ImageD kernel(Extent2I{41, 41}, 0.0);
    for (std::size_t i = 0; i < k.pixels().size(); ++i) kernel.data()[i] = k.data()[i];
    const double sigma = psfGaussianSigma(kernel.cview());
    const Box2I box({0, 0}, Extent2I{100, 100});
    ImageF model(box, 0.f);
    addStar(model, 50, 50, 1e6);
    addStar(model, 50.2, 40.5, 1.5e4);  // real neighbour, 2 FWHM away
    MaskedImage mi(box);
    for (std::size_t i = 0; i < model.pixels().size(); ++i) {
        const double v = 4.0 + std::max(0.0f, model.data()[i]) / 5.0;
        mi.image().data()[i] = static_cast<float>(model.data()[i] + std::sqrt(v) * g(rng));
        mi.variance().data()[i] = static_cast<float>(v);
    }
    auto peaksNear = [](const std::vector<Footprint>& fps, double x, double y) {
        int n = 0;
        for (const auto& fp : fps)
            for (const Peak& p : fp.peaks())
                n += std::hypot(p.position.x - x, p.position.y - y) < 3.0;
        return n;
    };
    MaskedImage a = mi, b = mi;
    // Without the kernel (Gaussian PSF assumed) the wing is a spurious shoulder peak ...
    auto without = detectMultiBand({&a}, {sigma}, {});
    EXPECT_EQ(peaksNear(without, 56.5, 50), 1);
    // ... with it, not; the star and the real neighbour are found either way.
    auto with = detectMultiBand({&b}, {sigma}, {}, {kernel});
    EXPECT_EQ(peaksNear(with, 56.5, 50), 0);
    for (const auto* fps : {&without, &with}) {
        EXPECT_EQ(peaksNear(*fps, 50, 50), 1);
        EXPECT_EQ(peaksNear(*fps, 50.2, 40.5), 1);
    }
}

namespace {

/// Objects of deblendPatch within `radius` px of (x, y).
int objectsNear(const PatchDeblend& out, double x, double y, double radius) {
    int n = 0;
    for (const PatchObject& o : out.objects)
        n += std::hypot(o.position.x - x, o.position.y - y) < radius;
    return n;
}

}  // namespace

// RESIDUAL PEAKS: a faint galaxy 1.3–2 FWHM from one 15–40× brighter and extended (as truth rows
// 3927 — 2.5" from one 40× brighter — and 1251, 1449, 4437 of the demo release) makes no local
// maximum of its own in the data; in the data minus the bright galaxy's symmetric, monotonic
// model it does. 40 scenes, 3 bands, neighbour S/N 12–30 (point-source S/N in r), bright
// galaxy intrinsic σ 2.5 px. Three ways: detection alone (shoulder peaks off), detection +
// the residual search, and the defaults (shoulder peaks, residual search, pruning). On these
// Gaussian scenes the shoulder search already finds every neighbour; the residual search must
// find them on its own without adding objects (the demo release's misses are those the
// shoulder search does not find: realistic profiles, a detection peak between the two).
TEST(DeblendPatch, ResidualPeaksFindFaintNeighboursOfBrightGalaxies) {
    std::mt19937_64 rng(11);
    std::uniform_real_distribution<double> usep(1.3, 2.0), uratio(15, 40), uang(0, 2 * M_PI),
        usub(-0.5, 0.5), usn(12, 30);
    const std::vector<double> psfSigma{1.5, 1.7, 2.0};
    const double fwhm = 2.3548 * 2.0;
    const std::vector<double> skyVar{4.0, 5.0, 6.0};
    int found[3] = {0, 0, 0}, spurious[3] = {0, 0, 0}, brightOnce[3] = {0, 0, 0};
    const int nScene = 40;
    for (int n = 0; n < nScene; ++n) {
        const double sep = usep(rng) * fwhm, ratio = uratio(rng), ang = uang(rng);
        const double f2 = usn(rng) * std::sqrt(4 * M_PI * 1.7 * 1.7 * skyVar[1]);
        const double cx = 40 + usub(rng), cy = 40 + usub(rng);
        TrueSource a{cx, cy, 2.5, {f2 * ratio, f2 * ratio, f2 * ratio}};
        TrueSource b{cx + sep * std::cos(ang), cy + sep * std::sin(ang), 0.7, {f2, f2, f2}};
        auto bands = render({a, b}, psfSigma, skyVar, Box2I({0, 0}, {80, 80}), rng);
        for (int mode = 0; mode < 3; ++mode) {
            std::vector<MaskedImage> copy = bands;
            MultiBandDetectionConfig det;
            det.shoulderPeaks = mode == 2;
            DeblendConfig dc;
            dc.residualPeaks = dc.prune = mode >= 1;
            const PatchDeblend out =
                deblendPatch({&copy[0], &copy[1], &copy[2]}, psfSigma, det, dc);
            found[mode] += objectsNear(out, b.x, b.y, 2.5) == 1;
            brightOnce[mode] += objectsNear(out, a.x, a.y, 2.5) == 1;
            for (const PatchObject& o : out.objects)
                spurious[mode] += std::hypot(o.position.x - a.x, o.position.y - a.y) >= 2.5 &&
                                  std::hypot(o.position.x - b.x, o.position.y - b.y) >= 2.5;
        }
    }
    std::printf(
        "faint neighbours found (of %d): detection %d, + residual search %d, defaults %d; "
        "bright galaxy exactly once %d / %d / %d; other objects %d / %d / %d\n",
        nScene, found[0], found[1], found[2], brightOnce[0], brightOnce[1], brightOnce[2],
        spurious[0], spurious[1], spurious[2]);
    // Measured: 0, 40, 40 found; the bright galaxy once in every scene; no other object. Before
    // the centring-dipole and mirror-image tests (residualPeaks) 34 were found with 4 other
    // objects, and the defaults made 1–3 spurious objects. Tolerances: a few scenes' worth.
    EXPECT_LE(found[0], 4);
    EXPECT_GE(found[1], 36);
    EXPECT_GE(found[2], 38);
    for (int mode = 0; mode < 3; ++mode) {
        EXPECT_EQ(brightOnce[mode], nScene) << "mode " << mode;
        EXPECT_LE(spurious[mode], 1) << "mode " << mode;
    }
}

// SPURIOUS PEAKS (as truth row 3624 of the demo release: a S/N 154 galaxy with a significance-7
// peak 0.7" = 3.5 px from its centre, released twice): a peak on a bright galaxy's profile is
// dropped and its light goes back to the galaxy; a real neighbour 8× fainter at the same
// distance is kept. 20 scenes each, extended galaxy (intrinsic σ 2.5 px) at S/N ~ 150–300.
TEST(DeblendPatch, SpuriousPeakOnBrightGalaxyIsDroppedRealNeighbourKept) {
    std::mt19937_64 rng(12);
    std::uniform_real_distribution<double> uang(0, 2 * M_PI), usub(-0.5, 0.5), uflux(1e4, 2e4),
        ud(3.0, 4.0);
    const std::vector<double> psfSigma{1.5, 1.7, 2.0};
    const std::vector<double> skyVar{4.0, 5.0, 6.0};
    int dropped = 0, kept = 0;
    for (int n = 0; n < 20; ++n) {
        const double f = uflux(rng), ang = uang(rng), d = ud(rng);
        const double cx = 40 + usub(rng), cy = 40 + usub(rng);
        TrueSource a{cx, cy, 2.5, {f, f, f}};
        // A spurious peak: the galaxy alone, with a peak injected d px from its centre.
        {
            auto bands = render({a}, psfSigma, skyVar, Box2I({0, 0}, {80, 80}), rng);
            std::vector<MaskedImage*> ptrs{&bands[0], &bands[1], &bands[2]};
            std::vector<Footprint> fps = detectMultiBand(ptrs, psfSigma, {});
            Footprint* fp = nullptr;
            for (Footprint& x : fps)
                if (x.spans().contains(Point2D(cx, cy).nearestPixel())) fp = &x;
            ASSERT_NE(fp, nullptr);
            ASSERT_EQ(fp->peaks().size(), 1u);
            const Point2I q =
                Point2D(cx + d * std::cos(ang), cy + d * std::sin(ang)).nearestPixel();
            fp->peaks().push_back({q, Point2D(q), 0.0, 7.0});
            const std::vector<const MaskedImage*> cb{&bands[0], &bands[1], &bands[2]};
            DeblendResult r = deblendFootprint(*fp, cb, psfSigma, {});
            ASSERT_TRUE(r.deblended);
            ASSERT_EQ(spuriousCandidates(r, {}).size(), 1u);
            const int n = pruneSpuriousPeaks(*fp, r, cb, psfSigma, {});
            dropped +=
                n == 1 && fp->peaks().size() == 1 && fp->peaks()[0].position != q && !r.deblended;
        }
        // A real neighbour 8× fainter, 1.6× as far (4.8–6.4 px, 1–1.3 FWHM), is kept.
        {
            TrueSource b{cx + d * 1.6 * std::cos(ang), cy + d * 1.6 * std::sin(ang), 0.7, {}};
            for (double v : a.flux) b.flux.push_back(v / 8);
            auto bands = render({a, b}, psfSigma, skyVar, Box2I({0, 0}, {80, 80}), rng);
            const PatchDeblend out =
                deblendPatch({&bands[0], &bands[1], &bands[2]}, psfSigma, {}, {});
            kept += objectsNear(out, b.x, b.y, 2.5) == 1 && objectsNear(out, a.x, a.y, 2.5) == 1;
        }
    }
    std::printf("spurious peaks dropped %d / 20; real neighbours 8x fainter kept %d / 20\n",
                dropped, kept);
    // Measured: 18 / 20 dropped (the other two leave a residual of ≥ 2.5σ and ≥ 5% of the data
    // within 1" when removed: kept, as a real object would be), 20 / 20 kept.
    EXPECT_GE(dropped, 16);
    EXPECT_GE(kept, 19);
}
