// Simulated detectors against their truth: rendered fluxes of isolated sources, the PSF seen in
// the image, sky noise vs the variance plane, masks of artefacts, and determinism.
#include <gtest/gtest.h>

#include <cmath>

#include "drp/sim/observe.h"
#include "drp/sim/survey.h"

using namespace drp;
using namespace drp::sim;

namespace {

struct Fixture {
    SurveyPlan plan;
    Camera camera;
    std::vector<TrueObject> sky;
    Fixture() : plan(makePlan(presetConfig("tiny"), 7)), camera(plan.config.camera) {
        sky = generateSky(plan.config.sky, plan.skyRegion, plan.seed);
    }
    SimulatedDetector simulate(std::size_t visit, int det, bool noise, bool artefacts) const {
        ObservingConfig obs = plan.config.observing;
        obs.addNoise = noise;
        obs.addArtefacts = artefacts;
        const VisitConditions c = drawConditions(plan.visits[visit], camera, obs, plan.seed);
        return simulateDetector(camera, c, det, sky, obs, plan.seed);
    }
    VisitConditions conditions(std::size_t visit) const {
        return drawConditions(plan.visits[visit], camera, plan.config.observing, plan.seed);
    }
};

const Fixture& fixture() {
    static const Fixture f;
    return f;
}

// Pixel box of a source's whole rendered support: PSF radius plus the truncation radius (8 r_e)
// stretched by at most 2.2 for |e| <= 0.93.
Box2I sourceBox(const TrueObject& o, Point2D p, const DetectorTruth& t, double scale) {
    double r = t.psf->kernelRadius() + 2;
    if (!o.isStar) r += 8.0 * std::max(o.diskREff, o.bulgeREff) / scale * 2.2;
    const Point2I c = p.nearestPixel();
    const int ri = static_cast<int>(std::ceil(r));
    return Box2I({c.x - ri, c.y - ri}, Extent2I{2 * ri + 1, 2 * ri + 1});
}

// A sparse sky for one detector: generated stars and galaxies moved onto a 3×3 grid of
// positions 170 px apart, so that every source is isolated and inside the detector.
std::vector<TrueObject> sparseSky(const Fixture& f, const TanSip& wcs, bool starsOnly) {
    std::vector<TrueObject> out;
    std::size_t cursor[2] = {0, 0};  // next candidate star / galaxy
    for (int j = 0; j < 3; ++j)
        for (int i = 0; i < 3; ++i) {
            const bool wantStar = starsOnly || (i + j) % 2 == 0;
            std::size_t& k = cursor[wantStar ? 0 : 1];
            for (; k < f.sky.size(); ++k) {
                const TrueObject& o = f.sky[k];
                const double r = nJyToMag(o.flux[2]);
                if (o.isStar != wantStar) continue;
                if (o.isStar && (r < 17.5 || r > 20.5)) continue;
                if (!o.isStar && (r > 23.0 || o.diskREff > 0.5)) continue;
                break;
            }
            if (k == f.sky.size())
                throw std::runtime_error("test sky has too few suitable sources");
            TrueObject o = f.sky[k++];
            o.position = wcs.pixelToSky({86.0 + 170 * i + 0.37 * j, 86.0 + 170 * j - 0.21 * i});
            o.id = static_cast<std::int64_t>(out.size()) + 1;
            o.pairedWith = 0;
            out.push_back(o);
        }
    return out;
}

}  // namespace

TEST(Survey, PresetsAndPlanAreValidAndDeterministic) {
    for (const auto& name : presetNames()) {
        const SurveyConfig c = presetConfig(name);
        const SurveyPlan p = makePlan(c, 1);
        EXPECT_EQ(p.visits.size(), c.bands.size() * static_cast<std::size_t>(c.visitsPerBand));
        EXPECT_GT(p.skyRegion.halfSizeDeg, p.field.halfSizeDeg);
    }
    EXPECT_THROW(presetConfig("huge"), Error);
    const SurveyPlan a = makePlan(presetConfig("tiny"), 5), b = makePlan(presetConfig("tiny"), 5);
    for (std::size_t i = 0; i < a.visits.size(); ++i) {
        EXPECT_EQ(a.visits[i].pointing.boresight, b.visits[i].pointing.boresight);
        EXPECT_LT(a.visits[i].pointing.boresight.separation(a.config.fieldCenter).asArcseconds(),
                  a.config.ditherArcsec + 1e-9);
    }
}

