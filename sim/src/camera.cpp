#include "drp/sim/camera.h"

#include <cmath>

#include <Eigen/Dense>

#include "drp/core/error.h"

namespace drp::sim {

void CameraConfig::validate() const {
    auto need = [](bool ok, const std::string& what) {
        if (!ok) throw configError("camera config: " + what);
    };
    need(nDetX >= 1 && nDetY >= 1, "nDetX and nDetY must be >= 1");
    need(detWidth >= 16 && detHeight >= 16, "detWidth and detHeight must be >= 16");
    need(gap >= 0, "gap must be >= 0");
    need(pixelScaleArcsec > 0, "pixelScaleArcsec must be > 0");
    need(std::abs(distortionAtCorner) < 0.05, "|distortionAtCorner| must be < 0.05");
    need(gain > 0, "gain must be > 0");
    need(readNoise >= 0, "readNoise must be >= 0");
    need(fullWell > 0, "fullWell must be > 0");
}

Camera::Camera(const CameraConfig& config) : _config(config) {
    _config.validate();
}

Box2I Camera::detectorBox() const {
    return Box2I({0, 0}, Extent2I{_config.detWidth, _config.detHeight});
}

Extent2D Camera::origin(int det) const {
    if (det < 0 || det >= detectorCount())
        throw badInput("detector " + std::to_string(det) + " out of range [0, " +
                       std::to_string(detectorCount()) + ")");
    const int ix = det % _config.nDetX, iy = det / _config.nDetX;
    // Total extent (in pixel pitches) of the mosaic; pixel centres of the mosaic span
    // [-(W-1)/2, (W-1)/2] so that the boresight sits at its centre.
    const double w = _config.nDetX * _config.detWidth + (_config.nDetX - 1) * _config.gap;
    const double h = _config.nDetY * _config.detHeight + (_config.nDetY - 1) * _config.gap;
    return {-(w - 1) / 2 + ix * (_config.detWidth + _config.gap),
            -(h - 1) / 2 + iy * (_config.detHeight + _config.gap)};
}

double Camera::cornerRadius() const {
    const double w = _config.nDetX * _config.detWidth + (_config.nDetX - 1) * _config.gap;
    const double h = _config.nDetY * _config.detHeight + (_config.nDetY - 1) * _config.gap;
    return 0.5 * std::hypot(w, h);
}

double Camera::distortionK() const {
    const double r = cornerRadius();
    return _config.distortionAtCorner / (r * r);
}

// Tangent-plane basis at the centre: c (towards the centre), e (east), n (north).
namespace {
struct TangentBasis {
    Eigen::Vector3d c, e, n;
};
TangentBasis basis(const SpherePoint& center) {
    const double a = center.ra().asRadians(), d = center.dec().asRadians();
    TangentBasis b;
    b.c = {std::cos(d) * std::cos(a), std::cos(d) * std::sin(a), std::sin(d)};
    b.e = {-std::sin(a), std::cos(a), 0.0};
    b.n = {-std::sin(d) * std::cos(a), -std::sin(d) * std::sin(a), std::cos(d)};
    return b;
}
constexpr double kRad2Deg = 180.0 / std::numbers::pi;
}  // namespace

Eigen::Vector2d gnomonicProject(const SpherePoint& center, const SpherePoint& p) {
    const auto b = basis(center);
    const auto v = p.toVector();
    const Eigen::Vector3d s(v[0], v[1], v[2]);
    const double z = s.dot(b.c);
    if (!(z > 0))
        throw badInput("gnomonic projection: point more than 90 degrees from the tangent point");
    return {kRad2Deg * s.dot(b.e) / z, kRad2Deg * s.dot(b.n) / z};
}

SpherePoint gnomonicDeproject(const SpherePoint& center, const Eigen::Vector2d& xiEta) {
    const auto b = basis(center);
    const Eigen::Vector3d s = b.c + (xiEta.x() / kRad2Deg) * b.e + (xiEta.y() / kRad2Deg) * b.n;
    return SpherePoint::fromVector({s.x(), s.y(), s.z()});
}

Eigen::Matrix2d TanSip::cdMatrix(Angle pixelScale, Angle rotation) {
    const double s = pixelScale.asDegrees(), c = cos(rotation), sn = sin(rotation);
    Eigen::Matrix2d cd;
    cd << -s * c, s * sn, s * sn, s * c;
    return cd;
}

SpherePoint TanSip::pixelToSky(Point2D pixel) const {
    const double u = pixel.x - _crpix.x, v = pixel.y - _crpix.y;
    const double f = 1.0 + _k * (u * u + v * v);
    return gnomonicDeproject(_crval, _cd * Eigen::Vector2d(u * f, v * f));
}

Point2D TanSip::skyToPixel(const SpherePoint& sky) const {
    const Eigen::Vector2d up = _cdInv * gnomonicProject(_crval, sky);  // distorted (u', v')
    // Radial map: r' = r (1 + k r²); solve for r by Newton from r = r', then scale (u', v').
    const double rp = up.norm();
    double r = rp;
    for (int it = 0; it < 50 && rp > 0; ++it) {
        const double g = r * (1 + _k * r * r) - rp;
        const double dr = g / (1 + 3 * _k * r * r);
        r -= dr;
        if (std::abs(dr) < 1e-12 * (1 + r)) break;
    }
    const double scale = rp > 0 ? r / rp : 1.0;
    return {_crpix.x + up.x() * scale, _crpix.y + up.y() * scale};
}

SipCoefficients TanSip::sip(const Box2I& fitBox, int inverseOrder) const {
    SipCoefficients s;
    s.order = 3;
    s.a = Eigen::MatrixXd::Zero(4, 4);
    s.b = Eigen::MatrixXd::Zero(4, 4);
    s.a(3, 0) = s.a(1, 2) = _k;
    s.b(2, 1) = s.b(0, 3) = _k;
    if (inverseOrder < 2) return s;
    // Inverse polynomial: u = u' + AP(u', v'), fitted on a grid over the box (plus a margin).
    std::vector<std::pair<int, int>> terms;
    for (int p = 0; p <= inverseOrder; ++p)
        for (int q = 0; p + q <= inverseOrder; ++q)
            if (p + q >= 1) terms.emplace_back(p, q);  // include linear terms as SIP allows
    const int n = 24;
    Eigen::MatrixXd m(n * n, static_cast<int>(terms.size()));
    Eigen::VectorXd du(n * n), dv(n * n);
    const Box2D box(fitBox.grownBy(std::max(fitBox.width(), fitBox.height()) / 20));
    int row = 0;
    for (int j = 0; j < n; ++j)
        for (int i = 0; i < n; ++i, ++row) {
            const double u = box.min().x + box.width() * i / (n - 1) - _crpix.x;
            const double v = box.min().y + box.height() * j / (n - 1) - _crpix.y;
            const double f = 1 + _k * (u * u + v * v);
            const double up = u * f, vp = v * f;
            for (std::size_t t = 0; t < terms.size(); ++t)
                m(row, static_cast<int>(t)) =
                    std::pow(up, terms[t].first) * std::pow(vp, terms[t].second);
            du(row) = u - up;
            dv(row) = v - vp;
        }
    // Scale columns for conditioning (u' up to ~1e4 px, so u'^4 ~ 1e16).
    Eigen::VectorXd colScale = m.colwise().norm().transpose();
    for (int c = 0; c < m.cols(); ++c) m.col(c) /= colScale(c);
    auto qr = m.colPivHouseholderQr();
    const Eigen::VectorXd ca = qr.solve(du).cwiseQuotient(colScale);
    const Eigen::VectorXd cb = qr.solve(dv).cwiseQuotient(colScale);
    s.inverseOrder = inverseOrder;
    s.ap = Eigen::MatrixXd::Zero(inverseOrder + 1, inverseOrder + 1);
    s.bp = Eigen::MatrixXd::Zero(inverseOrder + 1, inverseOrder + 1);
    for (std::size_t t = 0; t < terms.size(); ++t) {
        s.ap(terms[t].first, terms[t].second) = ca(static_cast<int>(t));
        s.bp(terms[t].first, terms[t].second) = cb(static_cast<int>(t));
    }
    return s;
}

std::shared_ptr<const Wcs> TanSip::toWcs(const Box2I& fitBox) const {
    return Wcs::makeTanSip(_crval, _crpix, _cd, sip(fitBox));
}

TanSip trueWcs(const Camera& camera, const Pointing& pointing, int det) {
    const Extent2D o = camera.origin(det);
    return TanSip(pointing.boresight, Point2D(-o.x, -o.y),
                  TanSip::cdMatrix(camera.pixelScale(), pointing.rotation), camera.distortionK());
}

}  // namespace drp::sim
