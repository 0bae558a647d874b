// Format names, detection, opening of log sources, and the helpers the format files share.
#include "can/log.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <istream>
#include <limits>
#include <ostream>

#include "can/log_internal.h"

namespace cellguard::can {

namespace detail {

namespace {

// Large reads keep the per-line cost to a memchr; 1 MiB also bounds the memory of a reader. Small
// inputs (one-line tests, fuzz inputs) never need more than the first 64 KiB.
constexpr std::size_t kInitialBufferBytes = std::size_t{1} << 16;
constexpr std::size_t kMaxBufferBytes = std::size_t{1} << 20;
constexpr std::size_t kFlushBytes = std::size_t{1} << 16;

class StreamSource final : public ByteSource {
 public:
  explicit StreamSource(std::istream& in) : in_(in) {}
  Result<std::size_t> read(char* dst, std::size_t size) override {
    if (!in_.good()) return std::size_t{0};
    in_.read(dst, static_cast<std::streamsize>(size));
    if (in_.bad()) return Error(ErrorCode::io_error, "reading the log stream failed");
    return static_cast<std::size_t>(in_.gcount());
  }

 private:
  std::istream& in_;
};

// A C stdio file: fread on a FILE* is the portable way to read a file or stdin in large blocks.
class FileSource final : public ByteSource {
 public:
  FileSource(std::FILE* file, std::string path, bool owned)
      : file_(file), path_(std::move(path)), owned_(owned) {}
  ~FileSource() override {
    if (owned_) std::fclose(file_);
  }
  FileSource(const FileSource&) = delete;
  FileSource& operator=(const FileSource&) = delete;

  Result<std::size_t> read(char* dst, std::size_t size) override {
    const std::size_t got = std::fread(dst, 1, size, file_);
    if (got == 0 && std::ferror(file_)) {
      return Error(ErrorCode::io_error, path_ + ": read failed: " + std::strerror(errno));
    }
    return got;
  }

