#include "drp/calib/detection.h"

#include <algorithm>
#include <cmath>
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

// Correlate rows then columns with a symmetric 1-D kernel (half-size h); pixels beyond the edge
// contribute nothing (truncated kernel: numerator and variance stay consistent).
Image<float> separable(const Image<float>& in, const std::vector<float>& k) {
    const int w = in.width(), ht = in.height(), h = static_cast<int>(k.size() / 2);
    Image<float> tmp(in.bbox()), out(in.bbox());
    for (int j = 0; j < ht; ++j) {
        const float* src = in.row(j);
        float* dst = tmp.row(j);
        std::fill(dst, dst + w, 0.f);
        // Tap-major so that the inner loop is a contiguous multiply-add (vectorised); each tap
        // covers the output range whose input i + d lies inside the row.
        for (int d = -h; d <= h; ++d) {
            const float kd = k[d + h];
            const int i0 = std::max(0, -d), i1 = std::min(w, w - d);
            const float* s = src + d;
            for (int i = i0; i < i1; ++i) dst[i] += kd * s[i];
        }
    }
    std::vector<float> acc(w);
    for (int j = 0; j < ht; ++j) {
        std::fill(acc.begin(), acc.end(), 0.f);
        int lo = std::max(-h, -j), hi = std::min(h, ht - 1 - j);
        for (int d = lo; d <= hi; ++d) {
            const float* src = tmp.row(j + d);
            float kd = k[d + h];
            for (int i = 0; i < w; ++i) acc[i] += kd * src[i];
        }
        std::copy(acc.begin(), acc.end(), out.row(j));
    }
    return out;
}

MaskPixel bitsOf(const Mask& mask, const std::vector<std::string>& planes) {
    MaskPixel b = 0;
    for (const auto& p : planes)
        if (mask.planes().has(p)) b |= mask.planes().bit(p);
    return b;
}

}  // namespace

ImageF matchedFilterSignificance(const MaskedImage& mi, double psfSigma, double nSigmaForKernel,
                                 MaskPixel excludeBits) {
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
    Image<float> im(mi.bbox()), var(mi.bbox());
    for (int j = 0; j < mi.height(); ++j) {
        const float* a = mi.image().row(j);
        const float* v = mi.variance().row(j);
        const MaskPixel* m = mi.mask().image().row(j);
        float* ia = im.row(j);
        float* iv = var.row(j);
        for (int i = 0; i < mi.width(); ++i) {
            bool good =
                !(m[i] & excludeBits) && std::isfinite(a[i]) && std::isfinite(v[i]) && v[i] > 0;
            ia[i] = good ? a[i] : 0.f;
            iv[i] = good ? v[i] : 0.f;
        }
    }
    Image<float> s = separable(im, g);
    Image<float> sv = separable(var, g2);
    for (int j = 0; j < mi.height(); ++j) {
        float* out = s.row(j);
        const float* vv = sv.row(j);
        for (int i = 0; i < mi.width(); ++i) out[i] = vv[i] > 0 ? out[i] / std::sqrt(vv[i]) : 0.f;
    }
    return s;
}

std::vector<SpanSet> connectedComponents(ConstImageView<std::uint8_t> bin) {
    struct Run {
        int y, x0, x1;
    };
    std::vector<Run> runs;
    std::vector<int> parent;
    auto find = [&](int a) {
        while (parent[a] != a) a = parent[a] = parent[parent[a]];
        return a;
    };
    auto unite = [&](int a, int b) {
        a = find(a);
        b = find(b);
        if (a != b) parent[std::max(a, b)] = std::min(a, b);
    };
    std::size_t prevBegin = 0, prevEnd = 0;
    for (int j = 0; j < bin.height(); ++j) {
        std::size_t rowBegin = runs.size();
        const std::uint8_t* r = bin.row(j);
        int i = 0;
        while (i < bin.width()) {
            while (i < bin.width() && !r[i]) ++i;
            if (i >= bin.width()) break;
            int s = i;
            while (i < bin.width() && r[i]) ++i;
            int id = static_cast<int>(runs.size());
            runs.push_back({j, s, i - 1});
            parent.push_back(id);
            // 8-connectivity: runs of the previous row overlapping [s-1, i].
            for (std::size_t p = prevBegin; p < prevEnd; ++p)
                if (runs[p].x1 >= s - 1 && runs[p].x0 <= i) unite(id, static_cast<int>(p));
        }
        prevBegin = rowBegin;
        prevEnd = runs.size();
    }
    std::vector<int> compIndex(runs.size(), -1);
    std::vector<std::vector<Span>> comps;
    for (std::size_t k = 0; k < runs.size(); ++k) {
        int root = find(static_cast<int>(k));
        if (compIndex[root] < 0) {
            compIndex[root] = static_cast<int>(comps.size());
            comps.emplace_back();
        }
        comps[compIndex[root]].push_back(
            {runs[k].y + bin.xy0().y, runs[k].x0 + bin.xy0().x, runs[k].x1 + bin.xy0().x});
    }
    std::vector<SpanSet> out;
    out.reserve(comps.size());
    for (auto& c : comps) out.emplace_back(std::move(c));
    return out;
}

