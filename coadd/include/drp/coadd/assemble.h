// Combining warps into a coadd: inverse-variance weights per input, compare-warp artefact
// rejection, coadd PSF, depth and provenance.
//
// Weights. Each input gets ONE weight w_i = 1 / (F_i ⟨V_i⟩), ⟨V_i⟩ the 3σ-clipped mean of its
// variance plane over the patch and F_i its noise-correlation factor (warp.h), as LSST
// AssembleCoadd does. Per-pixel inverse-variance weights would include each star's own Poisson
// variance: the brighter epochs of a star (better transparency, or a positive noise fluctuation)
// would get *less* weight at its core than in its wings, biasing bright-star fluxes low and
// making the coadd PSF depend on the star's flux. A constant weight per input keeps the coadd a
// linear combination of the inputs, so its PSF is exactly Σ w_i PSF_i / Σ w_i (coadd_psf.h).
//
// Artefact rejection (LSST CompareWarpAssembleCoadd, DMTN-080, simplified to direct warps):
//  1. static sky M = per-pixel median of the valid warps (needs ≥ minEpochsForClipping inputs),
//     with variance V_M ≈ (π/2) ⟨V⟩ / n;
//  2. a pixel of warp i is an outlier if |W_i − M| > outlierSigma √(V_i + V_M) +
//     outlierAmplitudeFraction |M| (the amplitude term is SWarp's CLIP_AMPFRAC, Gruen et al.
//     2014: PSF differences between direct warps leave residuals proportional to the source);
//  3. candidates: 8-connected components of seed pixels (step 2) of each warp, with at least
//     minOutlierPixels pixels; what is clipped for a candidate is its hysteresis region, the
//     8-connected pixels with |W_i − M| > growSigma √(V_i + V_M) around it (a satellite trail is
//     followed across a bright star's core, where the amplitude term hides it);
//  4. temporal test: a candidate is transient if on ≥ spatialThreshold of its pixels at most
//     N_max(n) = floor(min(maxFractionEpochsLow·n, maxNumEpochs + maxFractionEpochsHigh·n))
//     warps are above the growth threshold (n = number of valid warps there; LSST defaults 0.4, 2,
//     0.03 → n ≤ 2: never clip, n = 3–4: 1, n = 5: 2). A variable star is an outlier in many epochs
//     and is kept; a cosmic ray or satellite trail is an outlier in one. Where only two warps
//     overlap (clipTwoEpochStreaks), the lower value is the static sky, and a region of
//     positive excess is clipped from the higher warp only if it is a streak (long and thin);
//     then the line through it, refitted to the warp's outlier pixels near it, is followed
//     across the warp and its whole band is clipped (noise breaks a faint trail into pieces);
//  5. bright-star protection: regions lying entirely inside a static-sky footprint (pixels above
//     growSigma) whose peak exceeds brightSourceSigma are never clipped; each such footprint is
//     grown by the radius out to which the widest input PSF (its radial profile, scaled to the
//     source's flux) stays above growSigma in that input, plus brightSourceGrow px, because PSF
//     wings differ most between direct warps (Moffat vs Gaussian) and are invisible in the median.
//     Inside that area a region is still clipped if it is compact (≤ maxProtectedArtifactArea
//     px), has a pixel above protectedSeedFactor × the seed threshold, and lies outside the
//     source's core (where the widest input PSF is above
//     protectedCoreFraction of its peak): a cosmic ray on a star's wing. Limitation (shared with
//     LSST, which PSF-matches its comparison warps instead): an artefact on a bright star's core
//     is kept;
//  6. transient regions, grown by clipGrow px, are masked CLIPPED in that warp only.
// Then the coadd is the weighted MEAN of the unclipped, unmasked (badMaskPlanes) warp pixels.
//
// Variance. V_coadd = Σ w_i² F_i V_i / (Σ w_i)² when scaleVarianceForCorrelation (default):
// the variance plane then predicts the scatter of PSF-sized aperture sums and PSF fluxes (the
// quantities detection and photometry use); the per-pixel variance is V_coadd / F, with the
// weighted mean F recorded in the result (`varianceScale`).
//
// Masks. NO_DATA where no input contributes (image 0, variance +∞: zero information);
// CLIPPED where any input was clipped; INEXACT_PSF where the set of contributing inputs changes
// within inexactPsfRadius px; each plane in `propagatedPlanes` where the inputs carrying it hold
// more than maskPropagationThreshold of the covering weight (LSST: SAT at 0.1).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "drp/coadd/coadd_psf.h"
#include "drp/coadd/warp.h"
#include "drp/core/exposure.h"
#include "drp/core/footprint.h"

