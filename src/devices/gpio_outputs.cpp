// Outputs on GPIO lines through libgpiod v1 (Debian 12 ships 1.6.3; the v2 API differs).
#include <gpiod.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "devices/outputs.h"

namespace cellguard::devices {

namespace {

std::string errno_text(int error) { return error != 0 ? std::strerror(error) : "unknown error"; }

class GpioOutputs final : public Outputs {
 public:
  GpioOutputs(GpioConfig config, gpiod_chip* chip) : config_(std::move(config)), chip_(chip) {}
  GpioOutputs(const GpioOutputs&) = delete;
  GpioOutputs& operator=(const GpioOutputs&) = delete;
  ~GpioOutputs() override {
    for (gpiod_line* line : lines_) {
      if (line != nullptr) gpiod_line_release(line);
    }
    gpiod_chip_close(chip_);  // the lines go back to the kernel with the chip
  }

  Result<void> request(std::size_t index) {
    const int offset = config_.lines[index];
    gpiod_line* line = gpiod_chip_get_line(chip_, static_cast<unsigned>(offset));
    if (line == nullptr) return error(index, "no such line", errno);
    const int flags = config_.active_low ? GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW : 0;
    // Requested at logical 0: off, whatever the polarity.
    if (gpiod_line_request_output_flags(line, config_.consumer.c_str(), flags, 0) != 0) {
      const int request_error = errno;
      std::string what = "cannot request it as output";
      // A busy line: say who holds it (the kernel's line info names the consumer).
      if (request_error == EBUSY && gpiod_line_update(line) == 0 && gpiod_line_consumer(line) != nullptr) {
        what += " (held by '" + std::string(gpiod_line_consumer(line)) + "')";
      }
      return error(index, what, request_error);
    }
    lines_[index] = line;
    return success();
  }

  Result<void> set(Output output, bool on) override {
    const auto index = static_cast<std::size_t>(output);
    if (index >= kOutputCount) return Error(ErrorCode::invalid_argument, "gpio: no such output");
    commanded_[index] = on;
    return drive(index);
  }

  Result<void> set_all(const std::array<std::optional<bool>, kOutputCount>& states) override {
    Result<void> first_error;  // drive every line even if one fails; report the first failure
    for (std::size_t i = 0; i < kOutputCount; ++i) {
      if (!states[i]) continue;
      commanded_[i] = *states[i];
      auto result = drive(i);
      if (!result && first_error) first_error = result;
    }
    return first_error;
  }

  Result<void> refresh() override {
    Result<void> first_error;
    for (std::size_t i = 0; i < kOutputCount; ++i) {
      auto result = drive(i);
      if (!result && first_error) first_error = result;
    }
    return first_error;
  }

  bool commanded(Output output) const override {
    const auto index = static_cast<std::size_t>(output);
    return index < kOutputCount && commanded_[index];
  }

  std::string describe() const override { return "gpio " + config_.chip; }

 private:
  Result<void> drive(std::size_t index) {
    if (lines_[index] == nullptr) return error(index, "line not requested", 0);
    if (gpiod_line_set_value(lines_[index], commanded_[index] ? 1 : 0) != 0) {
      return error(index, "cannot set value", errno);
    }
    return success();
  }

  Error error(std::size_t index, const std::string& what, int os_error) const {
    return gpio_error(config_, index, what + (os_error != 0 ? ": " + errno_text(os_error) : std::string()));
  }

 public:
  static Error gpio_error(const GpioConfig& config, std::size_t index, const std::string& what) {
    return Error(ErrorCode::io_error, "gpio " + config.chip + " line " + std::to_string(config.lines[index]) +
                                          " (" + std::string(to_string(static_cast<Output>(index))) +
                                          "): " + what);
  }

 private:
  GpioConfig config_;
  gpiod_chip* chip_;
  std::array<gpiod_line*, kOutputCount> lines_{};
  std::array<bool, kOutputCount> commanded_{};
};

}  // namespace

Result<std::unique_ptr<Outputs>> open_gpio_outputs(const GpioConfig& config) {
  for (std::size_t i = 0; i < kOutputCount; ++i) {
    if (config.lines[i] < 0) {
      return Error(ErrorCode::invalid_argument,
                   "gpio " + config.chip + ": line offset " + std::to_string(config.lines[i]) + " of " +
                       std::string(to_string(static_cast<Output>(i))) + " is negative");
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (config.lines[j] == config.lines[i]) {
        return Error(ErrorCode::invalid_argument,
                     "gpio " + config.chip + ": line " + std::to_string(config.lines[i]) +
                         " is configured for both " + std::string(to_string(static_cast<Output>(j))) +
                         " and " + std::string(to_string(static_cast<Output>(i))));
      }
    }
  }
  // Accepts a name (gpiochip0), a number, a label or a /dev path.
  gpiod_chip* chip = gpiod_chip_open_lookup(config.chip.c_str());
  if (chip == nullptr) {
    const int error = errno;
    return Error(error == ENOENT ? ErrorCode::not_found : ErrorCode::io_error,
                 "gpio: cannot open chip '" + config.chip + "': " + errno_text(error));
  }
  auto outputs = std::make_unique<GpioOutputs>(config, chip);
  for (std::size_t i = 0; i < kOutputCount; ++i) {
    auto requested = outputs->request(i);
    if (!requested) return requested.error();
  }
  return std::unique_ptr<Outputs>(std::move(outputs));
}

}  // namespace cellguard::devices
