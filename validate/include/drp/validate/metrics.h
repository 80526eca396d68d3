// Release quality metrics ("key performance metrics") as pure functions on in-memory columns and
// drp::Table catalogs. No file I/O here: the `drp validate` runner reads the release, the
// reference catalog and (for simulated releases) the truth, calls these, and writes JSON.
//
// Matching. Objects are matched to truth by nearest neighbour on the sphere within a radius.
// The spatial index buckets unit vectors (x, y, z) on a cubic grid whose cell is the chord of
// the match radius, so every neighbour within the radius lies in the 27 cells around a point;
// this has no RA wrap or pole special cases and is O(N) to build and O(1) per query for survey
// densities.
//
// Robust statistics. Flux bias is the median of (measured/true - 1); scatter is the robust
// sigma 1.4826 * MAD, which equals the standard deviation for a Gaussian and ignores the
// blends and mismatches that would dominate an RMS (as in LSST's validate_drp / faro).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "drp/core/angle.h"
#include "drp/core/table.h"

namespace drp::validate {

/// A fixed-radius nearest-neighbour index of points on the sphere (ICRS degrees).
class SkyIndex final {
  public:
    SkyIndex(const std::vector<double>& raDeg, const std::vector<double>& decDeg, Angle radius);
    /// Index of the nearest indexed point within the radius of (ra, dec), or -1.
    std::int64_t nearest(double raDeg, double decDeg) const;
    /// Indices of every indexed point within the radius of (ra, dec), unsorted.
    std::vector<std::int64_t> within(double raDeg, double decDeg) const;
    std::size_t size() const { return _x.size(); }

