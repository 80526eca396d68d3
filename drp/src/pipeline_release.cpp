// The release stage: per-patch multifit catalogs + deblender parents -> release/object.h5
// (the Object table; see drp/release.h for ids, primary flags and row order).
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>

#include "drp/drp/pipeline.h"
#include "drp/drp/release.h"
#include "drp/drp/version.h"
#include "drp/io/hdf5.h"
#include "drp/io/hdf5_table.h"
#include "drp/validate/metrics.h"

namespace drp::pipeline {

const std::vector<FlagInfo>& objectFlagInfo() {
    static const std::vector<FlagInfo> info = {
        {0, "no_epochs", "no epoch had unmasked pixels at the position: nothing was fitted"},
        {1, "point_fit_failed",
         "point-source fit failed; PSF flux measured at the deblender centroid"},
        {2, "exp_fit_failed", "exponential galaxy fit failed"},
        {3, "dev_fit_failed", "de Vaucouleurs galaxy fit failed"},
        {4, "blended", "child of a deblended parent (fluxes are deblended)"},
        {5, "deblend_skipped", "footprint with several peaks that was not deblended"},
        {6, "deblended_parent", "row is a deblended parent (sum of its children), never primary"},
        {7, "outside_patch_inner", "position outside the inner region of its patch"},
        {8, "outside_tract_inner", "position outside the inner region of its tract"},
        {9, "bad_position", "ra or dec is not finite"},
        {10, "fit_error", "an exception inside the object's fit (bits 1-3 are set too)"},
        {11, "neighbour_not_subtracted",
         "a deblended sibling's model could not be subtracted (its pixels were masked instead)"},
        {12, "merged_duplicate",
         "a deblended child whose fitted centre is within 0.4\" of a brighter sibling's: the "
         "same object (its fluxes are added to that sibling's), never primary"},
        {13, "centre_shift",
         "a multifit centre ended more than 2\" from the deblender's position: that fit is "
         "flagged failed; when it is the point fit, position and PSF flux are the deblender's"},
        {14, "seam_rescued",
         "primary although measured outside its patch's inner region: the patch that owns the "
         "position has no object within 1.5\" of it (its deblender missed it, its fit moved it "
         "across the seam, or the patch failed), so this copy from the overlap stands in"},
        {15, "centre_fixed",
         "a faint deblended child whose free centre walked onto a brighter sibling, kept as a "
         "source of its own because it is significant in all epochs' pixels: measured with its "
         "centre fixed at the deblender's position (multifit bit 8, docs/multifit.md)"},
    };
    return info;
}

std::int64_t packObjectId(int tract, int patch, std::int64_t counter) {
    if (tract < 0 || tract >= (1 << kObjectIdTractBits) || patch < 0 ||
        patch >= (1 << kObjectIdPatchBits) || counter < 0 ||
        counter >= (std::int64_t(1) << kObjectIdCounterBits))
        throw badInput("object id out of range: tract " + std::to_string(tract) + ", patch " +
                       std::to_string(patch) + ", counter " + std::to_string(counter) +
                       " (limits 2^24, 2^16, 2^23)");
    return (std::int64_t(tract) << (kObjectIdPatchBits + kObjectIdCounterBits)) |
           (std::int64_t(patch) << kObjectIdCounterBits) | counter;
}

ObjectIdParts unpackObjectId(std::int64_t id) {
    ObjectIdParts p;
    p.counter = id & ((std::int64_t(1) << kObjectIdCounterBits) - 1);
    p.patch = static_cast<int>((id >> kObjectIdCounterBits) & ((1 << kObjectIdPatchBits) - 1));
    p.tract = static_cast<int>(id >> (kObjectIdPatchBits + kObjectIdCounterBits));
    return p;
}

namespace {

template <typename T>
const std::vector<T>& need(const Table& t, const std::string& name, const char* what) {
    if (!t.has(name)) throw badInput(std::string(what) + " has no column '" + name + "'");
    return t.column<T>(name);
}

}  // namespace

Table makePatchObjects(const SkyMap& skymap, TractPatchId tp, const std::vector<std::string>& bands,
                       const Table& mf, const Table& parents) {
    const char* what = "multifit catalog";
    const std::size_t n = mf.numRows();
    const auto& ra = need<double>(mf, "ra", what);
    const auto& dec = need<double>(mf, "dec", what);
    const auto& raErr = need<double>(mf, "ra_err", what);
    const auto& decErr = need<double>(mf, "dec_err", what);
    const auto& e1 = need<double>(mf, "shape_e1", what);
    const auto& e2 = need<double>(mf, "shape_e2", what);
    const auto& r = need<double>(mf, "shape_r", what);
    const auto& ext = need<double>(mf, "extendedness", what);
    const auto& fdev = need<double>(mf, "frac_dev", what);
    const auto& chi = need<double>(mf, "model_chi2_dof", what);
    const auto& nep = need<std::int32_t>(mf, "n_epochs", what);
    const auto& mflags = need<std::int64_t>(mf, "multifit_flags", what);
    const auto& par = need<std::int64_t>(mf, "parent_index", what);
    const auto& nsib = need<std::int32_t>(mf, "n_siblings", what);
    const auto& x = need<double>(mf, "x", what);
    const auto& y = need<double>(mf, "y", what);
    // The deblender's blendedness (absent from catalogs written before it existed: NaN).
    const std::vector<double>* blend =
        mf.has("blendedness") ? &mf.column<double>("blendedness") : nullptr;
    struct BandCols {
        const std::vector<double>*psf, *psfErr, *model, *modelErr;
    };
    std::vector<BandCols> bc;
    for (const auto& b : bands)
        bc.push_back({&need<double>(mf, b + "_psf_flux", what),
                      &need<double>(mf, b + "_psf_flux_err", what),
                      &need<double>(mf, b + "_model_flux", what),
                      &need<double>(mf, b + "_model_flux_err", what)});
    // Footprints that had several peaks but were not deblended (refused blends).
    std::map<std::int64_t, bool> skipped;
    if (parents.numRows() > 0) {
        const auto& pi = need<std::int64_t>(parents, "parent_index", "deblend parents");
        const auto& pk = need<std::int32_t>(parents, "n_peaks", "deblend parents");
        const auto& db = need<Bool>(parents, "deblended", "deblend parents");
        for (std::size_t k = 0; k < pi.size(); ++k) skipped[pi[k]] = pk[k] > 1 && !db[k];
    }
    // Children of each deblended parent (n_siblings > 1), in multifit order.
    std::map<std::int64_t, std::vector<std::size_t>> family;
    for (std::size_t i = 0; i < n; ++i)
        if (nsib[i] > 1) family[par[i]].push_back(i);

    // Siblings that are one object. The deblender sometimes puts a spurious peak on the wing of
    // a bright star (its shape residuals pass the shoulder-peak test); multifit, fitting all
    // siblings at once, then moves that child onto the star: both centres within a fraction of
    // a pixel, sharing the star's light. Two children whose fitted centres are closer than
    // kDuplicateRadiusArcsec (2 px at 0.2"/px, about half the survey's seeing FWHM: no image can
    // resolve them) are one object: the fainter (by total model flux) is flagged
    // merged_duplicate and is never primary, and its fluxes are added to the brighter's, whose
    // light the joint fit had split between the two (the sum is the well-measured quantity).
    constexpr double kDuplicateRadiusArcsec = 0.4;
    std::vector<std::ptrdiff_t> mergedInto(n, -1);
    // Brightness-weighted offsets of the duplicates merged into each object, from its own centre
    // (< 0.4": no wrap-around at ra = 0/360) and their total weight.
    std::vector<double> offRa(n, 0.0), offDec(n, 0.0), offWeight(n, 0.0);
    std::vector<std::vector<double>> psfAdd(bc.size(), std::vector<double>(n, 0.0)),
        psfVarAdd = psfAdd, modelAdd = psfAdd, modelVarAdd = psfAdd;
    auto brightness = [&](std::size_t i) {
        double s = 0;
        for (const auto& c : bc)
            if ((*c.model)[i] > 0) s += (*c.model)[i];
        return s;
    };
    for (const auto& [parent, kids] : family) {
        std::vector<std::size_t> order = kids;
        std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
            return brightness(a) > brightness(b);
        });
        std::vector<std::size_t> kept;
        for (std::size_t i : order) {
            const bool placed = std::isfinite(ra[i]) && std::isfinite(dec[i]);
            std::ptrdiff_t into = -1;
            for (std::size_t j : kept) {
                if (!placed || !std::isfinite(ra[j]) || !std::isfinite(dec[j])) continue;
                const double sep = SpherePoint::fromDegrees(ra[i], dec[i])
                                       .separation(SpherePoint::fromDegrees(ra[j], dec[j]))
                                       .asArcseconds();
                if (sep < kDuplicateRadiusArcsec) {
                    into = std::ptrdiff_t(j);
                    break;
                }
            }
            if (into < 0) {
                kept.push_back(i);
                continue;
            }
            mergedInto[i] = into;
            const std::size_t j = std::size_t(into);
            if (const double wi = brightness(i); wi > 0) {
                offRa[j] += wi * std::remainder(ra[i] - ra[j], 360.0);
                offDec[j] += wi * (dec[i] - dec[j]);
                offWeight[j] += wi;
            }
            for (std::size_t b = 0; b < bc.size(); ++b) {
                auto add = [&](std::vector<std::vector<double>>& to, double v) {
                    if (std::isfinite(v)) to[b][std::size_t(into)] += v;
                };
                add(psfAdd, (*bc[b].psf)[i]);
                add(psfVarAdd, std::pow((*bc[b].psfErr)[i], 2));
                add(modelAdd, (*bc[b].model)[i]);
                add(modelVarAdd, std::pow((*bc[b].modelErr)[i], 2));
            }
        }
    }
    // Position of an object with merged duplicates: the brightness-weighted mean of the centres
    // (the joint fit may have split the light about the true centre).
    std::vector<double> mergedRa(ra), mergedDec(dec);
    for (std::size_t j = 0; j < n; ++j) {
        if (offWeight[j] == 0) continue;
        const double w = brightness(j) + offWeight[j];
        mergedRa[j] = std::remainder(ra[j] + offRa[j] / w, 360.0);
        if (mergedRa[j] < 0) mergedRa[j] += 360;
        mergedDec[j] = dec[j] + offDec[j] / w;
    }

    const double nan = std::numeric_limits<double>::quiet_NaN();
    Table out;
    auto& oId = out.addColumn<std::int64_t>(
        "object_id", "", "unique object id: tract << 39 | patch << 23 | per-patch counter");
    auto& oPar =
        out.addColumn<std::int64_t>("parent_id", "", "object_id of the deblended parent (0: none)");
    auto& oTract = out.addColumn<std::int32_t>("tract", "", "tract id");
    auto& oPatch = out.addColumn<std::int32_t>("patch", "", "sequential patch index y * nx + x");
    auto& oRa = out.addColumn<double>("ra", "deg", "ICRS right ascension");
    auto& oDec = out.addColumn<double>("dec", "deg", "ICRS declination");
    auto& oRaErr = out.addColumn<double>("ra_err", "arcsec", "1-sigma error of ra * cos(dec)");
    auto& oDecErr = out.addColumn<double>("dec_err", "arcsec", "1-sigma error of dec");
    auto& oPrim = out.addColumn<Bool>(
        "is_primary", "", "inner patch, inner tract, not a deblended parent: unique on the sky");
    auto& oNch = out.addColumn<std::int32_t>("n_children", "",
                                             "deblended children of this object (0: none)");
    std::vector<std::vector<double>*> fP, fPE, fM, fME;
    for (const auto& b : bands) {
        fP.push_back(
            &out.addColumn<double>(b + "_psf_flux", "nJy", "multi-epoch PSF flux in band " + b));
        fPE.push_back(&out.addColumn<double>(b + "_psf_flux_err", "nJy", "1-sigma error"));
        fM.push_back(&out.addColumn<double>(
            b + "_model_flux", "nJy", "multi-epoch composite (exp + dev) model flux in band " + b));
        fME.push_back(&out.addColumn<double>(b + "_model_flux_err", "nJy", "1-sigma error"));
    }
    auto& oE1 =
        out.addColumn<double>("shape_e1", "", "ellipticity e1 (distortion), best galaxy model");
    auto& oE2 =
        out.addColumn<double>("shape_e2", "", "ellipticity e2 (distortion), best galaxy model");
    auto& oR =
        out.addColumn<double>("shape_r", "arcsec", "half-light radius sqrt(ab), best galaxy model");
    auto& oExt = out.addColumn<double>(
        "extendedness", "", "1: galaxy model preferred (delta chi2 > 25), 0: point source");
    auto& oChi = out.addColumn<double>("model_chi2_dof", "", "chi2/dof of the composite model");
    auto& oFlags = out.addColumn<std::int64_t>("flags", "", "bit flags (docs/data_products.md)");
    auto& oFdev =
        out.addColumn<double>("frac_dev", "", "de Vaucouleurs fraction of the composite model");
    auto& oNep =
        out.addColumn<std::int32_t>("n_epochs", "", "epochs with unmasked pixels in the fit");
    auto& oX = out.addColumn<double>("x", "pixel", "centroid in the tract pixel frame (0-based)");
    auto& oY = out.addColumn<double>("y", "pixel", "centroid in the tract pixel frame (0-based)");
    auto& oBlend = out.addColumn<double>(
        "blendedness", "",
        "deblender's 1 - <T,T>/<T,model>: 0 isolated, ->1 buried in a neighbour; NaN parents");

    const TractGeometry& tg = skymap.tractGeometry(tp.tract);
    // Flags and primary status from the position.
    auto placeFlags = [&](double raDeg, double decDeg, bool& primary) -> std::int64_t {
        primary = false;
        if (!std::isfinite(raDeg) || !std::isfinite(decDeg))
            return kFlagBadPosition | kFlagOutsidePatchInner | kFlagOutsideTractInner;
        const SpherePoint p = SpherePoint::fromDegrees(raDeg, decDeg);
        std::int64_t f = 0;
        auto owner = skymap.findTractPatch(p);
        if (!owner || owner->tract != tp.tract) f |= kFlagOutsideTractInner;
        if (skymap.findPatchInTract(tp.tract, p).patchSequential != tp.patch)
            f |= kFlagOutsidePatchInner;
        primary = f == 0;
        return f;
    };
    auto emitParent = [&](std::int64_t parentIndex, const std::vector<std::size_t>& kids) {
        // Position: flux-weighted centroid of the children (total model flux over bands; plain
        // mean if no child has positive flux), projected with the tract's TAN plane.
        double sw = 0, sx = 0, sy = 0, mx = 0, my = 0;
        std::int32_t maxEpochs = 0;
        for (std::size_t i : kids) {
            double w = 0;
            for (const auto& c : bc)
                if ((*c.model)[i] > 0) w += (*c.model)[i];
            sw += w, sx += w * x[i], sy += w * y[i], mx += x[i], my += y[i];
            maxEpochs = std::max(maxEpochs, nep[i]);
        }
        const double cx = sw > 0 ? sx / sw : mx / double(kids.size());
        const double cy = sw > 0 ? sy / sw : my / double(kids.size());
        const SpherePoint c = tg.plane.toSky({cx, cy});
        bool primary = false;
        std::int64_t f = placeFlags(c.ra().asDegrees(), c.dec().asDegrees(), primary);
        oId.push_back(packObjectId(tp.tract, tp.patch, kParentCounterBit | parentIndex));
        oPar.push_back(0);
        oTract.push_back(tp.tract);
        oPatch.push_back(tp.patch);
        oRa.push_back(c.ra().asDegrees());
        oDec.push_back(c.dec().asDegrees());
        oRaErr.push_back(nan);
        oDecErr.push_back(nan);
        oPrim.push_back(false);
        oNch.push_back(static_cast<std::int32_t>(kids.size()));
        for (std::size_t b = 0; b < bc.size(); ++b) {
            // A blend has no PSF flux; its model flux is the sum of its children's.
            double s = 0, v = 0;
            for (std::size_t i : kids)
                s += (*bc[b].model)[i], v += std::pow((*bc[b].modelErr)[i], 2);
            fP[b]->push_back(nan);
            fPE[b]->push_back(nan);
            fM[b]->push_back(s);
            fME[b]->push_back(std::sqrt(v));
        }
        oE1.push_back(nan), oE2.push_back(nan), oR.push_back(nan), oExt.push_back(nan);
        oChi.push_back(nan);
        oFlags.push_back(f | kFlagDeblendedParent);
        oFdev.push_back(nan);
        oNep.push_back(maxEpochs);
        oX.push_back(cx);
        oY.push_back(cy);
        oBlend.push_back(nan);
    };

    std::map<std::int64_t, bool> parentDone;
    for (std::size_t i = 0; i < n; ++i) {
        const bool blended = nsib[i] > 1;
        if (blended && !parentDone[par[i]]) {
            emitParent(par[i], family[par[i]]);
            parentDone[par[i]] = true;
        }
        if (std::int64_t(i) >= kParentCounterBit)
            throw badInput("patch " + std::to_string(tp.patch) + " of tract " +
                           std::to_string(tp.tract) + " has more than 2^22 objects");
        bool primary = false;
        // multifit_flags bits 0-3 keep their place; bits 4-5 move to 10-11, bit 6 to 13, bit 8
        // to 15; bit 7 (a duplicate of a sibling, which reports that sibling's position) is
        // merged_duplicate (docs/multifit.md).
        std::int64_t f = (mflags[i] & 0xF) | ((mflags[i] & 0x30) << 6) | ((mflags[i] & 0x40) << 7) |
                         ((mflags[i] & 0x100) << 7) |
                         placeFlags(mergedRa[i], mergedDec[i], primary);
        if (blended) f |= kFlagBlended;
        if (auto it = skipped.find(par[i]); it != skipped.end() && it->second)
            f |= kFlagDeblendSkipped;
        if (mergedInto[i] >= 0 || (mflags[i] & 0x80)) {
            f |= kFlagMergedDuplicate;
            primary = false;
        }
        oId.push_back(packObjectId(tp.tract, tp.patch, std::int64_t(i)));
        oPar.push_back(blended ? packObjectId(tp.tract, tp.patch, kParentCounterBit | par[i]) : 0);
        oTract.push_back(tp.tract);
        oPatch.push_back(tp.patch);
        oRa.push_back(mergedRa[i]);
        oDec.push_back(mergedDec[i]);
        oRaErr.push_back(raErr[i]);
        oDecErr.push_back(decErr[i]);
        oPrim.push_back(primary);
        oNch.push_back(0);
        for (std::size_t b = 0; b < bc.size(); ++b) {
            // psfAdd etc. are zero unless fainter duplicates were merged into this object.
            fP[b]->push_back((*bc[b].psf)[i] + psfAdd[b][i]);
            fPE[b]->push_back(std::sqrt(std::pow((*bc[b].psfErr)[i], 2) + psfVarAdd[b][i]));
            fM[b]->push_back((*bc[b].model)[i] + modelAdd[b][i]);
            fME[b]->push_back(std::sqrt(std::pow((*bc[b].modelErr)[i], 2) + modelVarAdd[b][i]));
        }
        oE1.push_back(e1[i]), oE2.push_back(e2[i]), oR.push_back(r[i]), oExt.push_back(ext[i]);
        oChi.push_back(chi[i]);
        oFlags.push_back(f);
        oFdev.push_back(fdev[i]);
        oNep.push_back(nep[i]);
        oX.push_back(x[i]);
        oY.push_back(y[i]);
        oBlend.push_back(blend ? (*blend)[i] : nan);
    }
    return out;
}

