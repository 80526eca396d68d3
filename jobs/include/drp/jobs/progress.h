// Progress display on the coordinator: per stage done/total, overall rate and ETA. On a terminal
// it redraws one line with a bar; otherwise (Slurm output files) it prints a plain line every
// `intervalSeconds`. The rate counts tasks finished in this run; the ETA divides the remaining
// task count by it (the cost model orders work but is in arbitrary units, so it is not used here).
#pragma once

#include <chrono>
#include <iosfwd>
#include <string>
#include <utility>
#include <vector>

namespace drp::jobs {

class Progress final {
  public:
    Progress(std::ostream& out, std::vector<std::pair<std::string, std::size_t>> stageTotals,
             double intervalSeconds, bool tty = false);
    /// Same, deciding `tty` from whether `out` is std::cerr/std::cout on a terminal.
    static bool isTerminal(const std::ostream& out);

    void addPriorDone(std::size_t stage);
    void addDone(std::size_t stage);
    void addFailed(std::size_t stage);  ///< failed or blocked: finished without output
    /// Prints if the interval elapsed (or `force`).
    void tick(bool force);
    void finish();
    /// The current line (for tests).
    std::string line() const;

  private:
    std::ostream& _out;
    std::vector<std::string> _names;
    std::vector<std::size_t> _total, _done, _failed;
    std::size_t _sessionDone = 0, _prior = 0;
    double _interval;
    bool _tty;
    std::chrono::steady_clock::time_point _t0, _last;
};

}  // namespace drp::jobs
