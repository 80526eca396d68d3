// Skymaps: the sky cut into tracts, tracts into patches (DESIGN.md "Sky partition").
//
//  * RingSkyMap — LSST's RingsSkyMap (lsst/skymap ringsSkyMap.py, version-1 tract numbering),
//    covering the whole sphere. The sphere is cut into `numRings` declination rings plus two
//    polar caps that together count as one more ring, so the ring height is
//        Δ = π / (numRings + 1).
//    Ring i (0 = southernmost) spans δ ∈ [Δ(i+½) - π/2, Δ(i+3/2) - π/2); its tracts are centred
//    at δ_i = Δ(i+1) - π/2 and RA α_start + 2πj/n_i, j = 0..n_i-1, with
//        n_i = ⌊2π cos(δ_edge) / Δ⌋ + 1,  δ_edge = the ring edge nearest the equator,
//    so tracts are never narrower than Δ where the ring is widest. Tract j's inner region is the
//    RA/Dec box α ∈ [α_start + (j-½)2π/n_i, α_start + (j+½)2π/n_i). The caps are single tracts
//    centred on the poles owning |δ| beyond the outermost ring edges. Tract ids: 0 = south cap,
//    then ring by ring south to north in increasing RA, last = north cap. With 120 rings this
//    gives 18,938 tracts, 243 in each equatorial ring (science-anchors.md §1.1).
//  * DiscreteSkyMap — one tract per given field (centre, radius); a point in several fields'
//    circles belongs to the nearest centre, a point in none belongs to no tract.
//
// Each tract has a TAN projection centred on the tract centre (north up, east left) and a pixel
// grid that encloses, with half the tract overlap to spare on each side, both the circle of
// radius Δ/2 about the centre (what LSST sizes ring tracts by: with the defaults every tract is
// 10x10 patches) and the whole inner region (whose far corners leave that circle toward the
// poles), rounded up to whole patches and centred (LSST tractBuilder). So every point of a
// tract's inner region falls inside its patch grid.
//
// Lookups: findTract uses the ring geometry directly (O(1): ring from δ, tract from α), then the
// tract's projection gives the pixel and so the patch. Thread-safe: a SkyMap is immutable.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "drp/core/metadata.h"
#include "drp/core/sphere_point.h"
#include "drp/skymap/config.h"
#include "drp/skymap/tract_info.h"

namespace drp {

/// Result of a point lookup.
struct TractPatch {
    int tract = 0;
    PatchIndex patch;
    int patchSequential = 0;  ///< patch.y * nx + patch.x
    Point2D pixel;            ///< continuous position in the tract's pixel grid
};

/// A (tract, patch) pair, ordered by tract then sequential patch index.
struct TractPatchId {
    int tract = 0;
    int patch = 0;  ///< sequential index
    constexpr auto operator<=>(const TractPatchId&) const = default;
};

class SkyMap {
  public:
    virtual ~SkyMap() = default;
    SkyMap(const SkyMap&) = delete;
    SkyMap& operator=(const SkyMap&) = delete;

    /// "rings" or "discrete".
    virtual std::string type() const = 0;
    int numTracts() const { return static_cast<int>(_tracts.size()); }
    const TractGeometryConfig& tractConfig() const { return _tractConfig; }

    /// Full tract description with its Wcs. Throws Error(not_found) for an unknown id.
    TractInfo tract(int id) const;
    /// Geometry only (no Wcs is made): cheap, for loops over all tracts.
    const TractGeometry& tractGeometry(int id) const;

    /// The tract whose inner region contains `p` (nullopt only for a DiscreteSkyMap, outside
    /// every field).
    virtual std::optional<int> findTract(const SpherePoint& p) const = 0;
    /// Tract, patch and pixel position of `p`: the unique tract inner region and patch inner box
    /// containing it.
    std::optional<TractPatch> findTractPatch(const SpherePoint& p) const;
    /// Patch and pixel of `p` in a given tract (any tract whose hemisphere contains p;
    /// patch indices clamped to the grid as in TractGeometry::findPatch).
    TractPatch findPatchInTract(int tract, const SpherePoint& p) const;

