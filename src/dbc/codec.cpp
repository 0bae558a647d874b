// Signal codec: compiles messages into extraction plans and runs them.
//
// Bit numbering (DBC): little endian signals give the LSB's position, bit b = bit b%8 of byte b/8.
// Big endian signals give the MSB in "sawtooth" numbering; in a big-endian view of the payload
// (position 0 = MSB of byte 0) that bit is at 8*(b/8) + 7 - b%8 and the signal runs towards
// higher positions. Semantics of scaling and multiplexing follow the reference decoder, see
// shared/corpus/dbc/README.md (quirks 1-3).
//
// This file is compiled with -ffp-contract=off: the reference computes raw*scale+offset with two
// roundings, a fused multiply-add would differ in the last bit.
#include "dbc/codec.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <string_view>
#include <unordered_map>

namespace cellguard::dbc {
namespace {

__extension__ using UInt128 = unsigned __int128;

// Payloads are copied into a zero-padded buffer of this size for the general path, so the 9-byte
// window of any signal starting within the first 72 bytes can be read without bounds checks.
constexpr std::size_t kMaxPayloadBytes = 64;
constexpr std::size_t kWindowBytes = 9;
constexpr std::size_t kBufferBytes = 80;
constexpr std::size_t kMaxWindowStart = kBufferBytes - kWindowBytes - 7;  // keeps loads in bounds

enum class Kind : std::uint8_t {
  signed_int,
  unsigned_int,  // 1..63 bits: fits an int64 for a fast conversion
  unsigned_64,
  float16,
  float32,
  float64,
  zero,  // no bits readable (malformed length or entirely beyond 64 bytes): raw 0
};

// One signal's extraction. On the small path (messages up to 8 bytes) the whole payload is one
// 64-bit word (little- or big-endian view) and the signal is (word >> shift); on the general path
// it is (window >> shift) where window is the 9 bytes starting at `byte`. Either way the result is
// then shifted left by `left` (64 - length), which drops the bits above the signal and leaves it
// left-aligned for sign extension.
struct Extract {
  double scale = 1;
  double offset = 0;
  std::uint64_t sign = 0;   // integer kinds: the sign bit of a signed signal (for sign extension), else 0
  std::uint64_t mask = 0;   // the signal's bits, right-aligned (one shift fewer on the flat path)
  std::uint32_t index = 0;  // signal index (slot in the caller's buffers)
  std::uint16_t byte = 0;
  std::uint8_t shift = 0;
  std::uint8_t left = 0;
  bool big_endian = false;
  Kind kind = Kind::zero;
};

struct Interval {  // multiplexer values [low, high] select node `node`
  Int128 low = 0;
  Int128 high = 0;
  std::uint32_t node = 0;
};

struct MuxRef {
  std::uint32_t signal = 0;
  std::uint32_t interval_first = 0;
  std::uint32_t interval_count = 0;
};

struct Branch {  // signals decoded together, and the multiplexers among them that select further
  std::uint32_t step_first = 0;
  std::uint32_t step_count = 0;
  std::uint32_t mux_first = 0;
  std::uint32_t mux_count = 0;
};

struct Exact {  // integer-exact scaling (quirk 1)
  bool integer = false;
  Int128 scale = 0;
  Int128 offset = 0;
};

inline std::uint64_t load_le64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  std::memcpy(&v, p, sizeof v);
  if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap64(v);
  return v;
}

inline std::uint64_t load_be64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  std::memcpy(&v, p, sizeof v);
  if constexpr (std::endian::native == std::endian::little) v = __builtin_bswap64(v);
  return v;
}

double half_to_double(std::uint16_t h) {
  const int exponent = (h >> 10) & 0x1F;
  const int mantissa = h & 0x3FF;
  double v = 0;
  if (exponent == 0) {
    v = std::ldexp(mantissa, -24);
  } else if (exponent == 31) {
    v = mantissa == 0 ? std::numeric_limits<double>::infinity() : std::numeric_limits<double>::quiet_NaN();
  } else {
    v = std::ldexp(mantissa + 1024, exponent - 25);
  }
  return (h & 0x8000) != 0 ? -v : v;
}

std::uint16_t double_to_half(double d) {
  // Round to nearest even via float, then narrow; enough for encoding the rare 16-bit floats.
  const float f = static_cast<float>(d);
  const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
  const std::uint16_t sign = static_cast<std::uint16_t>((x >> 16) & 0x8000);
  const int exponent = static_cast<int>((x >> 23) & 0xFF) - 127 + 15;
  std::uint32_t mantissa = x & 0x7FFFFF;
  if (std::isnan(f)) return static_cast<std::uint16_t>(sign | 0x7E00);
  if (exponent >= 31) return static_cast<std::uint16_t>(sign | 0x7C00);
  if (exponent <= 0) {
    if (exponent < -10) return sign;
    mantissa |= 0x800000;
    const int drop = 14 - exponent;
    std::uint32_t half = mantissa >> drop;
    const std::uint32_t rest = mantissa & ((1u << drop) - 1);
    const std::uint32_t halfway = 1u << (drop - 1);
    if (rest > halfway || (rest == halfway && (half & 1u) != 0)) ++half;
    return static_cast<std::uint16_t>(sign | half);
  }
  std::uint32_t half = (static_cast<std::uint32_t>(exponent) << 10) | (mantissa >> 13);
  const std::uint32_t rest = mantissa & 0x1FFF;
  if (rest > 0x1000 || (rest == 0x1000 && (half & 1u) != 0)) ++half;  // may carry into exponent
  return static_cast<std::uint16_t>(sign | half);
}

