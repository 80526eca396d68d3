// `drp skymap` as a user runs it: summary, position lookup (text and JSON), config files,
// discrete skymaps, and its error exits.
#include "run_drp.h"

namespace {

using DrpSkymap = drp::testing::DrpProgramTest;

TEST_F(DrpSkymap, SummaryOfTheDefaultSkymap) {
    auto r = drp("skymap");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_TRUE(contains(r.out, "tracts:        18938")) << r.out;
    EXPECT_TRUE(contains(r.out, "10x10 patches per tract, 3000x3000 inner pixels + 200 px"));
    EXPECT_TRUE(contains(r.out, "0.2 arcsec/pixel")) << r.out;
    EXPECT_TRUE(contains(r.out, "hash:          sha256:")) << r.out;
}

TEST_F(DrpSkymap, LocatesAPosition) {
    // COSMOS is tract 9813 of the 120-ring skymaps (HSC-SSP and LSST use the same rings).
    auto r = drp("skymap --ra 150.1 --dec 2.2 --json");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_TRUE(contains(r.out, "\"tract\": 9813")) << r.out;
    EXPECT_TRUE(contains(r.out, "\"patch_inner\": {\"min\": [")) << r.out;
    EXPECT_TRUE(contains(r.out, "\"num_tracts\": 18938")) << r.out;
    auto text = drp("skymap --ra 150.1 --dec 2.2");
    EXPECT_TRUE(contains(text.out, "tract:         9813")) << text.out;
    EXPECT_TRUE(contains(text.out, "patch outer:")) << text.out;
}

TEST_F(DrpSkymap, ConfigFileAndCommandLine) {
    auto cfg = writeFile("sky.ini", "num-rings = 60\npatch-border = 100\n");
    auto r = drp("skymap --json --config " + cfg);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_TRUE(contains(r.out, "\"num_rings\": 60")) << r.out;
    EXPECT_TRUE(contains(r.out, "\"patch_border\": 100")) << r.out;
    // The command line wins over the file.
    auto c = drp("skymap --json --num-rings 30 --config " + cfg);
    EXPECT_TRUE(contains(c.out, "\"num_rings\": 30")) << c.out;
    // --print-config reads back to the same skymap (same hash).
    auto dump = drp("skymap --num-rings 60 --print-config");
    ASSERT_EQ(dump.code, 0) << dump.err;
    EXPECT_TRUE(contains(dump.out, "pixel-scale = 0.2    # default")) << dump.out;
    auto again = drp("skymap --json --config " + writeFile("dump.ini", dump.out));
    auto direct = drp("skymap --json --num-rings 60");
    EXPECT_EQ(again.out, direct.out);
    EXPECT_EQ(drp("skymap --config " + writeFile("bad.ini", "num_rings = 60\n")).code, 2);
}

TEST_F(DrpSkymap, DiscreteSkymap) {
    auto r =
        drp("skymap --skymap-type discrete --field 150,2,0.8 --field 151,2,0.8 "
            "--ra 150.6 --dec 2 --json");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_TRUE(contains(r.out, "\"type\": \"discrete\"")) << r.out;
    EXPECT_TRUE(contains(r.out, "\"num_tracts\": 2")) << r.out;
    EXPECT_TRUE(contains(r.out, "\"tract\": 1,")) << r.out;  // nearer centre
    // A position in no field is a runtime failure (exit 1), with the position named.
    auto miss = drp("skymap --skymap-type discrete --field 150,2,0.8 --ra 10 --dec 2");
    EXPECT_EQ(miss.code, 1);
    EXPECT_TRUE(contains(miss.err, "drp skymap: error: position (10, 2)")) << miss.err;
}

TEST_F(DrpSkymap, UsageErrors) {
    EXPECT_EQ(drp("skymap --ra 10").code, 2);
    EXPECT_EQ(drp("skymap --dec 100 --ra 0").code, 2);
    EXPECT_EQ(drp("skymap --field 1,2,3").code, 2);  // --field needs --skymap-type discrete
    EXPECT_EQ(drp("skymap --skymap-type discrete --field 1,2").code, 2);
    EXPECT_EQ(drp("skymap --skymap-type healpix").code, 2);
    auto bad = drp("skymap --pixel-scale -1");
    EXPECT_EQ(bad.code, 2);
    EXPECT_TRUE(contains(bad.err, "pixelScale")) << bad.err;
}

}  // namespace
