// A one-line progress bar on stderr for long commands (quantize, perplexity,
// convert). It redraws only on a terminal: in a log, a line that rewrites
// itself is noise, so there it stays silent and the command's own summary
// says what happened.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace osprey::cli {

class ProgressBar {
 public:
  ProgressBar(std::string label, bool enabled);
  // done of total units; `detail` follows the bar ("312/690 MiB").
  void update(int64_t done, int64_t total, const std::string& detail);
  // Ends the line, if one was drawn.
  void finish();
  ~ProgressBar() { finish(); }

 private:
  std::string label_;
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

// "1.23 GiB", "512 B".
std::string human_bytes(double bytes);
// "0:42", "1:02:03".
std::string human_duration(double seconds);

}  // namespace osprey::cli
