// HDF5 files: open/create, groups, attributes and N-D arrays (parallel HDF5 1.10 C API inside).
//
// drp writes catalogs (see hdf5_table.h) and numerical products that are not images for DS9 —
// PSF model coefficients, background meshes, model images — as HDF5, so that h5py, pandas and
// MPI ranks all read them directly. This header is the small, typed layer every module uses:
//
//   auto out = h5::AtomicFile("/repo/psf/visit-1234.h5");     // temp name until commit()
//   h5::writeArray(out.file(), "/psf/coefficients", coeffs, {nx, ny, nterms}, provenance);
//   out.file().setAttribute("/psf", "sigma_pixels", 1.7);
//   out.commit();                                               // close, fsync, rename
//
//   auto in = h5::File::open("/repo/psf/visit-1234.h5");
//   h5::NdArray<double> c = h5::readArray<double>(in, "/psf/coefficients");
//
// Conventions
// - Arrays are row-major (C order, last index fastest) exactly like numpy: an image of
//   width W and height H is the 2-D dataset shape (H, W), read in numpy as arr[y, x].
// - Object paths are absolute ("/a/b") or relative to the root; intermediate groups are created
//   by writers.
// - Attributes hold PropertyList values: bool (the enum h5py maps to numpy bool), int64, double
//   and string (variable-length UTF-8, which h5py returns as str).
//
// Errors: every failure is a drp::Error whose message names the file, the object path and the
// operation and ends with HDF5's own error stack ("HDF5: #0 H5Fopen(): ... [major / minor]").
// HDF5's automatic printing to stderr is switched off. Classes: not_found (missing file, group,
// dataset, attribute), bad_input (not an HDF5 file, truncated or corrupt file, an object of the
// wrong kind or type), io (anything else: disk full, permissions, failed flush), logic (misuse:
// writing to a read-only file, inconsistent shapes).
//
// File locking: HDF5 >= 1.10 locks files with flock(); on NFS/Lustre this can fail or hang. Set
// HDF5_USE_FILE_LOCKING=FALSE in the environment there; File honours it (see File::open).
//
// Not thread-safe (Debian's parallel HDF5 is built without thread safety): serialize all calls.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "drp/core/atomic_file.h"
#include "drp/core/image.h"
#include "drp/core/metadata.h"
#include "drp/io/hdf5_handles.h"

namespace drp::h5 {

/// An open HDF5 file. Move-only; closing (explicitly or in the destructor) releases the ids.
class File final {
  public:
    enum class Mode { ReadOnly, ReadWrite };

    /// Open an existing file. not_found if it does not exist, bad_input if it is not a
    /// (complete) HDF5 file. File locking is disabled when HDF5_USE_FILE_LOCKING is FALSE/0
    /// (NFS, Lustre); "BEST_EFFORT" locks where the filesystem supports it.
    static File open(const std::string& path, Mode mode = Mode::ReadOnly);
    /// Create (truncate) a file. `displayName`, if given, is the name used in error messages
    /// (AtomicFile writes to a temporary name but errors should name the final file).
    static File create(const std::string& path, const std::string& displayName = {});
    /// Adopt an open file id (used by the parallel open in hdf5_parallel.cpp).
    File(FileHandle handle, std::string path, std::string displayName, bool writable);

    File(File&&) noexcept = default;
    File& operator=(File&&) noexcept = default;
    ~File() = default;  ///< closes without reporting errors; call close() to see them

    /// Name used in messages (the final name for atomic writes).
    const std::string& name() const { return _display; }
    /// The path actually opened (a temporary name for atomic writes).
    const std::string& path() const { return _path; }
    bool writable() const { return _writable; }
    bool isOpen() const { return _handle.valid(); }
    Id id() const { return _handle.id(); }

    /// Flush buffers to the file (throws io on failure).
    void flush();
    /// Close the file, reporting failures (the final flush happens here). Idempotent.
    void close();

    /// Does a link exist at `objectPath` (checking every intermediate group)?
    bool exists(const std::string& objectPath) const;
    /// Is `objectPath` a group? false if missing or a dataset.
    bool isGroup(const std::string& objectPath) const;
    /// Create a group and any missing parents; no-op if it exists already as a group.
    void createGroup(const std::string& groupPath);
    /// Names (not paths) of the objects directly under a group, in name order.
    std::vector<std::string> children(const std::string& groupPath = "/") const;

