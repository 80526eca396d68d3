// Survey presets and the survey plan: which visits, where, in which band.
//
// A survey covers a square *field* (the area the release is about: the skymap tract's inner
// region) of half-size `fieldHalfSizeDeg` about `fieldCenter`. Each visit points at the field
// centre plus a dither (uniform in a disk of radius `ditherArcsec`) with a camera rotation
// uniform in ±`rotationMaxDeg`; the focal plane is larger than field + dither, so every point of
// the field is observed in (almost) every visit — dithers fill the detector gaps. The sky model
// covers the field plus everything any visit can see.
//
// Presets (LSST-like 0.2″ pixels, 30 s exposures):
//   tiny  — 2×2 detectors of 512², g r i × 2 visits; ~1 arcmin² field; seconds (tests).
//   demo  — 2×2 detectors of 1024², g r i × 5 visits; 30 arcmin² field, 3×3 patches of 550 px
//           (the README demo: the whole release should run in ~2 minutes on 2 cores).
//   bench — 2×2 LSSTCam-like detectors of 4096² px, g r i × 1 visit; galaxies to r = 26.5
//           (≈3.3×10⁵ deg⁻², LSST-like, see sky_model.h), stars 5000 deg⁻² to r = 24.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "drp/core/sphere_point.h"
#include "drp/sim/camera.h"
#include "drp/sim/observe.h"
#include "drp/sim/sky_model.h"

namespace drp::sim {

struct SurveyConfig final {
    std::string preset;  ///< name of the preset this came from
    SpherePoint fieldCenter = SpherePoint::fromDegrees(150.0, 2.2);  ///< COSMOS-like, high latitude
    double fieldHalfSizeDeg = 0.02;  ///< half-size of the release area (tangent plane)
    std::vector<std::string> bands = {"g", "r", "i"};
    int visitsPerBand = 2;
    double ditherArcsec = 15.0;      ///< max pointing offset from the field centre
    double rotationMaxDeg = 10.0;    ///< max |camera rotation|
    std::int64_t firstVisit = 1000;  ///< visit ids are firstVisit, firstVisit + 1, ...
    double mjdStart = 60310.0;       ///< MJD of the first visit
    int patchInnerPixels = 400;      ///< suggested skymap patch inner size (pixels)
    int patchBorderPixels = 50;      ///< suggested skymap patch border (pixels)
    CameraConfig camera;
    SkyModelConfig sky;
    ObservingConfig observing;
    void validate() const;
};

/// "tiny", "demo" or "bench"; throws Error(config) for another name.
SurveyConfig presetConfig(const std::string& name);
std::vector<std::string> presetNames();

struct SurveyPlan final {
    SurveyConfig config;
    std::uint64_t seed = 0;
    std::vector<VisitSpec> visits;  ///< ordered by visit id
    SkyRegion skyRegion;            ///< what the sky model covers
    SkyRegion field;                ///< the release area
};

/// The plan of a survey: deterministic in (config, seed).
SurveyPlan makePlan(const SurveyConfig& config, std::uint64_t seed);

}  // namespace drp::sim
