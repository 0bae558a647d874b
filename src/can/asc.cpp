// Vector ASCII logs (CANalyzer / CANoe .asc), read and written.
//
//   date Wed Nov 15 10:13:20.000 pm 2023
//   base hex  timestamps absolute
//   internal events logged
//   Begin Triggerblock Wed Nov 15 10:13:20.000 pm 2023
//      0.000000 Start of measurement
//      0.000250 1  181             Rx   d 8 F2 A7 00 00 00 00 00 00
//      0.000300 1  18FF50E5x       Rx   d 2 01 02          (trailing x: 29-bit id)
//      0.000400 1  100             Rx   r 4                 (remote request, optional DLC)
//      0.000500 1  ErrorFrame
//      0.000600 CANFD   1 Rx        123  Name  1 0 9 12 11 22 ... <duration> <length> <flags> ...
//   End TriggerBlock
//
// Reading:
// - The start time is the date of "Begin Triggerblock", or else of the "date" line; without either,
//   timestamps are nanoseconds since the start of the log. Dates have no zone and are taken as UTC.
// - "timestamps relative" means each event time is the delta to the previous event.
// - "base dec" makes ids, DLCs and data decimal. CAN FD data lengths are always decimal.
// - The bus of a frame is the channel number as written ("1"); python-can and CANoe count from 1.
// - A CANFD line's flags field (BLF CanFdMessage64 flags: 0x1000 EDL, 0x10 remote) tells CAN FD
//   frames from classic frames logged on an FD channel; BRS and ESI come from their own columns.
// - ErrorFrame lines give an error frame with id CAN_ERR_BUSERROR and no data.
// - Other events (Statistic, Chip status, J1939, comments) are skipped.
//
// Writing: the header and Begin Triggerblock carry the first frame's time cut to milliseconds,
// event times are seconds since then with microsecond digits, direction is always Rx. A bus named
// by a decimal number is written as that channel; any other bus as channel 1.
#include <cstring>
#include <ostream>

#include "can/log_internal.h"

namespace cellguard::can::detail {

namespace {

constexpr std::uint32_t kFlagRemote = 0x10;
constexpr std::uint32_t kFlagEdl = 0x1000;
constexpr std::uint32_t kFlagBrs = 0x2000;
constexpr std::uint32_t kFlagEsi = 0x4000;

// "Wed Nov 15 10:13:20.000 pm 2023", "Mi Nov 15 22:13:20.123 2023", "Mon Sep 2 13:24:48 2019".
bool parse_asc_date(std::string_view text, std::int64_t& ns) {
  Tokens tokens(text);
  std::string_view token = tokens.next();
  unsigned month = month_from_name(token);
  if (month == 0) {  // the weekday comes first
    token = tokens.next();
    month = month_from_name(token);
  }
  if (month == 0) return false;
  std::uint32_t day = 0;
  if (!parse_uint(tokens.next(), 10, day) || day < 1 || day > 31) return false;
  const std::string_view time = tokens.next();
  if (time.size() < 8 || time[2] != ':' || time[5] != ':') return false;
  std::uint32_t hour = 0, minute = 0;
  std::int64_t second_ns = 0;
  if (!parse_uint(time.substr(0, 2), 10, hour) || !parse_uint(time.substr(3, 2), 10, minute) ||
      !parse_fixed(time.substr(6), 9, second_ns) || hour > 23 || minute > 59 || second_ns < 0 ||
      second_ns >= 61 * kNanosPerSecond) {
    return false;
  }
  std::string_view next = tokens.next();
  if (equals_ignore_case(next, "am") || equals_ignore_case(next, "pm")) {
    if (hour < 1 || hour > 12) return false;
    if (hour == 12) hour = 0;
    if (equals_ignore_case(next, "pm")) hour += 12;
    next = tokens.next();
  }
  std::uint32_t year = 0;
  if (!parse_uint(next, 10, year) || year < 1970 || year > 2261) return false;
  ns = days_from_civil(year, month, day) * kNanosPerDay +
       (static_cast<std::int64_t>(hour) * 3600 + minute * 60) * kNanosPerSecond + second_ns;
  return true;
}

class AscReader final : public LogReader {
 public:
  explicit AscReader(LineReader lines) : lines_(std::move(lines)) {}

