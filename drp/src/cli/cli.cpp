// The `drp` program skeleton (Gnuastro-style: parse -> check -> run): dispatch to the registered
// subcommand, common options (--help, --config, --print-config), error reporting, exit codes.
#include <algorithm>
#include <charconv>
#include <cstdint>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <optional>
#include <set>
#include <sstream>

#include "cli/command.h"
#include "drp/core/error.h"
#include "drp/drp/version.h"

namespace po = boost::program_options;

namespace drp::cli {

CommandRegistry& CommandRegistry::instance() {
    static CommandRegistry registry;  // constructed on first use: safe from static registrars
    return registry;
}

void CommandRegistry::add(Command command) {
    if (find(command.name) != nullptr) {
        _duplicates.push_back(command.name);
        return;
    }
    _commands.push_back(std::move(command));
}

const Command* CommandRegistry::find(const std::string& name) const {
    for (const auto& c : _commands)
        if (c.name == name) return &c;
    return nullptr;
}

std::vector<const Command*> CommandRegistry::all() const {
    std::vector<const Command*> out;
    for (const auto& c : _commands) out.push_back(&c);
    std::sort(out.begin(), out.end(), [](auto* a, auto* b) { return a->name < b->name; });
    return out;
}

namespace {

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

void printTopHelp(std::ostream& os) {
    os << "drp - data release production\n\n"
          "Usage: drp <command> [options]    run a command\n"
          "       drp <command> --help       the command's options\n"
          "       drp --version              version and git commit\n\n"
          "Commands:\n";
    auto commands = CommandRegistry::instance().all();
    std::size_t width = 0;
    for (auto* c : commands) width = std::max(width, c->name.size());
    for (auto* c : commands)
        os << "  " << std::left << std::setw(int(width) + 2) << c->name << c->summary << "\n";
    os << "\nEvery command also takes --config FILE (INI lines \"option = value\", long option\n"
          "names; unknown keys are errors; the command line wins) and --print-config (print the\n"
          "effective configuration in that format and exit).\n"
          "Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error.\n";
}

std::string formatDouble(double v) {
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, v);  // shortest text that round-trips
    return std::string(buf, r.ptr);
}

/// Text of a stored option value, one string per config-file line (vectors give several).
/// nullopt for a type the dumper does not know.
std::optional<std::vector<std::string>> formatValue(const boost::any& v) {
    using S = std::vector<std::string>;
    if (auto* p = boost::any_cast<std::string>(&v)) return S{*p};
    if (auto* p = boost::any_cast<bool>(&v)) return S{*p ? "true" : "false"};
    if (auto* p = boost::any_cast<int>(&v)) return S{std::to_string(*p)};
    if (auto* p = boost::any_cast<unsigned>(&v)) return S{std::to_string(*p)};
    if (auto* p = boost::any_cast<long>(&v)) return S{std::to_string(*p)};
    if (auto* p = boost::any_cast<unsigned long>(&v)) return S{std::to_string(*p)};
    if (auto* p = boost::any_cast<long long>(&v)) return S{std::to_string(*p)};
    if (auto* p = boost::any_cast<double>(&v)) return S{formatDouble(*p)};
    if (auto* p = boost::any_cast<float>(&v)) return S{formatDouble(*p)};
    if (auto* p = boost::any_cast<std::vector<std::string>>(&v)) return *p;
    if (auto* p = boost::any_cast<std::vector<double>>(&v)) {
        S out;
        for (double d : *p) out.push_back(formatDouble(d));
        return out;
    }
    if (auto* p = boost::any_cast<std::vector<int>>(&v)) {
        S out;
        for (int d : *p) out.push_back(std::to_string(d));
        return out;
    }
    return std::nullopt;
}

/// The effective configuration as a config file that --config reads back.
void printConfig(const std::string& command, const po::options_description& own,
                 const po::variables_map& vm, const std::set<std::string>& fromCommandLine,
                 const std::set<std::string>& fromConfig, const std::string& configFile,
                 std::ostream& os) {
    os << "# drp " << command << ": effective configuration (" << versionLine() << ")\n"
       << "# read it back with: drp " << command << " --config FILE\n";
    for (const auto& opt : own.options()) {
        const std::string& name = opt->long_name();
        if (!vm.count(name)) {
            os << "# " << name << " =    # not set\n";
            continue;
        }
        const auto& value = vm[name];
        auto text = formatValue(value.value());
        if (!text) throw logicError("option '" + name + "' has a type --print-config cannot print");
        std::string source = fromCommandLine.count(name) ? "command line"
                             : fromConfig.count(name)    ? "config " + configFile
                             : value.defaulted()         ? "default"
                                                         : "set";
        for (const auto& t : *text) os << name << " = " << t << "    # " << source << "\n";
    }
}

std::set<std::string> keysOf(const po::parsed_options& parsed) {
    std::set<std::string> keys;
    for (const auto& o : parsed.options) keys.insert(o.string_key);
    return keys;
}

int runCommand(const Command& cmd, const std::vector<std::string>& args, std::ostream& out,
               std::ostream& err) {
    po::options_description own("Options of drp " + cmd.name);
    if (cmd.addOptions) cmd.addOptions(own);
    po::options_description common("Common options");
    common.add_options()("help,h", "print this help and exit")(
        "config", po::value<std::string>()->value_name("FILE"),
        "read options from an INI file (\"option = value\" lines); the command line wins")(
        "print-config", "print the effective configuration (config-file format) and exit");
    po::options_description all;
    all.add(own).add(common);
    po::positional_options_description positional;
    if (cmd.addPositional) cmd.addPositional(positional);

    po::variables_map vm;
    auto parsed = po::command_line_parser(args).options(all).positional(positional).run();
    po::store(parsed, vm);
    if (vm.count("help")) {
        out << "Usage: drp " << cmd.name << " [options]\n\n" << cmd.summary << "\n\n" << all;
        return 0;
    }
    std::set<std::string> fromConfig;
    std::string configFile;
    if (vm.count("config")) {
        configFile = vm["config"].as<std::string>();
        std::ifstream in(configFile);
        if (!in) throw configError("cannot read config file '" + configFile + "'");
        try {
            // allow_unregistered = false: a misspelt key is an error, never silently ignored.
            auto fileOptions = po::parse_config_file(in, own, false);
            fromConfig = keysOf(fileOptions);
            po::store(fileOptions, vm);
        } catch (const po::error& e) {
            throw configError("config file '" + configFile + "': " + e.what());
        }
    }
    po::notify(vm);
    if (vm.count("print-config")) {
        printConfig(cmd.name, own, vm, keysOf(parsed), fromConfig, configFile, out);
        return 0;
    }
    return cmd.run(Invocation{cmd.name, vm, out, err});
}

}  // namespace

