// validateRelease on a synthetic simulated release with known defects, thresholds, JSON, trend
// and the HTML report (including a headless-Chromium render check).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include "drp/core/error.h"
#include "drp/validate/report.h"

using namespace drp;
using namespace drp::validate;

namespace {

// 400 truth objects on a 20x20 grid 6" apart (half stars), 1000 nJy noise per band so every
// object with flux >= 1e4 nJy has S/N >= 10. The release detects all but 4 bright ones, has one
// seam duplicate, fluxes exact for stars and 2% high for galaxies, positions 3 mas north.
struct Synthetic {
    ValidationInputs in;
    Synthetic() {
        Table truth;
        auto& tid = truth.addColumn<std::int64_t>("truth_id");
        auto& tra = truth.addColumn<double>("ra", "deg");
        auto& tdec = truth.addColumn<double>("dec", "deg");
        auto& star = truth.addColumn<Bool>("is_star");
        auto& rflux = truth.addColumn<double>("r_flux", "nJy");
        Table obj;
        auto& oid = obj.addColumn<std::int64_t>("object_id");
        auto& ora = obj.addColumn<double>("ra", "deg");
        auto& odec = obj.addColumn<double>("dec", "deg");
        auto& prim = obj.addColumn<Bool>("is_primary");
        auto& pf = obj.addColumn<double>("r_psf_flux", "nJy");
        auto& pfe = obj.addColumn<double>("r_psf_flux_err", "nJy");
        auto& mf = obj.addColumn<double>("r_model_flux", "nJy");
        auto& x = obj.addColumn<double>("x");
        auto& y = obj.addColumn<double>("y");
        auto& ne = obj.addColumn<std::int32_t>("n_epochs");
        for (int i = 0; i < 20; ++i)
            for (int j = 0; j < 20; ++j) {
                const int k = i * 20 + j;
                const double ra = 150 + i * 6.0 / 3600 / std::cos(2.0 * M_PI / 180),
                             dec = 2 + j * 6.0 / 3600;
                const bool isStar = k % 2 == 0;
                const double flux =
                    2e4 * std::pow(10.0, 0.4 * (k % 10) * 0.5);  // S/N 20..~200 (star) ...
                tid.push_back(k + 1), tra.push_back(ra), tdec.push_back(dec),
                    star.push_back(isStar);
                rflux.push_back(flux);
                if (k == 11 || k == 51 || k == 91 || k == 131) continue;  // four missed galaxies
                auto add = [&](double dra) {
                    oid.push_back(oid.size() + 1), ora.push_back(ra + dra),
                        odec.push_back(dec + 0.003 / 3600);
                    prim.push_back(true), pf.push_back(isStar ? flux : 0.9 * flux),
                        pfe.push_back(1000.0);
                    mf.push_back(isStar ? flux : 1.02 * flux);
                    x.push_back(30 * i + 1000), y.push_back(30 * j + 1000), ne.push_back(5);
                };
                add(0);
                if (k == 200) add(0.1 / 3600);  // seam duplicate 0.1" away
            }
        in.objects = obj;
        in.bands = {"r"};
        in.truthObjects = truth;
        Table zp, tz;
        auto& v = zp.addColumn<std::int64_t>("visit");
        auto& d = zp.addColumn<std::int64_t>("detector");
        auto& z = zp.addColumn<double>("zero_point");
        auto& c = zp.addColumn<Bool>("calibrated");
        auto& tv = tz.addColumn<std::int64_t>("visit");
        auto& td = tz.addColumn<std::int32_t>("detector");
        auto& tzz = tz.addColumn<double>("zero_point");
        for (int vi = 0; vi < 6; ++vi)
            for (int di = 0; di < 4; ++di) {
                // residual +-2 mmag alternating (RMS 2), offset 5 mmag
                const double res = ((vi + di) % 2 ? 0.002 : -0.002) + 0.005;
                v.push_back(vi), d.push_back(di), z.push_back(27 + 0.01 * vi + res),
                    c.push_back(true);
                tv.push_back(vi), td.push_back(di), tzz.push_back(27 + 0.01 * vi);
            }
        in.zeroPoints = zp;
        in.truthDetectors = tz;
        in.stages = {{"characterize", 24, 22, 1, 1, 0}, {"coadd", 4, 4, 0, 0, 0}};
        in.failures = {{"characterize", "v3-d1", "failed", "crash", 150.01, 2.01},
                       {"characterize", "v4-d2", "degraded", "psf_failed", 150.02, 2.02}};
    }
};

double value(const ValidationResult& r, const std::string& name) {
    const Metric* m = r.find(name);
    if (!m || !m->value) throw std::runtime_error("metric " + name + " not computed");
    return *m->value;
}

}  // namespace

