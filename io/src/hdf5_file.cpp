// HDF5 handles, errors, files, attributes and N-D arrays (see drp/io/hdf5.h).
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <type_traits>

#include "hdf5_detail.h"

namespace drp::h5 {

namespace fs = std::filesystem;
using namespace detail;

bool closeId(IdKind kind, Id id) noexcept {
    herr_t rc = -1;
    switch (kind) {
        case IdKind::File:
            rc = H5Fclose(id);
            break;
        case IdKind::Group:
            rc = H5Gclose(id);
            break;
        case IdKind::Dataset:
            rc = H5Dclose(id);
            break;
        case IdKind::Dataspace:
            rc = H5Sclose(id);
            break;
        case IdKind::Datatype:
            rc = H5Tclose(id);
            break;
        case IdKind::PropertyList:
            rc = H5Pclose(id);
            break;
        case IdKind::Attribute:
            rc = H5Aclose(id);
            break;
    }
    if (rc < 0) H5Eclear2(H5E_DEFAULT);
    return rc >= 0;
}

namespace detail {

void ensureInitialized() {
    static const bool initialized = [] {
        H5open();
        // HDF5 prints its error stack to stderr by default; drp reports it in the Error instead.
        H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
        return true;
    }();
    (void)initialized;
}

bool ErrorStack::has(hid_t minor) const {
    return std::find(minors.begin(), minors.end(), minor) != minors.end();
}

namespace {
herr_t walkError(unsigned n, const H5E_error2_t* e, void* data) {
    auto* stack = static_cast<ErrorStack*>(data);
    char major[128] = "", minor[128] = "";
    H5Eget_msg(e->maj_num, nullptr, major, sizeof major);
    H5Eget_msg(e->min_num, nullptr, minor, sizeof minor);
    stack->text += (n == 0 ? "#" : "; #") + std::to_string(n) + " " +
                   (e->func_name ? e->func_name : "?") + "(): " + (e->desc ? e->desc : "") + " [" +
                   major + " / " + minor + "]";
    stack->minors.push_back(e->min_num);
    return 0;
}
}  // namespace

ErrorStack takeErrorStack() {
    ErrorStack stack;
    hid_t current = H5Eget_current_stack();  // copies and clears the thread's stack
    if (current < 0) return stack;
    H5Ewalk2(current, H5E_WALK_DOWNWARD, walkError, &stack);
    H5Eclose_stack(current);
    return stack;
}

void fail(std::string_view cls, const std::string& where, const std::string& what) {
    ErrorStack stack = takeErrorStack();
    std::string msg = where + ": " + what;
    if (!stack.text.empty()) msg += ": HDF5: " + stack.text;
    throw Error(cls, msg);
}

std::string normalizePath(const std::string& path) {
    std::string out = "/";
    std::size_t i = 0;
    while (i < path.size()) {
        std::size_t j = path.find('/', i);
        if (j == std::string::npos) j = path.size();
        if (j > i) {
            if (out.size() > 1) out += '/';
            out.append(path, i, j - i);
        }
        i = j + 1;
    }
    return out;
}

std::string joinPath(const std::string& group, const std::string& name) {
    return normalizePath(group + "/" + name);
}

namespace {
// Does every link along `path` exist? (H5Lexists fails, rather than returning false, when an
// intermediate group is missing.)
bool linkExists(hid_t file, const std::string& path) {
    std::string p = normalizePath(path);
    if (p == "/") return true;
    std::size_t pos = 0;
    while (pos != std::string::npos) {
        pos = p.find('/', pos + 1);
        std::string prefix = p.substr(0, pos);
        htri_t e = H5Lexists(file, prefix.c_str(), H5P_DEFAULT);
        if (e <= 0) {
            H5Eclear2(H5E_DEFAULT);
            return false;
        }
        if (pos != std::string::npos) {
            // An intermediate must be a group for the next lookup to make sense.
            H5O_info_t info;
            if (H5Oget_info_by_name2(file, prefix.c_str(), &info, H5O_INFO_BASIC, H5P_DEFAULT) <
                    0 ||
                info.type != H5O_TYPE_GROUP) {
                H5Eclear2(H5E_DEFAULT);
                return false;
            }
        }
    }
    return true;
}

H5O_type_t objectType(const File& file, const std::string& path) {
    H5O_info_t info;
    if (H5Oget_info_by_name2(file.id(), normalizePath(path).c_str(), &info, H5O_INFO_BASIC,
                             H5P_DEFAULT) < 0)
        fail(error_class::kBadInput, file.where(path), "cannot inspect object");
    return info.type;
}

void requireOpen(const File& file) {
    if (!file.isOpen()) throw logicError(file.where() + ": HDF5 file is closed");
}

void requireWritable(const File& file, const std::string& path) {
    requireOpen(file);
    if (!file.writable())
        throw logicError(file.where(path) + ": file is open read-only, cannot write");
}

// Open any object (group or dataset) for attribute access.
struct ObjectHandle {
    hid_t id = -1;
    ~ObjectHandle() {
        if (id >= 0) H5Oclose(id);
    }
};

void openObject(const File& file, const std::string& path, ObjectHandle& out) {
    requireOpen(file);
    if (!linkExists(file.id(), path))
        throw notFound(file.where(path) + ": no such group or dataset");
    out.id = H5Oopen(file.id(), normalizePath(path).c_str(), H5P_DEFAULT);
    if (out.id < 0) fail(error_class::kBadInput, file.where(path), "cannot open object");
}
}  // namespace

GroupHandle openGroup(const File& file, const std::string& path) {
    requireOpen(file);
    if (!linkExists(file.id(), path)) throw notFound(file.where(path) + ": no such group");
    if (objectType(file, path) != H5O_TYPE_GROUP)
        throw badInput(file.where(path) + ": is not a group");
    return take<GroupHandle>(H5Gopen2(file.id(), normalizePath(path).c_str(), H5P_DEFAULT),
                             error_class::kBadInput, file.where(path), "cannot open group");
}

DatasetHandle openDataset(const File& file, const std::string& path) {
    requireOpen(file);
    if (!linkExists(file.id(), path)) throw notFound(file.where(path) + ": no such dataset");
    if (objectType(file, path) != H5O_TYPE_DATASET)
        throw badInput(file.where(path) + ": is not a dataset");
    return take<DatasetHandle>(H5Dopen2(file.id(), normalizePath(path).c_str(), H5P_DEFAULT),
                               error_class::kBadInput, file.where(path), "cannot open dataset");
}

DatatypeHandle copyType(hid_t predefined, const std::string& where) {
    return take<DatatypeHandle>(H5Tcopy(predefined), error_class::kIo, where, "H5Tcopy");
}

DatatypeHandle boolType(const std::string& where) {
    // Exactly h5py's mapping of numpy bool (h5py/h5t.pyx): an enum over a native signed char
    // with members FALSE = 0 and TRUE = 1. h5py recognises this enum and returns dtype bool.
    auto t = take<DatatypeHandle>(H5Tenum_create(H5T_NATIVE_INT8), error_class::kIo, where,
                                  "creating bool enum type");
    signed char f = 0, tr = 1;
    check(H5Tenum_insert(t.id(), "FALSE", &f), where, "creating bool enum type");
    check(H5Tenum_insert(t.id(), "TRUE", &tr), where, "creating bool enum type");
    return t;
}

DatatypeHandle fixedStringType(std::size_t width, const std::string& where) {
    auto t = copyType(H5T_C_S1, where);
    check(H5Tset_size(t.id(), std::max<std::size_t>(width, 1)), where, "string type");
    check(H5Tset_strpad(t.id(), H5T_STR_NULLPAD), where, "string type");
    check(H5Tset_cset(t.id(), H5T_CSET_ASCII), where, "string type");
    return t;
}

DatatypeHandle vlenStringType(H5T_cset_t cset, const std::string& where) {
    auto t = copyType(H5T_C_S1, where);
    check(H5Tset_size(t.id(), H5T_VARIABLE), where, "string type");
    check(H5Tset_cset(t.id(), cset), where, "string type");
    return t;
}

bool isBoolEnum(hid_t type) {
    if (H5Tget_class(type) != H5T_ENUM || H5Tget_nmembers(type) != 2 || H5Tget_size(type) != 1)
        return false;
    bool ok = true;
    for (unsigned i = 0; i < 2; ++i) {
        char* name = H5Tget_member_name(type, i);
        signed char value = -1;
        if (!name || H5Tget_member_value(type, i, &value) < 0) {
            H5Eclear2(H5E_DEFAULT);
            ok = false;
        } else {
            ok = ok && ((std::strcmp(name, "FALSE") == 0 && value == 0) ||
                        (std::strcmp(name, "TRUE") == 0 && value == 1));
        }
        if (name) H5free_memory(name);
    }
    return ok;
}

ColumnType columnTypeOfFileType(hid_t type, const std::string& where) {
    std::size_t size = H5Tget_size(type);
    switch (H5Tget_class(type)) {
        case H5T_INTEGER: {
            bool isSigned = H5Tget_sign(type) == H5T_SGN_2;
            if ((isSigned && size <= 4) || (!isSigned && size < 4)) return ColumnType::Int32;
            if ((isSigned && size == 8) || (!isSigned && size == 4)) return ColumnType::Int64;
            throw badInput(where +
                           ": unsigned 64-bit integers are not supported (no lossless "
                           "drp column type)");
        }
        case H5T_FLOAT:
            if (size == 4) return ColumnType::Float32;
            if (size == 8) return ColumnType::Float64;
            throw badInput(where + ": floating-point size " + std::to_string(size) +
                           " is not supported");
        case H5T_ENUM:
            if (isBoolEnum(type)) return ColumnType::Bool;
            throw badInput(where + ": enum type other than h5py's bool is not supported");
        case H5T_STRING:
            return ColumnType::String;
        default:
            throw badInput(where + ": unsupported HDF5 datatype class for a column");
    }
}

DatatypeHandle fileTypeFor(ColumnType type, std::size_t stringWidth, const std::string& where) {
    switch (type) {
        case ColumnType::Int32:
            return copyType(H5T_STD_I32LE, where);
        case ColumnType::Int64:
            return copyType(H5T_STD_I64LE, where);
        case ColumnType::Float32:
            return copyType(H5T_IEEE_F32LE, where);
        case ColumnType::Float64:
            return copyType(H5T_IEEE_F64LE, where);
        case ColumnType::Bool:
            return boolType(where);
        case ColumnType::String:
            return fixedStringType(stringWidth, where);
    }
    throw logicError("unknown column type");
}

PropertyListHandle untimedCreationList(hid_t cls, const std::string& where) {
    auto list = take<PropertyListHandle>(H5Pcreate(cls), error_class::kIo, where,
                                         "creating a property list");
    check(H5Pset_obj_track_times(list.id(), 0), where, "turning off object times");
    return list;
}

PropertyListHandle fileAccessList(const std::string& where) {
    auto fapl = take<PropertyListHandle>(H5Pcreate(H5P_FILE_ACCESS), error_class::kIo, where,
                                         "creating file access property list");
    // Files are readable by HDF5 >= 1.8 and may use dense attribute storage (many metadata
    // entries) and the 1.10 chunk indexes for extendible datasets.
    check(H5Pset_libver_bounds(fapl.id(), H5F_LIBVER_V18, H5F_LIBVER_LATEST), where,
          "setting library version bounds");
    // File locking (flock) fails or hangs on some NFS/Lustre mounts. HDF5 reads
    // HDF5_USE_FILE_LOCKING itself; applying it here too makes the behaviour explicit and
    // independent of the HDF5 build: FALSE/0 = never lock, BEST_EFFORT = lock where possible.
    if (const char* env = std::getenv("HDF5_USE_FILE_LOCKING")) {
        std::string v = env;
        std::transform(v.begin(), v.end(), v.begin(),
                       [](unsigned char c) { return std::toupper(c); });
        if (v == "FALSE" || v == "0")
            check(H5Pset_file_locking(fapl.id(), false, true), where, "disabling file locking");
        else if (v == "BEST_EFFORT")
            check(H5Pset_file_locking(fapl.id(), true, true), where, "setting file locking");
        else if (v == "TRUE" || v == "1")
            check(H5Pset_file_locking(fapl.id(), true, false), where, "setting file locking");
    }
    return fapl;
}

}  // namespace detail

// ---- File -------------------------------------------------------------------------------

File::File(FileHandle handle, std::string path, std::string displayName, bool writable)
    : _handle(std::move(handle)),
      _path(std::move(path)),
      _display(displayName.empty() ? _path : std::move(displayName)),
      _writable(writable) {}

std::string File::where(const std::string& objectPath) const {
    if (objectPath.empty()) return _display;
    return _display + ":" + normalizePath(objectPath);
}

File File::open(const std::string& path, Mode mode) {
    ensureInitialized();
    return openWithAccessList(path, mode, fileAccessList(path).id());
}

namespace detail {
File openWithAccessList(const std::string& path, File::Mode mode, hid_t fapl) {
    std::error_code ec;
    if (!fs::exists(path, ec)) throw notFound(path + ": no such file (opening HDF5 file)");
    if (fs::is_directory(path, ec)) throw badInput(path + ": is a directory, not an HDF5 file");
    bool rw = mode == File::Mode::ReadWrite;
    if (::access(path.c_str(), rw ? (R_OK | W_OK) : R_OK) != 0)
        throw ioError(path + ": cannot open HDF5 file: " + std::strerror(errno));
    hid_t id = H5Fopen(path.c_str(), rw ? H5F_ACC_RDWR : H5F_ACC_RDONLY, fapl);
    if (id < 0) {
        ErrorStack stack = takeErrorStack();
        std::string reason;
        std::string_view cls = error_class::kBadInput;
        if (stack.has(H5E_CANTLOCKFILE)) {
            reason =
                "file is locked by another process (set HDF5_USE_FILE_LOCKING=FALSE on "
                "filesystems without working locks)";
            cls = error_class::kIo;
        } else if (H5Fis_hdf5(path.c_str()) <= 0) {
            H5Eclear2(H5E_DEFAULT);
            reason = "not an HDF5 file (no HDF5 signature)";
        } else if (stack.has(H5E_TRUNCATED)) {
            reason = "truncated HDF5 file";
        } else {
            reason = "corrupt or unreadable HDF5 file";
        }
        throw Error(cls, path + ": " + reason + ": HDF5: " + stack.text);
    }
    return File(FileHandle(id), path, path, rw);
}
}  // namespace detail

File File::create(const std::string& path, const std::string& displayName) {
    ensureInitialized();
    std::string where = displayName.empty() ? path : displayName;
    auto fapl = fileAccessList(where);
    auto fcpl = untimedCreationList(H5P_FILE_CREATE, where);
    auto id = take<FileHandle>(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, fcpl.id(), fapl.id()),
                               error_class::kIo, where, "cannot create HDF5 file " + path);
    return File(std::move(id), path, where, true);
}

