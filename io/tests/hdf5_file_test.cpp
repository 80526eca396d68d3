// HDF5 files: errors (class, file name, reason, HDF5 stack), attributes, N-D arrays, images,
// handles, file locking.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "drp/io/hdf5.h"
#include "drp/io/hdf5_table.h"
#include "hdf5_test_support.h"

namespace fs = std::filesystem;
using namespace drp;

namespace {

struct TempDir : test::TempDir {
    TempDir() : test::TempDir("drp_hdf5_file_test") {}
};

Table smallTable() {
    Table t;
    auto& x = t.addColumn<double>("x", "pixel", "Column position");
    auto& y = t.addColumn<double>("y", "pixel", "Row position");
    for (int i = 0; i < 2000; ++i) {
        x.push_back(i * 0.5);
        y.push_back(i * -0.25);
    }
    return t;
}

// Expect `f` to throw a drp::Error of class `cls` whose message contains every one of `parts`.
template <typename F>
void expectError(F f, const std::string& cls, std::initializer_list<std::string> parts) {
    try {
        f();
        ADD_FAILURE() << "expected an Error of class " << cls;
    } catch (const Error& e) {
        EXPECT_EQ(e.errorClass(), cls) << e.what();
        if (std::getenv("DRP_SHOW_ERRORS")) std::printf("[   info   ] %s\n", e.what());
        for (const auto& p : parts)
            EXPECT_NE(std::string(e.what()).find(p), std::string::npos)
                << "missing '" << p << "' in: " << e.what();
    }
}

}  // namespace

TEST(Hdf5Errors, MissingFileIsNotFound) {
    TempDir dir;
    std::string path = dir / "nope.h5";
    expectError([&] { h5::readTable(path, "objects"); }, "not_found", {path, "no such file"});
}

TEST(Hdf5Errors, NonHdf5FileIsBadInput) {
    TempDir dir;
    std::string path = dir / "text.h5";
    std::ofstream(path) << "SIMPLE  =                    T / this is not HDF5\n";
    expectError([&] { h5::File::open(path); }, "bad_input", {path, "not an HDF5 file", "HDF5: #0"});
}

TEST(Hdf5Errors, TruncatedFileIsBadInput) {
    TempDir dir;
    std::string path = dir / "cut.h5";
    h5::writeTable(path, "objects", smallTable());
    auto size = fs::file_size(path);
    fs::resize_file(path, size / 2);  // as if the writer died half-way without AtomicFile
    // HDF5 sees the superblock's end-of-file address beyond the actual end and refuses it.
    expectError([&] { h5::readTable(path, "objects"); }, "bad_input",
                {path, "truncated", "HDF5: #0", "H5Fopen"});
}

TEST(Hdf5Errors, MissingGroupAndColumnAreNotFound) {
    TempDir dir;
    std::string path = dir / "t.h5";
    h5::writeTable(path, "objects", smallTable());
    expectError([&] { h5::readTable(path, "sources"); }, "not_found",
                {path + ":/sources", "no such group"});
    expectError([&] { h5::readTable(path, "/a/b/c"); }, "not_found", {path + ":/a/b/c"});
    auto f = h5::File::open(path);
    expectError([&] { h5::readColumn<double>(f, "objects", "flux"); }, "not_found",
                {path + ":/objects", "no column 'flux'"});
    expectError([&] { h5::readTableRows(f, "objects", {}, {"x", "z"}); }, "not_found", {"'z'"});
    // A dataset where a group is expected is the wrong kind of object: bad_input.
    expectError([&] { h5::readTable(f, "/objects/x"); }, "bad_input",
                {path + ":/objects/x", "not a group"});
}

TEST(Hdf5Errors, WritingToReadOnlyFileIsLogicError) {
    TempDir dir;
    std::string path = dir / "t.h5";
    h5::writeTable(path, "objects", smallTable());
    auto f = h5::File::open(path);
    expectError([&] { h5::writeTable(f, "more", smallTable()); }, "logic", {path, "read-only"});
    expectError([&] { f.setAttribute("/objects", "k", 1); }, "logic", {"read-only"});
}

