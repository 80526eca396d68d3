// RingSkyMap: LSST numbers, ids, hash, and partition properties checked by brute force on
// >= 1e5 sky points (uniform + dense samples at the poles, RA = 0/360, ring, tract and patch
// boundaries).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <random>

#include "drp/core/error.h"
#include "drp/skymap/sky_map.h"

using namespace drp;

namespace {

constexpr double kPi = std::numbers::pi;

const RingSkyMap& lsstMap() {
    static const RingSkyMap map;  // default config = LSST lsst_cells_v1 geometry
    return map;
}

/// Candidate tracts for brute force: all tracts whose centre lies within 3° in declination of
/// the point (a tract's inner region is < 1.1° from its centre), found by a sorted list — not
/// by the ring arithmetic under test.
class Candidates {
  public:
    explicit Candidates(const SkyMap& map) {
        for (int t = 0; t < map.numTracts(); ++t)
            _byDec.push_back({map.tractGeometry(t).centre.dec().asRadians(), t});
        std::sort(_byDec.begin(), _byDec.end());
    }
    std::vector<int> near(const SpherePoint& p) const {
        double d = p.dec().asRadians(), r = 3.0 * kPi / 180;
        auto lo = std::lower_bound(_byDec.begin(), _byDec.end(), std::pair{d - r, -1});
        std::vector<int> out;
        for (auto it = lo; it != _byDec.end() && it->first <= d + r; ++it)
            out.push_back(it->second);
        return out;
    }

  private:
    std::vector<std::pair<double, int>> _byDec;
};

/// Test points: uniform on the sphere plus the hard places.
std::vector<SpherePoint> testPoints(const RingSkyMap& map, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> uni(0.0, 1.0);
    std::vector<SpherePoint> pts;
    auto add = [&](double ra, double dec) {
        dec = std::clamp(dec, -kPi / 2, kPi / 2);
        pts.emplace_back(radians(ra), radians(dec));
    };
    // 50,000 uniform on the sphere.
    for (int i = 0; i < 50000; ++i) add(2 * kPi * uni(rng), std::asin(2 * uni(rng) - 1));
    // 15,000 within 2° of a pole, including the poles themselves and tiny colatitudes.
    for (int i = 0; i < 15000; ++i) {
        double colat = (i % 10 == 0) ? 0.0 : (i % 10 == 1) ? 1e-12 * uni(rng) : 0.035 * uni(rng);
        add(2 * kPi * uni(rng), (i % 2 ? 1 : -1) * (kPi / 2 - colat));
    }
    // 10,000 at RA within 1e-3 rad of 0 (both sides), including exactly 0 and just below 2π.
    for (int i = 0; i < 10000; ++i) {
        double dra = (i % 20 == 0) ? 0.0 : 1e-3 * std::pow(uni(rng), 4.0);
        double ra = (i % 2) ? dra : std::nextafter(2 * kPi, 0.0) - dra;
        add(ra, std::asin(2 * uni(rng) - 1));
    }
    // 15,000 on and near ring edges (exactly on, ±1 ulp-ish, ±up to 1e-5 rad).
    std::uniform_int_distribution<int> anyTract(0, map.numTracts() - 1);
    for (int i = 0; i < 15000; ++i) {
        const TractGeometry& g = map.tractGeometry(anyTract(rng));
        double edge = (i % 2 ? g.inner.decMin : g.inner.decMax).asRadians();
        if (!std::isfinite(edge)) continue;
        double eps = (i % 3 == 0) ? 0.0 : (i % 3 == 1 ? 1e-15 : 1e-5) * (2 * uni(rng) - 1);
        double ra =
            g.inner.raOrigin.asRadians() + g.inner.uMin +
            uni(rng) * (g.inner.uMax - g.inner.uMin + (g.inner.uMin > g.inner.uMax ? 2 * kPi : 0));
        add(ra, edge + eps);
    }
    // 15,000 on and near tract RA edges.
    for (int i = 0; i < 15000; ++i) {
        const TractGeometry& g = map.tractGeometry(anyTract(rng));
        if (g.inner.allRa) continue;
        double edge = (i % 2 ? g.inner.raMin() : g.inner.raMax()).asRadians();
        double eps = (i % 3 == 0) ? 0.0 : (i % 3 == 1 ? 1e-15 : 1e-5) * (2 * uni(rng) - 1);
        double dec =
            g.inner.decMin.asRadians() + uni(rng) * (g.inner.decMax - g.inner.decMin).asRadians();
        add(edge + eps, dec);
    }
    // 15,000 on and near patch edges (in a tract's pixel frame, mapped to the sky).
    for (int i = 0; i < 15000; ++i) {
        const TractGeometry& g = map.tractGeometry(anyTract(rng));
        double eps = (i % 3 == 0) ? 0.0 : (i % 3 == 1 ? 1e-9 : 0.5) * (2 * uni(rng) - 1);
        Point2D px;
        if (i % 2) {
            int k = std::uniform_int_distribution<int>(0, g.numPatches.x)(rng);
            px = {k * g.patchInner.x - 0.5 + eps, -0.5 + uni(rng) * g.bbox.height()};
        } else {
            int k = std::uniform_int_distribution<int>(0, g.numPatches.y)(rng);
            px = {-0.5 + uni(rng) * g.bbox.width(), k * g.patchInner.y - 0.5 + eps};
        }
        SpherePoint s = g.plane.toSky(px);
        add(s.ra().asRadians(), s.dec().asRadians());
    }
    return pts;
}

}  // namespace

