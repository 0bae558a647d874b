#include "cli/output.h"

#include <charconv>
#include <iostream>

#include "core/text.h"

namespace cellguard::cli {

void OutputBuffer::append_int(std::int64_t value) {
  char* at = reserve(24);
  commit(static_cast<std::size_t>(std::to_chars(at, at + 24, value).ptr - at));
}

void OutputBuffer::append_uint(std::uint64_t value) {
  char* at = reserve(24);
  commit(static_cast<std::size_t>(std::to_chars(at, at + 24, value).ptr - at));
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
  append(std::string_view(buf + pos, sizeof buf - pos));
}

void OutputBuffer::append_json_double(double value) {
  char* at = reserve(40);
  const std::size_t len = format_shortest(value, at + 1, true);
  if (at[1] == 'N' || at[1] == 'I' || (at[1] == '-' && at[2] == 'I')) {
    at[0] = '"';  // non-finite values are JSON strings
    at[len + 1] = '"';
    commit(len + 2);
  } else {
    std::memmove(at, at + 1, len);
    commit(len);
  }
}

std::string json_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
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
  append('"');
  append(json_escape(text));
  append('"');
}

void OutputBuffer::append_hex(const std::uint8_t* data, std::size_t size, bool spaced) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  char* at = reserve(size * 3);
  char* o = at;
  for (std::size_t i = 0; i < size; ++i) {
    if (spaced && i > 0) *o++ = ' ';
    *o++ = kHex[data[i] >> 4];
    *o++ = kHex[data[i] & 15];
  }
  commit(static_cast<std::size_t>(o - at));
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

void OutputBuffer::make_room(std::size_t bytes) {
  flush();
  if (bytes > capacity_) {
    buffer_.reset(new char[bytes]);
    capacity_ = bytes;
  }
}

void OutputBuffer::flush() {
  if (size_ == 0) return;
  if (good_ && std::fwrite(buffer_.get(), 1, size_, out_) != size_) good_ = false;
  if (good_ && std::fflush(out_) != 0) good_ = false;
  size_ = 0;
}

}  // namespace cellguard::cli