std::size_t rescueSeamOrphans(const SkyMap& skymap, Table& release, double radiusArcsec) {
    const std::size_t n = release.numRows();
    if (n == 0) return 0;
    const auto& ra = release.column<double>("ra");
    const auto& dec = release.column<double>("dec");
    const auto& x = release.column<double>("x");
    const auto& y = release.column<double>("y");
    const auto& tract = release.column<std::int32_t>("tract");
    const auto& patch = release.column<std::int32_t>("patch");
    const auto& nChildren = release.column<std::int32_t>("n_children");
    auto& primary = release.column<Bool>("is_primary");
    auto& flags = release.column<std::int64_t>("flags");
    // Only measurements that stand on their own: not a parent or a duplicate, and a point fit
    // that converged where the deblender put the object (a copy whose fits failed or ran off is
    // usually a spurious peak on a bright neighbour's wing that its owner rightly lacks).
    const std::int64_t never = kFlagDeblendedParent | kFlagMergedDuplicate | kFlagBadPosition |
                               kFlagNoEpochs | kFlagPointFitFailed | kFlagFitError |
                               kFlagCentreShift;
    std::vector<const std::vector<double>*> psf, psfErr;
    for (const auto& c : release.columns())
        if (c.name.ends_with("_psf_flux") && release.has(c.name + "_err")) {
            psf.push_back(&release.column<double>(c.name));
            psfErr.push_back(&release.column<double>(c.name + "_err"));
        }
    auto significant = [&](std::size_t i) {
        for (std::size_t b = 0; b < psf.size(); ++b)
            if ((*psf[b])[i] >= kSeamRescueMinSn * (*psfErr[b])[i]) return true;
        return false;
    };

    // Candidates: measured copies outside their own patch's inner region whose position another
    // patch owns; key = depth inside their own patch's outer box (pixels, larger first).
    struct Candidate {
        std::size_t row;
        double depth;
    };
    std::vector<Candidate> cand;
    for (std::size_t i = 0; i < n; ++i) {
        if (primary[i] || nChildren[i] > 0 || (flags[i] & never) || !std::isfinite(ra[i]) ||
            !std::isfinite(dec[i]) || !significant(i))
            continue;
        const auto own = skymap.findTractPatch(SpherePoint::fromDegrees(ra[i], dec[i]));
        if (!own || (own->tract == tract[i] && own->patchSequential == patch[i])) continue;
        const TractGeometry& tg = skymap.tractGeometry(tract[i]);
        const PatchIndex pi{patch[i] % tg.numPatches.x, patch[i] / tg.numPatches.x};
        const Box2I outer = tg.patchOuterBox(pi);
        const double depth = std::min(
            {x[i] - outer.minX(), outer.maxX() - x[i], y[i] - outer.minY(), outer.maxY() - y[i]});
        cand.push_back({i, depth});
    }
    if (cand.empty()) return 0;
    std::stable_sort(cand.begin(), cand.end(),
                     [](const Candidate& a, const Candidate& b) { return a.depth > b.depth; });

    // Primaries near the candidates (and the candidates themselves, promoted in turn).
    std::vector<double> pRa, pDec;
    for (std::size_t i = 0; i < n; ++i)
        if (primary[i]) pRa.push_back(ra[i]), pDec.push_back(dec[i]);
    const validate::SkyIndex primaries(pRa, pDec, arcseconds(radiusArcsec));
    std::vector<double> cRa, cDec;
    for (const auto& c : cand) cRa.push_back(ra[c.row]), cDec.push_back(dec[c.row]);
    const validate::SkyIndex candidates(cRa, cDec, arcseconds(radiusArcsec));
    std::vector<bool> promoted(cand.size(), false);
    std::size_t count = 0;
    for (std::size_t k = 0; k < cand.size(); ++k) {
        const std::size_t i = cand[k].row;
        if (primaries.nearest(ra[i], dec[i]) >= 0) continue;
        bool taken = false;
        for (auto j : candidates.within(ra[i], dec[i])) taken = taken || promoted[std::size_t(j)];
        if (taken) continue;
        promoted[k] = true;
        primary[i] = true;
        flags[i] |= kFlagSeamRescued;
        ++count;
    }
    return count;
}

