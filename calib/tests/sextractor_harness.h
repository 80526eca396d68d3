// Side-by-side with Debian's `source-extractor` (SExtractor 2.25): the same synthetic detector
// image written as FITS, source-extractor run with settings equivalent to ours, and our
// SExtractor-equivalent subset (background, detection, centroid, one aperture flux). Shared by
// the comparison test (calib/tests/characterize_vs_sextractor.cpp, science) and the benchmark
// (bench/characterize_vs_sextractor.cpp, speed).
//
// Settings and why:
//   BACK_SIZE 128, BACK_FILTERSIZE 3        our BackgroundConfig (128-px cells, 3×3 median filter)
//   FILTER Y, 3×3 "1 2 1" kernel            SExtractor's default smoothing before thresholding
//   DETECT_THRESH 1.5, DETECT_MINAREA 5     SExtractor's defaults (per-pixel threshold on the
//                                           filtered image); ours is the 5σ matched filter
//   PHOT_APERTURES 10                       10-px diameter = our 5-px radius aperture
//   GAIN 1, SATUR_LEVEL 1e9                 the image is in electrons, no saturation
//   NTHREADS 1                              ours is single-threaded
// The FITS file is written with CFITSIO directly so that the calib tests need no drp::io.
#pragma once

#include <fitsio.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "characterize_test_support.h"
#include "drp/calib/background.h"
#include "drp/calib/centroid.h"
#include "drp/calib/detection.h"
#include "drp/calib/photometry.h"
#include "drp/core/error.h"

namespace drp::calib::testing {

/// PSF σ of the scene (pixels): a constant Gaussian.
constexpr double kSexScenePsfSigma = 1.7;

/// A `size`² synthetic visit: constant Gaussian PSF σ = 1.7 px, sky 300 e with a gradient,
/// 450 stars per 1024² (LSST-like source counts per CCD at 4k²) with S/N ~ 5–1500.
inline SyntheticImage makeSexScene(int size, std::uint64_t seed = 91) {
    const int nStars = static_cast<int>(450.0 * size * size / (1024.0 * 1024.0));
    PsfTruth psf;
    psf.width = psf.height = size;
    psf.sigma0 = kSexScenePsfSigma;
    SkyTruth sky;
    sky.level = 300;
    sky.gradX = 0.05;
    sky.gradY = 0.03;
    return makeImage(psf, sky, nStars, 300, 3e6, seed, 45, 30);
}

/// A plain FITS image (primary HDU).
inline void writeSexFits(const std::filesystem::path& path, const ImageF& img) {
    fitsfile* f = nullptr;
    int status = 0;
    std::string name(1, '!');  // '!' overwrites
    name += path.string();
    long naxes[2] = {img.width(), img.height()};
    fits_create_file(&f, name.c_str(), &status);
    fits_create_img(f, FLOAT_IMG, 2, naxes, &status);
    fits_write_img(f, TFLOAT, 1, naxes[0] * naxes[1], const_cast<float*>(img.data()), &status);
    fits_close_file(f, &status);
    if (status) {
        char msg[FLEN_STATUS];
        fits_get_errstatus(status, msg);
        throw ioError("writing " + path.string() + ": CFITSIO: " + msg);
    }
}

/// Write image.fits, default.param and gauss.conv into `dir`.
inline void writeSexInputs(const std::filesystem::path& dir, const ImageF& img) {
    writeSexFits(dir / "image.fits", img);
    std::ofstream(dir / "default.param")
        << "X_IMAGE\nY_IMAGE\nFLUX_APER(1)\nFLUXERR_APER(1)\nFLAGS\n";
    std::ofstream(dir / "gauss.conv") << "CONV NORM\n1 2 1\n2 4 2\n1 2 1\n";
}

/// The source-extractor command line for the files of writeSexInputs (run in `dir`; writes
/// image.cat and sex.log there).
inline std::string sexCommand(const std::filesystem::path& dir) {
    return "cd '" + dir.string() +
           "' && source-extractor image.fits -CATALOG_NAME image.cat -CATALOG_TYPE ASCII_HEAD"
           " -PARAMETERS_NAME default.param -FILTER Y -FILTER_NAME gauss.conv -DETECT_THRESH 1.5"
           " -DETECT_MINAREA 5 -BACK_SIZE 128 -BACK_FILTERSIZE 3 -PHOT_APERTURES 10 -GAIN 1"
           " -SATUR_LEVEL 1e9 -PIXEL_SCALE 1 -CHECKIMAGE_TYPE NONE -VERBOSE_TYPE QUIET"
           " -NTHREADS 1 > sex.log 2>&1";
}

struct SexRow {
    double x, y, flux, fluxErr;
    int flags;
};

/// The ASCII_HEAD catalogue, positions converted to drp's 0-based pixels.
inline std::vector<SexRow> readSexCatalog(const std::filesystem::path& path) {
    std::vector<SexRow> out;
    std::ifstream in(path);
    if (!in) throw ioError("cannot open source-extractor catalogue " + path.string());
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        std::istringstream ss(line);
        SexRow r;
        ss >> r.x >> r.y >> r.flux >> r.fluxErr >> r.flags;
        r.x -= 1;  // FITS 1-based → drp 0-based
        r.y -= 1;
        out.push_back(r);
    }
    return out;
}

