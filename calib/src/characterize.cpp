#include "drp/calib/characterize.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>

#include "drp/calib/centroid.h"
#include "drp/core/error.h"

namespace drp::calib {

namespace {

constexpr double kFwhmPerSigma = 2.3548200450309493;  // 2 √(2 ln 2)

MaskPixel planeBits(const Mask& mask, const std::vector<std::string>& names) {
    MaskPixel b = 0;
    for (const auto& n : names)
        if (mask.planes().has(n)) b |= mask.planes().bit(n);
    return b;
}

// OR of the mask bits within radius r of p.
MaskPixel bitsNear(const Mask& mask, Point2D p, double r) {
    const Box2I box = mask.bbox();
    MaskPixel acc = 0;
    int x0 = std::max(box.minX(), int(std::floor(p.x - r))),
        x1 = std::min(box.maxX(), int(std::ceil(p.x + r)));
    int y0 = std::max(box.minY(), int(std::floor(p.y - r))),
        y1 = std::min(box.maxY(), int(std::ceil(p.y + r)));
    for (int y = y0; y <= y1; ++y)
        for (int x = x0; x <= x1; ++x)
            if ((x - p.x) * (x - p.x) + (y - p.y) * (y - p.y) <= r * r)
                acc |= mask(x - box.minX(), y - box.minY());
    return acc;
}

// (A − B)/(A + B) from second moments (A, B the semi-axes: square roots of the eigenvalues).
double axisEllipticity(const Quadrupole& q) {
    double h = 0.5 * q.trace(),
           d = std::sqrt(0.25 * (q.ixx - q.iyy) * (q.ixx - q.iyy) + q.ixy * q.ixy);
    double a = std::sqrt(std::max(h + d, 0.0)), b = std::sqrt(std::max(h - d, 0.0));
    return a + b > 0 ? (a - b) / (a + b) : 1.0;
}

// Densest window of a sorted sample holding a quarter of it (at least 3): its median and its
// lower edge. The stellar locus is the tightest clump of sizes; galaxies spread to larger sizes
// and hot pixels / cosmic rays to smaller ones.
bool densestWindow(std::vector<double> r, double& median, double& low) {
    if (r.size() < 3) return false;
    std::sort(r.begin(), r.end());
    std::size_t k = std::max<std::size_t>(3, (r.size() + 3) / 4);
    std::size_t best = 0;
    for (std::size_t i = 0; i + k <= r.size(); ++i)
        if (r[i + k - 1] - r[i] < r[best + k - 1] - r[best]) best = i;
    median = r[best + k / 2];
    low = r[best];
    return true;
}

std::string apertureColumn(double radius) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "ap_flux_%.1f", radius);
    std::string s = buf;
    std::replace(s.begin(), s.end(), '.', '_');
    return s;
}

}  // namespace

const std::vector<std::string>& sourceFlagNames() {
    static const std::vector<std::string> names = {
        "edge",      "saturated",    "cosmic_ray",   "blended",    "bad_centroid",
        "bad_shape", "bad_psf_flux", "interpolated", "bad_pixels", "psf_candidate",
        "psf_used",  "psf_reserved", "ap_corr_used"};
    return names;
}

void CharacterizeConfig::validate() const {
    auto fail = [](const std::string& what) { throw configError("CharacterizeConfig: " + what); };
    background.validate();
    detection.validate();
    cosmicRay.validate();
    psf.validate();
    apertureCorrection.validate();
    if (!(initialPsfFwhm >= 0)) fail("initialPsfFwhm must be >= 0 (0 = estimate)");
    if (!(psfMinSnr > 0)) fail("psfMinSnr must be > 0");
    if (!(cosmicRayPsfScale > 0.3 && cosmicRayPsfScale <= 1.5))
        fail("cosmicRayPsfScale must be in (0.3, 1.5]");
    if (!(psfSizeTolerance > 0 && psfSizeTolerance < 1)) fail("psfSizeTolerance must be in (0, 1)");
    if (!(psfMaxEllipticity > 0 && psfMaxEllipticity <= 1))
        fail("psfMaxEllipticity must be in (0, 1]");
    if (!(reserveFraction >= 0 && reserveFraction < 0.5))
        fail("reserveFraction must be in [0, 0.5)");
    if (apertureRadii.empty()) fail("apertureRadii must not be empty");
    for (double r : apertureRadii)
        if (!(r > 0)) fail("apertureRadii must be > 0");
    if (std::find(apertureRadii.begin(), apertureRadii.end(), calibApertureRadius) ==
        apertureRadii.end())
        fail("calibApertureRadius = " + std::to_string(calibApertureRadius) +
             " must be one of apertureRadii");
}

