// Multi-band detection and deblending on coadds.
//
// DETECTION (detectMultiBand): each band's coadd is searched with calib's matched-filter
// detection (true S/N thresholds from the variance plane); the per-band footprints are united
// (connected components of the union) and the peaks of all bands merged: peaks are taken in
// decreasing significance and a peak closer than `peakMergeRadius` to an accepted peak of another
// band is the same object seen in that band. So an object found in any band is found once.
// RESOLVED PAIRS: two objects 1–1.5 FWHM apart in the broad bands make one peak between them
// there, and the narrow band's two peaks, each within the merge radius of it, used to be merged
// into it; the deblender then had one source centred between the pair (and, at best, a shoulder
// peak beyond it): an equal pair of stars 7 px apart (σ_PSF 1.5 / 1.7 / 2 px) came out +78% and
// −90%. Now an accepted peak lying between two peaks of one band with a sharper PSF that were
// merged into it, at least that band's FWHM apart (projection on the segment between them in its
// middle 60%, within a quarter of their separation of the line), is replaced by the two
// (deblend_test BlendednessOfPointSourcePairs: within 1% at 6 and 7 px).
//
// DEBLENDING (deblendFootprint), in the spirit of scarlet / scarlet_lite (Melchior et al. 2018,
// Astronomy & Computing 24, 129): every peak k of a blended footprint is a source with an SED
// A_k (one non-negative amplitude per band) and a morphology S_k (a non-negative image, monotonic
// outwards from its peak, normalised to 1 at the peak), and the model in band b is
//     M_b = Σ_k A_kb S_k .
// Bands are first PSF-matched to a common Gaussian-like PSF of σ_T = hypot(σ_max, σ_s), the
// broadest band's σ_max widened by `matchSmoothing` σ_s (0.5 px), with Gaussian kernels of width
// sqrt(σ_T² − σ_b²), so that one morphology serves all bands (scarlet instead convolves a model
// at a narrow model PSF to each band; with Gaussian-like coadd PSFs both give the same
// templates). PSF MATCHING: without σ_s the broadest band is not smoothed at all, its pixel
// noise goes into the morphologies, and the template fluxes of the other (smoothed) bands, whose
// noise is not correlated with it, are biased low (errors in variables: the amplitude
// Σ S·D / Σ S² has the template's noise in the denominator only). On the simulated patch (seed
// 7, noisy vs noise-free, same code) the i band's template fluxes moved by a median of 2.4σ,
// mostly low, without σ_s and 1.4σ with σ_s = 1 px. Over the pairs of three simulated
// patches (`deblend_pairs_dump`, docs/deblend.md) the median |ΔF/F| of the template fluxes is
// 0.105 / 0.111 / 0.116 (g r i) without σ_s, 0.094 / 0.094 / 0.084 with 0.5 px (signed median
// within 1%) and 0.085 / 0.085 / 0.086 with 1 px (signed +3%); the price is resolution:
// noise-free close pairs (deblend_test CloseExtendedPairsWithoutNoise) 0.039, 0.048, 0.067.
//
// The loss ½ Σ_b w_b ||D_b − M_b||² over the footprint (w_b = 1/median variance of
// band b) is minimised by block proximal gradient descent (PALM, Bolte et al. 2014): gradient steps
// on A and S with step 1/L (L the block Lipschitz constant), then the proximal operators —
// positivity for A; positivity, restriction to the footprint and the nearest-neighbour monotonicity
// projection for S, and SYMMETRY: each pixel and its mirror image about the source's centre take
// their mean (scarlet's symmetry constraint, Melchior et al. 2018 §2.2.2; the SDSS deblender's
// templates). Monotonicity alone lets a faint source's morphology keep the wing of a bright
// neighbour that falls in its nearest-peak cell (seed 7 of the simulated patch: a faint
// galaxy next to a S/N 400 one got 9.5× its flux); a symmetric template must also explain the
// mirror side, where that wing is absent.
// CENTRES: the centre about which a morphology is symmetric and from which it is monotonic is a
// pixel centre or a half-pixel point on each axis (so mirror images are pixels, exactly). It
// starts at the half-pixel point nearest the maximum (parabola through 3×3) of the S/N-summed
// PSF-matched data near the detection peak, and every 5 iterations up to the 30th it moves
// (SUB-PIXEL CENTRES below; without them, to the half-pixel maximum of the data minus the
// neighbours' models), within 2 px of the peak. A blend pulls the
// detection peak — a local maximum of the summed light — up to ~1 px off the object, and a
// template symmetric about the wrong point takes light from one side of the pair and gives it
// to the other: on the noise-free simulated patch (seed 7) a 1.1:1 galaxy pair 1.3 FWHM apart
// came out +32% / −57% with peak-pixel centres and +8% / −15% with these, a faint galaxy
// 1.2 FWHM from one 4.7× brighter −42% and +6%.
// SUB-PIXEL CENTRES (subpixelCentres): the object's centre c is anywhere; the morphology S_k is
// symmetric about c2/2, the half-pixel point nearest c, and the source's template — what enters
// the model, the re-apportioning and the fluxes — is S_k shifted by δ = c − c2/2 (|δ| ≤ 1/4 px per
// axis) with Keys' cubic interpolation (scarlet shifts its models by sub-pixel amounts too). The
// gradient reaches S_k through the shift's adjoint (the shift by −δ). Every 5 iterations up to
// the 30th, c takes a Gauss–Newton step on the loss: the template moved by Δ changes the model
// by −A_b ∇T·Δ, fitted to the residuals within 2 σ_T of c (step ≤ 1/2 px per axis). A template
// symmetric about a point up to 1/4 px off the object leaves an antisymmetric residual ≈ δ·∇M
// (10% of a galaxy's flux in each lobe at δ = 1/4 px, σ = 2 px) that a neighbour absorbs. Issue's
// pairs of 7 simulated patches (deblend_pairs_dump, 244 children), noise-free: template flux
// median |ΔF/F| 0.066 / 0.059 / 0.054 (g r i) on the half-pixel grid, 0.048 / 0.045 / 0.040 with
// sub-pixel centres; with noise (246) 0.105 / 0.104 / 0.099 and 0.100 / 0.100 / 0.098
// (photon noise alone ~0.05). deblend_test CloseExtendedPairsWithoutNoise 0.048 → 0.029.
// (Sub-pixel templates centred on the parabola maximum of the data minus the neighbours'
// models instead of the Gauss–Newton step: 0.048 / 0.044 / 0.044 noise-free, 0.107 / 0.096 /
// 0.089 with noise, and worse blend members on the test patch.)
// SPARSE SUPPORT: each source's morphology lives on its own box — its nearest-peak cell in the
// footprint grown by 2 σ_PSF, grown further during the fit (every 10 iterations, on each side
// where the model at the edge exceeds 0.1σ per pixel) — so an iteration costs O(Σ_k |box_k|)
// instead of O(n_pix × n_sources) (scarlet_lite does the same). On the tiny release a
// 39-peak, 380×305 px footprint cost 206 CPU-s with dense n_pix × n_sources matrices and
// ~0.5 s this way.
// CONVERGENCE: after `minIterations` (15, LSST's minIter), stop when the loss changes by less than
// `relativeTolerance` relative to itself on two consecutive iterations, or after `maxIterations`
// (then the parent is degraded with flag "not_converged"). Defaults 1e-3 and 300: LSST's
// ScarletDeblendConfig uses maxIter 300 and relativeError 1e-2 when, as here, fluxes are measured
// on the re-apportioned data rather than on the models (1e-4 only for measurements on the models
// themselves); 1e-3 is ten times tighter than that, and 1e-4 left 14 of 229 blends of the tiny
// release unconverged after 200 iterations (slow two-source drifts that do not change the
// re-apportioned fluxes).
//
// FLUX RE-APPORTIONING: the models are templates: child k's image in band b is the *observed*
// (unmatched) image times T_kb / Σ_j T_jb with T_kb = A_kb S_k, so the children's pixels sum
// exactly to the parent's in every band (SDSS/HSC baseline deblender; scarlet "flux
// conservation"). Children's fluxes are sums over the parent footprint; the model fluxes
// A_kb Σ S_k are reported too.
//
// TEMPLATE FLUX: the re-apportioned footprint sums are exact (they sum to the parent) but carry
// the noise of every footprint pixel. Each child also gets a template flux per band,
//     F_kb = A_kb Σ S_k / φ_kb ,
// the amplitude of its template in the joint weighted least-squares fit of all templates to the
// PSF-matched data (the SED block: a matched-filter estimate, at the PSF-matched resolution at
// which the templates live, so the weights and the data have the same PSF), times the
// template's sum over the usable footprint pixels, divided by φ_kb, an aperture correction to a
// total flux: the fraction of the child's light that falls on the pixels its template can occupy
// (usable, in its box and the footprint, and with their mirror image about its centre in them
// too — the symmetry projection empties the others). φ is the matched PSF of the band (its
// coadd PSF kernel ⊗ its matching Gaussian; a Gaussian of σ_T without a kernel) at the child's
// centre summed over those pixels, times a size term for extended children: the ratio of the
// sums over the same pixels of two Gaussians, one with the PSF's adaptive covariance C_PSF and
// one with C_PSF + C_g, where C_g = C_template − C_PSF (adaptive moments, Bernstein & Jarvis
// 2002; clipped to positive semi-definite) is the child's intrinsic covariance; 1 for a point
// source. Exact for point sources; extended galaxies still lose the light of their
// exponential / de Vaucouleurs wings beyond a Gaussian's (noise-free simulated patch: −1 to −2%
// median on the pairs).
//
// TEMPLATE FLUX ERROR: a free-form template is fitted to the same noisy pixels it then
// measures: it follows their noise, so the template flux carries the noise of every pixel its
// template covers, as the re-apportioned sum does, and where siblings overlap, the noise of how
// the light is split between them. Its variance is
//     σ²_kb = [ Σ f² V + g Σ f (1 − f) V ] / φ_kb² ,
// sums over the template's usable pixels, f = T_kb / Σ_j T_jb the child's share of the model
// (the re-apportioning weight) and V the native variance: the own term is the re-apportioned
// sum's variance; the split term vanishes where one child holds all the light and peaks where
// two share it equally. g = 6 (kSplitNoiseGain) is calibrated on simulated patches against the
// noise's share of each child's flux, |F − F(no noise)| (deblend_pairs_dump --decompose,
// docs/deblend.md): median |F − F(no noise)| / σ 0.65 / 0.71 / 0.65 (g r i; 0.674 if right) on
// the pairs of seven patches, 0.47–0.83 in every blendedness bin. The matched-filter
// error of a template taken as exact (before) gave 1.1–1.4, and 1.3–1.8 where β ≥ 0.1. The
// honest error is 1.7× that one where no sibling overlaps: a free-form template's flux is as
// noisy as an aperture sum over it. That is no worse than necessary: the matched filter knows
// the shape, and an estimator that must measure each galaxy's size and ellipticity has a
// Cramér–Rao floor (deblend_pairs_dump --profile-floor, with the simulator's bulge + disk
// profiles) that the template flux's noise is within 1.02–1.16× of on the pairs.
// deblend_test TemplateFluxErrorsMatchTheirNoise checks the median noise pull is 0.674 ± 0.13
// on faint Gaussian pairs.
//
// BLENDEDNESS: how much of the light where child k's template lies is its own,
//     β_k = 1 − Σ_b w_b ⟨T_kb, T_kb⟩ / Σ_b w_b ⟨T_kb, M_b⟩ ,
// inner products over the usable pixels of the PSF-matched models (M_b = Σ_j T_jb), bands
// weighted as in the fit: 0 for a child no sibling overlaps, → 1 for one buried in a brighter
// neighbour. It is HSC's blendedness (Bosch et al. 2018, PASJ 70, S5: 1 − the child’s
// flux over the parent's, both weighted by the child's own profile) computed on the noise-free
// models, so it needs no noise correction. Its use: the deblender's own (noise-free) error grows
// with it. On the pairs of seven simulated patches (deblend_pairs_dump, docs/deblend.md)
// the median |ΔF/F| without noise is 0.02–0.03 at β < 0.01 and 0.06–0.07 at β ≥ 0.1, and
// with noise 0.05–0.07 and 0.14: select on β where the systematic error matters.
//
// RESIDUAL PEAKS and SPURIOUS PEAKS (deblendPatch; residualPeaks, pruneSpuriousPeaks below):
// after the first deblend of a parent, significant peaks of the data minus the children's
// models are added and the parent deblended again (faint objects next to bright ones that made
// no detection peak); then peaks whose light their siblings' models already explain are
// dropped (bumps on bright galaxies).
//
// FINAL FIT (deblendPatch, subpixelCentres): the peak set is settled with half-pixel centres
// (the fits that the residual-peak and spurious-peak tests, tuned on their residuals, look at),
// then the parent is fitted once more with sub-pixel centres on those peaks, and that fit gives
// the children's fluxes, templates and models; their positions and sizes (multifit's starting
// point) stay those of the half-pixel fit. A final fit that fails (drp::Error) or does not converge
// leaves the half-pixel one. With sub-pixel centres throughout (the peak search on sub-pixel
// residuals), the demo release had three bright galaxies appear twice (docs/deblend.md); this way
// its peak set, multifit inputs and validation metrics are those of the half-pixel deblender.
// Issue's pairs of 7 simulated patches (deblend_pairs_dump), template fluxes, median |ΔF/F| g / r /
// i: noise-free 0.070 / 0.063 / 0.059 → 0.054 / 0.046 / 0.049; with noise 0.105 / 0.104 / 0.099 →
// 0.101 / 0.101 / 0.102 and the footprint sums 0.124 / 0.121 / 0.104 → 0.107 / 0.105 / 0.101;
// deblendPatch CPU +9% (+17% noise-free).
//
// Isolated footprints (one peak) skip the fit: the single child is the parent.
// Pathological blends (more than maxPeaks peaks, more than maxPixels pixels) are not
// deblended: the parent is kept with flag "too_many_peaks" / "too_large" and the result is
// degraded; nothing is dropped. A fit that ends with non-finite values (non-finite input pixels)
// is discarded the same way, with flag "deblend_failed". Unusable pixels (NO_DATA or BAD, or a
// non-finite value or variance: chip gaps of coadds carry NaN variances) are left out of the
// fit and of every flux sum.
#pragma once

