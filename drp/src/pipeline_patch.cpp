// Patch-level stages: coadd (per band), deblend (all bands), multifit (all epochs).
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <sstream>

#include <Eigen/Dense>

#include "drp/calib/psf_model.h"
#include "drp/coadd/wcs_transform.h"
#include "drp/core/atomic_file.h"
#include "drp/core/wcs.h"
#include "drp/drp/multifit_checkpoint.h"
#include "drp/drp/pipeline.h"
#include "drp/io/fits.h"
#include "drp/io/hdf5.h"
#include "drp/io/hdf5_table.h"
#include "drp/multifit/object_fit.h"

namespace drp::pipeline {

namespace {

/// A calibrated exposure ready for coaddition / multifit: calexp pixels, calibrated WCS, PSF
/// model, photometric calibration.
Exposure loadCalibrated(const Repository& repo, const InputExposure& in, double nJyPerCount) {
    Exposure ex = fits::readExposure(repo.abs(Repository::calexp(in.visit, in.detector)));
    ex.setWcs(readCalibratedWcs(repo, in.visit, in.detector));
    Table psf = h5::readTable(repo.abs(Repository::characterizeFile(in.visit, in.detector)), "psf");
    ex.setPsf(calib::PsfModel::fromTable(psf));
    ex.setPhotoCalib(PhotoCalib{nJyPerCount, 0.0});
    return ex;
}

/// The inner-region pixel with the most coadd inputs; ties go to the one nearest the centre
/// (then the lowest y, x: deterministic). Throws no_inputs when no inner pixel is covered.
Point2D psfReferencePoint(const Image<std::int32_t>& nInputs, const Box2I& inner) {
    const Box2I b = inner.clippedTo(nInputs.bbox());
    const Point2D c = Box2D(inner).center();
    std::int32_t best = 0;
    double bestD2 = 0;
    Point2I bestP{0, 0};
    for (int y = b.minY(); y <= b.maxY(); ++y) {
        const std::int32_t* row = nInputs.row(y - nInputs.bbox().minY());
        for (int x = b.minX(); x <= b.maxX(); ++x) {
            const std::int32_t n = row[x - nInputs.bbox().minX()];
            if (n < best || n == 0) continue;
            const double d2 = (x - c.x) * (x - c.x) + (y - c.y) * (y - c.y);
            if (n > best || d2 < bestD2) {
                best = n;
                bestD2 = d2;
                bestP = {x, y};
            }
        }
    }
    if (best == 0) throw Error("no_inputs", "no coadd input covers the patch's inner region");
    return Point2D(bestP);
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

    // The stored kernel is the CoaddPsf where the patch is best covered: the inner pixel with
    // the most inputs, nearest the centre among those (the centre itself can fall in a chip gap
    // of every input, where the CoaddPsf has no inputs to combine).
    Point2D centre = psfReferencePoint(r.nInputs, patch.innerBBox());
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
    // The pixels compare-warp clipped from each input (satellite trails, transients of one
    // epoch), as runs of tract pixels: multifit masks them in that input's calexp, since it fits
    // the epochs' pixels, not the coadd's (legacypipe masks its outlier pixels in every epoch
    // the same way).
    Table clip;
    auto& cv = clip.addColumn<std::int64_t>("visit");
    auto& cdt = clip.addColumn<std::int32_t>("detector");
    auto& cy = clip.addColumn<std::int32_t>("y", "px", "tract pixel row of the run");
    auto& cx0 = clip.addColumn<std::int32_t>("x0", "px", "first tract pixel of the run");
    auto& cx1 = clip.addColumn<std::int32_t>("x1", "px", "last tract pixel of the run (inclusive)");
    for (std::size_t k = 0; k < r.clipped.size() && k < r.inputs.size(); ++k)
        for (const Span& s : r.clipped[k].spans()) {
            cv.push_back(r.inputs[k].id.visit);
            cdt.push_back(r.inputs[k].id.detector);
            cy.push_back(s.y);
            cx0.push_back(s.x0);
            cx1.push_back(s.x1);
        }
    h5::writeTable(out.file(), "clipped", clip);
    PropertyList attrs = prov;
    attrs.set("psf_sigma", psfSigma(*r.coadd.psf(), centre),
              "Gaussian-equivalent PSF sigma at psf_x, psf_y [px]");
    attrs.set("psf_x", centre.x, "where psf_kernel was evaluated (tract pixels)");
    attrs.set("psf_y", centre.y, "where psf_kernel was evaluated (tract pixels)");
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
    std::vector<ImageD> kernels;
    for (const auto& band : registry.bands) {
        coadds.push_back(fits::readExposure(repo.abs(Repository::coadd(tp.tract, tp.patch, band))));
        h5::File f = h5::File::open(repo.abs(Repository::coaddPsf(tp.tract, tp.patch, band)));
        kernels.push_back(h5::readImage<double>(f, "psf_kernel"));
        // The core width of the coadd PSF (adaptive moments), not the wing-dominated
        // unweighted-moment "psf_sigma": it sets the detection filter (deblender.h).
        sigma.push_back(deblend::psfGaussianSigma(kernels.back().cview()));
    }
    std::vector<MaskedImage*> mi;
    for (auto& c : coadds) mi.push_back(&c.maskedImage());
    deblend::PatchDeblend pd =
        deblend::deblendPatch(mi, sigma, config.detect, config.deblend, kernels);
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
    auto& cblend = children.addColumn<double>(
        "blendedness", "",
        "1 - <T,T>/<T,model> of the template T: 0 isolated, ->1 buried in a neighbour");
    std::vector<std::vector<double>*> cFlux, cFluxErr, cModel, cTmpl, cTmplErr;
    for (const auto& b : registry.bands) {
        cFlux.push_back(&children.addColumn<double>(b + "_deblend_flux", "nJy",
                                                    "re-apportioned footprint flux"));
        cFluxErr.push_back(
            &children.addColumn<double>(b + "_deblend_flux_err", "nJy", "1-sigma error"));
        cModel.push_back(
            &children.addColumn<double>(b + "_scarlet_flux", "nJy", "deblender model flux"));
        cTmpl.push_back(&children.addColumn<double>(
            b + "_template_flux", "nJy", "template-weighted flux, PSF aperture-corrected"));
        cTmplErr.push_back(
            &children.addColumn<double>(b + "_template_flux_err", "nJy", "1-sigma error"));
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
        cblend.push_back(o.blendedness);
        for (std::size_t b = 0; b < nb; ++b) {
            cFlux[b]->push_back(o.flux[b]);
            cFluxErr[b]->push_back(o.fluxErr[b]);
            cModel[b]->push_back(o.modelFlux[b]);
            cTmpl[b]->push_back(o.templateFlux[b]);
            cTmplErr[b]->push_back(o.templateFluxErr[b]);
        }
    }
    h5::AtomicFile out(repo.abs(Repository::deblendFile(tp.tract, tp.patch)));
    h5::writeTable(out.file(), "parents", parents);
    h5::writeTable(out.file(), "children", children);
    out.file().setAttributes("/", provenance(config, id));
    out.commit();
    if (!pd.degradedFlags.empty()) {
        // Which parents, for `drp status`: per flag the count and the first parent indices
        // (rows of deblend.h5 /parents).
        std::string message;
        for (const std::string& flag : pd.degradedFlags) {
            std::vector<std::size_t> which;
            for (std::size_t p = 0; p < pd.results.size(); ++p)
                if (std::find(pd.results[p].flags.begin(), pd.results[p].flags.end(), flag) !=
                    pd.results[p].flags.end())
                    which.push_back(p);
            message += (message.empty() ? "" : "; ") + flag + ": " + std::to_string(which.size()) +
                       " of " + std::to_string(pd.footprints.size()) + " parents (parent_index";
            for (std::size_t i = 0; i < which.size() && i < 5; ++i)
                message += (i ? ", " : " ") + std::to_string(which[i]);
            message += which.size() > 5 ? ", ...)" : ")";
        }
        return jobs::TaskResult::degraded(pd.degradedFlags, message);
    }
    return {};
}

namespace {

/// Output columns of the multifit catalog, in row order. Every value of a row is held as a
/// double (integers exactly) so that rows can be checkpointed bit-exactly.
struct MultifitColumn {
    std::string name, unit, doc;
    char type;  // 'd' float64, 'i' int32, 'l' int64
};

std::vector<MultifitColumn> multifitColumns(const std::vector<std::string>& bands) {
    std::vector<MultifitColumn> c{
        {"ra", "deg", "ICRS right ascension (point-source fit for stars, model fit otherwise)",
         'd'},
        {"dec", "deg", "ICRS declination", 'd'},
        {"ra_err", "arcsec", "1-sigma error of ra * cos(dec)", 'd'},
        {"dec_err", "arcsec", "1-sigma error of dec", 'd'}};
    for (const auto& b : bands) {
        c.push_back({b + "_psf_flux", "nJy", "multi-epoch PSF flux", 'd'});
        c.push_back({b + "_psf_flux_err", "nJy", "1-sigma error", 'd'});
        c.push_back({b + "_model_flux", "nJy", "multi-epoch composite (exp+dev) model flux", 'd'});
        c.push_back({b + "_model_flux_err", "nJy", "1-sigma error (marginal over shape)", 'd'});
        c.push_back(
            {b + "_n_epochs", "", "epochs of this band with unmasked pixels in the fit", 'i'});
    }
    for (std::size_t i = 0; i < bands.size(); ++i)
        for (std::size_t j = i + 1; j < bands.size(); ++j) {
            c.push_back({bands[i] + "_" + bands[j] + "_psf_flux_cov", "nJy2",
                         "covariance of the two bands' PSF fluxes", 'd'});
            c.push_back({bands[i] + "_" + bands[j] + "_model_flux_cov", "nJy2",
                         "covariance of the two bands' model fluxes", 'd'});
        }
    std::vector<MultifitColumn> tail{
        {"shape_e1", "", "ellipticity e1 (distortion) of the best galaxy model", 'd'},
        {"shape_e2", "", "ellipticity e2", 'd'},
        {"shape_r", "arcsec", "half-light radius sqrt(ab) of the best galaxy model", 'd'},
        {"shape_r_err", "arcsec", "1-sigma error of shape_r", 'd'},
        {"model_type", "", "chosen model: -1 none, 0 point, 1 exp, 2 dev", 'i'},
        {"extendedness", "", "1: galaxy model preferred (chi2 lower by > 25), 0: point source",
         'd'},
        {"frac_dev", "", "de Vaucouleurs fraction of the composite model", 'd'},
        {"model_chi2_dof", "", "chi2/dof of the composite model", 'd'},
        {"psf_chi2_dof", "", "chi2/dof of the point-source model", 'd'},
        {"n_epochs", "", "epochs with unmasked pixels in the fit (all bands)", 'i'},
        {"group_size", "", "objects measured together (deblended siblings)", 'i'},
        {"multifit_flags", "",
         "bit 0 no epochs, 1 point fit failed, 2 exp failed, 3 dev failed, 4 fit error, "
         "5 a sibling's model could not be subtracted",
         'l'}};
    c.insert(c.end(), tail.begin(), tail.end());
    for (const auto& b : bands) {
        c.push_back(
            {b + "_coadd_psf_flux", "nJy", "PSF flux fitted on the coadd (coadd PSF)", 'd'});
        c.push_back({b + "_coadd_psf_flux_err", "nJy", "1-sigma error", 'd'});
        c.push_back(
            {b + "_coadd_model_flux", "nJy", "composite model flux fitted on the coadd", 'd'});
        c.push_back({b + "_coadd_model_flux_err", "nJy", "1-sigma error", 'd'});
    }
    c.push_back({"coadd_shape_r", "arcsec", "half-light radius of the coadd fit", 'd'});
    c.push_back({"coadd_model_type", "", "model chosen on the coadd (as model_type)", 'i'});
    c.push_back({"coadd_flags", "", "multifit_flags of the coadd fit", 'l'});
    return c;
}

/// The coadd fit's values (the columns after multifit_flags).
void appendCoaddValues(std::vector<double>& r, const multifit::ObjectFit& f, int nb) {
    for (int b = 0; b < nb; ++b) {
        r.push_back(f.psfFlux(b));
        r.push_back(f.psfFluxErr(b));
        r.push_back(f.modelFlux(b));
        r.push_back(f.modelFluxErr(b));
    }
    const bool measured = !(f.flags & (multifit::kFlagNoEpochs | multifit::kFlagFitError));
    const multifit::FitResult& g = f.exp.chi2 <= f.dev.chi2 ? f.exp : f.dev;
    r.push_back(measured ? g.rEff : std::numeric_limits<double>::quiet_NaN());
    r.push_back(static_cast<double>(static_cast<std::int32_t>(f.model)));
    r.push_back(static_cast<double>(f.flags));
}

/// One catalog row from an object's measurement at `pos` (the group's reference position).
std::vector<double> multifitRow(const multifit::ObjectFit& f, const SpherePoint& ref,
                                const SpherePoint& fallback, int nb, int groupSize) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    std::vector<double> r;
    const bool measured = !(f.flags & (multifit::kFlagNoEpochs | multifit::kFlagFitError));
    const multifit::FitResult& c = f.chosen();
    SpherePoint p = fallback;
    if (measured && std::isfinite(c.u) && std::isfinite(c.v))
        // (u, v) are east/north offsets in arcsec from the reference position.
        p = ref.offset(radians(std::atan2(c.u, c.v)), arcseconds(std::hypot(c.u, c.v)));
    const bool posFit = measured && (f.extended || f.point.failure.empty());
    r.push_back(p.ra().asDegrees());
    r.push_back(p.dec().asDegrees());
    r.push_back(posFit ? c.uErr : nan);
    r.push_back(posFit ? c.vErr : nan);
    for (int b = 0; b < nb; ++b) {
        r.push_back(f.psfFlux(b));
        r.push_back(f.psfFluxErr(b));
        r.push_back(f.modelFlux(b));
        r.push_back(f.modelFluxErr(b));
        r.push_back(f.nEpochs(b));
    }
    for (int i = 0; i < nb; ++i)
        for (int j = i + 1; j < nb; ++j) {
            r.push_back(f.psfFluxCov(i, j));
            r.push_back(f.modelFluxCov(i, j));
        }
    const multifit::FitResult& g = f.exp.chi2 <= f.dev.chi2 ? f.exp : f.dev;
    r.push_back(measured ? g.e1 : nan);
    r.push_back(measured ? g.e2 : nan);
    r.push_back(measured ? g.rEff : nan);
    r.push_back(measured ? g.rEffErr : nan);
    r.push_back(static_cast<double>(static_cast<std::int32_t>(f.model)));
    r.push_back(measured ? (f.extended ? 1.0 : 0.0) : nan);
    r.push_back(measured ? f.composite.fracDev : nan);
    r.push_back(f.chi2Dof);
    r.push_back(measured && f.point.dof > 0 ? f.point.chi2 / f.point.dof : nan);
    r.push_back(f.nEpochs.sum());
    r.push_back(groupSize);
    r.push_back(static_cast<double>(f.flags));
    return r;
}

/// One epoch's data for multifit: the calibrated exposure and a cache of PSF mixtures.
struct EpochSource {
    const InputExposure* in = nullptr;
    int band = 0;
    Exposure exposure;
    double countsPerNJy = 1;
    std::map<std::pair<int, int>, multifit::GaussianMixture> psfCache;  // per 128-px cell
    // EM start for the cells: the mixture at the exposure's centre (fitted from scratch once).
    // Deterministic whatever order the cells are requested in (checkpointed resumes must
    // reproduce an uninterrupted run bit for bit).
    std::optional<multifit::GaussianMixture> psfReference;