  private:
    std::int64_t cellKey(std::int64_t i, std::int64_t j, std::int64_t k) const;
    double _cell;    // cell size in unit-vector (chord) units
    double _chord2;  // squared chord of the radius
    std::vector<double> _x, _y, _z;
    std::vector<std::int64_t> _order;       // point indices sorted by cell key
    std::vector<std::int64_t> _sortedKeys;  // cell key of _order[n]
};

/// Angular separation in arcseconds (haversine; exact at small separations).
double separationArcsec(double ra1Deg, double dec1Deg, double ra2Deg, double dec2Deg);

/// Both directions of a nearest-neighbour match between catalogs A (objects) and B (truth).
struct Match final {
    std::vector<std::int64_t> bForA;   ///< nearest B within the radius of each A, or -1
    std::vector<std::int64_t> aForB;   ///< nearest A within the radius of each B, or -1
    std::vector<std::int32_t> nAForB;  ///< number of A within the radius of each B
};
Match matchCatalogs(const std::vector<double>& raA, const std::vector<double>& decA,
                    const std::vector<double>& raB, const std::vector<double>& decB, Angle radius);

/// AB magnitude of a flux in nJy (31.4 = -2.5 log10(1 nJy / 3631 Jy)); NaN for flux <= 0.
double njyToAbMag(double fluxNjy);

/// Noise of the optimal measurement of a galaxy's total flux relative to a point source's of
/// the same flux, for Gaussian profiles: sqrt(1 + (σ_g / σ_PSF)²), σ_g = rHalf / sqrt(2 ln 2)
/// (rHalf and psfSigma in the same unit). 1 when either is not positive (a point source).
double extendedNoiseFactor(double rHalf, double psfSigma);

/// The information floor of a sample: the median of |ε| pooled over its members, each with an
/// error ε_i ~ N(0, σ_i²) — what unbiased estimators at each member's Cramér–Rao bound σ_i would
/// give (e.g. σ_i = 1 / S/N_i for a relative flux). Solves Σ_i erf(m / (σ_i √2)) = N / 2 for m
/// (bisection); for equal σ, 0.6745 σ. Non-finite or non-positive σ_i are left out; NaN if none
/// is left. With `bias` (one per σ, or empty), ε_i ~ N(b_i, σ_i²): what an estimator whose own
/// systematic error on member i is b_i (e.g. measured without noise) would give at best with
/// noise; Σ_i ½[erf((m − b_i)/(σ_i √2)) + erf((m + b_i)/(σ_i √2))] = N / 2. Throws drp::Error
/// (bad input) when the sizes differ.
double informationFloor(const std::vector<double>& sigma, const std::vector<double>& bias = {});

/// The factor on a galaxy's flux error when its size is fitted from the same pixels as its flux:
/// for a Gaussian profile of variance s per axis in background-limited noise, the Fisher matrix
/// of (F, s) is K [[1/F², −1/(2sF)], [−1/(2sF), 1/(2s²)]] (K = Σ f² / σ²), whose inverse has
/// (F, F) element 2F²/K, twice the variance with s known; ellipticity and centre are orthogonal
/// to F for a round profile. Stars (PSF known): 1.
inline constexpr double kSizeFittedFluxErrorFactor = 1.4142135623730951;

/// Median of the finite values (NaN if none).
double median(std::vector<double> values);
/// 1.4826 * median absolute deviation of the finite values (NaN if none).
double robustSigma(const std::vector<double>& values);

/// One magnitude bin of a completeness or purity curve.
struct MagBin final {
    double magMin = 0, magMax = 0;
    std::int64_t n = 0;         ///< objects in the bin
    std::int64_t nMatched = 0;  ///< of which matched
    double fraction() const { return n > 0 ? double(nMatched) / double(n) : 0.0; }
};
/// Fraction of `matched` per magnitude bin [magMin + k*width, magMin + (k+1)*width).
/// Values outside the range or non-finite are ignored.
std::vector<MagBin> binnedFraction(const std::vector<double>& mag, const std::vector<bool>& matched,
                                   double magMin, double magMax, double width);

/// Median and robust sigma of measured/true - 1 over pairs (both fluxes finite, true > 0).
struct FluxStats final {
    std::int64_t n = 0;
    double bias = 0;     ///< median(measured/true - 1)
    double scatter = 0;  ///< robust sigma of measured/true - 1
};
FluxStats fluxRatioStats(const std::vector<double>& measured, const std::vector<double>& truth);

/// RMS of the angular offsets (mas) of matched pairs, and their median offsets in RA cos(dec)
/// and Dec (mas), which expose a systematic shift that the RMS alone would hide.
struct AstrometryStats final {
    std::int64_t n = 0;
    double rmsMas = 0;
    double medianDRaMas = 0, medianDDecMas = 0;
};
AstrometryStats astrometricResiduals(const std::vector<double>& ra1,
                                     const std::vector<double>& dec1,
                                     const std::vector<double>& ra2,
                                     const std::vector<double>& dec2);

/// Zero points compared with the truth per (visit, detector), both in mag AB per electron.
struct ZeroPointStats final {
    std::int64_t n = 0;           ///< visit-detectors present in both tables (calibrated only)
    std::int64_t nMissing = 0;    ///< truth visit-detectors with no calibrated zero point
    double meanOffsetMmag = 0;    ///< mean(measured - true): a global offset (refcat system)
    double rmsMmag = 0;           ///< RMS of (measured - true) about zero
    double rmsAboutMeanMmag = 0;  ///< RMS about the mean offset: the relative calibration
};
/// `measured` has visit, detector (int64), zero_point (float64) and optionally calibrated
/// (Bool); `truth` has visit, detector (any integer type) and zero_point.
ZeroPointStats zeroPointResiduals(const Table& measured, const Table& truth);

/// Photometric repeatability in the spirit of LSST's PA1 (LPM-17): for each star measured in at
/// least `minMeasurements` visits, the RMS of its magnitudes about its mean; the metric is the
/// median of those per-star RMS (mmag). Input: star id and magnitude per measurement.
///
/// With per-measurement errors, the *intrinsic* (noise-subtracted) repeatability is estimated
/// too: the extra scatter s added in quadrature to every error such that the per-star chi2 about
/// the weighted mean is typical, i.e. the median over stars of P(chi2_k(s); n_k - 1) is 1/2
/// (P: the chi2 distribution function). Under the model every star's P is uniform on [0, 1]
/// whatever its number of measurements, so the median of the P values is exactly 1/2 at the
/// true s; the median makes it robust to variables and blends that an RMS or a mean chi2 would
/// follow (the same spirit as DP1's noise-subtracted repeatability, Rubin RTN-095 sec. 3.2).
/// s = 0 when the scatter is no larger than the errors say.
struct RepeatabilityStats {
    std::int64_t nStars = 0;
    double pa1Mmag = 0;          ///< median per-star sample standard deviation
    double noiseMmag = NAN;      ///< median per-star RMS of the quoted errors (NaN: no errors)
    double intrinsicMmag = NAN;  ///< extra scatter beyond the errors (NaN: no errors)
};
RepeatabilityStats photometricRepeatability(const std::vector<std::int64_t>& starId,
                                            const std::vector<double>& mag,
                                            int minMeasurements = 3);
RepeatabilityStats photometricRepeatability(const std::vector<std::int64_t>& starId,
                                            const std::vector<double>& mag,
                                            const std::vector<double>& magErr,
                                            int minMeasurements = 3);

/// Regularized lower incomplete gamma function P(a, x) (series for x < a + 1, Lentz continued
/// fraction otherwise; Numerical Recipes 3rd ed. sec. 6.2); the chi2 CDF is P(nu/2, chi2/2).
double regularizedGammaP(double a, double x);

/// Seam checks of a release catalog (columns ra, dec, is_primary; optionally x, y, patch).
struct SeamStats final {
    std::int64_t nPrimary = 0;
    std::int64_t nDuplicatePairs = 0;  ///< pairs of primaries closer than the duplicate radius
};
SeamStats duplicatePrimaries(const Table& objects, Angle duplicateRadius);

/// "Every truth object with S/N >= threshold appears exactly once among primary objects." A
/// primary is an appearance of the truth object nearest to it (over all truth objects, of any
/// S/N), if that one is within the radius: two true objects 0.6" apart, both measured, appear
/// once each (not twice, as a count of primaries within 1" of each would say), and one primary
/// on an unresolved pair is an appearance of the nearer object only.
struct UniquenessStats final {
    std::int64_t nTruth = 0;  ///< truth objects above the S/N threshold
    std::int64_t nExactlyOnce = 0;
    std::int64_t nMissing = 0;   ///< no appearance
    std::int64_t nMultiple = 0;  ///< two or more appearances
    double fraction() const { return nTruth > 0 ? double(nExactlyOnce) / double(nTruth) : 0.0; }
};
/// `truthSn` is each truth object's expected S/N (e.g. true flux / depth noise).
UniquenessStats truthUniqueness(const std::vector<double>& truthRa,
                                const std::vector<double>& truthDec,
                                const std::vector<double>& truthSn, const Table& primaries,
                                Angle radius, double snThreshold);

/// Indices of the rows of `objects` with is_primary set.
std::vector<std::size_t> primaryRows(const Table& objects);

}  // namespace drp::validate
