// The PSF of a coadd: the exact weighted combination of the input PSFs at any position.
//
// LSST meas_algorithms CoaddPsf (Jee & Tyson "StackFit" logic): at a coadd position p
//     PSF_coadd(p) = Σ_i w_i PSF_i^warped(p) / Σ_i w_i
// over the inputs i that contributed to the coadd pixel at p, with the same per-input weights
// w_i the combine used (assemble.h). Because the combine uses one weight per input (not per
// pixel), this is exactly the PSF of the coadd wherever the set of contributing inputs does not
// change across the PSF footprint; where it does (input edges, clipped artefacts) the coadd mask
// carries INEXACT_PSF. Coverage here is per pixel (`coverage` = the pixels where input i was
// actually used, i.e. valid and not clipped or rejected), so the PSF also honours clipping.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "drp/coadd/warp.h"
#include "drp/core/footprint.h"
#include "drp/core/psf.h"

namespace drp::coadd {

class CoaddPsf final : public Psf {
  public:
    struct Input final {
        InputId id;
        std::shared_ptr<const Psf> psf;  ///< the input's PSF in the coadd frame (WarpedPsf)
        double weight = 0;               ///< the weight the combine used
        SpanSet coverage;                ///< coadd pixels where this input contributed
    };

    explicit CoaddPsf(std::vector<Input> inputs);

    Image<double> computeKernelImage(Point2D position) const override;
    Image<double> computeImage(Point2D position) const override;
    int kernelRadius() const override { return _radius; }
    std::string typeName() const override { return "coadd"; }

    /// Indices of the inputs contributing at `position` (its nearest pixel).
    std::vector<std::size_t> contributors(Point2D position) const;
    const std::vector<Input>& inputs() const { return _inputs; }

  private:
    std::vector<Input> _inputs;
    std::vector<Box2I> _bboxes;
    int _radius = 0;
};

}  // namespace drp::coadd