  Result<bool> next(Frame& frame) override {
    return next_frame(lines_, frame,
                      [this](std::string_view line, Frame& f) { return parse_line(trim(line), f); });
  }
  LogFormat format() const override { return LogFormat::asc; }
  std::uint64_t bytes_read() const override { return lines_.bytes_read(); }
  SkippedLines skipped_lines() const override { return lines_.skipped(); }

 private:
  LineResult parse_line(std::string_view line, Frame& frame);
  LineResult parse_header(std::string_view line);
  LineResult parse_classic(Tokens& tokens, std::string_view channel, Frame& frame);
  LineResult parse_fd(Tokens& tokens, Frame& frame);
  bool parse_id(std::string_view text, Frame& frame) const;
  bool parse_byte(std::string_view text, std::uint8_t& value) const;

  LineReader lines_;
  int base_ = 16;
  bool relative_ = false;
  std::int64_t start_ns_ = 0;
  std::int64_t previous_offset_ns_ = 0;
};

LineResult AscReader::parse_header(std::string_view line) {
  if (starts_with_ignore_case(line, "date ")) {
    std::int64_t ns = 0;
    if (!parse_asc_date(line.substr(5), ns)) return LineResult::fail("unrecognised date");
    start_ns_ = ns;
    return LineResult::skip();
  }
  if (starts_with_ignore_case(line, "base ")) {
    Tokens tokens(line.substr(5));
    const auto base = tokens.next();
    if (equals_ignore_case(base, "hex")) {
      base_ = 16;
    } else if (equals_ignore_case(base, "dec")) {
      base_ = 10;
    } else {
      return LineResult::fail("base must be hex or dec");
    }
    if (equals_ignore_case(tokens.next(), "timestamps"))
      relative_ = equals_ignore_case(tokens.next(), "relative");
    return LineResult::skip();
  }
  if (starts_with_ignore_case(line, "begin triggerblock")) {
    const auto rest = trim(line.substr(18));
    std::int64_t ns = 0;
    if (!rest.empty()) {
      if (!parse_asc_date(rest, ns)) return LineResult::fail("unrecognised Begin Triggerblock date");
      start_ns_ = ns;
    }
    previous_offset_ns_ = 0;
    return LineResult::skip();
  }
  return LineResult::skip();  // comments, "internal events logged", "End TriggerBlock", ...
}

bool AscReader::parse_id(std::string_view text, Frame& frame) const {
  frame.extended = !text.empty() && (text.back() == 'x' || text.back() == 'X');
  if (frame.extended) text.remove_suffix(1);
  std::uint32_t id = 0;
  if (!parse_uint(text, base_, id) || id > (frame.extended ? kMaxExtendedId : kMaxStandardId)) return false;
  frame.id = id;
  return true;
}

bool AscReader::parse_byte(std::string_view text, std::uint8_t& value) const {
  std::uint32_t v = 0;
  if (text.size() > 3 || !parse_uint(text, base_, v) || v > 0xFF) return false;
  value = static_cast<std::uint8_t>(v);
  return true;
}

LineResult AscReader::parse_line(std::string_view line, Frame& frame) {
  if (line.empty()) return LineResult::skip();
  if (!is_digit(line.front())) return parse_header(line);
  Tokens tokens(line);
  std::int64_t offset_ns = 0;
  if (!parse_fixed(tokens.next(), 9, offset_ns)) return LineResult::skip();  // not an event line
  const std::string_view second = tokens.next();
  std::uint32_t channel = 0;
  const bool is_fd = equals_ignore_case(second, "CANFD");
  if (!is_fd && !parse_uint(second, 10, channel)) return LineResult::skip();  // LIN, SV:, ...

  frame.remote = false;
  frame.error = false;
  frame.fd = false;
  frame.bitrate_switch = false;
  frame.error_state = false;
  frame.size = 0;
  const LineResult result = is_fd ? parse_fd(tokens, frame) : parse_classic(tokens, second, frame);
  if (result.kind != LineResult::Kind::frame) return result;
  if (relative_) {
    if (!add_ns(offset_ns, previous_offset_ns_, offset_ns)) return LineResult::fail("timestamp out of range");
    previous_offset_ns_ = offset_ns;
  }
  if (!add_ns(start_ns_, offset_ns, frame.timestamp_ns)) return LineResult::fail("timestamp out of range");
  return result;
}

LineResult AscReader::parse_classic(Tokens& tokens, std::string_view channel, Frame& frame) {
  const std::string_view first = tokens.next();
  if (equals_ignore_case(first, "ErrorFrame")) {
    frame.error = true;
    frame.extended = false;
    frame.id = kCanErrBusError;
    frame.bus.assign(channel);
    return LineResult::frame();
  }
  const std::string_view direction = tokens.next();
  if (!equals_ignore_case(direction, "Rx") && !equals_ignore_case(direction, "Tx")) {
    return LineResult::skip();  // Statistic:, Chip status, J1939TP, ...
  }
  if (!parse_id(first, frame)) return LineResult::fail("malformed or out-of-range CAN id");
  frame.bus.assign(channel);
  const std::string_view type = tokens.next();
  const bool remote = equals_ignore_case(type, "r");
  if (!remote && !equals_ignore_case(type, "d"))
    return LineResult::fail("expected 'd' or 'r' after the direction");
  std::uint32_t dlc = 0;
  const std::string_view dlc_text = tokens.peek();
  if (remote) {
    frame.remote = true;
    // CANoe before 8.5 wrote a bare "r"; a DLC follows in newer files.
    if (!dlc_text.empty() && parse_uint(dlc_text, base_, dlc)) {
      tokens.next();
      frame.size = dlc_to_length(static_cast<std::uint8_t>(dlc > 15 ? 15 : dlc), false);
    }
    return LineResult::frame();
  }
  tokens.next();
  if (!parse_uint(dlc_text, base_, dlc) || dlc > 15) return LineResult::fail("malformed DLC");
  frame.size = dlc_to_length(static_cast<std::uint8_t>(dlc), false);
  for (std::size_t i = 0; i < frame.size; ++i) {
    if (!parse_byte(tokens.next(), frame.data[i]))
      return LineResult::fail("fewer data bytes than the DLC says");
  }
  return LineResult::frame();  // what follows (Length = ..., BitCount = ...) is not needed
}

LineResult AscReader::parse_fd(Tokens& tokens, Frame& frame) {
  const std::string_view channel = tokens.next();
  std::uint32_t channel_number = 0;
  if (!parse_uint(channel, 10, channel_number)) return LineResult::fail("malformed CANFD channel");
  frame.bus.assign(channel);
  const std::string_view direction = tokens.next();
  const std::string_view id = tokens.next();
  if (equals_ignore_case(direction, "ErrorFrame") || equals_ignore_case(id, "ErrorFrame")) {
    frame.error = true;
    frame.extended = false;
    frame.id = kCanErrBusError;
    return LineResult::frame();
  }
  if (!equals_ignore_case(direction, "Rx") && !equals_ignore_case(direction, "Tx")) {
    return LineResult::fail("expected Rx or Tx after the CANFD channel");
  }
  if (!parse_id(id, frame)) return LineResult::fail("malformed or out-of-range CAN id");
  std::string_view brs = tokens.next();
  if (brs != "0" && brs != "1") brs = tokens.next();  // a symbolic name came first
  const std::string_view esi = tokens.next();
  std::uint32_t dlc = 0;
  std::uint32_t length = 0;
  if ((brs != "0" && brs != "1") || (esi != "0" && esi != "1"))
    return LineResult::fail("malformed BRS or ESI");
  if (!parse_uint(tokens.next(), 16, dlc) || dlc > 15) return LineResult::fail("malformed DLC");
  if (!parse_uint(tokens.next(), 10, length) || length > kMaxFdPayload)
    return LineResult::fail("malformed data length");
  frame.fd = true;
  frame.bitrate_switch = brs == "1";
  frame.error_state = esi == "1";
  frame.size = static_cast<std::uint8_t>(length);
  for (std::size_t i = 0; i < length; ++i) {
    if (!parse_byte(tokens.next(), frame.data[i]))
      return LineResult::fail("fewer data bytes than the length says");
  }
  // <message duration> <message length> <flags>: without them the line is taken as CAN FD.
  tokens.next();
  tokens.next();
  std::uint32_t flags = 0;
  if (parse_uint(tokens.next(), 16, flags)) {
    if ((flags & kFlagEdl) == 0) {
      frame.fd = false;
      frame.bitrate_switch = false;
      frame.error_state = false;
      frame.remote = (flags & kFlagRemote) != 0;
      if (frame.remote) frame.size = dlc_to_length(static_cast<std::uint8_t>(dlc), false);
      if (frame.size > kMaxClassicPayload) return LineResult::fail("classic frame longer than 8 bytes");
    }
  }
  return LineResult::frame();
}

// ---- writer -----------------------------------------------------------------------------------

void append_date(OutputBuffer& out, std::int64_t ns) {
  static constexpr std::string_view kWeekdays[] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};
  static constexpr std::string_view kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::int64_t days = ns / kNanosPerDay;
  std::int64_t in_day = ns % kNanosPerDay;
  if (in_day < 0) {
    in_day += kNanosPerDay;
    --days;
  }
  std::int64_t year = 0;
  unsigned month = 0;
  unsigned day = 0;
  civil_from_days(days, year, month, day);
  const auto weekday = static_cast<std::size_t>(((days % 7) + 7) % 7);  // 1970-01-01 was a Thursday
  const auto seconds = in_day / kNanosPerSecond;
  const auto millis = static_cast<std::uint64_t>(in_day % kNanosPerSecond / 1'000'000);
  const auto hour24 = static_cast<unsigned>(seconds / 3600);
  unsigned hour12 = hour24 % 12;
  if (hour12 == 0) hour12 = 12;
  out.append(kWeekdays[weekday]);
  out.append(' ');
  out.append(kMonths[month - 1]);
  out.append(' ');
  out.append_uint(day, 2, '0');
  out.append(' ');
  out.append_uint(hour12, 2, '0');
  out.append(':');
  out.append_uint(static_cast<std::uint64_t>(seconds / 60 % 60), 2, '0');
  out.append(':');
  out.append_uint(static_cast<std::uint64_t>(seconds % 60), 2, '0');
  out.append('.');
  out.append_uint(millis, 3, '0');
  out.append(hour24 < 12 ? " am " : " pm ");
  out.append_uint(static_cast<std::uint64_t>(year));
}

class AscWriter final : public LogWriter {
 public:
  explicit AscWriter(std::ostream& out) : out_(out) {}

