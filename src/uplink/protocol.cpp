// Wire protocol encoding and decoding (protocol.h) over the generated protobuf classes.
#include "uplink/protocol.h"

#include <google/protobuf/stubs/logging.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <mutex>

#include "uplink.pb.h"

namespace cellguard::uplink {
namespace {

namespace pb = cellguard::uplink::v1;

// protobuf logs invalid UTF-8 in string fields to stderr before failing the parse; the failure is
// what we report, so its log stays quiet.
void silence_protobuf_log() {
  static std::once_flag once;
  std::call_once(once, [] { google::protobuf::SetLogHandler(nullptr); });
}

Error wire_error(std::string message) {
  return Error(ErrorCode::parse_error, "uplink frame: " + std::move(message));
}

bool same_bits(double a, double b) {
  return std::bit_cast<std::uint64_t>(a) == std::bit_cast<std::uint64_t>(b);
}

// n * scale + offset in two statements, so no compiler fuses them into one rounding (FMA): the edge
// checks the coding with this function and the server decodes with it; both must round alike.
double scaled(std::int64_t n, double scale, double offset) {
  const double product = static_cast<double>(n) * scale;
  return product + offset;
}

// Differences with wrap-around, so any pair of int64 round-trips exactly.
std::int64_t wrap_diff(std::int64_t a, std::int64_t b) {
  return static_cast<std::int64_t>(static_cast<std::uint64_t>(a) - static_cast<std::uint64_t>(b));
}
std::int64_t wrap_add(std::int64_t a, std::int64_t b) {
  return static_cast<std::int64_t>(static_cast<std::uint64_t>(a) + static_cast<std::uint64_t>(b));
}

// The integers n of one column if every value is exactly n * scale + offset; false otherwise.
bool integer_column(const Series& s, std::size_t col, Scaling scaling, std::vector<std::int64_t>& out) {
  if (!(scaling.scale != 0) || !std::isfinite(scaling.scale) || !std::isfinite(scaling.offset)) return false;
  const std::size_t width = s.channels.size();
  const std::size_t rows = s.times_ns.size();
  out.clear();
  constexpr double kLimit = 4.0e18;  // |n| < 2^62: deltas cannot overflow
  for (std::size_t r = 0; r < rows; ++r) {
    const double v = s.values[r * width + col];
    if (!std::isfinite(v)) return false;
    const double estimate = std::nearbyint((v - scaling.offset) / scaling.scale);
    if (!(std::fabs(estimate) < kLimit)) return false;
    const auto n = static_cast<std::int64_t>(estimate);
    if (!same_bits(scaled(n, scaling.scale, scaling.offset), v)) return false;
    out.push_back(n);
  }
  return true;
}

// The batch's table of scalings: each distinct one once (a handful for a whole rig).
struct ScalingTable {
  std::vector<Scaling> entries;
  std::uint32_t index_of(Scaling s) {
    for (std::size_t i = 0; i < entries.size(); ++i)
      if (same_bits(entries[i].scale, s.scale) && same_bits(entries[i].offset, s.offset))
        return static_cast<std::uint32_t>(i + 1);
    entries.push_back(s);
    return static_cast<std::uint32_t>(entries.size());
  }
};

void encode_series(const Series& s, TimeNs base, ScalingTable& table, pb::Series& out) {
  const std::size_t width = s.channels.size();
  const std::size_t rows = s.times_ns.size();
  bool contiguous = width > 0;
  for (std::size_t c = 1; c < width && contiguous; ++c) contiguous = s.channels[c] == s.channels[0] + c;
  if (contiguous) {
    out.set_first_channel(s.channels[0]);
    out.set_width(static_cast<std::uint32_t>(width));
  } else {
    out.mutable_channels()->Add(s.channels.begin(), s.channels.end());
  }
  auto* times = out.mutable_time_deltas_ns();
  times->Reserve(static_cast<int>(rows));
  TimeNs previous = base;
  for (TimeNs t : s.times_ns) {
    times->Add(wrap_diff(t, previous));
    previous = t;
  }
  std::vector<std::int64_t> ints;
  for (std::size_t c = 0; c < width; ++c) {
    const Scaling hint = c < s.scaling.size() ? s.scaling[c] : Scaling{};
    Scaling used = hint;
    bool coded = integer_column(s, c, hint, ints);
    if (!coded && hint != Scaling{}) {
      used = Scaling{};
      coded = integer_column(s, c, used, ints);
    }
    if (coded) {
      out.add_column_coding(table.index_of(used));
      std::int64_t previous_n = 0;
      for (std::int64_t n : ints) {
        out.add_int_deltas(n - previous_n);
        previous_n = n;
      }
    } else {
      out.add_column_coding(0);
      for (std::size_t r = 0; r < rows; ++r) out.add_doubles(s.values[r * width + c]);
    }
  }
}

TimeNs batch_base(const Batch& b) {
  bool any = false;
  TimeNs base = 0;
  auto note = [&](TimeNs t) {
    if (!any || t < base) base = t;
    any = true;
  };
  for (const Series& s : b.series)
    if (!s.times_ns.empty()) note(s.times_ns.front());
  for (const Event& e : b.events) note(e.time_ns);
  return base;
}

void to_pb(const SeqRange& r, pb::SeqRange& out) {
  out.set_first(r.first);
  out.set_last(r.last);
}

Result<void> check_range(const pb::SeqRange& r) {
  if (r.first() > r.last())
    return wire_error("sequence range " + std::to_string(r.first()) + ".." + std::to_string(r.last()) +
                      " is reversed");
  return success();
}

Result<std::vector<SeqRange>> ranges_from_pb(const google::protobuf::RepeatedPtrField<pb::SeqRange>& in) {
  std::vector<SeqRange> out;
  out.reserve(static_cast<std::size_t>(in.size()));
  for (const auto& r : in) {
    if (auto ok = check_range(r); !ok) return ok.error();
    out.push_back({r.first(), r.last()});
  }
  return out;
}

struct Encoder {
  pb::Envelope& env;
  Result<void> operator()(const Hello& m) {
    auto* h = env.mutable_hello();
    h->set_protocol_version(m.protocol_version);
    h->set_edge_id(m.edge_id);
    h->set_software_version(m.software_version);
    h->set_config_sha256(m.config_sha256);
    h->set_dbc_sha256(m.dbc_sha256);
    for (const ChannelInfo& c : m.channels) {
      auto* pc = h->add_channels();
      pc->set_id(c.id);
      pc->set_name(c.name);
      pc->set_unit(c.unit);
      pc->set_module(c.module);
      pc->set_rig_column(c.rig_column);
      pc->set_integral(c.integral);
    }
    h->set_first_seq(m.first_seq);
    h->set_last_seq(m.last_seq);
    return success();
  }
  Result<void> operator()(const HelloAck& m) {
    auto* a = env.mutable_hello_ack();
    a->set_protocol_version(m.protocol_version);
    a->set_server_id(m.server_id);
    for (const SeqRange& r : m.stored) to_pb(r, *a->add_stored());
    a->set_keepalive_ms(m.keepalive_ms);
    return success();
  }
  Result<void> operator()(const Batch& m) {
    auto* b = env.mutable_batch();
    b->set_seq(m.seq);
    const TimeNs base = batch_base(m);
    b->set_base_time_ns(base);
    ScalingTable table;
    for (const Series& s : m.series) {
      if (s.values.size() != s.channels.size() * s.times_ns.size())
        return Error(ErrorCode::invalid_argument, "uplink batch " + std::to_string(m.seq) + ": series has " +
                                                      std::to_string(s.values.size()) + " values, expected " +
                                                      std::to_string(s.channels.size() * s.times_ns.size()));
      encode_series(s, base, table, *b->add_series());
    }
    for (const Scaling& sc : table.entries) {
      auto* ps = b->add_scalings();
      ps->set_scale(sc.scale);
      ps->set_offset(sc.offset);
    }
    for (const Event& e : m.events) {
      auto* pe = b->add_events();
      pe->set_time_ns(wrap_diff(e.time_ns, base));
      pe->set_kind(e.kind);
      pe->set_json(e.json);
    }
    b->set_lost_records(m.lost_records);
    b->set_records(m.records);
    return success();
  }
  Result<void> operator()(const Ack& m) {
    auto* a = env.mutable_ack();
    for (const SeqRange& r : m.stored) to_pb(r, *a->add_stored());
    return success();
  }
  Result<void> operator()(const Keepalive& m) {
    auto* k = env.mutable_keepalive();
    k->set_sent_ns(m.sent_ns);
    k->set_backlog_batches(m.backlog_batches);
    k->set_lost_records(m.lost_records);
    return success();
  }
  Result<void> operator()(const Goodbye& m) {
    env.mutable_goodbye()->set_reason(m.reason);
    return success();
  }
};

Result<Message> decode_hello(const pb::Hello& h) {
  Hello m;
  m.protocol_version = h.protocol_version();
  m.edge_id = h.edge_id();
  m.software_version = h.software_version();
  m.config_sha256 = h.config_sha256();
  m.dbc_sha256 = h.dbc_sha256();
  if (static_cast<std::size_t>(h.channels_size()) > kMaxChannels)
    return wire_error("hello has " + std::to_string(h.channels_size()) + " channels, at most " +
                      std::to_string(kMaxChannels));
  m.channels.reserve(static_cast<std::size_t>(h.channels_size()));
  for (const auto& c : h.channels()) {
    m.channels.push_back({c.id(), c.name(), c.unit(), c.module(), c.rig_column(), c.integral()});
  }
  m.first_seq = h.first_seq();
  m.last_seq = h.last_seq();
  return Message(std::move(m));
}

Result<Message> decode_batch(const pb::Batch& b) {
  Batch m;
  m.seq = b.seq();
  if (m.seq == 0) return wire_error("batch without a sequence number");
  const TimeNs base = b.base_time_ns();
  std::size_t total_values = 0, total_rows = 0;
  m.series.reserve(static_cast<std::size_t>(b.series_size()));
  const std::string where = "batch " + std::to_string(m.seq) + ": ";
  for (const pb::Series& ps : b.series()) {
    Series s;
    if (ps.channels_size() > 0 && ps.width() > 0)
      return wire_error(where + "a series gives both a channel list and a channel range");
    if (ps.width() > kMaxChannels)
      return wire_error(where + "a series of " + std::to_string(ps.width()) + " channels");
    if (ps.width() > 0 && std::uint64_t{ps.first_channel()} + ps.width() > std::uint64_t{0xffffffffu})
      return wire_error(where + "a channel range beyond the largest id");
    const std::size_t width = ps.width() > 0 ? ps.width() : static_cast<std::size_t>(ps.channels_size());
    const auto rows = static_cast<std::size_t>(ps.time_deltas_ns_size());
    if (static_cast<std::size_t>(ps.column_coding_size()) != width)
      return wire_error(where + "a series has " + std::to_string(width) + " channels but " +
                        std::to_string(ps.column_coding_size()) + " column codings");
    total_rows += rows;
    total_values += rows * width;
    if (total_rows > kMaxRowsPerBatch || total_values > kMaxValuesPerBatch)
      return wire_error(where + "more than " + std::to_string(kMaxValuesPerBatch) + " values or " +
                        std::to_string(kMaxRowsPerBatch) + " rows");
    std::size_t int_columns = 0;
    for (std::uint32_t coding : ps.column_coding()) {
      if (coding > static_cast<std::uint32_t>(b.scalings_size()))
        return wire_error(where + "a column uses scaling " + std::to_string(coding) + " of " +
                          std::to_string(b.scalings_size()));
      int_columns += coding > 0 ? 1 : 0;
    }
    if (static_cast<std::size_t>(ps.int_deltas_size()) != int_columns * rows ||
        static_cast<std::size_t>(ps.doubles_size()) != (width - int_columns) * rows)
      return wire_error(where + "a series' values do not fill its " + std::to_string(width) + " columns of " +
                        std::to_string(rows) + " rows");
    if (ps.width() > 0) {
      for (std::uint32_t c = 0; c < ps.width(); ++c) s.channels.push_back(ps.first_channel() + c);
    } else {
      s.channels.assign(ps.channels().begin(), ps.channels().end());
    }
    s.times_ns.reserve(rows);
    TimeNs t = base;
    for (std::int64_t d : ps.time_deltas_ns()) {
      t = wrap_add(t, d);
      s.times_ns.push_back(t);
    }
    s.values.assign(rows * width, 0.0);
    int next_int = 0, next_double = 0;
    for (std::size_t c = 0; c < width; ++c) {
      const std::uint32_t coding = ps.column_coding(static_cast<int>(c));
      if (coding > 0) {
        const pb::Scaling& sc = b.scalings(static_cast<int>(coding - 1));
        std::int64_t n = 0;
        for (std::size_t r = 0; r < rows; ++r) {
          n = wrap_add(n, ps.int_deltas(next_int++));
          s.values[r * width + c] = scaled(n, sc.scale(), sc.offset());
        }
      } else {
        for (std::size_t r = 0; r < rows; ++r) s.values[r * width + c] = ps.doubles(next_double++);
      }
    }
    m.series.push_back(std::move(s));
  }
  m.events.reserve(static_cast<std::size_t>(b.events_size()));
  for (const pb::Event& e : b.events()) m.events.push_back({wrap_add(base, e.time_ns()), e.kind(), e.json()});
  m.lost_records = b.lost_records();
  m.records = b.records();
  return Message(std::move(m));
}

}  // namespace

bool Series::operator==(const Series& o) const {
  if (channels != o.channels || times_ns != o.times_ns || values.size() != o.values.size()) return false;
  for (std::size_t i = 0; i < values.size(); ++i)
    if (!same_bits(values[i], o.values[i])) return false;
  return true;
}

std::size_t Batch::sample_count() const {
  std::size_t n = 0;
  for (const Series& s : series)
    for (double v : s.values) n += std::isnan(v) ? 0 : 1;
  return n;
}

const char* message_name(const Message& message) {
  static constexpr const char* kNames[] = {"hello", "hello_ack", "batch", "ack", "keepalive", "goodbye"};
  return kNames[message.index()];
}

Result<void> encode_frame(const Message& message, std::vector<std::uint8_t>& out) {
  pb::Envelope env;
  if (auto ok = std::visit(Encoder{env}, message); !ok) return ok.error();
  const std::size_t size = env.ByteSizeLong();
  if (size == 0 || size > kMaxFrameBytes)
    return Error(ErrorCode::invalid_argument, std::string("uplink ") + message_name(message) + " of " +
                                                  std::to_string(size) + " bytes does not fit a frame (1.." +
                                                  std::to_string(kMaxFrameBytes) + ")");
  const std::size_t at = out.size();
  out.resize(at + kFrameHeaderBytes + size);
  const auto n = static_cast<std::uint32_t>(size);
  out[at] = static_cast<std::uint8_t>(n >> 24);
  out[at + 1] = static_cast<std::uint8_t>(n >> 16);
  out[at + 2] = static_cast<std::uint8_t>(n >> 8);
  out[at + 3] = static_cast<std::uint8_t>(n);
  if (!env.SerializeToArray(out.data() + at + kFrameHeaderBytes, static_cast<int>(size))) {
    out.resize(at);
    return Error(ErrorCode::invalid_argument,
                 std::string("uplink ") + message_name(message) + " cannot be serialized");
  }
  return success();
}

Result<Message> decode_body(std::span<const std::uint8_t> body) {
  silence_protobuf_log();
  if (body.empty() || body.size() > kMaxFrameBytes)
    return wire_error("body of " + std::to_string(body.size()) + " bytes");
  pb::Envelope env;
  if (!env.ParseFromArray(body.data(), static_cast<int>(body.size())))
    return wire_error("body of " + std::to_string(body.size()) + " bytes is not a valid message");
  switch (env.body_case()) {
    case pb::Envelope::kHello:
      return decode_hello(env.hello());
    case pb::Envelope::kHelloAck: {
      HelloAck m;
      m.protocol_version = env.hello_ack().protocol_version();
      m.server_id = env.hello_ack().server_id();
      auto stored = ranges_from_pb(env.hello_ack().stored());
      if (!stored) return stored.error();
      m.stored = std::move(*stored);
      m.keepalive_ms = env.hello_ack().keepalive_ms();
      return Message(std::move(m));
    }
    case pb::Envelope::kBatch:
      return decode_batch(env.batch());
    case pb::Envelope::kAck: {
      auto stored = ranges_from_pb(env.ack().stored());
      if (!stored) return stored.error();
      return Message(Ack{std::move(*stored)});
    }
    case pb::Envelope::kKeepalive:
      return Message(Keepalive{env.keepalive().sent_ns(), env.keepalive().backlog_batches(),
                               env.keepalive().lost_records()});
    case pb::Envelope::kGoodbye:
      return Message(Goodbye{env.goodbye().reason()});
    case pb::Envelope::BODY_NOT_SET:
      break;
  }
  return wire_error("message of unknown kind");
}

void FrameDecoder::feed(std::span<const std::uint8_t> bytes) {
  if (consumed_ > 0 && consumed_ == buffer_.size()) {
    buffer_.clear();
    consumed_ = 0;
  } else if (consumed_ > (1u << 20)) {  // keep the buffer from growing with consumed bytes
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(consumed_));
    consumed_ = 0;
  }
  buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
}

