// PEAK-System trace files (.trc, PEAK_CAN_TRC_File_Format.pdf), read in versions 1.0 to 2.1 and
// written in version 2.1.
//
//   1.0  "     1)      1841  0001  8  00 00 ..."       N) O I L D; "ERROR" before data; RTR
//   1.1  "     1)      1059.9  Rx         0300  7  00 .." N) O T I L D; T = Rx, Tx, Warng, Error
//   1.2  "     1)      1059.900  1  Rx    0300  7  00 .." adds the bus column before T
//   1.3  "     1)      1059.900 1  Rx     0300 -  7  .."  adds a reserved '-' column before L
//   2.x  ";$COLUMNS=N,O,T,B,I,d,R,L,D" names the columns; 2.0 defaults to N,O,T,I,d,l,D.
//        T: DT data, FD / FB / FE / BI CAN FD (BRS, ESI, both), RR remote, ER error frame,
//           ST / EC / EV status, error counters, events (skipped). L is the DLC, l the length.
//
// Time: O is milliseconds since ;$STARTTIME (days since 1899-12-30, no zone: taken as UTC). With a
// STARTTIME a frame's time is absolute, otherwise nanoseconds since the start of the trace.
// Bus: the bus column as written ("1"), or "" where the version has none. Status lines (id
// FFFFFFFF, Warng, ST, EC, EV) are skipped; ER and Error lines become error frames with id
// CAN_ERR_BUSERROR and no data (the PEAK error detail bytes are not mapped).
//
// Writing (2.1): STARTTIME is the first frame's time cut to a multiple of 864 ms, so that it is an
// exact 5-decimal day fraction; offsets have microsecond digits; direction is always Rx; a bus
// named by a number 1..16 is written as that bus, any other as bus 1. Error frames are written as
// ER lines without detail bytes.
#include <ostream>

#include "can/log_internal.h"