TEST(Report, KnownAnswersOnSyntheticRelease) {
    Synthetic s;
    ValidationConfig cfg;
    cfg.astrometryMinSn = 10;
    ValidationResult r = validateRelease(s.in, cfg, Thresholds::defaults());
    EXPECT_EQ(value(r, "n_primary"), 397);
    EXPECT_EQ(value(r, "duplicate_primary_pairs"), 1);
    EXPECT_EQ(value(r, "missing_sn10"), 4);
    EXPECT_NEAR(value(r, "completeness_sn10"), 396.0 / 400, 1e-12);
    EXPECT_NEAR(value(r, "unique_sn10"), 395.0 / 400, 1e-12);  // 4 missing + 1 duplicated
    EXPECT_NEAR(value(r, "purity_sn10"), 1.0, 1e-12);
    EXPECT_NEAR(value(r, "psf_flux_bias_stars"), 0.0, 1e-12);
    EXPECT_NEAR(value(r, "model_flux_bias_galaxies"), 0.02, 1e-9);
    // Both objects matched mutually are 3 mas off (the duplicate loses the mutual match).
    EXPECT_NEAR(value(r, "astrometry_truth_rms_mas"), 3.0, 1e-3);
    EXPECT_NEAR(value(r, "zero_point_rms_mmag"), 2.0, 1e-6);
    EXPECT_NEAR(value(r, "zero_point_offset_mmag"), 5.0, 1e-6);
    EXPECT_EQ(value(r, "failed_tasks"), 1);
    EXPECT_EQ(value(r, "degraded_tasks"), 1);
    EXPECT_FALSE(r.find("pa1_mmag")->value.has_value());  // no photocal stars given
    // Gating: the duplicate and the failed task fail; completeness 0.99 and uniqueness 0.9875
    // pass >= 0.98, galaxy bias 0.02 passes |x| <= 0.05, zero-point RMS 2 passes <= 3.
    auto failed = r.failedNames();
    std::sort(failed.begin(), failed.end());
    EXPECT_EQ(failed, (std::vector<std::string>{"duplicate_primary_pairs", "failed_tasks"}));
    EXPECT_FALSE(r.passed());
    ASSERT_EQ(r.plots.curves.size(), 1u);
    EXPECT_FALSE(r.plots.fluxResiduals.empty());
}

// Astrometry vs truth uses isolated stars only: a star with an unresolved neighbour (here 0.5"
// away with 30% of its flux) is measured at the light-weighted centroid of the two, 115 mas
// off, which says nothing about the calibration. With the cut the RMS stays the 3 mas of every
// other object; without it (flux ratio cut above any neighbour) that star enters.
TEST(Report, AstrometryVsTruthLeavesOutStarsWithUnresolvedNeighbours) {
    Synthetic s;
    Table& truth = *s.in.truthObjects;
    const double ra0 = truth.column<double>("ra")[0], dec0 = truth.column<double>("dec")[0];
    const double f0 = truth.column<double>("r_flux")[0];
    truth.column<std::int64_t>("truth_id").push_back(1000);
    truth.column<double>("ra").push_back(ra0);
    truth.column<double>("dec").push_back(dec0 + 0.5 / 3600);
    truth.column<Bool>("is_star").push_back(true);
    truth.column<double>("r_flux").push_back(0.3 * f0);
    ASSERT_EQ(s.in.objects.column<double>("ra")[0], ra0);
    s.in.objects.column<double>("dec")[0] = dec0 + 0.5 * 0.3 / 1.3 / 3600;
    ValidationConfig cfg;
    cfg.astrometryMinSn = 10;
    ValidationResult r = validateRelease(s.in, cfg, Thresholds::defaults());
    EXPECT_NEAR(value(r, "astrometry_truth_rms_mas"), 3.0, 1e-3);
    cfg.astrometryIsolationFluxRatio = 1e3;
    r = validateRelease(s.in, cfg, Thresholds::defaults());
    EXPECT_GT(value(r, "astrometry_truth_rms_mas"), 5.0);
}

