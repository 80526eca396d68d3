// The simulated sky: stars and bulge+disk galaxies with per-band fluxes, deterministic from a
// seed.
//
// Counts. Magnitudes (r band) follow power-law number counts dN/dm ∝ 10^(slope·m) between a
// bright and a faint limit; the number of objects is Poisson(density × area). Defaults:
//   * galaxies: slope 0.31 and 55 arcmin⁻² at r < 25.8 (≈ i < 25.3, the LSST "gold sample"
//     density, LSST Science Book 2009, arXiv:0912.0201, §3.7.2; faint-end slope of deep r/i
//     counts ≈ 0.3, e.g. Metcalfe et al. 2001, MNRAS 323, 795);
//   * stars: slope 0.15 (the flat faint-end of high-latitude star counts), density per preset
//     (the tiny/demo presets use a low-latitude-like density so every detector has PSF and
//     astrometric stars).
// Stars: colours on an approximation of the SDSS main stellar locus (Covey et al. 2007, AJ 134,
//   2398) parametrised by a temperature-like t ∈ [0, 1] (g−r from 0.25 to 1.45; M dwarfs redden
//   strongly in r−i, i−z).
// Galaxies: an n = 4 bulge and an n = 1 disk sharing a centre and position angle. Bulge-to-total
//   (r) is 0.5–0.9 for 30% ("early types") and 0–0.3 otherwise. Disk half-light radius follows a
//   size–magnitude relation median r_e = 0.6″ × 10^(−0.1 (r − 22)) with 0.2 dex lognormal scatter
//   (roughly the COSMOS trend used by GalSim's COSMOSCatalog, Mandelbaum et al. 2012), bulge r_e
//   = 0.2–0.6 disk r_e. Axis ratios: disk uniform in [0.2, 1] (random inclinations), bulge [0.6,
//   1]. Colours: bulge on a red SED (g−r ≈ 0.75), disk on a blue one (g−r ≈ 0.35), both reddened by
//   a common redshift-like factor; so galaxies have colour gradients.
// Blends: a fraction `pairFraction` of galaxies gets a fainter companion galaxy 1–3″ away.
//
// Shapes are given on the sky in the local (east, north) frame: e1 > 0 elongates east–west,
// e2 > 0 along north-east/south-west; radii in arcseconds. Fluxes in nJy for u g r i z y.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "drp/core/sphere_point.h"

namespace drp::sim {

inline constexpr int kNumBands = 6;
inline constexpr std::array<const char*, kNumBands> kBandNames = {"u", "g", "r", "i", "z", "y"};
/// Index of a band name in kBandNames; throws Error(bad_input) for an unknown band.
int bandIndex(const std::string& band);

/// AB magnitude <-> nJy (m = 31.4 - 2.5 log10 f).
double magToNJy(double mag);
double nJyToMag(double flux);

using BandFluxes = std::array<double, kNumBands>;

struct TrueObject final {
    std::int64_t id = 0;  ///< truth_id, 1-based, unique in the survey
    SpherePoint position;
    bool isStar = false;
    BandFluxes flux{};  ///< total flux per band, nJy
    // Galaxies only (zero for stars):
    BandFluxes bulgeFlux{};  ///< bulge flux per band, nJy (disk = flux - bulgeFlux)
    double bulgeREff = 0.0;  ///< arcsec
    double diskREff = 0.0;   ///< arcsec
    double bulgeN = 4.0, diskN = 1.0;
    double bulgeE1 = 0.0, bulgeE2 = 0.0;
    double diskE1 = 0.0, diskE2 = 0.0;
    std::int64_t pairedWith = 0;  ///< truth_id of the close companion (0: none)
};

struct SkyModelConfig final {
    // Stars (r band).
    double starDensity = 5000.0;  ///< per deg² with starMagBright <= r < starMagFaint
    double starMagBright = 15.0;
    double starMagFaint = 24.0;
    double starSlope = 0.15;
    // Galaxies (r band).
    double galaxyDensityRef = 55.0 * 3600.0;  ///< per deg² with r < galaxyMagRef
    double galaxyMagRef = 25.8;
    double galaxyMagBright = 18.0;
    double galaxyMagFaint = 25.5;
    double galaxySlope = 0.31;
    double pairFraction = 0.05;                 ///< fraction of galaxies with a close companion
    double pairSepMin = 1.0, pairSepMax = 3.0;  ///< arcsec
    void validate() const;
    /// Galaxy density (deg⁻²) between galaxyMagBright and galaxyMagFaint.
    double galaxyDensity() const;
};

/// The region simulated: a square in the tangent plane about `center`, half-size in degrees.
struct SkyRegion final {
    SpherePoint center;
    double halfSizeDeg = 0.1;
    double areaDeg2() const { return 4 * halfSizeDeg * halfSizeDeg; }
};

/// All objects of the region, ordered by truth_id: stars, then galaxies, then companions.
std::vector<TrueObject> generateSky(const SkyModelConfig& config, const SkyRegion& region,
                                    std::uint64_t seed);

}  // namespace drp::sim
