// `drp export`: the release Object table (release/object.h5) as a FITS binary table for TOPCAT
// and astropy users. One BINTABLE HDU "OBJECT" after an empty primary HDU (fits.h conventions:
// int64 'K', float64 'D', bool 'L', TUNITn units, descriptions as TTYPEn comments and TDOCn
// long strings). The table header names every bit of the `flags` column (FLAGBn = name, comment
// = meaning) and lists the bands (BANDS); the primary header carries the release's provenance
// plus the export's own (software version, source file and its SHA-256). Written atomically.
#include <filesystem>
#include <iostream>

#include "cli/command.h"
#include "drp/core/atomic_file.h"
#include "drp/core/error.h"
#include "drp/drp/pipeline.h"
#include "drp/drp/release.h"
#include "drp/drp/version.h"
#include "drp/io/fits.h"
#include "drp/io/hdf5.h"
#include "drp/io/hdf5_table.h"
#include "drp/jobs/journal.h"

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace drp {
namespace {

using pipeline::Repository;

void addOptions(po::options_description& o) {
    o.add_options()("repo", po::value<std::string>()->required(), "repository root")(
        "out", po::value<std::string>(), "output FITS file (default REPO/release/object.fits)")(
        "primary-only", po::bool_switch(),
        "only rows with is_primary (every object on the sky once)");
}

int run(const cli::Invocation& inv) {
    const Repository repo(inv.options["repo"].as<std::string>());
    const std::string src = repo.abs(Repository::kRelease);
    const std::string out = inv.options.count("out") ? inv.options["out"].as<std::string>()
                                                     : repo.abs("release/object.fits");
    if (!fs::exists(src))
        throw Error("not_found",
                    src + ": no release catalog (run `drp run --repo " + repo.root() + "` first)");
    Table objects;
    PropertyList releaseAttrs;
    try {
        objects = h5::readTable(src, "object");
        releaseAttrs = h5::File::open(src).attributes("/");
    } catch (Error& e) {
        e.addContext("drp export: reading " + src);
        throw;
    }
    if (!objects.has("is_primary"))
        throw badInput(src + ": table 'object' has no column 'is_primary'");
    const bool primaryOnly = inv.options["primary-only"].as<bool>();
    if (primaryOnly) {
        std::vector<std::size_t> rows;
        const auto& p = objects.column<Bool>("is_primary");
        for (std::size_t i = 0; i < p.size(); ++i)
            if (p[i]) rows.push_back(i);
        objects = objects.select(rows);
    }

    // Table HDU header: bands, flag bit names, what the rows are. Only our keywords: the HDF5
    // group attributes go to the primary header below.
    objects.metadata() = PropertyList();
    PropertyList& meta = objects.metadata();
    meta.set("BANDS", releaseAttrs.get<std::string>("DRP_BANDS", std::string()),
             "bands of the <b>_* flux columns");
    meta.set("PRIMONLY", primaryOnly, "true: only is_primary rows");
    for (const auto& f : pipeline::objectFlagInfo())
        meta.set("FLAGB" + std::to_string(f.bit), std::string(f.name),
                 "flags bit " + std::to_string(f.bit) + ": " + f.doc);

    PropertyList prov;
    for (const auto& e : releaseAttrs.entries()) prov.set(e.key, e.value, e.comment);
    prov.set("EXPORTER", versionString(), "drp version that wrote this FITS file");
    prov.set("EXPGIT", gitCommit(), "git commit of the exporter");
    prov.set("EXPORTED", jobs::isoNow(), "time of the export (UTC)");
    prov.set("SRCFILE", std::string(Repository::kRelease), "exported file (repository-relative)");
    prov.set("SRCSHA", sha256File(src), "SHA-256 of the exported HDF5 file");
    try {
        fits::writeTable(out, objects, prov, "OBJECT");
    } catch (Error& e) {
        e.addContext("drp export: writing " + out);
        throw;
    }
    inv.out << "drp export: " << objects.numRows() << (primaryOnly ? " primary" : "")
            << " objects, " << objects.columns().size() << " columns -> " << out << "\n";
    return 0;
}

const cli::RegisterCommand registration{{
    .name = "export",
    .summary = "Write the release Object table as a FITS binary table (TOPCAT, astropy)",
    .addOptions = addOptions,
    .run = run,
}};

}  // namespace
}  // namespace drp
