#include "drp/validate/metrics.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numbers>
#include <string>

#include "drp/core/error.h"

namespace drp::validate {

namespace {

constexpr double kDegToRad = std::numbers::pi / 180.0;

void unitVector(double raDeg, double decDeg, double& x, double& y, double& z) {
    const double ra = raDeg * kDegToRad, dec = decDeg * kDegToRad;
    x = std::cos(dec) * std::cos(ra);
    y = std::cos(dec) * std::sin(ra);
    z = std::sin(dec);
}

// Cells along one axis: unit vectors span [-1, 1], so at most 2/cell + 2 cells per axis.
constexpr std::int64_t kAxisCells = std::int64_t(1) << 20;

}  // namespace

SkyIndex::SkyIndex(const std::vector<double>& raDeg, const std::vector<double>& decDeg,
                   Angle radius) {
    if (raDeg.size() != decDeg.size())
        throw badInput("SkyIndex: ra and dec have different lengths");
    if (!(radius.asRadians() > 0)) throw badInput("SkyIndex: match radius must be positive");
    const double chord = 2.0 * std::sin(0.5 * radius.asRadians());
    // Cell no smaller than 2/kAxisCells so that keys fit; a coarser cell only costs speed.
    _cell = std::max(chord, 4.0 / double(kAxisCells));
    _chord2 = chord * chord;
    const std::size_t n = raDeg.size();
    _x.resize(n), _y.resize(n), _z.resize(n);
    std::vector<std::int64_t> keys(n);
    for (std::size_t i = 0; i < n; ++i) {
        unitVector(raDeg[i], decDeg[i], _x[i], _y[i], _z[i]);
        keys[i] = cellKey(std::int64_t(std::floor((_x[i] + 1) / _cell)),
                          std::int64_t(std::floor((_y[i] + 1) / _cell)),
                          std::int64_t(std::floor((_z[i] + 1) / _cell)));
    }
    _order.resize(n);
    for (std::size_t i = 0; i < n; ++i) _order[i] = std::int64_t(i);
    std::stable_sort(_order.begin(), _order.end(),
                     [&](auto a, auto b) { return keys[a] < keys[b]; });
    _sortedKeys.resize(n);
    for (std::size_t i = 0; i < n; ++i) _sortedKeys[i] = keys[_order[i]];
}

std::int64_t SkyIndex::cellKey(std::int64_t i, std::int64_t j, std::int64_t k) const {
    return (i * kAxisCells + j) * kAxisCells + k;
}

std::vector<std::int64_t> SkyIndex::within(double raDeg, double decDeg) const {
    std::vector<std::int64_t> out;
    double x, y, z;
    unitVector(raDeg, decDeg, x, y, z);
    const auto ci = std::int64_t(std::floor((x + 1) / _cell)),
               cj = std::int64_t(std::floor((y + 1) / _cell)),
               ck = std::int64_t(std::floor((z + 1) / _cell));
    for (std::int64_t di = -1; di <= 1; ++di)
        for (std::int64_t dj = -1; dj <= 1; ++dj)
            for (std::int64_t dk = -1; dk <= 1; ++dk) {
                const std::int64_t key = cellKey(ci + di, cj + dj, ck + dk);
                auto [lo, hi] = std::equal_range(_sortedKeys.begin(), _sortedKeys.end(), key);
                for (auto it = lo; it != hi; ++it) {
                    const std::int64_t p = _order[std::size_t(it - _sortedKeys.begin())];
                    const double dx = _x[p] - x, dy = _y[p] - y, dz = _z[p] - z;
                    if (dx * dx + dy * dy + dz * dz <= _chord2) out.push_back(p);
                }
            }
    return out;
}

std::int64_t SkyIndex::nearest(double raDeg, double decDeg) const {
    double x, y, z;
    unitVector(raDeg, decDeg, x, y, z);
    std::int64_t best = -1;
    double bestD2 = 0;
    for (std::int64_t p : within(raDeg, decDeg)) {
        const double dx = _x[p] - x, dy = _y[p] - y, dz = _z[p] - z;
        const double d2 = dx * dx + dy * dy + dz * dz;
        // Ties go to the lower index so the result does not depend on bucket order.
        if (best < 0 || d2 < bestD2 || (d2 == bestD2 && p < best)) best = p, bestD2 = d2;
    }
    return best;
}

double separationArcsec(double ra1, double dec1, double ra2, double dec2) {
    const double d1 = dec1 * kDegToRad, d2 = dec2 * kDegToRad;
    const double sdd = std::sin(0.5 * (d2 - d1)), sda = std::sin(0.5 * (ra2 - ra1) * kDegToRad);
    const double h = sdd * sdd + std::cos(d1) * std::cos(d2) * sda * sda;
    return 2.0 * std::asin(std::min(1.0, std::sqrt(h))) / kDegToRad * 3600.0;
}

Match matchCatalogs(const std::vector<double>& raA, const std::vector<double>& decA,
                    const std::vector<double>& raB, const std::vector<double>& decB, Angle radius) {
    Match m;
    const SkyIndex indexA(raA, decA, radius), indexB(raB, decB, radius);
    m.bForA.resize(raA.size());
    for (std::size_t i = 0; i < raA.size(); ++i) m.bForA[i] = indexB.nearest(raA[i], decA[i]);
    m.aForB.resize(raB.size());
    m.nAForB.resize(raB.size());
    for (std::size_t j = 0; j < raB.size(); ++j) {
        m.aForB[j] = indexA.nearest(raB[j], decB[j]);
        m.nAForB[j] = std::int32_t(indexA.within(raB[j], decB[j]).size());
    }
    return m;
}

double njyToAbMag(double fluxNjy) {
    // m_AB = -2.5 log10(f / 3631 Jy) = 31.4 - 2.5 log10(f / nJy)  (Oke & Gunn 1983).
    if (!(fluxNjy > 0)) return std::nan("");
    return 31.4 - 2.5 * std::log10(fluxNjy);
}

double extendedNoiseFactor(double rHalf, double psfSigma) {
    if (!(rHalf > 0 && psfSigma > 0)) return 1.0;
    const double sigmaGal = rHalf / std::sqrt(2 * std::log(2.0));
    return std::sqrt(1 + std::pow(sigmaGal / psfSigma, 2));
}

double informationFloor(const std::vector<double>& sigma, const std::vector<double>& bias) {
    if (!bias.empty() && bias.size() != sigma.size())
        throw badInput("informationFloor: " + std::to_string(bias.size()) + " biases for " +
                       std::to_string(sigma.size()) + " sigmas");
    std::vector<double> s, b;
    for (std::size_t i = 0; i < sigma.size(); ++i) {
        const double bi = bias.empty() ? 0.0 : bias[i];
        if (std::isfinite(sigma[i]) && sigma[i] > 0 && std::isfinite(bi)) {
            s.push_back(sigma[i]);
            b.push_back(bi);
        }
    }
    if (s.empty()) return std::nan("");
    const double half = 0.5 * double(s.size());
    // Σ_i P(|ε_i| < m), ε_i ~ N(b_i, σ_i²).
    auto below = [&](double m) {
        double n = 0;
        for (std::size_t i = 0; i < s.size(); ++i)
            n += 0.5 * (std::erf((m - b[i]) / (s[i] * std::sqrt(2.0))) +
                        std::erf((m + b[i]) / (s[i] * std::sqrt(2.0))));
        return n;
    };
    // The root is at most max(|b_i| + σ_i): every member has P(|ε_i| < |b_i| + σ_i) ≥
    // P(|ε_i − b_i| < σ_i) = 0.683 there (0.6745 × the largest σ when unbiased).
    double lo = 0, hi = 0;
    for (std::size_t i = 0; i < s.size(); ++i) hi = std::max(hi, std::abs(b[i]) + s[i]);
    for (int it = 0; it < 100 && hi - lo > 1e-15 * hi; ++it) {
        const double mid = 0.5 * (lo + hi);
        (below(mid) < half ? lo : hi) = mid;
    }
    return 0.5 * (lo + hi);
}

double median(std::vector<double> v) {
    std::erase_if(v, [](double x) { return !std::isfinite(x); });
    if (v.empty()) return std::nan("");
    const std::size_t mid = v.size() / 2;
    std::nth_element(v.begin(), v.begin() + std::ptrdiff_t(mid), v.end());
    const double hi = v[mid];
    if (v.size() % 2 == 1) return hi;
    const double lo = *std::max_element(v.begin(), v.begin() + std::ptrdiff_t(mid));
    return 0.5 * (lo + hi);
}

double robustSigma(const std::vector<double>& values) {
    const double m = median(values);
    if (!std::isfinite(m)) return m;
    std::vector<double> dev;
    dev.reserve(values.size());
    for (double x : values)
        if (std::isfinite(x)) dev.push_back(std::abs(x - m));
    // 1.4826 = 1 / Phi^-1(3/4): MAD -> sigma for a Gaussian (Rousseeuw & Croux 1993).
    return 1.4826 * median(std::move(dev));
}

std::vector<MagBin> binnedFraction(const std::vector<double>& mag, const std::vector<bool>& matched,
                                   double magMin, double magMax, double width) {
    if (mag.size() != matched.size())
        throw badInput("binnedFraction: mag and matched have different lengths");
    if (!(width > 0) || !(magMax > magMin))
        throw badInput("binnedFraction: need magMax > magMin and width > 0");
    const auto nBins = std::size_t(std::ceil((magMax - magMin) / width - 1e-9));
    std::vector<MagBin> bins(nBins);
    for (std::size_t k = 0; k < nBins; ++k) {
        bins[k].magMin = magMin + double(k) * width;
        bins[k].magMax = std::min(magMax, magMin + double(k + 1) * width);
    }
    for (std::size_t i = 0; i < mag.size(); ++i) {
        if (!std::isfinite(mag[i]) || mag[i] < magMin || mag[i] >= magMax) continue;
        const auto k = std::min(nBins - 1, std::size_t((mag[i] - magMin) / width));
        ++bins[k].n;
        if (matched[i]) ++bins[k].nMatched;
    }
    return bins;
}

FluxStats fluxRatioStats(const std::vector<double>& measured, const std::vector<double>& truth) {
    if (measured.size() != truth.size())
        throw badInput("fluxRatioStats: inputs have different lengths");
    std::vector<double> r;
    for (std::size_t i = 0; i < measured.size(); ++i)
        if (std::isfinite(measured[i]) && truth[i] > 0 && std::isfinite(truth[i]))
            r.push_back(measured[i] / truth[i] - 1);
    FluxStats s;
    s.n = std::int64_t(r.size());
    if (r.empty()) return s;
    s.bias = median(r);
    s.scatter = robustSigma(r);
    return s;
}

AstrometryStats astrometricResiduals(const std::vector<double>& ra1,
                                     const std::vector<double>& dec1,
                                     const std::vector<double>& ra2,
                                     const std::vector<double>& dec2) {
    if (ra1.size() != dec1.size() || ra1.size() != ra2.size() || ra1.size() != dec2.size())
        throw badInput("astrometricResiduals: inputs have different lengths");
    AstrometryStats s;
    double sum2 = 0;
    std::vector<double> dra, ddec;
    for (std::size_t i = 0; i < ra1.size(); ++i) {
        const double sep = separationArcsec(ra1[i], dec1[i], ra2[i], dec2[i]) * 1000.0;
        if (!std::isfinite(sep)) continue;
        sum2 += sep * sep;
        double dR = ra1[i] - ra2[i];
        dR -= 360.0 * std::round(dR / 360.0);  // across RA = 0
        dra.push_back(dR * std::cos(0.5 * (dec1[i] + dec2[i]) * kDegToRad) * 3.6e6);
        ddec.push_back((dec1[i] - dec2[i]) * 3.6e6);
        ++s.n;
    }
    if (s.n == 0) return s;
    s.rmsMas = std::sqrt(sum2 / double(s.n));
    s.medianDRaMas = median(dra);
    s.medianDDecMas = median(ddec);
    return s;
}

namespace {
std::vector<std::int64_t> intColumn(const Table& t, const std::string& name) {
    const Column& c = t.columnInfo(name);
    if (c.type() == ColumnType::Int64) return t.column<std::int64_t>(name);
    if (c.type() == ColumnType::Int32) {
        const auto& v = t.column<std::int32_t>(name);
        return {v.begin(), v.end()};
    }
    throw badInput("column '" + name + "' must be an integer column, not " +
                   columnTypeName(c.type()));
}
std::vector<double> floatColumn(const Table& t, const std::string& name) {
    const Column& c = t.columnInfo(name);
    if (c.type() == ColumnType::Float64) return t.column<double>(name);
    if (c.type() == ColumnType::Float32) {
        const auto& v = t.column<float>(name);
        return {v.begin(), v.end()};
    }
    throw badInput("column '" + name + "' must be a floating-point column, not " +
                   columnTypeName(c.type()));
}
}  // namespace

ZeroPointStats zeroPointResiduals(const Table& measured, const Table& truth) {
    std::map<std::pair<std::int64_t, std::int64_t>, double> zpMeasured;
    {
        const auto visit = intColumn(measured, "visit"), det = intColumn(measured, "detector");
        const auto zp = floatColumn(measured, "zero_point");
        const bool hasFlag = measured.has("calibrated");
        for (std::size_t i = 0; i < visit.size(); ++i) {
            if (hasFlag && !measured.column<Bool>("calibrated")[i]) continue;
            if (std::isfinite(zp[i])) zpMeasured[{visit[i], det[i]}] = zp[i];
        }
    }
    const auto visit = intColumn(truth, "visit"), det = intColumn(truth, "detector");
    const auto zpTrue = floatColumn(truth, "zero_point");
    ZeroPointStats s;
    std::vector<double> d;
    for (std::size_t i = 0; i < visit.size(); ++i) {
        auto it = zpMeasured.find({visit[i], det[i]});
        if (it == zpMeasured.end()) {
            ++s.nMissing;
            continue;
        }
        d.push_back((it->second - zpTrue[i]) * 1000.0);
    }
    s.n = std::int64_t(d.size());
    if (d.empty()) return s;
    double sum = 0, sum2 = 0;
    for (double x : d) sum += x, sum2 += x * x;
    s.meanOffsetMmag = sum / double(d.size());
    s.rmsMmag = std::sqrt(sum2 / double(d.size()));
    double var = 0;
    for (double x : d) var += (x - s.meanOffsetMmag) * (x - s.meanOffsetMmag);
    s.rmsAboutMeanMmag = std::sqrt(var / double(d.size()));
    return s;
}

RepeatabilityStats photometricRepeatability(const std::vector<std::int64_t>& starId,
                                            const std::vector<double>& mag, int minMeasurements) {
    return photometricRepeatability(starId, mag, std::vector<double>(mag.size(), NAN),
                                    minMeasurements);
}

double regularizedGammaP(double a, double x) {
    if (!(a > 0) || !(x >= 0)) throw badInput("regularizedGammaP: need a > 0 and x >= 0");
    if (x == 0) return 0.0;
    const double lnPrefix = a * std::log(x) - x - std::lgamma(a);
    if (x < a + 1) {
        // Series: P = e^-x x^a / Gamma(a+1) * sum_n x^n / ((a+1)...(a+n)).
        double ap = a, term = 1.0 / a, sum = term;
        for (int n = 0; n < 1000 && std::abs(term) > std::abs(sum) * 1e-15; ++n) {
            ap += 1;
            term *= x / ap;
            sum += term;
        }
        return std::min(1.0, sum * std::exp(lnPrefix));
    }
    // Continued fraction for Q = 1 - P (modified Lentz).
    const double tiny = 1e-300;
    double b = x + 1 - a, c = 1 / tiny, d = 1 / b, h = d;
    for (int i = 1; i < 1000; ++i) {
        const double an = -i * (i - a);
        b += 2;
        d = an * d + b;
        if (std::abs(d) < tiny) d = tiny;
        c = b + an / c;
        if (std::abs(c) < tiny) c = tiny;
        d = 1 / d;
        const double del = d * c;
        h *= del;
        if (std::abs(del - 1) < 1e-15) break;
    }
    return std::max(0.0, 1.0 - std::exp(lnPrefix) * h);
}

RepeatabilityStats photometricRepeatability(const std::vector<std::int64_t>& starId,
                                            const std::vector<double>& mag,
                                            const std::vector<double>& magErr,
                                            int minMeasurements) {
    if (starId.size() != mag.size() || mag.size() != magErr.size())
        throw badInput("photometricRepeatability: inputs have different lengths");
    if (minMeasurements < 2) throw badInput("photometricRepeatability: minMeasurements < 2");
    struct Star {
        std::vector<double> m, e;
    };
    std::map<std::int64_t, Star> perStar;
    for (std::size_t i = 0; i < mag.size(); ++i)
        if (std::isfinite(mag[i]))
            perStar[starId[i]].m.push_back(mag[i]), perStar[starId[i]].e.push_back(magErr[i]);
    std::vector<double> rms, noise;
    std::vector<const Star*> used;
    bool allErrors = true;
    for (const auto& [id, s] : perStar) {
        if (int(s.m.size()) < minMeasurements) continue;
        double mean = 0, e2 = 0;
        for (double x : s.m) mean += x;
        mean /= double(s.m.size());
        double var = 0;
        for (std::size_t k = 0; k < s.m.size(); ++k) {
            var += (s.m[k] - mean) * (s.m[k] - mean);
            e2 += s.e[k] * s.e[k];
            allErrors = allErrors && std::isfinite(s.e[k]) && s.e[k] > 0;
        }
        // Sample standard deviation (n - 1): unbiased variance for the few epochs per star.
        rms.push_back(std::sqrt(var / double(s.m.size() - 1)) * 1000.0);
        noise.push_back(std::sqrt(e2 / double(s.m.size())) * 1000.0);
        used.push_back(&s);
    }
    RepeatabilityStats out;
    out.nStars = std::int64_t(rms.size());
    if (rms.empty()) return out;
    out.pa1Mmag = median(rms);
    if (!allErrors) return out;
    out.noiseMmag = median(noise);
    // Median over stars of the chi2 CDF of each star's scatter with extra variance s^2.
    auto medianP = [&](double s) {
        std::vector<double> p;
        p.reserve(used.size());
        for (const Star* st : used) {
            double sw = 0, swm = 0;
            for (std::size_t k = 0; k < st->m.size(); ++k) {
                const double w = 1 / (st->e[k] * st->e[k] + s * s);
                sw += w, swm += w * st->m[k];
            }
            const double mean = swm / sw;
            double chi2 = 0;
            for (std::size_t k = 0; k < st->m.size(); ++k)
                chi2 += (st->m[k] - mean) * (st->m[k] - mean) / (st->e[k] * st->e[k] + s * s);
            p.push_back(regularizedGammaP(0.5 * double(st->m.size() - 1), 0.5 * chi2));
        }
        return median(std::move(p));
    };
    // medianP decreases with s; bisect on [0, 1 mag] to 1e-3 mmag.
    double lo = 0, hi = 1.0;
    if (medianP(0) <= 0.5) {
        out.intrinsicMmag = 0;
        return out;
    }
    if (medianP(hi) > 0.5) {
        out.intrinsicMmag = hi * 1000.0;
        return out;
    }
    while (hi - lo > 1e-6) {
        const double mid = 0.5 * (lo + hi);
        (medianP(mid) > 0.5 ? lo : hi) = mid;
    }
    out.intrinsicMmag = 0.5 * (lo + hi) * 1000.0;
    return out;
}

std::vector<std::size_t> primaryRows(const Table& objects) {
    const auto& primary = objects.column<Bool>("is_primary");
    std::vector<std::size_t> rows;
    for (std::size_t i = 0; i < primary.size(); ++i)
        if (primary[i]) rows.push_back(i);
    return rows;
}

SeamStats duplicatePrimaries(const Table& objects, Angle duplicateRadius) {
    const auto rows = primaryRows(objects);
    const auto& ra = objects.column<double>("ra");
    const auto& dec = objects.column<double>("dec");
    std::vector<double> pRa, pDec;
    for (auto r : rows) pRa.push_back(ra[r]), pDec.push_back(dec[r]);
    const SkyIndex index(pRa, pDec, duplicateRadius);
    SeamStats s;
    s.nPrimary = std::int64_t(rows.size());
    for (std::size_t i = 0; i < pRa.size(); ++i)
        for (std::int64_t j : index.within(pRa[i], pDec[i]))
            if (j > std::int64_t(i)) ++s.nDuplicatePairs;
    return s;
}

UniquenessStats truthUniqueness(const std::vector<double>& truthRa,
                                const std::vector<double>& truthDec,
                                const std::vector<double>& truthSn, const Table& primaries,
                                Angle radius, double snThreshold) {
    if (truthRa.size() != truthDec.size() || truthRa.size() != truthSn.size())
        throw badInput("truthUniqueness: truth columns have different lengths");
    const auto rows = primaryRows(primaries);
    const auto& ra = primaries.column<double>("ra");
    const auto& dec = primaries.column<double>("dec");
    std::vector<double> pRa, pDec;
    for (auto r : rows) pRa.push_back(ra[r]), pDec.push_back(dec[r]);
    // Each primary appears as the truth object nearest to it within the radius.
    const SkyIndex truthIndex(truthRa, truthDec, radius);
    std::vector<std::int64_t> appearances(truthRa.size(), 0);
    for (std::size_t k = 0; k < pRa.size(); ++k)
        if (const std::int64_t t = truthIndex.nearest(pRa[k], pDec[k]); t >= 0)
            ++appearances[std::size_t(t)];
    UniquenessStats s;
    for (std::size_t i = 0; i < truthRa.size(); ++i) {
        if (!(truthSn[i] >= snThreshold)) continue;
        ++s.nTruth;
        const auto n = appearances[i];
        if (n == 0)
            ++s.nMissing;
        else if (n == 1)
            ++s.nExactlyOnce;
        else
            ++s.nMultiple;
    }
    return s;
}

}  // namespace drp::validate
