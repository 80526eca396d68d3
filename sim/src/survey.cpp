#include "drp/sim/survey.h"

#include <cmath>
#include <numbers>

#include "drp/core/error.h"
#include "drp/sim/random.h"

namespace drp::sim {

void SurveyConfig::validate() const {
    auto need = [](bool ok, const std::string& what) {
        if (!ok) throw configError("survey config: " + what);
    };
    need(fieldHalfSizeDeg > 0 && fieldHalfSizeDeg < 5, "fieldHalfSizeDeg must be in (0, 5)");
    need(!bands.empty(), "bands must not be empty");
    for (const auto& b : bands) bandIndex(b);
    need(visitsPerBand >= 1, "visitsPerBand must be >= 1");
    need(ditherArcsec >= 0 && rotationMaxDeg >= 0 && rotationMaxDeg <= 180,
         "bad dither or rotation");
    need(firstVisit >= 0, "firstVisit must be >= 0");
    need(patchInnerPixels > 0 && patchBorderPixels >= 0, "bad patch sizes");
    camera.validate();
    sky.validate();
    observing.validate();
    // The focal plane must cover the field from every dithered pointing (up to the gaps).
    const double halfFp =
        0.5 * std::min(camera.nDetX * camera.detWidth, camera.nDetY * camera.detHeight) *
        camera.pixelScaleArcsec / 3600.0;
    // A square of half-size a rotated by θ fits in one of half-size b if a (cos θ + sin θ) <= b.
    const double th = std::min(rotationMaxDeg, 45.0) * std::numbers::pi / 180;
    need(fieldHalfSizeDeg * (std::cos(th) + std::sin(th)) + ditherArcsec / 3600.0 <= halfFp,
         "field + dither is larger than the focal plane: visits would not cover the field");
}

std::vector<std::string> presetNames() {
    return {"tiny", "demo", "bench"};
}

SurveyConfig presetConfig(const std::string& name) {
    SurveyConfig c;
    c.preset = name;
    if (name == "tiny") {
        c.camera.detWidth = c.camera.detHeight = 512;
        c.camera.gap = 20;
        c.fieldHalfSizeDeg = 80.0 / 3600;  // 160″ = 800 px: 2×2 patches of 400
        c.ditherArcsec = 12.0;
        c.rotationMaxDeg = 5.0;
        c.visitsPerBand = 2;
        c.patchInnerPixels = 400;
        c.patchBorderPixels = 50;
        // Low-latitude-like star density so that each 512² detector holds ~65 stars: enough
        // for pattern matching, a PSF model and a SIP fit on every detector.
        c.sky.starDensity = 8.0e4;
        c.sky.starMagBright = 16.0;
        c.sky.starMagFaint = 23.0;
        c.sky.galaxyMagFaint = 24.5;
    } else if (name == "demo") {
        c.camera.detWidth = c.camera.detHeight = 1024;
        c.camera.gap = 30;
        c.fieldHalfSizeDeg = 165.0 / 3600;  // 330″ = 1650 px: 3×3 patches of 550
        c.ditherArcsec = 20.0;
        c.rotationMaxDeg = 5.0;
        c.visitsPerBand = 5;
        c.patchInnerPixels = 550;
        c.patchBorderPixels = 50;
        c.sky.starDensity = 2.0e4;
        c.sky.starMagBright = 16.0;
        c.sky.starMagFaint = 23.5;
        c.sky.galaxyMagFaint = 25.0;
    } else if (name == "bench") {
        c.camera.detWidth = c.camera.detHeight = 4096;
        c.camera.gap = 100;
        c.fieldHalfSizeDeg = 0.19;
        c.ditherArcsec = 30.0;
        c.rotationMaxDeg = 5.0;
        c.visitsPerBand = 1;
        c.patchInnerPixels = 3000;  // LSST production patches (lsst_cells_v1)
        c.patchBorderPixels = 200;
        c.sky.starDensity = 5000.0;
        c.sky.starMagBright = 15.0;
        c.sky.starMagFaint = 24.0;
        c.sky.galaxyMagFaint = 26.5;
    } else {
        throw configError("unknown simulation preset '" + name +
                          "' (expected tiny, demo or bench)");
    }
    c.validate();
    return c;
}

SurveyPlan makePlan(const SurveyConfig& config, std::uint64_t seed) {
    config.validate();
    SurveyPlan plan;
    plan.config = config;
    plan.seed = seed;
    plan.field = {config.fieldCenter, config.fieldHalfSizeDeg};
    const Camera camera(config.camera);
    const double reachDeg = camera.cornerRadius() * config.camera.pixelScaleArcsec / 3600.0;
    plan.skyRegion = {config.fieldCenter, reachDeg + config.ditherArcsec / 3600.0 + 20.0 / 3600.0};
    std::int64_t visit = config.firstVisit;
    // Visits cycle through the bands (g r i g r i ...), 40 s apart within a night, one night per
    // cycle.
    for (int k = 0; k < config.visitsPerBand; ++k)
        for (std::size_t b = 0; b < config.bands.size(); ++b, ++visit) {
            Rng rng = Rng::forStream(seed, Stream::kPlan, {static_cast<std::uint64_t>(visit)});
            VisitSpec v;
            v.visit = visit;
            v.band = bandIndex(config.bands[b]);
            const double r = config.ditherArcsec * std::sqrt(rng.uniform());
            v.pointing.boresight = config.fieldCenter.offset(
                radians(rng.uniform(0, 2 * std::numbers::pi)), arcseconds(r));
            v.pointing.rotation =
                degrees(rng.uniform(-config.rotationMaxDeg, config.rotationMaxDeg));
            v.mjd = config.mjdStart + k + 40.0 * static_cast<double>(b) / 86400.0;
            v.airmass = rng.uniform(1.0, config.observing.airmassMax);
            plan.visits.push_back(v);
        }
    return plan;
}

}  // namespace drp::sim
