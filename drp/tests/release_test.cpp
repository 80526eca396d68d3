// The release catalog builder (drp/release.h): Object-table columns, deterministic ids, parents
// before their children, and is_primary making every object on the sky appear exactly once
// although neighbouring patches measure their overlaps twice.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

#include "drp/core/error.h"
#include "drp/drp/release.h"

using namespace drp;
using namespace drp::pipeline;

namespace {

std::unique_ptr<SkyMap> testSkyMap() {
    SkyMapConfig c;
    c.type = "discrete";
    c.discrete.fields = {{SpherePoint::fromDegrees(150.0, 2.2), degrees(0.04)}};
    c.discrete.tract.patchInnerDimensions = {400, 400};
    c.discrete.tract.patchBorder = 50;
    return makeSkyMap(c);
}

struct TrueObj {
    double x, y;          // tract pixels
    std::int64_t parent;  // blend group (-1: isolated)
};

// A multifit "objects" table as the multifit stage writes it, for the objects whose centroid is
// inside the patch's outer box.
Table multifitTable(const SkyMap& sm, int patch, const std::vector<TrueObj>& objs,
                    const std::vector<std::string>& bands, std::vector<std::size_t>* which) {
    const TractGeometry& g = sm.tractGeometry(0);
    const Box2I outer = g.patchOuterBox({patch % g.numPatches.x, patch / g.numPatches.x});
    Table t;
    auto& ra = t.addColumn<double>("ra");
    auto& dec = t.addColumn<double>("dec");
    auto& rae = t.addColumn<double>("ra_err");
    auto& dece = t.addColumn<double>("dec_err");
    std::vector<std::vector<double>*> f;
    for (const auto& b : bands)
        for (const char* s : {"_psf_flux", "_psf_flux_err", "_model_flux", "_model_flux_err"})
            f.push_back(&t.addColumn<double>(b + s));
    auto& e1 = t.addColumn<double>("shape_e1");
    auto& e2 = t.addColumn<double>("shape_e2");
    auto& r = t.addColumn<double>("shape_r");
    auto& ext = t.addColumn<double>("extendedness");
    auto& fd = t.addColumn<double>("frac_dev");
    auto& chi = t.addColumn<double>("model_chi2_dof");
    auto& nep = t.addColumn<std::int32_t>("n_epochs");
    auto& fl = t.addColumn<std::int64_t>("multifit_flags");
    auto& pi = t.addColumn<std::int64_t>("parent_index");
    auto& ns = t.addColumn<std::int32_t>("n_siblings");
    auto& x = t.addColumn<double>("x");
    auto& y = t.addColumn<double>("y");
    std::map<std::int64_t, int> groupSize;
    for (const auto& o : objs)
        if (o.parent >= 0) ++groupSize[o.parent];
    std::int64_t nextParent = 1000;
    for (std::size_t k = 0; k < objs.size(); ++k) {
        const auto& o = objs[k];
        if (!outer.contains(Point2I(int(std::lround(o.x)), int(std::lround(o.y))))) continue;
        which->push_back(k);
        SpherePoint s = g.plane.toSky({o.x, o.y});
        ra.push_back(s.ra().asDegrees());
        dec.push_back(s.dec().asDegrees());
        rae.push_back(0.01), dece.push_back(0.01);
        for (std::size_t b = 0; b < bands.size(); ++b) {
            f[4 * b]->push_back(100.0 * (k + 1)), f[4 * b + 1]->push_back(1.0);
            f[4 * b + 2]->push_back(110.0 * (k + 1)), f[4 * b + 3]->push_back(2.0);
        }
        e1.push_back(0.1), e2.push_back(-0.1), r.push_back(0.5), ext.push_back(1);
        fd.push_back(0.3), chi.push_back(1.1), nep.push_back(4), fl.push_back(k == 0 ? 2 : 0);
        pi.push_back(o.parent >= 0 ? o.parent : nextParent++);
        ns.push_back(o.parent >= 0 ? groupSize[o.parent] : 1);
        x.push_back(o.x), y.push_back(o.y);
    }
    return t;
}

}  // namespace

