// A simulated patch for end-to-end tests of detection and deblending against truth, shared by
// deblend/tests/deblend_sim_test.cpp and bench/deblend.cpp.
//
// The patch is built with the production libraries, not with the deblender's own model:
//   * sky: sim::generateSky (stars on the stellar locus, bulge+disk Sérsic galaxies with colour
//     gradients to r = 25.5, 5% close pairs 1–3″), high-latitude star density;
//   * visits: sim::simulateDetector (Moffat PSFs with seeing 0.55–1.3″ varying per visit and
//     across the field, Poisson sky and source noise, read noise, saturation and bleeding), g r
//     i × `visitsPerBand`, one 1×1-detector camera dithered and rotated over the patch. Cosmic
//     rays, satellites and bad columns are off (artefact rejection is the coadd's business and
//     tested there); the sky is subtracted with the simulator's own sky model (background
//     estimation is calib's);
//   * each image gets its true WCS and true photometric calibration (nJy per electron), is
//     warped with coadd::warpExposure (Lanczos-3) onto a TAN patch grid of 0.2″ pixels and
//     combined with coadd::assembleCoadd (inverse-variance weights, compare-warp rejection,
//     CoaddPsf, variance scaled for the noise correlation of warping).
// So the coadds have correlated noise, spatially varying non-Gaussian PSFs and realistic
// galaxies, exactly as the pipeline's coadd stage makes them.
//
// COADD S/N OF A TRUTH OBJECT (what "truth objects with coadd S/N ≥ 10" means): in band b,
//     S/N_b = F_b · sqrt( Σ_i ψ_i² / V_i ),
// F_b the true total flux (nJy), ψ the coadd PSF at the object's true position (CoaddPsf kernel,
// normalised to unit sum), V the coadd variance plane (nJy², which predicts the scatter of
// PSF-sized sums, coadd/assemble.h); i.e. the S/N of an optimal PSF-flux measurement of a
// point source of that flux — F_b divided by the PSF-weighted noise of the coadd. The object's
// coadd S/N is the maximum over bands, since detection is run per band and the footprints are
// united (an object above threshold in any one band must be found). That is snPointMax. For an
// extended galaxy it is an upper bound no measurement reaches: the optimal measurement of its
// total flux weights by its own observed profile, and for Gaussians of σ_PSF and σ_g (the
// galaxy's half-light radius / 1.1774, bulge and disk radii weighted by the band's flux) its S/N
// is lower by sqrt(1 + (σ_g / σ_PSF)²). snMax and sn apply that factor — the same definition as
// `drp validate`'s truth S/N (docs/validation.md) — so a galaxy with r_e = 1" (σ_g 4.2 px,
// σ_PSF 2.2 px) has 0.46 of its point-source S/N.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "drp/coadd/assemble.h"
#include "drp/coadd/wcs_transform.h"
#include "drp/core/wcs.h"
#include "drp/deblend/deblender.h"
#include "drp/sim/camera.h"
#include "drp/sim/observe.h"
#include "drp/sim/survey.h"
#include "drp/validate/metrics.h"

