#include "drp/calib/photometry.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <vector>

#include "drp/core/error.h"

namespace drp::calib {

namespace {

// ∫ √(r² − u²) du from −r to X: the primitive (u√(r²−u²) + r² asin(u/r)) / 2.
double primitive(double u, double r) {
    u = std::clamp(u, -r, r);
    return 0.5 * (u * std::sqrt(std::max(0.0, r * r - u * u)) + r * r * std::asin(u / r));
}

// Area of the disc (radius r, centred at 0) with u ≤ X and v ≤ y:
// ∫_{−r}^{X} [clamp(y, −s(u), s(u)) + s(u)] du,  s(u) = √(r² − u²).
double quadrantArea(double X, double y, double r) {
    X = std::clamp(X, -r, r);
    if (y >= r) return 2 * (primitive(X, r) - primitive(-r, r));
    if (y <= -r) return 0.0;
    double a = std::sqrt(r * r - y * y);
    // Integral of (y + s) over [lo, hi] ∩ [−r, X], and of 2s (y ≥ 0) or 0 (y < 0) outside [−a, a].
    auto part = [&](double lo, double hi, bool inner) {
        hi = std::min(hi, X);
        if (hi <= lo) return 0.0;
        double is = primitive(hi, r) - primitive(lo, r);
        if (inner) return y * (hi - lo) + is;
        return y >= 0 ? 2 * is : 0.0;
    };
    return part(-r, -a, false) + part(-a, a, true) + part(a, r, false);
}

}  // namespace

double circleRectangleOverlap(double cx, double cy, double r, double x0, double x1, double y0,
                              double y1) {
    if (!(r > 0) || x1 <= x0 || y1 <= y0) return 0.0;
    double a = quadrantArea(x1 - cx, y1 - cy, r) - quadrantArea(x0 - cx, y1 - cy, r) -
               quadrantArea(x1 - cx, y0 - cy, r) + quadrantArea(x0 - cx, y0 - cy, r);
    return std::max(0.0, a);
}

namespace {

// quadrantArea on a grid of pixel corners, for one aperture: the primitives at the corner
// abscissae, at ±a(y) of each corner row and at ±r are computed once, and the area at each
// corner at most once (lazily: only corners of boundary pixels are needed). Same arithmetic as
// quadrantArea, so the same values.
class CornerAreas {
  public:
    // Corner abscissae X_i = (x0 + i − ½) − cx, i = 0..nx; ordinates Y_j likewise.
    CornerAreas(double cx, double cy, double r, int x0, int nx, int y0, int ny)
        : _r(r), _nx(nx), _pnr(primitive(-r, r)), _ppr(primitive(r, r)) {
        _X.resize(nx + 1);
        _PX.resize(nx + 1);
        for (int i = 0; i <= nx; ++i) {
            _X[i] = std::clamp((x0 + i - 0.5) - cx, -r, r);
            _PX[i] = primitive(_X[i], r);
        }
        _Y.resize(ny + 1);
        _a.resize(ny + 1);
        _Pna.resize(ny + 1);
        _Ppa.resize(ny + 1);
        for (int j = 0; j <= ny; ++j) {
            const double y = _Y[j] = (y0 + j - 0.5) - cy;
            if (y > -r && y < r) {
                _a[j] = std::sqrt(r * r - y * y);
                _Pna[j] = primitive(-_a[j], r);
                _Ppa[j] = primitive(_a[j], r);
            }
        }
        _q.assign(std::size_t(nx + 1) * (ny + 1), NAN);
    }
    // Area of the disc with u ≤ X_i and v ≤ Y_j.
    double at(int i, int j) {
        double& q = _q[std::size_t(j) * (_nx + 1) + i];
        if (std::isnan(q)) q = compute(i, j);
        return q;
    }
    // Overlap of the disc with the pixel between corners (i, j) and (i + 1, j + 1).
    double pixel(int i, int j) {
        return std::max(0.0, at(i + 1, j + 1) - at(i, j + 1) - at(i + 1, j) + at(i, j));
    }

  private:
    double compute(int i, int j) const {
        const double X = _X[i], PX = _PX[i], y = _Y[j], r = _r;
        if (y >= r) return 2 * (PX - _pnr);
        if (y <= -r) return 0.0;
        const double a = _a[j];
        auto part = [&](double lo, double plo, double hi, double phi, bool inner) {
            if (X < hi) {
                hi = X;
                phi = PX;
            }
            if (hi <= lo) return 0.0;
            double is = phi - plo;
            if (inner) return y * (hi - lo) + is;
            return y >= 0 ? 2 * is : 0.0;
        };
        return part(-r, _pnr, -a, _Pna[j], false) + part(-a, _Pna[j], a, _Ppa[j], true) +
               part(a, _Ppa[j], r, _ppr, false);
    }

