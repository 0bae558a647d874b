// Frames from "signal=value" assignments (see encoder.h).
#include "dbc/encoder.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <optional>
#include <set>
#include <string_view>
#include <unordered_map>
#include <variant>

#include "core/text.h"

namespace cellguard::dbc {
namespace {

std::string int128_text(Int128 v) {
  if (v == 0) return "0";
  const bool negative = v < 0;
  // Magnitude as unsigned, so the most negative value works too.
  __extension__ using UInt128 = unsigned __int128;
  UInt128 m = negative ? UInt128(0) - static_cast<UInt128>(v) : static_cast<UInt128>(v);
  std::string text;
  while (m != 0) {
    text.insert(text.begin(), static_cast<char>('0' + static_cast<int>(m % 10)));
    m /= 10;
  }
  if (negative) text.insert(text.begin(), '-');
  return text;
}

// An integer literal (decimal or 0x hex, optional sign) that fits 127 bits.
std::optional<Int128> parse_integer(std::string_view t) {
  bool negative = false;
  if (!t.empty() && (t[0] == '+' || t[0] == '-')) {
    negative = t[0] == '-';
    t.remove_prefix(1);
  }
  int base = 10;
  if (t.size() > 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X')) {
    base = 16;
    t.remove_prefix(2);
  }
  if (t.empty() || t.size() > 30) return std::nullopt;
  Int128 v = 0;
  for (const char c : t) {
    int digit = 0;
    if (c >= '0' && c <= '9')
      digit = c - '0';
    else if (base == 16 && c >= 'a' && c <= 'f')
      digit = c - 'a' + 10;
    else if (base == 16 && c >= 'A' && c <= 'F')
      digit = c - 'A' + 10;
    else
      return std::nullopt;
    v = v * base + digit;
  }
  return negative ? -v : v;
}

std::optional<double> parse_real(std::string_view t) {
  if (!t.empty() && t[0] == '+') t.remove_prefix(1);
  double v = 0;
  const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (t.empty() || end != t.data() + t.size()) return std::nullopt;
  if (ec == std::errc::result_out_of_range) return std::nullopt;
  if (ec != std::errc()) return std::nullopt;
  return v;
}

bool is_integral(double v) { return std::isfinite(v) && v == std::floor(v) && std::abs(v) < 9.0e18; }

struct Assigned {
  int argument = 0;  // 1-based as shown
  std::string text;  // "NAME=VALUE"
  bool is_float = false;
  std::uint64_t raw = 0;  // integer signals: two's complement in the signal's bits
  double physical = 0;    // float signals
};

class Encoder {
 public:
  Encoder(const Database& db, const MessageCodec& codec, const EncodeOptions& options)
      : db_(db), codec_(codec), m_(codec.message()), options_(options), given_(m_.signals.size()) {
    for (std::size_t i = 0; i < m_.signals.size(); ++i) {
      index_.emplace(m_.signals[i].name, i);  // the first of duplicate names, as the checker reports
      names_.push_back(m_.signals[i].name);
    }
  }

