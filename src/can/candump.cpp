// candump (linux-can/can-utils) text: the log file form of `candump -L` / `candump -l`, read and
// written, and the console forms of `candump`, `-ta`, `-td`, `-tz` and `-tA`, read only.
//
// Log form (can-utils lib.c, snprintf_canframe):
//   (1700000000.000250) can0 181#F2A70000           classic, 3 hex digits for an 11-bit id
//   (1700000000.000250) can0 18FF50E5#01            8 hex digits for a 29-bit id
//   (1700000000.000250) can0 123#R  / 123#R5        remote request, optional length
//   (1700000000.000250) can0 123#1122334455667788_C classic 8 bytes with raw DLC 9..F (dropped)
//   (1700000000.000250) can0 20000080#0000000000000000  CAN_ERR_FLAG in the id: an error frame
//   (1700000000.000250) can0 123##3112233           CAN FD, flags nibble (BRS 1, ESI 2, FDF 4)
// candump -x appends " R" or " T" (python-can writes it too); it is accepted and ignored.
//
// Console form (can-utils lib.c, snprintf_long_canframe), accepting the lines cantools accepts:
//   "  can0  181   [8]  F2 A7 00 00 00 00 00 00"   (classic: one-digit length)
//   "  can0  123  [12]  11 22 ..."                 (CAN FD: two-digit length)
//   "  can0  100   [4]  remote request"
//   "(1700000000.000250)  can0  ..."  -ta;  "(000.000250)  can0  ..."  -td / -tz;
//   "(2023-11-14 22:13:20.000250)  can0  ..."  -tA (taken as UTC: the text has no zone)
// Text after the data bytes (the ASCII column of -a, ERRORFRAME of -e) is ignored, and -e's
// explanation lines (starting with a tab) are skipped. -td gives deltas between frames and -tz
// times since the first frame; they look alike and are kept as written (nanoseconds since 0).
#include <cstring>
#include <ostream>

#include "can/log_internal.h"

