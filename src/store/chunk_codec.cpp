// Column codec. Layout of one chunk (varint = LEB128 unsigned, at most 10 bytes; zz = zigzag):
//
//   u8 version (1) | varint rows | varint columns
//   varint times_bytes | times: zz t0, zz (t1 - t0), then zz delta-of-delta per row (wrapping int64)
//   per column: u8 kind (low 7 bits) + 0x80 if a presence bitmap follows | varint payload_bytes | payload
//     payload = [bitmap: (rows + 7) / 8 bytes, bit r set = row r has a value] then by kind:
//       0 absent:    nothing (no row has a value)
//       1 gorilla:   Facebook Gorilla XOR bit stream of the present values (first value 64 bits; then
//                    '0' = same as previous, '10' + bits in the previous window, '11' + 5 bits leading
//                    zeros + 6 bits length (0 = 64) + bits)
//       2 quantized: u8 mode (1 = k * q, 2 = k / q) | f64 q | varint k_bytes | k stream: zz(k - k_prev)
//                    per present value | residual stream: zz(ord(v) - ord(canonical(k))) per value,
//                    where ord maps a double's bits to an integer monotone in the value (a bijection,
//                    so any bit pattern round-trips; residuals are 0 or a few ulps for DBC values).
//
// Series list (a committed batch before zstd):
//   u8 version (1) | varint series | per series: varint columns, varint channel id per column, chunk
#include "store/chunk_codec.h"

#include <zstd.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

namespace cellguard::store::detail {
namespace {

constexpr std::uint8_t kChunkVersion = 1;
constexpr std::uint8_t kListVersion = 1;
enum Kind : std::uint8_t { kAbsent = 0, kGorilla = 1, kQuantized = 2 };
constexpr std::uint8_t kHasBitmap = 0x80;

std::uint64_t zigzag(std::int64_t v) {
  return (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63);
}
std::int64_t unzigzag(std::uint64_t v) { return static_cast<std::int64_t>((v >> 1) ^ (~(v & 1) + 1)); }

void put_varint(std::vector<std::uint8_t>& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<std::uint8_t>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<std::uint8_t>(v));
}

void put_u64(std::vector<std::uint8_t>& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

// Bounded reader over stored bytes.
class Reader {
 public:
  explicit Reader(std::span<const std::uint8_t> in) : in_(in) {}
  std::size_t pos() const { return pos_; }
  std::size_t left() const { return in_.size() - pos_; }
  bool u8(std::uint8_t& v) {
    if (pos_ >= in_.size()) return false;
    v = in_[pos_++];
    return true;
  }
  bool u64(std::uint64_t& v) {
    if (left() < 8) return false;
    v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<std::uint64_t>(in_[pos_ + i]) << (8 * i);
    pos_ += 8;
    return true;
  }
  bool varint(std::uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
      if (pos_ >= in_.size()) return false;
      const std::uint8_t b = in_[pos_++];
      if (shift == 63 && b > 1) return false;  // more than 64 bits
      v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return true;
    }
    return false;
  }
  bool bytes(std::size_t n, std::span<const std::uint8_t>& out) {
    if (n > left()) return false;
    out = in_.subspan(pos_, n);
    pos_ += n;
    return true;
  }

 private:
  std::span<const std::uint8_t> in_;
  std::size_t pos_ = 0;
};

class BitWriter {
 public:
  explicit BitWriter(std::vector<std::uint8_t>& out) : out_(out) {}
  void put(std::uint64_t value, int bits) {  // bits in 1..64, value's low `bits` bits, MSB first
    for (int i = bits - 1; i >= 0; --i) {
      acc_ = static_cast<std::uint8_t>((acc_ << 1) | ((value >> i) & 1));
      if (++n_ == 8) {
        out_.push_back(acc_);
        acc_ = 0;
        n_ = 0;
      }
    }
  }
  void finish() {
    if (n_) out_.push_back(static_cast<std::uint8_t>(acc_ << (8 - n_)));
    acc_ = 0;
    n_ = 0;
  }

 private:
  std::vector<std::uint8_t>& out_;
  std::uint8_t acc_ = 0;
  int n_ = 0;
};

class BitReader {
 public:
  explicit BitReader(std::span<const std::uint8_t> in) : in_(in) {}
  bool get(int bits, std::uint64_t& v) {
    if (static_cast<std::size_t>(bits) > in_.size() * 8 - pos_) return false;
    v = 0;
    for (int i = 0; i < bits; ++i, ++pos_) v = (v << 1) | ((in_[pos_ >> 3] >> (7 - (pos_ & 7))) & 1);
    return true;
  }

