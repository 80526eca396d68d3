// A columnar table (catalog): named, typed columns of equal length, each with a unit and a
// description, plus table-level metadata (provenance). This is the in-memory form of every
// catalog drp writes (HDF5: one dataset per column; FITS: a binary table).
//
//   Table t;
//   auto& ra = t.addColumn<double>("ra", "deg", "Right ascension (ICRS)");
//   ra.push_back(150.1);
//   t.column<double>("ra")[0];
//
// Booleans are stored as `Bool` (one byte) so that columns stay contiguous and map to numpy bool.
#pragma once

#include <cstdint>
#include <string>
#include <deque>
#include <variant>
#include <vector>

#include "drp/core/error.h"
#include "drp/core/metadata.h"

namespace drp {

/// A one-byte boolean for table columns (std::vector<bool> is not contiguous).
struct Bool final {
    std::uint8_t value = 0;
    constexpr Bool() = default;
    constexpr Bool(bool b) : value(b ? 1 : 0) {}
    constexpr operator bool() const { return value != 0; }
    constexpr bool operator==(const Bool&) const = default;
};

enum class ColumnType { Int32, Int64, Float32, Float64, Bool, String };
const char* columnTypeName(ColumnType t);

template <typename T>
constexpr ColumnType columnTypeOf();
template <> constexpr ColumnType columnTypeOf<std::int32_t>() { return ColumnType::Int32; }
template <> constexpr ColumnType columnTypeOf<std::int64_t>() { return ColumnType::Int64; }
template <> constexpr ColumnType columnTypeOf<float>() { return ColumnType::Float32; }
template <> constexpr ColumnType columnTypeOf<double>() { return ColumnType::Float64; }
template <> constexpr ColumnType columnTypeOf<Bool>() { return ColumnType::Bool; }
template <> constexpr ColumnType columnTypeOf<std::string>() { return ColumnType::String; }

struct Column final {
    using Data = std::variant<std::vector<std::int32_t>, std::vector<std::int64_t>, std::vector<float>,
                              std::vector<double>, std::vector<Bool>, std::vector<std::string>>;
    std::string name;
    std::string unit;         ///< e.g. "deg", "nJy", "pixel", "" for dimensionless
    std::string description;
    Data data;

    ColumnType type() const { return static_cast<ColumnType>(data.index()); }
    std::size_t size() const;
    bool operator==(const Column&) const = default;
};

class Table final {
public:
    /// Add an empty column (throws logic error if the name exists). Returns its storage, which
    /// stays valid when further columns are added.
    template <typename T>
    std::vector<T>& addColumn(const std::string& name, std::string unit = {}, std::string description = {}) {
        if (has(name)) throw logicError("table already has a column '" + name + "'");
        _columns.push_back(Column{name, std::move(unit), std::move(description), std::vector<T>{}});
        return std::get<std::vector<T>>(_columns.back().data);
    }
    /// Add a complete column.
    void addColumn(Column column);

    template <typename T>
    std::vector<T>& column(const std::string& name) {
        return getAs<T>(columnRef(name));
    }
    template <typename T>
    const std::vector<T>& column(const std::string& name) const {
        return getAs<T>(const_cast<Table*>(this)->columnRef(name));
    }
    bool has(const std::string& name) const;
    const Column& columnInfo(const std::string& name) const { return const_cast<Table*>(this)->columnRef(name); }
    const std::deque<Column>& columns() const { return _columns; }
    std::deque<Column>& columns() { return _columns; }

    /// Number of rows; throws logic error if columns disagree (see validate()).
    std::size_t numRows() const;
    /// Check all columns have the same length.
    void validate() const;
    /// Append the rows of `other`, which must have the same column names and types.
    void append(const Table& other);
    /// A new table with the rows of `rows` (indices), in that order.
    Table select(const std::vector<std::size_t>& rows) const;

    PropertyList& metadata() { return _metadata; }
    const PropertyList& metadata() const { return _metadata; }
    bool operator==(const Table&) const = default;

private:
    Column& columnRef(const std::string& name);
    template <typename T>
    static std::vector<T>& getAs(Column& c) {
        if (auto* v = std::get_if<std::vector<T>>(&c.data)) return *v;
        throw logicError("column '" + c.name + "' has type " + columnTypeName(c.type()) + ", not " +
                         columnTypeName(columnTypeOf<T>()));
    }
    std::deque<Column> _columns;  // deque: references returned by addColumn stay valid
    PropertyList _metadata;
};

}  // namespace drp
