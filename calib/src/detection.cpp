#include "drp/calib/detection.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include <numeric>

#include "drp/core/error.h"

namespace drp::calib {

void DetectionConfig::validate() const {
    auto fail = [](const std::string& what) { throw configError("DetectionConfig: " + what); };
    if (!(thresholdSigma > 0))
        fail("thresholdSigma = " + std::to_string(thresholdSigma) + " must be > 0");
    if (!(includeThresholdMultiplier >= 1)) fail("includeThresholdMultiplier must be >= 1");
    if (!(nSigmaForKernel >= 2)) fail("nSigmaForKernel must be >= 2");
    if (!(nSigmaToGrow >= 0)) fail("nSigmaToGrow must be >= 0");
    if (minPixels < 1) fail("minPixels must be >= 1");
    if (!(minPeakSeparation >= 0)) fail("minPeakSeparation must be >= 0");
    if (!(minPeakProminence >= 0)) fail("minPeakProminence must be >= 0");
}

namespace {

MaskPixel bitsOf(const Mask& mask, const std::vector<std::string>& planes) {
    MaskPixel b = 0;
    for (const auto& p : planes)
        if (mask.planes().has(p)) b |= mask.planes().bit(p);
    return b;
}

// A horizontal run of pixels (array coordinates, x1 inclusive).
struct Run {
    int y, x0, x1;
};

// 8-connected components of runs sorted by (y, x0), each row's runs disjoint and separated by at
// least one pixel: union-find over the runs of consecutive rows. Returns the component index of
// every run, components numbered in the order of their first run, and their count.
int labelRuns(const std::vector<Run>& runs, std::vector<int>& label) {
    std::vector<int> parent(runs.size());
    auto find = [&](int a) {
        while (parent[a] != a) a = parent[a] = parent[parent[a]];
        return a;
    };
    std::size_t prevBegin = 0, prevEnd = 0, k = 0;
    while (k < runs.size()) {
        const int y = runs[k].y;
        const std::size_t rowBegin = k;
        if (prevEnd > prevBegin && runs[prevBegin].y != y - 1) prevBegin = prevEnd;  // gap row
        std::size_t p = prevBegin;
        for (; k < runs.size() && runs[k].y == y; ++k) {
            const int id = static_cast<int>(k);
            parent[k] = id;
            // Runs of the previous row overlapping [x0-1, x1+1]; both rows are sorted, so the scan
            // resumes where the previous run's left off.
            while (p < prevEnd && runs[p].x1 < runs[k].x0 - 1) ++p;
            for (std::size_t q = p; q < prevEnd && runs[q].x0 <= runs[k].x1 + 1; ++q) {
                int a = find(id), b = find(static_cast<int>(q));
                if (a != b) parent[std::max(a, b)] = std::min(a, b);
            }
        }
        prevBegin = rowBegin;
        prevEnd = k;
    }
    label.assign(runs.size(), -1);
    std::vector<int> compOfRoot(runs.size(), -1);
    int n = 0;
    for (std::size_t r = 0; r < runs.size(); ++r) {
        int root = find(static_cast<int>(r));
        if (compOfRoot[root] < 0) compOfRoot[root] = n++;
        label[r] = compOfRoot[root];
    }
    return n;
}

// Span sets (parent coordinates) of labelled runs.
std::vector<SpanSet> runsToSpanSets(const std::vector<Run>& runs, const std::vector<int>& label,
                                    int n, Point2I xy0) {
    std::vector<std::vector<Span>> comps(n);
    for (std::size_t k = 0; k < runs.size(); ++k)
        comps[label[k]].push_back({runs[k].y + xy0.y, runs[k].x0 + xy0.x, runs[k].x1 + xy0.x});
    std::vector<SpanSet> out;
    out.reserve(comps.size());
    for (auto& c : comps) out.emplace_back(std::move(c));
    return out;
}

// Appends the runs of row y where pred(row[i]) holds.
template <typename T, typename Pred>
void appendRuns(const T* row, int w, int y, Pred&& pred, std::vector<Run>& runs) {
    int i = 0;
    while (i < w) {
        while (i < w && !pred(row[i])) ++i;
        if (i >= w) break;
        const int s = i;
        while (i < w && pred(row[i])) ++i;
        runs.push_back({y, s, i - 1});
    }
}

}  // namespace

namespace {

// The matched filter's inner loops. The correlation has an AVX2 version (8-wide, chosen at run
// time when the CPU has AVX2) and a baseline version (x86-64: SSE2, 4-wide), so that the binary
// runs on any x86-64. Both do the same IEEE operations in the same order (multiply, then add; no
// FMA), so their results are bitwise identical. The simple loops are compiled for both targets
// by GCC function multi-versioning.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define DRP_X86_DISPATCH 1
#define DRP_MULTIVERSION __attribute__((target_clones("avx2", "default")))
#else
#define DRP_MULTIVERSION
#endif

// d[i] = Σ_t k[t] src[t][i] for i in [0, n), accumulated in tap order starting from 0.
void correlateScalar(const float* const* src, const float* k, int taps, float* d, int i, int n) {
    for (; i < n; ++i) {
        float acc = 0.f;
        for (int t = 0; t < taps; ++t) acc += k[t] * src[t][i];
        d[i] = acc;
    }
}

#ifdef DRP_X86_DISPATCH
// Blocks of 32 (AVX2) or 16 (SSE2) outputs keep four accumulators in registers across the taps.
__attribute__((target("avx2"))) void correlateAvx2(const float* const* src, const float* k,
                                                   int taps, float* d, int n) {
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int t = 0; t < taps; ++t) {
            const float* s = src[t] + i;
            const __m256 kt = _mm256_set1_ps(k[t]);
            a0 = _mm256_add_ps(a0, _mm256_mul_ps(kt, _mm256_loadu_ps(s)));
            a1 = _mm256_add_ps(a1, _mm256_mul_ps(kt, _mm256_loadu_ps(s + 8)));
            a2 = _mm256_add_ps(a2, _mm256_mul_ps(kt, _mm256_loadu_ps(s + 16)));
            a3 = _mm256_add_ps(a3, _mm256_mul_ps(kt, _mm256_loadu_ps(s + 24)));
        }
        _mm256_storeu_ps(d + i, a0);
        _mm256_storeu_ps(d + i + 8, a1);
        _mm256_storeu_ps(d + i + 16, a2);
        _mm256_storeu_ps(d + i + 24, a3);
    }
    correlateScalar(src, k, taps, d, i, n);
}

