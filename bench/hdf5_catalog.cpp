// HDF5 catalog benchmark: rows per second to write and read a release-like catalog of 1e6 rows
// and 40 columns (int64 id, int32 tract/patch, float64 ra/dec/errors, float32 fluxes and
// shapes, bool flags, a short string), with the production settings (chunks of 65536 rows,
// shuffle + deflate 4). Reference: h5py (Debian python3) reading our file and writing the same
// columns with the same chunking and filters, timed inside Python in the same run.
// Rates are per CPU-second (the development machine is shared: wall time measures the
// neighbours); HDF5 compresses in the calling thread, so CPU time is the single-core cost.
// The wall-clock times are in the notes.
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "drp/bench/bench.h"
#include "drp/io/hdf5_table.h"

namespace drp::bench {
namespace {

// Random values with realistic entropy (fluxes spanning decades, positions in a 1.5 deg tract),
// so that compression does not flatter the numbers.
Table makeCatalog(std::size_t n) {
    std::mt19937_64 rng(20261125);
    std::normal_distribution<double> gauss(0.0, 1.0);
    std::uniform_real_distribution<double> uni(0.0, 1.0);
    Table t;
    auto& id = t.addColumn<std::int64_t>("object_id", "", "Object id");
    auto& parent = t.addColumn<std::int64_t>("parent_id", "", "Parent id (0: none)");
    auto& tract = t.addColumn<std::int32_t>("tract", "", "Tract");
    auto& patch = t.addColumn<std::int32_t>("patch", "", "Patch");
    std::vector<double>* f64[6];
    const char* f64Names[6] = {"ra", "dec", "ra_err", "dec_err", "model_chi2_dof", "extendedness"};
    for (int k = 0; k < 6; ++k) f64[k] = &t.addColumn<double>(f64Names[k], k < 2 ? "deg" : "");
    std::vector<std::vector<float>*> f32;
    for (char b : std::string("ugrizy"))
        for (const char* what : {"psf_flux", "psf_flux_err", "model_flux", "model_flux_err"})
            f32.push_back(&t.addColumn<float>(std::string(1, b) + "_" + what, "nJy"));
    for (const char* s : {"shape_e1", "shape_e2", "shape_r"})
        f32.push_back(&t.addColumn<float>(s, s == std::string("shape_r") ? "arcsec" : ""));
    auto& primary = t.addColumn<Bool>("is_primary", "", "Primary");
    auto& flag = t.addColumn<Bool>("flag_edge", "", "Near an edge");
    auto& band = t.addColumn<std::string>("ref_band", "", "Reference band");
    for (std::size_t i = 0; i < n; ++i) {
        id.push_back((std::int64_t(9813) << 42) + std::int64_t(i));
        parent.push_back(i % 5 == 0 ? 0 : (std::int64_t(9813) << 42) + std::int64_t(i - i % 5));
        tract.push_back(9813);
        patch.push_back(int(i * 100 / n));
        (*f64[0]).push_back(150.0 + 1.5 * uni(rng));
        (*f64[1]).push_back(2.0 + 1.5 * uni(rng));
        (*f64[2]).push_back(1e-5 * (1 + uni(rng)));
        (*f64[3]).push_back(1e-5 * (1 + uni(rng)));
        (*f64[4]).push_back(1 + 0.1 * gauss(rng));
        (*f64[5]).push_back(uni(rng));
        double flux = std::pow(10.0, 2 + 3 * uni(rng));
        for (std::size_t k = 0; k < 24; ++k)
            f32[k]->push_back(float(k % 2 ? std::sqrt(flux) : flux * (1 + 0.1 * gauss(rng))));
        for (std::size_t k = 24; k < f32.size(); ++k) f32[k]->push_back(float(0.2 * gauss(rng)));
        primary.push_back(i % 5 != 0);
        flag.push_back(uni(rng) < 0.02);
        band.push_back(std::string(1, "ugrizy"[i % 6]));
    }
    t.metadata().set("software_version", "bench");
    return t;
}

const char* kPython = R"PY(
import sys, time, statistics, h5py
src, dst, reps = sys.argv[1], sys.argv[2], int(sys.argv[3])
rt, wt = [], []
for _ in range(reps):
    t = time.process_time()
    with h5py.File(src, "r") as f:
        g = f["objects"]
        cols = {k: (g[k][:], g[k].chunks, dict(g[k].attrs)) for k in g}
    rt.append(time.process_time() - t)
for _ in range(reps):
    t = time.process_time()
    with h5py.File(dst, "w") as f:
        g = f.create_group("objects")
        for k, (v, chunks, attrs) in cols.items():
            d = g.create_dataset(k, data=v, chunks=chunks, maxshape=(None,), compression="gzip",
                                 compression_opts=4, shuffle=True)
            for a, x in attrs.items():
                d.attrs[a] = x
    wt.append(time.process_time() - t)
print(statistics.median(rt), statistics.median(wt), h5py.__version__)
)PY";

std::vector<Measurement> run(Context& ctx) {
    const std::size_t n = ctx.quick ? 10000 : 1000000;
    Table cat = makeCatalog(n);
    const std::size_t ncol = cat.columns().size();
    namespace fs = std::filesystem;
    std::string dir = ctx.workDir.empty() ? fs::temp_directory_path().string() : ctx.workDir;
    std::string path = dir + "/hdf5_catalog.h5";
    int repeats = std::max(1, std::min(ctx.repeats, 3));  // each repeat moves ~200 MB

    Timing atomicWrite = timeIt(repeats, [&] { h5::writeTable(path, "objects", cat); });
    std::string plainPath = dir + "/hdf5_catalog_plain.h5";
    Timing plainWrite = timeIt(repeats, [&] {
        auto f = h5::File::create(plainPath);
        h5::writeTable(f, "objects", cat);
        f.close();
    });
    h5::TableWriteOptions fast;
    fast.deflateLevel = 1;
    Timing fastWrite = timeIt(repeats, [&] {
        auto f = h5::File::create(plainPath);
        h5::writeTable(f, "objects", cat, fast);
        f.close();
    });
    double fastMB = double(fs::file_size(plainPath)) / 1e6;
    h5::TableWriteOptions none;
    none.deflateLevel = 0;
    none.shuffle = false;
    Timing rawWrite = timeIt(repeats, [&] {
        auto f = h5::File::create(plainPath);
        h5::writeTable(f, "objects", cat, none);
        f.close();
    });
    Table back;
    Timing read = timeIt(repeats, [&] { back = h5::readTable(path, "objects"); });
    if (!(back == cat)) throw std::runtime_error("hdf5_catalog: read-back differs from written");
    auto fileMB = double(fs::file_size(path)) / 1e6;
    double rawMB = 0;
    for (const auto& c : cat.columns())
        std::visit(
            [&](const auto& v) {
                using T = typename std::decay_t<decltype(v)>::value_type;
                rawMB +=
                    double(v.size()) * (std::is_same_v<T, std::string> ? 1.0 : sizeof(T)) / 1e6;
            },
            c.data);
    Timing partial = timeIt(repeats, [&] {
        auto f = h5::File::open(path);
        auto ra = h5::readColumn<double>(f, "objects", "ra", {n / 2, n / 2 + 1000});
        doNotOptimize(ra.data());
    });

    // Reference: h5py on the same data, same chunks and filters.
    std::optional<double> pyRead, pyWrite;
    std::string pyVersion;
    const char* py = std::getenv("DRP_PYTHON");
    std::string interpreter = py && *py ? py : "/usr/bin/python3";
    std::string script = dir + "/hdf5_catalog_ref.py", out = dir + "/hdf5_catalog_ref.txt";
    std::ofstream(script) << kPython;
    std::string cmd = interpreter + " " + script + " " + path + " " + dir +
                      "/hdf5_catalog_h5py.h5 " + std::to_string(repeats) + " > " + out + " 2>&1";
    if (std::system(cmd.c_str()) == 0) {
        std::ifstream in(out);
        double r = 0, w = 0;
        if (in >> r >> w >> pyVersion) {
            pyRead = double(n) / r;
            pyWrite = double(n) / w;
        }
    } else if (ctx.log) {
        *ctx.log << "hdf5_catalog: h5py reference failed: " << cmd << "\n";
    }

    std::string size = std::to_string(n) + " rows x " + std::to_string(ncol) + " columns";
    std::vector<Measurement> ms;
    Measurement w;
    w.metric = "catalog write (new file, plain)";
    w.unit = "rows/CPU-s";
    w.value = double(n) / plainWrite.cpuMedian;
    w.note = size + ", 1 rank, shuffle+deflate 4, automatic chunks (<= 65536 rows), median of " +
             std::to_string(repeats) + "; no fsync (like h5py)";
    if (pyWrite) {
        w.reference = pyWrite;
        w.referenceTool = "h5py " + pyVersion;
    }
    ms.push_back(w);
    auto cpuNote = [](const Timing& t) {
        return "; CPU " + std::to_string(t.cpuMedian) + " s, wall " + std::to_string(t.median) +
               " s";
    };
    ms.back().note += cpuNote(plainWrite);
    Measurement f1 = w;
    f1.metric = "catalog write, deflate level 1";
    f1.value = double(n) / fastWrite.cpuMedian;
    f1.reference.reset();
    f1.referenceTool.clear();
    f1.note = size + ", file " + std::to_string(fastMB) + " MB" + cpuNote(fastWrite);
    ms.push_back(f1);
    Measurement f0 = f1;
    f0.metric = "catalog write, uncompressed";
    f0.value = double(n) / rawWrite.cpuMedian;
    f0.note = size + cpuNote(rawWrite);
    ms.push_back(f0);
    Measurement a;
    a.metric = "catalog write (atomic: temp + fsync + rename)";
    a.unit = "rows/CPU-s";
    a.value = double(n) / atomicWrite.cpuMedian;
    a.note = size + ", what writeTable(path, ...) does in production" + cpuNote(atomicWrite);
    ms.push_back(a);
    Measurement r;
    r.metric = "catalog read (all columns)";
    r.unit = "rows/CPU-s";
    r.value = double(n) / read.cpuMedian;
    r.note = size + ", from page cache" + cpuNote(read);
    if (pyRead) {
        r.reference = pyRead;
        r.referenceTool = "h5py " + pyVersion;
    }
    ms.push_back(r);
    Measurement p;
    p.metric = "partial read: open + 1000 rows of one column";
    p.unit = "CPU-s";
    p.higherIsBetter = false;
    p.value = partial.cpuMedian;
    p.note = "middle of the table (inflates one 512 KiB chunk)" + cpuNote(partial);
    ms.push_back(p);
    Measurement c;
    c.metric = "file size / raw column bytes";
    c.unit = "ratio";
    c.higherIsBetter = false;
    c.value = fileMB / rawMB;
    c.note = std::to_string(fileMB) + " MB file for " + std::to_string(rawMB) + " MB of values";
    ms.push_back(c);
    std::error_code ec;
    for (const char* f : {"/hdf5_catalog.h5", "/hdf5_catalog_plain.h5", "/hdf5_catalog_h5py.h5"})
        fs::remove(dir + f, ec);
    return ms;
}

const RegisterBenchmark reg{{.name = "hdf5_catalog",
                             .description = "HDF5 catalog write/read rows/s (1e6 x 40), vs h5py",
                             .run = run}};

}  // namespace
}  // namespace drp::bench
