// Program options of the detection and deblending stage (`drp run`): the INI sections [detect]
// and [deblend] of --config (e.g. "[deblend]" then "max-peaks = 150"), or --deblend.max-peaks on
// the command line. Documented in docs/deblend.md.
#pragma once

#include <boost/program_options.hpp>

#include "drp/deblend/deblender.h"

namespace drp::cli {

/// Adds detect.* and deblend.* (defaults: deblend::MultiBandDetectionConfig, DeblendConfig).
void addDeblendOptions(boost::program_options::options_description& options);

/// Sets `detect` and `deblend` from those options and validates them (Error(config) naming the
/// option on a bad value).
void deblendConfigFromOptions(const boost::program_options::variables_map& vm,
                              deblend::MultiBandDetectionConfig& detect,
                              deblend::DeblendConfig& deblend);

}  // namespace drp::cli
