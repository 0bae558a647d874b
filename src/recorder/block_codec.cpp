// Block layout, version 1 (all integers little-endian; "varint" is LEB128, unsigned, at most 10
// bytes; "svarint" is a zigzag-encoded signed varint):
//
//   u8      layout version (1)
//   svarint base_ns                 time of the block's first record; deltas below start from it
//   varint  bus_count, then per bus: u8 length (<= 15), name bytes
//   varint  frame_count, varint sample_count, varint event_count
//   frames:  svarint delta_ns (from the previous frame, the first from base_ns), varint id,
//            u8 flags (bit 0 extended, 1 remote, 2 error, 3 fd, 4 bitrate switch, 5 error state;
//            other bits 0), u8 size (<= 64; for a remote frame the requested length, no payload
//            follows), varint bus index, then `size` payload bytes unless remote, each XOR the
//            same byte of the previous non-remote frame in this block with the same id, extended
//            and error flags and bus (zero beyond that frame's size; no such frame: XOR 0)
//   samples: svarint delta_ns (from the previous sample), varint channel, f64 value (IEEE 754)
//   events:  svarint delta_ns (from the previous event), varint kind length, kind bytes,
//            varint json length, json bytes
//
// Time deltas keep a 10 Hz frame at 2-3 bytes of time; sections per record kind keep similar bytes
// together for zstd; the XOR with the previous payload of the same message turns the unchanged bytes
// of a PDO into zeros. An 8-byte PDO at 10 Hz costs 16 bytes before compression.
#include "recorder/block_codec.h"

#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <memory>

namespace cellguard::recorder::detail {
namespace {

void put_varint(std::vector<std::uint8_t>& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<std::uint8_t>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<std::uint8_t>(v));
}

std::uint64_t zigzag(std::int64_t v) {
  return (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63);
}
std::int64_t unzigzag(std::uint64_t v) { return static_cast<std::int64_t>((v >> 1) ^ (~(v & 1) + 1)); }
// Differences in unsigned arithmetic: wrap-around instead of signed overflow for extreme times.
std::int64_t diff(TimeNs a, TimeNs b) {
  return static_cast<std::int64_t>(static_cast<std::uint64_t>(a) - static_cast<std::uint64_t>(b));
}
TimeNs add(TimeNs a, std::int64_t d) {
  return static_cast<TimeNs>(static_cast<std::uint64_t>(a) + static_cast<std::uint64_t>(d));
}

constexpr std::uint8_t kFlagExtended = 1, kFlagRemote = 2, kFlagError = 4, kFlagFd = 8, kFlagBrs = 16,
                       kFlagEsi = 32, kKnownFlags = 63;

// Bounds-checked reader over the raw layout; the first failure sticks and names the offset.
class Cursor {
 public:
  explicit Cursor(std::span<const std::uint8_t> in) : in_(in) {}
  bool failed() const { return !error_.empty(); }
  const std::string& error() const { return error_; }
  std::size_t remaining() const { return in_.size() - pos_; }

  void fail(std::string_view what) {
    if (error_.empty()) error_ = std::string(what) + " at byte " + std::to_string(pos_);
  }
  std::uint8_t u8(std::string_view what) {
    if (failed() || pos_ >= in_.size()) {
      fail(std::string("truncated ") + std::string(what));
      return 0;
    }
    return in_[pos_++];
  }
  std::uint64_t varint(std::string_view what) {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
      if (failed()) return 0;
      if (pos_ >= in_.size()) {
        fail(std::string("truncated ") + std::string(what));
        return 0;
      }
      const std::uint8_t b = in_[pos_++];
      if (shift == 63 && b > 1) {
        fail(std::string("varint overflow in ") + std::string(what));
        return 0;
      }
      v |= static_cast<std::uint64_t>(b & 0x7F) << shift;
      if ((b & 0x80) == 0) return v;
    }
    fail(std::string("varint too long in ") + std::string(what));
    return 0;
  }
  std::span<const std::uint8_t> bytes(std::size_t n, std::string_view what) {
    if (failed() || n > remaining()) {
      fail(std::string("truncated ") + std::string(what));
      return {};
    }
    auto s = in_.subspan(pos_, n);
    pos_ += n;
    return s;
  }

 private:
  std::span<const std::uint8_t> in_;
  std::size_t pos_ = 0;
  std::string error_;
};

// The key of "the same message" for the payload XOR.
std::uint64_t message_key(std::uint32_t id, bool extended, bool error, std::uint64_t bus) {
  return static_cast<std::uint64_t>(id) | (extended ? 1ull << 32 : 0) | (error ? 1ull << 33 : 0) |
         (bus << 34);
}