jobs::TaskResult runRelease(const Repository& repo, const SkyMap& skymap,
                            const Registry& registry) {
    // Patches in (tract, patch) order (the registry's map order): the catalog's row order, hence
    // its bytes, do not depend on which rank wrote which patch or when.
    std::vector<TractPatchId> patches;
    for (const auto& [tp, idx] : registry.overlaps)
        if (std::filesystem::exists(repo.abs(Repository::multifitFile(tp.tract, tp.patch))))
            patches.push_back(tp);
    Table release;
    std::string configHash;
    for (TractPatchId tp : patches) {
        const std::string mfPath = repo.abs(Repository::multifitFile(tp.tract, tp.patch));
        const std::string dbPath = repo.abs(Repository::deblendFile(tp.tract, tp.patch));
        Table patchObjects;
        try {
            Table mf = h5::readTable(mfPath, "objects");
            Table parents =
                std::filesystem::exists(dbPath) ? h5::readTable(dbPath, "parents") : Table{};
            if (configHash.empty()) {
                auto attrs = h5::File::open(mfPath).attributes("/");
                configHash = attrs.get<std::string>("DRP_CONFIG_HASH", std::string());
            }
            patchObjects = makePatchObjects(skymap, tp, registry.bands, mf, parents);
        } catch (Error& e) {
            e.addContext("release: " + patchId(tp.tract, tp.patch) + " (" + mfPath + ")");
            throw;
        }
        if (release.columns().empty())
            release = std::move(patchObjects);
        else
            release.append(patchObjects);
    }
    const std::size_t rescued = rescueSeamOrphans(skymap, release);
    PropertyList prov = skymap.provenance();
    prov.set("DRP_NUM_SEAM_RESCUED", static_cast<std::int64_t>(rescued),
             "non-primary copies made primary: their owning patch had no object there");
    prov.set("DRP_VERSION", drp::versionString(), "drp software version");
    prov.set("DRP_CONFIG_HASH", configHash, "config hash of the multifit inputs");
    prov.set("DRP_DATA_ID", std::string("release"), "data id of the task that wrote this");
    prov.set("DRP_NUM_PATCHES", static_cast<std::int64_t>(patches.size()),
             "patches merged into this catalog");
    std::string bands;
    for (const auto& b : registry.bands) bands += (bands.empty() ? "" : ",") + b;
    prov.set("DRP_BANDS", bands, "bands of the per-band columns");
    release.metadata().update(prov);
    h5::AtomicFile out(repo.abs(Repository::kRelease));
    h5::writeTable(out.file(), "object", release);
    out.file().setAttributes("/", prov);
    out.commit();
    return {};
}

}  // namespace drp::pipeline
