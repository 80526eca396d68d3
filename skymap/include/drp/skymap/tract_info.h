// Tracts and patches.
//
// A tract is a region of sky with one TAN projection and one pixel grid; the grid is cut into
// patches. Each tract owns an *inner region* on the sky, and the inner regions of all tracts of
// a skymap are disjoint (a RingSkyMap's cover the whole sphere), so every point has one owning
// tract. Inside a tract, every pixel position belongs to exactly one patch *inner box*; a patch's
// *outer box* is the inner box grown by the border and clipped to the tract, so neighbouring
// patches overlap and objects near patch edges are measured whole in at least one patch. An
// object is "primary" when it lies in the inner region of its tract and the inner box of its
// patch (DESIGN.md "Sky partition"; LSST setPrimaryFlags).
//
// Pixel convention (core/geometry.h): pixel (i, j) is centred at (i, j); a tract's grid starts
// at pixel (0, 0) and patch (x, y) has inner box [x·W, (x+1)·W - 1] × [y·H, (y+1)·H - 1], i.e.
// continuous coordinates [x·W - 0.5, (x+1)·W - 0.5) × ... .
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <compare>
#include <memory>
#include <vector>

#include "drp/core/angle.h"
#include "drp/core/geometry.h"
#include "drp/core/sphere_point.h"
#include "drp/core/wcs.h"

namespace drp {

/// Gnomonic (TAN) projection about a tangent point (α0, δ0), on unit vectors: the same mapping
/// as the tract's Wcs (CRVAL = tangent point, CD = diag(-scale, scale): north up, east left),
/// written so that a sky -> (tract, patch) lookup needs no trigonometry beyond the point's own
/// sin/cos and touches one cache line per tract. With c = centre, e = east, n = north unit
/// vectors of the tangent point and v the point:
///   xi  = (v·e) / (v·c),  eta = (v·n) / (v·c)          (standard coordinates, radians)
///   x   = crpix.x - xi / scale,   y = crpix.y + eta / scale
/// where, with a = cos α0 v_x + sin α0 v_y:  v·c = cos δ0 a + sin δ0 v_z,
/// v·e = cos α0 v_y - sin α0 v_x,  v·n = cos δ0 v_z - sin δ0 a.  Tests check it against
/// Wcs::skyToPixel.
class TangentPlane final {
  public:
    using Vec3 = std::array<double, 3>;
    TangentPlane() = default;
    TangentPlane(SpherePoint centre, Point2D crpix, Angle scale);

    /// Pixel position of a unit vector; valid only when inFront(v).
    Point2D toPixel(const Vec3& v) const {
        double a = _cosRa * v[0] + _sinRa * v[1];
        double k = _invScale / (_cosDec * a + _sinDec * v[2]);
        return {_crpix.x - (_cosRa * v[1] - _sinRa * v[0]) * k,
                _crpix.y + (_cosDec * v[2] - _sinDec * a) * k};
    }
    Point2D toPixel(const SpherePoint& p) const { return toPixel(p.toVector()); }
    /// True when v is on the hemisphere centred on the tangent point (where TAN is defined).
    bool inFront(const Vec3& v) const {
        return _cosDec * (_cosRa * v[0] + _sinRa * v[1]) + _sinDec * v[2] > 0;
    }
    /// Inverse projection.
    SpherePoint toSky(Point2D pixel) const;

    Point2D crpix() const { return _crpix; }
    Angle scale() const { return radians(1.0 / _invScale); }
    Vec3 centreVector() const { return {_cosDec * _cosRa, _cosDec * _sinRa, _sinDec}; }

    static double dot(const Vec3& a, const Vec3& b) {
        return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
    }

  private:
    double _sinRa = 0, _cosRa = 1, _sinDec = 0, _cosDec = 1;
    Point2D _crpix{};
    double _invScale = 1;  // pixels per radian
};

/// A tract's inner region on the sky.
///  * RaDecBox: dec in [decMin, decMax) and RA in a half-open interval (RingSkyMap; a polar cap
///    is a box with all RA and decMin = -inf or decMax = +inf). RA is compared as
///    u = (ra - raOrigin) wrapped into [0, 2π): inside when u in [uMin, uMax), or — for the
///    tract straddling raOrigin — when u >= uMin or u < uMax. The ring lookup uses the very same
///    numbers and comparisons, so membership and lookup agree to the last bit.
///  * Circle: within `radius` of `centre` (DiscreteSkyMap; where circles overlap the nearest
///    tract centre owns the point — a rule of the skymap, see SkyMap::findTract).
struct TractInnerRegion {
    enum class Kind { RaDecBox, Circle };
    Kind kind = Kind::RaDecBox;
    // RaDecBox
    Angle decMin, decMax;
    Angle raOrigin;
    double uMin = 0, uMax = 0;  ///< radians
    bool allRa = false;
    // Circle
    SpherePoint centre;
    Angle radius;

