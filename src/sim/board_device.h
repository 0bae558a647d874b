// The simulated sensor board: the rig's Arduino on a pseudo-terminal, wired to the pack model.
//
// What the rig had (shared/spec/seed-rig.md, "Hardware" and "Arduino serial protocol"): a USB serial
// board at 9600 baud, 8N1, reporting two thermistors and a pressure sensor once a second and
// switching pump, fan and three relays on `pin:value` commands. Here:
//   - Ardu_Temp1 is the coolant temperature (PackModel::coolant_c), Ardu_Temp2 the ambient air
//     (PackModel::ambient_c), Ardu_Press the coolant pressure (PackModel::coolant_pressure_bar), each
//     as the ADC counts the rig's conversion turns back into that value (board_protocol.h);
//   - the optional extension field `Ardu_GndFault` reports PackModel::insulation_fault (the
//     insulation monitor's ground-fault alarm of the hardware diagram). Off by default, so the line
//     is exactly the rig's;
//   - pins (rig defaults: pump 6, fan 7, relay1 5, relay2 3, relay3 4) act on the pack: relay1 closes
//     the positive main contactor, relay2 the negative main contactor, relay3 the precharge relay;
//     pump and fan switch the cooling. A pin that is not configured is ignored, like digitalWrite on
//     an unconnected pin.
//
// Usage (all on the simulator's event-loop thread, the thread that steps the PackModel):
//     auto board = BoardDevice::open(pack, BoardConfig{});   // board->path() is "/dev/pts/N"
//     loop: pack.step(dt); board->poll();                    // at least every ~100 ms of wall time
// poll() reads the commands that arrived (non-blocking), applies them to the pack at once, and writes
// a line each time another report period of simulated time (PackModel::time_s) has passed. No thread
// of its own; fd() may be watched for readability to poll() sooner (it also reports POLLHUP while
// no peer has the port open: do not busy-wait on it). Lines are sent only while a peer has the port
// open (bytes sent into a serial port nobody opened are lost), so a peer that opens it late reads
// fresh lines, never a backlog; what a departing peer left unread is discarded.
//
// Unplugging (fault injection, spec issue item 6): set_unplugged(true) closes the pty, so a peer's
// reads fail as with a pulled USB cable; set_unplugged(false) opens a new pty, whose path path()
// then returns (the kernel may reuse the old name, as a re-enumerated USB device may get the same
// or another one): report it on the control channel.
// With `outputs_low_when_unplugged` (default: the board is powered over USB), an unplugged board
// drops all outputs (contactors open, pump and fan off) and a replugged one starts with all outputs
// LOW, as an Arduino does after reset.
//
// Thread safety: none. The PackModel passed to open() must outlive the device. Not copyable.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/result.h"
#include "sim/board_protocol.h"
#include "sim/device_pty.h"

namespace cellguard::sim {

class PackModel;

// Digital pins of the board's outputs (shared/seed/client-config.properties.json, ArduinoHandler).
struct BoardPins {
  int pump = 6;
  int fan = 7;
  int relay1 = 5;  // positive main contactor
  int relay2 = 3;  // negative main contactor
  int relay3 = 4;  // precharge relay
};

struct BoardConfig {
  BoardPins pins;
  int baud = 9600;               // the rig's setting (a pty ignores it)
  double report_period_s = 1.0;  // one line per simulated second
  double pressure_full_scale_bar = 150.0;
  bool report_ground_fault = false;  // extension field Ardu_GndFault (not on the rig's board)
  bool outputs_low_when_unplugged = true;
  std::vector<ThermistorPoint> thermistor_table = rig_thermistor_table();
};

// The board's output pins as the board last set them.
struct BoardOutputs {
  bool pump = false;
  bool fan = false;
  bool relay1 = false;
  bool relay2 = false;
  bool relay3 = false;
};

struct BoardStats {
  std::uint64_t lines_written = 0;
  std::uint64_t lines_unheard = 0;     // due while no peer had the port open: not sent
  std::uint64_t lines_dropped = 0;     // the peer's queue was full (it does not read)
  std::uint64_t commands_applied = 0;  // pairs with a configured pin
  std::uint64_t commands_ignored = 0;  // pairs with a pin that drives nothing
  std::uint64_t malformed_bytes = 0;
};

class BoardDevice {
 public:
  // Opens the pty and sets the pack's board-driven outputs to LOW (an Arduino after reset).
  static Result<std::unique_ptr<BoardDevice>> open(PackModel& pack, BoardConfig config);

  BoardDevice(const BoardDevice&) = delete;
  BoardDevice& operator=(const BoardDevice&) = delete;
  ~BoardDevice();

  // The slave side a peer opens, e.g. "/dev/pts/4"; empty while unplugged.
  const std::string& path() const { return pty_.slave_path(); }
  // The master side (readable when commands arrived); -1 while unplugged.
  int fd() const { return pty_.master_fd(); }

  // Reads and applies commands, writes the line when due. Errors of the pty are counted, not
  // returned: a serial line has no one to report them to.
  void poll();

  // Fault injection: pull (true) or replug (false) the USB cable. Replugging opens a new pty; the
  // error is the operating system's if that fails (the device then stays unplugged).
  Result<void> set_unplugged(bool unplugged);
  bool unplugged() const { return !pty_.is_open(); }

  // The line the board would send now (from the pack's current state).
  BoardReading reading() const;
  const BoardOutputs& outputs() const { return outputs_; }
  const BoardStats& stats() const;

 private:
  BoardDevice(PackModel& pack, BoardConfig config, Pty pty);
  void apply(const PinCommand& command);
  void apply_outputs_to_pack();
  void write_line();

  PackModel& pack_;
  BoardConfig config_;
  Pty pty_;
  CommandParser parser_;
  BoardOutputs outputs_;
  mutable BoardStats stats_;
  double next_report_s_ = 0;
  bool peer_was_connected_ = false;
  std::uint64_t malformed_before_replug_ = 0;
};

}  // namespace cellguard::sim
