// DiscreteSkyMap lookups and the Wcs-backed TractInfo/PatchInfo of both skymap types.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <random>

#include "drp/core/error.h"
#include "drp/skymap/sky_map.h"

using namespace drp;

namespace {

DiscreteSkyMapConfig threeFields() {
    DiscreteSkyMapConfig c;
    // Two overlapping fields (centres 1° apart, radius 0.8°) and one across RA = 0.
    c.fields = {{SpherePoint::fromDegrees(150.0, 2.0), degrees(0.8)},
                {SpherePoint::fromDegrees(151.0, 2.0), degrees(0.8)},
                {SpherePoint::fromDegrees(0.1, -30.0), degrees(0.5)}};
    return c;
}

}  // namespace

TEST(DiscreteSkyMap, Lookups) {
    DiscreteSkyMap map(threeFields());
    EXPECT_EQ(map.numTracts(), 3);
    EXPECT_EQ(map.findTract(SpherePoint::fromDegrees(150.0, 2.0)), 0);
    EXPECT_EQ(map.findTract(SpherePoint::fromDegrees(151.0, 2.0)), 1);
    // In both circles: the nearer centre wins.
    EXPECT_EQ(map.findTract(SpherePoint::fromDegrees(150.4, 2.0)), 0);
    EXPECT_EQ(map.findTract(SpherePoint::fromDegrees(150.6, 2.0)), 1);
    // Across RA = 0.
    EXPECT_EQ(map.findTract(SpherePoint::fromDegrees(359.8, -30.0)), 2);
    // Outside every field.
    EXPECT_FALSE(map.findTract(SpherePoint::fromDegrees(10.0, 10.0)));
    EXPECT_FALSE(map.findTractPatch(SpherePoint::fromDegrees(150.0, 2.9)));
    // Tract grid: 0.8° radius at 0.2"/px, no overlap -> 2·14400 px + 2 px -> 10 patches.
    EXPECT_EQ(map.tractGeometry(0).numPatches, (Extent2I{10, 10}));
}

TEST(DiscreteSkyMap, PartitionProperty) {
    DiscreteSkyMap map(threeFields());
    std::mt19937_64 rng(7);
    std::uniform_real_distribution<double> uni(0, 1);
    int inside = 0;
    for (int i = 0; i < 30000; ++i) {
        int f = i % 3;
        const auto& field = map.config().fields[f];
        SpherePoint p = field.centre.offset(degrees(360 * uni(rng)),
                                            field.radius * (1.3 * std::sqrt(uni(rng))));
        // Brute force: nearest centre among the circles containing p.
        int best = -1;
        double bestSep = 1e9;
        for (int t = 0; t < map.numTracts(); ++t) {
            const auto& fd = map.config().fields[t];
            double sep = fd.centre.separation(p).asRadians();
            if (sep <= fd.radius.asRadians() && sep < bestSep) {
                best = t;
                bestSep = sep;
            }
        }
        auto tp = map.findTractPatch(p);
        if (best < 0) {
            EXPECT_FALSE(tp);
            continue;
        }
        ++inside;
        ASSERT_TRUE(tp);
        ASSERT_EQ(tp->tract, best);
        const TractGeometry& g = map.tractGeometry(best);
        ASSERT_TRUE(Box2D(g.bbox).contains(tp->pixel));
        ASSERT_TRUE(Box2D(g.patchInnerBox(tp->patch)).contains(tp->pixel));
        ASSERT_TRUE(Box2D(g.patchOuterBox(tp->patch)).contains(tp->pixel));
    }
    EXPECT_GT(inside, 15000);
}

TEST(DiscreteSkyMap, HashAndValidation) {
    auto c = threeFields();
    EXPECT_EQ(DiscreteSkyMap(c).hash(), DiscreteSkyMap(c).hash());
    auto d = c;
    d.fields[2].radius = degrees(0.6);
    EXPECT_NE(DiscreteSkyMap(d).hash(), DiscreteSkyMap(c).hash());
    EXPECT_NE(DiscreteSkyMap(c).hash(), RingSkyMap().hash());
    DiscreteSkyMapConfig empty;
    EXPECT_THROW(DiscreteSkyMap{empty}, Error);
    d.fields[0].radius = degrees(20);
    EXPECT_THROW(DiscreteSkyMap{d}, Error);
}

