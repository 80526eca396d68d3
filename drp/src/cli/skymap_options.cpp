#include "cli/skymap_options.h"

#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "drp/core/error.h"

namespace po = boost::program_options;

namespace drp::cli {

namespace {
/// The value as a config file would spell it: 0.2" survives the trip through radians as
/// 0.20000000000000004, which --print-config should not show.
double decimal(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.15g", v);
    return std::strtod(buf, nullptr);
}
}  // namespace

void addSkyMapOptions(po::options_description& o) {
    const TractGeometryConfig t;
    const RingSkyMapConfig r;
    o.add_options()(
        "skymap-type", po::value<std::string>()->default_value("rings"),
        "skymap: 'rings' (whole sky, LSST RingsSkyMap) or 'discrete' (tracts on --field)")(
        "num-rings", po::value<int>()->default_value(r.numRings),
        "rings: number of declination rings (ring height 180°/(n+1))")(
        "ra-start", po::value<double>()->default_value(decimal(r.raStart.asDegrees())),
        "rings: RA of the centre of each ring's tract 0 [deg]")(
        "pixel-scale", po::value<double>()->default_value(decimal(t.pixelScale.asArcseconds())),
        "tract pixel scale [arcsec/pixel]")(
        "patch-inner", po::value<int>()->default_value(t.patchInnerDimensions.x),
        "patch inner size [pixels, square]")(
        "patch-border", po::value<int>()->default_value(t.patchBorder),
        "patch border added to each side of the inner box [pixels]")(
        "tract-overlap", po::value<double>(),
        "total tract overlap [arcsec] (default: 60 for rings, 0 for discrete, as LSST)")(
        "field", po::value<std::vector<std::string>>()->composing(),
        "discrete: a tract 'RA,DEC,RADIUS' [deg]; repeat for several");
}

namespace {
DiscreteField parseField(const std::string& text) {
    std::istringstream in(text);
    double v[3];
    char comma1 = 0, comma2 = 0;
    in >> v[0] >> comma1 >> v[1] >> comma2 >> v[2];
    if (!in || comma1 != ',' || comma2 != ',' || !(in >> std::ws).eof())
        throw configError("--field '" + text + "': expected RA,DEC,RADIUS in degrees");
    if (!(v[1] >= -90 && v[1] <= 90))
        throw configError("--field '" + text + "': DEC must be in [-90, 90]");
    return {SpherePoint::fromDegrees(v[0], v[1]), degrees(v[2])};
}
}  // namespace

SkyMapConfig skyMapConfigFromOptions(const po::variables_map& vm) {
    SkyMapConfig c;
    c.type = vm["skymap-type"].as<std::string>();
    TractGeometryConfig t;
    t.pixelScale = arcseconds(vm["pixel-scale"].as<double>());
    int inner = vm["patch-inner"].as<int>();
    t.patchInnerDimensions = {inner, inner};
    t.patchBorder = vm["patch-border"].as<int>();
    if (c.type == "discrete") t.tractOverlap = degrees(0.0);
    if (vm.count("tract-overlap")) t.tractOverlap = arcseconds(vm["tract-overlap"].as<double>());
    c.rings.numRings = vm["num-rings"].as<int>();
    c.rings.raStart = degrees(vm["ra-start"].as<double>());
    c.rings.tract = t;
    c.discrete.tract = t;
    if (vm.count("field")) {
        if (c.type != "discrete") throw configError("--field is only for --skymap-type discrete");
        for (const auto& f : vm["field"].as<std::vector<std::string>>())
            c.discrete.fields.push_back(parseField(f));
    }
    c.validate();
    return c;
}

}  // namespace drp::cli
