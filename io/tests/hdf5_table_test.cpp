// Tables in HDF5: round trips of every column type, metadata, append, partial reads, atomic
// multi-table files, and interoperability with h5py (Debian's python3 with h5py/numpy).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "drp/io/hdf5_table.h"
#include "hdf5_test_support.h"

namespace fs = std::filesystem;
using namespace drp;

namespace {

struct TempDir : test::TempDir {
    TempDir() : test::TempDir("drp_hdf5_table_test") {}
};

// A catalog with every column type; values are functions of the row index so that any slice
// can be checked against truth.
Table makeCatalog(std::size_t n, std::size_t first = 0) {
    Table t;
    auto& id = t.addColumn<std::int64_t>("object_id", "", "Unique object id");
    auto& tract = t.addColumn<std::int32_t>("tract", "", "Tract id");
    auto& ra = t.addColumn<double>("ra", "deg", "Right ascension (ICRS)");
    auto& flux = t.addColumn<float>("g_psf_flux", "nJy", "PSF flux in g");
    auto& primary = t.addColumn<Bool>("is_primary", "", "Inner patch and tract, not a parent");
    auto& band = t.addColumn<std::string>("band", "", "Reference band");
    for (std::size_t k = first; k < first + n; ++k) {
        id.push_back(std::int64_t(k) * 1000003 + (std::int64_t(1) << 40));
        tract.push_back(int(k % 7) - 3);
        ra.push_back(150.0 + 1e-7 * double(k));
        flux.push_back(float(k) * 0.25f - 10.0f);
        primary.push_back(k % 3 == 0);
        band.push_back(std::string("ugrizy").substr(k % 6, 1 + k % 2));
    }
    t.metadata().set("software_version", "0.1.0", "drp version");
    t.metadata().set("config_hash", "abc123");
    t.metadata().set("tract", 9813, "tract id");
    t.metadata().set("pixel_scale", 0.2, "arcsec/pixel");
    // PropertyList::set(key, true) would pick the int overload; spell the bool explicitly.
    t.metadata().set("simulated", PropertyList::Value(true));
    return t;
}

int runPython(const std::string& script, const std::string& file) {
    const char* py = std::getenv("DRP_PYTHON");
    std::string interpreter = py && *py ? py : "/usr/bin/python3";
    std::string cmd = interpreter + " " + script + " " + file + " 2>&1";
    return std::system(cmd.c_str());
}

}  // namespace

TEST(Hdf5Table, RoundTripEveryTypeWithUnitsDescriptionsMetadata) {
    TempDir dir;
    Table t = makeCatalog(1000);
    h5::writeTable(dir / "cat.h5", "objects", t);
    Table back = h5::readTable(dir / "cat.h5", "objects");
    // operator== compares names, order, units, descriptions, values and metadata (with comments).
    EXPECT_EQ(back, t);
    EXPECT_EQ(back.columns()[2].unit, "deg");
    EXPECT_EQ(back.metadata().get<std::int64_t>("tract"), 9813);
    EXPECT_EQ(back.metadata().find("pixel_scale")->comment, "arcsec/pixel");
}

TEST(Hdf5Table, ColumnOrderIsPreservedNotAlphabetical) {
    TempDir dir;
    Table t;
    t.addColumn<double>("zeta").push_back(1);
    t.addColumn<double>("alpha").push_back(2);
    t.addColumn<double>("mid").push_back(3);
    h5::writeTable(dir / "o.h5", "t", t);
    Table back = h5::readTable(dir / "o.h5", "t");
    ASSERT_EQ(back.columns().size(), 3u);
    EXPECT_EQ(back.columns()[0].name, "zeta");
    EXPECT_EQ(back.columns()[1].name, "alpha");
    EXPECT_EQ(back.columns()[2].name, "mid");
}