namespace drp::coadd {

struct AssembleConfig final {
    /// Warp pixels carrying these planes do not enter the mean.
    std::vector<std::string> badMaskPlanes{"NO_DATA", "BAD", "SAT"};
    double weightClipSigma = 3.0;  ///< σ-clip of the variance plane for ⟨V_i⟩
    int weightClipIterations = 2;
    bool doArtifactRejection = true;
    double outlierSigma = 5.0;              ///< per-pixel threshold of |warp − median|
    double outlierAmplitudeFraction = 0.3;  ///< plus this fraction of |median| (SWarp CLIP_AMPFRAC)
    double growSigma = 3.0;                 ///< candidate regions grow over pixels above this
    int minOutlierPixels = 1;               ///< fewest seed pixels in a region (CRs can be 1 px)
    int minEpochsForClipping = 3;
    double maxFractionEpochsLow = 0.4;    ///< LSST default
    int maxNumEpochs = 2;                 ///< LSST default
    double maxFractionEpochsHigh = 0.03;  ///< LSST default
    double spatialThreshold = 0.5;        ///< LSST default
    int clipGrow = 2;  ///< px added around clipped regions (PSF wings of the artefact)
    /// Where only two warps overlap, the temporal test cannot say which of two differing
    /// epochs is wrong, and LSST does not clip there; satellite trails then reach the coadd
    /// (demo release: a trail at 3-12σ in the r coadd of patch 22 made a row of spurious
    /// children and swallowed a real galaxy). With this on, the lower of the two values is the
    /// reference there, so only a positive excess is an outlier, and a region of such pixels is
    /// clipped from the higher warp when it is a streak: at least streakMinLength px long and
    /// at most streakMaxAxisRatio wide for its length. Sources that vary between the two
    /// epochs, and PSF differences, make compact regions and stay.
    bool clipTwoEpochStreaks = true;
    double streakMinLength = 40;
    double streakMaxAxisRatio = 0.25;
    /// FAINT STREAKS (assemble.cpp): trails too faint for the per-pixel test are found by a
    /// Radon transform of each warp's excess over the median in blocks of faintStreakBin² px: a
    /// line at ≥ faintStreakSigma over ≥ faintStreakMinLength px, raised along its length, is
    /// clipped from that warp in a band of ±faintStreakHalfWidth px (grown by clipGrow). 0
    /// turns the search off. Demo release: the only trail compare-warp had missed (one i visit,
    /// ~2σ per pixel) and the faint ends of 7 others are clipped, nothing else in 75 patch-bands
    /// (checked against the simulator's trail list); objects 3433 → 3390, purity unchanged.
    double faintStreakSigma = 10.0;
    int faintStreakBin = 16;
    double faintStreakMinLength = 200;
    double faintStreakHalfWidth = 5;
    double brightSourceSigma = 50.0;  ///< static-sky S/N defining protected bright cores
    int brightSourceGrow = 3;
    /// Inside protected areas, regions of at most this many pixels lying outside the source's
    /// core (protectedCoreFraction of the widest PSF's peak) are still clipped (cosmic rays on a
    /// star's wings).
    int maxProtectedArtifactArea = 64;
    double protectedCoreFraction = 0.02;
    /// ... and if some pixel exceeds this multiple of the seed threshold (wing noise does not).
    double protectedSeedFactor = 2.0;
    std::vector<std::string> propagatedPlanes{"SAT", "BAD", "CR", "INTRP", "SUSPECT", "STREAK"};
    double maskPropagationThreshold = 0.1;
    bool scaleVarianceForCorrelation = true;
    int inexactPsfRadius = 5;
    void validate() const;
};

/// Provenance of one input.
struct CoaddInputRecord final {
    InputId id;
    double weight = 0;                  ///< w_i (1/nJy²)
    double meanVariance = 0;            ///< ⟨V_i⟩ (nJy²)
    double noiseCorrelationFactor = 1;  ///< F_i
    std::int64_t pixelsUsed = 0;
    std::int64_t pixelsClipped = 0;
    int regionsClipped = 0;
};

struct CoaddResult final {
    Exposure coadd;               ///< nJy image/mask/variance, PSF = CoaddPsf, nJyPerCount 1
    Image<std::int32_t> nInputs;  ///< depth: inputs contributing per pixel
    ImageF sumWeight;             ///< depth: Σ w_i per pixel (1/nJy²)
    std::vector<CoaddInputRecord> inputs;
    std::vector<SpanSet> clipped;  ///< per input: the coadd pixels clipped from it
    double varianceScale = 1;      ///< weighted mean F applied to the variance plane
};

/// Compare-warp artefact masks: per input (same order as the warps), the coadd pixels to clip.
struct ArtifactMasks final {
    std::vector<SpanSet> clipped;
    std::vector<int> regions;  ///< number of transient regions found per input
};

/// Steps 1–6 above: find the transient regions of each warp.
ArtifactMasks findArtifacts(const std::vector<Warp>& warps, const Box2I& patchBox,
                            const AssembleConfig& config = {});

/// The weighted mean of the warps with `artifacts` excluded (empty masks: nothing clipped).
CoaddResult combineWarps(const std::vector<Warp>& warps, const Box2I& patchBox,
                         const ArtifactMasks& artifacts, const AssembleConfig& config = {},
                         std::shared_ptr<const Wcs> patchWcs = nullptr);

/// findArtifacts (if doArtifactRejection) then combineWarps.
/// Combine warps onto `patchBox`. Throws Error("no_inputs") if no warp has data in the box,
/// Error(bad_input) naming the input if a warp is corrupt (no PSF, inconsistent planes,
/// non-finite values or variances on valid pixels).
CoaddResult assembleCoadd(const std::vector<Warp>& warps, const Box2I& patchBox,
                          const AssembleConfig& config = {},
                          std::shared_ptr<const Wcs> patchWcs = nullptr);

/// Check a warp is usable (see assembleCoadd); throws Error(bad_input).
void checkWarp(const Warp& warp);

}  // namespace drp::coadd