    const multifit::GaussianMixture& psfMixture(Point2D p) {
        std::pair<int, int> cell{static_cast<int>(std::floor(p.x / 128)),
                                 static_cast<int>(std::floor(p.y / 128))};
        auto it = psfCache.find(cell);
        if (it == psfCache.end()) {
            Point2D c((cell.first + 0.5) * 128, (cell.second + 0.5) * 128);
            if (!psfReference)
                psfReference =
                    multifit::fitPsfMixture(
                        exposure.psf()->computeKernelImage(Box2D(exposure.bbox()).center()), 3)
                        .mixture;
            it = psfCache
                     .emplace(cell, multifit::fitPsfMixture(exposure.psf()->computeKernelImage(c),
                                                            3, &*psfReference)
                                        .mixture)
                     .first;
        }
        return it->second;
    }
};

}  // namespace

void markTractRuns(Mask& mask, MaskPixel bits, const Wcs& epochWcs, const Wcs& tractWcs,
                   const std::vector<Span>& runs) {
    const Box2I box = mask.bbox();
    for (const Span& s : runs)
        for (int x = s.x0; x <= s.x1; ++x) {
            const Point2I c =
                epochWcs.skyToPixel(tractWcs.pixelToSky(Point2D(x, s.y))).nearestPixel();
            for (int dy = -1; dy <= 1; ++dy)
                for (int dx = -1; dx <= 1; ++dx) {
                    const Point2I q{c.x + dx, c.y + dy};
                    if (box.contains(q)) mask.image().at(q) |= bits;
                }
        }
}

namespace {

/// Compare-warp's clipped pixels per input, (visit, detector) -> runs of tract pixels.
using ClippedRuns = std::map<std::pair<std::int64_t, int>, std::vector<Span>>;

/// Adds the "clipped" table of a coadd-BAND-psf.h5 (written by runCoadd) to `runs`. A coadd
/// written before this table existed clips nothing here.
void addClippedRuns(const h5::File& coaddPsf, ClippedRuns& runs) {
    if (!coaddPsf.exists("clipped")) return;
    Table t = h5::readTable(coaddPsf, "clipped");
    const auto& v = t.column<std::int64_t>("visit");
    const auto& d = t.column<std::int32_t>("detector");
    const auto& y = t.column<std::int32_t>("y");
    const auto& x0 = t.column<std::int32_t>("x0");
    const auto& x1 = t.column<std::int32_t>("x1");
    for (std::size_t i = 0; i < t.numRows(); ++i)
        runs[{v[i], d[i]}].push_back(Span{y[i], x0[i], x1[i]});
}

/// Marks CLIPPED, in each epoch's calexp mask, the pixels its band's coadd clipped from it
/// (markTractRuns).
void maskClippedPixels(const ClippedRuns& runs, const TractInfo& tract,
                       std::vector<EpochSource>& epochs) {
    for (auto& e : epochs) {
        auto it = runs.find({e.in->visit, e.in->detector});
        if (it == runs.end()) continue;
        Mask& mask = e.exposure.mask();
        markTractRuns(mask, mask.planes().bit("CLIPPED"), *e.exposure.wcs(), *tract.wcs(),
                      it->second);
    }
}

}  // namespace

jobs::TaskResult runMultifit(const Repository& repo, const PipelineConfig& config,
                             const SkyMap& skymap, const Registry& registry, TractPatchId tp) {
    const std::string id = patchId(tp.tract, tp.patch);
    const std::string deblendPath = repo.abs(Repository::deblendFile(tp.tract, tp.patch));
    Table objs = h5::readTable(deblendPath, "children");
    const std::size_t n = objs.numRows();
    const int nb = static_cast<int>(registry.bands.size());
    auto zps = readZeroPoints(repo);
    std::vector<EpochSource> epochs;
    std::ostringstream inputs;  // what the rows depend on, for the checkpoint key
    inputs.precision(17);
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
            inputs << in.visit << "/" << in.detector << ":" << zp->second << ";";
            epochs.push_back(std::move(e));
        }
    const MaskPixel badBits =
        epochs.empty() ? 0
                       : epochs.front().exposure.mask().planes().bits(
                             {"BAD", "SAT", "CR", "NO_DATA", "SUSPECT", "INTRP", "CLIPPED"});
    // The same measurement on the coadds (one "epoch" per band, tract frame, nJy), with the
    // coadd PSF at the patch centre, for the multi-epoch vs coadd comparison.
    struct CoaddSource {
        int band = 0;
        Exposure exposure;
        multifit::GaussianMixture psf;
        MaskPixel badBits = 0;
    };
    std::vector<CoaddSource> coadds;
    ClippedRuns clipped;  // read from the coadd PSF files opened here; marked below
    for (int b = 0; b < nb; ++b) {
        const std::string band = registry.bands[b];
        const std::string path = repo.abs(Repository::coadd(tp.tract, tp.patch, band));
        if (!std::filesystem::exists(path)) continue;
        CoaddSource cs;
        cs.band = b;
        cs.exposure = fits::readExposure(path);
        h5::File pf = h5::File::open(repo.abs(Repository::coaddPsf(tp.tract, tp.patch, band)));
        addClippedRuns(pf, clipped);
        Image<double> kernel = h5::readImage<double>(pf, "psf_kernel");
        kernel.setXY0({-(kernel.width() / 2), -(kernel.height() / 2)});  // centred stamp
        cs.psf = multifit::fitPsfMixture(kernel, 3).mixture;
        for (const char* plane : {"BAD", "SAT", "NO_DATA"})
            if (cs.exposure.mask().planes().has(plane))
                cs.badBits |= cs.exposure.mask().planes().bit(plane);
        inputs << "coadd-" << band << ":" << sha256File(path) << ";";
        coadds.push_back(std::move(cs));
    }
    const auto& ra = objs.column<double>("ra");
    const auto& dec = objs.column<double>("dec");
    const auto& radius = objs.column<double>("radius");
    const auto& parent = objs.column<std::int64_t>("parent_index");
    std::vector<SpherePoint> pos(n);
    for (std::size_t k = 0; k < n; ++k) pos[k] = SpherePoint::fromDegrees(ra[k], dec[k]);
    // Blend groups: the deblender's children of one parent, in catalog order (children of a
    // parent are contiguous).
    std::vector<std::vector<std::size_t>> groups;
    for (std::size_t k = 0; k < n; ++k) {
        if (groups.empty() || parent[groups.back().front()] != parent[k]) groups.emplace_back();
        groups.back().push_back(k);
    }
    TractInfo tract = skymap.tract(tp.tract);
    maskClippedPixels(clipped, tract, epochs);
    const double tractScale = tract.wcs()->pixelScale(Box2D(tract.bbox()).center()).asArcseconds();
    multifit::ObjectFitConfig fitConfig;
    fitConfig.fit = config.multifit;

