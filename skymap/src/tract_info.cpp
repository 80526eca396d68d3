// TractInfo / PatchInfo: the parts of the skymap that need the tract's Wcs.
#include "drp/skymap/tract_info.h"

#include <numbers>

#include "drp/core/error.h"
#include "drp/skymap/sky_map.h"

namespace drp {

TractInfo::TractInfo(TractGeometry geometry) : _g(std::move(geometry)) {
    // CD = diag(-scale, +scale) in degrees/pixel: north up, east left (LSST makeCdMatrix with
    // flipX), matching TangentPlane.
    double s = _g.plane.scale().asDegrees();
    Eigen::Matrix2d cd;
    cd << -s, 0.0, 0.0, s;
    _wcs = Wcs::makeTan(_g.centre, _g.plane.crpix(), cd);
}

PatchInfo TractInfo::patch(PatchIndex index) const {
    if (index.x < 0 || index.y < 0 || index.x >= _g.numPatches.x || index.y >= _g.numPatches.y)
        throw notFound("tract " + std::to_string(_g.id) + ": no patch (" + std::to_string(index.x) +
                       ", " + std::to_string(index.y) + "); grid is " +
                       std::to_string(_g.numPatches.x) + "x" + std::to_string(_g.numPatches.y));
    Box2I inner = _g.patchInnerBox(index), outer = _g.patchOuterBox(index);
    auto corners = [&](const Box2I& b) {
        Box2D e(b);
        std::vector<Point2D> px{e.min(), {e.max().x, e.min().y}, e.max(), {e.min().x, e.max().y}};
        return _wcs->pixelToSky(px);
    };
    return PatchInfo(index, _g.sequentialIndex(index), inner, outer, corners(inner),
                     corners(outer));
}

PatchInfo TractInfo::patch(int sequentialIndex) const {
    if (sequentialIndex < 0 || sequentialIndex >= numPatchesTotal())
        throw notFound("tract " + std::to_string(_g.id) + ": no patch " +
                       std::to_string(sequentialIndex) + " (0.." +
                       std::to_string(numPatchesTotal() - 1) + ")");
    return patch(PatchIndex{sequentialIndex % _g.numPatches.x, sequentialIndex / _g.numPatches.x});
}

TractInfo SkyMap::tract(int id) const {
    return TractInfo(tractGeometry(id));
}

}  // namespace drp
