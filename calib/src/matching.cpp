#include "drp/calib/matching.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "drp/core/error.h"

namespace drp {

namespace {

double dist2(const std::array<double, 3>& a, const std::array<double, 3>& b) {
    double dx = a[0] - b[0], dy = a[1] - b[1], dz = a[2] - b[2];
    return dx * dx + dy * dy + dz * dz;
}

/// Angle from a squared chord length (exact on the unit sphere).
Angle chordToAngle(double chord2) {
    return radians(2.0 * std::asin(std::min(1.0, 0.5 * std::sqrt(chord2))));
}

}  // namespace

std::size_t SphereNeighborIndex::CellHash::operator()(const CellKey& c) const noexcept {
    // Large odd multipliers (spatial hashing, Teschner et al. 2003) spread nearby cells.
    std::uint64_t h = static_cast<std::uint64_t>(c.i) * 73856093ULL ^
                      static_cast<std::uint64_t>(c.j) * 19349663ULL ^
                      static_cast<std::uint64_t>(c.k) * 83492791ULL;
    return static_cast<std::size_t>(h);
}

SphereNeighborIndex::SphereNeighborIndex(const std::vector<SpherePoint>& points, Angle radius)
    : _radius(radius) {
    if (!(radius.asRadians() > 0.0) || radius > degrees(10.0))
        throw badInput("SphereNeighborIndex: radius must be in (0, 10 deg], got " +
                       std::to_string(radius.asArcseconds()) + " arcsec");
    double chord = 2.0 * std::sin(0.5 * radius.asRadians());
    _chord2 = chord * chord;
    _cell = chord;
    _vectors.reserve(points.size());
    for (std::size_t n = 0; n < points.size(); ++n) {
        _vectors.push_back(points[n].toVector());
        _cells[cellOf(_vectors.back())].push_back(n);
    }
}

SphereNeighborIndex::CellKey SphereNeighborIndex::cellOf(const std::array<double, 3>& v) const {
    return {static_cast<std::int64_t>(std::floor(v[0] / _cell)),
            static_cast<std::int64_t>(std::floor(v[1] / _cell)),
            static_cast<std::int64_t>(std::floor(v[2] / _cell))};
}

template <typename F>
void SphereNeighborIndex::forEachCandidate(const std::array<double, 3>& v, F&& f) const {
    CellKey c = cellOf(v);
    for (std::int64_t di = -1; di <= 1; ++di)
        for (std::int64_t dj = -1; dj <= 1; ++dj)
            for (std::int64_t dk = -1; dk <= 1; ++dk) {
                auto it = _cells.find({c.i + di, c.j + dj, c.k + dk});
                if (it == _cells.end()) continue;
                for (std::size_t n : it->second) f(n);
            }
}

std::vector<std::size_t> SphereNeighborIndex::within(const SpherePoint& p) const {
    auto v = p.toVector();
    std::vector<std::size_t> out;
    forEachCandidate(v, [&](std::size_t n) {
        if (dist2(v, _vectors[n]) <= _chord2) out.push_back(n);
    });
    std::sort(out.begin(), out.end());
    return out;
}

std::int64_t SphereNeighborIndex::nearest(const SpherePoint& p, Angle* separation) const {
    auto v = p.toVector();
    std::int64_t best = -1;
    double bestD = _chord2;
    forEachCandidate(v, [&](std::size_t n) {
        double d = dist2(v, _vectors[n]);
        if (d > _chord2) return;
        auto ni = static_cast<std::int64_t>(n);
        if (best < 0 || d < bestD || (d == bestD && ni < best)) {
            bestD = d;
            best = ni;
        }
    });
    if (separation && best >= 0) *separation = chordToAngle(bestD);
    return best;
}

std::vector<SkyMatch> matchNearest(const std::vector<SpherePoint>& a,
                                   const std::vector<SpherePoint>& b, Angle radius) {
    SphereNeighborIndex index(b, radius);
    // Best claimant of each b by (separation, a index) -> deterministic one-to-one matches.
    std::vector<std::int64_t> owner(b.size(), -1);
    std::vector<Angle> ownerSep(b.size());
    std::vector<std::int64_t> choice(a.size(), -1);
    std::vector<Angle> sep(a.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
        Angle s;
        std::int64_t j = index.nearest(a[i], &s);
        if (j < 0) continue;
        choice[i] = j;
        sep[i] = s;
        if (owner[j] < 0 || s < ownerSep[j]) {
            owner[j] = static_cast<std::int64_t>(i);
            ownerSep[j] = s;
        }
    }
    std::vector<SkyMatch> out;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (choice[i] >= 0 && owner[choice[i]] == static_cast<std::int64_t>(i))
            out.push_back({i, static_cast<std::size_t>(choice[i]), sep[i]});
    }
    return out;
}

