#include "drp/jobs/json.h"

#include <charconv>
#include <cmath>
#include <cstdio>

namespace drp::jobs {

namespace {

[[noreturn]] void typeError(const char* expected) {
    throw JsonError(std::string("json: expected ") + expected);
}

class Parser {
  public:
    explicit Parser(std::string_view text) : _s(text) {}

    Json parseDocument() {
        Json v = value();
        skipSpace();
        if (_i != _s.size()) fail("trailing characters after the value");
        return v;
    }

  private:
    std::string_view _s;
    std::size_t _i = 0;

    [[noreturn]] void fail(const std::string& what) const {
        throw JsonError("json: " + what + " at byte " + std::to_string(_i));
    }
    void skipSpace() {
        while (_i < _s.size() &&
               (_s[_i] == ' ' || _s[_i] == '\t' || _s[_i] == '\n' || _s[_i] == '\r'))
            ++_i;
    }
    bool consume(std::string_view word) {
        if (_s.substr(_i, word.size()) == word) {
            _i += word.size();
            return true;
        }
        return false;
    }

    Json value() {
        skipSpace();
        if (_i >= _s.size()) fail("unexpected end of text");
        char c = _s[_i];
        if (c == '{') return object();
        if (c == '[') return array();
        if (c == '"') return Json(string());
        if (consume("true")) return Json(true);
        if (consume("false")) return Json(false);
        if (consume("null")) return Json();
        return number();
    }

    Json object() {
        ++_i;
        JsonObject o;
        skipSpace();
        if (_i < _s.size() && _s[_i] == '}') {
            ++_i;
            return Json(std::move(o));
        }
        while (true) {
            skipSpace();
            if (_i >= _s.size() || _s[_i] != '"') fail("expected a key string");
            std::string key = string();
            skipSpace();
            if (_i >= _s.size() || _s[_i] != ':') fail("expected ':'");
            ++_i;
            o.insert_or_assign(std::move(key), value());
            skipSpace();
            if (_i < _s.size() && _s[_i] == ',') {
                ++_i;
                continue;
            }
            if (_i < _s.size() && _s[_i] == '}') {
                ++_i;
                return Json(std::move(o));
            }
            fail("expected ',' or '}'");
        }
    }

    Json array() {
        ++_i;
        JsonArray a;
        skipSpace();
        if (_i < _s.size() && _s[_i] == ']') {
            ++_i;
            return Json(std::move(a));
        }
        while (true) {
            a.push_back(value());
            skipSpace();
            if (_i < _s.size() && _s[_i] == ',') {
                ++_i;
                continue;
            }
            if (_i < _s.size() && _s[_i] == ']') {
                ++_i;
                return Json(std::move(a));
            }
            fail("expected ',' or ']'");
        }
    }

