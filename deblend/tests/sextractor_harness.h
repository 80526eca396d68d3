// Side-by-side with SExtractor's multi-threshold deblending (Bertin & Arnouts 1996; Debian
// package `source-extractor` 2.25) on the SAME simulated coadds (sim_patch.h). Shared by the
// comparison test (deblend/tests/deblend_sim.cpp) and the benchmark (bench/deblend.cpp).
//
// SExtractor settings and why:
//   DEBLEND_NTHRESH 32, DEBLEND_MINCONT 0.005, CLEAN Y (CLEAN_PARAM 1), DETECT_THRESH 1.5,
//   DETECT_MINAREA 5                          its defaults (preflist.h)
//   dual-image mode: detection on the r coadd, measurement on each of g r i
//                                             the same objects in every band, as our merged
//                                             multi-band catalogue
//   FILTER gauss_4.0_7x7.conv                 a Gaussian of FWHM 4 px ≈ the coadd PSF FWHM
//                                             (0.8″): the matched filter, as ours
//   WEIGHT_TYPE MAP_VAR with our variance planes
//                                             the same noise model for both
//   BACK_TYPE MANUAL, BACK_VALUE 0            the coadds are background-free, ours does not
//                                             subtract a background either
//   GAIN 0                                    the coadd is in nJy: no Poisson term
//   NTHREADS 1                                ours is single-threaded
// Fluxes compared: FLUX_AUTO (Kron 2.5, neighbours masked — SExtractor's total-flux estimate for
// deblended objects) and FLUX_ISO (the child's own isophotal pixels).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "drp/core/error.h"
#include "drp/io/fits.h"
#include "sim_patch.h"