DetectionResult detectSources(MaskedImage& mi, double psfSigma, const DetectionConfig& config) {
    config.validate();
    if (!(psfSigma > 0)) throw badInput("detectSources: PSF sigma must be > 0");
    const Box2I box = mi.bbox();
    Mask& mask = mi.mask();
    const MaskPixel detected = mask.planes().bit("DETECTED");
    for (auto& p : mask.image().pixels()) p &= ~detected;
    ImageF sig = matchedFilterSignificance(mi, psfSigma, config.nSigmaForKernel,
                                           bitsOf(mask, config.excludedMaskPlanes));
    const float thr = static_cast<float>(config.thresholdSigma);
    Image<std::uint8_t> above(box, 0);
    for (std::size_t k = 0; k < above.pixels().size(); ++k)
        above.pixels()[k] = sig.pixels()[k] >= thr;
    std::vector<SpanSet> comps = connectedComponents(above.cview());

    // Peaks per component, and growth.
    const double includeThr = config.thresholdSigma * config.includeThresholdMultiplier;
    const int grow = static_cast<int>(std::lround(config.nSigmaToGrow * psfSigma));
    std::vector<Peak> peaks;
    Image<std::uint8_t> grown(box, 0);
    auto sigAt = [&](int x, int y) { return sig(x - box.minX(), y - box.minY()); };
    for (const SpanSet& c : comps) {
        if (c.area() < config.minPixels) continue;
        std::vector<Peak> local;
        float best = -1;
        for (const Span& s : c.spans())
            for (int x = s.x0; x <= s.x1; ++x) {
                float v = sigAt(x, s.y);
                best = std::max(best, v);
                bool isMax = true;
                for (int dy = -1; dy <= 1 && isMax; ++dy)
                    for (int dx = -1; dx <= 1; ++dx) {
                        if (!dx && !dy) continue;
                        int xx = x + dx, yy = s.y + dy;
                        if (!box.contains({xx, yy})) continue;
                        float u = sigAt(xx, yy);
                        // Strict against earlier neighbours, >= against later ones: one pixel
                        // per flat plateau.
                        bool earlier = dy < 0 || (dy == 0 && dx < 0);
                        if (earlier ? u >= v : u > v) {
                            isMax = false;
                            break;
                        }
                    }
                if (isMax) local.push_back({{x, s.y}, {double(x), double(s.y)}, v, v});
            }
        if (best < includeThr) continue;
        peaks.insert(peaks.end(), local.begin(), local.end());
        // Clamp the dilated spans by hand: SpanSet::clippedTo builds a span set of the whole
        // box, which costs O(image height) per footprint.
        const SpanSet grownSpans = c.dilated(grow);  // named: spans() is a reference
        for (const Span& s : grownSpans.spans()) {
            if (s.y < box.minY() || s.y > box.maxY()) continue;
            int x0 = std::max(s.x0, box.minX()), x1 = std::min(s.x1, box.maxX());
            if (x0 > x1) continue;
            std::fill(grown.row(s.y - box.minY()) + (x0 - box.minX()),
                      grown.row(s.y - box.minY()) + (x1 - box.minX()) + 1, std::uint8_t(1));
        }
    }
    std::vector<SpanSet> finals = connectedComponents(grown.cview());
    // Label image of the final footprints, to assign peaks.
    Image<std::int32_t> label(box, -1);
    for (std::size_t f = 0; f < finals.size(); ++f)
        for (const Span& s : finals[f].spans())
            std::fill(label.row(s.y - box.minY()) + (s.x0 - box.minX()),
                      label.row(s.y - box.minY()) + (s.x1 - box.minX()) + 1, std::int32_t(f));
    std::vector<std::vector<Peak>> fpPeaks(finals.size());
    for (const Peak& p : peaks) {
        int l = label(p.position.x - box.minX(), p.position.y - box.minY());
        if (l >= 0) fpPeaks[l].push_back(p);
    }
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
                // Lowest S/N on the segment to the nearest brighter peak (sampled per pixel).
                int n = static_cast<int>(std::ceil(dmin));
                double lowest = p.significance;
                for (int t = 1; t < n; ++t) {
                    double fx = p.position.x + (nearest->position.x - p.position.x) * double(t) / n;
                    double fy = p.position.y + (nearest->position.y - p.position.y) * double(t) / n;
                    lowest =
                        std::min(lowest, double(sigAt(int(std::lround(fx)), int(std::lround(fy)))));
                }
                if (p.significance - lowest < config.minPeakProminence) continue;
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
