#include "drp/core/footprint.h"

#include <algorithm>
#include <cmath>
#include <map>

namespace drp {

SpanSet::SpanSet(std::vector<Span> spans) {
    std::sort(spans.begin(), spans.end());
    for (const Span& s : spans) {
        if (s.x1 < s.x0) continue;
        if (!_spans.empty() && _spans.back().y == s.y && s.x0 <= _spans.back().x1 + 1) {
            _spans.back().x1 = std::max(_spans.back().x1, s.x1);
        } else {
            _spans.push_back(s);
        }
    }
}

SpanSet SpanSet::fromBox(const Box2I& box) {
    std::vector<Span> spans;
    for (int y = box.minY(); y <= box.maxY(); ++y) spans.push_back({y, box.minX(), box.maxX()});
    return SpanSet(std::move(spans));
}

std::int64_t SpanSet::area() const {
    std::int64_t a = 0;
    for (auto& s : _spans) a += s.width();
    return a;
}

Box2I SpanSet::bbox() const {
    if (_spans.empty()) return {};
    int x0 = _spans.front().x0, x1 = _spans.front().x1;
    for (auto& s : _spans) {
        x0 = std::min(x0, s.x0);
        x1 = std::max(x1, s.x1);
    }
    return Box2I::fromCorners({x0, _spans.front().y}, {x1, _spans.back().y});
}

bool SpanSet::contains(Point2I p) const {
    auto it = std::lower_bound(_spans.begin(), _spans.end(), Span{p.y, p.x + 1, p.x + 1});
    // candidates: spans on row p.y starting at or before p.x
    while (it != _spans.begin()) {
        --it;
        if (it->y != p.y) return false;
        if (it->x0 <= p.x) return p.x <= it->x1;
    }
    return false;
}

SpanSet SpanSet::dilated(int r) const {
    if (r <= 0) return *this;
    // Half-widths of a Euclidean disk of radius r for each row offset.
    std::vector<int> half(2 * r + 1);
    for (int dy = -r; dy <= r; ++dy) half[dy + r] = static_cast<int>(std::floor(std::sqrt(double(r * r - dy * dy))));
    std::vector<Span> out;
    out.reserve(_spans.size() * (2 * r + 1));
    for (auto& s : _spans)
        for (int dy = -r; dy <= r; ++dy) out.push_back({s.y + dy, s.x0 - half[dy + r], s.x1 + half[dy + r]});
    return SpanSet(std::move(out));
}

SpanSet SpanSet::unionWith(const SpanSet& o) const {
    std::vector<Span> all = _spans;
    all.insert(all.end(), o._spans.begin(), o._spans.end());
    return SpanSet(std::move(all));
}

SpanSet SpanSet::intersectionWith(const SpanSet& o) const {
    std::vector<Span> out;
    std::size_t a = 0, b = 0;
    while (a < _spans.size() && b < o._spans.size()) {
        const Span &sa = _spans[a], &sb = o._spans[b];
        if (sa.y < sb.y) { ++a; continue; }
        if (sb.y < sa.y) { ++b; continue; }
        int lo = std::max(sa.x0, sb.x0), hi = std::min(sa.x1, sb.x1);
        if (lo <= hi) out.push_back({sa.y, lo, hi});
        if (sa.x1 < sb.x1) ++a; else ++b;
    }
    SpanSet s;
    s._spans = std::move(out);
    return s;
}

SpanSet SpanSet::clippedTo(const Box2I& box) const { return intersectionWith(fromBox(box)); }

}  // namespace drp