TEST(ObjectId, PacksAndUnpacksEveryPart) {
    for (auto [t, p, c] : std::vector<std::tuple<int, int, std::int64_t>>{
             {0, 0, 0}, {18937, 99, 12345}, {(1 << 24) - 1, (1 << 16) - 1, (1 << 23) - 1}}) {
        const std::int64_t id = packObjectId(t, p, c);
        EXPECT_GE(id, 0);
        EXPECT_EQ(unpackObjectId(id), (ObjectIdParts{t, p, c}));
    }
    EXPECT_THROW(packObjectId(1 << 24, 0, 0), Error);
    EXPECT_THROW(packObjectId(0, 1 << 16, 0), Error);
    EXPECT_THROW(packObjectId(0, 0, std::int64_t(1) << 23), Error);
    EXPECT_THROW(packObjectId(-1, 0, 0), Error);
}

TEST(ReleaseCatalog, EveryObjectOnceAmongPrimariesAcrossPatchSeams) {
    auto sm = testSkyMap();
    const TractGeometry& g = sm->tractGeometry(0);
    ASSERT_GE(g.numPatches.x, 2);
    // A grid of objects every 37 px over the whole tract (so many fall in patch overlaps and on
    // both sides of every seam), plus a two-child blend straddling the x seam of patches 0/1.
    std::vector<TrueObj> objs;
    for (double y = 3; y < g.bbox.maxY(); y += 37)
        for (double x = 5; x < g.bbox.maxX(); x += 37) objs.push_back({x, y, -1});
    const double seamX = g.patchInner.x - 0.5;
    objs.push_back({seamX - 3, 100, 7});
    objs.push_back({seamX + 3, 104, 7});
    const std::vector<std::string> bands = {"g", "r"};
    const int nPatches = g.numPatches.x * g.numPatches.y;
    std::map<std::size_t, int> primaryCount;
    std::set<std::int64_t> ids;
    int nParents = 0;
    for (int p = 0; p < nPatches; ++p) {
        std::vector<std::size_t> which;
        Table mf = multifitTable(*sm, p, objs, bands, &which);
        Table out = makePatchObjects(*sm, {0, p}, bands, mf, Table{});
        for (const char* c : {"object_id",    "parent_id",
                              "tract",        "patch",
                              "ra",           "dec",
                              "ra_err",       "dec_err",
                              "is_primary",   "n_children",
                              "g_psf_flux",   "g_psf_flux_err",
                              "g_model_flux", "g_model_flux_err",
                              "r_psf_flux",   "shape_e1",
                              "shape_e2",     "shape_r",
                              "extendedness", "model_chi2_dof",
                              "flags"})
            EXPECT_TRUE(out.has(c)) << c;
        const auto& id = out.column<std::int64_t>("object_id");
        const auto& pid = out.column<std::int64_t>("parent_id");
        const auto& prim = out.column<Bool>("is_primary");
        const auto& nch = out.column<std::int32_t>("n_children");
        const auto& flags = out.column<std::int64_t>("flags");
        const auto& gm = out.column<double>("g_model_flux");
        std::size_t child = 0;
        for (std::size_t i = 0; i < out.numRows(); ++i) {
            EXPECT_TRUE(ids.insert(id[i]).second) << "duplicate id " << id[i];
            EXPECT_EQ(unpackObjectId(id[i]).patch, p);
            if (flags[i] & kFlagDeblendedParent) {
                ++nParents;
                EXPECT_FALSE(prim[i]);
                EXPECT_EQ(nch[i], 2);
                // Parent precedes its two children, which point to it; its model flux is theirs.
                ASSERT_LT(i + 2, out.numRows());
                EXPECT_EQ(pid[i + 1], id[i]);
                EXPECT_EQ(pid[i + 2], id[i]);
                EXPECT_DOUBLE_EQ(gm[i], gm[i + 1] + gm[i + 2]);
                EXPECT_TRUE(std::isnan(out.column<double>("g_psf_flux")[i]));
                continue;
            }
            const std::size_t k = which[child++];
            EXPECT_EQ(unpackObjectId(id[i]).counter, std::int64_t(child - 1));
            EXPECT_EQ(bool(flags[i] & kFlagBlended), objs[k].parent >= 0);
            EXPECT_EQ(bool(flags[i] & kFlagPointFitFailed), k == 0);
            // Primary exactly when inside this patch's inner box (one tract covers all objects).
            const bool inner = g.findPatch({objs[k].x, objs[k].y}) ==
                               PatchIndex{p % g.numPatches.x, p / g.numPatches.x};
            const bool inTract = g.inner.contains(g.plane.toSky({objs[k].x, objs[k].y}));
            EXPECT_EQ(bool(prim[i]), inner && inTract) << "object " << k << " patch " << p;
            EXPECT_EQ(bool(flags[i] & kFlagOutsideTractInner), !inTract);
            if (prim[i]) ++primaryCount[k];
        }
        EXPECT_EQ(child, which.size());
    }
    EXPECT_EQ(nParents, 2);  // the blend straddles the seam: both patches measure it
    std::size_t nInTract = 0;
    for (std::size_t k = 0; k < objs.size(); ++k) {
        if (!g.inner.contains(g.plane.toSky({objs[k].x, objs[k].y}))) continue;
        ++nInTract;
        EXPECT_EQ(primaryCount[k], 1) << "object " << k << " at " << objs[k].x << "," << objs[k].y;
    }
    EXPECT_GT(nInTract, 100u);
}