TEST(SkyModel, CountsColoursAndPairs) {
    const Fixture& f = fixture();
    const SkyModelConfig& c = f.plan.config.sky;
    const double area = f.plan.skyRegion.areaDeg2();
    std::int64_t stars = 0, gals = 0, companions = 0;
    for (const auto& o : f.sky) {
        if (o.isStar) {
            ++stars;
            const double gr = nJyToMag(o.flux[1]) - nJyToMag(o.flux[2]);
            EXPECT_TRUE(gr > 0.2 && gr < 1.5) << gr;
            continue;
        }
        ++gals;
        EXPECT_GT(o.diskREff, 0);
        EXPECT_LE(o.bulgeREff, o.diskREff);
        for (int b = 0; b < kNumBands; ++b) EXPECT_LE(o.bulgeFlux[b], o.flux[b]);
        if (o.pairedWith > o.id) continue;
        if (o.pairedWith != 0) {
            ++companions;
            const TrueObject& host = f.sky[static_cast<std::size_t>(o.pairedWith - 1)];
            EXPECT_EQ(host.pairedWith, o.id);
            const double sep = host.position.separation(o.position).asArcseconds();
            EXPECT_TRUE(sep >= c.pairSepMin - 1e-9 && sep <= c.pairSepMax + 1e-9) << sep;
        }
    }
    // Poisson counts: within 5 sigma of density × area.
    const double nStar = c.starDensity * area, nGal = c.galaxyDensity() * area;
    EXPECT_NEAR(double(stars), nStar, 5 * std::sqrt(nStar));
    EXPECT_NEAR(double(gals - companions), nGal, 5 * std::sqrt(nGal));
    EXPECT_GT(companions, 0);
    // Same seed, same sky; another seed, another sky.
    const auto again = generateSky(c, f.plan.skyRegion, f.plan.seed);
    ASSERT_EQ(again.size(), f.sky.size());
    EXPECT_EQ(again.back().position, f.sky.back().position);
    EXPECT_NE(generateSky(c, f.plan.skyRegion, f.plan.seed + 1).front().position,
              f.sky.front().position);
}

TEST(SimulateDetector, NoiseFreeFluxOfIsolatedSourcesEqualsTruth) {
    const Fixture& f = fixture();
    const double scale = f.plan.config.camera.pixelScaleArcsec;
    ObservingConfig obs = f.plan.config.observing;
    obs.addNoise = false;
    int stars = 0, galaxies = 0;
    for (std::size_t v : {std::size_t(0), std::size_t(4)})
        for (int det : {0, 3}) {
            const VisitConditions cond = f.conditions(v);
            const TanSip wcs = trueWcs(f.camera, cond.spec.pointing, det);
            const auto sky = sparseSky(f, wcs, false);
            const SimulatedDetector sd =
                simulateDetector(f.camera, cond, det, sky, obs, f.plan.seed);
            const DetectorTruth& t = sd.truth;
            const double zpOff = t.zeroPoint - cond.zeroPoint;
            for (const auto& o : sky) {
                const Box2I box = sourceBox(o, t.trueWcs.skyToPixel(o.position), t, scale);
                ASSERT_TRUE(sd.exposure.bbox().contains(box));
                double sum = 0;
                for (int y = box.minY(); y <= box.maxY(); ++y)
                    for (int x = box.minX(); x <= box.maxX(); ++x)
                        sum += sd.exposure.image()(x, y) -
                               skyAt(f.camera, cond, det, zpOff, {double(x), double(y)});
                // The 0.1% requirement; float32 storage of a ~1000 e- sky adds ~1e-5 relative.
                const double fluxE = o.flux[t.band] / t.nJyPerElectron;
                EXPECT_NEAR(sum / fluxE, 1.0, 1e-3)
                    << (o.isStar ? "star" : "galaxy") << " flux " << fluxE;
                (o.isStar ? stars : galaxies)++;
            }
        }
    EXPECT_EQ(stars + galaxies, 36);
    EXPECT_GE(galaxies, 16);
}

