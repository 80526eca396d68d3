#include "drp/coadd/warp.h"

#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <sstream>

#include "drp/coadd/lanczos.h"
#include "drp/coadd/warped_psf.h"
#include "drp/core/error.h"

namespace drp::coadd {

void WarpConfig::validate() const {
    if (interpLength < 1 || interpLength > 200)
        throw configError("WarpConfig.interpLength must be in [1, 200], got " +
                          std::to_string(interpLength));
    if (lanczosOrder < 2 || lanczosOrder > 5)
        throw configError("WarpConfig.lanczosOrder must be in [2, 5], got " +
                          std::to_string(lanczosOrder));
    if (!(maskThreshold > 0 && maskThreshold < 1))
        throw configError("WarpConfig.maskThreshold must be in (0, 1), got " +
                          std::to_string(maskThreshold));
    if (!(maxMappingError > 0))
        throw configError("WarpConfig.maxMappingError must be > 0, got " +
                          std::to_string(maxMappingError));
}

namespace {

std::string inputName(const Exposure& e) {
    std::ostringstream os;
    os << "visit " << e.visitInfo().visit << " detector " << e.visitInfo().detector;
    return os.str();
}

// 4-wide SIMD vectors (GCC/Clang vector extensions: SSE2 on x86-64, NEON on ARM).
using F4 = float __attribute__((vector_size(16)));
using I4 = std::int32_t __attribute__((vector_size(16)));
static_assert(sizeof(MaskPixel) == sizeof(std::int32_t));

inline F4 load4(const float* p) {
    F4 v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
inline I4 load4(const MaskPixel* p) {
    I4 v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

// Everything the resampling loop needs about one warp.
struct ResampleJob {
    const LanczosTable* table;
    const GridMapping* grid;
    const float* im;  // source planes, contiguous (row stride = sw)
    const float* var;
    const MaskPixel* mask;
    int sw, sh;
    double sx0, sy0;             // source box origin
    double c;                    // nJyPerCount
    MaskPixel noData, fullBits;  // mask planes
    double maskThreshold;
    MaskedImage* out;
};

struct ResampleTotals {
    double sumJ = 0, sumJ2K2 = 0;
    std::int64_t valid = 0;
};

// Mask of a target pixel whose footprint carries mask bits: per-bit kernel weight fractions
// (warp.h), only for the rare pixels near flagged input.
MaskPixel warpedMask(const ResampleJob& job, const MaskPixel* footprint, int taps, int bx, int by) {
    const double* wx = job.table->weightsAt(bx);
    const double* wy = job.table->weightsAt(by);
    std::array<double, 32> frac{};
    double norm = 0;
    for (int v = 0; v < taps; ++v) {
        const MaskPixel* mRow = footprint + static_cast<std::size_t>(v) * job.sw;
        for (int u = 0; u < taps; ++u) {
            const double a = std::abs(wx[u] * wy[v]);
            norm += a;
            MaskPixel m = mRow[u];
            if (a < 1e-9) continue;  // exact zeros of the kernel (integer phase)
            while (m) {
                int b = std::countr_zero(static_cast<std::uint32_t>(m));
                frac[b] += a;
                m &= m - 1;
            }
        }
    }
    MaskPixel result = 0;
    for (int b = 0; b < 32; ++b) {
        if (frac[b] <= 0) continue;
        const MaskPixel bit = static_cast<MaskPixel>(1u << b);
        if ((bit & job.fullBits) || frac[b] > job.maskThreshold * norm) result |= bit;
    }
    return result;
}

// The resampling loop for Lanczos order ORDER (compile-time taps, fully unrolled). Per target
// pixel: Σ_k K_k I_k, Σ_k K_k² V_k and the OR of the mask bits under the footprint, vertical pass
// first (one broadcast weight per source row, Q quads of 4 pixels per row), then the packed
// horizontal weights (lanczos.h). Float arithmetic: 36 terms, relative rounding ~1e-7.
template <int ORDER>
ResampleTotals resample(const ResampleJob& job) {
    constexpr int TAPS = 2 * ORDER, Q = (TAPS + 3) / 4, T0 = 1 - ORDER;
    constexpr int LAST = TAPS - 4;  // offset of the last quad
    constexpr auto off = [](int q) { return q + 1 < Q ? 4 * q : LAST; };
    // Position of tap t in the packed table: in the last quad if the earlier ones miss it.
    constexpr auto packedIndex = [](int t) { return t < 4 * (Q - 1) ? t : 4 * (Q - 1) + t - LAST; };
    const LanczosTable& table = *job.table;
    MaskedImage& out = *job.out;
    const Box2I outBox = out.bbox();
    const int w = outBox.width(), sw = job.sw;
    const double c = job.c, c2 = job.c * job.c;
    std::vector<double> sx(w), sy(w), det(w);
    ResampleTotals totals;
    for (int j = 0; j < outBox.height(); ++j) {
        job.grid->row(outBox.minY() + j, outBox.minX(), outBox.maxX(), sx.data(), sy.data(),
                      det.data());
        float* oim = out.image().row(j);
        float* ovar = out.variance().row(j);
        MaskPixel* omask = out.mask().image().row(j);
        for (int i = 0; i < w; ++i) {
            const double ax = sx[i] - job.sx0, ay = sy[i] - job.sy0;
            // Whole kernel inside the source: floor(a) + T0 >= 0 and floor(a) + ORDER <= n - 1.
            if (!(ax >= ORDER - 1 && ax < job.sw - ORDER && ay >= ORDER - 1 &&
                  ay < job.sh - ORDER)) {
                omask[i] = job.noData;
                continue;
            }
            const int ix = static_cast<int>(ax), iy = static_cast<int>(ay);
            const int bx = table.bin(ax - ix), by = table.bin(ay - iy);
            const std::size_t r0 = static_cast<std::size_t>(iy + T0) * sw + (ix + T0);
            const float* im = job.im + r0;
            const float* var = job.var + r0;
            const MaskPixel* mask = job.mask + r0;
            // One packed table (lanczos.h) for both axes; squared weights computed here.
            const float* wy = table.packedWeightsAt(by);
            const float* wx = table.packedWeightsAt(bx);
            F4 accI[Q] = {}, accV[Q] = {};
            I4 mor = {};
            for (int v = 0; v < TAPS; ++v) {
                const std::size_t o = static_cast<std::size_t>(v) * sw;
                const float a = wy[packedIndex(v)], b = a * a;
                for (int q = 0; q < Q; ++q) {
                    accI[q] += a * load4(im + o + off(q));
                    accV[q] += b * load4(var + o + off(q));
                    mor |= load4(mask + o + off(q));
                }
            }
            F4 sI = {}, sV = {};
            for (int q = 0; q < Q; ++q) {
                const F4 k = load4(wx + 4 * q);
                sI += accI[q] * k;
                sV += accV[q] * (k * k);
            }
            const double jac = det[i];
            oim[i] = static_cast<float>(c * jac * ((sI[0] + sI[1]) + (sI[2] + sI[3])));
            ovar[i] = static_cast<float>(c2 * jac * jac * ((sV[0] + sV[1]) + (sV[2] + sV[3])));
            const MaskPixel maskOr = (mor[0] | mor[1]) | (mor[2] | mor[3]);
            if (maskOr) {
                const MaskPixel m = warpedMask(job, mask, TAPS, bx, by);
                omask[i] = m;
                if (m & job.noData) {
                    oim[i] = 0;
                    ovar[i] = 0;
                    continue;
                }
            }
            totals.sumJ += jac;
            totals.sumJ2K2 += jac * jac * table.sumSquaredAt(bx) * table.sumSquaredAt(by);
            ++totals.valid;
        }
    }
    return totals;
}

}  // namespace

void checkCalibratedExposure(const Exposure& e) {
    const std::string name = inputName(e);
    const Box2I box = e.image().bbox();
    if (box.empty()) throw badInput(name + ": empty image");
    if (!(e.mask().bbox() == box) || !(e.variance().bbox() == box))
        throw badInput(name + ": image, mask and variance planes have different bounding boxes");
    if (!e.psf()) throw badInput(name + ": no PSF model");
    if (!e.photoCalib()) throw badInput(name + ": no photometric calibration");
    const double c = e.photoCalib()->nJyPerCount;
    if (!(std::isfinite(c) && c > 0))
        throw badInput(name +
                       ": invalid photometric calibration nJyPerCount = " + std::to_string(c));
    const MaskPixel ignore = e.mask().planes().bits({"NO_DATA", "BAD"});
    std::int64_t bad = 0, usable = 0;
    for (int j = 0; j < box.height(); ++j) {
        const float* im = e.image().row(j);
        const float* var = e.variance().row(j);
        const MaskPixel* m = e.mask().image().row(j);
        for (int i = 0; i < box.width(); ++i) {
            if (m[i] & ignore) continue;
            ++usable;
            if (!std::isfinite(im[i]) || !std::isfinite(var[i]) || var[i] < 0) ++bad;
        }
    }
    if (usable == 0) throw badInput(name + ": every pixel is flagged NO_DATA or BAD");
    if (bad > 0)
        throw badInput(name + ": " + std::to_string(bad) +
                       " pixels have a non-finite image or a negative/non-finite variance without "
                       "NO_DATA/BAD flags (corrupt input)");
}

Warp warpMaskedImage(const MaskedImage& source, double nJyPerCount,
                     const std::shared_ptr<const PixelTransform>& toSource,
                     std::shared_ptr<const Psf> sourcePsf, const Box2I& targetBox,
                     const WarpConfig& config) {
    config.validate();
    if (!toSource) throw logicError("warpMaskedImage: null pixel transform");
    if (targetBox.empty()) throw logicError("warpMaskedImage: empty target box");
    const LanczosTable localTable(config.lanczosOrder == 3 ? 3 : config.lanczosOrder, 1024);
    const LanczosTable& table = config.lanczosOrder == 3 ? lanczos3Table() : localTable;
    const int order = table.order();

    GridMapping grid(*toSource, targetBox, config.interpLength);
    Warp warp;
    warp.mappingError = grid.maxErrorAtCellCentres(*toSource);
    if (warp.mappingError > config.maxMappingError)
        throw Error(error_class::kNumerical,
                    "warp: pixel mapping is too non-linear for interpLength " +
                        std::to_string(config.interpLength) + " (interpolation error " +
                        std::to_string(warp.mappingError) + " px)");

    // Target pixels whose kernel can lie inside the source: cells around nodes mapping inside
    // the source box (margin: one grid cell in source pixels).
    const Box2I srcBox = source.bbox();
    Eigen::Matrix2d jc = toSource->jacobian(Point2D(0.5 * (targetBox.minX() + targetBox.maxX()),
                                                    0.5 * (targetBox.minY() + targetBox.maxY())));
    const double stretch = std::max(jc.col(0).norm(), jc.col(1).norm());
    const Box2I outBox =
        grid.targetBoxCovering(Box2D(srcBox), 2.0 * config.interpLength * stretch + order);
    if (outBox.empty())
        throw Error("no_overlap", "warp: the input does not overlap the target box");

    const MaskPlanes& planes = source.mask().planes();
    MaskedImage out(outBox, planes);
    const MaskPixel noData = planes.bit("NO_DATA");
    MaskPixel fullBits = 0;
    for (const auto& p : config.fullKernelPlanes)
        if (planes.has(p)) fullBits |= planes.bit(p);
    // Contiguous source planes (row stride = width), so that kernel rows are pointer offsets.
    const float* srcIm = source.image().row(0);
    const float* srcVar = source.variance().row(0);
    const MaskPixel* srcMask = source.mask().image().row(0);

    const ResampleJob job{&table,
                          &grid,
                          srcIm,
                          srcVar,
                          srcMask,
                          srcBox.width(),
                          srcBox.height(),
                          double(srcBox.minX()),
                          double(srcBox.minY()),
                          nJyPerCount,
                          noData,
                          fullBits,
                          config.maskThreshold,
                          &out};
    ResampleTotals totals;
    switch (order) {
        case 2:
            totals = resample<2>(job);
            break;
        case 3:
            totals = resample<3>(job);
            break;
        case 4:
            totals = resample<4>(job);
            break;
        case 5:
            totals = resample<5>(job);
            break;
        default:
            throw logicError("warpMaskedImage: Lanczos order must be in [2, 5]");
    }
    const double sumJ = totals.sumJ, sumJ2K2 = totals.sumJ2K2;
    const std::int64_t valid = totals.valid;
    if (valid == 0)
        throw Error("no_overlap", "warp: the input has no valid pixel in the target box");
    warp.maskedImage = std::move(out);
    warp.validPixels = valid;
    warp.noiseCorrelationFactor = sumJ / sumJ2K2;
    if (sourcePsf)
        warp.psf = std::make_shared<WarpedPsf>(
            std::move(sourcePsf), toSource,
            Point2D(0.5 * (outBox.minX() + outBox.maxX()), 0.5 * (outBox.minY() + outBox.maxY())));
    return warp;
}

Warp warpExposure(const Exposure& calibrated, const std::shared_ptr<const PixelTransform>& toSource,
                  const Box2I& targetBox, const WarpConfig& config) {
    try {
        checkCalibratedExposure(calibrated);
        Warp w = warpMaskedImage(calibrated.maskedImage(), calibrated.photoCalib()->nJyPerCount,
                                 toSource, calibrated.psf(), targetBox, config);
        w.id = {calibrated.visitInfo().visit, calibrated.visitInfo().detector};
        return w;
    } catch (Error& e) {
        if (e.errorClass() != error_class::kBadInput)  // checkCalibratedExposure names the input
            e.addContext(inputName(calibrated));
        throw;
    }
}

}  // namespace drp::coadd
