// The binary layout of one block's records (the `data` column before zstd), shared by the writer,
// the reader and the fuzzer. Internal to the recorder; the layout itself is documented in
// block_codec.cpp.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/result.h"
#include "recorder/recorder.h"

namespace cellguard::recorder::detail {

inline constexpr std::uint8_t kBlockLayoutVersion = 1;
// Upper bound of a decompressed block: refuses absurd sizes from a corrupt or hostile file before
// allocating (a real block of 20,000 FD frames is < 2 MiB).
inline constexpr std::size_t kMaxRawBlockBytes = 64u << 20;

// An event waiting in the writer's queue: its text lives in a shared arena (no allocation per event).
struct EventRef {
  TimeNs time_ns = 0;
  std::uint32_t kind_offset = 0;
  std::uint32_t kind_size = 0;
  std::uint32_t json_offset = 0;
  std::uint32_t json_size = 0;
};

// Builds the uncompressed layout of one block. Reused between blocks so its buffers stay allocated.
class BlockEncoder {
 public:
  void reset();
  void add_frame(const can::Frame& frame);
  void add_sample(TimeNs time_ns, std::uint32_t channel, double value);
  void add_event(TimeNs time_ns, std::string_view kind, std::string_view json);
  std::size_t records() const { return frames_ + samples_ + events_; }
  TimeNs first_ns() const { return first_ns_; }
  TimeNs last_ns() const { return last_ns_; }
  // Appends the finished layout to `out` (cleared first).
  void finish(std::vector<std::uint8_t>& out);

 private:
  void note_time(TimeNs t);
  std::vector<std::uint8_t> frame_bytes_, sample_bytes_, event_bytes_;
  std::vector<std::string> buses_;  // bus table, index = position; a handful of names
  // Payload of the previous frame per (id, flags, bus) in this block: payloads are stored XOR it.
  std::unordered_map<std::uint64_t, std::array<std::uint8_t, can::kMaxFdPayload>> previous_;
  std::size_t frames_ = 0, samples_ = 0, events_ = 0;
  TimeNs first_ns_ = 0, last_ns_ = 0, base_ns_ = 0;
  TimeNs last_frame_ns_ = 0, last_sample_ns_ = 0, last_event_ns_ = 0;
};

// Decodes an uncompressed layout into `block` (frames, samples, events; seq/first/last untouched).
// Every length and count is checked against the input; errors say what and where.
Result<void> decode_records(std::span<const std::uint8_t> raw, Block& block);

// zstd helpers. compress() appends nothing on failure and returns the error.
Result<void> compress(std::span<const std::uint8_t> raw, int level, std::vector<std::uint8_t>& out);
Result<void> decompress(std::span<const std::uint8_t> packed, std::vector<std::uint8_t>& out);

// Decompresses and decodes one stored block; errors name the block seq.
Result<Block> decode_block(std::uint64_t seq, TimeNs first_ns, TimeNs last_ns, std::uint64_t records,
                           std::span<const std::uint8_t> packed);

}  // namespace cellguard::recorder::detail
