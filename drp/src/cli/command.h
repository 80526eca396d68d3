// Subcommands of the `drp` program and their registry.
//
// A subcommand lives in its own file, drp/src/commands/<name>.cpp, and registers itself with a
// static registrar; nothing shared needs editing to add one:
//
//     namespace po = boost::program_options;
//     namespace {
//     void addOptions(po::options_description& o) {
//         o.add_options()("num-rings", po::value<int>()->default_value(120), "declination rings");
//     }
//     int run(const drp::cli::Invocation& inv) {
//         int n = inv.options["num-rings"].as<int>();
//         inv.out << n << "\n";
//         return 0;                       // exit code: 0 success, 1 if anything failed
//     }
//     const drp::cli::RegisterCommand reg{{
//         .name = "rings", .summary = "Print the number of rings", .addOptions = addOptions,
//         .run = run}};   // designated initialisers: fields left out stay empty
//     }  // namespace
//
// The framework (cli.cpp) adds to every command: --help, --config FILE (INI "key = value" with
// the long option names; unknown keys are errors), --print-config (dump the effective
// configuration in that same format and exit). Command-line values override config-file values.
//
// Errors: a command throws. drp::Error of class "config" (drp::configError) and every
// Program_options error are usage errors (exit code 2); anything else is a runtime failure (exit
// code 1). The message is printed as "drp <command>: error: <message>".
#pragma once

#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include <boost/program_options.hpp>

namespace drp::cli {

/// What a command's run function receives.
struct Invocation {
    std::string command;                                   ///< the subcommand's name
    const boost::program_options::variables_map& options;  ///< parsed, defaults applied
    std::ostream& out;                                     ///< normal output
    std::ostream& err;                                     ///< diagnostics
};

struct Command {
    std::string name;     ///< as typed after `drp`
    std::string summary;  ///< one line for `drp --help`
    /// Adds the command's own options (may be empty).
    std::function<void(boost::program_options::options_description&)> addOptions = nullptr;
    /// Runs the command; returns the exit code (0 = success, 1 = something failed).
    std::function<int(const Invocation&)> run;
    /// Optional: positional arguments (each must also be declared by addOptions).
    std::function<void(boost::program_options::positional_options_description&)> addPositional =
        nullptr;
};

/// The commands linked into this program. Filled during static initialisation, read in main().
class CommandRegistry final {
  public:
    static CommandRegistry& instance();
    void add(Command command);
    /// nullptr if unknown.
    const Command* find(const std::string& name) const;
    /// Sorted by name.
    std::vector<const Command*> all() const;
    /// Names registered twice (a build mistake, reported by main()).
    const std::vector<std::string>& duplicates() const { return _duplicates; }

  private:
    std::vector<Command> _commands;
    std::vector<std::string> _duplicates;
};

/// Register a command from a static object in the command's translation unit.
struct RegisterCommand final {
    explicit RegisterCommand(Command command) {
        CommandRegistry::instance().add(std::move(command));
    }
};

/// The whole program: parse argv, dispatch, map errors to exit codes. Exposed for main().
int runProgram(int argc, const char* const argv[], std::ostream& out, std::ostream& err);

}  // namespace drp::cli