namespace cellguard::can::detail {

namespace {

constexpr std::uint8_t kFdBrs = 0x01;
constexpr std::uint8_t kFdEsi = 0x02;

// Skips blanks from `p`; returns the first non-blank.
inline const char* skip_blanks(const char* p, const char* end) {
  while (p < end && is_space(*p)) ++p;
  return p;
}

inline const char* skip_token(const char* p, const char* end) {
  while (p < end && !is_space(*p)) ++p;
  return p;
}

// The id field of both forms: 3 hex digits (11-bit), or 8 (29-bit, or an error frame).
LineResult parse_id(std::string_view text, Frame& frame) {
  std::uint32_t value = 0;
  for (char c : text) {
    const int d = hex_value(c);
    if (d < 0) return LineResult::fail("CAN id is not hexadecimal");
    value = (value << 4) | static_cast<std::uint32_t>(d);
  }
  if (text.size() == 3) {
    if (value > kMaxStandardId) return LineResult::fail("11-bit CAN id above 7FF");
    frame.id = value;
    frame.extended = false;
    frame.error = false;
    return LineResult::frame();
  }
  if (text.size() != 8) return LineResult::fail("CAN id must have 3 or 8 hex digits");
  if ((value & ~(kCanErrFlag | kCanErrMask)) != 0) return LineResult::fail("CAN id has unknown flag bits");
  frame.error = (value & kCanErrFlag) != 0;
  frame.extended = !frame.error;
  frame.id = value & kCanErrMask;
  return LineResult::frame();
}

// The "(...)" timestamp: seconds with up to nanosecond digits, or -tA's "YYYY-MM-DD HH:MM:SS.ffffff".
bool parse_timestamp(std::string_view text, std::int64_t& ns) {
  if (text.size() >= 19 && text[4] == '-' && text[7] == '-' && text[10] == ' ' && text[13] == ':' &&
      text[16] == ':') {
    std::uint32_t year = 0, month = 0, day = 0, hour = 0, minute = 0;
    std::int64_t second_ns = 0;
    if (!parse_uint(text.substr(0, 4), 10, year) || !parse_uint(text.substr(5, 2), 10, month) ||
        !parse_uint(text.substr(8, 2), 10, day) || !parse_uint(text.substr(11, 2), 10, hour) ||
        !parse_uint(text.substr(14, 2), 10, minute) || !parse_fixed(text.substr(17), 9, second_ns) ||
        year < 1970 || year > 2261 || month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 ||
        minute > 59 || second_ns < 0 || second_ns >= 61 * kNanosPerSecond) {
      return false;
    }
    ns = days_from_civil(year, month, day) * kNanosPerDay +
         (static_cast<std::int64_t>(hour) * 3600 + minute * 60) * kNanosPerSecond + second_ns;
    return true;
  }
  return parse_fixed(text, 9, ns) && ns >= 0;
}

}  // namespace

LineResult parse_candump_log_line(std::string_view line, Frame& frame) {
  const char* p = line.data();
  const char* end = p + line.size();
  p = skip_blanks(p, end);
  while (end > p && is_space(end[-1])) --end;
  if (p == end) return LineResult::skip();
  if (*p != '(') return LineResult::fail("expected '(' and a timestamp");
  const auto* close = static_cast<const char*>(std::memchr(p, ')', static_cast<std::size_t>(end - p)));
  if (close == nullptr) return LineResult::fail("timestamp without ')'");
  std::int64_t ns = 0;
  if (!parse_fixed(std::string_view(p + 1, static_cast<std::size_t>(close - p - 1)), 9, ns) || ns < 0) {
    return LineResult::fail("malformed timestamp");
  }
  p = close + 1;
  if (p == end || !is_space(*p)) return LineResult::fail("expected a blank after the timestamp");
  p = skip_blanks(p, end);
  const char* bus = p;
  p = skip_token(p, end);
  const auto bus_size = static_cast<std::size_t>(p - bus);
  if (bus_size == 0) return LineResult::fail("missing interface name");
  if (bus_size > BusName::kCapacity) return LineResult::fail("interface name longer than 15 bytes");
  p = skip_blanks(p, end);
  const char* id = p;
  while (p < end && *p != '#' && !is_space(*p)) ++p;
  if (p == end || *p != '#') return LineResult::fail("expected <id>#<data>");
  if (const auto r = parse_id(std::string_view(id, static_cast<std::size_t>(p - id)), frame);
      r.kind != LineResult::Kind::frame) {
    return r;
  }
  ++p;
  frame.timestamp_ns = ns;
  frame.bus.assign(std::string_view(bus, bus_size));
  frame.remote = false;
  frame.fd = false;
  frame.bitrate_switch = false;
  frame.error_state = false;
  frame.size = 0;

  std::size_t max_bytes = kMaxClassicPayload;
  if (p < end && *p == '#') {
    const int flags = p + 1 < end ? hex_value(p[1]) : -1;
    if (flags < 0) return LineResult::fail("CAN FD frame without a flags digit after '##'");
    if (frame.error) return LineResult::fail("an error frame cannot be a CAN FD frame");
    frame.fd = true;
    frame.bitrate_switch = (flags & kFdBrs) != 0;
    frame.error_state = (flags & kFdEsi) != 0;
    max_bytes = kMaxFdPayload;
    p += 2;
  } else if (p < end && (*p == 'R' || *p == 'r')) {
    ++p;
    frame.remote = true;
    if (p < end && !is_space(*p)) {
      const int length = hex_value(*p);
      if (length < 0 || length > 8) return LineResult::fail("remote frame length must be 0..8");
      frame.size = static_cast<std::uint8_t>(length);
      ++p;
      // An optional raw DLC 9..F after length 8 (len8_dlc) is accepted and dropped.
      if (p < end && length == 8 && hex_value(*p) > 8) ++p;
    }
  }
  if (!frame.remote) {
    std::size_t size = 0;
    while (p < end && !is_space(*p)) {
      if (*p == '.') {  // can-utils accepts dots between bytes
        ++p;
        continue;
      }
      if (*p == '_') break;
      const int high = hex_value(*p);
      const int low = p + 1 < end ? hex_value(p[1]) : -1;
      if (high < 0 || low < 0) return LineResult::fail("data must be pairs of hex digits");
      if (size == max_bytes) {
        return LineResult::fail(frame.fd ? "CAN FD data longer than 64 bytes" : "data longer than 8 bytes");
      }
      frame.data[size++] = static_cast<std::uint8_t>((high << 4) | low);
      p += 2;
    }
    frame.size = static_cast<std::uint8_t>(size);
    if (p < end && *p == '_') {
      // Raw DLC 9..F of a classic frame with 8 bytes (len8_dlc): accepted, not kept.
      if (frame.fd || size != 8 || p + 1 >= end || hex_value(p[1]) < 9) {
        return LineResult::fail("'_<dlc>' needs 8 classic data bytes and a DLC of 9..F");
      }
      p += 2;
    }
  }
  if (p == end) return LineResult::frame();
  if (!is_space(*p)) return LineResult::fail("unexpected text after the data");
  p = skip_blanks(p, end);
  // candump -x: R (received), T (transmitted), D (dropped/echo); nothing may follow it.
  if (end - p == 1 && (*p == 'R' || *p == 'T' || *p == 'D' || *p == 'r' || *p == 't'))
    return LineResult::frame();
  return LineResult::fail("unexpected text after the frame");
}

LineResult parse_candump_console_line(std::string_view line, Frame& frame) {
  if (!line.empty() && line.front() == '\t') return LineResult::skip();  // candump -e detail lines
  const char* p = line.data();
  const char* end = p + line.size();
  p = skip_blanks(p, end);
  while (end > p && is_space(end[-1])) --end;
  if (p == end) return LineResult::skip();
  std::int64_t ns = 0;
  if (*p == '(') {
    const auto* close = static_cast<const char*>(std::memchr(p, ')', static_cast<std::size_t>(end - p)));
    if (close == nullptr) return LineResult::fail("timestamp without ')'");
    if (!parse_timestamp(std::string_view(p + 1, static_cast<std::size_t>(close - p - 1)), ns)) {
      return LineResult::fail("malformed timestamp");
    }
    p = skip_blanks(close + 1, end);
  }
  const char* bus = p;
  p = skip_token(p, end);
  const auto bus_size = static_cast<std::size_t>(p - bus);
  if (bus_size == 0) return LineResult::fail("missing interface name");
  if (bus_size > BusName::kCapacity) return LineResult::fail("interface name longer than 15 bytes");
  p = skip_blanks(p, end);
  const char* id = p;
  p = skip_token(p, end);
  std::string_view id_text(id, static_cast<std::size_t>(p - id));
  if (id_text == "RX" || id_text == "TX") {
    // candump -x: "RX B E" / "TX - -" before the id.
    for (int i = 0; i < 2; ++i) {
      p = skip_blanks(p, end);
      p = skip_token(p, end);
    }
    p = skip_blanks(p, end);
    id = p;
    p = skip_token(p, end);
    id_text = std::string_view(id, static_cast<std::size_t>(p - id));
  }
  if (id_text.empty()) return LineResult::fail("missing CAN id");
  if (const auto r = parse_id(id_text, frame); r.kind != LineResult::Kind::frame) return r;
  p = skip_blanks(p, end);
  if (p == end || *p != '[') return LineResult::fail("expected '[<length>]' after the CAN id");
  ++p;
  std::size_t length = 0;
  int digits = 0;
  while (p < end && is_digit(*p) && digits < 3) {
    length = length * 10 + static_cast<std::size_t>(*p - '0');
    ++p;
    ++digits;
  }
  if (p == end || *p != ']' || digits == 0 || digits > 2) return LineResult::fail("malformed '[<length>]'");
  ++p;
  frame.timestamp_ns = ns;
  frame.bus.assign(std::string_view(bus, bus_size));
  frame.remote = false;
  frame.fd = digits == 2;  // snprintf_long_canframe prints CAN FD lengths with two digits
  frame.bitrate_switch = false;
  frame.error_state = false;
  if (length > (frame.fd ? kMaxFdPayload : kMaxClassicPayload)) return LineResult::fail("length too large");
  frame.size = static_cast<std::uint8_t>(length);
  p = skip_blanks(p, end);
  constexpr std::string_view kRemote = "remote request";
  if (static_cast<std::size_t>(end - p) >= kRemote.size() && std::string_view(p, kRemote.size()) == kRemote) {
    if (frame.fd) return LineResult::fail("CAN FD has no remote frames");
    frame.remote = true;
    return LineResult::frame();
  }
  for (std::size_t i = 0; i < length; ++i) {
    if (end - p < 2) return LineResult::fail("fewer data bytes than the length says");
    const int high = hex_value(p[0]);
    const int low = hex_value(p[1]);
    if (high < 0 || low < 0 || (end - p > 2 && !is_space(p[2]))) {
      return LineResult::fail("data must be hex bytes separated by blanks");
    }
    frame.data[i] = static_cast<std::uint8_t>((high << 4) | low);
    p = skip_blanks(p + 2, end);
  }
  return LineResult::frame();
}

namespace {

template <LineResult (*Parse)(std::string_view, Frame&), LogFormat kFormat>
class CandumpReader final : public LogReader {
 public:
  explicit CandumpReader(LineReader lines) : lines_(std::move(lines)) {}

