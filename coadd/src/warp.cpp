#include "drp/coadd/warp.h"

#include <array>
#include <bit>
#include <cmath>
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
    const int order = table.order(), taps = table.taps(), t0 = table.firstTap();

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

    const int sw = srcBox.width(), sh = srcBox.height();
    const double sx0 = srcBox.minX(), sy0 = srcBox.minY();
    const double c = nJyPerCount, c2 = nJyPerCount * nJyPerCount;
    const int w = outBox.width();
    std::vector<double> sx(w), sy(w), det(w);
    double sumJ = 0, sumJ2K2 = 0;
    std::int64_t valid = 0;
    std::array<const MaskPixel*, 8> mRows{};

    for (int j = 0; j < outBox.height(); ++j) {
        const int y = outBox.minY() + j;
        grid.row(y, outBox.minX(), outBox.maxX(), sx.data(), sy.data(), det.data());
        float* oim = out.image().row(j);
        float* ovar = out.variance().row(j);
        MaskPixel* omask = out.mask().image().row(j);
        for (int i = 0; i < w; ++i) {
            const double ax = sx[i] - sx0, ay = sy[i] - sy0;
            // Whole kernel inside the source: floor(a) + t0 >= 0 and floor(a) + order <= n - 1.
            if (!(ax >= order - 1 && ax < sw - order && ay >= order - 1 && ay < sh - order)) {
                omask[i] = noData;
                continue;
            }
            const int ix = static_cast<int>(ax), iy = static_cast<int>(ay);
            const double* wx = table.weights(ax - ix);
            const double* wy = table.weights(ay - iy);
            const double* wx2 = table.squaredWeights(ax - ix);
            const double* wy2 = table.squaredWeights(ay - iy);
            const int i0 = ix + t0;
            MaskPixel mor = 0;
            double sumI = 0, sumV = 0;
            for (int v = 0; v < taps; ++v) {
                const int r = iy + t0 + v;
                const float* im = source.image().row(r) + i0;
                const float* var = source.variance().row(r) + i0;
                const MaskPixel* m = source.mask().image().row(r) + i0;
                mRows[v] = m;
                double a = 0, b = 0;
                for (int u = 0; u < taps; ++u) {
                    a += wx[u] * im[u];
                    b += wx2[u] * var[u];
                    mor |= m[u];
                }
                sumI += wy[v] * a;
                sumV += wy2[v] * b;
            }
            const double jac = det[i];
            oim[i] = static_cast<float>(c * jac * sumI);
            ovar[i] = static_cast<float>(c2 * jac * jac * sumV);
            if (mor) {
                // Per-bit kernel weight fractions (only for the rare pixels near flagged input).
                std::array<double, 32> frac{};
                double norm = 0;
                for (int v = 0; v < taps; ++v)
                    for (int u = 0; u < taps; ++u) {
                        const double a = std::abs(wx[u] * wy[v]);
                        norm += a;
                        MaskPixel m = mRows[v][u];
                        if (a < 1e-9) continue;  // exact zeros of the kernel (integer phase)
                        while (m) {
                            int b = std::countr_zero(static_cast<std::uint32_t>(m));
                            frac[b] += a;
                            m &= m - 1;
                        }
                    }
                MaskPixel result = 0;
                for (int b = 0; b < 32; ++b) {
                    if (frac[b] <= 0) continue;
                    const MaskPixel bit = static_cast<MaskPixel>(1u << b);
                    if ((bit & fullBits) || frac[b] > config.maskThreshold * norm) result |= bit;
                }
                omask[i] = result;
                if (result & noData) {
                    oim[i] = 0;
                    ovar[i] = 0;
                    continue;
                }
            }
            double k2 = 0, l2 = 0;
            for (int t = 0; t < taps; ++t) {
                k2 += wx2[t];
                l2 += wy2[t];
            }
            sumJ += jac;
            sumJ2K2 += jac * jac * k2 * l2;
            ++valid;
        }
    }
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
