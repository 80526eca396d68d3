// In-patch checkpointing of multifit (multifit_checkpoint.h): a run interrupted after some
// groups resumes from the checkpoint and produces bit-identical rows; a torn tail (a kill in
// the middle of an append) is cut off; a checkpoint written for other inputs is discarded.
// The groups are real multifit measurements (fitGroup on synthetic blended scenes), so "bit
// identical" covers the numbers the stage writes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "drp/core/error.h"
#include "drp/drp/multifit_checkpoint.h"
#include "drp/multifit/object_fit.h"

using namespace drp;
using namespace drp::pipeline;
namespace fs = std::filesystem;

namespace {

/// Group g: 1 + g % 2 point sources blended on 3 epochs of Gaussian PSFs (seeded by g), fitted
/// with neighbours subtracted; a row per member (PSF fluxes, model flux, position, flags).
CheckpointRows measureGroup(std::size_t g) {
    std::mt19937_64 rng(1000 + g);
    std::normal_distribution<double> noise;
    const int nMembers = 1 + static_cast<int>(g % 2);
    std::vector<multifit::Epoch> eps;
    for (int e = 0; e < 3; ++e) {
        multifit::Epoch ep;
        ep.band = 0;
        ep.uvToPixel = 5.0 * Eigen::Matrix2d::Identity();
        ep.refPixel = Eigen::Vector2d(15, 15);
        double s = 1.5 + 0.4 * e;
        multifit::Gaussian gs;
        gs.amplitude = 1;
        gs.cov = s * s * Eigen::Matrix2d::Identity();
        ep.psf = multifit::GaussianMixture({gs});
        ep.image = ImageD(Box2I({0, 0}, {31, 31}), 0.0);
        ep.inverseVariance = ImageD(Box2I({0, 0}, {31, 31}), 1.0);
        for (int m = 0; m < nMembers; ++m) {
            multifit::FitResult truth;
            truth.u = 0.8 * m;
            truth.flux = Eigen::VectorXd::Constant(1, 500.0 / (1 + m));
            ImageD t = multifit::renderModel(ep, truth, ep.image.bbox());
            for (std::size_t i = 0; i < t.pixels().size(); ++i) ep.image.data()[i] += t.data()[i];
        }
        for (double& v : ep.image.pixels()) v += noise(rng);
        eps.push_back(std::move(ep));
    }
    std::vector<multifit::ObjectInit> inits(nMembers);
    for (int m = 0; m < nMembers; ++m) inits[m].u = 0.8 * m + 0.03;
    auto fits = multifit::fitGroup(eps, 1, inits, multifit::ObjectFitConfig{});
    CheckpointRows rows;
    for (const auto& f : fits)
        rows.push_back({f.psfFlux(0), f.psfFluxErr(0), f.modelFlux(0), f.chosen().u, f.chosen().v,
                        static_cast<double>(f.flags), static_cast<double>(g)});
    return rows;
}

bool bitIdentical(const std::vector<CheckpointRows>& a, const std::vector<CheckpointRows>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t g = 0; g < a.size(); ++g) {
        if (a[g].size() != b[g].size()) return false;
        for (std::size_t r = 0; r < a[g].size(); ++r)
            if (a[g][r].size() != b[g][r].size() ||
                std::memcmp(a[g][r].data(), b[g][r].data(), a[g][r].size() * sizeof(double)) != 0)
                return false;
    }
    return true;
}

class Checkpoint : public ::testing::Test {
  protected:
    void SetUp() override {
        dir = fs::temp_directory_path() /
              ("drp_mf_ckpt_" + std::to_string(::getpid()) + "_" +
               ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::create_directories(dir);
        path = (dir / "patch" / "multifit.ckpt").string();
    }
    void TearDown() override { fs::remove_all(dir); }
    fs::path dir;
    std::string path;
};

}  // namespace

TEST_F(Checkpoint, ResumedRunIsBitIdentical) {
    const std::size_t nGroups = 7, nCols = 7;
    // Reference: no interruption.
    std::vector<CheckpointRows> full;
    {
        MultifitCheckpoint ck((dir / "ref.ckpt").string(), "key", nCols);
        full = runGroupsCheckpointed(ck, nGroups, measureGroup);
    }
    // Interrupted after 3 groups, then after 2 more, then completed.
    int computed = 0;
    auto counting = [&](std::size_t g) {
        ++computed;
        return measureGroup(g);
    };
    {
        MultifitCheckpoint ck(path, "key", nCols);
        EXPECT_THROW(runGroupsCheckpointed(ck, nGroups, counting, 3), Error);
    }
    {
        MultifitCheckpoint ck(path, "key", nCols);
        EXPECT_EQ(ck.doneGroups(), 3u);
        EXPECT_THROW(runGroupsCheckpointed(ck, nGroups, counting, 2), Error);
    }
    MultifitCheckpoint ck(path, "key", nCols);
    EXPECT_EQ(ck.doneGroups(), 5u);
    std::vector<CheckpointRows> resumed = runGroupsCheckpointed(ck, nGroups, counting);
    EXPECT_EQ(computed, 7);  // every group computed exactly once across the three runs
    EXPECT_TRUE(bitIdentical(full, resumed));
    ck.remove();
    EXPECT_FALSE(fs::exists(path));
}

