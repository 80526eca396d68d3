// Configuration of a skymap: how the sky is cut into tracts and tracts into patches.
//
// Defaults follow the LSST production skymap `lsst_cells_v1` (obs_lsst config/makeSkyMap.py;
// see shared/notes/science-anchors.md §1.1): 120 declination rings (ring height 180°/121 =
// 1.4876°, 18,938 tracts), TAN projection, 0.2"/pixel, patches of 3000×3000 inner pixels
// (10') with a 200-pixel (40") border, 1' tract overlap — which gives 10×10 patches per tract.
//
// These numbers are baked into every tract/patch id and so into every object id downstream:
// a skymap is immutable once a release starts, and its definition is hashed (SkyMap::hash()).
#pragma once

#include <string>
#include <vector>

#include "drp/core/angle.h"
#include "drp/core/geometry.h"
#include "drp/core/sphere_point.h"

namespace drp {

/// Pixel grid of every tract (shared by all skymap types).
struct TractGeometryConfig {
    /// Pixel scale of the tract TAN projection (LSST 0.2", HSC 0.168").
    Angle pixelScale = arcseconds(0.2);
    /// Inner (owned, non-overlapping) patch size in pixels (LSST 20 cells × 150 px = 3000).
    Extent2I patchInnerDimensions{3000, 3000};
    /// Pixels added on each side of a patch inner box to make its outer box (LSST 1 cell + 50
    /// px = 200 px = 40", so neighbouring patches share 80"). Must exceed typical footprints.
    int patchBorder = 200;
    /// How far a tract's pixel grid extends beyond its inner region, in total across the two
    /// sides (each side gets half). LSST/HSC production: 1'.
    Angle tractOverlap = arcminutes(1.0);

    /// Throws Error(config) naming the field, its value and the constraint.
    void validate() const;
};

/// LSST's RingsSkyMap: the whole sphere, rings of constant declination plus two polar caps.
struct RingSkyMapConfig {
    /// Number of declination rings between the caps (LSST/HSC production: 120).
    int numRings = 120;
    /// RA of the centre of tract 0 of every ring (LSST default 0).
    Angle raStart = degrees(0.0);
    TractGeometryConfig tract;

    void validate() const;
};

/// One field of a DiscreteSkyMap: a tract centred on `centre` whose inner region is the
/// circle of radius `radius` (shared regions go to the nearest tract centre).
struct DiscreteField {
    SpherePoint centre;
    Angle radius;
};

/// LSST's DiscreteSkyMap: tracts on given fields (demos, tests, small surveys). LSST's
/// makeDiscreteSkyMap forces tractOverlap to 0; the default here is the same.
struct DiscreteSkyMapConfig {
    std::vector<DiscreteField> fields;
    TractGeometryConfig tract = [] {
        TractGeometryConfig t;
        t.tractOverlap = degrees(0.0);
        return t;
    }();

    void validate() const;
};

/// Which skymap to build (makeSkyMap in sky_map.h).
struct SkyMapConfig {
    std::string type = "rings";     ///< "rings" or "discrete"
    RingSkyMapConfig rings;         ///< used when type == "rings"
    DiscreteSkyMapConfig discrete;  ///< used when type == "discrete"

    void validate() const;
};

}  // namespace drp
