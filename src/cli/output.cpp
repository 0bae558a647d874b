#include "cli/output.h"

#include <charconv>
#include <iostream>

#include "core/text.h"

namespace cellguard::cli {

void OutputBuffer::append_int(std::int64_t value) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  (void)ec;
  buffer_.append(buf, static_cast<std::size_t>(end - buf));
}

void OutputBuffer::append_uint(std::uint64_t value) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  (void)ec;
  buffer_.append(buf, static_cast<std::size_t>(end - buf));
}

void OutputBuffer::append_int128(dbc::Int128 value) {
  if (value >= INT64_MIN && value <= INT64_MAX) {
    append_int(static_cast<std::int64_t>(value));
    return;
  }
  // Beyond 64 bits (64-bit raw values times an integral scale): print digit by digit.
  char buf[48];
  std::size_t pos = sizeof buf;
  const bool negative = value < 0;
  __extension__ unsigned __int128 magnitude =
      negative ? static_cast<unsigned __int128>(-(value + 1)) + 1 : static_cast<unsigned __int128>(value);
  do {
    buf[--pos] = static_cast<char>('0' + static_cast<int>(magnitude % 10));
    magnitude /= 10;
  } while (magnitude != 0);
  if (negative) buf[--pos] = '-';
  buffer_.append(buf + pos, sizeof buf - pos);
}

void OutputBuffer::append_json_double(double value) {
  char buf[40];
  const std::size_t len = format_shortest(value, buf + 1, true);
  if (buf[1] == 'N' || buf[1] == 'I' || (buf[1] == '-' && buf[2] == 'I')) {
    buf[0] = '"';
    buf[len + 1] = '"';
    buffer_.append(buf, len + 2);
  } else {
    buffer_.append(buf + 1, len);
  }
}

std::string json_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          static constexpr char kHex[] = "0123456789abcdef";
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 15]);
        } else {
          out.push_back(ch);
        }
    }
  }
  return out;
}

void OutputBuffer::append_json_string(std::string_view text) {
  buffer_.push_back('"');
  buffer_.append(json_escape(text));
  buffer_.push_back('"');
}

void OutputBuffer::append_hex(const std::uint8_t* data, std::size_t size, bool spaced) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (std::size_t i = 0; i < size; ++i) {
    if (spaced && i > 0) buffer_.push_back(' ');
    buffer_.push_back(kHex[data[i] >> 4]);
    buffer_.push_back(kHex[data[i] & 15]);
  }
}

Result<std::unique_ptr<LogOutput>> LogOutput::open(const std::string& path, can::LogFormat format) {
  auto output = std::make_unique<LogOutput>();
  std::ostream* stream = &std::cout;
  if (path != "-") {
    output->file_.open(path, std::ios::binary | std::ios::trunc);
    if (!output->file_) return Error(ErrorCode::io_error, path + ": cannot create");
    stream = &output->file_;
  }
  auto writer = can::make_log_writer(format, *stream);
  if (!writer) return writer.error();
  output->writer_ = std::move(*writer);
  return output;
}

void OutputBuffer::flush() {
  if (buffer_.empty()) return;
  if (good_ && std::fwrite(buffer_.data(), 1, buffer_.size(), out_) != buffer_.size()) good_ = false;
  if (good_ && std::fflush(out_) != 0) good_ = false;
  buffer_.clear();
}

}  // namespace cellguard::cli
