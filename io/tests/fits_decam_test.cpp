// DECam Community Pipeline triplets from ../shared/realdata/decam_legacypipe into Exposures.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "drp/core/error.h"
#include "drp/core/wcs.h"
#include "drp/io/decam.h"
#include "drp/io/fits.h"
#include "fits_test_support.h"

using namespace drp;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> decamImages(const std::string& root) {
    std::vector<std::string> out;
    for (const auto& e : fs::recursive_directory_iterator(root + "/decam_legacypipe")) {
        std::string name = e.path().filename().string();
        if (e.is_regular_file() && name.rfind("c4d_", 0) == 0 &&
            name.find("_ooi_") != std::string::npos &&
            e.path().string().find("/images/") != std::string::npos)
            out.push_back(e.path().string());
    }
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace

TEST(DecamCp, UtcToTai) {
    EXPECT_DOUBLE_EQ(fits::utcToTaiMjd(57124.3), 57124.3 + 35.0 / 86400);  // 2015-04
    EXPECT_DOUBLE_EQ(fits::utcToTaiMjd(58070.2), 58070.2 + 37.0 / 86400);  // 2017-11
    EXPECT_DOUBLE_EQ(fits::utcToTaiMjd(57300.0), 57300.0 + 36.0 / 86400);  // 2015-10
    EXPECT_THROW(fits::utcToTaiMjd(50000.0), Error);
    EXPECT_EQ(fits::DecamCpFiles::fromImagePath("/d/c4d_1_ooi_r_ls9.N4.fits").dq,
              "/d/c4d_1_ood_r_ls9.N4.fits");
    EXPECT_THROW(fits::DecamCpFiles::fromImagePath("/d/image.fits"), Error);
}

TEST(DecamCp, ReadsRealTriplets) {
    std::string root = drp::testing::realDataDir();
    if (root.empty())
        GTEST_SKIP() << "real data not found (DRP_SHARED_DIR/realdata); skipping DECam CP test";
    auto images = decamImages(root);
    ASSERT_GE(images.size(), 15u);
    drp::testing::ScratchDir dir("decam");
    int saturatedSeen = 0;
    for (const auto& ooi : images) {
        SCOPED_TRACE(ooi);
        auto files = fits::DecamCpFiles::fromImagePath(ooi);
        Exposure exp = fits::readDecamCp(files);
        // Independent reads of the raw planes and header.
        ImageF adu = fits::readImage<float>(ooi, 1);
        ImageF w = fits::readImage<float>(files.invvar, 1);
        Image<std::int32_t> dq = fits::readImage<std::int32_t>(files.dq, 1);
        auto hdr = fits::readHeader(ooi, 1);
        auto prim = fits::readHeader(ooi, 0);
        ASSERT_EQ(exp.bbox(), adu.bbox());
        EXPECT_EQ(exp.bbox().min(), (Point2I{1, 1}));  // LTV1 = LTV2 = -1 in these cutouts
        double gain = 0.5 * (hdr.metadata.get<double>("GAINA") + hdr.metadata.get<double>("GAINB"));
        EXPECT_EQ(exp.visitInfo().gain, gain);
        EXPECT_EQ(exp.visitInfo().visit, prim.metadata.get<std::int64_t>("EXPNUM"));
        EXPECT_EQ(exp.visitInfo().detector, hdr.metadata.get<std::int64_t>("CCDNUM"));
        EXPECT_EQ(exp.visitInfo().band, prim.metadata.get<std::string>("BAND"));
        EXPECT_NEAR(exp.visitInfo().mjd, prim.metadata.get<double>("MJD-OBS"), 40.0 / 86400);
        EXPECT_GT(exp.visitInfo().mjd, prim.metadata.get<double>("MJD-OBS"));
        EXPECT_EQ(exp.visitInfo().saturation, hdr.metadata.get<double>("SATURATE") * gain);
        int sat = 0;
        for (int j = 0; j < adu.height(); ++j)
            for (int i = 0; i < adu.width(); ++i) {
                ASSERT_EQ(exp.image()(i, j), static_cast<float>(adu(i, j) * gain));
                if (w(i, j) > 0) {
                    ASSERT_EQ(exp.variance()(i, j), static_cast<float>(gain * gain / w(i, j)));
                }
                bool satBit = (exp.mask()(i, j) & exp.mask().planes().bit("SAT")) != 0;
                ASSERT_EQ(satBit, dq(i, j) == 3);
                ASSERT_EQ(exp.mask()(i, j) == 0, dq(i, j) == 0 && w(i, j) > 0);
                sat += satBit;
            }
        saturatedSeen += sat > 0;
        // The WCS is the TPV of the header, moved to parent coordinates.
        auto fileWcs = Wcs::fromFitsHeader(hdr.cards, ooi);
        ASSERT_TRUE(exp.wcs());
        EXPECT_EQ(exp.wcs()->projection(), "TPV");
        for (Point2D p : {Point2D(0, 0), Point2D(20, 30), Point2D(-500, 1000)})
            EXPECT_LT(exp.wcs()
                          ->pixelToSky(p + Extent2D{1, 1})
                          .separation(fileWcs->pixelToSky(p))
                          .asMilliarcseconds(),
                      1e-6);
        EXPECT_FALSE(exp.metadata().has("CTYPE1"));
        EXPECT_FALSE(exp.metadata().has("PV1_7"));
        EXPECT_EQ(exp.metadata().get<std::string>("PROCTYPE"), "InstCal");
        // And it survives our own file format (TPV written by WCSLIB, xy0 != 0).
        std::string out = dir.file("decam.fits");
        fits::writeExposure(out, exp);
        Exposure back = fits::readExposure(out);
        EXPECT_EQ(back.image(), exp.image());
        EXPECT_EQ(back.mask(), exp.mask());
        EXPECT_EQ(back.visitInfo(), exp.visitInfo());
        EXPECT_LT(back.wcs()
                      ->pixelToSky(Point2D(10, 10))
                      .separation(exp.wcs()->pixelToSky(Point2D(10, 10)))
                      .asMilliarcseconds(),
                  1e-6);
    }
    EXPECT_GE(saturatedSeen, 6) << "testcase6 has a saturated star in every exposure";
}

TEST(DecamCp, OtherInstrumentsAreRefused) {
    std::string root = drp::testing::realDataDir();
    if (root.empty()) GTEST_SKIP() << "real data not found (DRP_SHARED_DIR/realdata)";
    for (const auto& e :
         fs::recursive_directory_iterator(root + "/decam_legacypipe/mzlsbass2/images")) {
        std::string name = e.path().filename().string();
        if (name.find("_ooi_") == std::string::npos) continue;
        try {
            fits::readDecamCp(fits::DecamCpFiles::fromImagePath(e.path().string()));
            ADD_FAILURE() << "expected an Error for " << name;
        } catch (const Error& err) {
            EXPECT_EQ(err.errorClass(), "bad_input");
            EXPECT_NE(err.message().find(name), std::string::npos) << err.what();
            EXPECT_NE(err.message().find("not a DECam image"), std::string::npos) << err.what();
        }
    }
}