// The signal's raw value from its left-aligned bits, as the uint64 decode_raw returns.
inline std::uint64_t raw_of(const Extract& e, std::uint64_t bits) {
  switch (e.kind) {
    case Kind::signed_int:
      return static_cast<std::uint64_t>(static_cast<std::int64_t>(bits) >> e.left);
    case Kind::zero:
      return 0;
    default:
      return bits >> e.left;
  }
}

// The signal's number before scaling (integer or IEEE value) as a double.
inline double number_of(const Extract& e, std::uint64_t bits) {
  switch (e.kind) {
    case Kind::signed_int:
      return static_cast<double>(static_cast<std::int64_t>(bits) >> e.left);
    case Kind::unsigned_int:
      return static_cast<double>(static_cast<std::int64_t>(bits >> e.left));
    case Kind::unsigned_64:
      return static_cast<double>(bits);
    case Kind::float16:
      return half_to_double(static_cast<std::uint16_t>(bits >> 48));
    case Kind::float32:
      return static_cast<double>(std::bit_cast<float>(static_cast<std::uint32_t>(bits >> 32)));
    case Kind::float64:
      return std::bit_cast<double>(bits);
    case Kind::zero:
      return 0;
  }
  return 0;
}

inline double physical_of(const Extract& e, std::uint64_t bits) {
  const double product = number_of(e, bits) * e.scale;  // two roundings, as the reference
  return product + e.offset;
}

// physical_of without a branch per kind for the common integer signals: the sign extension is
// (x ^ sign) - sign, with sign = 0 for unsigned signals.
inline double physical_fast(const Extract& e, std::uint64_t bits) {
  if (e.kind > Kind::unsigned_int) [[unlikely]] {
    return physical_of(e, bits);
  }
  const std::uint64_t x = bits >> e.left;
  const double product = static_cast<double>(static_cast<std::int64_t>((x ^ e.sign) - e.sign)) * e.scale;
  return product + e.offset;
}

std::string int128_to_string(Int128 v) {
  if (v == 0) return "0";
  const bool negative = v < 0;
  UInt128 u = negative ? static_cast<UInt128>(0) - static_cast<UInt128>(v) : static_cast<UInt128>(v);
  std::string digits;
  while (u != 0) {
    digits.push_back(static_cast<char>('0' + static_cast<int>(u % 10)));
    u /= 10;
  }
  if (negative) digits.push_back('-');
  std::reverse(digits.begin(), digits.end());
  return digits;
}

// Integral doubles whose products with 64-bit raw values stay within 128 bits.
std::optional<Int128> exact_integer(double v, double limit) {
  if (!std::isfinite(v) || v != std::trunc(v) || std::fabs(v) >= limit) return std::nullopt;
  return static_cast<Int128>(v);
}

}  // namespace

struct MessageCodec::Plan {
  std::uint32_t length = 0;      // message length, bytes
  std::uint32_t copy_bytes = 0;  // bytes of the payload read (length, at most 64)
  std::uint32_t signal_count = 0;
  std::uint32_t mask_words = 0;
  bool small = false;              // every reachable signal lies within the first 8 bytes' word
  bool flat = false;               // small, no multiplexers, at most 64 signals: the common case
  bool flat_integer = false;       // flat, and every signal is an integer of at most 63 bits or signed
  std::uint32_t flat_little = 0;   // flat: steps[0, flat_little) are little endian, the rest big endian
  std::uint64_t small_mask = 0;    // bytes of the small word that belong to the message
  std::vector<Extract> steps;      // grouped by node
  std::vector<Extract> by_signal;  // one per signal, for multiplexer values and exact decoding
  std::vector<Exact> exact;        // one per signal
  std::vector<Branch> nodes;       // node 0 = unmultiplexed signals
  std::vector<std::uint64_t> node_masks;  // mask_words per node: the presence bits it sets
  std::vector<MuxRef> muxes;
  std::vector<Interval> intervals;

  struct Failure {
    std::uint32_t mux = 0;
    Int128 value = 0;
    bool value_valid = true;  // false: the multiplexer's value is not a finite number
  };

  // Runs the plan: `emit(extract, bits)` for every active signal. Returns ok, or the failure.
  template <typename Emit>
  DecodeStatus run(std::span<const std::uint8_t> payload, PresenceMask& present, Emit&& emit,
                   Failure* failure) const;

