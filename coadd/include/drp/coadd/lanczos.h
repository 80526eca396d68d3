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
//
// Packed float tables (for the warper's vectorised inner loop): per phase, the taps as
// quads() groups of 4 floats; quad q covers taps quadOffset(q) ... quadOffset(q) + 3, the last
// quad is shifted back to end at the last tap (so that no load reads past the kernel) and its
// entries already covered by the previous quad are zero. For Lanczos-3 (6 taps):
// {w0 w1 w2 w3 | 0 0 w4 w5}, quads at offsets 0 and 2. Float weights carry a relative error of
// ~6e-8, far below the photometric and astrometric budgets of a coadd.
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

    /// Index of the tabulated phase nearest f ∈ [0, 1].
    int bin(double f) const {
        int k = static_cast<int>(f * _bins + 0.5);
        return k < 0 ? 0 : (k > _bins ? _bins : k);
    }
    /// Normalised weights of the taps for a phase f ∈ [0, 1] (pointer to taps() values).
    const double* weights(double f) const { return weightsAt(bin(f)); }
    /// Squared normalised weights (for variance propagation), same layout as weights().
    const double* squaredWeights(double f) const { return squaredWeightsAt(bin(f)); }
    const double* weightsAt(int bin) const {
        return _table.data() + static_cast<std::size_t>(bin) * taps();
    }
    const double* squaredWeightsAt(int bin) const {
        return _squared.data() + static_cast<std::size_t>(bin) * taps();
    }
    /// Σ_t w_t² at a phase bin (the per-axis variance factor of white noise).
    double sumSquaredAt(int bin) const { return _sumSquared[static_cast<std::size_t>(bin)]; }

    /// Number of 4-float groups of the packed tables (see the header comment).
    int quads() const { return _quads; }
    /// First tap covered by quad q.
    int quadOffset(int q) const { return q + 1 < _quads ? 4 * q : taps() - 4; }
    /// Float copies of weightsAt / squaredWeightsAt (taps() values).
    const float* floatWeightsAt(int bin) const {
        return _tableF.data() + static_cast<std::size_t>(bin) * taps();
    }
    const float* floatSquaredAt(int bin) const {
        return _squaredF.data() + static_cast<std::size_t>(bin) * taps();
    }
    /// Packed float weights / squared weights at a phase bin (4 × quads() floats).
    const float* packedWeightsAt(int bin) const {
        return _packed.data() + static_cast<std::size_t>(bin) * 4 * _quads;
    }
    const float* packedSquaredAt(int bin) const {
        return _packedSquared.data() + static_cast<std::size_t>(bin) * 4 * _quads;
    }

  private:
    int _order;
    int _bins;
    int _quads;
    std::vector<double> _table;                  // (bins + 1) × taps
    std::vector<double> _squared;                // (bins + 1) × taps
    std::vector<double> _sumSquared;             // bins + 1
    std::vector<float> _tableF, _squaredF;       // (bins + 1) × taps
    std::vector<float> _packed, _packedSquared;  // (bins + 1) × 4 quads
};

/// The shared default Lanczos-3 table (built once, thread-safe static initialisation).
const LanczosTable& lanczos3Table();

/// Lanczos interpolation of `image` at parent position (x, y); pixels outside the image count as
/// zero (appropriate for PSF stamps, whose wings are negligible at the stamp edge).
double interpolateZeroPadded(ConstImageView<double> image, double x, double y,
                             const LanczosTable& table);

}  // namespace drp::coadd
