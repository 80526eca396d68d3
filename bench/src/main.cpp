// drp-bench: runs the registered benchmarks, prints a side-by-side table and writes JSON.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <thread>

#include <boost/program_options.hpp>

#include "drp/bench/bench.h"
#include "drp/core/atomic_file.h"
#include "drp/drp/version.h"

namespace po = boost::program_options;
using namespace drp::bench;

namespace {

std::string jsonString(const std::string& s) {
    std::string out = "\"";
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
            case '\t':
                out += "\\t";
                break;
            default:
                if (static_cast<unsigned char>(c) < 0x20) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", c);
                    out += buf;
                } else {
                    out += c;
                }
        }
    }
    return out + "\"";
}

std::string jsonNumber(std::optional<double> v) {
    if (!v || !std::isfinite(*v)) return "null";
    std::ostringstream os;
    os << std::setprecision(9) << *v;
    return os.str();
}

std::string fmt(std::optional<double> v) {
    if (!v) return "-";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.4g", *v);
    return buf;
}

struct Row {
    std::string benchmark;
    Measurement m;
};
struct Failure {
    std::string benchmark, error;
};

void printTable(const std::vector<Row>& rows, std::ostream& os) {
    os << std::left << std::setw(18) << "benchmark" << std::setw(44) << "metric" << std::right
       << std::setw(11) << "ours" << std::setw(11) << "reference"
       << "  " << std::left << std::setw(18) << "(tool)" << std::right << std::setw(7) << "ratio"
       << std::setw(12) << "goal"
       << "\n";
    for (const auto& r : rows) {
        const Measurement& m = r.m;
        std::string metric = m.metric + (m.unit.empty() ? "" : " [" + m.unit + "]");
        std::string goal = "-";
        if (m.goal)
            goal =
                (m.higherIsBetter ? ">=" : "<=") + fmt(m.goal) + (*m.meetsGoal() ? " ok" : " MISS");
        os << std::left << std::setw(18) << r.benchmark << std::setw(44) << metric << std::right
           << std::setw(11) << fmt(m.value) << std::setw(11) << fmt(m.reference) << "  "
           << std::left << std::setw(18) << (m.referenceTool.empty() ? "-" : m.referenceTool)
           << std::right << std::setw(7) << fmt(m.ratio()) << std::setw(12) << goal << "\n";
        if (!m.note.empty())
            os << std::setw(18) << ""
               << "  " << m.note << "\n";
    }
    os << "ratio = times better than the reference (ours/ref for rates, ref/ours for times).\n";
}

std::string utcNow() {
    std::time_t t = std::time(nullptr);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
    return buf;
}

void writeJson(const std::string& path, const std::vector<Row>& rows,
               const std::vector<Failure>& failures, const Context& ctx) {
    char host[256] = "unknown";
    gethostname(host, sizeof host - 1);
    std::ostringstream os;
    os << "{\n  \"generated_utc\": " << jsonString(utcNow())
       << ",\n  \"software\": " << jsonString(drp::versionLine())
       << ",\n  \"host\": " << jsonString(host)
       << ",\n  \"hardware_threads\": " << std::thread::hardware_concurrency()
       << ",\n  \"quick\": " << (ctx.quick ? "true" : "false")
       << ",\n  \"repeats\": " << ctx.repeats << ",\n  \"results\": [";
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const Measurement& m = rows[i].m;
        auto goalMet = m.meetsGoal();
        os << (i ? "," : "") << "\n    {\"benchmark\": " << jsonString(rows[i].benchmark)
           << ", \"metric\": " << jsonString(m.metric) << ", \"unit\": " << jsonString(m.unit)
           << ", \"value\": " << jsonNumber(m.value)
           << ", \"higher_is_better\": " << (m.higherIsBetter ? "true" : "false")
           << ", \"reference\": " << jsonNumber(m.reference)
           << ", \"reference_tool\": " << jsonString(m.referenceTool)
           << ", \"ratio\": " << jsonNumber(m.ratio()) << ", \"goal\": " << jsonNumber(m.goal)
           << ", \"meets_goal\": " << (goalMet ? (*goalMet ? "true" : "false") : "null")
           << ", \"note\": " << jsonString(m.note) << "}";
    }
    os << "\n  ],\n  \"failures\": [";
    for (std::size_t i = 0; i < failures.size(); ++i)
        os << (i ? "," : "") << "\n    {\"benchmark\": " << jsonString(failures[i].benchmark)
           << ", \"error\": " << jsonString(failures[i].error) << "}";
    os << "\n  ]\n}\n";
    drp::AtomicFile out(path);
    {
        std::ofstream f(out.tempPath());
        f << os.str();
        if (!f) throw std::runtime_error("cannot write " + out.tempPath());
    }
    out.commit();
}

}  // namespace