std::string_view as_text(std::span<const std::uint8_t> s) {
  if (s.empty()) return std::string_view("");  // never a null pointer: BusName memcpy()s it
  return {reinterpret_cast<const char*>(s.data()), s.size()};
}

}  // namespace

void BlockEncoder::reset() {
  frame_bytes_.clear();
  sample_bytes_.clear();
  event_bytes_.clear();
  buses_.clear();
  previous_.clear();
  frames_ = samples_ = events_ = 0;
  first_ns_ = last_ns_ = 0;
}

void BlockEncoder::note_time(TimeNs t) {
  if (records() == 0) {
    first_ns_ = last_ns_ = base_ns_ = t;
    last_frame_ns_ = last_sample_ns_ = last_event_ns_ = t;  // the base of every section
    return;
  }
  first_ns_ = std::min(first_ns_, t);
  last_ns_ = std::max(last_ns_, t);
}

void BlockEncoder::add_frame(const can::Frame& f) {
  note_time(f.timestamp_ns);
  put_varint(frame_bytes_, zigzag(diff(f.timestamp_ns, last_frame_ns_)));
  last_frame_ns_ = f.timestamp_ns;
  put_varint(frame_bytes_, f.id);
  const std::uint8_t flags = (f.extended ? kFlagExtended : 0) | (f.remote ? kFlagRemote : 0) |
                             (f.error ? kFlagError : 0) | (f.fd ? kFlagFd : 0) |
                             (f.bitrate_switch ? kFlagBrs : 0) | (f.error_state ? kFlagEsi : 0);
  frame_bytes_.push_back(flags);
  const std::uint8_t size = std::min<std::uint8_t>(f.size, can::kMaxFdPayload);
  frame_bytes_.push_back(size);
  // Linear search: a rig has one to three buses.
  const std::string_view bus = f.bus.view();
  std::size_t index = 0;
  while (index < buses_.size() && buses_[index] != bus) ++index;
  if (index == buses_.size()) buses_.emplace_back(bus);
  put_varint(frame_bytes_, index);
  if (!f.remote) {
    auto& prev = previous_.try_emplace(message_key(f.id, f.extended, f.error, index)).first->second;
    for (std::size_t i = 0; i < size; ++i) frame_bytes_.push_back(f.data[i] ^ prev[i]);
    std::memcpy(prev.data(), f.data.data(), size);
    std::memset(prev.data() + size, 0, prev.size() - size);  // bytes beyond size count as zero
  }
  ++frames_;
}

void BlockEncoder::add_sample(TimeNs time_ns, std::uint32_t channel, double value) {
  note_time(time_ns);
  put_varint(sample_bytes_, zigzag(diff(time_ns, last_sample_ns_)));
  last_sample_ns_ = time_ns;
  put_varint(sample_bytes_, channel);
  std::uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof bits);
  for (int i = 0; i < 8; ++i) sample_bytes_.push_back(static_cast<std::uint8_t>(bits >> (8 * i)));
  ++samples_;
}

void BlockEncoder::add_event(TimeNs time_ns, std::string_view kind, std::string_view json) {
  note_time(time_ns);
  put_varint(event_bytes_, zigzag(diff(time_ns, last_event_ns_)));
  last_event_ns_ = time_ns;
  put_varint(event_bytes_, kind.size());
  event_bytes_.insert(event_bytes_.end(), kind.begin(), kind.end());
  put_varint(event_bytes_, json.size());
  event_bytes_.insert(event_bytes_.end(), json.begin(), json.end());
  ++events_;
}

void BlockEncoder::finish(std::vector<std::uint8_t>& out) {
  out.clear();
  out.push_back(kBlockLayoutVersion);
  // The base is the first record's time, which every section started its deltas from.
  put_varint(out, zigzag(records() > 0 ? base_ns_ : 0));
  put_varint(out, buses_.size());
  for (const auto& b : buses_) {
    out.push_back(static_cast<std::uint8_t>(b.size()));
    out.insert(out.end(), b.begin(), b.end());
  }
  put_varint(out, frames_);
  put_varint(out, samples_);
  put_varint(out, events_);
  out.insert(out.end(), frame_bytes_.begin(), frame_bytes_.end());
  out.insert(out.end(), sample_bytes_.begin(), sample_bytes_.end());
  out.insert(out.end(), event_bytes_.begin(), event_bytes_.end());
}