// Local depth: the four missed galaxies lie where the coadd has no data (infinite variance), so
// they are not expected at all; truth objects where the variance is 1e6 times the median have
// 1000x the noise, S/N < 2 for every flux here, and leave the sample too.
TEST(Report, TruthSnFollowsTheLocalCoaddDepth) {
    Synthetic s;
    const auto& tRa = s.in.truthObjects->column<double>("ra");
    const auto& tDec = s.in.truthObjects->column<double>("dec");
    auto index = [&](double ra, double dec) {
        for (std::size_t k = 0; k < tRa.size(); ++k)
            if (std::abs(tRa[k] - ra) < 1e-6 && std::abs(tDec[k] - dec) < 1e-6) return int(k);
        return -1;
    };
    s.in.coaddDepth = [&](const std::string&, double ra, double dec) {
        const int k = index(ra, dec);
        if (k == 11 || k == 51 || k == 91 || k == 131) return CoaddDepth{INFINITY, 0.4};  // gap
        if (k >= 380 && k < 400) return CoaddDepth{1e6, 0.4};  // last grid row: 1000x noise
        return CoaddDepth{1.0, 0.4};  // the rest, and the primaries (3 mas north: k = -1)
    };
    ValidationResult r = validateRelease(s.in, ValidationConfig{}, Thresholds::defaults());
    // 400 - 4 unobserved - 20 too shallow = 376; the seam duplicate (k = 200) is among them.
    EXPECT_EQ(value(r, "missing_sn10"), 0);
    EXPECT_NEAR(value(r, "completeness_sn10"), 1.0, 1e-12);
    EXPECT_NEAR(value(r, "unique_sn10"), 375.0 / 376, 1e-12);
    // Galaxies with k % 10 == 1 (flux 2e4 * 10^0.2 nJy, point-source S/N 31.7) get a 2"
    // half-light radius: sigma 1.70" against the PSF's 0.4", the optimal-measurement noise is
    // sqrt(1 + (1.70 / 0.4)^2) = 4.36 times larger, S/N 7.3: 36 more leave the sample (the 4
    // in the gap and k = 381, 391 in the shallow row already had).
    auto& rEff = s.in.truthObjects->addColumn<double>("disk_r_eff", "arcsec");
    for (int k = 0; k < 400; ++k) rEff.push_back(k % 10 == 1 ? 2.0 : 0.3);
    r = validateRelease(s.in, ValidationConfig{}, Thresholds::defaults());
    EXPECT_NEAR(value(r, "unique_sn10"), 341.0 / 342, 1e-12);
    EXPECT_EQ(value(r, "unresolved_companions_sn10"), 0);
    // Two fainter stars (S/N 15) next to truth 2: 0.5" away, inside the PSF FWHM
    // (2.355 * 0.4" = 0.94"), it is blended under the PSF and leaves the sample; 1.5" away it is
    // resolvable, and missing (the one primary there is truth 2's).
    // A star of S/N 15 `sep` arcsec north of truth k.
    auto addStar = [&](int k, double sep) {
        Table& t = *s.in.truthObjects;
        const double ra = tRa[k], dec = tDec[k];
        t.column<std::int64_t>("truth_id").push_back(t.numRows() + 1);
        t.column<double>("ra").push_back(ra);
        t.column<double>("dec").push_back(dec + sep / 3600);
        t.column<Bool>("is_star").push_back(true);
        t.column<double>("r_flux").push_back(1.5e4);
        t.column<double>("disk_r_eff").push_back(0.0);
    };
    for (const double sep : {0.5, 1.5}) addStar(2, sep);
    r = validateRelease(s.in, ValidationConfig{}, Thresholds::defaults());
    EXPECT_EQ(value(r, "unresolved_companions_sn10"), 1);
    EXPECT_EQ(value(r, "missing_sn10"), 1);
    EXPECT_NEAR(value(r, "unique_sn10"), 341.0 / 343, 1e-12);
    // Two more next to truth 1, a galaxy of 2" half-light radius (observed: hypot(2, 0.94 / 2)
    // = 2.05"): 1.5" from its centre, beyond the PSF FWHM but on the galaxy's half-light
    // isophote, it is part of the galaxy's image and leaves the sample; 2.5" away it is
    // resolvable, and missing.
    for (const double sep : {1.5, 2.5}) addStar(1, sep);
    r = validateRelease(s.in, ValidationConfig{}, Thresholds::defaults());
    EXPECT_EQ(value(r, "unresolved_companions_sn10"), 2);
    EXPECT_EQ(value(r, "missing_sn10"), 2);
    EXPECT_NEAR(value(r, "unique_sn10"), 341.0 / 344, 1e-12);
    // Without the local depth the same release misses the 4 galaxies in the gap and the 4
    // stars (no truth object leaves the sample as a companion).
    s.in.coaddDepth = nullptr;
    r = validateRelease(s.in, ValidationConfig{}, Thresholds::defaults());
    EXPECT_EQ(value(r, "missing_sn10"), 8);
}

