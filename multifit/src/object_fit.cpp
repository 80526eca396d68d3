#include "drp/multifit/object_fit.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <Eigen/Dense>

#include "drp/core/error.h"

namespace drp::multifit {

const char* modelChoiceName(ModelChoice c) {
    switch (c) {
        case ModelChoice::None:
            return "none";
        case ModelChoice::Point:
            return "point";
        case ModelChoice::Exponential:
            return "exp";
        case ModelChoice::DeVaucouleurs:
            return "dev";
    }
    return "?";
}

void ObjectFitConfig::validate() const {
    fit.validate();
    if (!(extendedDeltaChi2 >= 0))
        throw configError("multifit.extendedDeltaChi2 must be >= 0, got " +
                          std::to_string(extendedDeltaChi2));
    if (subtractionPasses < 0 || subtractionPasses > 10)
        throw configError("multifit.subtractionPasses must be in [0, 10], got " +
                          std::to_string(subtractionPasses));
    if (!(duplicateRadius >= 0))
        throw configError("multifit.duplicateRadius must be >= 0, got " +
                          std::to_string(duplicateRadius));
    if (!(separateDeltaChi2 >= 0) || !(separateControlFactor >= 0))
        throw configError("multifit.separateDeltaChi2 and separateControlFactor must be >= 0");
}

const FitResult& ObjectFit::chosen() const {
    switch (model) {
        case ModelChoice::Exponential:
            return exp;
        case ModelChoice::DeVaucouleurs:
            return dev;
        default:
            return point.failure.empty() ? point : psf;
    }
}

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

/// Covariance with the correlation of `shape` and the standard deviations `err`: used to attach
/// the cross-band correlation of a marginal fit to errors computed another way.
Eigen::MatrixXd scaledCovariance(const Eigen::MatrixXd& shape, const Eigen::VectorXd& err) {
    const int n = static_cast<int>(err.size());
    Eigen::MatrixXd c = Eigen::MatrixXd::Constant(n, n, kNaN);
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j) {
            if (i == j) {
                c(i, j) = err(i) * err(i);
                continue;
            }
            double d = shape.rows() == n ? std::sqrt(shape(i, i) * shape(j, j)) : 0.0;
            double rho = d > 0 ? shape(i, j) / d : 0.0;
            c(i, j) = std::clamp(rho, -1.0, 1.0) * err(i) * err(j);
        }
    return c;
}

ObjectFit emptyFit(int nBands, std::int64_t flags) {
    ObjectFit out;
    out.flags = flags;
    out.psfFlux = out.psfFluxErr = out.modelFlux = out.modelFluxErr =
        Eigen::VectorXd::Constant(nBands, kNaN);
    out.psfFluxCov = out.modelFluxCov = Eigen::MatrixXd::Constant(nBands, nBands, kNaN);
    out.nEpochs = Eigen::VectorXi::Zero(nBands);
    out.chi2Dof = kNaN;
    return out;
}

/// A usable starting point for a profile fit: a previous fit of the same kind, or of the other
/// galaxy profile (same object, so the centre and ellipse carry over; LM then mostly adjusts the
/// radius), without its fluxes.
bool usableStart(const FitResult& f) {
    return f.failure.empty() && std::isfinite(f.u) && std::isfinite(f.v) && std::isfinite(f.e1) &&
           std::isfinite(f.e2) && f.rEff > 0 && std::isfinite(f.rEff);
}

/// Where a group's later pass starts the point fit (the previous pass's centre); null: at the
/// object's ObjectInit (u, v).
struct Start {
    double u = 0, v = 0;
};

