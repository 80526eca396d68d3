// drp::Table <-> FITS binary table (column conventions in fits.h).
#include <fitsio.h>

#include <algorithm>
#include <cstring>

#include "drp/core/atomic_file.h"
#include "drp/core/error.h"
#include "drp/io/fits.h"
#include "fits_internal.h"

namespace drp::fits {

namespace {

// Room for a comment on a TTYPEn card: 80 columns minus "TTYPEnnn= 'name    ' / ".
std::size_t commentRoom(const std::string& name) {
    std::size_t used = 10 + (std::max<std::size_t>(name.size(), 8) + 2) + 3;
    return used >= 80 ? 0 : 80 - used;
}

std::size_t maxLength(const std::vector<std::string>& v) {
    std::size_t m = 1;  // FITS has no zero-width character column
    for (const auto& s : v) m = std::max(m, s.size());
    return m;
}

std::string tform(const Column& c) {
    switch (c.type()) {
        case ColumnType::Int32:
            return "1J";
        case ColumnType::Int64:
            return "1K";
        case ColumnType::Float32:
            return "1E";
        case ColumnType::Float64:
            return "1D";
        case ColumnType::Bool:
            return "1L";
        case ColumnType::String:
            return std::to_string(maxLength(std::get<std::vector<std::string>>(c.data))) + "A";
    }
    throw logicError("unknown column type");
}

template <typename T>
void writeNumeric(FitsFile& f, int colnum, int datatype, const std::vector<T>& v,
                  const std::string& name) {
    if (v.empty()) return;
    int status = 0;
    fits_write_col(ff(f.handle()), datatype, colnum, 1, 1, static_cast<LONGLONG>(v.size()),
                   const_cast<T*>(v.data()), &status);
    f.check(status, "writing column '" + name + "' to");
}

}  // namespace

void writeTable(const std::string& path, const Table& table, const PropertyList& provenance,
                const std::string& extname) {
    table.validate();
    const std::size_t nrows = table.numRows();
    AtomicFile out(path);
    {
        FitsFile f = FitsFile::create(out.tempPath());
        int status = 0;
        fits_create_img(ff(f.handle()), BYTE_IMG, 0, nullptr, &status);
        f.check(status, "creating the primary HDU of");
        f.writeMetadata(provenance);
        f.writeChecksum();

        std::vector<std::string> names, forms, units;
        for (const Column& c : table.columns()) {
            names.push_back(c.name);
            forms.push_back(tform(c));
            units.push_back(c.unit);
        }
        std::vector<char*> ttype, tf, tu;
        for (std::size_t i = 0; i < names.size(); ++i) {
            ttype.push_back(names[i].data());
            tf.push_back(forms[i].data());
            tu.push_back(units[i].data());
        }
        fits_create_tbl(ff(f.handle()), BINARY_TBL, static_cast<LONGLONG>(nrows),
                        static_cast<int>(names.size()), ttype.data(), tf.data(), tu.data(),
                        extname.c_str(), &status);
        f.check(status, "creating the binary table of");
        int colnum = 0;
        for (const Column& c : table.columns()) {
            ++colnum;
            std::string idx = std::to_string(colnum);
            if (!c.description.empty()) {
                std::size_t room = commentRoom(c.name);
                std::string key = "TTYPE" + idx;
                fits_modify_comment(ff(f.handle()), key.c_str(),
                                    c.description.substr(0, room).c_str(), &status);
                f.check(status, "writing the description of column '" + c.name + "' to");
                if (c.description.size() > room) {
                    PropertyList doc;
                    doc.set("TDOC" + idx, c.description, "description of column " + idx);
                    f.writeMetadata(doc);
                }
            }
            std::visit(
                [&](const auto& v) {
                    using V = std::decay_t<decltype(v)>;
                    if constexpr (std::is_same_v<V, std::vector<std::int32_t>>) {
                        writeNumeric(f, colnum, TINT, v, c.name);
                    } else if constexpr (std::is_same_v<V, std::vector<std::int64_t>>) {
                        writeNumeric(f, colnum, TLONGLONG, v, c.name);
                    } else if constexpr (std::is_same_v<V, std::vector<float>>) {
                        writeNumeric(f, colnum, TFLOAT, v, c.name);
                    } else if constexpr (std::is_same_v<V, std::vector<double>>) {
                        writeNumeric(f, colnum, TDOUBLE, v, c.name);
                    } else if constexpr (std::is_same_v<V, std::vector<Bool>>) {
                        std::vector<char> flags(v.size());
                        for (std::size_t i = 0; i < v.size(); ++i) flags[i] = v[i] ? 1 : 0;
                        writeNumeric(f, colnum, TLOGICAL, flags, c.name);
                    } else {
                        if (v.empty()) return;
                        std::vector<char*> ptrs;
                        for (const auto& s : v) ptrs.push_back(const_cast<char*>(s.c_str()));
                        int st = 0;
                        fits_write_col_str(ff(f.handle()), colnum, 1, 1,
                                           static_cast<LONGLONG>(v.size()), ptrs.data(), &st);
                        f.check(st, "writing column '" + c.name + "' to");
                    }
                },
                c.data);
        }
        f.writeMetadata(table.metadata());
        f.writeChecksum();
        f.close();
    }
    out.commit();
}

namespace {

template <typename T>
std::vector<T> readNumeric(FitsFile& f, int colnum, int datatype, LONGLONG nrows,
                           const std::string& name) {
    std::vector<T> v(static_cast<std::size_t>(nrows));
    if (nrows == 0) return v;
    int status = 0, anynul = 0;
    fits_read_col(ff(f.handle()), datatype, colnum, 1, 1, nrows, nullptr, v.data(), &anynul,
                  &status);
    f.check(status, "reading column '" + name + "' of");
    return v;
}

}  // namespace

Table readTable(const std::string& path, const HduRef& hdu,
                const std::vector<std::string>& columns) {
    FitsFile f = FitsFile::openRead(path);
    f.moveTo(hdu);
    f.verifyChecksum();
    int type = 0, status = 0;
    fits_get_hdu_type(ff(f.handle()), &type, &status);
    f.check(status, "reading the HDU type of");
    if (type != BINARY_TBL || f.currentIsCompressedImage())
        throw badInput(path + " " + f.describeCurrentHdu() + " is not a binary table");
    LONGLONG nrows = 0;
    int ncols = 0;
    fits_get_num_rowsll(ff(f.handle()), &nrows, &status);
    fits_get_num_cols(ff(f.handle()), &ncols, &status);
    f.check(status, "reading the table size of");
    PropertyList header = f.readMetadata();
    std::vector<int> order;
    if (columns.empty()) {
        for (int i = 1; i <= ncols; ++i) order.push_back(i);
    } else {
        for (const auto& name : columns) {
            int colnum = 0;
            fits_get_colnum(ff(f.handle()), CASESEN, const_cast<char*>(name.c_str()), &colnum,
                            &status);
            if (status == COL_NOT_FOUND) {
                fits_clear_errmsg();
                throw notFound(path + " " + f.describeCurrentHdu() + " has no column '" + name +
                               "'");
            }
            f.check(status, "looking up column '" + name + "' in");
            order.push_back(colnum);
        }
    }
    Table table;
    for (int colnum : order) {
        std::string idx = std::to_string(colnum);
        Column c;
        c.name = header.get<std::string>("TTYPE" + idx, "col" + idx);
        c.unit = header.get<std::string>("TUNIT" + idx, "");
        const auto* ttype = header.find("TTYPE" + idx);
        c.description = header.has("TDOC" + idx) ? header.get<std::string>("TDOC" + idx)
                                                 : (ttype ? ttype->comment : std::string());
        int typecode = 0;
        LONGLONG repeat = 0, width = 0;
        fits_get_coltypell(ff(f.handle()), colnum, &typecode, &repeat, &width, &status);
        f.check(status, "reading the type of column '" + c.name + "' of");
        if (typecode != TSTRING && repeat != 1)
            throw badInput(path + " " + f.describeCurrentHdu() + ": column '" + c.name +
                           "' is a vector (" + std::to_string(repeat) +
                           " elements per row); drp tables hold scalars — select other columns");
        switch (typecode) {
            case TBYTE:
            case TSBYTE:
            case TSHORT:
            case TUSHORT:
            case TINT:
            case TLONG:  // 'J' is reported as TLONG by CFITSIO
                c.data = readNumeric<std::int32_t>(f, colnum, TINT, nrows, c.name);
                break;
            case TUINT:
            case TULONG:
            case TLONGLONG:
                c.data = readNumeric<std::int64_t>(f, colnum, TLONGLONG, nrows, c.name);
                break;
            case TFLOAT:
                c.data = readNumeric<float>(f, colnum, TFLOAT, nrows, c.name);
                break;
            case TDOUBLE:
                c.data = readNumeric<double>(f, colnum, TDOUBLE, nrows, c.name);
                break;
            case TLOGICAL: {
                auto flags = readNumeric<char>(f, colnum, TLOGICAL, nrows, c.name);
                std::vector<Bool> b(flags.size());
                for (std::size_t i = 0; i < flags.size(); ++i) b[i] = flags[i] == 1;
                c.data = std::move(b);
                break;
            }
            case TSTRING: {
                const auto n = static_cast<std::size_t>(nrows);
                const auto w = static_cast<std::size_t>(repeat) + 1;
                std::vector<char> buf(n * w, '\0');
                std::vector<char*> ptrs(n);
                for (std::size_t r = 0; r < n; ++r) ptrs[r] = buf.data() + r * w;
                if (n > 0) {
                    int anynul = 0;
                    char empty[] = "";
                    fits_read_col_str(ff(f.handle()), colnum, 1, 1, nrows, empty, ptrs.data(),
                                      &anynul, &status);
                    f.check(status, "reading column '" + c.name + "' of");
                }
                std::vector<std::string> v(n);
                for (std::size_t r = 0; r < n; ++r) {
                    std::string s(ptrs[r]);
                    while (!s.empty() && s.back() == ' ') s.pop_back();
                    v[r] = std::move(s);
                }
                c.data = std::move(v);
                break;
            }
            default:
                throw badInput(path + " " + f.describeCurrentHdu() + ": column '" + c.name +
                               "' has a type drp tables do not hold (CFITSIO type code " +
                               std::to_string(typecode) + ")");
        }
        table.addColumn(std::move(c));
    }
    // Table metadata: the header minus the table's own structure keywords.
    PropertyList md = parseCards(f.readHeaderCards(), path, true);
    for (const auto& e : md.entries()) {
        const std::string& k = e.key;
        bool columnKey = false;
        for (const char* prefix :
             {"TTYPE", "TFORM", "TUNIT", "TDOC", "TNULL", "TSCAL", "TZERO", "TDISP", "TDIM"})
            if (k.rfind(prefix, 0) == 0 && k.size() > std::strlen(prefix) &&
                std::all_of(k.begin() + static_cast<long>(std::strlen(prefix)), k.end(), ::isdigit))
                columnKey = true;
        if (columnKey || k == "TFIELDS" || k == "THEAP") continue;
        table.metadata().set(e.key, e.value, e.comment);
    }
    return table;
}

}  // namespace drp::fits
