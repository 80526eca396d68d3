#include "drp/multifit/fitter.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include <Eigen/Dense>

#include "drp/core/error.h"
#include "drp/multifit/profiles.h"

namespace drp::multifit {

const char* modelName(ModelKind k) {
    switch (k) {
        case ModelKind::Point:
            return "point";
        case ModelKind::Exponential:
            return "exp";
        case ModelKind::DeVaucouleurs:
            return "dev";
    }
    return "?";
}

void FitConfig::validate() const {
    if (maxIterations < 1)
        throw configError("multifit.maxIterations must be >= 1, got " +
                          std::to_string(maxIterations));
    if (!(relTolerance > 0)) throw configError("multifit.relTolerance must be > 0");
    if (!(minRadius > 0 && maxRadius > minRadius))
        throw configError("multifit radius limits must satisfy 0 < minRadius < maxRadius");
    if (!(chi2Tolerance >= 0)) throw configError("multifit.chi2Tolerance must be >= 0");
    if (!(renderNSigma >= 3)) throw configError("multifit.renderNSigma must be >= 3");
}

namespace {
// |η| limit: axis ratio b/a = exp(-|η|) >= 0.1, e = tanh(ln 10) = 0.980. Real galaxies are no
// thinner in projection (edge-on disks have b/a ~ 0.1-0.2); a thinner model is a runaway.
constexpr double kMaxEta = 2.302585092994046;

/// Unit-determinant shape matrix M(η) = exp([[η1, η2], [η2, −η1]]) and its derivatives.
struct Shape {
    Eigen::Matrix2d m, d1, d2;
};

Shape shapeMatrix(double s1, double s2) {
    double lam = std::hypot(s1, s2);
    double ch = std::cosh(lam);
    // f = sinh λ / λ and g = (λ cosh λ − sinh λ)/λ³ (so that ∂f/∂s_i = g s_i), by series near 0.
    double f, g;
    if (lam < 1e-4) {
        f = 1 + lam * lam / 6;
        g = 1.0 / 3 + lam * lam / 30;
    } else {
        f = std::sinh(lam) / lam;
        g = (lam * ch - std::sinh(lam)) / (lam * lam * lam);
    }
    Eigen::Matrix2d s;
    s << s1, s2, s2, -s1;
    Shape out;
    out.m = ch * Eigen::Matrix2d::Identity() + f * s;
    // ∂cosh λ/∂s_i = sinh λ s_i / λ = f s_i
    Eigen::Matrix2d e1, e2;
    e1 << 1, 0, 0, -1;
    e2 << 0, 1, 1, 0;
    out.d1 = f * s1 * Eigen::Matrix2d::Identity() + g * s1 * s + f * e1;
    out.d2 = f * s2 * Eigen::Matrix2d::Identity() + g * s2 * s + f * e2;
    return out;
}

void etaFromE(double e1, double e2, double& s1, double& s2) {
    double e = std::hypot(e1, e2);
    if (e < 1e-12) {
        s1 = s2 = 0;
        return;
    }
    double eta = std::atanh(std::min(e, 0.99));
    s1 = eta * e1 / e;
    s2 = eta * e2 / e;
}

void eFromEta(double s1, double s2, double& e1, double& e2) {
    double lam = std::hypot(s1, s2);
    if (lam < 1e-12) {
        e1 = e2 = 0;
        return;
    }
    double t = std::tanh(lam);
    e1 = t * s1 / lam;
    e2 = t * s2 / lam;
}

/// Galaxy components narrower than this fraction of the PSF's smallest variance are merged
/// when rendering (renderEpoch).
constexpr double kMergeFraction = 0.1;

/// Eigenvalues of a symmetric 2×2 matrix.
double maxEigenvalue(const Eigen::Matrix2d& m) {
    const double h = 0.5 * (m(0, 0) + m(1, 1));
    return h + std::hypot(0.5 * (m(0, 0) - m(1, 1)), m(0, 1));
}
double minEigenvalue(const Eigen::Matrix2d& m) {
    const double h = 0.5 * (m(0, 0) + m(1, 1));
    return h - std::hypot(0.5 * (m(0, 0) - m(1, 1)), m(0, 1));
}

int numShapeParams(ModelKind k) {
    return k == ModelKind::Point ? 2 : 5;
}

const RadialMixture& profileOf(ModelKind k) {
    return k == ModelKind::Exponential ? expMixture() : devMixture();
}

/// The unit-flux template of one epoch (counts per nJy) and its derivatives w.r.t. θ, over the
/// pixels of the epoch's cutout (row-major, same order as the image).
struct Rendered {
    Eigen::VectorXd t;
    Eigen::MatrixXd dt;       // npix × nθ, column-major: each derivative image is contiguous
    std::vector<double> row;  // scratch: one row of a Gaussian's values
};

/// One elliptical Gaussian of the rendered mixture, in the epoch's pixel frame.
struct PixelGaussian {
    double norm = 0;  ///< integral / (2π √det Σ): the peak value
    Eigen::Vector2d mu{0, 0};
    Eigen::Matrix2d cov, inv;
};

/// ∂Σ/∂(η1, η2, ln r) of one galaxy component in the pixel frame and tr(Σ⁻¹ ∂Σ).
struct ShapeDerivatives {
    Eigen::Matrix2d d1, d2, dl;
    double tr1 = 0, tr2 = 0, trl = 0;
};

enum class Derivs { None, Centre, CentreAndShape };

/// Fills v[0..n) with a Gaussian along one pixel row: v[i] = v0 ∏_{m<i} r0 decay^m, i.e.
/// G(x + 1) = G(x) ρ(x) and ρ(x + 1) = ρ(x) decay (decay = exp(−Σ⁻¹ₓₓ): m² is a quadratic in
/// x along a row). Four interleaved chains of stride 4 (G(x + 4) = G(x) R(x), R(x + 4) =
/// R(x) decay¹⁶, R(x) = ρ(x)⁴ decay⁶) keep the multiplications independent, so the loop runs at
/// the throughput rather than the latency of the multiplier.
void rowValues(double v0, double r0, double decay, int n, double* __restrict v) {
    double rho[4];
    v[0] = v0;
    rho[0] = r0;
    for (int j = 1; j < 4; ++j) rho[j] = rho[j - 1] * decay;
    for (int j = 1; j < std::min(n, 4); ++j) v[j] = v[j - 1] * rho[j - 1];
    if (n <= 4) return;
    const double d2 = decay * decay, d6 = d2 * d2 * d2, d16 = d6 * d6 * d2 * d2;
    double big[4];
    for (int j = 0; j < 4; ++j) {
        const double r2 = rho[j] * rho[j];
        big[j] = r2 * r2 * d6;
    }
    int i = 4;
    for (; i + 3 < n; i += 4)
        for (int j = 0; j < 4; ++j) {
            v[i + j] = v[i + j - 4] * big[j];
            big[j] *= d16;
        }
    for (int j = 0; i < n; ++i, ++j) v[i] = v[i - 4] * big[j];
}

/// Adds one Gaussian to the template `t` (and, per `D`, its derivatives to the columns of `dt`)
/// over the pixels of `box` where its Mahalanobis radius m satisfies m² < nSigma².
///
/// Speed (this is the inner loop of multifit): each row is walked along the chord of the ellipse
/// m² < nSigma² (solved in closed form); the Gaussian's values along it come from a
/// multiplicative recurrence (rowValues: three exp() per row instead of one per pixel). All
/// values on the chord are ≥ exp(−nSigma²/2) × peak, so nothing underflows, and the ≤ n/4 steps
/// of a chain cost ~n ulp of relative precision (≤ 1e-13 for our cutouts; the finite-difference
/// test of the derivatives in fitter_test holds to 1e-6 of their scale).
/// Derivatives: ∂G/∂μ = G q with q = Σ⁻¹(x − μ) (μ moves with (u, v) through A = uvToPixel),
/// ∂G/∂Σ·dΣ = ½ G (qᵀ dΣ q − tr(Σ⁻¹ dΣ)). Along a row q is linear in the pixel offset i from the
/// pixel nearest the centre, so each derivative is G times a polynomial in i (degree 1 for the
/// centre, 2 for the shape) whose coefficients are computed once per row: the per-pixel loop
/// has no dependency between pixels and vectorises.
template <Derivs D>
void addGaussian(const PixelGaussian& g, const Eigen::Matrix2d& a, const ShapeDerivatives* sd,
                 Box2I box, double nSigma, double* __restrict t, double* __restrict dt,
                 std::int64_t npix, double* __restrict v) {
    const int w = box.width();
    const double ixx = g.inv(0, 0), ixy = 0.5 * (g.inv(0, 1) + g.inv(1, 0)), iyy = g.inv(1, 1);
    const double cut = nSigma * nSigma;
    const double ry = nSigma * std::sqrt(g.cov(1, 1));
    const int y0 = std::max(box.minY(), static_cast<int>(std::floor(g.mu.y() - ry)));
    const int y1 = std::min(box.maxY(), static_cast<int>(std::ceil(g.mu.y() + ry)));
    const double stepDecay = std::exp(-ixx);
    double* __restrict d0 = dt;
    double* __restrict d1 = dt + npix;
    double* __restrict d2 = dt + 2 * npix;
    double* __restrict d3 = dt + 3 * npix;
    double* __restrict d4 = dt + 4 * npix;
    // Shape-derivative quadratic forms ½(Dxx qx² + 2 Dxy qx qy + Dyy qy² − tr) for the three
    // shape parameters.
    const Eigen::Matrix2d* sm[3] = {nullptr, nullptr, nullptr};
    double tr[3] = {0, 0, 0};
    if constexpr (D == Derivs::CentreAndShape) {
        sm[0] = &sd->d1;
        sm[1] = &sd->d2;
        sm[2] = &sd->dl;
        tr[0] = sd->tr1;
        tr[1] = sd->tr2;
        tr[2] = sd->trl;
    }
    const int xCentre = static_cast<int>(std::lround(g.mu.x()));
    for (int y = y0; y <= y1; ++y) {
        const double dy = y - g.mu.y();
        // Chord: ixx dx² + 2 ixy dy dx + iyy dy² < cut.
        const double b = ixy * dy;
        const double disc = b * b - ixx * (iyy * dy * dy - cut);
        if (!(disc > 0)) continue;
        const double sq = std::sqrt(disc);
        const int xa =
            std::max(box.minX(), static_cast<int>(std::ceil(g.mu.x() + (-b - sq) / ixx)));
        const int xb =
            std::min(box.maxX(), static_cast<int>(std::floor(g.mu.x() + (-b + sq) / ixx)));
        if (xa > xb) continue;
        const int n = xb - xa + 1;
        const double dx = xa - g.mu.x();
        rowValues(g.norm * std::exp(-0.5 * (dx * (ixx * dx + 2 * b) + iyy * dy * dy)),
                  std::exp(-0.5 * (ixx * (2 * dx + 1) + 2 * b)), stepDecay, n, v);
        const std::int64_t row = std::int64_t(y - box.minY()) * w + (xa - box.minX());
        double* __restrict tr0 = t + row;
        if constexpr (D == Derivs::None) {
            for (int i = 0; i < n; ++i) tr0[i] += v[i];
        } else {
            // q at pixel offset k from the pixel nearest the centre (x = xCentre + k):
            // qx = qx0 + ixx k, qy = qy0 + ixy k.
            const int i0 = xCentre - xa;  // index of that pixel in the row (may be outside)
            const double dxc = xCentre - g.mu.x();
            const double qx0 = ixx * dxc + b, qy0 = ixy * dxc + iyy * dy;
            const double c00 = qx0 * a(0, 0) + qy0 * a(1, 0), c01 = ixx * a(0, 0) + ixy * a(1, 0);
            const double c10 = qx0 * a(0, 1) + qy0 * a(1, 1), c11 = ixx * a(0, 1) + ixy * a(1, 1);
            double* __restrict r0 = d0 + row;
            double* __restrict r1 = d1 + row;
            if constexpr (D == Derivs::Centre) {
                for (int i = 0; i < n; ++i) {
                    const double k = i - i0;
                    tr0[i] += v[i];
                    r0[i] += v[i] * (c00 + c01 * k);
                    r1[i] += v[i] * (c10 + c11 * k);
                }
            } else {
                double p0[3], p1[3], p2[3];
                for (int s = 0; s < 3; ++s) {
                    const Eigen::Matrix2d& m = *sm[s];
                    const double mxx = m(0, 0), mxy = m(0, 1), myy = m(1, 1);
                    p0[s] = 0.5 * (mxx * qx0 * qx0 + 2 * mxy * qx0 * qy0 + myy * qy0 * qy0 - tr[s]);
                    p1[s] = mxx * qx0 * ixx + mxy * (qx0 * ixy + qy0 * ixx) + myy * qy0 * ixy;
                    p2[s] = 0.5 * (mxx * ixx * ixx + 2 * mxy * ixx * ixy + myy * ixy * ixy);
                }
                double* __restrict r2 = d2 + row;
                double* __restrict r3 = d3 + row;
                double* __restrict r4 = d4 + row;
                for (int i = 0; i < n; ++i) {
                    const double k = i - i0;
                    const double vi = v[i];
                    tr0[i] += vi;
                    r0[i] += vi * (c00 + c01 * k);
                    r1[i] += vi * (c10 + c11 * k);
                    r2[i] += vi * (p0[0] + k * (p1[0] + k * p2[0]));
                    r3[i] += vi * (p0[1] + k * (p1[1] + k * p2[1]));
                    r4[i] += vi * (p0[2] + k * (p1[2] + k * p2[2]));
                }
            }
        }
    }
}

/// Renders into `r`, reusing its buffers (no allocation when the sizes are unchanged).
void renderEpoch(const Epoch& ep, ModelKind kind, const Eigen::VectorXd& theta, bool derivs,
                 double nSigma, Rendered& r) {
    const int np = numShapeParams(kind);
    const Box2I box = ep.image.bbox();
    const std::int64_t npix = std::int64_t(box.width()) * box.height();
    r.t.setZero(npix);
    if (derivs) r.dt.setZero(npix, np);
    r.row.resize(static_cast<std::size_t>(box.width()));

    const Eigen::Matrix2d& a = ep.uvToPixel;
    const Eigen::Vector2d centre = ep.refPixel + a * Eigen::Vector2d(theta(0), theta(1));

    // Galaxy components in the pixel frame (before PSF): amplitude, covariance and its
    // derivatives w.r.t. (η1, η2, ln r).
    struct GalComp {
        double amp;
        Eigen::Matrix2d cov, d1, d2, dl;
    };
    std::vector<GalComp> gal;
    if (kind == ModelKind::Point) {
        gal.push_back({1.0, Eigen::Matrix2d::Zero(), Eigen::Matrix2d::Zero(),
                       Eigen::Matrix2d::Zero(), Eigen::Matrix2d::Zero()});
    } else {
        const RadialMixture& prof = profileOf(kind);
        Shape sh = shapeMatrix(theta(2), theta(3));
        double r2 = std::exp(2 * theta(4));
        Eigen::Matrix2d am = a * sh.m * a.transpose(), a1 = a * sh.d1 * a.transpose(),
                        a2 = a * sh.d2 * a.transpose();
        // Components much narrower than the PSF are merged into one with the same flux and
        // second moment (amplitude-weighted mean variance). Convolved with a PSF Gaussian of
        // variance V ≥ psfMinVar, a mixture Σ a_k N(V + v_k) and the merged N(V + v̄) differ
        // only at second order: ½ Var_a(v) ∂²N/∂V², ≤ (3/8) Var_a(v)/V² ≤ 3/32 kMerge² of the
        // merged components' peak (Var_a(v) ≤ (kMerge V)²/4) — ≤ 1e-3 for kMerge = 0.1, on the
        // ≲ 10% of the flux they carry: far below noise. It cuts a dev mixture (16 components)
        // to ~8 for typical sizes and to 1 for unresolved objects (Hogg & Lang 2013 make the
        // same point: only components resolved by the PSF matter).
        double psfMinVar = std::numeric_limits<double>::infinity();
        for (const auto& p : ep.psf.components())
            psfMinVar = std::min(psfMinVar, minEigenvalue(p.cov));
        const double mergeBelow = kMergeFraction * psfMinVar / (r2 * maxEigenvalue(am));
        double mergedAmp = 0, mergedVar = 0;
        for (std::size_t k = 0; k < prof.amplitudes.size(); ++k) {
            if (prof.variances[k] <= mergeBelow) {
                mergedAmp += prof.amplitudes[k];
                mergedVar += prof.amplitudes[k] * prof.variances[k];
                continue;
            }
            double s = prof.variances[k] * r2;
            gal.push_back({prof.amplitudes[k], s * am, s * a1, s * a2, 2 * s * am});
        }
        if (mergedAmp > 0) {
            double s = mergedVar / mergedAmp * r2;
            gal.push_back({mergedAmp, s * am, s * a1, s * a2, 2 * s * am});
        }
    }

    for (const auto& gc : gal) {
        for (const auto& p : ep.psf.components()) {
            PixelGaussian g;
            g.cov = gc.cov + p.cov;
            const double det = g.cov.determinant();
            if (!(det > 0)) continue;
            g.inv = g.cov.inverse();
            g.norm =
                ep.countsPerNJy * gc.amp * p.amplitude / (2 * std::numbers::pi * std::sqrt(det));
            g.mu = centre + p.mean;
            if (!derivs) {
                addGaussian<Derivs::None>(g, a, nullptr, box, nSigma, r.t.data(), nullptr, npix,
                                          r.row.data());
            } else if (kind == ModelKind::Point) {
                addGaussian<Derivs::Centre>(g, a, nullptr, box, nSigma, r.t.data(), r.dt.data(),
                                            npix, r.row.data());
            } else {
                ShapeDerivatives sd{gc.d1,
                                    gc.d2,
                                    gc.dl,
                                    (g.inv * gc.d1).trace(),
                                    (g.inv * gc.d2).trace(),
                                    (g.inv * gc.dl).trace()};
                addGaussian<Derivs::CentreAndShape>(g, a, &sd, box, nSigma, r.t.data(), r.dt.data(),
                                                    npix, r.row.data());
            }
        }
    }
}

Rendered renderEpoch(const Epoch& ep, ModelKind kind, const Eigen::VectorXd& theta, bool derivs,
                     double nSigma) {
    Rendered r;
    renderEpoch(ep, kind, theta, derivs, nSigma, r);
    return r;
}

/// χ² at θ with the fluxes at their conditional optimum, and (with derivatives) the normal
/// equations of the Gauss–Newton step.
struct Evaluation {
    double chi2 = 0;
    Eigen::VectorXd flux, fluxErrCond;
    std::vector<Rendered> rendered;
    /// Fisher matrix over (θ, per-band fluxes): JᵀWJ with J = [f ∂t/∂θ, t] (Gauss–Newton).
    Eigen::MatrixXd normal;
    /// JθᵀW r, the (half) negative gradient of χ² w.r.t. θ at the conditional fluxes.
    Eigen::VectorXd gradient;
    // Scratch buffers, kept so that repeated evaluations do not allocate.
    std::vector<Eigen::VectorXd> weightedTemplate;  // w ∘ t per epoch
    Eigen::VectorXd residual;
    Eigen::MatrixXd weightedDerivs;
};

/// Evaluates into `ev`, reusing its buffers.
void evaluate(const std::vector<Epoch>& epochs, int nBands, ModelKind kind,
              const Eigen::VectorXd& theta, bool derivs, double nSigma, Evaluation& ev) {
    const int np = numShapeParams(kind);
    ev.rendered.resize(epochs.size());
    ev.weightedTemplate.resize(epochs.size());
    Eigen::VectorXd td = Eigen::VectorXd::Zero(nBands), tt = Eigen::VectorXd::Zero(nBands);
    for (std::size_t e = 0; e < epochs.size(); ++e) {
        const Epoch& ep = epochs[e];
        renderEpoch(ep, kind, theta, derivs, nSigma, ev.rendered[e]);
        const auto& t = ev.rendered[e].t;
        const Eigen::Map<const Eigen::VectorXd> d(ep.image.data(), t.size()),
            w(ep.inverseVariance.data(), t.size());
        Eigen::VectorXd& wt = ev.weightedTemplate[e];
        wt = w.cwiseProduct(t);
        td(ep.band) += wt.dot(d);
        tt(ep.band) += wt.dot(t);
    }
    ev.flux = Eigen::VectorXd::Zero(nBands);
    ev.fluxErrCond = Eigen::VectorXd::Constant(nBands, std::numeric_limits<double>::quiet_NaN());
    for (int b = 0; b < nBands; ++b) {
        if (tt(b) > 0) {
            ev.flux(b) = td(b) / tt(b);
            ev.fluxErrCond(b) = 1 / std::sqrt(tt(b));
        }
    }
    ev.chi2 = 0;
    if (derivs) {
        ev.normal.setZero(np + nBands, np + nBands);
        ev.gradient.setZero(np);
    }
    for (std::size_t e = 0; e < epochs.size(); ++e) {
        const Epoch& ep = epochs[e];
        const Rendered& rd = ev.rendered[e];
        const Eigen::Map<const Eigen::VectorXd> d(ep.image.data(), rd.t.size()),
            w(ep.inverseVariance.data(), rd.t.size());
        const double f = ev.flux(ep.band);
        ev.residual = d - f * rd.t;
        ev.chi2 += w.dot(ev.residual.cwiseAbs2());
        if (!derivs) continue;
        // Blocks of JᵀWJ: θθ = f² ∂tᵀW∂t, θ-flux = f ∂tᵀWt, flux-flux = tᵀWt.
        ev.weightedDerivs = w.asDiagonal() * rd.dt;
        ev.normal.topLeftCorner(np, np).noalias() +=
            (f * f) * (rd.dt.transpose() * ev.weightedDerivs);
        ev.normal.block(0, np + ep.band, np, 1).noalias() +=
            f * (rd.dt.transpose() * ev.weightedTemplate[e]);
        ev.normal(np + ep.band, np + ep.band) += ev.weightedTemplate[e].dot(rd.t);
        ev.gradient.noalias() += f * (ev.weightedDerivs.transpose() * ev.residual);
    }
    if (derivs)
        ev.normal.bottomLeftCorner(nBands, np) = ev.normal.topRightCorner(np, nBands).transpose();
}

/// The Gauss–Newton matrix of θ with the fluxes profiled out (variable projection, Golub &
/// Pereyra 1973; Kaufman 1975): the Schur complement H = Aθθ − Aθf A_ff⁻¹ A_fθ. Using Aθθ alone
/// ignores that the fluxes re-adjust when θ moves (a larger radius lowers the peak, the flux
/// compensates), overestimates the curvature along such directions and turns LM's quadratic
/// convergence into a slow linear crawl.
Eigen::MatrixXd profiledNormal(const Eigen::MatrixXd& normal, int np, int nBands) {
    Eigen::MatrixXd h = normal.topLeftCorner(np, np);
    for (int b = 0; b < nBands; ++b) {
        const double c = normal(np + b, np + b);
        if (c > 0) {
            const Eigen::VectorXd col = normal.block(0, np + b, np, 1);
            h.noalias() -= col * col.transpose() / c;
        }
    }
    return h;
}

void checkEpochs(const std::vector<Epoch>& epochs, int nBands) {
    if (epochs.empty()) throw badInput("multifit: no epochs");
    for (const auto& ep : epochs) {
        if (ep.band < 0 || ep.band >= nBands)
            throw badInput("multifit: epoch " + ep.id + " has band index out of range");
        if (!(ep.image.bbox() == ep.inverseVariance.bbox()))
            throw badInput("multifit: epoch " + ep.id +
                           " image and inverse variance differ in size");
        if (ep.psf.size() == 0) throw badInput("multifit: epoch " + ep.id + " has no PSF mixture");
    }
}

int countPixels(const std::vector<Epoch>& epochs, int& nEpochs) {
    int n = 0;
    nEpochs = 0;
    for (const auto& ep : epochs) {
        int ne = 0;
        for (double w : ep.inverseVariance.pixels()) ne += w > 0;
        n += ne;
        nEpochs += ne > 0;
    }
    return n;
}

}  // namespace

FitResult fitModel(const std::vector<Epoch>& epochs, int nBands, ModelKind kind,
                   const FitResult& initial, const FitConfig& config) {
    config.validate();
    checkEpochs(epochs, nBands);
    const int np = numShapeParams(kind);
    Eigen::VectorXd theta(np);
    theta(0) = initial.u;
    theta(1) = initial.v;
    const double lnMin = std::log(config.minRadius), lnMax = std::log(config.maxRadius);
    if (kind != ModelKind::Point) {
        etaFromE(initial.e1, initial.e2, theta(2), theta(3));
        theta(4) = std::clamp(std::log(std::max(initial.rEff, config.minRadius)), lnMin, lnMax);
    }
    auto clampTheta = [&](Eigen::VectorXd& t) {
        if (kind == ModelKind::Point) return;
        double lam = std::hypot(t(2), t(3));
        if (lam > kMaxEta) t.segment(2, 2) *= kMaxEta / lam;
        t(4) = std::clamp(t(4), lnMin, lnMax);
    };

    FitResult out;
    out.kind = kind;
    Evaluation ev, evt;  // current point and trial (swapped when a step is accepted)
    evaluate(epochs, nBands, kind, theta, true, config.renderNSigma, ev);
    // Damping: Marquardt's scaled diagonal, updated from the gain ratio ρ (actual / predicted
    // decrease) as in Nielsen (1999; Madsen, Nielsen & Tingleff 2004, §3.2): a step that the
    // quadratic model predicted well relaxes the damping smoothly, a rejected one raises it by a
    // growing factor. Fewer rejected (wasted) trials than halving/doubling by fixed factors.
    double lambda = 1e-3, nu = 2;
    int it = 0;
    // A fixed centre: its rows and columns of the Gauss-Newton system are decoupled (unit
    // diagonal, zero gradient), so every step leaves it where it is.
    auto holdCentre = [&](Eigen::MatrixXd& h, Eigen::VectorXd& g) {
        if (!config.fixCentre) return;
        h.topRows(2).setZero();
        h.leftCols(2).setZero();
        h(0, 0) = h(1, 1) = 1;
        g.head(2).setZero();
    };
    holdCentre(ev.normal, ev.gradient);
    for (; it < config.maxIterations; ++it) {
        const Eigen::MatrixXd h = profiledNormal(ev.normal, np, nBands);
        const double tolerance = std::max(config.relTolerance * ev.chi2, config.chi2Tolerance);
        // The quadratic model's own verdict: the full Gauss–Newton step s = H⁻¹g would lower
        // χ² by gᵀH⁻¹g. Below the tolerance the fit is converged as surely as after a step that
        // gained that little, so the trial evaluation (the costliest part of an iteration) is
        // skipped. At a bound the unconstrained step overestimates the feasible gain, so this
        // never stops a fit early there.
        if (it > 0) {
            const Eigen::VectorXd s0 = h.ldlt().solve(ev.gradient);
            const double predicted = ev.gradient.dot(s0);
            if (std::isfinite(predicted) && predicted >= 0 && predicted < tolerance) {
                out.converged = true;
                break;
            }
        }
        bool improved = false;
        for (int tries = 0; tries < 12 && !improved; ++tries) {
            Eigen::MatrixXd a = h;
            for (int k = 0; k < np; ++k) a(k, k) += lambda * std::max(h(k, k), 1e-12);
            Eigen::VectorXd step = a.ldlt().solve(ev.gradient);
            // Parameters at a bound (ln r at its limits, |η| at its cap) whose step points
            // further out are held there (active set): the step is then the Gauss–Newton step
            // in the complement of those directions, rather than an unconstrained step clipped
            // afterwards, which no longer follows the quadratic model and makes LM crawl.
            if (kind != ModelKind::Point && step.allFinite()) {
                std::vector<Eigen::VectorXd> active;
                if ((theta(4) <= lnMin + 1e-9 && step(4) < 0) ||
                    (theta(4) >= lnMax - 1e-9 && step(4) > 0))
                    active.push_back(Eigen::VectorXd::Unit(np, 4));
                const double lam = std::hypot(theta(2), theta(3));
                if (lam >= kMaxEta - 1e-9) {
                    Eigen::VectorXd n = Eigen::VectorXd::Zero(np);
                    n(2) = theta(2) / lam;
                    n(3) = theta(3) / lam;
                    if (n.dot(step) > 0) active.push_back(n);
                }
                if (!active.empty()) {
                    Eigen::MatrixXd c(np, static_cast<Eigen::Index>(active.size()));
                    for (std::size_t j = 0; j < active.size(); ++j)
                        c.col(static_cast<Eigen::Index>(j)) = active[j];
                    // Z: orthonormal basis of the directions orthogonal to the active ones.
                    const Eigen::MatrixXd q =
                        Eigen::HouseholderQR<Eigen::MatrixXd>(c).householderQ();
                    const Eigen::MatrixXd z = q.rightCols(np - c.cols());
                    step = z * (z.transpose() * a * z).ldlt().solve(z.transpose() * ev.gradient);
                }
            }
            if (!step.allFinite()) {
                lambda *= nu;
                nu *= 2;
                continue;
            }
            const double predictedDecrease = 2 * step.dot(ev.gradient) - step.dot(h * step);
            Eigen::VectorXd trial = theta + step;
            clampTheta(trial);
            evaluate(epochs, nBands, kind, trial, true, config.renderNSigma, evt);
            holdCentre(evt.normal, evt.gradient);
            if (evt.chi2 <= ev.chi2) {
                const double decrease = ev.chi2 - evt.chi2;
                theta = trial;
                std::swap(ev, evt);
                const double rho = predictedDecrease > 0 ? decrease / predictedDecrease : 1.0;
                lambda = std::max(lambda * std::max(1.0 / 3, 1 - std::pow(2 * rho - 1, 3)), 1e-9);
                nu = 2;
                improved = true;
                if (decrease < tolerance) out.converged = true;
            } else {
                lambda *= nu;
                nu *= 2;
            }
        }
        if (!improved) {  // no step lowers χ²: at a minimum to numerical precision
            out.converged = true;
        }
        if (out.converged) break;
    }
    out.iterations = it + 1;

    // Full Fisher matrix over (θ, fluxes) for marginal errors.
    const int nAll = np + nBands;
    Eigen::MatrixXd fisher = ev.normal;
    // Bands with no data have a zero row; regularise them so the inverse exists, report NaN.
    for (int b = 0; b < nBands; ++b)
        if (fisher(np + b, np + b) <= 0) fisher(np + b, np + b) = 1.0;
    Eigen::MatrixXd cov = fisher.ldlt().solve(Eigen::MatrixXd::Identity(nAll, nAll));

    out.flux = ev.flux;
    out.fluxCov = cov.bottomRightCorner(nBands, nBands);
    out.fluxErr = out.fluxCov.diagonal().cwiseMax(0).cwiseSqrt();
    for (int b = 0; b < nBands; ++b)
        if (!std::isfinite(ev.fluxErrCond(b))) {
            out.flux(b) = std::numeric_limits<double>::quiet_NaN();
            out.fluxErr(b) = std::numeric_limits<double>::quiet_NaN();
        }
    out.u = theta(0);
    out.v = theta(1);
    out.uErr = config.fixCentre ? 0.0 : std::sqrt(std::max(cov(0, 0), 0.0));
    out.vErr = config.fixCentre ? 0.0 : std::sqrt(std::max(cov(1, 1), 0.0));
    if (kind != ModelKind::Point) {
        eFromEta(theta(2), theta(3), out.e1, out.e2);
        out.rEff = std::exp(theta(4));
        out.rEffErr = out.rEff * std::sqrt(std::max(cov(4, 4), 0.0));
    }
    out.chi2 = ev.chi2;
    int nPix = countPixels(epochs, out.nEpochs);
    out.dof = nPix - nAll;
    if (!ev.flux.allFinite() && out.nEpochs > 0) {
        // some band unconstrained: fine, reported as NaN
    }
    if (std::hypot(out.u - initial.u, out.v - initial.v) > config.maxCentreShift)
        out.failure = "centre_shift";
    else if (!out.converged)
        out.failure = "no_convergence";
    // A radius at the upper limit means the profile ran away (sky error, neighbour light); one
    // at the lower limit is a measurement — the object is unresolved (a star: the profile is the
    // PSF) — and not a failure (it used to be one, which flagged every star and made every demo
    // patch "degraded").
    else if (kind != ModelKind::Point && theta(4) >= lnMax - 1e-9)
        out.failure = "radius_at_limit";
    // Likewise an ellipticity pinned at its cap (e = 0.98, axis ratio 0.1) on a resolved
    // profile: a needle that the pixels do not constrain, which absorbs a noise streak, a sky
    // error or a neighbour's light (demo galaxies of r_e 0.2-0.5" ended as 2-5" needles with
    // 10-40x their flux and their centres 1.1-1.4" off). At the lower radius limit the ellipticity
    // means nothing (the profile is the PSF) and is no failure.
    else if (kind != ModelKind::Point && theta(4) > lnMin + 1e-9 &&
             std::hypot(theta(2), theta(3)) >= kMaxEta - 1e-6)
        out.failure = "ellipticity_at_limit";
    return out;
}

FitResult fitPsfFlux(const std::vector<Epoch>& epochs, int nBands, double u, double v) {
    checkEpochs(epochs, nBands);
    FitResult out;
    out.kind = ModelKind::Point;
    out.u = u;
    out.v = v;
    Eigen::VectorXd td = Eigen::VectorXd::Zero(nBands), tt = Eigen::VectorXd::Zero(nBands);
    std::vector<ImageD> templates;
    for (const auto& ep : epochs) {
        ImageD t(ep.image.bbox(), 0.0);
        Eigen::Vector2d p = ep.refPixel + ep.uvToPixel * Eigen::Vector2d(u, v);
        if (ep.psfModel) {
            ImageD psf = ep.psfModel->computeImage(Point2D(p.x(), p.y()));
            copyOverlap<double, double>(psf.cview(), t.view());
            for (double& x : t.pixels()) x *= ep.countsPerNJy;
        } else {
            GaussianMixture g = ep.psf.transformed(Eigen::Matrix2d::Identity(), p);
            g.addToImage(t.view(), ep.countsPerNJy);
        }
        const double* d = ep.image.data();
        const double* w = ep.inverseVariance.data();
        for (std::size_t i = 0; i < t.pixels().size(); ++i) {
            td(ep.band) += w[i] * t.data()[i] * d[i];
            tt(ep.band) += w[i] * t.data()[i] * t.data()[i];
        }
        templates.push_back(std::move(t));
    }
    out.flux = Eigen::VectorXd::Constant(nBands, std::numeric_limits<double>::quiet_NaN());
    out.fluxErr = out.flux;
    out.fluxCov = Eigen::MatrixXd::Zero(nBands, nBands);
    for (int b = 0; b < nBands; ++b) {
        if (tt(b) > 0) {
            out.flux(b) = td(b) / tt(b);
            out.fluxErr(b) = 1 / std::sqrt(tt(b));
            out.fluxCov(b, b) = 1 / tt(b);
        }
    }
    for (std::size_t e = 0; e < epochs.size(); ++e) {
        const double f = out.flux(epochs[e].band);
        if (!std::isfinite(f)) continue;
        const double* d = epochs[e].image.data();
        const double* w = epochs[e].inverseVariance.data();
        for (std::size_t i = 0; i < templates[e].pixels().size(); ++i) {
            double r = d[i] - f * templates[e].data()[i];
            out.chi2 += w[i] * r * r;
        }
    }
    int nPix = countPixels(epochs, out.nEpochs);
    out.dof = nPix - nBands;
    out.converged = true;
    return out;
}

ImageD renderModel(const Epoch& e, const FitResult& fit, Box2I box, double nSigma) {
    Epoch tmp;
    tmp.image = ImageD(box, 0.0);
    tmp.inverseVariance = ImageD(box, 0.0);
    tmp.uvToPixel = e.uvToPixel;
    tmp.refPixel = e.refPixel;
    tmp.psf = e.psf;
    tmp.countsPerNJy = e.countsPerNJy;
    Eigen::VectorXd theta(numShapeParams(fit.kind));
    theta(0) = fit.u;
    theta(1) = fit.v;
    if (fit.kind != ModelKind::Point) {
        etaFromE(fit.e1, fit.e2, theta(2), theta(3));
        theta(4) = std::log(fit.rEff);
    }
    Rendered r = renderEpoch(tmp, fit.kind, theta, false, nSigma);
    ImageD out(box, 0.0);
    double f = fit.flux.size() > e.band ? fit.flux(e.band) : 0.0;
    if (!std::isfinite(f)) f = 0;
    for (std::int64_t i = 0; i < r.t.size(); ++i) out.data()[i] = f * r.t(i);
    return out;
}

Template renderTemplate(const Epoch& e, ModelKind kind, const Eigen::VectorXd& theta,
                        double nSigma) {
    if (theta.size() != numShapeParams(kind))
        throw logicError("renderTemplate: wrong number of parameters");
    Rendered r = renderEpoch(e, kind, theta, true, nSigma);
    Template out;
    out.t = ImageD(e.image.bbox(), 0.0);
    for (std::int64_t i = 0; i < r.t.size(); ++i) out.t.data()[i] = r.t(i);
    for (int k = 0; k < r.dt.cols(); ++k) {
        ImageD d(e.image.bbox(), 0.0);
        for (std::int64_t i = 0; i < r.t.size(); ++i) d.data()[i] = r.dt(i, k);
        out.derivatives.push_back(std::move(d));
    }
    return out;
}

CompositeResult fitComposite(const std::vector<Epoch>& epochs, int nBands, const FitResult& expFit,
                             const FitResult& devFit) {
    checkEpochs(epochs, nBands);
    // Unit-flux templates of both fits in every epoch.
    auto unit = [](FitResult f) {
        f.flux = Eigen::VectorXd::Ones(f.flux.size());
        return f;
    };
    const FitResult ue = unit(expFit), ud = unit(devFit);
    // For the mixed template t = (1 − f) exp + f dev, every quantity of the per-band linear flux
    // fit is a quadratic in f built from five weighted sums per band (tᵀWd and tᵀWt), so χ²(f)
    // costs O(1) per trial f: χ²_b(f) = dᵀWd − (tᵀWd)² / tᵀWt.
    Eigen::VectorXd ed = Eigen::VectorXd::Zero(nBands), dd = ed, ee = ed, edv = ed, vv = ed,
                    dwd = ed;
    std::vector<ImageD> te, tdv;
    for (const auto& ep : epochs) {
        const Box2I box = ep.image.bbox();
        te.push_back(renderModel(ep, ue, box));
        tdv.push_back(renderModel(ep, ud, box));
        const std::int64_t n = std::int64_t(box.width()) * box.height();
        const Eigen::Map<const Eigen::VectorXd> d(ep.image.data(), n),
            w(ep.inverseVariance.data(), n), e(te.back().data(), n), v(tdv.back().data(), n);
        const Eigen::VectorXd we = w.cwiseProduct(e), wv = w.cwiseProduct(v);
        const int b = ep.band;
        ed(b) += we.dot(d);
        dd(b) += wv.dot(d);
        ee(b) += we.dot(e);
        edv(b) += we.dot(v);
        vv(b) += wv.dot(v);
        dwd(b) += w.dot(d.cwiseAbs2());
    }
    auto solve = [&](double f, CompositeResult& res) {
        res.flux = Eigen::VectorXd::Constant(nBands, std::numeric_limits<double>::quiet_NaN());
        res.fluxErr = res.flux;
        res.chi2 = 0;
        for (int b = 0; b < nBands; ++b) {
            const double tdata = (1 - f) * ed(b) + f * dd(b);
            const double ttt = (1 - f) * (1 - f) * ee(b) + 2 * f * (1 - f) * edv(b) + f * f * vv(b);
            if (ttt > 0) {
                res.flux(b) = tdata / ttt;
                res.fluxErr(b) = 1 / std::sqrt(ttt);
                res.chi2 += dwd(b) - tdata * tdata / ttt;
            }
        }
        res.fracDev = f;
        return res.chi2;
    };
    // Coarse grid then golden-section refinement: χ²(f) is smooth and usually unimodal.
    CompositeResult best, tmp;
    double bestF = 0, bestChi = 1e300;
    for (int k = 0; k <= 20; ++k) {
        double c = solve(k / 20.0, tmp);
        if (c < bestChi) {
            bestChi = c;
            bestF = k / 20.0;
        }
    }
    double lo = std::max(0.0, bestF - 0.05), hi = std::min(1.0, bestF + 0.05);
    const double gr = (std::sqrt(5.0) - 1) / 2;
    for (int it = 0; it < 30; ++it) {
        double a = hi - gr * (hi - lo), b = lo + gr * (hi - lo);
        if (solve(a, tmp) < solve(b, tmp))
            hi = b;
        else
            lo = a;
    }
    solve(0.5 * (lo + hi), best);
    if (bestChi < best.chi2) solve(bestF, best);
    // χ² of the chosen mix summed over pixels (the closed form above subtracts two large sums,
    // fine for choosing f but not for reporting χ²/dof of a bright object).
    best.chi2 = 0;
    for (std::size_t k = 0; k < epochs.size(); ++k) {
        const Epoch& ep = epochs[k];
        const double fl = best.flux(ep.band);
        if (!std::isfinite(fl)) continue;
        const std::int64_t n = std::int64_t(ep.image.bbox().width()) * ep.image.bbox().height();
        const Eigen::Map<const Eigen::VectorXd> d(ep.image.data(), n),
            w(ep.inverseVariance.data(), n), e(te[k].data(), n), v(tdv[k].data(), n);
        best.chi2 += w.dot((d - fl * ((1 - best.fracDev) * e + best.fracDev * v)).cwiseAbs2());
    }
    return best;
}

}  // namespace drp::multifit
