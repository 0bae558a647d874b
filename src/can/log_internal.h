// Private to src/can: the line buffer shared by the log readers, the small parsing and formatting
// helpers of the text formats, and the per-format factories behind log.h.
//
// Thread safety: none; every object here belongs to one reader or writer.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "can/frame.h"
#include "can/log.h"
#include "core/result.h"
#include "core/text.h"

namespace cellguard::can::detail {

// Every line of every format is bounded; a longer line is reported and skipped (style habit 10).
inline constexpr std::size_t kMaxLineBytes = 4096;

// Linux <linux/can/error.h>: an error frame carries CAN_ERR_FLAG in its id; the formats without
// error classes (ASC ErrorFrame, TRC ER) are mapped to CAN_ERR_BUSERROR, as python-can does.
inline constexpr std::uint32_t kCanErrFlag = 0x20000000;
inline constexpr std::uint32_t kCanErrBusError = 0x00000080;
inline constexpr std::uint32_t kCanErrMask = 0x1FFFFFFF;

// Where a reader's bytes come from: a stream the caller owns, a file, or standard input.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Reads up to `size` bytes into `dst`; returns 0 at the end of the input.
  virtual Result<std::size_t> read(char* dst, std::size_t size) = 0;
};

std::unique_ptr<ByteSource> make_stream_source(std::istream& in);
// Opens `path` for reading; "-" is standard input (not closed at the end).
Result<std::unique_ptr<ByteSource>> open_file_source(const std::string& path);

// Splits a byte source into lines, reading in large chunks. A line is returned as a view into the
// buffer, valid until the next call; "\r\n" and "\n" both end a line.
class LineReader {
 public:
  LineReader(std::unique_ptr<ByteSource> source, std::string source_name);

  // Buffers up to `size` bytes (fewer at the end of the input) without consuming them.
  Result<std::string_view> head(std::size_t size);
  // Sets `line` to the next line and returns true, or false at the end of the input. A line longer
  // than kMaxLineBytes is skipped and reported as an Error; an I/O failure is an Error too.
  Result<bool> next(std::string_view& line);

  std::uint64_t line_number() const { return line_number_; }
  std::uint64_t bytes_read() const { return consumed_; }
  const std::string& source_name() const { return source_name_; }
  // A parse error at the current line: "<source>:<line>: <cause>".
  Error error(std::string_view cause) const;
  // Counts the current line as skipped (not a frame, not blank); the first is kept, escaped.
  void note_skipped(std::string_view line) {
    if (skipped_.count++ == 0) {
      skipped_.first =
          source_name_ + ":" + std::to_string(line_number_) + ": '" + escape_untrusted(line, 120) + "'";
    }
  }
  const LogReader::SkippedLines& skipped() const { return skipped_; }

 private:
  // Reads more input after the buffered bytes; false at the end of the input.
  Result<bool> fill();

  std::unique_ptr<ByteSource> source_;
  std::string source_name_;
  void grow();

  std::unique_ptr<char[]> buffer_;
  std::size_t capacity_ = 0;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
  bool at_end_ = false;
  std::uint64_t line_number_ = 0;
  std::uint64_t consumed_ = 0;
  LogReader::SkippedLines skipped_;
};

// What parsing one line gave: a frame, nothing (blank, header, comment, other event), or a cause.
struct LineResult {
  enum class Kind : std::uint8_t { frame, skip, error };
  Kind kind = Kind::skip;
  const char* cause = nullptr;  // static text, set for Kind::error
  static LineResult frame() { return {Kind::frame, nullptr}; }
  static LineResult skip() { return {Kind::skip, nullptr}; }
  static LineResult fail(const char* why) { return {Kind::error, why}; }
};

// The read loop of every line-based format: lines that carry no frame are skipped, a malformed one
// is returned as an Error (the next call goes on after it). `parse(line, frame)` gives a LineResult.
template <typename ParseLine>
Result<bool> next_frame(LineReader& lines, Frame& frame, ParseLine&& parse) {
  std::string_view line;
  for (;;) {
    auto more = lines.next(line);
    if (!more.ok()) return more.error();
    if (!*more) return false;
    const LineResult result = parse(line, frame);
    if (result.kind == LineResult::Kind::frame) return true;
    if (result.kind == LineResult::Kind::error) return lines.error(result.cause);
    if (line.find_first_not_of(" \t\r") != std::string_view::npos) lines.note_skipped(line);
  }
}

// ---- character helpers ------------------------------------------------------------------------

