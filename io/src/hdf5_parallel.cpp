// Collective catalog I/O with parallel HDF5 (see drp/io/hdf5_parallel.h).
#include "drp/io/hdf5_parallel.h"

#include <algorithm>
#include <cstring>
#include <exception>
#include <memory>
#include <sstream>

#include "drp/core/atomic_file.h"
#include "hdf5_detail.h"

namespace drp::h5 {

using namespace detail;

namespace {

int commRank(MPI_Comm comm) {
    int r = 0;
    MPI_Comm_rank(comm, &r);
    return r;
}
int commSize(MPI_Comm comm) {
    int s = 1;
    MPI_Comm_size(comm, &s);
    return s;
}

// Run `step` on every rank. If it throws on any rank, every rank throws the same Error (class
// and message of the lowest failing rank), so no rank goes on into a collective call that the
// failed rank will never make.
template <typename F>
void collectively(MPI_Comm comm, F&& step) {
    std::string cls, msg;
    bool failed = false;
    try {
        step();
    } catch (const Error& e) {
        failed = true;
        cls = e.errorClass();
        msg = e.message();
    } catch (const std::exception& e) {
        failed = true;
        cls = error_class::kIo;
        msg = e.what();
    }
    int rank = commRank(comm), size = commSize(comm);
    int mine = failed ? rank : size, first = size;
    MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, comm);
    if (first == size) return;
    std::string text = cls + '\n' + msg;
    int len = int(text.size());
    MPI_Bcast(&len, 1, MPI_INT, first, comm);
    text.resize(std::size_t(len));
    MPI_Bcast(text.data(), len, MPI_CHAR, first, comm);
    std::size_t nl = text.find('\n');
    throw Error(text.substr(0, nl), "rank " + std::to_string(first) + ": " + text.substr(nl + 1));
}

// Everything that must be identical on every rank for the collective write: column names,
// types, units, descriptions (dataset creation and attribute writes are collective metadata
// operations and need identical arguments), and the table metadata (group attributes).
std::string schemaText(const Table& t) {
    std::ostringstream s;
    for (const auto& c : t.columns())
        s << "column\x1f" << c.name << '\x1f' << columnTypeName(c.type()) << '\x1f' << c.unit
          << '\x1f' << c.description << '\x1e';
    for (const auto& e : t.metadata().entries()) {
        s << "meta\x1f" << e.key << '\x1f' << e.value.index() << '\x1f';
        std::visit([&](const auto& v) { s << v; }, e.value);
        s << '\x1f' << e.comment << '\x1e';
    }
    return s.str();
}

PropertyListHandle mpioAccessList(MPI_Comm comm, const std::string& where) {
    auto fapl = fileAccessList(where);
    check(H5Pset_fapl_mpio(fapl.id(), comm, MPI_INFO_NULL), where, "setting the MPI-IO driver");
    // Metadata reads by all ranks collectively (one rank reads, broadcasts) and metadata writes
    // collectively: avoids P ranks hammering the file system for the same object headers.
    check(H5Pset_all_coll_metadata_ops(fapl.id(), true), where, "collective metadata reads");
    check(H5Pset_coll_metadata_write(fapl.id(), true), where, "collective metadata writes");
    return fapl;
}

PropertyListHandle collectiveTransfer(const std::string& where) {
    auto dxpl = take<PropertyListHandle>(H5Pcreate(H5P_DATASET_XFER), error_class::kIo, where,
                                         "creating transfer property list");
    check(H5Pset_dxpl_mpio(dxpl.id(), H5FD_MPIO_COLLECTIVE), where, "requesting collective I/O");
    return dxpl;
}

MpioMode toMode(int mode) {
    switch (mode) {
        case H5D_MPIO_CHUNK_INDEPENDENT:
            return MpioMode::ChunkIndependent;
        case H5D_MPIO_CHUNK_COLLECTIVE:
            return MpioMode::ChunkCollective;
        case H5D_MPIO_CHUNK_MIXED:
            return MpioMode::ChunkMixed;
        case H5D_MPIO_CONTIGUOUS_COLLECTIVE:
            return MpioMode::ContiguousCollective;
        default:
            return MpioMode::NoCollective;
    }
}

}  // namespace

const char* mpioModeName(MpioMode mode) {
    switch (mode) {
        case MpioMode::NoCollective:
            return "no-collective";
        case MpioMode::ChunkIndependent:
            return "chunk-independent";
        case MpioMode::ChunkCollective:
            return "chunk-collective";
        case MpioMode::ChunkMixed:
            return "chunk-mixed";
        case MpioMode::ContiguousCollective:
            return "contiguous-collective";
    }
    return "?";
}

bool CollectiveWriteSummary::allCollective() const {
    return std::all_of(ioModes.begin(), ioModes.end(), [](MpioMode m) {
        return m == MpioMode::ChunkCollective || m == MpioMode::ContiguousCollective;
    });
}

