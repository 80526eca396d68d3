#include "drp/coadd/assemble.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <sstream>

#include "drp/core/error.h"

namespace drp::coadd {

void AssembleConfig::validate() const {
    auto fail = [](const std::string& field, double v, const std::string& rule) {
        throw configError("AssembleConfig." + field + " = " + std::to_string(v) + ": must be " +
                          rule);
    };
    if (!(weightClipSigma > 0)) fail("weightClipSigma", weightClipSigma, "> 0");
    if (weightClipIterations < 0) fail("weightClipIterations", weightClipIterations, ">= 0");
    if (!(outlierSigma > 0)) fail("outlierSigma", outlierSigma, "> 0");
    if (!(growSigma > 0 && growSigma <= outlierSigma))
        fail("growSigma", growSigma, "in (0, outlierSigma]");
    if (!(outlierAmplitudeFraction >= 0))
        fail("outlierAmplitudeFraction", outlierAmplitudeFraction, ">= 0");
    if (minOutlierPixels < 1) fail("minOutlierPixels", minOutlierPixels, ">= 1");
    if (minEpochsForClipping < 3) fail("minEpochsForClipping", minEpochsForClipping, ">= 3");
    if (!(streakMinLength > 0)) fail("streakMinLength", streakMinLength, "> 0");
    if (!(faintStreakSigma >= 0)) fail("faintStreakSigma", faintStreakSigma, ">= 0 (0: off)");
    if (faintStreakBin < 2) fail("faintStreakBin", faintStreakBin, ">= 2");
    if (!(faintStreakMinLength > 0)) fail("faintStreakMinLength", faintStreakMinLength, "> 0");
    if (!(faintStreakHalfWidth > 0)) fail("faintStreakHalfWidth", faintStreakHalfWidth, "> 0");
    if (!(streakMaxAxisRatio > 0 && streakMaxAxisRatio <= 1))
        fail("streakMaxAxisRatio", streakMaxAxisRatio, "in (0, 1]");
    if (!(spatialThreshold > 0 && spatialThreshold <= 1))
        fail("spatialThreshold", spatialThreshold, "in (0, 1]");
    if (clipGrow < 0) fail("clipGrow", clipGrow, ">= 0");
    if (brightSourceGrow < 0) fail("brightSourceGrow", brightSourceGrow, ">= 0");
    if (!(brightSourceSigma > outlierSigma))
        fail("brightSourceSigma", brightSourceSigma, "> outlierSigma");
    if (!(maskPropagationThreshold > 0 && maskPropagationThreshold <= 1))
        fail("maskPropagationThreshold", maskPropagationThreshold, "in (0, 1]");
    if (inexactPsfRadius < 0) fail("inexactPsfRadius", inexactPsfRadius, ">= 0");
    if (!(protectedSeedFactor >= 1)) fail("protectedSeedFactor", protectedSeedFactor, ">= 1");
    if (!(protectedCoreFraction > 0 && protectedCoreFraction < 1))
        fail("protectedCoreFraction", protectedCoreFraction, "in (0, 1)");
    if (maxProtectedArtifactArea < 0)
        fail("maxProtectedArtifactArea", maxProtectedArtifactArea, ">= 0");
}

namespace {

std::string inputName(const InputId& id) {
    std::ostringstream os;
    os << "input visit " << id.visit << " detector " << id.detector;
    return os.str();
}

// One warp restricted to the patch.
struct Work {
    const Warp* warp;
    std::size_t index = 0;  // in the caller's warp list
    Box2I box;              // warp bbox ∩ patch
    double weight = 0, meanVar = 0, factor = 1;
    Image<std::uint8_t> outlier;  // over box (findArtifacts)
};

// 3σ-clipped mean of the unmasked variance pixels of a warp over `box`, streamed (no copy): each
// iteration re-reads the plane and sums the values inside the previous iteration's bounds.
double clippedMeanVariance(const Warp& w, const Box2I& box, MaskPixel bad, double nsig, int iters) {
    const auto& mi = w.maskedImage;
    double lo = -std::numeric_limits<double>::infinity(),
           hi = std::numeric_limits<double>::infinity();
    double mean = 0;
    for (int it = 0; it <= iters; ++it) {
        double s = 0, s2 = 0;
        std::size_t n = 0;
        for (int y = box.minY(); y <= box.maxY(); ++y) {
            const int j = y - mi.bbox().minY();
            const float* var = mi.variance().row(j) + (box.minX() - mi.bbox().minX());
            const MaskPixel* m = mi.mask().image().row(j) + (box.minX() - mi.bbox().minX());
            for (int i = 0; i < box.width(); ++i) {
                if (m[i] & bad) continue;
                const double x = var[i];
                if (x >= lo && x <= hi) {
                    s += x;
                    s2 += x * x;
                    ++n;
                }
            }
        }
        if (n == 0) {
            if (it == 0) return 0;  // no unmasked pixel
            break;
        }
        mean = s / n;
        double sd = std::sqrt(std::max(0.0, s2 / n - mean * mean));
        lo = mean - nsig * sd;
        hi = mean + nsig * sd;
    }
    return mean;
}

// 8-connected components of the pixels of `box` where on(x, y) (parent coordinates) is true;
// calls f(vector<Point2I>) per region. `seen` (over a box containing `box`) must be all zero; it
// is left all zero, so that one buffer serves many calls.
template <typename On, typename F>
void forEachRegion(const Box2I& box, On&& on, Image<std::uint8_t>& seen, F&& f) {
    std::vector<Point2I> stack, region, all;
    auto mark = [&](int x, int y) -> std::uint8_t& {
        return seen(x - seen.xy0().x, y - seen.xy0().y);
    };
    for (int y = box.minY(); y <= box.maxY(); ++y)
        for (int x = box.minX(); x <= box.maxX(); ++x) {
            if (!on(x, y) || mark(x, y)) continue;
            region.clear();
            stack.push_back({x, y});
            mark(x, y) = 1;
            while (!stack.empty()) {
                Point2I p = stack.back();
                stack.pop_back();
                region.push_back(p);
                for (int dy = -1; dy <= 1; ++dy)
                    for (int dx = -1; dx <= 1; ++dx) {
                        const int xx = p.x + dx, yy = p.y + dy;
                        if (xx < box.minX() || yy < box.minY() || xx > box.maxX() ||
                            yy > box.maxY() || mark(xx, yy) || !on(xx, yy))
                            continue;
                        mark(xx, yy) = 1;
                        stack.push_back({xx, yy});
                    }
            }
            f(region);
            all.insert(all.end(), region.begin(), region.end());
        }
    for (const Point2I& p : all) mark(p.x, p.y) = 0;  // marks must last the whole scan
}
// True where the (2r+1)² window (clipped to the image) around a pixel holds more than one value
// of `h`. O(1) per pixel: a window is constant iff the horizontal window of each of its rows is
// constant and the centre column is constant over its rows. Horizontal: prefix counts of the
// changes h(i) ≠ h(i+1) along each row; vertical: counts over the window's rows, updated as the
// window slides down.
Image<std::uint8_t> varies(const Image<std::uint64_t>& h, int r) {
    const int w = h.width(), ht = h.height();
    Image<std::uint8_t> rowVaries(h.bbox(), 0);
    std::vector<int> pref(w);
    for (int j = 0; j < ht; ++j) {
        const std::uint64_t* row = h.row(j);
        pref[0] = 0;  // pref[k]: changes between neighbours (m, m + 1) with m < k
        for (int k = 1; k < w; ++k) pref[k] = pref[k - 1] + (row[k - 1] != row[k]);
        std::uint8_t* o = rowVaries.row(j);
        for (int i = 0; i < w; ++i) o[i] = pref[std::min(w - 1, i + r)] > pref[std::max(0, i - r)];
    }
    Image<std::uint8_t> out(h.bbox(), 0);
    std::vector<int> rowsVarying(w, 0), columnChanges(w, 0);
    // Window rows [a, b]: rowsVarying sums rowVaries over them, columnChanges counts
    // h(., k) ≠ h(., k + 1) for k in [a, b - 1].
    auto addChanges = [&](int k, int sign) {
        const std::uint64_t *r0 = h.row(k), *r1 = h.row(k + 1);
        for (int i = 0; i < w; ++i) columnChanges[i] += sign * (r0[i] != r1[i]);
    };
    auto addRow = [&](int k, int sign) {
        const std::uint8_t* v = rowVaries.row(k);
        for (int i = 0; i < w; ++i) rowsVarying[i] += sign * v[i];
    };
    int a = 0, b = -1;
    for (int j = 0; j < ht; ++j) {
        const int na = std::max(0, j - r), nb = std::min(ht - 1, j + r);
        while (b < nb) {
            ++b;
            addRow(b, 1);
            if (b - 1 >= a) addChanges(b - 1, 1);
        }
        while (a < na) {
            addRow(a, -1);
            if (a <= b - 1) addChanges(a, -1);
            ++a;
        }
        std::uint8_t* o = out.row(j);
        for (int i = 0; i < w; ++i) o[i] = (rowsVarying[i] | columnChanges[i]) != 0;
    }
    return out;
}

// Median of v[0 .. c-1] (reordered); the mean of the two middle values for even c. Up to 8 values
// (the usual number of epochs per pixel): padded with +inf and sorted by the optimal 19-comparator
// network, branch-free (a data-dependent sort mispredicts on every pixel); `v` must hold 8.
double medianOf(float* v, std::size_t c) {
    if (c > 8) {
        std::nth_element(v, v + c / 2, v + c);
        double m = v[c / 2];
        if (c % 2 == 0) m = 0.5 * (m + *std::max_element(v, v + c / 2));
        return m;
    }
    for (std::size_t q = c; q < 8; ++q) v[q] = std::numeric_limits<float>::infinity();
    auto cx = [v](int i, int j) {
        const float a = v[i], b = v[j];
        v[i] = std::min(a, b);
        v[j] = std::max(a, b);
    };
    cx(0, 2), cx(1, 3), cx(4, 6), cx(5, 7);
    cx(0, 4), cx(1, 5), cx(2, 6), cx(3, 7);
    cx(0, 1), cx(2, 3), cx(4, 5), cx(6, 7);
    cx(2, 4), cx(3, 5);
    cx(1, 4), cx(3, 6);
    cx(1, 2), cx(3, 4), cx(5, 6);
    double m = v[c / 2];
    if (c % 2 == 0) m = 0.5 * (m + v[c / 2 - 1]);
    return m;
}

std::uint64_t inputKey(std::size_t i) {  // splitmix64: order-independent set hash by summing
    std::uint64_t z = (i + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

}  // namespace

void checkWarp(const Warp& w) {
    const std::string name = inputName(w.id);
    const auto& mi = w.maskedImage;
    if (mi.bbox().empty()) throw badInput(name + ": warp is empty (missing input?)");
    if (!(mi.mask().bbox() == mi.bbox()) || !(mi.variance().bbox() == mi.bbox()))
        throw badInput(name + ": warp planes have different bounding boxes");
    if (!w.psf) throw badInput(name + ": warp has no PSF");
    if (!mi.mask().planes().has("NO_DATA"))
        throw badInput(name + ": warp mask has no NO_DATA plane");
    if (!(std::isfinite(w.noiseCorrelationFactor) && w.noiseCorrelationFactor > 0))
        throw badInput(name + ": invalid noise-correlation factor");
    const MaskPixel noData = mi.mask().planes().bit("NO_DATA");
    std::int64_t bad = 0;
    for (int j = 0; j < mi.height(); ++j) {
        const float* im = mi.image().row(j);
        const float* vr = mi.variance().row(j);
        const MaskPixel* m = mi.mask().image().row(j);
        for (int i = 0; i < mi.width(); ++i) {
            // v − v is 0 for finite v and NaN otherwise; !(var >= 0) catches NaN and negatives.
            const bool badPixel = !(im[i] - im[i] == 0) || !(vr[i] - vr[i] == 0) || !(vr[i] >= 0);
            bad += badPixel && !(m[i] & noData);
        }
    }
    if (bad > 0)
        throw badInput(
            name + ": " + std::to_string(bad) +
            " warp pixels with data have non-finite values or invalid variances (corrupt warp)");
}

namespace {

struct Prepared {
    std::vector<Work> work;
    MaskPlanes planes;
    MaskPixel noData = 0, badBits = 0;
};

// Validate the inputs and keep those with data in the patch, with their weights.
Prepared prepare(const std::vector<Warp>& warps, const Box2I& patch, const AssembleConfig& config) {
    config.validate();
    if (patch.empty()) throw logicError("assembleCoadd: empty patch box");
    if (warps.empty()) throw Error("no_inputs", "no input warps overlap the patch");

    Prepared out;
    const MaskPlanes& planes = out.planes = warps.front().maskedImage.mask().planes();
    for (const Warp& w : warps) {
        checkWarp(w);
        if (!(w.maskedImage.mask().planes() == planes))
            throw badInput(inputName(w.id) + ": mask planes differ from the other inputs");
    }
    out.noData = planes.bit("NO_DATA");
    MaskPixel& badBits = out.badBits;
    for (const auto& p : config.badMaskPlanes)
        if (planes.has(p)) badBits |= planes.bit(p);

    // Inputs with data in the patch, and their weights.
    std::vector<Work>& work = out.work;
    for (std::size_t index = 0; index < warps.size(); ++index) {
        const Warp& w = warps[index];
        Box2I b = w.maskedImage.bbox().clippedTo(patch);
        if (b.empty()) continue;
        Work k;
        k.warp = &w;
        k.index = index;
        k.box = b;
        k.factor = w.noiseCorrelationFactor;
        k.meanVar =
            clippedMeanVariance(w, b, badBits, config.weightClipSigma, config.weightClipIterations);
        if (k.meanVar == 0) {
            // No unmasked pixel in the patch; a positive-definite variance is required otherwise.
            bool any = false;
            for (int y = b.minY(); y <= b.maxY() && !any; ++y)
                for (int x = b.minX(); x <= b.maxX(); ++x)
                    if (!(w.maskedImage.mask().image().at({x, y}) & badBits)) {
                        any = true;
                        break;
                    }
            if (!any) continue;
            throw badInput(inputName(w.id) + ": warp variance is zero on every valid pixel");
        }
        k.weight = 1.0 / (k.factor * k.meanVar);
        work.push_back(std::move(k));
    }
    if (work.empty()) {
        std::ostringstream os;
        os << "none of the " << warps.size() << " input warps has data in the patch box ["
           << patch.min() << " .. " << patch.max() << "]";
        throw Error("no_inputs", os.str());
    }
    return out;
}

// Row y of a warp over its box ∩ patch (k.box): pointers to the first pixel of the box's x range;
// null pointers when y is outside the box.
struct WarpRow {
    const float* v = nullptr;
    const float* var = nullptr;
    const MaskPixel* m = nullptr;
    int x0 = 0, x1 = -1;
    bool covers(int x) const { return x >= x0 && x <= x1; }
};

WarpRow warpRow(const Work& k, int y) {
    WarpRow r;
    if (y < k.box.minY() || y > k.box.maxY()) return r;
    const auto& mi = k.warp->maskedImage;
    const int j = y - mi.bbox().minY(), o = k.box.minX() - mi.bbox().minX();
    r.v = mi.image().row(j) + o;
    r.var = mi.variance().row(j) + o;
    r.m = mi.mask().image().row(j) + o;
    r.x0 = k.box.minX();
    r.x1 = k.box.maxX();
    return r;
}

}  // namespace

namespace {

// Centroid, unit direction and the RMS along and across the principal axis of a set of pixels.
struct LineFit {
    double cx = 0, cy = 0, ux = 1, uy = 0, alongRms = 0, perpRms = 0;
    double perp(Point2I p) const { return -(p.x - cx) * uy + (p.y - cy) * ux; }
};
LineFit fitLine(const std::vector<Point2I>& pts) {
    LineFit f;
    const double n = double(pts.size());
    for (const Point2I& p : pts) f.cx += p.x, f.cy += p.y;
    f.cx /= n, f.cy /= n;
    double sxx = 0, syy = 0, sxy = 0;
    for (const Point2I& p : pts) {
        const double dx = p.x - f.cx, dy = p.y - f.cy;
        sxx += dx * dx, syy += dy * dy, sxy += dx * dy;
    }
    const double th = 0.5 * std::atan2(2 * sxy, sxx - syy);
    f.ux = std::cos(th), f.uy = std::sin(th);
    double a2 = 0, p2 = 0;
    for (const Point2I& p : pts) {
        const double a = (p.x - f.cx) * f.ux + (p.y - f.cy) * f.uy, q = f.perp(p);
        a2 += a * a, p2 += q * q;
    }
    f.alongRms = std::sqrt(a2 / n), f.perpRms = std::sqrt(p2 / n);
    return f;
}

// A long, thin region: principal-axis length (of a uniform segment with the same second
// moment, sqrt(12) × the RMS along the axis) at least streakMinLength and width/length ratio
// (RMS across / RMS along) at most streakMaxAxisRatio.
bool isStreak(const std::vector<Point2I>& region, const AssembleConfig& config) {
    if (double(region.size()) < config.streakMinLength) return false;
    const LineFit f = fitLine(region);
    return std::sqrt(12.0) * f.alongRms >= config.streakMinLength &&
           f.perpRms <= config.streakMaxAxisRatio * f.alongRms;
}

// The band of a streak across `box`: the line through `piece`, refitted twice to the warp's
// outlier pixels (above the growth threshold) within 8 then 4 px of it, and every pixel within
// max(2, 3 × their perpendicular RMS) px of the final line.
std::vector<Point2I> streakBand(const std::vector<Point2I>& piece, const Box2I& box,
                                const Image<std::uint8_t>& outlier) {
    LineFit line = fitLine(piece);
    for (const double halfWidth : {8.0, 4.0}) {
        std::vector<Point2I> near;
        for (int y = box.minY(); y <= box.maxY(); ++y)
            for (int x = box.minX(); x <= box.maxX(); ++x)
                if (outlier.at({x, y}) && std::abs(line.perp({x, y})) <= halfWidth)
                    near.push_back({x, y});
        if (near.size() < piece.size()) break;
        line = fitLine(near);
    }
    const double halfWidth = std::max(2.0, 3 * line.perpRms);
    std::vector<Point2I> band;
    for (int y = box.minY(); y <= box.maxY(); ++y)
        for (int x = box.minX(); x <= box.maxX(); ++x)
            if (std::abs(line.perp({x, y})) <= halfWidth) band.push_back({x, y});
    return band;
}

// FAINT STREAKS (AssembleConfig::faintStreakSigma): satellite trails too faint for the
// per-pixel outlier test (a per-pixel S/N of ~2 in one epoch; demo release: a trail in one i
// visit at 5-7σ in the coadd made a row of 14 false objects in patch 18) are found by their
// length. The warp minus the median of the epochs, in S/N, is summed in blocks of
// faintStreakBin² pixels (where at least three epochs overlap, outside bright sources' cores;
// each block standardised by the median and MAD of all blocks, then limited to
// ±5 so that no single residual can make a line), and the blocks are summed along every line (a
// Radon transform: angles in steps that move a line's far end by half a block, offsets in bins
// of half a block, each bin summing the blocks within a quarter block of it). A line whose sum
// exceeds that of the lines 3-6 blocks to either side by faintStreakSigma (in units of its
// noise), over at least faintStreakMinLength pixels, and that is raised along its length — at
// least 80% of eight equal segments above 2σ, where residuals of stars that happen to lie in a
// row raise only a few — is a streak. Its angle and offset are refined on the pixels (the 3-px
// wide line of largest S/N within ±3° and two blocks) and a band of ±faintStreakHalfWidth
// pixels along it is clipped from the warp. Up to three per warp.
// Appends the clipped spans to `clip`; returns the number of streaks.
// `cores`: 1 within the core radius of a bright source (on the patch).
int faintStreaks(const Work& k, const ImageF& med, const ImageF& medVar,
                 const Image<std::uint8_t>& nValid, MaskPixel badBits,
                 const Image<std::uint8_t>& cores, const AssembleConfig& config,
                 std::vector<Span>& clip) {
    const int bin = config.faintStreakBin;
    const Box2I& box = k.box;
    const int nbx = box.width() / bin, nby = box.height() / bin;
    if (nbx < 4 || nby < 4) return 0;
    const std::size_t nb = std::size_t(nbx) * nby;
    // Per-pixel S/N of the excess, where it is defined and trusted.
    auto snAt = [&](const WarpRow& r, int y, int i, double& d) {
        const int x = box.minX() + i;
        if ((r.m[i] & badBits) || cores.at({x, y}) || nValid.at({x, y}) < 3) return false;
        const float mv = med.at({x, y});
        const double var = double(r.var[i]) + medVar.at({x, y});
        if (!std::isfinite(mv) || !(var > 0) || !std::isfinite(r.v[i])) return false;
        d = (r.v[i] - mv) / std::sqrt(var);
        return true;
    };
    std::vector<double> sum(nb, 0.0);
    std::vector<int> count(nb, 0);
    for (int j = 0; j < nby * bin; ++j) {
        const int y = box.minY() + j;
        const WarpRow r = warpRow(k, y);
        if (!r.v) continue;
        for (int i = 0; i < nbx * bin; ++i) {
            double d;
            if (!snAt(r, y, i, d)) continue;
            const std::size_t b = std::size_t(j / bin) * nbx + i / bin;
            sum[b] += d;
            ++count[b];
        }
    }
    std::vector<double> z(nb, std::numeric_limits<double>::quiet_NaN()), vals;
    for (std::size_t b = 0; b < nb; ++b)
        if (2 * count[b] >= bin * bin) vals.push_back(z[b] = sum[b] / std::sqrt(count[b]));
    if (vals.size() < 16) return 0;
    auto median = [](std::vector<double>& v) {
        std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
        return v[v.size() / 2];
    };
    const double centre = median(vals);
    for (double& v : vals) v = std::abs(v - centre);
    const double spread = 1.4826 * median(vals);
    if (!(spread > 0)) return 0;
    for (double& v : z)
        if (std::isfinite(v)) v = std::clamp((v - centre) / spread, -5.0, 5.0);

    // Offsets in half-block bins about the block grid's centre; a block counts for the bins
    // within a quarter block of its centre (one or two of them).
    const double diag = std::hypot(double(nbx), double(nby));
    // A step of 1/diag rad moves the far ends of a line (diag/2 blocks from the centre) by half
    // a block.
    const int nTheta = static_cast<int>(std::ceil(std::numbers::pi * diag));
    const int half = static_cast<int>(std::ceil(2 * diag)) + 4, nRho = 2 * half + 1;
    const double x0 = 0.5 * nbx, y0 = 0.5 * nby;
    const int minBlocks = static_cast<int>(std::ceil(config.faintStreakMinLength / bin));
    std::vector<double> S(nRho);
    std::vector<int> C(nRho);
    struct Block {
        double x, y, v;  // twice the offset from the grid's centre, in blocks; value
    };
    // Half-block bins within a quarter block of a block's centre at angle (c, sn): one, or two
    // on a tie.
    auto binsOf = [&](const Block& q, double c, double sn) {
        const double rho2 = q.x * c + q.y * sn + half;
        return std::pair<int, int>{static_cast<int>(std::ceil(rho2 - 0.5)),
                                   static_cast<int>(std::floor(rho2 + 0.5))};
    };
    int found = 0;
    for (; found < 3; ++found) {
        double best = 0, bestTheta = 0;
        int bestBin = 0;
        std::vector<Block> blocks;
        for (int by = 0; by < nby; ++by)
            for (int bx = 0; bx < nbx; ++bx) {
                const double v = z[std::size_t(by) * nbx + bx];
                if (std::isfinite(v))
                    blocks.push_back({2 * (bx + 0.5 - x0), 2 * (by + 0.5 - y0), v});
            }
        for (int t = 0; t < nTheta; ++t) {
            const double th = std::numbers::pi * t / nTheta, c = std::cos(th), sn = std::sin(th);
            std::fill(S.begin(), S.end(), 0.0);
            std::fill(C.begin(), C.end(), 0);
            for (const Block& q : blocks) {
                const auto [lo, hi] = binsOf(q, c, sn);
                for (int i = lo; i <= hi; ++i) {
                    S[i] += q.v;
                    ++C[i];
                }
            }
            for (int i = 0; i < nRho; ++i) {
                if (C[i] < minBlocks) continue;
                double ls = 0;
                int lc = 0;
                for (int d = 6; d <= 12; d += 2)
                    for (const int q : {i - d, i + d})
                        if (q >= 0 && q < nRho) ls += S[q], lc += C[q];
                if (lc < minBlocks) continue;
                const double sig = (S[i] - C[i] * ls / lc) / std::sqrt(double(C[i]));
                if (sig <= best || sig < config.faintStreakSigma) continue;
                // Raised along its length: eight segments, each summed, at least 80% above 2σ.
                std::vector<std::pair<double, double>> on;  // (along the line, value)
                for (const Block& q : blocks)
                    if (const auto [lo, hi] = binsOf(q, c, sn); lo <= i && i <= hi)
                        on.emplace_back(q.y * c - q.x * sn, q.v);
                if (on.size() < 8) continue;
                std::sort(on.begin(), on.end());
                int raised = 0;
                for (int g = 0; g < 8; ++g) {
                    const std::size_t a = on.size() * g / 8, b = on.size() * (g + 1) / 8;
                    double gs = 0;
                    for (std::size_t q = a; q < b; ++q) gs += on[q].second;
                    raised += gs >= 2 * std::sqrt(double(b - a));
                }
                if (raised < 7) continue;
                best = sig, bestTheta = th, bestBin = i - half;
            }
        }
        if (best < config.faintStreakSigma) break;
        // The line in pixel coordinates: n·p = rho with n = (cos, sin).
        const double c = std::cos(bestTheta), sn = std::sin(bestTheta);
        const double cx = box.minX() + x0 * bin - 0.5, cy = box.minY() + y0 * bin - 0.5;
        double rho = 0.5 * bestBin * bin + cx * c + cy * sn;
        // Refine angle and offset on the pixels within two blocks of the line: the 3-px wide
        // line (angles within ±3° in 0.1° steps, offsets in 0.5-px steps) with the largest sum
        // of the pixels' S/N (each limited to ±5).
        const int reach = 2 * bin;
        struct Px {
            double x, y, d;
        };
        std::vector<Px> near;
        for (int y = box.minY(); y <= box.maxY(); ++y) {
            const WarpRow r = warpRow(k, y);
            if (!r.v) continue;
            for (int i = 0; i < box.width(); ++i) {
                const double x = box.minX() + i;
                double d;
                if (std::abs(x * c + y * sn - rho) > reach || !snAt(r, y, i, d)) continue;
                near.push_back({x, double(y), std::clamp(d, -5.0, 5.0)});
            }
        }
        const int nBins = 4 * reach + 1;
        std::vector<double> hs(nBins);
        std::vector<int> hc(nBins);
        double bestFit = -std::numeric_limits<double>::infinity(), theta = bestTheta;
        double rhoFit = rho;
        for (int a = -30; a <= 30; ++a) {
            const double th = bestTheta + a * std::numbers::pi / 1800;
            const double ca = std::cos(th), sa = std::sin(th);
            std::fill(hs.begin(), hs.end(), 0.0);
            std::fill(hc.begin(), hc.end(), 0);
            for (const Px& q : near) {
                const int b =
                    static_cast<int>(std::lround(2 * (q.x * ca + q.y * sa - rho))) + 2 * reach;
                if (b < 0 || b >= nBins) continue;
                hs[b] += q.d;
                ++hc[b];
            }
            for (int b = 0; b + 6 <= nBins; ++b) {
                double ws = 0;
                int wc = 0;
                for (int e = 0; e < 6; ++e) ws += hs[b + e], wc += hc[b + e];
                if (wc == 0) continue;
                const double v = ws / std::sqrt(double(wc));
                if (v > bestFit)
                    bestFit = v, theta = th, rhoFit = rho + 0.5 * (b + 2.5 - 2 * reach);
            }
        }
        const double cf = std::cos(theta), sf = std::sin(theta);
        rho = rhoFit;
        const double hw = config.faintStreakHalfWidth;
        for (int y = box.minY(); y <= box.maxY(); ++y) {
            // |x c + y s − rho| ≤ hw: an x interval when c ≠ 0, the whole row or none otherwise.
            int xa = box.minX(), xb = box.maxX();
            if (std::abs(cf) > 1e-9) {
                const double u = (rho - y * sf - hw) / cf, v = (rho - y * sf + hw) / cf;
                xa = std::max(xa, static_cast<int>(std::ceil(std::min(u, v))));
                xb = std::min(xb, static_cast<int>(std::floor(std::max(u, v))));
            } else if (std::abs(y * sf - rho) > hw) {
                continue;
            }
            if (xa <= xb) clip.push_back({y, xa, xb});
        }
        // Remove the line's blocks from the next search.
        for (int by = 0; by < nby; ++by)
            for (int bx = 0; bx < nbx; ++bx) {
                const double px = box.minX() + (bx + 0.5) * bin - 0.5,
                             py = box.minY() + (by + 0.5) * bin - 0.5;
                if (std::abs(px * cf + py * sf - rho) <= 2 * bin)
                    z[std::size_t(by) * nbx + bx] = std::numeric_limits<double>::quiet_NaN();
            }
    }
    return found;
}

// The bodies of findArtifacts and combineWarps, on prepared inputs (assembleCoadd prepares once).
ArtifactMasks findArtifactsIn(Prepared& prep, std::size_t nWarps, const Box2I& patch,
                              const AssembleConfig& config) {
    std::vector<Work>& work = prep.work;
    const MaskPixel badBits = prep.badBits;
    const std::size_t n = work.size();
    ArtifactMasks result;
    result.clipped.assign(nWarps, SpanSet());
    result.regions.assign(nWarps, 0);

    const int minEpochs = config.clipTwoEpochStreaks ? 2 : config.minEpochsForClipping;
    if (static_cast<int>(n) >= minEpochs) {
        ImageF med(patch, std::numeric_limits<float>::quiet_NaN()), medVar(patch, 0.f);
        Image<std::uint8_t> nValid(patch, 0), nOut(patch, 0);
        std::vector<float> vals(std::max<std::size_t>(n, 8)), vars(vals.size());
        std::vector<WarpRow> rows(n);
        for (int y = patch.minY(); y <= patch.maxY(); ++y) {
            std::size_t nRows = 0;
            for (std::size_t q = 0; q < n; ++q) {
                const WarpRow r = warpRow(work[q], y);
                if (r.v) rows[nRows++] = r;
            }
            const int j = y - patch.minY();
            float* medRow = med.row(j);
            float* medVarRow = medVar.row(j);
            std::uint8_t* nValidRow = nValid.row(j);
            for (int x = patch.minX(); x <= patch.maxX(); ++x) {
                std::size_t c = 0;
                double sv = 0;
                for (std::size_t q = 0; q < nRows; ++q) {
                    const WarpRow& r = rows[q];
                    if (!r.covers(x)) continue;
                    const int i = x - r.x0;
                    if (r.m[i] & badBits) continue;
                    vars[c] = r.var[i];
                    vals[c++] = r.v[i];
                    sv += r.var[i];
                }
                const int i = x - patch.minX();
                nValidRow[i] = static_cast<std::uint8_t>(std::min<std::size_t>(c, 255));
                if (c == 2 && config.clipTwoEpochStreaks) {
                    // Two epochs: the lower is the reference, so only the higher can be an
                    // outlier (by |W_1 - W_2| against V_1 + V_2); see AssembleConfig.
                    const std::size_t lo = vals[1] < vals[0] ? 1 : 0;
                    medRow[i] = vals[lo];
                    medVarRow[i] = vars[lo];
                    continue;
                }
                if (static_cast<int>(c) < config.minEpochsForClipping) continue;
                const double m = medianOf(vals.data(), c);
                medRow[i] = static_cast<float>(m);
                medVarRow[i] = static_cast<float>(std::numbers::pi / 2 * (sv / c) / c);
            }
        }
        // Outlier pixels per warp: 2 = seed (above the amplitude-aware threshold), 1 = above
        // the growth threshold only. nOut counts, per pixel, the warps above the growth
        // threshold (used by the temporal test).
        // Squared thresholds: the square root is taken only for the (rare) candidate pixels.
        const double grow2 = config.growSigma * config.growSigma;
        for (Work& k : work) {
            k.outlier = Image<std::uint8_t>(k.box, 0);
            for (int y = k.box.minY(); y <= k.box.maxY(); ++y) {
                const WarpRow r = warpRow(k, y);
                const int j = y - patch.minY(), o = k.box.minX() - patch.minX();
                const float* medRow = med.row(j) + o;
                const float* medVarRow = medVar.row(j) + o;
                std::uint8_t* nOutRow = nOut.row(j) + o;
                std::uint8_t* outRow = k.outlier.row(y - k.box.minY());
                for (int i = 0; i < k.box.width(); ++i) {
                    const float mv = medRow[i];
                    const double var = double(r.var[i]) + medVarRow[i];
                    const double d = std::abs(r.v[i] - mv);
                    // NaN median (too few epochs) fails the comparison and is skipped.
                    // (a cheap squared pre-test with 0.1% slack; the exact test follows)
                    if (!(d * d > 0.999 * grow2 * var) || (r.m[i] & badBits)) continue;
                    const double sig = std::sqrt(var);
                    if (d <= config.growSigma * sig) continue;  // exactly as the unsquared test
                    const double seed =
                        config.outlierSigma * sig + config.outlierAmplitudeFraction * std::abs(mv);
                    outRow[i] = d > config.protectedSeedFactor * seed ? 3 : (d > seed ? 2 : 1);
                    if (nOutRow[i] < 255) ++nOutRow[i];
                }
            }
        }
        // Protected: static-sky footprints (above growSigma) whose peak exceeds brightSourceSigma.
        auto detected = [&](int x, int y) {
            const float mv = med.at({x, y});
            if (!(mv > 0)) return false;  // also NaN (too few epochs)
            const double var = medVar.at({x, y});
            if (double(mv) * mv <= 0.999 * grow2 * var) return false;  // cheap pre-test
            return mv > config.growSigma * std::sqrt(var);
        };
        Image<std::uint8_t> seen(patch, 0);
        // Each bright footprint is grown by the radius out to which the widest input PSF
        // carries the source above the growth threshold in that input: PSF wings differ most
        // between direct warps (Moffat vs Gaussian), and the median's footprint alone is too
        // small for bright stars. Radial profiles: the maximum of each input's PSF kernel (unit
        // flux) at each integer radius, at the patch centre.
        const Point2D centre(0.5 * (patch.minX() + patch.maxX()),
                             0.5 * (patch.minY() + patch.maxY()));
        std::vector<std::vector<double>> profiles;
        std::vector<double> noise;
        double minPeak = std::numeric_limits<double>::infinity();
        for (const Work& k : work) {
            Image<double> kern = k.warp->psf->computeKernelImage(centre);
            const int r = kern.width() / 2;
            std::vector<double> prof(r + 2, 0.0);
            for (int j = 0; j < kern.height(); ++j)
                for (int i = 0; i < kern.width(); ++i) {
                    int d = static_cast<int>(std::lround(std::hypot(i - r, j - r)));
                    if (d <= r) prof[d] = std::max(prof[d], kern(i, j));
                }
            // Make it non-increasing outwards so that "below threshold from here on" is one test.
            for (int d = r - 1; d >= 0; --d) prof[d] = std::max(prof[d], prof[d + 1]);
            minPeak = std::min(minPeak, prof[0]);
            profiles.push_back(std::move(prof));
            noise.push_back(std::sqrt(k.meanVar));
        }
        // Core radius: where the widest input PSF falls below protectedCoreFraction of its peak.
        double coreRadius = 0;
        for (const auto& prof : profiles) {
            int d = 0;
            while (d + 1 < static_cast<int>(prof.size()) &&
                   prof[d] > config.protectedCoreFraction * prof[0])
                ++d;
            coreRadius = std::max(coreRadius, double(d));
        }
        std::vector<Span> protectedSpans;
        std::vector<Point2I> brightPeaks;
        forEachRegion(patch, detected, seen, [&](const std::vector<Point2I>& region) {
            bool isBright = false;
            double peak = 0;
            Point2I peakAt;
            for (const Point2I& p : region) {
                if (med.at(p) > peak) {
                    peak = med.at(p);
                    peakAt = p;
                }
                if (med.at(p) > config.brightSourceSigma * std::sqrt(medVar.at(p))) isBright = true;
            }
            if (!isBright) return;
            brightPeaks.push_back(peakAt);
            const double flux = peak / minPeak;  // conservative: as if seen with the widest PSF
            int grow = 0;
            for (std::size_t k = 0; k < profiles.size(); ++k) {
                int d = 0;
                while (d + 1 < static_cast<int>(profiles[k].size()) &&
                       flux * profiles[k][d] > config.growSigma * noise[k])
                    ++d;
                grow = std::max(grow, d);
            }
            std::vector<Span> spans;
            for (const Point2I& p : region) spans.push_back({p.y, p.x, p.x});
            const SpanSet grown = SpanSet(std::move(spans)).dilated(grow + config.brightSourceGrow);
            protectedSpans.insert(protectedSpans.end(), grown.spans().begin(), grown.spans().end());
        });
        const SpanSet protectedSet(std::move(protectedSpans));
        auto nMax = [&](int nv) {
            return static_cast<int>(
                std::floor(std::min(config.maxFractionEpochsLow * nv,
                                    config.maxNumEpochs + config.maxFractionEpochsHigh * nv)));
        };
        // Bright sources' cores, left out of the FAINT STREAKS search (the same for every warp).
        Image<std::uint8_t> cores(patch, 0);
        if (config.faintStreakSigma > 0) {
            const int cr = static_cast<int>(std::ceil(coreRadius));
            for (const Point2I& c : brightPeaks)
                for (int y = std::max(c.y - cr, patch.minY());
                     y <= std::min(c.y + cr, patch.maxY()); ++y)
                    for (int x = std::max(c.x - cr, patch.minX());
                         x <= std::min(c.x + cr, patch.maxX()); ++x)
                        if (std::hypot(x - c.x, y - c.y) <= coreRadius) cores.at({x, y}) = 1;
        }
        // Hysteresis-region label of each outlier pixel; shared by the warps (every pixel read
        // for a warp, a seed, lies in one of its hysteresis regions and was labelled for it).
        Image<std::int32_t> label(patch, -1);
        for (std::size_t i = 0; i < n; ++i) {
            Work& k = work[i];
            std::vector<Span> clipSpans;
            int regions = 0;
            // Hysteresis regions (pixels above the growth threshold), labelled so that a seed
            // component can be extended to the region it belongs to.
            std::vector<std::vector<Point2I>> hyst;
            const Image<std::uint8_t>& outlier = k.outlier;
            auto outlierAt = [&](int x, int y) { return outlier.at({x, y}); };
            forEachRegion(k.box, outlierAt, seen, [&](const std::vector<Point2I>& region) {
                for (const Point2I& p : region)
                    label.at(p) = static_cast<std::int32_t>(hyst.size());
                hyst.push_back(region);
            });
            std::vector<char> hystClipped(hyst.size(), 0);
            // Decisions are taken on seed components (pixels above the seed threshold).
            auto seedAt = [&](int x, int y) { return outlier.at({x, y}) >= 2; };
            forEachRegion(k.box, seedAt, seen, [&](const std::vector<Point2I>& seeds) {
                if (static_cast<int>(seeds.size()) < config.minOutlierPixels) return;
                std::size_t transientPixels = 0, strong = 0, twoEpoch = 0;
                bool allProtected = true;
                for (const Point2I& p : seeds) {
                    if (k.outlier.at(p) == 3) ++strong;
                    if (nValid.at(p) == 2)
                        ++twoEpoch;
                    else if (nOut.at(p) <= nMax(nValid.at(p)))
                        ++transientPixels;
                    if (allProtected && !protectedSet.contains(p)) allProtected = false;
                }
                if (2 * twoEpoch > seeds.size()) {
                    // Where only two epochs overlap the temporal test cannot tell which one is
                    // wrong: a positive excess in one is clipped only if its region is a streak.
                    const std::int32_t id = label.at(seeds.front());
                    if (allProtected || hystClipped[id] || !isStreak(hyst[id], config)) return;
                    hystClipped[id] = 1;
                    ++regions;
                    // Noise breaks a faint trail's excess into pieces: follow the line of this
                    // piece across the warp (refitted to the excess pixels near it) and clip
                    // the band it occupies.
                    for (const Point2I& p : streakBand(hyst[id], k.box, outlier))
                        clipSpans.push_back({p.y, p.x, p.x});
                    return;
                }
                if (transientPixels < config.spatialThreshold * double(seeds.size() - twoEpoch))
                    return;
                if (allProtected) {
                    // Inside a bright source's protected area only compact, strong components
                    // away from its core can be artefacts (cosmic rays on a star's wings):
                    // PSF-mismatch residuals are extended (wings) or at the core. Only the
                    // component itself is clipped (its hysteresis region would include the
                    // star's own residual).
                    if (static_cast<int>(seeds.size()) > config.maxProtectedArtifactArea ||
                        strong == 0)
                        return;
                    for (const Point2I& p : seeds)
                        for (const Point2I& c : brightPeaks)
                            if (std::hypot(p.x - c.x, p.y - c.y) < coreRadius) return;
                    ++regions;
                    for (const Point2I& p : seeds) clipSpans.push_back({p.y, p.x, p.x});
                    return;
                }
                // Elsewhere the whole hysteresis region goes (a trail across a star's core).
                const std::int32_t id = label.at(seeds.front());
                if (hystClipped[id]) return;
                hystClipped[id] = 1;
                ++regions;
                for (const Point2I& p : hyst[id]) clipSpans.push_back({p.y, p.x, p.x});
            });
            if (config.faintStreakSigma > 0)
                regions += faintStreaks(k, med, medVar, nValid, badBits, cores, config, clipSpans);
            result.clipped[k.index] =
                SpanSet(std::move(clipSpans)).dilated(config.clipGrow).clippedTo(k.box);
            result.regions[k.index] = regions;
            k.outlier = Image<std::uint8_t>();
        }
    }
    return result;
}

CoaddResult combineIn(Prepared& prep, std::size_t nWarps, const Box2I& patch,
                      const ArtifactMasks& artifacts, const AssembleConfig& config,
                      std::shared_ptr<const Wcs> patchWcs) {
    std::vector<Work>& work = prep.work;
    const MaskPixel badBits = prep.badBits, noData = prep.noData;
    const MaskPlanes& planes = prep.planes;
    const std::size_t n = work.size();
    const bool haveMasks = !artifacts.clipped.empty();
    if (haveMasks && artifacts.clipped.size() != nWarps)
        throw logicError("combineWarps: artifact masks do not match the warps");
    CoaddResult result;
    result.inputs.assign(n, {});

    // ---- weighted mean, one patch row at a time ----------------------------------------------
    // Per input: its clip mask (spans sorted by row; a cursor walks them) and the spans of the
    // pixels it contributed (for the CoaddPsf). Per row: accumulators over the inputs, in input
    // order, then the row of the coadd. Only the set hash (for INEXACT_PSF) needs the whole patch.
    const int W = patch.width();
    std::vector<SpanSet> clips(n);
    std::vector<std::size_t> clipCursor(n, 0);
    std::vector<std::vector<Span>> usedSpans(n);
    for (std::size_t i = 0; i < n; ++i)
        if (haveMasks) clips[i] = artifacts.clipped[work[i].index].clippedTo(work[i].box);
    std::vector<double> sumW(W), sumWI(W), sumW2V(W), coverW(W);
    std::vector<std::uint8_t> clipRow(W), anyClipped(W);
    std::vector<MaskPixel> maskOr(W);
    std::vector<std::pair<MaskPixel, std::vector<float>>> propagated;
    MaskPixel propagatedBits = 0;
    for (const auto& p : config.propagatedPlanes)
        if (planes.has(p)) {
            propagated.emplace_back(planes.bit(p), std::vector<float>(W));
            propagatedBits |= planes.bit(p);
        }
    std::vector<double> w2f(n);
    for (std::size_t i = 0; i < n; ++i) {
        const Work& k = work[i];
        w2f[i] = k.weight * k.weight * (config.scaleVarianceForCorrelation ? k.factor : 1.0);
        CoaddInputRecord& rec = result.inputs[i];
        rec.regionsClipped = haveMasks ? artifacts.regions[k.index] : 0;
        rec.id = k.warp->id;
        rec.weight = k.weight;
        rec.meanVariance = k.meanVar;
        rec.noiseCorrelationFactor = k.factor;
    }
    MaskedImage mi(patch, planes);
    Image<std::int32_t> nIn(patch, 0);
    Image<std::uint64_t> setHash(patch, 0);
    result.sumWeight = ImageF(patch, 0.f);
    const MaskPixel clippedBit = planes.has("CLIPPED") ? planes.bit("CLIPPED") : 0;
    const MaskPixel inexactBit = planes.has("INEXACT_PSF") ? planes.bit("INEXACT_PSF") : 0;
    for (int y = patch.minY(); y <= patch.maxY(); ++y) {
        const int j = y - patch.minY();
        std::fill(sumW.begin(), sumW.end(), 0.0);
        std::fill(sumWI.begin(), sumWI.end(), 0.0);
        std::fill(sumW2V.begin(), sumW2V.end(), 0.0);
        std::fill(coverW.begin(), coverW.end(), 0.0);
        std::fill(anyClipped.begin(), anyClipped.end(), 0);
        std::fill(maskOr.begin(), maskOr.end(), 0);
        std::int32_t* nInRow = nIn.row(j);
        std::uint64_t* hashRow = setHash.row(j);
        for (std::size_t q = 0; q < n; ++q) {
            const Work& k = work[q];
            const WarpRow r = warpRow(k, y);
            if (!r.v) continue;
            const double w = k.weight, wf = w2f[q];
            const std::uint64_t key = inputKey(q);
            const int o = k.box.minX() - patch.minX();
            // This row's clipped pixels of input q.
            const auto& cs = clips[q].spans();
            std::size_t& cur = clipCursor[q];
            while (cur < cs.size() && cs[cur].y < y) ++cur;
            const std::size_t firstClip = cur;
            for (std::size_t c = cur; c < cs.size() && cs[c].y == y; ++c)
                std::fill(clipRow.begin() + (cs[c].x0 - patch.minX()),
                          clipRow.begin() + (cs[c].x1 - patch.minX()) + 1, 1);
            CoaddInputRecord& rec = result.inputs[q];
            int runStart = -1;  // first pixel of the current run of used pixels
            for (int i = 0; i < k.box.width(); ++i) {
                const MaskPixel m = r.m[i];
                const int x = o + i;
                const bool use = !(m & noData) && !clipRow[x] && !(m & badBits);
                if (!use && runStart >= 0) {
                    usedSpans[q].push_back({y, patch.minX() + runStart, patch.minX() + x - 1});
                    runStart = -1;
                }
                if (m & noData) continue;
                coverW[x] += w;
                maskOr[x] |= m;
                if (m & propagatedBits)
                    for (auto& [bit, row] : propagated)
                        if (m & bit) row[x] += static_cast<float>(w);
                if (clipRow[x]) {
                    anyClipped[x] = 1;
                    ++rec.pixelsClipped;
                    continue;
                }
                if (m & badBits) continue;
                sumW[x] += w;
                sumWI[x] += w * r.v[i];
                sumW2V[x] += wf * r.var[i];
                nInRow[x] += 1;
                hashRow[x] += key;
                ++rec.pixelsUsed;
                if (runStart < 0) runStart = x;
            }
            if (runStart >= 0)
                usedSpans[q].push_back(
                    {y, patch.minX() + runStart, patch.minX() + o + k.box.width() - 1});
            for (std::size_t c = firstClip; c < cs.size() && cs[c].y == y; ++c)
                std::fill(clipRow.begin() + (cs[c].x0 - patch.minX()),
                          clipRow.begin() + (cs[c].x1 - patch.minX()) + 1, 0);
        }
        float* im = mi.image().row(j);
        float* var = mi.variance().row(j);
        MaskPixel* mask = mi.mask().image().row(j);
        float* sw = result.sumWeight.row(j);
        for (int i = 0; i < W; ++i) {
            const double w = sumW[i];
            MaskPixel m = 0;
            if (w > 0) {
                im[i] = static_cast<float>(sumWI[i] / w);
                var[i] = static_cast<float>(sumW2V[i] / (w * w));
            } else {
                m |= noData;
                var[i] = std::numeric_limits<float>::infinity();
            }
            if (anyClipped[i]) m |= clippedBit;
            const double cw = coverW[i];
            if (cw > 0 && (maskOr[i] & propagatedBits))
                for (auto& [bit, row] : propagated)
                    if (row[i] > config.maskPropagationThreshold * cw) m |= bit;
            mask[i] = m;
            sw[i] = static_cast<float>(w);
        }
        for (auto& pr : propagated)
            for (int i = 0; i < W; ++i)
                if (maskOr[i] & pr.first) pr.second[i] = 0.f;
    }
    std::vector<CoaddPsf::Input> psfInputs;
    double sumWF = 0, sumWsum = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const Work& k = work[i];
        if (result.inputs[i].pixelsUsed > 0) {
            psfInputs.push_back(
                {k.warp->id, k.warp->psf, k.weight, SpanSet(std::move(usedSpans[i]))});
            sumWF += k.weight * k.factor;
            sumWsum += k.weight;
        }
        result.clipped.push_back(std::move(clips[i]));
    }
    if (psfInputs.empty())
        throw Error("no_inputs", "every input pixel in the patch is masked or clipped");
    if (inexactBit) {
        const Image<std::uint8_t> inexact = varies(setHash, config.inexactPsfRadius);
        for (std::size_t q = 0; q < inexact.pixels().size(); ++q)
            if (inexact.pixels()[q]) mi.mask().image().pixels()[q] |= inexactBit;
    }
    result.nInputs = std::move(nIn);
    result.varianceScale = config.scaleVarianceForCorrelation ? sumWF / sumWsum : 1.0;

    result.coadd = Exposure(std::move(mi));
    result.coadd.setPsf(std::make_shared<CoaddPsf>(std::move(psfInputs)));
    result.coadd.setPhotoCalib(PhotoCalib{1.0, 0.0});
    result.coadd.setWcs(std::move(patchWcs));
    auto& md = result.coadd.metadata();
    md.set("NINPUTS", static_cast<std::int64_t>(n), "number of input warps");
    md.set("VARSCALE", result.varianceScale,
           "variance = per-pixel variance x VARSCALE (noise correlation)");
    return result;
}

}  // namespace

ArtifactMasks findArtifacts(const std::vector<Warp>& warps, const Box2I& patch,
                            const AssembleConfig& config) {
    Prepared prep = prepare(warps, patch, config);
    return findArtifactsIn(prep, warps.size(), patch, config);
}

CoaddResult combineWarps(const std::vector<Warp>& warps, const Box2I& patch,
                         const ArtifactMasks& artifacts, const AssembleConfig& config,
                         std::shared_ptr<const Wcs> patchWcs) {
    Prepared prep = prepare(warps, patch, config);
    return combineIn(prep, warps.size(), patch, artifacts, config, std::move(patchWcs));
}

CoaddResult assembleCoadd(const std::vector<Warp>& warps, const Box2I& patch,
                          const AssembleConfig& config, std::shared_ptr<const Wcs> patchWcs) {
    Prepared prep = prepare(warps, patch, config);  // validation and weights, once
    ArtifactMasks masks;
    if (config.doArtifactRejection) masks = findArtifactsIn(prep, warps.size(), patch, config);
    return combineIn(prep, warps.size(), patch, masks, config, std::move(patchWcs));
}

}  // namespace drp::coadd
