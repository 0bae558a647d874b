// The coalescing writer of the board's outputs (pure).
#include "devices/board_writer.h"

#include <algorithm>

namespace cellguard::devices {

BoardOutputWriter::BoardOutputWriter(BoardWriterConfig config, const std::vector<int>& pins,
                                     std::vector<int> relay_pins)
    : config_(config), relay_pins_(std::move(relay_pins)) {
  for (const int pin : pins) {
    if (find(pin) != nullptr) continue;
    BoardPinState state;
    state.pin = pin;
    pins_.push_back(state);
  }
}

BoardPinState* BoardOutputWriter::find(int pin) {
  for (auto& state : pins_) {
    if (state.pin == pin) return &state;
  }
  return nullptr;
}

const BoardPinState* BoardOutputWriter::pin(int pin) const {
  for (const auto& state : pins_) {
    if (state.pin == pin) return &state;
  }
  return nullptr;
}

bool BoardOutputWriter::is_relay(int pin) const {
  return std::find(relay_pins_.begin(), relay_pins_.end(), pin) != relay_pins_.end();
}

bool BoardOutputWriter::set_desired(int pin, bool on) {
  BoardPinState* state = find(pin);
  if (state == nullptr) return false;
  if (state->desired != on) {
    state->desired = on;
    state->retries = 0;
    state->fault = false;
  }
  return true;
}

void BoardOutputWriter::on_board_line(MonoTime now) {
  line_seen_ = true;
  line_ = now;
  sent_since_line_ = false;
}

void BoardOutputWriter::forget_sent() {
  for (auto& state : pins_) {
    state.sent.reset();
    state.confirmed.reset();
    state.retries = 0;
    state.fault = false;
  }
  line_seen_ = false;  // wait for the board's next line before writing to it
  sent_since_line_ = false;
}

void BoardOutputWriter::board_switched(int pin, bool on, MonoTime now) {
  BoardPinState* state = find(pin);
  if (state == nullptr) return;
  state->desired = on;
  state->sent = on;
  state->sent_at = now;
  state->retries = 0;
  state->fault = false;
}

bool BoardOutputWriter::pending() const {
  return std::any_of(pins_.begin(), pins_.end(),
                     [](const BoardPinState& s) { return !s.fault && s.sent != s.desired; });
}

std::optional<std::string> BoardOutputWriter::next_command(MonoTime now) {
  if (!pending()) return std::nullopt;
  if (line_synced_) {
    // Only inside the sketch's delay(1000) after a line, and once per line: the bytes are then
    // read alone, and the next line says they were read.
    if (!line_seen_ || sent_since_line_ || now - line_ >= config_.send_window_ns || now < line_) {
      return std::nullopt;
    }
  }
  // Order: relays opening, then the other pins, then relays closing.
  std::vector<BoardPinState*> order;
  for (int pass = 0; pass < 3; ++pass) {
    for (auto& s : pins_) {
      if (s.fault || s.sent == s.desired) continue;
      const bool relay = is_relay(s.pin);
      const int rank = relay && !s.desired ? 0 : relay ? 2 : 1;
      if (rank == pass) order.push_back(&s);
    }
  }
  std::string command;
  for (BoardPinState* s : order) {
    const std::string pair = std::to_string(s->pin) + (s->desired ? ":1&" : ":0&");
    if (command.size() + pair.size() > config_.max_command_bytes) break;  // the rest in a later cycle
    command += pair;
    s->sent = s->desired;
    s->sent_at = now;
  }
  if (command.empty()) return std::nullopt;  // max_command_bytes below one pair: config refuses it
  if (line_synced_ && config_.pad && command.size() < config_.max_command_bytes) {
    command.append(config_.max_command_bytes - command.size(), '&');
  }
  sent_since_line_ = true;
  return command;
}

BoardOutputWriter::Readback BoardOutputWriter::on_readback(std::uint16_t outputs, MonoTime now) {
  Readback result;
  for (auto& s : pins_) {
    if (s.pin < 0 || s.pin >= 16 || !s.sent) continue;
    const bool reads = ((outputs >> s.pin) & 1U) != 0;
    s.confirmed = reads;
    s.confirmed_at = now;
    if (reads == *s.sent) {
      s.retries = 0;
      continue;
    }
    if (!result.mismatch.empty()) result.mismatch += "; ";
    result.mismatch += "pin " + std::to_string(s.pin) + " sent " + (*s.sent ? "on" : "off") + ", reads " +
                       (reads ? "on" : "off");
    if (s.fault) continue;
    if (s.retries < config_.readback_retries) {
      ++s.retries;
      s.sent.reset();  // send it again
    } else {
      s.fault = true;
      if (!result.fault.empty()) result.fault += "; ";
      result.fault += "pin " + std::to_string(s.pin) + " reads " + (reads ? "on" : "off") + " after " +
                      std::to_string(config_.readback_retries) + " re-sends of " + (*s.sent ? "on" : "off");
    }
  }
  return result;
}

}  // namespace cellguard::devices