RowRange rankSlice(std::size_t numRows, int rank, int size) {
    using Wide = unsigned __int128;  // n * rank must not overflow for any n
    auto at = [&](int r) { return std::size_t(Wide(numRows) * unsigned(r) / unsigned(size)); };
    return RowRange{at(rank), at(rank + 1)};
}

File openCollective(MPI_Comm comm, const std::string& path, File::Mode mode) {
    ensureInitialized();
    File file(FileHandle(), path, path, false);
    collectively(comm, [&] {
        auto fapl = mpioAccessList(comm, path);
        file = openWithAccessList(path, mode, fapl.id());
    });
    return file;
}

CollectiveWriteSummary writeTableCollective(MPI_Comm comm, const std::string& path,
                                            const std::string& groupPath, const Table& localRows,
                                            const TableWriteOptions& options) {
    ensureInitialized();
    const int rank = commRank(comm), size = commSize(comm);
    const std::string where = path + ":" + normalizePath(groupPath);
    CollectiveWriteSummary summary;
    unsigned long long localN = 0;
    collectively(comm, [&] {
        options.validate();
        localN = localRows.numRows();
    });

    // 1. Schema agreement, before any collective HDF5 call.
    std::string hash = sha256Hex(schemaText(localRows));
    std::vector<char> all(std::size_t(size) * hash.size());
    MPI_Allgather(hash.data(), int(hash.size()), MPI_CHAR, all.data(), int(hash.size()), MPI_CHAR,
                  comm);
    std::string differing;
    for (int r = 1; r < size; ++r)
        if (std::memcmp(all.data() + std::size_t(r) * hash.size(), all.data(), hash.size()) != 0) {
            if (!differing.empty()) differing += ',';
            differing += std::to_string(r);
        }
    if (!differing.empty())
        throw logicError(where + ": collective table write: rank(s) " + differing +
                         " have a different column schema or metadata than rank 0 (names, "
                         "types, units, descriptions and metadata must be identical)");

    // 2. Row offsets in rank order, total size, agreed string widths.
    unsigned long long offset = 0, total = 0;
    MPI_Exscan(&localN, &offset, 1, MPI_UNSIGNED_LONG_LONG, MPI_SUM, comm);
    if (rank == 0) offset = 0;  // MPI_Exscan leaves rank 0's result undefined
    MPI_Allreduce(&localN, &total, 1, MPI_UNSIGNED_LONG_LONG, MPI_SUM, comm);
    std::vector<std::size_t> localWidths = maxStringWidths(localRows);
    std::vector<unsigned long long> widths(localWidths.begin(), localWidths.end());
    MPI_Allreduce(MPI_IN_PLACE, widths.data(), int(widths.size()), MPI_UNSIGNED_LONG_LONG, MPI_MAX,
                  comm);
    summary.totalRows = total;
    summary.rowOffset = offset;

    // 3. Rank 0 owns the atomic output: temporary name (broadcast to all), renamed at the end.
    std::unique_ptr<drp::AtomicFile> atomic;
    std::string tempPath;
    collectively(comm, [&] {
        if (rank == 0) {
            atomic = std::make_unique<drp::AtomicFile>(path);
            tempPath = atomic->tempPath();
        }
    });
    int len = int(tempPath.size());
    MPI_Bcast(&len, 1, MPI_INT, 0, comm);
    tempPath.resize(std::size_t(len));
    MPI_Bcast(tempPath.data(), len, MPI_CHAR, 0, comm);

    // 4. Collective create, metadata, and one collective write per column.
    collectively(comm, [&] {
        auto fapl = mpioAccessList(comm, path);
        auto fcpl = untimedCreationList(H5P_FILE_CREATE, path);
        auto id =
            take<FileHandle>(H5Fcreate(tempPath.c_str(), H5F_ACC_TRUNC, fcpl.id(), fapl.id()),
                             error_class::kIo, path, "cannot create HDF5 file " + tempPath);
        File file(std::move(id), tempPath, path, true);
        std::vector<std::size_t> agreed(widths.begin(), widths.end());
        auto layout = tableLayout(localRows, total, agreed, options);
        createTableGroup(file, groupPath, localRows, total, layout, options);
        auto dxpl = collectiveTransfer(where);
        for (const auto& c : localRows.columns())
            summary.ioModes.push_back(
                toMode(writeColumnSlab(file, groupPath, c, offset, dxpl.id())));
        file.close();
    });

    // 5. Every rank has closed the file: rank 0 publishes it.
    collectively(comm, [&] {
        if (rank == 0) atomic->commit();
    });
    return summary;
}

Table readTableCollective(MPI_Comm comm, const std::string& path, const std::string& groupPath) {
    File file = openCollective(comm, path, File::Mode::ReadOnly);
    Table out;
    collectively(comm, [&] {
        TableSchema schema = readTableSchema(file, groupPath);
        auto dxpl = collectiveTransfer(file.where(groupPath));
        out =
            readRowsWith(file, groupPath, rankSlice(schema.numRows, commRank(comm), commSize(comm)),
                         {}, dxpl.id());
        file.close();
    });
    return out;
}

}  // namespace drp::h5
