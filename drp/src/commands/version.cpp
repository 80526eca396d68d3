// `drp version`: the software version, git commit and build type (what provenance records).
#include <iostream>

#include "cli/command.h"
#include "drp/drp/version.h"

namespace po = boost::program_options;

namespace drp {
namespace {

void addOptions(po::options_description& o) {
    o.add_options()("json", po::bool_switch(), "print a JSON object instead of text");
}

int run(const cli::Invocation& inv) {
    if (inv.options["json"].as<bool>()) {
        // Values are plain ASCII (version digits, hex commit, CMake build type): no escaping.
        inv.out << "{\"version\": \"" << versionString() << "\", \"git_commit\": \"" << gitCommit()
                << "\", \"build_type\": \"" << buildType() << "\"}\n";
    } else {
        inv.out << versionLine() << "\n";
    }
    return 0;
}

const cli::RegisterCommand registration{{
    .name = "version",
    .summary = "Print the software version, git commit and build type",
    .addOptions = addOptions,
    .run = run,
}};

}  // namespace
}  // namespace drp