    /// RA of the box's west and east edges (raMin may exceed raMax: the box contains RA 0).
    Angle raMin() const { return (raOrigin + radians(uMin)).wrap(); }
    Angle raMax() const { return (raOrigin + radians(uMax)).wrap(); }
    bool contains(const SpherePoint& p) const;
    /// u = (ra - origin) wrapped into [0, 2π), in radians: the one formula used for RA tests.
    static double raOffset(Angle ra, Angle origin) { return (ra - origin).wrap().asRadians(); }
    /// The RaDecBox RA test on a precomputed u (see above).
    bool containsU(double u) const {
        if (allRa) return true;
        return uMin <= uMax ? (u >= uMin && u < uMax) : (u >= uMin || u < uMax);
    }
};

struct PatchIndex {
    int x = 0, y = 0;
    constexpr auto operator<=>(const PatchIndex&) const = default;
};

/// Everything about a tract that needs no Wcs: what the skymap keeps for all its tracts.
struct TractGeometry {
    int id = 0;
    SpherePoint centre;
    TangentPlane plane;  ///< the tract's projection, pixel (0,0) = lower-left grid pixel
    Box2I bbox;          ///< (0,0) .. numPatches × patch inner dimensions
    Extent2I numPatches;
    Extent2I patchInner;
    int patchBorder = 0;
    TractInnerRegion inner;
    std::vector<SpherePoint> vertices;  ///< inner-region corners (caps: 4 points on the edge)
    Angle boundingRadius;               ///< max distance from the centre to a bbox corner

    /// Patch whose inner box contains continuous pixel position `p`. Positions outside the patch
    /// grid go to the nearest edge patch (indices clamped): the edge patches' inner boxes
    /// extend to infinity for ownership, so every position has exactly one patch. (A tract's
    /// inner region projects inside its grid by construction — the grid encloses it with half
    /// the tract overlap plus one pixel to spare — so clamping only matters for positions
    /// outside the inner region, i.e. non-primary ones.)
    PatchIndex findPatch(Point2D p) const { return patchOf(p, patchInner, numPatches); }
    /// The rule behind findPatch, for a grid of `n` patches of `inner` pixels.
    static PatchIndex patchOf(Point2D p, Extent2I inner, Extent2I n) {
        int ix = static_cast<int>(std::floor((p.x + 0.5) / inner.x));
        int iy = static_cast<int>(std::floor((p.y + 0.5) / inner.y));
        return {std::clamp(ix, 0, n.x - 1), std::clamp(iy, 0, n.y - 1)};
    }
    int sequentialIndex(PatchIndex i) const { return i.y * numPatches.x + i.x; }
    Box2I patchInnerBox(PatchIndex i) const {
        return Box2I(Point2I{i.x * patchInner.x, i.y * patchInner.y}, patchInner);
    }
    Box2I patchOuterBox(PatchIndex i) const {
        return patchInnerBox(i).grownBy(patchBorder).clippedTo(bbox);
    }
};

/// One patch: its index, inner and outer boxes (tract pixels) and their sky polygons.
class PatchInfo final {
  public:
    PatchInfo(PatchIndex index, int sequentialIndex, Box2I inner, Box2I outer,
              std::vector<SpherePoint> innerSky, std::vector<SpherePoint> outerSky)
        : _index(index),
          _seq(sequentialIndex),
          _inner(inner),
          _outer(outer),
          _innerSky(std::move(innerSky)),
          _outerSky(std::move(outerSky)) {}

    PatchIndex index() const { return _index; }
    /// y * numPatches.x + x: the patch id used in data ids and object ids.
    int sequentialIndex() const { return _seq; }
    Box2I innerBBox() const { return _inner; }
    Box2I outerBBox() const { return _outer; }
    /// Corners (counter-clockwise in pixels: lower-left, lower-right, upper-right, upper-left)
    /// of the inner / outer box edges (pixel edges at ±0.5) on the sky. TAN maps great circles
    /// to straight lines, so these 4-vertex great-circle polygons are the boxes exactly.
    const std::vector<SpherePoint>& innerSkyPolygon() const { return _innerSky; }
    const std::vector<SpherePoint>& outerSkyPolygon() const { return _outerSky; }

  private:
    PatchIndex _index;
    int _seq;
    Box2I _inner, _outer;
    std::vector<SpherePoint> _innerSky, _outerSky;
};

/// One tract: geometry plus its Wcs (made with Wcs::makeTan when the TractInfo is made, so a
/// skymap of 19k tracts holds no WCSLIB objects until someone asks for a tract).
class TractInfo final {
  public:
    explicit TractInfo(TractGeometry geometry);

    int id() const { return _g.id; }
    SpherePoint centre() const { return _g.centre; }
    const std::shared_ptr<const Wcs>& wcs() const { return _wcs; }
    Box2I bbox() const { return _g.bbox; }
    Extent2I numPatches() const { return _g.numPatches; }
    int numPatchesTotal() const { return _g.numPatches.x * _g.numPatches.y; }
    const TractInnerRegion& innerRegion() const { return _g.inner; }
    /// Corners of the inner region on the sky.
    const std::vector<SpherePoint>& vertices() const { return _g.vertices; }
    const TractGeometry& geometry() const { return _g; }

    PatchInfo patch(PatchIndex index) const;
    /// By sequential index y * nx + x.
    PatchInfo patch(int sequentialIndex) const;
    /// The patch owning a continuous pixel position (see TractGeometry::findPatch).
    PatchIndex findPatch(Point2D pixel) const { return _g.findPatch(pixel); }
    /// The patch owning a sky position (pixel via this tract's projection).
    PatchIndex findPatch(const SpherePoint& p) const { return _g.findPatch(_g.plane.toPixel(p)); }

  private:
    TractGeometry _g;
    std::shared_ptr<const Wcs> _wcs;
};

}  // namespace drp
