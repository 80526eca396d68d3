// Core value types: geometry, angles, sphere points, images and views, masks, metadata, tables.
#include <gtest/gtest.h>

#include <random>

#include "drp/core/angle.h"
#include "drp/core/exposure.h"
#include "drp/core/geometry.h"
#include "drp/core/image.h"
#include "drp/core/mask.h"
#include "drp/core/sphere_point.h"
#include "drp/core/table.h"

using namespace drp;

TEST(Angle, UnitsAndWrap) {
    EXPECT_NEAR(degrees(180).asRadians(), M_PI, 1e-15);
    EXPECT_NEAR(arcseconds(3600).asDegrees(), 1.0, 1e-15);
    EXPECT_NEAR(degrees(-10).wrap().asDegrees(), 350.0, 1e-12);
    EXPECT_NEAR(degrees(370).wrap().asDegrees(), 10.0, 1e-12);
    EXPECT_NEAR(degrees(190).wrapCtr().asDegrees(), -170.0, 1e-12);
    EXPECT_GE(radians(-1e-18).wrap().asRadians(), 0.0);
    EXPECT_LT(radians(-1e-18).wrap().asRadians(), 2 * M_PI);
}

TEST(Box2I, ContainsClipGrow) {
    Box2I b({10, 20}, {5, 3});
    EXPECT_EQ(b.maxX(), 14);
    EXPECT_EQ(b.maxY(), 22);
    EXPECT_TRUE(b.contains(Point2I{14, 22}));
    EXPECT_FALSE(b.contains(Point2I{15, 22}));
    EXPECT_EQ(b.area(), 15);
    Box2I c({12, 21}, {10, 10});
    EXPECT_EQ(b.clippedTo(c), Box2I::fromCorners({12, 21}, {14, 22}));
    EXPECT_TRUE(b.clippedTo(Box2I({100, 100}, {2, 2})).empty());
    EXPECT_EQ(b.grownBy(2), Box2I({8, 18}, {9, 7}));
    EXPECT_EQ(Box2D(b).min().x, 9.5);
    EXPECT_EQ(Point2D(14.49, 21.5).nearestPixel(), (Point2I{14, 22}));
    EXPECT_EQ(Point2D(-0.5, -0.51).nearestPixel(), (Point2I{0, -1}));
}

TEST(SpherePoint, SeparationOffsetBearing) {
    std::mt19937_64 rng(1);
    std::uniform_real_distribution<double> ura(0, 360), udec(-89, 89), ud(0, 2), ub(-180, 180);
    for (int k = 0; k < 1000; ++k) {
        SpherePoint p = SpherePoint::fromDegrees(ura(rng), udec(rng));
        Angle d = degrees(ud(rng)), b = degrees(ub(rng));
        SpherePoint q = p.offset(b, d);
        EXPECT_NEAR(p.separation(q).asArcseconds(), d.asArcseconds(), 1e-6);
        EXPECT_NEAR((p.bearingTo(q) - b).wrapCtr().asDegrees(), 0.0, 1e-6);
    }
    auto a = SpherePoint::fromDegrees(359.9999, 0), c = SpherePoint::fromDegrees(0.0001, 0);
    EXPECT_NEAR(a.separation(c).asArcseconds(), 0.72, 1e-9);
}

TEST(Image, OwningAndBorrowingViews) {
    ImageF img(Box2I({100, 200}, {8, 6}), 1.0f);
    img.at({103, 202}) = 5.0f;
    EXPECT_EQ(img(3, 2), 5.0f);
    auto sub = img.subview(Box2I({102, 201}, {3, 3}));
    EXPECT_EQ(sub(1, 1), 5.0f);
    sub.fill(2.0f);
    EXPECT_EQ(img(3, 2), 2.0f);
    EXPECT_EQ(img(0, 0), 1.0f);
    ConstImageView<float> cv = sub;
    EXPECT_EQ(cv.at({104, 203}), 2.0f);
    EXPECT_THROW(img.at({99, 200}), Error);
    EXPECT_THROW(img.subview(Box2I({99, 200}, {2, 2})), Error);
    auto copy = ImageD::copyOf(cv);
    EXPECT_EQ(copy.bbox(), sub.bbox());
    ImageF dst(Box2I({101, 200}, {3, 3}), -1.f);
    copyOverlap<float, float>(img.cview(), dst.view());
    EXPECT_EQ(dst.at({102, 201}), 2.0f);
    EXPECT_EQ(dst.at({101, 200}), 1.0f);
}