 private:
  std::span<const std::uint8_t> in_;
  std::size_t pos_ = 0;
};

void gorilla_encode(std::span<const double> values, std::vector<std::uint8_t>& out) {
  BitWriter w(out);
  std::uint64_t prev = 0;
  int lead = -1, trail = 0;  // the previous window; lead < 0 = none yet
  for (std::size_t i = 0; i < values.size(); ++i) {
    const std::uint64_t bits = std::bit_cast<std::uint64_t>(values[i]);
    if (i == 0) {
      w.put(bits, 64);
      prev = bits;
      continue;
    }
    const std::uint64_t x = bits ^ prev;
    prev = bits;
    if (x == 0) {
      w.put(0, 1);
      continue;
    }
    int l = std::countl_zero(x), t = std::countr_zero(x);
    if (l > 31) l = 31;
    if (lead >= 0 && l >= lead && t >= trail) {
      w.put(0b10, 2);
      w.put(x >> trail, 64 - lead - trail);
    } else {
      const int len = 64 - l - t;
      w.put(0b11, 2);
      w.put(static_cast<std::uint64_t>(l), 5);
      w.put(static_cast<std::uint64_t>(len & 63), 6);
      w.put(x >> t, len);
      lead = l;
      trail = t;
    }
  }
  w.finish();
}

bool gorilla_decode(std::span<const std::uint8_t> in, std::size_t n, double* out) {
  BitReader r(in);
  std::uint64_t prev = 0, v = 0;
  int lead = -1, trail = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (i == 0) {
      if (!r.get(64, prev)) return false;
    } else {
      if (!r.get(1, v)) return false;
      if (v) {
        if (!r.get(1, v)) return false;
        if (v == 0) {
          if (lead < 0) return false;
          if (!r.get(64 - lead - trail, v)) return false;
          prev ^= v << trail;
        } else {
          std::uint64_t l = 0, len = 0;
          if (!r.get(5, l) || !r.get(6, len)) return false;
          if (len == 0) len = 64;
          if (l + len > 64) return false;
          if (!r.get(static_cast<int>(len), v)) return false;
          lead = static_cast<int>(l);
          trail = static_cast<int>(64 - l - len);
          prev ^= trail == 64 ? 0 : v << trail;
        }
      }
    }
    out[i] = std::bit_cast<double>(prev);
  }
  return true;
}

// A double's bits as an integer monotone in its value (wrapping arithmetic on it is a bijection).
std::uint64_t ord(double d) {
  const std::uint64_t b = std::bit_cast<std::uint64_t>(d);
  return (b >> 63) ? ~b : (b | (1ull << 63));
}
double unord(std::uint64_t o) { return std::bit_cast<double>((o >> 63) ? (o & ~(1ull << 63)) : ~o); }

struct Quantum {
  std::uint8_t mode = 0;  // 1: k * q, 2: k / q
  double q = 0;
  double canonical(std::int64_t k) const {
    return mode == 1 ? static_cast<double>(k) * q : static_cast<double>(k) / q;
  }
  std::int64_t index(double v) const {
    const double x = mode == 1 ? v / q : v * q;
    if (!(std::fabs(x) < 4.0e18)) return 0;  // inf, NaN or huge: the residual carries it
    return std::llround(x);
  }
};

