// markTractRuns (drp/pipeline.h): the pixels the coadd clipped from an epoch, as runs of tract
// pixels, marked in that epoch's calexp mask for multifit. Checked geometrically against the
// exact inverse mapping on two TAN grids that differ by a 30° rotation, a 3% scale and a
// sub-pixel offset (a dithered, rotated visit): every epoch pixel whose centre falls inside the
// clipped tract area is marked (no holes), and nothing is marked farther than 2 epoch pixels
// from it (the 3 x 3 growth is 1 px, plus up to ~0.7 px of nearest-pixel rounding).
#include <gtest/gtest.h>

#include <cmath>

#include "drp/drp/pipeline.h"

using namespace drp;

TEST(ClipMask, TractRunsAreMarkedInTheEpochWithoutHoles) {
    const SpherePoint centre = SpherePoint::fromDegrees(150.0, 2.0);
    const double s = 0.2 / 3600.0;  // 0.2"/px
    Eigen::Matrix2d tractCd;
    tractCd << -s, 0, 0, s;
    const double a = 30.0 * M_PI / 180.0, k = 1.03;
    Eigen::Matrix2d rot;
    rot << std::cos(a), -std::sin(a), std::sin(a), std::cos(a);
    auto tract = Wcs::makeTan(centre, Point2D(500.0, 500.0), tractCd);
    auto epoch = Wcs::makeTan(centre, Point2D(200.3, 180.6), tractCd * rot * k);

    // A thin diagonal "trail" 5 tract pixels wide, plus a compact 4 x 4 region, as runs.
    std::vector<Span> runs;
    auto inside = [](double x, double y) {
        const double d = std::abs((x - 450.0) - 0.6 * (y - 450.0)) / std::hypot(1.0, 0.6);
        return (d <= 2.5 && y >= 420 && y <= 520) || (x >= 560 && x <= 563 && y >= 470 && y <= 473);
    };
    for (int y = 400; y <= 600; ++y) {
        int start = -1;
        for (int x = 380; x <= 620; ++x) {
            const bool in = inside(x, y);
            if (in && start < 0) start = x;
            if (!in && start >= 0) {
                runs.push_back(Span{y, start, x - 1});
                start = -1;
            }
        }
        ASSERT_LT(start, 0);
    }
    ASSERT_GT(runs.size(), 100u);

    Mask mask(Box2I({0, 0}, {400, 400}));
    const MaskPixel bit = mask.planes().bit("CLIPPED");
    pipeline::markTractRuns(mask, bit, *epoch, *tract, runs);

    int holes = 0, far = 0, marked = 0, shouldBe = 0;
    for (int y = 0; y < 400; ++y)
        for (int x = 0; x < 400; ++x) {
            const Point2D t = tract->skyToPixel(epoch->pixelToSky(Point2D(x, y)));
            const bool m = mask.image().at({x, y}) & bit;
            marked += m;
            // Inside: the tract pixel containing this epoch pixel's centre is clipped.
            const bool in = inside(std::lround(t.x), std::lround(t.y));
            shouldBe += in;
            if (in && !m) ++holes;
            if (m) {
                // Distance (epoch pixels) to the nearest clipped tract pixel centre.
                double best = 1e9;
                for (const Span& r : runs)
                    for (int xx = r.x0; xx <= r.x1; ++xx) {
                        const Point2D e = epoch->skyToPixel(tract->pixelToSky(Point2D(xx, r.y)));
                        best = std::min(best, std::hypot(e.x - x, e.y - y));
                    }
                if (best > 2.0) ++far;
            }
        }
    EXPECT_GT(shouldBe, 500);
    EXPECT_EQ(holes, 0) << "of " << shouldBe;
    EXPECT_EQ(far, 0) << "of " << marked;
    // Growth is bounded: the marked area is at most ~3x the clipped area for a 5 px wide
    // trail (1 px on each side of 5, twice the rounding), not the whole image.
    EXPECT_LT(marked, 3 * shouldBe);
}