TEST(Mask, PlanesAndDescribe) {
    Mask m(Box2I({0, 0}, {4, 4}));
    auto& p = m.planes();
    EXPECT_EQ(p.bit("BAD"), 1);
    EXPECT_EQ(p.bit("SAT"), 2);
    m.set(1, 1, p.bits({"SAT", "CR"}));
    EXPECT_EQ(p.describe(m(1, 1)), "CR,SAT");
    int ghost = p.addPlane("GHOST");
    EXPECT_EQ(ghost, 12);
    EXPECT_EQ(p.addPlane("GHOST"), 12);
    EXPECT_THROW(p.setPlane("OTHER", 0), Error);
    EXPECT_THROW(p.bit("NOPE"), Error);
}

TEST(PhotoCalib, ZeroPointRoundTrip) {
    auto pc = PhotoCalib::fromZeroPoint(27.0, 0.01);
    EXPECT_NEAR(pc.zeroPoint(), 27.0, 1e-12);
    // 1 count at zp 31.4 is 1 nJy.
    EXPECT_NEAR(PhotoCalib::fromZeroPoint(31.400065).nJyPerCount, 1.0, 1e-6);
    // A larger zero point means a more sensitive system: fewer nJy per count. At zp 27 one count
    // is m = 27, i.e. 10^(-0.4 (27 - 31.4)) = 57.5 nJy; at zp 32.154 (the simulator's g band)
    // 0.4995 nJy per electron.
    EXPECT_NEAR(PhotoCalib::fromZeroPoint(27.0).nJyPerCount, std::pow(10.0, 0.4 * 4.400065), 1e-9);
    EXPECT_NEAR(PhotoCalib::fromZeroPoint(32.154215).nJyPerCount, 0.49925, 1e-4);
    EXPECT_NEAR(pc.nJyPerCountErr, pc.nJyPerCount * 0.01 * std::log(10.0) / 2.5, 1e-12);
}

TEST(PropertyList, TypedAccess) {
    PropertyList pl;
    pl.set("EXPTIME", 30.0, "seconds");
    pl.set("VISIT", 1234);
    pl.set("BAND", "r");
    pl.set("VISIT", 1235);
    EXPECT_EQ(pl.entries().size(), 3u);
    EXPECT_EQ(pl.get<std::int64_t>("VISIT"), 1235);
    EXPECT_EQ(pl.get<double>("VISIT"), 1235.0);
    EXPECT_EQ(pl.get<std::string>("BAND"), "r");
    EXPECT_THROW(pl.get<std::string>("EXPTIME"), Error);
    try {
        pl.get<double>("MISSING");
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.errorClass(), "not_found");
    }
}

TEST(Table, ColumnsAppendSelect) {
    Table t;
    auto& id = t.addColumn<std::int64_t>("id", "", "identifier");
    auto& flux = t.addColumn<double>("flux", "nJy", "flux");
    auto& ok = t.addColumn<Bool>("ok");
    for (int i = 0; i < 5; ++i) {
        id.push_back(i);
        flux.push_back(10.0 * i);
        ok.push_back(i % 2 == 0);
    }
    EXPECT_EQ(t.numRows(), 5u);
    Table u = t.select({4, 0});
    EXPECT_EQ(u.column<std::int64_t>("id")[0], 4);
    EXPECT_TRUE(u.column<Bool>("ok")[1]);
    t.append(u);
    EXPECT_EQ(t.numRows(), 7u);
    EXPECT_THROW(t.column<float>("flux"), Error);
    EXPECT_THROW(t.addColumn<int>("id"), Error);
    t.column<double>("flux").push_back(1.0);
    EXPECT_THROW(t.validate(), Error);
}

TEST(Error, ContextAccumulates) {
    try {
        try {
            throw badInput("truncated");
        } catch (Error& e) {
            e.addContext("reading x.fits HDU 2");
            throw;
        }
    } catch (const Error& e) {
        EXPECT_STREQ(e.what(), "reading x.fits HDU 2: truncated");
        EXPECT_EQ(e.errorClass(), "bad_input");
    }
}

TEST(PropertyList, SetKeepsTheValueType) {
    PropertyList p;
    p.set("D", 0.5);
    p.set("B", true);
    p.set("I", 7);
    p.set("L", std::int64_t(1) << 40);
    p.set("F", 1.5f);
    p.set("S", "text");
    EXPECT_EQ(p.get<double>("D"), 0.5);
    EXPECT_EQ(p.get<bool>("B"), true);
    EXPECT_EQ(p.get<std::int64_t>("I"), 7);
    EXPECT_EQ(p.get<std::int64_t>("L"), std::int64_t(1) << 40);
    EXPECT_EQ(p.get<double>("F"), 1.5);
    EXPECT_EQ(p.get<std::string>("S"), "text");
}
