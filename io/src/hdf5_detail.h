// Internals shared by the HDF5 sources of drp::io (the only files that include <hdf5.h>).
#pragma once

#include <hdf5.h>

#include <string>
#include <string_view>
#include <vector>

#include "drp/core/error.h"
#include "drp/core/table.h"
#include "drp/io/hdf5.h"
#include "drp/io/hdf5_table.h"

namespace drp::h5::detail {

static_assert(sizeof(hid_t) == sizeof(Id), "drp::h5::Id must be hid_t");

/// Silence HDF5's automatic error printing (once per process); every entry point calls it.
void ensureInitialized();

/// The current HDF5 error stack (walked with H5Ewalk2, then cleared).
struct ErrorStack {
    std::string text;  ///< "HDF5: #0 H5Fopen(): unable to open file [File / Bad file]; ..."
    std::vector<hid_t> minors;  ///< minor error numbers, innermost last
    bool has(hid_t minor) const;
};
ErrorStack takeErrorStack();

/// Throw Error(cls) "<where>: <what>: <HDF5 error stack>".
[[noreturn]] void fail(std::string_view cls, const std::string& where, const std::string& what);

/// Adopt a new id into a handle, or fail with the stack if HDF5 returned a negative id.
template <typename H>
H take(hid_t id, std::string_view cls, const std::string& where, const std::string& what) {
    if (id < 0) fail(cls, where, what);
    return H(id);
}
inline void check(herr_t rc, std::string_view cls, const std::string& where,
                  const std::string& what) {
    if (rc < 0) fail(cls, where, what);
}
inline void check(herr_t rc, const std::string& where, const std::string& what) {
    check(rc, error_class::kIo, where, what);
}

/// "/" + path without duplicate or trailing slashes ("a//b/" -> "/a/b").
std::string normalizePath(const std::string& path);
std::string joinPath(const std::string& group, const std::string& name);

/// Open objects, with not_found for a missing path and bad_input for the wrong kind.
GroupHandle openGroup(const File& file, const std::string& path);
DatasetHandle openDataset(const File& file, const std::string& path);

/// Datatypes. All returned handles own a copy (never a predefined library type).
DatatypeHandle copyType(hid_t predefined, const std::string& where);
DatatypeHandle boolType(const std::string& where);  ///< h5py's numpy-bool enum
DatatypeHandle fixedStringType(std::size_t width, const std::string& where);
DatatypeHandle vlenStringType(H5T_cset_t cset, const std::string& where);
bool isBoolEnum(hid_t type);
/// ColumnType stored in a file datatype; bad_input naming `where` if unsupported.
ColumnType columnTypeOfFileType(hid_t type, const std::string& where);
/// File and memory types of a column type (width used for strings).
DatatypeHandle fileTypeFor(ColumnType type, std::size_t stringWidth, const std::string& where);

/// Open an existing file with the given access list (serial or MPI-IO); classifies failures:
/// not_found (missing), bad_input (not HDF5, truncated, corrupt), io (locked, permissions).
File openWithAccessList(const std::string& path, File::Mode mode, hid_t fapl);

/// Property list helpers.
PropertyListHandle fileAccessList(const std::string& where);  ///< honours HDF5_USE_FILE_LOCKING
/// Creation list of class `cls` (H5P_FILE_CREATE, H5P_GROUP_CREATE, H5P_DATASET_CREATE) with
/// object modification times off: HDF5 stamps every object header with the wall clock by
/// default, which makes identical content give different bytes. Releases must be byte-identical
/// for any rank count and between reruns, so no drp file carries these times.
PropertyListHandle untimedCreationList(hid_t cls, const std::string& where);

/// Table layout shared by the serial and the collective writers.
struct ColumnLayout {
    std::size_t stringWidth = 0;  ///< bytes per value for strings, 0 otherwise
    std::size_t chunkRows = 0;
};
/// Widths and chunks per column for a table of `totalRows` rows; `stringWidths` (per column,
/// 0 for non-strings) are the data's maximum widths before the option minimum is applied.
std::vector<ColumnLayout> tableLayout(const Table& table, std::size_t totalRows,
                                      const std::vector<std::size_t>& stringWidths,
                                      const TableWriteOptions& options);
/// Longest value (bytes) per string column, 0 for other columns.
std::vector<std::size_t> maxStringWidths(const Table& table);
/// Create the group, its attributes and one empty-valued dataset of totalRows per column.
void createTableGroup(File& file, const std::string& groupPath, const Table& table,
                      std::size_t totalRows, const std::vector<ColumnLayout>& layout,
                      const TableWriteOptions& options);
/// Write `column` into rows [offset, offset + column.size()) of its dataset (strings must fit
/// the dataset's fixed width, else bad_input) with transfer list
/// `dxpl` (H5P_DEFAULT or collective). A zero-row column still calls H5Dwrite with an empty
/// selection (required for collective transfers). Returns the dataset's transfer io mode
/// (H5Pget_mpio_actual_io_mode) when `dxpl` is an MPI-IO list, else NoCollective.
int writeColumnSlab(File& file, const std::string& groupPath, const Column& column,
                    std::size_t offset, hid_t dxpl);
/// Read rows [range) of the named columns (all if empty) with transfer list `dxpl`.
Table readRowsWith(const File& file, const std::string& groupPath, RowRange range,
                   const std::vector<std::string>& columns, hid_t dxpl);

}  // namespace drp::h5::detail
