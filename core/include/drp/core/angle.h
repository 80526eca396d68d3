// Unit-safe angles.
//
// `Angle` stores radians; there is no implicit conversion to or from double, so a value in
// degrees can never be passed where radians are meant. Construct with the unit helpers
// (`degrees(1.5)`, `arcseconds(0.2)`, `radians(x)`) and read back with `asDegrees()` etc.
#pragma once

#include <cmath>
#include <numbers>

namespace drp {

class Angle final {
public:
    constexpr Angle() noexcept = default;
    static constexpr Angle fromRadians(double r) noexcept { return Angle(r); }

    constexpr double asRadians() const noexcept { return _rad; }
    constexpr double asDegrees() const noexcept { return _rad * (180.0 / std::numbers::pi); }
    constexpr double asArcminutes() const noexcept { return asDegrees() * 60.0; }
    constexpr double asArcseconds() const noexcept { return asDegrees() * 3600.0; }
    constexpr double asMilliarcseconds() const noexcept { return asArcseconds() * 1000.0; }

    /// This angle wrapped into [0, 2π).
    Angle wrap() const noexcept {
        double r = std::fmod(_rad, 2 * std::numbers::pi);
        if (r < 0) r += 2 * std::numbers::pi;
        if (r >= 2 * std::numbers::pi) r = 0.0;  // fmod rounding can give exactly 2π
        return Angle(r);
    }
    /// This angle wrapped into [-π, π).
    Angle wrapCtr() const noexcept {
        double r = Angle(_rad + std::numbers::pi).wrap()._rad - std::numbers::pi;
        return Angle(r);
    }

    constexpr Angle operator+(Angle o) const noexcept { return Angle(_rad + o._rad); }
    constexpr Angle operator-(Angle o) const noexcept { return Angle(_rad - o._rad); }
    constexpr Angle operator-() const noexcept { return Angle(-_rad); }
    constexpr Angle operator*(double s) const noexcept { return Angle(_rad * s); }
    constexpr Angle operator/(double s) const noexcept { return Angle(_rad / s); }
    constexpr double operator/(Angle o) const noexcept { return _rad / o._rad; }
    constexpr Angle& operator+=(Angle o) noexcept { _rad += o._rad; return *this; }
    constexpr Angle& operator-=(Angle o) noexcept { _rad -= o._rad; return *this; }
    constexpr auto operator<=>(const Angle&) const noexcept = default;

private:
    constexpr explicit Angle(double r) noexcept : _rad(r) {}
    double _rad = 0.0;
};

constexpr Angle operator*(double s, Angle a) noexcept { return a * s; }
constexpr Angle radians(double r) noexcept { return Angle::fromRadians(r); }
constexpr Angle degrees(double d) noexcept { return Angle::fromRadians(d * std::numbers::pi / 180.0); }
constexpr Angle arcminutes(double m) noexcept { return degrees(m / 60.0); }
constexpr Angle arcseconds(double s) noexcept { return degrees(s / 3600.0); }
constexpr Angle milliarcseconds(double s) noexcept { return arcseconds(s / 1000.0); }

inline double sin(Angle a) noexcept { return std::sin(a.asRadians()); }
inline double cos(Angle a) noexcept { return std::cos(a.asRadians()); }
inline double tan(Angle a) noexcept { return std::tan(a.asRadians()); }
inline Angle abs(Angle a) noexcept { return radians(std::abs(a.asRadians())); }

}  // namespace drp
