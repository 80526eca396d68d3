// A point on the celestial sphere (ICRS), longitude = RA, latitude = Dec.
#pragma once

#include <array>
#include <cmath>
#include <numbers>

#include "drp/core/angle.h"

namespace drp {

class SpherePoint final {
public:
    constexpr SpherePoint() = default;
    /// RA is wrapped into [0, 360°); Dec must lie in [-90°, 90°].
    SpherePoint(Angle ra, Angle dec) : _ra(ra.wrap()), _dec(dec) {}
    static SpherePoint fromDegrees(double ra, double dec) { return {degrees(ra), degrees(dec)}; }
    /// From a (not necessarily normalised, non-zero) Cartesian vector.
    static SpherePoint fromVector(const std::array<double, 3>& v) {
        double ra = std::atan2(v[1], v[0]);
        double dec = std::atan2(v[2], std::hypot(v[0], v[1]));
        return {radians(ra), radians(dec)};
    }

    Angle ra() const { return _ra; }
    Angle dec() const { return _dec; }

    std::array<double, 3> toVector() const {
        double cd = cos(_dec);
        return {cd * cos(_ra), cd * sin(_ra), sin(_dec)};
    }

    /// Great-circle distance (haversine-accurate at small separations).
    Angle separation(const SpherePoint& o) const {
        auto a = toVector(), b = o.toVector();
        std::array<double, 3> c{a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2],
                                a[0] * b[1] - a[1] * b[0]};
        double s = std::sqrt(c[0] * c[0] + c[1] * c[1] + c[2] * c[2]);
        double d = a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
        return radians(std::atan2(s, d));
    }

    /// Position angle of `o` seen from here, east of north.
    Angle bearingTo(const SpherePoint& o) const {
        double dra = (o._ra - _ra).asRadians();
        double y = std::sin(dra) * cos(o._dec);
        double x = cos(_dec) * sin(o._dec) - sin(_dec) * cos(o._dec) * std::cos(dra);
        return radians(std::atan2(y, x));
    }

    /// The point reached by moving `distance` along the great circle at position angle `bearing`
    /// (east of north).
    SpherePoint offset(Angle bearing, Angle distance) const {
        double sd = sin(_dec), cd = cos(_dec), sr = sin(distance), cr = cos(distance);
        double dec2 = std::asin(sd * cr + cd * sr * cos(bearing));
        double ra2 = _ra.asRadians() +
                     std::atan2(sin(bearing) * sr * cd, cr - sd * std::sin(dec2));
        return {radians(ra2), radians(dec2)};
    }

    bool operator==(const SpherePoint&) const = default;

private:
    Angle _ra{}, _dec{};
};

}  // namespace drp
