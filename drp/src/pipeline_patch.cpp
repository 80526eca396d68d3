// Patch-level stages: coadd (per band), deblend (all bands), multifit (all epochs).
#include <algorithm>
#include <cmath>
#include <map>

#include <Eigen/Dense>

#include "drp/calib/psf_model.h"
#include "drp/coadd/wcs_transform.h"
#include "drp/core/wcs.h"
#include "drp/drp/pipeline.h"
#include "drp/io/fits.h"
#include "drp/io/hdf5.h"
#include "drp/io/hdf5_table.h"

namespace drp::pipeline {

namespace {

std::shared_ptr<const Wcs> fittedWcs(const Repository& repo, std::int64_t visit, int det) {
    std::string path = repo.abs(Repository::astrometryFile(visit, det));
    h5::File f = h5::File::open(path);
    return Wcs::fromFitsHeader(std::get<std::string>(f.attribute("/", "wcs_header")), path);
}

/// A calibrated exposure ready for coaddition / multifit: calexp pixels, fitted WCS, PSF
/// model, photometric calibration.
Exposure loadCalibrated(const Repository& repo, const InputExposure& in, double nJyPerCount) {
    Exposure ex = fits::readExposure(repo.abs(Repository::calexp(in.visit, in.detector)));
    ex.setWcs(fittedWcs(repo, in.visit, in.detector));
    Table psf = h5::readTable(repo.abs(Repository::characterizeFile(in.visit, in.detector)), "psf");
    ex.setPsf(calib::PsfModel::fromTable(psf));
    ex.setPhotoCalib(PhotoCalib{nJyPerCount, 0.0});
    return ex;
}

/// Gaussian σ (pixels) equivalent to a PSF's second moments at a point.
double psfSigma(const Psf& psf, Point2D p) {
    return psf.computeShape(p).determinantRadius();
}

}  // namespace

jobs::TaskResult runCoadd(const Repository& repo, const PipelineConfig& config,
                          const SkyMap& skymap, const Registry& registry, TractPatchId tp,
                          const std::string& band) {
    const std::string id = patchBandId(tp.tract, tp.patch, band);
    TractInfo tract = skymap.tract(tp.tract);
    PatchInfo patch = tract.patch(tp.patch);
    const Box2I box = patch.outerBBox();
    auto zps = readZeroPoints(repo);
    std::vector<coadd::Warp> warps;
    std::vector<std::string> skipped;
    auto it = registry.overlaps.find(tp);
    if (it != registry.overlaps.end()) {
        for (std::size_t i : it->second) {
            const InputExposure& in = registry.exposures[i];
            if (in.band != band) continue;
            auto zp = zps.find({in.visit, in.detector});
            if (zp == zps.end()) {
                skipped.push_back(visitDetectorId(in.visit, in.detector) + " (no zero point)");
                continue;
            }
            Exposure ex = loadCalibrated(repo, in, zp->second);
            try {
                warps.push_back(coadd::warpExposure(ex, tract.wcs(), box, config.warp));
            } catch (const Error& e) {
                if (e.errorClass() != "no_overlap") throw;
            }
        }
    }
    if (warps.empty()) throw Error("no_inputs", id + ": no calibrated input overlaps the patch");
    coadd::CoaddResult r = coadd::assembleCoadd(warps, box, config.assemble, tract.wcs());
    PropertyList prov = provenance(config, id);
    prov.set("N_INPUTS", static_cast<std::int64_t>(warps.size()), "warps combined");
    prov.set("TRACT", tp.tract);
    prov.set("PATCH", tp.patch);
    r.coadd.visitInfo().band = band;
    fits::writeExposure(repo.abs(Repository::coadd(tp.tract, tp.patch, band)), r.coadd, prov);

    Point2D centre = Box2D(patch.innerBBox()).center();
    Image<double> kernel = r.coadd.psf()->computeKernelImage(centre);
    h5::AtomicFile out(repo.abs(Repository::coaddPsf(tp.tract, tp.patch, band)));
    h5::writeImage(out.file(), "psf_kernel", kernel);
    h5::writeImage(out.file(), "n_inputs", r.nInputs);
    Table inputs;
    auto& iv = inputs.addColumn<std::int64_t>("visit");
    auto& idt = inputs.addColumn<std::int32_t>("detector");
    auto& iw = inputs.addColumn<double>("weight", "nJy^-2", "inverse-variance weight of the warp");
    for (std::size_t k = 0; k < r.inputs.size(); ++k) {
        iv.push_back(r.inputs[k].id.visit);
        idt.push_back(r.inputs[k].id.detector);
        iw.push_back(r.inputs[k].weight);
    }
    h5::writeTable(out.file(), "inputs", inputs);
    PropertyList attrs = prov;
    attrs.set("psf_sigma", psfSigma(*r.coadd.psf(), centre),
              "Gaussian-equivalent PSF sigma at the patch centre [px]");
    out.file().setAttributes("/", attrs);
    out.commit();
    if (!skipped.empty()) return jobs::TaskResult::degraded({"inputs_skipped"}, skipped.front());
    return {};
}

jobs::TaskResult runDeblend(const Repository& repo, const PipelineConfig& config,
                            const SkyMap& skymap, const Registry& registry, TractPatchId tp) {
    const std::string id = patchId(tp.tract, tp.patch);
    TractInfo tract = skymap.tract(tp.tract);
    std::vector<Exposure> coadds;
    std::vector<double> sigma;
    for (const auto& band : registry.bands) {
        coadds.push_back(fits::readExposure(repo.abs(Repository::coadd(tp.tract, tp.patch, band))));
        h5::File f = h5::File::open(repo.abs(Repository::coaddPsf(tp.tract, tp.patch, band)));
        // The core width of the coadd PSF (adaptive moments), not the wing-dominated
        // unweighted-moment "psf_sigma": it sets the detection filter (deblender.h).
        sigma.push_back(deblend::psfGaussianSigma(h5::readImage<double>(f, "psf_kernel").cview()));
    }
    std::vector<MaskedImage*> mi;
    for (auto& c : coadds) mi.push_back(&c.maskedImage());
    deblend::PatchDeblend pd = deblend::deblendPatch(mi, sigma, config.detect, config.deblend);
    const std::size_t nb = registry.bands.size();
    Table parents, children;
    auto& pId = parents.addColumn<std::int64_t>("parent_index", "", "parent number in the patch");
    auto& pPeaks = parents.addColumn<std::int32_t>("n_peaks", "", "peaks in the footprint");
    auto& pArea = parents.addColumn<std::int64_t>("area", "pixel", "footprint area");
    auto& pDeb = parents.addColumn<Bool>("deblended", "", "split into children");
    auto& pFlags = parents.addColumn<std::string>("flags", "", "degraded flags (comma separated)");
    for (std::size_t p = 0; p < pd.footprints.size(); ++p) {
        std::string flags;
        for (auto& f : pd.results[p].flags) flags += (flags.empty() ? "" : ",") + f;
        pId.push_back(static_cast<std::int64_t>(p));
        pPeaks.push_back(static_cast<std::int32_t>(pd.footprints[p].peaks().size()));
        pArea.push_back(pd.footprints[p].area());
        pDeb.push_back(pd.results[p].deblended);
        pFlags.push_back(flags);
    }
    auto& cParent =
        children.addColumn<std::int64_t>("parent_index", "", "parent number in the patch");
    auto& cNSib =
        children.addColumn<std::int32_t>("n_siblings", "", "children of the parent (1: isolated)");
    auto& cx = children.addColumn<double>("x", "pixel", "centroid, tract pixel frame");
    auto& cy = children.addColumn<double>("y", "pixel", "centroid, tract pixel frame");
    auto& cra = children.addColumn<double>("ra", "deg", "ICRS right ascension");
    auto& cdec = children.addColumn<double>("dec", "deg", "ICRS declination");
    auto& crad = children.addColumn<double>("radius", "pixel",
                                            "sqrt(footprint area / pi) of the parent or template");
    auto& csig = children.addColumn<double>("significance", "", "peak detection S/N");
    std::vector<std::vector<double>*> cFlux, cFluxErr, cModel;
    for (const auto& b : registry.bands) {
        cFlux.push_back(&children.addColumn<double>(b + "_deblend_flux", "nJy",
                                                    "re-apportioned footprint flux"));
        cFluxErr.push_back(
            &children.addColumn<double>(b + "_deblend_flux_err", "nJy", "1-sigma error"));
        cModel.push_back(
            &children.addColumn<double>(b + "_scarlet_flux", "nJy", "deblender model flux"));
    }
    for (const deblend::PatchObject& o : pd.objects) {
        cParent.push_back(static_cast<std::int64_t>(o.parent));
        cNSib.push_back(o.nSiblings);
        cx.push_back(o.position.x);
        cy.push_back(o.position.y);
        SpherePoint s = tract.wcs()->pixelToSky(o.position);
        cra.push_back(s.ra().asDegrees());
        cdec.push_back(s.dec().asDegrees());
        crad.push_back(o.radius);
        csig.push_back(o.significance);
        for (std::size_t b = 0; b < nb; ++b) {
            cFlux[b]->push_back(o.flux[b]);
            cFluxErr[b]->push_back(o.fluxErr[b]);
            cModel[b]->push_back(o.modelFlux[b]);
        }
    }
    h5::AtomicFile out(repo.abs(Repository::deblendFile(tp.tract, tp.patch)));
    h5::writeTable(out.file(), "parents", parents);
    h5::writeTable(out.file(), "children", children);
    out.file().setAttributes("/", provenance(config, id));
    out.commit();
    if (!pd.degradedFlags.empty()) return jobs::TaskResult::degraded(pd.degradedFlags);
    return {};
}

namespace {

/// One epoch's data for multifit: the calibrated exposure and a cache of PSF mixtures.
struct EpochSource {
    const InputExposure* in = nullptr;
    int band = 0;
    Exposure exposure;
    double countsPerNJy = 1;
    std::map<std::pair<int, int>, multifit::GaussianMixture> psfCache;  // per 128-px cell

