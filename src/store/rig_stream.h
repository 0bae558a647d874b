// A realistic rig stream for the store's tests and benchmarks (not part of cellguard_store): the
// modules' 8 PDOs each SYNC (10 Hz), encoded from a slowly evolving pack model with the project's
// DBC (data/cellguard-rig.dbc) and decoded back with its codec, so values are exactly the doubles the
// edge sees (raw * scale + offset); SYNC and frame times with µs jitter in the ns; the sensor board
// at 1 Hz (converted values as arbitrary doubles and its raw ADC counts) and the inverter at 5 Hz;
// safety.state and safety.flags samples and state events.
#pragma once

#include <memory>
#include <random>

#include "store/store.h"

namespace cellguard::store::testing {

struct RigStreamOptions {
  int modules = 15;
  TimeNs start_ns = 1'796'119'200'000'000'000;  // 2026-12-01T10:00:00Z
  std::uint64_t seed = 1;
  int pdos = 8;  // PDOs each module sends (pdo1..pdoN); the rig's logged modules sent 6
};

class RigStream {
 public:
  // Loads the DBC; errors name the file.
  static Result<std::unique_ptr<RigStream>> create(const RigStreamOptions& options);
  ~RigStream();

  // The catalogue (the same for every edge id).
  EdgeInfo info(const std::string& edge_id) const;
  // The next `duration_ns` of data as one batch with the next seq (1, 2, ...).
  Batch next(TimeNs duration_ns);
  TimeNs now_ns() const;
  std::uint64_t samples() const;  // non-NaN values generated so far

 private:
  struct Impl;
  explicit RigStream(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Catalogue names of the non-module channels, as the rig CSV columns they feed.
inline constexpr const char* kStateChannel = "safety.state";

}  // namespace cellguard::store::testing
