// Byte determinism of every writer: the same content written twice, more than a second apart,
// gives identical files (no wall-clock stamps from CFITSIO or HDF5), and the FITS checksums we
// write with fixed comments are valid for astropy. Releases rely on this to be byte-identical
// for any MPI rank count and between reruns.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>

#include "drp/core/table.h"
#include "drp/io/fits.h"
#include "drp/io/hdf5.h"
#include "drp/io/hdf5_table.h"
#include "fits_test_support.h"

using namespace drp;
using drp::testing::ScratchDir;

namespace {

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

Exposure smallExposure() {
    Exposure exp(Box2I(Point2I(3, 4), Extent2I(40, 30)));
    for (int j = 0; j < 30; ++j)
        for (int i = 0; i < 40; ++i) {
            exp.image()(i, j) = float(i * 0.5 + j);
            exp.variance()(i, j) = 1.f + float(i % 3);
            exp.mask()(i, j) = (i + j) % 5 == 0 ? 1 : 0;
        }
    exp.setPhotoCalib(PhotoCalib{57.5, 0.25});
    return exp;
}

Table smallTable() {
    Table t;
    auto& a = t.addColumn<std::int64_t>("id", "", "identifier");
    auto& b = t.addColumn<double>("flux", "nJy", "a flux");
    auto& c = t.addColumn<std::string>("name", "", "a name");
    for (int i = 0; i < 100; ++i) {
        a.push_back(i);
        b.push_back(i * 1.5);
        c.push_back("obj" + std::to_string(i));
    }
    t.metadata().set("SOFTWARE", "drp test");
    return t;
}

/// Write with `write(path)` twice, 1.1 s apart (HDF5 and FITS stamps have 1 s resolution).
template <typename F>
void expectStableBytes(const ScratchDir& dir, const std::string& name, F write) {
    std::string a = dir.file("a-" + name), b = dir.file("b-" + name);
    write(a);
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    write(b);
    std::string ba = slurp(a), bb = slurp(b);
    ASSERT_FALSE(ba.empty());
    EXPECT_TRUE(ba == bb) << name << ": two writes of the same content differ";
}

}  // namespace

TEST(Determinism, WritersGiveIdenticalBytes) {
    ScratchDir dir("determinism");
    Exposure exp = smallExposure();
    Table table = smallTable();
    expectStableBytes(dir, "exposure.fits",
                      [&](const std::string& p) { fits::writeExposure(p, exp); });
    expectStableBytes(dir, "table.fits", [&](const std::string& p) { fits::writeTable(p, table); });
    expectStableBytes(dir, "table.h5", [&](const std::string& p) {
        h5::writeTable(p, "/deep/group/objects", table);
    });
}

TEST(Determinism, AstropyAcceptsOurChecksums) {
    if (drp::testing::python().empty()) GTEST_SKIP() << "DRP_PYTHON not set";
    ScratchDir dir("determinism_astropy");
    std::string e = dir.file("exp.fits"), t = dir.file("table.fits");
    fits::writeExposure(e, smallExposure());
    fits::writeTable(t, smallTable());
    // astropy verifies DATASUM and CHECKSUM on open with checksum=True and warns on a mismatch;
    // warnings are made errors so that a bad sum fails the command.
    std::ostringstream cmd;
    cmd << drp::testing::python() << " -W error -c \""
        << "from astropy.io import fits\n"
        << "import sys\n"
        << "n = 0\n"
        << "for p in sys.argv[1:]:\n"
        << "    with fits.open(p, checksum=True) as h:\n"
        << "        for x in h:\n"
        << "            x.data\n"
        << "            assert 'CHECKSUM' in x.header and 'DATASUM' in x.header, (p, x.name)\n"
        << "            n += 1\n"
        << "print(n)\n\" " << e << " " << t;
    auto lines = drp::testing::runLines(cmd.str());
    ASSERT_FALSE(lines.empty());
    EXPECT_GE(std::stoi(lines.back()), 5);  // exposure: primary + 3 planes; table: primary + 1
}