  Result<void> write(const Frame& frame) override {
    if (auto valid = check_frame(frame); !valid.ok()) return valid;
    if (!started_) start(frame.timestamp_ns);
    append_time(frame.timestamp_ns - start_ns_);
    std::string_view channel = "1";
    if (!frame.bus.empty()) {
      std::uint32_t number = 0;
      if (parse_uint(frame.bus.view(), 10, number)) channel = frame.bus.view();
    }
    if (frame.error) {
      out_.append(channel);
      out_.append("  ErrorFrame\n");
      return out_.flush();
    }
    const std::size_t id_start = out_.size();
    if (frame.fd) {
      out_.append("CANFD ");
      out_.pad(channel.size() < 3 ? 3 - channel.size() : 0);
      out_.append(channel);
      out_.append(" Rx ");
      append_id(frame, 8);
      out_.append(' ');
      out_.append(frame.bitrate_switch ? "1 " : "0 ");
      out_.append(frame.error_state ? "1 " : "0 ");
      out_.append_hex(length_to_dlc(frame.size), 1);
      out_.append(' ');
      out_.append_uint(frame.size, 2);
      for (std::size_t i = 0; i < frame.size; ++i) {
        out_.append(' ');
        out_.append_hex_byte(frame.data[i]);
      }
      // message duration, message length, flags, CRC, bit timings: unknown, written as 0.
      const std::uint32_t flags =
          kFlagEdl | (frame.bitrate_switch ? kFlagBrs : 0) | (frame.error_state ? kFlagEsi : 0);
      out_.append(" 0 0 ");
      out_.append_hex(flags, 1);
      out_.append(" 0 0 0 0 0\n");
      return out_.flush();
    }
    out_.append(channel);
    out_.append("  ");
    append_id(frame, 0);
    const std::size_t written = out_.size() - id_start - channel.size() - 2;
    out_.pad(written < 16 ? 16 - written : 1);
    out_.append("Rx   ");
    out_.append(frame.remote ? "r " : "d ");
    out_.append_hex(frame.size, 1);
    if (!frame.remote) {
      for (std::size_t i = 0; i < frame.size; ++i) {
        out_.append(' ');
        out_.append_hex_byte(frame.data[i]);
      }
    }
    out_.append('\n');
    return out_.flush();
  }