 private:
  std::FILE* file_;
  std::string path_;
  bool owned_;
};

}  // namespace

std::unique_ptr<ByteSource> make_stream_source(std::istream& in) {
  return std::make_unique<StreamSource>(in);
}

Result<std::unique_ptr<ByteSource>> open_file_source(const std::string& path) {
  if (path == "-") return std::unique_ptr<ByteSource>(std::make_unique<FileSource>(stdin, "<stdin>", false));
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) {
    return Error(ErrorCode::io_error, "cannot open " + path + ": " + std::strerror(errno));
  }
  return std::unique_ptr<ByteSource>(std::make_unique<FileSource>(file, path, true));
}

// ---- LineReader -------------------------------------------------------------------------------

LineReader::LineReader(std::unique_ptr<ByteSource> source, std::string source_name)
    : source_(std::move(source)),
      source_name_(std::move(source_name)),
      buffer_(std::make_unique_for_overwrite<char[]>(kInitialBufferBytes)),
      capacity_(kInitialBufferBytes) {}

void LineReader::grow() {
  auto bigger = std::make_unique_for_overwrite<char[]>(kMaxBufferBytes);
  std::memcpy(bigger.get(), buffer_.get() + begin_, end_ - begin_);
  end_ -= begin_;
  begin_ = 0;
  buffer_ = std::move(bigger);
  capacity_ = kMaxBufferBytes;
}

Result<bool> LineReader::fill() {
  if (at_end_) return false;
  if (begin_ > 0) {
    std::memmove(buffer_.get(), buffer_.get() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (end_ == capacity_) {
    if (capacity_ == kMaxBufferBytes) return true;  // full: the caller consumes first
    grow();
  }
  auto got = source_->read(buffer_.get() + end_, capacity_ - end_);
  if (!got.ok()) return got.error();
  if (*got == 0) {
    at_end_ = true;
    return false;
  }
  end_ += *got;
  // A read that filled the buffer means a large input: read it in larger blocks.
  if (end_ == capacity_ && capacity_ < kMaxBufferBytes) grow();
  return true;
}

Result<std::string_view> LineReader::head(std::size_t size) {
  if (size > kMaxBufferBytes) size = kMaxBufferBytes;
  while (end_ - begin_ < size) {
    auto more = fill();
    if (!more.ok()) return more.error();
    if (!*more) break;
  }
  return std::string_view(buffer_.get() + begin_, std::min(size, end_ - begin_));
}

Result<bool> LineReader::next(std::string_view& line) {
  std::size_t scanned = 0;  // bytes after begin_ known to hold no newline
  bool too_long = false;
  for (;;) {
    const char* start = buffer_.get() + begin_;
    const std::size_t available = end_ - begin_;
    const void* newline = std::memchr(start + scanned, '\n', available - scanned);
    if (newline != nullptr) {
      const std::size_t length = static_cast<std::size_t>(static_cast<const char*>(newline) - start);
      begin_ += length + 1;
      consumed_ += length + 1;
      ++line_number_;
      if (too_long || length > kMaxLineBytes) return error("line longer than 4096 bytes");
      line = std::string_view(start, length);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      return true;
    }
    if (available > kMaxLineBytes) {
      // Drop the unterminated part of an over-long line instead of growing the buffer.
      consumed_ += available;
      begin_ = end_;
      scanned = 0;
      too_long = true;
    } else {
      scanned = available;
    }
    auto more = fill();
    if (!more.ok()) return more.error();
    if (!*more) {
      if (begin_ == end_ && !too_long) return false;
      // The last line has no newline.
      const std::size_t length = end_ - begin_;
      line = std::string_view(buffer_.get() + begin_, length);
      begin_ = end_;
      consumed_ += length;
      ++line_number_;
      if (too_long) return error("line longer than 4096 bytes");
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      return true;
    }
  }
}

Error LineReader::error(std::string_view cause) const {
  std::string message = source_name_;
  message += ':';
  message += std::to_string(line_number_);
  message += ": ";
  message += cause;
  // Causes quote the line: the file's bytes reach logs and JSON only escaped.
  return Error(ErrorCode::parse_error, escape_untrusted(message));
}

// ---- text helpers -----------------------------------------------------------------------------

std::string_view trim(std::string_view text) {
  while (!text.empty() && (is_space(text.front()) || text.front() == '\n')) text.remove_prefix(1);
  while (!text.empty() && (is_space(text.back()) || text.back() == '\n')) text.remove_suffix(1);
  return text;
}

bool equals_ignore_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (to_lower(a[i]) != to_lower(b[i])) return false;
  }
  return true;
}

bool starts_with_ignore_case(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && equals_ignore_case(text.substr(0, prefix.size()), prefix);
}

std::string_view Tokens::next() {
  std::size_t i = 0;
  while (i < rest_.size() && is_space(rest_[i])) ++i;
  std::size_t j = i;
  while (j < rest_.size() && !is_space(rest_[j])) ++j;
  std::string_view token = rest_.substr(i, j - i);
  rest_.remove_prefix(j);
  return token;
}

std::string_view Tokens::peek() const {
  Tokens copy = *this;
  return copy.next();
}

std::string_view Tokens::rest() const {
  std::size_t i = 0;
  while (i < rest_.size() && is_space(rest_[i])) ++i;
  return rest_.substr(i);
}

bool parse_uint(std::string_view text, int base, std::uint32_t& value) {
  if (text.empty() || text.size() > 10) return false;
  std::uint64_t v = 0;
  for (char c : text) {
    const int d = base == 16 ? hex_value(c) : (is_digit(c) ? c - '0' : -1);
    if (d < 0) return false;
    v = v * static_cast<unsigned>(base) + static_cast<unsigned>(d);
  }
  if (v > std::numeric_limits<std::uint32_t>::max()) return false;
  value = static_cast<std::uint32_t>(v);
  return true;
}

bool parse_fixed(std::string_view text, int scale_digits, std::int64_t& value) {
  bool negative = false;
  if (!text.empty() && (text.front() == '-' || text.front() == '+')) {
    negative = text.front() == '-';
    text.remove_prefix(1);
  }
  if (text.empty()) return false;
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  std::int64_t whole = 0;
  std::size_t i = 0;
  for (; i < text.size() && is_digit(text[i]); ++i) {
    if (whole > (kMax - 9) / 10) return false;
    whole = whole * 10 + (text[i] - '0');
  }
  const std::size_t whole_digits = i;
  std::int64_t fraction = 0;
  int fraction_digits = 0;
  std::size_t fraction_chars = 0;
  if (i < text.size() && text[i] == '.') {
    for (++i; i < text.size() && is_digit(text[i]); ++i, ++fraction_chars) {
      if (fraction_digits < scale_digits) {
        fraction = fraction * 10 + (text[i] - '0');
        ++fraction_digits;
      }
    }
  }
  if (i != text.size() || whole_digits + fraction_chars == 0) return false;
  std::int64_t scale = 1;
  for (int k = 0; k < scale_digits; ++k) scale *= 10;
  for (int k = fraction_digits; k < scale_digits; ++k) fraction *= 10;
  if (whole > (kMax - fraction) / scale) return false;
  value = whole * scale + fraction;
  if (negative) value = -value;
  return true;
}

// ---- calendar ---------------------------------------------------------------------------------

// Howard Hinnant's days_from_civil / civil_from_days (public domain algorithms).
std::int64_t days_from_civil(std::int64_t year, unsigned month, unsigned day) {
  year -= month <= 2;
  const std::int64_t era = (year >= 0 ? year : year - 399) / 400;
  const auto yoe = static_cast<unsigned>(year - era * 400);
  const unsigned doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

void civil_from_days(std::int64_t days, std::int64_t& year, unsigned& month, unsigned& day) {
  days += 719468;
  const std::int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const auto doe = static_cast<unsigned>(days - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  day = doy - (153 * mp + 2) / 5 + 1;
  month = mp < 10 ? mp + 3 : mp - 9;
  year = static_cast<std::int64_t>(yoe) + era * 400 + (month <= 2);
}

unsigned month_from_name(std::string_view name) {
  static constexpr std::array<std::string_view, 12> kEnglish = {"jan", "feb", "mar", "apr", "may", "jun",
                                                                "jul", "aug", "sep", "oct", "nov", "dec"};
  for (unsigned m = 0; m < kEnglish.size(); ++m) {
    if (equals_ignore_case(name, kEnglish[m])) return m + 1;
  }
  if (equals_ignore_case(name, "mai")) return 5;
  if (equals_ignore_case(name, "okt")) return 10;
  if (equals_ignore_case(name, "dez")) return 12;
  // "Mär" in UTF-8 or Latin-1, and "März".
  if (name.size() >= 3 && name.size() <= 5 && to_lower(name.front()) == 'm' &&
      static_cast<unsigned char>(name[1]) >= 0x80) {
    return 3;
  }
  return 0;
}

// ---- output -----------------------------------------------------------------------------------

OutputBuffer::OutputBuffer(std::ostream& out) : out_(out) { text_.reserve(kFlushBytes + 512); }

OutputBuffer::~OutputBuffer() {
  // Best effort for a writer dropped without finish(); finish() reports failures.
  if (!text_.empty()) out_.write(text_.data(), static_cast<std::streamsize>(text_.size()));
}

void OutputBuffer::append_uint(std::uint64_t value, int width, char fill) {
  char digits[24];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0);
  for (int i = n; i < width; ++i) text_.push_back(fill);
  while (n > 0) text_.push_back(digits[--n]);
}

void OutputBuffer::append_hex(std::uint32_t value, int width) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  char digits[8];
  int n = 0;
  do {
    digits[n++] = kDigits[value & 0xF];
    value >>= 4;
  } while (value != 0);
  for (int i = n; i < width; ++i) text_.push_back('0');
  while (n > 0) text_.push_back(digits[--n]);
}

void OutputBuffer::append_hex_byte(std::uint8_t value) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  text_.push_back(kDigits[value >> 4]);
  text_.push_back(kDigits[value & 0xF]);
}

