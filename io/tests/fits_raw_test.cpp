// The raw-exposure file (io/raw_fits.h): exact round trip of pixels, amplifier geometry and
// electronics, VisitInfo, header WCS and metadata; bad input named by file and keyword.
#include <gtest/gtest.h>

#include <Eigen/Dense>

#include "drp/core/atomic_file.h"
#include "drp/core/error.h"
#include "drp/core/wcs.h"
#include "drp/io/fits.h"
#include "drp/io/raw_fits.h"
#include "fits_test_support.h"

namespace drp::fits {
namespace {

// A 2 x 2-amplifier detector of 40 x 30 pixels with 6 overscan columns per amplifier.
RawExposure makeRaw() {
    RawExposure r;
    const int aw = 20, ah = 15, os = 6;
    r.detectorBox = Box2I({0, 0}, {2 * aw, 2 * ah});
    r.pixels = ImageF(Box2I({0, 0}, {2 * (aw + os), 2 * ah}), 0.0f);
    for (int ay = 0; ay < 2; ++ay)
        for (int ax = 0; ax < 2; ++ax) {
            Amplifier a;
            a.name = "C" + std::to_string(ax) + std::to_string(ay);
            a.dataBox = Box2I({ax * (aw + os), ay * ah}, {aw, ah});
            a.overscanBox = Box2I({ax * (aw + os) + aw, ay * ah}, {os, ah});
            a.detectorBox = Box2I({ax * aw, ay * ah}, {aw, ah});
            a.gain = 1.1 + 0.1 * ax + 0.01 * ay;
            a.readNoise = 7.25 + ay;
            a.saturation = 150000 + 17 * ax;
            r.amps.push_back(a);
        }
    for (int y = 0; y < r.pixels.height(); ++y)
        for (int x = 0; x < r.pixels.width(); ++x)
            r.pixels(x, y) = static_cast<float>(20000 + 37 * x + 1009 * y % 262143);
    r.obsType = obs_type::kScience;
    r.visitInfo.visit = 1234;
    r.visitInfo.detector = 3;
    r.visitInfo.band = "r";
    r.visitInfo.mjd = 60310.123456789;
    r.visitInfo.exposureTime = 30;
    r.visitInfo.gain = 1.2;
    r.visitInfo.saturation = 1e5;
    r.visitInfo.readNoise = 8;
    r.visitInfo.airmass = 1.17;
    r.photoCalib = PhotoCalib{0.0123, 0.0001};
    Eigen::Matrix2d cd;
    cd << -5.5e-5, 1e-6, 1e-6, 5.5e-5;
    r.wcs = Wcs::makeTan(SpherePoint::fromDegrees(150.1, 2.2), {20.5, 15.5}, cd);
    r.metadata.set("TWILIGHT", false, "twilight flat");
    r.metadata.set("OBSERVER", "simulator");
    return r;
}

TEST(RawFits, RoundTripIsExact) {
    testing::ScratchDir dir("raw_fits_round_trip");
    const RawExposure r = makeRaw();
    PropertyList prov;
    prov.set("DRP_VERSION", "test");
    writeRawExposure(dir.file("raw.fits"), r, prov);
    const RawExposure b = readRawExposure(dir.file("raw.fits"));
    EXPECT_EQ(b.obsType, r.obsType);
    EXPECT_EQ(b.visitInfo, r.visitInfo);
    ASSERT_TRUE(b.photoCalib.has_value());
    EXPECT_EQ(b.photoCalib->nJyPerCount, r.photoCalib->nJyPerCount);
    EXPECT_EQ(b.detectorBox, r.detectorBox);
    EXPECT_EQ(b.amps, r.amps);
    ASSERT_EQ(b.pixels.bbox(), r.pixels.bbox());
    for (int y = 0; y < r.pixels.height(); ++y)
        for (int x = 0; x < r.pixels.width(); ++x) ASSERT_EQ(b.pixels(x, y), r.pixels(x, y));
    ASSERT_TRUE(b.wcs);
    for (Point2D p : {Point2D(0, 0), Point2D(39, 29), Point2D(12.5, 7.25)})
        EXPECT_LT(b.wcs->pixelToSky(p).separation(r.wcs->pixelToSky(p)).asArcseconds(), 1e-9);
    EXPECT_EQ(b.metadata.get<bool>("TWILIGHT"), false);
    EXPECT_EQ(b.metadata.get<std::string>("OBSERVER"), "simulator");
    EXPECT_EQ(b.metadata.get<std::string>("DRP_VERSION"), "test");
    EXPECT_FALSE(b.metadata.has("CTYPE1"));  // WCS keywords are not metadata
    EXPECT_FALSE(b.metadata.has("OBSTYPE"));
    // The file is the same bytes when written again (deterministic, no dates).
    writeRawExposure(dir.file("again.fits"), b, {});
    writeRawExposure(dir.file("once.fits"), r, prov);
    EXPECT_EQ(sha256File(dir.file("again.fits")), sha256File(dir.file("once.fits")));
}

TEST(RawFits, CalibrationExposureWithoutWcsOrBand) {
    testing::ScratchDir dir("raw_fits_bias");
    RawExposure r = makeRaw();
    r.obsType = obs_type::kBias;
    r.visitInfo.band = "";
    r.visitInfo.exposureTime = 0;
    r.wcs = nullptr;
    r.photoCalib.reset();
    writeRawExposure(dir.file("bias.fits"), r);
    const RawExposure b = readRawExposure(dir.file("bias.fits"));
    EXPECT_EQ(b.obsType, "bias");
    EXPECT_EQ(b.visitInfo.band, "");
    EXPECT_FALSE(b.wcs);
    EXPECT_FALSE(b.photoCalib.has_value());
}

TEST(RawFits, RejectsWhatCannotBeWritten) {
    testing::ScratchDir dir("raw_fits_reject");
    RawExposure r = makeRaw();
    r.pixels(3, 4) = 100.5f;
    EXPECT_THROW(writeRawExposure(dir.file("a.fits"), r), Error);
    r = makeRaw();
    r.metadata.set("NAMPS", 3);
    EXPECT_THROW(writeRawExposure(dir.file("b.fits"), r), Error);
    r = makeRaw();
    r.obsType = "twilight";
    EXPECT_THROW(writeRawExposure(dir.file("c.fits"), r), Error);
}

// Writes `r` (the writer does not judge geometry) and expects the reader's bad_input error to
// name the file and `expect`.
void expectBadGeometry(const testing::ScratchDir& dir, const RawExposure& r,
                       const std::string& expect) {
    const std::string path = dir.file("bad.fits");
    std::filesystem::remove(path);
    writeRawExposure(path, r);
    try {
        readRawExposure(path);
        FAIL() << "accepted; expected an error about " << expect;
    } catch (const Error& e) {
        EXPECT_EQ(e.errorClass(), "bad_input") << e.what();
        EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find(expect), std::string::npos) << e.what();
    }
}

TEST(RawFits, BadGeometryIsBadInputNamingFileAndProblem) {
    testing::ScratchDir dir("raw_fits_bad");
    RawExposure r = makeRaw();
    r.amps[1].dataBox = Box2I({26, 0}, {20, 99});
    expectBadGeometry(dir, r, "outside");
    r = makeRaw();
    r.amps[2].detectorBox = r.amps[0].detectorBox;
    expectBadGeometry(dir, r, "overlaps");
    r = makeRaw();
    r.amps[0].overscanBox = Box2I({20, 1}, {6, 14});
    expectBadGeometry(dir, r, "BIASSEC");
    r = makeRaw();
    r.amps[3].gain = 0;
    expectBadGeometry(dir, r, "GAIN");
    r = makeRaw();
    r.amps.pop_back();
    expectBadGeometry(dir, r, "tile");
    // A corrupted pixel fails the checksum.
    const std::string path = dir.file("raw.fits");
    writeRawExposure(path, makeRaw());
    {
        std::FILE* f = std::fopen(path.c_str(), "r+b");
        ASSERT_NE(f, nullptr);
        // The RAW data unit (52 x 30 int32 = 6240 bytes) fills the last three 2880-byte blocks.
        std::fseek(f, -3 * 2880 + 100, SEEK_END);
        std::fputc(0x55, f);
        std::fclose(f);
    }
    EXPECT_THROW(readRawExposure(path), Error);
}

TEST(RawFits, Sections) {
    EXPECT_EQ(toSection(Box2I({0, 0}, {20, 15})), "[1:20,1:15]");
    EXPECT_EQ(fromSection("[27:46,16:30]", "x"), Box2I({26, 15}, {20, 15}));
    EXPECT_THROW(fromSection("[0:3,1:2]", "x"), Error);
    EXPECT_THROW(fromSection("[3:1,1:2]", "x"), Error);
    EXPECT_THROW(fromSection("[1:3,1:2]x", "x"), Error);
}

}  // namespace
}  // namespace drp::fits
