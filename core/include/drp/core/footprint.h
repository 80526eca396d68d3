// Footprints: the set of pixels that belong to a detection, with the peaks found inside it.
//
// A SpanSet is a list of horizontal runs of pixels (y, x0..x1 inclusive) in parent coordinates,
// sorted by (y, x0) and non-overlapping. Footprints are produced by detection (calib/, deblend/)
// and consumed by measurement, deblending and multifit.
#pragma once

#include <cstdint>
#include <vector>

#include "drp/core/geometry.h"
#include "drp/core/image.h"

namespace drp {

struct Span final {
    int y = 0, x0 = 0, x1 = 0;  ///< inclusive run of pixels
    int width() const { return x1 - x0 + 1; }
    constexpr auto operator<=>(const Span&) const = default;
};

class SpanSet final {
public:
    SpanSet() = default;
    /// Spans are sorted and merged where they touch or overlap.
    explicit SpanSet(std::vector<Span> spans);
    /// All pixels of a box.
    static SpanSet fromBox(const Box2I& box);
    /// The pixels of `mask` (array index -> parent via its bbox) that are non-zero.
    template <typename T>
    static SpanSet fromNonZero(ConstImageView<T> mask);

    const std::vector<Span>& spans() const { return _spans; }
    std::int64_t area() const;
    Box2I bbox() const;
    bool contains(Point2I p) const;
    bool empty() const { return _spans.empty(); }
    /// Dilated by a disk of radius r pixels (Euclidean), e.g. to grow a footprint by the PSF.
    SpanSet dilated(int r) const;
    SpanSet unionWith(const SpanSet& o) const;
    SpanSet intersectionWith(const SpanSet& o) const;
    SpanSet clippedTo(const Box2I& box) const;
    bool operator==(const SpanSet&) const = default;

private:
    std::vector<Span> _spans;
};

struct Peak final {
    Point2I position;          ///< parent pixel of the peak
    Point2D centroid;          ///< refined sub-pixel position (== position if not refined)
    double value = 0;          ///< peak value in the detection image
    double significance = 0;   ///< peak S/N in the detection image
    bool operator==(const Peak&) const = default;
};

class Footprint final {
public:
    Footprint() = default;
    Footprint(SpanSet spans, std::vector<Peak> peaks) : _spans(std::move(spans)), _peaks(std::move(peaks)) {}
    const SpanSet& spans() const { return _spans; }
    SpanSet& spans() { return _spans; }
    const std::vector<Peak>& peaks() const { return _peaks; }
    std::vector<Peak>& peaks() { return _peaks; }
    Box2I bbox() const { return _spans.bbox(); }
    std::int64_t area() const { return _spans.area(); }
    bool operator==(const Footprint&) const = default;

private:
    SpanSet _spans;
    std::vector<Peak> _peaks;
};

template <typename T>
SpanSet SpanSet::fromNonZero(ConstImageView<T> mask) {
    std::vector<Span> spans;
    for (int j = 0; j < mask.height(); ++j) {
        int i = 0;
        while (i < mask.width()) {
            while (i < mask.width() && !(mask(i, j) != T{})) ++i;
            if (i >= mask.width()) break;
            int start = i;
            while (i < mask.width() && mask(i, j) != T{}) ++i;
            spans.push_back({j + mask.xy0().y, start + mask.xy0().x, i - 1 + mask.xy0().x});
        }
    }
    SpanSet s;
    s._spans = std::move(spans);  // already sorted and disjoint
    return s;
}

}  // namespace drp
