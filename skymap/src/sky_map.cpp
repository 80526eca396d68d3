// SkyMap: tract geometry construction, point lookups, footprint overlaps, definition hash.
#include "drp/skymap/sky_map.h"

#include <charconv>
#include <cmath>
#include <limits>
#include <numbers>

#include "drp/core/atomic_file.h"
#include "drp/core/error.h"

namespace drp {

namespace {
using Vec3 = TangentPlane::Vec3;

Vec3 normalized(Vec3 v) {
    double n = std::sqrt(TangentPlane::dot(v, v));
    return {v[0] / n, v[1] / n, v[2] / n};
}

Angle angleBetween(const Vec3& a, const Vec3& b) {
    Vec3 c{a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]};
    return radians(std::atan2(std::sqrt(TangentPlane::dot(c, c)), TangentPlane::dot(a, b)));
}

/// Area of the part of `poly` inside the box (Sutherland–Hodgman clipping against the four
/// half-planes, then the shoelace formula). Exact for any simple polygon: a convex clip window
/// may leave zero-width slivers, which add no area.
double clippedArea(std::vector<Point2D> poly, const Box2D& box) {
    auto clip = [&](auto inside, auto intersect) {
        std::vector<Point2D> out;
        for (std::size_t i = 0; i < poly.size(); ++i) {
            const Point2D& a = poly[i];
            const Point2D& b = poly[(i + 1) % poly.size()];
            bool ina = inside(a), inb = inside(b);
            if (ina) out.push_back(a);
            if (ina != inb) out.push_back(intersect(a, b));
        }
        poly = std::move(out);
    };
    auto atX = [](double x) {
        return [x](Point2D a, Point2D b) {
            double t = (x - a.x) / (b.x - a.x);
            return Point2D(x, a.y + t * (b.y - a.y));
        };
    };
    auto atY = [](double y) {
        return [y](Point2D a, Point2D b) {
            double t = (y - a.y) / (b.y - a.y);
            return Point2D(a.x + t * (b.x - a.x), y);
        };
    };
    double x0 = box.min().x, x1 = box.max().x, y0 = box.min().y, y1 = box.max().y;
    clip([=](Point2D p) { return p.x >= x0; }, atX(x0));
    if (!poly.empty()) clip([=](Point2D p) { return p.x <= x1; }, atX(x1));
    if (!poly.empty()) clip([=](Point2D p) { return p.y >= y0; }, atY(y0));
    if (!poly.empty()) clip([=](Point2D p) { return p.y <= y1; }, atY(y1));
    double area = 0;
    for (std::size_t i = 0; i < poly.size(); ++i) {
        const Point2D& a = poly[i];
        const Point2D& b = poly[(i + 1) % poly.size()];
        area += a.x * b.y - b.x * a.y;
    }
    return std::abs(area) / 2;
}
}  // namespace

TangentPlane::TangentPlane(SpherePoint centre, Point2D crpix, Angle scale)
    : _sinRa(sin(centre.ra())),
      _cosRa(cos(centre.ra())),
      _sinDec(sin(centre.dec())),
      _cosDec(cos(centre.dec())),
      _crpix(crpix),
      _invScale(1.0 / scale.asRadians()) {
    // FITS default LONPOLE (Calabretta & Greisen 2002, A&A 395, 1077, §2.4): 180° when the
    // reference point is south of the native pole (δ0 < θ0 = 90° for TAN), but 0° when it *is*
    // the north pole — which turns the image by 180°, i.e. east and north both flip: the same
    // as taking α0 + 180° (up to cos δ0 = 6e-17 terms). Follow it so that this plane and the
    // tract's Wcs (WCSLIB, default LONPOLE) agree for the north cap too.
    if (centre.dec() >= degrees(90.0)) {
        _sinRa = -_sinRa;
        _cosRa = -_cosRa;
    }
}

SpherePoint TangentPlane::toSky(Point2D pixel) const {
    double xi = -(pixel.x - _crpix.x) / _invScale;
    double eta = (pixel.y - _crpix.y) / _invScale;
    Vec3 c = centreVector();
    Vec3 e{-_sinRa, _cosRa, 0.0};
    Vec3 n{-_sinDec * _cosRa, -_sinDec * _sinRa, _cosDec};
    Vec3 v;
    for (int k = 0; k < 3; ++k) v[k] = c[k] + xi * e[k] + eta * n[k];
    return SpherePoint::fromVector(v);
}

bool TractInnerRegion::contains(const SpherePoint& p) const {
    if (kind == Kind::Circle) return centre.separation(p) <= radius;
    if (!(p.dec() >= decMin && p.dec() < decMax)) return false;
    return containsU(raOffset(p.ra(), raOrigin));
}