void File::flush() {
    requireOpen(*this);
    check(H5Fflush(_handle.id(), H5F_SCOPE_GLOBAL), where(), "flushing file");
}

void File::close() {
    if (!_handle.valid()) return;
    if (!_handle.close()) throw ioError(where() + ": closing (flushing) HDF5 file failed");
}

bool File::exists(const std::string& objectPath) const {
    requireOpen(*this);
    return linkExists(_handle.id(), objectPath);
}

bool File::isGroup(const std::string& objectPath) const {
    return exists(objectPath) && objectType(*this, objectPath) == H5O_TYPE_GROUP;
}

void File::createGroup(const std::string& groupPath) {
    requireWritable(*this, groupPath);
    if (exists(groupPath)) {
        if (!isGroup(groupPath)) throw logicError(where(groupPath) + ": exists and is not a group");
        return;
    }
    // Parents first, one level at a time, so that every group gets the untimed creation list
    // (intermediate groups made by H5Pset_create_intermediate_group would not).
    std::string path = normalizePath(groupPath);
    auto slash = path.find_last_of('/');
    if (slash != std::string::npos && slash > 0) createGroup(path.substr(0, slash));
    auto gcpl = untimedCreationList(H5P_GROUP_CREATE, where(groupPath));
    take<GroupHandle>(H5Gcreate2(_handle.id(), path.c_str(), H5P_DEFAULT, gcpl.id(), H5P_DEFAULT),
                      error_class::kIo, where(groupPath), "creating group");
}

