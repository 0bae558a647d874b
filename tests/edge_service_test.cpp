// The edge under a service manager (issue 15 item 3), as systemd runs it: a real Unix datagram socket
// in NOTIFY_SOCKET and WATCHDOG_USEC in the environment, the edge against `cellguard sim` as
// processes. READY=1 comes after start-up, WATCHDOG=1 every half period while the event loop runs,
// none while the process is stopped (SIGSTOP: the simplest hung loop; systemd would kill it), again
// after SIGCONT, and STOPPING=1 with the safe stop on SIGTERM. The server tells when it listens.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "support/cellguard_process.h"
#include "support/child_process.h"
#include "support/rig_edge_config.h"

namespace cellguard {
namespace {

namespace fs = std::filesystem;
using testing::binary;
using testing::ChildProcess;
using namespace std::chrono_literals;

// systemd's side of the protocol: a bound datagram socket.
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, path.data(), std::min(path.size(), sizeof address.sun_path - 1));
    bound_ = ::bind(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0;
  }
  ~NotifySocket() {
    ::close(fd_);
    ::unlink(path_.c_str());
  }
  bool bound() const { return bound_; }
  // The next datagram within `timeout`, or "".
  std::string receive(std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return "";
    char buffer[4096];
    const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
    return n > 0 ? std::string(buffer, static_cast<std::size_t>(n)) : "";
  }
  void drain() {
    while (!receive(0ms).empty()) {
    }
  }

 private:
  std::string path_;
  int fd_ = -1;
  bool bound_ = false;
};

TEST(EdgeService, ReadyThenWatchdogFromTheLoopNoneWhileStalledStoppingOnTerm) {
  const fs::path dir = fs::temp_directory_path() / ("cellguard-service-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  NotifySocket systemd((dir / "notify").string());
  ASSERT_TRUE(systemd.bound());

  ChildProcess sim({binary(), "sim", "--modules", "2", "--control", (dir / "sim.sock").string(),
                    "--board-link", (dir / "board").string(), "--inverter-tcp-port", "0"},
                   (dir / "sim.log").string());
  ASSERT_TRUE(sim.ready()) << sim.log();
  toml::table config = testing::rig_edge_config(sim.ready_line(), dir, 2, "svc", (dir / "board").string());
  config["schedule"].as_table()->erase("file");
  config["operator"].as_table()->insert_or_assign("socket", "");  // the default: RuntimeDirectory=
  std::ofstream(dir / "edge.toml") << config << "\n";

  // As systemd starts it (WatchdogSec=0.4s): the environment is inherited by this child only.
  const auto watchdog = 400ms;
  ::setenv("NOTIFY_SOCKET", (dir / "notify").c_str(), 1);
  ::setenv("WATCHDOG_USEC", std::to_string(std::chrono::microseconds(watchdog).count()).c_str(), 1);
  ChildProcess edge({binary(), "edge", "--config", (dir / "edge.toml").string()},
                    (dir / "edge.log").string());
  ::unsetenv("NOTIFY_SOCKET");
  ::unsetenv("WATCHDOG_USEC");
  ASSERT_TRUE(edge.ready()) << edge.log();

  const std::string ready = systemd.receive(10s);
  ASSERT_EQ(ready.rfind("READY=1\nSTATUS=guarding: 2 modules expected", 0), 0u) << ready << edge.log();

  // Pings every 200 ms: three arrive within a second, each within the period.
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(systemd.receive(watchdog), "WATCHDOG=1") << "ping " << i << edge.log();

  // A stalled process (SIGSTOP) sends nothing for 2.5 periods: systemd would kill and restart it.
  ASSERT_EQ(::kill(edge.pid(), SIGSTOP), 0);
  // A ping sent just before the stop may still be queued.
  systemd.drain();
  EXPECT_EQ(systemd.receive(watchdog * 5 / 2), "") << "pings while the process is stopped";
  ASSERT_EQ(::kill(edge.pid(), SIGCONT), 0);
  EXPECT_EQ(systemd.receive(watchdog), "WATCHDOG=1") << "no ping after SIGCONT" << edge.log();

  // systemctl stop: SIGTERM → STOPPING=1 at once, then the safe stop and exit 0.
  ASSERT_EQ(::kill(edge.pid(), SIGTERM), 0);
  std::string message;
  for (int i = 0; i < 10 && message != "STOPPING=1"; ++i) message = systemd.receive(2s);
  EXPECT_EQ(message, "STOPPING=1") << edge.log();
  EXPECT_TRUE(testing::wait_until([&] { return !edge.running(); }, 15s)) << edge.log();
  EXPECT_EQ(edge.stop(), 0) << edge.log();
  if (!::testing::Test::HasFailure()) fs::remove_all(dir);
}

TEST(ServerService, ReadyWhenListeningStoppingOnTerm) {
  const fs::path dir = fs::temp_directory_path() / ("cellguard-service-server-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  NotifySocket systemd((dir / "notify").string());
  ASSERT_TRUE(systemd.bound());
  ::setenv("NOTIFY_SOCKET", (dir / "notify").c_str(), 1);
  ChildProcess server(
      {binary(), "server", "--plaintext", "--listen", "127.0.0.1:0", "--data", (dir / "data").string()},
      (dir / "server.log").string());
  ::unsetenv("NOTIFY_SOCKET");
  ASSERT_TRUE(server.ready()) << server.log();
  const std::string listen = server.ready_line()["listen"].get<std::string>();
  EXPECT_EQ(systemd.receive(10s), "READY=1\nSTATUS=listening on " + listen) << server.log();
  ASSERT_EQ(::kill(server.pid(), SIGTERM), 0);
  EXPECT_EQ(systemd.receive(5s), "STOPPING=1") << server.log();
  // It exits by itself (a second SIGTERM from stop() would find the default action once it left its loop).
  EXPECT_TRUE(testing::wait_until([&] { return !server.running(); }, 10s)) << server.log();
  EXPECT_EQ(server.stop(), 0) << server.log();
  if (!::testing::Test::HasFailure()) fs::remove_all(dir);
}

}  // namespace
}  // namespace cellguard
