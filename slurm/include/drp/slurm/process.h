// Running the Slurm client programs (sbatch, squeue, scontrol, scancel, sacct).
//
// Commands are run as argument vectors with fork/execvp, never through a shell, so no value can
// be reinterpreted. The client programs read SLURM_CONF from the environment (without it they
// look the controller up in DNS); it is inherited from the caller.
//
// CommandRunner is an interface so that the submission logic can be tested with a scripted fake
// (slurm/tests) and run against a real cluster (the end-to-end tests).
#pragma once

#include <string>
#include <vector>

namespace drp::slurm {

struct CommandResult {
    int exitCode = -1;  ///< the program's exit code; 127 if it could not be started
    std::string out, err;
    bool ok() const { return exitCode == 0; }
};

class CommandRunner {
  public:
    virtual ~CommandRunner() = default;
    virtual CommandResult run(const std::vector<std::string>& argv) = 0;
};

/// Runs programs found on PATH; stdin is /dev/null. Waits up to `timeoutSeconds` (then kills the
/// program and reports exit code 124), so a hung controller cannot hang `drp status`.
class ProcessRunner final : public CommandRunner {
  public:
    explicit ProcessRunner(double timeoutSeconds = 60) : _timeout(timeoutSeconds) {}
    CommandResult run(const std::vector<std::string>& argv) override;

  private:
    double _timeout;
};

/// "sbatch --parsable x" for messages: the argv joined with shell quoting.
std::string commandLine(const std::vector<std::string>& argv);

}  // namespace drp::slurm
