// Camera geometry, the true TAN-SIP WCS and the counter-seeded random numbers.
#include <gtest/gtest.h>

#include <cmath>

#include "drp/core/error.h"
#include "drp/core/wcs.h"
#include "drp/sim/camera.h"
#include "drp/sim/random.h"

using namespace drp;
using namespace drp::sim;

TEST(Camera, DetectorsTileTheFocalPlaneAroundTheBoresight) {
    CameraConfig cfg;
    cfg.nDetX = 3;
    cfg.nDetY = 2;
    cfg.detWidth = 100;
    cfg.detHeight = 80;
    cfg.gap = 10;
    Camera cam(cfg);
    ASSERT_EQ(cam.detectorCount(), 6);
    // Symmetric about the boresight: det 0's lower-left and det 5's upper-right mirror each other.
    const Point2D ll = cam.toFocalPlane(0, {0, 0});
    const Point2D ur = cam.toFocalPlane(5, {99, 79});
    EXPECT_DOUBLE_EQ(ll.x, -ur.x);
    EXPECT_DOUBLE_EQ(ll.y, -ur.y);
    // Neighbours are one detector width plus the gap apart.
    EXPECT_DOUBLE_EQ(cam.origin(1).x - cam.origin(0).x, 110.0);
    EXPECT_DOUBLE_EQ(cam.origin(3).y - cam.origin(0).y, 90.0);
    cfg.gap = -1;
    EXPECT_THROW(Camera{cfg}, Error);
}

TEST(TanSip, RoundTripsAndMatchesTheDocumentedProjection) {
    CameraConfig cfg;
    cfg.distortionAtCorner = 2e-3;
    Camera cam(cfg);
    const Pointing p{SpherePoint::fromDegrees(150.1, 2.2), degrees(17.0)};
    for (int det = 0; det < cam.detectorCount(); ++det) {
        const TanSip w = trueWcs(cam, p, det);
        for (Point2D px : {Point2D{0, 0}, Point2D{255.5, 300.2}, Point2D{511, 511}}) {
            const SpherePoint s = w.pixelToSky(px);
            const Point2D back = w.skyToPixel(s);
            EXPECT_NEAR(back.x, px.x, 1e-8);
            EXPECT_NEAR(back.y, px.y, 1e-8);
        }
        // The boresight is at CRPIX = -origin.
        const SpherePoint b = w.pixelToSky(w.crpix());
        EXPECT_LT(b.separation(p.boresight).asArcseconds(), 1e-9);
    }
    // Pixel scale and orientation: with rotation 0, +y is north and +x is west.
    const Pointing p0{SpherePoint::fromDegrees(10.0, -30.0), degrees(0.0)};
    const TanSip w = trueWcs(cam, p0, 0);
    const Point2D c = w.crpix();
    const SpherePoint s0 = w.pixelToSky(c), sy = w.pixelToSky({c.x, c.y + 1}),
                      sx = w.pixelToSky({c.x + 1, c.y});
    EXPECT_NEAR(s0.separation(sy).asArcseconds(), 0.2, 1e-9);
    EXPECT_NEAR(s0.bearingTo(sy).asDegrees(), 0.0, 1e-6);
    EXPECT_NEAR(s0.bearingTo(sx).asDegrees(), -90.0, 1e-6);
    // Distortion: at the corner the radial scale is stretched by distortionAtCorner.
    const double r = cam.cornerRadius();
    const double k = cam.distortionK();
    EXPECT_NEAR(k * r * r, 2e-3, 1e-15);
}

TEST(TanSip, FittedInverseSipIsAccurate) {
    Camera cam(CameraConfig{});
    const TanSip w = trueWcs(cam, {SpherePoint::fromDegrees(0.5, 0.5), degrees(5.0)}, 3);
    const auto sip = w.sip(cam.detectorBox());
    EXPECT_EQ(sip.order, 3);
    EXPECT_DOUBLE_EQ(sip.a(3, 0), w.k());
    EXPECT_DOUBLE_EQ(sip.b(0, 3), w.k());
    // Apply forward then the fitted inverse: back to the start within 1e-4 pixel.
    double worst = 0;
    for (int j = 0; j <= 10; ++j)
        for (int i = 0; i <= 10; ++i) {
            const double u = 51.1 * i - w.crpix().x, v = 51.1 * j - w.crpix().y;
            const double f = 1 + w.k() * (u * u + v * v);
            const double up = u * f, vp = v * f;
            double du = 0, dv = 0;
            for (int p = 0; p <= sip.inverseOrder; ++p)
                for (int q = 0; p + q <= sip.inverseOrder; ++q) {
                    du += sip.ap(p, q) * std::pow(up, p) * std::pow(vp, q);
                    dv += sip.bp(p, q) * std::pow(up, p) * std::pow(vp, q);
                }
            worst = std::max(worst, std::hypot(up + du - u, vp + dv - v));
        }
    EXPECT_LT(worst, 1e-4);
}

