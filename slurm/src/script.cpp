#include "drp/slurm/script.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "drp/slurm/chunks.h"
#include "drp/slurm/shell.h"

namespace drp::slurm {

const char* toString(Launcher l) {
    return l == Launcher::Srun ? "srun" : "mpirun";
}

Launcher parseLauncher(const std::string& text) {
    if (text == "srun") return Launcher::Srun;
    if (text == "mpirun") return Launcher::Mpirun;
    throw std::invalid_argument("launcher: '" + printable(text) + "' is not srun or mpirun");
}

namespace {

int parseCount(const std::string& key, const std::string& value, int min) {
    std::size_t used = 0;
    int n = 0;
    try {
        n = std::stoi(value, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    if (used == 0 || used != value.size() || n < min)
        throw std::invalid_argument(key + ": '" + printable(value) +
                                    "' is not an integer >= " + std::to_string(min));
    return n;
}

std::string trim(const std::string& s) {
    const auto b = s.find_first_not_of(" \t");
    if (b == std::string::npos) return "";
    const auto e = s.find_last_not_of(" \t");
    return s.substr(b, e - b + 1);
}

}  // namespace

void SiteConfig::validate() const {
    if (!partition.empty()) checkName("partition", partition);
    if (!account.empty()) checkName("account", account);
    if (!qos.empty()) checkName("qos", qos);
    if (timeSeconds <= 0) throw std::invalid_argument("time: must be positive");
    if (nodes < 1) throw std::invalid_argument("nodes: must be >= 1");
    if (ranksPerNode < 1) throw std::invalid_argument("ranks-per-node: must be >= 1");
    if (!mem.empty()) checkMemory("mem", mem);
    if (!constraint.empty()) checkConstraint("constraint", constraint);
    checkName("mpi", mpi);
    for (const auto& a : launcherArgs) checkLauncherArg("launcher-arg", a);
    for (const auto& m : modules) checkModule("module", m);
    for (const auto& [k, v] : env) {
        checkEnvName("env", k);
        checkNoControl("env " + k, v, true);
    }
    for (const auto& o : sbatchOptions) checkSbatchOption("sbatch", o);
    if (signalSeconds < 1)
        throw std::invalid_argument("signal-seconds: must be >= 1, got " +
                                    std::to_string(signalSeconds));
    if (signalSeconds >= timeSeconds)
        throw std::invalid_argument("signal-seconds: " + std::to_string(signalSeconds) +
                                    " s is not shorter than the time limit " +
                                    formatTimeLimit(timeSeconds));
    if (maxRequeues < 0) throw std::invalid_argument("max-requeues: must be >= 0");
    checkName("job-name-prefix", jobNamePrefix);
}

void applySetting(SiteConfig& site, const std::string& key, const std::string& value) {
    if (key == "partition")
        site.partition = value;
    else if (key == "account")
        site.account = value;
    else if (key == "qos")
        site.qos = value;
    else if (key == "time")
        site.timeSeconds = parseTimeLimit("time", value);
    else if (key == "nodes")
        site.nodes = parseCount(key, value, 1);
    else if (key == "ranks-per-node")
        site.ranksPerNode = parseCount(key, value, 1);
    else if (key == "mem")
        site.mem = value;
    else if (key == "constraint")
        site.constraint = value;
    else if (key == "launcher")
        site.launcher = parseLauncher(value);
    else if (key == "mpi")
        site.mpi = value;
    else if (key == "launcher-arg")
        site.launcherArgs.push_back(value);
    else if (key == "module")
        site.modules.push_back(value);
    else if (key == "env") {
        const auto eq = value.find('=');
        if (eq == std::string::npos)
            throw std::invalid_argument("env: '" + printable(value) + "' is not NAME=value");
        site.env.emplace_back(value.substr(0, eq), value.substr(eq + 1));
    } else if (key == "sbatch")
        site.sbatchOptions.push_back(value);
    else if (key == "signal-seconds")
        site.signalSeconds = parseCount(key, value, 1);
    else if (key == "max-requeues")
        site.maxRequeues = parseCount(key, value, 0);
    else if (key == "job-name-prefix")
        site.jobNamePrefix = value;
    else
        throw std::invalid_argument(
            "unknown setting '" + printable(key) +
            "' (known: partition, account, qos, time, nodes, ranks-per-node, mem, constraint, "
            "launcher, mpi, launcher-arg, module, env, sbatch, signal-seconds, max-requeues, "
            "job-name-prefix)");
}

SiteConfig readSiteConfig(const std::string& path, SiteConfig base, bool validate) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot read site file " + path);
    std::size_t lineNo = 0;
    for (std::string line; std::getline(in, line);) {
        ++lineNo;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        const std::string t = trim(line);
        if (t.empty() || t[0] == '#') continue;
        const auto eq = t.find('=');
        try {
            if (eq == std::string::npos) throw std::invalid_argument("expected 'key = value'");
            applySetting(base, trim(t.substr(0, eq)), trim(t.substr(eq + 1)));
        } catch (const std::invalid_argument& e) {
            throw std::invalid_argument(path + ":" + std::to_string(lineNo) + ": " + e.what());
        }
    }
    if (!validate) return base;
    try {
        base.validate();
    } catch (const std::invalid_argument& e) {
        throw std::invalid_argument(path + ": " + e.what());
    }
    return base;
}

std::string formatArrayIndices(const std::vector<int>& indices) {
    std::string out;
    for (std::size_t i = 0; i < indices.size();) {
        std::size_t j = i;
        while (j + 1 < indices.size() && indices[j + 1] == indices[j] + 1) ++j;
        if (!out.empty()) out += ",";
        out += std::to_string(indices[i]);
        if (j > i) {
            out += '-';
            out += std::to_string(indices[j]);
        }
        i = j + 1;
    }
    return out;
}

void checkDirectivePath(const std::string& what, const std::string& path) {
    checkNoControl(what, path);
    bool ok = !path.empty() && path[0] == '/';
    for (char c : path)
        ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    std::string_view("_./+,@:=-").find(c) != std::string_view::npos);
    if (!ok)
        throw std::invalid_argument(what + ": '" + printable(path) +
                                    "' cannot be written on an #SBATCH line (use an absolute path "
                                    "of letters, digits and _./+,@:=-)");
}

std::string renderScript(const JobScript& job, const SiteConfig& site) {
    site.validate();
    checkName("job group", job.group);
    checkName("submission", job.submission);
    checkDirectivePath("log directory", job.logDir);
    if (job.command.empty()) throw std::invalid_argument("run command: empty");
    for (const auto& a : job.command) checkNoControl("run command argument", a, true);
    for (const auto& s : job.stages) checkNoControl("stage", s);
    checkNoControl("repository", job.repo);
    const bool array = !job.arrayIndices.empty();
    if (array) {
        if (!std::is_sorted(job.arrayIndices.begin(), job.arrayIndices.end()) ||
            std::adjacent_find(job.arrayIndices.begin(), job.arrayIndices.end()) !=
                job.arrayIndices.end() ||
            job.arrayIndices.front() < 0 || job.arrayIndices.back() >= job.chunkCount)
            throw std::invalid_argument("array indices must be distinct, sorted, in [0, chunks)");
        checkNoControl("chunk directory", job.chunkDir);
    }
    const std::string stages = join(job.stages, ",");
    const std::string stagesText = join(job.stages, ", ");

    std::ostringstream s;
    s << "#!/bin/bash\n";
    s << "# " << job.program << " submission " << job.submission << ", job group \"" << job.group
      << "\": stages " << stagesText << ".\n";
    std::string size = std::to_string(job.tasks) + " tasks";
    if (job.units > 0)
        size += ", " + std::to_string(job.units) + (job.units == 1 ? " unit" : " units");
    if (job.cost > 0) {
        char costText[64];
        std::snprintf(costText, sizeof costText, "%.6g", job.cost);
        size += std::string(", predicted cost ") + costText;
    }
    if (array) {
        s << "# Job array over " << job.arrayIndices.size() << " of " << job.chunkCount
          << " chunks (" << size << ");\n";
        s << "# array task N runs the tasks listed in " << job.chunkDir << "/chunk-NNNN.txt.\n";
    } else {
        s << "# One job (" << size << ").\n";
    }
    s << "# Written by `" << job.program << " submit`. Progress: `" << job.program
      << " status --repo " << shellQuote(job.repo) << "`;\n";
    s << "# resubmit what failed: `" << job.program << " submit --repo " << shellQuote(job.repo)
      << " --rerun-failed`.\n";
    // Every #SBATCH line carries a comment for the operator reading the script (sbatch reads
    // directives up to the first command, so comment lines between them are fine).
    const std::string logName = job.group + (array ? "-%A_%a.out" : "-%j.out");
    s << "#\n# Name shown by squeue and in the job-completion records:\n";
    s << "#SBATCH --job-name=" << site.jobNamePrefix << "-" << job.group << "\n";
    if (array) {
        s << "# One array task per chunk (its index picks the chunk file below):\n";
        s << "#SBATCH --array=" << formatArrayIndices(job.arrayIndices) << "\n";
    }
    s << "# One log per " << (array ? "array task (%A: array job id, %a: task index)" : "job (%j)")
      << ", appended to by every attempt:\n";
    s << "#SBATCH --output=" << job.logDir << "/" << logName << "\n";
    s << "#SBATCH --open-mode=append\n";
    s << "# Resources of each " << (array ? "array task" : "job")
      << ": rank 0 coordinates, the other ranks run tasks:\n";
    s << "#SBATCH --nodes=" << site.nodes << "\n";
    s << "#SBATCH --ntasks-per-node=" << site.ranksPerNode << "\n";
    s << "# Wall-clock limit of each attempt (a requeued attempt starts a new one):\n";
    s << "#SBATCH --time=" << formatTimeLimit(site.timeSeconds) << "\n";
    if (!site.partition.empty() || !site.account.empty() || !site.qos.empty() ||
        !site.mem.empty() || !site.constraint.empty()) {
        s << "# Site placement and limits (--site file or command line):\n";
        if (!site.partition.empty()) s << "#SBATCH --partition=" << site.partition << "\n";
        if (!site.account.empty()) s << "#SBATCH --account=" << site.account << "\n";
        if (!site.qos.empty()) s << "#SBATCH --qos=" << site.qos << "\n";
        if (!site.mem.empty()) s << "#SBATCH --mem=" << site.mem << "\n";
        if (!site.constraint.empty()) s << "#SBATCH --constraint=" << site.constraint << "\n";
    }
    s << "# SIGUSR1 to this batch shell " << site.signalSeconds
      << " s before the time limit, so that the engine stops cleanly:\n";
    s << "#SBATCH --signal=B:USR1@" << site.signalSeconds << "\n";
    s << "# The job may be requeued (it requeues itself when interrupted; also after "
         "preemption):\n";
    s << "#SBATCH --requeue\n";
    if (!site.sbatchOptions.empty()) {
        s << "# Extra site options (--site file or --sbatch):\n";
        for (const auto& o : site.sbatchOptions) s << "#SBATCH " << o << "\n";
    }
    s << "\nset -u\n";
    if (!site.modules.empty() || !site.env.empty()) {
        s << "\n# Site set-up.\n";
        if (!site.modules.empty()) {
            s << "module load";
            for (const auto& m : site.modules) s << " " << shellQuote(m);
            s << "\n";
        }
        for (const auto& [k, v] : site.env) s << "export " << k << "=" << shellQuote(v) << "\n";
    }
    s << "\n# The engine resumes from the journals in " << job.repo
      << "/runs: tasks already done are skipped.\n";
    if (array)
        s << "chunk_file=" << shellQuote(job.chunkDir)
          << "/chunk-$(printf %04d \"$SLURM_ARRAY_TASK_ID\").txt\n";
    s << "# The run writes its exit code here when it ends. A launcher that exits 0 without "
         "having\n"
         "# run it (ranks that never started) leaves no file: see the check after the launcher.\n";
    s << "exit_file=" << shellQuote(job.logDir) << "/" << job.group
      << "-\"$SLURM_JOB_ID\"-\"${SLURM_RESTART_COUNT:-0}\".exit\n";
    s << "rm -f \"$exit_file\"\n";
    s << "cmd=(";
    for (std::size_t i = 0; i < job.command.size(); ++i)
        s << (i ? " " : "") << shellQuote(job.command[i]);
    s << " --stages " << shellQuote(stages);
    if (array) s << " " << shellQuote(job.selectOption) << " \"$chunk_file\"";
    s << " --exit-status-file \"$exit_file\")\n";
    s << "\n# Slurm signals this shell " << site.signalSeconds
      << " s before the time limit; pass the signal on to the ranks:\n"
         "# the engine stops taking tasks and exits with 75 (resumable).\n";
    if (site.launcher == Launcher::Srun)
        s << "srun --mpi=" << site.mpi;
    else
        s << "mpirun";
    for (const auto& a : site.launcherArgs) s << " " << shellQuote(a);
    s << " \"${cmd[@]}\" &\n";
    s << "launcher=$!\n"
         "warned=0\n"
         "trap 'warned=1; kill -USR1 \"$launcher\" 2>/dev/null' USR1\n"
         "while :; do\n"
         "    wait \"$launcher\"\n"
         "    rc=$?\n"
         "    kill -0 \"$launcher\" 2>/dev/null || break  # the launcher has exited with rc\n"
         "    # Woken by the signal. A rank still starting up ignores it (the engine's handler is\n"
         "    # not installed yet), so repeat it every 5 s until the launcher exits.\n"
         "    while [ \"$warned\" -eq 1 ] && kill -0 \"$launcher\" 2>/dev/null; do\n"
         "        sleep 5\n"
         "        kill -USR1 \"$launcher\" 2>/dev/null\n"
         "    done\n"
         "done\n"
         "trap - USR1\n";
    s << "\n# Exit 0 without the run's own exit status: the launcher ran nothing. Fail the job, "
         "so\n"
         "# that the stages after it (afterok) do not start on missing outputs.\n"
         "if [ \"$rc\" -eq 0 ] && [ ! -s \"$exit_file\" ]; then\n"
         "    echo \""
      << job.program
      << ": the launcher exited 0 but the run wrote no exit status ($exit_file); failing "
         "the job\"\n"
         "    rc=1\n"
         "fi\n";
    s << "\n# 75: interrupted (time limit, preemption): requeue this job, whose next attempt "
         "resumes.\n"
         "# Otherwise the run's exit code: 0 finished (failed tasks, if any, are in the journal:\n"
         "# see status), non-zero: the run itself failed, and the jobs after this one do not "
         "start.\n";
    s << "restarts=${SLURM_RESTART_COUNT:-0}\n";
    s << "if [ \"$rc\" -eq 75 ] && [ \"$restarts\" -lt " << site.maxRequeues << " ]; then\n";
    s << "    echo \"" << job.program << ": interrupted; requeueing job $SLURM_JOB_ID (restart "
      << "$((restarts + 1)) of " << site.maxRequeues << ")\"\n";
    s << "    scontrol requeue \"$SLURM_JOB_ID\"\n";
    s << "fi\n";
    s << "exit \"$rc\"\n";
    return s.str();
}

}  // namespace drp::slurm
