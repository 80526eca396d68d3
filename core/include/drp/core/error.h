// Errors in drp.
//
// One exception type, `drp::Error`, carries an *error class* (a short, stable, machine-readable
// word such as "bad_input", "io", "config", "astrometry_failed") and a message that collects
// context as the exception travels outwards:
//
//     try { readExposure(path); }
//     catch (Error& e) { e.addContext("visit 1234 det 42"); throw; }
//     // what(): "visit 1234 det 42: reading /repo/x.fits HDU 3: CFITSIO: ..."
//
// The three tiers of failure (STYLE.md): a flag on one object (never an exception), a failed unit
// (an Error caught by the stage runner and recorded in the journal with its class), and a fatal
// error before any work starts (an Error of class "config" raised during validation).
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace drp {

/// Well-known error classes. Stages may define their own (e.g. "astrometry_failed"); these are
/// the ones the engine treats specially when deciding about retries.
namespace error_class {
inline constexpr std::string_view kBadInput = "bad_input";      ///< corrupt/missing input: no retry
inline constexpr std::string_view kIo = "io";                  ///< transient I/O: retried
inline constexpr std::string_view kConfig = "config";          ///< invalid configuration: fatal
inline constexpr std::string_view kLogic = "logic";            ///< a bug: no retry
inline constexpr std::string_view kNotFound = "not_found";     ///< missing file or HDU
inline constexpr std::string_view kNumerical = "numerical";    ///< algorithm did not converge
}  // namespace error_class

class Error : public std::exception {
public:
    Error(std::string_view errorClass, std::string message)
        : _class(errorClass), _message(std::move(message)) {}

    /// Prepend context ("reading HDU 3") to the message; returns *this for `throw e.addContext()`.
    Error& addContext(std::string_view context) {
        _message = std::string(context) + ": " + _message;
        return *this;
    }

    const std::string& errorClass() const noexcept { return _class; }
    const std::string& message() const noexcept { return _message; }
    const char* what() const noexcept override { return _message.c_str(); }

private:
    std::string _class;
    std::string _message;
};

/// Shorthands for the common classes.
inline Error badInput(std::string message) { return Error(error_class::kBadInput, std::move(message)); }
inline Error ioError(std::string message) { return Error(error_class::kIo, std::move(message)); }
inline Error configError(std::string message) { return Error(error_class::kConfig, std::move(message)); }
inline Error logicError(std::string message) { return Error(error_class::kLogic, std::move(message)); }
inline Error notFound(std::string message) { return Error(error_class::kNotFound, std::move(message)); }

}  // namespace drp