  Result<EncodedFrame> run(std::span<const std::string> assignments, int first_argument) {
    int argument = first_argument;
    for (const auto& text : assignments) {
      if (auto r = assign(text, argument++); !r) return r.error();
    }
    std::vector<int> state(m_.signals.size(), 0);  // 0 unknown, 1 visiting, 2 active, 3 inactive
    for (std::size_t i = 0; i < m_.signals.size(); ++i) {
      if (auto r = resolve(i, state); !r) return r.error();
    }
    EncodedFrame frame;
    frame.id = m_.id;
    frame.extended = m_.extended;
    frame.fd = is_fd(db_, m_) || m_.length > 8;
    frame.payload.assign(m_.length, 0);
    std::vector<std::uint64_t> raw(m_.signals.size(), 0);
    std::vector<double> physical(m_.signals.size(), 0);
    PresenceMask integers(m_.signals.size());
    PresenceMask floats(m_.signals.size());
    for (std::size_t i = 0; i < m_.signals.size(); ++i) {
      if (state[i] != 2) continue;
      const Signal& s = m_.signals[i];
      if (!given_[i]) {
        frame.defaulted.push_back(s.name);
        raw[i] = default_raw(s);
        set(integers, i);  // float signals too: raw bits 0 are the value 0.0
        continue;
      }
      if (given_[i]->is_float) {
        physical[i] = given_[i]->physical;
        set(floats, i);
      } else {
        raw[i] = given_[i]->raw;
        set(integers, i);
      }
    }
    if (auto r = codec_.encode_raw(raw.data(), integers, frame.payload); !r) return r.error();
    if (auto r = codec_.encode(physical.data(), floats, frame.payload); !r) return r.error();
    return frame;
  }

 private:
  static void set(PresenceMask& mask, std::size_t i) { mask.words()[i / 64] |= std::uint64_t{1} << (i % 64); }

  std::string where(int argument, std::string_view text) const {
    return "argument " + std::to_string(argument) + " '" + escape_untrusted(text, 80) + "'";
  }

  std::string unit_of(const Signal& s) const {
    std::string text;
    if (!s.unit.empty()) text.append(" ").append(s.unit);
    return text;
  }

  std::uint64_t default_raw(const Signal& s) const {
    if (s.value_type != ValueType::integer) return 0;
    const auto start = attribute_value(db_, s.attributes, "GenSigStartValue");
    if (!start) return 0;
    if (const auto* i = std::get_if<std::int64_t>(&*start)) return static_cast<std::uint64_t>(*i);
    if (const auto* d = std::get_if<double>(&*start); d != nullptr && is_integral(*d))
      return static_cast<std::uint64_t>(static_cast<std::int64_t>(*d));
    return 0;
  }

  Result<void> fail(int argument, std::string_view text, const std::string& cause) const {
    return Error(ErrorCode::invalid_argument, where(argument, text) + ": " + cause);
  }

  Result<void> assign(const std::string& text, int argument) {
    const auto eq = text.find('=');
    if (eq == std::string::npos || eq == 0) {
      return fail(argument, text, "expected NAME=VALUE (a signal of " + m_.name + " and its value)");
    }
    std::string_view name = std::string_view(text).substr(0, eq);
    // "Message.Signal" is accepted too, for the message being encoded.
    if (const auto dot = name.find('.'); dot != std::string_view::npos) {
      if (name.substr(0, dot) != m_.name) {
        return fail(argument, text, "names message " + std::string(name.substr(0, dot)) + ", not " + m_.name);
      }
      name.remove_prefix(dot + 1);
    }
    const std::string_view value = trim(std::string_view(text).substr(eq + 1));
    const auto it = index_.find(std::string(name));
    if (it == index_.end()) {
      return fail(argument, text,
                  m_.name + " has no signal " + escape_untrusted(name, 64) + did_you_mean(name, names_));
    }
    const std::size_t i = it->second;
    const Signal& s = m_.signals[i];
    if (given_[i]) {
      return fail(argument, text,
                  s.name + " is already given by argument " + std::to_string(given_[i]->argument));
    }
    Assigned a;
    a.argument = argument;
    a.text = text;
    if (value.empty()) return fail(argument, text, "no value after '='");
    // A value-table text names a raw value.
    for (auto d = s.value_descriptions.rbegin(); d != s.value_descriptions.rend(); ++d) {
      if (d->text == value && s.value_type == ValueType::integer) {
        a.raw = static_cast<std::uint64_t>(d->value);
        if (auto r = check_raw_fits(s, Int128{d->value}, argument, text); !r) return r;
        given_[i] = std::move(a);
        return success();
      }
    }
    if (s.value_type != ValueType::integer) {
      const auto v = parse_real(value);
      if (!v) return fail(argument, text, not_a_value(s, value));
      if (auto r = check_limits(s, *v, argument, text); !r) return r;
      a.is_float = true;
      a.physical = *v;
      given_[i] = std::move(a);
      return success();
    }
    const auto exact = parse_integer(value);
    const auto real = exact ? std::optional<double>(static_cast<double>(*exact)) : parse_real(value);
    if (!real || !std::isfinite(*real)) return fail(argument, text, not_a_value(s, value));
    if (auto r = check_limits(s, *real, argument, text); !r) return r;
    // Exact when the value is an integer and scale and offset are integral: 64-bit values survive.
    if (exact && is_integral(s.scale) && is_integral(s.offset) && s.scale != 0) {
      const Int128 diff = *exact - static_cast<Int128>(s.offset);
      const auto scale = static_cast<Int128>(s.scale);
      if (diff % scale == 0) {
        const Int128 raw = diff / scale;
        if (auto r = check_raw_fits(s, raw, argument, text); !r) return r;
        a.raw = static_cast<std::uint64_t>(raw);
        given_[i] = std::move(a);
        return success();
      }
    }
    if (s.scale == 0) return fail(argument, text, s.name + " has scale 0: no value can be encoded");
    const double unscaled = std::nearbyint((*real - s.offset) / s.scale);
    if (!std::isfinite(unscaled) || std::abs(unscaled) > 1.8e19) {
      return fail(argument, text,
                  "beyond the " + std::to_string(s.length) + " bits of " + s.name + " " + raw_span(s));
    }
    if (auto r = check_raw_fits(s, static_cast<Int128>(unscaled), argument, text); !r) return r;
    a.raw = static_cast<std::uint64_t>(static_cast<Int128>(unscaled));
    given_[i] = std::move(a);
    return success();
  }

