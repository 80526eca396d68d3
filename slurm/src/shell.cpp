#include "drp/slurm/shell.h"

#include <array>
#include <cstdio>
#include <stdexcept>
#include <string>

namespace drp::slurm {
namespace {

bool isAlnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
bool isDigit(char c) {
    return c >= '0' && c <= '9';
}
bool inSet(char c, std::string_view extra) {
    return isAlnum(c) || extra.find(c) != extra.npos;
}

[[noreturn]] void fail(std::string_view what, std::string_view value, std::string_view rule) {
    throw std::invalid_argument(std::string(what) + ": '" + printable(value) + "' " +
                                std::string(rule));
}

void checkCharset(std::string_view what, std::string_view value, std::string_view extra,
                  std::string_view rule, std::size_t maxLen = 256) {
    checkNoControl(what, value);
    if (value.size() > maxLen) fail(what, value, "is longer than " + std::to_string(maxLen));
    for (char c : value)
        if (!inSet(c, extra)) fail(what, value, rule);
}

// Parses a non-empty run of digits at `pos`; returns false if none.
bool number(std::string_view s, std::size_t& pos, std::int64_t& out) {
    std::size_t start = pos;
    out = 0;
    while (pos < s.size() && isDigit(s[pos])) {
        if (out > 1'000'000'000) return false;  // absurd; also avoids overflow
        out = out * 10 + (s[pos] - '0');
        ++pos;
    }
    return pos > start;
}

}  // namespace

std::string shellQuote(std::string_view s) {
    if (!s.empty()) {
        bool safe = true;
        for (char c : s) safe = safe && inSet(c, "_./:=,@%+-");
        // A leading '=' or '%' is harmless, but '-' would still be one word; '~' is excluded
        // above (tilde expansion), as are glob and expansion characters.
        if (safe) return std::string(s);
    }
    std::string out = "'";
    for (char c : s) {
        if (c == '\'')
            out += "'\\''";
        else
            out += c;
    }
    out += "'";
    return out;
}

std::string join(const std::vector<std::string>& parts, std::string_view sep) {
    std::string out;
    for (std::size_t i = 0; i < parts.size(); ++i) {
        if (i) out.append(sep);
        out.append(parts[i]);
    }
    return out;
}

std::string printable(std::string_view s) {
    std::string out;
    for (unsigned char c : s) {
        if (c == '\n')
            out += "\\n";
        else if (c == '\t')
            out += "\\t";
        else if (c == '\r')
            out += "\\r";
        else if (c < 0x20 || c == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        } else
            out += static_cast<char>(c);
    }
    return out;
}

void checkNoControl(std::string_view what, std::string_view value, bool allowEmpty) {
    if (value.empty() && !allowEmpty) fail(what, value, "is empty");
    for (unsigned char c : value)
        if (c < 0x20 || c == 0x7f) fail(what, value, "contains a control character");
}

void checkName(std::string_view what, std::string_view value) {
    const char* rule =
        "is not a Slurm name (letters, digits, '_', '.', '-'; not starting with '-')";
    checkCharset(what, value, "_.-", rule, 128);
    if (value[0] == '-' || value[0] == '.') fail(what, value, rule);
}

std::int64_t parseTimeLimit(std::string_view what, std::string_view value) {
    checkNoControl(what, value);
    const char* rule =
        "is not a Slurm time limit (M, M:S, H:M:S, D-H, D-H:M or D-H:M:S, e.g. 01:30:00)";
    // Split an optional "D-" prefix, then up to three ':'-separated fields.
    std::size_t pos = 0;
    std::int64_t days = 0;
    bool hasDays = false;
    if (auto dash = value.find('-'); dash != value.npos) {
        if (!number(value, pos, days) || pos != dash) fail(what, value, rule);
        hasDays = true;
        pos = dash + 1;
    }
    std::array<std::int64_t, 3> f{};
    int n = 0;
    while (true) {
        if (n == 3 || !number(value, pos, f[n])) fail(what, value, rule);
        ++n;
        if (pos == value.size()) break;
        if (value[pos] != ':') fail(what, value, rule);
        ++pos;
    }
    std::int64_t seconds = 0;
    if (hasDays) {  // D-H, D-H:M, D-H:M:S
        seconds = days * 86400 + f[0] * 3600 + (n > 1 ? f[1] * 60 : 0) + (n > 2 ? f[2] : 0);
    } else if (n == 1) {  // minutes
        seconds = f[0] * 60;
    } else if (n == 2) {  // minutes:seconds
        seconds = f[0] * 60 + f[1];
    } else {  // hours:minutes:seconds
        seconds = f[0] * 3600 + f[1] * 60 + f[2];
    }
    if (seconds <= 0) fail(what, value, "must be positive");
    return seconds;
}

std::string formatTimeLimit(std::int64_t seconds) {
    if (seconds <= 0) throw std::invalid_argument("formatTimeLimit: non-positive time limit");
    const std::int64_t d = seconds / 86400, h = seconds / 3600 % 24, m = seconds / 60 % 60,
                       s = seconds % 60;
    char buf[48];
    if (d > 0)
        std::snprintf(buf, sizeof buf, "%lld-%02lld:%02lld:%02lld", (long long)d, (long long)h,
                      (long long)m, (long long)s);
    else
        std::snprintf(buf, sizeof buf, "%02lld:%02lld:%02lld", (long long)h, (long long)m,
                      (long long)s);
    return buf;
}

void checkMemory(std::string_view what, std::string_view value) {
    checkNoControl(what, value);
    std::size_t pos = 0;
    std::int64_t n = 0;
    const char* rule = "is not a memory size (a positive integer with optional K, M, G or T)";
    if (!number(value, pos, n) || n <= 0) fail(what, value, rule);
    if (pos + 1 == value.size() && std::string_view("KMGT").find(value[pos]) != value.npos) ++pos;
    if (pos != value.size()) fail(what, value, rule);
}

void checkConstraint(std::string_view what, std::string_view value) {
    checkCharset(what, value, "_.-&|,[]()*",
                 "is not a node feature expression (features joined by & | , with [ ] ( ) *N)");
}

void checkModule(std::string_view what, std::string_view value) {
    checkCharset(what, value, "_.+/-", "is not a module name (letters, digits, '_.+/-')");
}

void checkEnvName(std::string_view what, std::string_view value) {
    checkCharset(what, value, "_", "is not an environment variable name", 128);
    if (isDigit(value[0])) fail(what, value, "is not an environment variable name");
}

void checkSbatchOption(std::string_view what, std::string_view value) {
    checkNoControl(what, value);
    const char* rule =
        "is not an sbatch option (--name or --name=value; value letters, digits and "
        "_.,:@/+%=*&|()[]-)";
    if (value.size() < 3 || value.substr(0, 2) != "--" || !isAlnum(value[2]))
        fail(what, value, rule);
    const auto eq = value.find('=');
    const std::string_view name = value.substr(2, eq == value.npos ? value.npos : eq - 2);
    for (char c : name)
        if (!((c >= 'a' && c <= 'z') || isDigit(c) || c == '-')) fail(what, value, rule);
    if (eq != value.npos)
        for (char c : value.substr(eq + 1))
            if (!inSet(c, "_.,:@/+%=*&|()[]-")) fail(what, value, rule);
    // Options that define the job chain, its logs or its stop behaviour belong to drp.
    static constexpr std::array<std::string_view, 16> kReserved{
        "array",      "dependency", "output", "error",          "signal",   "requeue",
        "no-requeue", "job-name",   "time",   "wrap",           "parsable", "open-mode",
        "chdir",      "export",     "nodes",  "ntasks-per-node"};
    for (auto r : kReserved)
        if (name == r)
            fail(what, value,
                 "sets an option drp submit controls itself (use the matching drp option)");
}

void checkLauncherArg(std::string_view what, std::string_view value) {
    checkNoControl(what, value);
}

}  // namespace drp::slurm
