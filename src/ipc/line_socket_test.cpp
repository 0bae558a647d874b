#include "ipc/line_socket.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <asio.hpp>
#include <atomic>
#include <fstream>
#include <future>
#include <thread>

namespace cellguard::ipc {
namespace {

std::string temp_socket(const char* tag) {
  return "/tmp/cellguard-ipc-test-" + std::to_string(::getpid()) + "-" + tag + ".sock";
}

// Runs a server on a loop thread for the duration of a test.
struct ServerFixture {
  asio::io_context io;
  std::unique_ptr<LineServer> server;
  std::thread loop;
  std::atomic<int> requests{0};

  explicit ServerFixture(const std::string& path, std::size_t max_line = 4096) {
    LineServerOptions options;
    options.path = path;
    options.max_line_bytes = max_line;
    auto started = LineServer::start(io, options, [this](std::string_view line) {
      ++requests;
      return "echo:" + std::string(line);
    });
    EXPECT_TRUE(started) << (started ? "" : started.error().message);
    if (started) server = std::move(started.value());
    loop = std::thread([this] {
      auto guard = asio::make_work_guard(io);
      io.run();
    });
  }
  ~ServerFixture() {
    asio::post(io, [this] {
      if (server) server->close();
      io.stop();
    });
    loop.join();
  }
};

TEST(LineSocket, AnswersEachLineAndRemovesTheFileOnClose) {
  const std::string path = temp_socket("echo");
  {
    ServerFixture fixture(path);
    auto first = request_line(path, "status");
    ASSERT_TRUE(first) << first.error().message;
    EXPECT_EQ(*first, "echo:status");
    auto second = request_line(path, "reset\r");  // a CR before the LF is dropped
    ASSERT_TRUE(second);
    EXPECT_EQ(*second, "echo:reset");
    EXPECT_EQ(fixture.requests.load(), 2);
  }
  struct stat st {};
  EXPECT_NE(::lstat(path.c_str(), &st), 0) << "socket file left behind";
}

TEST(LineSocket, OverlongLineGetsAnErrorAndTheHandlerNeverSeesIt) {
  const std::string path = temp_socket("long");
  ServerFixture fixture(path, 64);
  auto answer = request_line(path, std::string(200, 'x'));
  ASSERT_TRUE(answer) << answer.error().message;
  EXPECT_NE(answer->find("\"ok\":false"), std::string::npos) << *answer;
  EXPECT_EQ(fixture.requests.load(), 0);
}

TEST(LineSocket, ReplacesAStaleSocketButNeverAnOrdinaryFile) {
  const std::string path = temp_socket("stale");
  { ServerFixture first(path); }
  {
    // A socket file left by a crashed run (the fixture removed it; make one by hand).
    asio::io_context io;
    asio::local::stream_protocol::acceptor stale(io, asio::local::stream_protocol::endpoint(path));
  }
  {
    ServerFixture second(path);
    EXPECT_TRUE(request_line(path, "x"));
  }
  const std::string plain = temp_socket("plain");
  std::ofstream(plain) << "data";
  asio::io_context io;
  auto refused = LineServer::start(io, {plain}, [](std::string_view) { return std::string(); });
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("not a socket"), std::string::npos) << refused.error().message;
  ::unlink(plain.c_str());
}

TEST(LineSocket, ClientReportsAMissingServerAndATooLongPath) {
  auto missing = request_line("/tmp/cellguard-ipc-test-no-such.sock", "status", 500);
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("no-such.sock"), std::string::npos);
  auto too_long = request_line("/tmp/" + std::string(200, 'a'), "status", 500);
  ASSERT_FALSE(too_long);
}

TEST(LineSocket, DefaultPathUsesTheRuntimeDir) {
  ::setenv("XDG_RUNTIME_DIR", "/run/user/1234", 1);
  EXPECT_EQ(default_socket_path("x.sock"), "/run/user/1234/x.sock");
  ::unsetenv("XDG_RUNTIME_DIR");
  EXPECT_EQ(default_socket_path("x.sock"), "/tmp/x.sock");
}

}  // namespace
}  // namespace cellguard::ipc