TEST(Hdf5Errors, DirectoryIsBadInput) {
    TempDir dir;
    expectError([&] { h5::File::open(dir / ""); }, "bad_input", {"directory"});
}

TEST(Hdf5Attributes, ScalarsAndStringArraysRoundTrip) {
    TempDir dir;
    std::string path = dir / "a.h5";
    {
        h5::AtomicFile out(path);
        auto& f = out.file();
        f.createGroup("/psf/model");
        f.setAttribute("/psf/model", "order", 3);
        f.setAttribute("/psf/model", "sigma", 1.75);
        f.setAttribute("/psf/model", "name", "gaussian");
        f.setAttribute("/psf/model", "valid", true);
        f.setAttribute("/psf/model", "order", 4);  // replaces
        f.setStringArrayAttribute("/psf/model", "bands", {"g", "r", "i"});
        out.commit();
    }
    auto f = h5::File::open(path);
    EXPECT_TRUE(f.isGroup("/psf/model"));
    EXPECT_FALSE(f.exists("/psf/other/deeper"));
    EXPECT_EQ(std::get<std::int64_t>(f.attribute("/psf/model", "order")), 4);
    EXPECT_EQ(std::get<double>(f.attribute("/psf/model", "sigma")), 1.75);
    EXPECT_EQ(std::get<std::string>(f.attribute("/psf/model", "name")), "gaussian");
    EXPECT_EQ(std::get<bool>(f.attribute("/psf/model", "valid")), true);
    EXPECT_EQ(f.stringArrayAttribute("/psf/model", "bands"),
              (std::vector<std::string>{"g", "r", "i"}));
    PropertyList all = f.attributes("/psf/model");  // scalars only, by name
    EXPECT_EQ(all.entries().size(), 4u);
    EXPECT_FALSE(all.has("bands"));
    EXPECT_EQ(f.children("/psf"), (std::vector<std::string>{"model"}));
    expectError([&] { f.attribute("/psf/model", "missing"); }, "not_found",
                {path + ":/psf/model", "'missing'"});
    expectError([&] { f.attribute("/psf/model", "bands"); }, "bad_input", {"not a scalar"});
}

TEST(Hdf5Arrays, NdArraysRoundTripWithAttributes) {
    TempDir dir;
    std::string path = dir / "arr.h5";
    h5::NdArray<double> coeffs{{2, 3, 4}, {}};
    for (int i = 0; i < 24; ++i) coeffs.data.push_back(i * 0.1 - 1);
    h5::NdArray<std::int32_t> counts{{5}, {1, 2, 3, 4, 5}};
    // Larger than 1 MiB: stored chunked and compressed.
    h5::NdArray<float> mesh{{300, 1000}, std::vector<float>(300000)};
    for (std::size_t i = 0; i < mesh.data.size(); ++i) mesh.data[i] = float(i % 977) * 0.5f;
    PropertyList attrs;
    attrs.set("unit", "nJy");
    attrs.set("order", 3);
    {
        h5::AtomicFile out(path);
        h5::writeArray(out.file(), "/psf/coefficients", coeffs, attrs);
        h5::writeArray(out.file(), "counts", counts);
        h5::writeArray(out.file(), "/background/mesh", mesh);
        expectError([&] { h5::writeArray(out.file(), "counts", counts); }, "logic", {"exists"});
        std::vector<double> three{1, 2, 3};
        expectError(
            [&] {
                h5::writeArray<double>(out.file(), "bad", three, {2, 2});
            },
            "logic", {"shape holds 4 values but 3"});
        out.commit();
    }
    auto f = h5::File::open(path);
    EXPECT_EQ(h5::readArray<double>(f, "/psf/coefficients"), coeffs);
    EXPECT_EQ(h5::readArray<std::int32_t>(f, "counts"), counts);
    EXPECT_EQ(h5::readArray<float>(f, "/background/mesh"), mesh);
    EXPECT_EQ(h5::datasetShape(f, "/background/mesh"), (std::vector<std::size_t>{300, 1000}));
    // Integer data may be read as floating point; the reverse is refused.
    auto asDouble = h5::readArray<double>(f, "counts");
    EXPECT_EQ(asDouble.data, (std::vector<double>{1, 2, 3, 4, 5}));
    expectError([&] { h5::readArray<std::int64_t>(f, "/psf/coefficients"); }, "bad_input",
                {path + ":/psf/coefficients", "floating-point"});
    EXPECT_EQ(std::get<std::string>(f.attribute("/psf/coefficients", "unit")), "nJy");
    EXPECT_LT(fs::file_size(path), 300000u * 4);  // the mesh compressed
}

