// Columnar catalogs in HDF5: a drp::Table is one group with one 1-D dataset per column.
//
//   /objects                      group; attributes:
//     drp_format   = "drp.table/1"
//     drp_columns  = ["object_id", "ra", ...]     column order (HDF5 lists links by name)
//     drp_metadata_keys, drp_metadata_comments    order and comments of the table metadata
//     <key> = <value>                             every table metadata entry (provenance)
//   /objects/object_id            int64 dataset; attributes unit, description
//   /objects/ra                   float64 dataset; ...
//
// so that `h5py.File(p)["objects"]["ra"][:]` or pandas.DataFrame({k: g[k][:] for k in g})
// read a catalog with no drp code. Column types on disk:
//   int32/int64/float32/float64 little-endian IEEE/two's complement;
//   Bool   the 1-byte enum {FALSE=0, TRUE=1} h5py uses for numpy bool (h5py gives dtype bool);
//   string fixed-length, NUL-padded ASCII of the longest value's width (h5py gives bytes).
//          Fixed length because parallel HDF5 cannot write variable-length data collectively
//          and fixed-width strings compress and slice like numbers. Readers also accept
//          variable-length strings (as written by h5py/pandas).
//
// Storage: every column dataset is chunked with an unlimited maximum size (so appendTable can
// extend it) and compressed with shuffle + deflate. The chunk is at most 65536 rows and at most
// 1 MiB: a chunk is the unit HDF5 compresses, caches and reads, and HDF5's default chunk cache is
// 1 MiB per dataset, so a chunk larger than that would be re-read and re-inflated for every
// partial access. 64k rows keeps the per-chunk overhead (b-tree entry, ~a few hundred bytes, a
// deflate call) negligible for million-row catalogs while a partial read of a few rows
// inflates at most 512 KiB (float64). Small tables get smaller chunks (the next power of two
// >= their row count, at least 1024) so a 10-row table does not compress 64k rows of padding.
//
// Reading accepts any group of equal-length 1-D datasets (e.g. written by h5py); without
// drp_columns the columns come in name order and all scalar group attributes become metadata.
#pragma once

#include <cstddef>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "drp/core/table.h"
#include "drp/io/hdf5.h"

namespace drp::h5 {

struct TableWriteOptions {
    /// Rows per chunk; 0 chooses automatically (see the header comment).
    std::size_t chunkRows = 0;
    /// Deflate (gzip) level 0-9; 0 stores uncompressed. 4 is h5py's default: most of the gain
    /// of level 9 on catalog columns at a fraction of its CPU time.
    int deflateLevel = 4;
    /// Byte-shuffle before deflate: groups the exponent bytes of floats, which typically makes
    /// float columns compress 1.5-2x better for almost no CPU time.
    bool shuffle = true;
    /// Minimum fixed width (bytes) per string column, so later appends can hold longer values
    /// than the first batch (the width cannot grow once written).
    std::map<std::string, std::size_t> minStringWidth;

    /// Throws Error(config) naming the field, value and constraint.
    void validate() const;
};

/// Rows per chunk chosen for a column of `rowBytes`-byte values in a table of `numRows` rows.
std::size_t defaultChunkRows(std::size_t numRows, std::size_t rowBytes);

/// Write `table` as a new group `groupPath` (parents created) in an open, writable file.
/// logic error if the group exists already.
void writeTable(File& file, const std::string& groupPath, const Table& table,
                const TableWriteOptions& options = {});
/// Write `table` as the only content of a new file at `path`, atomically (temp + rename).
void writeTable(const std::string& path, const std::string& groupPath, const Table& table,
                const TableWriteOptions& options = {});

/// Append the rows of `rows` (same column names and types, in any order) to an existing table,
/// extending every column. Table metadata in `rows` is ignored. This changes the file in place:
/// for a crash-safe result append inside an h5::AtomicFile before commit().
void appendTable(File& file, const std::string& groupPath, const Table& rows);

/// Read a whole table: columns in stored order, units, descriptions and metadata.
Table readTable(const File& file, const std::string& groupPath);
Table readTable(const std::string& path, const std::string& groupPath);

/// Absolute paths of every drp table (group with drp_columns) in the file, depth-first, sorted.
std::vector<std::string> listTables(const File& file);
std::vector<std::string> listTables(const std::string& path);

/// Half-open row range [begin, end); end is clipped to the table length.
struct RowRange {
    std::size_t begin = 0;
    std::size_t end = std::numeric_limits<std::size_t>::max();
};

struct ColumnSchema {
    std::string name;
    ColumnType type;
    std::string unit, description;
    bool operator==(const ColumnSchema&) const = default;
};
/// Schema and size of a stored table without reading its rows.
struct TableSchema {
    std::size_t numRows = 0;
    std::vector<ColumnSchema> columns;
    PropertyList metadata;
};
TableSchema readTableSchema(const File& file, const std::string& groupPath);

/// Read rows [range) of one column as T (bad_input if the stored type is not T; T is one of
/// int32_t, int64_t, float, double, Bool, std::string).
template <typename T>
std::vector<T> readColumn(const File& file, const std::string& groupPath, const std::string& column,
                          RowRange range = {});
/// Read rows [range) of the named columns (all columns if empty), with units, descriptions and
/// metadata, as a Table.
Table readTableRows(const File& file, const std::string& groupPath, RowRange range,
                    const std::vector<std::string>& columns = {});

}  // namespace drp::h5
