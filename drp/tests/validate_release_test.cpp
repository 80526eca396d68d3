// The release manager's chain on a simulated `tiny` sky (issue #10 "Must show"): drp simulate ->
// mpirun -np 2 drp run -> drp validate -> drp export. On the release: every truth object with
// S/N >= 10 appears exactly once among primary objects (checked here by brute force, not by the
// validate library's index), metrics JSON and HTML report are written, the report renders in
// headless Chromium, the FITS export reads back in astropy, a rerun of validate reports the
// trend, and a failing threshold makes validate exit 1.
#include <algorithm>
#include <cmath>
#include <iostream>
#include <limits>

#include "drp/drp/pipeline.h"
#include "drp/io/hdf5.h"
#include "drp/io/hdf5_table.h"
#include "drp/validate/metrics.h"
#include "drp/validate/report.h"
#include "run_drp.h"

using namespace drp;
namespace fs = std::filesystem;

namespace {

class ValidateRelease : public drp::testing::DrpProgramTest {
  protected:
    static inline fs::path repo;  // shared by the tests of this suite: simulated and run once
    static inline int runCode = -1;
    static inline std::string runLog;
    static void SetUpTestSuite() {
        repo = fs::temp_directory_path() / ("drp_validate_release_" + std::to_string(::getpid()));
        fs::remove_all(repo);
        const std::string log = repo.string() + ".log";
        const std::string cmd = std::string(DRP_EXE) + " simulate --preset tiny --out " +
                                repo.string() + " >" + log + " 2>&1 && " + MPIEXEC +
                                " --oversubscribe --bind-to none -np 2 " + DRP_EXE +
                                " run --repo " + repo.string() + " >>" + log + " 2>&1";
        const int status = std::system(cmd.c_str());
        runCode = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        runLog = slurp(log);
        fs::remove(log);
    }
    static void TearDownTestSuite() {
        if (!std::getenv("DRP_KEEP_REPO")) fs::remove_all(repo);
    }
    static std::vector<double> doubles(const Table& t, const std::string& name) {
        return t.column<double>(name);
    }
};

double sepArcsec(double ra1, double dec1, double ra2, double dec2) {
    const double d = M_PI / 180;
    const double c = std::sin(dec1 * d) * std::sin(dec2 * d) +
                     std::cos(dec1 * d) * std::cos(dec2 * d) * std::cos((ra1 - ra2) * d);
    return std::acos(std::clamp(c, -1.0, 1.0)) / d * 3600;
}

}  // namespace

TEST_F(ValidateRelease, EveryBrightTruthObjectAppearsExactlyOnceAmongPrimaries) {
    ASSERT_EQ(runCode, 0) << runLog;
    auto r = drp("validate --repo " + repo.string() + " --pa1-min-measurements 2");
    ASSERT_TRUE(r.code == 0 || r.code == 1) << r.err;  // 1: a gated metric failed (printed)
    EXPECT_TRUE(contains(r.out, " objects, ")) << r.out;
    EXPECT_TRUE(contains(r.out, "zero_point_rms_mmag")) << r.out;
    EXPECT_TRUE(contains(r.out, "report:  " + repo.string() + "/validate/report.html")) << r.out;
    std::cout << r.out;
    const auto metrics = validate::metricValuesFromJson(slurp(repo / "validate/metrics.json"));

    // Independent brute-force check. Truth S/N per band = true flux / the release's median PSF
    // flux error of primaries in that band (docs/validation.md), the best band counts.
    const Table obj = h5::readTable((repo / "release/object.h5").string(), "object");
    const Table truth = h5::readTable((repo / "truth/truth.h5").string(), "objects");
    const auto& prim = obj.column<Bool>("is_primary");
    const auto& ra = obj.column<double>("ra");
    const auto& dec = obj.column<double>("dec");
    std::vector<double> tSn(truth.numRows(), 0.0);
    for (const char* b : {"g", "r", "i"}) {
        std::vector<double> errs;
        const auto& e = obj.column<double>(std::string(b) + "_psf_flux_err");
        for (std::size_t i = 0; i < obj.numRows(); ++i)
            if (prim[i]) errs.push_back(e[i]);
        const double noise = validate::median(errs);
        const auto& f = truth.column<double>(std::string(b) + "_flux");
        for (std::size_t k = 0; k < tSn.size(); ++k) tSn[k] = std::max(tSn[k], f[k] / noise);
    }
    const auto& tRa = truth.column<double>("ra");
    const auto& tDec = truth.column<double>("dec");
    // The release area: positions some tract owns (the simulated sky extends past the field).
    const auto skymap = makeSkyMap(pipeline::readSkyMapConfig(pipeline::Repository(repo.string())));
    int nBright = 0, nOnce = 0;
    for (std::size_t k = 0; k < tSn.size(); ++k) {
        if (!(tSn[k] >= 10) || !skymap->findTractPatch(SpherePoint::fromDegrees(tRa[k], tDec[k])))
            continue;
        ++nBright;
        int n = 0;
        for (std::size_t i = 0; i < obj.numRows(); ++i)
            n += prim[i] && sepArcsec(tRa[k], tDec[k], ra[i], dec[i]) <= 1.0;
        if (n == 1)
            ++nOnce;
        else
            ADD_FAILURE() << "truth object " << k << " (S/N " << tSn[k] << ") at " << tRa[k] << ", "
                          << tDec[k] << " appears " << n << " times among primaries";
    }
    EXPECT_GT(nBright, 20);
    EXPECT_EQ(nOnce, nBright);
    // validate's metrics say the same.
    EXPECT_EQ(metrics.at("unique_sn10"), double(nOnce) / nBright);
    EXPECT_EQ(metrics.at("missing_sn10"), 0);
    EXPECT_EQ(metrics.at("duplicate_primary_pairs"), 0);
    EXPECT_EQ(metrics.at("n_objects"), double(obj.numRows()));
    for (const char* m : {"zero_point_rms_mmag", "source_astrometry_truth_rms_mas",
                          "pa1_intrinsic_mmag", "completeness_sn10", "failed_tasks"})
        EXPECT_TRUE(metrics.count(m)) << m << " not computed";
}

