// The fault plan of the fault proxy: which fault comes when, from a seed — pure, no I/O, no clock.
//
// The proxy (fault_proxy.h) asks the plan for the next fault and carries it out; the same seed and
// options give the same sequence of faults on every machine (the generator and the draws are defined
// here, not by the standard library), so a failing CI run can be replayed with its --seed.
//
// Also here: the duration syntax of the command line ("250ms", "2s..8s", "0..200ms") and the names
// of fault kinds and directions, shared by the command line and the control socket.
//
// Thread safety: plain values and functions; a FaultPlan or Rng is used by one thread at a time.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace cellguard::faultproxy {

using Nanos = std::chrono::nanoseconds;

enum class FaultKind {
  cut,        // close both sides cleanly (FIN)
  reset,      // abortive close of both sides (RST)
  stall,      // stop relaying in one or both directions for a while, sockets stay open
  delay,      // add latency to every chunk, order preserved
  blackhole,  // new connections are accepted but never connected; existing ones stall
  refuse,     // new connections are closed at once; existing ones are cut
};
inline constexpr std::size_t kFaultKinds = 6;
std::string_view to_string(FaultKind kind);
Result<FaultKind> parse_fault_kind(std::string_view name);

// Relay directions: up is client → target, down is target → client.
enum class Direction { up, down, both };
std::string_view to_string(Direction direction);
Result<Direction> parse_direction(std::string_view name);

// A closed interval of durations; draws are uniform in [min, max]. min == max is a fixed duration.
struct DurationRange {
  Nanos min{0};
  Nanos max{0};
  bool zero() const { return max <= Nanos{0}; }
  friend bool operator==(const DurationRange&, const DurationRange&) = default;
};

// "250ms", "1.5s", "2m", "0": a non-negative number with a unit (ns, us, ms, s, m); only 0 may omit it.
Result<Nanos> parse_duration(std::string_view text);
// "2s..8s", "0..200ms" (a bare number takes the other end's unit), or one duration ("100ms" = fixed).
Result<DurationRange> parse_duration_range(std::string_view text);
std::string format_duration(Nanos duration);  // "250ms", "2s", "1.5s"

// xoshiro256** seeded through splitmix64: small, fast, and the same sequence everywhere.
class Rng {
 public:
  explicit Rng(std::uint64_t seed);
  std::uint64_t next();
  std::uint64_t below(std::uint64_t bound);  // uniform in [0, bound); 0 for bound 0
  double unit();                             // uniform in [0, 1)
  Nanos in(const DurationRange& range);      // uniform in [min, max]

 private:
  std::array<std::uint64_t, 4> s_{};
};

struct PlanOptions {
  DurationRange interval{std::chrono::seconds(2), std::chrono::seconds(8)};  // time between faults
  DurationRange stall{std::chrono::seconds(1), std::chrono::seconds(5)};     // how long a stall lasts
  DurationRange outage{std::chrono::seconds(1), std::chrono::seconds(5)};    // blackhole and refuse periods
  double reset_prob = 0.2;  // chance that a fault is a reset (when reset is among the kinds)
  // The kinds the plan draws from (delay is not one: random delays come with every chunk).
  std::vector<FaultKind> kinds{FaultKind::cut, FaultKind::reset, FaultKind::stall, FaultKind::blackhole,
                               FaultKind::refuse};
};
// Rejects empty or inverted ranges, a zero interval, probabilities outside [0, 1], no kinds, delay.
Result<void> validate(const PlanOptions& options);

struct PlannedFault {
  Nanos at{0};  // since the plan's start; strictly increasing
  FaultKind kind = FaultKind::cut;
  Nanos duration{0};                      // stall, blackhole, refuse; 0 for cut and reset
  Direction direction = Direction::both;  // which way a stall stops
  std::uint64_t pick = 0;                 // which connection when faults hit one: pick % (live connections)
  friend bool operator==(const PlannedFault&, const PlannedFault&) = default;
};

// One step of the plan: the fault after the one at `after`. Draws, in this order: the interval, the
// kind (reset with reset_prob, else uniformly among the other kinds), the duration, the direction, pick.
PlannedFault next_fault(const PlanOptions& options, Nanos after, Rng& rng);

// The sequence of faults of one seed. Options must be valid (validate()).
class FaultPlan {
 public:
  FaultPlan(PlanOptions options, std::uint64_t seed);
  PlannedFault next();
  const PlanOptions& options() const { return options_; }

 private:
  PlanOptions options_;
  Rng rng_;
  Nanos last_{0};
};

}  // namespace cellguard::faultproxy
