#include "core/time.h"

#include <cassert>

namespace cellguard {

MonoTime to_mono(std::chrono::steady_clock::time_point t) {
  return MonoTime::from_ns(std::chrono::duration_cast<Duration>(t.time_since_epoch()).count());
}

std::chrono::steady_clock::time_point to_steady(MonoTime t) {
  return std::chrono::steady_clock::time_point(
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(t.since_epoch()));
}

WallTime to_wall(std::chrono::system_clock::time_point t) {
  return WallTime::from_ns(std::chrono::duration_cast<Duration>(t.time_since_epoch()).count());
}

std::chrono::system_clock::time_point to_system(WallTime t) {
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(t.since_epoch()));
}

MonoTime SystemClock::mono_now() const { return to_mono(std::chrono::steady_clock::now()); }

WallTime SystemClock::wall_now() const { return to_wall(std::chrono::system_clock::now()); }

const Clock& system_clock() {
  static const SystemClock clock;
  return clock;
}

void ManualClock::advance(Duration d) {
  assert(d >= Duration::zero() && "a monotonic clock never goes back");
  mono_ns_.fetch_add(d.count());
  wall_ns_.fetch_add(d.count());
}

}  // namespace cellguard
