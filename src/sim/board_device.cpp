#include "sim/board_device.h"

#include <unistd.h>

#include <array>
#include <cerrno>
#include <utility>

#include "sim/pack_model.h"

namespace cellguard::sim {

namespace {

constexpr std::size_t kMaxReadPerPoll = 4096;  // bound on command bytes taken per poll()
constexpr int kMaxCatchUpLines = 4;            // a long stall sends a few lines, not a flood

}  // namespace

Result<std::unique_ptr<BoardDevice>> BoardDevice::open(PackModel& pack, BoardConfig config) {
  if (!(config.report_period_s > 0)) {
    return Error(ErrorCode::invalid_argument, "board: report period must be > 0 s");
  }
  if (config.thermistor_table.size() < 2) {
    return Error(ErrorCode::invalid_argument, "board: thermistor table needs at least 2 rows");
  }
  auto pty = Pty::open(config.baud, Pty::Mode::kDetectPeer);
  if (!pty) {
    return pty.error();
  }
  std::unique_ptr<BoardDevice> device(new BoardDevice(pack, std::move(config), std::move(*pty)));
  device->apply_outputs_to_pack();
  return device;
}

BoardDevice::BoardDevice(PackModel& pack, BoardConfig config, Pty pty)
    : pack_(pack),
      config_(std::move(config)),
      pty_(std::move(pty)),
      next_report_s_(pack.time_s() + config_.report_period_s) {}

BoardDevice::~BoardDevice() = default;

const BoardStats& BoardDevice::stats() const {
  stats_.malformed_bytes = malformed_before_replug_ + parser_.malformed_bytes();
  return stats_;
}

void BoardDevice::poll() {
  if (!pty_.is_open()) {
    return;
  }
  std::array<char, 512> buffer{};
  std::size_t taken = 0;
  while (taken < kMaxReadPerPoll) {
    const ssize_t n = ::read(pty_.master_fd(), buffer.data(), buffer.size());
    if (n <= 0) {
      break;  // EAGAIN: nothing more; other errors: retried on the next poll
    }
    taken += static_cast<std::size_t>(n);
    for (const PinCommand& command : parser_.feed({buffer.data(), static_cast<std::size_t>(n)})) {
      apply(command);
    }
  }

  const double now_s = pack_.time_s();
  int lines = 0;
  while (now_s >= next_report_s_ && lines < kMaxCatchUpLines) {
    write_line();
    next_report_s_ += config_.report_period_s;
    ++lines;
  }
  if (now_s >= next_report_s_) {
    next_report_s_ = now_s + config_.report_period_s;  // skip what a stall left behind
  }
}

void BoardDevice::apply(const PinCommand& command) {
  const BoardPins& pins = config_.pins;
  bool* output = nullptr;
  if (command.pin == pins.pump)
    output = &outputs_.pump;
  else if (command.pin == pins.fan)
    output = &outputs_.fan;
  else if (command.pin == pins.relay1)
    output = &outputs_.relay1;
  else if (command.pin == pins.relay2)
    output = &outputs_.relay2;
  else if (command.pin == pins.relay3)
    output = &outputs_.relay3;
  if (output == nullptr) {
    ++stats_.commands_ignored;
    return;
  }
  *output = command.high;
  ++stats_.commands_applied;
  apply_outputs_to_pack();
}

void BoardDevice::apply_outputs_to_pack() {
  pack_.set_pump(outputs_.pump);
  pack_.set_fan(outputs_.fan);
  pack_.set_positive_contactor(outputs_.relay1);
  pack_.set_negative_contactor(outputs_.relay2);
  pack_.set_precharge_relay(outputs_.relay3);
}

BoardReading BoardDevice::reading() const {
  BoardReading reading;
  const auto& table = config_.thermistor_table;
  reading.temp1_counts = thermistor_counts(thermistor_resistance_ohm(table, pack_.coolant_c()));
  reading.temp2_counts = thermistor_counts(thermistor_resistance_ohm(table, pack_.ambient_c()));
  reading.pressure_counts = pressure_counts(pack_.coolant_pressure_bar(), config_.pressure_full_scale_bar);
  if (config_.report_ground_fault) {
    reading.ground_fault = pack_.insulation_fault();
  }
  return reading;
}

void BoardDevice::write_line() {
  const bool listening = pty_.peer_connected();
  if (!listening) {
    if (peer_was_connected_) {
      pty_.discard_unread_output();  // what the last peer left unread must not reach the next one
    }
    peer_was_connected_ = false;
    ++stats_.lines_unheard;
    return;
  }
  peer_was_connected_ = true;
  const std::string line = format_board_line(reading());
  auto written = pty_.write_some(line);
  if (written && *written == line.size()) {
    ++stats_.lines_written;
  } else {
    ++stats_.lines_dropped;
  }
}

Result<void> BoardDevice::set_unplugged(bool unplugged) {
  if (unplugged == this->unplugged()) {
    return success();
  }
  if (unplugged) {
    pty_.close();
    if (config_.outputs_low_when_unplugged) {
      outputs_ = BoardOutputs{};
      apply_outputs_to_pack();
    }
    return success();
  }
  auto pty = Pty::open(config_.baud, Pty::Mode::kDetectPeer);
  if (!pty) {
    return pty.error();
  }
  pty_ = std::move(*pty);
  peer_was_connected_ = false;
  malformed_before_replug_ += parser_.malformed_bytes();
  parser_ = CommandParser{};
  if (config_.outputs_low_when_unplugged) {
    outputs_ = BoardOutputs{};
    apply_outputs_to_pack();
  }
  next_report_s_ = pack_.time_s() + config_.report_period_s;
  return success();
}

}  // namespace cellguard::sim
