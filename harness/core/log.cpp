#include "harness/core/log.hpp"

#include <unistd.h>

#include <cstdio>
#include <iostream>

namespace bm {

bool stderr_is_tty() { return ::isatty(STDERR_FILENO) == 1; }

void log_info(const std::string& msg) { std::cerr << "[bitmerge] " << msg << std::endl; }
void log_warn(const std::string& msg) { std::cerr << "[bitmerge] warning: " << msg << std::endl; }

std::string format_duration(double s) {
  char buf[32];
  if (s < 0) s = 0;
  int h = static_cast<int>(s / 3600), m = static_cast<int>(s / 60) % 60, sec = static_cast<int>(s) % 60;
  if (h > 0)
    std::snprintf(buf, sizeof buf, "%dh%02dm", h, m);
  else
    std::snprintf(buf, sizeof buf, "%dm%02ds", m, sec);
  return buf;
}

Progress::Progress(std::string label, int64_t total)
    : label_(std::move(label)), total_(total), tty_(stderr_is_tty()),
      start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

Progress::~Progress() {
  if (!finished_) finish();
}

void Progress::advance(int64_t n, const std::string& status) {
  done_ += n;
  if (!status.empty()) status_ = status;
  auto now = std::chrono::steady_clock::now();
  double since = std::chrono::duration<double>(now - last_draw_).count();
  if ((tty_ && since > 0.1) || (!tty_ && since > 10.0) || done_ >= total_) {
    last_draw_ = now;
    draw(false);
  }
}

void Progress::finish() {
  finished_ = true;
  draw(true);
}

void Progress::draw(bool final_line) {
  double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double frac = total_ > 0 ? static_cast<double>(done_) / static_cast<double>(total_) : 1.0;
  double eta = frac > 0 ? el * (1 - frac) / frac : 0;
  char line[512];
  if (tty_) {
    int width = 30, filled = static_cast<int>(frac * width);
    std::string bar(filled, '#');
    bar.resize(width, '.');
    std::snprintf(line, sizeof line, "\r%s [%s] %lld/%lld %s ETA %s %s\033[K", label_.c_str(), bar.c_str(),
                  (long long)done_, (long long)total_, format_duration(el).c_str(), format_duration(eta).c_str(),
                  status_.c_str());
    std::cerr << line << (final_line ? "\n" : "") << std::flush;
  } else {
    std::snprintf(line, sizeof line, "[bitmerge] %s %lld/%lld (%.0f%%) elapsed %s eta %s %s", label_.c_str(),
                  (long long)done_, (long long)total_, 100 * frac, format_duration(el).c_str(),
                  format_duration(eta).c_str(), status_.c_str());
    std::cerr << line << std::endl;
  }
}

}  // namespace bm