void SkyMap::setTracts(std::vector<TractGeometry> tracts, std::string definition) {
    _tracts = std::move(tracts);
    _lookup.clear();
    _maxBoundingRadius = Angle();
    for (const auto& g : _tracts) {
        _lookup.push_back({g.plane, g.numPatches});
        _maxBoundingRadius = std::max(_maxBoundingRadius, g.boundingRadius);
    }
    _definition = std::move(definition);
    _hash = sha256Hex(_definition);
}

const TractGeometry& SkyMap::tractGeometry(int id) const {
    if (id < 0 || id >= numTracts())
        throw notFound("skymap " + type() + ": no tract " + std::to_string(id) + " (ids 0.." +
                       std::to_string(numTracts() - 1) + ")");
    return _tracts[id];
}

std::optional<TractPatch> SkyMap::findTractPatch(const SpherePoint& p) const {
    auto t = findTract(p);
    if (!t) return std::nullopt;
    return findPatchInTract(*t, p);
}

TractPatch SkyMap::findPatchInTract(int tract, const SpherePoint& p) const {
    if (tract < 0 || tract >= numTracts()) tractGeometry(tract);  // throws not_found
    const LookupEntry& e = _lookup[tract];
    Vec3 v = p.toVector();
    if (!e.plane.inFront(v))
        throw badInput("skymap: position (" + std::to_string(p.ra().asDegrees()) + ", " +
                       std::to_string(p.dec().asDegrees()) +
                       ") deg is more than 90 deg from tract " + std::to_string(tract));
    Point2D pix = e.plane.toPixel(v);
    PatchIndex idx = TractGeometry::patchOf(pix, _tractConfig.patchInnerDimensions, e.numPatches);
    return {tract, idx, idx.y * e.numPatches.x + idx.x, pix};
}

std::vector<TractPatchId> SkyMap::findOverlaps(const std::vector<SpherePoint>& polygon) const {
    if (polygon.size() < 3)
        throw badInput("skymap findOverlaps: a polygon needs at least 3 vertices, got " +
                       std::to_string(polygon.size()));
    std::vector<Vec3> vs;
    Vec3 sum{0, 0, 0};
    for (const auto& p : polygon) {
        vs.push_back(p.toVector());
        for (int k = 0; k < 3; ++k) sum[k] += vs.back()[k];
    }
    Vec3 centre = normalized(sum);
    Angle radius;
    for (const auto& v : vs) radius = std::max(radius, angleBetween(centre, v));
    if (radius > degrees(10.0))
        throw badInput("skymap findOverlaps: polygon extends " +
                       std::to_string(radius.asDegrees()) + " deg from its centre (limit 10)");

    std::vector<TractPatchId> out;
    std::vector<Point2D> pix(vs.size());
    // A great-circle polygon lies inside the cap around its centre through its farthest
    // vertex, and a tract's grid inside the cap of its bounding radius: tracts farther than the
    // sum cannot overlap. One dot product per tract against the largest bounding radius, then
    // the exact test for the few left.
    Angle reachMax = radius + _maxBoundingRadius;
    double cosReachMax = reachMax < degrees(180.0) ? cos(reachMax) : -2.0;
    for (std::size_t t = 0; t < _lookup.size(); ++t) {
        if (TangentPlane::dot(centre, _lookup[t].plane.centreVector()) < cosReachMax) continue;
        const TractGeometry& g = _tracts[t];
        if (angleBetween(centre, g.plane.centreVector()) > radius + g.boundingRadius) continue;
        double xmin = std::numeric_limits<double>::infinity(), xmax = -xmin, ymin = xmin,
               ymax = -xmin;
        for (std::size_t i = 0; i < vs.size(); ++i) {
            // Within 10° + bounding radius (< 25° for any valid config) of the tract centre.
            if (!g.plane.inFront(vs[i]))
                throw logicError("skymap findOverlaps: polygon vertex behind tract " +
                                 std::to_string(g.id));
            pix[i] = g.plane.toPixel(vs[i]);
            xmin = std::min(xmin, pix[i].x);
            xmax = std::max(xmax, pix[i].x);
            ymin = std::min(ymin, pix[i].y);
            ymax = std::max(ymax, pix[i].y);
        }
        // Outer box of patch ix spans [ix·W - border - 0.5, (ix+1)·W + border - 0.5).
        const int w = g.patchInner.x, h = g.patchInner.y, b = g.patchBorder;
        int x0 = std::max(0, int(std::floor((xmin - b + 0.5) / w)));
        int x1 = std::min(g.numPatches.x - 1, int(std::floor((xmax + b + 0.5) / w)));
        int y0 = std::max(0, int(std::floor((ymin - b + 0.5) / h)));
        int y1 = std::min(g.numPatches.y - 1, int(std::floor((ymax + b + 0.5) / h)));
        for (int iy = y0; iy <= y1; ++iy)
            for (int ix = x0; ix <= x1; ++ix) {
                PatchIndex idx{ix, iy};
                if (clippedArea(pix, Box2D(g.patchOuterBox(idx))) > 0)
                    out.push_back({g.id, g.sequentialIndex(idx)});
            }
    }
    return out;  // tracts in id order, patches in sequential order: already sorted and unique
}

