#include "drp/core/table.h"

namespace drp {

const char* columnTypeName(ColumnType t) {
    switch (t) {
        case ColumnType::Int32: return "int32";
        case ColumnType::Int64: return "int64";
        case ColumnType::Float32: return "float32";
        case ColumnType::Float64: return "float64";
        case ColumnType::Bool: return "bool";
        case ColumnType::String: return "string";
    }
    return "?";
}

std::size_t Column::size() const {
    return std::visit([](const auto& v) { return v.size(); }, data);
}

void Table::addColumn(Column column) {
    if (has(column.name)) throw logicError("table already has a column '" + column.name + "'");
    _columns.push_back(std::move(column));
}

bool Table::has(const std::string& name) const {
    for (auto& c : _columns)
        if (c.name == name) return true;
    return false;
}

Column& Table::columnRef(const std::string& name) {
    for (auto& c : _columns)
        if (c.name == name) return c;
    throw notFound("table has no column '" + name + "'");
}

std::size_t Table::numRows() const {
    validate();
    return _columns.empty() ? 0 : _columns.front().size();
}

void Table::validate() const {
    if (_columns.empty()) return;
    std::size_t n = _columns.front().size();
    for (auto& c : _columns) {
        if (c.size() != n)
            throw logicError("table column '" + c.name + "' has " + std::to_string(c.size()) +
                             " rows, '" + _columns.front().name + "' has " + std::to_string(n));
    }
}

void Table::append(const Table& other) {
    if (_columns.empty()) {
        PropertyList md = _metadata;
        *this = other;
        _metadata = md;
        return;
    }
    if (other._columns.size() != _columns.size())
        throw logicError("append: tables have different numbers of columns");
    for (std::size_t k = 0; k < _columns.size(); ++k) {
        auto& dst = _columns[k];
        auto& src = other._columns[k];
        if (dst.name != src.name || dst.type() != src.type())
            throw logicError("append: column " + std::to_string(k) + " differs ('" + dst.name + "' vs '" +
                             src.name + "')");
        std::visit(
            [&](auto& d) {
                using V = std::decay_t<decltype(d)>;
                const auto& s = std::get<V>(src.data);
                d.insert(d.end(), s.begin(), s.end());
            },
            dst.data);
    }
}

Table Table::select(const std::vector<std::size_t>& rows) const {
    Table out;
    out._metadata = _metadata;
    for (auto& c : _columns) {
        Column nc{c.name, c.unit, c.description, {}};
        nc.data = std::visit(
            [&](const auto& v) -> Column::Data {
                std::decay_t<decltype(v)> o;
                o.reserve(rows.size());
                for (auto r : rows) o.push_back(v.at(r));
                return o;
            },
            c.data);
        out._columns.push_back(std::move(nc));
    }
    return out;
}

}  // namespace drp
