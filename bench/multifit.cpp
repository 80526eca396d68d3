// Multifit speed: the full per-object measurement the release runs (point fit, PSF flux, exp and
// dev fits, composite flux; multifit/object_fit.h) on multi-epoch cutouts, in milliseconds of
// CPU per object-epoch, and the CPU time of a synthetic patch measured group by group with
// neighbours subtracted (fitGroup), as runMultifit does.
//
// Data: objects rendered with the fitter's own Gaussian-mixture models plus Gaussian noise (this
// is about speed; accuracy is tested against an independent renderer in multifit/tests). Each
// epoch is a 41×41-pixel cutout at 0.2"/px with its own 3-component PSF (seeing 0.6"–1.3"),
// rotation and zero point. A third of the objects are stars, the rest exp or dev galaxies with
// r_e 0.3"–0.8", S/N 20–200. The "patch" has 330 objects in 240 groups (3 groups in 8 are blended
// pairs at 1.2"–2" separation) on 10 epochs in 2 bands.
#include <cmath>
#include <random>

#include "drp/bench/bench.h"
#include "drp/multifit/object_fit.h"

namespace drp::bench {
namespace {

using namespace drp::multifit;

struct Truth {
    FitResult model;
    double flux;
};

/// `nEpochs` epochs of one group of objects (offsets in arcsec from the cutout centre).
std::vector<Epoch> makeEpochs(const std::vector<Truth>& objs, int nEpochs, int nBands,
                              std::mt19937_64& rng) {
    std::uniform_real_distribution<double> urot(0, 2 * M_PI), useeing(0.6, 1.3), uzp(0.7, 1.4);
    std::normal_distribution<double> gauss;
    const int size = 41;
    const double skyVar = 50.0;
    std::vector<Epoch> eps;
    for (int e = 0; e < nEpochs; ++e) {
        Epoch ep;
        ep.band = e % nBands;
        double rot = urot(rng);
        ep.uvToPixel << 5 * std::cos(rot), -5 * std::sin(rot), 5 * std::sin(rot), 5 * std::cos(rot);
        ep.refPixel = Eigen::Vector2d(size / 2, size / 2);
        double sigma = useeing(rng) * 5 / 2.355;  // FWHM [arcsec] -> sigma [px]
        std::vector<Gaussian> comps;
        for (auto [amp, scale] : {std::pair{0.6, 0.8}, {0.3, 1.4}, {0.1, 2.6}}) {
            Gaussian g;
            g.amplitude = amp;
            g.cov = std::pow(scale * sigma, 2) * Eigen::Matrix2d::Identity();
            comps.push_back(g);
        }
        ep.psf = GaussianMixture(comps);
        ep.countsPerNJy = uzp(rng);
        const Box2I box({0, 0}, {size, size});
        ep.image = ImageD(box, 0.0);
        ep.inverseVariance = ImageD(box, 1.0 / skyVar);
        for (const auto& o : objs) {
            FitResult m = o.model;
            m.flux = Eigen::VectorXd::Constant(nBands, o.flux);
            ImageD t = renderModel(ep, m, box);
            for (std::size_t i = 0; i < t.pixels().size(); ++i) ep.image.data()[i] += t.data()[i];
        }
        for (double& v : ep.image.pixels()) v += std::sqrt(skyVar) * gauss(rng);
        ep.id = std::to_string(e);
        ep.id.insert(ep.id.begin(), 'e');  // (not "e" + ...: a GCC 12 -Wrestrict false positive)
        eps.push_back(std::move(ep));
    }
    return eps;
}

Truth randomObject(std::mt19937_64& rng, int k, double u, double v) {
    std::uniform_real_distribution<double> ur(0.3, 0.8), ue(-0.3, 0.3), usnr(20, 200);
    Truth t;
    t.model.kind = k % 3 == 0 ? ModelKind::Point
                              : (k % 3 == 1 ? ModelKind::Exponential : ModelKind::DeVaucouleurs);
    t.model.u = u;
    t.model.v = v;
    t.model.rEff = ur(rng);
    t.model.e1 = ue(rng);
    t.model.e2 = ue(rng);
    double area = 4 * M_PI *
                  (std::pow(0.9 * 5 / 2.355, 2) +
                   (t.model.kind == ModelKind::Point ? 0 : std::pow(t.model.rEff * 5, 2)));
    t.flux = usnr(rng) * std::sqrt(area * 50.0 / 10);
    return t;
}

std::vector<Measurement> run(Context& ctx) {
    std::vector<Measurement> out;
    const int nBands = 2;
    const int nEpochs = ctx.quick ? 4 : 10;
    const ObjectFitConfig config;

    // 1. Isolated objects: CPU per object-epoch.
    {
        const int nObj = ctx.quick ? 6 : 60;
        std::mt19937_64 rng(7);
        std::vector<std::vector<Epoch>> scenes;
        for (int k = 0; k < nObj; ++k)
            scenes.push_back(makeEpochs({randomObject(rng, k, 0.05, -0.03)}, nEpochs, nBands, rng));
        double check = 0;
        Timing t = timeIt(ctx.quick ? 1 : ctx.repeats, [&] {
            for (const auto& eps : scenes) {
                ObjectInit init;
                init.rEff = 0.5;
                check += fitObject(eps, nBands, init, config).modelFlux(0);
            }
        });
        doNotOptimize(check);
        Measurement m;
        m.metric = "multifit per object-epoch (isolated)";
        m.unit = "ms CPU";
        m.value = 1e3 * t.cpuMedian / (nObj * nEpochs);
        m.higherIsBetter = false;
        m.note = std::to_string(nObj) + " objects x " + std::to_string(nEpochs) +
                 " epochs of 41x41 px, point+PSF+exp+dev+composite, 1 thread; wall " +
                 std::to_string(1e3 * t.median / (nObj * nEpochs)) + " ms";
        out.push_back(m);
    }

    // 2. A synthetic patch, group by group with neighbours subtracted.
    {
        const int nGroups = ctx.quick ? 4 : 240;
        std::mt19937_64 rng(11);
        std::uniform_real_distribution<double> usep(1.2, 2.0), uang(0, 2 * M_PI);
        struct Group {
            std::vector<Epoch> epochs;
            std::vector<ObjectInit> inits;
        };
        std::vector<Group> groups;
        int nObjects = 0;
        for (int g = 0; g < nGroups; ++g) {
            const bool pair = g % 8 < 2 || g % 8 == 5;  // 3 groups in 8
            std::vector<Truth> objs{randomObject(rng, g, 0, 0)};
            Group gr;
            gr.inits.push_back(ObjectInit{0.02, -0.02, 0.5, 3.0});
            if (pair) {
                double s = usep(rng), a = uang(rng);
                objs.push_back(randomObject(rng, g + 1, s * std::cos(a), s * std::sin(a)));
                gr.inits.push_back(ObjectInit{s * std::cos(a), s * std::sin(a), 0.5, 3.0});
            }
            nObjects += static_cast<int>(objs.size());
            gr.epochs = makeEpochs(objs, nEpochs, nBands, rng);
            groups.push_back(std::move(gr));
        }
        double check = 0;
        Timing t = timeIt(ctx.quick ? 1 : std::min(ctx.repeats, 3), [&] {
            for (const auto& gr : groups)
                for (const auto& f : fitGroup(gr.epochs, nBands, gr.inits, config))
                    check += f.modelFlux(0);
        });
        doNotOptimize(check);
        Measurement m;
        m.metric = "multifit synthetic patch (" + std::to_string(nObjects) + " objects, " +
                   std::to_string(nEpochs) + " epochs)";
        m.unit = "CPU-s";
        m.value = t.cpuMedian;
        m.higherIsBetter = false;
        m.note = std::to_string(nGroups) +
                 " groups (3/8 blended pairs, neighbours subtracted, 2 "
                 "passes); " +
                 std::to_string(1e3 * t.cpuMedian / (nObjects * nEpochs)) +
                 " ms CPU per object-epoch; wall " + std::to_string(t.median) + " s";
        out.push_back(m);
    }
    return out;
}

const RegisterBenchmark reg{{.name = "multifit",
                             .description = "multi-epoch model fitting: ms per object-epoch, "
                                            "CPU-s per synthetic patch",
                             .run = run}};

}  // namespace
}  // namespace drp::bench
