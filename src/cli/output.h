// Buffered output for the CLI's high-volume commands: appends into a large buffer and writes it
// with one system call per 256 KiB, so printing millions of lines costs little beyond formatting.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>

#include "can/log.h"
#include "core/result.h"
#include "dbc/codec.h"

namespace cellguard::cli {

class OutputBuffer {
 public:
  explicit OutputBuffer(std::FILE* out) : out_(out), buffer_(new char[kCapacity]), capacity_(kCapacity) {}
  ~OutputBuffer() { flush(); }
  OutputBuffer(const OutputBuffer&) = delete;
  OutputBuffer& operator=(const OutputBuffer&) = delete;

  // Appends are inline memcpys into a plain array: the hot path of `decode` is mostly appending.
  void append(std::string_view text) {
    if (size_ + text.size() > capacity_) make_room(text.size());
    std::memcpy(buffer_.get() + size_, text.data(), text.size());
    size_ += text.size();
  }
  void append(char c) {
    if (size_ == capacity_) make_room(1);
    buffer_[size_++] = c;
  }
  void append_int(std::int64_t value);
  void append_uint(std::uint64_t value);
  void append_int128(dbc::Int128 value);
  // Shortest round-trip text; non-finite values as the JSON strings "NaN", "Infinity", "-Infinity".
  void append_json_double(double value);
  // A JSON string literal with escapes.
  void append_json_string(std::string_view text);
  void append_hex(const std::uint8_t* data, std::size_t size, bool spaced);

  // Writes out when the buffer is nearly full; call after each record.
  void maybe_flush() {
    if (size_ >= kFlushBytes) flush();
  }
  void flush();
  // False once a write failed (e.g. the reader of a pipe went away).
  bool good() const { return good_; }

 private:
  static constexpr std::size_t kFlushBytes = 256 * 1024;
  static constexpr std::size_t kCapacity = kFlushBytes + 64 * 1024;

  // Flushes, and grows the buffer if `bytes` still do not fit (one record larger than the buffer).
  void make_room(std::size_t bytes);
  // Room for `bytes` more, returned as the place to write them; the caller then calls commit().
  char* reserve(std::size_t bytes) {
    if (size_ + bytes > capacity_) make_room(bytes);
    return buffer_.get() + size_;
  }
  void commit(std::size_t bytes) { size_ += bytes; }

  std::FILE* out_;
  std::unique_ptr<char[]> buffer_;
  std::size_t capacity_;
  std::size_t size_ = 0;
  bool good_ = true;
};

// A CAN log being written: a file, or standard output for "-", with the writer for its format.
class LogOutput {
 public:
  static Result<std::unique_ptr<LogOutput>> open(const std::string& path, can::LogFormat format);
  can::LogWriter& writer() { return *writer_; }

 private:
  std::ofstream file_;
  std::unique_ptr<can::LogWriter> writer_;
};

// Escapes `text` as the body of a JSON string (without quotes).
std::string json_escape(std::string_view text);

}  // namespace cellguard::cli
