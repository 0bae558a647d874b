// Warns when something happens too often: more than `threshold` occurrences within `window`, at most
// once per `repeat`. Pure (times in, reports out), so tests replay it exactly. Used for CAN error
// frames: a storm of them means a broken bus (wiring, termination, a babbling node) even while frames
// still arrive.
#pragma once

#include <cstdint>
#include <optional>

#include "core/time.h"

namespace cellguard::edge {

class RateWatch {
 public:
  struct Report {
    std::uint64_t count = 0;       // occurrences in the window that crossed the threshold
    Duration window_ns{};          // the window they fell in
    std::uint64_t since_last = 0;  // occurrences since the previous report (all, on the first)
    Duration since_last_ns{};      // time since the previous report (0 on the first)
  };

  RateWatch(std::uint64_t threshold, Duration window_ns, Duration repeat_ns)
      : threshold_(threshold), window_ns_(window_ns), repeat_ns_(repeat_ns) {}

  // Counts one occurrence at `now_ns` (monotonic); a report when a warning is due.
  std::optional<Report> add(MonoTime now_ns) {
    ++total_;
    if (!window_started_ || now_ns - window_start_ns_ >= window_ns_) {
      window_started_ = true;
      window_start_ns_ = now_ns;
      in_window_ = 0;
    }
    ++in_window_;
    if (in_window_ < threshold_) return std::nullopt;
    if (reported_ && now_ns - last_report_ns_ < repeat_ns_) return std::nullopt;
    Report report{in_window_, window_ns_, total_ - total_at_last_report_,
                  reported_ ? now_ns - last_report_ns_ : Duration::zero()};
    reported_ = true;
    last_report_ns_ = now_ns;
    total_at_last_report_ = total_;
    return report;
  }

  std::uint64_t total() const { return total_; }
  std::uint64_t threshold() const { return threshold_; }
  Duration window_ns() const { return window_ns_; }

 private:
  std::uint64_t threshold_;
  Duration window_ns_;
  Duration repeat_ns_;
  bool window_started_ = false;
  MonoTime window_start_ns_{};
  std::uint64_t in_window_ = 0;
  std::uint64_t total_ = 0;
  bool reported_ = false;
  MonoTime last_report_ns_{};
  std::uint64_t total_at_last_report_ = 0;
};

}  // namespace cellguard::edge
