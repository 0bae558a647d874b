#include "cli/decode_csv.h"

#include <fnmatch.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <unordered_map>
#include <unordered_set>

#include "core/text.h"
#include "dbc/encoder.h"

namespace cellguard::cli {
namespace {

// RFC 4180: a field with a comma, quote or line end is quoted, its quotes doubled.
void append_csv_field(OutputBuffer& out, std::string_view text) {
  if (text.find_first_of(",\"\r\n") == std::string_view::npos) {
    out.append(text);
    return;
  }
  out.append('"');
  for (const char c : text) {
    if (c == '"') out.append('"');
    out.append(c);
  }
  out.append('"');
}

std::string time_text(std::int64_t ns) {
  char buf[48];
  if (ns < 0) return format_shortest(static_cast<double>(ns) / 1e9);
  std::snprintf(buf, sizeof buf, "%lld.%06lld", static_cast<long long>(ns / 1'000'000'000),
                static_cast<long long>(ns % 1'000'000'000 / 1000));
  return buf;
}

std::string int128_text(dbc::Int128 v) {
  if (v >= INT64_MIN && v <= INT64_MAX) return std::to_string(static_cast<std::int64_t>(v));
  __extension__ using UInt128 = unsigned __int128;
  const bool negative = v < 0;
  UInt128 m = negative ? UInt128(0) - static_cast<UInt128>(v) : static_cast<UInt128>(v);
  std::string text;
  while (m != 0) {
    text.insert(text.begin(), static_cast<char>('0' + static_cast<int>(m % 10)));
    m /= 10;
  }
  if (negative) text.insert(text.begin(), '-');
  return text;
}

struct Column {
  const dbc::MessageCodec* codec = nullptr;
  std::size_t signal = 0;
  std::string header;
  // Resampling state.
  std::string last;  // text of the latest value
  bool has_last = false;
  double sum = 0;
  std::uint64_t count = 0;
};

// The intervals a gap may span before the empty ones are left out (a log with a wrong clock
// would otherwise print billions of rows).
constexpr std::int64_t kMaxEmptyIntervals = 100'000;

}  // namespace

Result<std::int64_t> parse_interval(std::string_view text) {
  double value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  const std::string_view unit = text.substr(static_cast<std::size_t>(end - text.data()));
  double scale = 0;
  if (unit == "ns") scale = 1;
  if (unit == "us") scale = 1e3;
  if (unit == "ms") scale = 1e6;
  if (unit == "s") scale = 1e9;
  if (unit == "min") scale = 60e9;
  const double ns = value * scale;
  if (ec != std::errc() || scale == 0 || !(ns >= 1e3) || ns > 86400e9) {
    return Error(ErrorCode::invalid_argument,
                 "interval '" + escape_untrusted(text, 40) +
                     "': expected a time from 1us to 1 day with a unit: 100ms, 1s, 0.5s, "
                     "250us, 2min");
  }
  return static_cast<std::int64_t>(std::llround(ns));
}

class CsvDecoder::Impl {
 public:
  Impl(const dbc::DatabaseCodec& codec, CsvOptions options, OutputBuffer& out)
      : codec_(codec), options_(std::move(options)), out_(out) {}

  Result<void> select() {
    struct Candidate {
      const dbc::MessageCodec* codec;
      std::size_t signal;
      std::string qualified;  // MESSAGE.SIGNAL
    };
    std::vector<Candidate> all;
    for (const auto& m : codec_.database().messages) {
      const dbc::MessageCodec* mc = codec_.find(m.id, m.extended);
      if (mc == nullptr || &mc->message() != &m) continue;  // a placeholder, or shadowed by a later one
      for (std::size_t i = 0; i < m.signals.size(); ++i)
        all.push_back({mc, i, m.name + "." + m.signals[i].name});
    }
    std::unordered_set<std::string> chosen;
    const auto take = [&](const Candidate& c) {
      if (!chosen.insert(c.qualified).second) return;
      Column column;
      column.codec = c.codec;
      column.signal = c.signal;
      columns_.push_back(std::move(column));
    };
    if (options_.signals.empty()) {
      for (const auto& c : all) take(c);
    }
    for (const auto& pattern : options_.signals) {
      const bool qualified = pattern.find('.') != std::string::npos;
      bool matched = false;
      for (const auto& c : all) {
        const std::string& name = c.codec->message().signals[c.signal].name;
        if (::fnmatch(pattern.c_str(), (qualified ? c.qualified : name).c_str(), 0) == 0) {
          take(c);
          matched = true;
        }
      }
      if (!matched) {
        std::vector<std::string> names;
        for (const auto& c : all)
          names.push_back(qualified ? c.qualified : c.codec->message().signals[c.signal].name);
        const std::string close = closest_name(pattern, names);
        return Error(ErrorCode::not_found,
                     "--signals: no signal matches '" + escape_untrusted(pattern, 80) + "'" +
                         (close.empty() ? std::string() : " (did you mean '" + close + "'?)"));
      }
    }
    // Headers: the bare name where it is unique among the columns.
    std::unordered_map<std::string, int> uses;
    for (const auto& c : columns_) ++uses[c.codec->message().signals[c.signal].name];
    for (std::size_t k = 0; k < columns_.size(); ++k) {
      auto& c = columns_[k];
      const auto& signal = c.codec->message().signals[c.signal];
      c.header = uses[signal.name] > 1 ? c.codec->message().name + "." + signal.name : signal.name;
      if (!signal.unit.empty() && !options_.raw) c.header += " [" + signal.unit + "]";
      by_message_[c.codec].push_back(k);
    }
    return success();
  }

  void header() {
    out_.append(options_.resample_ns > 0 ? "time" : "time,bus,id,message");
    for (const auto& c : columns_) {
      out_.append(',');
      append_csv_field(out_, c.header);
    }
    out_.append('\n');
  }

  void write(const can::Frame& frame) {
    const dbc::MessageCodec* mc = frame.error ? nullptr : codec_.find(frame.id, frame.extended);
    if (options_.resample_ns > 0) {
      resample(frame, mc);
      return;
    }
    const auto it = mc == nullptr ? by_message_.end() : by_message_.find(mc);
    if (mc == nullptr && (options_.known_only || !options_.signals.empty())) return;
    if (mc != nullptr && it == by_message_.end() && !options_.signals.empty()) return;  // no chosen signal
    if (mc != nullptr && !frame.remote && !decode(*mc, frame)) return;
    out_.append(time_text(frame.timestamp_ns));
    out_.append(',');
    append_csv_field(out_, frame.bus.view());
    char id[16];
    std::snprintf(id, sizeof id, frame.extended ? ",0x%08X," : ",0x%03X,", frame.id);
    out_.append(id);
    if (mc != nullptr) append_csv_field(out_, mc->message().name);
    // The message's columns filled, the others empty: one pass over its cells in column order.
    std::size_t next = 0;
    static const std::vector<std::size_t> kNone;
    const auto& mine = it == by_message_.end() ? kNone : it->second;
    for (std::size_t k = 0; k < columns_.size(); ++k) {
      out_.append(',');
      if (next < mine.size() && mine[next] == k) {
        ++next;
        if (!frame.remote && present_.test(columns_[k].signal))
          append_csv_field(out_, value_text(*mc, columns_[k].signal));
      }
    }
    out_.append('\n');
    out_.maybe_flush();
  }

  void finish() {
    if (options_.resample_ns > 0 && started_) emit_interval();
  }

  std::uint64_t decode_errors() const { return decode_errors_; }
  std::uint64_t skipped_intervals() const { return skipped_intervals_; }

 private:
  bool decode(const dbc::MessageCodec& mc, const can::Frame& frame) {
    const std::size_t n = mc.signal_count();
    if (values_.size() < n) values_.resize(n);
    if (raw_.size() < n) raw_.resize(n);
    present_.resize(n);
    dbc::DecodeStatus status = dbc::DecodeStatus::ok;
    if (options_.raw || options_.choices) status = mc.decode_raw(frame.payload(), raw_.data(), present_);
    if (status == dbc::DecodeStatus::ok && !options_.raw) {
      status = mc.decode_exact(frame.payload(), values_.data(), present_);
    }
    if (status == dbc::DecodeStatus::ok) return true;
    ++decode_errors_;
    return false;
  }

  std::string value_text(const dbc::MessageCodec& mc, std::size_t i) const {
    const auto& signal = mc.message().signals[i];
    if (options_.choices && !signal.value_descriptions.empty()) {
      const auto text = mc.choice(i, static_cast<std::int64_t>(raw_[i]));
      if (!text.empty()) return std::string(text);
    }
    if (options_.raw) {
      if (signal.value_type == dbc::ValueType::integer && signal.is_signed)
        return std::to_string(static_cast<std::int64_t>(raw_[i]));
      return std::to_string(raw_[i]);
    }
    if (values_[i].is_integer) return int128_text(values_[i].integer);
    return format_shortest(values_[i].real);
  }

  double value_number(const dbc::MessageCodec& mc, std::size_t i) const {
    if (options_.raw) {
      const auto& signal = mc.message().signals[i];
      return signal.value_type == dbc::ValueType::integer && signal.is_signed
                 ? static_cast<double>(static_cast<std::int64_t>(raw_[i]))
                 : static_cast<double>(raw_[i]);
    }
    return values_[i].as_double();
  }

  static std::int64_t interval_of(std::int64_t ns, std::int64_t step) {
    std::int64_t k = ns / step;
    if (ns % step != 0 && ns < 0) --k;  // floor, also before 1970
    return k;
  }

  void emit_interval() {
    out_.append(time_text(interval_ * options_.resample_ns));
    for (auto& c : columns_) {
      out_.append(',');
      if (options_.mean) {
        if (c.count > 0) out_.append(format_shortest(c.sum / static_cast<double>(c.count)));
        c.sum = 0;
        c.count = 0;
      } else if (c.has_last) {
        append_csv_field(out_, c.last);
      }
    }
    out_.append('\n');
    out_.maybe_flush();
  }

  void resample(const can::Frame& frame, const dbc::MessageCodec* mc) {
    const std::int64_t k = interval_of(frame.timestamp_ns, options_.resample_ns);
    if (!started_) {
      started_ = true;
      interval_ = k;
    } else if (k > interval_) {
      emit_interval();
      // Intervals without frames: held values (last) or empty cells (mean), up to a limit.
      std::int64_t gap = k - interval_ - 1;
      if (gap > kMaxEmptyIntervals) {
        skipped_intervals_ += static_cast<std::uint64_t>(gap);
        gap = 0;
      }
      for (std::int64_t g = 1; g <= gap; ++g) {
        interval_ += 1;
        emit_interval();
      }
      interval_ = k;
    }  // a frame from before the current interval (time went backwards) counts in the current one
    if (mc == nullptr || frame.remote) return;
    const auto it = by_message_.find(mc);
    if (it == by_message_.end()) return;
    if (!decode(*mc, frame)) return;
    for (const std::size_t col : it->second) {
      Column& c = columns_[col];
      if (!present_.test(c.signal)) continue;
      if (options_.mean) {
        const double v = value_number(*mc, c.signal);
        if (std::isfinite(v)) {
          c.sum += v;
          ++c.count;
        }
      } else {
        c.last = value_text(*mc, c.signal);
        c.has_last = true;
      }
    }
  }

  const dbc::DatabaseCodec& codec_;
  const CsvOptions options_;
  OutputBuffer& out_;
  std::vector<Column> columns_;
  std::unordered_map<const dbc::MessageCodec*, std::vector<std::size_t>> by_message_;  // columns, ascending
  std::vector<dbc::PhysicalValue> values_;
  std::vector<std::uint64_t> raw_;
  dbc::PresenceMask present_;
  bool started_ = false;
  std::int64_t interval_ = 0;
  std::uint64_t decode_errors_ = 0;
  std::uint64_t skipped_intervals_ = 0;
};

Result<std::unique_ptr<CsvDecoder>> CsvDecoder::create(const dbc::DatabaseCodec& codec, CsvOptions options,
                                                       OutputBuffer& out) {
  auto impl = std::make_unique<Impl>(codec, std::move(options), out);
  if (auto selected = impl->select(); !selected) return selected.error();
  impl->header();
  return std::unique_ptr<CsvDecoder>(new CsvDecoder(std::move(impl)));
}

CsvDecoder::CsvDecoder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CsvDecoder::~CsvDecoder() = default;
void CsvDecoder::write(const can::Frame& frame) { impl_->write(frame); }
void CsvDecoder::finish() { impl_->finish(); }
std::uint64_t CsvDecoder::decode_errors() const { return impl_->decode_errors(); }
std::uint64_t CsvDecoder::skipped_intervals() const { return impl_->skipped_intervals(); }

}  // namespace cellguard::cli