// Issue #6's pairs in the release: two resolved pairs (1.5" and 2" apart, PSF FWHM 0.94", flux
// ratios 1.67 and 2) with known measurement errors, and two configurations that are not pairs:
// a neighbour 21x fainter (ratio > 10) and one 0.5" away (unresolved). Each of those has a
// primary measured 50-100% off, so letting either in moves every median.
TEST(Report, BlendPairMetricsOnKnownPairs) {
    Synthetic s;
    Table& truth = *s.in.truthObjects;
    Table& obj = s.in.objects;
    // A second band, g: the same fluxes, so every grid object has its true colour.
    {
        auto r = truth.column<double>("r_flux");
        truth.addColumn<double>("g_flux", "nJy") = r;
        auto pf = obj.column<double>("r_psf_flux"), pfe = obj.column<double>("r_psf_flux_err"),
             mf = obj.column<double>("r_model_flux");
        obj.addColumn<double>("g_psf_flux", "nJy") = pf;
        obj.addColumn<double>("g_psf_flux_err", "nJy") = pfe;
        obj.addColumn<double>("g_model_flux", "nJy") = mf;
    }
    s.in.bands = {"g", "r"};
    s.in.coaddDepth = [](const std::string&, double, double) { return CoaddDepth{1.0, 0.4}; };
    ValidationConfig cfg;
    ValidationResult r = validateRelease(s.in, cfg, Thresholds::defaults());
    EXPECT_EQ(value(r, "blend_pair_objects"), 0);  // grid objects are 6" apart
    // A truth object `sep` arcsec north of grid object k with flux `f` (both bands), measured
    // by a primary at measured / true = mg (g) and mr (r).
    auto add = [&](int k, double sep, bool star, double f, double mg, double mr) {
        const double ra = truth.column<double>("ra")[k];
        const double dec = truth.column<double>("dec")[k] + sep / 3600;
        truth.column<std::int64_t>("truth_id").push_back(truth.numRows() + 1);
        truth.column<double>("ra").push_back(ra);
        truth.column<double>("dec").push_back(dec);
        truth.column<Bool>("is_star").push_back(star);
        truth.column<double>("r_flux").push_back(f);
        truth.column<double>("g_flux").push_back(f);
        obj.column<std::int64_t>("object_id").push_back(obj.numRows() + 1);
        obj.column<double>("ra").push_back(ra);
        obj.column<double>("dec").push_back(dec + 0.003 / 3600);
        obj.column<Bool>("is_primary").push_back(true);
        for (const char* b : {"g", "r"}) {
            const double m = std::string(b) == "g" ? mg : mr;
            obj.column<double>(std::string(b) + "_psf_flux").push_back(m * f);
            obj.column<double>(std::string(b) + "_psf_flux_err").push_back(1000.0);
            obj.column<double>(std::string(b) + "_model_flux").push_back(m * f);
        }
        obj.column<double>("x").push_back(0), obj.column<double>("y").push_back(0);
        obj.column<std::int32_t>("n_epochs").push_back(5);
    };
    const auto& tf = truth.column<double>("r_flux");
    // Pair 1: star 0 (S/N 20, measured exactly) and a star 1.5" away, S/N 12, r 10% high.
    add(0, 1.5, true, 1.2e4, 1.0, 1.10);
    // Pair 2: galaxy 1 (S/N 31.7, model flux 2% high) and a galaxy 2" away with half its flux,
    // g 6% and r 10% low.
    add(1, 2.0, false, 0.5 * tf[1], 0.94, 0.90);
    // Not pairs: star 4 with a neighbour 21x fainter 1.5" away (S/N 6: not in the sample
    // itself, but a neighbour), measured 2x; star 6 with a neighbour 0.5" away, inside the FWHM,
    // measured 1.5x.
    add(4, 1.5, true, tf[4] / 21, 2.0, 2.0);
    add(6, 0.5, true, 0.5 * tf[6], 1.5, 1.5);
    r = validateRelease(s.in, cfg, Thresholds::defaults());
    EXPECT_EQ(value(r, "blend_pair_objects"), 4);
    // |dF/F|: g {0, 0, 0.02, 0.06}, median 0.01; r {0, 0.10, 0.02, 0.10}, median 0.06: worst 0.06.
    EXPECT_NEAR(value(r, "blend_pair_flux_error"), 0.06, 1e-9);
    // |g - r error|: {0, 2.5 log10(1.1), 0, 2.5 log10(0.94 / 0.90)}, median of the middle two.
    EXPECT_NEAR(value(r, "blend_pair_colour_error"), 0.5 * 2.5 * std::log10(0.94 / 0.90), 1e-9);
    // Floors: truth S/N = flux / 1000 nJy (the median PSF flux error) in both bands, point-like
    // (no sizes in this truth table), galaxies √2: stars 20 and 12, galaxies 31.698 and 15.849.
    const double f1 = 2e4 * std::pow(10.0, 0.2);
    const double k = kSizeFittedFluxErrorFactor;
    EXPECT_NEAR(value(r, "blend_pair_flux_floor"),
                informationFloor({1 / 20.0, 1 / 12.0, k * 1000 / f1, k * 2000 / f1}), 1e-9);
    const double c = 2.5 / std::log(10.0) * std::sqrt(2.0);  // g and r alike
    EXPECT_NEAR(value(r, "blend_pair_colour_floor"),
                informationFloor({c / 20, c / 12, c * 1000 / f1, c * 2000 / f1}), 1e-9);
    EXPECT_EQ(r.find("blend_pair_flux_error_bright")->value.has_value(), false);  // S/N < 60
    cfg.blendPairBrightSn = 25;                                                   // galaxy 1 alone
    r = validateRelease(s.in, cfg, Thresholds::defaults());
    EXPECT_NEAR(value(r, "blend_pair_flux_error_bright"), 0.02, 1e-9);
    // Without the local depth (no PSF FWHM) nothing is measured.
    s.in.coaddDepth = nullptr;
    r = validateRelease(s.in, cfg, Thresholds::defaults());
    EXPECT_FALSE(r.find("blend_pair_objects")->value.has_value());
}

