#include "drp/calib/photocal.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <tuple>

#include <Eigen/Dense>
#include <Eigen/Sparse>
#include <Eigen/SparseCholesky>

#include "drp/calib/matching.h"
#include "drp/core/error.h"

namespace drp {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
/// 2.5 / ln(10): converts a relative flux error into a magnitude error.
constexpr double kMagPerRelFlux = 1.0857362047581294;

/// Lower triangle of a symmetric matrix accumulated either densely (small problems: no sorting,
/// cache friendly) or as triplets compressed in chunks (large problems: memory ∝ non-zeros). Both
/// sum in the order of the calls, so the result is deterministic for a deterministic call order.
class NormalAccumulator final {
  public:
    explicit NormalAccumulator(Eigen::Index n) : _n(n), _dense(n <= kDenseMax) {
        if (_dense) _d = Eigen::MatrixXd::Zero(n, n);
        _s.resize(n, n);
    }
    void add(Eigen::Index r, Eigen::Index c, double v) {
        if (r < c) std::swap(r, c);
        if (_dense) {
            _d(r, c) += v;
            return;
        }
        _t.emplace_back(r, c, v);
        if (_t.size() >= kChunk) flush();
    }
    Eigen::SparseMatrix<double> finish() {
        if (_dense) return _d.triangularView<Eigen::Lower>().toDenseMatrix().sparseView();
        flush();
        return _s;
    }

