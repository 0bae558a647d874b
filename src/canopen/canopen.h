// CANopen (CiA 301 v4.2) as the edge speaks it: COB-ID to node mapping, the SYNC producer, an SDO
// client (expedited and segmented upload and download, abort codes by name) and EMCY decoding.
//
// Pure: frames and times (ns on any monotonic clock) in, frames and results out. No bus, no clock,
// no threads; the edge (edge/edge.cpp) sends what comes out and feeds what comes in. Every decoder
// takes any frame a peer may send (any length, any bytes) and answers with a value or a described
// error, never a crash (fuzz/canopen_frame_fuzz.cpp).
//
// Thread safety: none; each object is used by one thread (the edge's loop thread).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "can/frame.h"
#include "core/result.h"

namespace cellguard::canopen {

// ---- COB-IDs (CiA 301 §7.3.5, pre-defined connection set) ------------------------------------------

// The function of an 11-bit COB-ID: its four high bits (function code), the low seven the node id.
enum class Function : std::uint8_t {
  nmt,   // 0x000, node 0
  sync,  // 0x080, node 0
  emcy,  // 0x080 + node (1..127)
  time,  // 0x100, node 0
  tpdo1,
  rpdo1,  // 0x180 / 0x200 + node
  tpdo2,
  rpdo2,  // 0x280 / 0x300 + node
  tpdo3,
  rpdo3,  // 0x380 / 0x400 + node
  tpdo4,
  rpdo4,         // 0x480 / 0x500 + node
  sdo_response,  // 0x580 + node: server -> client (the node answers)
  sdo_request,   // 0x600 + node: client -> server (the edge asks)
  heartbeat,     // 0x700 + node: NMT error control (heartbeat, node guarding, boot-up)
};
std::string_view to_string(Function function);

inline constexpr int kMaxNodeId = 127;  // node ids are 1..127 (§7.3.5); 0 addresses no node

struct CobId {
  Function function = Function::nmt;
  int node = 0;  // 0 for the broadcast objects (NMT, SYNC, TIME)
  friend bool operator==(const CobId&, const CobId&) = default;
};

// The function and node of a frame id by the pre-defined connection set, or nullopt for an id it
// does not assign (extended ids, node 0 of a per-node function, node ids of broadcast objects,
// 0x780.. LSS and the unassigned ranges).
std::optional<CobId> classify(std::uint32_t id, bool extended = false);
// The COB-ID of `function` for `node` (node ignored for NMT, SYNC and TIME).
std::uint32_t cob_id(Function function, int node);

// ---- SYNC producer (§7.2.5) -------------------------------------------------------------------------

struct SyncConfig {
  std::uint32_t cob_id = 0x080;
  std::int64_t period_ns = 0;         // communication cycle period (object 1006h); 0: no SYNC
  std::uint8_t counter_overflow = 0;  // object 1019h: 0 = no counter (DLC 0), 2..240 = counter 1..value
};

// Fixed rate: each SYNC is due one period after the previous one was due, not after it went out;
// one that falls a whole period behind (a suspended process) skips ahead instead of bursting.
class SyncProducer {
 public:
  explicit SyncProducer(SyncConfig config);

  // The first SYNC is due at `now_ns`.
  void start(std::int64_t now_ns);
  std::int64_t due_ns() const { return due_ns_; }
  // The next SYNC frame; with a counter, the counter advances (1, 2, .. overflow, 1, ..; §7.2.5.2.1).
  can::Frame produce();
  // After the due SYNC was handled (sent or not): the next due time, also returned.
  std::int64_t advance(std::int64_t now_ns);
  // The counter of the last frame produced (0 before the first or without a counter).
  std::uint8_t counter() const { return counter_; }
  const SyncConfig& config() const { return config_; }