TEST(Report, ThresholdsIni) {
    Thresholds t = Thresholds::parseIni(
        "# comment\n[thresholds]\nzero_point_rms_mmag = max 5 ; looser\nfailed_tasks = none\n"
        "psf_flux_bias_stars = absmax 0.02\n",
        "t.ini", Thresholds::defaults());
    EXPECT_EQ(t.byMetric.at("zero_point_rms_mmag").limit, 5);
    EXPECT_EQ(t.byMetric.count("failed_tasks"), 0u);
    EXPECT_TRUE(t.byMetric.at("psf_flux_bias_stars").passes(-0.015));
    EXPECT_FALSE(t.byMetric.at("psf_flux_bias_stars").passes(-0.025));
    EXPECT_THROW(Thresholds::parseIni("zero_pint_rms = max 3\n", "t.ini", {}), Error);
    EXPECT_THROW(Thresholds::parseIni("zero_point_rms_mmag = below 3\n", "t.ini", {}), Error);
    EXPECT_THROW(Thresholds::parseIni("zero_point_rms_mmag = max 3 4\n", "t.ini", {}), Error);
    try {
        Thresholds::parseIni("\nfoo = max 1\n", "th.ini", {});
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("th.ini:2"), std::string::npos) << e.what();
    }
    // Round trip of the effective thresholds.
    Thresholds d = Thresholds::defaults();
    Thresholds back = Thresholds::parseIni(d.toIni(), "x", {});
    EXPECT_EQ(back.byMetric.size(), d.byMetric.size());
}

TEST(Report, JsonRoundTripAndTrend) {
    Synthetic s;
    ValidationResult r = validateRelease(s.in, {}, Thresholds::defaults());
    const std::string json = metricsToJson(r, "run-1", "2026-01-01T00:00:00Z");
    auto vals = metricValuesFromJson(json);
    EXPECT_EQ(vals.at("n_primary"), 397);
    EXPECT_NEAR(vals.at("zero_point_rms_mmag"), value(r, "zero_point_rms_mmag"), 1e-8);
    EXPECT_EQ(vals.count("pa1_mmag"), 0u);  // null
    EXPECT_THROW(metricValuesFromJson("{}"), Error);
    vals["n_primary"] = 390;
    auto trend = compareMetrics(vals, r);
    auto it =
        std::find_if(trend.begin(), trend.end(), [](auto& t) { return t.name == "n_primary"; });
    ASSERT_NE(it, trend.end());
    EXPECT_EQ(*it->previous, 390);
    EXPECT_EQ(*it->current, 397);
    EXPECT_NE(trendToText(trend).find("n_primary"), std::string::npos);
}