namespace cellguard::can::detail {

namespace {

constexpr std::int64_t kDaysFrom1899To1970 = 25569;
constexpr std::int64_t kStartQuantumNs = 864'000'000;  // 1e-5 day

enum class Version { v1_0, v1_1, v1_2, v1_3, v2 };

// ";$STARTTIME=43474.6400450116": days since 1899-12-30 as a decimal fraction.
bool parse_start_time(std::string_view text, std::int64_t& ns) {
  const auto dot = text.find('.');
  std::uint32_t days = 0;
  // Beyond 2261 nanoseconds since 1970 no longer fit in 64 bits.
  if (!parse_uint(text.substr(0, dot), 10, days) || days > 130'000) return false;
  long double fraction = 0;
  if (dot != std::string_view::npos) {
    long double scale = 1;
    std::uint64_t digits = 0;
    int count = 0;
    for (char c : text.substr(dot + 1)) {
      if (!is_digit(c)) return false;
      if (count < 18) {
        digits = digits * 10 + static_cast<std::uint64_t>(c - '0');
        scale *= 10;
        ++count;
      }
    }
    fraction = static_cast<long double>(digits) / scale;
  }
  const auto day_ns = static_cast<std::int64_t>(fraction * static_cast<long double>(kNanosPerDay) + 0.5L);
  ns = (static_cast<std::int64_t>(days) - kDaysFrom1899To1970) * kNanosPerDay + day_ns;
  return true;
}

class TrcReader final : public LogReader {
 public:
  explicit TrcReader(LineReader lines) : lines_(std::move(lines)) {}

  Result<bool> next(Frame& frame) override {
    return next_frame(lines_, frame,
                      [this](std::string_view line, Frame& f) { return parse_line(trim(line), f); });
  }
  LogFormat format() const override { return LogFormat::trc; }
  std::uint64_t bytes_read() const override { return lines_.bytes_read(); }
  SkippedLines skipped_lines() const override { return lines_.skipped(); }

 private:
  LineResult parse_line(std::string_view line, Frame& frame);
  LineResult parse_directive(std::string_view line);
  LineResult parse_v1(Tokens& tokens, Frame& frame);
  LineResult parse_v2(Tokens& tokens, Frame& frame);
  LineResult parse_data(Tokens& tokens, std::size_t length, Frame& frame);
  bool reset(Frame& frame, std::int64_t offset_ns) const;

  LineReader lines_;
  Version version_ = Version::v1_0;
  std::string columns_ = "NOTIdlD";
  std::int64_t start_ns_ = 0;
};

LineResult TrcReader::parse_directive(std::string_view line) {
  if (starts_with_ignore_case(line, ";$FILEVERSION=")) {
    const auto value = trim(line.substr(14));
    if (value == "1.0") {
      version_ = Version::v1_0;
    } else if (value == "1.1") {
      version_ = Version::v1_1;
    } else if (value == "1.2") {
      version_ = Version::v1_2;
    } else if (value == "1.3") {
      version_ = Version::v1_3;
    } else if (value == "2.0") {
      version_ = Version::v2;
      columns_ = "NOTIdlD";
    } else if (value == "2.1") {
      version_ = Version::v2;
      columns_ = "NOTBIdRLD";
    } else {
      return LineResult::fail("unsupported TRC file version");
    }
  } else if (starts_with_ignore_case(line, ";$STARTTIME=")) {
    std::int64_t ns = 0;
    if (!parse_start_time(trim(line.substr(12)), ns)) return LineResult::fail("malformed $STARTTIME");
    start_ns_ = ns;
  } else if (starts_with_ignore_case(line, ";$COLUMNS=")) {
    std::string columns;
    for (char c : trim(line.substr(10))) {
      if (c == ',') continue;
      if (std::string_view("NOTBIdRLlD").find(c) == std::string_view::npos) {
        return LineResult::fail("unknown column in $COLUMNS");
      }
      columns.push_back(c);
    }
    if (columns.find('O') == std::string::npos || columns.find('T') == std::string::npos ||
        columns.find('I') == std::string::npos) {
      return LineResult::fail("$COLUMNS lacks O, T or I");
    }
    columns_ = std::move(columns);
  }
  return LineResult::skip();
}

// Clears the frame for a new line at `offset_ns`; false if the time is out of range.
bool TrcReader::reset(Frame& frame, std::int64_t offset_ns) const {
  if (!add_ns(start_ns_, offset_ns, frame.timestamp_ns)) return false;
  frame.id = 0;
  frame.size = 0;
  frame.extended = false;
  frame.remote = false;
  frame.error = false;
  frame.fd = false;
  frame.bitrate_switch = false;
  frame.error_state = false;
  frame.bus.assign("");
  return true;
}

LineResult TrcReader::parse_data(Tokens& tokens, std::size_t length, Frame& frame) {
  frame.size = static_cast<std::uint8_t>(length);
  for (std::size_t i = 0; i < length; ++i) {
    const std::string_view byte = tokens.next();
    std::uint32_t value = 0;
    if (byte.size() != 2 || !parse_uint(byte, 16, value))
      return LineResult::fail("fewer data bytes than the length says");
    frame.data[i] = static_cast<std::uint8_t>(value);
  }
  return LineResult::frame();
}

bool parse_trc_id(std::string_view text, Frame& frame) {
  std::uint32_t id = 0;
  if (!parse_uint(text, 16, id) || id > kMaxExtendedId) return false;
  frame.id = id;
  // PEAK writes 11-bit ids with 4 digits and 29-bit ids with 8.
  frame.extended = text.size() > 4 || id > kMaxStandardId;
  return true;
}

LineResult TrcReader::parse_v1(Tokens& tokens, Frame& frame) {
  std::int64_t offset_ns = 0;
  if (!parse_fixed(tokens.next(), 6, offset_ns)) return LineResult::fail("malformed time offset");
  if (!reset(frame, offset_ns)) return LineResult::fail("time offset out of range");
  if (version_ == Version::v1_2 || version_ == Version::v1_3) {
    const std::string_view bus = tokens.next();
    std::uint32_t number = 0;
    if (!parse_uint(bus, 10, number)) return LineResult::fail("malformed bus number");
    frame.bus.assign(bus);
  }
  bool error = false;
  if (version_ != Version::v1_0) {
    const std::string_view type = tokens.next();
    if (equals_ignore_case(type, "Error")) {
      error = true;
    } else if (!equals_ignore_case(type, "Rx") && !equals_ignore_case(type, "Tx")) {
      return LineResult::skip();  // Warng and other status lines
    }
  }
  const std::string_view id = tokens.next();
  if (id == "FFFFFFFF") return LineResult::skip();  // bus status (BUSLIGHT, BUSHEAVY, ...)
  if (version_ == Version::v1_3) tokens.next();     // reserved '-'
  std::uint32_t length = 0;
  if (!parse_uint(tokens.next(), 10, length) || length > kMaxClassicPayload)
    return LineResult::fail("malformed length");
  if (equals_ignore_case(tokens.peek(), "ERROR")) error = true;  // version 1.0
  if (error) {
    frame.error = true;
    frame.id = kCanErrBusError;
    return LineResult::frame();
  }
  if (!parse_trc_id(id, frame)) return LineResult::fail("malformed or out-of-range CAN id");
  if (tokens.peek() == "RTR") {
    frame.remote = true;
    frame.size = static_cast<std::uint8_t>(length);
    return LineResult::frame();
  }
  return parse_data(tokens, length, frame);
}

LineResult TrcReader::parse_v2(Tokens& tokens, Frame& frame) {
  std::string_view type;
  std::uint32_t dlc = 0;
  std::uint32_t length = 0;
  bool have_dlc = false;
  bool have_length = false;
  for (char column : columns_) {
    switch (column) {
      case 'N':
      case 'd':
      case 'R':
        tokens.next();
        break;
      case 'O': {
        std::int64_t offset_ns = 0;
        if (!parse_fixed(tokens.next(), 6, offset_ns)) return LineResult::fail("malformed time offset");
        if (!reset(frame, offset_ns)) return LineResult::fail("time offset out of range");
        break;
      }
      case 'T':
        type = tokens.next();
        if (type == "ER") {
          frame.error = true;
          frame.id = kCanErrBusError;
        } else if (type != "DT" && type != "FD" && type != "FB" && type != "FE" && type != "BI" &&
                   type != "RR") {
          return LineResult::skip();  // ST, EC, EV, and types of later versions
        }
        break;
      case 'B': {
        const std::string_view bus = tokens.next();
        if (bus != "-") frame.bus.assign(bus);
        break;
      }
      case 'I': {
        if (frame.error) return LineResult::frame();  // the rest of an ER line is detail bytes
        if (!parse_trc_id(tokens.next(), frame)) return LineResult::fail("malformed or out-of-range CAN id");
        break;
      }
      case 'L':
        if (!parse_uint(tokens.next(), 10, dlc) || dlc > 15) return LineResult::fail("malformed DLC");
        have_dlc = true;
        break;
      case 'l':
        if (!parse_uint(tokens.next(), 10, length) || length > kMaxFdPayload) {
          return LineResult::fail("malformed data length");
        }
        have_length = true;
        break;
      case 'D': {
        frame.fd = type != "DT" && type != "RR";
        frame.bitrate_switch = type == "FB" || type == "BI";
        frame.error_state = type == "FE" || type == "BI";
        if (!have_length) {
          if (!have_dlc) return LineResult::fail("no length column");
          length = dlc_to_length(static_cast<std::uint8_t>(dlc), frame.fd);
        }
        if (!frame.fd && length > kMaxClassicPayload)
          return LineResult::fail("classic frame longer than 8 bytes");
        if (type == "RR") {
          frame.remote = true;
          frame.size = static_cast<std::uint8_t>(length);
          return LineResult::frame();
        }
        return parse_data(tokens, length, frame);
      }
      default:
        break;
    }
  }
  return LineResult::fail("$COLUMNS has no D column");
}

LineResult TrcReader::parse_line(std::string_view line, Frame& frame) {
  if (line.empty()) return LineResult::skip();
  if (line.front() == ';') return parse_directive(line);
  Tokens tokens(line);
  std::string_view number = tokens.next();
  if (version_ == Version::v2) {
    tokens = Tokens(line);  // N is one of the columns
    return parse_v2(tokens, frame);
  }
  if (number.size() < 2 || number.back() != ')') return LineResult::fail("expected '<number>)'");
  return parse_v1(tokens, frame);
}

// ---- writer -----------------------------------------------------------------------------------

class TrcWriter final : public LogWriter {
 public:
  explicit TrcWriter(std::ostream& out) : out_(out) {}

  Result<void> write(const Frame& frame) override {
    if (auto valid = check_frame(frame); !valid.ok()) return valid;
    if (!started_) start(frame.timestamp_ns);
    ++number_;
    out_.append_uint(number_, 7);
    out_.append(' ');
    append_offset(frame.timestamp_ns - start_ns_);
    out_.append(' ');
    const char* type = "DT";
    if (frame.error) {
      type = "ER";
    } else if (frame.remote) {
      type = "RR";
    } else if (frame.fd) {
      type = frame.bitrate_switch ? (frame.error_state ? "BI" : "FB") : (frame.error_state ? "FE" : "FD");
    }
    out_.append(type);
    out_.append(' ');
    std::uint32_t bus = 1;
    if (!frame.bus.empty() && (!parse_uint(frame.bus.view(), 10, bus) || bus < 1 || bus > 16)) bus = 1;
    out_.append_uint(bus, 2);
    out_.append(' ');
    if (frame.error) {
      out_.append("       - Rx -  0\r\n");
      return out_.flush();
    }
    if (frame.extended) {
      out_.append_hex(frame.id, 8);
    } else {
      out_.append("    ");
      out_.append_hex(frame.id, 4);
    }
    out_.append(" Rx -  ");
    const std::uint8_t dlc = frame.fd ? length_to_dlc(frame.size) : frame.size;
    out_.append_uint(dlc);
    out_.pad(dlc < 10 ? 4 : 3);
    if (!frame.remote) {
      for (std::size_t i = 0; i < frame.size; ++i) {
        out_.append_hex_byte(frame.data[i]);
        out_.append(' ');
      }
    }
    out_.append("\r\n");
    return out_.flush();
  }

  Result<void> finish() override {
    if (!started_) start(0);
    return out_.flush(true);
  }

 private:
  void start(std::int64_t first_ns) {
    started_ = true;
    start_ns_ = first_ns - ((first_ns % kStartQuantumNs) + kStartQuantumNs) % kStartQuantumNs;
    const std::int64_t quanta = start_ns_ / kStartQuantumNs;  // units of 1e-5 day since 1970
    const std::int64_t days = quanta / 100'000 + kDaysFrom1899To1970;
    std::int64_t fraction = quanta % 100'000;
    std::int64_t whole = days;
    if (fraction < 0) {
      fraction += 100'000;
      --whole;
    }
    out_.append(";$FILEVERSION=2.1\r\n;$STARTTIME=");
    out_.append_uint(static_cast<std::uint64_t>(whole < 0 ? 0 : whole));
    out_.append('.');
    out_.append_uint(static_cast<std::uint64_t>(fraction), 5, '0');
    out_.append("\r\n;$COLUMNS=N,O,T,B,I,d,R,L,D\r\n;\r\n;   Generated by cellguard\r\n");
    out_.append(";   Message   Time    Type    ID     Rx/Tx\r\n");
    out_.append(";   Number    Offset  |  Bus  [hex]  |  Reserved\r\n");
    out_.append(";   |         [ms]    |  |    |      |  |  Data Length Code\r\n");
    out_.append(";   |         |       |  |    |      |  |  |    Data [hex] ...\r\n");
    out_.append(";   |         |       |  |    |      |  |  |    |\r\n");
    out_.append(";---+-- ------+------ +- +- --+----- +- +- +--- +- -- -- -- -- -- -- --\r\n");
  }

  // Milliseconds with three decimals, right-aligned in 13 characters.
  void append_offset(std::int64_t offset_ns) {
    const bool negative = offset_ns < 0;
    const auto micros = static_cast<std::uint64_t>(negative ? -offset_ns : offset_ns) / 1000;
    char text[32];
    int n = 0;
    std::uint64_t rest = micros;
    for (int i = 0; i < 3; ++i) {
      text[n++] = static_cast<char>('0' + rest % 10);
      rest /= 10;
    }
    text[n++] = '.';
    do {
      text[n++] = static_cast<char>('0' + rest % 10);
      rest /= 10;
    } while (rest != 0);
    if (negative) text[n++] = '-';
    for (int i = n; i < 13; ++i) out_.append(' ');
    while (n > 0) out_.append(text[--n]);
  }

  OutputBuffer out_;
  bool started_ = false;
  std::int64_t start_ns_ = 0;
  std::uint64_t number_ = 0;
};

}  // namespace

std::unique_ptr<LogReader> make_trc_reader(LineReader lines) {
  return std::make_unique<TrcReader>(std::move(lines));
}

std::unique_ptr<LogWriter> make_trc_writer(std::ostream& out) { return std::make_unique<TrcWriter>(out); }

}  // namespace cellguard::can::detail