  std::string not_a_value(const Signal& s, std::string_view value) const {
    std::string cause = "'";
    cause.append(escape_untrusted(value, 64)).append("' is not a number");
    if (!s.value_descriptions.empty()) {
      std::vector<std::string> texts;
      for (const auto& d : s.value_descriptions) texts.push_back(d.text);
      cause += " nor a value of " + s.name + did_you_mean(value, texts);
      if (closest_name(value, texts).empty()) {
        cause += " (its values:";
        for (std::size_t k = 0; k < texts.size() && k < 8; ++k)
          cause.append(" '").append(texts[k]).append("'");
        if (texts.size() > 8) cause += " ...";
        cause += ")";
      }
    }
    return cause;
  }

  // "(raw 0..255, physical 0..25.5 V)"
  std::string raw_span(const Signal& s) const {
    if (s.length == 0 || s.length > 64) return "";
    const int bits = static_cast<int>(s.length);
    const Int128 low = s.is_signed ? -(Int128{1} << (bits - 1)) : Int128{0};
    const Int128 high = s.is_signed ? (Int128{1} << (bits - 1)) - 1 : (Int128{1} << bits) - 1;
    double p_low = static_cast<double>(low) * s.scale + s.offset;
    double p_high = static_cast<double>(high) * s.scale + s.offset;
    if (p_low > p_high) std::swap(p_low, p_high);
    return "(raw " + int128_text(low) + ".." + int128_text(high) + ", physical " + format_shortest(p_low) +
           ".." + format_shortest(p_high) + unit_of(s) + ")";
  }

  Result<void> check_raw_fits(const Signal& s, Int128 raw, int argument, std::string_view text) const {
    if (s.length == 0 || s.length > 64) return fail(argument, text, s.name + " has an invalid length");
    const int bits = static_cast<int>(s.length);
    const Int128 low = s.is_signed ? -(Int128{1} << (bits - 1)) : Int128{0};
    const Int128 high = s.is_signed ? (Int128{1} << (bits - 1)) - 1 : (Int128{1} << bits) - 1;
    if (raw < low || raw > high) {
      return fail(argument, text,
                  "needs raw " + int128_text(raw) + ", beyond the " + std::to_string(s.length) + " bits of " +
                      s.name + " " + raw_span(s));
    }
    return success();
  }

