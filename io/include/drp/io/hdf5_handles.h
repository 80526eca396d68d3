// RAII ownership of HDF5 identifiers, one move-only type per kind of id (after HighFive).
//
// Every HDF5 object the C API hands out (file, group, dataset, dataspace, datatype, property
// list, attribute) is an integer id that must be closed with the matching H5?close function.
// A `Handle<Kind>` owns one such id and closes it with the right function when it goes out of
// scope, so an exception thrown half-way through a write never leaks ids (a leaked file id keeps
// the file open and, for parallel HDF5, makes the final collective close hang).
//
//   h5::DatasetHandle ds(H5Dopen2(...));   // adopt (only in io/src, which sees hdf5.h)
//   H5Dread(ds.id(), ...);                 // borrow the raw id
//
// This header deliberately does not include <hdf5.h>: drp::io links HDF5 privately, so code
// outside io uses the typed API in hdf5.h / hdf5_table.h and never sees raw ids. `Id` is the
// 64-bit integer that hid_t is in HDF5 >= 1.10 (checked by a static_assert in hdf5_handles.cpp).
//
// Destructors never throw; HDF5 errors on close are ignored there. Call close() explicitly where
// a failure matters (closing a file flushes it; a failed flush must be reported).
//
// Thread safety: Debian's parallel HDF5 is built without --enable-threadsafe, so HDF5 calls
// (including the closes done by these destructors) must not run concurrently in one process.
#pragma once

#include <cstdint>
#include <utility>

namespace drp::h5 {

using Id = std::int64_t;

enum class IdKind { File, Group, Dataset, Dataspace, Datatype, PropertyList, Attribute };

/// Close `id` with the function for `kind`; returns false if HDF5 reported an error.
bool closeId(IdKind kind, Id id) noexcept;

template <IdKind K>
class Handle final {
  public:
    static constexpr IdKind kind = K;

    Handle() noexcept = default;
    /// Adopt an id (a negative id, HDF5's failure value, makes an empty handle).
    explicit Handle(Id id) noexcept : _id(id < 0 ? -1 : id) {}
    ~Handle() { reset(); }
    Handle(Handle&& other) noexcept : _id(std::exchange(other._id, -1)) {}
    Handle& operator=(Handle&& other) noexcept {
        if (this != &other) {
            reset();
            _id = std::exchange(other._id, -1);
        }
        return *this;
    }
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;

    Id id() const noexcept { return _id; }
    bool valid() const noexcept { return _id >= 0; }
    explicit operator bool() const noexcept { return valid(); }
    /// Give up ownership without closing.
    Id release() noexcept { return std::exchange(_id, -1); }
    /// Close (ignoring errors, for destructors and error paths).
    void reset() noexcept {
        if (_id >= 0) closeId(K, _id);
        _id = -1;
    }
    /// Close and report whether HDF5 succeeded (the handle is empty afterwards either way).
    [[nodiscard]] bool close() noexcept {
        if (_id < 0) return true;
        return closeId(K, std::exchange(_id, -1));
    }

  private:
    Id _id = -1;
};

using FileHandle = Handle<IdKind::File>;
using GroupHandle = Handle<IdKind::Group>;
using DatasetHandle = Handle<IdKind::Dataset>;
using DataspaceHandle = Handle<IdKind::Dataspace>;
using DatatypeHandle = Handle<IdKind::Datatype>;
using PropertyListHandle = Handle<IdKind::PropertyList>;
using AttributeHandle = Handle<IdKind::Attribute>;

}  // namespace drp::h5
