// A rogue Modbus TCP server in front of a real one (the simulator's inverter): it relays frames both
// ways and misbehaves on demand the way a half-dead converter does (issue 12 item 4):
//  - drop_read_answers: function-4 requests reach the device, their answers never come back;
//  - wrong_byte_count: function-4 answers lose their last register (byte count and MBAP length
//    consistent, so the frame is well formed but does not answer the request);
//  - heartbeat_exception: function-6 writes to `heartbeat_address` are answered by the proxy with
//    exception 4 (slave device failure) and never reach the device;
//  - wrong_echo: function-6 answers echo a value one higher than the one written.
// Framing by the MBAP header only (7 bytes, then length-1 bytes of PDU): the test's own stand-in
// for a misbehaving device, not a Modbus implementation. Blocking sockets, one thread per direction.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace cellguard::testing {

class RogueModbusProxy {
 public:
  enum class Mode : int { relay, drop_read_answers, wrong_byte_count, heartbeat_exception, wrong_echo };

  // `upstream_port`: the real device on 127.0.0.1.
  RogueModbusProxy(int upstream_port, std::uint16_t heartbeat_address)
      : upstream_port_(upstream_port), heartbeat_address_(heartbeat_address) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;  // a free port
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listen_fd_, 8) != 0)
      return;
    socklen_t len = sizeof a;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    accept_thread_ = std::thread([this] { accept_loop(); });
  }
  ~RogueModbusProxy() {
    stopping_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    ::close(listen_fd_);
    if (accept_thread_.joinable()) accept_thread_.join();
    std::lock_guard lock(mutex_);
    for (auto& c : connections_) {
      ::shutdown(c->client, SHUT_RDWR);
      ::shutdown(c->upstream, SHUT_RDWR);
    }
    for (auto& c : connections_) {
      if (c->up.joinable()) c->up.join();
      if (c->down.joinable()) c->down.join();
      ::close(c->client);
      ::close(c->upstream);
    }
  }
  RogueModbusProxy(const RogueModbusProxy&) = delete;
  RogueModbusProxy& operator=(const RogueModbusProxy&) = delete;

  int port() const { return port_; }
  void set_mode(Mode mode) { mode_ = static_cast<int>(mode); }
  int misbehaved() const { return misbehaved_; }  // frames dropped, altered or answered by the proxy

 private:
  struct Connection {
    int client = -1;
    int upstream = -1;
    std::mutex write_mutex;  // the client socket: answers from upstream and the proxy's own
    std::thread up, down;
  };

  static bool read_exact(int fd, std::uint8_t* data, std::size_t n) {
    while (n > 0) {
      const ssize_t got = ::recv(fd, data, n, 0);
      if (got <= 0) return false;
      data += got;
      n -= static_cast<std::size_t>(got);
    }
    return true;
  }
  static bool write_all(int fd, const std::uint8_t* data, std::size_t n) {
    while (n > 0) {
      const ssize_t put = ::send(fd, data, n, MSG_NOSIGNAL);
      if (put <= 0) return false;
      data += put;
      n -= static_cast<std::size_t>(put);
    }
    return true;
  }
  // One MBAP frame: header (7 bytes, length = unit + PDU) then the PDU.
  static bool read_frame(int fd, std::vector<std::uint8_t>& frame) {
    frame.resize(7);
    if (!read_exact(fd, frame.data(), 7)) return false;
    const std::size_t length = (static_cast<std::size_t>(frame[4]) << 8) | frame[5];
    if (length < 2 || length > 254) return false;
    frame.resize(6 + length);
    return read_exact(fd, frame.data() + 7, length - 1);
  }
  static void set_length(std::vector<std::uint8_t>& frame) {
    const std::size_t length = frame.size() - 6;
    frame[4] = static_cast<std::uint8_t>(length >> 8);
    frame[5] = static_cast<std::uint8_t>(length & 0xff);
  }

  void accept_loop() {
    while (!stopping_) {
      const int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) return;
      const int upstream = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a.sin_port = htons(static_cast<std::uint16_t>(upstream_port_));
      if (::connect(upstream, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(client);
        ::close(upstream);
        continue;
      }
      const int one = 1;
      ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      ::setsockopt(upstream, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      std::lock_guard lock(mutex_);
      auto c = std::make_unique<Connection>();
      c->client = client;
      c->upstream = upstream;
      Connection* raw = c.get();
      c->up = std::thread([this, raw] { relay_requests(*raw); });
      c->down = std::thread([this, raw] { relay_answers(*raw); });
      connections_.push_back(std::move(c));
    }
  }

  void relay_requests(Connection& c) {
    std::vector<std::uint8_t> frame;
    while (read_frame(c.client, frame)) {
      const auto mode = static_cast<Mode>(mode_.load());
      const bool heartbeat_write =
          frame.size() >= 12 && frame[7] == 0x06 && ((frame[8] << 8) | frame[9]) == heartbeat_address_;
      if (mode == Mode::heartbeat_exception && heartbeat_write) {
        std::vector<std::uint8_t> answer(frame.begin(), frame.begin() + 7);
        answer.push_back(0x86);
        answer.push_back(0x04);
        set_length(answer);
        ++misbehaved_;
        std::lock_guard lock(c.write_mutex);
        if (!write_all(c.client, answer.data(), answer.size())) break;
        continue;
      }
      if (!write_all(c.upstream, frame.data(), frame.size())) break;
    }
    ::shutdown(c.upstream, SHUT_RDWR);
  }

  void relay_answers(Connection& c) {
    std::vector<std::uint8_t> frame;
    while (read_frame(c.upstream, frame)) {
      const auto mode = static_cast<Mode>(mode_.load());
      const std::uint8_t function = frame.size() > 7 ? frame[7] : 0;
      if (function == 0x04 && mode == Mode::drop_read_answers) {
        ++misbehaved_;
        continue;
      }
      if (function == 0x04 && mode == Mode::wrong_byte_count && frame.size() >= 11 && frame[8] >= 2) {
        frame[8] = static_cast<std::uint8_t>(frame[8] - 2);
        frame.resize(frame.size() - 2);
        set_length(frame);
        ++misbehaved_;
      }
      if (function == 0x06 && mode == Mode::wrong_echo && frame.size() == 12) {
        const auto value = static_cast<std::uint16_t>(((frame[10] << 8) | frame[11]) + 1);
        frame[10] = static_cast<std::uint8_t>(value >> 8);
        frame[11] = static_cast<std::uint8_t>(value & 0xff);
        ++misbehaved_;
      }
      std::lock_guard lock(c.write_mutex);
      if (!write_all(c.client, frame.data(), frame.size())) break;
    }
    ::shutdown(c.client, SHUT_RDWR);
  }

  const int upstream_port_;
  const std::uint16_t heartbeat_address_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> mode_{static_cast<int>(Mode::relay)};
  std::atomic<int> misbehaved_{0};
  std::mutex mutex_;
  std::vector<std::unique_ptr<Connection>> connections_;
  std::thread accept_thread_;
};

}  // namespace cellguard::testing
