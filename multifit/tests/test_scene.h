// Synthetic multi-epoch scenes for multifit tests: objects rendered independently of the fitter
// (truth_render.h: exact Sérsic ⊗ Moffat by FFT), with per-epoch seeing, pixel-grid rotation,
// sub-pixel pointing, photometric scale and Poisson-like noise. Shared by the test files.
#pragma once

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "drp/multifit/fitter.h"
#include "truth_render.h"

namespace drp::multifit::testing {

inline double median(std::vector<double> v) {
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    return v[v.size() / 2];
}
/// Robust standard deviation: 1.4826 × median absolute deviation from the median.
inline double robustSigma(const std::vector<double>& v) {
    double m = median(v);
    std::vector<double> d;
    for (double x : v) d.push_back(std::abs(x - m));
    return 1.4826 * median(d);
}

struct PsfEntry {
    MoffatShape shape;
    std::shared_ptr<const MoffatPsf> model;
    GaussianMixture mixture;
};
inline PsfEntry makePsfEntry(const MoffatShape& s) {
    auto m = std::make_shared<MoffatPsf>(s, 12);
    return {s, m, fitPsfMixture(m->computeKernelImage({0, 0}), 4).mixture};
}
/// A fixed library of 16 (seeing 0.6"–1.3", ellipticity) Moffat PSFs at 0.2"/px, each fitted
/// once: the mixture fit is the expensive part of setting up an epoch and is not under test.
inline const std::vector<PsfEntry>& psfLibrary() {
    static const std::vector<PsfEntry> lib = [] {
        std::mt19937_64 rng(99);
        std::uniform_real_distribution<double> useeing(0.6, 1.3), ue(-0.05, 0.05);
        std::vector<PsfEntry> out;
        for (int k = 0; k < 16; ++k)
            out.push_back(makePsfEntry({useeing(rng) * 5.0, 3.5, ue(rng), ue(rng)}));
        return out;
    }();
    return lib;
}

/// One object of a scene with its per-band true fluxes [nJy].
struct TrueObject {
    TrueGalaxy shape;
    std::vector<double> flux;
};

struct Scene {
    std::vector<Epoch> epochs;
    std::vector<MoffatShape> psfs;
};

/// `nEpochs` epochs alternating over the bands with PSFs drawn from psfLibrary(), random pixel
/// grid rotation, sub-pixel pointing and photometric scale; 0.2"/px; all objects summed.
inline Scene makeScene(const std::vector<TrueObject>& objects, int nEpochs, double skyVar,
                       std::mt19937_64& rng, int size = 31) {
    std::uniform_real_distribution<double> urot(0, 2 * M_PI), usub(-0.5, 0.5), uscale(0.7, 1.4);
    std::normal_distribution<double> gauss;
    Scene s;
    const int nBands = static_cast<int>(objects.front().flux.size());
    for (int k = 0; k < nEpochs; ++k) {
        Epoch ep;
        ep.band = k % nBands;
        double rot = urot(rng), scale = 5.0 * (1 + 0.02 * usub(rng));
        ep.uvToPixel << scale * std::cos(rot), -scale * std::sin(rot), scale * std::sin(rot),
            scale * std::cos(rot);
        Box2I box({100, 200}, {size, size});
        ep.refPixel = Eigen::Vector2d(100 + size / 2 + usub(rng), 200 + size / 2 + usub(rng));
        const auto& lib = psfLibrary();
        const auto& entry = lib[std::uniform_int_distribution<int>(0, int(lib.size()) - 1)(rng)];
        ep.countsPerNJy = uscale(rng);
        ep.psfModel = entry.model;
        ep.psf = entry.mixture;
        ImageD model(box, 0.0);
        for (const auto& o : objects) {
            ImageD m = renderTrue(o.shape, entry.shape, ep.uvToPixel, ep.refPixel, box,
                                  ep.countsPerNJy * o.flux[ep.band]);
            for (std::size_t i = 0; i < m.pixels().size(); ++i) model.data()[i] += m.data()[i];
        }
        ep.image = ImageD(box, 0.0);
        ep.inverseVariance = ImageD(box, 0.0);
        for (std::size_t i = 0; i < model.pixels().size(); ++i) {
            double var = skyVar + std::max(model.data()[i], 0.0);
            ep.image.data()[i] = model.data()[i] + std::sqrt(var) * gauss(rng);
            ep.inverseVariance.data()[i] = 1.0 / var;
        }
        ep.id = "epoch" + std::to_string(k);
        s.epochs.push_back(std::move(ep));
        s.psfs.push_back(entry.shape);
    }
    return s;
}

inline Scene makeScene(const TrueGalaxy& g, const std::vector<double>& fluxNJy, int nEpochs,
                       double skyVar, std::mt19937_64& rng, int size = 31) {
    return makeScene(std::vector<TrueObject>{{g, fluxNJy}}, nEpochs, skyVar, rng, size);
}

}  // namespace drp::multifit::testing
