// The uplink wire protocol (version 1) between an edge and the server: message values, their
// encoding into length-prefixed frames and a frame decoder for a byte stream.
// The schema is `uplink.proto`; the protocol and its rules are described in docs/uplink-protocol.md.
//
// Frame: 4-byte big-endian length N (1 <= N <= kMaxFrameBytes), then N bytes of a serialized
// cellguard.uplink.v1.Envelope. The protobuf types stay inside this subsystem: callers see only the
// plain values below, so nothing else depends on the serialization library.
//
// Thread safety: plain values and functions; a FrameDecoder belongs to one connection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "core/result.h"

namespace cellguard::uplink {

using TimeNs = std::int64_t;  // ns since the Unix epoch

inline constexpr std::uint32_t kProtocolVersion = 1;
// Bounds of one frame: a batch is one recorded block (<= 20,000 records, ~200 ms of the full rig).
inline constexpr std::size_t kMaxFrameBytes = 4u << 20;
inline constexpr std::size_t kFrameHeaderBytes = 4;
// Bounds checked after parsing, so a small frame cannot make the receiver allocate without limit.
inline constexpr std::size_t kMaxChannels = 100'000;
inline constexpr std::size_t kMaxRowsPerBatch = 1'000'000;
inline constexpr std::size_t kMaxValuesPerBatch = 4'000'000;

struct SeqRange {
  std::uint64_t first = 0;  // inclusive
  std::uint64_t last = 0;   // inclusive
  bool operator==(const SeqRange&) const = default;
};

struct ChannelInfo {
  std::uint32_t id = 0;
  std::string name;
  std::string unit;
  std::uint32_t module = 0;
  std::string rig_column;
  bool integral = false;  // integer-valued (a DBC signal with integral scale and offset)
  bool operator==(const ChannelInfo&) const = default;
};

struct Hello {
  std::uint32_t protocol_version = kProtocolVersion;
  std::string edge_id;
  std::string software_version;
  std::string config_sha256;
  std::string dbc_sha256;
  std::vector<ChannelInfo> channels;
  std::uint64_t first_seq = 0;
  std::uint64_t last_seq = 0;
  bool operator==(const Hello&) const = default;
};

struct HelloAck {
  std::uint32_t protocol_version = kProtocolVersion;
  std::string server_id;
  std::vector<SeqRange> stored;
  std::uint32_t keepalive_ms = 1000;
  bool operator==(const HelloAck&) const = default;
};

// How the encoder may code a column as integers: value = n * scale + offset (a DBC signal's scaling).
// The encoder uses it only where it reproduces every value exactly; otherwise it sends doubles.
struct Scaling {
  double scale = 1;
  double offset = 0;
  bool operator==(const Scaling&) const = default;
};

// Channels sampled at the same instants. values are row-major: values[row * channels.size() + col];
// NaN means the channel has no value in that row.
struct Series {
  std::vector<std::uint32_t> channels;
  std::vector<TimeNs> times_ns;
  std::vector<double> values;
  std::vector<Scaling> scaling;            // encoder hint per channel (may be empty); not transmitted as such
  bool operator==(const Series& o) const;  // bitwise on values (NaN == NaN); ignores the hints
};

struct Event {
  TimeNs time_ns = 0;
  std::string kind;
  std::string json;
  bool operator==(const Event&) const = default;
};

struct Batch {
  std::uint64_t seq = 0;
  std::vector<Series> series;
  std::vector<Event> events;
  std::uint64_t lost_records = 0;
  std::uint64_t records = 0;
  std::size_t sample_count() const;  // values present (not NaN) over all series
  bool operator==(const Batch&) const = default;
};

struct Ack {
  std::vector<SeqRange> stored;
  bool operator==(const Ack&) const = default;
};

struct Keepalive {
  TimeNs sent_ns = 0;
  std::uint64_t backlog_batches = 0;
  std::uint64_t lost_records = 0;
  bool operator==(const Keepalive&) const = default;
};

struct Goodbye {
  std::string reason;
  bool operator==(const Goodbye&) const = default;
};

using Message = std::variant<Hello, HelloAck, Batch, Ack, Keepalive, Goodbye>;

// "hello", "batch", ... for logs.
const char* message_name(const Message& message);

// Appends one frame (header and body) to `out`. Fails if a batch is inconsistent (values not
// channels x rows) or the frame would exceed kMaxFrameBytes.
Result<void> encode_frame(const Message& message, std::vector<std::uint8_t>& out);

// Decodes one frame body (without its header). Every count and size is checked; errors say what.
Result<Message> decode_body(std::span<const std::uint8_t> body);

// Splits a byte stream into frames. feed() the bytes as they arrive, then call next() until it
// returns no message. An error (bad length, undecodable body) is final for the connection.
class FrameDecoder {
 public:
  void feed(std::span<const std::uint8_t> bytes);
  Result<std::optional<Message>> next();
  std::size_t buffered() const { return buffer_.size() - consumed_; }

 private:
  std::vector<std::uint8_t> buffer_;
  std::size_t consumed_ = 0;
};

// Sorted, merged set of sequence numbers as ranges (acknowledgements, what the server holds).
class SeqSet {
 public:
  void insert(std::uint64_t seq) { insert(SeqRange{seq, seq}); }
  void insert(SeqRange range);
  bool contains(std::uint64_t seq) const;
  // The smallest seq >= from that is not in the set.
  std::uint64_t first_missing(std::uint64_t from) const;
  const std::vector<SeqRange>& ranges() const { return ranges_; }
  std::uint64_t count() const;  // number of seqs
  void clear() { ranges_.clear(); }
  void erase_below(std::uint64_t seq);  // forget everything < seq

 private:
  std::vector<SeqRange> ranges_;  // sorted, disjoint, not adjacent
};

}  // namespace cellguard::uplink
