#include "drp/drp/version.h"

#include "drp/drp/version_generated.h"

namespace drp {

std::string versionString() {
    return DRP_VERSION_STRING;
}
std::string gitCommit() {
    return DRP_GIT_COMMIT;
}
std::string buildType() {
    return DRP_BUILD_TYPE;
}

std::string versionLine() {
    return "drp " + versionString() + " (git " + gitCommit() + ", " + buildType() + ")";
}

PropertyList softwareProvenance() {
    PropertyList p;
    p.set("DRP_VERSION", versionString(), "drp software version");
    p.set("DRP_GIT", gitCommit(), "drp git commit at build time");
    return p;
}

}  // namespace drp
