// A mask: an int32 image whose bits are named planes ("BAD", "SAT", ...).
//
// The mapping name -> bit lives in a `MaskPlanes` dictionary carried by the mask and written to
// the FITS header (MP_<NAME> = bit) so that files are self-describing. The default planes below
// are the ones every stage agrees on; stages may add planes (addPlane) without renumbering.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "drp/core/error.h"
#include "drp/core/image.h"

namespace drp {

using MaskPixel = std::int32_t;

class MaskPlanes final {
public:
    /// The standard planes, with fixed bits:
    ///   BAD        0  permanently bad pixel (bad column, hot pixel)
    ///   SAT        1  at or above the saturation level
    ///   INTRP      2  value was interpolated
    ///   CR         3  cosmic ray
    ///   EDGE       4  too close to the edge for detection/measurement
    ///   DETECTED   5  part of a detection footprint
    ///   SUSPECT    6  non-linear regime / bleed trail
    ///   NO_DATA    7  no input data (e.g. outside all warps in a coadd)
    ///   STREAK     8  satellite/airplane trail
    ///   CLIPPED    9  rejected as an artefact during coaddition
    ///   SENSOR_EDGE 10 within a few pixels of a detector edge
    ///   INEXACT_PSF 11 coadd PSF is discontinuous here (input coverage changes)
    static MaskPlanes defaults();

    MaskPixel bit(const std::string& name) const;      ///< the bit value (1 << index); throws if unknown
    int index(const std::string& name) const;           ///< bit index; throws if unknown
    bool has(const std::string& name) const { return _planes.count(name) != 0; }
    /// Add a plane with the next free index (or return the existing one).
    int addPlane(const std::string& name);
    /// Add a plane at a given index (used when reading files); throws on conflict.
    void setPlane(const std::string& name, int index);
    /// OR of the bits of the named planes.
    MaskPixel bits(const std::vector<std::string>& names) const;
    const std::map<std::string, int>& planes() const { return _planes; }
    /// Names of the planes set in `value`, comma-separated ("BAD,SAT").
    std::string describe(MaskPixel value) const;
    bool operator==(const MaskPlanes&) const = default;

private:
    std::map<std::string, int> _planes;
};

class Mask final {
public:
    Mask() : _planes(MaskPlanes::defaults()) {}
    explicit Mask(Box2I bbox, MaskPlanes planes = MaskPlanes::defaults())
        : _image(bbox, 0), _planes(std::move(planes)) {}

    Image<MaskPixel>& image() { return _image; }
    const Image<MaskPixel>& image() const { return _image; }
    MaskPlanes& planes() { return _planes; }
    const MaskPlanes& planes() const { return _planes; }
    const Box2I& bbox() const { return _image.bbox(); }

    MaskPixel& operator()(int i, int j) { return _image(i, j); }
    MaskPixel operator()(int i, int j) const { return _image(i, j); }
    /// Set `bits` on pixel (i, j) (array index).
    void set(int i, int j, MaskPixel bits) { _image(i, j) |= bits; }
    bool operator==(const Mask&) const = default;

private:
    Image<MaskPixel> _image;
    MaskPlanes _planes;
};

}  // namespace drp