 private:
  template <typename Bits, typename Emit>
  DecodeStatus run_node(std::uint32_t node, const Bits& bits, std::uint64_t* words, Emit& emit,
                        Failure* failure) const;
  template <typename Bits>
  std::optional<Int128> mux_value(std::uint32_t signal, const Bits& bits) const;
};

namespace {

struct SmallBits {  // payload of at most 8 bytes as one word, in both byte orders
  std::uint64_t le = 0;
  std::uint64_t be = 0;
  std::uint64_t operator()(const Extract& e) const { return ((e.big_endian ? be : le) >> e.shift) << e.left; }
};

struct GeneralBits {
  alignas(8) std::uint8_t buffer[kBufferBytes] = {};
  std::uint64_t operator()(const Extract& e) const {
    const std::uint8_t* p = buffer + e.byte;
    UInt128 window = 0;
    if (e.big_endian) {
      window = (static_cast<UInt128>(load_be64(p)) << 8) | p[8];
    } else {
      window = static_cast<UInt128>(load_le64(p)) | (static_cast<UInt128>(p[8]) << 64);
    }
    return static_cast<std::uint64_t>(window >> e.shift) << e.left;
  }
};

}  // namespace

template <typename Bits>
std::optional<Int128> MessageCodec::Plan::mux_value(std::uint32_t signal, const Bits& bits) const {
  const Extract& e = by_signal[signal];
  const std::uint64_t b = bits(e);
  const Exact& x = exact[signal];
  if (x.integer) {
    const std::uint64_t raw = raw_of(e, b);
    const Int128 r = e.kind == Kind::signed_int ? static_cast<Int128>(static_cast<std::int64_t>(raw))
                                                : static_cast<Int128>(raw);
    return r * x.scale + x.offset;
  }
  // The reference truncates the scaled value to an integer (quirk 2).
  const double v = std::trunc(physical_of(e, b));
  if (!std::isfinite(v) || std::fabs(v) >= 0x1p125) return std::nullopt;
  return static_cast<Int128>(v);
}

template <typename Bits, typename Emit>
DecodeStatus MessageCodec::Plan::run_node(std::uint32_t node_index, const Bits& bits, std::uint64_t* words,
                                          Emit& emit, Failure* failure) const {
  const Branch& node = nodes[node_index];
  const Extract* step = steps.data() + node.step_first;
  const Extract* const end = step + node.step_count;
  for (; step != end; ++step) emit(*step, bits(*step));
  const std::uint64_t* mask = node_masks.data() + std::size_t{node_index} * mask_words;
  for (std::uint32_t w = 0; w != mask_words; ++w) words[w] |= mask[w];
  for (std::uint32_t m = node.mux_first; m != node.mux_first + node.mux_count; ++m) {
    const MuxRef& mux = muxes[m];
    const std::optional<Int128> value = mux_value(mux.signal, bits);
    const Interval* first = intervals.data() + mux.interval_first;
    const Interval* last = first + mux.interval_count;
    const Interval* hit = nullptr;
    if (value) {
      // First interval whose high is >= value; it selects if its low is <= value.
      const Interval* it =
          std::lower_bound(first, last, *value, [](const Interval& i, Int128 v) { return i.high < v; });
      if (it != last && it->low <= *value) hit = it;
    }
    if (hit == nullptr) {
      if (failure != nullptr) {
        failure->mux = mux.signal;
        failure->value = value.value_or(0);
        failure->value_valid = value.has_value();
      }
      return DecodeStatus::invalid_multiplexer;
    }
    const DecodeStatus status = run_node(hit->node, bits, words, emit, failure);
    if (status != DecodeStatus::ok) return status;
  }
  return DecodeStatus::ok;
}

template <typename Emit>
DecodeStatus MessageCodec::Plan::run(std::span<const std::uint8_t> payload, PresenceMask& present,
                                     Emit&& emit, Failure* failure) const {
  std::uint64_t* words = present.words();
  for (std::uint32_t w = 0; w != mask_words; ++w) words[w] = 0;
  if (payload.size() < length) return DecodeStatus::too_short;
  DecodeStatus status = DecodeStatus::ok;
  if (small) {
    SmallBits bits;
    if (payload.size() >= 8) {
      bits.le = load_le64(payload.data()) & small_mask;
    } else {
      for (std::uint32_t i = 0; i != copy_bytes; ++i) bits.le |= std::uint64_t{payload[i]} << (8 * i);
    }
    bits.be = __builtin_bswap64(bits.le);
    status = run_node(0, bits, words, emit, failure);
  } else {
    GeneralBits bits;
    std::memcpy(bits.buffer, payload.data(), copy_bytes);
    status = run_node(0, bits, words, emit, failure);
  }
  if (status != DecodeStatus::ok) {
    for (std::uint32_t w = 0; w != mask_words; ++w) words[w] = 0;  // no partial result
  }
  return status;
}

namespace {

// Builds the plan of one message. Multiplexing mirrors the reference's codec tree: a node holds
// the signals whose multiplexer is the node's parent multiplexer with one of the node's values;
// the root holds the signals without a multiplexer.
class PlanBuilder {
 public:
  explicit PlanBuilder(const Message& message) : message_(message) {}