// The value grid of a column, when its values are multiples of a decimal step (1, 2, 5 x 10^e).
bool detect_quantum(std::span<const double> values, Quantum& quantum) {
  std::vector<double> sample;
  const std::size_t step = std::max<std::size_t>(1, values.size() / 256);
  for (std::size_t i = 0; i < values.size(); i += step)
    if (std::isfinite(values[i])) sample.push_back(values[i]);
  std::sort(sample.begin(), sample.end());
  sample.erase(std::unique(sample.begin(), sample.end()), sample.end());
  if (sample.size() < 2) return false;
  double d = std::numeric_limits<double>::infinity();
  for (std::size_t i = 1; i < sample.size(); ++i) d = std::min(d, sample[i] - sample[i - 1]);
  if (!(d > 1e-12) || !(d < 1e12)) return false;
  // d carries rounding error (0.00999999999999979 for a 0.01 grid): nudge before taking the decade.
  const int e = static_cast<int>(std::floor(std::log10(d * (1 + 1e-6))));
  for (int ee = e; ee >= e - 1; --ee) {
    for (double m : {5.0, 2.0, 1.0}) {
      const double s = m * std::pow(10.0, ee);
      if (s > d * (1 + 1e-6)) continue;
      bool fits = true;
      for (double v : sample) {
        const double x = v / s;
        if (std::fabs(x) > 1e15 || std::fabs(x - std::round(x)) > 1e-6) {
          fits = false;
          break;
        }
      }
      if (!fits) continue;
      // 1 / s integral (0.01 -> 100): divide, so decimal text values (3.67) have residual 0.
      const double inv = std::round(1.0 / s);
      if (s < 1 && std::fabs(inv * s - 1) < 1e-12)
        quantum = {2, inv};
      else
        quantum = {1, s};
      return true;
    }
  }
  return false;
}

void quantized_encode(std::span<const double> values, const Quantum& qu, std::vector<std::uint8_t>& out) {
  out.push_back(qu.mode);
  put_u64(out, std::bit_cast<std::uint64_t>(qu.q));
  std::vector<std::uint8_t> ks, rs;
  ks.reserve(values.size());
  rs.reserve(values.size());
  std::int64_t prev = 0;
  for (double v : values) {
    const std::int64_t k = qu.index(v);
    put_varint(ks, zigzag(static_cast<std::int64_t>(static_cast<std::uint64_t>(k) -
                                                    static_cast<std::uint64_t>(prev))));
    put_varint(rs, zigzag(static_cast<std::int64_t>(ord(v) - ord(qu.canonical(k)))));
    prev = k;
  }
  put_varint(out, ks.size());
  out.insert(out.end(), ks.begin(), ks.end());
  out.insert(out.end(), rs.begin(), rs.end());
}

bool quantized_decode(std::span<const std::uint8_t> in, std::size_t n, double* out) {
  Reader r(in);
  std::uint8_t mode = 0;
  std::uint64_t qbits = 0, kbytes = 0;
  if (!r.u8(mode) || (mode != 1 && mode != 2) || !r.u64(qbits) || !r.varint(kbytes)) return false;
  std::span<const std::uint8_t> kspan;
  if (!r.bytes(kbytes, kspan)) return false;
  std::span<const std::uint8_t> rspan;
  if (!r.bytes(r.left(), rspan)) return false;
  const Quantum qu{mode, std::bit_cast<double>(qbits)};
  Reader kr(kspan), rr(rspan);
  std::uint64_t k = 0, v = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (!kr.varint(v)) return false;
    k += static_cast<std::uint64_t>(unzigzag(v));
    if (!rr.varint(v)) return false;
    const double c = qu.canonical(static_cast<std::int64_t>(k));
    out[i] = unord(ord(c) + static_cast<std::uint64_t>(unzigzag(v)));
  }
  return kr.left() == 0 && rr.left() == 0;
}

Error corrupt(const std::string& what) { return Error(ErrorCode::parse_error, "stored chunk: " + what); }

}  // namespace

void encode_chunk(std::span<const TimeNs> times, std::size_t columns, std::span<const double> values,
                  std::vector<std::uint8_t>& out) {
  const std::size_t rows = times.size();
  out.push_back(kChunkVersion);
  put_varint(out, rows);
  put_varint(out, columns);
  std::vector<std::uint8_t> buf;
  std::uint64_t prev = 0, prev_delta = 0;
  for (std::size_t i = 0; i < rows; ++i) {
    const auto t = static_cast<std::uint64_t>(times[i]);
    if (i == 0) {
      put_varint(buf, zigzag(static_cast<std::int64_t>(t)));
    } else {
      const std::uint64_t delta = t - prev;
      put_varint(buf, zigzag(static_cast<std::int64_t>(i == 1 ? delta : delta - prev_delta)));
      prev_delta = delta;
    }
    prev = t;
  }
  put_varint(out, buf.size());
  out.insert(out.end(), buf.begin(), buf.end());

  std::vector<double> present;
  std::vector<std::uint8_t> bitmap, gorilla, quantized;
  present.reserve(rows);
  for (std::size_t c = 0; c < columns; ++c) {
    present.clear();
    bitmap.assign((rows + 7) / 8, 0);
    for (std::size_t r = 0; r < rows; ++r) {
      const double v = values[r * columns + c];
      if (std::isnan(v)) continue;
      bitmap[r >> 3] = static_cast<std::uint8_t>(bitmap[r >> 3] | (1u << (r & 7)));
      present.push_back(v);
    }
    const bool with_bitmap = present.size() != rows;
    if (present.empty()) {
      out.push_back(kAbsent);
      put_varint(out, 0);
      continue;
    }
    gorilla.clear();
    gorilla_encode(present, gorilla);
    const std::vector<std::uint8_t>* payload = &gorilla;
    std::uint8_t kind = kGorilla;
    Quantum qu;
    if (detect_quantum(present, qu)) {
      quantized.clear();
      quantized_encode(present, qu, quantized);
      if (quantized.size() < gorilla.size()) {
        payload = &quantized;
        kind = kQuantized;
      }
    }
    out.push_back(static_cast<std::uint8_t>(kind | (with_bitmap ? kHasBitmap : 0)));
    put_varint(out, (with_bitmap ? bitmap.size() : 0) + payload->size());
    if (with_bitmap) out.insert(out.end(), bitmap.begin(), bitmap.end());
    out.insert(out.end(), payload->begin(), payload->end());
  }
}

