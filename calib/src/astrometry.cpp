#include "drp/calib/astrometry.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <numeric>

#include <Eigen/Dense>

#include "drp/calib/matching.h"
#include "drp/core/error.h"

namespace drp {

namespace {

Error failed(const std::string& what) {
    return Error("astrometry_failed", "astrometry: " + what);
}

/// Similarity transform candidate from the pattern stage: r = scale · R(theta) · p + shift.
struct Similarity {
    double scale = 1.0, theta = 0.0;
    Eigen::Vector2d shift = Eigen::Vector2d::Zero();
    Eigen::Vector2d apply(const Eigen::Vector2d& p) const {
        double c = std::cos(theta), s = std::sin(theta);
        return scale * Eigen::Vector2d(c * p[0] - s * p[1], s * p[0] + c * p[1]) + shift;
    }
};

struct RefPair {
    double length, angle;
    std::size_t k, l;
};

/// Verified matches of a transform: for each bright source, the nearest bright reference within
/// `tol` (brute force: both lists are short).
int verify(const Similarity& t, const std::vector<Eigen::Vector2d>& src,
           const std::vector<Eigen::Vector2d>& ref, double tol, double* sumSq,
           std::vector<std::pair<std::size_t, std::size_t>>* pairs) {
    int count = 0;
    *sumSq = 0;
    const double tol2 = tol * tol;
    for (std::size_t i = 0; i < src.size(); ++i) {
        Eigen::Vector2d p = t.apply(src[i]);
        double best = tol2;
        std::size_t bestK = ref.size();
        for (std::size_t k = 0; k < ref.size(); ++k) {
            double d2 = (ref[k] - p).squaredNorm();
            if (d2 <= best) {
                if (d2 < best || bestK == ref.size()) bestK = k;
                best = d2;
            }
        }
        if (bestK < ref.size()) {
            ++count;
            *sumSq += best;
            if (pairs) pairs->emplace_back(i, bestK);
        }
    }
    return count;
}

}  // namespace

void AstrometryConfig::validate() const {
    auto bad = [](const std::string& field, double value, const std::string& constraint) {
        return configError("AstrometryConfig." + field + " = " + std::to_string(value) +
                           ": must be " + constraint);
    };
    if (xColumn.empty() || yColumn.empty() || fluxColumn.empty())
        throw configError("AstrometryConfig: xColumn, yColumn and fluxColumn must be named");
    if (!(defaultCentroidError > 0)) throw bad("defaultCentroidError", defaultCentroidError, "> 0");
    if (!(maxOffset.asArcseconds() > 0))
        throw bad("maxOffset", maxOffset.asArcseconds(), "> 0 arcsec");
    if (!(maxRotation.asDegrees() >= 0 && maxRotation.asDegrees() <= 45))
        throw bad("maxRotation", maxRotation.asDegrees(), "in [0, 45] deg");
    if (!(maxScaleError >= 0 && maxScaleError < 0.5))
        throw bad("maxScaleError", maxScaleError, "in [0, 0.5)");
    if (patternSources < 3) throw bad("patternSources", patternSources, ">= 3");
    if (patternReferences < 3) throw bad("patternReferences", patternReferences, ">= 3");
    if (!(patternTolerance.asArcseconds() > 0))
        throw bad("patternTolerance", patternTolerance.asArcseconds(), "> 0");
    if (minPatternMatches < 3) throw bad("minPatternMatches", minPatternMatches, ">= 3");
    if (!(finalMatchRadius.asArcseconds() > 0 && finalMatchRadius <= initialMatchRadius))
        throw bad("finalMatchRadius", finalMatchRadius.asArcseconds(),
                  "in (0, initialMatchRadius]");
    if (!(radiusFactor >= 2)) throw bad("radiusFactor", radiusFactor, ">= 2");
    if (sipOrder < 1 || sipOrder > 9) throw bad("sipOrder", sipOrder, "in [1, 9]");
    if (inverseSipOrder < 0 || inverseSipOrder > 9)
        throw bad("inverseSipOrder", inverseSipOrder, "in [0, 9]");
    if (!(clipSigma >= 2)) throw bad("clipSigma", clipSigma, ">= 2");
    if (maxIterations < 2) throw bad("maxIterations", maxIterations, ">= 2");
    if (!(systematicError >= 0)) throw bad("systematicError", systematicError, ">= 0");
    if (!(referenceError >= 0)) throw bad("referenceError", referenceError, ">= 0");
    if (minMatches < 3) throw bad("minMatches", minMatches, ">= 3");
    if (!(maxRmsResidual.asArcseconds() > 0))
        throw bad("maxRmsResidual", maxRmsResidual.asArcseconds(), "> 0");
}

AstrometryResult fitAstrometry(const Table& sources, const Table& reference, const Wcs& headerWcs,
                               const Box2I& bbox, const AstrometryConfig& config) {
    config.validate();
    if (bbox.empty()) throw badInput("astrometry: empty detector bounding box");
    // ---- Inputs
    std::vector<double> x, y, xe, ye, flux, ra, dec, mag;
    try {
        x = realColumn(sources, config.xColumn);
        y = realColumn(sources, config.yColumn);
        flux = realColumn(sources, config.fluxColumn);
        if (!config.xErrColumn.empty() && sources.has(config.xErrColumn)) {
            xe = realColumn(sources, config.xErrColumn);
            ye = realColumn(sources, config.yErrColumn);
        }
    } catch (Error& e) {
        throw e.addContext("astrometry: source table");
    }
    try {
        ra = realColumn(reference, "ra");
        dec = realColumn(reference, "dec");
        mag = realColumn(reference, "mag");
    } catch (Error& e) {
        throw e.addContext("astrometry: reference table");
    }
    std::vector<std::size_t> srcRows;
    for (std::size_t i = 0; i < x.size(); ++i)
        if (std::isfinite(x[i]) && std::isfinite(y[i])) srcRows.push_back(i);
    AstrometryResult result;
    AstrometrySummary& sum = result.summary;
    sum.numSources = srcRows.size();

    const Box2D box(bbox);
    const Point2D centre = box.center();
    const SpherePoint centreSky = headerWcs.pixelToSky(centre);
    const SipTangentPlane plane(centreSky);
    const double pixelScale = headerWcs.pixelScale(centre).asArcseconds();
    auto toArcsec = [&](const SpherePoint& p) -> Eigen::Vector2d {
        return plane.project(p) * 3600.0;
    };

    // References in the header footprint padded by the header's uncertainty.
    const double halfDiag = 0.5 * std::hypot(box.width(), box.height()) * pixelScale;  // arcsec
    const double pad = config.maxOffset.asArcseconds() +
                       halfDiag * (config.maxRotation.asRadians() + config.maxScaleError) +
                       config.initialMatchRadius.asArcseconds();
    std::vector<Eigen::Vector2d> corners;
    for (Point2D c : {box.min(), Point2D(box.max().x, box.min().y), box.max(),
                      Point2D(box.min().x, box.max().y)})
        corners.push_back(toArcsec(headerWcs.pixelToSky(c)));
    Eigen::Vector2d lo = corners[0], hi = corners[0];
    for (auto& c : corners) {
        lo = lo.cwiseMin(c);
        hi = hi.cwiseMax(c);
    }
    std::vector<std::size_t> refRows;
    std::vector<Eigen::Vector2d> refTp;
    std::vector<SpherePoint> refSky;
    for (std::size_t k = 0; k < ra.size(); ++k) {
        if (!std::isfinite(ra[k]) || !std::isfinite(dec[k])) continue;
        SpherePoint p = SpherePoint::fromDegrees(ra[k], dec[k]);
        if (centreSky.separation(p).asArcseconds() > halfDiag + pad + 1.0) continue;
        Eigen::Vector2d t = toArcsec(p);
        if (t[0] < lo[0] - pad || t[0] > hi[0] + pad || t[1] < lo[1] - pad || t[1] > hi[1] + pad)
            continue;
        refRows.push_back(k);
        refTp.push_back(t);
        refSky.push_back(p);
    }
    sum.numReferences = refRows.size();
    if (refRows.empty())
        throw Error("no_reference_stars",
                    "astrometry: none of the " + std::to_string(ra.size()) +
                        " reference stars lies in the header footprint of the detector "
                        "(padded by " +
                        std::to_string(pad) + " arcsec)");
    const std::size_t minNeeded =
        static_cast<std::size_t>(std::max(config.minPatternMatches, config.minMatches));
    if (srcRows.size() < minNeeded ||
        refRows.size() < static_cast<std::size_t>(config.minPatternMatches))
        throw failed("too few stars: " + std::to_string(srcRows.size()) + " sources and " +
                     std::to_string(refRows.size()) + " references in the footprint (need " +
                     std::to_string(minNeeded) + " sources, " +
                     std::to_string(config.minPatternMatches) + " references)");

    std::vector<Point2D> pix;
    std::vector<double> sigma;  // arcsec, isotropic
    for (std::size_t i : srcRows) {
        pix.emplace_back(x[i], y[i]);
        double ex = xe.empty() ? config.defaultCentroidError : xe[i];
        double ey = ye.empty() ? config.defaultCentroidError : ye[i];
        if (!(ex > 0) || !std::isfinite(ex)) ex = config.defaultCentroidError;
        if (!(ey > 0) || !std::isfinite(ey)) ey = config.defaultCentroidError;
        double c = std::sqrt(0.5 * (ex * ex + ey * ey)) * pixelScale;
        sigma.push_back(std::sqrt(c * c + config.systematicError * config.systematicError +
                                  config.referenceError * config.referenceError));
    }
    std::vector<Eigen::Vector2d> srcTp;
    for (const auto& s : headerWcs.pixelToSky(pix)) srcTp.push_back(toArcsec(s));

    // ---- Pattern matching
    std::vector<std::size_t> bs(srcRows.size());
    std::iota(bs.begin(), bs.end(), std::size_t{0});
    auto fluxOf = [&](std::size_t a) {
        double f = flux[srcRows[a]];
        return std::isfinite(f) ? f : -std::numeric_limits<double>::infinity();
    };
    std::stable_sort(bs.begin(), bs.end(), [&](auto a, auto b) { return fluxOf(a) > fluxOf(b); });
    bs.resize(std::min<std::size_t>(bs.size(), config.patternSources));
    std::vector<std::size_t> br(refRows.size());
    std::iota(br.begin(), br.end(), std::size_t{0});
    auto magOf = [&](std::size_t a) {
        double m = mag[refRows[a]];
        return std::isfinite(m) ? m : std::numeric_limits<double>::infinity();
    };
    std::stable_sort(br.begin(), br.end(), [&](auto a, auto b) { return magOf(a) < magOf(b); });
    // The references usually cover the detector grown by the allowed header offset, a larger
    // area than the sources; on a small detector most of the brightest references then fall
    // outside it and too few pair with the brightest sources. Keep as many references as make
    // `patternReferences` inside the sources' extent (at most 4x as many, to bound the cost).
    std::size_t nRef = config.patternReferences;
    if (!srcTp.empty()) {
        Eigen::Vector2d lo = srcTp.front(), hi = srcTp.front();
        for (const auto& p : srcTp) {
            lo = lo.cwiseMin(p);
            hi = hi.cwiseMax(p);
        }
        std::size_t inside = 0;
        for (const auto& p : refTp)
            inside += (p.array() >= lo.array()).all() && (p.array() <= hi.array()).all();
        if (inside > 0 && inside < refTp.size())
            nRef = std::min<std::size_t>(
                4 * nRef, static_cast<std::size_t>(std::ceil(double(nRef) * double(refTp.size()) /
                                                             double(inside))));
    }
    br.resize(std::min<std::size_t>(br.size(), nRef));
    std::vector<Eigen::Vector2d> bSrc, bRef;
    for (auto i : bs) bSrc.push_back(srcTp[i]);
    for (auto k : br) bRef.push_back(refTp[k]);

    std::vector<RefPair> refPairs;
    for (std::size_t k = 0; k < bRef.size(); ++k)
        for (std::size_t l = 0; l < bRef.size(); ++l) {
            if (k == l) continue;
            Eigen::Vector2d d = bRef[l] - bRef[k];
            refPairs.push_back({d.norm(), std::atan2(d[1], d[0]), k, l});
        }
    std::sort(refPairs.begin(), refPairs.end(), [](const RefPair& a, const RefPair& b) {
        return std::tie(a.length, a.k, a.l) < std::tie(b.length, b.k, b.l);
    });
    const double tol = config.patternTolerance.asArcseconds();
    Similarity best;
    int bestCount = -1;
    double bestSumSq = 0;
    for (std::size_t i = 0; i < bSrc.size(); ++i)
        for (std::size_t j = i + 1; j < bSrc.size(); ++j) {
            Eigen::Vector2d d = bSrc[j] - bSrc[i];
            double len = d.norm();
            if (len < config.minPairLength.asArcseconds()) continue;
            double ang = std::atan2(d[1], d[0]);
            double lenTol = tol + config.maxScaleError * len;
            auto it = std::lower_bound(refPairs.begin(), refPairs.end(), len - lenTol,
                                       [](const RefPair& p, double v) { return p.length < v; });
            for (; it != refPairs.end() && it->length <= len + lenTol; ++it) {
                Similarity t;
                t.scale = it->length / len;
                t.theta = std::remainder(it->angle - ang, 2 * std::numbers::pi);
                if (std::abs(t.theta) > config.maxRotation.asRadians() + tol / len) continue;
                if (std::abs(t.scale - 1) > config.maxScaleError + tol / len) continue;
                t.shift = Eigen::Vector2d::Zero();
                t.shift = bRef[it->k] - t.apply(bSrc[i]);
                if (t.shift.norm() > config.maxOffset.asArcseconds() + tol) continue;
                double sumSq;
                int count = verify(t, bSrc, bRef, tol, &sumSq, nullptr);
                if (count > bestCount || (count == bestCount && sumSq < bestSumSq)) {
                    best = t;
                    bestCount = count;
                    bestSumSq = sumSq;
                }
            }
        }
    sum.patternMatches = std::max(bestCount, 0);
    if (bestCount < config.minPatternMatches)
        throw failed("no pattern match: best transform verified " +
                     std::to_string(std::max(bestCount, 0)) + " of the " +
                     std::to_string(bSrc.size()) + " brightest sources against " +
                     std::to_string(bRef.size()) + " references (need " +
                     std::to_string(config.minPatternMatches) + "); header WCS off by more than " +
                     std::to_string(config.maxOffset.asArcseconds()) + " arcsec / " +
                     std::to_string(config.maxRotation.asDegrees()) + " deg, or wrong field");
    sum.patternRotation = radians(best.theta);
    sum.patternScale = best.scale;
    sum.patternOffset = arcseconds(best.shift.norm());

    // ---- Iterative matching and fitting
    // Start model: header WCS followed by the pattern transform in the tangent plane.
    std::vector<SpherePoint> predicted(pix.size());
    for (std::size_t i = 0; i < pix.size(); ++i)
        predicted[i] = plane.deproject(best.apply(srcTp[i]) / 3600.0);

    double radius = config.initialMatchRadius.asArcseconds();
    std::vector<std::pair<std::size_t, std::size_t>> prevPairs;
    SipFit fit;
    std::vector<SkyMatch> matches;
    std::vector<char> used;
    int order = 1;
    bool converged = false;
    auto usedPairs = [&] {
        SipFitInput in;
        for (std::size_t m = 0; m < matches.size(); ++m) {
            if (!used[m]) continue;
            in.pixels.push_back(pix[matches[m].a]);
            in.sky.push_back(refSky[matches[m].b]);
            in.sigma.push_back(sigma[matches[m].a]);
        }
        return in;
    };
    for (int iter = 1; iter <= config.maxIterations && !converged; ++iter) {
        sum.iterations = iter;
        matches = matchNearest(predicted, refSky, arcseconds(radius));
        if (matches.size() < static_cast<std::size_t>(config.minMatches))
            throw failed("too few matches: " + std::to_string(matches.size()) + " within " +
                         std::to_string(radius) + " arcsec (need " +
                         std::to_string(config.minMatches) + ")");
        std::vector<std::pair<std::size_t, std::size_t>> pairs;
        for (auto& m : matches) pairs.emplace_back(m.a, m.b);
        used.assign(matches.size(), 1);
        // Fit with σ-clipping: the scale of the normalised residuals is estimated robustly
        // (median of |r|²/σ², which is 2 ln 2 for a 2-D Gaussian), so wrong errors do not turn the
        // clipping off or on wholesale.
        for (int clipRound = 0; clipRound < 20; ++clipRound) {
            SipFitInput in = usedPairs();
            if (in.pixels.size() < static_cast<std::size_t>(config.minMatches))
                throw failed("too few matches after clipping: " + std::to_string(in.pixels.size()));
            fit = fitTanSip(in, centre, centreSky, order, 0, box);
            SipTangentPlane fp(fit.crval);
            std::vector<double> chi(matches.size());
            std::vector<double> chiUsed;
            for (std::size_t m = 0; m < matches.size(); ++m) {
                Eigen::Vector2d r =
                    (fp.project(refSky[matches[m].b]) - fp.project(fit.apply(pix[matches[m].a]))) *
                    3600.0;
                chi[m] = r.norm() / sigma[matches[m].a];
                if (used[m]) chiUsed.push_back(chi[m] * chi[m]);
            }
            std::nth_element(chiUsed.begin(), chiUsed.begin() + chiUsed.size() / 2, chiUsed.end());
            double scale =
                std::max(1.0, std::sqrt(chiUsed[chiUsed.size() / 2] / (2 * std::log(2.0))));
            bool clipped = false;
            for (std::size_t m = 0; m < matches.size(); ++m)
                if (used[m] && chi[m] > config.clipSigma * scale) {
                    used[m] = 0;
                    clipped = true;
                }
            if (!clipped) break;
        }
        double ss = 0;
        std::size_t nu = 0;
        for (std::size_t m = 0, u = 0; m < matches.size(); ++m) {
            if (!used[m]) continue;
            ss += fit.residualsMas[u++].squaredNorm();
            ++nu;
        }
        double rmsArcsec = std::sqrt(ss / (2.0 * static_cast<double>(nu))) / 1000.0;
        double newRadius = std::clamp(config.radiusFactor * rmsArcsec * std::sqrt(2.0),
                                      config.finalMatchRadius.asArcseconds(), radius);
        converged = order == config.sipOrder && pairs == prevPairs && newRadius == radius;
        prevPairs = pairs;
        radius = newRadius;
        order = config.sipOrder;
        for (std::size_t i = 0; i < pix.size(); ++i) predicted[i] = fit.apply(pix[i]);
    }

    // ---- Final fit with the inverse polynomials, and the result
    SipFitInput in = usedPairs();
    fit = fitTanSip(in, centre, centreSky, config.sipOrder,
                    config.sipOrder >= 2 ? config.inverseSipOrder : 0, box);
    result.wcs = fit.makeWcs();
    sum.numMatches = in.pixels.size();
    sum.numClipped = matches.size() - in.pixels.size();
    sum.chi2 = fit.chi2;
    sum.dof = fit.dof;
    sum.maxInverseErrorPixels = fit.maxInverseErrorPixels;
    double ss = 0;
    for (auto& r : fit.residualsMas) ss += r.squaredNorm();
    sum.rmsMas = std::sqrt(ss / (2.0 * static_cast<double>(fit.residualsMas.size())));

    auto& mSrc =
        result.matches.addColumn<std::int64_t>("source_row", "", "Row in the source table");
    auto& mRef =
        result.matches.addColumn<std::int64_t>("ref_row", "", "Row in the reference table");
    auto& mDx =
        result.matches.addColumn<double>("dxi", "mas", "Reference - model, east (tangent plane)");
    auto& mDy =
        result.matches.addColumn<double>("deta", "mas", "Reference - model, north (tangent plane)");
    auto& mSig =
        result.matches.addColumn<double>("sigma", "mas", "Per-coordinate error used in the fit");
    auto& mUsed = result.matches.addColumn<Bool>("used", "", "Kept in the final fit (not clipped)");
    SipTangentPlane fp(fit.crval);
    for (std::size_t m = 0; m < matches.size(); ++m) {
        Eigen::Vector2d r =
            (fp.project(refSky[matches[m].b]) - fp.project(fit.apply(pix[matches[m].a]))) * 3.6e6;
        mSrc.push_back(static_cast<std::int64_t>(srcRows[matches[m].a]));
        mRef.push_back(static_cast<std::int64_t>(refRows[matches[m].b]));
        mDx.push_back(r[0]);
        mDy.push_back(r[1]);
        mSig.push_back(sigma[matches[m].a] * 1000.0);
        mUsed.push_back(used[m] != 0);
    }
    result.fit = std::move(fit);
    if (sum.rmsMas > config.maxRmsResidual.asMilliarcseconds())
        throw failed("residual rms " + std::to_string(sum.rmsMas) + " mas exceeds maxRmsResidual " +
                     std::to_string(config.maxRmsResidual.asMilliarcseconds()) + " mas (" +
                     std::to_string(sum.numMatches) + " matches)");
    return result;
}

}  // namespace drp
