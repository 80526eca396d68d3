// Synthetic multi-visit astrometric survey for the joint astrometric calibration: visits of the
// simulator's camera (sim/camera.h: true radial TAN-SIP distortion) with noisy centroids, a
// Gaia-like reference catalogue with position errors, and per-visit TAN-SIP fits as the
// `astrometry` stage would make them. Used by joint_astrometry_vs_sim.cpp and
// bench/joint_astrometry.cpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "drp/calib/joint_astrometry.h"
#include "drp/calib/sip_fit.h"
#include "drp/sim/camera.h"

namespace drp::test {

/// The test's camera: a 2×2 mosaic of 512² detectors, 0.2″ pixels, 40-pixel gaps.
inline sim::CameraConfig smallMosaic() {
    sim::CameraConfig c;
    c.nDetX = c.nDetY = 2;
    c.detWidth = c.detHeight = 512;
    return c;
}

struct Survey {
    explicit Survey(const sim::CameraConfig& config = smallMosaic()) : camera(config) {}
    sim::Camera camera;
    std::vector<sim::Pointing> pointings;
    std::vector<SpherePoint> stars;
    std::vector<double> starSigmaPix;  ///< centroid error of each star (brightness)
    JointAstrometryReference ref;
    std::vector<std::size_t> refStar;
    std::vector<JointAstrometryUnit> units;
    std::vector<std::vector<std::size_t>> unitStar;  ///< true star of each detection
    std::vector<sim::TanSip> truth;                  ///< per unit
};

/// `nVisits` visits dithered by up to 20″ with ±1° rotations over a field the size of the
/// focal plane; `nStars` stars with 0.01-0.04 px centroid errors, the first `nRef` of them in the
/// reference catalogue with `refSigmaMas` per-axis errors; each visit-detector's per-visit WCS is
/// an order-3 TAN-SIP fit to its reference stars (lowered as the pipeline does).
inline Survey makeSurvey(int nVisits, int nStars, int nRef, double refSigmaMas, std::uint64_t seed,
                         const sim::CameraConfig& camera = smallMosaic()) {
    Survey s(camera);
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> uni(-1.0, 1.0);
    std::normal_distribution<double> gauss(0.0, 1.0);
    const SpherePoint centre = SpherePoint::fromDegrees(150.0, 2.2);
    const double halfField = 0.5 *
                             (camera.nDetX * camera.detWidth + (camera.nDetX - 1) * camera.gap) *
                             camera.pixelScaleArcsec;  // arcsec
    for (int i = 0; i < nStars; ++i) {
        double x = uni(rng) * halfField, y = uni(rng) * halfField;
        s.stars.push_back(centre.offset(radians(std::atan2(x, y)), arcseconds(std::hypot(x, y))));
        s.starSigmaPix.push_back(0.01 + 0.03 * (0.5 + 0.5 * uni(rng)));
    }
    for (int k = 0; k < nRef; ++k) {  // stars are in random order: the first nRef
        const double dx = gauss(rng) * refSigmaMas, dy = gauss(rng) * refSigmaMas;
        s.ref.sky.push_back(
            s.stars[k].offset(radians(std::atan2(dx, dy)), milliarcseconds(std::hypot(dx, dy))));
        s.ref.sigmaMas.push_back(refSigmaMas);
        s.refStar.push_back(k);
    }
    for (int v = 0; v < nVisits; ++v) {
        const double r = 20.0 * std::sqrt(0.5 + 0.5 * uni(rng)), phi = M_PI * uni(rng);
        s.pointings.push_back({centre.offset(radians(phi), arcseconds(r)), degrees(uni(rng))});
    }
    const Box2I box = s.camera.detectorBox();
    for (int v = 0; v < nVisits; ++v)
        for (int d = 0; d < s.camera.detectorCount(); ++d) {
            sim::TanSip t = sim::trueWcs(s.camera, s.pointings[v], d);
            JointAstrometryUnit u;
            u.visit = 1000 + v;
            u.detector = d;
            u.bbox = box;
            std::vector<std::size_t> who;
            SipFitInput single;  // the per-visit fit: this unit's reference stars
            for (std::size_t i = 0; i < s.stars.size(); ++i) {
                Point2D p = t.skyToPixel(s.stars[i]);
                if (p.x < 3 || p.y < 3 || p.x > box.maxX() - 3 || p.y > box.maxY() - 3) continue;
                const double sp = s.starSigmaPix[i];
                p = Point2D(p.x + sp * gauss(rng), p.y + sp * gauss(rng));
                u.pixels.push_back(p);
                u.sigmaPixels.push_back(sp);
                who.push_back(i);
                if (i < static_cast<std::size_t>(nRef)) {
                    single.pixels.push_back(p);
                    single.sky.push_back(s.ref.sky[i]);
                    single.sigma.push_back(std::hypot(sp * 0.2, refSigmaMas / 1e3));
                }
            }
            const Point2D c = Box2D(box).center();
            // The stage's rule (drp/src/pipeline_visit.cpp): order 3, lowered while there are
            // fewer than (order+1)(order+2)+2 matches.
            int order = 3;
            while (order > 1 && single.pixels.size() < std::size_t((order + 1) * (order + 2) + 2))
                --order;
            u.wcs = fitTanSip(single, c, t.pixelToSky(c), order, std::max(order + 1, 2), Box2D(box))
                        .makeWcs();
            s.units.push_back(std::move(u));
            s.unitStar.push_back(std::move(who));
            s.truth.push_back(t);
        }
    return s;
}

}  // namespace drp::test