namespace drp::deblend::testing {

struct SimPatchConfig {
    int size = 700;  ///< patch side in 0.2″ pixels
    int visitsPerBand = 3;
    std::uint64_t seed = 7;
    double pairFraction = 0.05;  ///< sim default: 5% of galaxies with a companion 1–3″ away
    bool addNoise = true;        ///< false: noise-free visits (diagnostics of systematic errors)
};

struct TruthEntry {
    sim::TrueObject object;
    Point2D pixel;                ///< true position on the patch grid
    std::vector<double> flux;     ///< per patch band, nJy
    std::vector<double> sn;       ///< per band coadd S/N of the optimal measurement (file comment)
    std::vector<double> rHalfPx;  ///< per band half-light radius (bulge and disk), pixels; 0: star
    double snMax = 0;             ///< coadd S/N: max over bands
    double snPointMax = 0;  ///< the point-source S/N of its flux, max over bands (upper bound)
};

struct SimPatch {
    Box2I box;
    std::shared_ptr<const Wcs> wcs;
    std::vector<std::string> bands;
    std::vector<Exposure> coadds;   ///< nJy, background-free, CoaddPsf
    std::vector<double> psfSigma;   ///< psfGaussianSigma of each coadd PSF at the centre (as
                                    ///< the pipeline's deblend stage)
    std::vector<ImageD> psfKernel;  ///< each coadd PSF's kernel image at the centre (as the
                                    ///< pipeline's deblend stage reads it from coadd-<b>-psf.h5)
    std::vector<TruthEntry> truth;  ///< every object whose true centre is within 30 px of the box
    /// Whether a position is far enough from the patch edge for completeness and purity to be
    /// counted: 50 px, the patch border of the tiny/demo skymaps (objects closer to the edge
    /// are in the overlap and measured as primary by the neighbouring patch).
    bool interior(Point2D p, double margin = 50.0) const {
        return p.x >= box.minX() + margin && p.x <= box.maxX() - margin &&
               p.y >= box.minY() + margin && p.y <= box.maxY() - margin;
    }
    std::vector<MaskedImage*> maskedImages() {
        std::vector<MaskedImage*> out;
        for (auto& c : coadds) out.push_back(&c.maskedImage());
        return out;
    }
};

inline SimPatch makeSimPatch(const SimPatchConfig& pc) {
    sim::SurveyConfig cfg = sim::presetConfig("tiny");
    cfg.camera.nDetX = cfg.camera.nDetY = 1;
    cfg.camera.detWidth = cfg.camera.detHeight = pc.size + 200;
    cfg.fieldHalfSizeDeg = pc.size * cfg.camera.pixelScaleArcsec / 2 / 3600;
    cfg.ditherArcsec = 8.0;  // 40 px: with 2° rotation the detector still covers the patch
    cfg.rotationMaxDeg = 2.0;
    cfg.visitsPerBand = pc.visitsPerBand;
    cfg.sky = sim::SkyModelConfig{};  // high-latitude stars, galaxies to r = 25.5
    cfg.sky.pairFraction = pc.pairFraction;
    cfg.observing.addArtefacts = false;
    cfg.observing.addNoise = pc.addNoise;
    sim::SurveyPlan plan = sim::makePlan(cfg, pc.seed);
    sim::Camera camera(cfg.camera);
    std::vector<sim::TrueObject> sky = sim::generateSky(cfg.sky, plan.skyRegion, pc.seed);

    SimPatch patch;
    patch.box = Box2I({0, 0}, Extent2I{pc.size, pc.size});
    patch.wcs = Wcs::makeTan(plan.field.center, Point2D((pc.size - 1) / 2.0, (pc.size - 1) / 2.0),
                             sim::TanSip::cdMatrix(camera.pixelScale(), degrees(0.0)));
    patch.bands = cfg.bands;
    const Box2I detBox = camera.detectorBox();
    for (const std::string& band : cfg.bands) {
        std::vector<coadd::Warp> warps;
        for (const sim::VisitSpec& v : plan.visits) {
            if (sim::kBandNames[v.band] != band) continue;
            sim::VisitConditions cond = sim::drawConditions(v, camera, cfg.observing, pc.seed);
            sim::SimulatedDetector sd =
                sim::simulateDetector(camera, cond, 0, sky, cfg.observing, pc.seed);
            const double zpOff = sd.truth.zeroPoint - cond.zeroPoint;
            ImageF& im = sd.exposure.maskedImage().image();
            for (int y = detBox.minY(); y <= detBox.maxY(); ++y)
                for (int x = detBox.minX(); x <= detBox.maxX(); ++x)
                    im.at({x, y}) -= static_cast<float>(
                        sim::skyAt(camera, cond, 0, zpOff, {double(x), double(y)}));
            sd.exposure.setWcs(sd.truth.trueWcs.toWcs(detBox));
            sd.exposure.setPhotoCalib(PhotoCalib{sd.truth.nJyPerElectron, 0.0});
            warps.push_back(coadd::warpExposure(sd.exposure, patch.wcs, patch.box));
        }
        coadd::CoaddResult r = coadd::assembleCoadd(warps, patch.box, {}, patch.wcs);
        const Point2D centre = Box2D(patch.box).center();
        patch.psfKernel.push_back(r.coadd.psf()->computeKernelImage(centre));
        patch.psfSigma.push_back(psfGaussianSigma(patch.psfKernel.back().cview()));
        patch.coadds.push_back(std::move(r.coadd));
    }

    const Box2I near = patch.box.grownBy(30);
    for (const sim::TrueObject& o : sky) {
        Point2D p = patch.wcs->skyToPixel(o.position);
        if (!Box2D(near).contains(p)) continue;
        TruthEntry t;
        t.object = o;
        t.pixel = p;
        for (std::size_t b = 0; b < cfg.bands.size(); ++b) {
            const double f = o.flux[sim::bandIndex(cfg.bands[b])];
            t.flux.push_back(f);
            double info = 0;  // Σ ψ²/V
            if (patch.box.contains(p.nearestPixel())) {
                const Exposure& c = patch.coadds[b];
                Image<double> k = c.psf()->computeKernelImage(p);
                double norm = 0;
                for (double v : k.pixels()) norm += v;
                const int r = (k.width() - 1) / 2;
                const Point2I q = p.nearestPixel();
                for (int j = 0; j < k.height(); ++j)
                    for (int i = 0; i < k.width(); ++i) {
                        Point2I pix{q.x - r + i, q.y - r + j};
                        if (!patch.box.contains(pix)) continue;
                        double var = c.variance().at(pix);
                        if (!(var > 0) || !std::isfinite(var)) continue;
                        double psi = k(i, j) / norm;
                        info += psi * psi / var;
                    }
            }
            const double point = f * std::sqrt(info);
            t.snPointMax = std::max(t.snPointMax, point);
            double rEffPx = 0;  // half-light radius, bulge and disk weighted by the band's flux
            if (!o.isStar && f > 0) {
                const double fb =
                    std::clamp(o.bulgeFlux[sim::bandIndex(cfg.bands[b])] / f, 0.0, 1.0);
                rEffPx = ((1 - fb) * o.diskREff + fb * o.bulgeREff) / cfg.camera.pixelScaleArcsec;
            }
            t.sn.push_back(point / validate::extendedNoiseFactor(rEffPx, patch.psfSigma[b]));
            t.rHalfPx.push_back(rEffPx);
        }
        t.snMax = *std::max_element(t.sn.begin(), t.sn.end());
        patch.truth.push_back(std::move(t));
    }
    return patch;
}

/// Greedy one-to-one matching (as the DP1 completeness/purity matcher, rtn-095): truth objects in
/// order of decreasing `priority` (brightness) each take the nearest still-unmatched detection
/// within `radius` pixels. Returns, per truth object, the detection index or -1.
inline std::vector<int> matchGreedy(const std::vector<Point2D>& truth,
                                    const std::vector<double>& priority,
                                    const std::vector<Point2D>& detections, double radius) {
    std::vector<std::size_t> order(truth.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return priority[a] > priority[b]; });
    std::vector<int> match(truth.size(), -1);
    std::vector<std::uint8_t> taken(detections.size(), 0);
    for (std::size_t t : order) {
        double best = radius * radius;
        int bi = -1;
        for (std::size_t d = 0; d < detections.size(); ++d) {
            if (taken[d]) continue;
            double dx = detections[d].x - truth[t].x, dy = detections[d].y - truth[t].y;
            double d2 = dx * dx + dy * dy;
            if (d2 <= best) {
                best = d2;
                bi = static_cast<int>(d);
            }
        }
        if (bi >= 0) {
            match[t] = bi;
            taken[bi] = 1;
        }
    }
    return match;
}