/// `warm`: the same object's fit from a previous pass of its group (null: none), whose
/// parameters start this pass's fits. `pointOnly`: stop after the point fit and PSF flux (the
/// object is then a point source for its group's first subtraction pass). `start`: where the
/// point fit starts (null: at init's u, v).
///
/// Centre shifts are measured from the deblender's position (init u, v), the anchor, not from
/// where each fit started: the exp and dev fits start at the point fit's centre and a group's
/// later passes at the previous pass's, so per-fit checks let shifts add up (a galaxy with a
/// deblender position right to 0.02" ended 2.09" away, past the release's 1" match).
ObjectFit fitObjectUnguarded(const std::vector<Epoch>& epochs, int nBands, const ObjectInit& init,
                             const ObjectFitConfig& config, const ObjectFit* warm, bool pointOnly,
                             const Start* start = nullptr) {
    Eigen::VectorXi nEpochs = Eigen::VectorXi::Zero(nBands);
    for (const auto& ep : epochs) {
        bool any = std::any_of(ep.inverseVariance.pixels().begin(),
                               ep.inverseVariance.pixels().end(), [](double w) { return w > 0; });
        if (any && ep.band >= 0 && ep.band < nBands) ++nEpochs(ep.band);
    }
    if (nEpochs.sum() == 0) return emptyFit(nBands, kFlagNoEpochs);

    ObjectFit out = emptyFit(nBands, 0);
    out.nEpochs = nEpochs;
    // The fits themselves do not check the shift (they would measure it from their own start);
    // `anchored` does, from init's (u, v).
    FitConfig fitCfg = config.fit;
    fitCfg.maxCentreShift = std::numeric_limits<double>::infinity();
    // A galaxy profile larger than the object's cutout is not constrained by its pixels: it runs
    // away absorbing neighbour or background light (a S/N 30 star of the demo release ended as
    // an r_e = 7.9" exponential in a 3.9" cutout, its "centre" 1.6" off). Such a fit ends at
    // the radius limit and is flagged, like one at maxRadius.
    if (init.halfSize > 2 * fitCfg.minRadius)
        fitCfg.maxRadius = std::min(fitCfg.maxRadius, init.halfSize);
    auto anchored = [&](FitResult f) {
        if (f.failure.empty() &&
            !(std::hypot(f.u - init.u, f.v - init.v) <= config.fit.maxCentreShift)) {
            f.failure = "centre_shift";
            out.flags |= kFlagCentreShift;
        }
        return f;
    };
    FitResult pinit;
    pinit.u = start ? start->u : init.u;
    pinit.v = start ? start->v : init.v;
    out.point = anchored(fitModel(epochs, nBands, ModelKind::Point, pinit, fitCfg));
    const bool pointOk = out.point.failure.empty();
    if (!pointOk) out.flags |= kFlagPointFailed;
    out.psf =
        fitPsfFlux(epochs, nBands, pointOk ? out.point.u : init.u, pointOk ? out.point.v : init.v);
    if (pointOnly) {
        out.model = ModelChoice::Point;
        out.psfFlux = out.psf.flux;
        out.psfFluxErr = out.psf.fluxErr;
        return out;
    }
    FitResult ginit;
    ginit.u = out.psf.u;
    ginit.v = out.psf.v;
    ginit.rEff = init.rEff;
    out.exp = anchored(fitModel(epochs, nBands, ModelKind::Exponential,
                                warm && usableStart(warm->exp) ? warm->exp : ginit, fitCfg));
    // The dev fit starts from the exp fit's centre, ellipse and size (or its own previous fit):
    // the same object, so only the radius has to move much — about half the LM iterations of a
    // start from a round guess.
    const FitResult& devStart = warm && usableStart(warm->dev) ? warm->dev
                                : usableStart(out.exp)         ? out.exp
                                                               : ginit;
    out.dev = anchored(fitModel(epochs, nBands, ModelKind::DeVaucouleurs, devStart, fitCfg));
    // A galaxy profile the data do not prefer over the point source (chi^2 lower by no more than
    // extendedDeltaChi2) belongs to an unresolved object, whose ellipticity the pixels do not
    // constrain: its running to the cap is not a failed measurement. Flagging it as one marked
    // ~20% of the demo release's objects (mostly stars and r_e < 0.3" galaxies, fitted sizes
    // 0.01-0.24") as failed and every multifit patch as degraded. The fit itself is unchanged.
    auto failed = [&](const FitResult& g) {
        const bool unresolved = pointOk && !(out.point.chi2 - g.chi2 > config.extendedDeltaChi2);
        return !g.failure.empty() && !(g.failure == "ellipticity_at_limit" && unresolved);
    };
    if (failed(out.exp)) out.flags |= kFlagExpFailed;
    if (failed(out.dev)) out.flags |= kFlagDevFailed;
    out.composite = fitComposite(epochs, nBands, out.exp, out.dev);
    const bool expBetter = out.exp.chi2 <= out.dev.chi2;
    const FitResult& best = expBetter ? out.exp : out.dev;
    out.extended = best.failure.empty() && (out.point.chi2 - best.chi2) > config.extendedDeltaChi2;
    out.model = out.extended ? (expBetter ? ModelChoice::Exponential : ModelChoice::DeVaucouleurs)
                             : ModelChoice::Point;

    out.psfFlux = out.psf.flux;
    out.psfFluxErr = out.psf.fluxErr;
    // The PSF fluxes share the fitted centre: their cross-band correlation is that of the
    // point fit's marginal covariance (zero when that fit failed).
    out.psfFluxCov =
        scaledCovariance(pointOk ? out.point.fluxCov : Eigen::MatrixXd(), out.psfFluxErr);
    out.modelFlux = out.composite.flux;
    out.modelFluxErr.resize(nBands);
    for (int b = 0; b < nBands; ++b)
        // The composite error is conditional on the shapes; the marginal error of the best
        // single-profile fit is the honest one and is never smaller.
        out.modelFluxErr(b) = std::max(out.composite.fluxErr(b), best.fluxErr(b));
    out.modelFluxCov = scaledCovariance(best.fluxCov, out.modelFluxErr);
    out.chi2Dof = best.dof > 0 ? out.composite.chi2 / best.dof : kNaN;
    return out;
}

