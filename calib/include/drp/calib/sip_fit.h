// Linear least-squares fit of a TAN-SIP WCS to matched (pixel, sky) pairs.
//
// In the gnomonic tangent plane about a point T, standard coordinates (ξ, η) (east, north) of
// the sky positions are modelled as full 2-D polynomials of the pixel offsets (u, v) = pixel -
// CRPIX:
//
//     (ξ, η) = Σ_{p+q ≤ order} c_pq u^p v^q ,   c_pq ∈ R²
//
// which is linear in the coefficients: one weighted least-squares solve (Eigen QR, basis scaled
// to the detector half-size for conditioning). The constant term is the tangent-plane position
// of CRPIX; T is moved there and the fit repeated until it vanishes, so CRVAL = T is the sky
// position of CRPIX as TAN-SIP requires. Then CD = (c_10, c_01) and the SIP coefficients are
// (A_pq, B_pq) = CD⁻¹ c_pq for 2 ≤ p+q ≤ order (Shupe et al. 2005: ξ = CD·(u + A(u,v),
// v + B(u,v))). The inverse polynomials AP/BP (1 ≤ p+q ≤ inverseOrder; WCSLIB has no constant
// term for them) are fitted by least squares to the forward map sampled on a grid over the
// detector; WCSLIB's sky→pixel only uses them as a starting point (drp::Wcs Newton-polishes).
#pragma once

#include <memory>
#include <vector>

#include <Eigen/Core>

#include "drp/core/geometry.h"
#include "drp/core/sphere_point.h"
#include "drp/core/wcs.h"

namespace drp {

/// Gnomonic projection about a tangent point: standard coordinates (ξ east, η north) in degrees.
class TangentPlane final {
  public:
    explicit TangentPlane(const SpherePoint& centre);
    Eigen::Vector2d project(const SpherePoint& p) const;
    SpherePoint deproject(const Eigen::Vector2d& xiEtaDeg) const;
    const SpherePoint& centre() const { return _centre; }

  private:
    SpherePoint _centre;
    std::array<double, 3> _p0, _east, _north;
};

struct SipFitInput {
    std::vector<Point2D> pixels;   ///< 0-based pixel positions
    std::vector<SpherePoint> sky;  ///< matched sky positions
    std::vector<double> sigma;     ///< per-pair positional error [arcsec] (isotropic), > 0
};

struct SipFit {
    SpherePoint crval;
    Point2D crpix;
    Eigen::Matrix2d cd;   ///< degrees per pixel
    SipCoefficients sip;  ///< order 0 means a pure TAN fit (order 1 requested)
    int order = 1;
    /// Residuals sky - model in the tangent plane at crval, (ξ, η) in milliarcseconds.
    std::vector<Eigen::Vector2d> residualsMas;
    double chi2 = 0.0;
    double dof = 0.0;
    double maxInverseErrorPixels = 0.0;  ///< |AP/BP inverse - exact| on the fit grid
    /// sky = model(pixel) using the fitted polynomial directly (no WCSLIB): for iterations.
    SpherePoint apply(Point2D pixel) const;
    /// The drp::Wcs (TAN for order 1, TAN-SIP otherwise).
    std::shared_ptr<const Wcs> makeWcs() const;
};

/// Fit a TAN(-SIP) WCS of polynomial `order` (1: TAN only) with the inverse of `inverseOrder`
/// (0: none; else >= 1) fitted over `bbox`. `crpix` is fixed (usually the detector centre);
/// `tangentGuess` starts the tangent-point iteration. Throws Error("astrometry_failed") if the
/// pairs cannot constrain the polynomial (fewer pairs than terms, degenerate geometry).
SipFit fitTanSip(const SipFitInput& input, Point2D crpix, const SpherePoint& tangentGuess,
                 int order, int inverseOrder, const Box2D& bbox);

}  // namespace drp