namespace {
herr_t collectLinkName(hid_t, const char* name, const H5L_info_t*, void* data) {
    static_cast<std::vector<std::string>*>(data)->push_back(name);
    return 0;
}
herr_t collectAttrName(hid_t, const char* name, const H5A_info_t*, void* data) {
    static_cast<std::vector<std::string>*>(data)->push_back(name);
    return 0;
}
}  // namespace

std::vector<std::string> File::children(const std::string& groupPath) const {
    auto g = openGroup(*this, groupPath);
    std::vector<std::string> names;
    hsize_t idx = 0;
    check(H5Literate(g.id(), H5_INDEX_NAME, H5_ITER_INC, &idx, collectLinkName, &names),
          error_class::kBadInput, where(groupPath), "listing group");
    return names;
}

// ---- attributes -------------------------------------------------------------------------

namespace {
DataspaceHandle scalarSpace(const std::string& where) {
    return take<DataspaceHandle>(H5Screate(H5S_SCALAR), error_class::kIo, where, "dataspace");
}

AttributeHandle recreateAttribute(hid_t obj, const std::string& name, hid_t type, hid_t space,
                                  const std::string& where) {
    htri_t e = H5Aexists(obj, name.c_str());
    if (e < 0) fail(error_class::kIo, where, "checking attribute '" + name + "'");
    if (e > 0) check(H5Adelete(obj, name.c_str()), where, "replacing attribute '" + name + "'");
    return take<AttributeHandle>(
        H5Acreate2(obj, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), error_class::kIo,
        where, "creating attribute '" + name + "'");
}

void writeAttribute(hid_t obj, const std::string& name, const PropertyList::Value& value,
                    const std::string& where) {
    auto space = scalarSpace(where);
    std::string what = "writing attribute '" + name + "'";
    if (auto* b = std::get_if<bool>(&value)) {
        auto t = boolType(where);
        auto a = recreateAttribute(obj, name, t.id(), space.id(), where);
        signed char v = *b ? 1 : 0;
        check(H5Awrite(a.id(), t.id(), &v), where, what);
    } else if (auto* i = std::get_if<std::int64_t>(&value)) {
        auto a = recreateAttribute(obj, name, H5T_STD_I64LE, space.id(), where);
        check(H5Awrite(a.id(), H5T_NATIVE_INT64, i), where, what);
    } else if (auto* d = std::get_if<double>(&value)) {
        auto a = recreateAttribute(obj, name, H5T_IEEE_F64LE, space.id(), where);
        check(H5Awrite(a.id(), H5T_NATIVE_DOUBLE, d), where, what);
    } else {
        // Variable-length UTF-8: h5py returns str (fixed-length strings come back as bytes).
        auto t = vlenStringType(H5T_CSET_UTF8, where);
        auto a = recreateAttribute(obj, name, t.id(), space.id(), where);
        const char* p = std::get<std::string>(value).c_str();
        check(H5Awrite(a.id(), t.id(), &p), where, what);
    }
}

// Read strings of an attribute (any number of elements), fixed or variable length.
std::vector<std::string> readStringAttribute(hid_t attr, hid_t ftype, std::size_t n,
                                             const std::string& where, const std::string& name) {
    std::string what = "reading string attribute '" + name + "'";
    std::vector<std::string> out;
    out.reserve(n);
    H5T_cset_t cset = H5Tget_cset(ftype);
    if (H5Tis_variable_str(ftype) > 0) {
        auto mt = vlenStringType(cset, where);
        std::vector<char*> ptrs(n, nullptr);
        check(H5Aread(attr, mt.id(), ptrs.data()), error_class::kBadInput, where, what);
        for (char* p : ptrs) out.emplace_back(p ? p : "");
        auto space = take<DataspaceHandle>(H5Aget_space(attr), error_class::kIo, where, what);
        H5Dvlen_reclaim(mt.id(), space.id(), H5P_DEFAULT, ptrs.data());
    } else {
        std::size_t w = H5Tget_size(ftype);
        auto mt = copyType(H5T_C_S1, where);
        check(H5Tset_size(mt.id(), w), where, what);
        check(H5Tset_strpad(mt.id(), H5T_STR_NULLPAD), where, what);
        check(H5Tset_cset(mt.id(), cset), where, what);
        std::vector<char> buf(n * w, '\0');
        check(H5Aread(attr, mt.id(), buf.data()), error_class::kBadInput, where, what);
        for (std::size_t i = 0; i < n; ++i)
            out.emplace_back(buf.data() + i * w, strnlen(buf.data() + i * w, w));
    }
    return out;
}

std::size_t attributeSize(hid_t attr, const std::string& where, bool& isScalarLike) {
    auto space =
        take<DataspaceHandle>(H5Aget_space(attr), error_class::kIo, where, "attribute space");
    hssize_t n = H5Sget_simple_extent_npoints(space.id());
    int rank = H5Sget_simple_extent_ndims(space.id());
    isScalarLike = n == 1 && rank <= 1;
    return n < 0 ? 0 : static_cast<std::size_t>(n);
}

// Read a scalar attribute; returns false (without throwing) if it is not a supported scalar
// and `lenient`, else throws bad_input.
bool readScalarAttribute(hid_t obj, const std::string& name, const std::string& where, bool lenient,
                         PropertyList::Value& out) {
    auto a = take<AttributeHandle>(H5Aopen(obj, name.c_str(), H5P_DEFAULT), error_class::kBadInput,
                                   where, "opening attribute '" + name + "'");
    bool scalar = false;
    attributeSize(a.id(), where, scalar);
    auto ft = take<DatatypeHandle>(H5Aget_type(a.id()), error_class::kBadInput, where,
                                   "attribute type of '" + name + "'");
    auto unsupported = [&](const std::string& why) {
        if (lenient) return false;
        throw badInput(where + ": attribute '" + name + "' " + why);
    };
    if (!scalar) return unsupported("is not a scalar");
    std::string what = "reading attribute '" + name + "'";
    switch (H5Tget_class(ft.id())) {
        case H5T_INTEGER: {
            std::int64_t v = 0;
            check(H5Aread(a.id(), H5T_NATIVE_INT64, &v), error_class::kBadInput, where, what);
            out = v;
            return true;
        }
        case H5T_FLOAT: {
            double v = 0;
            check(H5Aread(a.id(), H5T_NATIVE_DOUBLE, &v), error_class::kBadInput, where, what);
            out = v;
            return true;
        }
        case H5T_ENUM: {
            if (!isBoolEnum(ft.id())) return unsupported("is an enum other than bool");
            signed char v = 0;
            auto t = boolType(where);
            check(H5Aread(a.id(), t.id(), &v), error_class::kBadInput, where, what);
            out = v != 0;
            return true;
        }
        case H5T_STRING:
            out = readStringAttribute(a.id(), ft.id(), 1, where, name).front();
            return true;
        default:
            return unsupported("has an unsupported type");
    }
}
}  // namespace