struct SexMatch {
    int n20 = 0;               ///< unflagged source-extractor detections with S/N > 20
    int matched = 0;           ///< of which matched by ours within 1.5 px
    double medianRatio = NAN;  ///< median of ours / source-extractor aperture flux (matched)
};

/// Matches source-extractor's unflagged S/N > 20 detections to ours (nearest within 1.5 px);
/// `flux(k)` is our aperture flux (r = 5 px) of source k.
template <typename Flux>
SexMatch matchToSex(const std::vector<SexRow>& sex, const std::vector<double>& x,
                    const std::vector<double>& y, Flux&& flux) {
    std::vector<std::size_t> order(x.size());  // sources sorted by x for the matching
    for (std::size_t k = 0; k < order.size(); ++k) order[k] = k;
    std::sort(order.begin(), order.end(),
              [&](std::size_t a, std::size_t b) { return x[a] < x[b]; });
    SexMatch m;
    std::vector<double> ratio;
    for (const auto& s : sex) {
        if (s.flux / s.fluxErr < 20 || s.flags != 0) continue;
        ++m.n20;
        std::size_t best = x.size();
        double bd = 1.5;
        auto lo = std::lower_bound(order.begin(), order.end(), s.x - 1.5,
                                   [&](std::size_t k, double v) { return x[k] < v; });
        for (auto it = lo; it != order.end() && x[*it] <= s.x + 1.5; ++it) {
            double d = std::hypot(x[*it] - s.x, y[*it] - s.y);
            if (d < bd) {
                bd = d;
                best = *it;
            }
        }
        if (best == x.size()) continue;
        ++m.matched;
        ratio.push_back(flux(best) / s.flux);
    }
    if (!ratio.empty()) {
        std::nth_element(ratio.begin(), ratio.begin() + ratio.size() / 2, ratio.end());
        m.medianRatio = ratio[ratio.size() / 2];
    }
    return m;
}

/// Positions and aperture fluxes (r = 5 px) of the subset's sources.
struct SexSubsetResult {
    std::vector<double> x, y, flux;
};

/// What source-extractor does on this image, done by drp: background (estimated and
/// subtracted in place), detection, a centroid and one 5-px-radius aperture flux per peak, with
/// the PSF σ known (SExtractor's filter is fixed too).
inline SexSubsetResult runSexEquivalentSubset(MaskedImage& mi, double psfSigma) {
    BackgroundModel bg = estimateBackground(mi, BackgroundConfig{});
    subtractBackground(mi, bg);
    DetectionResult det = detectSources(mi, psfSigma, DetectionConfig{});
    SexSubsetResult r;
    r.x.reserve(det.numPeaks);
    r.y.reserve(det.numPeaks);
    r.flux.reserve(det.numPeaks);
    for (const auto& fp : det.footprints)
        for (const auto& pk : fp.peaks()) {
            CentroidResult c = measureCentroid(mi, Point2D(pk.position), psfSigma, 0);
            r.x.push_back(c.position.x);
            r.y.push_back(c.position.y);
            r.flux.push_back(measureApertureFlux(mi, c.position, 5.0, 0).flux);
        }
    return r;
}

}  // namespace drp::calib::testing