void AssociationConfig::validate() const {
    if (!(radius.asArcseconds() > 0.0) || radius > arcminutes(1.0))
        throw configError("AssociationConfig.radius must be in (0, 60 arcsec], got " +
                          std::to_string(radius.asArcseconds()) + " arcsec");
    if (minDetections < 1)
        throw configError("AssociationConfig.minDetections must be >= 1, got " +
                          std::to_string(minDetections));
}

Association associateDetections(const std::vector<SpherePoint>& sky,
                                const std::vector<std::int64_t>& key,
                                const std::vector<std::int64_t>& group,
                                const AssociationConfig& config) {
    config.validate();
    const std::size_t n = sky.size();
    if (key.size() != n || group.size() != n)
        throw badInput("associateDetections: sky, key and group have different lengths (" +
                       std::to_string(n) + ", " + std::to_string(key.size()) + ", " +
                       std::to_string(group.size()) + ")");
    // Union-find. The components of friends-of-friends do not depend on the order of the unions,
    // so the grouping (and the min-key ids below) is independent of the input order.
    std::vector<std::size_t> parent(n);
    std::iota(parent.begin(), parent.end(), std::size_t{0});
    auto find = [&](std::size_t x) {
        while (parent[x] != x) {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        return x;
    };
    SphereNeighborIndex index(sky, config.radius);
    for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t j : index.within(sky[i])) {
            if (j <= i) continue;
            std::size_t ri = find(i), rj = find(j);
            if (ri != rj) parent[std::max(ri, rj)] = std::min(ri, rj);
        }
    }
    std::map<std::size_t, std::vector<std::size_t>> members;
    for (std::size_t i = 0; i < n; ++i) members[find(i)].push_back(i);
    Association out;
    out.objectId.assign(n, -1);
    for (auto& [r, rows] : members) {
        if (static_cast<int>(rows.size()) < config.minDetections) continue;
        std::int64_t id = key[rows.front()];
        std::vector<std::int64_t> groups;
        for (std::size_t i : rows) {
            id = std::min(id, key[i]);
            groups.push_back(group[i]);
        }
        for (std::size_t i : rows) out.objectId[i] = id;
        ++out.numObjects;
        std::sort(groups.begin(), groups.end());
        if (std::adjacent_find(groups.begin(), groups.end()) != groups.end()) ++out.numConflicted;
    }
    return out;
}

std::vector<std::int64_t> integerColumn(const Table& table, const std::string& name) {
    const Column& c = table.columnInfo(name);
    if (c.type() == ColumnType::Int64) return std::get<std::vector<std::int64_t>>(c.data);
    if (c.type() == ColumnType::Int32) {
        const auto& v = std::get<std::vector<std::int32_t>>(c.data);
        return {v.begin(), v.end()};
    }
    throw badInput(std::string("column '") + name + "' must be int32 or int64, is " +
                   columnTypeName(c.type()));
}

std::vector<double> realColumn(const Table& table, const std::string& name) {
    const Column& c = table.columnInfo(name);
    if (c.type() == ColumnType::Float64) return std::get<std::vector<double>>(c.data);
    if (c.type() == ColumnType::Float32) {
        const auto& v = std::get<std::vector<float>>(c.data);
        return {v.begin(), v.end()};
    }
    throw badInput(std::string("column '") + name + "' must be float32 or float64, is " +
                   columnTypeName(c.type()));
}

Association associateDetections(const Table& sources, const AssociationConfig& config) {
    const auto& ra = sources.column<double>("ra");
    const auto& dec = sources.column<double>("dec");
    std::vector<SpherePoint> sky;
    sky.reserve(ra.size());
    for (std::size_t i = 0; i < ra.size(); ++i)
        sky.push_back(SpherePoint::fromDegrees(ra[i], dec[i]));
    return associateDetections(sky, integerColumn(sources, "source_id"),
                               integerColumn(sources, "visit"), config);
}

}  // namespace drp
