// What a SocketCAN error frame says (linux/can/error.h), and the controller counters built from it.
//
// Pure: a frame's error class bits (Frame::id of an error frame) and data bytes in, a classification
// out. The kernel sends an error frame on every controller state change (CAN_ERR_CRTL with data[1]:
// warning, passive, back to active), on bus-off (CAN_ERR_BUSOFF), after a restart
// (CAN_ERR_RESTARTED) and for bus errors (CAN_ERR_PROT, CAN_ERR_ACK, ...). Counting transitions,
// not frames: a controller that reports "error passive" twice without becoming active in between
// is counted once.
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace cellguard::can {

enum class ControllerState : std::uint8_t { active, warning, passive, bus_off };
const char* to_string(ControllerState state);

struct ErrorFrameInfo {
  bool bus_off = false;              // CAN_ERR_BUSOFF
  bool restarted = false;            // CAN_ERR_RESTARTED: the controller was restarted (bus-off left)
  bool error_warning = false;        // CAN_ERR_CRTL_RX_WARNING / TX_WARNING
  bool error_passive = false;        // CAN_ERR_CRTL_RX_PASSIVE / TX_PASSIVE
  bool back_to_active = false;       // CAN_ERR_CRTL_ACTIVE
  bool controller_overflow = false;  // CAN_ERR_CRTL_RX_OVERFLOW / TX_OVERFLOW (controller buffers)
  bool bus_error = false;            // CAN_ERR_PROT, CAN_ERR_BUSERROR: a protocol violation on the wire
  bool no_ack = false;               // CAN_ERR_ACK: nobody acknowledged our frame
  bool lost_arbitration = false;     // CAN_ERR_LOSTARB
  bool tx_timeout = false;           // CAN_ERR_TX_TIMEOUT
  bool transceiver = false;          // CAN_ERR_TRX
  std::uint8_t tx_errors = 0;        // data[6] with CAN_ERR_CNT: the controller's TEC
  std::uint8_t rx_errors = 0;        // data[7]: REC
  bool has_counts = false;

  // "bus-off", "error passive (TX), TEC 128 REC 0", "restarted", "protocol violation", ...
  std::string describe() const;
};

// `error_class` is Frame::id of an error frame (CAN_ERR_* class bits, CAN_ERR_FLAG removed);
// `data` its payload (8 bytes as the kernel sends them; shorter is read as zeros).
ErrorFrameInfo classify_error_frame(std::uint32_t error_class, std::span<const std::uint8_t> data);

// Counters of one controller, from its error frames (and the restarts the edge requested).
struct ControllerCounters {
  ControllerState state = ControllerState::active;
  std::uint64_t error_frames = 0;
  std::uint64_t bus_off = 0;        // entries into bus-off
  std::uint64_t error_passive = 0;  // entries into error passive
  std::uint64_t error_warning = 0;  // entries into error warning
  std::uint64_t restarts = 0;       // CAN_ERR_RESTARTED seen (by restart-ms or an explicit restart)
  std::uint64_t bus_errors = 0;     // protocol violations, missing ACKs
  std::uint64_t controller_overflows = 0;

  // Counts one error frame; returns true when the controller state changed (an event worth
  // recording).
  bool add(const ErrorFrameInfo& info);
};

}  // namespace cellguard::can