  std::shared_ptr<const MessageCodec::Plan> build() {
    auto plan = std::make_shared<MessageCodec::Plan>();
    plan_ = plan.get();
    const auto& signals = message_.signals;
    plan_->length = message_.length;
    plan_->copy_bytes = static_cast<std::uint32_t>(std::min<std::size_t>(message_.length, kMaxPayloadBytes));
    plan_->signal_count = static_cast<std::uint32_t>(signals.size());
    plan_->mask_words = static_cast<std::uint32_t>((signals.size() + 63) / 64);
    plan_->small = message_.length <= 8;
    plan_->small_mask =
        message_.length >= 8 ? ~std::uint64_t{0} : (std::uint64_t{1} << (8 * message_.length)) - 1;
    for (std::uint32_t i = 0; i != signals.size(); ++i) {
      if (!fits_small_word(signals[i])) plan_->small = false;
      plan_->exact.push_back(exact_of(signals[i]));
    }
    for (std::uint32_t i = 0; i != signals.size(); ++i) plan_->by_signal.push_back(extract_of(i));

    std::vector<std::uint32_t> root;
    for (std::uint32_t i = 0; i != signals.size(); ++i) {
      if (!signals[i].is_multiplexed()) root.push_back(i);
    }
    plan_->nodes.emplace_back();
    pending_.push_back({0, root});
    // Nodes are filled breadth-first; each node's multiplexers may add further nodes.
    for (std::size_t n = 0; n != pending_.size(); ++n) {
      const auto [node_index, members] = pending_[n];
      Branch& node = plan_->nodes[node_index];
      node.step_first = static_cast<std::uint32_t>(plan_->steps.size());
      node.step_count = static_cast<std::uint32_t>(members.size());
      for (const std::uint32_t i : members) plan_->steps.push_back(plan_->by_signal[i]);
      std::vector<MuxRef> refs;
      for (const std::uint32_t i : members) {
        if (auto ref = mux_ref(i)) refs.push_back(*ref);
      }
      Branch& same = plan_->nodes[node_index];  // mux_ref may have grown `nodes`
      same.mux_first = static_cast<std::uint32_t>(plan_->muxes.size());
      same.mux_count = static_cast<std::uint32_t>(refs.size());
      plan_->muxes.insert(plan_->muxes.end(), refs.begin(), refs.end());
    }
    plan_->flat = plan_->small && plan_->nodes.size() == 1 && plan_->muxes.empty() && plan_->mask_words <= 1;
    plan_->flat_integer =
        plan_->flat && std::all_of(plan_->steps.begin(), plan_->steps.end(), [](const Extract& e) {
          return e.kind == Kind::signed_int || e.kind == Kind::unsigned_int;
        });
    if (plan_->flat) {
      // Byte order grouped, so the flat path needs no per-signal choice of word.
      const auto big = std::stable_partition(plan_->steps.begin(), plan_->steps.end(),
                                             [](const Extract& e) { return !e.big_endian; });
      plan_->flat_little = static_cast<std::uint32_t>(big - plan_->steps.begin());
    }
    plan_->node_masks.assign(plan_->nodes.size() * plan_->mask_words, 0);
    for (std::size_t n = 0; n != plan_->nodes.size(); ++n) {
      const Branch& node = plan_->nodes[n];
      for (std::uint32_t k = node.step_first; k != node.step_first + node.step_count; ++k) {
        const std::uint32_t i = plan_->steps[k].index;
        plan_->node_masks[n * plan_->mask_words + i / 64] |= std::uint64_t{1} << (i % 64);
      }
    }
    return plan;
  }

 private:
  static bool fits_small_word(const Signal& s) {
    if (s.length == 0 || s.length > 64) return true;  // decodes as constant zero
    if (s.byte_order == ByteOrder::little_endian) return s.start_bit + s.length <= 64;
    const std::uint64_t msb = 8 * (s.start_bit / 8) + 7 - s.start_bit % 8;
    return msb + s.length - 1 <= 63;
  }

  static Kind kind_of(const Signal& s) {
    if (s.length == 0 || s.length > 64) return Kind::zero;
    if (s.value_type != ValueType::integer) {
      // The reference reads IEEE values of the signal's own width.
      if (s.length == 16) return Kind::float16;
      if (s.length == 32) return Kind::float32;
      if (s.length == 64) return Kind::float64;
    }
    if (s.is_signed) return Kind::signed_int;
    return s.length == 64 ? Kind::unsigned_64 : Kind::unsigned_int;
  }

  static Exact exact_of(const Signal& s) {
    Exact x;
    if (s.value_type != ValueType::integer) return x;
    // Below 2^62 each, raw*scale+offset (raw below 2^64) stays inside a signed 128-bit integer;
    // larger integral factors (none in real files) fall back to doubles.
    const auto scale = exact_integer(s.scale, 0x1p62);
    const auto offset = exact_integer(s.offset, 0x1p62);
    if (!scale || !offset) return x;
    x.integer = true;
    x.scale = *scale;
    x.offset = *offset;
    return x;
  }

