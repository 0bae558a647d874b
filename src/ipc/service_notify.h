// Telling the service manager how the service is doing: systemd's notification protocol
// (sd_notify(3)), implemented here without libsystemd: one datagram "KEY=VALUE\n..." to the Unix
// socket named by $NOTIFY_SOCKET (a path, or "@name" for the abstract namespace). Outside a
// service manager (no NOTIFY_SOCKET) everything is a no-op, so the tools behave the same on a shell.
//
// LoopWatchdog feeds the watchdog (WatchdogSec= in the unit, $WATCHDOG_USEC) from a timer on the
// caller's asio loop: WATCHDOG=1 goes out only while that loop runs its handlers, so a hung loop
// stops the pings and the service manager kills and restarts the process.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/result.h"

namespace asio {
class io_context;
}  // namespace asio

namespace cellguard::ipc {

class ServiceNotifier {
 public:
  ServiceNotifier() = default;  // disabled
  // NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID (the watchdog is ours only when it names our pid
  // or is absent) of this process's environment.
  static ServiceNotifier from_environment();
  // The same from given values (tests); `watchdog_pid` 0: any.
  static ServiceNotifier from_values(std::string socket, std::int64_t watchdog_usec, long watchdog_pid = 0);

  bool enabled() const { return !socket_.empty(); }
  const std::string& socket() const { return socket_; }
  // The watchdog's period the service manager expects (0: no watchdog).
  std::int64_t watchdog_usec() const { return watchdog_usec_; }

  // Sends `state`, e.g. "READY=1\nSTATUS=supervising 8 modules". Success when disabled.
  Result<void> notify(std::string_view state) const;

 private:
  std::string socket_;
  std::int64_t watchdog_usec_ = 0;
};

class LoopWatchdog {
 public:
  explicit LoopWatchdog(asio::io_context& io, ServiceNotifier notifier = ServiceNotifier::from_environment());
  ~LoopWatchdog();  // cancel()
  LoopWatchdog(const LoopWatchdog&) = delete;
  LoopWatchdog& operator=(const LoopWatchdog&) = delete;

  // READY=1 (with STATUS=`status` when given); from then on WATCHDOG=1 every half watchdog period
  // from a timer on the loop, while the loop runs.
  void ready(std::string_view status = {});
  // STOPPING=1: a stop began. The pings go on while the loop runs the stop sequence.
  void stopping();
  // No more pings: the loop is being torn down (the timer must not keep it alive).
  void cancel();

  const ServiceNotifier& notifier() const;
  std::uint64_t pings_sent() const;  // loop thread

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace cellguard::ipc
