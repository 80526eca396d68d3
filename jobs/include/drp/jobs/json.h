// A small JSON value type for the engine's journal and messages.
//
// The journal is JSON lines (one object per line) so that any tool (jq, pandas, a shell) can read
// it; the engine needs only objects, arrays, strings, numbers, booleans and null. Objects keep
// their keys sorted (std::map) so that the text of an event is a pure function of its content.
// Numbers are doubles; integers up to 2^53 round-trip exactly, which covers every count, byte
// size and microsecond time the engine writes.
#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace drp::jobs {

class Json;
using JsonObject = std::map<std::string, Json, std::less<>>;
using JsonArray = std::vector<Json>;

/// Thrown by Json::parse with the byte offset of the problem.
class JsonError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

class Json final {
  public:
    Json() = default;  ///< null
    Json(std::nullptr_t) {}
    Json(bool b) : _v(b) {}
    Json(int v) : _v(static_cast<double>(v)) {}
    Json(long v) : _v(static_cast<double>(v)) {}
    Json(long long v) : _v(static_cast<double>(v)) {}
    Json(unsigned v) : _v(static_cast<double>(v)) {}
    Json(unsigned long v) : _v(static_cast<double>(v)) {}
    Json(unsigned long long v) : _v(static_cast<double>(v)) {}
    Json(double v) : _v(v) {}
    Json(const char* s) : _v(std::string(s)) {}
    Json(std::string s) : _v(std::move(s)) {}
    Json(std::string_view s) : _v(std::string(s)) {}
    Json(JsonArray a) : _v(std::move(a)) {}
    Json(JsonObject o) : _v(std::move(o)) {}

    bool isNull() const { return std::holds_alternative<std::monostate>(_v); }
    bool isBool() const { return std::holds_alternative<bool>(_v); }
    bool isNumber() const { return std::holds_alternative<double>(_v); }
    bool isString() const { return std::holds_alternative<std::string>(_v); }
    bool isArray() const { return std::holds_alternative<JsonArray>(_v); }
    bool isObject() const { return std::holds_alternative<JsonObject>(_v); }

    /// Typed access; throws JsonError naming the expected type on a mismatch.
    bool asBool() const;
    double asNumber() const;
    std::int64_t asInt() const;
    const std::string& asString() const;
    const JsonArray& asArray() const;
    JsonArray& asArray();
    const JsonObject& asObject() const;
    JsonObject& asObject();

    /// Object member access: operator[] inserts (turning null into an object); get() returns
    /// nullptr when absent; the *Or helpers return a default when absent or null.
    Json& operator[](std::string_view key);
    const Json* get(std::string_view key) const;
    std::string stringOr(std::string_view key, std::string fallback = {}) const;
    double numberOr(std::string_view key, double fallback) const;

    /// Compact single-line text (safe for JSON lines: control characters are escaped).
    std::string dump() const;
    void dumpTo(std::string& out) const;
    /// Parses one JSON value; trailing non-space text is an error.
    static Json parse(std::string_view text);

  private:
    std::variant<std::monostate, bool, double, std::string, JsonArray, JsonObject> _v;
};

/// Appends `s` as a quoted, escaped JSON string.
void appendJsonString(std::string& out, std::string_view s);

}  // namespace drp::jobs