  Result<void> finish() override {
    if (!started_) start(0);
    out_.append("End TriggerBlock\n");
    return out_.flush(true);
  }

 private:
  void start(std::int64_t first_ns) {
    started_ = true;
    // Milliseconds are all a date line holds; the offsets carry the rest.
    start_ns_ = first_ns - ((first_ns % 1'000'000) + 1'000'000) % 1'000'000;
    out_.append("date ");
    append_date(out_, start_ns_);
    out_.append("\nbase hex  timestamps absolute\ninternal events logged\n// version 9.0.0\n");
    out_.append("Begin Triggerblock ");
    append_date(out_, start_ns_);
    out_.append('\n');
    append_time(0);
    out_.append("Start of measurement\n");
  }

  void append_id(const Frame& frame, int width) {
    char text[12];
    int n = 0;
    std::uint32_t id = frame.id;
    do {
      text[n++] = "0123456789ABCDEF"[id & 0xF];
      id >>= 4;
    } while (id != 0);
    const int total = n + (frame.extended ? 1 : 0);
    for (int i = total; i < width; ++i) out_.append(' ');
    while (n > 0) out_.append(text[--n]);
    if (frame.extended) out_.append('x');
  }

  // "%11.6f " of seconds, from nanoseconds (cut to microseconds).
  void append_time(std::int64_t offset_ns) {
    const bool negative = offset_ns < 0;
    const auto magnitude = static_cast<std::uint64_t>(negative ? -offset_ns : offset_ns);
    char text[32];
    int n = 0;
    std::uint64_t micros = magnitude / 1000;
    for (int i = 0; i < 6; ++i) {
      text[n++] = static_cast<char>('0' + micros % 10);
      micros /= 10;
    }
    text[n++] = '.';
    do {
      text[n++] = static_cast<char>('0' + micros % 10);
      micros /= 10;
    } while (micros != 0);
    if (negative) text[n++] = '-';
    for (int i = n; i < 11; ++i) out_.append(' ');
    while (n > 0) out_.append(text[--n]);
    out_.append(' ');
  }

  OutputBuffer out_;
  bool started_ = false;
  std::int64_t start_ns_ = 0;
};

}  // namespace

std::unique_ptr<LogReader> make_asc_reader(LineReader lines) {
  return std::make_unique<AscReader>(std::move(lines));
}

std::unique_ptr<LogWriter> make_asc_writer(std::ostream& out) { return std::make_unique<AscWriter>(out); }

}  // namespace cellguard::can::detail
