// A fixed-size latency histogram (1 µs buckets up to 20 ms, then one overflow bucket): recording is
// one increment, no allocation, so it can run on every frame.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>

#include "core/time.h"

namespace cellguard::edge {

class LatencyHistogram {
 public:
  static constexpr std::size_t kBuckets = 20'000;  // µs

  void add(Duration latency) {
    const std::int64_t ns = latency.count();
    const std::int64_t us = std::max<std::int64_t>(0, ns / 1000);
    ++counts_[static_cast<std::size_t>(std::min<std::int64_t>(us, kBuckets))];
    ++total_;
    max_ns_ = std::max(max_ns_, ns);
  }
  std::uint64_t count() const { return total_; }
  // The smallest bucket bound (µs) below which `fraction` of the samples lie; kBuckets if beyond.
  std::int64_t percentile_us(double fraction) const {
    if (total_ == 0) return 0;
    const auto wanted = static_cast<std::uint64_t>(fraction * static_cast<double>(total_) + 0.5);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i <= kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= std::max<std::uint64_t>(wanted, 1)) return static_cast<std::int64_t>(i) + 1;
    }
    return kBuckets;
  }
  nlohmann::json to_json() const {
    return {{"count", total_},
            {"p50_us", percentile_us(0.5)},
            {"p99_us", percentile_us(0.99)},
            {"p999_us", percentile_us(0.999)},
            {"max_us", static_cast<double>(max_ns_) / 1000.0}};
  }

 private:
  std::array<std::uint32_t, kBuckets + 1> counts_{};
  std::uint64_t total_ = 0;
  std::int64_t max_ns_ = 0;
};

}  // namespace cellguard::edge
