// Rendering accuracy against analytic truth: total flux, centroid and second moments of stars and
// PSF-convolved galaxies, for several sizes, Sérsic indices and sub-pixel positions.
#include <gtest/gtest.h>

#include <cmath>

#include "drp/core/psf.h"
#include "drp/sim/moffat_psf.h"
#include "drp/sim/render.h"

using namespace drp;
using namespace drp::sim;

namespace {
struct Measured {
    double flux, x, y;
    Quadrupole q;
};
Measured measure(const Image<double>& img) {
    Measured m{0, 0, 0, {}};
    for (int j = 0; j < img.height(); ++j)
        for (int i = 0; i < img.width(); ++i) {
            const double v = img(i, j);
            m.flux += v;
            m.x += v * (i + img.xy0().x);
            m.y += v * (j + img.xy0().y);
        }
    m.x /= m.flux;
    m.y /= m.flux;
    for (int j = 0; j < img.height(); ++j)
        for (int i = 0; i < img.width(); ++i) {
            const double v = img(i, j), dx = i + img.xy0().x - m.x, dy = j + img.xy0().y - m.y;
            m.q.ixx += v * dx * dx;
            m.q.iyy += v * dy * dy;
            m.q.ixy += v * dx * dy;
        }
    m.q.ixx /= m.flux;
    m.q.iyy /= m.flux;
    m.q.ixy /= m.flux;
    return m;
}
}  // namespace

TEST(TruncatedMoffat, AnalyticNormalisationAndMoments) {
    // Integrate the continuous profile on a fine grid: flux 1 and moments as documented.
    TruncatedMoffat p(3.7, 3.2, 0.08, -0.05);
    const double h = 0.05;
    double s = 0, sxx = 0, syy = 0, sxy = 0;
    for (double y = -40; y <= 40; y += h)
        for (double x = -40; x <= 40; x += h) {
            const double v = p(x, y) * h * h;
            s += v;
            sxx += v * x * x;
            syy += v * y * y;
            sxy += v * x * y;
        }
    const Quadrupole q = p.moments();
    // The hard truncation edge limits the grid sum's accuracy to ~h × edge value: ~1e-5.
    EXPECT_NEAR(s, 1.0, 2e-5);
    EXPECT_NEAR(sxx / q.ixx, 1.0, 1e-3);
    EXPECT_NEAR(syy / q.iyy, 1.0, 1e-3);
    EXPECT_NEAR(sxy / q.ixy, 1.0, 2e-3);
    EXPECT_NEAR(q.e1(), 0.08, 1e-12);
    EXPECT_NEAR(q.e2(), -0.05, 1e-12);
    // FWHM: the profile drops to half its peak at the stated radius along the mean axis.
    TruncatedMoffat round(3.7, 3.2, 0, 0);
    EXPECT_NEAR(round(1.85, 0) / round(0, 0), 0.5, 1e-12);
}

TEST(RenderStar, FluxCentroidAndMomentsMatchTruth) {
    for (double fwhm : {2.2, 3.5, 6.0})
        for (Point2D c : {Point2D{50.0, 50.0}, Point2D{50.31, 49.77}, Point2D{50.5, 50.5}}) {
            TruncatedMoffat psf(fwhm, 3.5, 0.05, 0.03);
            Image<double> img(Box2I({0, 0}, Extent2I{101, 101}), 0.0);
            const double added = addStar(img.view(), psf, c, 1000.0);
            const Measured m = measure(img);
            EXPECT_NEAR(added, 1000.0, 1e-9);
            EXPECT_NEAR(m.flux, 1000.0, 1e-9);  // 1e-12 relative: far inside the 0.1% requirement
            // Quadrature across the hard truncation edge limits centroid and moments to ~1e-5
            // px and ~1e-4 relative; both are far below any measurement noise.
            EXPECT_NEAR(m.x, c.x, 1e-4);
            EXPECT_NEAR(m.y, c.y, 1e-4);
            // Pixel integration adds the unit box's variance 1/12 to each axis.
            const Quadrupole t = psf.moments();
            EXPECT_NEAR(m.q.ixx, t.ixx + 1.0 / 12, 3e-4 * t.ixx) << "fwhm " << fwhm;
            EXPECT_NEAR(m.q.iyy, t.iyy + 1.0 / 12, 3e-4 * t.iyy);
            EXPECT_NEAR(m.q.ixy, t.ixy, 3e-4 * t.ixx);
        }
}

TEST(TruePsfTest, KernelAndShapeAgree) {
    auto model = std::make_shared<MoffatPsfModel>();
    model->fwhm = 4.0;
    model->beta = 3.0;
    model->e1 = 0.03;
    model->radialFwhm = 0.1;
    model->gradX = 0.05;
    model->astigmatism = 0.04;
    model->cornerRadius = 700;
    TruePsf psf(model, Extent2D{-520.0, -520.0});
    for (Point2D p : {Point2D{0, 0}, Point2D{255.5, 100}, Point2D{511, 511}}) {
        auto k = psf.computeKernelImage(p);
        double s = 0;
        for (double v : k.pixels()) s += v;
        EXPECT_NEAR(s, 1.0, 1e-12);
        EXPECT_EQ(k.width(), 2 * psf.kernelRadius() + 1);
        const Quadrupole measured = measureMoments(k);
        const Quadrupole truth = psf.computeShape(p);
        EXPECT_NEAR(measured.ixx / truth.ixx, 1.0, 1e-4);
        EXPECT_NEAR(measured.iyy / truth.iyy, 1.0, 1e-4);
        EXPECT_NEAR(measured.e1(), truth.e1(), 1e-4);
        EXPECT_NEAR(measured.e2(), truth.e2(), 1e-4);
        auto im = psf.computeImage(Point2D{p.x + 0.3, p.y - 0.2});
        const Point2D c{p.x + 0.3, p.y - 0.2};
        EXPECT_TRUE(im.bbox().contains(c.nearestPixel()));
    }
    // The spatial variation is real: FWHM differs between the corners.
    EXPECT_GT(std::abs(psf.profileAt({0, 0}).fwhm() - psf.profileAt({511, 511}).fwhm()), 0.1);
}