void File::setAttribute(const std::string& objectPath, const std::string& name,
                        const PropertyList::Value& value) {
    requireWritable(*this, objectPath);
    ObjectHandle obj;
    openObject(*this, objectPath, obj);
    writeAttribute(obj.id, name, value, where(objectPath));
}

void File::setAttributes(const std::string& objectPath, const PropertyList& attrs) {
    requireWritable(*this, objectPath);
    ObjectHandle obj;
    openObject(*this, objectPath, obj);
    for (const auto& e : attrs.entries()) writeAttribute(obj.id, e.key, e.value, where(objectPath));
}

bool File::hasAttribute(const std::string& objectPath, const std::string& name) const {
    ObjectHandle obj;
    openObject(*this, objectPath, obj);
    htri_t e = H5Aexists(obj.id, name.c_str());
    if (e < 0) fail(error_class::kBadInput, where(objectPath), "checking attribute '" + name + "'");
    return e > 0;
}

PropertyList::Value File::attribute(const std::string& objectPath, const std::string& name) const {
    if (!hasAttribute(objectPath, name))
        throw notFound(where(objectPath) + ": no attribute '" + name + "'");
    ObjectHandle obj;
    openObject(*this, objectPath, obj);
    PropertyList::Value v;
    readScalarAttribute(obj.id, name, where(objectPath), false, v);
    return v;
}

