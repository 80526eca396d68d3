// Release catalog benchmark: CPU time and peak memory to build the release Object table and to
// validate it, per 10^6 objects.
//
// Data: one discrete-skymap tract of 10 x 10 patches (3000 px inner + 200 px border, 0.2"/px;
// the LSST production patch) covering a 0.8-degree-radius field with 8e5 truth objects
// (4e5 deg^-2, LSST-like depth), 3 bands. Every patch's multifit catalog holds the objects in its
// outer box (so the overlaps are measured twice, as in the pipeline) and is written to
// patch/<tract>/<patch>/multifit.h5 beforehand (not timed).
//   build:    pipeline::runRelease, the release stage itself: read the 100 patch catalogs, ids,
//             primary flags from the skymap, merge, write release/object.h5 (deflate).
//   validate: read release/object.h5 and the truth, validateRelease (sky matching, completeness,
//             purity, exactly-once, flux and astrometric residuals, duplicates, seam checks
//             through the skymap), write metrics JSON + HTML report; what `drp validate` does
//             minus the Source catalogs and journals.
// Each phase runs in a forked child so its CPU time (user + system) and peak RSS (ru_maxrss,
// minus an idle child's) are its own; the machine is shared, so CPU seconds are the measure
// and the wall time is in the note. No reference tool: nothing else builds this catalog.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>

#include "drp/bench/bench.h"
#include "drp/drp/pipeline.h"
#include "drp/io/hdf5.h"
#include "drp/io/hdf5_table.h"
#include "drp/validate/report.h"

