#include "drp/calib/joint_astrometry.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include <Eigen/Dense>
#include <Eigen/Sparse>
#include <Eigen/SparseCholesky>

#include "drp/calib/matching.h"
#include "drp/calib/sip_fit.h"
#include "drp/core/error.h"

namespace drp {

namespace {

constexpr int kGrid = 8;  ///< grid points per axis for initialisation from the per-visit WCSs

/// Full 2-D polynomial basis of `order` in pixel coordinates normalised to the detector.
struct PolyBasis {
    int order = 1;
    Point2D centre;
    double scale = 1.0;
    int size() const { return (order + 1) * (order + 2) / 2; }
    Eigen::VectorXd operator()(Point2D p) const {
        const double u = (p.x - centre.x) / scale, v = (p.y - centre.y) / scale;
        Eigen::VectorXd out(size());
        int k = 0;
        for (int n = 0; n <= order; ++n)
            for (int q = 0; q <= n; ++q) out[k++] = std::pow(u, n - q) * std::pow(v, q);
        return out;
    }
};

Eigen::Vector2d projectArcsec(const SipTangentPlane& plane, const SpherePoint& p) {
    return plane.project(p) * 3600.0;
}
SpherePoint deprojectArcsec(const SipTangentPlane& plane, const Eigen::Vector2d& xi) {
    return plane.deproject(xi / 3600.0);
}

SpherePoint meanDirection(const std::vector<SpherePoint>& points) {
    std::array<double, 3> v{0, 0, 0};
    for (const auto& p : points) {
        auto u = p.toVector();
        for (int k = 0; k < 3; ++k) v[k] += u[k];
    }
    return SpherePoint::fromVector(v);
}

std::vector<Point2D> gridOver(const Box2I& box, int n) {
    std::vector<Point2D> g;
    for (int j = 0; j < n; ++j)
        for (int i = 0; i < n; ++i)
            g.emplace_back(box.minX() + (box.maxX() - box.minX()) * i / double(n - 1),
                           box.minY() + (box.maxY() - box.minY()) * j / double(n - 1));
    return g;
}

struct Detector {
    PolyBasis basis;
    Eigen::MatrixXd coef;  ///< size() × 2: ξ and η coefficients of P_d
    bool initialised = false, active = false;
    Eigen::Vector2d apply(Point2D p) const { return coef.transpose() * basis(p); }
};

struct Visit {
    SpherePoint centre;
    Eigen::Matrix2d a = Eigen::Matrix2d::Identity();
    Eigen::Vector2d b = Eigen::Vector2d::Zero();
    bool initialised = false, active = false;
};

struct Measurement {
    std::size_t unit;
    std::size_t star;
    Point2D pixel;
    double sigma;  ///< arcsec per coordinate (centroid ⊕ systematic)
    bool used = true;
    Eigen::Vector2d residual = Eigen::Vector2d::Zero();  ///< model - star, arcsec
};

struct Star {
    Eigen::Vector2d pos;  ///< T_0 plane, arcsec
    std::int64_t ref = -1;
    bool refUsed = false, active = false;
    int numUsed = 0;
    Eigen::Vector2d refResidual = Eigen::Vector2d::Zero();  ///< star - reference, arcsec
};

/// Least-squares coefficients (columns) of `phi` · C = target.
Eigen::MatrixXd solveLs(const Eigen::MatrixXd& phi, const Eigen::MatrixXd& target) {
    return phi.colPivHouseholderQr().solve(target);
}

class Solver {
  public:
    Solver(const std::vector<JointAstrometryUnit>& units, const JointAstrometryReference& ref,
           const JointAstrometryConfig& config)
        : _in(units), _ref(ref), _cfg(config) {}

    JointAstrometryResult run();

  private:
    bool initialise(std::string* why);
    void associate();
    void updateActivity();
    bool gaussNewton(std::string* why);
    void evaluate();
    bool clip();
    void finish(JointAstrometryResult& out);