TEST(Hdf5Table, EmptyTableAndZeroColumnTable) {
    TempDir dir;
    Table empty = makeCatalog(0);
    Table none;
    {
        h5::AtomicFile out(dir / "e.h5");
        h5::writeTable(out.file(), "empty", empty);
        h5::writeTable(out.file(), "none", none);
        out.commit();
    }
    EXPECT_EQ(h5::readTable(dir / "e.h5", "empty"), empty);
    EXPECT_EQ(h5::readTable(dir / "e.h5", "none"), none);
}

TEST(Hdf5Table, SeveralTablesInOneAtomicFile) {
    TempDir dir;
    std::string path = dir / "release.h5";
    Table objects = makeCatalog(50), sources = makeCatalog(120, 7);
    {
        h5::AtomicFile out(path);
        h5::writeTable(out.file(), "objects", objects);
        h5::writeTable(out.file(), "/visits/1234/sources", sources);
        // Nothing under the final name until commit: a crash here leaves no half file.
        EXPECT_FALSE(fs::exists(path));
        out.commit();
    }
    EXPECT_TRUE(fs::exists(path));
    EXPECT_EQ(h5::listTables(path), (std::vector<std::string>{"/objects", "/visits/1234/sources"}));
    EXPECT_EQ(h5::readTable(path, "/visits/1234/sources"), sources);
    EXPECT_EQ(h5::readTable(path, "objects"), objects);
    // No temporary left behind.
    int files = 0;
    for (auto& e : fs::directory_iterator(dir.path())) files += e.is_regular_file();
    EXPECT_EQ(files, 1);
}

TEST(Hdf5Table, UncommittedAtomicFileLeavesNothing) {
    TempDir dir;
    {
        h5::AtomicFile out(dir / "x.h5");
        h5::writeTable(out.file(), "objects", makeCatalog(10));
    }  // destroyed without commit, e.g. by an exception
    EXPECT_TRUE(fs::is_empty(dir.path()));
}

TEST(Hdf5Table, AppendExtendsEveryColumn) {
    TempDir dir;
    std::string path = dir / "a.h5";
    h5::TableWriteOptions opts;
    opts.minStringWidth["band"] = 8;  // later batches may have longer strings than the first
    h5::writeTable(path, "objects", makeCatalog(100), opts);
    {
        auto f = h5::File::open(path, h5::File::Mode::ReadWrite);
        Table more = makeCatalog(250, 100);
        // Columns in a different order are matched by name.
        Table reordered;
        for (auto it = more.columns().rbegin(); it != more.columns().rend(); ++it)
            reordered.addColumn(*it);
        h5::appendTable(f, "objects", reordered);
        Table longer = makeCatalog(3, 350);
        longer.column<std::string>("band")[0] = "gri_long";  // 8 bytes: fits the reserved width
        h5::appendTable(f, "objects", longer);
        f.close();
    }
    Table expected = makeCatalog(353);
    expected.column<std::string>("band")[350] = "gri_long";
    EXPECT_EQ(h5::readTable(path, "objects"), expected);
}