/// matchGreedy of the patch's truth objects (brightest, by coadd S/N, first) to our catalogue's
/// objects (PatchObject::position) within `radius` pixels; per truth object the object index or
/// -1.
inline std::vector<int> matchTruthToObjects(const SimPatch& patch, const PatchDeblend& out,
                                            double radius) {
    std::vector<Point2D> tpos, opos;
    std::vector<double> prio;
    for (const auto& t : patch.truth) {
        tpos.push_back(t.pixel);
        prio.push_back(t.snMax);
    }
    for (const auto& o : out.objects) opos.push_back(o.position);
    return matchGreedy(tpos, prio, opos, radius);
}

/// Whether truth object t is resolvable: no brighter (coadd S/N) truth object lies within one
/// FWHM of the broadest band's coadd PSF.
inline bool resolvable(const SimPatch& patch, std::size_t t) {
    const double fwhm = 2.3548 * *std::max_element(patch.psfSigma.begin(), patch.psfSigma.end());
    const TruthEntry& tr = patch.truth[t];
    for (const TruthEntry& u : patch.truth)
        if (u.snMax > tr.snMax && std::hypot(u.pixel.x - tr.pixel.x, u.pixel.y - tr.pixel.y) < fwhm)
            return false;
    return true;
}

/// The detection metrics of a deblended patch (`mo`: matchTruthToObjects), as deblend_sim_test
/// asserts them and deblend_pairs_dump pools them.
struct DetectionCounts {
    int nTruth = 0, nFound = 0;  ///< interior truth objects with coadd S/N ≥ 10; of them found
    int nResolvable = 0, nResolvableFound = 0;  ///< the same, the resolvable ones only
    int nDet = 0, nReal = 0;  ///< interior detections with peak S/N ≥ 10; of them matched (to a
                              ///< truth object of any S/N: a real faint object is not false)
    int nDetAll = 0, nRealAll = 0;      ///< the same at any peak S/N
    int multi = 0, undeblended = 0;     ///< multi-peak parents; of them left undeblended
    std::vector<std::size_t> missed;    ///< the counted truth objects not found (truth order)
    std::vector<std::uint8_t> matched;  ///< per object: matched to a truth object
};

