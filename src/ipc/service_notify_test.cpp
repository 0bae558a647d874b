// The notification protocol against a real Unix datagram socket, as systemd binds it.
#include "ipc/service_notify.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <asio.hpp>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

namespace cellguard::ipc {
namespace {

// A bound datagram socket standing in for systemd's notification socket.
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& name) : name_(name) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, name.data(), name.size());
    if (name.front() == '@')
      address.sun_path[0] = '\0';
    else
      ::unlink(name.c_str());
    const auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size());
    bound_ = ::bind(fd_, reinterpret_cast<const sockaddr*>(&address), length) == 0;
  }
  ~NotifySocket() {
    ::close(fd_);
    if (name_.front() == '/') ::unlink(name_.c_str());
  }
  bool bound() const { return bound_; }
  // The next datagram, or "" after `timeout_ms`.
  std::string receive(int timeout_ms = 2000) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) != 1) return "";
    char buffer[4096];
    const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
    return n > 0 ? std::string(buffer, static_cast<std::size_t>(n)) : "";
  }
  std::vector<std::string> drain() {
    std::vector<std::string> all;
    for (std::string m = receive(0); !m.empty(); m = receive(0)) all.push_back(m);
    return all;
  }

 private:
  std::string name_;
  int fd_ = -1;
  bool bound_ = false;
};

std::string temp_socket_path(const char* name) {
  return (std::filesystem::temp_directory_path() / (std::string(name) + "-" + std::to_string(::getpid())))
      .string();
}

TEST(ServiceNotifier, DisabledWithoutASocketAndQuietlySucceeds) {
  const ServiceNotifier none = ServiceNotifier::from_values("", 5'000'000);
  EXPECT_FALSE(none.enabled());
  EXPECT_EQ(none.watchdog_usec(), 0);
  EXPECT_TRUE(none.notify("READY=1").ok());
  // Not a path or an abstract name: not ours to interpret.
  EXPECT_FALSE(ServiceNotifier::from_values("vsock:2:1234", 0).enabled());
}

TEST(ServiceNotifier, SendsToAPathSocket) {
  NotifySocket systemd(temp_socket_path("cellguard-notify"));
  ASSERT_TRUE(systemd.bound());
  const ServiceNotifier notifier = ServiceNotifier::from_values(temp_socket_path("cellguard-notify"), 0);
  ASSERT_TRUE(notifier.enabled());
  ASSERT_TRUE(notifier.notify("READY=1\nSTATUS=guarding").ok());
  EXPECT_EQ(systemd.receive(), "READY=1\nSTATUS=guarding");
}

TEST(ServiceNotifier, SendsToAnAbstractSocket) {
  const std::string name = "@cellguard-notify-test-" + std::to_string(::getpid());
  NotifySocket systemd(name);
  ASSERT_TRUE(systemd.bound());
  ASSERT_TRUE(ServiceNotifier::from_values(name, 0).notify("STOPPING=1").ok());
  EXPECT_EQ(systemd.receive(), "STOPPING=1");
}

TEST(ServiceNotifier, AMissingSocketIsAnErrorNamingIt) {
  const std::string path = temp_socket_path("cellguard-notify-missing");
  auto sent = ServiceNotifier::from_values(path, 0).notify("READY=1");
  ASSERT_FALSE(sent.ok());
  EXPECT_NE(sent.error().message.find(path), std::string::npos) << sent.error().message;
}

TEST(ServiceNotifier, TheWatchdogIsOursOnlyWhenItNamesOurPid) {
  EXPECT_EQ(ServiceNotifier::from_values("/run/x", 4'000'000).watchdog_usec(), 4'000'000);
  EXPECT_EQ(ServiceNotifier::from_values("/run/x", 4'000'000, ::getpid()).watchdog_usec(), 4'000'000);
  EXPECT_EQ(ServiceNotifier::from_values("/run/x", 4'000'000, ::getpid() + 1).watchdog_usec(), 0);
  EXPECT_EQ(ServiceNotifier::from_values("", 4'000'000).watchdog_usec(), 0);
}

TEST(LoopWatchdog, ReadyThenPingsFromTheLoopAndCancelLetsTheLoopEnd) {
  const std::string path = temp_socket_path("cellguard-notify-loop");
  NotifySocket systemd(path);
  ASSERT_TRUE(systemd.bound());
  asio::io_context io;
  LoopWatchdog watchdog(io, ServiceNotifier::from_values(path, 20'000));  // pings every 10 ms
  watchdog.ready("guarding");
  EXPECT_EQ(systemd.receive(), "READY=1\nSTATUS=guarding");
  // The loop does not run: no ping, however long one waits.
  EXPECT_EQ(systemd.receive(50), "");
  io.run_for(std::chrono::milliseconds(100));
  const auto pings = systemd.drain();
  ASSERT_GE(pings.size(), 3u);  // ~10 in 100 ms; at least 3 on a loaded machine
  for (const auto& p : pings) EXPECT_EQ(p, "WATCHDOG=1");
  EXPECT_EQ(watchdog.pings_sent(), pings.size());
  watchdog.stopping();
  EXPECT_EQ(systemd.receive(), "STOPPING=1");
  // Cancelled, its timer does not keep the loop alive: run() returns at once.
  watchdog.cancel();
  io.restart();
  const auto before = std::chrono::steady_clock::now();
  io.run();
  EXPECT_LT(std::chrono::steady_clock::now() - before, std::chrono::seconds(1));
  EXPECT_EQ(systemd.drain().size(), 0u);
}

TEST(LoopWatchdog, WithoutWatchdogOnlyReady) {
  const std::string path = temp_socket_path("cellguard-notify-nowd");
  NotifySocket systemd(path);
  ASSERT_TRUE(systemd.bound());
  asio::io_context io;
  LoopWatchdog watchdog(io, ServiceNotifier::from_values(path, 0));
  watchdog.ready();
  EXPECT_EQ(systemd.receive(), "READY=1");
  io.run();  // nothing armed: returns at once
  EXPECT_EQ(systemd.drain().size(), 0u);
}

}  // namespace
}  // namespace cellguard::ipc
