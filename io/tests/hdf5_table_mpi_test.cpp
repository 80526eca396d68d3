// Collective catalog writes and reads with parallel HDF5, under mpirun (2 ranks by default, 4 in
// hdf5_table_mpi4_test). Every rank writes different rows into ONE table; the result must be the
// concatenation in rank order, and HDF5 must report that the transfers really were collective.
#include <gtest/gtest.h>
#include <mpi.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "drp/io/hdf5_parallel.h"

namespace fs = std::filesystem;
using namespace drp;

namespace {

int rankOf() {
    int r = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &r);
    return r;
}
int sizeOf() {
    int s = 0;
    MPI_Comm_size(MPI_COMM_WORLD, &s);
    return s;
}

// A directory shared by all ranks (named by rank 0's pid), removed at the end.
class SharedDir {
  public:
    SharedDir() {
        static int counter = 0;
        long id[2] = {long(getpid()), long(counter++)};
        MPI_Bcast(id, 2, MPI_LONG, 0, MPI_COMM_WORLD);
        _path = fs::temp_directory_path() /
                ("drp_hdf5_mpi_test_" + std::to_string(id[0]) + "_" + std::to_string(id[1]));
        if (rankOf() == 0) fs::create_directories(_path);
        MPI_Barrier(MPI_COMM_WORLD);
    }
    ~SharedDir() {
        MPI_Barrier(MPI_COMM_WORLD);
        std::error_code ec;
        if (rankOf() == 0) fs::remove_all(_path, ec);
    }
    std::string operator/(const std::string& name) const { return (_path / name).string(); }
    const fs::path& path() const { return _path; }

  private:
    fs::path _path;
};

// The rows rank `r` contributes: `n` rows whose values encode (r, i), and strings whose width
// grows with the rank, so that the ranks must agree on the widest one.
Table rowsOf(int r, std::size_t n) {
    Table t;
    auto& id = t.addColumn<std::int64_t>("object_id", "", "Object id");
    auto& rank = t.addColumn<std::int32_t>("rank", "", "Writing rank");
    auto& ra = t.addColumn<double>("ra", "deg", "Right ascension");
    auto& flux = t.addColumn<float>("flux", "nJy", "Flux");
    auto& flag = t.addColumn<Bool>("flag", "", "Flag");
    auto& name = t.addColumn<std::string>("name", "", "Name");
    for (std::size_t i = 0; i < n; ++i) {
        id.push_back((std::int64_t(r) << 32) + std::int64_t(i));
        rank.push_back(r);
        ra.push_back(10.0 * r + 1e-6 * double(i));
        flux.push_back(float(i) + 0.5f);
        flag.push_back((i + std::size_t(r)) % 2 == 0);
        name.push_back(std::string(1 + std::size_t(r) * 3 + i % 2, char('a' + r % 26)));
    }
    t.metadata().set("run", "collective-test", "provenance");
    t.metadata().set("ranks", sizeOf());
    return t;
}

Table concatenation(const std::vector<std::size_t>& counts) {
    Table all = rowsOf(0, 0);
    for (int r = 0; r < int(counts.size()); ++r) all.append(rowsOf(r, counts[r]));
    return all;
}

std::size_t rowsForRank(int r) {
    return 20000 + 12345 * std::size_t(r);
}

bool allRanks(bool mine) {
    int in = mine ? 1 : 0, out = 0;
    MPI_Allreduce(&in, &out, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
    return out != 0;
}

}  // namespace

TEST(Hdf5Collective, RanksWriteOneTableInRankOrder) {
    SharedDir dir;
    const int rank = rankOf(), size = sizeOf();
    std::vector<std::size_t> counts;
    for (int r = 0; r < size; ++r) counts.push_back(rowsForRank(r));
    std::string path = dir / "objects.h5";

    auto summary =
        h5::writeTableCollective(MPI_COMM_WORLD, path, "objects", rowsOf(rank, counts[rank]));

    std::size_t expectedOffset = 0, total = 0;
    for (int r = 0; r < size; ++r) {
        if (r < rank) expectedOffset += counts[r];
        total += counts[r];
    }
    EXPECT_EQ(summary.rowOffset, expectedOffset);
    EXPECT_EQ(summary.totalRows, total);
    ASSERT_EQ(summary.ioModes.size(), 6u);
    std::string modes;
    for (auto m : summary.ioModes) {
        EXPECT_NE(m, h5::MpioMode::NoCollective) << h5::mpioModeName(m);
        modes += std::string(" ") + h5::mpioModeName(m);
    }
    if (rank == 0) std::printf("[   info   ] rank 0 I/O modes per column:%s\n", modes.c_str());
    // H5Pget_mpio_actual_io_mode: every column's transfer was collective, on every rank.
    EXPECT_TRUE(allRanks(summary.allCollective()));

    // Serial read by every rank: the whole table is the concatenation in rank order.
    Table expected = concatenation(counts);
    EXPECT_EQ(h5::readTable(path, "objects"), expected);

    // Collective read of each rank's slice.
    Table mine = h5::readTableCollective(MPI_COMM_WORLD, path, "objects");
    h5::RowRange slice = h5::rankSlice(total, rank, size);
    std::vector<std::size_t> idx;
    for (std::size_t i = slice.begin; i < slice.end; ++i) idx.push_back(i);
    EXPECT_EQ(mine, expected.select(idx));
    // No temporary file left next to the output.
    if (rank == 0) {
        int files = 0;
        for (auto& e : fs::directory_iterator(dir.path())) files += e.is_regular_file();
        EXPECT_EQ(files, 1);
    }
}

