// The inverter as the edge uses it: commands (actuator.h), readings, link and start-up events,
// heartbeats. In the edge, devices::InverterClient behind it (make_inverter_port); in-process tests
// put a fake device session here and drive readings and events themselves.
#pragma once

#include <memory>

#include "devices/inverter_client.h"
#include "edge/actuator.h"

namespace asio {
class io_context;
}  // namespace asio

namespace cellguard::edge {

class InverterPort : public InverterCommands {
 public:
  // Handlers run on the edge's loop thread; set before start().
  virtual void on_readings(devices::InverterClient::ReadingsHandler handler) = 0;
  virtual void on_link(devices::InverterClient::LinkHandler handler) = 0;
  virtual void on_event(devices::InverterClient::EventHandler handler) = 0;
  virtual void on_heartbeat(devices::InverterClient::HeartbeatHandler handler) = 0;
  virtual void start() = 0;
  virtual void stop() = 0;
  virtual devices::InverterLinkStats stats() const = 0;
};

// The Modbus inverter client of [inverter] behind the port.
std::unique_ptr<InverterPort> make_inverter_port(asio::io_context& io, devices::InverterClientConfig config,
                                                 MonoClock clock);

}  // namespace cellguard::edge
