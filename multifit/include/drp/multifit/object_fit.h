// Measuring one object, or one blended group, the way the release does (docs/multifit.md).
//
// Per object: a point-source fit (centre, per-band fluxes) -> PSF flux at that centre with the
// pixel-exact PSF of every epoch -> exponential and de Vaucouleurs fits started from the point
// fit -> the composite ("CModel") flux from the two fixed-shape templates. Model choice follows
// legacypipe's `_select_model` idea (see ../shared/notes/science-anchors.md §6.3): a galaxy model
// replaces the point source only if it lowers χ² by more than `extendedDeltaChi2` (25 = 5σ for
// the 3 extra parameters); the galaxy profile is then the one of lower χ².
//
// Blends. Objects that the deblender put under one parent form a *group* and are measured
// together, Tractor-style (Lang, Hogg & Mykytyn 2016): a first pass fits each member with the
// pixels nearer to another member masked (the Voronoi partition of the deblender's peaks); each
// further pass refits every member on *all* pixels of its cutout after subtracting the current
// models of the other members (block coordinate descent on the joint likelihood: each pass can
// only lower the total χ², and two passes converge for the separations the deblender splits).
// `NeighbourMode::Mask` stops after the first pass — kept so that the two can be compared
// (multifit/tests/object_fit_test.cpp measures the flux bias of both on blended pairs).
//
// Failures are per object, never per group or patch: a fit that does not converge, walks away
// or hits a radius limit sets its flag bit; an exception (bad input) inside one object's fit
// sets kFlagFitError on that object and the others go on.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "drp/multifit/fitter.h"

