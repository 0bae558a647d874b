// The host end of the board's serial line for the firmware tests: opens the pty slave as the edge
// opens /dev/ttyACM0 (raw), reads lines with a deadline, writes commands, and checks each line's
// `Ardu_Crc` with the tests' own CRC-8.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <optional>
#include <string>

#include "avr_board.h"

namespace cellguard::testing {

// Fields of a board line, by name.
using BoardFields = std::map<std::string, std::string>;

inline BoardFields split_fields(const std::string& line) {
  BoardFields fields;
  std::size_t start = 0;
  while (start <= line.size()) {
    const std::size_t comma = line.find(',', start);
    const std::string field =
        line.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    const std::size_t colon = field.find(':');
    if (colon != std::string::npos) fields[field.substr(0, colon)] = field.substr(colon + 1);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return fields;
}

// True when the line ends with `,Ardu_Crc:XX` and XX is the CRC-8 of everything before it.
inline bool checksum_ok(const std::string& line) {
  const std::size_t at = line.rfind(",Ardu_Crc:");
  if (at == std::string::npos || line.size() != at + 12) return false;
  char expected[3];
  std::snprintf(expected, sizeof expected, "%02X", crc8(line.substr(0, at)));
  return line.substr(at + 10) == expected;
}

class SerialPeer {
 public:
  explicit SerialPeer(const std::string& path) {
    fd_ = ::open(path.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fd_ < 0) return;
    termios tio{};
    ::tcgetattr(fd_, &tio);
    ::cfmakeraw(&tio);
    ::tcsetattr(fd_, TCSANOW, &tio);
  }
  ~SerialPeer() {
    if (fd_ >= 0) ::close(fd_);
  }
  SerialPeer(const SerialPeer&) = delete;
  SerialPeer& operator=(const SerialPeer&) = delete;

  bool is_open() const { return fd_ >= 0; }

  bool send(const std::string& text) {
    return ::write(fd_, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  }

  // The next complete line without CR LF, or nullopt after `timeout`.
  std::optional<std::string> line(std::chrono::milliseconds timeout = std::chrono::milliseconds(3000)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const std::size_t lf = buffer_.find('\n');
      if (lf != std::string::npos) {
        std::string text = buffer_.substr(0, lf);
        buffer_.erase(0, lf + 1);
        if (!text.empty() && text.back() == '\r') text.pop_back();
        return text;
      }
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char chunk[256];
      const ssize_t n = ::read(fd_, chunk, sizeof chunk);
      if (n > 0) buffer_.append(chunk, static_cast<std::size_t>(n));
    }
  }

  // The next line for which `match(fields)` holds, skipping others; every line's checksum must be
  // valid (counted in bad_checksums()).
  template <typename Match>
  std::optional<BoardFields> line_where(Match match,
                                        std::chrono::milliseconds timeout = std::chrono::milliseconds(3000)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      auto text = line(left);
      if (!text) return std::nullopt;
      ++lines_;
      if (!checksum_ok(*text)) ++bad_checksums_;
      BoardFields fields = split_fields(*text);
      if (match(fields)) return fields;
    }
    return std::nullopt;
  }

  int lines() const { return lines_; }
  int bad_checksums() const { return bad_checksums_; }

 private:
  int fd_ = -1;
  std::string buffer_;
  int lines_ = 0;
  int bad_checksums_ = 0;
};

}  // namespace cellguard::testing