    static void appendUtf8(std::string& out, unsigned cp) {
        if (cp < 0x80) {
            out += static_cast<char>(cp);
        } else if (cp < 0x800) {
            out += static_cast<char>(0xC0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out += static_cast<char>(0xE0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
            out += static_cast<char>(0xF0 | (cp >> 18));
            out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        }
    }

    unsigned hex4() {
        if (_i + 4 > _s.size()) fail("truncated \\u escape");
        unsigned v = 0;
        for (int k = 0; k < 4; ++k) {
            char c = _s[_i++];
            v <<= 4;
            if (c >= '0' && c <= '9')
                v |= unsigned(c - '0');
            else if (c >= 'a' && c <= 'f')
                v |= unsigned(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F')
                v |= unsigned(c - 'A' + 10);
            else
                fail("bad hex digit in \\u escape");
        }
        return v;
    }

    std::string string() {
        ++_i;  // opening quote
        std::string out;
        while (true) {
            if (_i >= _s.size()) fail("unterminated string");
            char c = _s[_i++];
            if (c == '"') return out;
            if (c != '\\') {
                out += c;
                continue;
            }
            if (_i >= _s.size()) fail("unterminated escape");
            char e = _s[_i++];
            switch (e) {
                case '"':
                    out += '"';
                    break;
                case '\\':
                    out += '\\';
                    break;
                case '/':
                    out += '/';
                    break;
                case 'b':
                    out += '\b';
                    break;
                case 'f':
                    out += '\f';
                    break;
                case 'n':
                    out += '\n';
                    break;
                case 'r':
                    out += '\r';
                    break;
                case 't':
                    out += '\t';
                    break;
                case 'u': {
                    unsigned cp = hex4();
                    if (cp >= 0xD800 && cp < 0xDC00 && consume("\\u")) {
                        unsigned lo = hex4();
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    }
                    appendUtf8(out, cp);
                    break;
                }
                default:
                    fail("bad escape");
            }
        }
    }

    Json number() {
        std::size_t start = _i;
        while (_i < _s.size() &&
               (std::isdigit(static_cast<unsigned char>(_s[_i])) || _s[_i] == '-' ||
                _s[_i] == '+' || _s[_i] == '.' || _s[_i] == 'e' || _s[_i] == 'E'))
            ++_i;
        if (start == _i) fail("unexpected character");
        double v = 0;
        auto [ptr, ec] = std::from_chars(_s.data() + start, _s.data() + _i, v);
        if (ec != std::errc() || ptr != _s.data() + _i) fail("bad number");
        return Json(v);
    }
};

}  // namespace

bool Json::asBool() const {
    if (!isBool()) typeError("a boolean");
    return std::get<bool>(_v);
}
double Json::asNumber() const {
    if (!isNumber()) typeError("a number");
    return std::get<double>(_v);
}
std::int64_t Json::asInt() const {
    return static_cast<std::int64_t>(std::llround(asNumber()));
}
const std::string& Json::asString() const {
    if (!isString()) typeError("a string");
    return std::get<std::string>(_v);
}
const JsonArray& Json::asArray() const {
    if (!isArray()) typeError("an array");
    return std::get<JsonArray>(_v);
}
JsonArray& Json::asArray() {
    if (isNull()) _v = JsonArray{};
    if (!isArray()) typeError("an array");
    return std::get<JsonArray>(_v);
}
const JsonObject& Json::asObject() const {
    if (!isObject()) typeError("an object");
    return std::get<JsonObject>(_v);
}
JsonObject& Json::asObject() {
    if (isNull()) _v = JsonObject{};
    if (!isObject()) typeError("an object");
    return std::get<JsonObject>(_v);
}

Json& Json::operator[](std::string_view key) {
    auto& o = asObject();
    auto it = o.find(key);
    if (it == o.end()) it = o.emplace(std::string(key), Json()).first;
    return it->second;
}

const Json* Json::get(std::string_view key) const {
    if (!isObject()) return nullptr;
    const auto& o = std::get<JsonObject>(_v);
    auto it = o.find(key);
    return it == o.end() ? nullptr : &it->second;
}

std::string Json::stringOr(std::string_view key, std::string fallback) const {
    const Json* v = get(key);
    return (v && v->isString()) ? v->asString() : fallback;
}

double Json::numberOr(std::string_view key, double fallback) const {
    const Json* v = get(key);
    return (v && v->isNumber()) ? v->asNumber() : fallback;
}

void appendJsonString(std::string& out, std::string_view s) {
    out += '"';
    for (char c : s) {
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            default:
                if (static_cast<unsigned char>(c) < 0x20) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
                    out += buf;
                } else {
                    out += c;
                }
        }
    }
    out += '"';
}

void Json::dumpTo(std::string& out) const {
    switch (_v.index()) {
        case 0:
            out += "null";
            break;
        case 1:
            out += std::get<bool>(_v) ? "true" : "false";
            break;
        case 2: {
            double d = std::get<double>(_v);
            if (!std::isfinite(d)) {
                out += "null";  // JSON has no NaN/Inf
            } else if (d == std::floor(d) && std::fabs(d) < 9.007199254740992e15) {
                out += std::to_string(static_cast<long long>(d));
            } else {
                char buf[32];
                auto [p, ec] = std::to_chars(buf, buf + sizeof buf, d);  // shortest round-trip
                out.append(buf, p);
            }
            break;
        }
        case 3:
            appendJsonString(out, std::get<std::string>(_v));
            break;
        case 4: {
            out += '[';
            bool first = true;
            for (const auto& e : std::get<JsonArray>(_v)) {
                if (!first) out += ',';
                first = false;
                e.dumpTo(out);
            }
            out += ']';
            break;
        }
        case 5: {
            out += '{';
            bool first = true;
            for (const auto& [k, e] : std::get<JsonObject>(_v)) {
                if (!first) out += ',';
                first = false;
                appendJsonString(out, k);
                out += ':';
                e.dumpTo(out);
            }
            out += '}';
            break;
        }
    }
}

std::string Json::dump() const {
    std::string out;
    dumpTo(out);
    return out;
}

Json Json::parse(std::string_view text) {
    return Parser(text).parseDocument();
}

}  // namespace drp::jobs