TEST(SimulateDetector, PsfInTheImageMatchesTheTruePsf) {
    const Fixture& f = fixture();
    ObservingConfig obs = f.plan.config.observing;
    obs.addNoise = false;
    const int det = 1;
    const VisitConditions cond = f.conditions(1);
    const auto sky = sparseSky(f, trueWcs(f.camera, cond.spec.pointing, det), true);
    const SimulatedDetector sd = simulateDetector(f.camera, cond, det, sky, obs, f.plan.seed);
    const DetectorTruth& t = sd.truth;
    const double zpOff = t.zeroPoint - cond.zeroPoint;
    for (const auto& o : sky) {
        const Point2D p = t.trueWcs.skyToPixel(o.position);
        const int r = t.psf->kernelRadius();
        const Point2I c = p.nearestPixel();
        const Box2I box({c.x - r, c.y - r}, Extent2I{2 * r + 1, 2 * r + 1});
        Image<double> stamp(box, 0.0);
        for (int y = box.minY(); y <= box.maxY(); ++y)
            for (int x = box.minX(); x <= box.maxX(); ++x)
                stamp.at({x, y}) = sd.exposure.image()(x, y) -
                                   skyAt(f.camera, cond, det, zpOff, {double(x), double(y)});
        const Quadrupole m = measureMoments(stamp);
        const Quadrupole truth = t.psf->computeShape(p);
        // Size to 0.1% and ellipticity to 1e-3 (float32 sky residuals dominate the error).
        EXPECT_NEAR(m.trace() / truth.trace(), 1.0, 1e-3);
        EXPECT_NEAR(m.e1(), truth.e1(), 1e-3);
        EXPECT_NEAR(m.e2(), truth.e2(), 1e-3);
    }
    // The PSF does vary over the focal plane.
    const Quadrupole a = t.psf->computeShape({0, 0}), b = t.psf->computeShape({511, 511});
    EXPECT_GT(std::abs(a.trace() - b.trace()) + std::abs(a.e1() - b.e1()), 1e-3);
}

TEST(SimulateDetector, SkyNoiseMatchesTheVariancePlane) {
    const Fixture& f = fixture();
    for (int det : {0, 2}) {
        const SimulatedDetector noisy = f.simulate(2, det, true, false);
        const SimulatedDetector clean = f.simulate(2, det, false, false);
        const VisitConditions cond = f.conditions(2);
        const double zpOff = noisy.truth.zeroPoint - cond.zeroPoint;
        double s = 0, s2 = 0;
        std::int64_t n = 0;
        const auto& img = noisy.exposure.image();
        for (int y = 0; y < img.height(); ++y)
            for (int x = 0; x < img.width(); ++x) {
                const double sky = skyAt(f.camera, cond, det, zpOff, {double(x), double(y)});
                const double model = clean.exposure.image()(x, y);
                if (model - sky > 0.01 * sky || noisy.exposure.mask()(x, y) != 0) continue;
                const double z = (img(x, y) - model) / std::sqrt(noisy.exposure.variance()(x, y));
                s += z;
                s2 += z * z;
                ++n;
            }
        ASSERT_GT(n, 100000);
        const double mean = s / double(n), rms = std::sqrt(s2 / double(n) - mean * mean);
        EXPECT_NEAR(mean, 0.0, 0.01);
        EXPECT_NEAR(rms, 1.0, 0.02) << "det " << det;
    }
}

TEST(SimulateDetector, ArtefactsMasksAndDeterminism) {
    const Fixture& f = fixture();
    int saturated = 0, bad = 0, cosmics = 0;
    for (std::size_t v = 0; v < 3; ++v)
        for (int det = 0; det < f.camera.detectorCount(); ++det) {
            const SimulatedDetector sd = f.simulate(v, det, true, true);
            const Mask& m = sd.exposure.mask();
            const MaskPixel sat = m.planes().bit("SAT"), badBit = m.planes().bit("BAD");
            const MaskPixel cr = m.planes().bit("CR"), streak = m.planes().bit("STREAK");
            for (int y = 0; y < m.bbox().height(); ++y)
                for (int x = 0; x < m.bbox().width(); ++x) {
                    ASSERT_EQ(m(x, y) & (cr | streak), 0)
                        << "camera pipeline cannot know CRs/streaks";
                    if (m(x, y) & sat) {
                        ++saturated;
                        ASSERT_EQ(sd.exposure.image()(x, y), float(f.plan.config.camera.fullWell));
                    }
                }
            for (const auto& bc : sd.truth.badColumns) {
                for (int y = bc.y0; y <= bc.y1; ++y) ASSERT_TRUE(m(bc.x, y) & badBit);
                ++bad;
            }
            cosmics += static_cast<int>(sd.truth.cosmicRays.size());
            EXPECT_GT(sd.truth.nStars + sd.truth.nGalaxies, 10);
        }
    EXPECT_GT(saturated, 0) << "the tiny sky should have saturated stars with bleed trails";
    EXPECT_GT(bad, 0);
    EXPECT_GT(cosmics, 0);
    // Same inputs, same pixels.
    const SimulatedDetector a = f.simulate(3, 2, true, true), b = f.simulate(3, 2, true, true);
    EXPECT_TRUE(a.exposure.maskedImage() == b.exposure.maskedImage());
}
