#include "drp/coadd/coadd_psf.h"

#include <sstream>

#include "drp/core/error.h"

namespace drp::coadd {

CoaddPsf::CoaddPsf(std::vector<Input> inputs) : _inputs(std::move(inputs)) {
    for (const Input& in : _inputs) {
        if (!in.psf) throw logicError("CoaddPsf: input without PSF");
        if (!(in.weight > 0)) throw logicError("CoaddPsf: input with non-positive weight");
        _bboxes.push_back(in.coverage.bbox());
        _radius = std::max(_radius, in.psf->kernelRadius());
    }
}

std::vector<std::size_t> CoaddPsf::contributors(Point2D position) const {
    const Point2I p = position.nearestPixel();
    std::vector<std::size_t> out;
    for (std::size_t i = 0; i < _inputs.size(); ++i)
        if (_bboxes[i].contains(p) && _inputs[i].coverage.contains(p)) out.push_back(i);
    if (out.empty()) {
        std::ostringstream os;
        os << "CoaddPsf: no input covers position " << position;
        throw Error("no_inputs", os.str());
    }
    return out;
}

namespace {
// Accumulate w × img into acc (img's bbox inside acc's).
void accumulate(Image<double>& acc, const Image<double>& img, double w) {
    const Box2I b = img.bbox().clippedTo(acc.bbox());
    for (int y = b.minY(); y <= b.maxY(); ++y)
        for (int x = b.minX(); x <= b.maxX(); ++x) acc.at({x, y}) += w * img.at({x, y});
}
}  // namespace

Image<double> CoaddPsf::computeKernelImage(Point2D position) const {
    Image<double> acc(Box2I({-_radius, -_radius}, {2 * _radius + 1, 2 * _radius + 1}));
    double sw = 0;
    for (std::size_t i : contributors(position)) {
        Image<double> k = _inputs[i].psf->computeKernelImage(position);
        const int r = _inputs[i].psf->kernelRadius();
        k.setXY0({-r, -r});
        accumulate(acc, k, _inputs[i].weight);
        sw += _inputs[i].weight;
    }
    for (double& v : acc.pixels()) v /= sw;
    return acc;
}

Image<double> CoaddPsf::computeImage(Point2D position) const {
    const Point2I c = position.nearestPixel();
    Image<double> acc(Box2I({c.x - _radius, c.y - _radius}, {2 * _radius + 1, 2 * _radius + 1}));
    double sw = 0;
    for (std::size_t i : contributors(position)) {
        accumulate(acc, _inputs[i].psf->computeImage(position), _inputs[i].weight);
        sw += _inputs[i].weight;
    }
    for (double& v : acc.pixels()) v /= sw;
    return acc;
}

}  // namespace drp::coadd