namespace drp::multifit {

/// Bits of ObjectFit::flags (the multifit catalog's `multifit_flags`).
enum ObjectFitFlag : std::int64_t {
    kFlagNoEpochs = 1 << 0,     ///< no epoch has unmasked pixels: nothing fitted
    kFlagPointFailed = 1 << 1,  ///< point-source fit failed (PSF flux at the reference position)
    kFlagExpFailed = 1 << 2,    ///< exponential fit failed (no convergence, centre shift, radius)
    kFlagDevFailed = 1 << 3,    ///< de Vaucouleurs fit failed
    kFlagFitError = 1 << 4,     ///< an exception inside the fit; bits 1-3 are set too
    kFlagNeighbourFailed = 1 << 5,  ///< a group member's fit failed, its model not subtracted
    /// A fit's centre ended more than FitConfig::maxCentreShift from the deblender's position
    /// (ObjectInit u, v): that fit failed (its bit 1-3 is set); when it was the point fit, the
    /// reported position and PSF flux are the deblender's.
    kFlagCentreShift = 1 << 6,
    /// Converged onto a group sibling (centres closer than ObjectFitConfig::duplicateRadius): the
    /// same source, measured once, by that sibling. This row has no fluxes (NaN) and reports the
    /// sibling's position.
    kFlagDuplicate = 1 << 7,
    /// Its free centre left its own deblender cell for a sibling's (or converged onto one), but
    /// a source at the deblender's position is significant in all epochs' pixels
    /// (ObjectFit::separateDeltaChi2): measured with the centre fixed there (FitConfig::fixCentre)
    /// instead of being dropped as a duplicate.
    kFlagCentreFixed = 1 << 8,
};

/// Which model the catalog's shape and position come from (`model_type`).
enum class ModelChoice : std::int32_t { None = -1, Point = 0, Exponential = 1, DeVaucouleurs = 2 };
const char* modelChoiceName(ModelChoice c);

enum class NeighbourMode { Mask, Subtract };

struct ObjectFitConfig {
    FitConfig fit;
    double extendedDeltaChi2 = 25.0;  ///< χ²_point − χ²_galaxy above which a galaxy is chosen
    NeighbourMode neighbours = NeighbourMode::Subtract;
    int subtractionPasses = 2;  ///< passes with neighbours subtracted after the masked one
    /// Two group members whose fitted centres end closer than this [arcsec] are one source: the
    /// one whose deblender position is farther away is a duplicate (kFlagDuplicate). 0.4" is
    /// 2 px at 0.2"/px, about half the seeing FWHM: no image resolves two point sources that
    /// close, and fitting both makes the joint flux solution degenerate (huge fluxes of
    /// opposite sign that cancel).
    double duplicateRadius = 0.4;
    /// A member that the rules above would make a duplicate is kept, with its centre fixed at
    /// its deblender position, when a point source there lowers the χ² of all epochs' pixels
    /// (its sibling's flux free, the other members subtracted) by more than this (25: 5σ,
    /// legacypipe's detection cut) *and* by more than `separateControlFactor` times the largest
    /// such gain at control positions — the same separation from the sibling at other position
    /// angles, where only the sibling's model mismatch can pay (the residual of a bright star's
    /// or galaxy's imperfect model is what spurious wing peaks sit on). 0 disables the test.
    double separateDeltaChi2 = 25.0;
    double separateControlFactor = 5.0;
    /// A member whose free centre moved more than this [arcsec] from its deblender position
    /// (staying in its own cell) is tested too: the move stands when a source at the new
    /// position passes the test above; otherwise, when one at the deblender position does, the
    /// member is measured there with its centre fixed. 0 disables.
    double wanderRadius = 0.25;
    void validate() const;
};

/// Starting point of one object: offset (u, v) [arcsec] from the epochs' reference position
/// (the deblender's position: every fit of the object, in every pass of its group, must end
/// within FitConfig::maxCentreShift of it),
/// a size guess for the galaxy fits, and the half-size of its cutout inside the group cutout
/// [arcsec] (pixels farther than that from the object in x or y are not used for its fit; it
/// is also the largest half-light radius a galaxy fit may take: a larger profile is not
/// constrained by the cutout, and ends flagged at the radius limit).
struct ObjectInit {
    double u = 0, v = 0;
    double rEff = 0.5;
    double halfSize = 1e9;
};

struct ObjectFit {
    FitResult point, psf, exp, dev;
    CompositeResult composite;
    ModelChoice model = ModelChoice::None;
    bool extended = false;
    Eigen::VectorXd psfFlux, psfFluxErr, modelFlux, modelFluxErr;  ///< per band, nJy
    Eigen::MatrixXd psfFluxCov, modelFluxCov;                      ///< band × band, nJy²
    Eigen::VectorXi nEpochs;  ///< per band: epochs with unmasked pixels in the fit
    double chi2Dof = 0;       ///< of the composite model
    std::int64_t flags = 0;
    std::string error;  ///< the exception text when kFlagFitError is set
    /// The separate-source test of a member that would have been a duplicate (NaN: not
    /// tested): χ² gain of a point source at its deblender position, and the largest gain at
    /// the control positions (ObjectFitConfig::separateDeltaChi2).
    double separateDeltaChi2 = std::numeric_limits<double>::quiet_NaN();
    double separateControlChi2 = std::numeric_limits<double>::quiet_NaN();
    /// Position and shape of the chosen model (point fit for point sources).
    const FitResult& chosen() const;
};

/// Measure one object on its epochs (each Epoch already holds only this object's pixels, with
/// neighbours masked or subtracted by the caller).
ObjectFit fitObject(const std::vector<Epoch>& epochs, int nBands, const ObjectInit& init,
                    const ObjectFitConfig& config);

/// Measure the members of one blended group. `epochs` are the group's cutouts (one per epoch,
/// covering all members) with a common reference position; member k starts at members[k].
/// Pixels of other groups' objects must already be masked by the caller.
std::vector<ObjectFit> fitGroup(const std::vector<Epoch>& epochs, int nBands,
                                const std::vector<ObjectInit>& members,
                                const ObjectFitConfig& config);

/// The model of a measured object in epoch `e`'s frame (counts): the chosen model with its
/// fluxes (composite exp+dev for galaxies, the PSF-flux point source otherwise). Zero for an
/// object without a usable fit.
ImageD renderObject(const Epoch& e, const ObjectFit& fit, Box2I box);

}  // namespace drp::multifit