/// Pixel box of half-size `halfSizeArcsec` around offset (u, v) in epoch `e`, inside `within`.
Box2I memberBox(const Epoch& e, double u, double v, double halfSizeArcsec, Box2I within) {
    Eigen::Vector2d p = e.refPixel + e.uvToPixel * Eigen::Vector2d(u, v);
    const double pixPerArcsec = std::sqrt(std::abs(e.uvToPixel.determinant()));
    const double h = std::min(halfSizeArcsec * pixPerArcsec, 1e6);
    if (!within.contains(
            Point2I(static_cast<int>(std::lround(p.x())), static_cast<int>(std::lround(p.y())))))
        return Box2I();
    int x0 = static_cast<int>(std::floor(p.x() - h)), x1 = static_cast<int>(std::ceil(p.x() + h));
    int y0 = static_cast<int>(std::floor(p.y() - h)), y1 = static_cast<int>(std::ceil(p.y() + h));
    return Box2I({x0, y0}, {x1 - x0 + 1, y1 - y0 + 1}).clippedTo(within);
}

bool usableForSubtraction(const ObjectFit& f) {
    return f.model != ModelChoice::None && !(f.flags & (kFlagNoEpochs | kFlagFitError));
}

}  // namespace

namespace {

ObjectFit fitObjectGuarded(const std::vector<Epoch>& epochs, int nBands, const ObjectInit& init,
                           const ObjectFitConfig& config, const ObjectFit* warm,
                           bool pointOnly = false, const Start* start = nullptr) {
    try {
        return fitObjectUnguarded(epochs, nBands, init, config, warm, pointOnly, start);
    } catch (const std::exception& e) {
        // One object's bad input (or a numerical failure) must not take its group or patch
        // down: the object is flagged as not measured and the caller goes on.
        ObjectFit out =
            emptyFit(nBands, kFlagFitError | kFlagPointFailed | kFlagExpFailed | kFlagDevFailed);
        out.error = e.what();
        return out;
    }
}

}  // namespace

ObjectFit fitObject(const std::vector<Epoch>& epochs, int nBands, const ObjectInit& init,
                    const ObjectFitConfig& config) {
    config.validate();
    return fitObjectGuarded(epochs, nBands, init, config, nullptr);
}

