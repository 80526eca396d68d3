#include "drp/sim/moffat_psf.h"

#include <array>
#include <cmath>
#include <numbers>

#include "drp/core/error.h"

namespace drp::sim {

TruncatedMoffat::TruncatedMoffat(double fwhm, double beta, double e1, double e2, double truncation)
    : _fwhm(fwhm), _beta(beta), _e1(e1), _e2(e2) {
    const double e = std::hypot(e1, e2);
    if (!(fwhm > 0) || !(beta > 2) || !(e < 0.9) || !(truncation > 1))
        throw badInput(
            "TruncatedMoffat: need fwhm > 0, beta > 2, |e| < 0.9, truncation > 1 (got fwhm=" +
            std::to_string(fwhm) + " beta=" + std::to_string(beta) + " e=" + std::to_string(e) +
            " truncation=" + std::to_string(truncation) + ")");
    _alpha = fwhm / (2.0 * std::sqrt(std::pow(2.0, 1.0 / beta) - 1.0));
    const double s = 1.0 / std::sqrt(1.0 - e * e);
    _c00 = (1 + e1) * s;
    _c11 = (1 - e1) * s;
    const double c01 = e2 * s;
    // det C = (1 - e²) s² = 1, so C⁻¹ = adj(C).
    _ci00 = _c11;
    _ci11 = _c00;
    _ci01 = -c01;
    const double rt = truncation * fwhm;
    _rt2 = rt * rt;
    _invAlpha2 = 1.0 / (_alpha * _alpha);
    const double u = _rt2 * _invAlpha2;
    _norm =
        (beta - 1.0) / (std::numbers::pi * _alpha * _alpha * (1.0 - std::pow(1.0 + u, 1.0 - beta)));
}

Quadrupole TruncatedMoffat::moments() const {
    const double u = _rt2 * _invAlpha2, b = _beta;
    const double num =
        (std::pow(1 + u, 2 - b) - 1) / (2 - b) - (std::pow(1 + u, 1 - b) - 1) / (1 - b);
    const double den = (1 - std::pow(1 + u, 1 - b)) / (b - 1);
    const double halfR2 = 0.5 * _alpha * _alpha * num / den;
    return {halfR2 * _c00, halfR2 * _c11, -halfR2 * _ci01};
}

namespace {
// 5-point Gauss–Legendre nodes and weights on [-1/2, 1/2] (weights sum to 1).
constexpr std::array<double, 5> kGlX = {-0.4530899229693320, -0.2692346550528416, 0.0,
                                        0.2692346550528416, 0.4530899229693320};
constexpr std::array<double, 5> kGlW = {0.1184634425280945, 0.2393143352496832, 0.2844444444444444,
                                        0.2393143352496832, 0.1184634425280945};
// 3-point Gauss–Legendre on [-1/2, 1/2]: exact for polynomials of degree 5.
constexpr std::array<double, 3> kGl3X = {-0.3872983346207417, 0.0, 0.3872983346207417};
constexpr std::array<double, 3> kGl3W = {5.0 / 18, 8.0 / 18, 5.0 / 18};

template <std::size_t N>
double integratePixel(const TruncatedMoffat& profile, double x, double y,
                      const std::array<double, N>& nodes, const std::array<double, N>& weights) {
    double s = 0;
    for (std::size_t b = 0; b < N; ++b) {
        double sb = 0;
        for (std::size_t a = 0; a < N; ++a) sb += weights[a] * profile(x + nodes[a], y + nodes[b]);
        s += weights[b] * sb;
    }
    return s;
}
}  // namespace

Box2I supportBox(const TruncatedMoffat& profile, Point2D center) {
    const double ex = profile.extentX(), ey = profile.extentY();
    const Point2I lo{static_cast<int>(std::floor(center.x - ex + 0.5)),
                     static_cast<int>(std::floor(center.y - ey + 0.5))};
    const Point2I hi{static_cast<int>(std::floor(center.x + ex + 0.5)),
                     static_cast<int>(std::floor(center.y + ey + 0.5))};
    return Box2I::fromCorners(lo, hi);
}

Image<double> integrateOverPixels(const TruncatedMoffat& profile, Point2D center,
                                  const Box2I& box) {
    Image<double> out(box, 0.0);
    const double ex = profile.extentX() + 1, ey = profile.extentY() + 1;
    // Beyond 1.5 FWHM (pixel centre) the profile is smooth on the pixel scale and 3×3 points give
    // the same ~1e-8 (of the peak) accuracy as 5×5 for a third of the evaluations: most of a
    // star's support box is wing.
    // Pixels that the truncation edge may cross keep 5×5 points too (the edge is a step that
    // the second moments weight by r²): the support ellipse's minor semi-axis is
    // r_t ((1 - e) / (1 + e))^(1/4) (shape matrix of determinant 1), less a pixel's half-diagonal.
    const double r2Smooth = std::pow(1.5 * profile.fwhm(), 2);
    const double e = std::hypot(profile.e1(), profile.e2());
    const double r2Edge = std::pow(
        std::max(0.0, profile.truncationRadius() * std::pow((1 - e) / (1 + e), 0.25) - 1), 2);
    for (int j = 0; j < box.height(); ++j) {
        const double y = box.minY() + j - center.y;
        if (std::abs(y) > ey) continue;
        double* row = out.row(j);
        for (int i = 0; i < box.width(); ++i) {
            const double x = box.minX() + i - center.x;
            if (std::abs(x) > ex) continue;
            const double r2 = x * x + y * y;
            row[i] = r2 > r2Smooth && r2 < r2Edge ? integratePixel(profile, x, y, kGl3X, kGl3W)
                                                  : integratePixel(profile, x, y, kGlX, kGlW);
        }
    }
    return out;
}

void MoffatPsfModel::validate() const {
    auto need = [](bool ok, const std::string& what) {
        if (!ok) throw configError("Moffat PSF model: " + what);
    };
    need(fwhm > 0.5, "fwhm must be > 0.5 pixel");
    need(beta > 2.0, "beta must be > 2 (finite second moments)");
    need(std::hypot(e1, e2) + std::abs(astigmatism) < 0.5, "|e| + |astigmatism| must be < 0.5");
    need(std::abs(radialFwhm) + std::abs(gradX) + std::abs(gradY) < 0.5,
         "|radialFwhm| + |gradX| + |gradY| must be < 0.5");
    need(cornerRadius > 0, "cornerRadius must be > 0");
    need(truncation > 1, "truncation must be > 1 FWHM");
}

TruncatedMoffat MoffatPsfModel::at(Point2D fp) const {
    const double rx = fp.x / cornerRadius, ry = fp.y / cornerRadius;
    const double f = fwhm * (1 + radialFwhm * (rx * rx + ry * ry) + gradX * rx + gradY * ry);
    return TruncatedMoffat(f, beta, e1 + astigmatism * (rx * rx - ry * ry),
                           e2 + astigmatism * 2 * rx * ry, truncation);
}

int MoffatPsfModel::maxRadius() const {
    // |ρ| <= 1 on the focal plane, so these bound FWHM and |e| everywhere.
    const double fmax = fwhm * (1 + std::abs(radialFwhm) + std::abs(gradX) + std::abs(gradY));
    const double emax = std::hypot(e1, e2) + std::abs(astigmatism);
    const double stretch = std::sqrt((1 + emax) / std::sqrt(1 - emax * emax));
    return static_cast<int>(std::ceil(truncation * fmax * stretch)) + 1;
}

TruePsf::TruePsf(std::shared_ptr<const MoffatPsfModel> model, Extent2D detectorOrigin)
    : _model(std::move(model)), _origin(detectorOrigin) {
    if (!_model) throw logicError("TruePsf: null model");
    _model->validate();
    _radius = _model->maxRadius();
}

namespace {
void normalise(Image<double>& img) {
    double s = 0;
    for (double v : img.pixels()) s += v;
    for (double& v : img.pixels()) v /= s;
}
}  // namespace

Image<double> TruePsf::computeKernelImage(Point2D position) const {
    const int r = _radius;
    auto img = integrateOverPixels(profileAt(position), {0.0, 0.0},
                                   Box2I({-r, -r}, Extent2I{2 * r + 1, 2 * r + 1}));
    normalise(img);  // the support lies inside the stamp, so this only removes quadrature error
    return img;
}

Image<double> TruePsf::computeImage(Point2D position) const {
    const int r = _radius;
    const Point2I c = position.nearestPixel();
    auto img = integrateOverPixels(profileAt(position), position,
                                   Box2I({c.x - r, c.y - r}, Extent2I{2 * r + 1, 2 * r + 1}));
    normalise(img);
    return img;
}

Quadrupole TruePsf::computeShape(Point2D position) const {
    Quadrupole q = profileAt(position).moments();
    // Integration over a unit pixel convolves with a unit box: variance 1/12 per axis.
    q.ixx += 1.0 / 12.0;
    q.iyy += 1.0 / 12.0;
    return q;
}

}  // namespace drp::sim
