// Astrometric calibration against synthetic truth: a 4k×4k detector at 0.2″/px with an order-3
// SIP distortion (up to ~1.5 px at the corners), a header TAN WCS that is shifted and rotated
// and lacks the distortion, a reference catalogue with magnitudes, and detections with S/N-
// dependent centroid noise, spurious sources and missed stars.
#include "drp/calib/astrometry.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <numbers>
#include <random>

#include "drp/calib/sip_fit.h"
#include "drp/core/error.h"

namespace drp {
namespace {

constexpr double kDeg = std::numbers::pi / 180.0;
const Box2I kBox(Point2I(0, 0), Extent2I{4000, 4000});

Eigen::Matrix2d makeCd(double scaleArcsec, double rotationDeg) {
    double s = scaleArcsec / 3600.0, c = std::cos(rotationDeg * kDeg),
           n = std::sin(rotationDeg * kDeg);
    Eigen::Matrix2d cd;
    cd << -s * c, s * n, s * n, s * c;
    return cd;
}

std::shared_ptr<const Wcs> truthWcs() {
    SipCoefficients sip;
    sip.order = 3;
    sip.a = Eigen::MatrixXd::Zero(4, 4);
    sip.b = Eigen::MatrixXd::Zero(4, 4);
    // Pixel displacements at the corner (u = v = 2000): ~0.8, 0.6, 0.4, 0.24 px.
    sip.a(2, 0) = 2e-7;
    sip.a(1, 1) = -1.5e-7;
    sip.a(0, 2) = 1e-7;
    sip.a(3, 0) = 3e-11;
    sip.a(1, 2) = 2e-11;
    sip.b(2, 0) = -1e-7;
    sip.b(1, 1) = 2e-7;
    sip.b(0, 2) = 1.5e-7;
    sip.b(0, 3) = 3e-11;
    sip.b(2, 1) = -2e-11;
    return Wcs::makeTanSip(SpherePoint::fromDegrees(150.3, 2.2), Point2D(1999.5, 1999.5),
                           makeCd(0.2, 30.0), sip);
}

/// Header: TAN only, CRVAL moved by `offsetArcsec` (towards position angle 40°) and CD rotated.
std::shared_ptr<const Wcs> headerWcs(double offsetArcsec, double rotationDeg) {
    SpherePoint crval =
        SpherePoint::fromDegrees(150.3, 2.2).offset(degrees(40), arcseconds(offsetArcsec));
    return Wcs::makeTan(crval, Point2D(1999.5, 1999.5), makeCd(0.2, 30.0 + rotationDeg));
}

struct Field {
    Table sources, reference;
    std::vector<Point2D> brightTruePixels;  ///< true pixel positions of bright (m < 19) stars
};

/// Stars around `centre`; sources from `truth`, reference from the same stars (or, when
/// `refCentre` is given, from an unrelated star field there: a hopelessly wrong header).
Field makeField(const Wcs& truth, std::uint64_t seed, int numStars = 1500,
                const SpherePoint* refCentre = nullptr) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> uni(0, 1);
    std::normal_distribution<double> gauss(0, 1);
    Field f;
    auto& rRa = f.reference.addColumn<double>("ra", "deg");
    auto& rDec = f.reference.addColumn<double>("dec", "deg");
    auto& rMag = f.reference.addColumn<double>("mag", "mag");
    auto& sx = f.sources.addColumn<double>("x", "pixel");
    auto& sy = f.sources.addColumn<double>("y", "pixel");
    auto& sxe = f.sources.addColumn<double>("x_err", "pixel");
    auto& sye = f.sources.addColumn<double>("y_err", "pixel");
    auto& sf = f.sources.addColumn<double>("flux", "count");
    const SpherePoint centre = truth.pixelToSky(Point2D(1999.5, 1999.5));
    auto randomStar = [&](const SpherePoint& c) {
        // Uniform over a 0.3° × 0.3° square (the detector is 0.22° on a side).
        return c.offset(degrees(0), degrees((uni(rng) - 0.5) * 0.3))
            .offset(degrees(90), degrees((uni(rng) - 0.5) * 0.3));
    };
    for (int s = 0; s < numStars; ++s) {
        SpherePoint p = randomStar(centre);
        double m = 15.0 + 6.0 * std::pow(uni(rng), 0.6);  // more faint than bright stars
        if (!refCentre) {
            rRa.push_back(p.ra().asDegrees());
            rDec.push_back(p.dec().asDegrees());
            rMag.push_back(m);
        }
        Point2D px = truth.skyToPixel(p);
        if (px.x < 0 || px.y < 0 || px.x > 3999 || px.y > 3999) continue;
        if (uni(rng) < 0.1) continue;  // missed (blended, masked)
        // Centroid noise ~ FWHM / (2.35 S/N): 2 mas at m = 15 growing to 16 mas at m = 21.
        double sigMas = 2.0 * std::pow(10.0, 0.15 * (m - 15.0));
        double sigPix = sigMas / 200.0;
        sx.push_back(px.x + sigPix * gauss(rng));
        sy.push_back(px.y + sigPix * gauss(rng));
        sxe.push_back(sigPix);
        sye.push_back(sigPix);
        sf.push_back(std::pow(10.0, -0.4 * (m - 30.0)));
        if (m < 19) f.brightTruePixels.push_back(px);
    }
    if (refCentre)
        for (int s = 0; s < numStars; ++s) {
            SpherePoint p = randomStar(*refCentre);
            rRa.push_back(p.ra().asDegrees());
            rDec.push_back(p.dec().asDegrees());
            rMag.push_back(15.0 + 6.0 * std::pow(uni(rng), 0.6));
        }
    // Spurious detections (galaxies, artefacts) with no reference counterpart, some bright.
    for (int s = 0; s < 200; ++s) {
        sx.push_back(4000 * uni(rng) - 0.5);
        sy.push_back(4000 * uni(rng) - 0.5);
        sxe.push_back(0.05);
        sye.push_back(0.05);
        sf.push_back(std::pow(10.0, -0.4 * (16.0 + 6.0 * uni(rng) - 30.0)));
    }
    return f;
}

/// RMS separation [mas] between two WCSs at the given pixels.
double wcsRmsMas(const Wcs& a, const Wcs& b, const std::vector<Point2D>& pixels) {
    double ss = 0;
    for (const auto& p : pixels) {
        double d = a.pixelToSky(p).separation(b.pixelToSky(p)).asMilliarcseconds();
        ss += d * d;
    }
    return std::sqrt(ss / pixels.size());
}

void expectClass(const std::function<void()>& f, const std::string& cls) {
    try {
        f();
        FAIL() << "expected Error(" << cls << ")";
    } catch (const Error& e) {
        EXPECT_EQ(e.errorClass(), cls) << e.what();
        std::printf("  %s: %s\n", cls.c_str(), e.what());
    }
}

TEST(Astrometry, OffsetAndRotatedHeaderIsRecovered) {
    auto truth = truthWcs();
    auto header = headerWcs(5.0, 0.5);
    Field f = makeField(*truth, 1);
    // The header is really off: ≳ 5″ everywhere, ~25″ at the corners from the rotation.
    double headerErr = wcsRmsMas(*header, *truth, f.brightTruePixels);
    AstrometryResult r = fitAstrometry(f.sources, f.reference, *header, kBox, AstrometryConfig{});
    double err = wcsRmsMas(*r.wcs, *truth, f.brightTruePixels);
    const auto& s = r.summary;
    std::printf(
        "astrometry 5\"/0.5deg: header error %.0f mas; pattern %d matches, rot %.3f deg, scale "
        "%.5f, "
        "offset %.2f\"; %zu matches (%zu clipped), %d iterations, rms %.2f mas, chi2/dof %.2f, "
        "inverse err %.2e px; fitted vs truth at %zu bright stars: rms %.2f mas\n",
        headerErr, s.patternMatches, s.patternRotation.asDegrees(), s.patternScale,
        s.patternOffset.asArcseconds(), s.numMatches, s.numClipped, s.iterations, s.rmsMas,
        s.chi2 / s.dof, s.maxInverseErrorPixels, f.brightTruePixels.size(), err);
    EXPECT_GT(headerErr, 5000.0);
    EXPECT_NEAR(s.patternRotation.asDegrees(), 0.5, 0.05);  // undoes the header's +0.5°
    // Goal 5 (anchor §9 rows 10–12): ≤ 10 mas. Noise of 2–16 mas per star over ~1000 matches
    // constrains the 20 polynomial coefficients to ~1 mas, so 10 mas has a wide margin.
    EXPECT_LE(err, 10.0);
    EXPECT_GE(s.numMatches, 700u);  // ~780 stars detected on the detector
    // The reported rms is the scatter of single stars, ~ the centroid noise (2–16 mas).
    EXPECT_GT(s.rmsMas, 2.0);
    EXPECT_LT(s.rmsMas, 15.0);
    EXPECT_NEAR(s.chi2 / s.dof, 1.0, 0.2);
    EXPECT_LT(s.maxInverseErrorPixels, 1e-3);
    ASSERT_NE(r.wcs->sip(), nullptr);
    EXPECT_EQ(r.wcs->sip()->order, 3);
    // Sky -> pixel through the fitted inverse agrees with the forward map.
    for (const auto& p : f.brightTruePixels) {
        Point2D back = r.wcs->skyToPixel(r.wcs->pixelToSky(p));
        ASSERT_NEAR(back.x, p.x, 1e-6);
        ASSERT_NEAR(back.y, p.y, 1e-6);
    }
}

TEST(Astrometry, TenArcsecAndOneDegree) {
    auto truth = truthWcs();
    auto header = headerWcs(10.0, -1.0);
    Field f = makeField(*truth, 2);
    AstrometryResult r = fitAstrometry(f.sources, f.reference, *header, kBox, AstrometryConfig{});
    double err = wcsRmsMas(*r.wcs, *truth, f.brightTruePixels);
    std::printf("astrometry 10\"/1deg: %zu matches, rms %.2f mas, fitted vs truth %.2f mas\n",
                r.summary.numMatches, r.summary.rmsMas, err);
    EXPECT_LE(err, 10.0);
}

TEST(Astrometry, TooFewStarsFails) {
    auto truth = truthWcs();
    Field f = makeField(*truth, 3, 1500);
    Table few = f.sources.select({0, 1, 2, 3, 4});
    expectClass(
        [&] { fitAstrometry(few, f.reference, *headerWcs(5, 0.5), kBox, AstrometryConfig{}); },
        "astrometry_failed");
}

TEST(Astrometry, NoReferenceStarsFails) {
    auto truth = truthWcs();
    Field f = makeField(*truth, 4);
    Table empty = f.reference.select({});
    expectClass(
        [&] { fitAstrometry(f.sources, empty, *headerWcs(5, 0.5), kBox, AstrometryConfig{}); },
        "no_reference_stars");
    // A reference catalogue for another part of the sky.
    Table far;
    far.addColumn<double>("ra") = {10.0, 10.01};
    far.addColumn<double>("dec") = {-40.0, -40.0};
    far.addColumn<double>("mag") = {15.0, 16.0};
    expectClass(
        [&] { fitAstrometry(f.sources, far, *headerWcs(5, 0.5), kBox, AstrometryConfig{}); },
        "no_reference_stars");
}

TEST(Astrometry, HopelessHeaderFails) {
    // The header claims a field 1° away; the reference catalogue loaded around the header
    // position holds other stars, so no pattern can match. Several random fields: the best of the
    // wrong transforms must stay below minPatternMatches every time.
    auto truth = truthWcs();
    auto header = headerWcs(3600.0, 0.0);
    SpherePoint claimed = header->pixelToSky(Point2D(1999.5, 1999.5));
    for (std::uint64_t seed = 10; seed < 16; ++seed) {
        Field f = makeField(*truth, seed, 1500, &claimed);
        expectClass(
            [&] { fitAstrometry(f.sources, f.reference, *header, kBox, AstrometryConfig{}); },
            "astrometry_failed");
    }
}

TEST(SipFit, RecoversExactSipFromNoiselessPairs) {
    auto truth = truthWcs();
    SipFitInput in;
    std::mt19937_64 rng(8);
    std::uniform_real_distribution<double> uni(0, 3999);
    for (int i = 0; i < 200; ++i) {
        Point2D p(uni(rng), uni(rng));
        in.pixels.push_back(p);
        in.sky.push_back(truth->pixelToSky(p));
        in.sigma.push_back(0.005);
    }
    // Different CRPIX than the truth: the fit must absorb it into CRVAL/CD/SIP exactly.
    SipFit fit = fitTanSip(in, Point2D(2100.0, 1900.0), SpherePoint::fromDegrees(150.31, 2.19), 3,
                           4, Box2D(kBox));
    auto wcs = fit.makeWcs();
    std::vector<Point2D> grid;
    for (int i = 0; i <= 10; ++i)
        for (int j = 0; j <= 10; ++j) grid.emplace_back(i * 399.9, j * 399.9);
    double err = wcsRmsMas(*wcs, *truth, grid);
    std::printf("sip fit noiseless: rms vs truth %.3g mas, inverse err %.2e px\n", err,
                fit.maxInverseErrorPixels);
    // Moving CRPIX changes the TAN-SIP parametrisation only by terms that an order-3 polynomial
    // represents up to the projection's own higher-order terms (~(field/rad)³ · scale): µas.
    EXPECT_LT(err, 0.05);
    for (const auto& p : grid)
        EXPECT_LT(fit.apply(p).separation(wcs->pixelToSky(p)).asMilliarcseconds(), 1e-3);
}

}  // namespace
}  // namespace drp