PropertyList SkyMap::provenance() const {
    PropertyList p;
    p.set("SKYMAP_TYPE", type(), "skymap type");
    p.set("SKYMAP_HASH", _hash, "SHA-256 of the skymap definition");
    p.set("SKYMAP_NTRACTS", numTracts(), "number of tracts");
    return p;
}

TractGeometry SkyMap::makeGeometry(int id, SpherePoint centre, TractInnerRegion inner,
                                   std::vector<SpherePoint> vertices,
                                   const std::vector<SpherePoint>& boundary,
                                   const TractGeometryConfig& config) {
    TangentPlane offsets(centre, Point2D(0, 0), config.pixelScale);
    double xmin = std::numeric_limits<double>::infinity(), xmax = -xmin, ymin = xmin, ymax = -xmin;
    for (const auto& b : boundary) {
        Vec3 v = b.toVector();
        if (!offsets.inFront(v))
            throw logicError("skymap: tract " + std::to_string(id) +
                             " inner region reaches 90 deg from its centre");
        Point2D p = offsets.toPixel(v);
        xmin = std::min(xmin, p.x);
        xmax = std::max(xmax, p.x);
        ymin = std::min(ymin, p.y);
        ymax = std::max(ymax, p.y);
    }
    // Half the tract overlap on each side (LSST offsets the vertices by tractOverlap/2), plus one
    // pixel so that rounding can never put an inner-region point on the grid's edge.
    double margin = (config.tractOverlap / 2.0) / config.pixelScale + 1.0;
    xmin -= margin;
    xmax += margin;
    ymin -= margin;
    ymax += margin;
    const Extent2I patch = config.patchInnerDimensions;
    Extent2I n{std::max(1, int(std::ceil((xmax - xmin) / patch.x))),
               std::max(1, int(std::ceil((ymax - ymin) / patch.y)))};
    // Centre the region in the grid, whose continuous extent is [-0.5, n·W - 0.5).
    Point2D crpix(n.x * patch.x / 2.0 - 0.5 - (xmin + xmax) / 2,
                  n.y * patch.y / 2.0 - 0.5 - (ymin + ymax) / 2);

    TractGeometry g;
    g.id = id;
    g.centre = centre;
    g.plane = TangentPlane(centre, crpix, config.pixelScale);
    g.numPatches = n;
    g.patchInner = patch;
    g.patchBorder = config.patchBorder;
    g.bbox = Box2I(Point2I{0, 0}, Extent2I{n.x * patch.x, n.y * patch.y});
    g.inner = inner;
    g.vertices = std::move(vertices);
    Box2D edges(g.bbox);
    for (Point2D c : {edges.min(), edges.max(), Point2D(edges.min().x, edges.max().y),
                      Point2D(edges.max().x, edges.min().y)})
        g.boundingRadius = std::max(g.boundingRadius, centre.separation(g.plane.toSky(c)));
    return g;
}

std::string SkyMap::formatNumber(double v) {
    char buf[64];
    // 15 significant digits: every double written from a decimal config value of up to 15
    // digits prints back as that value (0.2 arcsec stays "0.2" after the trip through radians).
    auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general, 15);
    return std::string(buf, r.ptr);
}

std::string SkyMap::tractConfigDefinition(const TractGeometryConfig& c) {
    return "projection = TAN\npixel_scale_arcsec = " + formatNumber(c.pixelScale.asArcseconds()) +
           "\npatch_inner = " + std::to_string(c.patchInnerDimensions.x) + " " +
           std::to_string(c.patchInnerDimensions.y) +
           "\npatch_border = " + std::to_string(c.patchBorder) +
           "\ntract_overlap_arcsec = " + formatNumber(c.tractOverlap.asArcseconds()) + "\n";
}

std::unique_ptr<SkyMap> makeSkyMap(const SkyMapConfig& config) {
    config.validate();
    if (config.type == "rings") return std::make_unique<RingSkyMap>(config.rings);
    return std::make_unique<DiscreteSkyMap>(config.discrete);
}

}  // namespace drp