TEST(RingSkyMap, LsstNumbers) {
    const RingSkyMap& map = lsstMap();
    // science-anchors.md §1.1: 120 rings -> Δ = 1.4876°, 18,938 tracts, 243 at the equator.
    EXPECT_NEAR(map.ringHeight().asDegrees(), 1.4876, 5e-5);
    EXPECT_EQ(map.numTracts(), 18938);
    EXPECT_EQ(map.numTractsInRing(59), 243);
    EXPECT_EQ(map.numTractsInRing(60), 243);
    // Rings are symmetric about the equator.
    for (int i = 0; i < 60; ++i) EXPECT_EQ(map.numTractsInRing(i), map.numTractsInRing(119 - i));
    // Patches of 3000 px: a ring tract's grid covers Δ + 1' = 1.5043° = 27077 px -> 10x10
    // patches (LSST's 10x10), also for the caps and the high-declination tracts whose inner
    // box corners stick out of the Δ/2 circle by up to a few hundred pixels.
    for (int t = 0; t < map.numTracts(); ++t)
        ASSERT_EQ(map.tractGeometry(t).numPatches, (Extent2I{10, 10})) << t;
}

TEST(RingSkyMap, VersionOneIdsAndCentres) {
    const RingSkyMap& map = lsstMap();
    const double dr = kPi / 121;
    EXPECT_EQ(map.tractGeometry(0).centre.dec(), degrees(-90));
    EXPECT_EQ(map.tractGeometry(map.numTracts() - 1).centre.dec(), degrees(90));
    // Tract 1 = ring 0, RA 0; ring i tract j centred at (2πj/n_i, Δ(i+1) - π/2).
    int id = 1;
    for (int i = 0; i < map.numRings(); ++i) {
        int n = map.numTractsInRing(i);
        for (int j = 0; j < n; j += std::max(1, n / 7), id += std::max(1, n / 7)) {
            const auto& g = map.tractGeometry(id);
            EXPECT_NEAR(g.centre.dec().asRadians(), dr * (i + 1) - kPi / 2, 1e-12) << id;
            EXPECT_NEAR(g.centre.ra().asRadians(), 2 * kPi * j / n, 1e-12) << id;
            EXPECT_EQ(map.findTractId(g.centre), id);
        }
        id = 1;
        for (int k = 0; k <= i; ++k) id += map.numTractsInRing(k);
    }
    // Known lookups: the equator at RA 0 is tract 0 of ring 60 (δ ∈ [0, Δ)).
    int ring60 = 1;
    for (int k = 0; k < 60; ++k) ring60 += map.numTractsInRing(k);
    EXPECT_EQ(map.findTractId(SpherePoint::fromDegrees(0, 0)), ring60);
    EXPECT_EQ(map.findTractId(SpherePoint::fromDegrees(359.9999, 0.1)), ring60);
    EXPECT_EQ(map.findTractId(SpherePoint::fromDegrees(0, -0.1)), ring60 - 243);
    EXPECT_EQ(map.findTractId(SpherePoint::fromDegrees(123, -90)), 0);
    // COSMOS is tract 9813 in the HSC-SSP releases (hsc_rings_v1: the same 120 rings).
    EXPECT_EQ(map.findTractId(SpherePoint::fromDegrees(150.1, 2.2)), 9813);
    EXPECT_EQ(map.findTractId(SpherePoint::fromDegrees(5, 90)), map.numTracts() - 1);
}

