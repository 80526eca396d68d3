// DiscreteSkyMap: one tract per field (LSST discreteSkyMap.py); see sky_map.h.
#include <cmath>
#include <numbers>

#include "drp/skymap/sky_map.h"

namespace drp {

DiscreteSkyMap::DiscreteSkyMap(DiscreteSkyMapConfig config)
    : SkyMap(config.tract), _config(std::move(config)) {
    _config.validate();
    std::vector<TractGeometry> tracts;
    std::string def = "drp skymap definition\ntype = discrete\nversion = 1\n";
    for (std::size_t i = 0; i < _config.fields.size(); ++i) {
        const DiscreteField& f = _config.fields[i];
        TractInnerRegion r;
        r.kind = TractInnerRegion::Kind::Circle;
        r.centre = f.centre;
        r.radius = f.radius;
        // A circle centred on the tangent point projects to a circle: its x/y extremes are at
        // bearings 0, 90, 180, 270°, which the samples include.
        std::vector<SpherePoint> boundary;
        for (int k = 0; k < 64; ++k)
            boundary.push_back(f.centre.offset(degrees(360.0 * k / 64), f.radius));
        std::vector<SpherePoint> vertices;
        for (int k = 0; k < 4; ++k)
            vertices.push_back(f.centre.offset(degrees(90.0 * k), f.radius));
        tracts.push_back(makeGeometry(static_cast<int>(i), f.centre, r, std::move(vertices),
                                      boundary, _config.tract));
        def += "field = " + formatNumber(f.centre.ra().asDegrees()) + " " +
               formatNumber(f.centre.dec().asDegrees()) + " " + formatNumber(f.radius.asDegrees()) +
               "\n";
    }
    setTracts(std::move(tracts), def + tractConfigDefinition(_config.tract));
}

std::optional<int> DiscreteSkyMap::findTract(const SpherePoint& p) const {
    auto v = p.toVector();
    std::optional<int> best;
    double bestDot = -2;
    for (const TractGeometry& g : tracts()) {
        double d = TangentPlane::dot(v, g.plane.centreVector());
        // cos is monotonic on [0, π]: larger dot = nearer. Strict > keeps the lower id on ties.
        if (d > bestDot && g.inner.contains(p)) {
            best = g.id;
            bestDot = d;
        }
    }
    return best;
}

}  // namespace drp
