// Lanczos resampling kernels with precomputed tables.
//
// The Lanczos kernel of order a is L(x) = sinc(x) sinc(x/a) for |x| < a and 0 beyond, with
// sinc(x) = sin(πx)/(πx) (Duchon 1979). A 2-D resampling kernel is the separable product
// L(x) L(y); it spans 2a × 2a input pixels (6 × 6 for Lanczos-3, as in LSST afw's
// "lanczos3" warping kernel and SWarp's LANCZOS3).
//
// For a source position x (array coordinates) the taps sit at the integers ix - a + 1 ... ix + a,
// ix = floor(x), and tap t (offset ix + t, t = -a+1..a) has weight L(t - f), f = x - ix ∈ [0, 1).
// The weights are normalised to unit sum per axis, so that a constant image resamples to the
// same constant exactly (flux conservation up to the Jacobian factor applied by the warper).
//
// Tables: the weights are tabulated at `binsPerPixel` phases f = k / binsPerPixel and looked up at
// the nearest phase. With the default 1024 bins the phase is quantised to ≤ 1/2048 px, i.e. a
// position error of at most 0.0005 px — far below the 0.01 px budget of the warp's pixel mapping
// (documented in pixel_transform.h) — and no transcendental function is evaluated per pixel.
#pragma once

#include <vector>

#include "drp/core/image.h"

namespace drp::coadd {

/// L(x) = sinc(x) sinc(x/order) for |x| < order, else 0.
double lanczos(double x, int order);

class LanczosTable final {
  public:
    explicit LanczosTable(int order = 3, int binsPerPixel = 1024);

    int order() const { return _order; }
    /// Number of taps per axis, 2 × order.
    int taps() const { return 2 * _order; }
    int binsPerPixel() const { return _bins; }
    /// Offset of the first tap relative to floor(x): -(order - 1).
    int firstTap() const { return 1 - _order; }

    /// Normalised weights of the taps for a phase f ∈ [0, 1] (pointer to taps() values).
    const double* weights(double f) const {
        int k = static_cast<int>(f * _bins + 0.5);
        k = k < 0 ? 0 : (k > _bins ? _bins : k);
        return _table.data() + static_cast<std::size_t>(k) * taps();
    }
    /// Squared normalised weights (for variance propagation), same layout as weights().
    const double* squaredWeights(double f) const {
        int k = static_cast<int>(f * _bins + 0.5);
        k = k < 0 ? 0 : (k > _bins ? _bins : k);
        return _squared.data() + static_cast<std::size_t>(k) * taps();
    }

  private:
    int _order;
    int _bins;
    std::vector<double> _table;    // (bins + 1) × taps
    std::vector<double> _squared;  // (bins + 1) × taps
};

/// The shared default Lanczos-3 table (built once, thread-safe static initialisation).
const LanczosTable& lanczos3Table();

/// Lanczos interpolation of `image` at parent position (x, y); pixels outside the image count as
/// zero (appropriate for PSF stamps, whose wings are negligible at the stamp edge).
double interpolateZeroPadded(ConstImageView<double> image, double x, double y,
                             const LanczosTable& table);

}  // namespace drp::coadd
