#include "drp/calib/psf_model.h"

#include <Eigen/Dense>
#include <algorithm>
#include <array>
#include <cmath>

#include "drp/calib/centroid.h"
#include "drp/core/error.h"

namespace drp::calib {

namespace {

Error psfFailed(const std::string& msg) {
    return Error("psf_failed", msg);
}

// Periodic-sinc (Dirichlet) interpolation weights on an n-pixel stamp (n odd): the value at
// stamp position i + f is Σ_m D(i + f − m) s(m) with D(t) = sin(πt) / (n sin(πt/n)). This is
// exact for a band-limited periodic signal and, for a compact PSF stamp whose edges are ~0,
// reaches 1e-5 (σ = 1.2 px) to 1e-7 (σ = 1.5 px) of the peak, against ~1e-3 for Lanczos-5.
std::vector<double> dirichletMatrix(int n, double f) {
    std::vector<double> w(std::size_t(n) * n);
    for (int i = 0; i < n; ++i)
        for (int m = 0; m < n; ++m) {
            double t = i + f - m;
            double den = n * std::sin(M_PI * t / n);
            w[std::size_t(i) * n + m] = std::abs(den) < 1e-14 ? 1.0 : std::sin(M_PI * t) / den;
        }
    return w;
}

// Derivative of the periodic-sinc interpolant at integer offsets, as a matrix acting on a stamp
// row: D'(k) = π (−1)^k / (n sin(πk/n)) for k ≠ 0 (mod n), D'(0) = 0.
std::vector<double> dirichletDerivativeMatrix(int n) {
    std::vector<double> w(std::size_t(n) * n, 0.0);
    for (int i = 0; i < n; ++i)
        for (int m = 0; m < n; ++m) {
            const int k = i - m;
            if (k == 0) continue;
            w[std::size_t(i) * n + m] =
                M_PI * ((k % 2 == 0) ? 1.0 : -1.0) / (n * std::sin(M_PI * k / n));
        }
    return w;
}

// The three deformation modes of a centred n×n template (see the header): dilation, shear e1,
// shear e2, each n² values row-major.
std::array<std::vector<double>, 3> deformationModes(const std::vector<double>& t, int n) {
    const std::size_t npix = std::size_t(n) * n;
    const auto d = dirichletDerivativeMatrix(n);
    std::vector<double> gx(npix, 0.0), gy(npix, 0.0);
    for (int j = 0; j < n; ++j)
        for (int i = 0; i < n; ++i) {
            double sx = 0, sy = 0;
            for (int m = 0; m < n; ++m) {
                sx += d[std::size_t(i) * n + m] * t[std::size_t(j) * n + m];
                sy += d[std::size_t(j) * n + m] * t[std::size_t(m) * n + i];
            }
            gx[std::size_t(j) * n + i] = sx;
            gy[std::size_t(j) * n + i] = sy;
        }
    const int r = n / 2;
    std::array<std::vector<double>, 3> b;
    for (auto& v : b) v.assign(npix, 0.0);
    for (int j = 0; j < n; ++j)
        for (int i = 0; i < n; ++i) {
            const std::size_t q = std::size_t(j) * n + i;
            const double x = i - r, y = j - r;
            b[0][q] = -(2 * t[q] + x * gx[q] + y * gy[q]);
            b[1][q] = -(x * gx[q] - y * gy[q]);
            b[2][q] = -(y * gx[q] + x * gy[q]);
        }
    return b;
}

}  // namespace

void PsfModelConfig::validate() const {
    auto fail = [](const std::string& what) { throw configError("PsfModelConfig: " + what); };
    if (kernelRadius < 2 || kernelRadius > 50)
        fail("kernelRadius = " + std::to_string(kernelRadius) + " must be in 2..50");
    if (spatialOrder < 0 || spatialOrder > 6)
        fail("spatialOrder = " + std::to_string(spatialOrder) + " must be in 0..6");
    if (!(maxSnr > 0)) fail("maxSnr must be > 0");
    if (!(maxWeightSnr > 0)) fail("maxWeightSnr must be > 0");
    if (!(rejectSigma > 0)) fail("rejectSigma must be > 0");
    if (maxRejectIterations < 0) fail("maxRejectIterations must be >= 0");
    if (!(maxRejectFraction >= 0 && maxRejectFraction < 1))
        fail("maxRejectFraction must be in [0, 1)");
    if (minStars < 1) fail("minStars must be >= 1");
    if (templateIterations < 1 || templateIterations > 10)
        fail("templateIterations = " + std::to_string(templateIterations) + " must be in 1..10");
}

void shiftStamp(const double* in, double* out, int n, double fx, double fy, bool squared) {
    auto wx = dirichletMatrix(n, fx), wy = dirichletMatrix(n, fy);
    if (squared) {
        for (auto& v : wx) v *= v;
        for (auto& v : wy) v *= v;
    }
    std::vector<double> tmp(std::size_t(n) * n, 0.0);
    for (int j = 0; j < n; ++j)  // along x: tmp(i, j) = Σ_m wx(i, m) in(m, j)
        for (int i = 0; i < n; ++i) {
            double s = 0;
            const double* w = wx.data() + std::size_t(i) * n;
            const double* row = in + std::size_t(j) * n;
            for (int m = 0; m < n; ++m) s += w[m] * row[m];
            tmp[std::size_t(j) * n + i] = s;
        }
    for (int j = 0; j < n; ++j) {
        const double* w = wy.data() + std::size_t(j) * n;
        for (int i = 0; i < n; ++i) {
            double s = 0;
            for (int l = 0; l < n; ++l) s += w[l] * tmp[std::size_t(l) * n + i];
            out[std::size_t(j) * n + i] = s;
        }
    }
}

PsfModel::PsfModel(Box2I bbox, int r, int order, std::vector<double> coef)
    : _bbox(bbox), _r(r), _order(order), _coef(std::move(coef)) {
    std::size_t npix = std::size_t(2 * r + 1) * (2 * r + 1);
    if (bbox.empty() || r < 1 || order < 0 || _coef.size() != npix * numSpatialTerms())
        throw badInput("PsfModel: inconsistent geometry (radius " + std::to_string(r) + ", order " +
                       std::to_string(order) + ", " + std::to_string(_coef.size()) +
                       " coefficients)");
}

std::vector<double> PsfModel::spatialBasis(Point2D p) const {
    double u = 2 * (p.x - _bbox.minX()) / std::max(1, _bbox.width() - 1) - 1;
    double v = 2 * (p.y - _bbox.minY()) / std::max(1, _bbox.height() - 1) - 1;
    std::vector<double> x;
    x.reserve(numSpatialTerms());
    for (int d = 0; d <= _order; ++d)  // by total degree: 1, u, v, u², uv, v², ...
        for (int b = 0; b <= d; ++b) x.push_back(std::pow(u, d - b) * std::pow(v, b));
    return x;
}

Image<double> PsfModel::computeKernelImage(Point2D p) const {
    const int n = 2 * _r + 1;
    const std::size_t npix = std::size_t(n) * n;
    Image<double> k(Box2I({-_r, -_r}, {n, n}), 0.0);
    auto x = spatialBasis(p);
    double* out = k.data();
    for (std::size_t t = 0; t < x.size(); ++t) {
        const double* c = _coef.data() + t * npix;
        for (std::size_t q = 0; q < npix; ++q) out[q] += x[t] * c[q];
    }
    double s = 0;
    for (std::size_t q = 0; q < npix; ++q) s += out[q];
    if (!(s > 0))
        throw Error("psf_failed",
                    "PsfModel: kernel has non-positive sum at the requested position");
    for (std::size_t q = 0; q < npix; ++q) out[q] /= s;
    return k;
}

Image<double> PsfModel::computeImage(Point2D p) const {
    Image<double> k = computeKernelImage(p);
    Point2I c = p.nearestPixel();
    const int n = 2 * _r + 1;
    Image<double> out(Box2I({c.x - _r, c.y - _r}, {n, n}), 0.0);
    // Parent pixel c + (i − r) holds K at kernel offset (i − r) + (c − p).
    shiftStamp(k.data(), out.data(), n, c.x - p.x, c.y - p.y, false);
    double total = 0;
    for (double v : out.pixels()) total += v;
    if (total > 0)
        for (auto& v : out.pixels()) v /= total;
    return out;
}

Table PsfModel::toTable() const {
    Table t;
    auto& c = t.addColumn<double>(
        "coefficient", "", "PSF pixel-basis coefficients, term-major: c[k*npix + j*(2r+1) + i]");
    c = _coef;
    auto& md = t.metadata();
    md.set("PSF_TYPE", typeName(), "drp::calib::PsfModel");
    md.set("PSF_R", _r, "kernel half-size (pixels)");
    md.set("PSF_ORDER", _order, "polynomial order of the spatial variation");
    md.set("PSF_X0", _bbox.minX(), "bbox min x of the spatial normalisation");
    md.set("PSF_Y0", _bbox.minY(), "bbox min y");
    md.set("PSF_W", _bbox.width(), "bbox width");
    md.set("PSF_H", _bbox.height(), "bbox height");
    return t;
}

std::shared_ptr<const PsfModel> PsfModel::fromTable(const Table& t) {
    const auto& md = t.metadata();
    if (md.get<std::string>("PSF_TYPE") != "pixel_poly")
        throw badInput("PsfModel::fromTable: PSF_TYPE is '" + md.get<std::string>("PSF_TYPE") +
                       "', not pixel_poly");
    auto geti = [&](const char* k) { return static_cast<int>(md.get<std::int64_t>(k)); };
    Box2I box({geti("PSF_X0"), geti("PSF_Y0")}, {geti("PSF_W"), geti("PSF_H")});
    return std::make_shared<const PsfModel>(box, geti("PSF_R"), geti("PSF_ORDER"),
                                            t.column<double>("coefficient"));
}

namespace {

struct Stamp {
    std::int64_t id;
    Point2D pos;
    double weight;
    std::vector<double> data, invVar;  // normalised stamp and inverse variance of it
};

// Every pixel a polynomial in position: one nt×nt normal matrix shared by all pixels (the star
// weights do not depend on the pixel). Returns C (nt × npix).
Eigen::MatrixXd fitPixelPolynomial(const std::vector<Stamp>& stamps,
                                   const std::vector<std::vector<double>>& basis,
                                   const std::vector<std::uint8_t>& active, int nt,
                                   std::size_t npix) {
    Eigen::MatrixXd A = Eigen::MatrixXd::Zero(nt, nt);
    Eigen::MatrixXd B = Eigen::MatrixXd::Zero(nt, Eigen::Index(npix));
    for (std::size_t s = 0; s < stamps.size(); ++s) {
        if (!active[s]) continue;
        Eigen::Map<const Eigen::VectorXd> x(basis[s].data(), nt);
        A += stamps[s].weight * x * x.transpose();
        Eigen::Map<const Eigen::RowVectorXd> d(stamps[s].data.data(), Eigen::Index(npix));
        B += stamps[s].weight * x * d;
    }
    return A.ldlt().solve(B);
}

// Template plus polynomial-weighted deformation modes (header comment). Returns C (nt × npix).
Eigen::MatrixXd fitDeformation(const std::vector<Stamp>& stamps,
                               const std::vector<std::vector<double>>& basis,
                               const std::vector<std::uint8_t>& active, int nt, int n,
                               const PsfModelConfig& config) {
    const Eigen::Index npix = Eigen::Index(n) * n, nu = 3 * nt;
    Eigen::VectorXd t = Eigen::VectorXd::Zero(npix);
    double wsum = 0;
    for (std::size_t s = 0; s < stamps.size(); ++s) {
        if (!active[s]) continue;
        t += stamps[s].weight * Eigen::Map<const Eigen::VectorXd>(stamps[s].data.data(), npix);
        wsum += stamps[s].weight;
    }
    t /= wsum;
    Eigen::MatrixXd modes(3, npix);
    Eigen::VectorXd a = Eigen::VectorXd::Zero(nu);
    for (int pass = 0; pass < config.templateIterations; ++pass) {
        auto b = deformationModes(std::vector<double>(t.data(), t.data() + npix), n);
        for (int k = 0; k < 3; ++k)
            modes.row(k) = Eigen::Map<const Eigen::RowVectorXd>(b[k].data(), npix);
        const Eigen::Matrix3d g = modes * modes.transpose();
        // Normal equations over (k, t): Σ_s w_s (X_t X_t') G_kk' a = Σ_s w_s X_t ⟨B_k, d_s − T⟩.
        Eigen::MatrixXd m = Eigen::MatrixXd::Zero(nu, nu);
        Eigen::VectorXd v = Eigen::VectorXd::Zero(nu);
        for (std::size_t s = 0; s < stamps.size(); ++s) {
            if (!active[s]) continue;
            Eigen::Map<const Eigen::VectorXd> x(basis[s].data(), nt);
            Eigen::Map<const Eigen::VectorXd> d(stamps[s].data.data(), npix);
            const Eigen::Vector3d h = modes * (d - t);
            const Eigen::MatrixXd xx = stamps[s].weight * x * x.transpose();
            for (int k = 0; k < 3; ++k) {
                v.segment(k * nt, nt) += stamps[s].weight * h(k) * x;
                for (int l = 0; l < 3; ++l) m.block(k * nt, l * nt, nt, nt) += g(k, l) * xx;
            }
        }
        a = m.ldlt().solve(v);
        if (pass + 1 == config.templateIterations) break;
        // New template: the stamps with their fitted deformations removed (first order).
        Eigen::VectorXd tn = Eigen::VectorXd::Zero(npix);
        for (std::size_t s = 0; s < stamps.size(); ++s) {
            if (!active[s]) continue;
            Eigen::Map<const Eigen::VectorXd> x(basis[s].data(), nt);
            Eigen::Map<const Eigen::VectorXd> d(stamps[s].data.data(), npix);
            Eigen::Vector3d coef;
            for (int k = 0; k < 3; ++k) coef(k) = a.segment(k * nt, nt).dot(x);
            tn += stamps[s].weight * (d - modes.transpose() * coef);
        }
        t = tn / wsum;
    }
    Eigen::MatrixXd c(nt, npix);
    for (int q = 0; q < nt; ++q) {
        Eigen::Vector3d coef(a(q), a(nt + q), a(2 * nt + q));
        c.row(q) = coef.transpose() * modes;
    }
    c.row(0) += t.transpose();
    return c;
}

}  // namespace

std::shared_ptr<const PsfModel> fitPsfModel(const MaskedImage& mi,
                                            const std::vector<PsfStar>& stars,
                                            const PsfModelConfig& config, MaskPixel badBits,
                                            PsfFitReport* report) {
    config.validate();
    const int r = config.kernelRadius, n = 2 * r + 1;
    const std::size_t npix = std::size_t(n) * n;
    const Box2I box = mi.bbox();
    std::vector<Stamp> stamps;
    std::vector<std::int64_t> rejected;
    for (const PsfStar& s : stars) {
        Point2I c = s.position.nearestPixel();
        Box2I need = Box2I::fromCorners({c.x - r, c.y - r}, {c.x + r, c.y + r});
        bool ok = box.contains(need);
        for (int y = need.minY(); ok && y <= need.maxY(); ++y)
            for (int x = need.minX(); x <= need.maxX(); ++x) {
                int i = x - box.minX(), j = y - box.minY();
                if ((mi.mask()(i, j) & badBits) || !std::isfinite(mi.image()(i, j)) ||
                    !(mi.variance()(i, j) > 0)) {
                    ok = false;
                    break;
                }
            }
        if (!ok) {
            rejected.push_back(s.id);
            continue;
        }
        // Resample so that the centroid lands on the stamp centre: value at (pos + (i, j)).
        Stamp st{s.id, s.position, 0, std::vector<double>(npix), std::vector<double>(npix)};
        std::vector<double> raw(npix), rawVar(npix), var(npix);
        for (int j = 0; j < n; ++j)
            for (int i = 0; i < n; ++i) {
                int xi = c.x - r + i - box.minX(), yj = c.y - r + j - box.minY();
                raw[std::size_t(j) * n + i] = mi.image()(xi, yj);
                rawVar[std::size_t(j) * n + i] = mi.variance()(xi, yj);
            }
        shiftStamp(raw.data(), st.data.data(), n, s.position.x - c.x, s.position.y - c.y, false);
        shiftStamp(rawVar.data(), var.data(), n, s.position.x - c.x, s.position.y - c.y, true);
        double sum = 0;
        for (double v : st.data) sum += v;
        if (!(sum > 0)) {
            rejected.push_back(s.id);
            continue;
        }
        // Piff's maxSNR: a star brighter than maxSnr has its variance inflated to that S/N, so
        // that PSF-model imperfections (~1e-3) do not make every bright star a χ² outlier.
        double inflate =
            s.snr > config.maxSnr ? (s.snr / config.maxSnr) * (s.snr / config.maxSnr) : 1.0;
        for (std::size_t q = 0; q < npix; ++q) {
            st.data[q] /= sum;
            st.invVar[q] = var[q] > 0 ? sum * sum / (var[q] * inflate) : 0.0;
        }
        double snr = std::min(s.snr > 0 ? s.snr : config.maxSnr, config.maxWeightSnr);
        st.weight = snr * snr;
        stamps.push_back(std::move(st));
    }
    if (static_cast<int>(stamps.size()) < config.minStars)
        throw psfFailed("only " + std::to_string(stamps.size()) + " usable PSF stars (of " +
                        std::to_string(stars.size()) + " candidates); need at least " +
                        std::to_string(config.minStars));

    std::vector<std::uint8_t> active(stamps.size(), 1);
    std::shared_ptr<const PsfModel> model;
    int order = config.spatialOrder;
    double meanChi2 = 0;
    for (int iter = 0;; ++iter) {
        std::size_t nActive = std::count(active.begin(), active.end(), 1);
        // PSFEx lowers the degree when stars are scarce: keep ≥ 2 stars per coefficient.
        while (order > 0 && nActive < 2 * std::size_t((order + 1) * (order + 2) / 2)) --order;
        const int nt = (order + 1) * (order + 2) / 2;
        PsfModel geom(box, r, order, std::vector<double>(npix * nt, 0.0));
        std::vector<std::vector<double>> basis(stamps.size());
        for (std::size_t s = 0; s < stamps.size(); ++s) basis[s] = geom.spatialBasis(stamps[s].pos);
        Eigen::MatrixXd C = config.spatialModel == PsfSpatialModel::PixelPolynomial
                                ? fitPixelPolynomial(stamps, basis, active, nt, npix)
                                : fitDeformation(stamps, basis, active, nt, n, config);
        std::vector<double> coef(npix * nt);
        for (int k = 0; k < nt; ++k)
            for (std::size_t q = 0; q < npix; ++q) coef[k * npix + q] = C(k, q);
        model = std::make_shared<const PsfModel>(box, r, order, std::move(coef));
        // χ²/dof per star against the model at its position (the model is normalised to unit sum
        // like the stamps).
        std::vector<double> chi2(stamps.size(), 0.0);
        for (std::size_t s = 0; s < stamps.size(); ++s) {
            Eigen::Map<const Eigen::VectorXd> x(basis[s].data(), nt);
            Eigen::RowVectorXd m = x.transpose() * C;
            double c2 = 0;
            for (std::size_t q = 0; q < npix; ++q) {
                double d = stamps[s].data[q] - m(q);
                c2 += d * d * stamps[s].invVar[q];
            }
            chi2[s] = c2 / npix;
        }
        std::vector<double> act;
        for (std::size_t s = 0; s < stamps.size(); ++s)
            if (active[s]) act.push_back(chi2[s]);
        std::sort(act.begin(), act.end());
        double med = act[act.size() / 2];
        meanChi2 = 0;
        for (double v : act) meanChi2 += v;
        meanChi2 /= act.size();
        if (iter >= config.maxRejectIterations) break;
        std::vector<double> dev;
        for (double v : act) dev.push_back(std::abs(v - med));
        std::sort(dev.begin(), dev.end());
        // Relative cut (robust σ of χ²/dof among the stars), but never below what noise alone
        // produces: χ²/dof of n pixels has σ = √(2/n).
        double cut = std::max(med + config.rejectSigma * 1.4826 * dev[dev.size() / 2],
                              1.0 + config.rejectSigma * std::sqrt(2.0 / npix));
        // Worst first, at most maxRejectFraction of the active stars per iteration.
        std::vector<std::size_t> bad;
        for (std::size_t s = 0; s < stamps.size(); ++s)
            if (active[s] && chi2[s] > cut) bad.push_back(s);
        std::sort(bad.begin(), bad.end(),
                  [&](std::size_t p, std::size_t q) { return chi2[p] > chi2[q]; });
        // Piff rounds up (max_remove < 1 is a fraction: ceil(max_remove · n)), so a detector with
        // fewer than 20 stars can still lose its worst outlier per iteration; truncating made
        // the rejection a no-op there, and one blended or galaxy-contaminated "star" then bent
        // the model (demo sky: PSF fluxes off by 2% on a detector with 18 stars).
        std::size_t maxRemove =
            static_cast<std::size_t>(std::ceil(config.maxRejectFraction * double(nActive)));
        if (bad.empty() || maxRemove == 0) break;
        if (nActive - std::min(bad.size(), maxRemove) < std::size_t(config.minStars)) break;
        for (std::size_t k = 0; k < std::min(bad.size(), maxRemove); ++k) {
            active[bad[k]] = 0;
            rejected.push_back(stamps[bad[k]].id);
        }
    }
    if (report) {
        report->usedIds.clear();
        for (std::size_t s = 0; s < stamps.size(); ++s)
            if (active[s]) report->usedIds.push_back(stamps[s].id);
        report->rejectedIds = rejected;
        report->spatialOrder = order;
        report->meanChi2Dof = meanChi2;
    }
    return model;
}

PsfShapeResiduals psfShapeResiduals(const MaskedImage& mi, const Psf& psf,
                                    const std::vector<Point2D>& positions, MaskPixel badBits) {
    PsfShapeResiduals out;
    std::vector<double> dt, de1, de2;
    for (const Point2D& p : positions) {
        Image<double> model = psf.computeImage(p);
        double sigma = std::sqrt(0.5 * measureMoments(psf.computeKernelImage(p)).trace());
        ShapeResult ms = measureAdaptiveMoments(model.cview(), p, sigma);
        if (ms.failed) continue;
        Box2I stamp = model.bbox().clippedTo(mi.bbox());
        ShapeResult ds = measureAdaptiveMoments(mi.image().subview(stamp), p, sigma, nullptr, 0);
        if (ds.failed) continue;
        bool masked = false;
        for (int y = stamp.minY(); y <= stamp.maxY() && !masked; ++y)
            for (int x = stamp.minX(); x <= stamp.maxX(); ++x)
                if (mi.mask().image().at({x, y}) & badBits &&
                    std::hypot(x - p.x, y - p.y) < 3 * sigma) {
                    masked = true;
                    break;
                }
        if (masked) continue;
        double tm = ms.moments.trace();
        dt.push_back((ds.moments.trace() - tm) / tm);
        de1.push_back(ds.moments.e1() - ms.moments.e1());
        de2.push_back(ds.moments.e2() - ms.moments.e2());
    }
    out.numStars = static_cast<int>(dt.size());
    if (dt.empty()) return out;
    auto mean = [](const std::vector<double>& v) {
        double s = 0;
        for (double x : v) s += x;
        return s / v.size();
    };
    out.meanDeltaTOverT = mean(dt);
    out.meanDeltaE1 = mean(de1);
    out.meanDeltaE2 = mean(de2);
    double st = 0, se = 0;
    for (std::size_t k = 0; k < dt.size(); ++k) {
        st += dt[k] * dt[k];
        se += de1[k] * de1[k] + de2[k] * de2[k];
    }
    out.rmsDeltaTOverT = std::sqrt(st / dt.size());
    out.rmsDeltaE = std::sqrt(se / dt.size());
    return out;
}

}  // namespace drp::calib