namespace drp::bench {
namespace {

namespace fs = std::filesystem;

struct ChildUsage {
    double cpu = 0, wall = 0, maxRssMb = 0;
};

/// Runs f in a forked child; its CPU seconds, wall seconds and peak RSS. Throws if it fails.
ChildUsage inChild(const std::function<void()>& f) {
    const auto t0 = std::chrono::steady_clock::now();
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
        int code = 0;
        try {
            f();
        } catch (const std::exception& e) {
            std::cerr << "release_catalog: " << e.what() << "\n";
            code = 1;
        }
        std::cerr.flush();
        ::_exit(code);
    }
    int status = 0;
    rusage ru{};
    if (::wait4(pid, &status, 0, &ru) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        throw std::runtime_error("release_catalog: benchmark child failed");
    ChildUsage u;
    u.wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    u.cpu = double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
            1e-6 * double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
    u.maxRssMb = double(ru.ru_maxrss) / 1024.0;  // Linux: kB
    return u;
}

const std::vector<std::string> kBands = {"g", "r", "i"};

std::unique_ptr<SkyMap> benchSkyMap(double radiusDeg) {
    SkyMapConfig c;
    c.type = "discrete";
    c.discrete.fields = {{SpherePoint::fromDegrees(150.0, 2.2), degrees(radiusDeg)}};
    return makeSkyMap(c);
}

/// Truth objects uniform in the field disk, and each patch's multifit catalog (setup).
void writeInputs(const pipeline::Repository& repo, const SkyMap& sm, std::size_t nTruth,
                 double radiusDeg) {
    std::mt19937_64 rng(20261204);
    std::uniform_real_distribution<double> u(0, 1);
    std::normal_distribution<double> g(0, 1);
    const TractGeometry& tg = sm.tractGeometry(0);
    const SpherePoint c = tg.centre;
    Table truth;
    auto& tRa = truth.addColumn<double>("ra", "deg");
    auto& tDec = truth.addColumn<double>("dec", "deg");
    auto& tStar = truth.addColumn<Bool>("is_star");
    std::vector<std::vector<double>*> tFlux;
    for (const auto& b : kBands) tFlux.push_back(&truth.addColumn<double>(b + "_flux", "nJy"));
    std::vector<Point2D> pix(nTruth);
    for (std::size_t i = 0; i < nTruth; ++i) {
        const double r = radiusDeg * std::sqrt(u(rng)), th = 2 * M_PI * u(rng);
        const double dec = c.dec().asDegrees() + r * std::sin(th);
        const double ra = c.ra().asDegrees() + r * std::cos(th) / std::cos(dec * M_PI / 180);
        tRa.push_back(ra), tDec.push_back(dec), tStar.push_back(u(rng) < 0.1);
        // Fluxes from 30 nJy to 3e5 nJy (m = 27.7 .. 17.7), log-uniform.
        const double f = 30 * std::pow(1e4, u(rng));
        for (auto* col : tFlux) col->push_back(f * (0.8 + 0.4 * u(rng)));
        pix[i] = tg.plane.toPixel(SpherePoint::fromDegrees(ra, dec));
    }
    h5::writeTable(repo.abs(pipeline::Repository::kTruth), "objects", truth);
    const double noise = 60;  // nJy per band: 5-sigma depth 300 nJy = 25.2 mag
    for (int py = 0; py < tg.numPatches.y; ++py)
        for (int px = 0; px < tg.numPatches.x; ++px) {
            const Box2I outer = tg.patchOuterBox({px, py});
            Table t;
            auto& ra = t.addColumn<double>("ra", "deg");
            auto& dec = t.addColumn<double>("dec", "deg");
            auto& rae = t.addColumn<double>("ra_err", "arcsec");
            auto& dece = t.addColumn<double>("dec_err", "arcsec");
            std::vector<std::vector<double>*> f;
            for (const auto& b : kBands)
                for (const char* s :
                     {"_psf_flux", "_psf_flux_err", "_model_flux", "_model_flux_err"})
                    f.push_back(&t.addColumn<double>(b + s, "nJy"));
            auto& e1 = t.addColumn<double>("shape_e1");
            auto& e2 = t.addColumn<double>("shape_e2");
            auto& rr = t.addColumn<double>("shape_r", "arcsec");
            auto& ext = t.addColumn<double>("extendedness");
            auto& fd = t.addColumn<double>("frac_dev");
            auto& chi = t.addColumn<double>("model_chi2_dof");
            auto& nep = t.addColumn<std::int32_t>("n_epochs");
            auto& fl = t.addColumn<std::int64_t>("multifit_flags");
            auto& pi = t.addColumn<std::int64_t>("parent_index");
            auto& ns = t.addColumn<std::int32_t>("n_siblings");
            auto& x = t.addColumn<double>("x", "pixel");
            auto& y = t.addColumn<double>("y", "pixel");
            for (std::size_t i = 0; i < nTruth; ++i) {
                if (!outer.contains(
                        Point2I(int(std::lround(pix[i].x)), int(std::lround(pix[i].y)))))
                    continue;
                const double sn = (*tFlux[1])[i] / noise;
                const double pos = 0.7 / 2.35 / std::max(sn, 1.0);  // centroid error [arcsec]
                ra.push_back(tRa[i] + pos * g(rng) / 3600 / std::cos(tDec[i] * M_PI / 180));
                dec.push_back(tDec[i] + pos * g(rng) / 3600);
                rae.push_back(pos), dece.push_back(pos);
                for (std::size_t b = 0; b < kBands.size(); ++b) {
                    const double tf = (*tFlux[b])[i];
                    f[4 * b]->push_back(tf + noise * g(rng)), f[4 * b + 1]->push_back(noise);
                    f[4 * b + 2]->push_back(tf + 1.3 * noise * g(rng));
                    f[4 * b + 3]->push_back(1.3 * noise);
                }
                e1.push_back(0.2 * g(rng)), e2.push_back(0.2 * g(rng)), rr.push_back(0.5 * u(rng));
                ext.push_back(tStar[i] ? 0 : 1), fd.push_back(u(rng)),
                    chi.push_back(1 + 0.1 * g(rng));
                nep.push_back(15), fl.push_back(0), pi.push_back(std::int64_t(x.size()));
                ns.push_back(1), x.push_back(pix[i].x), y.push_back(pix[i].y);
            }
            const int seq = tg.sequentialIndex({px, py});
            h5::writeTable(repo.abs(pipeline::Repository::multifitFile(0, seq)), "objects", t);
        }
}

void validateOnce(const pipeline::Repository& repo, const SkyMap& sm) {
    validate::ValidationInputs in;
    in.objects = h5::readTable(repo.abs(pipeline::Repository::kRelease), "object");
    in.bands = kBands;
    in.truthObjects = h5::readTable(repo.abs(pipeline::Repository::kTruth), "objects");
    in.owner = [&sm](double ra, double dec) -> std::optional<std::pair<int, int>> {
        auto tp = sm.findTractPatch(SpherePoint::fromDegrees(ra, dec));
        if (!tp) return std::nullopt;
        return std::pair<int, int>{tp->tract, tp->patchSequential};
    };
    const auto r = validate::validateRelease(in, {}, validate::Thresholds::defaults());
    std::ofstream(repo.abs("validate/metrics.json")) << validate::metricsToJson(r, "bench", "now");
    std::ofstream(repo.abs("validate/report.html")) << validate::reportToHtml(r, {}, "bench");
}

std::vector<Measurement> run(Context& ctx) {
    const std::size_t nTruth = ctx.quick ? 20000 : 800000;
    const double radius = 0.8;
    const pipeline::Repository repo(ctx.workDir + "/release_catalog");
    fs::create_directories(repo.abs("validate"));
    const auto sm = benchSkyMap(radius);
    const TractGeometry& tg = sm->tractGeometry(0);
    pipeline::Registry registry;
    registry.bands = kBands;
    for (int p = 0; p < tg.numPatches.x * tg.numPatches.y; ++p) registry.overlaps[{0, p}] = {};
    inChild([&] { writeInputs(repo, *sm, nTruth, radius); });
    const double idleMb = inChild([] {}).maxRssMb;

    const int repeats = std::max(1, std::min(ctx.repeats, 3));
    std::vector<ChildUsage> build, check;
    for (int k = 0; k < repeats; ++k) {
        build.push_back(inChild([&] { pipeline::runRelease(repo, *sm, registry); }));
        check.push_back(inChild([&] { validateOnce(repo, *sm); }));
    }
    const double nRows = double(
        h5::readTableSchema(h5::File::open(repo.abs(pipeline::Repository::kRelease)), "object")
            .numRows);
    auto med = [](std::vector<ChildUsage> v, double ChildUsage::*field) {
        std::sort(v.begin(), v.end(), [&](auto& a, auto& b) { return a.*field < b.*field; });
        return v[v.size() / 2].*field;
    };
    const double per = 1e6 / nRows;
    char note[300];
    std::snprintf(note, sizeof note,
                  "%.0f rows (%zu truth, 100 patches, 3 bands), median of %d; wall %.2f s build, "
                  "%.2f s validate; peak RSS %.0f / %.0f MB (idle child %.0f MB)",
                  nRows, nTruth, repeats, med(build, &ChildUsage::wall),
                  med(check, &ChildUsage::wall), med(build, &ChildUsage::maxRssMb),
                  med(check, &ChildUsage::maxRssMb), idleMb);
    if (ctx.log) *ctx.log << "release_catalog: " << note << "\n";
    auto m = [&](const std::string& metric, const std::string& unit, double v) {
        Measurement x;
        x.metric = metric, x.unit = unit, x.value = v, x.higherIsBetter = false, x.note = note;
        return x;
    };
    return {m("build release catalog, CPU per 10^6 objects", "CPU-s",
              med(build, &ChildUsage::cpu) * per),
            m("validate release catalog, CPU per 10^6 objects", "CPU-s",
              med(check, &ChildUsage::cpu) * per),
            m("build peak RSS per 10^6 objects", "MB",
              (med(build, &ChildUsage::maxRssMb) - idleMb) * per),
            m("validate peak RSS per 10^6 objects", "MB",
              (med(check, &ChildUsage::maxRssMb) - idleMb) * per)};
}

const RegisterBenchmark reg{{.name = "release_catalog",
                             .description = "build (release stage) and validate the release "
                                            "Object table: CPU and peak RSS per 10^6 objects",
                             .run = run}};

}  // namespace
}  // namespace drp::bench