  Result<void> check_limits(const Signal& s, double v, int argument, std::string_view text) const {
    if (!options_.check_limits || (s.minimum == 0 && s.maximum == 0) || std::isnan(v)) return success();
    if (v < s.minimum) {
      return fail(argument, text,
                  format_shortest(v) + unit_of(s) + " is below the minimum " + format_shortest(s.minimum) +
                      unit_of(s) + " of " + s.name);
    }
    if (v > s.maximum) {
      return fail(argument, text,
                  format_shortest(v) + unit_of(s) + " is above the maximum " + format_shortest(s.maximum) +
                      unit_of(s) + " of " + s.name);
    }
    return success();
  }

  // The value a multiplexer holds, as decoding sees it: physical, truncated to an integer.
  Int128 selector_value(std::size_t i) const {
    const Signal& s = m_.signals[i];
    const std::uint64_t raw = given_[i] ? given_[i]->raw : default_raw(s);
    // Signed raw values are kept sign-extended to 64 bits.
    const Int128 r =
        s.is_signed ? static_cast<Int128>(static_cast<std::int64_t>(raw)) : static_cast<Int128>(raw);
    // Exact like the decoder for integral scaling; |raw| < 2^64 and |scale| < 2^60 keep it in 127 bits.
    if (is_integral(s.scale) && is_integral(s.offset) && std::abs(s.scale) < 0x1p60)
      return r * static_cast<Int128>(s.scale) + static_cast<Int128>(s.offset);
    return static_cast<Int128>(std::trunc(static_cast<double>(r) * s.scale + s.offset));
  }

  static bool selects(const Signal& s, Int128 value) {
    if (value < 0) return false;
    const auto v = static_cast<std::uint64_t>(value);
    return std::any_of(s.multiplex_ranges.begin(), s.multiplex_ranges.end(),
                       [v](const MultiplexRange& r) { return v >= r.low && v <= r.high; });
  }

  std::string ranges_text(const std::vector<MultiplexRange>& ranges) const {
    std::string text;
    for (const auto& r : ranges) {
      if (!text.empty()) text += ", ";
      text += std::to_string(r.low);
      if (r.high != r.low) text.append("-").append(std::to_string(r.high));
    }
    return text;
  }

  // The values a multiplexer may hold: its signals' ranges and its value-table keys.
  std::string valid_values(std::size_t mux) const {
    std::set<std::uint64_t> singles;
    std::vector<MultiplexRange> ranges;
    for (const auto& s : m_.signals) {
      if (s.multiplexer != m_.signals[mux].name) continue;
      for (const auto& r : s.multiplex_ranges) {
        if (r.low == r.high)
          singles.insert(r.low);
        else
          ranges.push_back(r);
      }
    }
    for (const auto& d : m_.signals[mux].value_descriptions) {
      if (d.value >= 0) singles.insert(static_cast<std::uint64_t>(d.value));
    }
    std::vector<MultiplexRange> all;
    for (const auto v : singles) all.push_back({v, v});
    all.insert(all.end(), ranges.begin(), ranges.end());
    if (all.size() > 16) all.resize(16);
    return ranges_text(all);
  }

  bool has_dependents(std::size_t mux) const {
    return std::any_of(m_.signals.begin(), m_.signals.end(),
                       [&](const Signal& s) { return s.multiplexer == m_.signals[mux].name; });
  }

  bool valid_selector(std::size_t mux, Int128 value) const {
    for (const auto& s : m_.signals) {
      if (s.multiplexer == m_.signals[mux].name && selects(s, value)) return true;
    }
    return std::any_of(m_.signals[mux].value_descriptions.begin(), m_.signals[mux].value_descriptions.end(),
                       [value](const ValueDescription& d) { return Int128{d.value} == value; });
  }

