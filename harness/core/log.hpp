// Logging to stderr and a progress bar: a redrawn bar with ETA on a terminal,
// plain periodic log lines otherwise (CI logs, Slurm outputs).
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace bm {

void log_info(const std::string& msg);
void log_warn(const std::string& msg);
bool stderr_is_tty();

class Progress {
 public:
  Progress(std::string label, int64_t total);
  ~Progress();
  void advance(int64_t n = 1, const std::string& status = "");
  void finish();

 private:
  void draw(bool final_line);
  std::string label_, status_;
  int64_t total_, done_ = 0;
  bool tty_, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

std::string format_duration(double seconds);

}  // namespace bm