TEST(ReleaseCatalog, MissingColumnNamesIt) {
    auto sm = testSkyMap();
    Table mf;
    mf.addColumn<double>("ra");
    try {
        makePatchObjects(*sm, {0, 0}, {"r"}, mf, Table{});
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("'dec'"), std::string::npos) << e.what();
    }
}

// A spurious deblended child that multifit moved onto its bright sibling (seen on the demo
// release: shoulder peaks on bright stars' wings, fitted centres < 0.3" from the star) is the
// same object: flagged merged_duplicate, never primary, its fluxes added to the star's. A real
// sibling 1" away stays a separate primary object.
TEST(ReleaseCatalog, ChildFittedOntoABrighterSiblingIsMergedIntoIt) {
    auto sm = testSkyMap();
    const TractGeometry& g = sm->tractGeometry(0);
    const Point2D star{500, 500};
    // multifitTable's fluxes grow with the index: the star (last) is the brightest.
    const std::vector<TrueObj> objs = {{star.x + 0.5, star.y + 0.2, 7},  // 0.11" from the star
                                       {star.x + 5.0, star.y, 7},        // 1.0" away: real
                                       {star.x, star.y, 7}};
    const PatchIndex pi = g.findPatch(star);
    const int p = pi.y * g.numPatches.x + pi.x;
    std::vector<std::size_t> which;
    Table mf = multifitTable(*sm, p, objs, {"g"}, &which);
    ASSERT_EQ(which.size(), 3u);
    Table out = makePatchObjects(*sm, {0, p}, {"g"}, mf, Table{});
    ASSERT_EQ(out.numRows(), 4u);  // the parent, then its three children
    const auto& prim = out.column<Bool>("is_primary");
    const auto& flags = out.column<std::int64_t>("flags");
    const auto& gm = out.column<double>("g_model_flux");
    const auto& gme = out.column<double>("g_model_flux_err");
    const auto& gp = out.column<double>("g_psf_flux");
    EXPECT_TRUE(flags[0] & kFlagDeblendedParent);
    EXPECT_EQ(gm[0], 110.0 + 220.0 + 330.0);  // the parent's total is unchanged
    EXPECT_TRUE(flags[1] & kFlagMergedDuplicate);
    EXPECT_FALSE(prim[1]);
    EXPECT_EQ(gm[1], 110.0);  // its own measurement stays in its row
    EXPECT_FALSE(flags[2] & kFlagMergedDuplicate);
    EXPECT_TRUE(prim[2]);
    EXPECT_EQ(gm[2], 220.0);
    EXPECT_FALSE(flags[3] & kFlagMergedDuplicate);
    EXPECT_TRUE(prim[3]);
    EXPECT_DOUBLE_EQ(gm[3], 330.0 + 110.0);
    EXPECT_DOUBLE_EQ(gp[3], 300.0 + 100.0);
    EXPECT_DOUBLE_EQ(gme[3], std::sqrt(2.0 * 2.0 + 2.0 * 2.0));
    // The star's position: the brightness-weighted mean of the two centres (weights 330, 110).
    const SpherePoint expect = g.plane.toSky({star.x + 0.5 * 0.25, star.y + 0.2 * 0.25});
    const SpherePoint got =
        SpherePoint::fromDegrees(out.column<double>("ra")[3], out.column<double>("dec")[3]);
    EXPECT_LT(got.separation(expect).asArcseconds(), 1e-4);
}