TEST(RenderGalaxy, FluxAndMomentsMatchTruth) {
    struct Case {
        double n, re, e1, e2;
        Point2D c;
    };
    const Case cases[] = {
        {0.5, 2.0, 0.2, 0.0, {40.0, 40.0}},  {1.0, 3.0, 0.3, -0.2, {40.3, 39.6}},
        {1.0, 0.8, -0.1, 0.1, {40.5, 40.5}}, {4.0, 1.5, 0.1, 0.2, {40.2, 40.7}},
        {4.0, 0.4, 0.0, 0.0, {39.9, 40.1}},  {2.5, 2.5, -0.3, 0.1, {40.0, 40.25}}};
    TruncatedMoffat psf(3.5, 3.5, 0.04, -0.02);
    for (const auto& k : cases) {
        SersicComponent comp{k.n, k.re, k.e1, k.e2, 500.0};
        Image<double> stamp = renderGalaxy({comp}, k.c, psf);
        const Measured m = measure(stamp);
        EXPECT_NEAR(m.flux / 500.0, 1.0, 1e-9) << "n=" << k.n << " re=" << k.re;
        EXPECT_NEAR(m.x, k.c.x, 2e-3);
        EXPECT_NEAR(m.y, k.c.y, 2e-3);
        // Convolution adds second moments; pixel integration adds 1/12.
        const Quadrupole g = sersicMoments(comp), p = psf.moments();
        const double txx = g.ixx + p.ixx + 1.0 / 12, tyy = g.iyy + p.iyy + 1.0 / 12,
                     txy = g.ixy + p.ixy;
        EXPECT_NEAR(m.q.ixx / txx, 1.0, 2e-3) << "n=" << k.n << " re=" << k.re;
        EXPECT_NEAR(m.q.iyy / tyy, 1.0, 2e-3) << "n=" << k.n << " re=" << k.re;
        EXPECT_NEAR(m.q.ixy, txy, 2e-3 * txx) << "n=" << k.n << " re=" << k.re;
    }
}

TEST(RenderGalaxy, BulgePlusDiskIsSumOfComponentsAndClipsAtEdges) {
    TruncatedMoffat psf(4.0, 3.0, 0.0, 0.0);
    SersicComponent bulge{4.0, 1.0, 0.05, 0.0, 300.0}, disk{1.0, 4.0, 0.4, 0.1, 700.0};
    const Point2D c{30.2, 31.7};
    auto both = renderGalaxy({bulge, disk}, c, psf);
    auto b = renderGalaxy({bulge}, c, psf);
    auto d = renderGalaxy({disk}, c, psf);
    // Stamps differ in size; compare on the parent grid.
    double maxDiff = 0, peak = 0;
    for (int j = 0; j < both.height(); ++j)
        for (int i = 0; i < both.width(); ++i) {
            const Point2I p{i + both.xy0().x, j + both.xy0().y};
            const double vb = b.bbox().contains(p) ? b.at(p) : 0.0;
            const double vd = d.bbox().contains(p) ? d.at(p) : 0.0;
            maxDiff = std::max(maxDiff, std::abs(both(i, j) - vb - vd));
            peak = std::max(peak, both(i, j));
        }
    EXPECT_LT(maxDiff, 1e-9 * peak);
    // Adding into an image clips to the image and reports the flux inside.
    Image<double> img(Box2I({0, 0}, Extent2I{40, 40}), 0.0);
    const double added = addGalaxy(img.view(), {bulge, disk}, c, psf);
    double s = 0;
    for (double v : img.pixels()) s += v;
    EXPECT_NEAR(added, s, 1e-9);
    EXPECT_LT(added, 1000.0);
    EXPECT_GT(added, 500.0);
}

TEST(RenderGalaxy, PixelValuesConvergeWithOversampling) {
    // The default sub-grid against a 4x finer one: every pixel agrees to 0.1% of the peak.
    TruncatedMoffat psf(3.2, 3.5, 0.02, 0.01);
    for (double n : {1.0, 4.0}) {
        SersicComponent comp{n, 1.2, 0.2, -0.1, 1000.0};
        const Point2D c{20.37, 19.81};
        auto coarse = renderGalaxy({comp}, c, psf);
        auto fine = renderGalaxy({comp}, c, psf, 12);
        ASSERT_EQ(coarse.bbox(), fine.bbox());
        double peak = 0, maxDiff = 0;
        for (int j = 0; j < fine.height(); ++j)
            for (int i = 0; i < fine.width(); ++i) {
                peak = std::max(peak, fine(i, j));
                maxDiff = std::max(maxDiff, std::abs(fine(i, j) - coarse(i, j)));
            }
        EXPECT_LT(maxDiff, 1e-3 * peak) << "n=" << n;
    }
}
