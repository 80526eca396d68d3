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
    if (!(renderNSigma >= 3)) throw configError("multifit.renderNSigma must be >= 3");
}

namespace {

constexpr int kMaxSize = 16;  // |η| limit: e = tanh(3) = 0.995

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
    Eigen::MatrixXd dt;  // npix × nθ
};

Rendered renderEpoch(const Epoch& ep, ModelKind kind, const Eigen::VectorXd& theta, bool derivs,
                     double nSigma) {
    const int np = numShapeParams(kind);
    const Box2I box = ep.image.bbox();
    const int w = box.width(), h = box.height();
    Rendered r;
    r.t = Eigen::VectorXd::Zero(std::int64_t(w) * h);
    if (derivs) r.dt = Eigen::MatrixXd::Zero(std::int64_t(w) * h, np);

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
        for (std::size_t k = 0; k < prof.amplitudes.size(); ++k) {
            double s = prof.variances[k] * r2;
            gal.push_back({prof.amplitudes[k], s * am, s * a1, s * a2, 2 * s * am});
        }
    }

    for (const auto& g : gal) {
        for (const auto& p : ep.psf.components()) {
            const Eigen::Matrix2d cov = g.cov + p.cov;
            const double det = cov.determinant();
            if (!(det > 0)) continue;
            const Eigen::Matrix2d inv = cov.inverse();
            const double norm =
                ep.countsPerNJy * g.amp * p.amplitude / (2 * std::numbers::pi * std::sqrt(det));
            const Eigen::Vector2d mu = centre + p.mean;
            const double rx = nSigma * std::sqrt(cov(0, 0)), ry = nSigma * std::sqrt(cov(1, 1));
            const int x0 = std::max(box.minX(), static_cast<int>(std::floor(mu.x() - rx)));
            const int x1 = std::min(box.maxX(), static_cast<int>(std::ceil(mu.x() + rx)));
            const int y0 = std::max(box.minY(), static_cast<int>(std::floor(mu.y() - ry)));
            const int y1 = std::min(box.maxY(), static_cast<int>(std::ceil(mu.y() + ry)));
            const double cut = nSigma * nSigma;
            // tr(Σ⁻¹ dΣ) for the shape derivatives, constant over pixels.
            double tr1 = 0, tr2 = 0, trl = 0;
            if (derivs && kind != ModelKind::Point) {
                tr1 = (inv * g.d1).trace();
                tr2 = (inv * g.d2).trace();
                trl = (inv * g.dl).trace();
            }
            for (int y = y0; y <= y1; ++y) {
                const double dy = y - mu.y();
                for (int x = x0; x <= x1; ++x) {
                    const double dx = x - mu.x();
                    const double qx = inv(0, 0) * dx + inv(0, 1) * dy;
                    const double qy = inv(1, 0) * dx + inv(1, 1) * dy;
                    const double m2 = dx * qx + dy * qy;
                    if (m2 >= cut) continue;
                    const double val = norm * std::exp(-0.5 * m2);
                    const std::int64_t idx = std::int64_t(y - box.minY()) * w + (x - box.minX());
                    r.t(idx) += val;
                    if (!derivs) continue;
                    // ∂G/∂μ = G q, and μ depends on (u, v) through A.
                    r.dt(idx, 0) += val * (qx * a(0, 0) + qy * a(1, 0));
                    r.dt(idx, 1) += val * (qx * a(0, 1) + qy * a(1, 1));
                    if (kind != ModelKind::Point) {
                        auto quad = [&](const Eigen::Matrix2d& d) {
                            return qx * (d(0, 0) * qx + d(0, 1) * qy) +
                                   qy * (d(1, 0) * qx + d(1, 1) * qy);
                        };
                        r.dt(idx, 2) += 0.5 * val * (quad(g.d1) - tr1);
                        r.dt(idx, 3) += 0.5 * val * (quad(g.d2) - tr2);
                        r.dt(idx, 4) += 0.5 * val * (quad(g.dl) - trl);
                    }
                }
            }
        }
    }
    return r;
}

struct Evaluation {
    double chi2 = 0;
    Eigen::VectorXd flux, fluxErrCond;
    std::vector<Rendered> rendered;
};

