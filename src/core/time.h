// Time as types: which clock a time comes from is part of its type.
//
// cellguard reads two clocks, and mixing them up is a bug the compiler should catch:
//   MonoTime  the monotonic clock (CLOCK_MONOTONIC, std::chrono::steady_clock): deadlines, timeouts,
//             staleness, rates, latencies. Never jumps, means nothing outside this process; never
//             stored, sent or shown to people.
//   WallTime  the wall clock (ns since the Unix epoch, UTC; std::chrono::system_clock): times in
//             records, on the wire, in the store, in texts for people. May jump (NTP, an operator).
//   Duration  std::chrono::nanoseconds: the difference of two times of one clock, intervals in
//             configurations.
// Both time types hold nanoseconds in an int64 (so ±292 years around their epoch). A time plus or
// minus a Duration is a time of the same clock; a time minus a time of the same clock is a Duration;
// times of the same clock compare. Nothing else converts implicitly: a raw count becomes a time only
// through from_ns(), a time gives its count only through ns() (for the wire, the store, JSON), and a
// MonoTime is never a WallTime.
//
// Clock is the one interface to read both clocks. Code that needs "now" gets a `const Clock&` (or
// is handed the time by its caller) instead of calling std::chrono itself, so tests run it on a
// ManualClock and replay exactly, without sleeps.
//
// Thread safety: the time types are plain values. SystemClock is stateless; ManualClock may be read
// and advanced from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <compare>
#include <cstdint>
#include <limits>

namespace cellguard {

using Duration = std::chrono::nanoseconds;

// A time of the clock named by Tag, in ns since that clock's epoch. Use MonoTime or WallTime.
template <typename Tag>
class TimePoint {
 public:
  constexpr TimePoint() = default;  // the clock's epoch (0 ns); a "not yet" marker where callers need one

  static constexpr TimePoint from_ns(std::int64_t ns) {
    TimePoint t;
    t.ns_ = ns;
    return t;
  }
  static constexpr TimePoint min() { return from_ns(std::numeric_limits<std::int64_t>::min()); }
  static constexpr TimePoint max() { return from_ns(std::numeric_limits<std::int64_t>::max()); }

  constexpr std::int64_t ns() const { return ns_; }
  constexpr Duration since_epoch() const { return Duration(ns_); }

  constexpr TimePoint& operator+=(Duration d) {
    ns_ += d.count();
    return *this;
  }
  constexpr TimePoint& operator-=(Duration d) {
    ns_ -= d.count();
    return *this;
  }
  friend constexpr TimePoint operator+(TimePoint t, Duration d) { return t += d; }
  friend constexpr TimePoint operator+(Duration d, TimePoint t) { return t += d; }
  friend constexpr TimePoint operator-(TimePoint t, Duration d) { return t -= d; }
  friend constexpr Duration operator-(TimePoint a, TimePoint b) { return Duration(a.ns_ - b.ns_); }
  friend constexpr bool operator==(TimePoint, TimePoint) = default;
  friend constexpr auto operator<=>(TimePoint, TimePoint) = default;

 private:
  std::int64_t ns_ = 0;
};

struct MonoClockTag;
struct WallClockTag;
using MonoTime = TimePoint<MonoClockTag>;  // monotonic: deadlines, timeouts, ages inside the process
using WallTime = TimePoint<WallClockTag>;  // ns since the Unix epoch (UTC): records, wire, store, people

// Explicit conversions to and from std::chrono (for asio timers and the operating system).
MonoTime to_mono(std::chrono::steady_clock::time_point t);
std::chrono::steady_clock::time_point to_steady(MonoTime t);
WallTime to_wall(std::chrono::system_clock::time_point t);
std::chrono::system_clock::time_point to_system(WallTime t);

// A Duration in seconds, for texts and JSON fields that carry seconds.
constexpr double to_seconds(Duration d) { return static_cast<double>(d.count()) / 1e9; }

// The one interface to read the clocks.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual MonoTime mono_now() const = 0;
  virtual WallTime wall_now() const = 0;
};

// The operating system's clocks (steady_clock and system_clock).
class SystemClock final : public Clock {
 public:
  MonoTime mono_now() const override;
  WallTime wall_now() const override;
};

// The process's system clock, for code that takes a `const Clock&` and is given no other.
const Clock& system_clock();

// A clock that moves only when told, for tests. Both clocks start at the given times; advance()
// moves both, set_wall() steps only the wall clock (as NTP or an operator would).
class ManualClock final : public Clock {
 public:
  // Defaults: monotonic 1000 s after boot; wall 2023-11-14 22:13:20 UTC (1.7e9 s).
  explicit ManualClock(MonoTime mono = MonoTime::from_ns(1'000'000'000'000),
                       WallTime wall = WallTime::from_ns(1'700'000'000'000'000'000))
      : mono_ns_(mono.ns()), wall_ns_(wall.ns()) {}

  MonoTime mono_now() const override { return MonoTime::from_ns(mono_ns_.load()); }
  WallTime wall_now() const override { return WallTime::from_ns(wall_ns_.load()); }

  // Moves both clocks forward by `d` (>= 0; a monotonic clock never goes back).
  void advance(Duration d);
  void set_wall(WallTime t) { wall_ns_.store(t.ns()); }

 private:
  std::atomic<std::int64_t> mono_ns_;
  std::atomic<std::int64_t> wall_ns_;
};

}  // namespace cellguard
