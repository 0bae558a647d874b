// The edge's clocks, as core/time.h's types: MonoTime for the supervisor, timers and ages, WallTime
// for records and events. The I/O shell (edge.cpp) reads the system clock through mono_now() and
// wall_now(); components take a `const Clock&` so tests can drive time.
#pragma once

#include "core/time.h"

namespace cellguard::edge {

inline constexpr Duration kMs = std::chrono::milliseconds(1);
inline constexpr Duration kSecond = std::chrono::seconds(1);

inline MonoTime mono_now() { return system_clock().mono_now(); }
inline WallTime wall_now() { return system_clock().wall_now(); }
// Wall-clock seconds, the "t" of every event.
inline double wall_s() { return static_cast<double>(wall_now().ns()) / 1e9; }

}  // namespace cellguard::edge