    // Measures one group; returns its rows (one per member, catalog order).
    auto fitOneGroup = [&](std::size_t g) {
        const std::vector<std::size_t>& members = groups[g];
        const SpherePoint& ref = pos[members.front()];
        std::vector<multifit::ObjectInit> inits;
        for (std::size_t k : members) {
            multifit::ObjectInit in;
            double d = ref.separation(pos[k]).asArcseconds();
            double b = ref.bearingTo(pos[k]).asRadians();
            in.u = d * std::sin(b);
            in.v = d * std::cos(b);
            in.rEff = std::max(0.2, 0.5 * radius[k] * tractScale);
            in.halfSize = std::clamp(2.5 * radius[k] * tractScale + 4 * tractScale,
                                     config.multifitMinHalfSize * tractScale,
                                     config.multifitMaxHalfSize * tractScale);
            inits.push_back(in);
        }
        // One epoch's group cutout (the union of the members' boxes inside the exposure), or
        // nothing when no member falls on it.
        auto cutout = [&](const Exposure& ex, MaskPixel bad, int band, const std::string& eid,
                          const auto& psfAt, std::shared_ptr<const Psf> psfModel,
                          double countsPerNJy, std::vector<multifit::Epoch>& into) {
            const Wcs& wcs = *ex.wcs();
            const double scale = wcs.pixelScale(wcs.skyToPixel(ref)).asArcseconds();
            int x0 = INT_MAX, y0 = INT_MAX, x1 = INT_MIN, y1 = INT_MIN;
            std::vector<Point2D> memberPix;
            bool anyInside = false;
            for (std::size_t m = 0; m < members.size(); ++m) {
                Point2D p = wcs.skyToPixel(pos[members[m]]);
                memberPix.push_back(p);
                anyInside |= ex.bbox().contains(p.nearestPixel());
                int h = static_cast<int>(std::ceil(inits[m].halfSize / scale));
                Point2I c = p.nearestPixel();
                x0 = std::min(x0, c.x - h);
                y0 = std::min(y0, c.y - h);
                x1 = std::max(x1, c.x + h);
                y1 = std::max(y1, c.y + h);
            }
            if (!anyInside) return;
            Box2I cut = Box2I({x0, y0}, {x1 - x0 + 1, y1 - y0 + 1}).clippedTo(ex.bbox());
            if (cut.empty()) return;
            multifit::Epoch e;
            e.band = band;
            e.id = eid;
            e.image = ImageD(cut, 0.0);
            e.inverseVariance = ImageD(cut, 0.0);
            // Objects of other groups within reach: pixels nearer to one of them than to every
            // member are masked (the deblender's Voronoi partition on the sky); members are
            // handled by fitGroup (their models subtracted).
            std::vector<Point2D> others;
            const double reach = 0.5 * std::hypot(x1 - x0, y1 - y0) * scale + 5.0;
            for (std::size_t j = 0; j < n; ++j) {
                if (parent[j] == parent[members.front()]) continue;
                if (pos[j].separation(ref).asArcseconds() > reach) continue;
                others.push_back(wcs.skyToPixel(pos[j]));
            }
            for (int y = cut.minY(); y <= cut.maxY(); ++y)
                for (int x = cut.minX(); x <= cut.maxX(); ++x) {
                    float v = ex.variance().at({x, y});
                    if ((ex.mask().image().at({x, y}) & bad) || !(v > 0)) continue;
                    double dself = 1e300;
                    for (const auto& q : memberPix)
                        dself = std::min(dself, std::hypot(x - q.x, y - q.y));
                    bool nearer = false;
                    for (const auto& q : others)
                        if (std::hypot(x - q.x, y - q.y) < dself) {
                            nearer = true;
                            break;
                        }
                    if (nearer) continue;
                    e.image.at({x, y}) = ex.image().at({x, y});
                    e.inverseVariance.at({x, y}) = 1.0 / v;
                }
            Point2D pr = wcs.skyToPixel(ref);
            LocalAffine la = wcs.linearize(pr);
            e.uvToPixel = (la.jacobian * 3600.0).inverse();  // pixels per arcsec
            e.refPixel = Eigen::Vector2d(pr.x, pr.y);
            e.psf = psfAt(pr);
            e.psfModel = std::move(psfModel);
            e.countsPerNJy = countsPerNJy;
            into.push_back(std::move(e));
        };
        std::vector<multifit::Epoch> eps, coEps;
        for (auto& es : epochs)
            cutout(
                es.exposure, badBits, es.band, visitDetectorId(es.in->visit, es.in->detector),
                [&](Point2D p) { return es.psfMixture(p); }, es.exposure.psf(), es.countsPerNJy,
                eps);
        for (const auto& cs : coadds)
            cutout(
                cs.exposure, cs.badBits, cs.band, "coadd-" + registry.bands[cs.band],
                [&](Point2D) { return cs.psf; }, nullptr, 1.0, coEps);
        auto measure = [&](const std::vector<multifit::Epoch>& in) {
            std::vector<multifit::ObjectFit> out;
            if (in.empty()) {
                out.assign(members.size(), multifit::fitObject({}, nb, {}, fitConfig));
                for (auto& f : out) f.flags = multifit::kFlagNoEpochs;
                return out;
            }
            return multifit::fitGroup(in, nb, inits, fitConfig);
        };
        std::vector<multifit::ObjectFit> fits = measure(eps), coFits = measure(coEps);
        CheckpointRows rows;
        for (std::size_t m = 0; m < members.size(); ++m) {
            rows.push_back(
                multifitRow(fits[m], ref, pos[members[m]], nb, static_cast<int>(members.size())));
            appendCoaddValues(rows.back(), coFits[m], nb);
        }
        return rows;
    };