PropertyList CharacterizeSummary::toMetadata() const {
    PropertyList p;
    p.set("SKY_LEVEL", skyLevel, "mean background (electrons/pixel)");
    p.set("SKY_RMS", skyRms, "mean background RMS (electrons/pixel)");
    p.set("PSF_FWHM", psfFwhm, "PSF model FWHM at the detector centre (pixels)");
    p.set("DEPTH5", depth5Sigma, "5-sigma point-source flux limit (electrons)");
    p.set("N_SOURCE", numSources, "sources measured");
    p.set("N_FOOTPRINT", numFootprints, "detection footprints");
    p.set("N_PSFCAND", numPsfCandidates, "PSF star candidates");
    p.set("N_PSFUSED", numPsfUsed, "stars used in the PSF fit");
    p.set("N_PSFRES", numPsfReserved, "stars reserved for PSF validation");
    p.set("N_CR", numCosmicRays, "cosmic rays repaired");
    // FITS header values cannot be NaN: a statistic with nothing to average (no reserved star
    // could be measured, no aperture-correction star) is left out of the header.
    auto setIfFinite = [&p](const char* key, double v, const char* comment) {
        if (std::isfinite(v)) p.set(key, v, comment);
    };
    setIfFinite("APCORR", apCorr, "aperture correction at the detector centre");
    setIfFinite("APCORR_RMS", apCorrRms, "scatter of the aperture-correction stars");
    setIfFinite("APWING", apertureWingFraction,
                "PSF light beyond the calibration aperture (Moffat wings; fraction)");
    setIfFinite("PSF_BETA", psfMoffatBeta, "Moffat beta of the PSF model's wings");
    setIfFinite("PSFRES_DT", reserved.meanDeltaTOverT, "mean dT/T of the PSF on reserved stars");
    setIfFinite("PSFRES_DE1", reserved.meanDeltaE1, "mean de1 of the PSF on reserved stars");
    setIfFinite("PSFRES_DE2", reserved.meanDeltaE2, "mean de2 of the PSF on reserved stars");
    return p;
}

double estimatePsfSigma(MaskedImage& mi, double guessSigma, double minSnr, MaskPixel badBits,
                        double* low) {
    DetectionConfig dc;
    dc.thresholdSigma = std::min(minSnr, 10.0);
    DetectionResult det = detectSources(mi, guessSigma, dc);
    std::vector<double> radii;
    for (const Footprint& fp : det.footprints) {
        if (fp.peaks().size() != 1 || fp.peaks()[0].significance < minSnr) continue;
        Point2D p(fp.peaks()[0].position);
        ShapeResult s =
            measureAdaptiveMoments(mi.image().cview(), p, guessSigma, &mi.mask(), badBits);
        if (s.failed) continue;
        double r = s.moments.determinantRadius();
        if (r > 0.6) radii.push_back(r);  // below: hot pixels and cosmic rays
    }
    double med, lo;
    if (!densestWindow(radii, med, lo)) return NAN;
    if (low) *low = lo;
    return med;
}