namespace drp::deblend::testing {

struct SexObject {
    Point2D position;  ///< patch pixels (0-based)
    std::vector<double> fluxAuto, fluxIso;
    int flags = 0;  ///< SExtractor FLAGS
};

/// Write image_<band>.fits and var_<band>.fits of every band into `dir`.
inline void writeSexInputs(const SimPatch& patch, const std::string& dir) {
    for (std::size_t b = 0; b < patch.bands.size(); ++b) {
        const Exposure& c = patch.coadds[b];
        ImageF var(c.variance().bbox(), 0.f);
        for (std::size_t i = 0; i < var.pixels().size(); ++i) {
            float v = c.variance().data()[i];
            var.data()[i] = std::isfinite(v) && v > 0 ? v : 1e30f;  // NO_DATA: no information
        }
        auto img = fits::FitsFile::create(dir + "/image_" + patch.bands[b] + ".fits");
        img.writeImage<float>(c.image().cview());
        img.writeCards(patch.wcs->toFitsHeader());
        img.close();
        auto vf = fits::FitsFile::create(dir + "/var_" + patch.bands[b] + ".fits");
        vf.writeImage<float>(var.cview());
        vf.close();
    }
    std::ofstream(dir + "/sex.param") << "X_IMAGE\nY_IMAGE\nFLUX_AUTO\nFLUX_ISO\nFLAGS\n";
}

/// The shell command measuring band `band` with detection on band `detect` (run in `dir`).
inline std::string sexCommand(const std::string& dir, const std::string& detect,
                              const std::string& band) {
    const std::string share = "/usr/share/source-extractor/";
    std::ostringstream cmd;
    cmd << "cd '" << dir << "' && source-extractor image_" << detect << ".fits,image_" << band
        << ".fits -c " << share << "default.sex -PARAMETERS_NAME sex.param"
        << " -FILTER Y -FILTER_NAME " << share << "gauss_4.0_7x7.conv -STARNNW_NAME " << share
        << "default.nnw -CATALOG_TYPE ASCII -CATALOG_NAME cat_" << band << ".txt"
        << " -WEIGHT_TYPE MAP_VAR,MAP_VAR -WEIGHT_IMAGE var_" << detect << ".fits,var_" << band
        << ".fits -BACK_TYPE MANUAL,MANUAL -BACK_VALUE 0.0,0.0"
        << " -DETECT_THRESH 1.5 -DETECT_MINAREA 5 -DEBLEND_NTHRESH 32 -DEBLEND_MINCONT 0.005"
        << " -CLEAN Y -CLEAN_PARAM 1.0 -GAIN 0 -MAG_ZEROPOINT 31.4 -PIXEL_SCALE 0.2"
        << " -CHECKIMAGE_TYPE NONE -WRITE_XML N -VERBOSE_TYPE QUIET -NTHREADS 1 > sex_" << band
        << ".log 2>&1";
    return cmd.str();
}

/// Read the ASCII catalogues cat_<band>.txt (same detections, same order, in every band).
inline std::vector<SexObject> readSexCatalogs(const SimPatch& patch, const std::string& dir) {
    std::vector<SexObject> out;
    for (std::size_t b = 0; b < patch.bands.size(); ++b) {
        const std::string path = dir + "/cat_" + patch.bands[b] + ".txt";
        std::ifstream in(path);
        if (!in) throw Error("not_found", path + ": no SExtractor catalogue");
        std::string line;
        std::size_t k = 0;
        while (std::getline(in, line)) {
            if (line.empty() || line[0] == '#') continue;
            std::istringstream ls(line);
            double x, y, fa, fi;
            int flags;
            if (!(ls >> x >> y >> fa >> fi >> flags))
                throw badInput(path + ": unreadable line '" + line + "'");
            if (b == 0) {
                SexObject o;
                o.position = Point2D(x - 1, y - 1);  // FITS 1-based -> 0-based parent pixels
                o.flags = flags;
                out.push_back(o);
            }
            if (k >= out.size()) throw badInput(path + ": more rows than in the first band");
            out[k].fluxAuto.push_back(fa);
            out[k].fluxIso.push_back(fi);
            ++k;
        }
        if (k != out.size()) throw badInput(path + ": fewer rows than in the first band");
    }
    return out;
}

/// Child flux errors against truth on the same matched blends.
///
/// The sample ("blend members"): truth objects with coadd S/N ≥ 10 in the patch interior that
/// have a visible neighbour — another truth object with S/N ≥ 5 within `blendRadius` (15 px =
/// 3″ ≈ 3 coadd PSF FWHM, where their light overlaps) — and that BOTH catalogues detect (greedy
/// 0.5″ match, brightest first). The sample is defined by the truth, not by either program's
/// blend flags, so it is the same objects for both; per band the median of |F/F_true − 1|.
/// `isolated*` are the same statistics on truth objects without such a neighbour, for context
/// (the aperture losses of each flux estimator without any deblending).
struct BlendComparison {
    int nBlended = 0, nIsolated = 0, nPairs = 0;
    std::vector<double> ours, sexAuto, sexIso;  ///< per band, blends
    /// per band, blends: median of our 1σ errors over the true flux (the noise part of `ours`;
    /// pure noise would give a median |ΔF/F| of 0.674 times this)
    std::vector<double> oursNoise;
    /// per band, the issue's sample: blend members whose neighbours are all ≥ 1 PSF FWHM away,
    /// with a flux ratio (r, or the middle band) ≤ 10 to the nearest one
    std::vector<double> oursPairs, sexAutoPairs;
    /// per band, the issue's pairs: median signed F/F_true − 1 of ours (aperture loss shows
    /// here), median |ΔF/F| of our model fluxes, median σ/F of ours, and the medians restricted
    /// to children with S/N ≥ 10 in that band (ours, SExtractor AUTO) and their number
    std::vector<double> oursPairsSigned, oursModelPairs, oursNoisePairs, oursPairsBandSn,
        sexAutoPairsBandSn;
    std::vector<int> nPairsBandSn;
    /// the same for our template fluxes (PatchObject::templateFlux): blends, issue's pairs,
    /// signed, σ/F, colours
    std::vector<double> oursTmpl, oursTmplPairs, oursTmplPairsSigned, oursTmplNoisePairs,
        oursTmplColourPairs, oursTmplIsolated;
    /// per adjacent band pair (b, b+1), the issue's sample: median |Δ(m_b − m_b+1)| (mag) of
    /// ours and of SExtractor FLUX_AUTO (objects with positive fluxes in both bands)
    std::vector<double> oursColourPairs, sexAutoColourPairs;
    std::vector<double> oursIsolated, sexAutoIsolated, sexIsoIsolated;  ///< per band, isolated
};

inline BlendComparison compareBlendFluxes(const SimPatch& patch, const PatchDeblend& ours,
                                          const std::vector<SexObject>& sex,
                                          double matchRadius = 2.5, double blendRadius = 15.0) {
    std::vector<Point2D> tpos, opos, spos;
    std::vector<double> prio;
    for (const auto& t : patch.truth) {
        tpos.push_back(t.pixel);
        prio.push_back(t.snMax);
    }
    for (const auto& o : ours.objects) opos.push_back(o.position);
    for (const auto& s : sex) spos.push_back(s.position);
    const std::vector<int> mo = matchGreedy(tpos, prio, opos, matchRadius);
    const std::vector<int> ms = matchGreedy(tpos, prio, spos, matchRadius);
    const std::size_t nb = patch.bands.size();
    std::vector<std::vector<double>> eo(nb), ea(nb), ei(nb), io(nb), ia(nb), ii(nb), no(nb), po(nb),
        pa(nb), co(nb), ca(nb), ps(nb), pm(nb), pn(nb), pb(nb), pba(nb), te(nb), tp(nb), ts(nb),
        tn(nb), tc(nb), ti(nb);
    BlendComparison c;
    for (std::size_t t = 0; t < patch.truth.size(); ++t) {
        const TruthEntry& tr = patch.truth[t];
        if (tr.snMax < 10 || !patch.interior(tr.pixel) || mo[t] < 0 || ms[t] < 0) continue;
        const PatchObject& o = ours.objects[mo[t]];
        const SexObject& s = sex[ms[t]];
        const Neighbourhood n = neighbourhood(patch, t, mo, blendRadius);
        const bool blended = n.blended, pair = n.issuePair();
        (blended ? c.nBlended : c.nIsolated)++;
        c.nPairs += pair;
        auto colourErr = [&](const std::vector<double>& m, std::size_t b) {
            return std::abs(-2.5 * std::log10(m[b] / m[b + 1]) +
                            2.5 * std::log10(tr.flux[b] / tr.flux[b + 1]));
        };
        for (std::size_t b = 0; pair && b + 1 < nb; ++b) {
            if (o.flux[b] > 0 && o.flux[b + 1] > 0) co[b].push_back(colourErr(o.flux, b));
            if (o.templateFlux[b] > 0 && o.templateFlux[b + 1] > 0)
                tc[b].push_back(colourErr(o.templateFlux, b));
            if (s.fluxAuto[b] > 0 && s.fluxAuto[b + 1] > 0)
                ca[b].push_back(colourErr(s.fluxAuto, b));
        }
        for (std::size_t b = 0; b < nb; ++b) {
            const double f = tr.flux[b];
            if (blended) no[b].push_back(o.fluxErr[b] / f);
            if (pair) {
                po[b].push_back(std::abs(o.flux[b] / f - 1));
                pa[b].push_back(std::abs(s.fluxAuto[b] / f - 1));
                ps[b].push_back(o.flux[b] / f - 1);
                tp[b].push_back(std::abs(o.templateFlux[b] / f - 1));
                ts[b].push_back(o.templateFlux[b] / f - 1);
                tn[b].push_back(o.templateFluxErr[b] / f);
                pm[b].push_back(std::abs(o.modelFlux[b] / f - 1));
                pn[b].push_back(o.fluxErr[b] / f);
                if (tr.sn[b] >= 10) {
                    pb[b].push_back(std::abs(o.flux[b] / f - 1));
                    pba[b].push_back(std::abs(s.fluxAuto[b] / f - 1));
                }
            }
            (blended ? eo : io)[b].push_back(std::abs(o.flux[b] / f - 1));
            (blended ? te : ti)[b].push_back(std::abs(o.templateFlux[b] / f - 1));
            (blended ? ea : ia)[b].push_back(std::abs(s.fluxAuto[b] / f - 1));
            (blended ? ei : ii)[b].push_back(std::abs(s.fluxIso[b] / f - 1));
        }
    }
    for (std::size_t b = 0; b < nb; ++b) {
        c.ours.push_back(medianOf(eo[b]));
        c.oursNoise.push_back(medianOf(no[b]));
        c.oursPairs.push_back(medianOf(po[b]));
        c.sexAutoPairs.push_back(medianOf(pa[b]));
        c.oursPairsSigned.push_back(medianOf(ps[b]));
        c.oursModelPairs.push_back(medianOf(pm[b]));
        c.oursNoisePairs.push_back(medianOf(pn[b]));
        c.oursPairsBandSn.push_back(medianOf(pb[b]));
        c.sexAutoPairsBandSn.push_back(medianOf(pba[b]));
        c.nPairsBandSn.push_back(static_cast<int>(pb[b].size()));
        c.oursTmpl.push_back(medianOf(te[b]));
        c.oursTmplPairs.push_back(medianOf(tp[b]));
        c.oursTmplPairsSigned.push_back(medianOf(ts[b]));
        c.oursTmplNoisePairs.push_back(medianOf(tn[b]));
        c.oursTmplIsolated.push_back(medianOf(ti[b]));
        if (b + 1 < nb) c.oursTmplColourPairs.push_back(medianOf(tc[b]));
        if (b + 1 < nb) {
            c.oursColourPairs.push_back(medianOf(co[b]));
            c.sexAutoColourPairs.push_back(medianOf(ca[b]));
        }
        c.sexAuto.push_back(medianOf(ea[b]));
        c.sexIso.push_back(medianOf(ei[b]));
        c.oursIsolated.push_back(medianOf(io[b]));
        c.sexAutoIsolated.push_back(medianOf(ia[b]));
        c.sexIsoIsolated.push_back(medianOf(ii[b]));
    }
    return c;
}

}  // namespace drp::deblend::testing