int runProgram(int argc, const char* const argv[], std::ostream& out, std::ostream& err) {
    auto& registry = CommandRegistry::instance();
    if (!registry.duplicates().empty()) {
        err << "drp: error: internal: command '" << registry.duplicates().front()
            << "' is registered twice\n";
        return kExitFailure;
    }
    if (argc < 2) {
        printTopHelp(err);
        return kExitUsage;
    }
    std::string first = argv[1];
    if (first == "--help" || first == "-h" || first == "help") {
        if (first == "help" && argc > 2) {  // `drp help <command>` = `drp <command> --help`
            const char* args[] = {argv[0], argv[2], "--help"};
            return runProgram(3, args, out, err);
        }
        printTopHelp(out);
        return 0;
    }
    if (first == "--version") {
        out << versionLine() << "\n";
        return 0;
    }
    const Command* cmd = registry.find(first);
    if (cmd == nullptr) {
        err << "drp: error: " << (first.starts_with("-") ? "unknown option '" : "unknown command '")
            << first << "' (drp --help lists the commands)\n";
        return kExitUsage;
    }
    std::vector<std::string> args(argv + 2, argv + argc);
    const std::string prefix = "drp " + cmd->name + ": error: ";
    try {
        return runCommand(*cmd, args, out, err);
    } catch (const po::error& e) {
        err << prefix << e.what() << " (drp " << cmd->name << " --help lists the options)\n";
        return kExitUsage;
    } catch (const Error& e) {
        err << prefix << e.what() << "\n";
        return e.errorClass() == error_class::kConfig ? kExitUsage : kExitFailure;
    } catch (const std::exception& e) {
        err << prefix << e.what() << "\n";
        return kExitFailure;
    }
}

}  // namespace drp::cli
