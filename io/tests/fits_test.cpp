// FITS exposure/image/header I/O: bit-exact round trips, astropy interoperability, bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <sstream>

#include "drp/core/atomic_file.h"
#include "drp/core/error.h"
#include "drp/core/wcs.h"
#include "drp/io/fits.h"
#include "fits_test_support.h"

using namespace drp;
namespace fs = std::filesystem;
using drp::testing::ScratchDir;

namespace {

std::shared_ptr<const Wcs> exampleWcs() {
    SipCoefficients sip;
    sip.order = 3;
    sip.a = sip.b = Eigen::MatrixXd::Zero(4, 4);
    sip.a(2, 0) = 2e-6;
    sip.a(0, 2) = -1e-6;
    sip.a(1, 2) = 3e-9;
    sip.b(1, 1) = 1.5e-6;
    sip.b(3, 0) = -2e-9;
    Eigen::Matrix2d cd;
    const double s = 0.2 / 3600, c = std::cos(0.3), n = std::sin(0.3);
    cd << -s * c, s * n, s * n, s * c;
    return Wcs::makeTanSip(SpherePoint::fromDegrees(150.25, 2.5), {40.5, 30.25}, cd, sip);
}

/// An exposure exercising every field, with awkward pixel values (NaN, ±inf, -0, denormals).
Exposure exampleExposure(Point2I xy0 = {17, -5}, Extent2I dims = {64, 48}) {
    Exposure exp(Box2I(xy0, dims));
    exp.mask().planes().addPlane("MY_PLANE");
    std::mt19937 rng(42);
    std::normal_distribution<float> g(100.f, 30.f);
    std::uniform_int_distribution<int> bits(0, (1 << 13) - 1);
    for (int j = 0; j < dims.y; ++j)
        for (int i = 0; i < dims.x; ++i) {
            exp.image()(i, j) = g(rng);
            exp.mask()(i, j) = bits(rng);
            exp.variance()(i, j) = std::abs(g(rng));
        }
    exp.image()(0, 0) = std::numeric_limits<float>::quiet_NaN();
    exp.image()(1, 0) = std::numeric_limits<float>::infinity();
    exp.image()(2, 0) = -0.0f;
    exp.image()(3, 0) = std::numeric_limits<float>::denorm_min();
    exp.variance()(0, 1) = std::numeric_limits<float>::infinity();
    exp.mask()(4, 0) = std::numeric_limits<std::int32_t>::min();  // bit 31 set
    exp.setWcs(exampleWcs());
    exp.setPhotoCalib(PhotoCalib{57.5, 0.25});
    VisitInfo& v = exp.visitInfo();
    v.visit = 20261125001234;
    v.detector = 42;
    v.band = "r";
    v.mjd = 61004.123456789012;
    v.exposureTime = 30.0;
    v.gain = 1.7;
    v.saturation = 123456.5;
    v.readNoise = 5.25;
    v.airmass = 1.234567890123;
    exp.metadata().set("FLAGGED", true, "a bool");
    exp.metadata().set("NSOURCES", 1234, "an int");
    exp.metadata().set("SKYLEVEL", 0.1 + 0.2, "a double that needs 17 digits");
    exp.metadata().set("OBSERVER", "O'Brien", "a quote inside");
    exp.metadata().set("CONFIG_HASH_LONG_NAME", std::string(150, 'x') + "end",
                       "long key and value");
    return exp;
}

bool sameBytes(const void* a, const void* b, std::size_t n) {
    return std::memcmp(a, b, n) == 0;
}

template <typename T>
bool bitIdentical(const Image<T>& a, const Image<T>& b) {
    return a.bbox() == b.bbox() &&
           sameBytes(a.data(), b.data(), sizeof(T) * static_cast<std::size_t>(a.bbox().area()));
}

std::vector<Point2D> arrayGrid(Extent2I dims) {
    std::vector<Point2D> g;
    for (int i = 0; i <= 8; ++i)
        for (int j = 0; j <= 8; ++j) g.emplace_back((dims.x - 1) * i / 8.0, (dims.y - 1) * j / 8.0);
    return g;
}

}  // namespace

