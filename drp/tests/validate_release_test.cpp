// The release manager's chain on the demo release (issue #10 "Must show"; the release is made
// once by the demo_release CTest fixture, tests/demo_release_fixture.sh; run by hand without it,
// the test simulates and runs `tiny` itself): drp simulate -> mpirun -np 2 drp run -> drp validate
// -> drp export. On the release: every truth object with
// S/N >= 10 in the release area appears exactly once among primary
// objects (checked by brute force, not by the validate library's index; disabled until upstream
// causes are fixed, see below), validate's uniqueness and completeness metrics agree with that
// count, metrics JSON and HTML report are written, the report renders in headless Chromium, the
// FITS export reads back in astropy, a rerun of validate reports the trend, a failed unit and a
// failing threshold make validate exit 1.
#include <algorithm>
#include <cmath>
#include <iostream>
#include <limits>
#include <map>
#include <set>

#include "drp/drp/pipeline.h"
#include "drp/io/fits.h"
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
    static inline bool fromFixture = false;
    static void SetUpTestSuite() {
        if (const char* fixture = std::getenv("DRP_DEMO_FIXTURE")) {
            // The demo release, simulated and run once by the demo_release CTest fixture.
            fromFixture = true;
            repo = fs::path(fixture) / "repo";
            runLog = slurp(fs::path(fixture) / "run.log");
            runCode = std::stoi("0" + slurp(fs::path(fixture) / "run.rc"));
            return;
        }
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
        if (!fromFixture && !std::getenv("DRP_KEEP_REPO")) fs::remove_all(repo);
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

namespace {

/// Brute force, independent of the validate library's sky index: for every truth object with
/// S/N >= 10 in the release area (a position some tract owns; the simulated sky extends past
/// the field) and not blended under the PSF (within the coadd PSF FWHM of a brighter truth
/// object), the number of primary objects within 1" whose nearest truth object it is. Truth
/// S/N per band = true flux / the
/// PSF flux error at the object's own position: the release's median PSF flux error of
/// primaries in that band times sqrt(coadd variance there / median coadd variance at the
/// primaries) and, for a galaxy, sqrt(1 + (sigma_gal / sigma_psf)^2) (the S/N of an optimal
/// total-flux measurement), and 0 where the band's coadd has no data (chip gaps, the survey
/// edge); best band (docs/validation.md).
struct OnceCount {
    int bright = 0, once = 0, missing = 0;
    std::vector<std::string> problems;  ///< objects not exactly once, with position and S/N
};
OnceCount countAppearances(const fs::path& repo) {
    const Table obj = h5::readTable((repo / "release/object.h5").string(), "object");
    const Table truth = h5::readTable((repo / "truth/truth.h5").string(), "objects");
    const auto& prim = obj.column<Bool>("is_primary");
    const auto& ra = obj.column<double>("ra");
    const auto& dec = obj.column<double>("dec");
    const auto& tRa = truth.column<double>("ra");
    const auto& tDec = truth.column<double>("dec");
    const pipeline::Repository r(repo.string());
    const auto skymap = makeSkyMap(pipeline::readSkyMapConfig(r));
    const SkyMapConfig smc = pipeline::readSkyMapConfig(r);
    const double pixel =
        (smc.type == "rings" ? smc.rings.tract : smc.discrete.tract).pixelScale.asArcseconds();
    // (patch, band) -> coadd variance plane and PSF sigma (arcsec)
    std::map<std::pair<int, std::string>, std::pair<ImageF, double>> coadds;
    auto coadd = [&](const std::string& band, double ra, double dec) {
        const double nan = std::numeric_limits<double>::quiet_NaN();
        const auto tp = skymap->findTractPatch(SpherePoint::fromDegrees(ra, dec));
        if (!tp) return std::make_pair(nan, nan);
        const auto key = std::make_pair(tp->tract * 100000 + tp->patchSequential, band);
        if (!coadds.count(key)) {
            using R = pipeline::Repository;
            coadds[key] = {fits::readExposure(r.abs(R::coadd(tp->tract, tp->patchSequential, band)))
                               .variance(),
                           h5::File::open(r.abs(R::coaddPsf(tp->tract, tp->patchSequential, band)))
                                   .attributes("/")
                                   .get<double>("psf_sigma") *
                               pixel};
        }
        const auto& [v, psfSigma] = coadds[key];
        const Point2I p{int(std::lround(tp->pixel.x)), int(std::lround(tp->pixel.y))};
        return std::make_pair(v.bbox().contains(p) ? double(v.at(p)) : nan, psfSigma);
    };
    const auto& isStar = truth.column<Bool>("is_star");
    const auto& diskR = truth.column<double>("disk_r_eff");
    const auto& bulgeR = truth.column<double>("bulge_r_eff");
    std::vector<double> tSn(truth.numRows(), 0.0), fwhm(truth.numRows(), 1e9),
        brightness(truth.numRows(), 0.0), rHalfMin(truth.numRows(), 1e9);
    for (const std::string b : {"g", "r", "i"}) {
        std::vector<double> errs, vars;
        const auto& e = obj.column<double>(b + "_psf_flux_err");
        for (std::size_t i = 0; i < obj.numRows(); ++i)
            if (prim[i]) {
                errs.push_back(e[i]);
                const double v = coadd(b, ra[i], dec[i]).first;
                if (std::isfinite(v) && v > 0) vars.push_back(v);
            }
        const double noise = validate::median(errs), medianVar = validate::median(vars);
        const auto& f = truth.column<double>(b + "_flux");
        const auto& fBulge = truth.column<double>(b + "_bulge_flux");
        for (std::size_t k = 0; k < tSn.size(); ++k) {
            const auto [v, psfSigma] = coadd(b, tRa[k], tDec[k]);
            if (f[k] > 0) brightness[k] += f[k];
            if (psfSigma > 0) fwhm[k] = std::min(fwhm[k], 2.3548 * psfSigma);
            if (!(std::isfinite(v) && v > 0)) continue;
            // Optimal S/N of the total flux: a Gaussian of the truth half-light radius
            // (r_half = 1.1774 sigma) convolved with the coadd PSF.
            const double fb = f[k] > 0 ? std::clamp(fBulge[k] / f[k], 0.0, 1.0) : 0.0;
            const double rHalf = isStar[k] ? 0.0 : (1 - fb) * diskR[k] + fb * bulgeR[k];
            rHalfMin[k] = std::min(rHalfMin[k], rHalf);
            const double extended = 1 + std::pow(rHalf / 1.1774 / psfSigma, 2);
            tSn[k] = std::max(tSn[k], f[k] / (noise * std::sqrt(v / medianVar * extended)));
        }
    }
    // Each primary is an appearance of the truth object nearest to it, if within 1" (a pair of
    // true objects 0.6" apart, both measured, is two objects once each, not twice each).
    // A truth object within the coadd PSF FWHM (sharpest band) of a brighter one is blended
    // under the PSF, and one inside a brighter galaxy's observed half-light radius (intrinsic,
    // smallest over the bands, in quadrature with the PSF's FWHM / 2) lies on its image: part
    // of that object, not counted (a primary nearest to it is still its own). As validate's
    // unresolved_companions_sn10.
    std::vector<bool> companion(tSn.size(), false);
    for (std::size_t k = 0; k < tSn.size(); ++k)
        for (std::size_t j = 0; j < tSn.size() && fwhm[k] < 1e9; ++j) {
            if (j == k || fwhm[j] >= 1e9) continue;
            const double rObs = std::hypot(rHalfMin[j] < 1e9 ? rHalfMin[j] : 0.0, fwhm[j] / 2);
            const double reach = std::max(fwhm[k], rObs);
            if (std::abs(tDec[j] - tDec[k]) * 3600 <= reach &&
                sepArcsec(tRa[k], tDec[k], tRa[j], tDec[j]) <= reach &&
                (brightness[j] > brightness[k] || (brightness[j] == brightness[k] && j < k)))
                companion[k] = true;
        }
    std::vector<int> appearances(tSn.size(), 0);
    for (std::size_t i = 0; i < obj.numRows(); ++i) {
        if (!prim[i]) continue;
        double best = 1.0;
        std::size_t nearest = tSn.size();
        for (std::size_t k = 0; k < tSn.size(); ++k) {
            if (std::abs(tDec[k] - dec[i]) > 1.0 / 3600) continue;  // cheap cut
            const double s = sepArcsec(tRa[k], tDec[k], ra[i], dec[i]);
            if (s <= best) best = s, nearest = k;
        }
        if (nearest < tSn.size()) ++appearances[nearest];
    }
    OnceCount c;
    for (std::size_t k = 0; k < tSn.size(); ++k) {
        if (!(tSn[k] >= 10) || companion[k]) continue;
        const auto owner = skymap->findTractPatch(SpherePoint::fromDegrees(tRa[k], tDec[k]));
        if (!owner) continue;
        // Within 0.2" of the edge of the release area (no tract beyond): whether the measured
        // position of an S/N ~ 10 object falls inside is chance; left out, as in the metrics.
        bool nearEdge = false;
        const SpherePoint here = SpherePoint::fromDegrees(tRa[k], tDec[k]);
        for (int d = 0; d < 8; ++d)
            nearEdge = nearEdge ||
                       !skymap->findTractPatch(here.offset(degrees(45.0 * d), arcseconds(0.2)));
        if (nearEdge) continue;
        ++c.bright;
        const int n = appearances[k];
        c.once += n == 1;
        c.missing += n == 0;
        if (n != 1)
            c.problems.push_back("truth object " + std::to_string(k) + " (S/N " +
                                 std::to_string(tSn[k]) + ", patch " +
                                 std::to_string(owner->patchSequential) + ") appears " +
                                 std::to_string(n) + " times among primaries");
    }
    return c;
}

}  // namespace

TEST_F(ValidateRelease, MetricsAgreeWithABruteForceCountOnTheRealRelease) {
    ASSERT_TRUE(runCode == 0 || runCode == 1) << runLog;  // 1: some unit failed (journaled)
    ASSERT_TRUE(fs::exists(repo / "release/object.h5")) << runLog;
    // tiny has 2 visits per band; the demo has the default's 5.
    auto r =
        drp("validate --repo " + repo.string() + (fromFixture ? "" : " --pa1-min-measurements 2"));
    ASSERT_TRUE(r.code == 0 || r.code == 1) << r.err;  // 1: a gated metric failed (printed)
    EXPECT_TRUE(contains(r.out, " objects, ")) << r.out;
    EXPECT_TRUE(contains(r.out, "zero_point_rms_mmag")) << r.out;
    EXPECT_TRUE(contains(r.out, "report:  " + repo.string() + "/validate/report.html")) << r.out;
    std::cout << r.out;
    const auto metrics = validate::metricValuesFromJson(slurp(repo / "validate/metrics.json"));
    const OnceCount c = countAppearances(repo);
    std::cout << c.once << " of " << c.bright << " truth objects with S/N >= 10 appear exactly "
              << "once among primaries, " << c.missing << " missing\n";
    EXPECT_GT(c.bright, 20);
    EXPECT_NEAR(metrics.at("unique_sn10"), double(c.once) / c.bright, 1e-9);
    EXPECT_EQ(metrics.at("missing_sn10"), c.missing);
    EXPECT_NEAR(metrics.at("completeness_sn10"), double(c.bright - c.missing) / c.bright, 1e-9);
    const Table obj = h5::readTable((repo / "release/object.h5").string(), "object");
    EXPECT_EQ(metrics.at("n_objects"), double(obj.numRows()));
    // A failed or blocked unit is reported and fails the gate.
    if (runCode != 0) {
        EXPECT_GE(metrics.at("failed_tasks") + metrics.at("blocked_tasks"), 1);
        EXPECT_EQ(r.code, 1) << "a failed run must fail validation";
    }
    for (const char* m : {"zero_point_rms_mmag", "source_astrometry_truth_rms_mas",
                          "pa1_intrinsic_mmag", "completeness_sn10", "failed_tasks"})
        EXPECT_TRUE(metrics.count(m)) << m << " not computed";
}

// Issue #10 "Must show": every truth object with S/N >= 10 appears exactly once among primary
// objects, on the demo release (companions blended into a brighter object's image left out, as
// countAppearances says). Demo release at 5f9f04e: 1173 of 1173. It was 1171 of 1178 at
// d1db7c2 (6 missing, 1 twice: deblender and multifit cases since fixed by residual peaks,
// spurious-peak pruning and the separate-source test); the last one missing, truth 4437, lies
// inside a brighter galaxy's half-light radius and is not separable (docs/validation.md).
TEST_F(ValidateRelease, EveryBrightTruthObjectAppearsExactlyOnceAmongPrimaries) {
    ASSERT_EQ(runCode, 0) << runLog;
    const OnceCount c = countAppearances(repo);
    for (const auto& p : c.problems) ADD_FAILURE() << p;
    EXPECT_GT(c.bright, 20);
    EXPECT_EQ(c.once, c.bright);
}

TEST_F(ValidateRelease, ReportRendersInHeadlessChromium) {
    ASSERT_TRUE(fs::exists(repo / "release/object.h5")) << runLog;
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
    ASSERT_TRUE(fs::exists(repo / "release/object.h5")) << runLog;
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
