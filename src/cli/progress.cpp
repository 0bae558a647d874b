#include "cli/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>

namespace cellguard::cli {

Progress::Progress(std::string label, std::uint64_t total_bytes, bool enabled)
    : label_(std::move(label)),
      total_bytes_(total_bytes),
      enabled_(enabled),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

bool Progress::stderr_is_terminal() { return ::isatty(STDERR_FILENO) == 1; }

void Progress::redraw(std::uint64_t bytes_done, std::uint64_t items_done, bool final) {
  const auto now = std::chrono::steady_clock::now();
  if (!final && now - last_draw_ < std::chrono::milliseconds(200)) return;
  last_draw_ = now;
  last_bytes_ = bytes_done;
  last_items_ = items_done;
  const double seconds = std::chrono::duration<double>(now - start_).count();
  const double rate = seconds > 0 ? static_cast<double>(items_done) / seconds : 0;
  if (total_bytes_ > 0) {
    const double fraction = static_cast<double>(bytes_done) / static_cast<double>(total_bytes_);
    const int width = 30;
    const int filled = static_cast<int>(std::lround(fraction * width));
    std::fprintf(stderr, "\r%s [%-*.*s] %5.1f%%  %llu frames  %.2f M/s ", label_.c_str(), width,
                 filled > width ? width : filled, "##############################", fraction * 100,
                 static_cast<unsigned long long>(items_done), rate / 1e6);
  } else {
    std::fprintf(stderr, "\r%s %llu frames  %.2f M/s ", label_.c_str(),
                 static_cast<unsigned long long>(items_done), rate / 1e6);
  }
  drawn_ = true;
}

void Progress::finish(std::uint64_t bytes_done, std::uint64_t items_done) {
  if (!enabled_ || !drawn_) return;
  redraw(bytes_done, items_done, true);
  std::fputc('\n', stderr);
  drawn_ = false;
  enabled_ = false;
}

}  // namespace cellguard::cli
