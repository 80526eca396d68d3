// Pixel-plane geometry: points, extents and boxes.
//
// PIXEL CONVENTION (used by every drp type and algorithm):
//   * Integer pixel (i, j) is the pixel whose *centre* is at continuous coordinate (i, j);
//     it covers [i - 0.5, i + 0.5) × [j - 0.5, j + 0.5).
//   * Coordinates are "parent" coordinates: an image carries its own origin `xy0`, and the
//     pixel at array index (0, 0) is parent pixel xy0. The lower-left pixel of a full detector is
//     (0, 0).
//   * x runs along FITS NAXIS1 (columns, fastest in memory), y along NAXIS2 (rows).
//   * FITS is 1-based (the centre of the first pixel is 1.0): that offset lives only in io/ and
//     in the WCS header conversion, never in algorithm code.
#pragma once

#include <algorithm>
#include <cmath>
#include <compare>
#include <cstdint>
#include <limits>
#include <ostream>

namespace drp {

struct Extent2I final {
    int x = 0, y = 0;
    constexpr auto operator<=>(const Extent2I&) const = default;
    constexpr Extent2I operator+(Extent2I o) const { return {x + o.x, y + o.y}; }
    constexpr Extent2I operator-(Extent2I o) const { return {x - o.x, y - o.y}; }
};

struct Point2I final {
    int x = 0, y = 0;
    constexpr auto operator<=>(const Point2I&) const = default;
    constexpr Point2I operator+(Extent2I e) const { return {x + e.x, y + e.y}; }
    constexpr Point2I operator-(Extent2I e) const { return {x - e.x, y - e.y}; }
    constexpr Extent2I operator-(Point2I o) const { return {x - o.x, y - o.y}; }
};

struct Extent2D final {
    double x = 0, y = 0;
    constexpr bool operator==(const Extent2D&) const = default;
    constexpr Extent2D operator+(Extent2D o) const { return {x + o.x, y + o.y}; }
    constexpr Extent2D operator-(Extent2D o) const { return {x - o.x, y - o.y}; }
    constexpr Extent2D operator*(double s) const { return {x * s, y * s}; }
    double norm() const { return std::hypot(x, y); }
};

struct Point2D final {
    double x = 0, y = 0;
    constexpr Point2D() = default;
    constexpr Point2D(double x_, double y_) : x(x_), y(y_) {}
    constexpr explicit Point2D(Point2I p) : x(p.x), y(p.y) {}
    constexpr bool operator==(const Point2D&) const = default;
    constexpr Point2D operator+(Extent2D e) const { return {x + e.x, y + e.y}; }
    constexpr Point2D operator-(Extent2D e) const { return {x - e.x, y - e.y}; }
    constexpr Extent2D operator-(Point2D o) const { return {x - o.x, y - o.y}; }
    /// The integer pixel containing this point (see the pixel convention above).
    Point2I nearestPixel() const {
        return {static_cast<int>(std::floor(x + 0.5)), static_cast<int>(std::floor(y + 0.5))};
    }
};

inline std::ostream& operator<<(std::ostream& os, Point2I p) { return os << "(" << p.x << ", " << p.y << ")"; }
inline std::ostream& operator<<(std::ostream& os, Point2D p) { return os << "(" << p.x << ", " << p.y << ")"; }

/// An integer box of pixels, min and max both inclusive. An empty box has width or height 0.
class Box2I final {
public:
    constexpr Box2I() = default;
    /// Box with lower-left pixel `min` and dimensions `dims` (negative dims give an empty box).
    constexpr Box2I(Point2I min, Extent2I dims)
        : _min(min), _dims{std::max(0, dims.x), std::max(0, dims.y)} {}
    /// Box from inclusive corners.
    static constexpr Box2I fromCorners(Point2I min, Point2I max) {
        return Box2I(min, Extent2I{max.x - min.x + 1, max.y - min.y + 1});
    }

