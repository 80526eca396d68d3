// Side-by-side with SWarp (Bertin et al. 2002, Debian package `swarp`, binary `SWarp`): the same
// simulated inputs written as FITS, SWarp run with LANCZOS3 resampling and WEIGHTED combine onto
// the same TAN grid (an output .head file), and our warp + assemble. Shared by the comparison
// test (coadd/tests/swarp_compare_test.cpp) and the benchmark (bench/coadd_vs_swarp.cpp).
//
// SWarp settings and why:
//   RESAMPLING_TYPE LANCZOS3, OVERSAMPLING 1  same kernel, no sub-sampling (ours has none)
//   COMBINE_TYPE WEIGHTED, WEIGHT_TYPE MAP_VARIANCE, RESCALE_WEIGHTS N
//       inverse-variance weights from our variance planes, not re-measured by SWarp
//   WEIGHT_THRESH 1e30                         (variance above which a pixel is bad) SWarp's
//                                              default here silently gave zero weight to every
//                                              input noisier than the first
//   SUBTRACT_BACK N                            inputs are background-subtracted
//   FSCALASTRO_TYPE FIXED, FSCALE_KEYWORD FLXSCALE (= nJyPerCount)
//       flux-conserving pixel-area scaling and photometric scaling to nJy, as ours
//   NTHREADS 1                                 ours is single-threaded
// The inputs' variance planes are sky-only (no star shot noise), so SWarp's per-pixel weights
// equal our per-input weights up to the noise-correlation factor F (which differs by < 10%
// between inputs), and both combines are weighted means of the same resampled pixels.
#pragma once

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "drp/coadd/assemble.h"
#include "drp/coadd/wcs_transform.h"
#include "drp/core/wcs.h"
#include "drp/io/fits.h"
#include "synthetic.h"

