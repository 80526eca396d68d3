// Model fluxes on one coadd-like image, side by side with Debian's `source-extractor` model
// fitting (FLUX_MODEL of a SPHEROID+DISK fit) using a `psfex` PSF — the standard Astromatic
// workflow: source-extractor (FITS_LDAC with vignets) -> psfex (pixel basis, constant PSF,
// 1-pixel sampling) -> source-extractor with PSF_NAME and model-fitting parameters.
//
// The image: 720×720 px at 0.2"/px, background-subtracted, sky variance 25 e², GAIN 1, Moffat
// PSF of 0.9" FWHM (β = 3.5); 60 stars (S/N 100–1000, for psfex) and 120 isolated galaxies
// (exponential or de Vaucouleurs, r_e 0.3"–0.8", |e| ≤ 0.3, S/N 40–300) on a 48-px grid,
// rendered independently of both fitters (truth_render.h). Ours runs on 41×41 cutouts of the
// same pixels twice: with the PSF psfex derived (read from its .psf file), so both fitters see
// the same PSF, and with the true PSF (what the release's coadd PSF model stands for).
// Statistic: robust scatter and median of flux/truth − 1 over galaxies measured by both.
// Skips when source-extractor or psfex is not installed.
#include <fitsio.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "drp/core/error.h"
#include "drp/multifit/object_fit.h"
#include "test_scene.h"

using namespace drp;
using namespace drp::multifit;
using namespace drp::multifit::testing;
namespace fs = std::filesystem;

namespace {

void check(int status, const std::string& what) {
    if (!status) return;
    char msg[FLEN_STATUS];
    fits_get_errstatus(status, msg);
    throw ioError(what + ": CFITSIO: " + msg);
}

void writeFits(const fs::path& path, const ImageF& img) {
    fitsfile* f = nullptr;
    int status = 0;
    std::string name = "!" + path.string();
    long naxes[2] = {img.width(), img.height()};
    fits_create_file(&f, name.c_str(), &status);
    fits_create_img(f, FLOAT_IMG, 2, naxes, &status);
    fits_write_img(f, TFLOAT, 1, naxes[0] * naxes[1], const_cast<float*>(img.data()), &status);
    fits_close_file(f, &status);
    check(status, "writing " + path.string());
}

/// The PSF image of a constant psfex model (PSFVAR_DEGREES 0, PSF_SAMPLING 1): the first
/// PSF_MASK plane of the PSF_DATA table, normalised to unit sum.
ImageD readPsfex(const fs::path& path) {
    fitsfile* f = nullptr;
    int status = 0;
    fits_open_file(&f, path.c_str(), READONLY, &status);
    fits_movnam_hdu(f, BINARY_TBL, const_cast<char*>("PSF_DATA"), 0, &status);
    int col = 0, naxis = 0;
    long naxes[3] = {0, 0, 0};
    fits_get_colnum(f, CASEINSEN, const_cast<char*>("PSF_MASK"), &col, &status);
    fits_read_tdim(f, col, 3, &naxis, naxes, &status);
    check(status, "reading " + path.string());
    std::vector<float> buf(naxes[0] * naxes[1] * std::max(1L, naxes[2]));
    int anynul = 0;
    fits_read_col(f, TFLOAT, col, 1, 1, static_cast<long>(buf.size()), nullptr, buf.data(), &anynul,
                  &status);
    fits_close_file(f, &status);
    check(status, "reading " + path.string());
    const int w = static_cast<int>(naxes[0]), h = static_cast<int>(naxes[1]);
    ImageD img(Box2I({-(w / 2), -(h / 2)}, {w, h}), 0.0);
    double sum = 0;
    for (int i = 0; i < w * h; ++i) sum += buf[i];
    for (int i = 0; i < w * h; ++i) img.data()[i] = buf[i] / sum;
    return img;
}

struct TrueSource {
    TrueGalaxy g;
    double x, y, flux;
};

struct SexRow {
    double x, y, fluxModel, fluxModelErr;
    int flags;
};

std::vector<SexRow> readAscii(const fs::path& path) {
    std::vector<SexRow> out;
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        std::istringstream ss(line);
        SexRow r;
        ss >> r.x >> r.y >> r.fluxModel >> r.fluxModelErr >> r.flags;
        r.x -= 1;  // FITS 1-based -> 0-based
        r.y -= 1;
        out.push_back(r);
    }
    return out;
}

}  // namespace

