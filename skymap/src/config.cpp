#include "drp/skymap/config.h"

#include <cmath>
#include <sstream>

#include "drp/core/error.h"

namespace drp {

namespace {
template <typename T>
[[noreturn]] void invalid(const std::string& field, const T& value, const std::string& rule) {
    std::ostringstream os;
    os << "skymap config: " << field << " = " << value << ": " << rule;
    throw configError(os.str());
}
}  // namespace

void TractGeometryConfig::validate() const {
    double scale = pixelScale.asArcseconds();
    if (!(scale > 0.0 && scale <= 60.0))
        invalid("pixelScale [arcsec]", scale, "must be in (0, 60]");
    if (patchInnerDimensions.x < 1 || patchInnerDimensions.y < 1)
        invalid(
            "patchInnerDimensions",
            std::to_string(patchInnerDimensions.x) + "x" + std::to_string(patchInnerDimensions.y),
            "must be positive");
    if (patchBorder < 0) invalid("patchBorder", patchBorder, "must be >= 0");
    double overlap = tractOverlap.asDegrees();
    if (!(overlap >= 0.0 && overlap < 10.0))
        invalid("tractOverlap [deg]", overlap, "must be in [0, 10)");
}

void RingSkyMapConfig::validate() const {
    // Below 3 rings the caps reach 45° from the pole and TAN tracts become absurd; above ~10^4
    // tracts shrink below an arcminute and tract ids outgrow what object ids reserve.
    if (numRings < 3 || numRings > 10000) invalid("numRings", numRings, "must be in [3, 10000]");
    if (!std::isfinite(raStart.asDegrees()))
        invalid("raStart [deg]", raStart.asDegrees(), "must be finite");
    tract.validate();
}

void DiscreteSkyMapConfig::validate() const {
    if (fields.empty()) invalid("fields", 0, "at least one field (ra, dec, radius) is needed");
    for (std::size_t i = 0; i < fields.size(); ++i) {
        double r = fields[i].radius.asDegrees();
        // A TAN tract of a circle stays well-conditioned (pixel scale varies by sec²r - 1 ≤ 3%) and
        // overlap searches stay inside one hemisphere.
        if (!(r > 0.0 && r <= 10.0))
            invalid("fields[" + std::to_string(i) + "].radius [deg]", r, "must be in (0, 10]");
        double dec = fields[i].centre.dec().asDegrees();
        if (!(dec >= -90.0 && dec <= 90.0))
            invalid("fields[" + std::to_string(i) + "].dec [deg]", dec, "must be in [-90, 90]");
    }
    tract.validate();
}

void SkyMapConfig::validate() const {
    if (type == "rings")
        rings.validate();
    else if (type == "discrete")
        discrete.validate();
    else
        invalid("type", type, "must be 'rings' or 'discrete'");
}

}  // namespace drp
