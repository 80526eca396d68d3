// Comparison with Debian's `source-extractor` (SExtractor 2.25) on the same synthetic image with
// equivalent settings: 128-px background mesh with a 3×3 filter, detection on the filtered image,
// 10-px-diameter apertures, GAIN 1 (the image is in electrons). Goals from the brief: ≥ 99% of
// SExtractor's S/N > 20 detections matched by ours, median aperture-flux ratio within 0.5% of 1.
// Wall times of both are printed (speed claims belong to bench/; this is not a timed test).
//
// The FITS file for source-extractor is written with CFITSIO directly (io's FITS writer was not
// on main when this was written). Skips when source-extractor is not installed.
#include <fitsio.h>
#include <gtest/gtest.h>

#include <sys/resource.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "characterize_test_support.h"
#include "drp/calib/centroid.h"
#include "drp/calib/characterize.h"

using namespace drp;
using namespace drp::calib;
using namespace drp::calib::testing;
namespace fs = std::filesystem;

namespace {

void writeFits(const fs::path& path, const ImageF& img) {
    fitsfile* f = nullptr;
    int status = 0;
    std::string name = "!" + path.string();  // '!' overwrites
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

struct SexRow {
    double x, y, flux, fluxErr;
    int flags;
};

}  // namespace

TEST(VsSourceExtractor, DetectionsAndApertureFluxes) {
    if (std::system("command -v source-extractor > /dev/null 2>&1") != 0)
        GTEST_SKIP() << "source-extractor not installed (Debian package source-extractor)";
    // 1024² synthetic visit: constant Gaussian PSF σ = 1.7 px, sky 300 e with a gradient,
    // 450 stars with S/N ~ 5–1500.
    // DRP_CALIB_SEX_SIZE=4096 runs the same comparison on a 4k² image at the same density
    // (~7200 stars, LSST-like source counts per CCD) for timing; the default keeps the test fast.
    const char* sizeEnv = std::getenv("DRP_CALIB_SEX_SIZE");
    const int size = sizeEnv ? std::max(256, std::atoi(sizeEnv)) : 1024;
    const int nStars = static_cast<int>(450.0 * size * size / (1024.0 * 1024.0));
    PsfTruth psf;
    psf.width = psf.height = size;
    psf.sigma0 = 1.7;
    SkyTruth sky;
    sky.level = 300;
    sky.gradX = 0.05;
    sky.gradY = 0.03;
    SyntheticImage im = makeImage(psf, sky, nStars, 300, 3e6, 91, 45, 30);

    fs::path dir = fs::temp_directory_path() / ("drp_calib_sex_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    writeFits(dir / "image.fits", im.exposure.image());
    {
        std::ofstream(dir / "default.param")
            << "X_IMAGE\nY_IMAGE\nFLUX_APER(1)\nFLUXERR_APER(1)\nFLAGS\n";
        std::ofstream(dir / "gauss.conv") << "CONV NORM\n1 2 1\n2 4 2\n1 2 1\n";
    }
    std::string cmd =
        "cd " + dir.string() +
        " && source-extractor image.fits -CATALOG_NAME image.cat -CATALOG_TYPE ASCII_HEAD"
        " -PARAMETERS_NAME default.param -FILTER Y -FILTER_NAME gauss.conv -DETECT_THRESH 1.5"
        " -DETECT_MINAREA 5 -BACK_SIZE 128 -BACK_FILTERSIZE 3 -PHOT_APERTURES 10 -GAIN 1"
        " -SATUR_LEVEL 1e9 -PIXEL_SCALE 1 -CHECKIMAGE_TYPE NONE -VERBOSE_TYPE QUIET"
        " -NTHREADS 1 > sex.log 2>&1";
    // CPU times as well as wall times: the test machine is shared, so wall times are noisy.
    auto cpuChildren = [] {
        rusage u{};
        getrusage(RUSAGE_CHILDREN, &u);
        return u.ru_utime.tv_sec + 1e-6 * u.ru_utime.tv_usec + u.ru_stime.tv_sec +
               1e-6 * u.ru_stime.tv_usec;
    };
    auto cpuSelf = [] {
        rusage u{};
        getrusage(RUSAGE_SELF, &u);
        return u.ru_utime.tv_sec + 1e-6 * u.ru_utime.tv_usec + u.ru_stime.tv_sec +
               1e-6 * u.ru_stime.tv_usec;
    };
    auto t0 = std::chrono::steady_clock::now();
    double c0 = cpuChildren();
    int rc = std::system(cmd.c_str());
    double tSex = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    double cSex = cpuChildren() - c0;
    ASSERT_EQ(rc, 0) << "source-extractor failed; see " << (dir / "sex.log");
    std::vector<SexRow> sex;
    {
        std::ifstream in(dir / "image.cat");
        std::string line;
        while (std::getline(in, line)) {
            if (line.empty() || line[0] == '#') continue;
            std::istringstream ss(line);
            SexRow r;
            ss >> r.x >> r.y >> r.flux >> r.fluxErr >> r.flags;
            r.x -= 1;  // FITS 1-based → drp 0-based
            r.y -= 1;
            sex.push_back(r);
        }
    }
    fs::remove_all(dir);
    ASSERT_GT(sex.size(), 200u);

    auto t1 = std::chrono::steady_clock::now();
    double c1 = cpuSelf();
    CharacterizeResult ours = characterize(im.exposure, CharacterizeConfig{});
    double tOurs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
    double cOurs = cpuSelf() - c1;
    // The SExtractor-equivalent subset (what source-extractor did here): background, detection,
    // centroids and one aperture flux per source, with the PSF σ known.
    double cSubset = 0, tSubset = 0;
    {
        auto t2 = std::chrono::steady_clock::now();
        double c2 = cpuSelf();
        MaskedImage mi = im.exposure.maskedImage();
        BackgroundModel bg = estimateBackground(mi, BackgroundConfig{});
        subtractBackground(mi, bg);
        DetectionResult det = detectSources(mi, ours.summary.initialPsfSigma, DetectionConfig{});
        double sum = 0;
        for (const auto& fp : det.footprints)
            for (const auto& pk : fp.peaks()) {
                CentroidResult c =
                    measureCentroid(mi, Point2D(pk.position), ours.summary.initialPsfSigma, 0);
                sum += measureApertureFlux(mi, c.position, 5.0, 0).flux;
            }
        tSubset = std::chrono::duration<double>(std::chrono::steady_clock::now() - t2).count();
        cSubset = cpuSelf() - c2;
        EXPECT_TRUE(std::isfinite(sum));
    }
    const auto& x = ours.sources.column<double>("x");
    const auto& y = ours.sources.column<double>("y");

    std::vector<std::size_t> order(x.size());  // sources sorted by x for the matching
    for (std::size_t k = 0; k < order.size(); ++k) order[k] = k;
    std::sort(order.begin(), order.end(),
              [&](std::size_t a, std::size_t b) { return x[a] < x[b]; });
    int n20 = 0, matched = 0;
    std::vector<double> ratio;
    for (const auto& s : sex) {
        if (s.flux / s.fluxErr < 20 || s.flags != 0) continue;
        ++n20;
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
        ++matched;
        ApertureFlux a =
            measureApertureFlux(ours.exposure.maskedImage(), {x[best], y[best]}, 5.0, 0);
        ratio.push_back(a.flux / s.flux);
    }
    std::sort(ratio.begin(), ratio.end());
    double med = ratio.empty() ? NAN : ratio[ratio.size() / 2];
    std::cout
        << "source-extractor: " << sex.size() << " objects, " << n20 << " unflagged with S/N > 20, "
        << tSex << " s wall, " << cSex
        << " s CPU (shell included); drp characterize (background, CR, detection, centroids, "
           "PSF model, "
        << "photometry): " << ours.sources.numRows() << " sources, " << tOurs << " s wall, "
        << cOurs
        << " s CPU; of which the SExtractor-equivalent subset (background, detection, centroid, "
        << "one aperture) " << tSubset << " s wall, " << cSubset << " s CPU; matched " << matched
        << "/" << n20 << "; median ap-flux ratio (r = 5 px) " << med << "\n";
    EXPECT_GE(double(matched) / n20, 0.99);
    EXPECT_NEAR(med, 1.0, 0.005);
}
