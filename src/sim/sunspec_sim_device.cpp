#include "sim/sunspec_sim_device.h"

#include <utility>

namespace cellguard::sim {
namespace {

class SunSpecSimDevice final : public SimDevice {
 public:
  explicit SunSpecSimDevice(SunSpecSimOptions options) : options_(std::move(options)) {}

  Result<void> start(asio::io_context& /*io*/, PackModel& pack, FaultDispatcher& faults,
                     ControlHandler& control, nlohmann::json& ready) override {
    device_ = SunSpecDevice::create(pack, options_.device);
    auto endpoint = device_->start_tcp(options_.tcp);
    if (!endpoint) return Error(endpoint.error().code, "SunSpec TCP: " + endpoint.error().message);
    ready["sunspec_tcp"] = *endpoint;
    auto registered = faults.register_handler(
        "sunspec_not_answering",
        [this](const FaultCommand& c) -> Result<void> {
          device_->set_not_answering(c.number("on", 1) != 0);
          return success();
        },
        [this] { device_->set_not_answering(false); });
    if (!registered) return registered;
    control.add_status("sunspec", [this] {
      const SunSpecLogic logic = device_->logic();
      return nlohmann::json{{"tcp", device_->tcp_endpoint()},
                            {"started", logic.started()},
                            {"heartbeat_lost", logic.heartbeat_lost()},
                            {"power_demand_w", logic.power_demand_w()},
                            {"current_demand_a", logic.current_demand_a()},
                            {"requests", device_->requests()}};
    });
    return success();
  }

  void after_step() override {
    if (device_) device_->sync();
  }

  void stop() override {
    if (device_) device_->stop();
    device_.reset();
  }

 private:
  SunSpecSimOptions options_;
  std::unique_ptr<SunSpecDevice> device_;
};

}  // namespace

std::unique_ptr<SimDevice> make_sunspec_sim_device(SunSpecSimOptions options) {
  return std::make_unique<SunSpecSimDevice>(std::move(options));
}

}  // namespace cellguard::sim
