// LSST RingsSkyMap (lsst/skymap ringsSkyMap.py, version-1 numbering); see sky_map.h.
#include <cmath>
#include <limits>
#include <numbers>

#include "drp/skymap/sky_map.h"

namespace drp {

namespace {
constexpr double kPi = std::numbers::pi;
constexpr double kInf = std::numeric_limits<double>::infinity();

/// u of the west edge of tract k of a ring with tract width w (k = n is tract 0's west edge).
/// Region construction and lookup both call this, so their boundaries are the same doubles.
inline double westEdge(int k, double w) {
    return (k - 0.5) * w;
}

/// Points along a cap's edge: the extremes of its TAN image (a circle) lie at the RA of the
/// tangent point + k·90°, which these samples include.
std::vector<SpherePoint> capEdge(Angle raStart, double dec, int samples) {
    std::vector<SpherePoint> pts;
    for (int k = 0; k < samples; ++k)
        pts.emplace_back(raStart + radians(2 * kPi * k / samples), radians(dec));
    return pts;
}
}  // namespace

RingSkyMap::RingSkyMap(RingSkyMapConfig config) : SkyMap(config.tract), _config(config) {
    _config.validate();
    const int nRings = _config.numRings;
    const Angle raStart = _config.raStart;
    _ringHeight = kPi / (nRings + 1);
    const double dr = _ringHeight;
    // Same floating-point expressions as LSST (startDec = ringNum*ringSize + (0.5*ringSize -
    // 0.5*pi)) so that the tract counts, and hence every tract id, agree with LSST's.
    for (int k = 0; k <= nRings; ++k) _edges.push_back(k * dr + (0.5 * dr - 0.5 * kPi));
    for (int i = 0; i < nRings; ++i) {
        double start = _edges[i], stop = start + dr;
        double edge = std::min(std::fabs(start), std::fabs(stop));  // nearest the equator
        _ringCount.push_back(static_cast<int>(2 * kPi * std::cos(edge) / dr) + 1);
        _ringWidth.push_back(2 * kPi / _ringCount.back());
    }

    std::vector<TractGeometry> tracts;
    const auto& tc = _config.tract;
    auto addCap = [&](bool south) {
        TractInnerRegion r;
        r.kind = TractInnerRegion::Kind::RaDecBox;
        r.decMin = south ? radians(-kInf) : radians(_edges[nRings]);
        r.decMax = south ? radians(_edges[0]) : radians(kInf);
        r.raOrigin = raStart;
        r.allRa = true;
        double edgeDec = south ? _edges[0] : _edges[nRings];
        SpherePoint centre(raStart, radians(south ? -kPi / 2 : kPi / 2));
        int id = static_cast<int>(tracts.size());
        tracts.push_back(makeGeometry(id, centre, r, capEdge(raStart, edgeDec, 4),
                                      capEdge(raStart, edgeDec, 64), tc));
    };

    addCap(true);
    for (int i = 0; i < nRings; ++i) {
        _ringFirst.push_back(static_cast<int>(tracts.size()));
        const int n = _ringCount[i];
        const double w = _ringWidth[i];
        const double decC = dr * (i + 1) - 0.5 * kPi;
        for (int j = 0; j < n; ++j) {
            TractInnerRegion r;
            r.kind = TractInnerRegion::Kind::RaDecBox;
            r.decMin = radians(_edges[i]);
            r.decMax = radians(_edges[i + 1]);
            r.raOrigin = raStart;
            r.allRa = (n == 1);
            r.uMin = westEdge(j == 0 ? n : j, w);
            r.uMax = westEdge(j + 1, w);
            SpherePoint centre(raStart + radians(j * w), radians(decC));
            // Boundary samples: the TAN image of a meridian edge is a straight line and that of
            // a parallel a conic symmetric about the central meridian, monotonic on each side,
            // so x/y extremes are at the corners or the parallels' midpoints — all included.
            std::vector<SpherePoint> boundary;
            const int k = 16;
            double u0 = j * w - w / 2;  // west edge relative to raStart, unwrapped
            for (int s = 0; s <= k; ++s) {
                Angle ra = raStart + radians(u0 + w * s / k);
                double d = _edges[i] + dr * s / k;
                boundary.emplace_back(ra, radians(_edges[i]));
                boundary.emplace_back(ra, radians(_edges[i + 1]));
                boundary.emplace_back(raStart + radians(u0), radians(d));
                boundary.emplace_back(raStart + radians(u0 + w), radians(d));
            }
            // LSST sizes every ring tract's grid for the circle of radius Δ/2 about its centre
            // (ExplicitTractInfo), which makes all grids 10x10 patches with the defaults; the
            // union with the inner-region box also keeps the box's far corners, which stick
            // out of that circle's square toward the poles, inside the grid.
            for (int s = 0; s < 64; ++s)
                boundary.push_back(centre.offset(degrees(360.0 * s / 64), radians(dr / 2)));
            std::vector<SpherePoint> vertices{{raStart + radians(u0), radians(_edges[i])},
                                              {raStart + radians(u0 + w), radians(_edges[i])},
                                              {raStart + radians(u0 + w), radians(_edges[i + 1])},
                                              {raStart + radians(u0), radians(_edges[i + 1])}};
            int id = static_cast<int>(tracts.size());
            tracts.push_back(makeGeometry(id, centre, r, std::move(vertices), boundary, tc));
        }
    }
    addCap(false);

    std::string def =
        "drp skymap definition\ntype = rings\nversion = 1\nnum_rings = " + std::to_string(nRings) +
        "\nra_start_deg = " + formatNumber(raStart.asDegrees()) + "\n" + tractConfigDefinition(tc);
    setTracts(std::move(tracts), std::move(def));
}

int RingSkyMap::ringOf(Angle decAngle) const {
    const double dec = decAngle.asRadians();
    const int n = _config.numRings;
    // Estimate, then settle against the stored edges: ring i is [edges[i], edges[i+1]).
    double est = std::floor((dec - _edges[0]) / _ringHeight);
    int i = est < -1 ? -1 : est > n ? n : static_cast<int>(est);
    while (i >= 0 && dec < _edges[i]) --i;
    while (i < n && dec >= _edges[i + 1]) ++i;
    return i;
}

int RingSkyMap::findTractId(const SpherePoint& p) const {
    const int ring = ringOf(p.dec());
    if (ring < 0) return 0;
    if (ring >= _config.numRings) return numTracts() - 1;
    const int n = _ringCount[ring];
    const double w = _ringWidth[ring];
    const double u = TractInnerRegion::raOffset(p.ra(), _config.raStart);
    int k = std::min(n, static_cast<int>(std::floor(u / w + 0.5)));
    // Settle against the exact boundaries the tracts' inner regions use.
    while (k > 0 && u < westEdge(k, w)) --k;
    while (k < n && u >= westEdge(k + 1, w)) ++k;
    return _ringFirst[ring] + (k == n ? 0 : k);
}

std::optional<int> RingSkyMap::findTract(const SpherePoint& p) const {
    return findTractId(p);
}

}  // namespace drp