    /// Attributes on the group or dataset at objectPath (replacing an existing one).
    void setAttribute(const std::string& objectPath, const std::string& name,
                      const PropertyList::Value& value);
    /// Any bool, integer, floating-point or string-like value (mapped to bool, int64, double,
    /// string). A template so that `true` stays a bool and `1.5` a double (plain overloads would
    /// convert them to int).
    template <typename T>
    void setAttribute(const std::string& objectPath, const std::string& name, const T& value) {
        if constexpr (std::is_same_v<T, bool>)
            setAttribute(objectPath, name, PropertyList::Value(value));
        else if constexpr (std::is_integral_v<T>)
            setAttribute(objectPath, name, PropertyList::Value(std::int64_t(value)));
        else if constexpr (std::is_floating_point_v<T>)
            setAttribute(objectPath, name, PropertyList::Value(double(value)));
        else
            setAttribute(objectPath, name, PropertyList::Value(std::string(value)));
    }
    /// Write every entry of `attrs` (comments are not stored).
    void setAttributes(const std::string& objectPath, const PropertyList& attrs);
    bool hasAttribute(const std::string& objectPath, const std::string& name) const;
    /// Read a scalar attribute. Integers come back as int64, floats as double, the h5py bool
    /// enum as bool, strings (fixed or variable length) as string. not_found if absent,
    /// bad_input for arrays or other types.
    PropertyList::Value attribute(const std::string& objectPath, const std::string& name) const;
    /// All scalar attributes of an object (in name order); non-scalar ones are not included.
    PropertyList attributes(const std::string& objectPath) const;
    /// A 1-D string-array attribute (h5py: list of str), e.g. column orders.
    void setStringArrayAttribute(const std::string& objectPath, const std::string& name,
                                 const std::vector<std::string>& values);
    std::vector<std::string> stringArrayAttribute(const std::string& objectPath,
                                                  const std::string& name) const;

    /// "<file>" or "<file>:<object>" for messages.
    std::string where(const std::string& objectPath = {}) const;

  private:
    FileHandle _handle;
    std::string _path, _display;
    bool _writable = false;
};

/// A new HDF5 file written under a temporary name and renamed into place by commit(), so that a
/// crash never leaves a half-written file under the final name. Several datasets and tables
/// ("objects", "sources", ...) may be written to file() before the single commit(). Without
/// commit() the destructor removes the temporary file.
class AtomicFile final {
  public:
    explicit AtomicFile(const std::string& finalPath);
    AtomicFile(AtomicFile&&) noexcept = default;
    ~AtomicFile() = default;

    File& file() { return _file; }
    const std::string& finalPath() const { return _atomic->finalPath(); }
    /// Close the HDF5 file (reporting failures), fsync, rename to the final name.
    void commit();

  private:
    std::unique_ptr<drp::AtomicFile> _atomic;
    File _file;
};

/// A dense N-D array in row-major (C) order: data.size() == product of shape.
template <typename T>
struct NdArray {
    std::vector<std::size_t> shape;
    std::vector<T> data;
    bool operator==(const NdArray&) const = default;
};

/// Write an N-D array (T: int32, int64, float, double) as a new dataset, creating parent groups,
/// with `attrs` as attributes. Arrays larger than 1 MiB are chunked and deflate-compressed.
template <typename T>
void writeArray(File& file, const std::string& datasetPath, std::span<const T> data,
                const std::vector<std::size_t>& shape, const PropertyList& attrs = {});
template <typename T>
void writeArray(File& file, const std::string& datasetPath, const NdArray<T>& array,
                const PropertyList& attrs = {}) {
    writeArray<T>(file, datasetPath, std::span<const T>(array.data), array.shape, attrs);
}
/// Read a whole dataset, converting its numeric type to T (bad_input if not numeric, or if the
/// conversion would be lossy in kind: a float dataset is not read as an integer array).
template <typename T>
NdArray<T> readArray(const File& file, const std::string& datasetPath);
/// Shape of a dataset (empty for a scalar).
std::vector<std::size_t> datasetShape(const File& file, const std::string& datasetPath);

/// An image as a 2-D dataset of shape (height, width) plus attributes `x0`, `y0` (its xy0).
template <typename T>
void writeImage(File& file, const std::string& datasetPath, const Image<T>& image,
                const PropertyList& attrs = {});
/// Read an image written by writeImage (xy0 restored from `x0`/`y0`, default 0).
template <typename T>
Image<T> readImage(const File& file, const std::string& datasetPath);

}  // namespace drp::h5