TEST(Hdf5Arrays, ImagesKeepXy0AndNumpyOrder) {
    TempDir dir;
    std::string path = dir / "img.h5";
    Image<float> img(Box2I({100, -20}, {7, 5}));
    for (int j = 0; j < 5; ++j)
        for (int i = 0; i < 7; ++i) img(i, j) = float(10 * j + i);
    {
        h5::AtomicFile out(path);
        h5::writeImage(out.file(), "model", img);
        out.commit();
    }
    auto f = h5::File::open(path);
    // numpy order: shape (height, width), arr[y, x].
    EXPECT_EQ(h5::datasetShape(f, "model"), (std::vector<std::size_t>{5, 7}));
    auto back = h5::readImage<float>(f, "model");
    EXPECT_EQ(back.bbox(), img.bbox());
    for (int j = 0; j < 5; ++j)
        for (int i = 0; i < 7; ++i) EXPECT_EQ(back(i, j), img(i, j));
}

TEST(Hdf5Handles, MoveOnlyOwnership) {
    static_assert(!std::is_copy_constructible_v<h5::DatasetHandle>);
    static_assert(!std::is_copy_assignable_v<h5::FileHandle>);
    static_assert(std::is_nothrow_move_constructible_v<h5::GroupHandle>);
    TempDir dir;
    h5::File a = h5::File::create(dir / "m.h5");
    h5::Id id = a.id();
    h5::File b = std::move(a);
    EXPECT_FALSE(a.isOpen());  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
    EXPECT_EQ(b.id(), id);
    b.createGroup("g");
    b.close();
    EXPECT_FALSE(b.isOpen());
    b.close();  // idempotent
    // An id HDF5 never issued: closing reports failure instead of throwing or printing.
    h5::AttributeHandle bogus(123456789);
    EXPECT_FALSE(bogus.close());
    EXPECT_FALSE(bogus.valid());
    h5::PropertyListHandle empty(-1);
    EXPECT_FALSE(empty.valid());
}

TEST(Hdf5Locking, EnvironmentDisablesFileLocking) {
    TempDir dir;
    std::string path = dir / "locked.h5";
    h5::writeTable(path, "objects", smallTable());
    // Another process (here: another open file description) holds an exclusive flock.
    int fd = ::open(path.c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
    const char* old = std::getenv("HDF5_USE_FILE_LOCKING");
    std::string saved = old ? old : "";
    ::setenv("HDF5_USE_FILE_LOCKING", "TRUE", 1);
    expectError([&] { h5::File::open(path); }, "io", {path, "locked"});
    ::setenv("HDF5_USE_FILE_LOCKING", "FALSE", 1);
    EXPECT_EQ(h5::readTable(path, "objects"), smallTable());
    if (old)
        ::setenv("HDF5_USE_FILE_LOCKING", saved.c_str(), 1);
    else
        ::unsetenv("HDF5_USE_FILE_LOCKING");
    ::close(fd);
}
