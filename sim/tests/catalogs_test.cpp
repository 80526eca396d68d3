// Truth, reference and per-detector truth tables built from a tiny simulated survey.
#include <gtest/gtest.h>

#include <cmath>

#include "drp/core/wcs.h"
#include "drp/sim/catalogs.h"
#include "drp/sim/survey.h"

using namespace drp;
using namespace drp::sim;

TEST(Catalogs, TruthTableHasOneRowPerObject) {
    const SurveyPlan plan = makePlan(presetConfig("tiny"), 11);
    const auto sky = generateSky(plan.config.sky, plan.skyRegion, plan.seed);
    const Table t = truthTable(sky);
    ASSERT_EQ(t.numRows(), sky.size());
    EXPECT_EQ(t.columnInfo("r_flux").unit, "nJy");
    for (std::size_t i = 0; i < sky.size(); i += 37) {
        EXPECT_EQ(t.column<std::int64_t>("truth_id")[i], sky[i].id);
        EXPECT_EQ(t.column<double>("g_flux")[i], sky[i].flux[1]);
        EXPECT_EQ(bool(t.column<Bool>("is_star")[i]), sky[i].isStar);
    }
}

TEST(Catalogs, ReferenceCatalogIsGaiaLikeWithHonestErrors) {
    // A large star-only sky so the error statistics are meaningful.
    SkyModelConfig cfg;
    cfg.starDensity = 2e5;
    cfg.galaxyDensityRef = 0;
    const SkyRegion region{SpherePoint::fromDegrees(30, -20), 0.05};
    const auto sky = generateSky(cfg, region, 3);
    RefcatConfig rc;
    const Table ref = referenceCatalog(sky, rc, 3);
    ASSERT_GT(ref.numRows(), 200u);
    double s2pos = 0, s2flux = 0;
    const auto& tid = ref.column<std::int64_t>("truth_id");
    for (std::size_t i = 0; i < ref.numRows(); ++i) {
        const TrueObject& o = sky[static_cast<std::size_t>(tid[i] - 1)];
        ASSERT_TRUE(o.isStar);
        EXPECT_LT(nJyToMag(o.flux[2]), rc.magLimit);
        const SpherePoint p =
            SpherePoint::fromDegrees(ref.column<double>("ra")[i], ref.column<double>("dec")[i]);
        const double z =
            p.separation(o.position).asMilliarcseconds() / ref.column<double>("dec_err")[i];
        s2pos += z * z;  // 2-D offset: E[z²] = 2
        const double zf =
            (ref.column<double>("r_flux")[i] - o.flux[2]) / ref.column<double>("r_flux_err")[i];
        s2flux += zf * zf;
    }
    const double n = double(ref.numRows());
    EXPECT_NEAR(s2pos / n, 2.0, 5 * 2.0 / std::sqrt(n));
    EXPECT_NEAR(s2flux / n, 1.0, 5 * std::sqrt(2.0 / n));
    // Every star brighter than the limit is in (completeness 1).
    std::size_t bright = 0;
    for (const auto& o : sky) bright += o.isStar && nJyToMag(o.flux[2]) < rc.magLimit;
    EXPECT_EQ(bright, ref.numRows());
}

TEST(Catalogs, DetectorTruthTableDescribesEveryDetector) {
    const SurveyPlan plan = makePlan(presetConfig("tiny"), 11);
    const Camera camera(plan.config.camera);
    const auto sky = generateSky(plan.config.sky, plan.skyRegion, plan.seed);
    std::vector<VisitConditions> conds;
    std::vector<DetectorTruth> dets;
    for (std::size_t v = 0; v < 2; ++v) {
        conds.push_back(drawConditions(plan.visits[v], camera, plan.config.observing, plan.seed));
        for (int d = 0; d < camera.detectorCount(); ++d)
            dets.push_back(
                describeDetector(camera, conds.back(), d, sky, plan.config.observing, plan.seed));
    }
    const Table t = detectorTruthTable(dets, conds);
    ASSERT_EQ(t.numRows(), 8u);
    for (std::size_t i = 0; i < t.numRows(); ++i) {
        // The stored header is the true WCS.
        const auto wcs = Wcs::fromFitsHeader(t.column<std::string>("wcs_header")[i], "truth row");
        const Point2D p{100.5, 400.25};
        EXPECT_LT(wcs->pixelToSky(p).separation(dets[i].trueWcs.pixelToSky(p)).asArcseconds(),
                  1e-6);
        // Zero point = visit ZP + detector offset, with clouds <= cloudMax.
        EXPECT_NEAR(t.column<double>("zero_point")[i] - t.column<double>("detector_zp_offset")[i],
                    conds[i / 4].zeroPoint, 1e-12);
        EXPECT_LE(t.column<double>("cloud_extinction")[i], plan.config.observing.cloudMax);
        EXPECT_GT(t.column<double>("header_pointing_error")[i], 0.0);
        EXPECT_GT(t.column<std::int32_t>("n_stars")[i] + t.column<std::int32_t>("n_galaxies")[i],
                  20);
    }
    EXPECT_EQ(cosmicRayTable(dets).numRows(), [&] {
        std::size_t n = 0;
        for (const auto& d : dets) n += d.cosmicRays.size();
        return n;
    }());
    EXPECT_GT(cosmicRayTable(dets).numRows(), 0u);
    satelliteTable(conds).validate();
    badColumnTable(dets).validate();
}