namespace drp::coadd::testing {

struct SwarpScene {
    Box2I patch;
    std::shared_ptr<const Wcs> patchWcs;
    std::vector<Exposure> inputs;
    std::vector<Star> stars;
};

inline Eigen::Matrix2d cdRotated(double arcsecPerPixel, double rotDeg) {
    double s = arcsecPerPixel / 3600.0, t = rotDeg * M_PI / 180;
    Eigen::Matrix2d cd;
    cd << -s * std::cos(t), s * std::sin(t), s * std::sin(t), s * std::cos(t);
    return cd;
}

/// A patch of `patchSize`² 0.2" pixels and `nInputs` detectors of `detSize`² pixels covering
/// it, rotated by up to ±35°, pixel scales within ±3%, PSF FWHM 3–4.6 px, with `nStars` stars.
inline SwarpScene makeSwarpScene(int patchSize, int detSize, int nInputs, int nStars,
                                 unsigned seed) {
    SwarpScene s;
    s.patch = Box2I({0, 0}, {patchSize, patchSize});
    const SpherePoint centre = SpherePoint::fromDegrees(45.0, 10.0);
    s.patchWcs =
        Wcs::makeTan(centre, {0.5 * (patchSize - 1), 0.5 * (patchSize - 1)}, cdRotated(0.2, 0));
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> u(0, 1);
    for (int k = 0; k < nStars; ++k)
        s.stars.push_back({{20 + (patchSize - 40) * u(rng), 20 + (patchSize - 40) * u(rng)},
                           2e4 * std::pow(50.0, u(rng))});
    for (int k = 0; k < nInputs; ++k) {
        const double rot = -35 + 70 * u(rng), scale = 0.97 + 0.06 * u(rng);
        SpherePoint c = s.patchWcs->pixelToSky(
            {0.5 * patchSize + 6 * (u(rng) - 0.5), 0.5 * patchSize + 6 * (u(rng) - 0.5)});
        auto wcs = Wcs::makeTan(c, {0.5 * (detSize - 1), 0.5 * (detSize - 1)},
                                cdRotated(0.2 * scale, rot));
        InputSpec sp;
        sp.visit = 1000 + k;
        sp.box = Box2I({0, 0}, {detSize, detSize});
        sp.psf = std::make_shared<AnalyticPsf>(
            k % 2 ? AnalyticPsf::Kind::kMoffat : AnalyticPsf::Kind::kGaussian, 3.0 + 1.6 * u(rng),
            0.05 * (u(rng) - 0.5), 0.05 * (u(rng) - 0.5), 16);
        sp.nJyPerCount = 0.8 + 0.4 * u(rng);
        sp.skySigma = 8 + 6 * u(rng);
        sp.seed = seed * 100 + k;
        Exposure e(sp.box);
        e.setPsf(sp.psf);
        e.setWcs(wcs);
        e.setPhotoCalib(PhotoCalib{sp.nJyPerCount, 0});
        e.visitInfo().visit = sp.visit;
        e.visitInfo().detector = 0;
        WcsPixelTransform t(s.patchWcs, wcs);
        for (const Star& st : s.stars)
            addStar(e, *sp.psf, t.apply(st.target), st.flux / sp.nJyPerCount);
        std::normal_distribution<double> g(0, 1);
        std::mt19937_64 nr(sp.seed);
        const float var = static_cast<float>(sp.skySigma * sp.skySigma);
        for (int j = 0; j < detSize; ++j) {
            float* im = e.image().row(j);
            float* v = e.variance().row(j);
            for (int i = 0; i < detSize; ++i) {
                im[i] += static_cast<float>(sp.skySigma * g(nr));
                v[i] = var;  // sky-only variance (see the header comment)
            }
        }
        s.inputs.push_back(std::move(e));
    }
    return s;
}

/// One plain FITS image (primary HDU) with the exposure's WCS and FLXSCALE.
inline void writeSwarpImage(const std::string& path, const ImageF& img, const Wcs& wcs,
                            double flxscale) {
    auto f = fits::FitsFile::create(path);
    f.writeImage<float>(img.cview());
    f.writeCards(wcs.toFitsHeader());
    PropertyList md;
    md.set("FLXSCALE", flxscale, "nJy per count (SWarp photometric scaling)");
    f.writeMetadata(md);
    f.close();
}

/// Write inputs (in_k.fits + in_k.var.fits) and the output header coadd.head into `dir`.
inline void writeSwarpInputs(const SwarpScene& s, const std::string& dir) {
    for (std::size_t k = 0; k < s.inputs.size(); ++k) {
        const Exposure& e = s.inputs[k];
        writeSwarpImage(dir + "/in_" + std::to_string(k) + ".fits", e.image(), *e.wcs(),
                        e.photoCalib()->nJyPerCount);
        writeSwarpImage(dir + "/in_" + std::to_string(k) + ".var.fits", e.variance(), *e.wcs(),
                        1.0);
    }
    // SWarp reads the output grid from <IMAGEOUT_NAME base>.head: one card per line, then END.
    std::ofstream head(dir + "/coadd.head");
    head << "NAXIS   = 2\n";
    head << "NAXIS1  = " << s.patch.width() << "\n";
    head << "NAXIS2  = " << s.patch.height() << "\n";
    const std::string cards = s.patchWcs->toFitsHeader();
    for (std::size_t i = 0; i + 80 <= cards.size(); i += 80) {
        std::string card = cards.substr(i, 80);
        if (card.rfind("END", 0) == 0 && card.find_first_not_of(' ', 3) == std::string::npos)
            continue;
        head << card << "\n";
    }
    head << "END\n";
}

/// The SWarp command line for the files written by writeSwarpInputs (run in `dir`): combine
/// `combineType` (WEIGHTED, or CLIPPED for SWarp's outlier rejection), output `<outBase>.fits`.
inline std::string swarpCommand(const std::string& dir, std::size_t nInputs, int threads = 1,
                                const std::string& combineType = "WEIGHTED",
                                const std::string& outBase = "coadd") {
    std::ostringstream images, weights;
    for (std::size_t k = 0; k < nInputs; ++k) {
        images << " in_" << k << ".fits";
        weights << (k ? "," : "") << "in_" << k << ".var.fits";
    }
    std::ostringstream cmd;
    // SWarp reads the output grid from <IMAGEOUT_NAME base>.head (written for "coadd").
    cmd << "cd '" << dir << "' && ";
    if (outBase != "coadd") cmd << "cp coadd.head " << outBase << ".head && ";
    cmd << "SWarp" << images.str() << " -c /dev/null"
        << " -IMAGEOUT_NAME " << outBase << ".fits -WEIGHTOUT_NAME " << outBase << ".weight.fits"
        << " -WEIGHT_TYPE MAP_VARIANCE -WEIGHT_IMAGE " << weights.str() << " -RESCALE_WEIGHTS N"
        << " -WEIGHT_THRESH 1e30"  // default: the first image's level, which zeroes noisier inputs
        << " -COMBINE_TYPE " << combineType << " -RESAMPLING_TYPE LANCZOS3 -OVERSAMPLING 1"
        << " -SUBTRACT_BACK N -FSCALASTRO_TYPE FIXED -FSCALE_KEYWORD FLXSCALE -FSCALE_DEFAULT 1.0"
        << " -RESAMPLE_DIR . -DELETE_TMPFILES Y -WRITE_XML N -VERBOSE_TYPE QUIET"
        << " -NTHREADS " << threads << " -INTERPOLATE N -BLANK_BADPIXELS N > " << outBase
        << ".log 2>&1";
    return cmd.str();
}

/// Our pipeline on the same inputs: warp every input onto the patch, assemble.
inline CoaddResult runOurs(const SwarpScene& s, const AssembleConfig& cfg = {}) {
    std::vector<Warp> warps;
    for (const Exposure& e : s.inputs) warps.push_back(warpExposure(e, s.patchWcs, s.patch));
    return assembleCoadd(warps, s.patch, cfg, s.patchWcs);
}

/// Median of |ours − SWarp| / ours over pixels where ours > `minSnr` σ (bright sources), and
/// the number of such pixels.
inline std::pair<double, std::size_t> compareBright(const Exposure& ours, const ImageF& swarp,
                                                    double minSnr) {
    std::vector<double> rel;
    for (int y = ours.bbox().minY() + 5; y <= ours.bbox().maxY() - 5; ++y)
        for (int x = ours.bbox().minX() + 5; x <= ours.bbox().maxX() - 5; ++x) {
            const double v = ours.image().at({x, y}), var = ours.variance().at({x, y});
            if (!(var > 0) || !std::isfinite(var) || v < minSnr * std::sqrt(var)) continue;
            rel.push_back(std::abs(v - swarp(x - ours.bbox().minX(), y - ours.bbox().minY())) / v);
        }
    if (rel.empty()) return {0.0, 0};
    std::nth_element(rel.begin(), rel.begin() + rel.size() / 2, rel.end());
    return {rel[rel.size() / 2], rel.size()};
}

}  // namespace drp::coadd::testing
