// Shell quoting and validation of every value that goes into a generated batch script.
//
// A batch script has two parsers: sbatch reads the "#SBATCH" lines itself (no shell), and bash
// runs the body. Values are therefore handled in two ways:
//   * #SBATCH values (partition, account, qos, time, memory, constraint, extra options) are not
//     quoted but *validated* against the character set Slurm documents for them, so that no value
//     can end the line, start another directive or smuggle a second option in;
//   * everything in the body (paths, data ids, module names, environment values, the command) is
//     single-quoted with shellQuote(), which makes any byte sequence except NUL literal to bash.
// Control characters (newline, carriage return, ...) are rejected everywhere: they would make
// scripts unreadable and a newline inside a #SBATCH value would start a new line.
//
// Validation failures throw std::invalid_argument with the option name, the offending value
// (escaped) and the rule, e.g. "--partition: 'a b' is not a Slurm name (letters, digits, '_',
// '.', '-')".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace drp::slurm {

/// `s` as one bash word: wrapped in single quotes, each ' written as '\''. "" gives ''. Words
/// made only of safe characters ([A-Za-z0-9_./:=,@%+-]) are returned unquoted for readability.
std::string shellQuote(std::string_view s);

/// The strings joined with `sep` between them.
std::string join(const std::vector<std::string>& parts, std::string_view sep);

/// `s` with control characters shown as \n, \t, \xNN (for error messages).
std::string printable(std::string_view s);

/// Throws if `value` contains a control character (< 0x20 or 0x7f) or is empty when
/// `allowEmpty` is false.
void checkNoControl(std::string_view what, std::string_view value, bool allowEmpty = false);

/// Partition, account, QOS, reservation, job-name parts, MPI plugin: [A-Za-z0-9_.-]+, at most
/// 128 characters.
void checkName(std::string_view what, std::string_view value);

/// A Slurm time limit in one of the formats sbatch accepts: "M", "M:S", "H:M:S", "D-H",
/// "D-H:M", "D-H:M:S". Returns the limit in seconds (> 0). "UNLIMITED" is refused: the stop
/// signal needs a limit to count back from.
std::int64_t parseTimeLimit(std::string_view what, std::string_view value);
/// Seconds as Slurm's "D-HH:MM:SS" (or "HH:MM:SS" under a day).
std::string formatTimeLimit(std::int64_t seconds);

/// Memory per node: a positive integer with an optional K, M, G or T suffix (sbatch --mem).
void checkMemory(std::string_view what, std::string_view value);

/// Node feature expression for --constraint: feature names ([A-Za-z0-9_.-]) joined by & | ,
/// with optional [ ] ( ) and *count; no spaces.
void checkConstraint(std::string_view what, std::string_view value);

/// Environment-module name for `module load`: [A-Za-z0-9_.+/-]+ (e.g. "openmpi/4.1.4-gcc").
void checkModule(std::string_view what, std::string_view value);

/// Environment variable name: [A-Za-z_][A-Za-z0-9_]*.
void checkEnvName(std::string_view what, std::string_view value);

/// An extra sbatch option for an "#SBATCH" line: "--name" or "--name=value", name in
/// [a-z0-9-], value in [A-Za-z0-9_.,:@/+%=*&|()\[\]-]. Options that drp sets itself (array,
/// dependency, output, error, signal, requeue, job-name, time, ...) are refused so that a site
/// file cannot silently change the job chain.
void checkSbatchOption(std::string_view what, std::string_view value);

/// An extra launcher argument (srun/mpirun), e.g. "--bind-to" or "none": no control
/// characters; it is shell-quoted in the script.
void checkLauncherArg(std::string_view what, std::string_view value);

}  // namespace drp::slurm