void correlateSse2(const float* const* src, const float* k, int taps, float* d, int n) {
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m128 a0 = _mm_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int t = 0; t < taps; ++t) {
            const float* s = src[t] + i;
            const __m128 kt = _mm_set1_ps(k[t]);
            a0 = _mm_add_ps(a0, _mm_mul_ps(kt, _mm_loadu_ps(s)));
            a1 = _mm_add_ps(a1, _mm_mul_ps(kt, _mm_loadu_ps(s + 4)));
            a2 = _mm_add_ps(a2, _mm_mul_ps(kt, _mm_loadu_ps(s + 8)));
            a3 = _mm_add_ps(a3, _mm_mul_ps(kt, _mm_loadu_ps(s + 12)));
        }
        _mm_storeu_ps(d + i, a0);
        _mm_storeu_ps(d + i + 4, a1);
        _mm_storeu_ps(d + i + 8, a2);
        _mm_storeu_ps(d + i + 12, a3);
    }
    correlateScalar(src, k, taps, d, i, n);
}
#endif

void correlate(const float* const* src, const float* k, int taps, float* d, int n) {
#ifdef DRP_X86_DISPATCH
    static const bool avx2 = __builtin_cpu_supports("avx2");
    if (avx2)
        correlateAvx2(src, k, taps, d, n);
    else
        correlateSse2(src, k, taps, d, n);
#else
    correlateScalar(src, k, taps, d, 0, n);
#endif
}

// Zero the image and variance of excluded or invalid pixels.
DRP_MULTIVERSION void maskedRow(const float* a, const float* v, const MaskPixel* m,
                                MaskPixel exclude, float* pa, float* pv, int n) {
    for (int i = 0; i < n; ++i) {
        const bool good =
            !(m[i] & exclude) && std::isfinite(a[i]) && std::isfinite(v[i]) && v[i] > 0;
        pa[i] = good ? a[i] : 0.f;
        pv[i] = good ? v[i] : 0.f;
    }
}

// out = num / √var where var > 0, else 0 (vectorised by hand: std::sqrt's errno semantics keep
// the compiler from doing it; _mm_sqrt_ps and _mm_div_ps are correctly rounded like the scalar
// operations).
void significanceRowScalar(const float* num, const float* var, float* out, int i, int n) {
    for (; i < n; ++i) out[i] = var[i] > 0 ? num[i] / std::sqrt(var[i]) : 0.f;
}

