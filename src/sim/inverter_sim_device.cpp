#include "sim/inverter_sim_device.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace cellguard::sim {

namespace {

class InverterSimDevice final : public SimDevice {
 public:
  explicit InverterSimDevice(InverterSimOptions options) : options_(std::move(options)) {}

  Result<void> start(asio::io_context& /*io*/, PackModel& pack, FaultDispatcher& faults,
                     ControlHandler& control, nlohmann::json& ready) override {
    inverter_ = InverterDevice::create(pack, options_.logic);
    if (options_.rtu) {
      auto path = inverter_->start_rtu(options_.rtu_config);
      if (!path) return Error(path.error().code, "inverter RTU: " + path.error().message);
      ready["inverter_rtu"] = *path;
    }
    if (options_.tcp) {
      auto endpoint = inverter_->start_tcp(options_.tcp_config);
      if (!endpoint) return Error(endpoint.error().code, "inverter TCP: " + endpoint.error().message);
      ready["inverter_tcp"] = *endpoint;
    }
    for (auto& [kind, handler] : handlers()) {
      // Only the first registration gets the clear hook: it clears every inverter fault.
      const bool first = kind == "inverter_not_answering";
      auto registered = faults.register_handler(kind, std::move(handler),
                                                first ? std::function<void()>([this] { clear(); }) : nullptr);
      if (!registered) return registered;
    }
    control.add_status("inverter", [this] { return status(); });
    return success();
  }

  void after_step() override {
    if (inverter_) inverter_->sync();
  }

  void stop() override {
    if (inverter_) inverter_->stop();
    inverter_.reset();
  }

 private:
  std::vector<std::pair<std::string, FaultDispatcher::Handler>> handlers() {
    std::vector<std::pair<std::string, FaultDispatcher::Handler>> list;
    list.emplace_back("inverter_not_answering", [this](const FaultCommand& c) -> Result<void> {
      inverter_->set_not_answering(c.number("on", 1) != 0);
      return success();
    });
    list.emplace_back("inverter_fault_bit", [this](const FaultCommand& c) -> Result<void> {
      const double address = c.number("register", 30273);
      const double bit = c.number("bit", 0);
      if (address < 0 || address > 65535 || bit < 0 || bit > 15 ||
          !inverter_->set_fault_bit(static_cast<std::uint16_t>(address), static_cast<int>(bit),
                                    c.number("on", 1) != 0)) {
        return Error(ErrorCode::invalid_argument,
                     "inverter_fault_bit: register must be 30272..30279, bit 0..15");
      }
      return success();
    });
    list.emplace_back("inverter_wrong_readback", [this](const FaultCommand& c) -> Result<void> {
      inverter_->set_wrong_readback(
          {c.number("current_a", 0), c.number("power_kw", 0), c.number("voltage_v", 0)});
      return success();
    });
    list.emplace_back("inverter_delay", [this](const FaultCommand& c) -> Result<void> {
      const double ms = c.number("ms", 0);
      if (!(ms >= 0 && ms <= 60000))
        return Error(ErrorCode::invalid_argument, "inverter_delay: ms must be 0..60000");
      inverter_->set_response_delay(std::chrono::milliseconds(static_cast<long long>(std::llround(ms))));
      return success();
    });
    list.emplace_back("inverter_timeouts", [this](const FaultCommand& c) -> Result<void> {
      const double every = c.number("every", 0);
      if (!(every >= 0 && every <= 1e6))
        return Error(ErrorCode::invalid_argument, "inverter_timeouts: every must be ≥ 0");
      inverter_->set_timeout_every(static_cast<int>(every));
      return success();
    });
    list.emplace_back("inverter_crc_errors", [this](const FaultCommand& c) -> Result<void> {
      const double every = c.number("every", 0);
      if (!(every >= 0 && every <= 1e6))
        return Error(ErrorCode::invalid_argument, "inverter_crc_errors: every must be ≥ 0");
      inverter_->set_crc_error_every(static_cast<int>(every));
      return success();
    });
    return list;
  }

  void clear() {
    if (!inverter_) return;
    inverter_->set_not_answering(false);
    inverter_->set_wrong_readback({});
    inverter_->set_response_delay(std::chrono::milliseconds(0));
    inverter_->set_timeout_every(0);
    inverter_->set_crc_error_every(0);
    for (std::uint16_t address = inverter_reg::kFaultFirst; address <= inverter_reg::kStatus; ++address) {
      for (int bit = 0; bit < 16; ++bit) inverter_->set_fault_bit(address, bit, false);
    }
  }

  nlohmann::json status() const {
    const InverterLogic logic = inverter_->logic();
    const InverterStats stats = inverter_->stats();
    return {{"rtu", inverter_->rtu_endpoint()},
            {"tcp", inverter_->tcp_endpoint()},
            {"mode", static_cast<int>(logic.mode())},
            {"running", logic.running()},
            {"unlocked", logic.unlocked()},
            {"comm_timer_s", logic.comm_timer_s()},
            {"current_demand_a", logic.current_demand_a()},
            {"requests", stats.requests},
            {"answers", stats.answers},
            {"exceptions", stats.exceptions},
            {"unanswered", stats.unanswered},
            {"corrupted", stats.corrupted},
            {"bad_requests", stats.bad_requests}};
  }

  InverterSimOptions options_;
  std::unique_ptr<InverterDevice> inverter_;
};

}  // namespace

std::unique_ptr<SimDevice> make_inverter_sim_device(InverterSimOptions options) {
  return std::make_unique<InverterSimDevice>(std::move(options));
}

}  // namespace cellguard::sim