TEST(Random, StreamsAreDeterministicAndIndependent) {
    auto a = Rng::forStream(42, Stream::kStar, {7});
    auto b = Rng::forStream(42, Stream::kStar, {7});
    auto c = Rng::forStream(42, Stream::kStar, {8});
    auto d = Rng::forStream(42, Stream::kGalaxy, {7});
    auto e = Rng::forStream(43, Stream::kStar, {7});
    const auto x = a.next();
    EXPECT_EQ(x, b.next());
    EXPECT_NE(x, c.next());
    EXPECT_NE(x, d.next());
    EXPECT_NE(x, e.next());
    // Ids are ordered: (1, 2) differs from (2, 1).
    EXPECT_NE(Rng::forStream(1, Stream::kNoise, {1, 2}).next(),
              Rng::forStream(1, Stream::kNoise, {2, 1}).next());
}

TEST(Random, DistributionsHaveTheRightMoments) {
    auto r = Rng::forStream(1, Stream::kNoise, {0});
    const int n = 200000;
    for (double mu : {0.3, 4.0, 12.0, 900.0, 1e6}) {
        double s = 0, s2 = 0;
        for (int i = 0; i < n; ++i) {
            const double k = static_cast<double>(r.poisson(mu));
            s += k;
            s2 += k * k;
        }
        const double mean = s / n, var = s2 / n - mean * mean;
        // 5-sigma bounds for the sample mean and variance of n Poisson deviates.
        EXPECT_NEAR(mean, mu, 5 * std::sqrt(mu / n)) << "mu " << mu;
        EXPECT_NEAR(var / mu, 1.0, 5 * std::sqrt(2.0 / n) + 5 / std::sqrt(mu * n)) << "mu " << mu;
    }
    double s = 0, s2 = 0, s4 = 0;
    for (int i = 0; i < n; ++i) {
        const double g = r.normal();
        s += g;
        s2 += g * g;
        s4 += g * g * g * g;
    }
    EXPECT_NEAR(s / n, 0.0, 5 / std::sqrt(n));
    EXPECT_NEAR(s2 / n, 1.0, 5 * std::sqrt(2.0 / n));
    EXPECT_NEAR(s4 / n, 3.0, 5 * std::sqrt(96.0 / n));
    for (int i = 0; i < 1000; ++i) {
        const double u = r.uniform();
        ASSERT_TRUE(u >= 0.0 && u < 1.0);
        ASSERT_LT(r.below(7), 7u);
    }
}

TEST(TanSip, AgreesWithWcslibThroughDrpWcs) {
    CameraConfig cfg;
    cfg.distortionAtCorner = 3e-3;
    Camera cam(cfg);
    const Pointing p{SpherePoint::fromDegrees(359.95, -45.3), degrees(-33.0)};
    for (int det : {0, 3}) {
        const TanSip truth = trueWcs(cam, p, det);
        const auto wcs = truth.toWcs(cam.detectorBox());
        // And through a FITS header, as a reader of the simulated files sees it.
        const auto reread = Wcs::fromFitsHeader(wcs->toFitsHeader(), "sim header");
        for (Point2D px :
             {Point2D{0, 0}, Point2D{100.3, 400.7}, Point2D{511, 511}, Point2D{511, 0}}) {
            const SpherePoint s = truth.pixelToSky(px);
            EXPECT_LT(wcs->pixelToSky(px).separation(s).asArcseconds(), 1e-6);
            EXPECT_LT(reread->pixelToSky(px).separation(s).asArcseconds(), 1e-6);
            const Point2D back = wcs->skyToPixel(s);
            EXPECT_NEAR(back.x, px.x, 1e-6);
            EXPECT_NEAR(back.y, px.y, 1e-6);
        }
    }
}