#ifdef DRP_X86_DISPATCH
__attribute__((target("avx2"))) void significanceRowAvx2(const float* num, const float* var,
                                                         float* out, int n) {
    int i = 0;
    const __m256 zero = _mm256_setzero_ps();
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(var + i);
        const __m256 pos = _mm256_cmp_ps(v, zero, _CMP_GT_OQ);
        const __m256 q = _mm256_div_ps(_mm256_loadu_ps(num + i), _mm256_sqrt_ps(v));
        _mm256_storeu_ps(out + i, _mm256_and_ps(pos, q));
    }
    significanceRowScalar(num, var, out, i, n);
}

void significanceRowSse2(const float* num, const float* var, float* out, int n) {
    int i = 0;
    const __m128 zero = _mm_setzero_ps();
    for (; i + 4 <= n; i += 4) {
        const __m128 v = _mm_loadu_ps(var + i);
        const __m128 pos = _mm_cmpgt_ps(v, zero);
        const __m128 q = _mm_div_ps(_mm_loadu_ps(num + i), _mm_sqrt_ps(v));
        _mm_storeu_ps(out + i, _mm_and_ps(pos, q));
    }
    significanceRowScalar(num, var, out, i, n);
}
#endif

void significanceRow(const float* num, const float* var, float* out, int n) {
#ifdef DRP_X86_DISPATCH
    static const bool avx2 = __builtin_cpu_supports("avx2");
    if (avx2)
        significanceRowAvx2(num, var, out, n);
    else
        significanceRowSse2(num, var, out, n);
#else
    significanceRowScalar(num, var, out, 0, n);
#endif
}

}  // namespace

ImageF matchedFilterSignificance(const MaskedImage& mi, double psfSigma, double nSigmaForKernel,
                                 MaskPixel excludeBits, ImageF* smoothed) {
    if (!(psfSigma > 0)) throw badInput("matchedFilterSignificance: PSF sigma must be > 0");
    // LSST: kernel width = nSigmaForKernel·σ rounded up to odd.
    int width = static_cast<int>(std::ceil(nSigmaForKernel * psfSigma)) | 1;
    int h = width / 2;
    std::vector<float> g(2 * h + 1), g2(2 * h + 1);
    double sum = 0;
    for (int d = -h; d <= h; ++d)
        sum += g[d + h] = float(std::exp(-0.5 * d * d / (psfSigma * psfSigma)));
    for (int d = -h; d <= h; ++d) {
        g[d + h] = float(g[d + h] / sum);
        g2[d + h] = g[d + h] * g[d + h];
    }
    // Separable correlation, rows then columns, streamed: the row-correlated image and variance
    // live in a ring of 2h + 1 rows, so that the only full-size buffer is the output. Pixels
    // beyond the edge contribute nothing (truncated kernel: numerator and variance stay
    // consistent; along rows the input is zero-padded, along columns the taps are cut).
    const int w = mi.width(), ht = mi.height(), ring = 2 * h + 1;
    ImageF out(mi.bbox());
    if (smoothed) *smoothed = ImageF(mi.bbox());
    std::vector<float> ringI(std::size_t(ring) * w), ringV(std::size_t(ring) * w);
    std::vector<float> ia(w + 2 * h, 0.f), iv(w + 2 * h, 0.f);  // masked input row, padded
    std::vector<float> accI(w), accV(w);
    std::vector<const float*> srcI(ring), srcV(ring);
    auto rowPass = [&](int j) {
        maskedRow(mi.image().row(j), mi.variance().row(j), mi.mask().image().row(j), excludeBits,
                  ia.data() + h, iv.data() + h, w);
        for (int t = 0; t < ring; ++t) {
            srcI[t] = ia.data() + t;
            srcV[t] = iv.data() + t;
        }
        correlate(srcI.data(), g.data(), ring, ringI.data() + std::size_t(j % ring) * w, w);
        correlate(srcV.data(), g2.data(), ring, ringV.data() + std::size_t(j % ring) * w, w);
    };
    int done = 0;  // rows correlated so far
    for (int j = 0; j < ht; ++j) {
        const int lo = std::max(-h, -j), hi = std::min(h, ht - 1 - j);
        for (; done <= j + hi; ++done) rowPass(done);
        for (int d = lo; d <= hi; ++d) {
            srcI[d - lo] = ringI.data() + std::size_t((j + d) % ring) * w;
            srcV[d - lo] = ringV.data() + std::size_t((j + d) % ring) * w;
        }
        correlate(srcI.data(), g.data() + (lo + h), hi - lo + 1, accI.data(), w);
        correlate(srcV.data(), g2.data() + (lo + h), hi - lo + 1, accV.data(), w);
        significanceRow(accI.data(), accV.data(), out.row(j), w);
        if (smoothed) std::copy(accI.begin(), accI.end(), smoothed->row(j));
    }
    return out;
}

