// Cosmic-ray detection and repair; see detection.h for the criterion and its sources.
#include <algorithm>
#include <cmath>

#include "drp/calib/detection.h"
#include "drp/core/error.h"

namespace drp::calib {

void CosmicRayConfig::validate() const {
    auto fail = [](const std::string& what) { throw configError("CosmicRayConfig: " + what); };
    if (!(minSigma > 0)) fail("minSigma = " + std::to_string(minSigma) + " must be > 0");
    if (!(cond3Fac >= 0) || !(cond3Fac2 >= 0)) fail("cond3Fac and cond3Fac2 must be >= 0");
    if (minDirections < 1 || minDirections > 4)
        fail("minDirections = " + std::to_string(minDirections) + " must be in 1..4");
    if (growRadius < 0) fail("growRadius must be >= 0");
}

namespace {

// Interpolate masked pixels of one line (row or column) linearly between the nearest good
// pixels within `maxGap` on each side; returns NaN where no bracketing is possible.
void interpolateLine(const std::vector<float>& v, const std::vector<std::uint8_t>& bad, int maxGap,
                     std::vector<float>& out) {
    const int n = static_cast<int>(v.size());
    out.assign(n, NAN);
    for (int i = 0; i < n; ++i) {
        if (!bad[i]) continue;
        int l = i - 1, r = i + 1;
        while (l >= 0 && bad[l] && i - l <= maxGap) --l;
        while (r < n && bad[r] && r - i <= maxGap) ++r;
        bool hasL = l >= 0 && !bad[l] && i - l <= maxGap,
             hasR = r < n && !bad[r] && r - i <= maxGap;
        if (hasL && hasR)
            out[i] = v[l] + (v[r] - v[l]) * float(i - l) / float(r - l);
        else if (hasL)
            out[i] = v[l];
        else if (hasR)
            out[i] = v[r];
    }
}

}  // namespace

CosmicRayResult findAndRepairCosmicRays(MaskedImage& mi, ConstImageView<double> k,
                                        const CosmicRayConfig& config) {
    config.validate();
    if (k.width() < 3 || k.width() % 2 == 0 || k.height() != k.width())
        throw badInput("findAndRepairCosmicRays: PSF kernel must be square, odd and >= 3 pixels");
    const int c = k.width() / 2;
    // R_d: central pixel over the mean of its two neighbours in direction d.
    const int dirs[4][2] = {{1, 0}, {0, 1}, {1, 1}, {1, -1}};
    double ratio[4];
    for (int d = 0; d < 4; ++d) {
        double nb = 0.5 * (k(c + dirs[d][0], c + dirs[d][1]) + k(c - dirs[d][0], c - dirs[d][1]));
        if (!(nb > 0))
            throw badInput("findAndRepairCosmicRays: PSF kernel has no flux next to its centre");
        ratio[d] = k(c, c) / nb;
    }
    const int w = mi.width(), h = mi.height();
    Mask& mask = mi.mask();
    MaskPixel ignore = 0;
    for (const auto& p : config.ignoredMaskPlanes)
        if (mask.planes().has(p)) ignore |= mask.planes().bit(p);
    const MaskPixel crBit = mask.planes().bit("CR"), intrp = mask.planes().bit("INTRP");
    const ImageF& im = mi.image();
    const ImageF& var = mi.variance();
    Image<std::uint8_t> cand(mi.bbox(), 0);
    for (int j = 1; j + 1 < h; ++j)
        for (int i = 1; i + 1 < w; ++i) {
            float ic = im(i, j), vc = var(i, j);
            if (!(vc > 0) || !(ic > config.minValue) || (mask(i, j) & ignore)) continue;
            float sc = std::sqrt(vc);
            if (ic < config.minSigma * sc) continue;
            int sharp = 0;
            for (int d = 0; d < 4; ++d) {
                int ia = i + dirs[d][0], ja = j + dirs[d][1], ib = i - dirs[d][0],
                    jb = j - dirs[d][1];
                double mean = 0.5 * (im(ia, ja) + im(ib, jb));
                double sab = std::sqrt(std::max(0.0, 0.5 * (double(var(ia, ja)) + var(ib, jb))));
                if (ic - config.cond3Fac2 * sc > ratio[d] * (mean + config.cond3Fac * sab)) ++sharp;
            }
            if (sharp >= config.minDirections) cand(i, j) = 1;
        }
    CosmicRayResult result;
    std::vector<SpanSet> groups = connectedComponents(cand.cview());
    result.numCosmicRays = static_cast<int>(groups.size());
    if (groups.empty()) return result;
    // Grow (square of half-size growRadius) and flag.
    Image<std::uint8_t> bad(mi.bbox(), 0);
    const Box2I box = mi.bbox();
    const int g = config.growRadius;
    for (const SpanSet& s : groups)
        for (const Span& sp : s.spans())
            for (int y = sp.y - g; y <= sp.y + g; ++y) {
                if (y < box.minY() || y > box.maxY()) continue;
                int x0 = std::max(box.minX(), sp.x0 - g), x1 = std::min(box.maxX(), sp.x1 + g);
                for (int x = x0; x <= x1; ++x) bad(x - box.minX(), y - box.minY()) = 1;
            }
    // Repair: mean of the row and column linear interpolations (whichever exist).
    const int maxGap = 4 * g + 8;
    ImageF repaired = mi.image();
    std::vector<float> line, out;
    std::vector<std::uint8_t> lineBad;
    ImageF rowInterp(box, NAN);
    for (int j = 0; j < h; ++j) {
        line.assign(im.row(j), im.row(j) + w);
        lineBad.assign(bad.row(j), bad.row(j) + w);
        interpolateLine(line, lineBad, maxGap, out);
        std::copy(out.begin(), out.end(), rowInterp.row(j));
    }
    for (int i = 0; i < w; ++i) {
        line.resize(h);
        lineBad.resize(h);
        for (int j = 0; j < h; ++j) {
            line[j] = im(i, j);
            lineBad[j] = bad(i, j);
        }
        interpolateLine(line, lineBad, maxGap, out);
        for (int j = 0; j < h; ++j) {
            if (!bad(i, j)) continue;
            float a = rowInterp(i, j), b = out[j];
            float v = std::isfinite(a) && std::isfinite(b) ? 0.5f * (a + b)
                      : std::isfinite(a)                   ? a
                                                           : b;
            repaired(i, j) = std::isfinite(v) ? v : 0.f;  // background-subtracted: 0 is the sky
            mask(i, j) |= crBit | intrp;
            ++result.numPixels;
        }
    }
    mi.image() = std::move(repaired);
    return result;
}

}  // namespace drp::calib
