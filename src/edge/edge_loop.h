// The edge's loop on a caller's io_context: run_edge() (edge.h) runs it for `cellguard edge`;
// in-process tests run it over an `inproc:` CAN bus with fake devices (tests/edge_inproc_test.cpp)
// and drive the io_context themselves.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "core/result.h"
#include "devices/outputs.h"
#include "devices/power_device.h"
#include "edge/config.h"
#include "edge/edge.h"
#include "edge/status.h"

namespace asio {
class io_context;
}  // namespace asio

namespace cellguard::edge {

// Devices that replace the configured ones (tests). Null: as configured.
struct EdgeDevices {
  std::unique_ptr<devices::PowerDevice> inverter;  // used when [inverter] is enabled
  std::unique_ptr<devices::Outputs> outputs;       // replaces the configured driver
};

class EdgeLoop {
 public:
  EdgeLoop(asio::io_context& io, EdgeConfig config, EdgeRunOptions options, EdgeDevices devices = {});
  ~EdgeLoop();
  EdgeLoop(const EdgeLoop&) = delete;
  EdgeLoop& operator=(const EdgeLoop&) = delete;

  // Opens everything (recording, devices, operator socket, CAN) and arms the timers; the caller
  // then runs the io_context (run() below, or run_for/poll in tests).
  Result<void> start();
  // Runs the io_context until the edge left; an exception in a handler is reported, not fatal.
  void run();
  // The operator protocol (edge.h): one request line in, the answer line out.
  std::string handle_control(std::string_view line);
  // What status reports, as values. On the loop's thread only (it reads the loop's state unlocked).
  StatusSnapshot snapshot() const;
  // A safe stop as from `{"cmd":"stop"}`.
  void request_stop();
  // The loop was torn down (timers, bus and socket closed, devices stopped).
  bool left() const;
  // Flushes and closes the recording, the uplink and the events; leaves first if needed.
  void shutdown();
  bool stopped_for_config_error() const;

 private:
  class Edge;
  std::unique_ptr<Edge> edge_;
};

}  // namespace cellguard::edge