TEST(Hdf5Table, AppendRejectsMismatchAndLeavesTableUnchanged) {
    TempDir dir;
    std::string path = dir / "a.h5";
    h5::writeTable(path, "objects", makeCatalog(10));
    auto f = h5::File::open(path, h5::File::Mode::ReadWrite);
    Table tooLong = makeCatalog(2, 10);
    tooLong.column<std::string>("band")[1] = "much-too-long";
    try {
        h5::appendTable(f, "objects", tooLong);
        FAIL() << "expected an error";
    } catch (const Error& e) {
        EXPECT_EQ(e.errorClass(), "bad_input");
        EXPECT_NE(std::string(e.what()).find("a.h5:/objects/band"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("fixed width 2"), std::string::npos) << e.what();
    }
    Table wrongType = makeCatalog(2, 10);
    wrongType.columns()[1].data = std::vector<double>{1.0, 2.0};  // tract as float64
    EXPECT_THROW(h5::appendTable(f, "objects", wrongType), Error);
    Table missing = makeCatalog(2, 10);
    missing.columns().pop_back();
    EXPECT_THROW(h5::appendTable(f, "objects", missing), Error);
    EXPECT_EQ(h5::readTableSchema(f, "objects").numRows, 10u);
    f.close();
    EXPECT_EQ(h5::readTable(path, "objects"), makeCatalog(10));
}

TEST(Hdf5Table, PartialReadsOfColumnsAndRowRanges) {
    TempDir dir;
    std::string path = dir / "p.h5";
    // 70000 rows: larger than one 65536-row chunk, so ranges cross a chunk boundary.
    const std::size_t n = 70000;
    Table t = makeCatalog(n);
    h5::writeTable(path, "objects", t);
    auto f = h5::File::open(path);

    auto ra = h5::readColumn<double>(f, "objects", "ra", {65530, 65540});
    ASSERT_EQ(ra.size(), 10u);
    for (std::size_t i = 0; i < ra.size(); ++i) EXPECT_EQ(ra[i], t.column<double>("ra")[65530 + i]);
    auto band = h5::readColumn<std::string>(f, "objects", "band", {5, 9});
    EXPECT_EQ(band, (std::vector<std::string>{"y", "u", "gr", "r"}));
    auto prim = h5::readColumn<Bool>(f, "objects", "is_primary");
    EXPECT_EQ(prim, t.column<Bool>("is_primary"));
    // Range clipped at the end; begin past the end gives nothing.
    EXPECT_EQ(h5::readColumn<std::int32_t>(f, "objects", "tract", {n - 2, n + 100}).size(), 2u);
    EXPECT_TRUE(h5::readColumn<float>(f, "objects", "g_psf_flux", {n + 5, n + 9}).empty());

    Table rows = h5::readTableRows(f, "objects", {100, 200}, {"band", "object_id"});
    std::vector<std::size_t> idx;
    for (std::size_t i = 100; i < 200; ++i) idx.push_back(i);
    Table expected;
    expected.addColumn(t.select(idx).columnInfo("band"));
    expected.addColumn(t.select(idx).columnInfo("object_id"));
    expected.metadata() = t.metadata();
    EXPECT_EQ(rows, expected);

    // Typed reads are strict: int32 column read as double is an error, not a silent cast.
    try {
        h5::readColumn<double>(f, "objects", "tract");
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.errorClass(), "bad_input");
        EXPECT_NE(std::string(e.what()).find("int32"), std::string::npos) << e.what();
    }
    auto schema = h5::readTableSchema(f, "objects");
    EXPECT_EQ(schema.numRows, n);
    EXPECT_EQ(schema.columns[3],
              (h5::ColumnSchema{"g_psf_flux", ColumnType::Float32, "nJy", "PSF flux in g"}));
}

TEST(Hdf5Table, ChunkSizeChoice) {
    // Small tables: next power of two, at least 1024 rows; large: 65536 rows but at most 1 MiB.
    EXPECT_EQ(h5::defaultChunkRows(10, 8), 1024u);
    EXPECT_EQ(h5::defaultChunkRows(5000, 8), 8192u);
    EXPECT_EQ(h5::defaultChunkRows(10'000'000, 8), 65536u);
    EXPECT_EQ(h5::defaultChunkRows(10'000'000, 64), 16384u);
    EXPECT_EQ(h5::defaultChunkRows(10, 4'000'000), 1u);
    h5::TableWriteOptions bad;
    bad.deflateLevel = 12;
    EXPECT_THROW(bad.validate(), Error);
}

TEST(Hdf5Table, CompressionShrinksRedundantColumns) {
    TempDir dir;
    Table t;
    auto& c = t.addColumn<std::int64_t>("constant");
    c.assign(200000, 42);
    h5::writeTable(dir / "c.h5", "t", t);
    // 1.6 MB raw; deflate of a constant column is > 100x smaller. The bound is loose on purpose.
    EXPECT_LT(fs::file_size(dir / "c.h5"), 200000u * 8 / 20);
}