Result<void> OutputBuffer::flush(bool force) {
  if (!force && text_.size() < kFlushBytes) return success();
  out_.write(text_.data(), static_cast<std::streamsize>(text_.size()));
  text_.clear();
  if (force) out_.flush();
  if (!out_.good()) return Error(ErrorCode::io_error, "writing the log failed");
  return success();
}

Result<void> check_frame(const Frame& frame) {
  // Text logs hold times since 1970 or since the log start: never negative.
  if (frame.timestamp_ns < 0) return Error(ErrorCode::invalid_argument, "cannot write a negative time");
  if (frame.error) {
    if (frame.id > kCanErrMask)
      return Error(ErrorCode::invalid_argument, "error frame class bits out of range");
  } else if (frame.id > (frame.extended ? kMaxExtendedId : kMaxStandardId)) {
    return Error(ErrorCode::invalid_argument, "CAN id " + std::to_string(frame.id) + " out of range");
  }
  if (frame.size > (frame.fd ? kMaxFdPayload : kMaxClassicPayload)) {
    return Error(ErrorCode::invalid_argument, "payload of " + std::to_string(frame.size) + " bytes too long");
  }
  if (frame.fd && frame.remote) return Error(ErrorCode::invalid_argument, "CAN FD has no remote frames");
  return success();
}

}  // namespace detail

