// Software version and provenance of this build of drp.
//
// The version is the CMake project version; the git commit is read when the program is built
// (a "-dirty" suffix means tracked files differed from the commit). Every output file records
// both (DESIGN.md "Formats": provenance carries the software version).
#pragma once

#include <string>

#include "drp/core/metadata.h"

namespace drp {

/// "0.1.0".
std::string versionString();
/// Full git commit hash of the source tree at build time, "-dirty" appended for uncommitted
/// changes, "unknown" when built outside git.
std::string gitCommit();
/// CMake build type ("RelWithDebInfo", ...).
std::string buildType();
/// One line for `drp --version`: "drp 0.1.0 (git <commit>, RelWithDebInfo)".
std::string versionLine();

/// Provenance entries describing this software: DRP_VERSION, DRP_GIT (with comments), to be
/// merged into the provenance of every output.
PropertyList softwareProvenance();

}  // namespace drp
