// The coadd variance plane is honest for PSF photometry on pure noise: the scatter of PSF-flux
// estimates at many positions matches the prediction from the variance plane, thanks to the
// per-warp noise-correlation factor (warp.h). Without it the prediction is ~25% too small.
#include <gtest/gtest.h>

#include <cmath>

#include "drp/coadd/assemble.h"
#include "drp/coadd/warp.h"
#include "synthetic.h"

using namespace drp;
using namespace drp::coadd;
using namespace drp::coadd::testing;

namespace {

// Ratio (empirical variance of PSF-weighted flux estimates) / (predicted from the variance
// plane, treating pixels as independent), over realisations and positions.
double scatterRatio(bool scaleVariance, double& correlationFactor) {
    const Box2I patch({0, 0}, {256, 256});
    const double rot[] = {0, 11, -19, 27, 40, -33};
    const double scale[] = {1.0, 0.99, 1.02, 1.01, 0.98, 1.0};
    double sumSq = 0, sumPred = 0;
    AssembleConfig cfg;
    cfg.scaleVarianceForCorrelation = scaleVariance;
    for (int real = 0; real < 3; ++real) {
        std::vector<Warp> warps;
        for (int k = 0; k < 6; ++k) {
            InputSpec sp;
            sp.visit = k;
            sp.box = Box2I({0, 0}, {330, 330});
            sp.rotationDeg = rot[k];
            sp.scale = scale[k];
            sp.psf = std::make_shared<AnalyticPsf>(AnalyticPsf::Kind::kGaussian, 3.0 + 0.3 * k, 0,
                                                   0, 12);
            sp.skySigma = 5 + k;
            sp.seed = 100 * real + k + 1;
            auto t = makeTransform(sp);
            Point2D c = t->apply(Point2D(128, 128));
            sp.sourceOfTargetOrigin = Eigen::Vector2d(165 - c.x + 0.37 * k, 165 - c.y - 0.21 * k);
            warps.push_back(warpExposure(makeExposure(sp, {}), makeTransform(sp), patch));
        }
        CoaddResult r = assembleCoadd(warps, patch, cfg);
        correlationFactor = r.varianceScale;
        const Exposure& e = r.coadd;
        for (int y = 20; y <= 236; y += 12)
            for (int x = 20; x <= 236; x += 12) {
                Point2D p(x + 0.3, y - 0.2);
                Image<double> m = e.psf()->computeImage(p);
                double num = 0, den = 0, var = 0;
                for (int j = 0; j < m.height(); ++j)
                    for (int i = 0; i < m.width(); ++i) {
                        Point2I q{m.xy0().x + i, m.xy0().y + j};
                        num += m(i, j) * e.image().at(q);
                        den += m(i, j) * m(i, j);
                        var += m(i, j) * m(i, j) * e.variance().at(q);
                    }
                sumSq += (num / den) * (num / den);
                sumPred += var / (den * den);
            }
    }
    return sumSq / sumPred;
}

}  // namespace

TEST(CoaddNoise, VariancePlanePredictsPsfFluxScatter) {
    double f = 0;
    double withFactor = scatterRatio(true, f);
    double f0 = 0;
    double withoutFactor = scatterRatio(false, f0);
    std::printf(
        "PSF-flux scatter / prediction: %.3f with the correlation factor (F = %.3f), %.3f "
        "without\n",
        withFactor, f, withoutFactor);
    // 3 × 361 positions (nearly independent at 12 px spacing): ±4.3% (1σ) statistical.
    EXPECT_NEAR(withFactor, 1.0, 0.12);
    EXPECT_GT(withoutFactor, 1.15);
}