// ---- public API -------------------------------------------------------------------------------

using detail::equals_ignore_case;
using detail::LineResult;

std::string_view to_string(LogFormat format) {
  switch (format) {
    case LogFormat::candump_log:
      return "candump-log";
    case LogFormat::candump_console:
      return "candump-console";
    case LogFormat::asc:
      return "asc";
    case LogFormat::trc:
      return "trc";
  }
  return "unknown";
}

std::optional<LogFormat> parse_log_format(std::string_view name) {
  struct Alias {
    std::string_view name;
    LogFormat format;
  };
  static constexpr Alias kAliases[] = {
      {"candump", LogFormat::candump_log},
      {"candump-log", LogFormat::candump_log},
      {"candump_log", LogFormat::candump_log},
      {"log", LogFormat::candump_log},
      {"candump-console", LogFormat::candump_console},
      {"candump_console", LogFormat::candump_console},
      {"console", LogFormat::candump_console},
      {"asc", LogFormat::asc},
      {"vector-asc", LogFormat::asc},
      {"trc", LogFormat::trc},
      {"peak-trc", LogFormat::trc},
  };
  for (const auto& alias : kAliases) {
    if (equals_ignore_case(name, alias.name)) return alias.format;
  }
  return std::nullopt;
}

std::optional<LogFormat> log_format_from_extension(std::string_view path) {
  const auto dot = path.rfind('.');
  const auto slash = path.find_last_of("/\\");
  if (dot == std::string_view::npos || (slash != std::string_view::npos && dot < slash)) return std::nullopt;
  const std::string_view extension = path.substr(dot + 1);
  if (equals_ignore_case(extension, "log")) return LogFormat::candump_log;
  if (equals_ignore_case(extension, "asc")) return LogFormat::asc;
  if (equals_ignore_case(extension, "trc")) return LogFormat::trc;
  return std::nullopt;
}

namespace {

bool looks_like_asc_event(std::string_view line) {
  detail::Tokens tokens(line);
  std::int64_t offset = 0;
  const auto time = tokens.next();
  if (time.find('.') == std::string_view::npos || !detail::parse_fixed(time, 9, offset)) return false;
  const auto second = tokens.next();
  if (equals_ignore_case(second, "CANFD")) return true;
  std::uint32_t channel = 0;
  return detail::parse_uint(second, 10, channel) && !tokens.empty();
}

bool looks_like_trc_line(std::string_view line) {
  detail::Tokens tokens(line);
  auto number = tokens.next();
  if (!number.empty() && number.back() == ')') number.remove_suffix(1);  // version 1.x
  std::uint32_t n = 0;
  std::int64_t offset = 0;
  if (!detail::parse_uint(number, 10, n) || !detail::parse_fixed(tokens.next(), 6, offset)) return false;
  return !tokens.empty();
}

}  // namespace