CharacterizeResult characterize(const Exposure& input, const CharacterizeConfig& config) {
    config.validate();
    CharacterizeResult res;
    res.exposure = input;
    Exposure& exp = res.exposure;
    MaskedImage& mi = exp.maskedImage();
    Mask& mask = mi.mask();
    const Box2I box = mi.bbox();
    if (box.empty()) throw badInput("characterize: empty exposure");
    const MaskPixel noData = mask.planes().bit("NO_DATA"), sat = mask.planes().bit("SAT");

    // 1. Input checks.
    std::int64_t finite = 0;
    const double saturation = input.visitInfo().saturation;
    for (int j = 0; j < mi.height(); ++j)
        for (int i = 0; i < mi.width(); ++i) {
            float& v = mi.image()(i, j);
            float& var = mi.variance()(i, j);
            if (!std::isfinite(v) || !std::isfinite(var) || !(var > 0)) {
                mask(i, j) |= noData;
                v = 0.f;
                var = 0.f;
                continue;
            }
            ++finite;
            if (saturation > 0 && v >= saturation) mask(i, j) |= sat;
        }
    if (finite == 0)
        throw badInput("characterize: the exposure has no finite pixel with positive variance");

    // 2. Background.
    res.background = estimateBackground(mi, config.background);
    subtractBackground(mi, res.background);
    const MaskPixel badBits = planeBits(mask, config.badMaskPlanes);

    // 3-4. PSF size for detection and cosmic rays, and cosmic-ray repair. Cosmic rays can
    // outnumber bright stars on a raw single visit and pull the size estimate down, so the size is
    // estimated, cosmic rays sharper than the sharpest stars are repaired, and the size is
    // estimated again on the cleaned image (then a second repair with the refined size).
    double sigma = NAN, sigmaLow = NAN;
    auto estimateSize = [&]() {
        if (config.initialPsfFwhm > 0) {
            sigma = sigmaLow = config.initialPsfFwhm / kFwhmPerSigma;
            return;
        }
        double guess = 2.0, low = NAN;
        double est = NAN;
        for (int pass = 0; pass < 2; ++pass) {  // second pass with the matched filter of the first
            double s = estimatePsfSigma(mi, guess, 30.0, badBits, &low);
            if (!std::isfinite(s)) break;
            est = guess = s;
        }
        if (!std::isfinite(est))
            throw Error("psf_failed",
                        "characterize: no bright compact sources to estimate the PSF size from");
        // Adaptive moments include the pixel response (1/12 px² per axis); the matched filter
        // and the CR test use the intrinsic size.
        sigma = std::sqrt(std::max(est * est - 1.0 / 12, 0.25));
        sigmaLow = std::sqrt(std::max(low * low - 1.0 / 12, 0.25));
    };
    estimateSize();
    if (config.doCosmicRays) {
        for (int pass = 0; pass < 2; ++pass) {
            Image<double> k = gaussianKernel(config.cosmicRayPsfScale * sigmaLow);
            CosmicRayResult cr = findAndRepairCosmicRays(mi, k.cview(), config.cosmicRay);
            res.summary.numCosmicRays += cr.numCosmicRays;
            if (pass == 0) estimateSize();
        }
    }
    res.summary.initialPsfSigma = sigma;

    // 5. Detection, background re-estimation with sources masked, final detection.
    detectSources(mi, sigma, config.detection);
    {
        ImageF bg1 = res.background.image();
        for (std::size_t k = 0; k < bg1.pixels().size(); ++k)
            mi.image().pixels()[k] += bg1.pixels()[k];
        res.background = estimateBackground(mi, config.background);
        subtractBackground(mi, res.background);
        for (std::size_t k = 0; k < bg1.pixels().size(); ++k)
            if (mask.image().pixels()[k] & noData) mi.image().pixels()[k] = 0.f;
    }
    DetectionResult det = detectSources(mi, sigma, config.detection);
    res.summary.numFootprints = static_cast<int>(det.footprints.size());

    // 6. Sources: one per peak.
    struct Src {
        int footprint;
        Peak peak;
        CentroidResult centroid;
        ShapeResult shape;
        std::int64_t flags = 0;
    };
    std::vector<Src> src;
    const MaskPixel crBit = mask.planes().bit("CR"), intrp = mask.planes().bit("INTRP"),
                    bad = mask.planes().bit("BAD"), edgeBit = mask.planes().bit("EDGE");
    for (std::size_t f = 0; f < det.footprints.size(); ++f)
        for (const Peak& pk : det.footprints[f].peaks()) {
            Src s{static_cast<int>(f), pk, {}, {}, 0};
            s.centroid = measureCentroid(mi, Point2D(pk.position), sigma, badBits);
            if (s.centroid.failed) s.flags |= kFlagBadCentroid;
            if (s.centroid.edge) s.flags |= kFlagEdge;
            s.shape = measureAdaptiveMoments(mi.image().cview(), s.centroid.position, sigma, &mask,
                                             badBits);
            if (s.shape.failed) s.flags |= kFlagBadShape;
            if (det.footprints[f].peaks().size() > 1) s.flags |= kFlagBlended;
            MaskPixel near = bitsNear(mask, s.centroid.position, 3 * sigma);
            if (near & sat) s.flags |= kFlagSaturated;
            if (near & crBit) s.flags |= kFlagCosmicRay;
            if (near & intrp) s.flags |= kFlagInterpolated;
            if (near & (bad | noData)) s.flags |= kFlagBadPixels;
            if (near & edgeBit) s.flags |= kFlagEdge;
            src.push_back(s);
        }
    res.summary.numSources = static_cast<int>(src.size());

    // 7. PSF star selection, reservation and fit.
    const int r = config.psf.kernelRadius;
    const MaskPixel stampBad = sat | crBit | intrp | bad | noData | edgeBit;
    std::vector<std::size_t> cand;
    std::vector<double> candRadii;
    for (std::size_t k = 0; k < src.size(); ++k) {
        const Src& s = src[k];
        if (s.flags & (kFlagBadCentroid | kFlagBadShape | kFlagBlended | kFlagEdge)) continue;
        if (s.peak.significance < config.psfMinSnr) continue;
        Point2I c = s.centroid.position.nearestPixel();
        Box2I stamp = Box2I::fromCorners({c.x - r, c.y - r}, {c.x + r, c.y + r});
        if (!box.contains(stamp)) continue;
        bool clean = true;
        for (int y = stamp.minY(); y <= stamp.maxY() && clean; ++y)
            for (int x = stamp.minX(); x <= stamp.maxX(); ++x)
                if (mask(x - box.minX(), y - box.minY()) & stampBad) {
                    clean = false;
                    break;
                }
        if (!clean) continue;
        // Isolation: no other peak within the stamp (plus the kernel's wings, 2σ).
        bool isolated = true;
        for (std::size_t q = 0; q < src.size() && isolated; ++q)
            if (q != k && std::abs(src[q].peak.position.x - c.x) <= r + 2 * sigma &&
                std::abs(src[q].peak.position.y - c.y) <= r + 2 * sigma)
                isolated = false;
        if (!isolated) continue;
        if (axisEllipticity(s.shape.moments) > config.psfMaxEllipticity) continue;
        cand.push_back(k);
        candRadii.push_back(s.shape.moments.determinantRadius());
    }
    double locus = NAN, locusLow;
    if (densestWindow(candRadii, locus, locusLow)) {
        std::vector<std::size_t> keep;
        for (std::size_t k : cand)
            if (std::abs(src[k].shape.moments.determinantRadius() / locus - 1) <=
                config.psfSizeTolerance)
                keep.push_back(k);
        cand = std::move(keep);
    }
    for (std::size_t k : cand) src[k].flags |= kFlagPsfCandidate;
    res.summary.numPsfCandidates = static_cast<int>(cand.size());
    std::uint64_t seed = config.reserveSeed;
    if (seed == 0)  // from the data id: splitmix-style mix of visit and detector
        seed = 0x9E3779B97F4A7C15ULL ^
               (std::uint64_t(input.visitInfo().visit) * 0xBF58476D1CE4E5B9ULL) ^
               (std::uint64_t(std::uint32_t(input.visitInfo().detector)) * 0x94D049BB133111EBULL);
    std::vector<std::size_t> order = cand;
    std::mt19937_64 rng(seed);
    std::shuffle(order.begin(), order.end(), rng);
    std::size_t nReserve =
        static_cast<std::size_t>(std::lround(config.reserveFraction * order.size()));
    std::vector<PsfStar> fitStars;
    std::vector<Point2D> reservedPos;
    for (std::size_t q = 0; q < order.size(); ++q) {
        Src& s = src[order[q]];
        if (q < nReserve) {
            s.flags |= kFlagPsfReserved;
            reservedPos.push_back(s.centroid.position);
        } else {
            fitStars.push_back({s.centroid.position, s.peak.significance, std::int64_t(order[q])});
        }
    }
    PsfFitReport report;
    try {
        res.psf = fitPsfModel(mi, fitStars, config.psf, stampBad, &report);
    } catch (Error& e) {
        e.addContext("characterize visit " + std::to_string(input.visitInfo().visit) +
                     " detector " + std::to_string(input.visitInfo().detector) + ": " +
                     std::to_string(cand.size()) + " PSF candidates");
        throw;
    }
    for (std::int64_t id : report.usedIds) src[std::size_t(id)].flags |= kFlagPsfUsed;
    res.summary.numPsfUsed = static_cast<int>(report.usedIds.size());
    res.summary.numPsfReserved = static_cast<int>(reservedPos.size());
    exp.setPsf(res.psf);
    const Point2D centre(0.5 * (box.minX() + box.maxX()), 0.5 * (box.minY() + box.maxY()));
    {  // FWHM from adaptive moments (unweighted moments of a noisy empirical kernel are
       // dominated by its wings), without the pixel response.
        Image<double> k = res.psf->computeImage(centre);
        ShapeResult m = measureAdaptiveMoments(k.cview(), centre, sigma);
        Quadrupole q = m.moments;
        q.ixx -= 1.0 / 12;
        q.iyy -= 1.0 / 12;
        res.summary.psfFwhm = m.failed ? NAN : q.gaussianFwhm();
    }
    res.summary.reserved = psfShapeResiduals(mi, *res.psf, reservedPos, stampBad);

    // 8. Photometry and aperture correction.
    const std::size_t nAp = config.apertureRadii.size();
    std::vector<std::vector<ApertureFlux>> ap(src.size(), std::vector<ApertureFlux>(nAp));
    std::vector<PsfFlux> pf(src.size());
    std::size_t calibIdx = std::find(config.apertureRadii.begin(), config.apertureRadii.end(),
                                     config.calibApertureRadius) -
                           config.apertureRadii.begin();
    std::vector<Point2D> acPos;
    std::vector<double> acCalib, acCalibErr, acPsf, acPsfErr;
    std::vector<std::size_t> acIdx;
    for (std::size_t k = 0; k < src.size(); ++k) {
        Point2D p = src[k].centroid.position;
        for (std::size_t a = 0; a < nAp; ++a)
            ap[k][a] = measureApertureFlux(mi, p, config.apertureRadii[a], badBits);
        if (ap[k][calibIdx].truncated) src[k].flags |= kFlagEdge;
        pf[k] = measurePsfFlux(mi, *res.psf, p, badBits);
        if (pf[k].failed) src[k].flags |= kFlagBadPsfFlux;
        if (pf[k].edge) src[k].flags |= kFlagEdge;
        // The PSF stars and the reserved ones (clean, isolated, on the stellar locus; the
        // reserved stars did not shape the model, so they do not bias the ratio).
        if ((src[k].flags & (kFlagPsfUsed | kFlagPsfReserved)) && !ap[k][calibIdx].badPixels &&
            !ap[k][calibIdx].truncated && !pf[k].failed) {
            acPos.push_back(p);
            acCalib.push_back(ap[k][calibIdx].flux);
            acCalibErr.push_back(ap[k][calibIdx].fluxErr);
            acPsf.push_back(pf[k].flux);
            acPsfErr.push_back(pf[k].fluxErr);
            acIdx.push_back(k);
        }
    }
    res.apertureCorrection = fitApertureCorrection(box, acPos, acCalib, acCalibErr, acPsf, acPsfErr,
                                                   config.apertureCorrection);
    for (std::size_t k : acIdx) src[k].flags |= kFlagApCorrUsed;
    // The light beyond the calibration aperture, from the PSF model's Moffat wings at the
    // detector centre: psf_flux is then a total flux, whatever the seeing (photometry.h).
    if (config.extrapolateToTotalFlux) {
        const MoffatWings wings = fitMoffatWings(res.psf->computeKernelImage(centre));
        if (wings.valid) {
            res.summary.apertureWingFraction = wings.fluxBeyond(config.calibApertureRadius);
            res.summary.psfMoffatBeta = wings.beta;
        }
    }
    const double toTotal =
        1 +
        (std::isfinite(res.summary.apertureWingFraction) ? res.summary.apertureWingFraction : 0.0);
    res.summary.apCorr = res.apertureCorrection.evaluate(centre);
    res.summary.apCorrRms = res.apertureCorrection.rms();
    res.summary.apCorrStars = res.apertureCorrection.numStars();
    res.summary.skyLevel = res.background.meanValue();
    res.summary.skyRms = res.background.meanRms();
    double ps = res.summary.psfFwhm / kFwhmPerSigma;
    res.summary.depth5Sigma = 5 * res.summary.skyRms * std::sqrt(4 * M_PI * ps * ps);

    // The Source table.
    Table& t = res.sources;
    const VisitInfo& vi = input.visitInfo();
    auto& cId = t.addColumn<std::int64_t>("source_id", "",
                                          "(visit*1000 + detector)*1e6 + row: unique per release");
    auto& cVisit = t.addColumn<std::int64_t>("visit", "", "visit id");
    auto& cDet = t.addColumn<std::int32_t>("detector", "", "detector id");
    auto& cBand = t.addColumn<std::string>("band", "", "filter band (u g r i z y)");
    auto& cFp = t.addColumn<std::int32_t>("footprint", "", "index of the detection footprint");
    auto& cX =
        t.addColumn<double>("x", "pixel", "Gaussian-weighted centroid x (parent pixels, 0-based)");
    auto& cY = t.addColumn<double>("y", "pixel", "Gaussian-weighted centroid y");
    auto& cXe = t.addColumn<double>("x_err", "pixel", "1-sigma error of x");
    auto& cYe = t.addColumn<double>("y_err", "pixel", "1-sigma error of y");
    auto& cXY = t.addColumn<double>("xy_cov", "pixel2", "covariance of x and y");
    auto& cRa = t.addColumn<double>("ra", "deg",
                                    "ICRS right ascension (NaN until astrometric calibration)");
    auto& cDec =
        t.addColumn<double>("dec", "deg", "ICRS declination (NaN until astrometric calibration)");
    auto& cIxx = t.addColumn<double>("ixx", "pixel2", "adaptive second moment xx");
    auto& cIyy = t.addColumn<double>("iyy", "pixel2", "adaptive second moment yy");
    auto& cIxy = t.addColumn<double>("ixy", "pixel2", "adaptive second moment xy");
    auto& cSig = t.addColumn<double>("detect_significance", "", "matched-filter S/N of the peak");
    auto& cPf = t.addColumn<double>(
        "psf_flux", "count",
        "total PSF flux: aperture-corrected to the calibration aperture, times the PSF's light "
        "beyond it (APWING) (electrons; nJy after calibration)");
    auto& cPfe = t.addColumn<double>("psf_flux_err", "count", "1-sigma error of psf_flux");
    auto& cPchi = t.addColumn<double>("psf_chi2", "", "chi2 of the PSF-flux fit");
    auto& cPn = t.addColumn<std::int32_t>("psf_npix", "", "pixels in the PSF-flux fit");
    auto& cAp = t.addColumn<double>(
        "ap_flux", "count",
        "flux in the calibration aperture (CharacterizeConfig::calibApertureRadius, 17 px)");
    auto& cApe = t.addColumn<double>("ap_flux_err", "count", "1-sigma error of ap_flux");
    std::vector<std::vector<double>*> apCols, apErrCols;
    for (double radius : config.apertureRadii) {
        std::string n = apertureColumn(radius);
        char desc[96];
        std::snprintf(desc, sizeof desc, "exact circular-aperture flux, radius %.1f px", radius);
        apCols.push_back(&t.addColumn<double>(n, "count", desc));
        apErrCols.push_back(&t.addColumn<double>(n + "_err", "count", "1-sigma error"));
    }
    auto& cFlags = t.addColumn<std::int64_t>(
        "flags", "", "OR of the flag bits (see flag_* columns, bit = index)");
    std::vector<std::vector<Bool>*> flagCols;
    for (const auto& n : sourceFlagNames())
        flagCols.push_back(&t.addColumn<Bool>("flag_" + n, "", "flag " + n));
    for (std::size_t k = 0; k < src.size(); ++k) {
        const Src& s = src[k];
        cId.push_back((vi.visit * 1000 + vi.detector) * 1000000 + std::int64_t(k));
        cVisit.push_back(vi.visit);
        cDet.push_back(vi.detector);
        cBand.push_back(vi.band);
        cFp.push_back(s.footprint);
        cX.push_back(s.centroid.position.x);
        cY.push_back(s.centroid.position.y);
        cXe.push_back(s.centroid.xErr);
        cYe.push_back(s.centroid.yErr);
        cXY.push_back(s.centroid.xyCov);
        cRa.push_back(NAN);
        cDec.push_back(NAN);
        cIxx.push_back(s.shape.failed ? NAN : s.shape.moments.ixx);
        cIyy.push_back(s.shape.failed ? NAN : s.shape.moments.iyy);
        cIxy.push_back(s.shape.failed ? NAN : s.shape.moments.ixy);
        cSig.push_back(s.peak.significance);
        double corr = res.apertureCorrection.evaluate(s.centroid.position) * toTotal;
        cPf.push_back(pf[k].flux * corr);
        cPfe.push_back(pf[k].fluxErr * corr);
        cPchi.push_back(pf[k].chi2);
        cPn.push_back(pf[k].numPixels);
        cAp.push_back(ap[k][calibIdx].flux);
        cApe.push_back(ap[k][calibIdx].fluxErr);
        for (std::size_t a = 0; a < nAp; ++a) {
            apCols[a]->push_back(ap[k][a].flux);
            apErrCols[a]->push_back(ap[k][a].fluxErr);
        }
        cFlags.push_back(s.flags);
        for (std::size_t b = 0; b < flagCols.size(); ++b)
            flagCols[b]->push_back(Bool((s.flags >> b) & 1));
    }
    t.metadata().update(res.summary.toMetadata());
    res.footprints = std::move(det.footprints);
    return res;
}

}  // namespace drp::calib