PropertyList File::attributes(const std::string& objectPath) const {
    ObjectHandle obj;
    openObject(*this, objectPath, obj);
    std::vector<std::string> names;
    hsize_t idx = 0;
    check(H5Aiterate2(obj.id, H5_INDEX_NAME, H5_ITER_INC, &idx, collectAttrName, &names),
          error_class::kBadInput, where(objectPath), "listing attributes");
    PropertyList out;
    for (const auto& n : names) {
        PropertyList::Value v;
        if (readScalarAttribute(obj.id, n, where(objectPath), true, v)) out.set(n, v);
    }
    return out;
}

void File::setStringArrayAttribute(const std::string& objectPath, const std::string& name,
                                   const std::vector<std::string>& values) {
    requireWritable(*this, objectPath);
    ObjectHandle obj;
    openObject(*this, objectPath, obj);
    std::string w = where(objectPath);
    hsize_t n = values.size();
    auto space = take<DataspaceHandle>(H5Screate_simple(1, &n, nullptr), error_class::kIo, w,
                                       "attribute space");
    auto t = vlenStringType(H5T_CSET_UTF8, w);
    auto a = recreateAttribute(obj.id, name, t.id(), space.id(), w);
    std::vector<const char*> ptrs;
    for (const auto& s : values) ptrs.push_back(s.c_str());
    check(H5Awrite(a.id(), t.id(), ptrs.data()), w, "writing attribute '" + name + "'");
}

