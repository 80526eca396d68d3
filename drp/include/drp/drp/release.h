// The release catalog ("Object" table of ../shared/DESIGN.md, documented column by column in
// docs/data_products.md): per-patch multifit catalogs and deblender parents merged into one
// table with deterministic 64-bit object ids, named flag bits and is_primary.
//
// Primary. An object is primary when its position lies in the inner region of the patch and
// tract that measured it (SkyMap::findTractPatch gives exactly one owner for every point of the
// sky) and it is not a deblended parent. Objects measured twice in patch overlaps therefore
// appear once among primaries, whatever the patch or tract seam. The seam rescue below makes a
// neighbour's copy primary where the owner has no object at all.
//
// Ids. object_id = tract << 39 | patch << 23 | counter: 24 bits of tract (LSST's 120-ring skymap
// has 18,938 tracts), 16 bits of sequential patch index, 23 bits of per-patch counter. Children
// (and isolated objects) use their row number in the patch's multifit catalog (< 2^22);
// deblended parents set counter bit 22 over their parent number. The id depends only on the
// patch and the deblender's output order, never on the rank or the order tasks ran in; the sign
// bit stays clear so the id is a positive int64 everywhere (HDF5, FITS K columns, numpy).
//
// Row order: patches in (tract, patch) order; within a patch each deblended parent precedes its
// children, which keep the multifit order. So the file is byte-identical for any rank count.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "drp/core/table.h"
#include "drp/skymap/sky_map.h"

namespace drp::pipeline {

/// Bits of the Object table's `flags` column. Bits 0-3 are the multifit stage's flags unchanged;
/// its bits 4 and 5 become bits 10 and 11 (bits 4 and 5 here are the deblender's), its bit 6
/// bit 13 and its bit 7 (duplicate of a sibling) bit 12.
enum ObjectFlag : std::int64_t {
    kFlagNoEpochs = 1 << 0,           ///< no epoch had unmasked pixels: nothing was fitted
    kFlagPointFitFailed = 1 << 1,     ///< point-source fit failed (PSF flux from the centroid)
    kFlagExpFitFailed = 1 << 2,       ///< exponential galaxy fit failed
    kFlagDevFitFailed = 1 << 3,       ///< de Vaucouleurs galaxy fit failed
    kFlagBlended = 1 << 4,            ///< child of a deblended parent (has siblings)
    kFlagDeblendSkipped = 1 << 5,     ///< footprint not deblended (e.g. too many peaks)
    kFlagDeblendedParent = 1 << 6,    ///< this row is a deblended parent, not a measurement
    kFlagOutsidePatchInner = 1 << 7,  ///< position outside its patch's inner region
    kFlagOutsideTractInner = 1 << 8,  ///< position outside its tract's inner region
    kFlagBadPosition = 1 << 9,        ///< ra/dec not finite
    kFlagFitError = 1 << 10,          ///< an exception inside the object's fit (1-3 set too)
    kFlagNeighbourNotSubtracted = 1 << 11,  ///< a sibling's model could not be subtracted
    kFlagMergedDuplicate = 1 << 12,  ///< child converged onto a brighter sibling: never primary
    kFlagCentreShift = 1 << 13,  ///< a fit moved > 2" from the deblender position (multifit bit 6)
    kFlagSeamRescued = 1 << 14,  ///< primary copy from a neighbouring patch (owner has none there)
    kFlagCentreFixed =
        1 << 15,  ///< kept faint child measured at its deblender centre (multifit bit 8)
};
/// (bit, name, meaning) of every flag, in bit order (docs, FITS header, report).
struct FlagInfo {
    int bit;
    const char* name;
    const char* doc;
};
const std::vector<FlagInfo>& objectFlagInfo();

constexpr int kObjectIdTractBits = 24, kObjectIdPatchBits = 16, kObjectIdCounterBits = 23;
/// Packs an object id; throws Error(bad_input) when a part does not fit its bits.
std::int64_t packObjectId(int tract, int patch, std::int64_t counter);
struct ObjectIdParts {
    int tract = 0, patch = 0;
    std::int64_t counter = 0;  ///< with the parent bit (1 << 22) for deblended parents
    bool operator==(const ObjectIdParts&) const = default;
};
ObjectIdParts unpackObjectId(std::int64_t id);
constexpr std::int64_t kParentCounterBit = std::int64_t(1) << 22;

/// The release rows of one patch. `multifit` is the patch's multifit "objects" table (ra, dec,
/// ra_err, dec_err, per band <b>_psf_flux[_err], <b>_model_flux[_err], shape_e1, shape_e2,
/// shape_r, extendedness, frac_dev, model_chi2_dof, n_epochs, multifit_flags, parent_index,
/// n_siblings, x, y); `parents` the deblender's "parents" table (parent_index, deblended,
/// flags) or an empty table. Pure function; throws Error(bad_input) naming a missing column.
Table makePatchObjects(const SkyMap& skymap, TractPatchId patch,
                       const std::vector<std::string>& bands, const Table& multifit,
                       const Table& parents);

/// Seam rescue. Neighbouring patches measure the objects of their shared overlap twice, and the
/// owner's copy (the one inside its patch and tract inner region) is primary. The two
/// measurements come from the same coadd pixels but not from the same footprints: a footprint
/// is cut at each patch's outer edge, so a blend straddling a seam can be deblended differently
/// on each side, and a faint object found by the neighbour can be missed by its owner (or the
/// owner's fit can move it across the seam, or the owner patch can have failed). Such an object
/// would be in the release only as non-primary copies. This pass makes one of those copies
/// primary: a measured child or isolated object (not a deblended parent, not a merged duplicate)
/// whose position lies in the inner region of another patch (`owner`, any tract) is promoted
/// when no primary object lies within `radiusArcsec` of it. Candidates are taken in order of how
/// deep inside their own patch's outer box they were measured (the copy with the most context
/// around it first; ties by row order) and each promoted copy counts as a primary for the next,
/// so an object measured by three patches is promoted once. Promoted rows get
/// kFlagSeamRescued. The radius (1.5") is larger than the shift between two patches'
/// measurements of one object (on the demo release up to 1.1", when the two sides deblend a
/// straddling blend differently) and small enough that a faint object 2-3" from a brighter one
/// is not taken for it. Deterministic: depends only on the table. Returns the number promoted.
constexpr double kSeamRescueRadiusArcsec = 1.5;
/// A rescued copy must be a detection in its own right: PSF flux ≥ 5σ in some band.
constexpr double kSeamRescueMinSn = 5.0;
std::size_t rescueSeamOrphans(const SkyMap& skymap, Table& release,
                              double radiusArcsec = kSeamRescueRadiusArcsec);

}  // namespace drp::pipeline
