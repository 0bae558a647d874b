// The simulator shell in-process (issue 3, item 5): run_simulator() on a thread, ended by its
// --duration, reached over its socketcand server and control socket, so the sanitizer builds
// check the event-loop code too (the process tests check the same through the binary).
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <asio.hpp>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "can/bus.h"
#include "sim/canopen_modules.h"
#include "sim/simulator.h"

namespace cellguard::sim {
namespace {

using nlohmann::json;

std::string read_line(int fd, int timeout_ms) {
  std::string line;
  while (line.find('\n') == std::string::npos) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) break;
    char c[256];
    const ssize_t n = ::read(fd, c, sizeof c);
    if (n <= 0) break;
    line.append(c, static_cast<std::size_t>(n));
  }
  return line;
}

json control(const std::string& path, const json& request) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::snprintf(address.sun_path, sizeof address.sun_path, "%s", path.c_str());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return {};
  }
  const std::string line = request.dump() + "\n";
  EXPECT_EQ(::write(fd, line.data(), line.size()), static_cast<ssize_t>(line.size()));
  std::string response = read_line(fd, 10000);
  ::close(fd);
  return json::parse(response, nullptr, false);
}

TEST(SimShell, RunsAnswersSyncAndControlAndStopsAfterItsDuration) {
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  std::FILE* ready_out = ::fdopen(pipe_fds[1], "w");
  ASSERT_NE(ready_out, nullptr);
  SimOptions options;
  options.pack.module_ids = {1, 2, 3};
  options.speed = 20;
  options.duration_s = 60;  // three wall seconds at speed 20
  options.control_path = (std::filesystem::temp_directory_path() /
                          ("cellguard-sim-shell-" + std::to_string(::getpid()) + ".sock"))
                             .string();
  int exit_code = -1;
  std::thread loop([&] { exit_code = run_simulator(std::move(options), ready_out); });

  json ready = json::parse(read_line(pipe_fds[0], 20000), nullptr, false);
  ASSERT_TRUE(ready.is_object() && ready.value("ready", false)) << ready.dump();
  json status = control(ready["control"], {{"cmd", "status"}});
  EXPECT_EQ(status["status"]["modules"].size(), 3u);
  EXPECT_TRUE(control(ready["control"], {{"cmd", "fault"}, {"fault", "module_silent"}, {"module", 3}})["ok"]
                  .get<bool>());

  asio::io_context io;
  auto bus = can::open_bus(io, ready["can"].get<std::string>());
  ASSERT_TRUE(bus.ok());
  std::size_t received = 0;
  (*bus)->on_receive([&](const can::Frame& frame) {
    if (!frame.error) ++received;
    if (received == 16) io.stop();
  });
  (*bus)->on_ready([&] { (*bus)->send(make_sync(0)).ok(); });
  asio::steady_timer give_up(io, std::chrono::seconds(10));
  give_up.async_wait([&](asio::error_code ec) {
    if (!ec) io.stop();
  });
  io.run();
  (*bus)->close();
  EXPECT_EQ(received, 16u);  // modules 1 and 2; 3 is silent

  loop.join();
  EXPECT_EQ(exit_code, 0);
  EXPECT_FALSE(std::filesystem::exists(ready["control"].get<std::string>()));
  std::fclose(ready_out);
  ::close(pipe_fds[0]);
}

}  // namespace
}  // namespace cellguard::sim