Evaluation evaluate(const std::vector<Epoch>& epochs, int nBands, ModelKind kind,
                    const Eigen::VectorXd& theta, bool derivs, double nSigma) {
    Evaluation ev;
    ev.rendered.reserve(epochs.size());
    Eigen::VectorXd td = Eigen::VectorXd::Zero(nBands), tt = Eigen::VectorXd::Zero(nBands);
    for (const auto& ep : epochs) {
        ev.rendered.push_back(renderEpoch(ep, kind, theta, derivs, nSigma));
        const auto& t = ev.rendered.back().t;
        const double* d = ep.image.data();
        const double* wv = ep.inverseVariance.data();
        for (std::int64_t i = 0; i < t.size(); ++i) {
            td(ep.band) += wv[i] * t(i) * d[i];
            tt(ep.band) += wv[i] * t(i) * t(i);
        }
    }
    ev.flux = Eigen::VectorXd::Zero(nBands);
    ev.fluxErrCond = Eigen::VectorXd::Constant(nBands, std::numeric_limits<double>::quiet_NaN());
    for (int b = 0; b < nBands; ++b) {
        if (tt(b) > 0) {
            ev.flux(b) = td(b) / tt(b);
            ev.fluxErrCond(b) = 1 / std::sqrt(tt(b));
        }
    }
    for (std::size_t e = 0; e < epochs.size(); ++e) {
        const auto& t = ev.rendered[e].t;
        const double* d = epochs[e].image.data();
        const double* wv = epochs[e].inverseVariance.data();
        const double f = ev.flux(epochs[e].band);
        for (std::int64_t i = 0; i < t.size(); ++i) {
            double res = d[i] - f * t(i);
            ev.chi2 += wv[i] * res * res;
        }
    }
    return ev;
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
        if (lam > 3.0) t.segment(2, 2) *= 3.0 / lam;
        t(4) = std::clamp(t(4), lnMin, lnMax);
    };

    FitResult out;
    out.kind = kind;
    Evaluation ev = evaluate(epochs, nBands, kind, theta, true, config.renderNSigma);
    double lambda = 1e-3;
    int it = 0;
    for (; it < config.maxIterations; ++it) {
        // Gauss–Newton system for θ with the fluxes at their conditional optimum
        // (variable projection, Kaufman's approximation).
        Eigen::MatrixXd jtj = Eigen::MatrixXd::Zero(np, np);
        Eigen::VectorXd jtr = Eigen::VectorXd::Zero(np);
        for (std::size_t e = 0; e < epochs.size(); ++e) {
            const auto& rd = ev.rendered[e];
            const double f = ev.flux(epochs[e].band);
            const double* d = epochs[e].image.data();
            const double* wv = epochs[e].inverseVariance.data();
            for (std::int64_t i = 0; i < rd.t.size(); ++i) {
                if (wv[i] <= 0) continue;
                Eigen::VectorXd g = f * rd.dt.row(i).transpose();
                jtj.noalias() += wv[i] * g * g.transpose();
                jtr.noalias() += wv[i] * (d[i] - f * rd.t(i)) * g;
            }
        }
        bool improved = false;
        for (int tries = 0; tries < 12 && !improved; ++tries) {
            Eigen::MatrixXd a = jtj;
            for (int k = 0; k < np; ++k) a(k, k) += lambda * std::max(jtj(k, k), 1e-12);
            Eigen::VectorXd step = a.ldlt().solve(jtr);
            if (!step.allFinite()) {
                lambda *= 10;
                continue;
            }
            Eigen::VectorXd trial = theta + step;
            clampTheta(trial);
            Evaluation evt = evaluate(epochs, nBands, kind, trial, true, config.renderNSigma);
            if (evt.chi2 <= ev.chi2) {
                double rel = (ev.chi2 - evt.chi2) / std::max(ev.chi2, 1e-300);
                theta = trial;
                ev = std::move(evt);
                lambda = std::max(lambda / 10, 1e-9);
                improved = true;
                if (rel < config.relTolerance) {
                    out.converged = true;
                }
            } else {
                lambda *= 10;
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
    Eigen::MatrixXd fisher = Eigen::MatrixXd::Zero(nAll, nAll);
    for (std::size_t e = 0; e < epochs.size(); ++e) {
        const auto& rd = ev.rendered[e];
        const int b = epochs[e].band;
        const double f = ev.flux(b);
        const double* wv = epochs[e].inverseVariance.data();
        Eigen::VectorXd g(nAll);
        for (std::int64_t i = 0; i < rd.t.size(); ++i) {
            if (wv[i] <= 0) continue;
            g.setZero();
            g.head(np) = f * rd.dt.row(i).transpose();
            g(np + b) = rd.t(i);
            fisher.noalias() += wv[i] * g * g.transpose();
        }
    }
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
    out.uErr = std::sqrt(std::max(cov(0, 0), 0.0));
    out.vErr = std::sqrt(std::max(cov(1, 1), 0.0));
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
    else if (kind != ModelKind::Point && (theta(4) <= lnMin + 1e-9 || theta(4) >= lnMax - 1e-9))
        out.failure = "radius_at_limit";
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
    FitResult ue = unit(expFit), ud = unit(devFit);
    std::vector<ImageD> te, td;
    for (const auto& ep : epochs) {
        te.push_back(renderModel(ep, ue, ep.image.bbox()));
        td.push_back(renderModel(ep, ud, ep.image.bbox()));
    }
    // χ²(f) with per-band fluxes solved linearly for the mixed template (1−f) exp + f dev.
    auto solve = [&](double f, CompositeResult& res) {
        Eigen::VectorXd tdata = Eigen::VectorXd::Zero(nBands), ttt = Eigen::VectorXd::Zero(nBands);
        for (std::size_t e = 0; e < epochs.size(); ++e) {
            const double* d = epochs[e].image.data();
            const double* w = epochs[e].inverseVariance.data();
            int b = epochs[e].band;
            for (std::size_t i = 0; i < te[e].pixels().size(); ++i) {
                double t = (1 - f) * te[e].data()[i] + f * td[e].data()[i];
                tdata(b) += w[i] * t * d[i];
                ttt(b) += w[i] * t * t;
            }
        }
        res.flux = Eigen::VectorXd::Constant(nBands, std::numeric_limits<double>::quiet_NaN());
        res.fluxErr = res.flux;
        for (int b = 0; b < nBands; ++b)
            if (ttt(b) > 0) {
                res.flux(b) = tdata(b) / ttt(b);
                res.fluxErr(b) = 1 / std::sqrt(ttt(b));
            }
        res.chi2 = 0;
        for (std::size_t e = 0; e < epochs.size(); ++e) {
            const double* d = epochs[e].image.data();
            const double* w = epochs[e].inverseVariance.data();
            double fl = res.flux(epochs[e].band);
            if (!std::isfinite(fl)) continue;
            for (std::size_t i = 0; i < te[e].pixels().size(); ++i) {
                double t = (1 - f) * te[e].data()[i] + f * td[e].data()[i];
                double r = d[i] - fl * t;
                res.chi2 += w[i] * r * r;
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
    return best;
}

}  // namespace drp::multifit
