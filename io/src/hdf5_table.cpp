// Columnar tables in HDF5 (see drp/io/hdf5_table.h).
#include <algorithm>
#include <bit>
#include <cstring>
#include <set>

#include "hdf5_detail.h"

namespace drp::h5 {

using namespace detail;

namespace {
constexpr const char* kFormatAttr = "drp_format";
constexpr const char* kFormat = "drp.table/1";
constexpr const char* kColumnsAttr = "drp_columns";
constexpr const char* kMetaKeysAttr = "drp_metadata_keys";
constexpr const char* kMetaCommentsAttr = "drp_metadata_comments";
constexpr std::size_t kMaxChunkRows = 65536;
constexpr std::size_t kMinChunkRows = 1024;
constexpr std::size_t kMaxChunkBytes = std::size_t(1) << 20;  // HDF5's default chunk cache

std::size_t valueBytes(ColumnType type, std::size_t stringWidth) {
    switch (type) {
        case ColumnType::Int32:
            return 4;
        case ColumnType::Int64:
            return 8;
        case ColumnType::Float32:
            return 4;
        case ColumnType::Float64:
            return 8;
        case ColumnType::Bool:
            return 1;
        case ColumnType::String:
            return std::max<std::size_t>(stringWidth, 1);
    }
    return 1;
}

std::string str(const PropertyList::Value& v, const std::string& where, const std::string& name) {
    if (auto* s = std::get_if<std::string>(&v)) return *s;
    throw badInput(where + ": attribute '" + name + "' is not a string");
}

DataspaceHandle datasetSpace(hid_t ds, const std::string& where) {
    return take<DataspaceHandle>(H5Dget_space(ds), error_class::kBadInput, where, "dataspace");
}

// Select rows [offset, offset+count) of a 1-D file space, and make the matching memory space.
// An empty selection keeps a valid memory space with nothing selected: collective transfers
// require every rank to call H5Dwrite/H5Dread, even with no rows.
DataspaceHandle selectRows(hid_t fspace, hsize_t offset, hsize_t count, const std::string& where) {
    if (count == 0) {
        check(H5Sselect_none(fspace), where, "selecting rows");
        auto m = take<DataspaceHandle>(H5Scopy(fspace), error_class::kIo, where, "memory space");
        check(H5Sselect_none(m.id()), where, "selecting rows");
        return m;
    }
    check(H5Sselect_hyperslab(fspace, H5S_SELECT_SET, &offset, nullptr, &count, nullptr), where,
          "selecting rows");
    return take<DataspaceHandle>(H5Screate_simple(1, &count, nullptr), error_class::kIo, where,
                                 "memory space");
}

std::size_t datasetRows(hid_t ds, const std::string& where) {
    auto space = datasetSpace(ds, where);
    if (H5Sget_simple_extent_ndims(space.id()) != 1)
        throw badInput(where + ": column dataset is not 1-dimensional");
    hsize_t n = 0;
    H5Sget_simple_extent_dims(space.id(), &n, nullptr);
    return std::size_t(n);
}

std::size_t fixedStringWidth(hid_t ds, const std::string& where) {
    auto t = take<DatatypeHandle>(H5Dget_type(ds), error_class::kBadInput, where, "dataset type");
    if (H5Tget_class(t.id()) != H5T_STRING || H5Tis_variable_str(t.id()) > 0)
        throw badInput(where + ": expected a fixed-length string column");
    return H5Tget_size(t.id());
}

std::size_t maxLength(const std::vector<std::string>& v) {
    std::size_t w = 0;
    for (const auto& s : v) w = std::max(w, s.size());
    return w;
}

Column::Data readColumnData(hid_t ds, ColumnType type, hsize_t begin, hsize_t count, hid_t dxpl,
                            const std::string& where) {
    auto fspace = datasetSpace(ds, where);
    auto mspace = selectRows(fspace.id(), begin, count, where);
    const std::string what = "reading rows";
    auto readInto = [&](hid_t memType, void* buf) {
        // A non-null buffer even for zero rows (HDF5 rejects null buffers in some paths).
        static char dummy;
        check(H5Dread(ds, memType, mspace.id(), fspace.id(), dxpl, count ? buf : &dummy),
              error_class::kBadInput, where, what);
    };
    switch (type) {
        case ColumnType::Int32: {
            std::vector<std::int32_t> v(count);
            readInto(H5T_NATIVE_INT32, v.data());
            return v;
        }
        case ColumnType::Int64: {
            std::vector<std::int64_t> v(count);
            readInto(H5T_NATIVE_INT64, v.data());
            return v;
        }
        case ColumnType::Float32: {
            std::vector<float> v(count);
            readInto(H5T_NATIVE_FLOAT, v.data());
            return v;
        }
        case ColumnType::Float64: {
            std::vector<double> v(count);
            readInto(H5T_NATIVE_DOUBLE, v.data());
            return v;
        }
        case ColumnType::Bool: {
            static_assert(sizeof(Bool) == 1);
            std::vector<Bool> v(count);
            auto t = boolType(where);
            readInto(t.id(), v.data());
            // Normalise: any non-zero byte (possible in foreign files) is true.
            for (auto& b : v) b = Bool(b.value != 0);
            return v;
        }
        case ColumnType::String: {
            auto ft = take<DatatypeHandle>(H5Dget_type(ds), error_class::kBadInput, where, "type");
            std::vector<std::string> v;
            v.reserve(count);
            if (H5Tis_variable_str(ft.id()) > 0) {
                auto mt = vlenStringType(H5Tget_cset(ft.id()), where);
                std::vector<char*> ptrs(count, nullptr);
                readInto(mt.id(), ptrs.data());
                for (char* p : ptrs) v.emplace_back(p ? p : "");
                if (count) H5Dvlen_reclaim(mt.id(), mspace.id(), H5P_DEFAULT, ptrs.data());
            } else {
                // Memory type identical to the file type: no conversion (keeps MPI-IO collective).
                auto mt = take<DatatypeHandle>(H5Tcopy(ft.id()), error_class::kIo, where, "type");
                std::size_t w = H5Tget_size(ft.id());
                bool spacePad = H5Tget_strpad(ft.id()) == H5T_STR_SPACEPAD;
                std::vector<char> buf(count * w);
                readInto(mt.id(), buf.data());
                for (hsize_t i = 0; i < count; ++i) {
                    const char* p = buf.data() + i * w;
                    std::size_t len = strnlen(p, w);
                    if (spacePad)
                        while (len > 0 && p[len - 1] == ' ') --len;
                    v.emplace_back(p, len);
                }
            }
            return v;
        }
    }
    throw logicError("unknown column type");
}

void validateNames(const Table& table, const std::string& where) {
    for (const auto& c : table.columns()) {
        if (c.name.empty() || c.name == "." || c.name.find('/') != std::string::npos)
            throw logicError(where + ": column name '" + c.name +
                             "' cannot be an HDF5 dataset name (empty, '.' or containing '/')");
    }
    for (const auto& e : table.metadata().entries()) {
        if (e.key.rfind("drp_", 0) == 0 || e.key.empty())
            throw logicError(where + ": table metadata key '" + e.key +
                             "' is reserved (drp_ prefix) or empty");
    }
}
}  // namespace

void TableWriteOptions::validate() const {
    if (deflateLevel < 0 || deflateLevel > 9)
        throw configError("TableWriteOptions.deflateLevel = " + std::to_string(deflateLevel) +
                          ": must be in 0..9");
    if (chunkRows > (std::size_t(1) << 24))
        throw configError("TableWriteOptions.chunkRows = " + std::to_string(chunkRows) +
                          ": must be 0 (automatic) or at most 16777216");
    for (const auto& [name, w] : minStringWidth)
        if (w > (std::size_t(1) << 20))
            throw configError("TableWriteOptions.minStringWidth[" + name +
                              "] = " + std::to_string(w) + ": must be at most 1048576 bytes");
}

std::size_t defaultChunkRows(std::size_t numRows, std::size_t rowBytes) {
    std::size_t rows =
        std::clamp(std::bit_ceil(std::max<std::size_t>(numRows, 1)), kMinChunkRows, kMaxChunkRows);
    std::size_t cap = std::max<std::size_t>(1, kMaxChunkBytes / std::max<std::size_t>(rowBytes, 1));
    return std::min(rows, cap);
}

namespace detail {

std::vector<std::size_t> maxStringWidths(const Table& table) {
    std::vector<std::size_t> w;
    for (const auto& c : table.columns()) {
        auto* s = std::get_if<std::vector<std::string>>(&c.data);
        w.push_back(s ? maxLength(*s) : 0);
    }
    return w;
}

std::vector<ColumnLayout> tableLayout(const Table& table, std::size_t totalRows,
                                      const std::vector<std::size_t>& stringWidths,
                                      const TableWriteOptions& options) {
    std::vector<ColumnLayout> out;
    std::size_t i = 0;
    for (const auto& c : table.columns()) {
        ColumnLayout l;
        if (c.type() == ColumnType::String) {
            auto it = options.minStringWidth.find(c.name);
            std::size_t minW = it == options.minStringWidth.end() ? 0 : it->second;
            l.stringWidth = std::max({stringWidths.at(i), minW, std::size_t(1)});
        }
        std::size_t bytes = valueBytes(c.type(), l.stringWidth);
        l.chunkRows = options.chunkRows ? options.chunkRows : defaultChunkRows(totalRows, bytes);
        out.push_back(l);
        ++i;
    }
    return out;
}

void createTableGroup(File& file, const std::string& groupPath, const Table& table,
                      std::size_t totalRows, const std::vector<ColumnLayout>& layout,
                      const TableWriteOptions& options) {
    std::string gw = file.where(groupPath);
    if (!file.writable()) throw logicError(gw + ": file is open read-only, cannot write a table");
    validateNames(table, gw);
    if (file.exists(groupPath)) throw logicError(gw + ": exists already, cannot write a new table");
    file.createGroup(groupPath);

    file.setAttribute(groupPath, kFormatAttr, kFormat);
    std::vector<std::string> names;
    for (const auto& c : table.columns()) names.push_back(c.name);
    if (!names.empty()) file.setStringArrayAttribute(groupPath, kColumnsAttr, names);
    const auto& meta = table.metadata();
    if (!meta.empty()) {
        std::vector<std::string> keys, comments;
        for (const auto& e : meta.entries()) {
            keys.push_back(e.key);
            comments.push_back(e.comment);
        }
        file.setStringArrayAttribute(groupPath, kMetaKeysAttr, keys);
        file.setStringArrayAttribute(groupPath, kMetaCommentsAttr, comments);
        file.setAttributes(groupPath, meta);
    }

    std::size_t i = 0;
    for (const auto& c : table.columns()) {
        std::string path = joinPath(groupPath, c.name);
        std::string w = file.where(path);
        hsize_t dims = totalRows, maxDims = H5S_UNLIMITED, chunk = layout[i].chunkRows;
        auto space = take<DataspaceHandle>(H5Screate_simple(1, &dims, &maxDims), error_class::kIo,
                                           w, "creating dataspace");
        auto dcpl = untimedCreationList(H5P_DATASET_CREATE, w);
        check(H5Pset_chunk(dcpl.id(), 1, &chunk), w, "setting chunk size");
        if (options.shuffle) check(H5Pset_shuffle(dcpl.id()), w, "setting shuffle filter");
        if (options.deflateLevel > 0)
            check(H5Pset_deflate(dcpl.id(), unsigned(options.deflateLevel)), w, "setting deflate");
        auto type = fileTypeFor(c.type(), layout[i].stringWidth, w);
        take<DatasetHandle>(H5Dcreate2(file.id(), path.c_str(), type.id(), space.id(), H5P_DEFAULT,
                                       dcpl.id(), H5P_DEFAULT),
                            error_class::kIo, w, "creating column dataset");
        file.setAttribute(path, "unit", PropertyList::Value(c.unit));
        file.setAttribute(path, "description", PropertyList::Value(c.description));
        ++i;
    }
}

int writeColumnSlab(File& file, const std::string& groupPath, const Column& column,
                    std::size_t offset, hid_t dxpl) {
    std::string path = joinPath(groupPath, column.name);
    std::string w = file.where(path);
    auto ds = openDataset(file, path);
    hsize_t count = column.size();
    auto fspace = datasetSpace(ds.id(), w);
    auto mspace = selectRows(fspace.id(), offset, count, w);
    static char dummy;
    auto write = [&](hid_t memType, const void* buf) {
        check(H5Dwrite(ds.id(), memType, mspace.id(), fspace.id(), dxpl, count ? buf : &dummy), w,
              "writing rows");
    };
    std::visit(
        [&](const auto& v) {
            using T = typename std::decay_t<decltype(v)>::value_type;
            if constexpr (std::is_same_v<T, std::int32_t>)
                write(H5T_NATIVE_INT32, v.data());
            else if constexpr (std::is_same_v<T, std::int64_t>)
                write(H5T_NATIVE_INT64, v.data());
            else if constexpr (std::is_same_v<T, float>)
                write(H5T_NATIVE_FLOAT, v.data());
            else if constexpr (std::is_same_v<T, double>)
                write(H5T_NATIVE_DOUBLE, v.data());
            else if constexpr (std::is_same_v<T, Bool>) {
                auto t = boolType(w);
                write(t.id(), v.data());
            } else {
                std::size_t width = fixedStringWidth(ds.id(), w);
                std::vector<char> buf(v.size() * width, '\0');
                for (std::size_t i = 0; i < v.size(); ++i) {
                    if (v[i].size() > width)
                        throw badInput(w + ": string of " + std::to_string(v[i].size()) +
                                       " bytes in row " + std::to_string(offset + i) +
                                       " does not fit the column width " + std::to_string(width) +
                                       " (set TableWriteOptions.minStringWidth when creating it)");
                    std::memcpy(buf.data() + i * width, v[i].data(), v[i].size());
                }
                auto t = fixedStringType(width, w);
                write(t.id(), buf.data());
            }
        },
        column.data);
    if (dxpl == H5P_DEFAULT) return int(H5D_MPIO_NO_COLLECTIVE);
    H5D_mpio_actual_io_mode_t mode = H5D_MPIO_NO_COLLECTIVE;
    check(H5Pget_mpio_actual_io_mode(dxpl, &mode), w, "querying the MPI-IO mode");
    return int(mode);
}

Table readRowsWith(const File& file, const std::string& groupPath, RowRange range,
                   const std::vector<std::string>& columns, hid_t dxpl) {
    TableSchema schema = readTableSchema(file, groupPath);
    std::size_t end = std::min(range.end, schema.numRows);
    std::size_t begin = std::min(range.begin, end);
    std::vector<const ColumnSchema*> wanted;
    if (columns.empty()) {
        for (const auto& c : schema.columns) wanted.push_back(&c);
    } else {
        for (const auto& name : columns) {
            auto it = std::find_if(schema.columns.begin(), schema.columns.end(),
                                   [&](const ColumnSchema& c) { return c.name == name; });
            if (it == schema.columns.end())
                throw notFound(file.where(groupPath) + ": table has no column '" + name + "'");
            wanted.push_back(&*it);
        }
    }
    Table out;
    for (const ColumnSchema* c : wanted) {
        std::string path = joinPath(groupPath, c->name);
        auto ds = openDataset(file, path);
        out.addColumn(
            Column{c->name, c->unit, c->description,
                   readColumnData(ds.id(), c->type, begin, end - begin, dxpl, file.where(path))});
    }
    out.metadata() = std::move(schema.metadata);
    return out;
}

}  // namespace detail

// ---- public API -------------------------------------------------------------------------

TableSchema readTableSchema(const File& file, const std::string& groupPath) {
    std::string gw = file.where(groupPath);
    openGroup(file, groupPath);  // not_found / bad_input with the path
    bool drpTable = file.hasAttribute(groupPath, kFormatAttr);
    std::vector<std::string> names;
    if (file.hasAttribute(groupPath, kColumnsAttr)) {
        names = file.stringArrayAttribute(groupPath, kColumnsAttr);
    } else if (!drpTable) {
        // A foreign group (h5py/pandas): every dataset directly below is a column.
        for (const auto& n : file.children(groupPath))
            if (!file.isGroup(joinPath(groupPath, n))) names.push_back(n);
        if (names.empty())
            throw badInput(gw + ": not a table (no drp_format attribute and no column datasets)");
    }
    TableSchema schema;
    bool first = true;
    for (const auto& name : names) {
        std::string path = joinPath(groupPath, name);
        std::string w = file.where(path);
        if (!file.exists(path))
            throw badInput(gw + ": corrupt table: column '" + name +
                           "' is listed in drp_columns but has no dataset");
        auto ds = openDataset(file, path);
        auto ft = take<DatatypeHandle>(H5Dget_type(ds.id()), error_class::kBadInput, w, "type");
        ColumnSchema c{name, columnTypeOfFileType(ft.id(), w), {}, {}};
        std::size_t rows = datasetRows(ds.id(), w);
        if (first)
            schema.numRows = rows;
        else if (rows != schema.numRows)
            throw badInput(w + ": column has " + std::to_string(rows) + " rows, '" +
                           schema.columns.front().name + "' has " + std::to_string(schema.numRows));
        first = false;
        if (file.hasAttribute(path, "unit")) c.unit = str(file.attribute(path, "unit"), w, "unit");
        if (file.hasAttribute(path, "description"))
            c.description = str(file.attribute(path, "description"), w, "description");
        schema.columns.push_back(std::move(c));
    }
    if (drpTable) {
        if (file.hasAttribute(groupPath, kMetaKeysAttr)) {
            auto keys = file.stringArrayAttribute(groupPath, kMetaKeysAttr);
            std::vector<std::string> comments;
            if (file.hasAttribute(groupPath, kMetaCommentsAttr))
                comments = file.stringArrayAttribute(groupPath, kMetaCommentsAttr);
            for (std::size_t i = 0; i < keys.size(); ++i)
                schema.metadata.set(keys[i], file.attribute(groupPath, keys[i]),
                                    i < comments.size() ? comments[i] : std::string());
        }
    } else {
        PropertyList attrs = file.attributes(groupPath);
        for (const auto& e : attrs.entries())
            if (e.key.rfind("drp_", 0) != 0) schema.metadata.set(e.key, e.value, e.comment);
    }
    return schema;
}

void writeTable(File& file, const std::string& groupPath, const Table& table,
                const TableWriteOptions& options) {
    options.validate();
    std::size_t n = table.numRows();
    auto layout = tableLayout(table, n, maxStringWidths(table), options);
    createTableGroup(file, groupPath, table, n, layout, options);
    for (const auto& c : table.columns()) writeColumnSlab(file, groupPath, c, 0, H5P_DEFAULT);
}

void writeTable(const std::string& path, const std::string& groupPath, const Table& table,
                const TableWriteOptions& options) {
    AtomicFile out(path);
    writeTable(out.file(), groupPath, table, options);
    out.commit();
}

void appendTable(File& file, const std::string& groupPath, const Table& rows) {
    std::string gw = file.where(groupPath);
    if (!file.writable()) throw logicError(gw + ": file is open read-only, cannot append");
    TableSchema schema = readTableSchema(file, groupPath);
    std::size_t n = rows.numRows();
    // Check everything before extending anything, so a mismatch leaves the table unchanged.
    if (rows.columns().size() != schema.columns.size())
        throw badInput(gw + ": cannot append " + std::to_string(rows.columns().size()) +
                       " columns to a table of " + std::to_string(schema.columns.size()));
    for (const auto& c : schema.columns) {
        if (!rows.has(c.name)) throw badInput(gw + ": rows to append lack column '" + c.name + "'");
        const Column& r = rows.columnInfo(c.name);
        if (r.type() != c.type)
            throw badInput(gw + ": column '" + c.name + "' is " + columnTypeName(c.type) +
                           " in the file but " + columnTypeName(r.type()) + " in the rows");
        if (c.type == ColumnType::String) {
            std::string path = joinPath(groupPath, c.name);
            auto ds = openDataset(file, path);
            std::size_t width = fixedStringWidth(ds.id(), file.where(path));
            std::size_t longest = maxLength(std::get<std::vector<std::string>>(r.data));
            if (longest > width)
                throw badInput(file.where(path) + ": cannot append a " + std::to_string(longest) +
                               "-byte string to a column of fixed width " + std::to_string(width) +
                               " (set TableWriteOptions.minStringWidth when creating the table)");
        }
    }
    if (n == 0) return;
    for (const auto& c : schema.columns) {
        std::string path = joinPath(groupPath, c.name);
        auto ds = openDataset(file, path);
        hsize_t newSize = schema.numRows + n;
        check(H5Dset_extent(ds.id(), &newSize), file.where(path), "extending column");
        ds.reset();
        writeColumnSlab(file, groupPath, rows.columnInfo(c.name), schema.numRows, H5P_DEFAULT);
    }
}

Table readTable(const File& file, const std::string& groupPath) {
    return readRowsWith(file, groupPath, RowRange{}, {}, H5P_DEFAULT);
}

Table readTable(const std::string& path, const std::string& groupPath) {
    File f = File::open(path);
    return readTable(f, groupPath);
}

Table readTableRows(const File& file, const std::string& groupPath, RowRange range,
                    const std::vector<std::string>& columns) {
    return readRowsWith(file, groupPath, range, columns, H5P_DEFAULT);
}

template <typename T>
std::vector<T> readColumn(const File& file, const std::string& groupPath, const std::string& column,
                          RowRange range) {
    // Only this column's dataset is opened (not the whole schema): a partial read of one
    // column of a 40-column table touches one object header.
    openGroup(file, groupPath);  // not_found / bad_input naming the group
    std::string path = joinPath(groupPath, column);
    if (!file.exists(path))
        throw notFound(file.where(groupPath) + ": table has no column '" + column + "'");
    std::string w = file.where(path);
    auto ds = openDataset(file, path);
    auto ft = take<DatatypeHandle>(H5Dget_type(ds.id()), error_class::kBadInput, w, "type");
    ColumnType type = columnTypeOfFileType(ft.id(), w);
    if (type != columnTypeOf<T>())
        throw badInput(w + ": column is " + columnTypeName(type) + ", cannot read it as " +
                       columnTypeName(columnTypeOf<T>()));
    std::size_t rows = datasetRows(ds.id(), w);
    std::size_t end = std::min(range.end, rows);
    std::size_t begin = std::min(range.begin, end);
    return std::get<std::vector<T>>(
        readColumnData(ds.id(), type, begin, end - begin, H5P_DEFAULT, w));
}

template std::vector<std::int32_t> readColumn(const File&, const std::string&, const std::string&,
                                              RowRange);
template std::vector<std::int64_t> readColumn(const File&, const std::string&, const std::string&,
                                              RowRange);
template std::vector<float> readColumn(const File&, const std::string&, const std::string&,
                                       RowRange);
template std::vector<double> readColumn(const File&, const std::string&, const std::string&,
                                        RowRange);
template std::vector<Bool> readColumn(const File&, const std::string&, const std::string&,
                                      RowRange);
template std::vector<std::string> readColumn(const File&, const std::string&, const std::string&,
                                             RowRange);

namespace {
void collectTables(const File& file, const std::string& group, std::vector<std::string>& out) {
    for (const auto& name : file.children(group)) {
        std::string path = joinPath(group, name);
        if (!file.isGroup(path)) continue;
        if (file.hasAttribute(path, kFormatAttr))
            out.push_back(path);
        else
            collectTables(file, path, out);
    }
}
}  // namespace

std::vector<std::string> listTables(const File& file) {
    std::vector<std::string> out;
    collectTables(file, "/", out);
    return out;
}

std::vector<std::string> listTables(const std::string& path) {
    File f = File::open(path);
    return listTables(f);
}

}  // namespace drp::h5