TEST_F(ValidateRelease, ReportRendersInHeadlessChromium) {
    ASSERT_EQ(runCode, 0) << runLog;
    auto r = drp("validate --repo " + repo.string());
    ASSERT_TRUE(r.code == 0 || r.code == 1) << r.err;
    const fs::path page = repo / "validate/report.html", png = dir / "report.png";
    ASSERT_TRUE(fs::exists(page));
    const std::string html = slurp(page);
    EXPECT_TRUE(contains(html, "<svg")) << "no plots";
    EXPECT_TRUE(contains(html, "Provenance"));
    if (!fs::exists("/usr/bin/chromium"))
        GTEST_SKIP() << "chromium not installed (scripts/setup.sh installs it)";
    const std::string cmd =
        "timeout 120 /usr/bin/chromium --headless --no-sandbox --disable-gpu --no-first-run"
        " --disable-background-networking --disable-component-update --disable-sync"
        " --user-data-dir=" +
        (dir / "profile").string() + " --screenshot=" + png.string() +
        " --window-size=1200,2400 file://" + page.string() + " >" +
        (dir / "chromium.log").string() + " 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << slurp(dir / "chromium.log");
    ASSERT_TRUE(fs::exists(png));
    // A blank page compresses to a few kB; the metric tables and plots do not.
    EXPECT_GT(fs::file_size(png), 30000u);
    if (const char* keep = std::getenv("DRP_KEEP_REPORT"))
        fs::copy_file(png, keep, fs::copy_options::overwrite_existing);
}

TEST_F(ValidateRelease, TrendGatingAndExport) {
    ASSERT_EQ(runCode, 0) << runLog;
    auto first = drp("validate --repo " + repo.string() + " --out " + (dir / "v1").string());
    ASSERT_TRUE(first.code == 0 || first.code == 1) << first.err;
    // A threshold no release can meet: gating fails, exit 1, the summary names the metric.
    const std::string th = writeFile("th.ini", "[thresholds]\nn_primary = min 1e9\n");
    auto r = drp("validate --repo " + repo.string() + " --thresholds " + th + " --compare " +
                 (dir / "v1/metrics.json").string() + " --out " + (dir / "v2").string());
    EXPECT_EQ(r.code, 1) << r.out << r.err;
    EXPECT_TRUE(contains(r.out, "FAILED:")) << r.out;
    EXPECT_TRUE(contains(r.out, "n_primary")) << r.out;
    EXPECT_TRUE(contains(r.out, "trend vs ")) << r.out;
    // Bad threshold file: usage error naming file and line.
    const std::string bad = writeFile("bad.ini", "n_primry = min 3\n");
    r = drp("validate --repo " + repo.string() + " --thresholds " + bad);
    EXPECT_EQ(r.code, 2);
    EXPECT_TRUE(contains(r.err, "bad.ini:1")) << r.err;

    // FITS export of the real release reads back in astropy with the same values.
    r = drp("export --repo " + repo.string() + " --out " + (dir / "object.fits").string());
    ASSERT_EQ(r.code, 0) << r.err;
    const char* py = std::getenv("DRP_PYTHON");
    const char* src = std::getenv("DRP_SOURCE_DIR");
    if (!py) GTEST_SKIP() << "DRP_PYTHON not set";
    const std::string cmd = std::string(py) + " " + (src ? src : ".") +
                            "/drp/tests/export_check.py " + (repo / "release/object.h5").string() +
                            " " + (dir / "object.fits").string() + " >" +
                            (dir / "py.log").string() + " 2>&1";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << slurp(dir / "py.log");
}
