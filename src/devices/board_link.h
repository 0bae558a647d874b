// The sensor and relay board (the rig's Arduino) on a serial line, as the edge speaks to it.
//
// Protocol (shared/spec/seed-rig.md, "Arduino serial protocol", 9600 baud 8N1):
//   - board to host, about once a second: `Ardu_Temp1:<adc>,Ardu_Temp2:<adc>,Ardu_Press:<adc>` CR LF,
//     10-bit ADC counts 0..1023. An optional `Ardu_GndFault:<0|1>` field carries the insulation
//     monitor's alarm (drawn on the rig's diagram, not sent by its sketch). Unknown fields are
//     ignored; a missing or out-of-range required field makes the line invalid.
//   - host to board: `pin:value` pairs joined by `&`, no terminator, at most 30 characters per
//     command; longer sets are split into several commands.
//   - extension of cellguard's own board firmware (firmware/board, docs/board-protocol.md): extra
//     fields after the rig's three (`Ardu_GndFault`, `Ardu_Out` read-back, `Ardu_Fs` fail-safe state,
//     `Ardu_Hb` heartbeat timeout, `Ardu_Re` reply marker, `Ardu_Hello`/`Ardu_Reset` after a reset)
//     and a last field `Ardu_Crc:XX` (CRC-8, polynomial 0x07, initial 0, over every byte before
//     `,Ardu_Crc:`). A line with a wrong checksum is invalid. The link switches to the extension when
//     a line with a valid checksum carries `Ardu_Hello` or `Ardu_Fs`, and only then sends extension
//     commands (the rig's sketch never sees them): `Tnnnn` (heartbeat timeout), `H` every
//     heartbeat_interval on its own timer, `?` after every pin write (read-back) and `R` (re-arm)
//     before closing a relay after a fail-safe trip.
//   - the board's outputs are written by ONE writer (BoardOutputWriter, board_writer.h): the desired
//     state of the configured pins, coalesced, one command per board line on the rig's sketch.
// Conversions (configurable; the rig's values by default):
//   thermistor: V = adc/adc_full_scale·supply; R = series·V/(supply−V); °C by linear interpolation
//   in a (°C, Ω) table. Outside the table the value is clamped to the table's end and flagged
//   out of range (the rig returned 140 °C or −1 °C, which hid broken sensors).
//   pressure: V = adc/adc_full_scale·supply; below min_v → 0; above max_v → full scale; else linear.
//
// Pure parts (BoardLineSplitter, parse_board_line, format_pin_commands, conversions) have no I/O.
// BoardLink is the I/O shell: an asio serial port on the loop thread; it reopens the device every
// reopen_interval when it is missing or disappears (USB unplugged), and reports it.
// Thread safety: BoardLink is used on the loop thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "core/thermistor.h"
#include "core/time.h"
#include "devices/board_writer.h"

namespace asio {
class io_context;
}  // namespace asio

