// Collective (MPI-IO) catalog writes and reads with parallel HDF5.
//
// Every rank holds some rows of one catalog (e.g. the objects of the patches it processed);
// writeTableCollective puts them into ONE table, rank 0's rows first, then rank 1's, ... The
// row offset of each rank is the exclusive prefix sum of the row counts (MPI_Exscan); each rank
// then writes its slab of every column with one collective H5Dwrite (H5FD_MPIO_COLLECTIVE), so
// MPI-IO can aggregate the pieces into large contiguous file writes.
//
// Every function here is COLLECTIVE over `comm`: all ranks of `comm` must call it, in the same
// order relative to other collective calls, with the same path and group path. A rank that
// skips the call makes the others wait forever. Errors that can be detected before any
// collective HDF5 call (schema disagreement, invalid options) are detected on every rank and
// thrown as the same drp::Error everywhere, so no rank is left waiting. The communicator is
// always passed explicitly (no MPI_COMM_WORLD inside). Each phase (validate, create the
// temporary file, write, commit) ends with an agreement step (an allreduce of "did anyone
// fail"), so an error on one rank becomes the same Error on all ranks at the end of that phase.
// What this cannot cover: an HDF5 call that fails on some ranks *inside* a collective HDF5
// operation (e.g. one node's MPI-IO write error) — MPI-IO offers no way to abort the others, so
// the job may hang until Slurm's time limit; the engine treats the whole collective write as one
// task for that reason.
//
// Strings are fixed-length (parallel HDF5 cannot write variable-length data collectively).
// Collective reads of variable-length string columns (files written by h5py) are not supported;
// read those with the serial readTable.
//
// On NFS/Lustre set HDF5_USE_FILE_LOCKING=FALSE (see hdf5.h); ROMIO on NFS additionally needs
// the file system mounted with noac for correct MPI-IO — use a parallel file system for
// collective writes.
#pragma once

#include <mpi.h>

#include <cstddef>
#include <string>
#include <vector>

#include "drp/core/table.h"
#include "drp/io/hdf5_table.h"

namespace drp::h5 {

/// How MPI-IO actually moved the data of one dataset (H5Pget_mpio_actual_io_mode).
enum class MpioMode {
    NoCollective,
    ChunkIndependent,
    ChunkCollective,
    ChunkMixed,
    ContiguousCollective
};
const char* mpioModeName(MpioMode mode);

struct CollectiveWriteSummary {
    std::size_t totalRows = 0;  ///< rows of all ranks
    std::size_t rowOffset = 0;  ///< first row of this rank's rows in the table
    /// Per column (in table order): the I/O mode HDF5 reports for this rank's transfer.
    std::vector<MpioMode> ioModes;
    /// True if every column's transfer was collective on this rank.
    bool allCollective() const;
};

/// COLLECTIVE. Create a new file at `path` (atomically: temporary name, renamed by rank 0 once
/// every rank has finished) holding the table `groupPath` made of every rank's `localRows` in
/// rank order. All ranks must pass tables with identical column names, types, units,
/// descriptions and metadata (checked first with an allgather of a schema hash; a mismatch
/// throws the same Error(logic) on every rank). Ranks may have zero rows. String column widths
/// are agreed across ranks (the maximum).
CollectiveWriteSummary writeTableCollective(MPI_Comm comm, const std::string& path,
                                            const std::string& groupPath, const Table& localRows,
                                            const TableWriteOptions& options = {});

/// The contiguous slice of rows rank r of P reads from an n-row table: [n*r/P, n*(r+1)/P).
RowRange rankSlice(std::size_t numRows, int rank, int size);

/// COLLECTIVE. Read this rank's slice (rankSlice) of a table with collective transfers. The
/// concatenation of all ranks' results in rank order is the whole table.
Table readTableCollective(MPI_Comm comm, const std::string& path, const std::string& groupPath);

/// COLLECTIVE. Open an existing file with the MPI-IO driver (H5Pset_fapl_mpio).
File openCollective(MPI_Comm comm, const std::string& path, File::Mode mode = File::Mode::ReadOnly);

}  // namespace drp::h5
