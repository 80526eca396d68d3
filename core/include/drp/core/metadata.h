// An ordered list of named scalar values with comments: FITS header keywords, HDF5 attributes,
// provenance. Keys keep their insertion order (so headers are written in a stable order).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "drp/core/error.h"

namespace drp {

class PropertyList final {
public:
    using Value = std::variant<bool, std::int64_t, double, std::string>;
    struct Entry {
        std::string key;
        Value value;
        std::string comment;
        bool operator==(const Entry&) const = default;
    };

    /// Set (replace in place, or append) a value.
    void set(const std::string& key, Value value, std::string comment = {});
    /// Any arithmetic value: bool stays bool, integers become int64, floating point double.
    /// (A plain `int` overload made set("X", 0.5) store 0 and set("X", true) store 1: a double
    /// or bool converts to int by a standard conversion, which beats the conversion to Value.)
    template <typename T>
        requires std::is_arithmetic_v<T>
    void set(const std::string& key, T value, std::string comment = {}) {
        if constexpr (std::is_same_v<T, bool>)
            set(key, Value(value), std::move(comment));
        else if constexpr (std::is_integral_v<T>)
            set(key, Value(static_cast<std::int64_t>(value)), std::move(comment));
        else
            set(key, Value(static_cast<double>(value)), std::move(comment));
    }
    void set(const std::string& key, const char* value, std::string comment = {}) {
        set(key, Value(std::string(value)), std::move(comment));
    }
    bool has(const std::string& key) const { return find(key) != nullptr; }
    void remove(const std::string& key);

    /// Typed read; throws Error(not_found) if absent, Error(bad_input) if of another type.
    /// Integers convert to double on request.
    template <typename T>
    T get(const std::string& key) const;
    template <typename T>
    T get(const std::string& key, T fallback) const {
        return has(key) ? get<T>(key) : fallback;
    }
    const Entry* find(const std::string& key) const;
    const std::vector<Entry>& entries() const { return _entries; }
    bool empty() const { return _entries.empty(); }
    /// Append all entries of `other` (replacing existing keys).
    void update(const PropertyList& other);
    bool operator==(const PropertyList&) const = default;

private:
    std::vector<Entry> _entries;
};

}  // namespace drp