namespace cellguard::devices {

// The table's row and the rig's table (seed/thermistor-TempSensor.csv) are core/thermistor.h's, shared
// with the simulator.
using cellguard::rig_thermistor_table;
using cellguard::ThermistorPoint;

// Parses a table in the rig's CSV layout (`°C,Ω` per line; an optional header line and a UTF-8 BOM
// are skipped; blank lines ignored). Requires >= 2 rows with resistance strictly monotonic in
// temperature. Errors name the origin and line.
Result<std::vector<ThermistorPoint>> parse_thermistor_table(std::string_view csv, std::string_view origin);

struct BoardConversion {
  std::vector<ThermistorPoint> thermistor;  // empty: the rig's table (seed/thermistor-TempSensor.csv values)
  double series_ohm = 2200;
  double supply_v = 5.0;
  double adc_full_scale = 1024;  // the rig divides by 1024
  double pressure_min_v = 0.5;
  double pressure_max_v = 4.5;
  double pressure_full_scale = 150;  // in pressure_unit
  std::string pressure_unit = "bar";
};

struct Conversion {
  double value = 0;
  bool in_range = true;  // false: clamped to the table's or sensor's end (broken or shorted sensor?)
};
Conversion thermistor_temperature_c(const BoardConversion& conversion, int adc);
Conversion pressure(const BoardConversion& conversion, int adc);

// Fields of cellguard's board firmware (present when the line ends with a valid Ardu_Crc).
struct BoardExtension {
  std::string hello;                        // Ardu_Hello (firmware name/version): first line after a reset
  std::string reset_cause;                  // Ardu_Reset: por, ext, bod, wdt (hello lines only)
  std::optional<std::uint16_t> outputs;     // Ardu_Out: bit n = pin n driven high (read from the pins)
  std::string fail_safe;                    // Ardu_Fs: off (no heartbeat yet), armed, hb_lost (tripped)
  std::optional<int> heartbeat_timeout_ms;  // Ardu_Hb
  bool reply = false;                       // Ardu_Re: the answer to `?`, `R` or `T`
};

struct BoardReading {
  MonoTime time;  // receive time of the line's end
  int temp1_adc = 0, temp2_adc = 0, pressure_adc = 0;
  Conversion temp1_c, temp2_c, pressure;
  std::optional<bool> ground_fault;  // present when the line carries Ardu_GndFault
  std::optional<BoardExtension> extension;
};

// CRC-8 of the extension's Ardu_Crc field (polynomial 0x07, initial 0, no reflection).
std::uint8_t board_crc8(std::string_view bytes);

// Parses one line (without CR LF). Errors (parse_error) say which field is missing or bad.
Result<BoardReading> parse_board_line(std::string_view line, const BoardConversion& conversion,
                                      MonoTime time);

// Splits a byte stream into lines at LF (a CR before it is dropped). Lines longer than max_bytes are
// discarded up to their end and counted, so a babbling device cannot grow memory.
class BoardLineSplitter {
 public:
  explicit BoardLineSplitter(std::size_t max_bytes = 128) : max_bytes_(max_bytes) {}
  // Calls on_line for every complete line in `bytes`.
  void feed(std::string_view bytes, const std::function<void(std::string_view line)>& on_line);
  std::uint64_t overlong_lines() const { return overlong_; }

