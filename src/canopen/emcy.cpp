#include <cstdio>

#include "canopen/canopen.h"

namespace cellguard::canopen {

std::string_view to_string(ErrorRegisterBit bit) {
  switch (bit) {
    case ErrorRegisterBit::generic:
      return "generic";
    case ErrorRegisterBit::current:
      return "current";
    case ErrorRegisterBit::voltage:
      return "voltage";
    case ErrorRegisterBit::temperature:
      return "temperature";
    case ErrorRegisterBit::communication:
      return "communication";
    case ErrorRegisterBit::device_profile:
      return "device profile specific";
    case ErrorRegisterBit::reserved:
      return "reserved";
    case ErrorRegisterBit::manufacturer:
      return "manufacturer-specific";
  }
  return "?";
}

std::string_view emcy_class_text(std::uint16_t code) {
  // §7.2.7.1, table 21: the high byte names the class, a few classes have finer sub-classes.
  if (code == 0x0000) return "error reset or no error";
  switch (code) {  // communication (81xx) and protocol (82xx) errors listed by the standard
    case 0x8110:
      return "CAN overrun (objects lost)";
    case 0x8120:
      return "CAN in error passive mode";
    case 0x8130:
      return "life guard error or heartbeat error";
    case 0x8140:
      return "recovered from bus off";
    case 0x8150:
      return "CAN-ID collision";
    case 0x8210:
      return "PDO not processed due to length error";
    case 0x8220:
      return "PDO length exceeded";
    case 0x8230:
      return "DAM MPDO not processed, destination object not available";
    case 0x8240:
      return "unexpected SYNC data length";
    case 0x8250:
      return "RPDO timeout";
    default:
      break;
  }
  switch (code >> 8) {
    case 0x00:
      return "error reset or no error";
    case 0x10:
      return "generic error";
    case 0x20:
      return "current";
    case 0x21:
      return "current, device input side";
    case 0x22:
      return "current inside the device";
    case 0x23:
      return "current, device output side";
    case 0x30:
      return "voltage";
    case 0x31:
      return "mains voltage";
    case 0x32:
      return "voltage inside the device";
    case 0x33:
      return "output voltage";
    case 0x40:
      return "temperature";
    case 0x41:
      return "ambient temperature";
    case 0x42:
      return "device temperature";
    case 0x50:
      return "device hardware";
    case 0x60:
      return "device software";
    case 0x61:
      return "internal software";
    case 0x62:
      return "user software";
    case 0x63:
      return "data set";
    case 0x70:
      return "additional modules";
    case 0x80:
      return "monitoring";
    case 0x81:
      return "communication";
    case 0x82:
      return "protocol error";
    case 0x90:
      return "external error";
    case 0xF0:
      return "additional functions";
    case 0xFF:
      return "device specific";
    default:
      return "unassigned error code";
  }
}

std::string describe(const Emergency& e) {
  char head[96];
  std::snprintf(head, sizeof head, " (EMCY 0x%04x; error register 0x%02x", e.error_code, e.error_register);
  std::string text =
      "node " + std::to_string(e.node) + ": " + std::string(emcy_class_text(e.error_code)) + head;
  std::string bits;
  for (int bit = 0; bit < 8; ++bit) {
    if (!e.has(static_cast<ErrorRegisterBit>(bit))) continue;
    if (!bits.empty()) bits += ", ";
    bits += to_string(static_cast<ErrorRegisterBit>(bit));
  }
  if (!bits.empty()) text += ": " + bits;
  return text + ")";
}

Result<Emergency> decode_emcy(const can::Frame& frame) {
  const std::optional<CobId> cob = classify(frame.id, frame.extended);
  char id[16];
  std::snprintf(id, sizeof id, "0x%x", frame.id);
  if (!cob || cob->function != Function::emcy)
    return Error(ErrorCode::parse_error,
                 std::string("EMCY: frame id ") + id + " is not an EMCY COB-ID (0x081..0x0FF)");
  // §7.2.7.3.1: error code (2 bytes), error register (1), manufacturer-specific error code (5).
  if (frame.remote || frame.size != 8)
    return Error(ErrorCode::parse_error,
                 std::string("EMCY from node ") + std::to_string(cob->node) + ": " +
                     (frame.remote ? "remote frame" : std::to_string(frame.size) + " bytes") +
                     ", expected 8");
  Emergency e;
  e.node = cob->node;
  e.error_code = static_cast<std::uint16_t>(frame.data[0] | frame.data[1] << 8);
  e.error_register = frame.data[2];
  for (std::size_t i = 0; i < e.manufacturer.size(); ++i) e.manufacturer[i] = frame.data[3 + i];
  return e;
}

}  // namespace cellguard::canopen
