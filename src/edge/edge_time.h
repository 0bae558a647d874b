// The edge's two clocks as the supervisor's ns counts: monotonic (the supervisor's time, timers)
// and wall-clock ns since the Unix epoch (records, events). Both read core/time.h's system clock;
// components take a MonoClock so tests can drive time.
#pragma once

#include "core/time.h"
#include "safety/safety.h"

namespace cellguard::edge {

using safety::TimeNs;
using MonoClock = TimeNs (*)();

inline constexpr TimeNs kMs = 1'000'000;
inline constexpr TimeNs kSecond = 1'000'000'000;

inline TimeNs mono_now() { return system_clock().mono_now().ns(); }
inline TimeNs wall_now() { return system_clock().wall_now().ns(); }
// Wall-clock seconds, the "t" of every event.
inline double wall_s() { return static_cast<double>(wall_now()) / 1e9; }

}  // namespace cellguard::edge
