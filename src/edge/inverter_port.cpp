#include "edge/inverter_port.h"

namespace cellguard::edge {
namespace {

class ClientPort final : public InverterPort {
 public:
  ClientPort(asio::io_context& io, devices::InverterClientConfig config, MonoClock clock)
      : client_(io, std::move(config), clock) {}
  void command_off(TimeNs requested_ns) override { client_.command_off(requested_ns); }
  void command_setpoint(devices::InverterMode mode, double setpoint, TimeNs requested_ns) override {
    client_.command_setpoint(mode, setpoint, requested_ns);
  }
  void on_readings(devices::InverterClient::ReadingsHandler handler) override {
    client_.on_readings(std::move(handler));
  }
  void on_link(devices::InverterClient::LinkHandler handler) override { client_.on_link(std::move(handler)); }
  void on_event(devices::InverterClient::EventHandler handler) override {
    client_.on_event(std::move(handler));
  }
  void on_heartbeat(devices::InverterClient::HeartbeatHandler handler) override {
    client_.on_heartbeat(std::move(handler));
  }
  void start() override { client_.start(); }
  void stop() override { client_.stop(); }
  devices::InverterLinkStats stats() const override { return client_.stats(); }

 private:
  devices::InverterClient client_;
};

}  // namespace

std::unique_ptr<InverterPort> make_inverter_port(asio::io_context& io, devices::InverterClientConfig config,
                                                 MonoClock clock) {
  return std::make_unique<ClientPort>(io, std::move(config), clock);
}

}  // namespace cellguard::edge
