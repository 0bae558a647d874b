// Which CAN messages belong to which battery module, and which of their signals the supervisor
// watches: built once from the DBC and the [modules] section, then a lookup per frame.
//
// Module of a message:
//   - canopen discovery: a PDO's node id is its COB-ID's offset (1..127) from the nearest of the
//     configured PDO bases below it ([modules] pdo_bases; the rig's are 0x180/0x280/0x380/0x480 and
//     0x190/0x290/0x390/0x490, so 0x191 is pdo5 of node 1, where the standard bases alone would read
//     TPDO1 of node 17). NMT, SYNC/EMCY, TIME, SDO and heartbeat COB-IDs are never PDOs.
//   - name_pattern discovery: the message name starts with the pattern, `{id}` standing for the
//     module number in decimal (e.g. "BMU{id}_" matches BMU07_pdo3 -> 7). For non-CANopen DBCs.
// Messages of no module (SYNC, SDO, EMCY, others) are "other": decoded for the record only.
//
// Watched signals per module: cells 1..cells (the configured cell signal pattern), module voltage,
// max and min temperature, current. Every watched signal is registered as a supervisor channel
// named "<message>.<signal>" (e.g. "BMU03_pdo3.Cell_5_Voltage") with its module id.
//
// Pure: no I/O. Thread safety: immutable after build().
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/result.h"
#include "dbc/codec.h"
#include "edge/config.h"
#include "safety/safety.h"

namespace cellguard::edge {

struct WatchedSignal {
  std::size_t signal_index = 0;  // into the message's signals / the decode buffer
  safety::ChannelId channel = safety::kNoChannel;
};

struct ModuleMessage {
  const dbc::MessageCodec* codec = nullptr;
  int module_id = 0;  // 0: a message of no module
  std::vector<WatchedSignal> watched;
};

class ModuleMap {
 public:
  // Builds the map and registers the watched signals on `supervisor`. Errors name the module and
  // signal a rule needs but the DBC lacks (a module must have every watched signal somewhere).
  static Result<ModuleMap> build(const dbc::DatabaseCodec& codec, const ModulesSection& modules,
                                 safety::Supervisor& supervisor);

  // The message for a frame id, or nullptr if the DBC does not define it.
  const ModuleMessage* find(std::uint32_t id, bool extended) const {
    auto it = by_id_.find(key(id, extended));
    return it == by_id_.end() ? nullptr : &messages_[it->second];
  }
  // Every message of the DBC (module messages have module_id != 0).
  const std::vector<ModuleMessage>& messages() const { return messages_; }
  // Module ids the DBC defines, ascending.
  const std::vector<int>& defined_modules() const { return defined_modules_; }
  std::size_t watched_count() const { return watched_count_; }
  std::size_t largest_message_signals() const { return largest_; }

 private:
  static std::uint64_t key(std::uint32_t id, bool extended) { return (std::uint64_t{extended} << 32) | id; }
  std::vector<ModuleMessage> messages_;
  std::unordered_map<std::uint64_t, std::size_t> by_id_;
  std::vector<int> defined_modules_;
  std::size_t watched_count_ = 0;
  std::size_t largest_ = 0;
};

// Parses "BMU{id}_" against a message name: the module number, or 0 if it does not match.
int match_name_pattern(std::string_view pattern, std::string_view name);

}  // namespace cellguard::edge