Result<std::size_t> decode_chunk(std::span<const std::uint8_t> in, DecodedChunk& out, std::size_t wanted) {
  Reader r(in);
  std::uint8_t version = 0;
  std::uint64_t rows = 0, columns = 0, tbytes = 0;
  if (!r.u8(version)) return corrupt("empty");
  if (version != kChunkVersion) return corrupt("unknown version " + std::to_string(version));
  if (!r.varint(rows) || !r.varint(columns)) return corrupt("truncated header");
  if (rows > kMaxRows || columns == 0 || columns > kMaxColumns || rows * columns > kMaxCells) {
    return corrupt(std::to_string(rows) + " rows x " + std::to_string(columns) + " columns is out of bounds");
  }
  if (wanted != kAllColumns && wanted >= columns)
    return corrupt("column " + std::to_string(wanted) + " not in chunk");
  std::span<const std::uint8_t> tspan;
  if (!r.varint(tbytes) || !r.bytes(tbytes, tspan)) return corrupt("truncated timestamps");
  if (tbytes < rows) return corrupt("timestamps shorter than their rows");  // each takes >= 1 byte
  out.rows = rows;
  out.columns = columns;
  out.times.resize(rows);
  Reader tr(tspan);
  std::uint64_t prev = 0, delta = 0, v = 0;
  for (std::size_t i = 0; i < rows; ++i) {
    if (!tr.varint(v)) return corrupt("truncated timestamps");
    if (i == 0)
      prev = static_cast<std::uint64_t>(unzigzag(v));
    else if (i == 1)
      prev += (delta = static_cast<std::uint64_t>(unzigzag(v)));
    else
      prev += (delta += static_cast<std::uint64_t>(unzigzag(v)));
    out.times[i] = static_cast<TimeNs>(prev);
  }
  if (tr.left() != 0) return corrupt("trailing timestamp bytes");

  const std::size_t width = wanted == kAllColumns ? columns : 1;
  out.values.assign(rows * width, std::numeric_limits<double>::quiet_NaN());
  std::vector<double> present;
  for (std::size_t c = 0; c < columns; ++c) {
    std::uint8_t kind = 0;
    std::uint64_t bytes = 0;
    std::span<const std::uint8_t> payload;
    if (!r.u8(kind) || !r.varint(bytes) || !r.bytes(bytes, payload)) {
      return corrupt("column " + std::to_string(c) + " truncated");
    }
    if (wanted != kAllColumns && c != wanted) continue;
    const bool with_bitmap = kind & kHasBitmap;
    kind &= static_cast<std::uint8_t>(~kHasBitmap);
    if (kind == kAbsent) {
      if (bytes != 0 || with_bitmap) return corrupt("column " + std::to_string(c) + ": absent with payload");
      continue;
    }
    if (kind != kGorilla && kind != kQuantized)
      return corrupt("column " + std::to_string(c) + ": unknown kind");
    std::span<const std::uint8_t> bitmap;
    std::size_t n = rows;
    if (with_bitmap) {
      if (payload.size() < (rows + 7) / 8)
        return corrupt("column " + std::to_string(c) + ": bitmap truncated");
      bitmap = payload.first((rows + 7) / 8);
      payload = payload.subspan(bitmap.size());
      n = 0;
      for (std::size_t i = 0; i < rows; ++i) n += (bitmap[i >> 3] >> (i & 7)) & 1;
    }
    // Each value takes at least one bit (gorilla) or two bytes (quantized): bound before allocating.
    if ((kind == kGorilla && n > 0 && payload.size() * 8 < 63 + n) ||
        (kind == kQuantized && payload.size() < 9 + 2 * n)) {
      return corrupt("column " + std::to_string(c) + ": payload too short for its values");
    }
    present.resize(n);
    const bool ok = kind == kGorilla ? gorilla_decode(payload, n, present.data())
                                     : quantized_decode(payload, n, present.data());
    if (!ok) return corrupt("column " + std::to_string(c) + ": malformed values");
    const std::size_t col = wanted == kAllColumns ? c : 0;
    std::size_t k = 0;
    for (std::size_t i = 0; i < rows; ++i) {
      if (with_bitmap && !((bitmap[i >> 3] >> (i & 7)) & 1)) continue;
      double value = present[k++];
      // NaN is the absent marker: a stored NaN bit pattern (only from a corrupt file) reads as absent.
      out.values[i * width + col] = value;
    }
  }
  return r.pos();
}