    /// Every (tract, patch) whose *outer* box overlaps (with positive area) the sky polygon
    /// `polygon` — e.g. a detector's 4 corners. Edges are great circles (a TAN image's straight
    /// edges are). The polygon must lie within 10° of its centre. Sorted, unique.
    std::vector<TractPatchId> findOverlaps(const std::vector<SpherePoint>& polygon) const;

    /// Canonical text of the definition (type, version, every parameter) — what is hashed.
    const std::string& definition() const { return _definition; }
    /// SHA-256 (hex) of definition(): identifies the tract/patch ids a product refers to.
    const std::string& hash() const { return _hash; }
    /// Provenance entries: SKYMAP_TYPE, SKYMAP_HASH, SKYMAP_NTRACTS.
    PropertyList provenance() const;

  protected:
    explicit SkyMap(TractGeometryConfig tractConfig) : _tractConfig(std::move(tractConfig)) {}
    /// Called once by the derived constructor: the tracts (ids = positions) and the canonical
    /// definition text (hashed here).
    void setTracts(std::vector<TractGeometry> tracts, std::string definition);
    /// Builds a tract's projection and pixel grid: the grid encloses the pixel positions of
    /// `boundary` (sky points along the inner region's edges, at every extreme of x and y)
    /// grown by tractOverlap/2 + 1 pixel, rounded up to whole patches, centred.
    static TractGeometry makeGeometry(int id, SpherePoint centre, TractInnerRegion inner,
                                      std::vector<SpherePoint> vertices,
                                      const std::vector<SpherePoint>& boundary,
                                      const TractGeometryConfig& config);
    const std::vector<TractGeometry>& tracts() const { return _tracts; }
    /// Decimal text with 15 significant digits (for definition()).
    static std::string formatNumber(double v);
    /// The tract-grid part of definition().
    static std::string tractConfigDefinition(const TractGeometryConfig& config);

  private:
    /// What a point lookup reads of a tract, packed into one 64-byte cache line: the lookup
    /// rate is bound by memory latency on the 19k-tract table, not arithmetic.
    struct alignas(64) LookupEntry {
        TangentPlane plane;
        Extent2I numPatches;
    };

    TractGeometryConfig _tractConfig;
    std::vector<TractGeometry> _tracts;
    std::vector<LookupEntry> _lookup;
    Angle _maxBoundingRadius;
    std::string _definition, _hash;
};

class RingSkyMap final : public SkyMap {
  public:
    explicit RingSkyMap(RingSkyMapConfig config = {});
    std::string type() const override { return "rings"; }
    std::optional<int> findTract(const SpherePoint& p) const override;
    /// The always-present variant (every point has a tract).
    int findTractId(const SpherePoint& p) const;

    const RingSkyMapConfig& config() const { return _config; }
    int numRings() const { return _config.numRings; }
    /// Ring height Δ = π / (numRings + 1).
    Angle ringHeight() const { return radians(_ringHeight); }
    /// Tracts in ring i (0 <= i < numRings).
    int numTractsInRing(int ring) const { return _ringCount.at(ring); }
    /// Ring containing `dec`: -1 = south cap, numRings = north cap.
    int ringOf(Angle dec) const;

  private:
    RingSkyMapConfig _config;
    double _ringHeight = 0;
    std::vector<double> _edges;      ///< _edges[k] = lower edge of ring k, k = 0..numRings
    std::vector<int> _ringCount;     ///< tracts per ring
    std::vector<int> _ringFirst;     ///< id of tract 0 of each ring
    std::vector<double> _ringWidth;  ///< 2π / n_i
};

class DiscreteSkyMap final : public SkyMap {
  public:
    explicit DiscreteSkyMap(DiscreteSkyMapConfig config);
    std::string type() const override { return "discrete"; }
    /// Nearest field centre among the fields whose circle contains p (ties: lower id).
    std::optional<int> findTract(const SpherePoint& p) const override;
    const DiscreteSkyMapConfig& config() const { return _config; }

  private:
    DiscreteSkyMapConfig _config;
};

/// Validates `config` and builds the skymap it describes.
std::unique_ptr<SkyMap> makeSkyMap(const SkyMapConfig& config);

}  // namespace drp