  Extract extract_of(std::uint32_t index) const {
    const Signal& s = message_.signals[index];
    Extract e;
    e.index = index;
    e.scale = s.scale;
    e.offset = s.offset;
    e.kind = kind_of(s);
    e.big_endian = s.byte_order == ByteOrder::big_endian;
    if (e.kind == Kind::zero) return e;
    e.left = static_cast<std::uint8_t>(64 - s.length);
    if (e.kind == Kind::signed_int) e.sign = std::uint64_t{1} << (s.length - 1);
    e.mask = ~std::uint64_t{0} >> e.left;
    const std::uint64_t start = s.start_bit;
    if (plan_->small) {
      // The big-endian word has payload position p (0 = MSB of byte 0) at bit 63 - p.
      if (e.big_endian) {
        const std::uint64_t lsb = 8 * (start / 8) + 7 - start % 8 + s.length - 1;
        e.shift = static_cast<std::uint8_t>(63 - lsb);
      } else {
        e.shift = static_cast<std::uint8_t>(start);
      }
      return e;
    }
    if (e.big_endian) {
      const std::uint64_t msb = 8 * (start / 8) + 7 - start % 8;
      const std::uint64_t byte = msb / 8;
      if (byte > kMaxWindowStart) return Extract{s.scale, s.offset, 0, 0, index, 0, 0, 0, false, Kind::zero};
      // The window holds positions 8*byte .. 8*byte+71; bit 0 of the window is position 8*byte+71.
      const std::uint64_t lsb = msb + s.length - 1 - 8 * byte;
      e.byte = static_cast<std::uint16_t>(byte);
      e.shift = static_cast<std::uint8_t>(71 - lsb);
    } else {
      const std::uint64_t byte = start / 8;
      if (byte > kMaxWindowStart) return Extract{s.scale, s.offset, 0, 0, index, 0, 0, 0, false, Kind::zero};
      e.byte = static_cast<std::uint16_t>(byte);
      e.shift = static_cast<std::uint8_t>(start % 8);
    }
    return e;
  }

  // The selection table of signal `i` if it is a multiplexer with valid values: the union of its
  // children's multiplexer values and its own value-table keys (quirk 2). A multiplexer without
  // either selects nothing and is not checked, as in the reference.
  std::optional<MuxRef> mux_ref(std::uint32_t mux) {
    const auto& signals = message_.signals;
    const Signal& m = signals[mux];
    if (!m.is_multiplexer) return std::nullopt;
    struct Span {
      Int128 low, high;
      std::int64_t child;  // -1: a value-table key
    };
    std::vector<Span> spans;
    for (std::uint32_t c = 0; c != signals.size(); ++c) {
      const Signal& s = signals[c];
      if (c == mux || s.multiplexer != m.name) continue;
      if (!s.multiplex_ranges.empty()) {
        for (const auto& r : s.multiplex_ranges) {
          if (r.low <= r.high) spans.push_back({static_cast<Int128>(r.low), static_cast<Int128>(r.high), c});
        }
      } else if (s.multiplex_value) {
        spans.push_back(
            {static_cast<Int128>(*s.multiplex_value), static_cast<Int128>(*s.multiplex_value), c});
      }
    }
    for (const auto& v : m.value_descriptions) spans.push_back({v.value, v.value, -1});
    if (spans.empty()) return std::nullopt;

    // Elementary intervals between all span boundaries, each with the children covering it.
    std::vector<Int128> bounds;
    for (const auto& s : spans) {
      bounds.push_back(s.low);
      bounds.push_back(s.high + 1);
    }
    std::sort(bounds.begin(), bounds.end());
    bounds.erase(std::unique(bounds.begin(), bounds.end()), bounds.end());
    MuxRef ref;
    ref.signal = mux;
    ref.interval_first = static_cast<std::uint32_t>(plan_->intervals.size());
    std::vector<std::uint32_t> previous_children;
    bool previous_valid = false;
    for (std::size_t b = 0; b + 1 < bounds.size(); ++b) {
      const Int128 low = bounds[b];
      const Int128 high = bounds[b + 1] - 1;
      bool valid = false;
      std::vector<std::uint32_t> children;
      for (const auto& s : spans) {
        if (s.low > low || s.high < high) continue;
        valid = true;
        if (s.child >= 0) children.push_back(static_cast<std::uint32_t>(s.child));
      }
      std::sort(children.begin(), children.end());
      children.erase(std::unique(children.begin(), children.end()), children.end());
      if (!valid) {
        previous_valid = false;
        continue;
      }
      if (previous_valid && children == previous_children) {
        plan_->intervals.back().high = high;  // same selection: extend the interval
        continue;
      }
      plan_->intervals.push_back({low, high, node_for(children)});
      previous_children = std::move(children);
      previous_valid = true;
    }
    ref.interval_count = static_cast<std::uint32_t>(plan_->intervals.size()) - ref.interval_first;
    return ref;
  }