TEST(RingSkyMap, HashStableAndSensitive) {
    RingSkyMap a, b;
    EXPECT_EQ(a.hash(), b.hash());
    EXPECT_EQ(a.hash().size(), 64u);
    // The definition of the default skymap is part of the release contract: if this changes,
    // tract/patch ids of existing releases no longer mean the same sky.
    EXPECT_EQ(a.definition(),
              "drp skymap definition\ntype = rings\nversion = 1\nnum_rings = 120\n"
              "ra_start_deg = 0\nprojection = TAN\npixel_scale_arcsec = 0.2\n"
              "patch_inner = 3000 3000\npatch_border = 200\ntract_overlap_arcsec = 60\n");
    RingSkyMapConfig c;
    c.tract.patchBorder = 100;
    EXPECT_NE(RingSkyMap(c).hash(), a.hash());
    c = {};
    c.numRings = 119;
    EXPECT_NE(RingSkyMap(c).hash(), a.hash());
    auto prov = a.provenance();
    EXPECT_EQ(prov.get<std::string>("SKYMAP_HASH"), a.hash());
    EXPECT_EQ(prov.get<std::int64_t>("SKYMAP_NTRACTS"), 18938);
}

TEST(RingSkyMap, ConfigValidation) {
    RingSkyMapConfig c;
    c.numRings = 1;
    EXPECT_THROW(RingSkyMap{c}, Error);
    c = {};
    c.tract.pixelScale = arcseconds(-1);
    try {
        RingSkyMap m(c);
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.errorClass(), "config");
        EXPECT_NE(std::string(e.what()).find("pixelScale"), std::string::npos) << e.what();
    }
    c = {};
    c.tract.patchInnerDimensions = {0, 10};
    EXPECT_THROW(RingSkyMap{c}, Error);
    SkyMapConfig s;
    s.type = "healpix";
    EXPECT_THROW(makeSkyMap(s), Error);
}

TEST(RingSkyMap, TangentPlaneRoundTrip) {
    const RingSkyMap& map = lsstMap();
    std::mt19937_64 rng(3);
    std::uniform_real_distribution<double> uni(0, 1);
    for (int t : {0, 1, 5000, 9468, 18937}) {
        const auto& g = map.tractGeometry(t);
        for (int i = 0; i < 200; ++i) {
            Point2D px(uni(rng) * g.bbox.width(), uni(rng) * g.bbox.height());
            Point2D back = g.plane.toPixel(g.plane.toSky(px));
            // Double precision on ~3e4-pixel offsets: 1e-6 px is ~1e-11 relative.
            EXPECT_NEAR(back.x, px.x, 1e-6);
            EXPECT_NEAR(back.y, px.y, 1e-6);
        }
        // The centre of the inner region is the tangent point, near the middle of the grid.
        Point2D c = g.plane.toPixel(g.centre);
        EXPECT_NEAR(c.x, g.bbox.width() / 2.0 - 0.5, g.bbox.width() * 0.05);
    }
}

TEST(RingSkyMap, EveryPointInExactlyOneTractAndPatch) {
    const RingSkyMap& map = lsstMap();
    Candidates candidates(map);
    auto pts = testPoints(map, 20261125);
    ASSERT_GE(pts.size(), 100000u);
    int outsideGrid = 0;
    for (const SpherePoint& p : pts) {
        // Tract: brute force over the inner regions of all nearby tracts.
        int owners = 0, owner = -1;
        for (int t : candidates.near(p)) {
            if (map.tractGeometry(t).inner.contains(p)) {
                ++owners;
                owner = t;
            }
        }
        ASSERT_EQ(owners, 1) << "ra " << p.ra().asDegrees() << " dec " << p.dec().asDegrees();
        auto found = map.findTractPatch(p);
        ASSERT_TRUE(found);
        ASSERT_EQ(found->tract, owner)
            << "ra " << p.ra().asDegrees() << " dec " << p.dec().asDegrees();

        // Patch: brute force over every patch of the tract, in its pixel frame. The edge
        // patches own everything beyond the grid edge (documented in TractGeometry::findPatch).
        const TractGeometry& g = map.tractGeometry(owner);
        Point2D px = g.plane.toPixel(p);
        ASSERT_NEAR(px.x, found->pixel.x, 1e-9);
        if (!Box2D(g.bbox).contains(px)) ++outsideGrid;
        int patchOwners = 0;
        PatchIndex patchOwner;
        for (int iy = 0; iy < g.numPatches.y; ++iy)
            for (int ix = 0; ix < g.numPatches.x; ++ix) {
                Box2D in(g.patchInnerBox({ix, iy}));
                bool okX = (ix == 0 || px.x >= in.min().x) &&
                           (ix == g.numPatches.x - 1 || px.x < in.max().x);
                bool okY = (iy == 0 || px.y >= in.min().y) &&
                           (iy == g.numPatches.y - 1 || px.y < in.max().y);
                if (okX && okY) {
                    ++patchOwners;
                    patchOwner = {ix, iy};
                }
            }
        ASSERT_EQ(patchOwners, 1);
        ASSERT_EQ(found->patch, patchOwner);
        ASSERT_EQ(found->patchSequential, patchOwner.y * g.numPatches.x + patchOwner.x);
        // The owning patch's outer box contains the point.
        ASSERT_TRUE(Box2D(g.patchOuterBox(found->patch)).contains(px));
    }
    // Every tract inner region lies inside its grid (so clamping never decided ownership).
    EXPECT_EQ(outsideGrid, 0);
}

