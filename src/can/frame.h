// One CAN frame as seen on a bus: classic CAN or CAN FD, 11- or 29-bit id, data, remote or error
// frame, with a receive timestamp in nanoseconds and the name of the bus it was seen on.
//
// A Frame is a plain value of fixed size (no heap), so frames can be passed through queues and
// decoded on the hot path without allocation.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

namespace cellguard::can {

inline constexpr std::size_t kMaxClassicPayload = 8;
inline constexpr std::size_t kMaxFdPayload = 64;
inline constexpr std::uint32_t kMaxStandardId = 0x7FF;
inline constexpr std::uint32_t kMaxExtendedId = 0x1FFFFFFF;

// A bus name such as "can0" or "vcan0" stored inline (Linux limits interface names to 15 bytes).
class BusName {
 public:
  static constexpr std::size_t kCapacity = 15;
  BusName() = default;
  BusName(std::string_view name) { assign(name); }  // NOLINT: implicit by design
  // Longer names are cut at kCapacity bytes.
  void assign(std::string_view name) {
    size_ = static_cast<std::uint8_t>(name.size() < kCapacity ? name.size() : kCapacity);
    std::memcpy(chars_.data(), name.data(), size_);
  }
  std::string_view view() const { return {chars_.data(), size_}; }
  bool empty() const { return size_ == 0; }
  friend bool operator==(const BusName& a, const BusName& b) { return a.view() == b.view(); }

 private:
  std::array<char, kCapacity> chars_{};
  std::uint8_t size_ = 0;
};

struct Frame {
  std::int64_t timestamp_ns = 0;  // receive time, nanoseconds since the Unix epoch (or log start)
  std::uint32_t id = 0;           // 11-bit or 29-bit identifier, without flag bits
  std::uint8_t size = 0;          // payload bytes; for a remote frame, the requested length (DLC)
  bool extended = false;          // 29-bit identifier
  bool remote = false;            // remote transmission request (classic CAN only)
  bool error = false;             // error frame; `id` holds the error class bits (Linux CAN_ERR_*)
  bool fd = false;                // CAN FD frame
  bool bitrate_switch = false;    // FD: BRS flag
  bool error_state = false;       // FD: ESI flag (transmitter error passive)
  BusName bus;
  std::array<std::uint8_t, kMaxFdPayload> data{};

  std::span<const std::uint8_t> payload() const { return {data.data(), remote ? 0u : size}; }

  // Copies `bytes` into the payload (at most 64 bytes) and sets `size`.
  void set_payload(std::span<const std::uint8_t> bytes) {
    size = static_cast<std::uint8_t>(bytes.size() < kMaxFdPayload ? bytes.size() : kMaxFdPayload);
    if (size > 0) std::memcpy(data.data(), bytes.data(), size);  // an empty span may hold a null pointer
  }

  friend bool operator==(const Frame& a, const Frame& b) {
    return a.timestamp_ns == b.timestamp_ns && a.id == b.id && a.size == b.size && a.extended == b.extended &&
           a.remote == b.remote && a.error == b.error && a.fd == b.fd &&
           a.bitrate_switch == b.bitrate_switch && a.error_state == b.error_state && a.bus == b.bus &&
           std::memcmp(a.data.data(), b.data.data(), a.remote ? 0 : a.size) == 0;
  }
};

// CAN FD data length code <-> payload length (ISO 11898-1:2015, table 5).
std::uint8_t dlc_to_length(std::uint8_t dlc, bool fd);
std::uint8_t length_to_dlc(std::size_t length);
// True if `length` is a length a frame can have (0..8 classic; 0..8,12,16,20,24,32,48,64 FD).
bool is_valid_length(std::size_t length, bool fd);

}  // namespace cellguard::can