inline constexpr std::array<std::int8_t, 256> kHexValue = [] {
  std::array<std::int8_t, 256> table{};
  for (auto& v : table) v = -1;
  for (int c = '0'; c <= '9'; ++c) table[static_cast<std::size_t>(c)] = static_cast<std::int8_t>(c - '0');
  for (int c = 'a'; c <= 'f'; ++c)
    table[static_cast<std::size_t>(c)] = static_cast<std::int8_t>(c - 'a' + 10);
  for (int c = 'A'; c <= 'F'; ++c)
    table[static_cast<std::size_t>(c)] = static_cast<std::int8_t>(c - 'A' + 10);
  return table;
}();

inline int hex_value(char c) { return kHexValue[static_cast<unsigned char>(c)]; }
// a + b into `sum`; false if the result does not fit (timestamps from hostile input).
inline bool add_ns(std::int64_t a, std::int64_t b, std::int64_t& sum) {
  return !__builtin_add_overflow(a, b, &sum);
}
inline bool sub_ns(std::int64_t a, std::int64_t b, std::int64_t& difference) {
  return !__builtin_sub_overflow(a, b, &difference);
}

inline bool is_digit(char c) { return c >= '0' && c <= '9'; }
inline bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }
inline char to_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string_view trim(std::string_view text);
bool equals_ignore_case(std::string_view a, std::string_view b);
bool starts_with_ignore_case(std::string_view text, std::string_view prefix);

// Splits whitespace-separated tokens from the front of a line.
class Tokens {
 public:
  explicit Tokens(std::string_view text) : rest_(text) {}
  // The next token, or an empty view when none is left.
  std::string_view next();
  std::string_view peek() const;
  std::string_view rest() const;  // what follows, leading blanks removed
  bool empty() const { return rest().empty(); }

 private:
  std::string_view rest_;
};

// Parses an unsigned integer in `base` (10 or 16) that fits in 32 bits; the whole text must match.
bool parse_uint(std::string_view text, int base, std::uint32_t& value);

// Parses a decimal number "[-]digits[.digits]" into an integer scaled by 10^scale_digits (digits
// beyond that precision are dropped), e.g. "1.5" with scale 9 gives 1500000000. The whole text must
// match; false on overflow of int64.
bool parse_fixed(std::string_view text, int scale_digits, std::int64_t& value);

// ---- calendar (proleptic Gregorian, UTC) ------------------------------------------------------

std::int64_t days_from_civil(std::int64_t year, unsigned month, unsigned day);
void civil_from_days(std::int64_t days, std::int64_t& year, unsigned& month, unsigned& day);
// 1 = January; accepts English and German three-letter names (and "März"), any case.
unsigned month_from_name(std::string_view name);
inline constexpr std::int64_t kNanosPerSecond = 1'000'000'000;
inline constexpr std::int64_t kNanosPerDay = 86'400 * kNanosPerSecond;

// ---- output -----------------------------------------------------------------------------------

// Collects a writer's text and hands it to the stream in large blocks.
class OutputBuffer {
 public:
  explicit OutputBuffer(std::ostream& out);
  ~OutputBuffer();
  OutputBuffer(const OutputBuffer&) = delete;
  OutputBuffer& operator=(const OutputBuffer&) = delete;

  void append(std::string_view text) { text_.append(text); }
  void append(char c) { text_.push_back(c); }
  // Appends `value` in decimal, left-padded with `fill` to `width` characters.
  void append_uint(std::uint64_t value, int width = 0, char fill = ' ');
  // Appends `value` in upper-case hex, zero-padded to `width` digits.
  void append_hex(std::uint32_t value, int width);
  void append_hex_byte(std::uint8_t value);
  // Appends `count` spaces.
  void pad(std::size_t count) { text_.append(count, ' '); }
  std::size_t size() const { return text_.size(); }
  // Writes the buffered text to the stream once it is large enough (or always with `force`).
  Result<void> flush(bool force = false);

 private:
  std::ostream& out_;
  std::string text_;
};

// Fails for frames no format can represent (id or length out of range).
Result<void> check_frame(const Frame& frame);

// ---- per-format parsers (also used by detection) and factories --------------------------------

LineResult parse_candump_log_line(std::string_view line, Frame& frame);
LineResult parse_candump_console_line(std::string_view line, Frame& frame);

std::unique_ptr<LogReader> make_candump_log_reader(LineReader lines);
std::unique_ptr<LogReader> make_candump_console_reader(LineReader lines);
std::unique_ptr<LogReader> make_asc_reader(LineReader lines);
std::unique_ptr<LogReader> make_trc_reader(LineReader lines);

std::unique_ptr<LogWriter> make_candump_log_writer(std::ostream& out);
std::unique_ptr<LogWriter> make_asc_writer(std::ostream& out);
std::unique_ptr<LogWriter> make_trc_writer(std::ostream& out);

}  // namespace cellguard::can::detail