    const std::vector<MultifitColumn> columns = multifitColumns(registry.bands);
    std::string layout;
    for (const auto& c : columns) layout += c.name + ",";
    const std::string key = sha256Hex(config.hash() + "|" + sha256File(deblendPath) + "|" +
                                      inputs.str() + "|" + layout);
    MultifitCheckpoint checkpoint(
        repo.abs(Repository::patchDir(tp.tract, tp.patch) + "/multifit.ckpt"), key, columns.size());
    // Test hook standing in for a kill part-way through a patch (docs/multifit.md).
    const char* stopEnv = std::getenv("DRP_MULTIFIT_STOP_AFTER_GROUPS");
    const long stopAfter = stopEnv ? std::atol(stopEnv) : -1;
    std::vector<CheckpointRows> results =
        runGroupsCheckpointed(checkpoint, groups.size(), fitOneGroup, stopAfter);

    Table out;
    std::vector<std::vector<double>*> dcol(columns.size(), nullptr);
    std::vector<std::vector<std::int32_t>*> icol(columns.size(), nullptr);
    std::vector<std::vector<std::int64_t>*> lcol(columns.size(), nullptr);
    for (std::size_t c = 0; c < columns.size(); ++c) {
        const auto& col = columns[c];
        if (col.type == 'd') dcol[c] = &out.addColumn<double>(col.name, col.unit, col.doc);
        if (col.type == 'i') icol[c] = &out.addColumn<std::int32_t>(col.name, col.unit, col.doc);
        if (col.type == 'l') lcol[c] = &out.addColumn<std::int64_t>(col.name, col.unit, col.doc);
    }
    int nFailed = 0, nErrors = 0;
    const std::size_t flagColumn = static_cast<std::size_t>(
        std::find_if(columns.begin(), columns.end(),
                     [](const MultifitColumn& c) { return c.name == "multifit_flags"; }) -
        columns.begin());
    for (const auto& rows : results)
        for (const auto& r : rows) {
            for (std::size_t c = 0; c < columns.size(); ++c) {
                if (dcol[c]) dcol[c]->push_back(r[c]);
                if (icol[c]) icol[c]->push_back(static_cast<std::int32_t>(r[c]));
                if (lcol[c]) lcol[c]->push_back(static_cast<std::int64_t>(r[c]));
            }
            const auto flags = static_cast<std::int64_t>(r[flagColumn]);
            if (flags & multifit::kFlagFitError) ++nErrors;
            // Failed: the point fit, or both galaxy fits (one galaxy profile failing on an
            // object the other fits, e.g. a de Vaucouleurs needle on a small disk, leaves a
            // model flux and is in the flags, not a reason to look at the patch).
            const auto galaxy = multifit::kFlagExpFailed | multifit::kFlagDevFailed;
            if ((flags & multifit::kFlagPointFailed) || (flags & galaxy) == galaxy) ++nFailed;
        }
    // Keep the deblender's identity columns next to the fits.
    for (const char* col : {"parent_index", "n_siblings", "x", "y"})
        out.addColumn(objs.columnInfo(col));
    // and its blendedness (deblend files written before session 11 have none)
    if (objs.has("blendedness")) out.addColumn(objs.columnInfo("blendedness"));
    h5::AtomicFile f(repo.abs(Repository::multifitFile(tp.tract, tp.patch)));
    h5::writeTable(f.file(), "objects", out);
    f.file().setAttributes("/", provenance(config, id));
    f.commit();
    checkpoint.remove();
    // Degraded means the patch needs a look: an exception inside some object's fit (bad input
    // or a defect), or more than 5% of the objects without a usable fit (point fit failed, or
    // both galaxy fits): a systematic problem (PSF, WCS, background). A few faint objects whose
    // fits do not converge are ordinary; their flags are in the catalog. (Counting any failed
    // profile made 25 of the demo's 25 patches degraded, which told a release manager nothing.)
    const std::string counts = std::to_string(nErrors) + " objects with fit errors, " +
                               std::to_string(nFailed) + " of " + std::to_string(n) +
                               " whose point fit or both galaxy fits failed";
    if (nErrors > 0 || nFailed > 0.05 * static_cast<double>(n))
        return jobs::TaskResult::degraded({"fit_failures"}, counts);
    return {};
}

}  // namespace drp::pipeline