TEST(RingSkyMap, OverlapsIncludeThePatchOfEveryPointInAFootprint) {
    const RingSkyMap& map = lsstMap();
    std::mt19937_64 rng(42);
    std::uniform_real_distribution<double> uni(0, 1);
    int checked = 0;
    for (int f = 0; f < 1500; ++f) {
        // A 0.2° x 0.1° rotated "detector", anywhere, one in five near a pole or RA 0.
        double dec = std::asin(2 * uni(rng) - 1);
        double ra = 2 * kPi * uni(rng);
        if (f % 5 == 0) dec = (f % 10 ? 1 : -1) * (kPi / 2 - 0.03 * uni(rng));
        if (f % 5 == 1) ra = 0.004 * (uni(rng) - 0.5);
        SpherePoint c(radians(ra), radians(std::clamp(dec, -kPi / 2, kPi / 2)));
        Angle rot = degrees(360 * uni(rng));
        std::vector<SpherePoint> corners;
        for (auto [dx, dy] : {std::pair{-1, -1}, {1, -1}, {1, 1}, {-1, 1}}) {
            double bearing = std::atan2(dx * 0.1, dy * 0.05);
            double dist = std::hypot(0.1, 0.05);
            corners.push_back(c.offset(rot + radians(bearing), degrees(dist)));
        }
        auto overlaps = map.findOverlaps(corners);
        ASSERT_TRUE(std::is_sorted(overlaps.begin(), overlaps.end()));
        std::vector<std::array<double, 3>> cv;
        for (auto& s : corners) cv.push_back(s.toVector());
        for (int k = 0; k < 30; ++k) {
            // A normalised convex combination of the corners lies inside the spherical polygon.
            double w[4], sum = 0;
            for (double& x : w) sum += (x = uni(rng));
            std::array<double, 3> v{0, 0, 0};
            for (int i = 0; i < 4; ++i)
                for (int a = 0; a < 3; ++a) v[a] += w[i] / sum * cv[i][a];
            auto tp = map.findTractPatch(SpherePoint::fromVector(v));
            ASSERT_TRUE(tp);
            TractPatchId id{tp->tract, tp->patchSequential};
            ASSERT_TRUE(std::binary_search(overlaps.begin(), overlaps.end(), id))
                << "footprint " << f << " tract " << id.tract << " patch " << id.patch;
            ++checked;
        }
        // Patch borders: a footprint sees several patches; every reported one exists.
        for (auto& o : overlaps) {
            ASSERT_GE(o.patch, 0);
            const auto& g = map.tractGeometry(o.tract);
            ASSERT_LT(o.patch, g.numPatches.x * g.numPatches.y);
        }
    }
    EXPECT_EQ(checked, 1500 * 30);
    EXPECT_THROW(map.findOverlaps({SpherePoint::fromDegrees(0, 0), SpherePoint::fromDegrees(1, 0)}),
                 Error);
}

TEST(RingSkyMap, OverlapsIncludeNeighbourPatchBorders) {
    // A tiny footprint just inside patch (5,5)'s inner box, 50 px from its left edge, lies in
    // the outer box (200 px border) of patch (4,5) too, and in no other.
    const RingSkyMap& map = lsstMap();
    const auto& g = map.tractGeometry(9000);
    Box2I in = g.patchInnerBox({5, 5});
    std::vector<SpherePoint> poly;
    for (auto [dx, dy] : {std::pair{0, 0}, {10, 0}, {10, 10}, {0, 10}})
        poly.push_back(g.plane.toSky(Point2D(in.minX() + 50 + dx, in.minY() + 1000 + dy)));
    auto o = map.findOverlaps(poly);
    std::vector<TractPatchId> want{{9000, 5 * g.numPatches.x + 4}, {9000, 5 * g.numPatches.x + 5}};
    EXPECT_EQ(o, want);
}