int main(int argc, char** argv) {
    po::options_description desc("Usage: drp-bench [options] [benchmark names...]");
    desc.add_options()("help,h", "print this help")("list", "list the benchmarks and exit")(
        "quick", po::bool_switch(), "smoke-test sizes (numbers meaningless)")(
        "repeats", po::value<int>()->default_value(5), "timed repetitions (median reported)")(
        "json", po::value<std::string>(), "write results to this JSON file")(
        "work-dir", po::value<std::string>(), "scratch directory (default: a temp dir)")(
        "names", po::value<std::vector<std::string>>(), "benchmarks to run (default: all)");
    po::positional_options_description pos;
    pos.add("names", -1);
    po::variables_map vm;
    try {
        po::store(po::command_line_parser(argc, argv).options(desc).positional(pos).run(), vm);
        po::notify(vm);
    } catch (const po::error& e) {
        std::cerr << "drp-bench: error: " << e.what() << "\n";
        return 2;
    }
    auto& registry = BenchmarkRegistry::instance();
    if (!registry.duplicates().empty()) {
        std::cerr << "drp-bench: error: benchmark '" << registry.duplicates().front()
                  << "' registered twice\n";
        return 1;
    }
    if (vm.count("help")) {
        std::cout << desc;
        return 0;
    }
    if (vm.count("list")) {
        for (auto* b : registry.all()) std::cout << b->name << "  " << b->description << "\n";
        return 0;
    }
    std::vector<const Benchmark*> selected;
    if (vm.count("names")) {
        for (const auto& n : vm["names"].as<std::vector<std::string>>()) {
            auto* b = registry.find(n);
            if (!b) {
                std::cerr << "drp-bench: error: no benchmark '" << n << "' (see --list)\n";
                return 2;
            }
            selected.push_back(b);
        }
    } else {
        selected = registry.all();
    }

    Context ctx;
    ctx.quick = vm["quick"].as<bool>();
    ctx.repeats = ctx.quick ? 1 : std::max(1, vm["repeats"].as<int>());
    ctx.log = &std::cerr;
    namespace fs = std::filesystem;
    fs::path work = vm.count("work-dir")
                        ? fs::path(vm["work-dir"].as<std::string>())
                        : fs::temp_directory_path() / ("drp-bench-" + std::to_string(getpid()));

    std::vector<Row> rows;
    std::vector<Failure> failures;
    for (auto* b : selected) {
        fs::path dir = work / b->name;
        fs::remove_all(dir);
        fs::create_directories(dir);
        ctx.workDir = dir.string();
        std::cerr << "drp-bench: running " << b->name << " ...\n";
        try {
            for (auto& m : b->run(ctx)) rows.push_back({b->name, std::move(m)});
        } catch (const std::exception& e) {
            failures.push_back({b->name, e.what()});
            std::cerr << "drp-bench: " << b->name << ": error: " << e.what() << "\n";
        }
        fs::remove_all(dir);
    }
    if (!vm.count("work-dir")) fs::remove_all(work);

    std::cout << drp::versionLine() << ", " << std::thread::hardware_concurrency()
              << " hardware threads" << (ctx.quick ? ", QUICK MODE" : "") << "\n";
    printTable(rows, std::cout);
    if (vm.count("json")) {
        writeJson(vm["json"].as<std::string>(), rows, failures, ctx);
        std::cout << "results: " << vm["json"].as<std::string>() << "\n";
    }
    return failures.empty() ? 0 : 1;
}
