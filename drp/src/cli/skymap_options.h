// Program options that define the skymap, shared by every command that needs one
// (`drp skymap`, and the pipeline commands that cut the sky into tracts and patches).
#pragma once

#include <boost/program_options.hpp>

#include "drp/skymap/config.h"

namespace drp::cli {

/// Adds --skymap-type, --num-rings, --ra-start, --pixel-scale, --patch-inner, --patch-border,
/// --tract-overlap, --field (defaults: the LSST-like RingSkyMap of skymap/config.h).
void addSkyMapOptions(boost::program_options::options_description& options);

/// The SkyMapConfig those options describe, validated. Throws Error(config) naming the option.
SkyMapConfig skyMapConfigFromOptions(const boost::program_options::variables_map& vm);

}  // namespace drp::cli