    constexpr Point2I min() const { return _min; }
    constexpr Point2I max() const { return {_min.x + _dims.x - 1, _min.y + _dims.y - 1}; }
    constexpr int minX() const { return _min.x; }
    constexpr int minY() const { return _min.y; }
    constexpr int maxX() const { return _min.x + _dims.x - 1; }
    constexpr int maxY() const { return _min.y + _dims.y - 1; }
    /// One past the last pixel (half-open end), for loops.
    constexpr int endX() const { return _min.x + _dims.x; }
    constexpr int endY() const { return _min.y + _dims.y; }
    constexpr int width() const { return _dims.x; }
    constexpr int height() const { return _dims.y; }
    constexpr Extent2I dimensions() const { return _dims; }
    constexpr std::int64_t area() const { return std::int64_t(_dims.x) * _dims.y; }
    constexpr bool empty() const { return _dims.x == 0 || _dims.y == 0; }

    constexpr bool contains(Point2I p) const {
        return p.x >= _min.x && p.x < endX() && p.y >= _min.y && p.y < endY();
    }
    constexpr bool contains(const Box2I& b) const {
        return b.empty() || (b.minX() >= minX() && b.maxX() <= maxX() && b.minY() >= minY() &&
                             b.maxY() <= maxY());
    }
    constexpr bool overlaps(const Box2I& b) const { return !clippedTo(b).empty(); }

    /// Intersection (empty when the boxes do not overlap).
    constexpr Box2I clippedTo(const Box2I& b) const {
        if (empty() || b.empty()) return {};
        Point2I lo{std::max(minX(), b.minX()), std::max(minY(), b.minY())};
        Point2I hi{std::min(maxX(), b.maxX()), std::min(maxY(), b.maxY())};
        if (hi.x < lo.x || hi.y < lo.y) return {};
        return fromCorners(lo, hi);
    }
    /// Grown by n pixels on every side (shrunk for n < 0).
    constexpr Box2I grownBy(int n) const {
        return Box2I(Point2I{_min.x - n, _min.y - n}, Extent2I{_dims.x + 2 * n, _dims.y + 2 * n});
    }
    constexpr Box2I shiftedBy(Extent2I e) const { return Box2I(_min + e, _dims); }
    /// Smallest box containing both.
    constexpr Box2I expandedToInclude(const Box2I& b) const {
        if (empty()) return b;
        if (b.empty()) return *this;
        return fromCorners({std::min(minX(), b.minX()), std::min(minY(), b.minY())},
                           {std::max(maxX(), b.maxX()), std::max(maxY(), b.maxY())});
    }
    constexpr bool operator==(const Box2I& o) const {
        return (empty() && o.empty()) || (_min == o._min && _dims == o._dims);
    }

private:
    Point2I _min{};
    Extent2I _dims{};
};

/// A floating-point box, [min, max] in continuous pixel coordinates.
class Box2D final {
public:
    constexpr Box2D() = default;
    constexpr Box2D(Point2D min, Point2D max) : _min(min), _max(max) {}
    /// The continuous area covered by the pixels of an integer box (edges at ±0.5).
    explicit constexpr Box2D(const Box2I& b)
        : _min(b.minX() - 0.5, b.minY() - 0.5), _max(b.maxX() + 0.5, b.maxY() + 0.5) {
        if (b.empty()) *this = Box2D();
    }
    constexpr Point2D min() const { return _min; }
    constexpr Point2D max() const { return _max; }
    constexpr double width() const { return std::max(0.0, _max.x - _min.x); }
    constexpr double height() const { return std::max(0.0, _max.y - _min.y); }
    constexpr bool empty() const { return !(_max.x > _min.x && _max.y > _min.y); }
    constexpr Point2D center() const { return {(_min.x + _max.x) / 2, (_min.y + _max.y) / 2}; }
    /// Half-open containment [min, max), so adjacent boxes share no point.
    constexpr bool contains(Point2D p) const {
        return p.x >= _min.x && p.x < _max.x && p.y >= _min.y && p.y < _max.y;
    }
    constexpr Box2D expandedToInclude(Point2D p) const {
        if (empty() && _min == Point2D() && _max == Point2D()) return {p, p};
        return {{std::min(_min.x, p.x), std::min(_min.y, p.y)},
                {std::max(_max.x, p.x), std::max(_max.y, p.y)}};
    }

private:
    Point2D _min{}, _max{};
};

}  // namespace drp