TEST(VsSourceExtractor, ModelFluxScatterOnTheSameCoadd) {
    if (std::system("command -v source-extractor > /dev/null 2>&1") != 0 ||
        std::system("command -v psfex > /dev/null 2>&1") != 0)
        GTEST_SKIP() << "source-extractor / psfex not installed (Debian packages)";
    const int size = 720, step = 48, stamp = 47;
    const double skyVar = 25.0;
    const MoffatShape psf{0.9 * 5.0, 3.5, 0.0, 0.0};
    std::mt19937_64 rng(314);
    std::uniform_real_distribution<double> usub(-0.5, 0.5), ur(0.3, 0.8), ue(-0.3, 0.3),
        usnrG(40, 300), ulogSnrS(std::log(100.0), std::log(1000.0));
    std::vector<TrueSource> truth;
    ImageD model(Box2I({0, 0}, {size, size}), 0.0);
    const Eigen::Matrix2d a = 5.0 * Eigen::Matrix2d::Identity();  // pixels per arcsec
    int slot = 0;
    for (int gy = 0; gy < size / step; ++gy)
        for (int gx = 0; gx < size / step; ++gx, ++slot) {
            if (slot >= 180) continue;
            const bool star = slot % 3 == 0;
            TrueSource s;
            s.x = step / 2 + gx * step + usub(rng);
            s.y = step / 2 + gy * step + usub(rng);
            s.g.n = star ? 0 : (slot % 3 == 1 ? 1.0 : 4.0);
            s.g.rEff = ur(rng);
            s.g.e1 = ue(rng);
            s.g.e2 = ue(rng);
            double area =
                4 * M_PI * (std::pow(4.5 / 2.355, 2) + (star ? 0 : std::pow(s.g.rEff * 5, 2)));
            double snr = star ? std::exp(ulogSnrS(rng)) : usnrG(rng);
            s.flux = snr * std::sqrt(area * skyVar);
            const int cx = static_cast<int>(std::lround(s.x)),
                      cy = static_cast<int>(std::lround(s.y));
            Box2I box({cx - stamp / 2, cy - stamp / 2}, {stamp, stamp});
            ImageD img = renderTrue(s.g, psf, a, Eigen::Vector2d(s.x, s.y), box, s.flux);
            auto dst = model.subview(box.clippedTo(model.bbox()));
            for (int y = dst.bbox().minY(); y <= dst.bbox().maxY(); ++y)
                for (int x = dst.bbox().minX(); x <= dst.bbox().maxX(); ++x)
                    model.at({x, y}) += img.at({x, y});
            truth.push_back(s);
        }
    std::normal_distribution<double> gauss;
    ImageF image(model.bbox(), 0.0f);
    ImageD invVar(model.bbox(), 0.0);
    for (std::size_t i = 0; i < model.pixels().size(); ++i) {
        double var = skyVar + std::max(model.data()[i], 0.0);
        image.data()[i] = static_cast<float>(model.data()[i] + std::sqrt(var) * gauss(rng));
        invVar.data()[i] = 1.0 / var;
    }

    fs::path dir = fs::temp_directory_path() / ("drp_mf_sex_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    writeFits(dir / "coadd.fits", image);
    std::ofstream(dir / "prep.param") << "VIGNET(35,35)\nX_IMAGE\nY_IMAGE\nXWIN_IMAGE\nYWIN_IMAGE\n"
                                         "FLUX_APER(1)\nFLUXERR_APER(1)\nFLUX_RADIUS\nELONGATION\n"
                                         "FLAGS\nSNR_WIN\n";
    std::ofstream(dir / "model.param")
        << "X_IMAGE\nY_IMAGE\nFLUX_MODEL\nFLUXERR_MODEL\nFLAGS\nFLUX_SPHEROID\nFLUX_DISK\n";
    std::ofstream(dir / "gauss.conv") << "CONV NORM\n1 2 1\n2 4 2\n1 2 1\n";
    const std::string common =
        " -FILTER Y -FILTER_NAME gauss.conv -DETECT_THRESH 3 -DETECT_MINAREA 5 -BACK_TYPE MANUAL"
        " -BACK_VALUE 0 -GAIN 1 -SATUR_LEVEL 1e9 -PIXEL_SCALE 0.2 -SEEING_FWHM 0.9"
        " -PHOT_APERTURES 20 -CHECKIMAGE_TYPE NONE -VERBOSE_TYPE QUIET -NTHREADS 1";
    const std::string cmd =
        "cd " + dir.string() +
        " && source-extractor coadd.fits -CATALOG_NAME prep.cat -CATALOG_TYPE FITS_LDAC"
        " -PARAMETERS_NAME prep.param" +
        common +
        " > sex1.log 2>&1 && psfex prep.cat -PSF_SIZE 31,31 -PSF_SAMPLING 1.0 -PSFVAR_DEGREES 0"
        " -BASIS_TYPE PIXEL_AUTO -SAMPLE_FWHMRANGE 2,20 -SAMPLE_MINSN 50 -CHECKPLOT_TYPE NONE"
        " -CHECKIMAGE_TYPE NONE -WRITE_XML N -VERBOSE_TYPE QUIET > psfex.log 2>&1"
        " && source-extractor coadd.fits -CATALOG_NAME model.cat -CATALOG_TYPE ASCII_HEAD"
        " -PARAMETERS_NAME model.param -PSF_NAME prep.psf" +
        common + " > sex2.log 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << "reference tools failed; see " << dir;
    std::vector<SexRow> sex = readAscii(dir / "model.cat");
    ImageD psfexKernel = readPsfex(dir / "prep.psf");

    // Our PSFs: the psfex kernel and the true PSF, as Gaussian mixtures.
    MoffatPsf truePsf(psf, 15);
    const GaussianMixture mixPsfex = fitPsfMixture(psfexKernel, 4).mixture;
    const GaussianMixture mixTrue = fitPsfMixture(truePsf.computeKernelImage({0, 0}), 4).mixture;

    std::vector<double> sexFrac, psfexFrac, trueFrac;
    int unmatched = 0;
    for (const auto& s : truth) {
        if (s.g.n == 0) continue;
        const SexRow* best = nullptr;
        for (const auto& r : sex)
            if (std::hypot(r.x - s.x, r.y - s.y) < 2.0) best = &r;
        if (!best || !(best->fluxModel > 0)) {
            ++unmatched;
            continue;
        }
        const int cx = static_cast<int>(std::lround(s.x)), cy = static_cast<int>(std::lround(s.y));
        Box2I box = Box2I({cx - 20, cy - 20}, {41, 41}).clippedTo(model.bbox());
        double fl[2];
        for (int which = 0; which < 2; ++which) {
            Epoch ep;
            ep.band = 0;
            ep.uvToPixel = a;
            // Start from source-extractor's detection position, as a pipeline would.
            ep.refPixel = Eigen::Vector2d(best->x, best->y);
            ep.psf = which == 0 ? mixPsfex : mixTrue;
            ep.image = ImageD(box, 0.0);
            ep.inverseVariance = ImageD(box, 0.0);
            for (int y = box.minY(); y <= box.maxY(); ++y)
                for (int x = box.minX(); x <= box.maxX(); ++x) {
                    ep.image.at({x, y}) = image.at({x, y});
                    ep.inverseVariance.at({x, y}) = invVar.at({x, y});
                }
            ObjectInit init;
            init.rEff = 0.5;
            ObjectFit f = fitObject({ep}, 1, init, ObjectFitConfig{});
            fl[which] = f.modelFlux(0);
        }
        sexFrac.push_back(best->fluxModel / s.flux - 1);
        psfexFrac.push_back(fl[0] / s.flux - 1);
        trueFrac.push_back(fl[1] / s.flux - 1);
    }
    fs::remove_all(dir);
    std::printf(
        "galaxy model flux vs truth on the same coadd (%zu galaxies, %d unmatched)\n"
        "  %-36s %8s %8s\n"
        "  %-36s %+8.4f %8.4f\n"
        "  %-36s %+8.4f %8.4f\n"
        "  %-36s %+8.4f %8.4f\n",
        sexFrac.size(), unmatched, "", "bias", "scatter", "source-extractor FLUX_MODEL (psfex)",
        median(sexFrac), robustSigma(sexFrac), "drp multifit model flux (psfex PSF)",
        median(psfexFrac), robustSigma(psfexFrac), "drp multifit model flux (true PSF)",
        median(trueFrac), robustSigma(trueFrac));
    ASSERT_GE(sexFrac.size(), 100u);  // source-extractor measured almost all 120 galaxies
    // Ours must scatter less around the truth than source-extractor with the same PSF.
    EXPECT_LT(robustSigma(psfexFrac), robustSigma(sexFrac));
    EXPECT_LT(robustSigma(trueFrac), robustSigma(sexFrac));
    EXPECT_LE(std::abs(median(trueFrac)), 0.01);
}