TEST(FitsExposure, RoundTripIsBitExact) {
    ScratchDir dir("fits_exposure");
    Exposure exp = exampleExposure();
    PropertyList prov;
    prov.set("DRPVERS", "1.2.3", "software version");
    prov.set("CFGHASH", "abc123");
    std::string path = dir.file("sub/exp.fits");
    fits::writeExposure(path, exp, prov);
    // Written atomically: only the final file remains.
    std::size_t files = 0;
    for (auto& e : fs::directory_iterator(dir.path() / "sub")) files += e.is_regular_file();
    EXPECT_EQ(files, 1u);

    Exposure back = fits::readExposure(path);
    EXPECT_TRUE(bitIdentical(back.image(), exp.image()));
    EXPECT_TRUE(bitIdentical(back.variance(), exp.variance()));
    EXPECT_TRUE(bitIdentical(back.mask().image(), exp.mask().image()));
    EXPECT_EQ(back.mask().planes(), exp.mask().planes());
    EXPECT_EQ(back.bbox(), exp.bbox());
    EXPECT_EQ(back.visitInfo(), exp.visitInfo());
    ASSERT_TRUE(back.photoCalib().has_value());
    EXPECT_EQ(*back.photoCalib(), *exp.photoCalib());
    for (const auto& e : exp.metadata().entries()) {
        const auto* got = back.metadata().find(e.key);
        ASSERT_NE(got, nullptr) << e.key;
        EXPECT_EQ(got->value, e.value) << e.key;
        EXPECT_EQ(got->comment, e.comment) << e.key;
    }
    EXPECT_EQ(back.metadata().get<std::string>("DRPVERS"), "1.2.3");
    EXPECT_FALSE(back.metadata().has("VISIT"));  // VisitInfo is not duplicated into metadata
    ASSERT_TRUE(back.wcs());
    EXPECT_EQ(back.wcs()->projection(), "TAN-SIP");
    double maxMas = 0;
    for (const Point2D& p : arrayGrid(exp.bbox().dimensions())) {
        Point2D parent(p.x + exp.bbox().minX(), p.y + exp.bbox().minY());
        maxMas = std::max(maxMas, back.wcs()
                                      ->pixelToSky(parent)
                                      .separation(exp.wcs()->pixelToSky(parent))
                                      .asMilliarcseconds());
    }
    EXPECT_LT(maxMas, 1e-6);
}

TEST(FitsExposure, WithoutOptionalPartsAndAtOrigin) {
    ScratchDir dir("fits_exposure_min");
    Exposure exp(Box2I({0, 0}, {5, 3}));
    exp.image()(2, 1) = 7.f;
    std::string path = dir.file("e.fits");
    fits::writeExposure(path, exp);
    Exposure back = fits::readExposure(path);
    EXPECT_TRUE(bitIdentical(back.image(), exp.image()));
    EXPECT_FALSE(back.wcs());
    EXPECT_FALSE(back.photoCalib().has_value());
    EXPECT_EQ(back.visitInfo(), VisitInfo{});
    EXPECT_EQ(back.mask().planes(), MaskPlanes::defaults());
    // With xy0 = 0 the TAN-SIP WCS header written is exactly the Wcs's own.
    exp.setWcs(exampleWcs());
    fits::writeExposure(path, exp);
    EXPECT_EQ(fits::readExposure(path).wcs()->toFitsHeader(), exampleWcs()->toFitsHeader());
}

TEST(FitsExposure, SingleHdusHeadersAndMaskedImage) {
    ScratchDir dir("fits_hdus");
    Exposure exp = exampleExposure();
    std::string path = dir.file("exp.fits");
    fits::writeExposure(path, exp);
    EXPECT_TRUE(
        bitIdentical(fits::readImage<float>(path, std::string("VARIANCE")), exp.variance()));
    EXPECT_TRUE(bitIdentical(fits::readImage<float>(path, 1), exp.image()));
    ImageD asDouble = fits::readImage<double>(path, 1);
    EXPECT_EQ(asDouble(5, 5), static_cast<double>(exp.image()(5, 5)));
    Mask mask = fits::readMask(path);
    EXPECT_EQ(mask, exp.mask());
    MaskedImage mi = fits::readMaskedImage(path);
    EXPECT_TRUE(bitIdentical(mi.image(), exp.image()));
    EXPECT_EQ(mi.mask(), exp.mask());

    fits::FitsHeader h = fits::readHeader(path, std::string("MASK"));
    EXPECT_EQ(h.metadata.get<std::string>("EXTNAME"), "MASK");
    EXPECT_EQ(h.metadata.get<std::int64_t>("MP_MY_PLANE"), exp.mask().planes().index("MY_PLANE"));
    EXPECT_EQ(h.metadata.get<std::int64_t>("LTV1"), -17);
    EXPECT_EQ(h.metadata.get<std::string>("BAND"), "r");
    EXPECT_EQ(h.cards.size() % 80, 0u);
    auto fileWcs = Wcs::fromFitsHeader(h.cards, path);
    EXPECT_EQ(fileWcs->crpix().x, exp.wcs()->crpix().x - 17);
    EXPECT_EQ(fits::readHeader(path, 0).metadata.get<std::int64_t>("NAXIS"), 0);
}