 private:
  SyncConfig config_;
  std::int64_t due_ns_ = 0;
  std::uint8_t counter_ = 0;
};

// ---- SDO (§7.2.4) -----------------------------------------------------------------------------------

// SDO abort codes (§7.2.4.3.17, table 22), by name.
enum class SdoAbortCode : std::uint32_t {
  toggle_bit_not_alternated = 0x05030000,
  timed_out = 0x05040000,
  command_unknown = 0x05040001,
  invalid_block_size = 0x05040002,
  invalid_sequence_number = 0x05040003,
  crc_error = 0x05040004,
  out_of_memory = 0x05040005,
  unsupported_access = 0x06010000,
  read_write_only = 0x06010001,
  write_read_only = 0x06010002,
  object_missing = 0x06020000,
  not_mappable = 0x06040041,
  pdo_length_exceeded = 0x06040042,
  parameter_incompatible = 0x06040043,
  device_incompatible = 0x06040047,
  hardware_error = 0x06060000,
  length_mismatch = 0x06070010,
  length_too_high = 0x06070012,
  length_too_low = 0x06070013,
  subindex_missing = 0x06090011,
  invalid_value = 0x06090030,
  value_too_high = 0x06090031,
  value_too_low = 0x06090032,
  max_less_than_min = 0x06090036,
  no_sdo_connection = 0x060A0023,
  general_error = 0x08000000,
  cannot_store = 0x08000020,
  cannot_store_local_control = 0x08000021,
  cannot_store_device_state = 0x08000022,
  no_object_dictionary = 0x08000023,
  no_data = 0x08000024,
};
// "object_missing"; "" for a code table 22 does not list (manufacturer-specific ones included).
std::string_view sdo_abort_name(std::uint32_t code);
// For people: "object does not exist in the object dictionary (SDO abort 0x06020000)"; an unlisted
// code is "unknown SDO abort code 0x12345678".
std::string sdo_abort_text(std::uint32_t code);

// One SDO frame from either side, as far as its first byte and multiplexer say (§7.2.4.3).
struct SdoMessage {
  enum class Kind : std::uint8_t {
    // client -> server
    initiate_download_request,
    download_segment_request,
    initiate_upload_request,
    upload_segment_request,
    // server -> client
    initiate_download_response,
    download_segment_response,
    initiate_upload_response,
    upload_segment_response,
    abort,  // either side
  };
  Kind kind = Kind::abort;
  std::uint16_t index = 0;  // initiate and abort frames
  std::uint8_t subindex = 0;
  bool toggle = false;             // segment frames
  bool last = false;               // segment frames: c, no more segments
  bool expedited = false;          // initiate: e
  bool size_indicated = false;     // initiate: s
  std::uint32_t size = 0;          // initiate, s and not e: the whole transfer's bytes
  std::vector<std::uint8_t> data;  // expedited or segment data (unused bytes removed)
  std::uint32_t abort_code = 0;
};
enum class SdoDirection : std::uint8_t { request, response };
// Decodes an SDO frame's payload. Errors (parse_error) name the cause: not 8 bytes, an unknown
// command specifier, block transfer (not supported).
Result<SdoMessage> decode_sdo(std::span<const std::uint8_t> payload, SdoDirection direction);

// Request frames (COB-ID 0x600 + node), for the client and for tests.
can::Frame sdo_expedited_download(int node, std::uint16_t index, std::uint8_t subindex,
                                  std::span<const std::uint8_t> data);  // 1..4 bytes
can::Frame sdo_upload_request(int node, std::uint16_t index, std::uint8_t subindex);
can::Frame sdo_abort(std::uint32_t cob_id, std::uint16_t index, std::uint8_t subindex, std::uint32_t code);

struct SdoResult {
  std::uint16_t index = 0;
  std::uint8_t subindex = 0;
  bool upload = false;
  std::vector<std::uint8_t> data;  // upload: the object's bytes
  std::uint32_t abort_code = 0;    // 0: success
  bool aborted_by_server = false;  // the node aborted; otherwise the client did (timeout, protocol)
  bool ok() const { return abort_code == 0; }
};

// The largest object an upload takes (a server may announce no size and send on and on).
inline constexpr std::size_t kMaxSdoUpload = 64 * 1024;

// One transfer at a time with one node (the client side of one SDO channel).
class SdoClient {
 public:
  struct Step {
    std::optional<can::Frame> send;  // the next request, or the client's abort
    std::optional<SdoResult> done;   // the transfer ended (success or abort)
  };

  SdoClient(int node, std::int64_t timeout_ns);

  // Starts a transfer: the first request frame. Errors: busy (a transfer runs) or invalid data
  // (empty download).
  Result<can::Frame> upload(std::uint16_t index, std::uint8_t subindex, std::int64_t now_ns);
  // Up to 4 bytes go expedited, more in 7-byte segments (§7.2.4.3.3, §7.2.4.3.5).
  Result<can::Frame> download(std::uint16_t index, std::uint8_t subindex, std::span<const std::uint8_t> data,
                              std::int64_t now_ns);
  // A frame from the bus: one that is not this node's SDO response is ignored (empty Step).
  Step on_frame(const can::Frame& frame, std::int64_t now_ns);
  // The timeout (§7.2.4.3.17: 0x05040000): at or after deadline_ns(), the client aborts.
  Step tick(std::int64_t now_ns);

  bool busy() const { return state_ != State::idle; }
  std::int64_t deadline_ns() const { return deadline_ns_; }
  int node() const { return node_; }

 private:
  enum class State : std::uint8_t {
    idle,
    initiate_upload,
    upload_segments,
    initiate_download,
    download_segments
  };
  Step fail(std::uint32_t code, bool by_server, bool send_abort);
  can::Frame next_download_segment();
  Step finish();

  int node_;
  std::int64_t timeout_ns_;
  State state_ = State::idle;
  std::int64_t deadline_ns_ = 0;
  std::uint16_t index_ = 0;
  std::uint8_t subindex_ = 0;
  bool toggle_ = false;
  std::vector<std::uint8_t> buffer_;            // download: all bytes; upload: bytes so far
  std::size_t sent_ = 0;                        // download: bytes sent in segments
  std::optional<std::uint32_t> expected_size_;  // upload: the size the server indicated
};

// ---- EMCY (§7.2.7) ----------------------------------------------------------------------------------

// Error register bits (object 1001h, §7.5.2.2).
enum class ErrorRegisterBit : std::uint8_t {
  generic = 0,
  current = 1,
  voltage = 2,
  temperature = 3,
  communication = 4,
  device_profile = 5,
  reserved = 6,
  manufacturer = 7,
};
std::string_view to_string(ErrorRegisterBit bit);

struct Emergency {
  int node = 0;
  std::uint16_t error_code = 0;  // 0x0000: error reset (the node has no error left)
  std::uint8_t error_register = 0;
  std::array<std::uint8_t, 5> manufacturer{};  // bytes 3..7
  bool error_reset() const { return error_code == 0; }
  bool has(ErrorRegisterBit bit) const { return (error_register >> static_cast<int>(bit)) & 1u; }
};
// The class of an error code (table 21): "voltage inside the device", "generic error", ...
std::string_view emcy_class_text(std::uint16_t error_code);
// For people: "node 3: voltage inside the device (EMCY 0x3210; error register 0x05: generic, voltage)".
std::string describe(const Emergency& emergency);

// Decodes an EMCY frame (COB-ID 0x081..0x0FF, 8 bytes). Errors (parse_error) name the cause.
Result<Emergency> decode_emcy(const can::Frame& frame);

}  // namespace cellguard::canopen
