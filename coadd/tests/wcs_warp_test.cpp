// Warping through real WCSs (core Wcs / WCSLIB): patch TAN grid <- detector TAN-SIP.
#include <gtest/gtest.h>

#include <cmath>

#include "drp/coadd/wcs_transform.h"
#include "synthetic.h"

using namespace drp;
using namespace drp::coadd;
using namespace drp::coadd::testing;

namespace {
Eigen::Matrix2d cdMatrix(double scaleArcsec, double rotDeg) {
    double s = scaleArcsec / 3600.0, t = rotDeg * M_PI / 180;
    Eigen::Matrix2d cd;
    cd << -s * std::cos(t), s * std::sin(t), s * std::sin(t), s * std::cos(t);
    return cd;
}
}  // namespace

TEST(WcsWarp, StarLandsAtItsSkyPositionWithItsFlux) {
    // Patch: TAN at (150°, 2.2°), 0.2"/px. Detector: TAN-SIP 0.2"/px rotated by 20°, centred
    // 30" away, with a 2nd-order distortion of ~1 px at its corners.
    auto patch =
        Wcs::makeTan(SpherePoint::fromDegrees(150.0, 2.2), {500.0, 500.0}, cdMatrix(0.2, 0));
    SipCoefficients sip;
    sip.order = 2;
    sip.a = Eigen::MatrixXd::Zero(3, 3);
    sip.b = Eigen::MatrixXd::Zero(3, 3);
    sip.a(2, 0) = 4e-6;
    sip.b(1, 1) = -3e-6;
    auto det = Wcs::makeTanSip(SpherePoint::fromDegrees(150.0 + 30.0 / 3600, 2.2), {200.0, 200.0},
                               cdMatrix(0.2, 20), sip);
    // Star at a known sky position, rendered at its detector position.
    auto psf = std::make_shared<AnalyticPsf>(AnalyticPsf::Kind::kGaussian, 3.5, 0, 0, 12);
    Point2D truthPatch(430.37, 512.81);
    Point2D onDet = det->skyToPixel(patch->pixelToSky(truthPatch));
    Exposure e(Box2I({0, 0}, {400, 400}));
    e.setPsf(psf);
    e.setWcs(det);
    e.setPhotoCalib(PhotoCalib{0.7, 0});
    e.visitInfo().visit = 5;
    addStar(e, *psf, onDet, 1e5);
    for (auto& v : e.variance().pixels()) v = 1.f;
    Warp w = warpExposure(e, patch, Box2I({300, 300}, {400, 400}));
    // The mapping is smooth: grid interpolation error far below 0.01 px.
    std::printf("WCS mapping grid-interpolation error: %.2e px\n", w.mappingError);
    EXPECT_LT(w.mappingError, 1e-3);
    // Flux (nJy) and centroid on the patch grid.
    double s = 0, sx = 0, sy = 0;
    Point2I c = truthPatch.nearestPixel();
    for (int y = c.y - 15; y <= c.y + 15; ++y)
        for (int x = c.x - 15; x <= c.x + 15; ++x) {
            double v = w.maskedImage.image().at({x, y});
            s += v;
            sx += v * x;
            sy += v * y;
        }
    EXPECT_NEAR(s / (1e5 * 0.7), 1.0, 3e-3);  // within the documented resampling envelope
    EXPECT_NEAR(sx / s, truthPatch.x, 0.01);
    EXPECT_NEAR(sy / s, truthPatch.y, 0.01);
    // The warped PSF is centred where the star is.
    Image<double> m = w.psf->computeImage(truthPatch);
    double ms = 0, mx = 0;
    for (int j = 0; j < m.height(); ++j)
        for (int i = 0; i < m.width(); ++i) {
            ms += m(i, j);
            mx += m(i, j) * (m.xy0().x + i);
        }
    EXPECT_NEAR(mx / ms, truthPatch.x, 0.01);
    // No WCS: bad input.
    e.setWcs(nullptr);
    EXPECT_THROW(warpExposure(e, patch, Box2I({300, 300}, {400, 400})), Error);
}
