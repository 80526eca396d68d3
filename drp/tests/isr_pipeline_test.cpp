// The raw path end to end (issue #11): `drp simulate --raw` writes the same bytes with 1 and 2
// ranks; `mpirun -np 2 drp run` on a tiny raw repository builds the master calibrations, runs
// ISR, characterization, astrometry and the global photometric calibration; a raw whose flat
// series is missing fails with calibration_missing while the run goes on; the masters match the
// simulator's true calibration and carry provenance and validity; and the zero points of the raw
// path agree with those of the calibrated-image path of the same survey (same seed: same scene,
// independent noise). The runs stop after photocal (--stages): coadd, deblend, multifit and
// release read the same calexps in both paths, and multifit alone would cost ~2 CPU-minutes.
// Calibration series of 5 frames (not the default 10) keep the test fast; the default-count
// accuracy of the masters is calib/tests/isr_vs_sim.cpp's.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "drp/core/atomic_file.h"
#include "drp/io/fits.h"
#include "drp/io/hdf5_table.h"
#include "drp/jobs/journal.h"
#include "drp/jobs/json.h"
#include "run_drp.h"

namespace fs = std::filesystem;

namespace {

int run(const std::string& cmd) {
    const int status = std::system(cmd.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string slurp(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

using drp::testing::treeDigest;

std::string mpirun(int np) {
    return std::string(MPIEXEC) + " --allow-run-as-root --oversubscribe --bind-to none -np " +
           std::to_string(np) + " " + DRP_EXE;
}

// The detector whose g-band flats are removed from the raw repository before the run.
constexpr int kNoFlatDetector = 1;
// Biases, darks and flats per band in the calibration series.
constexpr int kFrames = 5;

class RawPipeline : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        ::setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
        ::setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
        root() = fs::temp_directory_path() / ("drp_isr_pipeline_" + std::to_string(::getpid()));
        fs::remove_all(root());
        fs::create_directories(root());
        auto log = [](const char* name) { return " >" + (root() / name).string() + " 2>&1"; };
        const std::string sim = " simulate --preset tiny --seed 7 --raw --calib-frames " +
                                std::to_string(kFrames) + " --out ";
        codes()["sim1"] =
            run(std::string(DRP_EXE) + sim + (root() / "raw1").string() + log("sim1.log"));
        codes()["sim2"] = run(mpirun(2) + sim + (root() / "raw").string() + log("sim2.log"));
        codes()["simcal"] = run(mpirun(2) + " simulate --preset tiny --seed 7 --out " +
                                (root() / "cal").string() + log("simcal.log"));
        if (codes()["sim1"] == 0 && codes()["sim2"] == 0) {
            digests()["raw1"] = treeDigest(root() / "raw1");
            digests()["raw2"] = treeDigest(root() / "raw");
            fs::remove_all(root() / "raw1");
        }
        // No g-band flats for one detector: its g-band raws cannot be calibrated.
        for (const auto& e : fs::recursive_directory_iterator(root() / "raw" / "raw")) {
            if (!e.is_regular_file() ||
                e.path().filename() != "det-" + std::to_string(kNoFlatDetector) + ".fits")
                continue;
            const auto h = drp::fits::readHeader(e.path().string(), 0).metadata;
            if (h.get<std::string>("OBSTYPE") == "flat" && h.get<std::string>("BAND") == "g") {
                fs::remove(e.path());
                ++removedFlats();
            }
        }
        const std::string stages =
            " --progress 0 --stages bias,dark,flat,isr,characterize,astrometry,photocal";
        codes()["runraw"] = run(mpirun(2) + " run --repo " + (root() / "raw").string() + stages +
                                log("runraw.log"));
        codes()["runcal"] = run(mpirun(2) + " run --repo " + (root() / "cal").string() + stages +
                                log("runcal.log"));
    }
    static void TearDownTestSuite() {
        if (!::testing::Test::HasFailure()) fs::remove_all(root());
    }
    static fs::path& root() {
        static fs::path p;
        return p;
    }
    static std::map<std::string, int>& codes() {
        static std::map<std::string, int> c;
        return c;
    }
    static std::map<std::string, std::map<std::string, std::string>>& digests() {
        static std::map<std::string, std::map<std::string, std::string>> d;
        return d;
    }
    static int& removedFlats() {
        static int n = 0;
        return n;
    }
    // Task events of the raw run's journal(s): (stage, id) -> last event.
    static std::map<std::pair<std::string, std::string>, drp::jobs::Json> tasks() {
        std::map<std::pair<std::string, std::string>, drp::jobs::Json> out;
        for (const auto& e :
             fs::directory_iterator(drp::jobs::journalDir((root() / "raw").string()))) {
            std::ifstream in(e.path());
            for (std::string line; std::getline(in, line);) {
                if (line.empty()) continue;
                drp::jobs::Json j = drp::jobs::Json::parse(line);
                if (j.stringOr("event") != "task") continue;
                const std::string state = j.stringOr("state");
                if (state != "done" && state != "degraded" && state != "failed" &&
                    state != "blocked")
                    continue;
                out[{j.stringOr("stage"), j.stringOr("id")}] = j;
            }
        }
        return out;
    }
};

}  // namespace

TEST_F(RawPipeline, SimulateRawIsByteIdenticalWithOneAndTwoRanks) {
    ASSERT_EQ(codes()["sim1"], 0) << slurp(root() / "sim1.log");
    ASSERT_EQ(codes()["sim2"], 0) << slurp(root() / "sim2.log");
    const auto& a = digests()["raw1"];
    const auto& b = digests()["raw2"];
    // 6 visits x 4 detectors science raws + (5 biases + 5 darks + 3 x 5 flats) x 4 detectors
    // + 4 x 5 true calibration frames + refcat, truth, skymap.
    EXPECT_EQ(a.size(), 24u + 100u + 20u + 3u);
    ASSERT_EQ(a.size(), b.size());
    for (const auto& [path, digest] : a) {
        auto it = b.find(path);
        ASSERT_NE(it, b.end()) << path;
        EXPECT_EQ(it->second, digest) << path << " differs between 1 and 2 ranks";
    }
}

TEST_F(RawPipeline, RunFromRawsCalibratesAndIsolatesTheMissingFlat) {
    ASSERT_EQ(codes()["sim2"], 0);
    EXPECT_EQ(removedFlats(), kFrames);
    // Exit code 1: the units without a flat failed (and their characterization is blocked);
    // everything else finished, including the global photometric calibration.
    EXPECT_EQ(codes()["runraw"], 1) << slurp(root() / "runraw.log");
    ASSERT_TRUE(fs::exists(root() / "raw" / "calib" / "photocal.h5"))
        << slurp(root() / "runraw.log");

    const auto t = tasks();
    std::map<std::string, int> done, failed;
    for (const auto& [key, ev] : t) {
        const std::string state = ev.stringOr("state");
        if (state == "done" || state == "degraded") ++done[key.first];
        if (state == "failed" && key.first != "isr") {
            // Downstream science failures (e.g. too few PSF stars on a 512^2 detector) are not
            // this test's business, but no calibration product may be missing there.
            EXPECT_NE(ev.stringOr("class"), "calibration_missing") << key.second;
            std::cout << "note: " << key.first << ":" << key.second << " failed ["
                      << ev.stringOr("class") << "] " << ev.stringOr("error") << "\n";
        } else if (state == "failed") {
            ++failed[key.first];
            // Only the isr units of the g band on the flat-less detector fail, and they say why.
            EXPECT_EQ(ev.stringOr("class"), "calibration_missing");
            EXPECT_NE(key.second.find("det=" + std::to_string(kNoFlatDetector)), std::string::npos);
            const std::string err = ev.stringOr("error");
            EXPECT_NE(err.find("no flat master for band g of detector 1"), std::string::npos)
                << err;
            EXPECT_NE(err.find("raw/exp-"), std::string::npos) << err;  // names the raw file
        }
    }
    EXPECT_EQ(failed["isr"], 2);  // tiny: 2 g-band visits
    EXPECT_EQ(done["bias"], 4);
    EXPECT_EQ(done["dark"], 4);
    EXPECT_EQ(done["flat"], 3 * 4 - 1);
    EXPECT_EQ(done["isr"], 22);  // 6 visits x 4 detectors, 2 failed
    EXPECT_EQ(done["isr"] + failed["isr"], 24);
    EXPECT_GE(done["characterize"], 20);
    EXPECT_EQ(done["photocal"], 1);
}

TEST_F(RawPipeline, MastersMatchTruthWithProvenanceAndValidity) {
    ASSERT_EQ(codes()["sim2"], 0);
    const fs::path repo = root() / "raw";
    std::vector<fs::path> flats;
    for (const auto& e : fs::recursive_directory_iterator(repo / "calib" / "flat"))
        if (e.is_regular_file() && e.path().filename() == "0.fits" &&
            e.path().parent_path().filename() == "r")
            flats.push_back(e.path());
    ASSERT_EQ(flats.size(), 1u);
    const drp::Exposure flat = drp::fits::readExposure(flats[0].string());
    const drp::Exposure truth =
        drp::fits::readExposure((repo / "truth/calib/0/flat-r.fits").string());
    const drp::MaskPixel skip = flat.mask().planes().bits({"BAD", "NO_DATA"});
    double sum2 = 0;
    std::int64_t n = 0;
    for (int y = 0; y < flat.bbox().height(); ++y)
        for (int x = 0; x < flat.bbox().width(); ++x) {
            if ((flat.mask()(x, y) & skip) || (truth.mask()(x, y) & skip)) continue;
            const double d = flat.image()(x, y) / truth.image()(x, y) - 1;
            sum2 += d * d;
            ++n;
        }
    const double rms = std::sqrt(sum2 / double(n));
    std::cout << "pipeline master flat (r, det 0) vs truth: rms " << rms * 100 << "% over " << n
              << " pixels\n";
    // 5 flats of 40000 e- (±20%): Poisson 1/sqrt(2e5) = 0.22% (10 flats: 0.16%, isr_vs_sim).
    EXPECT_LT(rms, 0.0025);
    const drp::PropertyList& md = flat.metadata();
    EXPECT_EQ(md.get<std::string>("CALTYPE"), "flat");
    EXPECT_EQ(md.get<std::int64_t>("NCOMBINE"), kFrames);
    const std::string inputs = md.get<std::string>("CALINPUT");
    EXPECT_EQ(std::count(inputs.begin(), inputs.end(), ','), kFrames - 1) << inputs;
    EXPECT_TRUE(md.has("DRP_CONFIG_HASH"));
    EXPECT_NE(md.get<std::string>("CALBIAS").find("calib/bias/"), std::string::npos);
    // Every science raw is inside the validity range, and its ISR output names its masters.
    const drp::Table ex = drp::h5::readTable((repo / "ingest/visits.h5").string(), "exposures");
    for (double mjd : ex.column<double>("mjd")) {
        EXPECT_GE(mjd, md.get<double>("VALIDSTA"));
        EXPECT_LE(mjd, md.get<double>("VALIDEND"));
    }
    const auto post = drp::fits::readHeader((repo / "visit/1001/0/postisr.fits").string(), 0);
    EXPECT_EQ(post.metadata.get<std::string>("ISR_FLAT").substr(0, 11), "calib/flat/");
    EXPECT_EQ(post.metadata.get<std::string>("ISR_RAW"), "raw/exp-1001/det-0.fits");
}

TEST_F(RawPipeline, ZeroPointsAgreeWithTheCalibratedPath) {
    ASSERT_TRUE(fs::exists(root() / "cal" / "calib" / "photocal.h5"))
        << slurp(root() / "runcal.log");
    ASSERT_TRUE(fs::exists(root() / "raw" / "calib" / "photocal.h5"))
        << slurp(root() / "runraw.log");
    auto zps = [](const fs::path& repo) {
        const drp::Table t =
            drp::h5::readTable((repo / "calib/photocal.h5").string(), "zero_points");
        std::map<std::pair<std::int64_t, std::int64_t>, std::pair<double, double>> out;
        for (std::size_t i = 0; i < t.numRows(); ++i)
            if (t.column<drp::Bool>("calibrated")[i])
                out[{t.column<std::int64_t>("visit")[i], t.column<std::int64_t>("detector")[i]}] = {
                    t.column<double>("zero_point")[i], t.column<double>("zero_point_err")[i]};
        return out;
    };
    const auto raw = zps(root() / "raw"), cal = zps(root() / "cal");
    // Both paths see the same scene with independent noise. A systematic scale error of the
    // ISR (flat normalisation, gain, bias/dark level) would shift every unit alike: the
    // weighted mean difference must be within 3 of its errors. Per unit the quoted errors (from
    // the normal matrix, not scaled by chi2/dof) understate the scatter between two noise
    // realisations on 512^2 detectors with a handful of calibration stars (chi2/unit ~13 seen
    // here, i.e. ~15 mmag), so the per-unit bound is 0.05 mag: it catches a wrong master
    // (a flat of the wrong band, a missing dark) but not few-mmag noise.
    std::size_t n = 0;
    double sumD = 0, sumW = 0, chi2 = 0;
    for (const auto& [key, a] : raw) {
        auto it = cal.find(key);
        if (it == cal.end()) continue;
        const double d = a.first - it->second.first;
        const double s2 = a.second * a.second + it->second.second * it->second.second;
        EXPECT_LT(std::abs(d), 0.05) << "visit " << key.first << " det " << key.second << ": "
                                     << a.first << " vs " << it->second.first;
        sumD += d / s2;
        sumW += 1 / s2;
        chi2 += d * d / s2;
        ++n;
    }
    ASSERT_GE(n, 20u);  // 22 raw units calibrated (2 failed isr) out of 24
    const double mean = sumD / sumW, meanErr = 1 / std::sqrt(sumW);
    std::cout << "zero points raw - calibrated path over " << n << " units: weighted mean "
              << mean * 1000 << " mmag (error of the mean " << meanErr * 1000
              << " mmag), chi2/unit " << chi2 / double(n) << "\n";
    EXPECT_LT(std::abs(mean), 3 * meanErr + 1e-3);
}