std::vector<std::string> File::stringArrayAttribute(const std::string& objectPath,
                                                    const std::string& name) const {
    if (!hasAttribute(objectPath, name))
        throw notFound(where(objectPath) + ": no attribute '" + name + "'");
    ObjectHandle obj;
    openObject(*this, objectPath, obj);
    std::string w = where(objectPath);
    auto a = take<AttributeHandle>(H5Aopen(obj.id, name.c_str(), H5P_DEFAULT),
                                   error_class::kBadInput, w, "opening attribute '" + name + "'");
    auto ft =
        take<DatatypeHandle>(H5Aget_type(a.id()), error_class::kBadInput, w, "attribute type");
    if (H5Tget_class(ft.id()) != H5T_STRING)
        throw badInput(w + ": attribute '" + name + "' is not a string array");
    bool scalar = false;
    std::size_t n = attributeSize(a.id(), w, scalar);
    return readStringAttribute(a.id(), ft.id(), n, w, name);
}

// ---- AtomicFile -------------------------------------------------------------------------

AtomicFile::AtomicFile(const std::string& finalPath)
    : _atomic(std::make_unique<drp::AtomicFile>(finalPath)),
      _file(File::create(_atomic->tempPath(), finalPath)) {}

void AtomicFile::commit() {
    _file.close();
    _atomic->commit();
}

