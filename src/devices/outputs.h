// The rig's switched outputs: pump, fan and the three relays of the contactor/precharge circuit,
// driven through the sensor board (rig protocol) or Raspberry Pi GPIO lines (libgpiod), selectable.
//
// An Outputs object remembers the commanded state of every output. BoardOutputs re-sends the whole
// state after the board reconnects (a board that reset has everything off), and on refresh().
// GpioOutputs requests the lines as outputs at open and drives them at once; active_low inverts.
// Thread safety: loop thread only.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"
#include "core/time.h"

namespace cellguard::devices {

class BoardLink;

enum class Output : std::uint8_t { pump, fan, relay1, relay2, relay3 };
inline constexpr std::size_t kOutputCount = 5;
std::string_view to_string(Output output);
Result<Output> output_from_string(std::string_view name);

// Board pin or GPIO line offset of each output, indexed by Output. Rig pins: pump 6, fan 7,
// relay1 5, relay2 3, relay3 4.
using OutputPins = std::array<int, kOutputCount>;
inline constexpr OutputPins kRigBoardPins{6, 7, 5, 3, 4};

// What is known about one output beyond the command (`edge status`).
struct OutputState {
  bool commanded = false;         // the desired state
  bool sent = false;              // handed to the device (board: in a command written to it)
  MonoTime sent_ns{};             // when (the edge's monotonic clock); its epoch: unknown
  std::optional<bool> read_back;  // the level read back from the device (cellguard's firmware)
  bool fault = false;             // the read-back stayed wrong after the re-sends
};

class Outputs {
 public:
  virtual ~Outputs() = default;
  // Commands one output. Returns an error when the command could not be issued (board not
  // connected, GPIO write refused); the state is remembered either way and re-sent when possible.
  virtual Result<void> set(Output output, bool on) = 0;
  // Commands several outputs in one go (one board command where possible).
  virtual Result<void> set_all(const std::array<std::optional<bool>, kOutputCount>& states) = 0;
  // Re-sends the remembered state of every output.
  virtual Result<void> refresh() = 0;
  virtual bool commanded(Output output) const = 0;
  // Without read-back a device can only say what it was told: `read_back` stays empty.
  virtual OutputState state(Output output) const {
    return OutputState{commanded(output), true, MonoTime(), {}, false};
  }
  virtual std::string describe() const = 0;  // "board /dev/ttyACM0" or "gpio gpiochip0"
};

// Through the board (the BoardLink must outlive it). Hooks the link's reconnect to refresh().
std::unique_ptr<Outputs> make_board_outputs(BoardLink& link, OutputPins pins);

struct GpioConfig {
  std::string chip = "gpiochip0";  // name or /dev path
  OutputPins lines{};              // line offsets
  bool active_low = false;
  std::string consumer = "cellguard";
};
// Opens the chip and requests the lines (all off). Errors name the chip and line.
Result<std::unique_ptr<Outputs>> open_gpio_outputs(const GpioConfig& config);

}  // namespace cellguard::devices