    const multifit::GaussianMixture& psfMixture(Point2D p) {
        std::pair<int, int> cell{static_cast<int>(std::floor(p.x / 128)),
                                 static_cast<int>(std::floor(p.y / 128))};
        auto it = psfCache.find(cell);
        if (it == psfCache.end()) {
            Point2D c((cell.first + 0.5) * 128, (cell.second + 0.5) * 128);
            it = psfCache
                     .emplace(
                         cell,
                         multifit::fitPsfMixture(exposure.psf()->computeKernelImage(c), 3).mixture)
                     .first;
        }
        return it->second;
    }
};

}  // namespace

jobs::TaskResult runMultifit(const Repository& repo, const PipelineConfig& config,
                             const SkyMap& skymap, const Registry& registry, TractPatchId tp) {
    const std::string id = patchId(tp.tract, tp.patch);
    (void)skymap;
    Table objs = h5::readTable(repo.abs(Repository::deblendFile(tp.tract, tp.patch)), "children");
    const std::size_t n = objs.numRows();
    const int nb = static_cast<int>(registry.bands.size());
    auto zps = readZeroPoints(repo);
    std::vector<EpochSource> epochs;
    auto it = registry.overlaps.find(tp);
    if (it != registry.overlaps.end())
        for (std::size_t i : it->second) {
            const InputExposure& in = registry.exposures[i];
            auto zp = zps.find({in.visit, in.detector});
            if (zp == zps.end()) continue;
            EpochSource e;
            e.in = &in;
            e.band =
                static_cast<int>(std::find(registry.bands.begin(), registry.bands.end(), in.band) -
                                 registry.bands.begin());
            e.exposure = loadCalibrated(repo, in, zp->second);
            e.countsPerNJy = 1.0 / zp->second;
            epochs.push_back(std::move(e));
        }
    const MaskPixel badBits = epochs.empty()
                                  ? 0
                                  : epochs.front().exposure.mask().planes().bits(
                                        {"BAD", "SAT", "CR", "NO_DATA", "SUSPECT", "INTRP"});
    const auto& ra = objs.column<double>("ra");
    const auto& dec = objs.column<double>("dec");
    const auto& radius = objs.column<double>("radius");
    std::vector<SpherePoint> pos(n);
    for (std::size_t k = 0; k < n; ++k) pos[k] = SpherePoint::fromDegrees(ra[k], dec[k]);

    Table out;
    auto& oRa = out.addColumn<double>(
        "ra", "deg", "ICRS right ascension (point-source fit for stars, model fit otherwise)");
    auto& oDec = out.addColumn<double>("dec", "deg", "ICRS declination");
    auto& oRaErr = out.addColumn<double>("ra_err", "arcsec", "1-sigma error of ra * cos(dec)");
    auto& oDecErr = out.addColumn<double>("dec_err", "arcsec", "1-sigma error of dec");
    std::vector<std::vector<double>*> psfF, psfE, modF, modE;
    for (const auto& b : registry.bands) {
        psfF.push_back(&out.addColumn<double>(b + "_psf_flux", "nJy", "multi-epoch PSF flux"));
        psfE.push_back(&out.addColumn<double>(b + "_psf_flux_err", "nJy", "1-sigma error"));
        modF.push_back(&out.addColumn<double>(b + "_model_flux", "nJy",
                                              "multi-epoch composite (exp+dev) model flux"));
        modE.push_back(&out.addColumn<double>(b + "_model_flux_err", "nJy", "1-sigma error"));
    }
    auto& oE1 = out.addColumn<double>("shape_e1", "",
                                      "ellipticity e1 (distortion) of the best galaxy model");
    auto& oE2 = out.addColumn<double>("shape_e2", "", "ellipticity e2");
    auto& oR = out.addColumn<double>("shape_r", "arcsec",
                                     "half-light radius sqrt(ab) of the best galaxy model");
    auto& oExt = out.addColumn<double>("extendedness", "",
                                       "1: galaxy model preferred by chi2 (>25), 0: point source");
    auto& oFracDev =
        out.addColumn<double>("frac_dev", "", "de Vaucouleurs fraction of the composite model");
    auto& oChi = out.addColumn<double>("model_chi2_dof", "", "chi2/dof of the composite model");
    auto& oNep =
        out.addColumn<std::int32_t>("n_epochs", "", "epochs with unmasked pixels in the fit");
    auto& oFlags = out.addColumn<std::int64_t>(
        "multifit_flags", "", "bit 0 no epochs, 1 point fit failed, 2 exp failed, 3 dev failed");

    int nFailed = 0;
    for (std::size_t k = 0; k < n; ++k) {
        std::vector<multifit::Epoch> eps;
        for (auto& es : epochs) {
            const Wcs& wcs = *es.exposure.wcs();
            Point2D p = wcs.skyToPixel(pos[k]);
            double scale = wcs.pixelScale(p).asArcseconds();
            int h = std::clamp(static_cast<int>(std::ceil(2.5 * radius[k] * 0.2 / scale + 4)),
                               config.multifitMinHalfSize, config.multifitMaxHalfSize);
            Point2I c = p.nearestPixel();
            Box2I cut =
                Box2I({c.x - h, c.y - h}, {2 * h + 1, 2 * h + 1}).clippedTo(es.exposure.bbox());
            if (cut.empty() || !es.exposure.bbox().contains(c)) continue;
            multifit::Epoch e;
            e.band = es.band;
            e.id = visitDetectorId(es.in->visit, es.in->detector);
            e.image = ImageD(cut, 0.0);
            e.inverseVariance = ImageD(cut, 0.0);
            // Neighbours within the cutout: pixels nearer to another object than to this one are
            // masked (the deblender's Voronoi partition on the sky).
            std::vector<Point2D> neighbours;
            for (std::size_t j = 0; j < n; ++j) {
                if (j == k || pos[j].separation(pos[k]).asArcseconds() > 2.0 * h * scale) continue;
                neighbours.push_back(wcs.skyToPixel(pos[j]));
            }
            for (int y = cut.minY(); y <= cut.maxY(); ++y)
                for (int x = cut.minX(); x <= cut.maxX(); ++x) {
                    float v = es.exposure.variance().at({x, y});
                    if ((es.exposure.mask().image().at({x, y}) & badBits) || !(v > 0)) continue;
                    double dself = std::hypot(x - p.x, y - p.y);
                    bool nearer = false;
                    for (auto& q : neighbours)
                        if (std::hypot(x - q.x, y - q.y) < dself) {
                            nearer = true;
                            break;
                        }
                    if (nearer) continue;
                    e.image.at({x, y}) = es.exposure.image().at({x, y});
                    e.inverseVariance.at({x, y}) = 1.0 / v;
                }
            LocalAffine la = wcs.linearize(p);
            e.uvToPixel = (la.jacobian * 3600.0).inverse();  // pixels per arcsec
            e.refPixel = Eigen::Vector2d(p.x, p.y);
            e.psf = es.psfMixture(p);
            e.psfModel = es.exposure.psf();
            e.countsPerNJy = es.countsPerNJy;
            eps.push_back(std::move(e));
        }
        std::int64_t flags = 0;
        auto nanv = std::numeric_limits<double>::quiet_NaN();
        if (eps.empty()) {
            flags |= 1;
            oRa.push_back(ra[k]);
            oDec.push_back(dec[k]);
            oRaErr.push_back(nanv);
            oDecErr.push_back(nanv);
            for (int b = 0; b < nb; ++b) {
                psfF[b]->push_back(nanv);
                psfE[b]->push_back(nanv);
                modF[b]->push_back(nanv);
                modE[b]->push_back(nanv);
            }
            oE1.push_back(nanv);
            oE2.push_back(nanv);
            oR.push_back(nanv);
            oExt.push_back(nanv);
            oFracDev.push_back(nanv);
            oChi.push_back(nanv);
            oNep.push_back(0);
            oFlags.push_back(flags);
            ++nFailed;
            continue;
        }
        multifit::FitResult init;
        multifit::FitResult point =
            multifit::fitModel(eps, nb, multifit::ModelKind::Point, init, config.multifit);
        if (!point.failure.empty()) flags |= 2;
        multifit::FitResult psf = multifit::fitPsfFlux(
            eps, nb, point.failure.empty() ? point.u : 0.0, point.failure.empty() ? point.v : 0.0);
        multifit::FitResult ginit;
        ginit.u = psf.u;
        ginit.v = psf.v;
        ginit.rEff = std::max(0.2, 0.5 * radius[k] * 0.2);
        multifit::FitResult ex =
            multifit::fitModel(eps, nb, multifit::ModelKind::Exponential, ginit, config.multifit);
        multifit::FitResult dv =
            multifit::fitModel(eps, nb, multifit::ModelKind::DeVaucouleurs, ginit, config.multifit);
        if (!ex.failure.empty()) flags |= 4;
        if (!dv.failure.empty()) flags |= 8;
        multifit::CompositeResult cm = multifit::fitComposite(eps, nb, ex, dv);
        const multifit::FitResult& best = ex.chi2 <= dv.chi2 ? ex : dv;
        bool extended = (point.chi2 - best.chi2) > 25.0 && best.failure.empty();
        const multifit::FitResult& posFit = extended ? best : point;
        // (u, v) are east/north offsets in arcsec from the reference position.
        SpherePoint c = pos[k].offset(radians(std::atan2(posFit.u, posFit.v)),
                                      arcseconds(std::hypot(posFit.u, posFit.v)));
        oRa.push_back(c.ra().asDegrees());
        oDec.push_back(c.dec().asDegrees());
        oRaErr.push_back(posFit.uErr);
        oDecErr.push_back(posFit.vErr);
        for (int b = 0; b < nb; ++b) {
            psfF[b]->push_back(psf.flux(b));
            psfE[b]->push_back(psf.fluxErr(b));
            modF[b]->push_back(cm.flux(b));
            // The composite error is conditional on the shapes; the marginal error of the best
            // single-profile fit is the honest one and is never smaller.
            modE[b]->push_back(std::max(cm.fluxErr(b), best.fluxErr(b)));
        }
        oE1.push_back(best.e1);
        oE2.push_back(best.e2);
        oR.push_back(best.rEff);
        oExt.push_back(extended ? 1.0 : 0.0);
        oFracDev.push_back(cm.fracDev);
        oChi.push_back(best.dof > 0 ? cm.chi2 / best.dof : nanv);
        oNep.push_back(best.nEpochs);
        oFlags.push_back(flags);
        if (flags) ++nFailed;
    }
    // Keep the deblender's identity columns next to the fits.
    for (const char* col : {"parent_index", "n_siblings", "x", "y"}) {
        Column c = objs.columnInfo(col);
        out.addColumn(c);
    }
    h5::AtomicFile f(repo.abs(Repository::multifitFile(tp.tract, tp.patch)));
    h5::writeTable(f.file(), "objects", out);
    f.file().setAttributes("/", provenance(config, id));
    f.commit();
    if (nFailed > 0)
        return jobs::TaskResult::degraded({"fit_failures"},
                                          std::to_string(nFailed) + " objects flagged");
    return {};
}

}  // namespace drp::pipeline