namespace {

/// The chosen model of `fit` in epoch e's frame (counts): for a galaxy `flux` in the exp and
/// `fluxDev` in the dev template, for a point source `flux` in the PSF.
ImageD renderChosen(const Epoch& e, const ObjectFit& fit, Box2I box, double flux, double fluxDev) {
    ImageD out(box, 0.0);
    auto add = [&](FitResult model, double f) {
        if (!std::isfinite(f) || f == 0) return;
        model.flux = Eigen::VectorXd::Zero(std::max<Eigen::Index>(model.flux.size(), e.band + 1));
        model.flux(e.band) = f;
        ImageD img = renderModel(e, model, box);
        for (std::size_t i = 0; i < img.pixels().size(); ++i) out.data()[i] += img.data()[i];
    };
    if (fit.extended) {
        add(fit.exp, flux);
        add(fit.dev, fluxDev);
    } else {
        FitResult p = fit.chosen();
        p.kind = ModelKind::Point;
        add(p, flux);
    }
    return out;
}

/// Flux of the chosen model in band b (composite total for galaxies, PSF flux otherwise).
double& chosenFlux(ObjectFit& fit, int b) {
    return fit.extended ? fit.modelFlux(b) : fit.psfFlux(b);
}

/// Adds epoch ep's weighted normal equations of the templates `t` (on ep's cutout) fitted to
/// `data` (same pixels): ata += TᵀWT, aty += TᵀW data.
void accumulateNormal(const Epoch& ep, const std::vector<ImageD>& t, const double* data,
                      Eigen::MatrixXd& ata, Eigen::VectorXd& aty) {
    const int m = static_cast<int>(t.size());
    const double* w = ep.inverseVariance.data();
    for (std::size_t i = 0; i < ep.image.pixels().size(); ++i) {
        if (w[i] <= 0) continue;
        for (int a = 0; a < m; ++a) {
            const double ta = t[a].data()[i];
            if (ta == 0) continue;
            aty(a) += w[i] * ta * data[i];
            for (int c = 0; c < m; ++c) ata(a, c) += w[i] * ta * t[c].data()[i];
        }
    }
}

/// Fluxes of all members solved jointly (linear least squares per band, all pixels of the group
/// cutouts) with their shapes fixed: the step that block-wise refits cannot do well, because
/// overlapping members' fluxes are strongly anti-correlated.
void solveGroupFluxes(const std::vector<Epoch>& epochs, int nBands, std::vector<ObjectFit>& fits,
                      const std::vector<std::ptrdiff_t>& duplicateOf) {
    const std::size_t n = fits.size();
    std::vector<int> active;
    for (std::size_t j = 0; j < n; ++j)
        if (usableForSubtraction(fits[j]) && duplicateOf[j] < 0)
            active.push_back(static_cast<int>(j));
    const int m = static_cast<int>(active.size());
    if (m < 2) return;
    std::vector<Eigen::MatrixXd> ata(nBands, Eigen::MatrixXd::Zero(m, m));
    std::vector<Eigen::VectorXd> aty(nBands, Eigen::VectorXd::Zero(m));
    for (const auto& ep : epochs) {
        std::vector<ImageD> t;
        for (int j : active) {
            const ObjectFit& f = fits[j];
            const double fd = f.extended ? f.composite.fracDev : 0.0;
            t.push_back(renderChosen(ep, f, ep.image.bbox(), 1 - fd, fd));
        }
        accumulateNormal(ep, t, ep.image.data(), ata[ep.band], aty[ep.band]);
    }
    for (int b = 0; b < nBands; ++b) {
        Eigen::LDLT<Eigen::MatrixXd> ldlt(ata[b]);
        if (ldlt.info() != Eigen::Success || !(ata[b].diagonal().array() > 0).all()) continue;
        Eigen::VectorXd x = ldlt.solve(aty[b]);
        if (!x.allFinite()) continue;
        for (int a = 0; a < m; ++a) chosenFlux(fits[active[a]], b) = x(a);
    }
}

/// The separate-source test of member d, which converged onto (or into the deblender cell of)
/// sibling s: is there a source at d's deblender position, or is d a peak on s's wing?
struct SeparateTest {
    double gain = kNaN;     ///< χ² gain of a point source at d's deblender position
    double control = kNaN;  ///< largest gain at the control positions (0: none usable)
};

/// Likelihood ratio on all epochs' pixels of the group cutouts, with every member other than d
/// and s subtracted (`residualOf(e)`): the model {s with its shape fixed and per-band flux
/// free} against {s, a point source at d's deblender position with per-band flux ≥ 0} (d's light
/// is given to s in the first). The gain Δχ² is summed over bands. The controls are the same
/// test at the same separation from s at seven other position angles (45° steps), with the
/// point source at d kept in the model: what s's own model mismatch alone can pay for at that
/// radius. Controls within half the separation of another member's deblender position are not
/// used (that member's own residual is no measure of s's). Linear least squares only: the
/// templates are rendered once, every hypothesis is a sub-block of one normal matrix per band.
template <class ResidualOf>
SeparateTest separateSourceTest(const std::vector<Epoch>& epochs, int nBands,
                                const ObjectFit& sibling, const Eigen::Vector2d& dPos,
                                const Eigen::Vector2d& sPos,
                                const std::vector<Eigen::Vector2d>& otherMembers,
                                const std::vector<Eigen::Vector2d>& alsoModelled,
                                ResidualOf residualOf) {
    const Eigen::Vector2d sep = dPos - sPos;
    const double r = sep.norm();
    std::vector<Eigen::Vector2d> pts = alsoModelled;
    const int na = static_cast<int>(alsoModelled.size());
    pts.push_back(dPos);
    for (int i = 1; i < 8; ++i) {
        const double a = i * M_PI / 4, c = std::cos(a), sn = std::sin(a);
        const Eigen::Vector2d p =
            sPos + Eigen::Vector2d(c * sep.x() - sn * sep.y(), sn * sep.x() + c * sep.y());
        const bool nearOther =
            std::any_of(otherMembers.begin(), otherMembers.end(),
                        [&](const Eigen::Vector2d& q) { return (p - q).norm() < 0.5 * r; });
        if (!nearOther) pts.push_back(p);
    }
    // Templates: 0 = s (unit flux, its fracDev mix), 1..na = the points also modelled, na + 1 =
    // point at d, then the controls.
    const int m = 1 + static_cast<int>(pts.size());
    std::vector<Eigen::MatrixXd> ata(nBands, Eigen::MatrixXd::Zero(m, m));
    std::vector<Eigen::VectorXd> aty(nBands, Eigen::VectorXd::Zero(m));
    const double fd = sibling.extended ? sibling.composite.fracDev : 0.0;
    for (std::size_t e = 0; e < epochs.size(); ++e) {
        const Epoch& ep = epochs[e];
        const Box2I box = ep.image.bbox();
        std::vector<ImageD> t;
        t.push_back(renderChosen(ep, sibling, box, 1 - fd, fd));
        for (const auto& p : pts) {
            FitResult pt;
            pt.kind = ModelKind::Point;
            pt.u = p.x();
            pt.v = p.y();
            pt.flux = Eigen::VectorXd::Zero(ep.band + 1);
            pt.flux(ep.band) = 1;
            t.push_back(renderModel(ep, pt, box));
        }
        const ImageD res = residualOf(e);
        accumulateNormal(ep, t, res.data(), ata[ep.band], aty[ep.band]);
    }
    // χ² gain of adding template c to the set `base` in band b (0 when its flux would be ≤ 0,
    // the constrained optimum, or when c has no pixels).
    auto gain = [&](int b, const std::vector<int>& base, int c) {
        auto q = [&](const std::vector<int>& idx, double* last) {
            const int k = static_cast<int>(idx.size());
            Eigen::MatrixXd a(k, k);
            Eigen::VectorXd y(k);
            for (int i = 0; i < k; ++i) {
                y(i) = aty[b](idx[i]);
                for (int j = 0; j < k; ++j) a(i, j) = ata[b](idx[i], idx[j]);
            }
            Eigen::LDLT<Eigen::MatrixXd> ldlt(a);
            const Eigen::VectorXd x = ldlt.solve(y);
            if (last) *last = x(k - 1);
            return x.allFinite() ? y.dot(x) : kNaN;
        };
        if (!(ata[b](c, c) > 0)) return 0.0;
        std::vector<int> keep;
        for (int i : base)
            if (ata[b](i, i) > 0) keep.push_back(i);
        double xc = 0;
        std::vector<int> with = keep;
        with.push_back(c);
        const double g = q(with, &xc) - (keep.empty() ? 0.0 : q(keep, nullptr));
        return std::isfinite(g) && xc > 0 ? std::max(g, 0.0) : 0.0;
    };
    SeparateTest out;
    out.gain = out.control = 0;
    std::vector<double> controls(pts.size() - 1 - na, 0.0);
    std::vector<int> base{0};
    for (int i = 1; i <= na; ++i) base.push_back(i);
    std::vector<int> withD = base;
    withD.push_back(na + 1);
    for (int b = 0; b < nBands; ++b) {
        out.gain += gain(b, base, na + 1);
        for (std::size_t i = 0; i < controls.size(); ++i)
            controls[i] += gain(b, withD, static_cast<int>(i) + na + 2);
    }
    for (double c : controls) out.control = std::max(out.control, c);
    return out;
}

}  // namespace