// ---- arrays -----------------------------------------------------------------------------

namespace {
template <typename T>
hid_t nativeType() {
    if constexpr (std::is_same_v<T, std::int32_t>)
        return H5T_NATIVE_INT32;
    else if constexpr (std::is_same_v<T, std::int64_t>)
        return H5T_NATIVE_INT64;
    else if constexpr (std::is_same_v<T, float>)
        return H5T_NATIVE_FLOAT;
    else
        return H5T_NATIVE_DOUBLE;
}
template <typename T>
hid_t fileType() {
    if constexpr (std::is_same_v<T, std::int32_t>)
        return H5T_STD_I32LE;
    else if constexpr (std::is_same_v<T, std::int64_t>)
        return H5T_STD_I64LE;
    else if constexpr (std::is_same_v<T, float>)
        return H5T_IEEE_F32LE;
    else
        return H5T_IEEE_F64LE;
}

// Chunk shape for an N-D array: the whole array if it is at most 1 MiB (stored contiguously then),
// else halve the largest dimension until a chunk is at most 1 MiB — HDF5's default chunk cache
// size, so reading a sub-block never re-inflates a chunk.
std::vector<hsize_t> arrayChunks(const std::vector<hsize_t>& dims, std::size_t elementSize) {
    std::vector<hsize_t> chunk = dims;
    for (auto& c : chunk) c = std::max<hsize_t>(c, 1);
    auto bytes = [&] {
        return std::accumulate(chunk.begin(), chunk.end(), hsize_t(elementSize),
                               std::multiplies<>());
    };
    while (bytes() > (1u << 20)) {
        auto it = std::max_element(chunk.begin(), chunk.end());
        *it = (*it + 1) / 2;
    }
    return chunk;
}
}  // namespace

template <typename T>
void writeArray(File& file, const std::string& datasetPath, std::span<const T> data,
                const std::vector<std::size_t>& shape, const PropertyList& attrs) {
    requireWritable(file, datasetPath);
    std::string w = file.where(datasetPath);
    std::size_t n =
        std::accumulate(shape.begin(), shape.end(), std::size_t(1), std::multiplies<>());
    if (n != data.size())
        throw logicError(w + ": array shape holds " + std::to_string(n) + " values but " +
                         std::to_string(data.size()) + " were given");
    if (file.exists(datasetPath)) throw logicError(w + ": exists already");
    std::string path = normalizePath(datasetPath);
    std::string parent = path.substr(0, path.rfind('/'));
    if (!parent.empty()) file.createGroup(parent);

    std::vector<hsize_t> dims(shape.begin(), shape.end());
    auto space = take<DataspaceHandle>(
        dims.empty() ? H5Screate(H5S_SCALAR)
                     : H5Screate_simple(int(dims.size()), dims.data(), nullptr),
        error_class::kIo, w, "creating dataspace");
    auto dcpl = untimedCreationList(H5P_DATASET_CREATE, w);
    if (!dims.empty() && n * sizeof(T) > (1u << 20)) {
        auto chunk = arrayChunks(dims, sizeof(T));
        check(H5Pset_chunk(dcpl.id(), int(chunk.size()), chunk.data()), w, "setting chunks");
        check(H5Pset_shuffle(dcpl.id()), w, "setting shuffle filter");
        check(H5Pset_deflate(dcpl.id(), 4), w, "setting deflate filter");
    }
    auto ds = take<DatasetHandle>(H5Dcreate2(file.id(), path.c_str(), fileType<T>(), space.id(),
                                             H5P_DEFAULT, dcpl.id(), H5P_DEFAULT),
                                  error_class::kIo, w, "creating dataset");
    if (n > 0)
        check(H5Dwrite(ds.id(), nativeType<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data()), w,
              "writing dataset");
    ds.reset();
    file.setAttributes(datasetPath, attrs);
}

