// The simulator's catalogs as drp::Tables (pure: the runner writes them to HDF5).
//
// truth/truth.h5, table "objects" — one row per simulated object:
//   truth_id int64; ra, dec float64 [deg]; is_star bool; <b>_flux float64 [nJy] for u g r i z y
//   (flux of the truncated profile, what is rendered); galaxies: <b>_bulge_flux [nJy],
//   bulge_r_eff, disk_r_eff [arcsec] (half-light radii of the untruncated Sérsic profiles,
//   geometric-mean axis), bulge_n, disk_n, bulge_e1, bulge_e2, disk_e1, disk_e2 (distortion
//   convention in the local east/north frame), bulge_trunc, disk_trunc [r_eff units];
//   paired_with int64 (truth_id of the close-pair companion, 0 = none).
// truth/visits.h5, table "detectors" — one row per visit × detector: the true zero point, the
//   true PSF model and the true and header WCS (see detectorTruthTable); tables "cosmic_rays",
//   "bad_columns" and "satellites" list the artefacts (not masked in the images).
// refcat/refcat.h5, table "refcat" — the Gaia-like reference catalog (referenceCatalog).
#pragma once

#include <cstdint>
#include <vector>

#include "drp/core/table.h"
#include "drp/sim/observe.h"
#include "drp/sim/sky_model.h"

namespace drp::sim {

/// Truth objects (rows in truth_id order).
Table truthTable(const std::vector<TrueObject>& sky);

struct RefcatConfig final {
    double magLimit = 20.5;       ///< r-band limit (Gaia G ≈ 20.7)
    double posErrFloorMas = 1.0;  ///< position error floor per axis, mas
    double posErrMas18 = 3.0;     ///< per-axis position error at r = 18, mas; ∝ 10^(0.2 (r-18))
    double magErrFloor = 0.003;   ///< magnitude error floor
    double magErrAtLimit = 0.02;  ///< magnitude error at magLimit; ∝ 10^(0.4 (r - limit))
    void validate() const;
};

/// A Gaia-like reference catalog of the stars brighter than magLimit: positions and per-band
/// fluxes perturbed by their stated (1σ) errors, deterministic in the seed. Columns: ref_id,
/// truth_id, ra, dec [deg], ra_err, dec_err [mas] (ra_err is along the great circle, i.e.
/// σ(RA)·cos δ), <b>_flux, <b>_flux_err [nJy] for u g r i z y.
Table referenceCatalog(const std::vector<TrueObject>& sky, const RefcatConfig& config,
                       std::uint64_t seed);

/// One row per visit × detector: the true photometric, PSF and WCS parameters.
Table detectorTruthTable(const std::vector<DetectorTruth>& detectors,
                         const std::vector<VisitConditions>& visits);

/// Artefact lists.
Table cosmicRayTable(const std::vector<DetectorTruth>& detectors);
Table badColumnTable(const std::vector<DetectorTruth>& detectors);
Table satelliteTable(const std::vector<VisitConditions>& visits);

}  // namespace drp::sim
