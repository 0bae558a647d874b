// Test helpers for the bus tests: run the loop until a condition holds (never a fixed sleep), and a
// raw TCP peer that writes exactly the bytes a test gives it.
#pragma once

#include <array>
#include <asio/connect.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/write.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace cellguard::can::testing {

using namespace std::chrono_literals;

// Runs `io` on this thread until `done()` holds or `timeout` passes; returns done().
inline bool run_until(asio::io_context& io, const std::function<bool()>& done,
                      std::chrono::milliseconds timeout = 10s) {
  auto work = asio::make_work_guard(io);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return done();
    io.restart();
    io.run_one_for(20ms);
  }
  return true;
}

// Runs the handlers that are ready now (and those they post), without waiting.
inline void run_ready(asio::io_context& io) {
  io.restart();
  io.poll();
}

class RawPeer {
 public:
  explicit RawPeer(asio::io_context& io) : socket_(io) {}

  bool connect(std::uint16_t port) {
    asio::error_code error;
    socket_.connect({asio::ip::make_address("127.0.0.1"), port}, error);
    if (error) return false;
    read();
    return true;
  }
  void write(std::string bytes) {
    auto buffer = std::make_shared<std::string>(std::move(bytes));
    asio::async_write(socket_, asio::buffer(*buffer), [buffer](const asio::error_code&, std::size_t) {});
  }
  void close() {
    asio::error_code ignored;
    socket_.close(ignored);
  }
  // Stops reading but keeps the connection open, so the other side's writes back up.
  void stop_reading() {
    stopped_ = true;
    asio::error_code ignored;
    socket_.set_option(asio::socket_base::receive_buffer_size(4096), ignored);
    socket_.cancel(ignored);
  }
  const std::string& received() const { return received_; }
  bool contains(std::string_view text) const { return received_.find(text) != std::string::npos; }
  bool closed_by_peer() const { return eof_; }
  // What each read returned, in order.
  const std::vector<std::string>& reads() const { return reads_; }

 private:
  void read() {
    socket_.async_read_some(asio::buffer(buffer_), [this](const asio::error_code& error, std::size_t n) {
      if (error) {
        if (!stopped_) eof_ = true;
        return;
      }
      received_.append(buffer_.data(), n);
      reads_.emplace_back(buffer_.data(), n);
      read();
    });
  }

  asio::ip::tcp::socket socket_;
  std::array<char, 4096> buffer_{};
  std::string received_;
  std::vector<std::string> reads_;
  bool eof_ = false;
  bool stopped_ = false;
};

}  // namespace cellguard::can::testing
