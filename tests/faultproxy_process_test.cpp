// `cellguard fault-proxy` as a process: the ready line, relaying, the control client `fault-proxy ctl`,
// random faults logged on stderr, the final stats line, exit on --duration and on SIGTERM.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "support/child_process.h"

namespace {

using namespace std::chrono_literals;
using cellguard::testing::ChildProcess;
using cellguard::testing::JsonLinesTail;
using cellguard::testing::wait_until;

std::string binary() { return std::getenv("CELLGUARD_BINARY"); }
std::string temp_path(const std::string& tag) {
  return "/tmp/cellguard-fp-" + std::to_string(::getpid()) + "-" + tag;
}

// An echo server on 127.0.0.1, one thread per connection.
class Echo {
 public:
  Echo() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address);
    ::listen(fd_, 64);
    socklen_t length = sizeof address;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] {
      while (!stop_) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 50) <= 0) continue;
        const int client = ::accept(fd_, nullptr, nullptr);
        if (client < 0) continue;
        workers_.emplace_back([client] {
          char buffer[65536];
          ssize_t n;
          while ((n = ::recv(client, buffer, sizeof buffer, 0)) > 0)
            ::send(client, buffer, static_cast<std::size_t>(n), MSG_NOSIGNAL);
          ::close(client);
        });
      }
    });
  }
  ~Echo() {
    stop_ = true;
    thread_.join();
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    for (auto& worker : workers_) worker.join();
  }
  std::uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::vector<std::thread> workers_;
};

int connect_to(const std::string& listen) {
  const std::size_t colon = listen.rfind(':');
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(std::stoi(listen.substr(colon + 1))));
  ::inet_pton(AF_INET, listen.substr(0, colon).c_str(), &address.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// recv with a timeout: bytes read, 0 at EOF, -1 on error or timeout.
std::string recv_some(int fd, std::chrono::milliseconds timeout, ssize_t* result) {
  pollfd p{fd, POLLIN, 0};
  *result = -1;
  if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return {};
  char buffer[4096];
  *result = ::recv(fd, buffer, sizeof buffer, 0);
  return *result > 0 ? std::string(buffer, static_cast<std::size_t>(*result)) : std::string();
}

int run_ctl(const std::string& socket, const std::string& request) {
  const std::string command =
      binary() + " fault-proxy ctl --socket " + socket + " " + request + " > /dev/null";
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(FaultProxyProcess, RelaysInPassModeAndObeysItsControlClient) {
  Echo echo;
  const std::string control = temp_path("ctl.sock");
  const std::string log = temp_path("pass.log");
  ChildProcess proxy({binary(), "fault-proxy", "--listen", "127.0.0.1:0", "--target",
                      "127.0.0.1:" + std::to_string(echo.port()), "--mode", "pass", "--control", control},
                     log);
  ASSERT_TRUE(proxy.ready()) << proxy.log();
  EXPECT_EQ(proxy.ready_line()["control"], control);
  const int fd = connect_to(proxy.ready_line()["listen"]);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::send(fd, "hello", 5, MSG_NOSIGNAL), 5);
  ssize_t n = 0;
  EXPECT_EQ(recv_some(fd, 5s, &n), "hello");
  EXPECT_EQ(run_ctl(control, "stats"), 0);
  EXPECT_EQ(run_ctl(control, "explode"), 1);
  EXPECT_EQ(run_ctl(control, "cut"), 0);
  recv_some(fd, 5s, &n);
  EXPECT_EQ(n, 0) << "the cut ends the client's connection with FIN";
  ::close(fd);
  JsonLinesTail events(log);
  EXPECT_TRUE(events.wait_for([](const nlohmann::json& e) { return e.value("kind", "") == "cut"; }, 5s))
      << proxy.log();
  EXPECT_EQ(proxy.stop(), 0);
}

TEST(FaultProxyProcess, RandomModeLogsFaultsAndEndsAfterItsDuration) {
  Echo echo;
  const std::string log = temp_path("random.log");
  ChildProcess proxy({binary(), "fault-proxy", "--target", "127.0.0.1:" + std::to_string(echo.port()),
                      "--seed", "9", "--cut-every", "50ms..100ms", "--stall", "10..50ms", "--outage",
                      "10..50ms", "--delay", "0..5ms", "--duration", "1"},
                     log);
  ASSERT_TRUE(proxy.ready()) << proxy.log();
  EXPECT_EQ(proxy.ready_line()["seed"], 9);
  ASSERT_TRUE(wait_until([&] { return !proxy.running(); }, 10s)) << "--duration 1 did not end it";
  EXPECT_EQ(proxy.stop(), 0);
  JsonLinesTail events(log);
  int faults = 0;
  for (const auto& e : events.poll()) {
    if (e.value("event", "") != "fault") continue;
    ++faults;
    EXPECT_TRUE(e.contains("t") && e.contains("conns") && e.contains("kind")) << e.dump();
  }
  EXPECT_GE(faults, 5);
  EXPECT_LE(faults, 25);
}

TEST(FaultProxyProcess, RejectsBadOptionsWithExitCodeTwo) {
  for (const std::string options :
       {"--target 127.0.0.1:1 --cut-every 5", "--target nowhere", "--target 127.0.0.1:1 --kinds cut,explode",
        "--target 127.0.0.1:1 --delay 5s..1s"}) {
    const int status = std::system((binary() + " fault-proxy " + options + " 2>/dev/null").c_str());
    EXPECT_EQ(WIFEXITED(status) ? WEXITSTATUS(status) : -1, 2) << options;
  }
}

}  // namespace
