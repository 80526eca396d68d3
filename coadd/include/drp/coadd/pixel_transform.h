// Pixel mappings used by the warper: target (patch) pixel -> source (input exposure) pixel.
//
// The warper only needs "where does target pixel (x, y) land on the source?". That is
//   source = sourceWcs⁻¹(targetWcs(x, y))
// for real data (see WcsPixelTransform in wcs_transform.h), but the resampling, PSF and combine
// code is written against this small interface so that it can be tested with exact synthetic
// transforms (affine, affine + quadratic distortion).
//
// GridMapping — why and how accurate. Evaluating a WCS pair per pixel costs ~1 µs (two
// trigonometric projections); for an 11-Mpixel patch that alone would exceed our time budget.
// As LSST afw does (`interpLength` = 10), the exact transform is evaluated on a coarse grid of
// nodes every `spacing` pixels (plus the last row/column) and bilinearly interpolated in
// between. The error of bilinear interpolation inside a cell of size L is bounded by
// (L²/8) max|∂²f| per axis; for a TAN -> TAN(-SIP) mapping between two 0.2"-pixel grids the
// second derivatives are ~1e-8 px⁻¹ over a detector, giving errors of ~1e-7 px at L = 10 — many
// orders of magnitude below the 0.01 px requirement. `GridMapping::maxErrorAtCellCentres`
// measures the actual error of a given mapping (at cell centres, where bilinear interpolation is
// worst), and the warper records it in the Warp's summary.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include <Eigen/Core>

#include "drp/core/geometry.h"

namespace drp::coadd {

class PixelTransform {
  public:
    virtual ~PixelTransform() = default;
    /// Source pixel position of target pixel position `target`.
    virtual Point2D apply(Point2D target) const = 0;
    /// Batch version (implementations backed by a WCS library override it for speed).
    virtual std::vector<Point2D> apply(const std::vector<Point2D>& targets) const;
    /// d(source)/d(target) at `target`, by central differences of step `step` pixels
    /// (exact for affine maps; O(step²) otherwise).
    Eigen::Matrix2d jacobian(Point2D target, double step = 0.5) const;
};

/// source = offset + matrix · target.
class AffineTransform final : public PixelTransform {
  public:
    AffineTransform(const Eigen::Matrix2d& matrix, Eigen::Vector2d offset)
        : _m(matrix), _o(std::move(offset)) {}
    Point2D apply(Point2D t) const override {
        return {_o(0) + _m(0, 0) * t.x + _m(0, 1) * t.y, _o(1) + _m(1, 0) * t.x + _m(1, 1) * t.y};
    }
    using PixelTransform::apply;
    const Eigen::Matrix2d& matrix() const { return _m; }
    const Eigen::Vector2d& offset() const { return _o; }
    /// The inverse map (source -> target).
    AffineTransform inverted() const;

  private:
    Eigen::Matrix2d _m;
    Eigen::Vector2d _o;
};

/// Any callable (tests, composed transforms).
class FunctionTransform final : public PixelTransform {
  public:
    explicit FunctionTransform(std::function<Point2D(Point2D)> f) : _f(std::move(f)) {}
    Point2D apply(Point2D t) const override { return _f(t); }
    using PixelTransform::apply;

  private:
    std::function<Point2D(Point2D)> _f;
};

/// The exact transform sampled on a coarse grid over `box`, bilinearly interpolated. Also carries
/// the pixel-area ratio |det ∂source/∂target| (the Jacobian factor of flux conservation) at the
/// same nodes, from second-order finite differences of the node positions (exact for quadratic
/// maps; error ~(L²/6)|∂³f| ≈ 1e-10 for a TAN-SIP mapping at L = 10, so the transform is
/// evaluated once per node; grids with fewer than 3 nodes per axis evaluate it at ±0.5 px
/// around each node instead).
class GridMapping final {
  public:
    GridMapping(const PixelTransform& transform, const Box2I& box, int spacing);

    const Box2I& box() const { return _box; }
    int spacing() const { return _spacing; }

    /// Interpolated source positions and Jacobian determinants for target pixels x0..x1
    /// (inclusive, inside box()) of row y. Output arrays have x1 - x0 + 1 elements.
    void row(int y, int x0, int x1, double* sx, double* sy, double* det) const;
    /// Interpolated source position of one target pixel (slow path, for tests).
    Point2D operator()(double x, double y) const;
    /// Largest |interpolated - exact| (pixels, Euclidean) over all cell centres.
    double maxErrorAtCellCentres(const PixelTransform& exact) const;
    /// Bounding box (target pixels) of the grid cells whose nodes map inside `sourceRegion`
    /// grown by `margin` source pixels. Empty if none does.
    Box2I targetBoxCovering(const Box2D& sourceRegion, double margin) const;

  private:
    // Node coordinates (target pixels) along x and y, and for each node the mapped position and
    // Jacobian determinant, row-major [iy * nx + ix].
    Box2I _box;
    int _spacing;
    std::vector<int> _xs, _ys;
    std::vector<double> _sx, _sy, _det;
    // Cell index of each target column (relative to box.minX()).
    std::vector<int> _cellOfX;
    int cellOf(const std::vector<int>& nodes, int v) const;
};

}  // namespace drp::coadd
