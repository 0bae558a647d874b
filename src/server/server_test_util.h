// Tests only: the wall clock in ns and waiting on a condition with a deadline (never a fixed sleep).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <thread>

namespace cellguard::server::testing {

inline std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Polls `done` every 5 ms until it holds or `timeout` passes; returns its last answer.
inline bool wait_for(const std::function<bool()>& done,
                     std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return done();
}

}  // namespace cellguard::server::testing
