#include "canopen/canopen.h"

namespace cellguard::canopen {

std::string_view to_string(Function function) {
  switch (function) {
    case Function::nmt:
      return "NMT";
    case Function::sync:
      return "SYNC";
    case Function::emcy:
      return "EMCY";
    case Function::time:
      return "TIME";
    case Function::tpdo1:
      return "TPDO1";
    case Function::rpdo1:
      return "RPDO1";
    case Function::tpdo2:
      return "TPDO2";
    case Function::rpdo2:
      return "RPDO2";
    case Function::tpdo3:
      return "TPDO3";
    case Function::rpdo3:
      return "RPDO3";
    case Function::tpdo4:
      return "TPDO4";
    case Function::rpdo4:
      return "RPDO4";
    case Function::sdo_response:
      return "SDO response";
    case Function::sdo_request:
      return "SDO request";
    case Function::heartbeat:
      return "heartbeat";
  }
  return "?";
}

namespace {
// Function codes (the COB-ID's bits 10..7) of the per-node objects, by code (§7.3.5, table 73).
constexpr std::optional<Function> kPerNode[16] = {
    std::nullopt,          Function::emcy,  std::nullopt,        Function::tpdo1,
    Function::rpdo1,       Function::tpdo2, Function::rpdo2,     Function::tpdo3,
    Function::rpdo3,       Function::tpdo4, Function::rpdo4,     Function::sdo_response,
    Function::sdo_request, std::nullopt,    Function::heartbeat, std::nullopt};
}  // namespace

std::optional<CobId> classify(std::uint32_t id, bool extended) {
  if (extended || id > can::kMaxStandardId) return std::nullopt;
  const int node = static_cast<int>(id & 0x7F);
  const unsigned code = id >> 7;
  // Broadcast objects: node 0 only.
  if (id == 0x000) return CobId{Function::nmt, 0};
  if (id == 0x080) return CobId{Function::sync, 0};
  if (id == 0x100) return CobId{Function::time, 0};
  if (node == 0) return std::nullopt;
  const std::optional<Function> function = kPerNode[code];
  if (!function) return std::nullopt;
  return CobId{*function, node};
}

std::uint32_t cob_id(Function function, int node) {
  const auto n = static_cast<std::uint32_t>(node) & 0x7F;
  switch (function) {
    case Function::nmt:
      return 0x000;
    case Function::sync:
      return 0x080;
    case Function::time:
      return 0x100;
    case Function::emcy:
      return 0x080 + n;
    case Function::tpdo1:
      return 0x180 + n;
    case Function::rpdo1:
      return 0x200 + n;
    case Function::tpdo2:
      return 0x280 + n;
    case Function::rpdo2:
      return 0x300 + n;
    case Function::tpdo3:
      return 0x380 + n;
    case Function::rpdo3:
      return 0x400 + n;
    case Function::tpdo4:
      return 0x480 + n;
    case Function::rpdo4:
      return 0x500 + n;
    case Function::sdo_response:
      return 0x580 + n;
    case Function::sdo_request:
      return 0x600 + n;
    case Function::heartbeat:
      return 0x700 + n;
  }
  return 0;
}

}  // namespace cellguard::canopen