// Seam rescue (rescueSeamOrphans): an object that its owning patch did not measure (its
// deblender missed it, or its fit moved it across the seam) but a neighbour did, in the overlap,
// becomes primary once — whether one, two or three neighbours measured it — unless the owner has
// an object within the rescue radius (then that is the object) or the copy is not a measurement
// that stands on its own (point fit failed).
TEST(ReleaseCatalog, ObjectMissedByItsOwnerIsRescuedOnceFromANeighbour) {
    auto sm = testSkyMap();
    const TractGeometry& g = sm->tractGeometry(0);
    ASSERT_GE(g.numPatches.x, 2);
    ASSERT_GE(g.numPatches.y, 2);
    const double W = g.patchInner.x, H = g.patchInner.y;
    // The owner: the patch below and left of the seam crossing nearest the tract centre (so
    // everything is inside the tract's circular inner region); (X0, Y0) its inner box's corner.
    const int ix = int(std::lround(g.bbox.width() / 2.0 / W)) - 1;
    const int iy = int(std::lround(g.bbox.height() / 2.0 / H)) - 1;
    const int owner = iy * g.numPatches.x + ix;
    const double X0 = ix * W, Y0 = iy * H;
    // Objects inside the owner's inner box, near its upper and right seams.
    const std::vector<TrueObj> objs = {
        {X0 + 80, Y0 + 80, -1},          // 0: far from the seams
        {X0 + W - 15, Y0 + H - 12, -1},  // 1: missed; the three neighbours measure it
        {X0 + 150, Y0 + H - 25, -1},     // 2: missed; the owner has a stand-in 1.0" away
        {X0 + 150, Y0 + H - 20, -1},     // 3: that stand-in, measured by the owner
        {X0 + W - 30, Y0 + 300, -1},     // 4: missed; the neighbour's point fit failed
        {X0 + W - 10, Y0 + 250, -1},     // 5: measured by everyone: nothing to rescue
        {X0 + W - 20, Y0 + 150, -1},     // 6: missed by its owner; one neighbour measures it
    };
    const std::set<std::size_t> missedByOwner = {6, 1, 2, 4};
    const std::vector<std::string> bands = {"g"};
    Table release;
    const int nPatches = g.numPatches.x * g.numPatches.y;
    for (int p = 0; p < nPatches; ++p) {
        std::vector<TrueObj> mine;
        std::vector<std::size_t> orig;
        for (std::size_t k = 0; k < objs.size(); ++k) {
            if (p == owner && missedByOwner.count(k)) continue;
            mine.push_back(objs[k]), orig.push_back(k);
        }
        std::vector<std::size_t> which;
        Table mf = multifitTable(*sm, p, mine, bands, &which);
        auto& fl = mf.column<std::int64_t>("multifit_flags");
        for (std::size_t r = 0; r < which.size(); ++r) {
            fl[r] = 0;
            if (orig[which[r]] == 4) fl[r] = 2;  // point fit failed in the neighbour
        }
        Table out = makePatchObjects(*sm, {0, p}, bands, mf, Table{});
        if (release.columns().empty())
            release = std::move(out);
        else
            release.append(out);
    }
    auto primaryCount = [&](std::size_t k) {
        int n = 0;
        for (std::size_t i = 0; i < release.numRows(); ++i)
            if (release.column<Bool>("is_primary")[i] &&
                std::hypot(release.column<double>("x")[i] - objs[k].x,
                           release.column<double>("y")[i] - objs[k].y) < 0.01)
                ++n;
        return n;
    };
    EXPECT_EQ(primaryCount(6), 0);  // before: missing
    EXPECT_EQ(primaryCount(1), 0);
    EXPECT_EQ(primaryCount(5), 1);
    const std::size_t before = release.numRows();
    EXPECT_EQ(rescueSeamOrphans(*sm, release), 2u);
    EXPECT_EQ(release.numRows(), before);  // rows are never added or removed
    EXPECT_EQ(primaryCount(6), 1);
    EXPECT_EQ(primaryCount(1), 1);  // three copies, one promoted
    EXPECT_EQ(primaryCount(2), 0);  // the owner's object 1.0" away is that object
    EXPECT_EQ(primaryCount(3), 1);
    EXPECT_EQ(primaryCount(4), 0);  // a failed fit does not stand in
    EXPECT_EQ(primaryCount(5), 1);
    EXPECT_EQ(primaryCount(0), 1);
    std::size_t flagged = 0;
    for (auto f : release.column<std::int64_t>("flags")) flagged += (f & kFlagSeamRescued) != 0;
    EXPECT_EQ(flagged, 2u);
    // Object 1 is promoted from the copy measured deepest inside its own patch's outer box:
    // the patch above the owner sees it 38 px from its outer edge, the other two 35 px.
    for (std::size_t i = 0; i < release.numRows(); ++i) {
        if ((release.column<std::int64_t>("flags")[i] & kFlagSeamRescued) &&
            std::hypot(release.column<double>("x")[i] - objs[1].x,
                       release.column<double>("y")[i] - objs[1].y) < 0.01) {
            EXPECT_EQ(release.column<std::int32_t>("patch")[i], owner + g.numPatches.x);
        }
    }
    // Idempotent: a second pass finds nothing left to rescue.
    EXPECT_EQ(rescueSeamOrphans(*sm, release), 0u);
}

