// Multi-epoch forward-model fitting of one object ("multifit").
//
// The object is described in a local tangent plane around a reference sky position: offsets
// (u, v) = (east, north) in arcseconds. Each epoch supplies its own pixels (a cutout in that
// epoch's pixel frame), inverse variance (0 where masked), the local affine map from (u, v) to
// its pixels (from its calibrated WCS), its PSF (as a Gaussian mixture for model rendering and as
// a pixel image for PSF photometry) and its photometric scale. Nothing is resampled: the model
// is rendered on every epoch's own pixel grid and compared with the data there, so epochs with
// good seeing keep their resolution (Tractor: Lang, Hogg & Mykytyn 2016; LSST's "multifit").
//
// Models (profiles.h): point source; exponential (Sérsic n=1) and de Vaucouleurs (n=4) as
// Gaussian mixtures with centre, ellipse (conformal shear η: e = tanh|η| η̂, distortion
// convention) and log half-light radius; per-band fluxes solved linearly inside the non-linear
// fit (variable projection). The non-linear parameters are fitted by Levenberg–Marquardt with
// analytic derivatives of the rendered mixture (∂G/∂μ = G Σ⁻¹d, ∂G/∂Σ = ½G(Σ⁻¹ddᵀΣ⁻¹ − Σ⁻¹)).
// Errors come from the inverse Fisher matrix of all parameters (fluxes and shape together),
// so flux errors are marginalised over position and shape.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "drp/core/image.h"
#include "drp/core/psf.h"
#include "drp/multifit/gaussian_mixture.h"

namespace drp::multifit {

/// One epoch's view of one object.
struct Epoch {
    int band = 0;            ///< index into the fit's bands
    ImageD image;            ///< background-subtracted counts, neighbours subtracted
    ImageD inverseVariance;  ///< 1/variance [counts⁻²]; 0 for masked pixels
    Eigen::Matrix2d uvToPixel = Eigen::Matrix2d::Identity();  ///< pixels per arcsec (∂p/∂(u,v))
    Eigen::Vector2d refPixel{0, 0};       ///< epoch pixel position of the reference sky point
    GaussianMixture psf;                  ///< PSF mixture about (0, 0), pixel units, unit sum
    std::shared_ptr<const Psf> psfModel;  ///< for pixel-exact PSF photometry (may be null)
    double countsPerNJy = 1.0;            ///< photometric scale of this epoch
    std::string id;                       ///< for provenance and diagnostics
};

enum class ModelKind { Point, Exponential, DeVaucouleurs };
const char* modelName(ModelKind k);

struct FitConfig {
    int maxIterations = 60;  ///< LM iterations
    /// Convergence: an accepted LM step that lowers χ² by less than
    /// max(relTolerance · χ², chi2Tolerance) ends the fit. A parameter 1σ from the optimum
    /// raises χ² by 1, so a last decrease of 1e-3 leaves the parameters a few hundredths of a σ
    /// from it (the Gauss–Newton steps converge superlinearly near the optimum).
    double relTolerance = 1e-6;
    double chi2Tolerance = 1e-3;
    double minRadius = 0.01;      ///< arcsec; smaller radii are clamped (profile unresolved)
    double maxRadius = 20.0;      ///< arcsec
    double maxCentreShift = 2.0;  ///< arcsec from the initial position before flagging
    double renderNSigma = 6.0;    ///< Mahalanobis cut when rendering components
    /// Hold the centre at the initial (u, v): only the shape (and the fluxes) are fitted, and
    /// the flux errors are conditional on that centre (uErr = vErr = 0). For a faint member of
    /// a blend whose free centre is pulled onto a much brighter neighbour's residual (the way
    /// HSC's CModel takes its centre from the deblender's centroid rather than fitting it).
    bool fixCentre = false;
    void validate() const;
};

struct FitResult {
    ModelKind kind = ModelKind::Point;
    bool converged = false;
    int iterations = 0;
    Eigen::VectorXd flux;     ///< per band, nJy
    Eigen::VectorXd fluxErr;  ///< per band, nJy (marginalised)
    Eigen::MatrixXd fluxCov;  ///< band × band covariance
    double u = 0, v = 0;      ///< centre offset from the reference position, arcsec
    double uErr = 0, vErr = 0;
    double e1 = 0, e2 = 0,
           rEff = 0;  ///< distortion ellipticity, half-light radius sqrt(ab) [arcsec]
    double rEffErr = 0;
    double chi2 = 0;
    int dof = 0;
    int nEpochs = 0;      ///< epochs with unmasked pixels in the fit
    std::string failure;  ///< empty if the fit succeeded
};

/// Fit one model to all epochs. `nBands` fluxes are fitted; `initial` gives the starting centre
/// (u, v) and, for extended models, e1, e2, rEff.
FitResult fitModel(const std::vector<Epoch>& epochs, int nBands, ModelKind kind,
                   const FitResult& initial, const FitConfig& config = {});

/// PSF photometry: the centre fixed at (u, v); the flux per band fitted linearly with the
/// pixel-exact PSF image of each epoch (Epoch::psfModel) — or its mixture if psfModel is null.
FitResult fitPsfFlux(const std::vector<Epoch>& epochs, int nBands, double u, double v);

/// Render the model of `fit` into epoch `e`'s frame (counts), e.g. to subtract a neighbour.
ImageD renderModel(const Epoch& e, const FitResult& fit, Box2I box, double nSigma = 8.0);

/// The unit-flux template (counts per nJy) of `kind` in epoch `e` at non-linear parameters
/// θ = (u, v) for a point source or (u, v, η1, η2, ln rEff) for extended models, and its
/// analytic derivatives ∂t/∂θ_k — exposed so that tests can check them against finite
/// differences.
struct Template {
    ImageD t;
    std::vector<ImageD> derivatives;
};
Template renderTemplate(const Epoch& e, ModelKind kind, const Eigen::VectorXd& theta,
                        double nSigma = 8.0);

/// The composite ("CModel", Abazajian et al. 2004; Bosch et al. 2018) flux: the best
/// non-negative linear combination of the exp and dev fits' templates, per band.
struct CompositeResult {
    Eigen::VectorXd flux, fluxErr;
    double fracDev = 0;
    double chi2 = 0;
};
CompositeResult fitComposite(const std::vector<Epoch>& epochs, int nBands, const FitResult& expFit,
                             const FitResult& devFit);

}  // namespace drp::multifit