ImageD renderObject(const Epoch& e, const ObjectFit& fit, Box2I box) {
    if (!usableForSubtraction(fit)) return ImageD(box, 0.0);
    const double f = fit.extended ? fit.modelFlux(e.band) : fit.psfFlux(e.band);
    const double fd = fit.extended ? fit.composite.fracDev : 0.0;
    return renderChosen(e, fit, box, (1 - fd) * f, fd * f);
}

std::vector<ObjectFit> fitGroup(const std::vector<Epoch>& epochs, int nBands,
                                const std::vector<ObjectInit>& members,
                                const ObjectFitConfig& config) {
    config.validate();
    const std::size_t n = members.size();
    std::vector<ObjectFit> fits(n);
    // Members found to be duplicates of a sibling (the sibling's index; -1: none). A duplicate
    // is neither subtracted nor masked: its light is the sibling's.
    std::vector<std::ptrdiff_t> duplicateOf(n, -1);
    // Member k's pixel box in every epoch (empty: not covered).
    std::vector<std::vector<Box2I>> boxes(n, std::vector<Box2I>(epochs.size()));
    for (std::size_t k = 0; k < n; ++k)
        for (std::size_t e = 0; e < epochs.size(); ++e)
            boxes[k][e] = memberBox(epochs[e], members[k].u, members[k].v, members[k].halfSize,
                                    epochs[e].image.bbox());

    // Member k's epochs. With `models` null, pixels nearer (in the epoch's pixels) to another
    // member's starting position are masked; otherwise the other members' models are
    // subtracted and every pixel is used (except near members whose fit is unusable).
    auto memberEpochs = [&](std::size_t k, const std::vector<std::vector<ImageD>>* models,
                            bool& neighbourFailed) {
        std::vector<Epoch> out;
        for (std::size_t e = 0; e < epochs.size(); ++e) {
            const Box2I box = boxes[k][e];
            if (box.empty()) continue;
            const Epoch& src = epochs[e];
            Epoch ep;
            ep.band = src.band;
            ep.uvToPixel = src.uvToPixel;
            ep.refPixel = src.refPixel;
            ep.psf = src.psf;
            ep.psfModel = src.psfModel;
            ep.countsPerNJy = src.countsPerNJy;
            ep.id = src.id;
            ep.image = ImageD::copyOf(src.image.subview(box));
            ep.inverseVariance = ImageD::copyOf(src.inverseVariance.subview(box));
            std::vector<Eigen::Vector2d> maskAround;  // members whose pixels stay masked
            const Eigen::Vector2d self =
                src.refPixel + src.uvToPixel * Eigen::Vector2d(members[k].u, members[k].v);
            for (std::size_t j = 0; j < n; ++j) {
                if (j == k || duplicateOf[j] >= 0) continue;
                const bool subtract = models && usableForSubtraction(fits[j]);
                if (models && !subtract) neighbourFailed = true;
                if (subtract) {
                    const ImageD& m = (*models)[j][e];
                    Box2I ov = m.bbox().clippedTo(box);
                    if (ov.empty()) continue;
                    auto dst = ep.image.subview(ov);
                    auto mv = m.subview(ov);
                    for (int y = 0; y < ov.height(); ++y)
                        for (int x = 0; x < ov.width(); ++x) dst(x, y) -= mv(x, y);
                } else {
                    maskAround.push_back(
                        src.refPixel + src.uvToPixel * Eigen::Vector2d(members[j].u, members[j].v));
                }
            }
            if (!maskAround.empty())
                for (int y = box.minY(); y <= box.maxY(); ++y)
                    for (int x = box.minX(); x <= box.maxX(); ++x) {
                        const double dself = std::hypot(x - self.x(), y - self.y());
                        for (const auto& q : maskAround)
                            if (std::hypot(x - q.x(), y - q.y()) < dself) {
                                ep.inverseVariance.at({x, y}) = 0;
                                break;
                            }
                    }
            out.push_back(std::move(ep));
        }
        return out;
    };

    // First pass, neighbours masked. When subtraction passes follow, it only needs each
    // member's point-source model: galaxy fits on masked cutouts are biased (a faint member's
    // profile stretches towards the Voronoi boundary to absorb its bright neighbour's light), and
    // starting the subtraction passes from them can leave a refit in that wrong basin; the
    // subtraction passes refit every model anyway.
    const bool subtract =
        n >= 2 && config.neighbours == NeighbourMode::Subtract && config.subtractionPasses > 0;
    bool unused = false;
    for (std::size_t k = 0; k < n; ++k)
        fits[k] = fitObjectGuarded(memberEpochs(k, nullptr, unused), nBands, members[k], config,
                                   nullptr, subtract);
    if (!subtract) return fits;

    // Current model of every member in every epoch, on the group cutout.
    std::vector<std::vector<ImageD>> models(n, std::vector<ImageD>(epochs.size()));
    auto renderMember = [&](std::size_t j) {
        if (duplicateOf[j] >= 0) return;
        for (std::size_t e = 0; e < epochs.size(); ++e)
            models[j][e] = renderObject(epochs[e], fits[j], epochs[e].image.bbox());
    };
    // Members kept by the separate-source test: measured with the centre fixed at their
    // deblender position from then on.
    std::vector<char> fixedCentre(n, 0);
    std::vector<SeparateTest> tested(n);
    ObjectFitConfig fixedConfig = config;
    fixedConfig.fit.fixCentre = true;
    // Member k's fit on its epochs (neighbours subtracted), from the previous pass `previous`
    // (null: none). A fixed-centre member starts cold at its deblender position: its previous
    // galaxy fits had the centre that wandered off.
    auto refit = [&](std::size_t k, const ObjectFit* previous, int pass) {
        bool neighbourFailed = false;
        std::vector<Epoch> eps = memberEpochs(k, &models, neighbourFailed);
        // Start from the previous pass (the box stays where the deblender put it): the point
        // fit from the previous point fit's centre; the galaxy fits from the previous galaxy
        // fits only when those had the neighbours subtracted too. The masked first pass biases
        // extended fits towards the Voronoi boundary (a faint member's profile stretches to
        // absorb the bright neighbour's light across it), and starting there can leave the
        // refit in that wrong basin. Shifts are still checked against the deblender's position
        // (members[k]), never against this start.
        ObjectInit init = members[k];
        const bool usable = previous && usableForSubtraction(*previous);
        Start start{members[k].u, members[k].v};
        if (usable && !fixedCentre[k] && previous->point.failure.empty()) {
            start.u = previous->point.u;
            start.v = previous->point.v;
        }
        const bool warm = usable && pass > 0 && !fixedCentre[k];
        if (warm) {
            const FitResult& g =
                previous->exp.chi2 <= previous->dev.chi2 ? previous->exp : previous->dev;
            if (g.failure.empty() && g.rEff > 0) init.rEff = g.rEff;
        }
        ObjectFit f = fitObjectGuarded(eps, nBands, init, fixedCentre[k] ? fixedConfig : config,
                                       warm ? previous : nullptr, false, &start);
        if (neighbourFailed) f.flags |= kFlagNeighbourFailed;
        if (fixedCentre[k]) f.flags |= kFlagCentreFixed;
        f.separateDeltaChi2 = tested[k].gain;
        f.separateControlChi2 = tested[k].control;
        return f;
    };
    // Whether member d, whose centre converged onto sibling s (or into its deblender cell), is
    // a source of its own at its deblender position (ObjectFitConfig::separateDeltaChi2): the
    // group's pixels with every other member's current model subtracted.
    //
    // The null hypothesis is s refitted *without* d (`siblingAlone`, its shape free): s's
    // current fit was made with d's model subtracted, and where d took some of s's light s's
    // profile has adapted to the hole; testing against that model would credit d with s's own
    // light (on a bright galaxy's wing, spurious peaks then gained Δχ² of thousands).
    auto isSeparateSource = [&](std::size_t d, std::size_t s, const Eigen::Vector2d& at,
                                const std::vector<Eigen::Vector2d>& alsoModelled, int pass,
                                ObjectFit& siblingAlone) {
        {
            const ObjectFit previous = fits[s];
            duplicateOf[d] = static_cast<std::ptrdiff_t>(s);  // d neither subtracted nor masked
            siblingAlone = refit(s, &previous, pass);
            duplicateOf[d] = -1;
        }
        if (!(config.separateDeltaChi2 > 0)) return false;
        std::vector<Eigen::Vector2d> others;
        for (std::size_t j = 0; j < n; ++j)
            if (j != d && j != s && duplicateOf[j] < 0)
                others.emplace_back(members[j].u, members[j].v);
        auto residualOf = [&](std::size_t e) {
            ImageD r = ImageD::copyOf(epochs[e].image.subview(epochs[e].image.bbox()));
            for (std::size_t j = 0; j < n; ++j) {
                if (j == d || j == s || duplicateOf[j] >= 0 || models[j][e].pixels().empty())
                    continue;
                for (std::size_t i = 0; i < r.pixels().size(); ++i)
                    r.data()[i] -= models[j][e].data()[i];
            }
            return r;
        };
        if (!usableForSubtraction(siblingAlone)) return false;
        tested[d] =
            separateSourceTest(epochs, nBands, siblingAlone, at,
                               Eigen::Vector2d(siblingAlone.chosen().u, siblingAlone.chosen().v),
                               others, alsoModelled, residualOf);
        return tested[d].gain > config.separateDeltaChi2 &&
               tested[d].gain > config.separateControlFactor * tested[d].control;
    };
    // Member d would be a duplicate of s: either it is a separate source (kept, its centre
    // fixed at its deblender position, refitted now) or it is dropped from the group's model.
    // Returns true either way (the group needs another pass).
    auto resolve = [&](std::size_t d, std::size_t s, int pass) {
        // Where d's free fit ended is modelled too (a point source with free flux), unless that
        // is on s itself: the light d walked to is then not credited to its peak.
        const FitResult& cd = fits[d].chosen();
        const FitResult& cs = fits[s].chosen();
        std::vector<Eigen::Vector2d> also;
        if (std::hypot(cd.u - cs.u, cd.v - cs.v) >= config.duplicateRadius)
            also.emplace_back(cd.u, cd.v);
        ObjectFit siblingAlone;
        if (isSeparateSource(d, s, Eigen::Vector2d(members[d].u, members[d].v), also, pass,
                             siblingAlone)) {
            fixedCentre[d] = 1;
            const ObjectFit previous = fits[d];
            fits[d] = refit(d, &previous, pass);
            renderMember(d);
        } else {
            duplicateOf[d] = static_cast<std::ptrdiff_t>(s);
            for (auto& m : models[d]) m = ImageD();
            fits[s] = std::move(siblingAlone);  // already refitted without d
            renderMember(s);
        }
        return true;
    };
    // Two members whose centres converged together are one source (e.g. a spurious peak the
    // deblender put on a bright star's wing, which the refit on all pixels moves onto the star):
    // the one whose deblender position is farther from their centres is the duplicate — unless
    // the data say otherwise (resolve). Its model is dropped, so the joint fluxes are no longer
    // degenerate, and one more pass refits its sibling alone. Returns whether a member became a
    // duplicate or was fixed.
    auto findDuplicates = [&](std::size_t k, int pass) {
        if (duplicateOf[k] >= 0 || fixedCentre[k] || !usableForSubtraction(fits[k])) return false;
        const FitResult& ck = fits[k].chosen();
        for (std::size_t j = 0; j < n; ++j) {
            if (j == k || duplicateOf[j] >= 0 || !usableForSubtraction(fits[j])) continue;
            const FitResult& cj = fits[j].chosen();
            if (!(std::hypot(ck.u - cj.u, ck.v - cj.v) < config.duplicateRadius)) continue;
            const double mu = 0.5 * (ck.u + cj.u), mv = 0.5 * (ck.v + cj.v);
            const double dk = std::hypot(members[k].u - mu, members[k].v - mv);
            const double dj = std::hypot(members[j].u - mu, members[j].v - mv);
            // A fixed-centre member stays at its peak: the other one is the candidate.
            const std::size_t dup = fixedCentre[j] || dk > dj ? k : j;
            return resolve(dup, dup == k ? j : k, pass);
        }
        // A member whose centre left its own deblender cell for a sibling's (it ended nearer to
        // that sibling's peak than to its own) is fitting the sibling's light, not a source of
        // its own: on the demo release, spurious peaks 1.5"-2.4" out on the wings of bright
        // stars and galaxies walked to 0.4"-0.9" of them, just outside duplicateRadius, and were
        // released as second objects (some with negative fluxes absorbing the star's residual).
        // A real peak's fit, its neighbours subtracted, stays at its peak (to ~FWHM / (S/N)) —
        // or is pulled off by a much brighter sibling's residual, which the separate-source
        // test tells apart (resolve).
        const double own = std::hypot(ck.u - members[k].u, ck.v - members[k].v);
        std::ptrdiff_t cell = -1;
        double nearest = own;
        for (std::size_t j = 0; j < n; ++j) {
            if (j == k || duplicateOf[j] >= 0 || !usableForSubtraction(fits[j])) continue;
            const double d = std::hypot(ck.u - members[j].u, ck.v - members[j].v);
            if (d < nearest) {
                nearest = d;
                cell = static_cast<std::ptrdiff_t>(j);
            }
        }
        if (cell >= 0) return resolve(k, static_cast<std::size_t>(cell), pass);
        // A member that stayed in its cell but moved more than wanderRadius from its peak: on
        // the demo release, faint galaxies 2"-3" from 100x brighter ones walked 0.8" towards
        // them, their fluxes 7x the truth — the bright model's residual, not the faint source.
        // The move is kept when a source at the new position stands out of that residual (the
        // same test, at the new position); otherwise, when the deblender's position does, the
        // member is measured there with its centre fixed; otherwise it is left as it is.
        if (!(config.wanderRadius > 0 && own > config.wanderRadius)) return false;
        std::ptrdiff_t dominant = -1;
        double most = 0;
        for (std::size_t j = 0; j < n; ++j) {
            if (j == k || duplicateOf[j] >= 0 || !usableForSubtraction(fits[j])) continue;
            double f = 0;
            for (int b = 0; b < nBands; ++b) {
                const double x = fits[j].extended ? fits[j].modelFlux(b) : fits[j].psfFlux(b);
                if (std::isfinite(x)) f += std::abs(x);
            }
            const FitResult& cj = fits[j].chosen();
            const double d2 = (ck.u - cj.u) * (ck.u - cj.u) + (ck.v - cj.v) * (ck.v - cj.v);
            if (f / (d2 + 0.25) > most) {
                most = f / (d2 + 0.25);
                dominant = static_cast<std::ptrdiff_t>(j);
            }
        }
        if (dominant < 0) return false;
        const std::size_t s = static_cast<std::size_t>(dominant);
        ObjectFit siblingAlone;
        const Eigen::Vector2d moved(ck.u, ck.v);
        if (!isSeparateSource(k, s, Eigen::Vector2d(members[k].u, members[k].v), {moved}, pass,
                              siblingAlone)) {
            // Nothing at the peak beyond what the moved fit models: the move stands (often a
            // deblender position that was off, which the fit corrected).
            return false;
        }
        fixedCentre[k] = 1;
        const ObjectFit previous = fits[k];
        fits[k] = refit(k, &previous, pass);
        renderMember(k);
        return true;
    };
    // A pass that found a duplicate (or fixed a centre) is followed by one more (at most n − 1
    // extra passes: each removes or fixes a member).
    int passes = config.subtractionPasses;
    for (int pass = 0; pass < passes; ++pass) {
        solveGroupFluxes(epochs, nBands, fits, duplicateOf);
        for (std::size_t j = 0; j < n; ++j) renderMember(j);
        bool foundDuplicate = false;
        const int fixedBefore =
            static_cast<int>(std::count(fixedCentre.begin(), fixedCentre.end(), 1));
        for (std::size_t k = 0; k < n; ++k) {
            if (duplicateOf[k] >= 0) continue;
            const ObjectFit previous = fits[k];
            fits[k] = refit(k, &previous, pass);
            renderMember(k);
            foundDuplicate |= findDuplicates(k, pass);
        }
        const bool newlyFixed =
            static_cast<int>(std::count(fixedCentre.begin(), fixedCentre.end(), 1)) > fixedBefore;
        if (foundDuplicate && pass == passes - 1 &&
            passes < config.subtractionPasses + static_cast<int>(n) - 1)
            ++passes;
        // A member just fixed at its peak took its light back from its sibling, whose profile
        // had adapted to the hole: block coordinate descent needs the usual number of passes
        // from there (one pass left the bright sibling's flux 5-10% low and the faint member's
        // 2-3x high in object_fit_test's FaintNeighbourSurvivesWhereWingPeaksMerge).
        if (newlyFixed)
            passes = std::max(passes, std::min(pass + 1 + config.subtractionPasses,
                                               config.subtractionPasses + static_cast<int>(n) + 1));
    }
    // A duplicate's row: no fluxes, its sibling's position (so the release, which merges
    // siblings within 0.4", merges it into that sibling; with a chain, the end of the chain).
    for (std::size_t k = 0; k < n; ++k) {
        if (duplicateOf[k] < 0) continue;
        std::size_t into = static_cast<std::size_t>(duplicateOf[k]);
        while (duplicateOf[into] >= 0) into = static_cast<std::size_t>(duplicateOf[into]);
        ObjectFit d = emptyFit(nBands, kFlagDuplicate);
        d.nEpochs = fits[k].nEpochs;
        d.separateDeltaChi2 = tested[k].gain;
        d.separateControlChi2 = tested[k].control;
        d.point = d.psf = fits[into].chosen();
        d.point.flux = d.point.fluxErr = d.psf.flux = d.psf.fluxErr =
            Eigen::VectorXd::Constant(nBands, kNaN);
        d.exp.e1 = d.exp.e2 = d.exp.rEff = d.exp.rEffErr = kNaN;
        d.dev = d.exp;
        d.exp.chi2 = d.dev.chi2 = kNaN;
        fits[k] = std::move(d);
    }
    return fits;
}

}  // namespace drp::multifit
