// The edge's two clocks: monotonic ns (the supervisor's time, timers) and wall-clock ns since the
// Unix epoch (records, events). Components take a MonoClock so tests can drive time.
#pragma once

#include <chrono>

#include "safety/safety.h"

namespace cellguard::edge {

using safety::TimeNs;
using MonoClock = TimeNs (*)();

inline constexpr TimeNs kMs = 1'000'000;
inline constexpr TimeNs kSecond = 1'000'000'000;

inline TimeNs mono_now() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
inline TimeNs wall_now() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
// Wall-clock seconds, the "t" of every event.
inline double wall_s() { return static_cast<double>(wall_now()) / 1e9; }

}  // namespace cellguard::edge
