#include "drp/jobs/progress.h"

#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <numeric>
#include <sstream>

namespace drp::jobs {

Progress::Progress(std::ostream& out, std::vector<std::pair<std::string, std::size_t>> stageTotals,
                   double intervalSeconds, bool tty)
    : _out(out),
      _interval(intervalSeconds),
      _tty(tty || isTerminal(out)),
      _t0(std::chrono::steady_clock::now()),
      _last(_t0) {
    for (auto& [name, n] : stageTotals) {
        _names.push_back(std::move(name));
        _total.push_back(n);
    }
    _done.assign(_names.size(), 0);
    _failed.assign(_names.size(), 0);
    if (_tty && _interval > 0.5) _interval = 0.5;
}

bool Progress::isTerminal(const std::ostream& out) {
    if (&out == &std::cerr) return ::isatty(2);
    if (&out == &std::cout) return ::isatty(1);
    return false;
}

void Progress::addPriorDone(std::size_t s) {
    ++_done[s];
    ++_prior;
}
void Progress::addDone(std::size_t s) {
    ++_done[s];
    ++_sessionDone;
}
void Progress::addFailed(std::size_t s) {
    ++_failed[s];
    ++_sessionDone;
}

std::string Progress::line() const {
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - _t0).count();
    const std::size_t total = std::accumulate(_total.begin(), _total.end(), std::size_t{0});
    const std::size_t done = std::accumulate(_done.begin(), _done.end(), std::size_t{0});
    const std::size_t failed = std::accumulate(_failed.begin(), _failed.end(), std::size_t{0});
    const double rate = elapsed > 0 ? double(_sessionDone) / elapsed : 0.0;
    const std::size_t left = total - std::min(total, done + failed);
    std::ostringstream os;
    char buf[160];
    if (_tty) {
        const int width = 30;
        const int filled = total ? int(width * double(done + failed) / double(total)) : width;
        os << '[' << std::string(std::size_t(filled), '#')
           << std::string(std::size_t(width - filled), '.') << "] ";
    }
    std::snprintf(buf, sizeof buf, "%zu/%zu done", done, total);
    os << buf;
    if (failed) os << ", " << failed << " failed/blocked";
    std::snprintf(buf, sizeof buf, " | %.1f tasks/s", rate);
    os << buf;
    if (rate > 0 && left > 0) {
        std::snprintf(buf, sizeof buf, " ETA %.0f s", double(left) / rate);
        os << buf;
    }
    os << " |";
    for (std::size_t s = 0; s < _names.size(); ++s) {
        if (_total[s] == 0) continue;
        os << ' ' << _names[s] << ' ' << _done[s] << '/' << _total[s];
        if (_failed[s]) os << '(' << _failed[s] << "x)";
    }
    return os.str();
}

void Progress::tick(bool force) {
    if (_interval <= 0) return;
    auto now = std::chrono::steady_clock::now();
    if (!force && std::chrono::duration<double>(now - _last).count() < _interval) return;
    _last = now;
    if (_tty)
        _out << '\r' << line() << "\033[K" << std::flush;
    else
        _out << "[drp.jobs] " << line() << std::endl;
}

void Progress::finish() {
    if (_tty && _interval > 0) _out << std::endl;
}

}  // namespace drp::jobs
