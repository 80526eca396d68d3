// Warping: resample one calibrated detector image onto a patch's pixel grid.
//
// For every target pixel p the source position s = T(p) comes from the gridded pixel mapping
// (pixel_transform.h) and
//     image(p)    = c · J(p) · Σ_k K_k(s) I_k                      [nJy]
//     variance(p) = c² · J(p)² · Σ_k K_k(s)² V_k                   [nJy²]
// with K the separable, unit-sum Lanczos-3 kernel (lanczos.h), J = |det ∂s/∂p| the ratio of
// target to source pixel area (flux conservation: a star's summed flux is unchanged), and
// c = nJyPerCount of the input's PhotoCalib (photometric scaling to nJy).
//
// Edges: a target pixel is valid only if its whole 6 × 6 kernel footprint lies inside the
// source image (as afw); otherwise it is NO_DATA (image 0, variance 0).
//
// Mask propagation: for each source mask bit b, the fraction of the kernel's absolute weight
// carried by source pixels with b set, f_b = Σ_{k: b∈m_k} |K_k| / Σ_k |K_k|. Planes whose pixel
// values are untrustworthy (`fullKernelPlanes`, default NO_DATA, BAD, SAT) are set wherever they
// contribute any weight (f_b > 0), i.e. grown over the full kernel — a hot pixel's value leaks
// into every target pixel whose kernel touches it. All other planes are set where
// f_b > `maskThreshold` (default 0.1; at half-pixel phase the four nearest pixels carry ~28%
// each and the next ring ~6%, so the threshold keeps the bit on the ~2 × 2 nearest pixels, like
// the bilinear mask warping of afw).
//
// Noise correlation (documented, and corrected in the coadd). The diagonal propagation above is
// the exact per-pixel variance, but resampling correlates neighbouring pixels: for white input
// noise the per-pixel variance is J²ΣK² V, between 1.00 (integer shift) and ~0.62 (half-pixel
// shift in both axes) times J² V, while the variance of a sum over an area much larger than the
// kernel is preserved: Σ_region O has variance Σ_{source pixels} V = N_target · J · V. The ratio
//     F = ⟨J⟩ / ⟨J² ΣK²⟩     (averaged over the warp's valid pixels)
// is the warp's `noiseCorrelationFactor`: multiplying the per-pixel variance by F makes it
// predict the scatter of sums over PSF-sized apertures. The coadd applies it (assemble.h) and the
// test suite checks the result on pure-noise images.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "drp/coadd/pixel_transform.h"
#include "drp/core/exposure.h"
#include "drp/core/psf.h"

namespace drp {
class Wcs;
}

namespace drp::coadd {

struct WarpConfig final {
    int interpLength = 10;  ///< grid spacing (target px) of exact transform evaluation (afw: 10)
    int lanczosOrder = 3;   ///< Lanczos order (3 = LSST/SWarp default)
    /// Planes set wherever they contribute any kernel weight (values untrustworthy).
    std::vector<std::string> fullKernelPlanes{"NO_DATA", "BAD", "SAT"};
    /// Other planes: set where their kernel weight fraction exceeds this.
    double maskThreshold = 0.1;
    /// Maximum tolerated grid-interpolation error of the pixel mapping (px); exceeding it is an
    /// error (the mapping is too non-linear for `interpLength`).
    double maxMappingError = 0.01;
    void validate() const;
};

/// Identifies one input of a coadd.
struct InputId final {
    std::int64_t visit = -1;
    int detector = -1;
    bool operator==(const InputId&) const = default;
};

/// One input resampled onto the target grid. `maskedImage` covers only the part of the target
/// box the input overlaps (its bbox ⊆ target box); pixels without data carry NO_DATA.
struct Warp final {
    InputId id;
    MaskedImage maskedImage;            ///< nJy, nJy², mask planes of the input
    std::shared_ptr<const Psf> psf;     ///< the input PSF in the target frame (WarpedPsf)
    double noiseCorrelationFactor = 1;  ///< F (see above): aperture-sum / per-pixel variance
    double mappingError = 0;            ///< measured max grid-interpolation error (px)
    std::int64_t validPixels = 0;       ///< pixels with data
};

/// Warp a masked image (counts) through `toSource` onto `targetBox`. `nJyPerCount` converts
/// pixel values to nJy. Throws Error("no_overlap") if the input does not overlap the box.
Warp warpMaskedImage(const MaskedImage& source, double nJyPerCount,
                     const std::shared_ptr<const PixelTransform>& toSource,
                     std::shared_ptr<const Psf> sourcePsf, const Box2I& targetBox,
                     const WarpConfig& config = {});

/// Warp a calibrated exposure (needs PSF and PhotoCalib; the pixel mapping is given).
/// Throws Error(bad_input) naming visit/detector if the exposure is unusable.
Warp warpExposure(const Exposure& calibrated, const std::shared_ptr<const PixelTransform>& toSource,
                  const Box2I& targetBox, const WarpConfig& config = {});

/// Check an exposure is usable as a coadd input (PSF, PhotoCalib, consistent planes, finite
/// positive variance on most pixels); throws Error(bad_input) naming the problem.
void checkCalibratedExposure(const Exposure& calibrated);

}  // namespace drp::coadd