std::optional<LogFormat> detect_log_format(std::string_view head) {
  constexpr int kMaxLines = 64;
  int lines = 0;
  Frame frame;
  while (!head.empty() && lines < kMaxLines) {
    const auto newline = head.find('\n');
    std::string_view raw = head.substr(0, newline);
    head = newline == std::string_view::npos ? std::string_view() : head.substr(newline + 1);
    if (raw.size() > detail::kMaxLineBytes) return std::nullopt;
    const std::string_view line = detail::trim(raw);
    if (line.empty()) continue;
    ++lines;
    if (line.front() == ';') return LogFormat::trc;
    if (detail::starts_with_ignore_case(line, "date ") || detail::starts_with_ignore_case(line, "base hex") ||
        detail::starts_with_ignore_case(line, "base dec") || detail::starts_with_ignore_case(line, "//") ||
        detail::starts_with_ignore_case(line, "begin triggerblock") ||
        detail::starts_with_ignore_case(line, "internal events logged") ||
        detail::starts_with_ignore_case(line, "no internal events logged")) {
      return LogFormat::asc;
    }
    if (detail::parse_candump_log_line(raw, frame).kind == LineResult::Kind::frame)
      return LogFormat::candump_log;
    if (detail::parse_candump_console_line(raw, frame).kind == LineResult::Kind::frame) {
      return LogFormat::candump_console;
    }
    if (looks_like_asc_event(line)) return LogFormat::asc;
    if (looks_like_trc_line(line)) return LogFormat::trc;
  }
  return std::nullopt;
}

namespace {

std::unique_ptr<LogReader> make_reader_for(LogFormat format, detail::LineReader lines) {
  switch (format) {
    case LogFormat::candump_log:
      return detail::make_candump_log_reader(std::move(lines));
    case LogFormat::candump_console:
      return detail::make_candump_console_reader(std::move(lines));
    case LogFormat::asc:
      return detail::make_asc_reader(std::move(lines));
    case LogFormat::trc:
      return detail::make_trc_reader(std::move(lines));
  }
  return nullptr;
}

// Enough for the headers of ASC and TRC files and dozens of frame lines.
constexpr std::size_t kDetectBytes = 64 * 1024;

Result<std::unique_ptr<LogReader>> make_reader(detail::LineReader lines, std::string_view path,
                                               std::optional<LogFormat> format) {
  if (!format) {
    auto head = lines.head(kDetectBytes);
    if (!head.ok()) return head.error();
    format = detect_log_format(*head);
    if (!format) format = log_format_from_extension(path);
    if (!format) {
      // An empty log has no frames in any format.
      if (!detail::trim(*head).empty()) {
        return Error(ErrorCode::parse_error,
                     std::string(lines.source_name()) +
                         ": cannot recognise the log format (expected candump, ASC or TRC)");
      }
      format = LogFormat::candump_log;
    }
  }
  return make_reader_for(*format, std::move(lines));
}

}  // namespace

Result<std::unique_ptr<LogReader>> open_log_reader(const std::string& path, std::optional<LogFormat> format) {
  auto source = detail::open_file_source(path);
  if (!source.ok()) return source.error();
  detail::LineReader lines(std::move(*source), path == "-" ? std::string("<stdin>") : path);
  return make_reader(std::move(lines), path == "-" ? std::string_view() : std::string_view(path), format);
}

Result<std::unique_ptr<LogReader>> make_log_reader(std::istream& in, const std::string& source_name,
                                                   std::optional<LogFormat> format) {
  detail::LineReader lines(detail::make_stream_source(in), source_name);
  return make_reader(std::move(lines), source_name, format);
}

Result<std::unique_ptr<LogWriter>> make_log_writer(LogFormat format, std::ostream& out) {
  switch (format) {
    case LogFormat::candump_log:
      return detail::make_candump_log_writer(out);
    case LogFormat::asc:
      return detail::make_asc_writer(out);
    case LogFormat::trc:
      return detail::make_trc_writer(out);
    case LogFormat::candump_console:
      break;
  }
  return Error(ErrorCode::unsupported, "writing " + std::string(to_string(format)) + " is not supported");
}

}  // namespace cellguard::can