    const std::vector<JointAstrometryUnit>& _in;
    const JointAstrometryReference& _ref;
    const JointAstrometryConfig& _cfg;
    SipTangentPlane _plane0{SpherePoint()};
    std::vector<SipTangentPlane> _visitPlane;
    std::vector<Detector> _det;
    std::vector<Visit> _visit;
    std::vector<std::size_t> _unitDet, _unitVisit;
    std::vector<char> _unitActive;
    std::vector<std::int64_t> _visitIds;
    std::vector<Measurement> _meas;
    std::vector<Star> _stars;
    std::size_t _fixedVisit = 0;
    JointAstrometrySummary _sum;
};

bool Solver::initialise(std::string* why) {
    std::map<int, std::size_t> detIndex;
    std::map<std::int64_t, std::size_t> visitIndex;
    for (const auto& u : _in) {
        if (!detIndex.count(u.detector)) {
            detIndex[u.detector] = _det.size();
            Detector d;
            d.basis.order = _cfg.detectorOrder;
            d.basis.centre = Box2D(u.bbox).center();
            d.basis.scale = 0.5 * std::max(u.bbox.width(), u.bbox.height());
            _det.push_back(d);
        }
        if (!visitIndex.count(u.visit)) {
            visitIndex[u.visit] = _visit.size();
            _visit.emplace_back();
            _visitIds.push_back(u.visit);
        }
        _unitDet.push_back(detIndex[u.detector]);
        _unitVisit.push_back(visitIndex[u.visit]);
    }
    // Tangent points: field centre and each visit's centre.
    std::vector<SpherePoint> all;
    std::vector<std::vector<SpherePoint>> perVisit(_visit.size());
    for (std::size_t u = 0; u < _in.size(); ++u) {
        SpherePoint c = _in[u].wcs->pixelToSky(Box2D(_in[u].bbox).center());
        all.push_back(c);
        perVisit[_unitVisit[u]].push_back(c);
    }
    _plane0 = SipTangentPlane(meanDirection(all));
    for (std::size_t v = 0; v < _visit.size(); ++v) {
        _visit[v].centre = meanDirection(perVisit[v]);
        _visitPlane.emplace_back(_visit[v].centre);
    }
    if (_visit.size() < 2) {
        *why = "fewer than two visits";
        return false;
    }
    // Reference visit: the one with the most detectors (ties: first in input order).
    std::vector<int> nUnits(_visit.size(), 0);
    for (auto v : _unitVisit) ++nUnits[v];
    _fixedVisit = std::max_element(nUnits.begin(), nUnits.end()) - nUnits.begin();
    _sum.referenceVisit = _visitIds[_fixedVisit];
    // Model start from the per-visit WCSs sampled on a grid.
    std::vector<std::vector<Point2D>> grid(_in.size());
    std::vector<std::vector<SpherePoint>> gridSky(_in.size());
    for (std::size_t u = 0; u < _in.size(); ++u) {
        grid[u] = gridOver(_in[u].bbox, kGrid);
        gridSky[u] = _in[u].wcs->pixelToSky(grid[u]);
    }
    auto initDetector = [&](std::size_t u) {
        Detector& d = _det[_unitDet[u]];
        const Visit& v = _visit[_unitVisit[u]];
        Eigen::MatrixXd phi(grid[u].size(), d.basis.size()), target(grid[u].size(), 2);
        const Eigen::Matrix2d aInv = v.a.inverse();
        for (std::size_t g = 0; g < grid[u].size(); ++g) {
            phi.row(g) = d.basis(grid[u][g]).transpose();
            target.row(g) =
                (aInv * (projectArcsec(_visitPlane[_unitVisit[u]], gridSky[u][g]) - v.b))
                    .transpose();
        }
        d.coef = solveLs(phi, target);
        d.initialised = true;
    };
    _visit[_fixedVisit].initialised = true;
    for (std::size_t u = 0; u < _in.size(); ++u)
        if (_unitVisit[u] == _fixedVisit && !_det[_unitDet[u]].initialised) initDetector(u);
    for (bool progress = true; progress;) {
        progress = false;
        for (std::size_t v = 0; v < _visit.size(); ++v) {
            if (_visit[v].initialised) continue;
            std::vector<Eigen::RowVectorXd> rows;
            std::vector<double> rhs;
            for (std::size_t u = 0; u < _in.size(); ++u) {
                if (_unitVisit[u] != v || !_det[_unitDet[u]].initialised) continue;
                for (std::size_t g = 0; g < grid[u].size(); ++g) {
                    Eigen::Vector2d p = _det[_unitDet[u]].apply(grid[u][g]);
                    Eigen::Vector2d t = projectArcsec(_visitPlane[v], gridSky[u][g]);
                    Eigen::RowVectorXd rx(6), ry(6);
                    rx << p[0], p[1], 0, 0, 1, 0;
                    ry << 0, 0, p[0], p[1], 0, 1;
                    rows.push_back(rx);
                    rhs.push_back(t[0]);
                    rows.push_back(ry);
                    rhs.push_back(t[1]);
                }
            }
            if (rows.empty()) continue;
            Eigen::MatrixXd m(rows.size(), 6);
            Eigen::VectorXd r(rows.size());
            for (std::size_t i = 0; i < rows.size(); ++i) {
                m.row(i) = rows[i];
                r[i] = rhs[i];
            }
            Eigen::VectorXd th = solveLs(m, r);
            _visit[v].a << th[0], th[1], th[2], th[3];
            _visit[v].b << th[4], th[5];
            _visit[v].initialised = progress = true;
        }
        for (std::size_t u = 0; u < _in.size(); ++u)
            if (_visit[_unitVisit[u]].initialised && !_det[_unitDet[u]].initialised) {
                initDetector(u);
                progress = true;
            }
    }
    return true;
}

void Solver::associate() {
    std::vector<SpherePoint> sky;
    std::vector<std::int64_t> key, group;
    for (std::size_t u = 0; u < _in.size(); ++u) {
        const auto& in = _in[u];
        const double scale = in.wcs->pixelScale(Box2D(in.bbox).center()).asArcseconds();
        auto s = in.wcs->pixelToSky(in.pixels);
        for (std::size_t i = 0; i < in.pixels.size(); ++i) {
            const double sig = std::hypot(in.sigmaPixels[i] * scale, _cfg.systematicErrorMas / 1e3);
            _meas.push_back({u, 0, in.pixels[i], sig});
            sky.push_back(s[i]);
            key.push_back(static_cast<std::int64_t>(key.size()));
            group.push_back(static_cast<std::int64_t>(u));
        }
    }
    AssociationConfig acfg;
    acfg.radius = _cfg.matchRadius;
    acfg.minDetections = 1;
    Association assoc = associateDetections(sky, key, group, acfg);
    // Objects in key order (the id is the smallest key: deterministic).
    std::map<std::int64_t, std::vector<std::size_t>> members;
    for (std::size_t i = 0; i < _meas.size(); ++i) members[assoc.objectId[i]].push_back(i);
    std::vector<std::size_t> keep;
    std::vector<SpherePoint> objSky;
    std::vector<std::size_t> dropped;
    for (auto& [id, m] : members) {
        std::vector<std::size_t> unitsOf;
        for (auto i : m) unitsOf.push_back(_meas[i].unit);
        std::sort(unitsOf.begin(), unitsOf.end());
        if (std::adjacent_find(unitsOf.begin(), unitsOf.end()) != unitsOf.end()) {
            for (auto i : m) _meas[i].used = false;  // a blend or a chain: not one star
            continue;
        }
        Star s;
        Eigen::Vector2d mean = Eigen::Vector2d::Zero();
        std::vector<SpherePoint> pts;
        for (auto i : m) {
            _meas[i].star = _stars.size();
            mean += projectArcsec(_plane0, sky[i]);
            pts.push_back(sky[i]);
        }
        s.pos = mean / double(m.size());
        objSky.push_back(meanDirection(pts));
        _stars.push_back(s);
    }
    for (const SkyMatch& m : matchNearest(objSky, _ref.sky, _cfg.matchRadius)) {
        _stars[m.a].ref = static_cast<std::int64_t>(m.b);
        _stars[m.a].refUsed = true;
    }
    _meas.erase(std::remove_if(_meas.begin(), _meas.end(), [](auto& m) { return !m.used; }),
                _meas.end());
}

void Solver::updateActivity() {
    _unitActive.assign(_in.size(), 0);
    for (std::size_t u = 0; u < _in.size(); ++u)
        _unitActive[u] = _visit[_unitVisit[u]].initialised && _det[_unitDet[u]].initialised;
    for (bool changed = true; changed;) {
        changed = false;
        for (auto& s : _stars) s.numUsed = 0;
        for (const auto& m : _meas)
            if (m.used && _unitActive[m.unit]) ++_stars[m.star].numUsed;
        for (auto& s : _stars) s.active = s.numUsed >= 2 || (s.numUsed >= 1 && s.refUsed);
        std::vector<int> perVisit(_visit.size(), 0), perDet(_det.size(), 0);
        for (const auto& m : _meas)
            if (m.used && _unitActive[m.unit] && _stars[m.star].active) {
                ++perVisit[_unitVisit[m.unit]];
                ++perDet[_unitDet[m.unit]];
            }
        for (std::size_t u = 0; u < _in.size(); ++u)
            if (_unitActive[u] && (perVisit[_unitVisit[u]] < _cfg.minVisitMeasurements ||
                                   perDet[_unitDet[u]] < _cfg.minDetectorMeasurements)) {
                _unitActive[u] = 0;
                changed = true;
            }
    }
    for (auto& d : _det) d.active = false;
    for (auto& v : _visit) v.active = false;
    for (std::size_t u = 0; u < _in.size(); ++u)
        if (_unitActive[u]) {
            _det[_unitDet[u]].active = true;
            _visit[_unitVisit[u]].active = true;
        }
    // The gauge: hold one active visit fixed (the one with most active detectors).
    if (!_visit[_fixedVisit].active) {
        std::vector<int> n(_visit.size(), 0);
        for (std::size_t u = 0; u < _in.size(); ++u) n[_unitVisit[u]] += _unitActive[u];
        _fixedVisit = std::max_element(n.begin(), n.end()) - n.begin();
        _sum.referenceVisit = _visitIds[_fixedVisit];
    }
}

/// Residuals of every used detection and reference match at the current parameters.
void Solver::evaluate() {
    for (auto& m : _meas) {
        const std::size_t v = _unitVisit[m.unit];
        Eigen::Vector2d model = _visit[v].a * _det[_unitDet[m.unit]].apply(m.pixel) + _visit[v].b;
        m.residual =
            model - projectArcsec(_visitPlane[v], deprojectArcsec(_plane0, _stars[m.star].pos));
    }
    for (auto& s : _stars)
        if (s.ref >= 0)
            s.refResidual =
                s.pos - projectArcsec(_plane0, _ref.sky[static_cast<std::size_t>(s.ref)]);
}

bool Solver::gaussNewton(std::string* why) {
    // Parameter layout for the active entities.
    const int nT = _det.empty() ? 0 : _det.front().basis.size();
    std::vector<int> detOff(_det.size(), -1), visitOff(_visit.size(), -1),
        starOff(_stars.size(), -1);
    int n = 0;
    for (std::size_t d = 0; d < _det.size(); ++d)
        if (_det[d].active) {
            detOff[d] = n;
            n += 2 * nT;
        }
    for (std::size_t v = 0; v < _visit.size(); ++v)
        if (_visit[v].active && v != _fixedVisit) {
            visitOff[v] = n;
            n += 6;
        }
    const int nModel = n;
    for (std::size_t s = 0; s < _stars.size(); ++s)
        if (_stars[s].active) {
            starOff[s] = n;
            n += 2;
        }
    _sum.numParameters = static_cast<std::size_t>(nModel);
    auto usable = [&](const Measurement& m) {
        return m.used && _unitActive[m.unit] && _stars[m.star].active;
    };
    std::vector<Eigen::Vector2d> prevModel, prevStar;
    for (int iter = 0; iter <= _cfg.maxIterations; ++iter) {
        evaluate();
        // Convergence: how far the last step moved every star and every detection's model.
        std::vector<Eigen::Vector2d> model(_meas.size()), star(_stars.size());
        for (std::size_t i = 0; i < _meas.size(); ++i)
            model[i] = _visit[_unitVisit[_meas[i].unit]].a *
                           _det[_unitDet[_meas[i].unit]].apply(_meas[i].pixel) +
                       _visit[_unitVisit[_meas[i].unit]].b;
        for (std::size_t s = 0; s < _stars.size(); ++s) star[s] = _stars[s].pos;
        if (iter > 0) {
            double step = 0;
            for (std::size_t i = 0; i < _meas.size(); ++i)
                if (usable(_meas[i])) step = std::max(step, (model[i] - prevModel[i]).norm());
            for (std::size_t s = 0; s < _stars.size(); ++s)
                if (_stars[s].active) step = std::max(step, (star[s] - prevStar[s]).norm());
            if (step * 1e3 < _cfg.convergenceMas) {
                _sum.converged = true;
                return true;
            }
        }
        if (iter == _cfg.maxIterations) break;
        prevModel = std::move(model);
        prevStar = std::move(star);
        ++_sum.iterations;
        // Sparse Jacobian of the whitened residuals.
        std::vector<Eigen::Triplet<double>> trip;
        std::vector<double> rhs;
        int row = 0;
        for (const auto& m : _meas) {
            if (!usable(m)) continue;
            const std::size_t v = _unitVisit[m.unit], d = _unitDet[m.unit];
            const double w = 1.0 / m.sigma;
            const Eigen::VectorXd phi = _det[d].basis(m.pixel);
            const Eigen::Vector2d p = _det[d].coef.transpose() * phi;
            // d(star in T_v)/d(star in T_0), by central differences (the map is ~identity).
            const Eigen::Vector2d s0 = _stars[m.star].pos;
            Eigen::Matrix2d jw;
            for (int k = 0; k < 2; ++k) {
                Eigen::Vector2d h = Eigen::Vector2d::Zero();
                h[k] = 1.0;
                jw.col(k) = 0.5 * (projectArcsec(_visitPlane[v], deprojectArcsec(_plane0, s0 + h)) -
                                   projectArcsec(_visitPlane[v], deprojectArcsec(_plane0, s0 - h)));
            }
            for (int c = 0; c < 2; ++c) {
                const int r = row + c;
                rhs.push_back(-w * m.residual[c]);
                const int so = starOff[m.star];
                trip.emplace_back(r, so, -w * jw(c, 0));
                trip.emplace_back(r, so + 1, -w * jw(c, 1));
                if (visitOff[v] >= 0) {
                    const int vo = visitOff[v];
                    trip.emplace_back(r, vo + 2 * c, w * p[0]);
                    trip.emplace_back(r, vo + 2 * c + 1, w * p[1]);
                    trip.emplace_back(r, vo + 4 + c, w);
                }
                const int dO = detOff[d];
                for (int k = 0; k < nT; ++k) {
                    trip.emplace_back(r, dO + k, w * _visit[v].a(c, 0) * phi[k]);
                    trip.emplace_back(r, dO + nT + k, w * _visit[v].a(c, 1) * phi[k]);
                }
            }
            row += 2;
        }
        for (std::size_t s = 0; s < _stars.size(); ++s) {
            const Star& st = _stars[s];
            if (!st.active || !st.refUsed) continue;
            const double w = 1e3 / _ref.sigmaMas[static_cast<std::size_t>(st.ref)];
            for (int c = 0; c < 2; ++c) {
                rhs.push_back(-w * st.refResidual[c]);
                trip.emplace_back(row + c, starOff[s] + c, w);
            }
            row += 2;
        }
        Eigen::SparseMatrix<double> jac(row, n);
        jac.setFromTriplets(trip.begin(), trip.end());
        Eigen::VectorXd f = Eigen::Map<Eigen::VectorXd>(rhs.data(), row);
        Eigen::SparseMatrix<double> normal = jac.transpose() * jac;
        Eigen::VectorXd g = jac.transpose() * f;
        for (int k = 0; k < n; ++k) normal.coeffRef(k, k) *= 1.0 + 1e-6;
        Eigen::SimplicialLDLT<Eigen::SparseMatrix<double>> ldlt(normal);
        if (ldlt.info() != Eigen::Success) {
            *why = "singular normal equations";
            return false;
        }
        Eigen::VectorXd delta = ldlt.solve(g);
        if (ldlt.info() != Eigen::Success || !delta.allFinite()) {
            *why = "normal equations could not be solved";
            return false;
        }
        for (std::size_t d = 0; d < _det.size(); ++d)
            if (detOff[d] >= 0)
                for (int k = 0; k < nT; ++k) {
                    _det[d].coef(k, 0) += delta[detOff[d] + k];
                    _det[d].coef(k, 1) += delta[detOff[d] + nT + k];
                }
        for (std::size_t v = 0; v < _visit.size(); ++v)
            if (visitOff[v] >= 0) {
                const int o = visitOff[v];
                _visit[v].a += Eigen::Map<const Eigen::Matrix2d>(&delta[o]).transpose();
                _visit[v].b += delta.segment<2>(o + 4);
            }
        for (std::size_t s = 0; s < _stars.size(); ++s)
            if (starOff[s] >= 0) _stars[s].pos += delta.segment<2>(starOff[s]);
    }
    _sum.converged = false;
    return true;
}

/// Clip the worst detection of every star beyond clipSigma × the robust scale, and reference
/// matches beyond it. Returns whether anything was clipped.
bool Solver::clip() {
    auto robustScale = [](std::vector<double> chi2) {
        if (chi2.empty()) return 1.0;
        std::nth_element(chi2.begin(), chi2.begin() + chi2.size() / 2, chi2.end());
        return std::max(1.0, std::sqrt(chi2[chi2.size() / 2] / (2 * std::log(2.0))));
    };
    std::vector<double> chi2, refChi2;
    for (const auto& m : _meas)
        if (m.used && _unitActive[m.unit] && _stars[m.star].active)
            chi2.push_back(m.residual.squaredNorm() / (m.sigma * m.sigma));
    for (const auto& s : _stars)
        if (s.active && s.refUsed) {
            const double sig = _ref.sigmaMas[static_cast<std::size_t>(s.ref)] / 1e3;
            refChi2.push_back(s.refResidual.squaredNorm() / (sig * sig));
        }
    const double cut = _cfg.clipSigma * robustScale(chi2);
    const double refCut = _cfg.clipSigma * robustScale(refChi2);
    std::vector<double> worst(_stars.size(), 0.0);
    std::vector<std::int64_t> worstIdx(_stars.size(), -1);
    for (std::size_t i = 0; i < _meas.size(); ++i) {
        const auto& m = _meas[i];
        if (!(m.used && _unitActive[m.unit] && _stars[m.star].active)) continue;
        const double chi = m.residual.norm() / m.sigma;
        if (chi > cut && chi > worst[m.star]) {
            worst[m.star] = chi;
            worstIdx[m.star] = static_cast<std::int64_t>(i);
        }
    }
    bool clipped = false;
    for (std::size_t s = 0; s < _stars.size(); ++s)
        if (worstIdx[s] >= 0) {
            _meas[static_cast<std::size_t>(worstIdx[s])].used = false;
            ++_sum.numClipped;
            clipped = true;
        }
    for (auto& s : _stars) {
        if (!(s.active && s.refUsed)) continue;
        const double sig = _ref.sigmaMas[static_cast<std::size_t>(s.ref)] / 1e3;
        if (s.refResidual.norm() / sig > refCut) {
            s.refUsed = false;
            ++_sum.numReferenceClipped;
            clipped = true;
        }
    }
    return clipped;
}

void Solver::finish(JointAstrometryResult& out) {
    evaluate();
    double ss = 0, refSs = 0, chi2 = 0;
    std::size_t nm = 0, nr = 0;
    std::vector<double> unitSs(_in.size(), 0.0);
    for (const auto& m : _meas) {
        JointAstrometryUnitResult& u = out.units[m.unit];
        if (!(_unitActive[m.unit] && _stars[m.star].active)) continue;
        if (!m.used) {
            ++u.numClipped;
            continue;
        }
        ++u.numMeasurements;
        unitSs[m.unit] += m.residual.squaredNorm();
        ss += m.residual.squaredNorm();
        chi2 += m.residual.squaredNorm() / (m.sigma * m.sigma);
        ++nm;
    }
    for (const auto& s : _stars) {
        if (!s.active) continue;
        if (s.refUsed) {
            const double sig = _ref.sigmaMas[static_cast<std::size_t>(s.ref)] / 1e3;
            refSs += s.refResidual.squaredNorm();
            chi2 += s.refResidual.squaredNorm() / (sig * sig);
            ++nr;
        }
        out.stars.push_back({deprojectArcsec(_plane0, s.pos), s.numUsed, s.refUsed});
    }
    _sum.numStars = out.stars.size();
    _sum.numReferenceStars = nr;
    _sum.numMeasurements = nm;
    _sum.chi2 = chi2;
    _sum.dof = 2.0 * double(nm + nr) - double(_sum.numParameters) - 2.0 * double(_sum.numStars);
    _sum.measurementRmsMas = nm ? 1e3 * std::sqrt(ss / (2.0 * double(nm))) : 0.0;
    _sum.referenceRmsMas = nr ? 1e3 * std::sqrt(refSs / (2.0 * double(nr))) : 0.0;
    for (std::size_t u = 0; u < _in.size(); ++u) {
        JointAstrometryUnitResult& r = out.units[u];
        if (!_unitActive[u]) {
            r.note = "its visit has fewer than " + std::to_string(_cfg.minVisitMeasurements) +
                     " or its detector fewer than " + std::to_string(_cfg.minDetectorMeasurements) +
                     " detections of stars seen in other visits or in the reference catalogue";
            continue;
        }
        const std::size_t v = _unitVisit[u];
        const Detector& d = _det[_unitDet[u]];
        SipFitInput fin;
        for (const Point2D& p : gridOver(_in[u].bbox, 12)) {
            fin.pixels.push_back(p);
            fin.sky.push_back(
                deprojectArcsec(_visitPlane[v], _visit[v].a * d.apply(p) + _visit[v].b));
            fin.sigma.push_back(1e-3);
        }
        try {
            const Point2D c = Box2D(_in[u].bbox).center();
            SipFit fit =
                fitTanSip(fin, c, _in[u].wcs->pixelToSky(c), _cfg.detectorOrder,
                          _cfg.detectorOrder >= 2 ? _cfg.inverseSipOrder : 0, Box2D(_in[u].bbox));
            r.wcs = fit.makeWcs();
            r.joint = true;
            r.rmsMas = r.numMeasurements
                           ? 1e3 * std::sqrt(unitSs[u] / (2.0 * double(r.numMeasurements)))
                           : 0.0;
            ++_sum.numJointUnits;
        } catch (const Error& e) {
            r.note = "TAN-SIP representation failed: " + e.message();
        }
    }
}

JointAstrometryResult Solver::run() {
    JointAstrometryResult out;
    out.units.resize(_in.size());
    for (std::size_t u = 0; u < _in.size(); ++u) out.units[u].wcs = _in[u].wcs;
    _sum.numUnits = _in.size();
    auto fallback = [&](const std::string& why) {
        _sum.solved = false;
        _sum.note = why;
        _sum.numJointUnits = 0;
        for (auto& u : out.units) {
            u = JointAstrometryUnitResult{};
            u.note = "joint solve not run: " + why;
        }
        for (std::size_t u = 0; u < _in.size(); ++u) out.units[u].wcs = _in[u].wcs;
        out.stars.clear();
        out.summary = _sum;
        return out;
    };
    std::string why;
    if (_in.empty()) return fallback("no visit-detectors");
    if (!initialise(&why)) return fallback(why);
    associate();
    for (int round = 0;; ++round) {
        updateActivity();
        std::size_t nRef = 0;
        for (const auto& s : _stars) nRef += s.active && s.refUsed;
        if (nRef < static_cast<std::size_t>(_cfg.minReferenceStars))
            return fallback(std::to_string(nRef) + " reference stars matched (need " +
                            std::to_string(_cfg.minReferenceStars) + ")");
        if (std::none_of(_unitActive.begin(), _unitActive.end(), [](char a) { return a; }))
            return fallback("no visit-detector has enough detections");
        if (!gaussNewton(&why)) return fallback(why);
        _sum.clipRounds = round + 1;
        if (round + 1 >= _cfg.maxClipRounds || !clip()) break;
    }
    updateActivity();
    _sum.solved = true;
    finish(out);
    out.summary = _sum;
    return out;
}

}  // namespace

void JointAstrometryConfig::validate() const {
    auto bad = [](const std::string& field, double value, const std::string& constraint) {
        return configError("JointAstrometryConfig." + field + " = " + std::to_string(value) +
                           ": must be " + constraint);
    };
    if (detectorOrder < 1 || detectorOrder > 7)
        throw bad("detectorOrder", detectorOrder, "in [1, 7]");
    if (inverseSipOrder < 1 || inverseSipOrder > 9)
        throw bad("inverseSipOrder", inverseSipOrder, "in [1, 9]");
    if (!(matchRadius.asArcseconds() > 0))
        throw bad("matchRadius", matchRadius.asArcseconds(), "> 0");
    if (!(systematicErrorMas >= 0)) throw bad("systematicErrorMas", systematicErrorMas, ">= 0");
    if (!(clipSigma >= 2)) throw bad("clipSigma", clipSigma, ">= 2");
    if (maxClipRounds < 1) throw bad("maxClipRounds", maxClipRounds, ">= 1");
    if (maxIterations < 1) throw bad("maxIterations", maxIterations, ">= 1");
    if (!(convergenceMas > 0)) throw bad("convergenceMas", convergenceMas, "> 0");
    if (minVisitMeasurements < 6) throw bad("minVisitMeasurements", minVisitMeasurements, ">= 6");
    if (minDetectorMeasurements < (detectorOrder + 1) * (detectorOrder + 2) / 2)
        throw bad("minDetectorMeasurements", minDetectorMeasurements,
                  ">= the number of polynomial terms");
    if (minReferenceStars < 3) throw bad("minReferenceStars", minReferenceStars, ">= 3");
}

JointAstrometryResult solveJointAstrometry(const std::vector<JointAstrometryUnit>& units,
                                           const JointAstrometryReference& reference,
                                           const JointAstrometryConfig& config) {
    config.validate();
    for (const auto& u : units) {
        const std::string id =
            "visit " + std::to_string(u.visit) + " detector " + std::to_string(u.detector);
        if (!u.wcs) throw badInput("joint astrometry: " + id + " has no WCS");
        if (u.bbox.empty()) throw badInput("joint astrometry: " + id + " has an empty bbox");
        if (u.pixels.size() != u.sigmaPixels.size())
            throw badInput("joint astrometry: " + id + ": pixels and sigmaPixels differ in size");
        for (double s : u.sigmaPixels)
            if (!(s > 0) || !std::isfinite(s))
                throw badInput("joint astrometry: " + id + ": centroid errors must be > 0");
    }
    if (reference.sky.size() != reference.sigmaMas.size())
        throw badInput("joint astrometry: reference sky and sigmaMas differ in size");
    for (double s : reference.sigmaMas)
        if (!(s > 0) || !std::isfinite(s))
            throw badInput("joint astrometry: reference errors must be > 0");
    return Solver(units, reference, config).run();
}

}  // namespace drp