// Each multifit_flags bit lands on its documented release bit (docs/data_products.md), and no
// other release bit is set by it (an isolated object well inside its patch).
TEST(ReleaseCatalog, MultifitFlagBitsMapToTheirReleaseBits) {
    auto sm = testSkyMap();
    const TractGeometry& g = sm->tractGeometry(0);
    const Point2D at{500, 500};
    const PatchIndex pi = g.findPatch(at);
    const int p = pi.y * g.numPatches.x + pi.x;
    const std::vector<std::pair<std::int64_t, std::int64_t>> mapping = {
        {1 << 0, 1 << 0},  {1 << 1, 1 << 1},  {1 << 2, 1 << 2},  {1 << 3, 1 << 3},
        {1 << 4, 1 << 10}, {1 << 5, 1 << 11}, {1 << 6, 1 << 13}, {1 << 8, kFlagCentreFixed}};
    for (const auto& [mfBit, releaseBit] : mapping) {
        std::vector<std::size_t> which;
        Table mf = multifitTable(*sm, p, {{at.x, at.y, -1}}, {"g"}, &which);
        ASSERT_EQ(which.size(), 1u);
        mf.column<std::int64_t>("multifit_flags")[0] = mfBit;
        Table out = makePatchObjects(*sm, {0, p}, {"g"}, mf, Table{});
        ASSERT_EQ(out.numRows(), 1u);
        EXPECT_EQ(out.column<std::int64_t>("flags")[0], releaseBit) << "multifit bit " << mfBit;
    }
}