void encode_series_list(std::span<const SeriesBatch> series, std::vector<std::uint8_t>& out) {
  out.push_back(kListVersion);
  put_varint(out, series.size());
  for (const auto& s : series) {
    put_varint(out, s.channels.size());
    for (std::uint32_t ch : s.channels) put_varint(out, ch);
    encode_chunk(s.times_ns, s.channels.size(), s.values, out);
  }
}

Result<void> decode_series_list(std::span<const std::uint8_t> raw, std::vector<SeriesBatch>& out) {
  Reader r(raw);
  std::uint8_t version = 0;
  std::uint64_t n = 0;
  if (!r.u8(version) || version != kListVersion) return corrupt("unknown series list version");
  if (!r.varint(n) || n > kMaxSeriesPerBlob || n > r.left()) return corrupt("bad series count");
  out.clear();
  out.resize(n);
  DecodedChunk chunk;
  for (auto& s : out) {
    std::uint64_t cols = 0, id = 0;
    if (!r.varint(cols) || cols == 0 || cols > kMaxColumns || cols > r.left())
      return corrupt("bad column count");
    s.channels.resize(cols);
    for (auto& ch : s.channels) {
      if (!r.varint(id) || id > std::numeric_limits<std::uint32_t>::max()) return corrupt("bad channel id");
      ch = static_cast<std::uint32_t>(id);
    }
    auto used = decode_chunk(raw.subspan(r.pos()), chunk);
    if (!used) return used.error();
    if (chunk.columns != cols) return corrupt("chunk columns differ from its channel list");
    std::span<const std::uint8_t> skip;
    (void)r.bytes(*used, skip);
    s.times_ns = std::move(chunk.times);
    s.values = std::move(chunk.values);
  }
  if (r.left() != 0) return corrupt("trailing bytes after the series list");
  return success();
}

Result<void> compress(std::span<const std::uint8_t> raw, int level, std::vector<std::uint8_t>& out) {
  out.resize(ZSTD_compressBound(raw.size()));
  const std::size_t n = ZSTD_compress(out.data(), out.size(), raw.data(), raw.size(), level);
  if (ZSTD_isError(n)) {
    out.clear();
    return Error(ErrorCode::io_error, std::string("zstd: ") + ZSTD_getErrorName(n));
  }
  out.resize(n);
  return success();
}

Result<void> decompress(std::span<const std::uint8_t> packed, std::vector<std::uint8_t>& out) {
  const unsigned long long size = ZSTD_getFrameContentSize(packed.data(), packed.size());
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN)
    return corrupt("not a zstd frame with a size");
  if (size > kMaxRawBlobBytes) return corrupt("decompressed size " + std::to_string(size) + " out of bounds");
  out.resize(size);
  const std::size_t n = ZSTD_decompress(out.data(), out.size(), packed.data(), packed.size());
  if (ZSTD_isError(n) || n != size)
    return corrupt(std::string("zstd: ") + (ZSTD_isError(n) ? ZSTD_getErrorName(n) : "short"));
  return success();
}

}  // namespace cellguard::store::detail