Result<std::optional<Message>> FrameDecoder::next() {
  const std::size_t available = buffer_.size() - consumed_;
  if (available < kFrameHeaderBytes) return std::optional<Message>();
  const std::uint8_t* p = buffer_.data() + consumed_;
  const std::uint32_t size =
      (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
  if (size == 0 || size > kMaxFrameBytes)
    return wire_error("frame length " + std::to_string(size) + " outside 1.." +
                      std::to_string(kMaxFrameBytes));
  if (available < kFrameHeaderBytes + size) return std::optional<Message>();
  auto message = decode_body({p + kFrameHeaderBytes, size});
  if (!message) return message.error();
  consumed_ += kFrameHeaderBytes + size;
  return std::optional<Message>(std::move(*message));
}

void SeqSet::insert(SeqRange range) {
  if (range.first > range.last) return;
  // First range that could touch or overlap: last + 1 >= range.first.
  auto it =
      std::lower_bound(ranges_.begin(), ranges_.end(), range.first, [](const SeqRange& r, std::uint64_t v) {
        return r.last != std::numeric_limits<std::uint64_t>::max() && r.last + 1 < v;
      });
  auto end = it;
  while (end != ranges_.end() &&
         (range.last == std::numeric_limits<std::uint64_t>::max() || end->first <= range.last + 1)) {
    range.first = std::min(range.first, end->first);
    range.last = std::max(range.last, end->last);
    ++end;
  }
  it = ranges_.erase(it, end);
  ranges_.insert(it, range);
}

bool SeqSet::contains(std::uint64_t seq) const {
  auto it = std::upper_bound(ranges_.begin(), ranges_.end(), seq,
                             [](std::uint64_t v, const SeqRange& r) { return v < r.first; });
  if (it == ranges_.begin()) return false;
  --it;
  return seq <= it->last;
}

std::uint64_t SeqSet::first_missing(std::uint64_t from) const {
  for (const SeqRange& r : ranges_) {
    if (r.last < from) continue;
    if (r.first > from) return from;
    if (r.last == std::numeric_limits<std::uint64_t>::max()) return r.last;
    from = r.last + 1;
  }
  return from;
}

std::uint64_t SeqSet::count() const {
  std::uint64_t n = 0;
  for (const SeqRange& r : ranges_) n += r.last - r.first + 1;
  return n;
}

void SeqSet::erase_below(std::uint64_t seq) {
  auto it = ranges_.begin();
  while (it != ranges_.end() && it->last < seq) ++it;
  it = ranges_.erase(ranges_.begin(), it);
  if (it != ranges_.end() && it->first < seq) it->first = seq;
}

}  // namespace cellguard::uplink