  std::uint32_t node_for(const std::vector<std::uint32_t>& children) {
    if (auto it = node_of_children_.find(children); it != node_of_children_.end()) return it->second;
    const auto index = static_cast<std::uint32_t>(plan_->nodes.size());
    plan_->nodes.emplace_back();
    node_of_children_.emplace(children, index);
    pending_.push_back({index, children});
    return index;
  }

  const Message& message_;
  MessageCodec::Plan* plan_ = nullptr;
  std::vector<std::pair<std::uint32_t, std::vector<std::uint32_t>>> pending_;
  std::map<std::vector<std::uint32_t>, std::uint32_t> node_of_children_;
};

}  // namespace

std::size_t MessageCodec::signal_count() const { return message_->signals.size(); }

namespace {

// Everything but the flat integer case, out of line so the hot path keeps a small stack frame.
[[gnu::noinline]] DecodeStatus decode_general(const MessageCodec::Plan& plan,
                                              std::span<const std::uint8_t> payload, double* out,
                                              PresenceMask& present) {
  return plan.run(
      payload, present,
      [out](const Extract& e, std::uint64_t bits) { out[e.index] = physical_fast(e, bits); }, nullptr);
}

}  // namespace

DecodeStatus MessageCodec::decode(std::span<const std::uint8_t> payload, double* out,
                                  PresenceMask& present) const {
  const Plan& plan = *plan_;
  if (plan.flat_integer && payload.size() >= 8) [[likely]] {
    // The rig's case (classic frames, integer signals, no multiplexing) without the general
    // machinery: one 64-bit word per frame, then per signal shift, sign-extend, scale.
    const std::uint64_t le = load_le64(payload.data()) & plan.small_mask;
    const Extract* e = plan.steps.data();
    const Extract* const little_end = e + plan.flat_little;
    const Extract* const end = e + plan.steps.size();
    for (; e != little_end; ++e) {
      const std::uint64_t x = (le >> e->shift) & e->mask;
      const double product =
          static_cast<double>(static_cast<std::int64_t>((x ^ e->sign) - e->sign)) * e->scale;
      out[e->index] = product + e->offset;
    }
    if (e != end) {
      const std::uint64_t be = __builtin_bswap64(le);
      for (; e != end; ++e) {
        const std::uint64_t x = (be >> e->shift) & e->mask;
        const double product =
            static_cast<double>(static_cast<std::int64_t>((x ^ e->sign) - e->sign)) * e->scale;
        out[e->index] = product + e->offset;
      }
    }
    if (plan.mask_words != 0) present.words()[0] = plan.node_masks[0];
    return DecodeStatus::ok;
  }
  return decode_general(plan, payload, out, present);
}

DecodeStatus MessageCodec::decode_exact(std::span<const std::uint8_t> payload, PhysicalValue* out,
                                        PresenceMask& present) const {
  const Plan& plan = *plan_;
  if (plan.flat_integer && payload.size() >= 8) {
    // As in decode(): one word per frame; integers exact in 128 bits, the rest as doubles.
    const std::uint64_t le = load_le64(payload.data()) & plan.small_mask;
    const std::uint64_t be = __builtin_bswap64(le);
    for (const Extract& e : plan.steps) {
      const std::uint64_t x = ((e.big_endian ? be : le) >> e.shift) & e.mask;
      const auto raw = static_cast<std::int64_t>((x ^ e.sign) - e.sign);
      PhysicalValue& v = out[e.index];
      const Exact& exact = plan.exact[e.index];
      v.is_integer = exact.integer;
      if (exact.integer) {
        v.integer = static_cast<Int128>(raw) * exact.scale + exact.offset;
        v.real = 0;
      } else {
        const double product = static_cast<double>(raw) * e.scale;
        v.integer = 0;
        v.real = product + e.offset;
      }
    }
    if (plan.mask_words != 0) present.words()[0] = plan.node_masks[0];
    return DecodeStatus::ok;
  }
  return plan.run(
      payload, present,
      [out, &plan](const Extract& e, std::uint64_t bits) {
        PhysicalValue& v = out[e.index];
        const Exact& x = plan.exact[e.index];
        v.is_integer = x.integer;
        if (x.integer) {
          const std::uint64_t raw = raw_of(e, bits);
          const Int128 r = e.kind == Kind::signed_int ? static_cast<Int128>(static_cast<std::int64_t>(raw))
                                                      : static_cast<Int128>(raw);
          v.integer = r * x.scale + x.offset;
          v.real = 0;
        } else {
          v.integer = 0;
          v.real = physical_of(e, bits);
        }
      },
      nullptr);
}

DecodeStatus MessageCodec::decode_raw(std::span<const std::uint8_t> payload, std::uint64_t* raw,
                                      PresenceMask& present) const {
  return plan_->run(
      payload, present, [raw](const Extract& e, std::uint64_t bits) { raw[e.index] = raw_of(e, bits); },
      nullptr);
}