TEST(TractInfo, WcsAgreesWithTangentPlane) {
    RingSkyMap rings;
    DiscreteSkyMap discrete(threeFields());
    std::mt19937_64 rng(11);
    std::uniform_real_distribution<double> uni(0, 1);
    auto check = [&](const SkyMap& map, int id) {
        TractInfo t = map.tract(id);
        const TractGeometry& g = t.geometry();
        EXPECT_EQ(t.wcs()->projection(), "TAN");
        for (int i = 0; i < 50; ++i) {
            Point2D px(uni(rng) * g.bbox.width() - 0.5, uni(rng) * g.bbox.height() - 0.5);
            SpherePoint sky = t.wcs()->pixelToSky(px);
            Point2D fast = g.plane.toPixel(sky);
            // WCSLIB and the dot-product TAN agree to rounding: 1e-6 px = 2e-7".
            ASSERT_NEAR(fast.x, px.x, 1e-6) << "tract " << id;
            ASSERT_NEAR(fast.y, px.y, 1e-6) << "tract " << id;
        }
        // Pixel scale 0.2"/px at the tangent point; north up, east left.
        Point2D c = t.wcs()->skyToPixel(t.centre());
        EXPECT_NEAR(t.wcs()->pixelScale(c).asArcseconds(), 0.2, 1e-9);
    };
    for (int id : {0, 1, 2, 137, 9000, 9468, 18936, 18937}) check(rings, id);
    for (int id : {0, 1, 2}) check(discrete, id);
    EXPECT_THROW(rings.tract(18938), Error);
    EXPECT_THROW(rings.tract(-1), Error);
}

TEST(TractInfo, Patches) {
    RingSkyMap rings;
    TractInfo t = rings.tract(9000);
    EXPECT_EQ(t.numPatchesTotal(), 100);
    PatchInfo p = t.patch(PatchIndex{3, 7});
    EXPECT_EQ(p.sequentialIndex(), 73);
    EXPECT_EQ(t.patch(73).index(), (PatchIndex{3, 7}));
    EXPECT_EQ(p.innerBBox(), Box2I(Point2I{9000, 21000}, Extent2I{3000, 3000}));
    EXPECT_EQ(p.outerBBox(), Box2I(Point2I{8800, 20800}, Extent2I{3400, 3400}));
    // Edge patch: outer box clipped to the tract.
    PatchInfo corner = t.patch(0);
    EXPECT_EQ(corner.outerBBox(), Box2I(Point2I{0, 0}, Extent2I{3200, 3200}));
    EXPECT_THROW(t.patch(100), Error);
    EXPECT_THROW(t.patch(PatchIndex{10, 0}), Error);
    // Sky polygons: the inner box's corners, 600" apart along each edge (3000 px × 0.2").
    ASSERT_EQ(p.innerSkyPolygon().size(), 4u);
    for (int k = 0; k < 4; ++k) {
        Angle side = p.innerSkyPolygon()[k].separation(p.innerSkyPolygon()[(k + 1) % 4]);
        EXPECT_NEAR(side.asArcseconds(), 600.0, 1.0);  // TAN scale changes < 0.1% in a tract
    }
    // A point inside the inner polygon is found in this patch.
    auto v0 = p.innerSkyPolygon()[0].toVector(), v2 = p.innerSkyPolygon()[2].toVector();
    SpherePoint mid = SpherePoint::fromVector({v0[0] + v2[0], v0[1] + v2[1], v0[2] + v2[2]});
    EXPECT_EQ(t.findPatch(mid), (PatchIndex{3, 7}));
    EXPECT_EQ(rings.findPatchInTract(9000, mid).patch, (PatchIndex{3, 7}));
}
