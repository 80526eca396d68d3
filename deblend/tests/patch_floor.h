// The profile floor (profile_floor.h) of a truth object of a simulated patch (sim_patch.h): the
// scene around it built from the patch's truth, coadd variance and PSFs. Shared by
// deblend_pairs_dump (--profile-floor) and deblend_pairs_test.
#pragma once

#include <cmath>
#include <vector>

#include "profile_floor.h"
#include "sim_patch.h"

namespace drp::deblend::testing {

/// The objects a floor of truth object t fits at once: t, then every truth object within
/// `radius` px of it (in truth order).
inline std::vector<std::size_t> floorGroup(const SimPatch& patch, std::size_t t, double radius) {
    const TruthEntry& tr = patch.truth[t];
    std::vector<std::size_t> group{t};
    for (std::size_t u = 0; u < patch.truth.size(); ++u)
        if (u != t && std::hypot(patch.truth[u].pixel.x - tr.pixel.x,
                                 patch.truth[u].pixel.y - tr.pixel.y) < radius)
            group.push_back(u);
    return group;
}

/// One Moffat per band matched to the patch's coadd PSF kernels (matchedMoffat).
inline std::vector<sim::TruncatedMoffat> patchMoffats(const SimPatch& patch) {
    std::vector<sim::TruncatedMoffat> m;
    for (const ImageD& k : patch.psfKernel) m.push_back(matchedMoffat(k));
    return m;
}

/// The PROFILE FLOORS of truth object t: it and every truth object within `radius` px rendered
/// as the simulator renders them, on the coadd pixels around it at the coadd variance there,
/// with the Moffats of patchMoffats. NaN where the coadd has no variance at the object.
inline ProfileFloor childProfileFloor(const SimPatch& patch,
                                      const std::vector<sim::TruncatedMoffat>& psf, std::size_t t,
                                      double radius) {
    const TruthEntry& tr = patch.truth[t];
    const Point2I c = tr.pixel.nearestPixel();
    FloorScene scene;
    scene.window = Box2I(c, Extent2I{1, 1}).grownBy(int(radius) + 30).clippedTo(patch.box);
    scene.psf = psf;
    for (std::size_t b = 0; b < patch.bands.size(); ++b) {
        scene.simBands.push_back(sim::bandIndex(patch.bands[b]));
        scene.variance.push_back(patch.coadds[b].variance().at(c));
        if (!(scene.variance.back() > 0)) {
            ProfileFloor bad;
            for (auto& v : bad.flux) v.assign(patch.bands.size(), NAN);
            for (auto& v : bad.colour) v.assign(patch.bands.size() - 1, NAN);
            return bad;
        }
    }
    for (std::size_t u : floorGroup(patch, t, radius)) {
        const TruthEntry& o = patch.truth[u];
        scene.objects.push_back({o.object, o.pixel, o.flux,
                                 sim::localJacobian(*patch.wcs, o.object.position, o.pixel)});
    }
    return profileFloor(scene);
}

}  // namespace drp::deblend::testing
