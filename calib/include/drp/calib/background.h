// Sky background: a smooth model of the sky estimated on a coarse mesh and interpolated.
//
// Algorithm (SExtractor `back.c`, Bertin & Arnouts 1996; LSST `SubtractBackgroundTask`):
//   1. The image is cut into a grid of nx × ny cells of about `binSize` pixels (LSST 128,
//      SExtractor 64). Pixels with an ignored mask bit (BAD, SAT, CR, EDGE, DETECTED, NO_DATA)
//      or a non-finite value are left out; a cell with less than `minGoodFraction` usable pixels
//      is "bad" and later filled from its nearest good neighbours.
//   2. Per cell, iterative σ-clipping around the median (m ± 3σ) until σ converges
//      (|σ/σ_prev − 1| < 1e-4 or 100 iterations), then a mode estimate: when the clipped
//      distribution is not too skewed (|mean − median| < 0.3 σ) the background is the Pearson
//      mode 2.5 median − 1.5 mean (SExtractor BACK_PEARSON), otherwise the median (crowded cell).
//      The cell RMS is the clipped σ.
//   3. The grid of cell values is median-filtered over `filterSize` × `filterSize` cells
//      (SExtractor BACK_FILTERSIZE 3) to remove cells biased by large objects; the filter acts on
//      the residuals from a fitted plane so that it does not bias a sky gradient at the edges.
//   4. Full-resolution values come from a separable interpolation through the cell centres:
//      a natural bicubic spline (SExtractor) or Akima splines (LSST's AKIMA_SPLINE, less
//      prone to overshoot near steps). Outside the outermost centres the end segment's
//      polynomial is continued.
//
// The returned BackgroundModel holds the mesh values and the method, so a runner can store it
// (toTable / fromTable) and re-evaluate it later at full resolution.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "drp/core/exposure.h"
#include "drp/core/table.h"

namespace drp::calib {

enum class BackgroundInterpolation { CubicSpline, Akima };

struct BackgroundConfig final {
    /// Target cell size in pixels (LSST binSize 128; SExtractor BACK_SIZE 64).
    int binSize = 128;
    /// Clipping half-width in units of the cell σ (SExtractor and LSST MEANCLIP: 3).
    double clipSigma = 3.0;
    /// Maximum clipping iterations (SExtractor: 100).
    int maxIterations = 100;
    /// Convergence of the clipped σ (SExtractor: 1e-4 relative).
    double convergence = 1e-4;
    /// |mean − median| / σ below which the Pearson mode 2.5 med − 1.5 mean is used (SExtractor
    /// 0.3).
    double modeSkewLimit = 0.3;
    /// Minimum fraction of usable pixels for a cell to count (SExtractor BACK_MINGOODFRAC 0.5).
    double minGoodFraction = 0.5;
    /// Median filter over filterSize × filterSize cells; 1 disables (SExtractor BACK_FILTERSIZE 3).
    int filterSize = 3;
    BackgroundInterpolation interpolation = BackgroundInterpolation::CubicSpline;
    /// Mask planes whose pixels are left out of the statistics (LSST ignoredPixelMask + CR, SAT).
    std::vector<std::string> ignoredMaskPlanes = {"BAD",  "SAT",      "CR",
                                                  "EDGE", "DETECTED", "NO_DATA"};

    /// Throws Error(config) naming the field, value and constraint.
    void validate() const;
};

/// A background model: cell values on a grid plus everything needed to evaluate it anywhere.
class BackgroundModel final {
  public:
    BackgroundModel() = default;
    BackgroundModel(Box2I bbox, int nx, int ny, std::vector<double> values, std::vector<double> rms,
                    BackgroundInterpolation interpolation);

    const Box2I& bbox() const { return _bbox; }
    int nx() const { return _nx; }
    int ny() const { return _ny; }
    /// Cell values, row-major (index = iy * nx + ix), after filling bad cells and median filtering.
    const std::vector<double>& values() const { return _values; }
    const std::vector<double>& rms() const { return _rms; }
    BackgroundInterpolation interpolation() const { return _interp; }
    /// Centre (parent pixel coordinates) of cell column ix / row iy.
    double cellCenterX(int ix) const;
    double cellCenterY(int iy) const;
    /// First parent pixel of cell column ix (ix = nx gives one past the end).
    int cellEdgeX(int ix) const;
    int cellEdgeY(int iy) const;

    /// The background at full resolution over `bbox` (usually the model's own bbox).
    ImageF image() const { return evaluate(_values, _bbox); }
    ImageF image(const Box2I& box) const { return evaluate(_values, box); }
    /// The interpolated background RMS (σ of the sky noise) at full resolution.
    ImageF rmsImage() const { return evaluate(_rms, _bbox); }
    /// image −= background over the image's bbox (rows evaluated one at a time: no full-size
    /// temporary).
    void subtractFrom(ImageView<float> image) const;
    /// Mean of the cell values and of the cell RMS (summary statistics).
    double meanValue() const;
    double meanRms() const;

    /// Serialise to a table (columns ix, iy, value, rms; bbox and method in its metadata).
    Table toTable() const;
    static BackgroundModel fromTable(const Table& table);
    bool operator==(const BackgroundModel&) const = default;

  private:
    ImageF evaluate(const std::vector<double>& grid, const Box2I& box) const;
    /// Calls f(j, values of row j) for every row of `box` (j relative to box.minY()).
    void forEachRow(const std::vector<double>& grid, const Box2I& box,
                    const std::function<void(int, const double*)>& f) const;

    Box2I _bbox{};
    int _nx = 0, _ny = 0;
    std::vector<double> _values, _rms;
    BackgroundInterpolation _interp = BackgroundInterpolation::CubicSpline;
};

/// Robust statistics of one sample (used per cell and elsewhere).
struct ClippedStats final {
    double mean = 0, median = 0, sigma = 0, mode = 0;
    std::size_t count = 0;
};
/// Iterative clipping at median ± clipSigma·σ, then the SExtractor mode estimate. The input is
/// reordered. Returns count = 0 when `values` is empty.
ClippedStats clippedStats(std::vector<float>& values, const BackgroundConfig& config);

/// Estimate the background of a masked image (pixels are not modified).
BackgroundModel estimateBackground(const MaskedImage& image, const BackgroundConfig& config);

/// image -= model (over the image's bbox).
void subtractBackground(MaskedImage& image, const BackgroundModel& model);

/// 1-D interpolants through (x_k, y_k), x strictly increasing, evaluated at `xs`.
std::vector<double> interpolateCubicSpline(const std::vector<double>& x,
                                           const std::vector<double>& y,
                                           const std::vector<double>& xs);
std::vector<double> interpolateAkima(const std::vector<double>& x, const std::vector<double>& y,
                                     const std::vector<double>& xs);

}  // namespace drp::calib
