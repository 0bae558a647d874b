// Outputs through the sensor board, and the names of the outputs.
#include "devices/outputs.h"

#include <vector>

#include "devices/board_link.h"

namespace cellguard::devices {

namespace {

constexpr std::array<std::string_view, kOutputCount> kOutputNames = {"pump", "fan", "relay1", "relay2",
                                                                     "relay3"};

std::string state_text(bool on) { return on ? "on" : "off"; }

// The state shared with the link's connection listener, which outlives a destroyed BoardOutputs
// (the link cannot unregister listeners): the listener holds it weakly and does nothing once gone.
struct BoardOutputsState {
  BoardLink* link = nullptr;
  OutputPins pins{};
  std::array<bool, kOutputCount> commanded{};  // all off: what a board has after reset

  Result<void> send(const std::vector<PinWrite>& writes, std::string_view what) {
    if (writes.empty()) return success();
    if (!link->write_pins(writes)) {
      return Error(ErrorCode::io_error, "board " + link->config().device + " not connected: " +
                                            std::string(what) + " remembered, sent when it reconnects");
    }
    return success();
  }

  Result<void> refresh() {
    std::vector<PinWrite> writes;
    for (std::size_t i = 0; i < kOutputCount; ++i) writes.push_back({pins[i], commanded[i]});
    if (link->connected()) link->resend_outputs();  // the remembered state, sent again in full
    return send(writes, "all outputs");
  }
};

class BoardOutputs final : public Outputs {
 public:
  BoardOutputs(BoardLink& link, OutputPins pins) : state_(std::make_shared<BoardOutputsState>()) {
    state_->link = &link;
    state_->pins = pins;
    // A board that reconnects has reset (all outputs off): give it the commanded state again.
    link.on_connection([weak = std::weak_ptr<BoardOutputsState>(state_)](bool connected, const std::string&) {
      if (!connected) return;
      if (auto state = weak.lock()) (void)state->refresh();  // a failure shows at the next connection event
    });
  }

  Result<void> set(Output output, bool on) override {
    const auto index = static_cast<std::size_t>(output);
    if (index >= kOutputCount) return Error(ErrorCode::invalid_argument, "outputs: no such output");
    state_->commanded[index] = on;
    return state_->send({{state_->pins[index], on}}, std::string(to_string(output)) + "=" + state_text(on));
  }

  Result<void> set_all(const std::array<std::optional<bool>, kOutputCount>& states) override {
    std::vector<PinWrite> writes;
    std::string what;
    for (std::size_t i = 0; i < kOutputCount; ++i) {
      if (!states[i]) continue;
      state_->commanded[i] = *states[i];
      writes.push_back({state_->pins[i], *states[i]});
      if (!what.empty()) what += ", ";
      what += std::string(kOutputNames[i]) + "=" + state_text(*states[i]);
    }
    return state_->send(writes, what);  // format_pin_commands splits it if longer than one command
  }

  Result<void> refresh() override { return state_->refresh(); }

  bool commanded(Output output) const override {
    const auto index = static_cast<std::size_t>(output);
    return index < kOutputCount && state_->commanded[index];
  }

  OutputState state(Output output) const override {
    OutputState result;
    result.commanded = commanded(output);
    const auto index = static_cast<std::size_t>(output);
    if (index >= kOutputCount) return result;
    for (const BoardPinState& pin : state_->link->output_states()) {
      if (pin.pin != state_->pins[index]) continue;
      result.sent = pin.sent.has_value() && *pin.sent == pin.desired;
      result.sent_ns = pin.sent_at;
      if (state_->link->has_readback() && pin.confirmed) result.read_back = pin.confirmed;
      result.fault = pin.fault;
    }
    return result;
  }

  std::string describe() const override { return "board " + state_->link->config().device; }

 private:
  std::shared_ptr<BoardOutputsState> state_;
};

}  // namespace

std::string_view to_string(Output output) {
  const auto index = static_cast<std::size_t>(output);
  return index < kOutputCount ? kOutputNames[index] : std::string_view("unknown");
}

Result<Output> output_from_string(std::string_view name) {
  for (std::size_t i = 0; i < kOutputCount; ++i) {
    if (kOutputNames[i] == name) return static_cast<Output>(i);
  }
  return Error(ErrorCode::not_found,
               "unknown output '" + std::string(name) + "' (expected pump, fan, relay1, relay2 or relay3)");
}

std::unique_ptr<Outputs> make_board_outputs(BoardLink& link, OutputPins pins) {
  return std::make_unique<BoardOutputs>(link, pins);
}

}  // namespace cellguard::devices
