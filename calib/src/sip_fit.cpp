#include "drp/calib/sip_fit.h"

#include <cmath>
#include <numbers>

#include <Eigen/Dense>

#include "drp/core/error.h"

namespace drp {

namespace {

constexpr double kDeg = std::numbers::pi / 180.0;

/// Exponents (p, q) of the monomials u^p v^q with minDegree <= p+q <= order, by degree.
std::vector<std::pair<int, int>> monomials(int order, int minDegree) {
    std::vector<std::pair<int, int>> t;
    for (int d = minDegree; d <= order; ++d)
        for (int q = 0; q <= d; ++q) t.emplace_back(d - q, q);
    return t;
}

/// Least-squares polynomial fit of targets (n×2) on scaled coordinates; returns coefficients
/// (terms×2) for the *unscaled* coordinates. Throws if the design is rank deficient.
Eigen::MatrixX2d fitPolynomial(const std::vector<Eigen::Vector2d>& uv,
                               const Eigen::MatrixX2d& target, const Eigen::VectorXd& weight,
                               const std::vector<std::pair<int, int>>& terms, double scale) {
    const Eigen::Index n = static_cast<Eigen::Index>(uv.size());
    const Eigen::Index m = static_cast<Eigen::Index>(terms.size());
    Eigen::MatrixXd design(n, m);
    for (Eigen::Index i = 0; i < n; ++i) {
        double su = uv[i][0] / scale, sv = uv[i][1] / scale, sw = std::sqrt(weight[i]);
        for (Eigen::Index k = 0; k < m; ++k)
            design(i, k) = sw * std::pow(su, terms[k].first) * std::pow(sv, terms[k].second);
    }
    Eigen::MatrixX2d rhs = target;
    for (Eigen::Index i = 0; i < n; ++i) rhs.row(i) *= std::sqrt(weight[i]);
    Eigen::ColPivHouseholderQR<Eigen::MatrixXd> qr(design);
    if (qr.rank() < m)
        throw Error("astrometry_failed", "TAN-SIP fit: " + std::to_string(n) +
                                             " pairs cannot constrain " + std::to_string(m) +
                                             " polynomial terms (rank " +
                                             std::to_string(qr.rank()) + ")");
    Eigen::MatrixX2d c = qr.solve(rhs);
    for (Eigen::Index k = 0; k < m; ++k)
        c.row(k) /= std::pow(scale, terms[k].first + terms[k].second);
    return c;
}

double evalTerms(const std::vector<std::pair<int, int>>& terms, const Eigen::VectorXd& c, double u,
                 double v) {
    double s = 0;
    for (std::size_t k = 0; k < terms.size(); ++k)
        s += c[static_cast<Eigen::Index>(k)] * std::pow(u, terms[k].first) *
             std::pow(v, terms[k].second);
    return s;
}

}  // namespace

TangentPlane::TangentPlane(const SpherePoint& centre) : _centre(centre) {
    double ra = centre.ra().asRadians(), dec = centre.dec().asRadians();
    _p0 = centre.toVector();
    _east = {-std::sin(ra), std::cos(ra), 0.0};
    _north = {-std::sin(dec) * std::cos(ra), -std::sin(dec) * std::sin(ra), std::cos(dec)};
}

Eigen::Vector2d TangentPlane::project(const SpherePoint& p) const {
    auto v = p.toVector();
    double d = v[0] * _p0[0] + v[1] * _p0[1] + v[2] * _p0[2];
    double x = v[0] * _east[0] + v[1] * _east[1] + v[2] * _east[2];
    double y = v[0] * _north[0] + v[1] * _north[1] + v[2] * _north[2];
    if (!(d > 0)) throw badInput("TangentPlane: point is 90 deg or more from the tangent point");
    return {x / d / kDeg, y / d / kDeg};
}

SpherePoint TangentPlane::deproject(const Eigen::Vector2d& xe) const {
    double x = xe[0] * kDeg, y = xe[1] * kDeg;
    return SpherePoint::fromVector({_p0[0] + x * _east[0] + y * _north[0],
                                    _p0[1] + x * _east[1] + y * _north[1],
                                    _p0[2] + x * _east[2] + y * _north[2]});
}

SpherePoint SipFit::apply(Point2D pixel) const {
    double u = pixel.x - crpix.x, v = pixel.y - crpix.y;
    double fu = 0, fv = 0;
    if (sip.order >= 2)
        for (int p = 0; p <= sip.order; ++p)
            for (int q = 0; q <= sip.order - p; ++q) {
                double m = std::pow(u, p) * std::pow(v, q);
                fu += sip.a(p, q) * m;
                fv += sip.b(p, q) * m;
            }
    Eigen::Vector2d x = cd * Eigen::Vector2d(u + fu, v + fv);
    return TangentPlane(crval).deproject(x);
}

std::shared_ptr<const Wcs> SipFit::makeWcs() const {
    if (sip.order < 2) return Wcs::makeTan(crval, crpix, cd);
    return Wcs::makeTanSip(crval, crpix, cd, sip);
}

SipFit fitTanSip(const SipFitInput& in, Point2D crpix, const SpherePoint& tangentGuess, int order,
                 int inverseOrder, const Box2D& bbox) {
    const std::size_t n = in.pixels.size();
    if (in.sky.size() != n || in.sigma.size() != n)
        throw badInput("fitTanSip: pixels, sky and sigma have different lengths");
    if (order < 1 || order > 9) throw badInput("fitTanSip: order must be in [1, 9]");
    if (inverseOrder < 0 || inverseOrder > 9)
        throw badInput("fitTanSip: inverseOrder must be in [0, 9]");
    std::vector<Eigen::Vector2d> uv(n);
    Eigen::VectorXd weight(static_cast<Eigen::Index>(n));
    for (std::size_t i = 0; i < n; ++i) {
        uv[i] = {in.pixels[i].x - crpix.x, in.pixels[i].y - crpix.y};
        double s = in.sigma[i] / 3600.0;  // degrees, the unit of the residuals
        if (!(s > 0)) throw badInput("fitTanSip: sigma must be > 0");
        weight[static_cast<Eigen::Index>(i)] = 1.0 / (s * s);
    }
    const double scale = std::max({0.5 * bbox.width(), 0.5 * bbox.height(), 1.0});
    SipFit fit;
    fit.crpix = crpix;
    fit.order = order;
    SpherePoint tangent = tangentGuess;
    Eigen::MatrixX2d target(static_cast<Eigen::Index>(n), 2);
    // Tangent-point iteration: move T to the fitted position of CRPIX. A shift δ changes the
    // projection at second order in (field size × δ), so three steps reach rounding level; the
    // last fit is done without the constant term, which is then zero by construction.
    const auto withConst = monomials(order, 0);
    const auto noConst = monomials(order, 1);
    Eigen::MatrixX2d c;
    for (int step = 0; step < 4; ++step) {
        TangentPlane plane(tangent);
        for (std::size_t i = 0; i < n; ++i)
            target.row(static_cast<Eigen::Index>(i)) = plane.project(in.sky[i]);
        bool last = step == 3;
        c = fitPolynomial(uv, target, weight, last ? noConst : withConst, scale);
        if (!last) tangent = plane.deproject(c.row(0).transpose());
    }
    fit.crval = tangent;
    // noConst terms: [ (1,0), (0,1), then degree >= 2 ].
    fit.cd.col(0) = c.row(0).transpose();
    fit.cd.col(1) = c.row(1).transpose();
    if (std::abs(fit.cd.determinant()) < 1e-30)
        throw Error("astrometry_failed", "TAN-SIP fit: singular CD matrix");
    Eigen::Matrix2d cdInv = fit.cd.inverse();
    if (order >= 2) {
        fit.sip.order = order;
        fit.sip.a = Eigen::MatrixXd::Zero(order + 1, order + 1);
        fit.sip.b = Eigen::MatrixXd::Zero(order + 1, order + 1);
        for (std::size_t k = 2; k < noConst.size(); ++k) {
            Eigen::Vector2d ab = cdInv * c.row(static_cast<Eigen::Index>(k)).transpose();
            fit.sip.a(noConst[k].first, noConst[k].second) = ab[0];
            fit.sip.b(noConst[k].first, noConst[k].second) = ab[1];
        }
    }
    // Residuals and χ².
    fit.residualsMas.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
        Eigen::Vector2d model = Eigen::Vector2d::Zero();
        for (std::size_t k = 0; k < noConst.size(); ++k)
            model += c.row(static_cast<Eigen::Index>(k)).transpose() *
                     std::pow(uv[i][0], noConst[k].first) * std::pow(uv[i][1], noConst[k].second);
        Eigen::Vector2d r = target.row(static_cast<Eigen::Index>(i)).transpose() - model;
        fit.residualsMas[i] = r * 3.6e6;
        fit.chi2 += r.squaredNorm() * weight[static_cast<Eigen::Index>(i)];
    }
    fit.dof = 2.0 * static_cast<double>(n) - 2.0 * static_cast<double>(noConst.size()) - 2.0;
    // Inverse polynomials on a grid over the detector (10% margin): U = u + A, V = v + B;
    // AP(U, V) = u - U, BP(U, V) = v - V.
    if (order >= 2 && inverseOrder >= 1) {
        const int g = 4 * std::max(order, inverseOrder) + 8;
        std::vector<Eigen::Vector2d> UV;
        Eigen::MatrixX2d delta(g * g, 2);
        for (int i = 0; i < g; ++i)
            for (int j = 0; j < g; ++j) {
                double x = bbox.min().x - 0.1 * bbox.width() + 1.2 * bbox.width() * i / (g - 1);
                double y = bbox.min().y - 0.1 * bbox.height() + 1.2 * bbox.height() * j / (g - 1);
                double u = x - crpix.x, v = y - crpix.y, fu = 0, fv = 0;
                for (int p = 0; p <= order; ++p)
                    for (int q = 0; q <= order - p; ++q) {
                        fu += fit.sip.a(p, q) * std::pow(u, p) * std::pow(v, q);
                        fv += fit.sip.b(p, q) * std::pow(u, p) * std::pow(v, q);
                    }
                UV.emplace_back(u + fu, v + fv);
                delta.row(static_cast<Eigen::Index>(UV.size() - 1)) << -fu, -fv;
            }
        const auto invTerms = monomials(inverseOrder, 1);
        Eigen::MatrixX2d ci =
            fitPolynomial(UV, delta, Eigen::VectorXd::Ones(static_cast<Eigen::Index>(UV.size())),
                          invTerms, scale);
        fit.sip.inverseOrder = inverseOrder;
        fit.sip.ap = Eigen::MatrixXd::Zero(inverseOrder + 1, inverseOrder + 1);
        fit.sip.bp = Eigen::MatrixXd::Zero(inverseOrder + 1, inverseOrder + 1);
        for (std::size_t k = 0; k < invTerms.size(); ++k) {
            fit.sip.ap(invTerms[k].first, invTerms[k].second) = ci(static_cast<Eigen::Index>(k), 0);
            fit.sip.bp(invTerms[k].first, invTerms[k].second) = ci(static_cast<Eigen::Index>(k), 1);
        }
        for (std::size_t i = 0; i < UV.size(); ++i) {
            double du = evalTerms(invTerms, ci.col(0), UV[i][0], UV[i][1]) -
                        delta(static_cast<Eigen::Index>(i), 0);
            double dv = evalTerms(invTerms, ci.col(1), UV[i][0], UV[i][1]) -
                        delta(static_cast<Eigen::Index>(i), 1);
            fit.maxInverseErrorPixels = std::max(fit.maxInverseErrorPixels, std::hypot(du, dv));
        }
    }
    return fit;
}

}  // namespace drp
