// `drp skymap`: describe the skymap (type, tracts, patch grid, pixel scale, definition hash) and
// locate a position in it (tract, patch, pixel, inner/outer boxes).
#include <cstdio>
#include <iomanip>
#include <optional>
#include <sstream>

#include "cli/command.h"
#include "cli/skymap_options.h"
#include "drp/core/error.h"
#include "drp/skymap/sky_map.h"

namespace po = boost::program_options;

namespace drp {
namespace {

void addOptions(po::options_description& o) {
    cli::addSkyMapOptions(o);
    o.add_options()("ra", po::value<double>(), "locate this position: RA [deg] (needs --dec)")(
        "dec", po::value<double>(), "locate this position: Dec [deg] (needs --ra)")(
        "json", po::bool_switch(), "print JSON instead of text");
}

std::string num(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.10g", v);
    return buf;
}

std::string jsonBox(const Box2I& b) {
    return "{\"min\": [" + std::to_string(b.minX()) + ", " + std::to_string(b.minY()) +
           "], \"max\": [" + std::to_string(b.maxX()) + ", " + std::to_string(b.maxY()) + "]}";
}

std::string textBox(const Box2I& b) {
    return "x " + std::to_string(b.minX()) + ".." + std::to_string(b.maxX()) + ", y " +
           std::to_string(b.minY()) + ".." + std::to_string(b.maxY());
}

int run(const cli::Invocation& inv) {
    const auto& vm = inv.options;
    SkyMapConfig config = cli::skyMapConfigFromOptions(vm);
    if (vm.count("ra") != vm.count("dec")) throw configError("--ra and --dec go together");
    std::optional<SpherePoint> position;
    if (vm.count("ra")) {
        double dec = vm["dec"].as<double>();
        if (!(dec >= -90 && dec <= 90))
            throw configError("--dec " + num(dec) + ": not in [-90, 90]");
        position = SpherePoint::fromDegrees(vm["ra"].as<double>(), dec);
    }
    auto map = makeSkyMap(config);

    // Range of patch grids over all tracts.
    Extent2I gridMin{1 << 30, 1 << 30}, gridMax{0, 0};
    for (int t = 0; t < map->numTracts(); ++t) {
        Extent2I n = map->tractGeometry(t).numPatches;
        gridMin = {std::min(gridMin.x, n.x), std::min(gridMin.y, n.y)};
        gridMax = {std::max(gridMax.x, n.x), std::max(gridMax.y, n.y)};
    }
    const TractGeometryConfig& tc = map->tractConfig();

    std::optional<TractPatch> found;
    std::optional<TractInfo> tract;
    if (position) {
        found = map->findTractPatch(*position);
        if (!found)
            throw notFound("position (" + num(position->ra().asDegrees()) + ", " +
                           num(position->dec().asDegrees()) +
                           ") deg is in no tract of this discrete skymap");
        tract.emplace(map->tract(found->tract));
    }

    std::ostream& os = inv.out;
    if (vm["json"].as<bool>()) {
        os << "{\"type\": \"" << map->type() << "\", \"num_tracts\": " << map->numTracts();
        if (auto* rings = dynamic_cast<const RingSkyMap*>(map.get()))
            os << ", \"num_rings\": " << rings->numRings();
        os << ", \"pixel_scale_arcsec\": " << num(tc.pixelScale.asArcseconds())
           << ", \"patch_inner\": [" << tc.patchInnerDimensions.x << ", "
           << tc.patchInnerDimensions.y << "], \"patch_border\": " << tc.patchBorder
           << ", \"tract_overlap_arcsec\": " << num(tc.tractOverlap.asArcseconds())
           << ", \"patch_grid_min\": [" << gridMin.x << ", " << gridMin.y
           << "], \"patch_grid_max\": [" << gridMax.x << ", " << gridMax.y << "], \"hash\": \""
           << map->hash() << "\"";
        if (found) {
            PatchInfo patch = tract->patch(found->patch);
            os << ", \"position\": {\"ra\": " << num(position->ra().asDegrees())
               << ", \"dec\": " << num(position->dec().asDegrees())
               << ", \"tract\": " << found->tract << ", \"tract_center\": ["
               << num(tract->centre().ra().asDegrees()) << ", "
               << num(tract->centre().dec().asDegrees()) << "], \"patch\": [" << found->patch.x
               << ", " << found->patch.y << "], \"patch_index\": " << found->patchSequential
               << ", \"pixel\": [" << num(found->pixel.x) << ", " << num(found->pixel.y)
               << "], \"patch_inner\": " << jsonBox(patch.innerBBox())
               << ", \"patch_outer\": " << jsonBox(patch.outerBBox()) << "}";
        }
        os << "}\n";
        return 0;
    }

    os << "skymap:        " << map->type();
    if (auto* rings = dynamic_cast<const RingSkyMap*>(map.get())) {
        os << " (" << rings->numRings() << " declination rings of "
           << num(rings->ringHeight().asDegrees()) << " deg + 2 polar caps)";
    }
    os << "\ntracts:        " << map->numTracts() << "\n"
       << "patch grid:    " << gridMin.x << "x" << gridMin.y;
    if (gridMax != gridMin) os << " to " << gridMax.x << "x" << gridMax.y;
    os << " patches per tract, " << tc.patchInnerDimensions.x << "x" << tc.patchInnerDimensions.y
       << " inner pixels + " << tc.patchBorder << " px border\n"
       << "pixel scale:   " << num(tc.pixelScale.asArcseconds()) << " arcsec/pixel (TAN)\n"
       << "tract overlap: " << num(tc.tractOverlap.asArcseconds()) << " arcsec\n"
       << "hash:          sha256:" << map->hash() << "\n";
    if (found) {
        PatchInfo patch = tract->patch(found->patch);
        os << "position:      ra " << num(position->ra().asDegrees()) << ", dec "
           << num(position->dec().asDegrees()) << " deg\n"
           << "tract:         " << found->tract << " (centre ra "
           << num(tract->centre().ra().asDegrees()) << ", dec "
           << num(tract->centre().dec().asDegrees()) << " deg)\n"
           << "patch:         " << found->patch.x << "," << found->patch.y << " (index "
           << found->patchSequential << ")\n"
           << "pixel:         " << num(found->pixel.x) << ", " << num(found->pixel.y) << "\n"
           << "patch inner:   " << textBox(patch.innerBBox()) << "\n"
           << "patch outer:   " << textBox(patch.outerBBox()) << "\n";
    }
    return 0;
}

const cli::RegisterCommand registration{{
    .name = "skymap",
    .summary = "Describe the skymap (tracts, patches, hash) and locate a position in it",
    .addOptions = addOptions,
    .run = run,
}};

}  // namespace
}  // namespace drp
