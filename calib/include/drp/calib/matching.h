// Positional matching on the sphere: fixed-radius neighbour search, nearest-neighbour matching of
// two catalogues, and friends-of-friends association of repeated detections into objects.
//
// Every global calibration starts with data association (science-anchors §3.3 (a)): detections of
// the same star in different visits are linked within a small radius (gbdes: 1″, jointcal: 3″),
// and objects are matched to the reference catalogue. The functions here are deterministic: their
// output depends on the *set* of inputs and their keys, never on the order in which rows arrive
// (MPI ranks gather catalogues in arbitrary order; DESIGN.md requires rank-count-independent
// results).
//
// Implementation: points become unit vectors; a hash grid with cells of side equal to the chord
// of the search radius means every neighbour lies in the 3×3×3 block of cells around a point, so
// a query costs O(neighbours) and building the index O(n).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "drp/core/angle.h"
#include "drp/core/sphere_point.h"
#include "drp/core/table.h"

namespace drp {

/// A fixed-radius neighbour index over points on the sphere.
class SphereNeighborIndex final {
  public:
    SphereNeighborIndex(const std::vector<SpherePoint>& points, Angle radius);

    /// Indices of all indexed points within `radius` of `p` (in increasing index order).
    std::vector<std::size_t> within(const SpherePoint& p) const;
    /// Index of the nearest indexed point within `radius`, or -1. Ties go to the lower index.
    std::int64_t nearest(const SpherePoint& p, Angle* separation = nullptr) const;

    Angle radius() const { return _radius; }

  private:
    struct CellKey {
        std::int64_t i, j, k;
        bool operator==(const CellKey&) const = default;
    };
    struct CellHash {
        std::size_t operator()(const CellKey& c) const noexcept;
    };
    CellKey cellOf(const std::array<double, 3>& v) const;
    template <typename F>
    void forEachCandidate(const std::array<double, 3>& v, F&& f) const;

    Angle _radius;
    double _chord2;  ///< squared chord length of the radius
    double _cell;    ///< cell side (chord of the radius)
    std::vector<std::array<double, 3>> _vectors;
    std::unordered_map<CellKey, std::vector<std::size_t>, CellHash> _cells;
};

/// One pair of a match between catalogues A and B.
struct SkyMatch {
    std::size_t a;  ///< row in A
    std::size_t b;  ///< row in B
    Angle separation;
};

/// Match each point of `a` to its nearest point of `b` within `radius`, one-to-one: when several
/// points of `a` pick the same `b`, only the closest keeps it (ties: lower index of `a`). The
/// result is sorted by `a`.
std::vector<SkyMatch> matchNearest(const std::vector<SpherePoint>& a,
                                   const std::vector<SpherePoint>& b, Angle radius);

/// Friends-of-friends association configuration.
struct AssociationConfig {
    /// Linking length. Production anchors: gbdes matchRadius 1″, jointcal matchCut 3″. Must be
    /// well below the typical star separation (else chains form) and well above the combined
    /// astrometric error of two detections.
    Angle radius = arcseconds(1.0);
    /// Minimum number of detections for a group to become an object (1 keeps singletons).
    int minDetections = 2;
    void validate() const;
};

/// Result of associating detections across visits.
struct Association {
    /// Per input detection (input order): object id, or -1 if its group had fewer than
    /// `minDetections` members. The object id is the smallest detection key in the group, so it
    /// is independent of the input order.
    std::vector<std::int64_t> objectId;
    std::size_t numObjects = 0;
    /// Objects holding two or more detections with the same `group` (same visit): blends or
    /// chained neighbours. Reported, not removed: outlier clipping downstream handles them.
    std::size_t numConflicted = 0;
};

/// Friends-of-friends association of detections (positions `sky`, unique `key` per detection,
/// e.g. source_id; `group` per detection, e.g. visit, used only to count conflicts).
Association associateDetections(const std::vector<SpherePoint>& sky,
                                const std::vector<std::int64_t>& key,
                                const std::vector<std::int64_t>& group,
                                const AssociationConfig& config);

/// Table form: reads columns `ra`, `dec` (deg), `source_id` and `visit` (int32 or int64).
Association associateDetections(const Table& sources, const AssociationConfig& config);

/// Read an integer column stored as int32 or int64 as int64 (catalogues differ in width).
std::vector<std::int64_t> integerColumn(const Table& table, const std::string& name);
/// Read a real column stored as float32 or float64 as double.
std::vector<double> realColumn(const Table& table, const std::string& name);

}  // namespace drp