#include <string>
#include <vector>

#include "drp/calib/detection.h"
#include "drp/core/exposure.h"
#include "drp/core/footprint.h"

namespace drp::deblend {

/// Gaussian σ (pixels) of a PSF kernel image from its adaptive (Gaussian-weighted) second
/// moments (Bernstein & Jarvis 2002; HSM): the weight's σ_w is iterated to σ_w² = 2·M with M the
/// weighted moment per axis, whose fixed point is σ exactly for a Gaussian. For a Moffat PSF
/// this is the width of the core — what a matched filter and the PSF-matching kernels need —
/// whereas unweighted moments are dominated by the wings (σ ≈ FWHM for β = 3 instead of
/// FWHM/2.355) and make the detection filter far too broad, merging close pairs.
double psfGaussianSigma(ConstImageView<double> kernel);

struct MultiBandDetectionConfig final {
    calib::DetectionConfig detection;  ///< per-band detection settings (thresholds, growth, peaks)
    /// A peak closer than this (pixels) to a more significant peak of ANOTHER band is the same
    /// object. 5 px = 1" at 0.2"/px: LSST's MergeDetectionsConfig.minNewPeak (1 arcsec; a peak
    /// of a new band nearer than that to an existing one never makes a new object). Noise and
    /// colour gradients move the peak of a faint galaxy by 2-4 px between bands; with 2 px
    /// (before) one galaxy in ten at S/N 5-15 of the simulated patch was split into two
    /// siblings 3-5 px apart. Peaks of the same band are separated by the detection's own
    /// minimum separation and prominence and are all kept.
    double peakMergeRadius = 5.0;
    /// RESOLVED PAIRS (detectMultiBand): a merged peak lying between two peaks of a band with a
    /// sharper PSF that were merged into it and are at least that band's FWHM apart is replaced
    /// by the two.
    bool resolvedPairs = true;
    /// Search for peaks on the shoulders of brighter objects (shoulderPeaks).
    bool shoulderPeaks = true;
    /// Shoulder peaks must be at least this many σ_PSF from every other peak (2.355: 1 FWHM).
    double shoulderMinSeparation = 2.355;
    /// ... and carry at least this fraction of the filtered flux at their position.
    double shoulderMinFraction = 0.1;
    /// ... and exceed what the known peaks leave there as point sources (each the filtered
    /// PSF scaled to its filtered amplitude) by ≥ the detection threshold in S/N and by at least
    /// this fraction of that PSF prediction (PSF-shape tolerance: see shoulderPeaks).
    double shoulderPsfExcess = 0.5;
    void validate() const;
};

/// Peaks on the shoulders of brighter objects in one band: faint objects 1–2 FWHM from a
/// brighter one often make no local maximum in the matched-filtered image. Every known peak of
/// the footprint, brightest first, takes its symmetric template from the filtered image (the
/// lesser of a pixel and its mirror image about the peak's sub-pixel centre: SDSS deblender,
/// Lupton); local maxima of the residual inside the footprint with residual S/N ≥
/// detection.thresholdSigma, at least `shoulderMinFraction` of the filtered flux there and at
/// least `shoulderMinSeparation` σ_PSF from every known peak are new peaks (significance: the
/// residual S/N).
/// PSF test (with `psfKernel`, the band's coadd PSF): a candidate must also exceed what the
/// known peaks leave at its position as point sources — each the filtered PSF
/// (filteredPsfProfile) scaled to the peak's filtered amplitude — by at least
/// `shoulderPsfExcess` (0.5) of that prediction. Where the symmetric template fails on a bright
/// star's wing (the coadd PSF is not point-symmetric there, e.g. where visits' coverage changes
/// across the star: INEXACT_PSF), the wing is still close to the PSF's and the bump is not a
/// child. Measured on the demo release's candidates (25 patches, truth-matched within 0.5"):
/// spurious bumps on star wings at excess/prediction −1 to 0.52, every truth object next to a
/// star at ≥ 0.64 in its best band; a few spurious ones at 0.7–1.6 remain (INEXACT_PSF regions,
/// where the kernel at the patch centre is not the local PSF).
/// `filteredProfile`: the band's filteredPsfProfile when the caller has it (detectMultiBand
/// computes it once per band); computed here otherwise.
std::vector<Peak> shoulderPeaks(const Footprint& footprint, const MaskedImage& band,
                                double psfSigma, const MultiBandDetectionConfig& config,
                                const ImageD* psfKernel = nullptr,
                                const ImageD* filteredProfile = nullptr);

/// The band's PSF as a point source appears in the matched-filtered image: `psfKernel` (any
/// normalisation, centred on its centre pixel) convolved with the detection's Gaussian filter of
/// σ = psfSigma, normalised to 1 at the centre, on a box centred on (0, 0). Without a kernel, a
/// Gaussian PSF of σ = psfSigma (which underestimates the wings of real PSFs).
ImageD filteredPsfProfile(const ImageD* psfKernel, double psfSigma, double nSigmaForKernel);

/// Merged footprints (peaks brightest first) over all bands. `psfSigma[b]` is the Gaussian σ
/// (pixels) of band b's PSF. Sets DETECTED on each band's mask.
std::vector<Footprint> detectMultiBand(std::vector<MaskedImage*> bands,
                                       const std::vector<double>& psfSigma,
                                       const MultiBandDetectionConfig& config,
                                       const std::vector<ImageD>& psfKernels = {});

struct DeblendConfig final {
    int maxIterations = 300;          ///< LSST ScarletDeblendConfig.maxIter
    int minIterations = 15;           ///< no convergence test before (LSST minIter)
    double relativeTolerance = 1e-3;  ///< see CONVERGENCE above
    int maxPeaks = 100;               ///< more peaks: parent kept, "too_many_peaks"
    std::int64_t maxPixels = 200000;  ///< larger footprints: parent kept, "too_large"
    /// Morphologies symmetric about their centre as well as monotonic (SYMMETRY, CENTRES above).
    bool symmetric = true;
    /// Symmetry centres anywhere, fitted by Gauss–Newton steps on the loss (SUB-PIXEL CENTRES
    /// above), in deblendPatch's FINAL FIT only (below); false: on the half-pixel grid, at
    /// maxima of the data minus the neighbours, throughout.
    bool subpixelCentres = true;
    /// σ (pixels) of the extra Gaussian smoothing on top of PSF-matching to the broadest band
    /// (PSF MATCHING above).
    double matchSmoothing = 0.5;
    /// RESIDUAL PEAKS (deblendPatch): search the residual of every deblended parent (and of
    /// single-peak parents with peak S/N ≥ residualMinParentSignificance, fitted as one source)
    /// for peaks the detection missed, add them and deblend the parent again.
    bool residualPeaks = true;
    double residualThreshold = 5.0;  ///< residual S/N (matched filter) of a new peak, any band
    /// A new peak's filtered residual must be at least this fraction of the filtered data there
    /// (model errors of bright objects scale with their light).
    double residualMinFraction = 0.1;
    /// ... at least this many σ_T (the common PSF's σ) from every known peak (0.64 FWHM: the
    /// residual of a faint object next to a peak centred between the two is pulled towards it)
    double residualMinSeparation = 2.355;
    /// ... and exceed the known children's light as point sources (the matched PSF scaled to
    /// their filtered amplitude) by this fraction of that prediction (as shoulderPsfExcess).
    double residualPsfExcess = 0.5;
    /// ... and fall off from its peak: exceed its mean on the ring 1.5–2.5 σ_T around it by this
    /// fraction of its value (a point source: ~0.6; see residualPeaks).
    double residualCompactness = 0.4;
    /// Single-peak parents are fitted and searched only from this peak S/N on (the parent of a
    /// hidden object with S/N ≥ 10 has at least that S/N).
    double residualMinParentSignificance = 10.0;
    /// SPURIOUS PEAKS (deblendPatch, pruneSpuriousPeaks): a child whose detection peak or centre
    /// is within pruneRadius pixels of a brighter sibling's is tested: the parent is deblended
    /// without it, and when the others' models leave no residual peak (RESIDUAL PEAKS' tests
    /// but the separation) within pruneRadius of it, it is dropped and its light goes to its
    /// siblings.
    bool prune = true;
    double pruneRadius = 5.0;  ///< pixels (1" at 0.2"/px, LSST's minNewPeak)
    int pruneMaxRefits = 4;    ///< refits per parent for the test, at most
    void validate() const;
};

struct Child final {
    Peak peak;
    std::vector<double> flux;       ///< per band: re-apportioned flux (image units, nJy on coadds)
    std::vector<double> fluxErr;    ///< per band: from the variance plane, re-apportioned
    std::vector<double> modelFlux;  ///< per band: A_kb Σ S_k
    /// per band: template flux A_kb Σ S_k / φ_kb, φ_kb the fraction of the child's light (PSF
    /// and intrinsic size) that falls on the pixels its template can occupy in the PSF-matched
    /// band (TEMPLATE FLUX above), and its 1σ error
    std::vector<double> templateFlux, templateFluxErr;
    Point2D centroid;  ///< windowed centroid of the child's template (its centre)
    /// The template (S_k shifted by its sub-pixel offset, SUB-PIXEL CENTRES) on the source's own
    /// box inside the parent bbox, non-negative, peak = 1: the model is sed[b] × morphology.
    Image<float> morphology;
    std::vector<double> sed;  ///< A_kb
    double blendedness = 0;   ///< β_k (BLENDEDNESS above), in [0, 1]
};

struct DeblendResult final {
    std::vector<Child> children;  ///< one per peak (empty when the parent was not deblended)
    std::vector<double> parentFlux, parentFluxErr;  ///< per band, sum over the footprint
    bool deblended = false;  ///< false for isolated sources and refused blends
    bool converged = true;
    int iterations = 0;
    /// "too_many_peaks", "too_large", "not_converged", "deblend_failed"
    std::vector<std::string> flags;
    bool degraded() const { return !flags.empty(); }
};

/// Deblend one footprint on co-registered band images (same bbox and pixel grid).
DeblendResult deblendFootprint(const Footprint& footprint,
                               const std::vector<const MaskedImage*>& bands,
                               const std::vector<double>& psfSigma, const DeblendConfig& config,
                               const std::vector<ImageD>& psfKernels = {});

/// RESIDUAL PEAKS: peaks of what a deblended parent's children leave unexplained. In every band
/// the residual of the PSF-matched data minus the children's models (on the footprint's usable
/// pixels), less each child's fitted centring dipole, is matched-filtered with the common PSF (a
/// Gaussian of σ_T). Local maxima of the band-combined S/N √Σ_b max(0, S/N_b)² ≥
/// residualThreshold (noise: the native variance through both filters), holding at least
/// residualMinFraction of the filtered data there (inverse-variance weighted band sums), at
/// least residualMinSeparation σ_T from every peak of the footprint and from each other,
/// exceeding the children's light as point sources by residualPsfExcess of that prediction (the
/// band's matched PSF scaled to each child's filtered amplitude: a star's asymmetric PSF wing is
/// not a new object), compact (residualCompactness) and not at a sibling's mirror image about a
/// brighter child are new peaks (significance: the residual S/N); the reasons for each test are
/// in deblender.cpp and docs/deblend.md. `result` must be deblended (its children's morphologies
/// and SEDs are the models). Legacypipe's iterative detection and scarlet-lite's residual
/// sources work the same way: a faint object 1–3 FWHM from a much brighter one makes no peak of
/// its own in the data, but does in the data minus the brighter one's model.
std::vector<Peak> residualPeaks(const Footprint& footprint, const DeblendResult& result,
                                const std::vector<const MaskedImage*>& bands,
                                const std::vector<double>& psfSigma, const DeblendConfig& config,
                                const std::vector<ImageD>& psfKernels = {});

/// SPURIOUS PEAKS: children of a deblended parent whose detection peak or centre is within
/// config.pruneRadius pixels of a sibling's with a larger template flux (summed over bands),
/// faintest first: the candidates pruneSpuriousPeaks tests.
std::vector<std::size_t> spuriousCandidates(const DeblendResult& result,
                                            const DeblendConfig& config);

/// SPURIOUS PEAKS: drop the peaks whose light their siblings' models already explain. For each
/// candidate (spuriousCandidates, faintest first) the footprint is deblended without it (fitted
/// as one source when one peak remains); when that model leaves no residual peak within
/// config.pruneRadius of its centre (residualPeaks' tests but the separation and the mirror
/// images, with half the threshold and half the fraction: a model symmetric about a
/// neighbour's centre still holds about half of a real object's light), the peak is
/// removed from `footprint` and `result` becomes that deblend; then the candidates are
/// re-examined. At most config.pruneMaxRefits refits. Returns the number of peaks dropped.
/// On the demo release a significance-7 peak 0.7" from the centre of a S/N 154 galaxy took 1/16
/// of its flux, and multifit fitted it as a second object 0.54" away: the galaxy was released
/// twice. A template-flux criterion (drop children much fainter than a close sibling) cannot
/// tell such a bump from a neighbour: a peak injected 3–4 px from a smooth galaxy's centre
/// takes 4% to 50% of its light (deblend_test), and a real faint neighbour of a bright galaxy
/// often gets an almost empty template.
int pruneSpuriousPeaks(Footprint& footprint, DeblendResult& result,
                       const std::vector<const MaskedImage*>& bands,
                       const std::vector<double>& psfSigma, const DeblendConfig& config,
                       const std::vector<ImageD>& psfKernels = {});

/// Deblend one footprint, fitting it even when it has a single peak (one source: a symmetric,
/// monotonic model of an isolated object, for residualPeaks).
DeblendResult fitFootprint(const Footprint& footprint, const std::vector<const MaskedImage*>& bands,
                           const std::vector<double>& psfSigma, const DeblendConfig& config,
                           const std::vector<ImageD>& psfKernels = {});

/// One object of a patch catalogue: a child of a deblended parent, or the parent itself when it
/// was not deblended (isolated, or a refused/failed blend: then at its brightest peak, with the
/// parent's fluxes). This is what the pipeline writes as the "children" table.
struct PatchObject final {
    std::size_t parent = 0;  ///< index into PatchDeblend::footprints / results
    int nSiblings = 1;       ///< children of the parent (1: not deblended)
    /// Template centroid (children), or windowed centroid about the brightest peak (parents).
    Point2D position;
    double radius = 0;        ///< pixels: sqrt(area / pi) of the template above 5% of its peak or
                              ///< of the parent footprint
    double significance = 0;  ///< detection S/N of the peak (max over bands)
    std::vector<double> flux, fluxErr, modelFlux;  ///< per band (see Child)
    /// per band (see Child); the footprint sums when the parent was not deblended
    std::vector<double> templateFlux, templateFluxErr;
    /// BLENDEDNESS (above): the child's; 0 for an isolated object; NaN for a parent that was
    /// not deblended although it has several peaks (too_many_peaks, too_large, deblend_failed).
    double blendedness = 0;
};

struct PatchDeblend final {
    std::vector<Footprint> footprints;       ///< merged multi-band footprints (the parents)
    std::vector<DeblendResult> results;      ///< one per footprint
    std::vector<PatchObject> objects;        ///< parents' children, in parent order
    std::vector<std::string> degradedFlags;  ///< union of the parents' flags
};

/// Detection and deblending of a whole patch: detectMultiBand, then deblendFootprint on every
/// parent; then (config.residualPeaks) residualPeaks and, when it finds any, the parent is
/// deblended again with them; then (config.prune) pruneSpuriousPeaks. PatchDeblend::footprints hold
/// the final peaks. A parent whose deblending throws drp::Error or yields non-finite fluxes is kept
/// undeblended with flag "deblend_failed" (the patch goes on; the error is per object).
PatchDeblend deblendPatch(std::vector<MaskedImage*> bands, const std::vector<double>& psfSigma,
                          const MultiBandDetectionConfig& detectConfig,
                          const DeblendConfig& deblendConfig,
                          const std::vector<ImageD>& psfKernels = {});

/// Child k's image in band b (re-apportioned observed pixels on the footprint bbox; zero
/// outside the footprint), e.g. for measurement or neighbour-subtracted images.
Image<float> childImage(const DeblendResult& result, std::size_t k, const Footprint& footprint,
                        const MaskedImage& band, std::size_t bandIndex);

}  // namespace drp::deblend