  Result<bool> next(Frame& frame) override { return next_frame(lines_, frame, Parse); }
  LogFormat format() const override { return kFormat; }
  std::uint64_t bytes_read() const override { return lines_.bytes_read(); }
  SkippedLines skipped_lines() const override { return lines_.skipped(); }

 private:
  LineReader lines_;
};

// Writes what `candump -L` writes: "(%010lu.%06lu) %s %s\n", upper-case hex. Timestamps are cut to
// microseconds as candump does; a frame without a bus name is written on "can0".
class CandumpLogWriter final : public LogWriter {
 public:
  explicit CandumpLogWriter(std::ostream& out) : out_(out) {}

  Result<void> write(const Frame& frame) override {
    if (auto valid = check_frame(frame); !valid.ok()) return valid;
    const std::string_view bus = frame.bus.empty() ? std::string_view("can0") : frame.bus.view();
    for (char c : bus) {
      if (is_space(c) || c == '\n') {
        return Error(ErrorCode::invalid_argument, "bus name contains a blank");
      }
    }
    const auto seconds = static_cast<std::uint64_t>(frame.timestamp_ns / kNanosPerSecond);
    const auto micros = static_cast<std::uint64_t>(frame.timestamp_ns % kNanosPerSecond / 1000);
    out_.append('(');
    out_.append_uint(seconds, 10, '0');
    out_.append('.');
    out_.append_uint(micros, 6, '0');
    out_.append(") ");
    out_.append(bus);
    out_.append(' ');
    if (frame.error) {
      out_.append_hex(frame.id | kCanErrFlag, 8);
    } else {
      out_.append_hex(frame.id, frame.extended ? 8 : 3);
    }
    out_.append('#');
    if (frame.remote) {
      out_.append('R');
      if (frame.size != 0) out_.append_hex(frame.size, 1);
    } else {
      if (frame.fd) {
        out_.append('#');
        out_.append_hex((frame.bitrate_switch ? kFdBrs : 0) | (frame.error_state ? kFdEsi : 0), 1);
      }
      for (std::size_t i = 0; i < frame.size; ++i) out_.append_hex_byte(frame.data[i]);
    }
    out_.append('\n');
    return out_.flush();
  }

  Result<void> finish() override { return out_.flush(true); }

 private:
  OutputBuffer out_;
};

}  // namespace

std::unique_ptr<LogReader> make_candump_log_reader(LineReader lines) {
  return std::make_unique<CandumpReader<parse_candump_log_line, LogFormat::candump_log>>(std::move(lines));
}

std::unique_ptr<LogReader> make_candump_console_reader(LineReader lines) {
  return std::make_unique<CandumpReader<parse_candump_console_line, LogFormat::candump_console>>(
      std::move(lines));
}

std::unique_ptr<LogWriter> make_candump_log_writer(std::ostream& out) {
  return std::make_unique<CandumpLogWriter>(out);
}

}  // namespace cellguard::can::detail