TEST(FitsExposure, ReservedMetadataKeysAreRejected) {
    ScratchDir dir("fits_reserved");
    Exposure exp(Box2I({0, 0}, {2, 2}));
    exp.metadata().set("EXPTIME", 3.0);
    try {
        fits::writeExposure(dir.file("x.fits"), exp);
        FAIL() << "expected an Error";
    } catch (const Error& e) {
        EXPECT_EQ(e.errorClass(), "logic");
        EXPECT_NE(e.message().find("EXPTIME"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(fs::exists(dir.file("x.fits")));
    Exposure nan(Box2I({0, 0}, {2, 2}));
    nan.metadata().set("BADVALUE", std::nan(""));
    EXPECT_THROW(fits::writeExposure(dir.file("y.fits"), nan), Error);
    EXPECT_FALSE(fs::exists(dir.file("y.fits")));
}

TEST(FitsExposure, AstropyReadsWhatWeWrite) {
    if (drp::testing::python().empty()) GTEST_SKIP() << "DRP_PYTHON not set";
    ScratchDir dir("fits_astropy");
    Exposure exp = exampleExposure({-300, 1250}, {120, 90});
    std::string path = dir.file("exp.fits");
    fits::writeExposure(path, exp);
    auto grid = arrayGrid(exp.bbox().dimensions());
    {
        std::ofstream g(dir.file("grid.txt"));
        g.precision(17);
        for (const auto& p : grid) g << p.x << " " << p.y << "\n";
    }
    auto lines = drp::testing::runLines(drp::testing::python() + " " + drp::testing::sourceDir() +
                                        "/io/tests/fits_astropy_check.py exposure " + path + " " +
                                        dir.file("grid.txt") + " " + dir.file("compressed.fits"));
    auto sha = [](const auto& img) {
        return sha256Hex(
            std::string(reinterpret_cast<const char*>(img.data()),
                        sizeof(*img.data()) * static_cast<std::size_t>(img.bbox().area())));
    };
    std::map<std::string, std::string> got;
    std::vector<SpherePoint> sky;
    for (const auto& l : lines) {
        std::istringstream in(l);
        std::string tag, a, b;
        in >> tag >> a;
        std::getline(in >> std::ws, b);
        if (tag == "sky")
            sky.push_back(SpherePoint::fromDegrees(std::stod(a), std::stod(b)));
        else
            got[tag + " " + a] = b;
    }
    // The machine is little-endian, so our in-memory bytes are what astropy hashes.
    EXPECT_EQ(got["sha IMAGE"], sha(exp.image()));
    EXPECT_EQ(got["sha MASK"], sha(exp.mask().image()));
    EXPECT_EQ(got["sha VARIANCE"], sha(exp.variance()));
    EXPECT_EQ(got["dtype IMAGE"], "f4");
    EXPECT_EQ(got["dtype MASK"], "i4");
    EXPECT_EQ(got["key BAND"], "r");
    EXPECT_EQ(got["key VISIT"], "20261125001234");
    EXPECT_EQ(got["key LTV1"], "300");
    EXPECT_EQ(got["key CTYPE1"], "RA---TAN-SIP");
    EXPECT_EQ(got["plane MP_SAT"], "1");
    EXPECT_EQ(got["key LONGVALUE"], std::string(150, 'x') + "end");
    EXPECT_EQ(got["key QUOTED"], "O'Brien");
    // astropy evaluates SIP with its own code (not WCSLIB's): positions must agree to < 1e-6 px.
    ASSERT_EQ(sky.size(), grid.size());
    auto pix = exp.wcs()->skyToPixel(sky);
    double maxPix = 0;
    for (std::size_t i = 0; i < grid.size(); ++i) {
        Point2D parent(grid[i].x + exp.bbox().minX(), grid[i].y + exp.bbox().minY());
        maxPix = std::max(maxPix, (pix[i] - parent).norm());
    }
    EXPECT_LT(maxPix, 1e-6);
    std::printf("astropy vs drp WCS (TAN-SIP, xy0 = (-300, 1250)): max %.3g pixel\n", maxPix);
    // Tile-compressed copies written by astropy read back bit-exactly (lossless GZIP / RICE).
    ImageF cimg = fits::readImage<float>(dir.file("compressed.fits"), std::string("IMAGE"));
    EXPECT_TRUE(bitIdentical(cimg, exp.image()));
    Mask cmask = fits::readMask(dir.file("compressed.fits"), std::string("MASK"));
    EXPECT_EQ(cmask, exp.mask());
    auto h = fits::readHeader(dir.file("compressed.fits"), 1);
    EXPECT_EQ(h.metadata.get<std::int64_t>("NAXIS1"), 120);  // the image's header, not the table's
}

// ---- bad input ------------------------------------------------------------------------------

namespace {

void expectError(const std::function<void()>& f, const std::string& cls,
                 const std::vector<std::string>& mentions) {
    try {
        f();
        ADD_FAILURE() << "expected an Error of class " << cls;
    } catch (const Error& e) {
        EXPECT_EQ(e.errorClass(), cls) << e.what();
        for (const auto& m : mentions)
            EXPECT_NE(e.message().find(m), std::string::npos)
                << "'" << m << "' not in: " << e.what();
    }
}

void truncateTo(const std::string& from, const std::string& to, std::uintmax_t size) {
    fs::copy_file(from, to, fs::copy_options::overwrite_existing);
    fs::resize_file(to, size);
}

}  // namespace

TEST(FitsBadInput, MissingFile) {
    ScratchDir dir("fits_missing");
    std::string path = dir.file("nope.fits");
    expectError([&] { fits::readExposure(path); }, "not_found", {path, "no such file"});
    expectError([&] { fits::readHeader(path); }, "not_found", {path});
}

TEST(FitsBadInput, NotFits) {
    ScratchDir dir("fits_notfits");
    std::string path = dir.file("text.fits");
    std::ofstream(path) << "this is not a FITS file\n";
    expectError([&] { fits::readImage<float>(path, 0); }, "bad_input", {path, "not a FITS file"});
    std::string empty = dir.file("empty.fits");
    std::ofstream{empty};
    expectError([&] { fits::readExposure(empty); }, "bad_input", {empty, "empty"});
}

TEST(FitsBadInput, Truncated) {
    ScratchDir dir("fits_trunc");
    std::string good = dir.file("good.fits");
    fits::writeExposure(good, exampleExposure());
    auto size = fs::file_size(good);
    // Not a whole number of FITS blocks.
    std::string odd = dir.file("odd.fits");
    truncateTo(good, odd, size - 1000);
    expectError([&] { fits::readExposure(odd); }, "bad_input", {odd, "truncated"});
    // Cut at a block boundary inside the last HDU's data: CFITSIO hits end of file.
    std::string cut = dir.file("cut.fits");
    truncateTo(good, cut, size - 2 * 2880);
    expectError([&] { fits::readExposure(cut); }, "bad_input", {cut, "truncated"});
    expectError([&] { fits::readImage<float>(cut, std::string("VARIANCE")); }, "bad_input", {cut});
    // The intact HDUs before the cut still read.
    EXPECT_TRUE(bitIdentical(fits::readImage<float>(cut, 1), exampleExposure().image()));
}

TEST(FitsBadInput, MissingHdu) {
    ScratchDir dir("fits_hdu");
    std::string path = dir.file("exp.fits");
    fits::writeExposure(path, exampleExposure());
    expectError([&] { fits::readImage<float>(path, 7); }, "not_found",
                {path, "no HDU 7", "4 HDUs"});
    expectError([&] { fits::readImage<float>(path, std::string("PSF")); }, "not_found",
                {path, "EXTNAME 'PSF'"});
    expectError([&] { fits::readImage<float>(path, 0); }, "bad_input",
                {path, "HDU 0", "NAXIS = 0"});
}

TEST(FitsBadInput, CorruptPixelsFailTheChecksum) {
    ScratchDir dir("fits_flip");
    std::string path = dir.file("exp.fits");
    fits::writeExposure(path, exampleExposure());
    {
        std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(static_cast<std::streamoff>(fs::file_size(path) - 2880 - 100));
        char c = 0;
        f.read(&c, 1);
        f.seekp(static_cast<std::streamoff>(fs::file_size(path) - 2880 - 100));
        c ^= 0x10;
        f.write(&c, 1);
    }
    expectError([&] { fits::readExposure(path); }, "bad_input",
                {path, "VARIANCE", "does not match"});
}
