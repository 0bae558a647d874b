// Warns when something happens too often: more than `threshold` occurrences within `window`, at most
// once per `repeat`. Pure (times in, reports out), so tests replay it exactly. Used for CAN error
// frames: a storm of them means a broken bus (wiring, termination, a babbling node) even while frames
// still arrive.
#pragma once

#include <cstdint>
#include <optional>

namespace cellguard::edge {

class RateWatch {
 public:
  struct Report {
    std::uint64_t count = 0;         // occurrences in the window that crossed the threshold
    std::int64_t window_ns = 0;      // the window they fell in
    std::uint64_t since_last = 0;    // occurrences since the previous report (all, on the first)
    std::int64_t since_last_ns = 0;  // time since the previous report (0 on the first)
  };

  RateWatch(std::uint64_t threshold, std::int64_t window_ns, std::int64_t repeat_ns)
      : threshold_(threshold), window_ns_(window_ns), repeat_ns_(repeat_ns) {}

  // Counts one occurrence at `now_ns` (monotonic); a report when a warning is due.
  std::optional<Report> add(std::int64_t now_ns) {
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
                  reported_ ? now_ns - last_report_ns_ : 0};
    reported_ = true;
    last_report_ns_ = now_ns;
    total_at_last_report_ = total_;
    return report;
  }

  std::uint64_t total() const { return total_; }
  std::uint64_t threshold() const { return threshold_; }
  std::int64_t window_ns() const { return window_ns_; }

 private:
  std::uint64_t threshold_;
  std::int64_t window_ns_;
  std::int64_t repeat_ns_;
  bool window_started_ = false;
  std::int64_t window_start_ns_ = 0;
  std::uint64_t in_window_ = 0;
  std::uint64_t total_ = 0;
  bool reported_ = false;
  std::int64_t last_report_ns_ = 0;
  std::uint64_t total_at_last_report_ = 0;
};

}  // namespace cellguard::edge