namespace {

// Writes the low `length` bits of `value` at the signal's position, bit by bit: encoding is not a
// hot path, and this is the plain reading of the DBC bit numbering. Bits beyond `payload_bytes`
// are not written (their signal lies partly outside the message).
void write_bits(const Signal& s, std::uint64_t value, std::span<std::uint8_t> payload,
                std::size_t payload_bytes) {
  const std::uint64_t start = s.start_bit;
  const std::uint64_t msb = 8 * (start / 8) + 7 - start % 8;
  for (std::uint32_t i = 0; i != s.length; ++i) {
    std::uint64_t byte = 0;
    std::uint32_t bit = 0;  // within the byte, 0 = LSB
    if (s.byte_order == ByteOrder::little_endian) {
      byte = (start + i) / 8;
      bit = static_cast<std::uint32_t>((start + i) % 8);
    } else {
      const std::uint64_t position = msb + s.length - 1 - i;  // i counts from the LSB
      byte = position / 8;
      bit = static_cast<std::uint32_t>(7 - position % 8);
    }
    if (byte >= payload_bytes) continue;
    const auto mask = static_cast<std::uint8_t>(1u << bit);
    if (((value >> i) & 1u) != 0) {
      payload[byte] = static_cast<std::uint8_t>(payload[byte] | mask);
    } else {
      payload[byte] = static_cast<std::uint8_t>(payload[byte] & ~mask);
    }
  }
}

bool valid_length(const Signal& s) { return s.length >= 1 && s.length <= 64; }

}  // namespace

Result<void> MessageCodec::encode_raw(const std::uint64_t* raw, const PresenceMask& present,
                                      std::span<std::uint8_t> payload) const {
  const Message& m = *message_;
  if (payload.size() < m.length) {
    return Error(ErrorCode::invalid_argument, "payload has " + std::to_string(payload.size()) + " bytes, " +
                                                  m.name + " needs " + std::to_string(m.length));
  }
  const std::size_t bytes = std::min<std::size_t>(m.length, kMaxPayloadBytes);
  for (std::size_t i = 0; i != m.signals.size(); ++i) {
    if (!present.test(i) || !valid_length(m.signals[i])) continue;
    write_bits(m.signals[i], raw[i], payload, bytes);
  }
  return success();
}

Result<void> MessageCodec::encode(const double* physical, const PresenceMask& present,
                                  std::span<std::uint8_t> payload) const {
  const Message& m = *message_;
  std::vector<std::uint64_t> raw(m.signals.size(), 0);
  for (std::size_t i = 0; i != m.signals.size(); ++i) {
    if (!present.test(i)) continue;
    const Signal& s = m.signals[i];
    const Extract& e = plan_->by_signal[i];
    const double unscaled = (physical[i] - s.offset) / s.scale;
    switch (e.kind) {
      case Kind::float16:
        raw[i] = double_to_half(unscaled);
        continue;
      case Kind::float32:
        raw[i] = std::bit_cast<std::uint32_t>(static_cast<float>(unscaled));
        continue;
      case Kind::float64:
        raw[i] = std::bit_cast<std::uint64_t>(unscaled);
        continue;
      case Kind::zero:
        continue;
      default:
        break;
    }
    if (std::isnan(unscaled)) {
      return Error(ErrorCode::invalid_argument, m.name + "." + s.name + ": value is not a number");
    }
    // Round half to even (the reference uses Python's round), then clamp to the bit range.
    const double rounded = std::nearbyint(unscaled);
    if (s.is_signed) {
      const double low = -std::ldexp(1.0, static_cast<int>(s.length) - 1);
      const double high_exclusive = std::ldexp(1.0, static_cast<int>(s.length) - 1);
      std::int64_t v = 0;
      if (rounded <= low) {
        v = s.length == 64 ? std::numeric_limits<std::int64_t>::min() : -(std::int64_t{1} << (s.length - 1));
      } else if (rounded >= high_exclusive) {
        v = s.length == 64 ? std::numeric_limits<std::int64_t>::max()
                           : (std::int64_t{1} << (s.length - 1)) - 1;
      } else {
        v = static_cast<std::int64_t>(rounded);
      }
      raw[i] = static_cast<std::uint64_t>(v);
    } else {
      const double high_exclusive = std::ldexp(1.0, static_cast<int>(s.length));
      const std::uint64_t max = s.length == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << s.length) - 1;
      if (rounded <= 0) {
        raw[i] = 0;
      } else if (rounded >= high_exclusive) {
        raw[i] = max;
      } else {
        raw[i] = static_cast<std::uint64_t>(rounded);
      }
    }
  }
  return encode_raw(raw.data(), present, payload);
}

std::string_view MessageCodec::choice(std::size_t signal_index, std::int64_t raw) const {
  if (signal_index >= message_->signals.size()) return {};
  const auto& values = message_->signals[signal_index].value_descriptions;
  // A later VAL_ entry for the same value wins, as in the reference's dictionary.
  for (auto it = values.rbegin(); it != values.rend(); ++it) {
    if (it->value == raw) return it->text;
  }
  return {};
}

