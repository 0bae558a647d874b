// The transports behind open_bus(), one per file. Private to src/can/.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "can/bus.h"

namespace cellguard::can::detail {

// Counters updated on the loop thread and read from any thread.
struct AtomicCounters {
  std::atomic<std::uint64_t> frames_received{0};
  std::atomic<std::uint64_t> frames_sent{0};
  std::atomic<std::uint64_t> frames_dropped{0};
  std::atomic<std::uint64_t> errors{0};
  std::atomic<std::uint64_t> malformed_elements{0};
  std::atomic<std::uint64_t> rx_queue_overflows{0};
  std::atomic<std::uint64_t> restarts_requested{0};
  std::atomic<std::uint64_t> restart_failures{0};

  BusCounters snapshot() const {
    return {frames_received.load(std::memory_order_relaxed),
            frames_sent.load(std::memory_order_relaxed),
            frames_dropped.load(std::memory_order_relaxed),
            errors.load(std::memory_order_relaxed),
            malformed_elements.load(std::memory_order_relaxed),
            rx_queue_overflows.load(std::memory_order_relaxed),
            restarts_requested.load(std::memory_order_relaxed),
            restart_failures.load(std::memory_order_relaxed)};
  }
};

// Receive timestamps: wall-clock ns since the Unix epoch (what SocketCAN and socketcand report).
inline std::int64_t wall_clock_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// inproc_bus.cpp: endpoints meet by name within one io_context.
Result<std::unique_ptr<Bus>> open_inproc_bus(asio::io_context& io, std::string_view name);

// socketcand.cpp: connects asynchronously; `host` is a name or a numeric address.
Result<std::unique_ptr<Bus>> open_socketcand_bus(asio::io_context& io, std::string_view host,
                                                 std::uint16_t port, std::string_view channel);

// socketcan.cpp: Linux PF_CAN raw socket; unsupported where the kernel has no CAN.
Result<std::unique_ptr<Bus>> open_socketcan_bus(asio::io_context& io, std::string_view interface_name);

// replay_bus.cpp: `rest` is what follows "replay:" (PATH[?QUERY]); `url` is the whole URL, for
// messages and describe(). The log is opened (and its format detected) before this returns.
Result<std::unique_ptr<Bus>> open_replay_bus(asio::io_context& io, std::string_view url,
                                             std::string_view rest);

}  // namespace cellguard::can::detail