    double _r;
    int _nx;
    double _pnr, _ppr;
    std::vector<double> _X, _PX, _Y, _a, _Pna, _Ppa, _q;
};

}  // namespace

ApertureFlux measureApertureFlux(const MaskedImage& mi, Point2D c, double radius,
                                 MaskPixel badBits) {
    ApertureFlux out;
    const Box2I box = mi.bbox();
    Box2I need = Box2I::fromCorners(
        {int(std::floor(c.x - radius + 0.5)), int(std::floor(c.y - radius + 0.5))},
        {int(std::ceil(c.x + radius - 0.5)), int(std::ceil(c.y + radius - 0.5))});
    Box2I clip = need.clippedTo(box);
    out.truncated = clip != need;
    if (clip.empty()) {
        out.flux = out.fluxErr = 0;
        return out;
    }
    double f = 0, v = 0, area = 0;
    const double r2 = radius * radius;
    CornerAreas corners(c.x, c.y, radius, clip.minX(), clip.width(), clip.minY(), clip.height());
    for (int y = clip.minY(); y <= clip.maxY(); ++y) {
        const int j = y - box.minY();
        const float* im = mi.image().row(j);
        const float* var = mi.variance().row(j);
        const MaskPixel* mk = mi.mask().image().row(j);
        double dy0 = y - 0.5 - c.y, dy1 = y + 0.5 - c.y;
        double ny = std::min(dy0 * dy0, dy1 * dy1), fy = std::max(dy0 * dy0, dy1 * dy1);
        if (dy0 < 0 && dy1 > 0) ny = 0;
        for (int x = clip.minX(); x <= clip.maxX(); ++x) {
            double dx0 = x - 0.5 - c.x, dx1 = x + 0.5 - c.x;
            double nx = std::min(dx0 * dx0, dx1 * dx1), fx = std::max(dx0 * dx0, dx1 * dx1);
            if (dx0 < 0 && dx1 > 0) nx = 0;
            double w;
            if (fx + fy <= r2)
                w = 1.0;  // farthest corner inside
            else if (nx + ny >= r2)
                continue;  // nearest point outside
            else
                w = corners.pixel(x - clip.minX(), y - clip.minY());
            const int i = x - box.minX();
            if (mk[i] & badBits) out.badPixels = true;
            if (!std::isfinite(im[i])) {
                out.badPixels = true;
                continue;
            }
            f += w * im[i];
            v += w * w * var[i];
            area += w;
        }
    }
    out.flux = f;
    out.fluxErr = std::sqrt(std::max(v, 0.0));
    out.area = area;
    return out;
}

PsfFlux measurePsfFlux(const MaskedImage& mi, const Psf& psf, Point2D c, MaskPixel badBits) {
    PsfFlux out;
    Image<double> p = psf.computeImage(c);
    Box2I clip = p.bbox().clippedTo(mi.bbox());
    out.edge = clip != p.bbox();
    // One pass: the sums for F and σ_F, plus Σ D²/V, Σ P D/V, Σ P²/V so that
    // χ² = Σ (D − F P)² / V = Σ D²/V − 2F Σ P D/V + F² Σ P²/V needs no second pass.
    double spd = 0, spp = 0, sp = 0, sppv = 0, sddw = 0, spdw = 0, sppw = 0;
    int n = 0;
    for (int y = clip.minY(); y <= clip.maxY(); ++y)
        for (int x = clip.minX(); x <= clip.maxX(); ++x) {
            int i = x - mi.bbox().minX(), j = y - mi.bbox().minY();
            float d = mi.image()(i, j), v = mi.variance()(i, j);
            if ((mi.mask()(i, j) & badBits) || !std::isfinite(d) || !(v > 0)) continue;
            double pv = p(x - p.bbox().minX(), y - p.bbox().minY());
            spd += pv * d;
            spp += pv * pv;
            sp += pv;
            sppv += pv * pv * v;
            sddw += double(d) * d / v;
            spdw += pv * d / v;
            sppw += pv * pv / v;
            ++n;
        }
    if (n == 0 || !(spp > 0)) {
        out.failed = true;
        return out;
    }
    out.flux = spd / spp;
    out.fluxErr = std::sqrt(sppv) / spp;
    out.numPixels = n;
    out.effectiveArea = sp * sp / spp;
    out.chi2 = std::max(0.0, sddw - 2 * out.flux * spdw + out.flux * out.flux * sppw);
    return out;
}

void ApertureCorrectionConfig::validate() const {
    auto fail = [](const std::string& what) {
        throw configError("ApertureCorrectionConfig: " + what);
    };
    if (order < 0 || order > 4) fail("order = " + std::to_string(order) + " must be in 0..4");
    if (!(clipSigma > 0)) fail("clipSigma must be > 0");
    if (clipIterations < 0) fail("clipIterations must be >= 0");
    if (minStarsPerTerm < 1) fail("minStarsPerTerm must be >= 1");
}

namespace {

std::vector<double> polyBasis(const Box2I& b, int order, Point2D p) {
    double u = 2 * (p.x - b.minX()) / std::max(1, b.width() - 1) - 1;
    double v = 2 * (p.y - b.minY()) / std::max(1, b.height() - 1) - 1;
    std::vector<double> x;
    for (int d = 0; d <= order; ++d)
        for (int k = 0; k <= d; ++k) x.push_back(std::pow(u, d - k) * std::pow(v, k));
    return x;
}

}  // namespace

ApertureCorrection::ApertureCorrection(Box2I bbox, int order, std::vector<double> coef, double rms,
                                       int n)
    : _bbox(bbox), _order(order), _coef(std::move(coef)), _rms(rms), _n(n) {
    if (_coef.size() != std::size_t((order + 1) * (order + 2) / 2))
        throw badInput("ApertureCorrection: wrong number of coefficients for order " +
                       std::to_string(order));
}

double ApertureCorrection::evaluate(Point2D p) const {
    auto x = polyBasis(_bbox, _order, p);
    double s = 0;
    for (std::size_t k = 0; k < x.size(); ++k) s += x[k] * _coef[k];
    return s;
}

ApertureCorrection fitApertureCorrection(const Box2I& bbox, const std::vector<Point2D>& pos,
                                         const std::vector<double>& calib,
                                         const std::vector<double>& psf,
                                         const ApertureCorrectionConfig& config) {
    return fitApertureCorrection(bbox, pos, calib, {}, psf, {}, config);
}

ApertureCorrection fitApertureCorrection(const Box2I& bbox, const std::vector<Point2D>& pos,
                                         const std::vector<double>& calib,
                                         const std::vector<double>& calibErr,
                                         const std::vector<double>& psf,
                                         const std::vector<double>& psfErr,
                                         const ApertureCorrectionConfig& config) {
    config.validate();
    const bool weighted = !calibErr.empty() || !psfErr.empty();
    if (weighted && (calibErr.size() != calib.size() || psfErr.size() != psf.size()))
        throw badInput("fitApertureCorrection: flux and error vectors differ in length");
    std::vector<Point2D> p;
    std::vector<double> ratio, sig;  // sig: the ratio's 1-sigma error (1 when unweighted)
    for (std::size_t k = 0; k < pos.size(); ++k) {
        const double rt = calib[k] / psf[k];
        if (!std::isfinite(rt) || !(psf[k] > 0)) continue;
        double s = 1.0;
        if (weighted) {
            // Independent errors (the PSF and aperture fluxes share pixels, so this slightly
            // overestimates the error, equally for every star: the weights' ratios are right).
            s = std::abs(rt) * std::hypot(calibErr[k] / calib[k], psfErr[k] / psf[k]);
            if (!(s > 0) || !std::isfinite(s)) continue;
        }
        p.push_back(pos[k]);
        ratio.push_back(rt);
        sig.push_back(s);
    }
    if (ratio.empty()) return ApertureCorrection(bbox, 0, {1.0}, 0.0, 0);
    int order = config.order;
    while (order > 0 &&
           ratio.size() < std::size_t(config.minStarsPerTerm * (order + 1) * (order + 2) / 2))
        --order;
    const int nt = (order + 1) * (order + 2) / 2;
    std::vector<std::uint8_t> use(ratio.size(), 1);
    Eigen::VectorXd coef;
    double sigma = 0;
    for (int it = 0; it <= config.clipIterations; ++it) {
        Eigen::MatrixXd A = Eigen::MatrixXd::Zero(nt, nt);
        Eigen::VectorXd b = Eigen::VectorXd::Zero(nt);
        for (std::size_t k = 0; k < ratio.size(); ++k) {
            if (!use[k]) continue;
            auto x = polyBasis(bbox, order, p[k]);
            Eigen::Map<const Eigen::VectorXd> xv(x.data(), nt);
            const double w = 1.0 / (sig[k] * sig[k]);
            A += w * xv * xv.transpose();
            b += w * xv * ratio[k];
        }
        coef = A.ldlt().solve(b);
        // Clipping on normalised residuals (res/sig) with a MAD scale: with weights, a faint
        // star's large deviation is not an outlier, a bright star's small one may be.
        std::vector<double> chi(ratio.size()), absKept, absRes;
        for (std::size_t k = 0; k < ratio.size(); ++k) {
            auto x = polyBasis(bbox, order, p[k]);
            double m = 0;
            for (int t = 0; t < nt; ++t) m += x[t] * coef(t);
            chi[k] = (ratio[k] - m) / sig[k];
            if (use[k]) {
                absKept.push_back(std::abs(chi[k]));
                absRes.push_back(std::abs(ratio[k] - m));
            }
        }
        std::nth_element(absKept.begin(), absKept.begin() + absKept.size() / 2, absKept.end());
        std::nth_element(absRes.begin(), absRes.begin() + absRes.size() / 2, absRes.end());
        const double chiScale = 1.4826 * absKept[absKept.size() / 2];
        sigma = 1.4826 * absRes[absRes.size() / 2];
        if (it == config.clipIterations || !(chiScale > 0)) break;
        std::size_t kept = 0;
        for (std::size_t k = 0; k < ratio.size(); ++k)
            kept += use[k] = std::abs(chi[k]) <= config.clipSigma * chiScale;
        if (kept < std::size_t(nt)) break;
    }
    int n = 0;
    for (auto u : use) n += u;
    return ApertureCorrection(bbox, order, std::vector<double>(coef.data(), coef.data() + nt),
                              sigma, n);
}

double MoffatWings::fluxBeyond(double r) const {
    if (!valid) return 0.0;
    return amplitude * M_PI * alpha * alpha / (beta - 1) *
           std::pow(1 + r * r / (alpha * alpha), 1 - beta);
}

MoffatWings fitMoffatWings(const Image<double>& kernel, double minRadius) {
    // Pixels of the wings: r² and value.
    std::vector<double> r2, k;
    const Box2I b = kernel.bbox();
    for (int y = b.minY(); y <= b.maxY(); ++y)
        for (int x = b.minX(); x <= b.maxX(); ++x) {
            const double q = double(x) * x + double(y) * y;
            if (q < minRadius * minRadius) continue;
            r2.push_back(q);
            k.push_back(kernel(x - b.minX(), y - b.minY()));
        }
    MoffatWings out;
    if (r2.size() < 8) return out;
    // For fixed (α, β) the amplitude is linear: A = Σ K M / Σ M², and χ² = Σ K² − (Σ K M)² / Σ M²,
    // so the best (α, β) maximises (Σ K M)² / Σ M² with Σ K M > 0. Grid in (ln α, β), then two
    // finer grids around the best node; M = exp(−β ln(1 + r²/α²)) with the logarithms computed
    // once per α.
    constexpr double kLnAlphaMin = -0.6931471805599453,
                     kLnAlphaMax = 3.4011973816621555;  // 0.5, 30
    constexpr double kBetaMin = 1.05, kBetaMax = 12.0;
    auto score = [&](double lnAlpha, double beta, double* amp) {
        const double ia2 = std::exp(-2 * lnAlpha);
        double skm = 0, smm = 0;
        for (std::size_t q = 0; q < r2.size(); ++q) {
            const double m = std::exp(-beta * std::log1p(r2[q] * ia2));
            skm += k[q] * m;
            smm += m * m;
        }
        if (amp) *amp = smm > 0 ? skm / smm : 0;
        return skm > 0 && smm > 0 ? skm * skm / smm : -1.0;
    };
    double bestA = 0, bestB = 0, best = -1;
    double stepA = (kLnAlphaMax - kLnAlphaMin) / 40, stepB = 0.25;
    for (double la = kLnAlphaMin; la <= kLnAlphaMax + 1e-12; la += stepA)
        for (double be = kBetaMin; be <= kBetaMax + 1e-12; be += stepB) {
            const double s = score(la, be, nullptr);
            if (s > best) best = s, bestA = la, bestB = be;
        }
    if (!(best > 0)) return out;
    for (int round = 0; round < 3; ++round) {
        const double a0 = bestA, b0 = bestB;
        const double sa = stepA / 5, sb = stepB / 5;
        for (int i = -5; i <= 5; ++i)
            for (int j = -5; j <= 5; ++j) {
                const double la = std::clamp(a0 + i * sa, kLnAlphaMin, kLnAlphaMax);
                const double be = std::clamp(b0 + j * sb, kBetaMin, kBetaMax);
                const double s = score(la, be, nullptr);
                if (s > best) best = s, bestA = la, bestB = be;
            }
        stepA /= 5;
        stepB /= 5;
    }
    const bool onBound = bestA <= kLnAlphaMin + 1e-9 || bestA >= kLnAlphaMax - 1e-9 ||
                         bestB <= kBetaMin + 1e-9 || bestB >= kBetaMax - 1e-9;
    double amp = 0;
    score(bestA, bestB, &amp);
    out.amplitude = amp;
    out.alpha = std::exp(bestA);
    out.beta = bestB;
    out.valid = !onBound && amp > 0;
    return out;
}

}  // namespace drp::calib
