// Camera geometry and the true (TAN-SIP) world coordinate system of a simulated exposure.
//
// The focal plane is a grid of nDetX × nDetY identical detectors separated by gaps, with the
// boresight at its centre. Positions on it are "focal-plane pixels" (u, v): the detector pixel
// grid extended across the gaps, origin at the boresight, axes parallel to every detector's
// (detectors are not individually rotated). Detector d's pixel (x, y) (pixel convention of
// core/geometry.h) is at (u, v) = (x, y) + origin(d).
//
// Optics. The telescope maps the focal plane to the sky with a radial (pincushion/barrel)
// distortion written directly in SIP form (Shupe et al. 2005, ASP Conf. Ser. 347, 491):
//   u' = u (1 + k r²),  v' = v (1 + k r²),  r² = u² + v²,
//   (ξ, η) = CD (u', v'),   sky = gnomonic (TAN) deprojection of (ξ, η) about the boresight,
// so the true WCS of every detector is *exactly* a TAN-SIP WCS of order 3 with
// CRVAL = boresight, CRPIX = -origin(d), CD = pixel scale × rotation, A_30 = A_12 = B_21 = B_03 =
// k. k is set by `distortionAtCorner`, the fractional radial stretch at the focal-plane corner.
//
// CD convention: CD = s [[-cos θ, sin θ], [sin θ, cos θ]] (s in degrees per pixel): for θ = 0 north
// is +y and east is -x (the usual sky orientation); θ is the camera rotation angle.
#pragma once

#include <string>
#include <vector>

#include <Eigen/Core>

#include "drp/core/angle.h"
#include "drp/core/geometry.h"
#include "drp/core/sphere_point.h"
#include "drp/core/wcs.h"

namespace drp::sim {

struct CameraConfig final {
    int nDetX = 2;                     ///< detectors along x
    int nDetY = 2;                     ///< detectors along y
    int detWidth = 512;                ///< pixels along x per detector
    int detHeight = 512;               ///< pixels along y per detector
    int gap = 40;                      ///< pixels between neighbouring detectors
    double pixelScaleArcsec = 0.2;     ///< arcsec per pixel (LSST: 0.2)
    double distortionAtCorner = 1e-3;  ///< fractional radial stretch at the focal-plane corner
    double gain = 1.7;                 ///< electrons per ADU (LSSTCam-like)
    double readNoise = 9.0;            ///< electrons rms (LSST requirement: < 9 e-)
    double fullWell = 1.0e5;           ///< saturation level, electrons (LSSTCam ~1e5)
    void validate() const;             ///< throws Error(config) naming the bad field
};

class Camera final {
  public:
    explicit Camera(const CameraConfig& config);

    const CameraConfig& config() const { return _config; }
    int detectorCount() const { return _config.nDetX * _config.nDetY; }
    /// Pixel box of every detector, (0, 0) to (width-1, height-1).
    Box2I detectorBox() const;
    /// Focal-plane position of detector `det`'s pixel (0, 0); detectors are numbered row-major
    /// from the lower-left (det = iy * nDetX + ix).
    Extent2D origin(int det) const;
    Point2D toFocalPlane(int det, Point2D pixel) const { return pixel + origin(det); }
    /// Radius (focal-plane pixels) of the farthest detector corner from the boresight.
    double cornerRadius() const;
    /// SIP radial coefficient k (pixel⁻²).
    double distortionK() const;
    Angle pixelScale() const { return arcseconds(_config.pixelScaleArcsec); }

  private:
    CameraConfig _config;
};

/// Gnomonic (TAN) projection helpers about a tangent point: (ξ, η) in degrees, ξ towards east.
Eigen::Vector2d gnomonicProject(const SpherePoint& center, const SpherePoint& p);
SpherePoint gnomonicDeproject(const SpherePoint& center, const Eigen::Vector2d& xiEta);

/// A TAN-SIP WCS with the radial SIP distortion above, evaluated without WCSLIB: the simulator's
/// truth, against which drp::Wcs (WCSLIB) is tested.
class TanSip final {
  public:
    TanSip() = default;
    TanSip(SpherePoint crval, Point2D crpix, const Eigen::Matrix2d& cd, double k)
        : _crval(crval), _crpix(crpix), _cd(cd), _cdInv(cd.inverse()), _k(k) {}
    /// CD matrix for a pixel scale and a rotation angle (convention in the file comment).
    static Eigen::Matrix2d cdMatrix(Angle pixelScale, Angle rotation);

    SpherePoint pixelToSky(Point2D pixel) const;
    /// Inverse of pixelToSky (Newton iteration on the distortion; converges to < 1e-10 px).
    Point2D skyToPixel(const SpherePoint& sky) const;

    const SpherePoint& crval() const { return _crval; }
    Point2D crpix() const { return _crpix; }  ///< 0-based
    const Eigen::Matrix2d& cd() const { return _cd; }
    double k() const { return _k; }
    /// The SIP coefficients: forward (order 3) exact; the inverse (AP, BP) of `inverseOrder`
    /// fitted by least squares over `fitBox` (the detector), as FITS readers without iteration
    /// (DS9) need it.
    SipCoefficients sip(const Box2I& fitBox, int inverseOrder = 5) const;
    /// As a drp::Wcs (WCSLIB-backed TAN-SIP), e.g. to write into a FITS header.
    std::shared_ptr<const Wcs> toWcs(const Box2I& fitBox) const;

  private:
    SpherePoint _crval;
    Point2D _crpix;
    Eigen::Matrix2d _cd = Eigen::Matrix2d::Identity();
    Eigen::Matrix2d _cdInv = Eigen::Matrix2d::Identity();
    double _k = 0.0;
};

/// A visit's pointing: boresight and camera rotation angle.
struct Pointing final {
    SpherePoint boresight;
    Angle rotation;
};

/// The true WCS of detector `det` for `pointing`.
TanSip trueWcs(const Camera& camera, const Pointing& pointing, int det);

}  // namespace drp::sim