inline DetectionCounts detectionCounts(const SimPatch& patch, const PatchDeblend& out,
                                       const std::vector<int>& mo) {
    DetectionCounts c;
    c.matched.assign(out.objects.size(), 0);
    for (std::size_t t = 0; t < patch.truth.size(); ++t) {
        if (mo[t] >= 0) c.matched[std::size_t(mo[t])] = 1;
        const TruthEntry& tr = patch.truth[t];
        if (tr.snMax < 10 || !patch.interior(tr.pixel)) continue;
        const bool res = resolvable(patch, t);
        ++c.nTruth;
        c.nResolvable += res;
        if (mo[t] >= 0) {
            ++c.nFound;
            c.nResolvableFound += res;
        } else {
            c.missed.push_back(t);
        }
    }
    for (std::size_t d = 0; d < out.objects.size(); ++d) {
        if (!patch.interior(out.objects[d].position)) continue;
        ++c.nDetAll;
        c.nRealAll += c.matched[d];
        if (out.objects[d].significance < 10) continue;
        ++c.nDet;
        c.nReal += c.matched[d];
    }
    for (std::size_t q = 0; q < out.footprints.size(); ++q)
        if (out.footprints[q].peaks().size() >= 2) {
            ++c.multi;
            c.undeblended += !out.results[q].deblended;
        }
    return c;
}

/// Median (the upper one of an even count) of `v`; NaN if empty.
inline double medianOf(std::vector<double> v) {
    if (v.empty()) return NAN;
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    return v[v.size() / 2];
}

/// Truth object t's neighbours as the issue's pair condition sees them: the truth objects with
/// coadd S/N ≥ 5 within `radius` px.
struct Neighbourhood {
    bool blended = false;    ///< it has such a neighbour
    bool resolved = true;    ///< all are ≥ 1 FWHM (of the broadest band) away
    double nearest = 1e300;  ///< distance to the nearest, pixels
    double ratio = 0;        ///< flux ratio (≥ 1, middle band: r of g r i) to the nearest
    /// Every one was found as an object of its own (`mo`: matchTruthToObjects), not t's.
    bool split = true;
    /// The issue's "truth pair with separation ≥ 1 PSF FWHM and flux ratio ≤ 10".
    bool issuePair() const { return blended && resolved && ratio <= 10; }
};

inline Neighbourhood neighbourhood(const SimPatch& patch, std::size_t t, const std::vector<int>& mo,
                                   double radius = 15.0) {
    const double fwhm = 2.3548 * *std::max_element(patch.psfSigma.begin(), patch.psfSigma.end());
    const std::size_t mid = patch.bands.size() / 2;
    const TruthEntry& tr = patch.truth[t];
    Neighbourhood n;
    for (std::size_t u = 0; u < patch.truth.size(); ++u) {
        const TruthEntry& tu = patch.truth[u];
        const double d = std::hypot(tu.pixel.x - tr.pixel.x, tu.pixel.y - tr.pixel.y);
        if (u == t || tu.snMax < 5 || d >= radius) continue;
        n.blended = true;
        n.resolved = n.resolved && d >= fwhm;
        n.split = n.split && mo[u] >= 0 && mo[u] != mo[t];
        if (d < n.nearest) {
            n.nearest = d;
            n.ratio = std::max(tu.flux[mid] / tr.flux[mid], tr.flux[mid] / tu.flux[mid]);
        }
    }
    return n;
}

/// One child of the issue's pairs: an interior truth object with coadd S/N ≥ 10 that we found
/// (`mo`) whose neighbourhood (15 px = 3") is an issue's pair.
struct IssuePair {
    std::size_t truth = 0;  ///< index in SimPatch::truth
    int object = -1;        ///< index in PatchDeblend::objects
    /// Separation and flux ratio to the nearest neighbour, and whether every neighbour was found
    /// as an object of its own: the pair was detected and deblended. Otherwise a neighbour
    /// (mostly S/N 5–10) was lost to detection and its light is in the child whatever the
    /// deblender does.
    Neighbourhood around;
};

/// The issue's pairs of a deblended patch; `mo` from matchTruthToObjects.
inline std::vector<IssuePair> issuePairs(const SimPatch& patch, const std::vector<int>& mo) {
    std::vector<IssuePair> out;
    for (std::size_t t = 0; t < patch.truth.size(); ++t) {
        const TruthEntry& tr = patch.truth[t];
        if (tr.snMax < 10 || !patch.interior(tr.pixel) || mo[t] < 0) continue;
        const Neighbourhood n = neighbourhood(patch, t, mo);
        if (n.issuePair()) out.push_back({t, mo[t], n});
    }
    return out;
}

}  // namespace drp::deblend::testing
