// The one writer of the board's outputs (issue 13 item 1): desired pin states in, command bytes out.
//
// The rig's sketch (shared/spec/seed-rig.md, "How the rig's sketch reads commands") prints its line,
// waits delay(1000), then reads at most 30 bytes in one Serial.readBytes (1 s timeout) and splits
// them on `&`. Commands written back to back run together (`5:1` + `3:1` = `5:13:1`), so this writer:
//  - keeps the DESIRED state of every configured pin and sends only the difference to what it sent;
//  - line-synced mode (the rig's sketch): at most one command per board line, and only within
//    send_window_ns after the line's end, so the bytes arrive during the sketch's delay(1000) and
//    are read alone, before the next line (a line therefore also marks "the previous command was
//    read"); nothing is sent while the board is silent;
//  - immediate mode (cellguard's firmware, which parses by grammar): sends as soon as asked;
//  - each command is at most max_command_bytes; every pair ends in `&` (`5:0&3:0&`), so an
//    accidental concatenation still splits right; padded with `&` to max_command_bytes when `pad`
//    (readBytes then returns at once instead of after its 1 s timeout, and two padded commands read
//    as two aligned 30-byte reads);
//  - relays that open go first, then pump and fan, then relays that close; pairs that do not fit
//    wait for the next command, so an opening never waits behind a closing;
//  - read-back (cellguard's firmware, `Ardu_Out`): a pin that reads differently from what was sent
//    is sent again, up to readback_retries times; after that it is reported as a fault.
// Pure: no I/O, no clock; the caller passes the time. Pins outside the configured set are refused,
// so no other pin of the board is ever written.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/time.h"

namespace cellguard::devices {

enum class BoardProtocol : std::uint8_t {
  automatic,   // the rig's sketch until the board announces cellguard's extension
  rig_sketch,  // never leave the rig's protocol (the extension is not used even if announced)
  cellguard,   // cellguard's firmware: commands at once (the extension is still detected from its lines)
};

struct BoardWriterConfig {
  // Intervals in ns (edge/config.cpp reads them from [board] in ms).
  Duration cycle_ns = std::chrono::seconds(1);  // the sketch's delay(1000): one command per cycle
  Duration send_window_ns = std::chrono::milliseconds(600);  // after a line's end; must stay inside the delay
  std::size_t max_command_bytes = 30;                        // the sketch's INPUT_SIZE
  bool pad = true;           // pad with `&` to max_command_bytes (line-synced mode)
  int readback_retries = 2;  // re-sends of a pin that reads back wrong, then a fault
};

struct BoardPinState {
  int pin = 0;
  bool desired = false;
  std::optional<bool> sent;       // last value sent (nullopt: unknown, e.g. after a reset: re-sent)
  MonoTime sent_at;               // when it was sent
  std::optional<bool> confirmed;  // last read-back (cellguard's firmware); nullopt without one
  MonoTime confirmed_at;
  int retries = 0;     // re-sends after wrong read-backs since the last good one
  bool fault = false;  // retries exhausted
};

class BoardOutputWriter {
 public:
  BoardOutputWriter(BoardWriterConfig config, const std::vector<int>& pins, std::vector<int> relay_pins);

  // Line-synced (the rig's sketch) or immediate (cellguard's firmware).
  void set_line_synced(bool line_synced) { line_synced_ = line_synced; }
  bool line_synced() const { return line_synced_; }

  // False (and nothing changes) for a pin outside the configured set.
  bool set_desired(int pin, bool on);
  // A line from the board arrived (its end) at `now`: the sketch's read window opens.
  void on_board_line(MonoTime now);
  // The board's outputs are unknown or reset (reconnect, reset): everything is sent again.
  void forget_sent();
  // The board switched a pin by itself (its fail-safe opened a relay): desired and sent follow.
  void board_switched(int pin, bool on, MonoTime now);

  // The next command to write, if one may be written now (at most one per board line in
  // line-synced mode). Marks its pins as sent at `now`.
  std::optional<std::string> next_command(MonoTime now);
  bool pending() const;
  // Nothing pending and, line-synced, a board line arrived after the last command (the sketch
  // reads a command before it prints its next line: it has been applied).
  bool settled() const { return !pending() && !sent_since_line_; }

  struct Readback {
    std::string mismatch;  // "pin 5 sent on, reads off; ..." (empty: all agree)
    std::string fault;     // pins whose retries are exhausted (empty: none new)
  };
  // The board's read-back (bit n = pin n high), reflecting every command sent before it.
  Readback on_readback(std::uint16_t outputs, MonoTime now);

  const std::vector<BoardPinState>& pins() const { return pins_; }
  const BoardPinState* pin(int pin) const;
  const BoardWriterConfig& config() const { return config_; }

 private:
  BoardPinState* find(int pin);
  bool is_relay(int pin) const;

  BoardWriterConfig config_;
  std::vector<BoardPinState> pins_;
  std::vector<int> relay_pins_;
  bool line_synced_ = true;
  bool line_seen_ = false;
  MonoTime line_;
  bool sent_since_line_ = false;
};

}  // namespace cellguard::devices