std::vector<std::size_t> datasetShape(const File& file, const std::string& datasetPath) {
    auto ds = openDataset(file, datasetPath);
    std::string w = file.where(datasetPath);
    auto space =
        take<DataspaceHandle>(H5Dget_space(ds.id()), error_class::kBadInput, w, "dataspace");
    int rank = H5Sget_simple_extent_ndims(space.id());
    if (rank < 0) fail(error_class::kBadInput, w, "reading dataspace");
    std::vector<hsize_t> dims(rank);
    if (rank > 0) H5Sget_simple_extent_dims(space.id(), dims.data(), nullptr);
    return std::vector<std::size_t>(dims.begin(), dims.end());
}

template <typename T>
NdArray<T> readArray(const File& file, const std::string& datasetPath) {
    auto ds = openDataset(file, datasetPath);
    std::string w = file.where(datasetPath);
    auto ft = take<DatatypeHandle>(H5Dget_type(ds.id()), error_class::kBadInput, w, "dataset type");
    H5T_class_t cls = H5Tget_class(ft.id());
    if (cls != H5T_INTEGER && cls != H5T_FLOAT)
        throw badInput(w + ": dataset is not numeric, cannot read it as an array");
    if (cls == H5T_FLOAT && std::is_integral_v<T>)
        throw badInput(w + ": dataset holds floating-point values, cannot read it as integers");
    NdArray<T> out;
    out.shape = datasetShape(file, datasetPath);
    std::size_t n =
        std::accumulate(out.shape.begin(), out.shape.end(), std::size_t(1), std::multiplies<>());
    out.data.resize(n);
    if (n > 0)
        check(H5Dread(ds.id(), nativeType<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data.data()),
              error_class::kBadInput, w, "reading dataset");
    return out;
}

template <typename T>
void writeImage(File& file, const std::string& datasetPath, const Image<T>& image,
                const PropertyList& attrs) {
    PropertyList all = attrs;
    all.set("x0", std::int64_t(image.xy0().x));
    all.set("y0", std::int64_t(image.xy0().y));
    std::span<const T> pixels(image.data(),
                              std::size_t(image.width()) * std::size_t(image.height()));
    writeArray<T>(file, datasetPath, pixels,
                  {std::size_t(image.height()), std::size_t(image.width())}, all);
}

template <typename T>
Image<T> readImage(const File& file, const std::string& datasetPath) {
    NdArray<T> a = readArray<T>(file, datasetPath);
    if (a.shape.size() != 2)
        throw badInput(file.where(datasetPath) + ": image dataset has " +
                       std::to_string(a.shape.size()) + " dimensions, not 2");
    auto attrs = file.attributes(datasetPath);
    Point2I xy0{int(attrs.get<std::int64_t>("x0", 0)), int(attrs.get<std::int64_t>("y0", 0))};
    Image<T> img(Box2I(xy0, Extent2I{int(a.shape[1]), int(a.shape[0])}));
    std::copy(a.data.begin(), a.data.end(), img.data());
    return img;
}

#define DRP_H5_INSTANTIATE(T)                                                                     \
    template void writeArray<T>(File&, const std::string&, std::span<const T>,                    \
                                const std::vector<std::size_t>&, const PropertyList&);            \
    template NdArray<T> readArray<T>(const File&, const std::string&);                            \
    template void writeImage<T>(File&, const std::string&, const Image<T>&, const PropertyList&); \
    template Image<T> readImage<T>(const File&, const std::string&);
DRP_H5_INSTANTIATE(std::int32_t)
DRP_H5_INSTANTIATE(std::int64_t)
DRP_H5_INSTANTIATE(float)
DRP_H5_INSTANTIATE(double)
#undef DRP_H5_INSTANTIATE

}  // namespace drp::h5