  // Decides whether signal i is sent (state 2) or not (3), its multiplexers first.
  Result<void> resolve(std::size_t i, std::vector<int>& state) {
    if (state[i] >= 2) return success();
    if (state[i] == 1) {  // a multiplexer cycle: the file says A selects B and B selects A
      return Error(ErrorCode::invalid_argument,
                   m_.name + ": signal " + m_.signals[i].name + " is multiplexed by itself through a cycle");
    }
    const Signal& s = m_.signals[i];
    if (!s.is_multiplexed()) {
      state[i] = 2;
    } else {
      const auto mux = index_.find(s.multiplexer);
      if (mux == index_.end()) {
        state[i] = 3;  // the checker reports it; the decoder never decodes it
      } else {
        state[i] = 1;
        if (auto r = resolve(mux->second, state); !r) return r;
        state[i] = state[mux->second] == 2 && selects(s, selector_value(mux->second)) ? 2 : 3;
      }
    }
    if (state[i] == 2 && s.is_multiplexer && has_dependents(i)) {
      const std::string values = valid_values(i);
      if (!given_[i]) {
        return Error(ErrorCode::invalid_argument, m_.name + " is multiplexed: give " + s.name +
                                                      "=VALUE (one of " + values +
                                                      ") to choose which signals the frame carries");
      }
      if (!valid_selector(i, selector_value(i))) {
        return fail(given_[i]->argument, given_[i]->text,
                    s.name + " " + int128_text(selector_value(i)) + " selects nothing in " + m_.name +
                        ": a decoder rejects the frame (valid: " + values + ")");
      }
    }
    if (state[i] == 3 && given_[i]) {
      const auto mux = index_.find(s.multiplexer);
      std::string cause =
          s.name + " is sent only when " + s.multiplexer + " is " + ranges_text(s.multiplex_ranges);
      if (mux != index_.end() && state[mux->second] == 2)
        cause += ", and " + s.multiplexer + " is " + int128_text(selector_value(mux->second));
      else
        cause += ", and " + s.multiplexer + " is not sent";
      return fail(given_[i]->argument, given_[i]->text, cause);
    }
    return success();
  }

  static std::string_view trim(std::string_view t) {
    while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
    while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
    return t;
  }

  const Database& db_;
  const MessageCodec& codec_;
  const Message& m_;
  const EncodeOptions& options_;
  std::vector<std::optional<Assigned>> given_;
  std::unordered_map<std::string, std::size_t> index_;
  std::vector<std::string> names_;
};

}  // namespace

Result<EncodedFrame> encode_assignments(const Database& db, const MessageCodec& message,
                                        std::span<const std::string> assignments,
                                        const EncodeOptions& options, int first_argument) {
  return Encoder(db, message, options).run(assignments, first_argument);
}

Result<const MessageCodec*> find_message_for_encoding(const DatabaseCodec& codec,
                                                      std::string_view name_or_id) {
  if (const MessageCodec* m = codec.find(name_or_id); m != nullptr) return m;
  if (const auto id = parse_integer(name_or_id); id && *id >= 0 && *id <= 0x1FFFFFFF) {
    const auto value = static_cast<std::uint32_t>(*id);
    const MessageCodec* m = codec.find(value, value > 0x7FF);
    if (m == nullptr && value <= 0x7FF) m = codec.find(value, true);
    if (m != nullptr) return m;
    return Error(ErrorCode::not_found, "no message with id " + std::string(name_or_id) + " in the DBC");
  }
  std::vector<std::string> names;
  for (const auto& m : codec.database().messages) names.push_back(m.name);
  return Error(ErrorCode::not_found, "no message named '" + escape_untrusted(name_or_id, 64) +
                                         "' in the DBC" + did_you_mean(name_or_id, names));
}

}  // namespace cellguard::dbc
