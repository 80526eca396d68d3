// `drp export` (issue #10): the release Object table -> FITS binary table that astropy reads with
// the same values, types, units, descriptions and named flag bits (export_check.py compares
// h5py's reading of release/object.h5 with astropy's reading of the FITS file, exactly, NaN
// included); --primary-only; a missing release is a clear error naming the file.
#include <cmath>
#include <limits>

#include "drp/drp/release.h"
#include "drp/io/hdf5.h"
#include "drp/io/hdf5_table.h"
#include "run_drp.h"

using namespace drp;

namespace {

class ExportTest : public drp::testing::DrpProgramTest {
  protected:
    // A release catalog with every column type of the Object table (int64 ids near 2^62, int32,
    // float64 with NaN and extreme values, bool), written the way the release stage writes it.
    std::string writeRelease() {
        Table t;
        auto& id = t.addColumn<std::int64_t>("object_id", "", "unique object id");
        auto& tract = t.addColumn<std::int32_t>("tract", "", "tract id");
        auto& ra = t.addColumn<double>("ra", "deg", "ICRS right ascension");
        auto& prim = t.addColumn<Bool>(
            "is_primary", "",
            "inner patch, inner tract, not a deblended parent: unique on the sky (a description "
            "longer than a FITS card comment)");
        auto& flux = t.addColumn<double>("r_psf_flux", "nJy", "multi-epoch PSF flux in band r");
        auto& flags = t.addColumn<std::int64_t>("flags", "", "bit flags");
        for (int i = 0; i < 1000; ++i) {
            id.push_back(pipeline::packObjectId(18937, 99, i));
            tract.push_back(18937);
            ra.push_back(359.9999999999 - i * 1e-7);
            prim.push_back(i % 3 != 0);
            flux.push_back(i % 7 == 0    ? std::numeric_limits<double>::quiet_NaN()
                           : i % 11 == 0 ? -1e-300
                                         : 1.0 / (i + 1) * 1e6);
            flags.push_back(i % 5 == 0 ? pipeline::kFlagBlended | pipeline::kFlagDeblendSkipped
                                       : 0);
        }
        const std::string path = (dir / "repo/release/object.h5").string();
        h5::AtomicFile out(path);
        h5::writeTable(out.file(), "object", t);
        PropertyList prov;
        prov.set("DRP_BANDS", std::string("r"));
        prov.set("DRP_CONFIG_HASH", std::string(64, 'a'));
        out.file().setAttributes("/", prov);
        out.commit();
        return path;
    }
    int check(const std::string& h5, const std::string& fits, const std::string& extra = "") {
        const char* py = std::getenv("DRP_PYTHON");
        const char* src = std::getenv("DRP_SOURCE_DIR");
        const std::string cmd = std::string(py) + " " + (src ? src : ".") +
                                "/drp/tests/export_check.py " + h5 + " " + fits + " " + extra +
                                " >" + (dir / "py.log").string() + " 2>&1";
        const int status = std::system(cmd.c_str());
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
};

}  // namespace

TEST_F(ExportTest, AstropyReadsTheSameValuesUnitsAndFlagNames) {
    if (!std::getenv("DRP_PYTHON")) GTEST_SKIP() << "DRP_PYTHON not set";
    const std::string h5 = writeRelease();
    auto r = drp("export --repo " + (dir / "repo").string());
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_TRUE(contains(r.out, "1000 objects")) << r.out;
    const std::string fits = (dir / "repo/release/object.fits").string();
    EXPECT_EQ(check(h5, fits), 0) << slurp(dir / "py.log");

    r = drp("export --primary-only --repo " + (dir / "repo").string() + " --out " +
            (dir / "prim.fits").string());
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_TRUE(contains(r.out, "666 primary objects")) << r.out;
    EXPECT_EQ(check(h5, (dir / "prim.fits").string(), "--primary-only"), 0)
        << slurp(dir / "py.log");
}

TEST_F(ExportTest, MissingReleaseIsAClearError) {
    auto r = drp("export --repo " + (dir / "empty").string());
    EXPECT_EQ(r.code, 1);
    EXPECT_TRUE(contains(r.err, "release/object.h5: no release catalog")) << r.err;
    EXPECT_FALSE(std::filesystem::exists(dir / "empty/release/object.fits"));
}
