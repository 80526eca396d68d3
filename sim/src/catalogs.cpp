#include "drp/sim/catalogs.h"

#include <cmath>
#include <map>
#include <string>

#include "drp/core/error.h"
#include "drp/sim/random.h"
#include "drp/sim/render.h"

namespace drp::sim {

namespace {
std::string band(int b) {
    return kBandNames[static_cast<std::size_t>(b)];
}
}  // namespace

Table truthTable(const std::vector<TrueObject>& sky) {
    Table t;
    auto& id =
        t.addColumn<std::int64_t>("truth_id", "", "Unique id of the simulated object (1-based)");
    auto& ra = t.addColumn<double>("ra", "deg", "True right ascension (ICRS)");
    auto& dec = t.addColumn<double>("dec", "deg", "True declination (ICRS)");
    auto& star = t.addColumn<Bool>("is_star", "", "True for a star (point source)");
    std::vector<std::vector<double>*> flux, bulge;
    for (int b = 0; b < kNumBands; ++b)
        flux.push_back(
            &t.addColumn<double>(band(b) + "_flux", "nJy",
                                 "True total flux in band " + band(b) + " (truncated profiles)"));
    for (int b = 0; b < kNumBands; ++b)
        bulge.push_back(&t.addColumn<double>(band(b) + "_bulge_flux", "nJy",
                                             "True bulge flux in band " + band(b)));
    auto& bre = t.addColumn<double>("bulge_r_eff", "arcsec",
                                    "Bulge half-light radius (untruncated Sersic)");
    auto& dre =
        t.addColumn<double>("disk_r_eff", "arcsec", "Disk half-light radius (untruncated Sersic)");
    auto& bn = t.addColumn<double>("bulge_n", "", "Bulge Sersic index");
    auto& dn = t.addColumn<double>("disk_n", "", "Disk Sersic index");
    auto& be1 =
        t.addColumn<double>("bulge_e1", "", "Bulge ellipticity e1 (distortion, east/north frame)");
    auto& be2 =
        t.addColumn<double>("bulge_e2", "", "Bulge ellipticity e2 (distortion, east/north frame)");
    auto& de1 =
        t.addColumn<double>("disk_e1", "", "Disk ellipticity e1 (distortion, east/north frame)");
    auto& de2 =
        t.addColumn<double>("disk_e2", "", "Disk ellipticity e2 (distortion, east/north frame)");
    auto& btr =
        t.addColumn<double>("bulge_trunc", "", "Bulge truncation radius in units of bulge_r_eff");
    auto& dtr =
        t.addColumn<double>("disk_trunc", "", "Disk truncation radius in units of disk_r_eff");
    auto& pair = t.addColumn<std::int64_t>("paired_with", "",
                                           "truth_id of the close-pair companion (0: none)");
    for (const auto& o : sky) {
        id.push_back(o.id);
        ra.push_back(o.position.ra().asDegrees());
        dec.push_back(o.position.dec().asDegrees());
        star.push_back(o.isStar);
        for (int b = 0; b < kNumBands; ++b) {
            flux[b]->push_back(o.flux[b]);
            bulge[b]->push_back(o.bulgeFlux[b]);
        }
        bre.push_back(o.bulgeREff);
        dre.push_back(o.diskREff);
        bn.push_back(o.isStar ? 0.0 : o.bulgeN);
        dn.push_back(o.isStar ? 0.0 : o.diskN);
        be1.push_back(o.bulgeE1);
        be2.push_back(o.bulgeE2);
        de1.push_back(o.diskE1);
        de2.push_back(o.diskE2);
        btr.push_back(o.isStar ? 0.0 : sersicTruncation(o.bulgeN));
        dtr.push_back(o.isStar ? 0.0 : sersicTruncation(o.diskN));
        pair.push_back(o.pairedWith);
    }
    return t;
}

void RefcatConfig::validate() const {
    if (!(posErrFloorMas >= 0 && posErrMas18 >= 0 && magErrFloor >= 0 && magErrAtLimit >= 0))
        throw configError("refcat config: errors must be >= 0");
}

Table referenceCatalog(const std::vector<TrueObject>& sky, const RefcatConfig& cfg,
                       std::uint64_t seed) {
    cfg.validate();
    Table t;
    auto& refId = t.addColumn<std::int64_t>("ref_id", "", "Reference catalog id");
    auto& truthId =
        t.addColumn<std::int64_t>("truth_id", "", "truth_id of the star (simulation only)");
    auto& ra = t.addColumn<double>("ra", "deg", "Right ascension (ICRS), with catalog errors");
    auto& dec = t.addColumn<double>("dec", "deg", "Declination (ICRS), with catalog errors");
    auto& raErr = t.addColumn<double>("ra_err", "mas",
                                      "1-sigma error of ra along the great circle (ra*cos(dec))");
    auto& decErr = t.addColumn<double>("dec_err", "mas", "1-sigma error of dec");
    std::vector<std::vector<double>*> flux, fluxErr;
    for (int b = 0; b < kNumBands; ++b) {
        flux.push_back(
            &t.addColumn<double>(band(b) + "_flux", "nJy", "Reference flux in band " + band(b)));
        fluxErr.push_back(&t.addColumn<double>(band(b) + "_flux_err", "nJy",
                                               "1-sigma error of " + band(b) + "_flux"));
    }
    std::int64_t next = 1;
    for (const auto& o : sky) {
        if (!o.isStar) continue;
        const double r = nJyToMag(o.flux[2]);
        if (r >= cfg.magLimit) continue;
        Rng rng = Rng::forStream(seed, Stream::kRefcat, {static_cast<std::uint64_t>(o.id)});
        const double sPos =
            std::max(cfg.posErrFloorMas, cfg.posErrMas18 * std::pow(10.0, 0.2 * (r - 18)));
        const double dEast = rng.normal(0, sPos), dNorth = rng.normal(0, sPos);
        const SpherePoint p = o.position.offset(radians(std::atan2(dEast, dNorth)),
                                                milliarcseconds(std::hypot(dEast, dNorth)));
        refId.push_back(next++);
        truthId.push_back(o.id);
        ra.push_back(p.ra().asDegrees());
        dec.push_back(p.dec().asDegrees());
        raErr.push_back(sPos);
        decErr.push_back(sPos);
        const double sMag = std::hypot(
            cfg.magErrFloor, cfg.magErrAtLimit * std::pow(10.0, 0.4 * (r - cfg.magLimit)));
        for (int b = 0; b < kNumBands; ++b) {
            // Magnitude errors are per band; a flux error of σ_m gives σ_f = f σ_m ln10 / 2.5.
            const double sf = o.flux[b] * sMag * std::log(10.0) / 2.5;
            flux[b]->push_back(o.flux[b] + rng.normal(0, sf));
            fluxErr[b]->push_back(sf);
        }
    }
    return t;
}

Table detectorTruthTable(const std::vector<DetectorTruth>& detectors,
                         const std::vector<VisitConditions>& visits) {
    std::map<std::int64_t, const VisitConditions*> byVisit;
    for (const auto& v : visits) byVisit[v.spec.visit] = &v;
    Table t;
    auto& visit = t.addColumn<std::int64_t>("visit", "", "Visit id");
    auto& det = t.addColumn<std::int32_t>("detector", "", "Detector id");
    auto& bandCol = t.addColumn<std::string>("band", "", "Band");
    auto& mjd = t.addColumn<double>("mjd", "d", "MJD (TAI) at the start of the exposure");
    auto& airmass = t.addColumn<double>("airmass", "", "Airmass");
    auto& zp = t.addColumn<double>("zero_point", "mag",
                                   "True AB magnitude giving 1 electron in the exposure");
    auto& njy = t.addColumn<double>("njy_per_electron", "nJy",
                                    "True flux of 1 electron (= 10^(0.4 (31.4 - zero_point)))");
    auto& cloud =
        t.addColumn<double>("cloud_extinction", "mag", "Grey (cloud) extinction of the visit");
    auto& zpDet = t.addColumn<double>("detector_zp_offset", "mag",
                                      "Per-detector QE offset included in zero_point");
    auto& sky = t.addColumn<double>("sky_level", "electron",
                                    "Sky background at the detector centre, per pixel");
    auto& skyMag = t.addColumn<double>("sky_brightness", "mag/arcsec2",
                                       "Sky surface brightness of the visit (before clouds)");
    auto& sgx = t.addColumn<double>(
        "sky_grad_x", "", "Fractional sky gradient along focal-plane u at the corner radius");
    auto& sgy = t.addColumn<double>(
        "sky_grad_y", "", "Fractional sky gradient along focal-plane v at the corner radius");
    auto& fwhmC = t.addColumn<double>("psf_fwhm", "pixel", "True PSF FWHM at the detector centre");
    auto& e1C =
        t.addColumn<double>("psf_e1", "", "True PSF e1 at the detector centre (pixel frame)");
    auto& e2C =
        t.addColumn<double>("psf_e2", "", "True PSF e2 at the detector centre (pixel frame)");
    auto& beta = t.addColumn<double>("psf_beta", "", "Moffat beta");
    auto& f0 = t.addColumn<double>("psf_model_fwhm0", "pixel", "PSF model: FWHM at the boresight");
    auto& me1 = t.addColumn<double>("psf_model_e1", "", "PSF model: e1 at the boresight");
    auto& me2 = t.addColumn<double>("psf_model_e2", "", "PSF model: e2 at the boresight");
    auto& mr = t.addColumn<double>("psf_model_radial", "",
                                   "PSF model: fractional FWHM change at the corner radius");
    auto& mgx = t.addColumn<double>("psf_model_grad_x", "",
                                    "PSF model: linear fractional FWHM gradient along u");
    auto& mgy = t.addColumn<double>("psf_model_grad_y", "",
                                    "PSF model: linear fractional FWHM gradient along v");
    auto& mast = t.addColumn<double>("psf_model_astig", "",
                                     "PSF model: ellipticity pattern amplitude at the corner");
    auto& mcr = t.addColumn<double>("psf_model_corner_radius", "pixel",
                                    "PSF model: focal-plane corner radius");
    auto& mtr =
        t.addColumn<double>("psf_model_truncation", "", "PSF model: truncation radius in FWHM");
    auto& ox =
        t.addColumn<double>("det_origin_u", "pixel", "Focal-plane u of detector pixel (0,0)");
    auto& oy =
        t.addColumn<double>("det_origin_v", "pixel", "Focal-plane v of detector pixel (0,0)");
    auto& cra = t.addColumn<double>("wcs_crval_ra", "deg", "True WCS: CRVAL1 (boresight RA)");
    auto& cdec = t.addColumn<double>("wcs_crval_dec", "deg", "True WCS: CRVAL2 (boresight Dec)");
    auto& cpx = t.addColumn<double>("wcs_crpix_x", "pixel", "True WCS: CRPIX1 - 1 (0-based)");
    auto& cpy = t.addColumn<double>("wcs_crpix_y", "pixel", "True WCS: CRPIX2 - 1 (0-based)");
    auto& cd11 = t.addColumn<double>("wcs_cd1_1", "deg/pixel", "True WCS: CD1_1");
    auto& cd12 = t.addColumn<double>("wcs_cd1_2", "deg/pixel", "True WCS: CD1_2");
    auto& cd21 = t.addColumn<double>("wcs_cd2_1", "deg/pixel", "True WCS: CD2_1");
    auto& cd22 = t.addColumn<double>("wcs_cd2_2", "deg/pixel", "True WCS: CD2_2");
    auto& sipK = t.addColumn<double>("wcs_sip_k", "pixel^-2",
                                     "True WCS: radial SIP coefficient (A_3_0=A_1_2=B_2_1=B_0_3)");
    auto& hdr =
        t.addColumn<std::string>("wcs_header", "", "True WCS as FITS header cards (TAN-SIP)");
    auto& perr = t.addColumn<double>("header_pointing_error", "arcsec",
                                     "Offset of the header WCS boresight from the truth");
    auto& rerr = t.addColumn<double>("header_rotation_error", "arcsec",
                                     "Rotation of the header WCS relative to the truth");
    auto& ncr = t.addColumn<std::int32_t>("n_cosmic_rays", "", "Cosmic rays added (unmasked)");
    auto& nbad = t.addColumn<std::int32_t>("n_bad_columns", "", "Bad columns (masked BAD)");
    auto& sat =
        t.addColumn<Bool>("satellite", "", "A satellite trail crosses the detector (unmasked)");
    auto& nst = t.addColumn<std::int32_t>("n_stars", "", "Stars rendered on the detector");
    auto& ngal = t.addColumn<std::int32_t>("n_galaxies", "", "Galaxies rendered on the detector");
    for (const auto& d : detectors) {
        auto it = byVisit.find(d.visit);
        if (it == byVisit.end())
            throw logicError("detectorTruthTable: no conditions for visit " +
                             std::to_string(d.visit));
        const VisitConditions& c = *it->second;
        visit.push_back(d.visit);
        det.push_back(d.detector);
        bandCol.push_back(band(d.band));
        mjd.push_back(c.spec.mjd);
        airmass.push_back(c.spec.airmass);
        zp.push_back(d.zeroPoint);
        njy.push_back(d.nJyPerElectron);
        cloud.push_back(c.cloud);
        zpDet.push_back(d.zeroPoint - c.zeroPoint);
        sky.push_back(d.skyLevel);
        skyMag.push_back(c.skyBrightness);
        sgx.push_back(c.skyGradX);
        sgy.push_back(c.skyGradY);
        const MoffatPsfModel& m = d.psf->model();
        const Extent2D o = d.psf->detectorOrigin();
        const Point2D centre{(d.bbox.width() - 1) / 2.0, (d.bbox.height() - 1) / 2.0};
        const TruncatedMoffat pc = m.at(centre + o);
        fwhmC.push_back(pc.fwhm());
        e1C.push_back(pc.e1());
        e2C.push_back(pc.e2());
        beta.push_back(m.beta);
        f0.push_back(m.fwhm);
        me1.push_back(m.e1);
        me2.push_back(m.e2);
        mr.push_back(m.radialFwhm);
        mgx.push_back(m.gradX);
        mgy.push_back(m.gradY);
        mast.push_back(m.astigmatism);
        mcr.push_back(m.cornerRadius);
        mtr.push_back(m.truncation);
        ox.push_back(o.x);
        oy.push_back(o.y);
        const TanSip& w = d.trueWcs;
        cra.push_back(w.crval().ra().asDegrees());
        cdec.push_back(w.crval().dec().asDegrees());
        cpx.push_back(w.crpix().x);
        cpy.push_back(w.crpix().y);
        cd11.push_back(w.cd()(0, 0));
        cd12.push_back(w.cd()(0, 1));
        cd21.push_back(w.cd()(1, 0));
        cd22.push_back(w.cd()(1, 1));
        sipK.push_back(w.k());
        hdr.push_back(w.toWcs(d.bbox)->toFitsHeader());
        perr.push_back(
            c.headerPointing.boresight.separation(c.spec.pointing.boresight).asArcseconds());
        rerr.push_back((c.headerPointing.rotation - c.spec.pointing.rotation).asArcseconds());
        ncr.push_back(static_cast<std::int32_t>(d.cosmicRays.size()));
        nbad.push_back(static_cast<std::int32_t>(d.badColumns.size()));
        sat.push_back(d.satellite);
        nst.push_back(static_cast<std::int32_t>(d.nStars));
        ngal.push_back(static_cast<std::int32_t>(d.nGalaxies));
    }
    return t;
}

Table cosmicRayTable(const std::vector<DetectorTruth>& detectors) {
    Table t;
    auto& visit = t.addColumn<std::int64_t>("visit", "", "Visit id");
    auto& det = t.addColumn<std::int32_t>("detector", "", "Detector id");
    auto& x0 = t.addColumn<double>("x0", "pixel", "Track start x");
    auto& y0 = t.addColumn<double>("y0", "pixel", "Track start y");
    auto& x1 = t.addColumn<double>("x1", "pixel", "Track end x");
    auto& y1 = t.addColumn<double>("y1", "pixel", "Track end y");
    auto& e = t.addColumn<double>("electrons", "electron", "Total charge deposited");
    for (const auto& d : detectors)
        for (const auto& c : d.cosmicRays) {
            visit.push_back(d.visit);
            det.push_back(d.detector);
            x0.push_back(c.x0);
            y0.push_back(c.y0);
            x1.push_back(c.x1);
            y1.push_back(c.y1);
            e.push_back(c.electrons);
        }
    return t;
}

Table badColumnTable(const std::vector<DetectorTruth>& detectors) {
    Table t;
    auto& visit = t.addColumn<std::int64_t>("visit", "", "Visit id");
    auto& det = t.addColumn<std::int32_t>("detector", "", "Detector id");
    auto& x = t.addColumn<std::int32_t>("x", "pixel", "Column");
    auto& y0 = t.addColumn<std::int32_t>("y0", "pixel", "First bad row");
    auto& y1 = t.addColumn<std::int32_t>("y1", "pixel", "Last bad row");
    auto& hot = t.addColumn<Bool>("hot", "", "Hot (bright) column; otherwise dead");
    for (const auto& d : detectors)
        for (const auto& b : d.badColumns) {
            visit.push_back(d.visit);
            det.push_back(d.detector);
            x.push_back(b.x);
            y0.push_back(b.y0);
            y1.push_back(b.y1);
            hot.push_back(b.hot);
        }
    return t;
}

Table satelliteTable(const std::vector<VisitConditions>& visits) {
    Table t;
    auto& visit = t.addColumn<std::int64_t>("visit", "", "Visit id");
    auto& angle =
        t.addColumn<double>("angle", "rad", "Trail direction in the focal plane, from +u");
    auto& offset =
        t.addColumn<double>("offset", "pixel", "Signed distance of the trail from the boresight");
    auto& peak =
        t.addColumn<double>("peak", "electron", "Peak charge per pixel on the centre line");
    auto& sigma = t.addColumn<double>("sigma", "pixel", "Gaussian cross-section sigma");
    for (const auto& v : visits) {
        if (!v.satellite) continue;
        visit.push_back(v.spec.visit);
        angle.push_back(v.satellite->angle);
        offset.push_back(v.satellite->offset);
        peak.push_back(v.satellite->peak);
        sigma.push_back(v.satellite->sigma);
    }
    return t;
}

}  // namespace drp::sim