std::vector<SpanSet> connectedComponents(ConstImageView<std::uint8_t> bin) {
    std::vector<Run> runs;
    for (int j = 0; j < bin.height(); ++j)
        appendRuns(
            bin.row(j), bin.width(), j, [](std::uint8_t v) { return v != 0; }, runs);
    std::vector<int> label;
    int n = labelRuns(runs, label);
    return runsToSpanSets(runs, label, n, bin.xy0());
}

DetectionResult detectSources(MaskedImage& mi, double psfSigma, const DetectionConfig& config) {
    config.validate();
    if (!(psfSigma > 0)) throw badInput("detectSources: PSF sigma must be > 0");
    const Box2I box = mi.bbox();
    Mask& mask = mi.mask();
    const MaskPixel detected = mask.planes().bit("DETECTED");
    for (auto& p : mask.image().pixels()) p &= ~detected;
    ImageF smooth;  // K ⋆ I: the peaks' dips are measured on it (detection.h)
    ImageF sig = matchedFilterSignificance(mi, psfSigma, config.nSigmaForKernel,
                                           bitsOf(mask, config.excludedMaskPlanes), &smooth);
    const float thr = static_cast<float>(config.thresholdSigma);
    const int w = box.width(), ht = box.height();
    std::vector<Run> aboveRuns;
    for (int j = 0; j < ht; ++j)
        appendRuns(
            sig.row(j), w, j, [thr](float v) { return v >= thr; }, aboveRuns);
    std::vector<int> aboveLabel;
    const int nComps = labelRuns(aboveRuns, aboveLabel);
    std::vector<std::vector<Run>> comps(nComps);
    for (std::size_t k = 0; k < aboveRuns.size(); ++k) comps[aboveLabel[k]].push_back(aboveRuns[k]);

    // Peaks per component, and growth (array coordinates until the footprints are built).
    const double includeThr = config.thresholdSigma * config.includeThresholdMultiplier;
    const int grow = static_cast<int>(std::lround(config.nSigmaToGrow * psfSigma));
    std::vector<Peak> peaks;
    std::vector<Span> grownSpans;
    std::vector<Span> compSpans;
    for (const std::vector<Run>& c : comps) {
        std::int64_t area = 0;
        for (const Run& r : c) area += r.x1 - r.x0 + 1;
        if (area < config.minPixels) continue;
        const std::size_t firstPeak = peaks.size();
        float best = -1;
        for (const Run& r : c) {
            const float* above = r.y > 0 ? sig.row(r.y - 1) : nullptr;
            const float* here = sig.row(r.y);
            const float* below = r.y + 1 < ht ? sig.row(r.y + 1) : nullptr;
            for (int x = r.x0; x <= r.x1; ++x) {
                const float v = here[x];
                best = std::max(best, v);
                // Strict against earlier neighbours, >= against later ones: one pixel per flat
                // plateau. Neighbours outside the image do not count.
                const bool hasL = x > 0, hasR = x + 1 < w;
                bool isMax = !(hasL && here[x - 1] >= v) && !(hasR && here[x + 1] > v);
                if (isMax && above)
                    isMax = !(hasL && above[x - 1] >= v) && !(above[x] >= v) &&
                            !(hasR && above[x + 1] >= v);
                if (isMax && below)
                    isMax = !(hasL && below[x - 1] > v) && !(below[x] > v) &&
                            !(hasR && below[x + 1] > v);
                if (isMax) {
                    const Point2I p{x + box.minX(), r.y + box.minY()};
                    peaks.push_back({p, {double(p.x), double(p.y)}, v, v});
                }
            }
        }
        if (best < includeThr) {
            peaks.resize(firstPeak);
            continue;
        }
        compSpans.clear();
        for (const Run& r : c) compSpans.push_back({r.y, r.x0, r.x1});
        const SpanSet grownComp = SpanSet(compSpans).dilated(grow);  // named: spans() is a ref
        for (const Span& sp : grownComp.spans()) {
            if (sp.y < 0 || sp.y >= ht) continue;
            const int x0 = std::max(sp.x0, 0), x1 = std::min(sp.x1, w - 1);
            if (x0 <= x1) grownSpans.push_back({sp.y, x0, x1});
        }
    }
    // The grown footprints: the union of the grown components (sorted and merged where they
    // touch or overlap, so that each row's runs are maximal), labelled again.
    std::vector<Run> grownRuns;
    const SpanSet grownSet(std::move(grownSpans));  // named: spans() is a reference
    for (const Span& sp : grownSet.spans()) grownRuns.push_back({sp.y, sp.x0, sp.x1});
    std::vector<int> grownLabel;
    const int nFinal = labelRuns(grownRuns, grownLabel);
    std::vector<SpanSet> finals = runsToSpanSets(grownRuns, grownLabel, nFinal, box.min());
    // Peaks to footprints: the run containing the peak (runs are sorted by (y, x0)).
    std::vector<std::vector<Peak>> fpPeaks(finals.size());
    for (const Peak& p : peaks) {
        const Run key{p.position.y - box.minY(), p.position.x - box.minX(), 0};
        auto it = std::upper_bound(
            grownRuns.begin(), grownRuns.end(), key,
            [](const Run& a, const Run& b) { return a.y != b.y ? a.y < b.y : a.x0 < b.x0; });
        if (it == grownRuns.begin()) continue;
        --it;
        if (it->y == key.y && key.x0 <= it->x1)
            fpPeaks[grownLabel[it - grownRuns.begin()]].push_back(p);
    }
    auto sigAt = [&](int x, int y) { return sig(x - box.minX(), y - box.minY()); };
    auto smoothAt = [&](int x, int y) { return smooth(x - box.minX(), y - box.minY()); };
    DetectionResult result;
    result.psfSigma = psfSigma;
    for (std::size_t f = 0; f < finals.size(); ++f) {
        auto& pk = fpPeaks[f];
        if (pk.empty()) continue;
        std::stable_sort(pk.begin(), pk.end(), [](const Peak& a, const Peak& b) {
            return a.significance > b.significance;
        });
        std::vector<Peak> kept;
        for (const Peak& p : pk) {
            const Peak* nearest = nullptr;
            double dmin = 1e300;
            for (const Peak& q : kept) {
                double d = std::hypot(p.position.x - q.position.x, p.position.y - q.position.y);
                if (d < dmin) {
                    dmin = d;
                    nearest = &q;
                }
            }
            if (nearest) {
                if (dmin < config.minPeakSeparation) continue;
                // The dip to the nearest brighter peak: the lowest smoothed value on the segment
                // (sampled per pixel) below the peak's, in units of its σ there.
                const int n = static_cast<int>(std::ceil(dmin));
                const double top = smoothAt(p.position.x, p.position.y);
                double lowest = top, lowestSnr = p.significance;
                for (int t = 1; t < n; ++t) {
                    const int x = int(std::lround(
                        p.position.x + (nearest->position.x - p.position.x) * double(t) / n));
                    const int y = int(std::lround(
                        p.position.y + (nearest->position.y - p.position.y) * double(t) / n));
                    if (smoothAt(x, y) < lowest) {
                        lowest = smoothAt(x, y);
                        lowestSnr = sigAt(x, y);
                    }
                }
                // σ at the dip = S / (S/N); none where the S/N is zero (no variance: excluded
                // pixels, which separate the peaks).
                const double sigma = lowestSnr != 0 ? lowest / lowestSnr : 0.0;
                if (sigma > 0 && (top - lowest) / sigma < config.minPeakProminence) continue;
            }
            kept.push_back(p);
        }
        result.numPeaks += kept.size();
        for (const Span& s : finals[f].spans()) {
            MaskPixel* row = mask.image().row(s.y - box.minY());
            for (int x = s.x0; x <= s.x1; ++x) row[x - box.minX()] |= detected;
        }
        result.footprints.emplace_back(finals[f], std::move(kept));
    }
    return result;
}

Image<double> gaussianKernel(double sigma, int radius) {
    if (!(sigma > 0)) throw badInput("gaussianKernel: sigma must be > 0");
    int r = radius > 0 ? radius : static_cast<int>(std::ceil(4 * sigma));
    // Pixel-integrated 1-D profile: ∫ over [d-½, d+½] of the Gaussian (erf differences).
    std::vector<double> g(2 * r + 1);
    double s2 = std::sqrt(2.0) * sigma, sum = 0;
    for (int d = -r; d <= r; ++d)
        sum += g[d + r] = 0.5 * (std::erf((d + 0.5) / s2) - std::erf((d - 0.5) / s2));
    Image<double> k(Box2I({-r, -r}, {2 * r + 1, 2 * r + 1}));
    for (int j = 0; j <= 2 * r; ++j)
        for (int i = 0; i <= 2 * r; ++i) k(i, j) = g[i] * g[j] / (sum * sum);
    return k;
}

}  // namespace drp::calib