TEST_F(Checkpoint, TornTailIsCutAndStaleKeyDiscarded) {
    const std::size_t nCols = 7;
    {
        MultifitCheckpoint ck(path, "key", nCols);
        EXPECT_THROW(runGroupsCheckpointed(ck, 5, measureGroup, 4), Error);
    }
    // A kill in the middle of the 4th append: drop the last 20 bytes of the file.
    const auto size = fs::file_size(path);
    fs::resize_file(path, size - 20);
    {
        MultifitCheckpoint ck(path, "key", nCols);
        EXPECT_EQ(ck.doneGroups(), 3u);
        // The torn record is gone from the file, so the next append follows the valid prefix.
        auto rows = runGroupsCheckpointed(ck, 5, measureGroup);
        EXPECT_EQ(rows.size(), 5u);
    }
    {
        MultifitCheckpoint ck(path, "key", nCols);
        EXPECT_EQ(ck.doneGroups(), 5u);
    }
    // A flipped byte inside record 2's payload: records from 2 on are invalid.
    {
        std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
        std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        std::size_t pos = 0;
        for (int k = 0; k < 3; ++k) pos = bytes.find("MFG1", pos + 1);
        f.seekp(static_cast<std::streamoff>(pos + 30));
        f.put(static_cast<char>(bytes[pos + 30] ^ 0x5a));
    }
    {
        MultifitCheckpoint ck(path, "key", nCols);
        EXPECT_EQ(ck.doneGroups(), 2u);
    }
    // Other inputs (another key) or another column layout: start from scratch.
    {
        MultifitCheckpoint ck(path, "other-key", nCols);
        EXPECT_EQ(ck.doneGroups(), 0u);
    }
    {
        MultifitCheckpoint ck(path, "key", nCols);
        EXPECT_EQ(ck.doneGroups(), 0u);  // the stale file was replaced
        runGroupsCheckpointed(ck, 2, measureGroup);
    }
    {
        MultifitCheckpoint ck(path, "key", nCols + 1);
        EXPECT_EQ(ck.doneGroups(), 0u);
    }
}

// Rows of two code versions must never mix: the software that computed the rows is part of the
// key. A checkpoint written by another build (another version line) is discarded, one written
// by the same build is resumed; the default is this build's versionLine().
TEST_F(Checkpoint, AnotherSoftwareVersionIsStale) {
    const std::size_t nCols = 7;
    {
        MultifitCheckpoint ck(path, "key", nCols, "drp 0.1.0 (git aaaa, Release)");
        EXPECT_THROW(runGroupsCheckpointed(ck, 5, measureGroup, 3), Error);
    }
    {
        MultifitCheckpoint ck(path, "key", nCols, "drp 0.1.0 (git aaaa, Release)");
        EXPECT_EQ(ck.doneGroups(), 3u);
    }
    {
        MultifitCheckpoint ck(path, "key", nCols, "drp 0.1.0 (git bbbb, Release)");
        EXPECT_EQ(ck.doneGroups(), 0u);
        EXPECT_THROW(runGroupsCheckpointed(ck, 5, measureGroup, 2), Error);
    }
    {
        MultifitCheckpoint ck(path, "key", nCols);  // this build
        EXPECT_EQ(ck.doneGroups(), 0u);
        EXPECT_THROW(runGroupsCheckpointed(ck, 5, measureGroup, 1), Error);
    }
    {
        MultifitCheckpoint ck(path, "key", nCols, versionLine());
        EXPECT_EQ(ck.doneGroups(), 1u);
    }
}

// `drp rerun` of a multifit task deletes its checkpoint (discardMultifitCheckpoint), so that the
// rerun recomputes every group instead of replaying an interrupted attempt's rows.
TEST_F(Checkpoint, RerunDiscardsThePatchCheckpoint) {
    const fs::path repo = dir / "repo";
    const std::string ckpt = (repo / "patch" / "0" / "5" / "multifit.ckpt").string();
    {
        MultifitCheckpoint ck(ckpt, "key", 7);
        EXPECT_THROW(runGroupsCheckpointed(ck, 4, measureGroup, 2), Error);
    }
    ASSERT_TRUE(fs::exists(ckpt));
    EXPECT_FALSE(discardMultifitCheckpoint(repo.string(), "tract=0,patch=6"));  // another patch
    EXPECT_TRUE(fs::exists(ckpt));
    EXPECT_TRUE(discardMultifitCheckpoint(repo.string(), "tract=0,patch=5"));
    EXPECT_FALSE(fs::exists(ckpt));
    EXPECT_FALSE(discardMultifitCheckpoint(repo.string(), "tract=0,patch=5"));
    MultifitCheckpoint fresh(ckpt, "key", 7);
    EXPECT_EQ(fresh.doneGroups(), 0u);
    EXPECT_THROW(discardMultifitCheckpoint(repo.string(), "visit=1000,det=1"), Error);
}
