// A progress line on stderr for long runs over files: shown only when stderr is a terminal.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace cellguard::cli {

class Progress {
 public:
  // `total_bytes` 0 means unknown (stdin): the line then shows counts and rate only.
  Progress(std::string label, std::uint64_t total_bytes, bool enabled);
  ~Progress() { finish(last_bytes_, last_items_); }
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // Cheap enough to call per item: it looks at the clock only every 4096 calls.
  void update(std::uint64_t bytes_done, std::uint64_t items_done) {
    if (!enabled_ || (++calls_ & 4095) != 0) return;
    redraw(bytes_done, items_done, false);
  }
  // Draws the final state and ends the line.
  void finish(std::uint64_t bytes_done, std::uint64_t items_done);

  // True if stderr is a terminal (and the environment does not ask for no progress).
  static bool stderr_is_terminal();

 private:
  void redraw(std::uint64_t bytes_done, std::uint64_t items_done, bool final);

  std::string label_;
  std::uint64_t total_bytes_;
  bool enabled_;
  bool drawn_ = false;
  std::uint64_t calls_ = 0;
  std::uint64_t last_bytes_ = 0;
  std::uint64_t last_items_ = 0;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace cellguard::cli
