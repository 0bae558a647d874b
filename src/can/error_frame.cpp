#include "can/error_frame.h"

#include <linux/can/error.h>

#include <cstdio>

namespace cellguard::can {

const char* to_string(ControllerState state) {
  switch (state) {
    case ControllerState::active:
      return "error active";
    case ControllerState::warning:
      return "error warning";
    case ControllerState::passive:
      return "error passive";
    case ControllerState::bus_off:
      return "bus-off";
  }
  return "?";
}

ErrorFrameInfo classify_error_frame(std::uint32_t error_class, std::span<const std::uint8_t> data) {
  auto byte = [&](std::size_t i) -> std::uint8_t { return i < data.size() ? data[i] : 0; };
  ErrorFrameInfo info;
  info.bus_off = (error_class & CAN_ERR_BUSOFF) != 0;
  info.restarted = (error_class & CAN_ERR_RESTARTED) != 0;
  info.bus_error = (error_class & (CAN_ERR_PROT | CAN_ERR_BUSERROR)) != 0;
  info.no_ack = (error_class & CAN_ERR_ACK) != 0;
  info.lost_arbitration = (error_class & CAN_ERR_LOSTARB) != 0;
  info.tx_timeout = (error_class & CAN_ERR_TX_TIMEOUT) != 0;
  info.transceiver = (error_class & CAN_ERR_TRX) != 0;
  if ((error_class & CAN_ERR_CRTL) != 0) {
    const std::uint8_t status = byte(1);  // data[1]: CAN_ERR_CRTL_* (error.h)
    info.error_warning = (status & (CAN_ERR_CRTL_RX_WARNING | CAN_ERR_CRTL_TX_WARNING)) != 0;
    info.error_passive = (status & (CAN_ERR_CRTL_RX_PASSIVE | CAN_ERR_CRTL_TX_PASSIVE)) != 0;
    info.controller_overflow = (status & (CAN_ERR_CRTL_RX_OVERFLOW | CAN_ERR_CRTL_TX_OVERFLOW)) != 0;
    info.back_to_active = status == CAN_ERR_CRTL_ACTIVE;
  }
  if ((error_class & CAN_ERR_CNT) != 0) {
    info.has_counts = true;
    info.tx_errors = byte(6);
    info.rx_errors = byte(7);
  }
  return info;
}

std::string ErrorFrameInfo::describe() const {
  std::string text;
  auto add = [&](const char* part) {
    if (!text.empty()) text += ", ";
    text += part;
  };
  if (bus_off) add("bus-off");
  if (restarted) add("restarted");
  if (error_passive)
    add("error passive");
  else if (error_warning)
    add("error warning");
  if (back_to_active) add("back to error active");
  if (controller_overflow) add("controller buffer overflow");
  if (bus_error) add("protocol violation");
  if (no_ack) add("no acknowledgement");
  if (lost_arbitration) add("lost arbitration");
  if (tx_timeout) add("transmit timeout");
  if (transceiver) add("transceiver fault");
  if (text.empty()) add("error frame");
  if (has_counts) {
    char counts[48];
    std::snprintf(counts, sizeof counts, " (TEC %u, REC %u)", tx_errors, rx_errors);
    text += counts;
  }
  return text;
}

bool ControllerCounters::add(const ErrorFrameInfo& info) {
  ++error_frames;
  if (info.bus_error || info.no_ack) ++bus_errors;
  if (info.controller_overflow) ++controller_overflows;
  const ControllerState before = state;
  if (info.bus_off) {
    state = ControllerState::bus_off;
  } else if (info.restarted || info.back_to_active) {
    if (info.restarted) ++restarts;
    state = ControllerState::active;
  } else if (info.error_passive) {
    state = ControllerState::passive;
  } else if (info.error_warning && state != ControllerState::passive && state != ControllerState::bus_off) {
    state = ControllerState::warning;
  }
  if (state == before) return false;
  if (state == ControllerState::bus_off) ++bus_off;
  if (state == ControllerState::passive) ++error_passive;
  if (state == ControllerState::warning) ++error_warning;
  return true;
}

}  // namespace cellguard::can