Result<void> decode_records(std::span<const std::uint8_t> raw, Block& block) {
  Cursor in(raw);
  const std::uint8_t version = in.u8("layout version");
  if (!in.failed() && version != kBlockLayoutVersion) {
    return Error(ErrorCode::unsupported, "block layout version " + std::to_string(version) +
                                             " (this build reads " + std::to_string(kBlockLayoutVersion) +
                                             ")");
  }
  const TimeNs base = unzigzag(in.varint("base time"));
  const std::uint64_t bus_count = in.varint("bus count");
  if (!in.failed() && bus_count > in.remaining())
    in.fail("bus count " + std::to_string(bus_count) + " too large");
  std::vector<can::BusName> buses;
  if (!in.failed()) buses.reserve(bus_count);
  for (std::uint64_t i = 0; i < bus_count && !in.failed(); ++i) {
    const std::uint8_t len = in.u8("bus name length");
    if (len > can::BusName::kCapacity) {
      in.fail("bus name length " + std::to_string(len) + " over 15");
      break;
    }
    buses.emplace_back(as_text(in.bytes(len, "bus name")));
  }
  const std::uint64_t frame_count = in.varint("frame count");
  const std::uint64_t sample_count = in.varint("sample count");
  const std::uint64_t event_count = in.varint("event count");
  // Minimum encoded sizes (frame 5, sample 10, event 3 bytes) bound the counts before reserving.
  if (!in.failed() && (frame_count > in.remaining() / 5 || sample_count > in.remaining() / 10 ||
                       event_count > in.remaining() / 3 ||
                       frame_count * 5 + sample_count * 10 + event_count * 3 > in.remaining())) {
    in.fail("record counts exceed the block size");
  }
  if (in.failed()) return Error(ErrorCode::parse_error, in.error());

  block.frames.clear();
  block.samples.clear();
  block.events.clear();
  block.frames.reserve(frame_count);
  block.samples.reserve(sample_count);
  block.events.reserve(event_count);

  // Index in block.frames of the previous frame per message (payload XOR, see the layout).
  std::unordered_map<std::uint64_t, std::size_t> previous;
  TimeNs t = base;
  for (std::uint64_t i = 0; i < frame_count && !in.failed(); ++i) {
    can::Frame f;
    t = add(t, unzigzag(in.varint("frame time")));
    f.timestamp_ns = t;
    const std::uint64_t id = in.varint("frame id");
    const std::uint8_t flags = in.u8("frame flags");
    const std::uint8_t size = in.u8("frame size");
    const std::uint64_t bus = in.varint("frame bus");
    if (in.failed()) break;
    if (id > 0xFFFFFFFFu) {
      in.fail("frame id out of range");
      break;
    }
    if (flags & ~kKnownFlags) {
      in.fail("unknown frame flags");
      break;
    }
    if (size > can::kMaxFdPayload) {
      in.fail("frame size " + std::to_string(size) + " over 64");
      break;
    }
    if (bus >= buses.size()) {
      in.fail("frame bus index " + std::to_string(bus) + " not in the bus table");
      break;
    }
    f.id = static_cast<std::uint32_t>(id);
    f.extended = flags & kFlagExtended;
    f.remote = flags & kFlagRemote;
    f.error = flags & kFlagError;
    f.fd = flags & kFlagFd;
    f.bitrate_switch = flags & kFlagBrs;
    f.error_state = flags & kFlagEsi;
    f.size = size;
    f.bus = buses[bus];
    if (!f.remote) {
      auto payload = in.bytes(size, "frame payload");
      if (in.failed()) break;
      auto [it, fresh] =
          previous.try_emplace(message_key(f.id, f.extended, f.error, bus), block.frames.size());
      if (fresh) {
        std::memcpy(f.data.data(), payload.data(), size);
      } else {
        const can::Frame& prev = block.frames[it->second];
        for (std::size_t b = 0; b < size; ++b) f.data[b] = payload[b] ^ (b < prev.size ? prev.data[b] : 0);
        it->second = block.frames.size();
      }
    }
    block.frames.push_back(f);
  }
  t = base;
  for (std::uint64_t i = 0; i < sample_count && !in.failed(); ++i) {
    SampleRecord s;
    t = add(t, unzigzag(in.varint("sample time")));
    s.time_ns = t;
    const std::uint64_t channel = in.varint("sample channel");
    auto bits = in.bytes(8, "sample value");
    if (in.failed()) break;
    if (channel > 0xFFFFFFFFu) {
      in.fail("sample channel out of range");
      break;
    }
    s.channel = static_cast<std::uint32_t>(channel);
    std::uint64_t v = 0;
    for (int b = 0; b < 8; ++b) v |= static_cast<std::uint64_t>(bits[b]) << (8 * b);
    std::memcpy(&s.value, &v, sizeof v);
    block.samples.push_back(s);
  }
  t = base;
  for (std::uint64_t i = 0; i < event_count && !in.failed(); ++i) {
    EventRecord e;
    t = add(t, unzigzag(in.varint("event time")));
    e.time_ns = t;
    const std::uint64_t kind_size = in.varint("event kind length");
    if (in.failed()) break;
    if (kind_size > in.remaining()) {
      in.fail("truncated event kind");
      break;
    }
    e.kind = as_text(in.bytes(kind_size, "event kind"));
    const std::uint64_t json_size = in.varint("event json length");
    if (in.failed()) break;
    if (json_size > in.remaining()) {
      in.fail("truncated event json");
      break;
    }
    e.json = as_text(in.bytes(json_size, "event json"));
    block.events.push_back(std::move(e));
  }
  if (!in.failed() && in.remaining() != 0) in.fail(std::to_string(in.remaining()) + " trailing bytes");
  if (in.failed()) return Error(ErrorCode::parse_error, in.error());
  return success();
}