std::string MessageCodec::describe(DecodeStatus status, std::span<const std::uint8_t> payload) const {
  const Message& m = *message_;
  switch (status) {
    case DecodeStatus::ok:
      return m.name + " decoded";
    case DecodeStatus::too_short:
      return "payload has " + std::to_string(payload.size()) + " bytes, " + m.name + " needs " +
             std::to_string(m.length);
    case DecodeStatus::invalid_multiplexer:
      break;
  }
  PresenceMask present(m.signals.size());
  Plan::Failure failure;
  const DecodeStatus again = plan_->run(
      payload, present, [](const Extract&, std::uint64_t) {}, &failure);
  if (again != DecodeStatus::invalid_multiplexer) return m.name + ": invalid multiplexer value";
  const std::string& mux_name = m.signals[failure.mux].name;
  std::string text = m.name + ": multiplexer " + mux_name + " holds ";
  text += failure.value_valid ? int128_to_string(failure.value) : std::string("no finite value");
  text += ", which selects no signals (valid: ";
  // The selection table of this multiplexer lists the valid values.
  std::size_t shown = 0;
  for (const auto& mux : plan_->muxes) {
    if (mux.signal != failure.mux) continue;
    for (std::uint32_t i = 0; i != mux.interval_count; ++i) {
      const Interval& interval = plan_->intervals[mux.interval_first + i];
      if (shown == 8) {
        text += ", ...";
        break;
      }
      if (shown++ != 0) text += ", ";
      text += int128_to_string(interval.low);
      if (interval.high != interval.low) {
        text += '-';
        text += int128_to_string(interval.high);
      }
    }
    break;
  }
  return text + ")";
}

// Lookup by frame id: a direct table for standard ids (the common case on the rig), an
// open-addressing hash for the rest; both keep the last message defined with an id.
struct DatabaseCodec::Index {
  static constexpr std::uint32_t kStandardIds = 2048;
  static constexpr std::uint64_t kEmpty = ~std::uint64_t{0};
  // Codec pointers, not indices: one dependent load less per frame on the hot path.
  std::vector<const MessageCodec*> standard = std::vector<const MessageCodec*>(kStandardIds, nullptr);
  std::vector<std::pair<std::uint64_t, std::int32_t>> slots;  // (key, message index), power-of-two size
  struct NameHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view name) const { return std::hash<std::string_view>{}(name); }
  };
  std::unordered_map<std::string, std::size_t, NameHash, std::equal_to<>> by_name;

  static std::uint64_t key(std::uint32_t id, bool extended) { return (std::uint64_t{extended} << 32) | id; }
  static std::size_t hash(std::uint64_t k) {
    return static_cast<std::size_t>((k * 0x9E3779B97F4A7C15ull) >> 32);
  }

  std::int32_t find_extended(std::uint32_t id, bool extended) const {
    const std::uint64_t k = key(id, extended);
    const std::size_t mask = slots.size() - 1;
    for (std::size_t i = hash(k) & mask;; i = (i + 1) & mask) {
      if (slots[i].first == k) return slots[i].second;
      if (slots[i].first == kEmpty) return -1;
    }
  }

  void insert(std::uint32_t id, bool extended, std::int32_t index) {
    const std::uint64_t k = key(id, extended);
    const std::size_t mask = slots.size() - 1;
    for (std::size_t i = hash(k) & mask;; i = (i + 1) & mask) {
      if (slots[i].first == k || slots[i].first == kEmpty) {
        slots[i] = {k, index};
        return;
      }
    }
  }
};

DatabaseCodec::DatabaseCodec(Database db) : db_(std::move(db)) {
  auto index = std::make_shared<Index>();
  std::size_t capacity = 16;
  while (capacity < 2 * db_.messages.size() + 1) capacity *= 2;
  index->slots.assign(capacity, {Index::kEmpty, -1});
  codecs_.reserve(db_.messages.size());
  for (std::size_t i = 0; i != db_.messages.size(); ++i) {
    const Message& m = db_.messages[i];
    codecs_.emplace_back(m, PlanBuilder(m).build());
    index->by_name[m.name] = i;  // later definitions win
    if (is_independent_signals_message(m)) continue;
    if (!m.extended && m.id < Index::kStandardIds) {
      index->standard[m.id] = &codecs_.back();  // codecs_ was reserved: the pointer stays valid
    } else {
      index->insert(m.id, m.extended, static_cast<std::int32_t>(i));
    }
  }
  index_ = std::move(index);
}

const MessageCodec* DatabaseCodec::find(std::uint32_t id, bool extended) const {
  if (!extended && id < Index::kStandardIds) return index_->standard[id];
  const std::int32_t i = index_->find_extended(id, extended);
  return i < 0 ? nullptr : &codecs_[static_cast<std::size_t>(i)];
}

const MessageCodec* DatabaseCodec::find(std::string_view message_name) const {
  const auto it = index_->by_name.find(message_name);
  return it == index_->by_name.end() ? nullptr : &codecs_[it->second];
}

}  // namespace cellguard::dbc