TEST(Hdf5Collective, RanksWithoutRowsStillTakePart) {
    SharedDir dir;
    const int rank = rankOf(), size = sizeOf();
    std::vector<std::size_t> counts(size, 0);
    counts[size - 1] = 777;  // only the last rank has rows
    std::string path = dir / "sparse.h5";
    auto summary = h5::writeTableCollective(MPI_COMM_WORLD, path, "/tract/9813/objects",
                                            rowsOf(rank, counts[rank]));
    EXPECT_EQ(summary.totalRows, 777u);
    EXPECT_EQ(h5::readTable(path, "/tract/9813/objects"), concatenation(counts));
    EXPECT_EQ(h5::listTables(path), std::vector<std::string>{"/tract/9813/objects"});
}

TEST(Hdf5Collective, SchemaMismatchThrowsTheSameErrorOnEveryRank) {
    SharedDir dir;
    const int rank = rankOf();
    std::string path = dir / "bad.h5";
    Table rows = rowsOf(rank, 10);
    if (rank == 1) rows.columns()[2].unit = "rad";  // one rank disagrees on a unit
    std::string message;
    try {
        h5::writeTableCollective(MPI_COMM_WORLD, path, "objects", rows);
        ADD_FAILURE() << "expected an Error on rank " << rank;
    } catch (const Error& e) {
        EXPECT_EQ(e.errorClass(), "logic");
        message = e.what();
    }
    EXPECT_NE(message.find("rank(s) 1 "), std::string::npos) << message;
    EXPECT_NE(message.find(path), std::string::npos) << message;
    // Same text everywhere (compare lengths and bytes against rank 0's).
    std::string root = message;
    int len = int(root.size());
    MPI_Bcast(&len, 1, MPI_INT, 0, MPI_COMM_WORLD);
    root.resize(len);
    MPI_Bcast(root.data(), len, MPI_CHAR, 0, MPI_COMM_WORLD);
    EXPECT_EQ(message, root);
    MPI_Barrier(MPI_COMM_WORLD);
    EXPECT_FALSE(fs::exists(path));  // nothing written
}

TEST(Hdf5Collective, OpenErrorsAreCollectiveToo) {
    SharedDir dir;
    std::string path = dir / "missing.h5";
    try {
        h5::readTableCollective(MPI_COMM_WORLD, path, "objects");
        ADD_FAILURE() << "expected not_found";
    } catch (const Error& e) {
        EXPECT_EQ(e.errorClass(), "not_found");
        EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
    // Group missing in an existing file: every rank gets not_found, none hangs.
    std::string good = dir / "good.h5";
    h5::writeTableCollective(MPI_COMM_WORLD, good, "objects", rowsOf(rankOf(), 5));
    try {
        h5::readTableCollective(MPI_COMM_WORLD, good, "sources");
        ADD_FAILURE() << "expected not_found";
    } catch (const Error& e) {
        EXPECT_EQ(e.errorClass(), "not_found");
        EXPECT_NE(std::string(e.what()).find(good + ":/sources"), std::string::npos) << e.what();
    }
}

TEST(Hdf5Collective, RankSliceCoversAllRowsOnce) {
    for (std::size_t n : {0u, 1u, 7u, 1000u})
        for (int size : {1, 2, 3, 4, 7}) {
            std::size_t next = 0;
            for (int r = 0; r < size; ++r) {
                auto s = h5::rankSlice(n, r, size);
                EXPECT_EQ(s.begin, next);
                EXPECT_LE(s.end - s.begin, n / size + 1);
                next = s.end;
            }
            EXPECT_EQ(next, n);
        }
}