  private:
    static constexpr Eigen::Index kDenseMax = 3000;              // 72 MB of doubles at most
    static constexpr std::size_t kChunk = std::size_t{1} << 23;  // 8 M triplets (~128 MB)
    void flush() {
        if (_t.empty()) return;
        Eigen::SparseMatrix<double> chunk(_n, _n);
        chunk.setFromTriplets(_t.begin(), _t.end());
        _s += chunk;
        _t.clear();
    }
    Eigen::Index _n;
    bool _dense;
    Eigen::MatrixXd _d;
    Eigen::SparseMatrix<double> _s;
    std::vector<Eigen::Triplet<double>> _t;
};

struct UnionFind {
    std::vector<std::size_t> parent;
    explicit UnionFind(std::size_t n) : parent(n) {
        std::iota(parent.begin(), parent.end(), std::size_t{0});
    }
    std::size_t find(std::size_t x) {
        while (parent[x] != x) {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        return x;
    }
    void unite(std::size_t a, std::size_t b) {
        a = find(a);
        b = find(b);
        if (a != b) parent[std::max(a, b)] = std::min(a, b);
    }
};

template <typename T>
std::vector<T> sortedUnique(std::vector<T> v) {
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
    return v;
}

template <typename T>
std::size_t indexIn(const std::vector<T>& sorted, const T& x) {
    return static_cast<std::size_t>(std::lower_bound(sorted.begin(), sorted.end(), x) -
                                    sorted.begin());
}

}  // namespace

void PhotoCalConfig::validate() const {
    auto bad = [](const std::string& field, double value, const std::string& constraint) {
        return configError("PhotoCalConfig." + field + " = " + std::to_string(value) +
                           ": must be " + constraint);
    };
    if (fluxColumn.empty() || fluxErrColumn.empty())
        throw configError("PhotoCalConfig.fluxColumn/fluxErrColumn must not be empty");
    if (!(errorPedestal >= 0.0 && errorPedestal < 1.0))
        throw bad("errorPedestal", errorPedestal, "in [0, 1) mag");
    if (!(referenceErrorPedestal >= 0.0 && referenceErrorPedestal < 1.0))
        throw bad("referenceErrorPedestal", referenceErrorPedestal, "in [0, 1) mag");
    if (minMeasurements < 1) throw bad("minMeasurements", minMeasurements, ">= 1");
    if (!(clipSigma >= 2.0)) throw bad("clipSigma", clipSigma, ">= 2 (lower clips good data)");
    if (!(maxStarChi2Dof == 0.0 || maxStarChi2Dof >= 1.0))
        throw bad("maxStarChi2Dof", maxStarChi2Dof, "0 (off) or >= 1");
    if (maxIterations < 1) throw bad("maxIterations", maxIterations, ">= 1");
    if (maxExactErrorParameters < 0)
        throw bad("maxExactErrorParameters", maxExactErrorParameters, ">= 0");
}

PhotoCalResult solvePhotometricCalibration(const Table& measurements, const Table& reference,
                                           const PhotoCalConfig& config) {
    config.validate();
    const bool factored = config.model == PhotoCalModel::VisitPlusDetector;
    const std::size_t nIn = measurements.numRows();

    // ---- Canonical order
    std::vector<std::int64_t> objIn, visitIn, detIn;
    std::vector<double> fluxIn, errIn;
    try {
        objIn = integerColumn(measurements, "object_id");
        visitIn = integerColumn(measurements, "visit");
        detIn = integerColumn(measurements, "detector");
        fluxIn = realColumn(measurements, config.fluxColumn);
        errIn = realColumn(measurements, config.fluxErrColumn);
    } catch (Error& e) {
        throw e.addContext("photometric calibration: measurement table");
    }
    std::vector<std::size_t> order(nIn);
    std::iota(order.begin(), order.end(), std::size_t{0});
    auto key = [&](std::size_t r) {
        return std::make_tuple(objIn[r], visitIn[r], detIn[r], fluxIn[r], errIn[r]);
    };
    // Stable: rows with identical keys are indistinguishable in the output anyway.
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return key(a) < key(b); });

    const std::size_t n = nIn;
    std::vector<std::int64_t> obj(n), visit(n), det(n);
    std::vector<double> mag(n), sig(n), w(n);
    std::vector<char> active(n, 0);
    PhotoCalSummary summary;
    summary.numMeasurements = n;
    for (std::size_t k = 0; k < n; ++k) {
        std::size_t r = order[k];
        obj[k] = objIn[r];
        visit[k] = visitIn[r];
        det[k] = detIn[r];
        double f = fluxIn[r], e = errIn[r];
        bool ok = std::isfinite(f) && std::isfinite(e) && f > 0.0 && e > 0.0;
        active[k] = ok;
        if (!ok) {
            ++summary.numInvalid;
            mag[k] = sig[k] = w[k] = kNaN;
            continue;
        }
        mag[k] = -2.5 * std::log10(f);
        sig[k] = kMagPerRelFlux * e / f;
        w[k] = 1.0 / (sig[k] * sig[k] + config.errorPedestal * config.errorPedestal);
    }

    // ---- Reference magnitudes
    std::vector<std::int64_t> refObj;
    std::vector<double> refMag, refErr;
    try {
        refObj = integerColumn(reference, "object_id");
        refMag = realColumn(reference, "mag");
        refErr = realColumn(reference, "mag_err");
    } catch (Error& e) {
        throw e.addContext("photometric calibration: reference table");
    }
    std::vector<std::size_t> refOrder(refObj.size());
    std::iota(refOrder.begin(), refOrder.end(), std::size_t{0});
    std::sort(refOrder.begin(), refOrder.end(),
              [&](auto a, auto b) { return refObj[a] < refObj[b]; });
    for (std::size_t k = 1; k < refOrder.size(); ++k)
        if (refObj[refOrder[k]] == refObj[refOrder[k - 1]])
            throw badInput("photometric calibration: reference table has object_id " +
                           std::to_string(refObj[refOrder[k]]) + " twice");

    // ---- Stars (contiguous runs of object_id) and parameters
    std::vector<std::size_t> starBegin;
    for (std::size_t k = 0; k < n; ++k)
        if (k == 0 || obj[k] != obj[k - 1]) starBegin.push_back(k);
    const std::size_t nStars = starBegin.size();
    starBegin.push_back(n);
    std::vector<double> starRefMag(nStars, kNaN), starRefW(nStars, 0.0);
    for (std::size_t s = 0; s < nStars; ++s) {
        std::int64_t id = obj[starBegin[s]];
        auto it = std::lower_bound(refOrder.begin(), refOrder.end(), id,
                                   [&](std::size_t r, std::int64_t v) { return refObj[r] < v; });
        if (it == refOrder.end() || refObj[*it] != id) continue;
        double m = refMag[*it], e = refErr[*it];
        if (!std::isfinite(m) || !std::isfinite(e) || e <= 0.0) continue;
        starRefMag[s] = m;
        starRefW[s] = 1.0 / (e * e + config.referenceErrorPedestal * config.referenceErrorPedestal);
    }

    std::vector<std::pair<std::int64_t, std::int64_t>> pairsAll(n);
    for (std::size_t k = 0; k < n; ++k) pairsAll[k] = {visit[k], det[k]};
    const auto pairs = sortedUnique(pairsAll);
    const auto visits = sortedUnique(visit);
    const auto dets = sortedUnique(det);
    // Parameters touched by a measurement: (pair) or (visit, detector).
    const std::size_t nParams = factored ? visits.size() + dets.size() : pairs.size();
    std::vector<std::array<std::int64_t, 2>> measParams(n);
    std::vector<std::size_t> measPair(n);
    for (std::size_t k = 0; k < n; ++k) {
        measPair[k] = indexIn(pairs, pairsAll[k]);
        if (factored)
            measParams[k] = {static_cast<std::int64_t>(indexIn(visits, visit[k])),
                             static_cast<std::int64_t>(visits.size() + indexIn(dets, det[k]))};
        else
            measParams[k] = {static_cast<std::int64_t>(measPair[k]), -1};
    }
    auto pairParams = [&](std::size_t j) -> std::array<std::int64_t, 2> {
        if (!factored) return {static_cast<std::int64_t>(j), -1};
        return {static_cast<std::int64_t>(indexIn(visits, pairs[j].first)),
                static_cast<std::int64_t>(visits.size() + indexIn(dets, pairs[j].second))};
    };

    // ---- Iterate: solve, clip
    std::vector<char> variable(nStars, 0), usable(nStars, 0), solvedStar(nStars, 0);
    std::vector<double> Z(nParams, kNaN);
    std::vector<std::int64_t> col(nParams, -1);
    std::vector<double> starMag(nStars, kNaN), starW(nStars, 0.0), starChi2(nStars, kNaN);
    std::vector<std::size_t> starN(nStars, 0);
    std::vector<std::size_t> paramComp(nParams, 0);
    Eigen::SparseMatrix<double> N;
    Eigen::SimplicialLDLT<Eigen::SparseMatrix<double>, Eigen::Lower> ldlt;
    std::size_t nUnknowns = 0;

    for (int iter = 1; iter <= config.maxIterations; ++iter) {
        summary.iterations = iter;
        // Usable stars and connected components of the parameters they link.
        UnionFind uf(nParams);
        std::vector<char> touched(nParams, 0);
        for (std::size_t s = 0; s < nStars; ++s) {
            std::size_t cnt = 0;
            std::int64_t first = -1;
            for (std::size_t k = starBegin[s]; k < starBegin[s + 1]; ++k) {
                if (!active[k]) continue;
                ++cnt;
            }
            starN[s] = cnt;
            bool hasRef = starRefW[s] > 0.0;
            usable[s] = !variable[s] && cnt >= 1 &&
                        (static_cast<int>(cnt) >= config.minMeasurements || hasRef) &&
                        (cnt >= 2 || hasRef);
            if (!usable[s]) continue;
            for (std::size_t k = starBegin[s]; k < starBegin[s + 1]; ++k) {
                if (!active[k]) continue;
                for (auto p : measParams[k]) {
                    if (p < 0) continue;
                    touched[p] = 1;
                    if (first < 0) first = p;
                    uf.unite(static_cast<std::size_t>(first), static_cast<std::size_t>(p));
                }
            }
        }
        std::vector<char> compHasRef(nParams, 0);
        for (std::size_t s = 0; s < nStars; ++s) {
            if (!usable[s] || !(starRefW[s] > 0.0)) continue;
            for (std::size_t k = starBegin[s]; k < starBegin[s + 1]; ++k)
                if (active[k]) {
                    compHasRef[uf.find(static_cast<std::size_t>(measParams[k][0]))] = 1;
                    break;
                }
        }
        // Unknowns: touched parameters of referenced components, minus one pinned detector term
        // per component in the factorised model.
        std::vector<char> pinnedComp(nParams, 0);
        nUnknowns = 0;
        for (std::size_t p = 0; p < nParams; ++p) {
            paramComp[p] = uf.find(p);
            col[p] = -1;
            Z[p] = kNaN;
            if (!touched[p] || !compHasRef[paramComp[p]]) continue;
            Z[p] = 0.0;
            if (factored && p >= visits.size() && !pinnedComp[paramComp[p]]) {
                pinnedComp[paramComp[p]] = 1;  // the lowest detector index of the component
                continue;
            }
            col[p] = static_cast<std::int64_t>(nUnknowns++);
        }
        bool anyRef = false;
        for (std::size_t s = 0; s < nStars; ++s) anyRef |= usable[s] && starRefW[s] > 0.0;
        if (!anyRef)
            throw Error("no_reference_stars",
                        "photometric calibration: none of the " + std::to_string(nStars) +
                            " measured stars has a usable reference magnitude (" +
                            std::to_string(refObj.size()) + " reference rows)");

        // Reduced normal equations.
        NormalAccumulator acc(static_cast<Eigen::Index>(nUnknowns));
        Eigen::VectorXd rhs = Eigen::VectorXd::Zero(static_cast<Eigen::Index>(nUnknowns));
        std::vector<std::pair<std::int64_t, double>> g;
        for (std::size_t s = 0; s < nStars; ++s) {
            solvedStar[s] = 0;
            if (!usable[s]) continue;
            std::size_t k0 = starBegin[s];
            while (!active[k0]) ++k0;
            if (std::isnan(Z[measParams[k0][0]])) continue;  // unreferenced component
            solvedStar[s] = 1;
            double W = starRefW[s], a = starRefW[s] > 0.0 ? starRefW[s] * starRefMag[s] : 0.0;
            g.clear();
            for (std::size_t k = starBegin[s]; k < starBegin[s + 1]; ++k) {
                if (!active[k]) continue;
                W += w[k];
                a += w[k] * mag[k];
                std::int64_t c0 = col[measParams[k][0]];
                std::int64_t c1 = measParams[k][1] >= 0 ? col[measParams[k][1]] : -1;
                for (std::int64_t c : {c0, c1}) {
                    if (c < 0) continue;
                    acc.add(c, c, w[k]);
                    rhs[c] -= w[k] * mag[k];
                    g.emplace_back(c, w[k]);
                }
                if (c0 >= 0 && c1 >= 0) acc.add(c1, c0, w[k]);
            }
            std::sort(g.begin(), g.end(), [](auto& x, auto& y) { return x.first < y.first; });
            std::size_t m = 0;  // merge equal columns (in sorted order: deterministic sums)
            for (std::size_t q = 0; q < g.size(); ++q) {
                if (m > 0 && g[m - 1].first == g[q].first)
                    g[m - 1].second += g[q].second;
                else
                    g[m++] = g[q];
            }
            g.resize(m);
            for (std::size_t x = 0; x < g.size(); ++x) {
                rhs[g[x].first] += g[x].second * a / W;
                for (std::size_t y = 0; y <= x; ++y)
                    acc.add(g[x].first, g[y].first, -g[x].second * g[y].second / W);
            }
        }
        N = acc.finish();
        Eigen::VectorXd sol;
        if (nUnknowns > 0) {
            ldlt.compute(N);
            if (ldlt.info() != Eigen::Success)
                throw Error("photocal_failed", "photometric calibration: sparse LDLT of the " +
                                                   std::to_string(nUnknowns) +
                                                   "-parameter normal matrix failed");
            const Eigen::VectorXd& D = ldlt.vectorD();
            double dmax = D.cwiseAbs().maxCoeff();
            if (!(D.minCoeff() > 1e-12 * dmax))
                throw Error("photocal_failed",
                            "photometric calibration: normal matrix is singular (a zero point is "
                            "not constrained by the overlaps; min pivot " +
                                std::to_string(D.minCoeff()) + ")");
            sol = ldlt.solve(rhs);
        }
        for (std::size_t p = 0; p < nParams; ++p)
            if (col[p] >= 0) Z[p] = sol[col[p]];

        // Star magnitudes, residuals, clipping.
        // Candidate rejections (score, item): item = measurement k, or n + s for a variable star.
        std::vector<std::pair<double, std::size_t>> clips;
        summary.chi2 = 0.0;
        std::size_t nObsUsed = 0, nRefUsed = 0, nStarsUsed = 0;
        for (std::size_t s = 0; s < nStars; ++s) {
            starMag[s] = kNaN;
            starW[s] = 0.0;
            starChi2[s] = kNaN;
            if (!solvedStar[s]) continue;
            double W = starRefW[s], a = starRefW[s] > 0.0 ? starRefW[s] * starRefMag[s] : 0.0;
            auto zpOf = [&](std::size_t k) {
                double z = Z[measParams[k][0]];
                if (measParams[k][1] >= 0) z += Z[measParams[k][1]];
                return z;
            };
            for (std::size_t k = starBegin[s]; k < starBegin[s + 1]; ++k) {
                if (!active[k]) continue;
                W += w[k];
                a += w[k] * (mag[k] + zpOf(k));
            }
            double ms = a / W;
            starMag[s] = ms;
            starW[s] = W;
            double chi2 =
                starRefW[s] > 0.0 ? starRefW[s] * (ms - starRefMag[s]) * (ms - starRefMag[s]) : 0.0;
            double worst = -1.0;
            std::size_t worstK = n;
            for (std::size_t k = starBegin[s]; k < starBegin[s + 1]; ++k) {
                if (!active[k]) continue;
                double r = mag[k] + zpOf(k) - ms;
                double var = std::max(1.0 / w[k] - 1.0 / W, 1e-6 / w[k]);
                double t = std::abs(r) / std::sqrt(var);
                chi2 += w[k] * r * r;
                if (t > worst) {
                    worst = t;
                    worstK = k;
                }
            }
            double dof = static_cast<double>(starN[s]) + (starRefW[s] > 0.0 ? 1.0 : 0.0) - 1.0;
            starChi2[s] = dof > 0 ? chi2 / dof : kNaN;
            summary.chi2 += chi2;
            nObsUsed += starN[s];
            nRefUsed += starRefW[s] > 0.0;
            ++nStarsUsed;
            // Variability test on the star without its worst measurement (leave-one-out mean),
            // so that one transient does not make a constant star look variable.
            bool isVariable = false;
            if (config.maxStarChi2Dof > 0.0 && dof - 1.0 >= 2.0 && worstK < n) {
                double W1 = W - w[worstK], m1 = (a - w[worstK] * (mag[worstK] + zpOf(worstK))) / W1;
                double chi2LOO = starRefW[s] > 0.0
                                     ? starRefW[s] * (m1 - starRefMag[s]) * (m1 - starRefMag[s])
                                     : 0.0;
                for (std::size_t k = starBegin[s]; k < starBegin[s + 1]; ++k) {
                    if (!active[k] || k == worstK) continue;
                    double r = mag[k] + zpOf(k) - m1;
                    chi2LOO += w[k] * r * r;
                }
                // Score on the measurement scale: the variability threshold maps to clipSigma.
                double score =
                    config.clipSigma * std::sqrt(chi2LOO / (dof - 1.0) / config.maxStarChi2Dof);
                if (score > config.clipSigma) clips.push_back({score, n + s});
                isVariable = score > config.clipSigma;
            }
            if (!isVariable && worst > config.clipSigma && worstK < n)
                clips.push_back({worst, worstK});
        }
        summary.numUsed = nObsUsed;
        summary.numStars = nStarsUsed;
        summary.numReferenceStars = nRefUsed;
        summary.numParameters = nUnknowns;
        summary.dof = static_cast<double>(nObsUsed + nRefUsed) - static_cast<double>(nStarsUsed) -
                      static_cast<double>(nUnknowns);
        // Apply the clipping decided from this solution, unless it is the last allowed iteration:
        // then the flags must keep describing the solution that is returned. Only candidates
        // scoring at least half the largest score are rejected in one go: gross outliers (a bright
        // variable is hundreds of σ off) bias the first solutions by several mmag, which would
        // push good bright stars over the threshold; they are judged again after a re-solve.
        if (clips.empty() || iter == config.maxIterations) break;
        double maxScore = 0.0;
        for (auto& c : clips) maxScore = std::max(maxScore, c.first);
        for (auto& [score, k] : clips) {
            if (score < 0.5 * maxScore) continue;
            if (k < n) {
                active[k] = 0;
                ++summary.numClipped;
            } else {
                variable[k - n] = 1;
            }
        }
    }
    std::size_t nVariable = 0;
    for (std::size_t s = 0; s < nStars; ++s) nVariable += variable[s];
    summary.numVariableStars = nVariable;

    PhotoCalResult result;
    // ---- Zero points and their errors
    const bool exact = nUnknowns <= static_cast<std::size_t>(config.maxExactErrorParameters);
    summary.errorMethod = exact ? "exact" : "diagonal";
    Eigen::VectorXd diag = nUnknowns > 0 ? Eigen::VectorXd(N.diagonal()) : Eigen::VectorXd();
    std::vector<std::size_t> pairCount(pairs.size(), 0);
    std::vector<char> measUsed(n, 0);
    for (std::size_t s = 0; s < nStars; ++s) {
        if (!solvedStar[s]) continue;
        for (std::size_t k = starBegin[s]; k < starBegin[s + 1]; ++k)
            if (active[k]) {
                measUsed[k] = 1;
                ++pairCount[measPair[k]];
            }
    }
    // Factorised model: move the detector terms' mean of each component into the visit terms.
    std::vector<double> Zout = Z;
    if (factored) {
        std::vector<double> sum(nParams, 0.0);
        std::vector<std::size_t> cnt(nParams, 0);
        for (std::size_t p = visits.size(); p < nParams; ++p)
            if (std::isfinite(Z[p])) {
                sum[paramComp[p]] += Z[p];
                ++cnt[paramComp[p]];
            }
        for (std::size_t p = 0; p < nParams; ++p) {
            if (!std::isfinite(Z[p]) || cnt[paramComp[p]] == 0) continue;
            double mean = sum[paramComp[p]] / static_cast<double>(cnt[paramComp[p]]);
            Zout[p] += p < visits.size() ? mean : -mean;
        }
    }
    auto& zVisit = result.zeroPoints.addColumn<std::int64_t>("visit", "", "Visit id");
    auto& zDet = result.zeroPoints.addColumn<std::int64_t>("detector", "", "Detector id");
    auto& zZp = result.zeroPoints.addColumn<double>(
        "zero_point", "mag",
        "AB magnitude of one instrumental count: m = -2.5 log10(inst_flux) + ZP");
    auto& zErr = result.zeroPoints.addColumn<double>(
        "zero_point_err", "mag",
        "1-sigma error from the reduced normal matrix (not scaled by chi2/dof)");
    auto& zN = result.zeroPoints.addColumn<std::int64_t>("n_measurements", "",
                                                         "Measurements used in the fit");
    auto& zCal = result.zeroPoints.addColumn<Bool>(
        "calibrated", "", "False if no reference star is connected to this zero point");
    Eigen::VectorXd e = Eigen::VectorXd::Zero(static_cast<Eigen::Index>(nUnknowns));
    for (std::size_t j = 0; j < pairs.size(); ++j) {
        auto pp = pairParams(j);
        double z = 0.0, var = 0.0;
        bool ok = true;
        for (auto p : pp) {
            if (p < 0) continue;
            if (!std::isfinite(Zout[p])) ok = false;
            z += ok ? Zout[p] : 0.0;
        }
        if (ok) {
            if (exact) {
                e.setZero();
                for (auto p : pp)
                    if (p >= 0 && col[p] >= 0) e[col[p]] = 1.0;
                if (e.squaredNorm() > 0) var = e.dot(ldlt.solve(e));
            } else {
                for (auto p : pp)
                    if (p >= 0 && col[p] >= 0) var += 1.0 / diag[col[p]];
            }
        }
        zVisit.push_back(pairs[j].first);
        zDet.push_back(pairs[j].second);
        zZp.push_back(ok ? z : kNaN);
        zErr.push_back(ok ? std::sqrt(var) : kNaN);
        zN.push_back(static_cast<std::int64_t>(pairCount[j]));
        zCal.push_back(ok);
        summary.numUncalibrated += !ok;
    }
    if (factored) {
        auto& vId = result.visitTerms.addColumn<std::int64_t>("visit", "", "Visit id");
        auto& vT =
            result.visitTerms.addColumn<double>("visit_term", "mag", "Per-visit zero-point term");
        for (std::size_t v = 0; v < visits.size(); ++v) {
            vId.push_back(visits[v]);
            vT.push_back(Zout[v]);
        }
        auto& dId = result.detectorTerms.addColumn<std::int64_t>("detector", "", "Detector id");
        auto& dT = result.detectorTerms.addColumn<double>("detector_term", "mag",
                                                          "Per-detector term (zero mean)");
        for (std::size_t d = 0; d < dets.size(); ++d) {
            dId.push_back(dets[d]);
            dT.push_back(Zout[visits.size() + d]);
        }
    }

    // ---- Stars
    auto& sId = result.stars.addColumn<std::int64_t>("object_id", "", "Object id");
    auto& sMag =
        result.stars.addColumn<double>("mag", "mag", "Calibrated weighted-mean AB magnitude");
    auto& sErr =
        result.stars.addColumn<double>("mag_err", "mag", "1-sigma statistical error of mag");
    auto& sN = result.stars.addColumn<std::int64_t>("n_measurements", "", "Measurements used");
    auto& sChi =
        result.stars.addColumn<double>("chi2_dof", "", "chi2 per degree of freedom about mag");
    auto& sRef = result.stars.addColumn<Bool>("has_reference", "", "Has a reference magnitude");
    auto& sVar = result.stars.addColumn<Bool>("variable", "", "Rejected as variable");
    for (std::size_t s = 0; s < nStars; ++s) {
        sId.push_back(obj[starBegin[s]]);
        sMag.push_back(starMag[s]);
        sErr.push_back(starW[s] > 0 ? 1.0 / std::sqrt(starW[s]) : kNaN);
        sN.push_back(solvedStar[s] ? static_cast<std::int64_t>(starN[s]) : 0);
        sChi.push_back(starChi2[s]);
        sRef.push_back(starRefW[s] > 0.0);
        sVar.push_back(variable[s] != 0);
    }
    result.measurementUsed.assign(n, Bool(false));
    for (std::size_t k = 0; k < n; ++k) result.measurementUsed[order[k]] = measUsed[k] != 0;
    result.summary = summary;
    return result;
}

}  // namespace drp