TEST(Report, HtmlRendersInHeadlessChromium) {
    Synthetic s;
    ValidationResult r = validateRelease(s.in, {}, Thresholds::defaults());
    const std::string html =
        reportToHtml(r, compareMetrics({{"n_primary", 390}}, r), "drp validation: test");
    EXPECT_NE(html.find("<svg"), std::string::npos);
    EXPECT_EQ(html.find("<script"), std::string::npos);  // self-contained, no JavaScript
    EXPECT_NE(html.find("FAILED"), std::string::npos);

    namespace fs = std::filesystem;
    const fs::path dir =
        fs::temp_directory_path() / ("drp_validate_report_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    const fs::path page = dir / "report.html", png = dir / "shot.png";
    std::ofstream(page) << html;
    const char* candidates[] = {"/usr/bin/chromium", "/usr/bin/chromium-browser"};
    std::string chromium;
    for (const char* c : candidates)
        if (fs::exists(c)) chromium = c;
    if (chromium.empty()) {
        fs::remove_all(dir);
        GTEST_SKIP() << "chromium not installed (scripts/setup.sh installs Debian's chromium); "
                        "HTML not rendered";
    }
    const std::string cmd =
        "timeout 120 " + chromium +
        " --headless --no-sandbox --disable-gpu --disable-quic --no-first-run"
        " --disable-background-networking --disable-component-update --disable-sync"
        " --user-data-dir=" +
        (dir / "profile").string() + " --screenshot=" + png.string() +
        " --window-size=1200,2000 file://" + page.string() + " > " + (dir / "log").string() +
        " 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    ASSERT_TRUE(fs::exists(png)) << "no screenshot";
    // Not blank: the PNG of a white page compresses to a few kB; tables and plots do not.
    const auto size = fs::file_size(png);
    EXPECT_GT(size, 30000u) << "screenshot suspiciously small (blank page?): " << size << " bytes";
    std::ifstream f(png, std::ios::binary);
    char sig[8];
    f.read(sig, 8);
    EXPECT_EQ(std::string(sig + 1, 3), "PNG");
    if (!std::getenv("DRP_KEEP_REPORT")) fs::remove_all(dir);
}

namespace {
// Two patches of one tract split at RA = raSeam; 20 x 20 stars 6" apart (S/N 100), the seam
// half-way between columns 9 and 10. Columns 8..11 lie within 10" of the seam.
struct SeamRelease {
    ValidationInputs in;
    static constexpr double kStep = 6.0 / 3600;
    double ra(int i) const { return 150 + i * kStep / std::cos(2.0 * M_PI / 180); }
    double dec(int j) const { return 2 + j * kStep; }
    double raSeam() const { return 0.5 * (ra(9) + ra(10)); }
    SeamRelease() {
        Table truth, obj;
        auto& tra = truth.addColumn<double>("ra", "deg");
        auto& tdec = truth.addColumn<double>("dec", "deg");
        auto& star = truth.addColumn<Bool>("is_star");
        auto& tf = truth.addColumn<double>("r_flux", "nJy");
        auto& ora = obj.addColumn<double>("ra", "deg");
        auto& odec = obj.addColumn<double>("dec", "deg");
        auto& prim = obj.addColumn<Bool>("is_primary");
        auto& tract = obj.addColumn<std::int32_t>("tract");
        auto& patch = obj.addColumn<std::int32_t>("patch");
        auto& nch = obj.addColumn<std::int32_t>("n_children");
        auto& pf = obj.addColumn<double>("r_psf_flux", "nJy");
        auto& pfe = obj.addColumn<double>("r_psf_flux_err", "nJy");
        auto& mf = obj.addColumn<double>("r_model_flux", "nJy");
        auto& ext = obj.addColumn<double>("extendedness");
        auto add = [&](double r, double d, bool p, int pa, double f) {
            ora.push_back(r), odec.push_back(d), prim.push_back(p), tract.push_back(0);
            patch.push_back(pa), nch.push_back(0), pf.push_back(f), pfe.push_back(1000);
            mf.push_back(f), ext.push_back(0);
        };
        for (int i = 0; i < 20; ++i)
            for (int j = 0; j < 20; ++j) {
                tra.push_back(ra(i)), tdec.push_back(dec(j)), star.push_back(true);
                tf.push_back(1e5);
                const int own = i < 10 ? 0 : 1;
                const bool atSeam = i >= 8 && i <= 11;
                // Two seam objects lost by their owner; primaries at the seam 3% faint.
                const bool lost = (i == 9 && j == 3) || (i == 10 && j == 5);
                if (!lost) add(ra(i), dec(j), true, own, atSeam ? 0.97e5 : 1e5);
                // The neighbour patch measures columns 9 and 10 again, 2% brighter than the
                // owner's primary.
                if (i == 9 || i == 10) add(ra(i), dec(j), false, 1 - own, 1.02 * 0.97e5);
            }
        in.objects = obj;
        in.bands = {"r"};
        in.truthObjects = truth;
        const double seam = raSeam();
        in.owner = [seam](double r, double) -> std::optional<std::pair<int, int>> {
            return std::pair<int, int>{0, r < seam ? 0 : 1};
        };
    }
};
}  // namespace

TEST(Report, SeamChecksFindMissingObjectsAndPhotometricJumps) {
    SeamRelease s;
    ValidationResult r = validateRelease(s.in, {}, Thresholds::defaults());
    EXPECT_EQ(value(r, "n_primary"), 398);
    EXPECT_EQ(value(r, "duplicate_primary_pairs"), 0);
    EXPECT_EQ(value(r, "seam_orphans"), 2);         // the two lost objects
    EXPECT_EQ(value(r, "seam_overlap_pairs"), 38);  // 40 copies, 2 without primary
    EXPECT_NEAR(value(r, "seam_overlap_flux_offset"), 0.02, 1e-12);
    EXPECT_NEAR(value(r, "seam_completeness_sn10"), 78.0 / 80, 1e-12);  // columns 8..11
    EXPECT_NEAR(value(r, "completeness_sn10"), 398.0 / 400, 1e-12);
    EXPECT_NEAR(value(r, "seam_flux_jump"), -0.03, 1e-12);
    auto failed = r.failedNames();
    std::sort(failed.begin(), failed.end());
    EXPECT_EQ(failed, (std::vector<std::string>{"seam_completeness_sn10", "seam_flux_jump",
                                                "seam_overlap_flux_offset"}));
    // The same release without seam defects passes every seam metric.
    SeamRelease clean;
    auto& f = clean.in.objects.column<double>("r_psf_flux");
    auto& m = clean.in.objects.column<double>("r_model_flux");
    std::fill(f.begin(), f.end(), 1e5), std::fill(m.begin(), m.end(), 1e5);
    ValidationResult rc = validateRelease(clean.in, {}, Thresholds::defaults());
    EXPECT_NEAR(value(rc, "seam_flux_jump"), 0.0, 1e-12);
    EXPECT_NEAR(value(rc, "seam_overlap_flux_offset"), 0.0, 1e-12);
    // Stars and galaxies are compared with their own kind: galaxies whose model fluxes are 5%
    // high everywhere, all away from the seams, make no jump (a median over both classes
    // would: -0.025, the seams holding only stars).
    auto& isStar = clean.in.truthObjects->column<Bool>("is_star");
    const auto& ora = clean.in.objects.column<double>("ra");
    for (int i = 0; i < 20; ++i)
        for (int j = 1; j < 20; j += 2)
            if (i < 8 || i > 11) isStar[std::size_t(i * 20 + j)] = false;
    for (std::size_t k = 0; k < ora.size(); ++k) {
        const int i = int(std::lround((ora[k] - clean.ra(0)) / (clean.ra(1) - clean.ra(0))));
        const int j = int(std::lround((clean.in.objects.column<double>("dec")[k] - clean.dec(0)) /
                                      SeamRelease::kStep));
        if ((i < 8 || i > 11) && j % 2 == 1) m[k] = 1.05e5;
    }
    rc = validateRelease(clean.in, {}, Thresholds::defaults());
    EXPECT_NEAR(value(rc, "seam_flux_jump"), 0.0, 1e-12);
    EXPECT_NEAR(value(rc, "seam_flux_jump_stars"), 0.0, 1e-12);
    EXPECT_FALSE(rc.find("seam_flux_jump_galaxies")->value.has_value());  // none at the seams
    EXPECT_NEAR(value(rc, "model_flux_bias_galaxies"), 0.05, 1e-9);
    // A class whose jump is measured no better than the tolerance cannot gate it: galaxies
    // with 30% scatter (error of their jump ~4%) whose seam median happens to be 2% low, stars
    // exact. The gate follows the stars, and both jumps are reported with their errors.
    for (int i = 8; i <= 11; ++i)
        for (int j = 1; j < 20; j += 2) isStar[std::size_t(i * 20 + j)] = false;
    std::mt19937_64 rng(5);
    std::normal_distribution<double> scatter(0, 0.3);
    for (std::size_t k = 0; k < ora.size(); ++k) {
        const int i = int(std::lround((ora[k] - clean.ra(0)) / (clean.ra(1) - clean.ra(0))));
        const int j = int(std::lround((clean.in.objects.column<double>("dec")[k] - clean.dec(0)) /
                                      SeamRelease::kStep));
        if (j % 2 == 1) m[k] = 1e5 * (1 + scatter(rng) + ((i >= 8 && i <= 11) ? -0.02 : 0));
    }
    rc = validateRelease(clean.in, {}, Thresholds::defaults());
    EXPECT_GT(value(rc, "seam_flux_jump_galaxies_err"), 0.01);
    EXPECT_NEAR(value(rc, "seam_flux_jump_stars_err"), 0.0, 1e-12);
    EXPECT_NEAR(value(rc, "seam_flux_jump"), value(rc, "seam_flux_jump_stars"), 1e-15);
    EXPECT_NEAR(value(rc, "seam_flux_jump"), 0.0, 1e-12);
}

TEST(Report, SingleVisitSourcesGiveRepeatabilityAndAstrometry) {
    // Every star observed in 4 r-band visits at S/N 200 (5.4 mmag) with 3 mmag of extra
    // scatter, positions 5 mas north of the truth.
    SeamRelease s;
    std::mt19937 rng(5);
    std::normal_distribution<double> g(0, 1);
    Table src;
    auto& band = src.addColumn<std::string>("band");
    auto& visit = src.addColumn<std::int64_t>("visit");
    auto& ra = src.addColumn<double>("ra", "deg");
    auto& dec = src.addColumn<double>("dec", "deg");
    auto& flux = src.addColumn<double>("psf_flux", "nJy");
    auto& err = src.addColumn<double>("psf_flux_err", "nJy");
    const double sigma = 1.0857 / 200;
    for (int v = 0; v < 4; ++v)
        for (int i = 0; i < 20; ++i)
            for (int j = 0; j < 20; ++j) {
                band.push_back("r"), visit.push_back(v);
                ra.push_back(s.ra(i)), dec.push_back(s.dec(j) + 0.005 / 3600);
                const double dm = sigma * g(rng) + 0.003 * g(rng);
                flux.push_back(1e5 * std::pow(10.0, -0.4 * dm)), err.push_back(1e5 / 200);
            }
    s.in.sources = src;
    ValidationResult r = validateRelease(s.in, {}, Thresholds::defaults());
    // Stars = primaries (398; a source whose primary was lost has no star to join).
    EXPECT_EQ(value(r, "pa1_n_stars"), 398);
    EXPECT_NEAR(value(r, "pa1_noise_mmag"), 1000 * sigma, 0.1);  // errors vary with the flux
    // 398 stars x 3 dof: ~0.4 mmag statistical error on 3 mmag against 5.4 mmag noise.
    EXPECT_NEAR(value(r, "pa1_intrinsic_mmag"), 3.0, 1.2);
    // Raw PA1 ~ sqrt(5.4^2 + 3^2) = 6.2 mmag, less ~8% for the median of 3-dof deviations.
    EXPECT_NEAR(value(r, "pa1_mmag"), 5.8, 0.6);
    EXPECT_NEAR(value(r, "source_astrometry_truth_rms_mas"), 5.0, 1e-3);
    // Fewer visits than required: not computed (and does not gate).
    ValidationConfig cfg;
    cfg.pa1MinMeasurements = 5;
    ValidationResult r5 = validateRelease(s.in, cfg, Thresholds::defaults());
    EXPECT_FALSE(r5.find("pa1_intrinsic_mmag")->value.has_value());
    EXPECT_EQ(value(r5, "pa1_n_stars"), 0);
}

TEST(Report, SummaryNamesKeyMetricsAndVerdict) {
    Synthetic s;
    ValidationResult r = validateRelease(s.in, {}, Thresholds::defaults());
    const std::string text = summaryText(r);
    for (const char* k : {"n_objects", "zero_point_rms_mmag", "pa1_intrinsic_mmag",
                          "completeness_sn10", "unique_sn10", "duplicate_primary_pairs"})
        EXPECT_NE(text.find(k), std::string::npos) << k;
    EXPECT_NE(text.find("FAILED: duplicate_primary_pairs failed_tasks"), std::string::npos) << text;
    EXPECT_NE(text.find("pass (<= 3)"), std::string::npos) << text;  // zero point RMS 2 mmag
    // Every gated metric has its line, key or not (the verdict depends on each of them).
    for (const auto& m : r.metrics) {
        if (m.threshold) {
            EXPECT_NE(text.find("  " + m.name + " "), std::string::npos) << m.name;
        }
    }
    EXPECT_EQ(text.find("pa1_n_stars"), std::string::npos) << text;  // neither key nor gated
    const std::string json =
        metricsToJson(r, "run", "2026-01-01T00:00:00Z", {{"software_version", "x.y"}});
    EXPECT_NE(json.find("\"provenance\": {\"software_version\": \"x.y\"}"), std::string::npos);
    EXPECT_EQ(metricValuesFromJson(json).at("n_primary"), 397);
}