Result<void> compress(std::span<const std::uint8_t> raw, int level, std::vector<std::uint8_t>& out) {
  // One context per thread: the writer compresses every block, and a context costs ~1 MiB to create.
  thread_local std::unique_ptr<ZSTD_CCtx, decltype(&ZSTD_freeCCtx)> ctx(ZSTD_createCCtx(), ZSTD_freeCCtx);
  if (!ctx) return Error(ErrorCode::io_error, "zstd: cannot create a compression context");
  out.resize(ZSTD_compressBound(raw.size()));
  const std::size_t n = ZSTD_compressCCtx(ctx.get(), out.data(), out.size(), raw.data(), raw.size(), level);
  if (ZSTD_isError(n)) {
    out.clear();
    return Error(ErrorCode::io_error, std::string("zstd: ") + ZSTD_getErrorName(n));
  }
  out.resize(n);
  return success();
}

Result<void> decompress(std::span<const std::uint8_t> packed, std::vector<std::uint8_t>& out) {
  const unsigned long long size = ZSTD_getFrameContentSize(packed.data(), packed.size());
  if (size == ZSTD_CONTENTSIZE_ERROR) return Error(ErrorCode::parse_error, "not a zstd frame");
  if (size == ZSTD_CONTENTSIZE_UNKNOWN)
    return Error(ErrorCode::parse_error, "zstd frame without a content size");
  if (size > kMaxRawBlockBytes) {
    return Error(ErrorCode::parse_error, "zstd frame claims " + std::to_string(size) + " bytes (limit " +
                                             std::to_string(kMaxRawBlockBytes) + ")");
  }
  out.resize(static_cast<std::size_t>(size));
  const std::size_t n = ZSTD_decompress(out.data(), out.size(), packed.data(), packed.size());
  if (ZSTD_isError(n)) return Error(ErrorCode::parse_error, std::string("zstd: ") + ZSTD_getErrorName(n));
  if (n != size) return Error(ErrorCode::parse_error, "zstd frame shorter than its declared size");
  return success();
}

Result<Block> decode_block(std::uint64_t seq, TimeNs first_ns, TimeNs last_ns, std::uint64_t records,
                           std::span<const std::uint8_t> packed) {
  auto fail = [seq](const std::string& why) {
    return Error(ErrorCode::parse_error, "block " + std::to_string(seq) + ": " + why);
  };
  std::vector<std::uint8_t> raw;
  if (auto r = decompress(packed, raw); !r) return fail(r.error().message);
  Block block;
  block.seq = seq;
  block.first_ns = first_ns;
  block.last_ns = last_ns;
  if (auto r = decode_records(raw, block); !r) return fail(r.error().message);
  const std::uint64_t n = block.frames.size() + block.samples.size() + block.events.size();
  if (n != records) {
    return fail("holds " + std::to_string(n) + " records, its row says " + std::to_string(records));
  }
  auto outside = [&](TimeNs t) { return t < first_ns || t > last_ns; };
  for (const auto& f : block.frames)
    if (outside(f.timestamp_ns)) return fail("a frame's time is outside first_ns..last_ns");
  for (const auto& s : block.samples)
    if (outside(s.time_ns)) return fail("a sample's time is outside first_ns..last_ns");
  for (const auto& e : block.events)
    if (outside(e.time_ns)) return fail("an event's time is outside first_ns..last_ns");
  return block;
}

}  // namespace cellguard::recorder::detail