 private:
  std::size_t max_bytes_;
  std::string partial_;
  bool discarding_ = false;
  std::uint64_t overlong_ = 0;
};

struct PinWrite {
  int pin = 0;
  bool on = false;
};
// `pin:value` pairs joined by `&`, each command at most 30 characters, in the given order.
std::vector<std::string> format_pin_commands(std::span<const PinWrite> writes);

struct BoardLinkConfig {
  std::string device = "/dev/ttyACM0";
  unsigned baud = 9600;
  BoardConversion conversion;
  std::size_t max_line_bytes = 128;
  // Intervals in ns (edge/config.cpp reads them from [board] in ms).
  Duration reopen_interval_ns = std::chrono::seconds(1);
  // Extension (used only with a board that announces it).
  bool extension = true;                                            // false: never leave the rig's protocol
  Duration heartbeat_interval_ns = std::chrono::milliseconds(100);  // `H` this often
  int heartbeat_timeout_ms = 500;                  // sent as `Tnnnn` (100..5000): the board trips after it
  std::vector<int> relay_pins = {5, 3, 4};         // closing one of them after a trip is preceded by `R`
  std::vector<int> output_pins = {6, 7, 5, 3, 4};  // the only pins ever written
  BoardProtocol protocol = BoardProtocol::automatic;
  BoardWriterConfig writer;
};

// Something the board said about itself (extension only).
struct BoardEvent {
  enum class Kind : std::uint8_t {
    extension,          // the board speaks the extension (detail: firmware), heartbeats start
    reset,              // the board reset (detail: cause; "wdt" = its watchdog fired)
    fail_safe,          // the fail-safe state changed (detail: off, armed, hb_lost)
    readback_mismatch,  // a pin's read-back differs from what was commanded (detail says which)
    relays_opened,      // the board opened commanded-closed relays by itself (detail: hb_lost, gnd_fault, or
                        // the reset cause wdt, por, ext, bod)
    outputs_verified,   // after relays_opened or output_fault: the read-back agrees with every command again
    output_fault,       // a pin still reads wrong after readback_retries re-sends (detail says which)
  };
  Kind kind = Kind::extension;
  std::string detail;
};
std::string_view to_string(BoardEvent::Kind kind);

struct BoardLinkStats {
  bool connected = false;
  std::uint64_t lines_valid = 0;
  std::uint64_t lines_invalid = 0;
  std::uint64_t lines_overlong = 0;
  std::uint64_t bytes_received = 0;
  std::uint64_t commands_sent = 0;
  std::uint64_t opens = 0;            // successful opens (1 + reconnects)
  std::uint64_t disconnects = 0;      // the device disappeared or failed
  std::uint64_t checksum_errors = 0;  // lines with a wrong Ardu_Crc (also counted invalid)
  bool extension = false;             // the board speaks the extension (this connection)
  std::string firmware;               // its Ardu_Hello, once seen
  std::string fail_safe;              // its last Ardu_Fs
  std::uint64_t heartbeats_sent = 0;
  std::uint64_t readbacks_ok = 0;
  std::uint64_t readback_mismatches = 0;
  std::uint64_t board_resets = 0;     // hello lines seen
  std::uint64_t watchdog_resets = 0;  // of which Ardu_Reset:wdt
};

class BoardLink {
 public:
  using ReadingHandler = std::function<void(const BoardReading&)>;
  using InvalidLineHandler = std::function<void(std::string_view line, const Error& error)>;
  // connected = true after every successful (re)open; false with the reason when lost or not openable.
  using ConnectionHandler = std::function<void(bool connected, const std::string& detail)>;
  using EventHandler = std::function<void(const BoardEvent&)>;

  // `clock` (its monotonic time stamps readings and paces the writer) must outlive the link.
  BoardLink(asio::io_context& io, BoardLinkConfig config, const Clock& clock = system_clock());
  ~BoardLink();
  BoardLink(const BoardLink&) = delete;
  BoardLink& operator=(const BoardLink&) = delete;

  // on_reading and on_invalid_line replace the handler. on_connection ADDS a listener (several
  // parts want to know: the edge, BoardOutputs' re-send); listeners are called in registration
  // order and stay registered for the link's lifetime. Overlong lines are reported to
  // on_invalid_line with an empty line. A failing (re)open is reported once per distinct reason,
  // not on every retry.
  void on_reading(ReadingHandler handler);
  void on_invalid_line(InvalidLineHandler handler);
  void on_connection(ConnectionHandler handler);
  void on_event(EventHandler handler);  // replaces the handler

  // Opens the device (or keeps retrying every reopen_interval_ns).
  void start();
  // Sets the desired state of pins (each must be in output_pins, else false and nothing is set).
  // The writer sends it when the board can take it; false also when not connected (the state is
  // remembered and sent after the next open).
  bool write_pins(std::span<const PinWrite> writes);
  // Sends every pin's desired state again (as after a reconnect).
  void resend_outputs();
  // The writer's view of every output pin: desired, sent (and when), read back.
  std::vector<BoardPinState> output_states() const;
  // True when the board's outputs are confirmed by read-back (cellguard's firmware).
  bool has_readback() const;
  // Every desired state was written and the board took it: its next line came (the rig's sketch)
  // or the read-back agreed (cellguard's firmware). For a stop that must see the relays open.
  bool outputs_settled() const;
  void stop();

  bool connected() const;
  BoardLinkStats stats() const;
  const BoardLinkConfig& config() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cellguard::devices
