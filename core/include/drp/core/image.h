// Images: `Image<T>` owns its pixels, `ImageView<T>` / `ImageView<const T>` borrow them.
//
// Ownership is spelled by type (GalSim): functions that only read take `ImageView<const T>`
// (constructed implicitly from an Image or a mutable view), functions that write into caller
// memory take `ImageView<T>`, and functions that produce new pixels return `Image<T>`.
//
// Every image has a bounding box in *parent* pixel coordinates (see geometry.h). Access is either
//   img(i, j)         — array index, 0 <= i < width, 0 <= j < height (fast, unchecked), or
//   img.at({x, y})    — parent pixel (x, y) = xy0 + (i, j), checked.
// Rows are contiguous (x fastest), matching FITS order, so a row is `row(j)[i]`.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "drp/core/error.h"
#include "drp/core/geometry.h"
#include "drp/core/pixel_allocator.h"

namespace drp {

template <typename T>
class ImageView final {
public:
    using value_type = std::remove_const_t<T>;

    ImageView() = default;
    ImageView(T* data, Box2I bbox, std::int64_t stride) : _data(data), _bbox(bbox), _stride(stride) {}
    /// A mutable view converts to a const one.
    template <typename U>
        requires(std::is_const_v<T> && std::is_same_v<std::remove_const_t<T>, U>)
    ImageView(const ImageView<U>& o) : _data(o.data()), _bbox(o.bbox()), _stride(o.stride()) {}

    const Box2I& bbox() const { return _bbox; }
    int width() const { return _bbox.width(); }
    int height() const { return _bbox.height(); }
    Point2I xy0() const { return _bbox.min(); }
    std::int64_t stride() const { return _stride; }
    T* data() const { return _data; }

    T& operator()(int i, int j) const { return _data[j * _stride + i]; }
    T& at(Point2I p) const {
        if (!_bbox.contains(p)) throw logicError("pixel out of image bounds");
        return (*this)(p.x - _bbox.minX(), p.y - _bbox.minY());
    }
    T* row(int j) const { return _data + j * _stride; }

    /// A sub-view on `box` (parent coordinates); it must lie inside this view.
    ImageView subview(const Box2I& box) const {
        if (!_bbox.contains(box)) throw logicError("subview box outside image");
        return ImageView(_data + (box.minY() - _bbox.minY()) * _stride + (box.minX() - _bbox.minX()),
                         box, _stride);
    }

    void fill(value_type v) const
        requires(!std::is_const_v<T>)
    {
        for (int j = 0; j < height(); ++j) std::fill(row(j), row(j) + width(), v);
    }

private:
    T* _data = nullptr;
    Box2I _bbox{};
    std::int64_t _stride = 0;
};

template <typename T>
using ConstImageView = ImageView<const T>;

template <typename T>
class Image final {
public:
    using value_type = T;

    Image() = default;
    explicit Image(Box2I bbox, T fill = T{})
        : _bbox(bbox), _pixels(static_cast<std::size_t>(bbox.area()), fill) {}
    explicit Image(Extent2I dims, T fill = T{}) : Image(Box2I({0, 0}, dims), fill) {}
    Image(int width, int height, T fill = T{}) : Image(Extent2I{width, height}, fill) {}
    /// Deep copy of any view (of a possibly different pixel type).
    template <typename U>
    static Image copyOf(ImageView<U> v) {
        Image out(v.bbox());
        for (int j = 0; j < v.height(); ++j)
            for (int i = 0; i < v.width(); ++i) out(i, j) = static_cast<T>(v(i, j));
        return out;
    }

    const Box2I& bbox() const { return _bbox; }
    int width() const { return _bbox.width(); }
    int height() const { return _bbox.height(); }
    Point2I xy0() const { return _bbox.min(); }
    /// Move the image to a new origin without touching pixels.
    void setXY0(Point2I xy0) { _bbox = Box2I(xy0, _bbox.dimensions()); }

    T& operator()(int i, int j) { return _pixels[static_cast<std::size_t>(j) * width() + i]; }
    const T& operator()(int i, int j) const { return _pixels[static_cast<std::size_t>(j) * width() + i]; }
    T& at(Point2I p) { return view().at(p); }
    const T& at(Point2I p) const { return cview().at(p); }
    T* row(int j) { return _pixels.data() + static_cast<std::size_t>(j) * width(); }
    const T* row(int j) const { return _pixels.data() + static_cast<std::size_t>(j) * width(); }
    T* data() { return _pixels.data(); }
    const T* data() const { return _pixels.data(); }
    std::span<T> pixels() { return _pixels; }
    std::span<const T> pixels() const { return _pixels; }

    ImageView<T> view() { return ImageView<T>(_pixels.data(), _bbox, width()); }
    ImageView<const T> view() const { return cview(); }
    ImageView<const T> cview() const { return ImageView<const T>(_pixels.data(), _bbox, width()); }
    ImageView<T> subview(const Box2I& b) { return view().subview(b); }
    ImageView<const T> subview(const Box2I& b) const { return cview().subview(b); }
    operator ImageView<T>() { return view(); }
    operator ImageView<const T>() const { return cview(); }

    void fill(T v) { std::fill(_pixels.begin(), _pixels.end(), v); }
    bool operator==(const Image& o) const { return _bbox == o._bbox && _pixels == o._pixels; }

private:
    Box2I _bbox{};
    std::vector<T, PixelAllocator<T>> _pixels;  // large buffers on huge pages
};

using ImageF = Image<float>;
using ImageD = Image<double>;
using ImageI = Image<std::int32_t>;

/// Copy the overlap of `src` into `dst` (parent coordinates; pixels outside either are left alone).
template <typename T, typename U>
void copyOverlap(ImageView<const U> src, ImageView<T> dst) {
    Box2I ov = src.bbox().clippedTo(dst.bbox());
    if (ov.empty()) return;
    auto s = src.subview(ov);
    auto d = dst.subview(ov);
    for (int j = 0; j < ov.height(); ++j)
        for (int i = 0; i < ov.width(); ++i) d(i, j) = static_cast<T>(s(i, j));
}

}  // namespace drp
