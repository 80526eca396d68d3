// World coordinate systems: pixel <-> ICRS sky, backed by WCSLIB (no hand-written projection
// maths). TAN and TAN-SIP are first-class (made, fitted, written); anything WCSLIB reads from a
// FITS header (e.g. DECam's TPV) can be used for pixel<->sky.
//
// Pixel convention: drp pixel coordinates are 0-based (geometry.h). FITS CRPIX is 1-based, so a
// header's CRPIX is ours + 1; the conversion happens only inside this class.
//
// Thread compatibility: a Wcs is immutable after construction; const methods may be called
// concurrently.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "drp/core/angle.h"
#include "drp/core/geometry.h"
#include "drp/core/sphere_point.h"

namespace drp {

/// SIP distortion polynomials (Shupe et al. 2005): u,v = pixel - CRPIX;
///   x' = u + Σ A_pq u^p v^q, y' = v + Σ B_pq u^p v^q   (p+q in [2, order])
/// with the inverse AP/BP (may be empty: then sky->pixel is inverted iteratively).
struct SipCoefficients {
    int order = 0;         ///< forward order (A, B)
    Eigen::MatrixXd a, b;  ///< (order+1)², a(p, q)
    int inverseOrder = 0;  ///< inverse order (AP, BP); 0: none
    Eigen::MatrixXd ap, bp;
};

/// Local linear approximation of pixel -> sky around a point: offsets in the tangent plane at
/// `sky` (east, north), in degrees, as `jacobian * (pixel - pixel0)`.
struct LocalAffine {
    Point2D pixel0;
    SpherePoint sky;
    Eigen::Matrix2d jacobian;  ///< d(east, north)[deg] / d(x, y)[pixel]
};

class Wcs final {
  public:
    /// Parse a FITS header (concatenated 80-character cards) with WCSLIB.
    /// Throws Error(bad_input) naming `source` if no valid celestial WCS is found.
    static std::shared_ptr<const Wcs> fromFitsHeader(const std::string& cards,
                                                     const std::string& source = "header");
    /// A TAN WCS: `crval` at 0-based pixel `crpix`; `cd` in degrees per pixel.
    static std::shared_ptr<const Wcs> makeTan(SpherePoint crval, Point2D crpix,
                                              const Eigen::Matrix2d& cd);
    /// A TAN-SIP WCS.
    static std::shared_ptr<const Wcs> makeTanSip(SpherePoint crval, Point2D crpix,
                                                 const Eigen::Matrix2d& cd,
                                                 const SipCoefficients& sip);

    ~Wcs();
    Wcs(const Wcs&) = delete;
    Wcs& operator=(const Wcs&) = delete;

    SpherePoint pixelToSky(Point2D pixel) const;
    Point2D skyToPixel(const SpherePoint& sky) const;
    std::vector<SpherePoint> pixelToSky(const std::vector<Point2D>& pixels) const;
    std::vector<Point2D> skyToPixel(const std::vector<SpherePoint>& sky) const;

    /// Linearisation of pixel -> sky at `pixel`.
    LocalAffine linearize(Point2D pixel) const;
    /// Geometric-mean pixel scale at `pixel` (sqrt |det J|).
    Angle pixelScale(Point2D pixel) const;

    /// The same mapping on pixel coordinates shifted by `offset`: result->pixelToSky(p) ==
    /// pixelToSky(p + offset) (to rounding; exactly CRPIX - offset for TAN/TAN-SIP). Used to
    /// move between parent coordinates and a FITS file's array coordinates (xy0).
    std::shared_ptr<const Wcs> shiftedBy(Extent2D offset) const;

    /// FITS header cards (80-char each, concatenated) describing this WCS; round-trips through
    /// fromFitsHeader exactly for TAN/TAN-SIP.
    std::string toFitsHeader() const;

    SpherePoint crval() const;
    Point2D crpix() const;               ///< 0-based
    Eigen::Matrix2d cd() const;          ///< degrees per pixel
    const SipCoefficients* sip() const;  ///< nullptr if not TAN-SIP (or not made by drp)
    std::string projection() const;      ///< "TAN", "TAN-SIP", "TPV", ...

  private:
    struct Impl;
    explicit Wcs(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> _impl;
};

}  // namespace drp