TEST(Hdf5Table, WriteIntoExistingGroupIsRejected) {
    TempDir dir;
    h5::AtomicFile out(dir / "d.h5");
    h5::writeTable(out.file(), "objects", makeCatalog(3));
    EXPECT_THROW(h5::writeTable(out.file(), "objects", makeCatalog(3)), Error);
    Table badMeta = makeCatalog(1);
    badMeta.metadata().set("drp_columns", "x");
    EXPECT_THROW(h5::writeTable(out.file(), "other", badMeta), Error);
}

TEST(Hdf5Table, H5pyReadsWhatWeWrite) {
    TempDir dir;
    std::string path = dir / "interop.h5";
    h5::writeTable(path, "objects", makeCatalog(500));
    std::string script = dir / "check.py";
    std::ofstream(script) << R"PY(
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
g = f["objects"]
n = 500
k = np.arange(n)
assert list(g.attrs["drp_columns"]) == ["object_id", "tract", "ra", "g_psf_flux", "is_primary", "band"], g.attrs["drp_columns"]
assert g["object_id"].dtype == np.int64 and (g["object_id"][:] == k * 1000003 + (1 << 40)).all()
assert g["tract"].dtype == np.int32 and (g["tract"][:] == (k % 7) - 3).all()
assert g["ra"].dtype == np.float64 and (g["ra"][:] == 150.0 + 1e-7 * k).all()
assert g["g_psf_flux"].dtype == np.float32 and (g["g_psf_flux"][:] == (k * 0.25 - 10).astype(np.float32)).all()
b = g["is_primary"][:]
assert b.dtype == np.bool_, b.dtype
assert (b == (k % 3 == 0)).all()
s = g["band"][:]
assert s.dtype.kind == "S", s.dtype
assert [x.decode() for x in s] == ["ugrizy"[i % 6 : i % 6 + 1 + i % 2] for i in k]
assert g["ra"].attrs["unit"] == "deg" and g["g_psf_flux"].attrs["unit"] == "nJy"
assert g["ra"].attrs["description"] == "Right ascension (ICRS)"
assert all("unit" in g[c].attrs for c in g)
assert g.attrs["software_version"] == "0.1.0" and g.attrs["tract"] == 9813
assert g.attrs["simulated"] == True and isinstance(g.attrs["simulated"], np.bool_)
assert g["ra"].compression == "gzip" and g["ra"].chunks is not None and g["ra"].maxshape == (None,)
print("h5py OK", h5py.__version__)
)PY";
    EXPECT_EQ(runPython(script, path), 0);
}

TEST(Hdf5Table, ReadsTablesWrittenByH5py) {
    TempDir dir;
    std::string path = dir / "foreign.h5";
    std::string script = dir / "write.py";
    std::ofstream(script) << R"PY(
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "w") as f:
    g = f.create_group("cat")
    g["b_flux"] = np.array([1.5, 2.5, 3.5])
    g["a_id"] = np.array([1, 2, 3], dtype=np.int16)
    g["flag"] = np.array([True, False, True])
    g.create_dataset("name", data=["x", "yy", "zzz"], dtype=h5py.string_dtype())
    g["b_flux"].attrs["unit"] = "nJy"
    g.attrs["origin"] = "h5py"
    g.attrs["version"] = 3
)PY";
    ASSERT_EQ(runPython(script, path), 0);
    Table t = h5::readTable(path, "cat");
    ASSERT_EQ(t.columns().size(), 4u);  // name order without drp_columns
    EXPECT_EQ(t.columns()[0].name, "a_id");
    EXPECT_EQ(t.column<std::int32_t>("a_id"), (std::vector<std::int32_t>{1, 2, 3}));
    EXPECT_EQ(t.column<double>("b_flux"), (std::vector<double>{1.5, 2.5, 3.5}));
    EXPECT_EQ(t.columnInfo("b_flux").unit, "nJy");
    EXPECT_EQ(t.column<Bool>("flag"), (std::vector<Bool>{true, false, true}));
    EXPECT_EQ(t.column<std::string>("name"), (std::vector<std::string>{"x", "yy", "zzz"}));
    EXPECT_EQ(t.metadata().get<std::string>("origin"), "h5py");
    EXPECT_EQ(t.metadata().get<std::int64_t>("version"), 3);
}
