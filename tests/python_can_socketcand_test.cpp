// Our SocketcandServer against an independent client: python-can's socketcand interface (Debian's
// python-can 4.1 under /usr/bin/python3), driven by tests/peers/socketcand_peer.py.
//
// One loop runs the server, the in-process side and the reading of the peer's stdout; the test waits
// on the peer's lines and on frames, each with a bounded timeout, never on a fixed sleep.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <asio/io_context.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/read_until.hpp>
#include <asio/streambuf.hpp>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <istream>
#include <string>
#include <vector>

#include "can/bus.h"
#include "can/bus_test_support.h"
#include "can/socketcand.h"

extern char** environ;

namespace cellguard::can {
namespace {

using testing::run_until;
using namespace std::chrono_literals;

constexpr const char* kPython = "/usr/bin/python3";  // not the PATH python: it lacks python-can
constexpr int kFromServer = 300;  // enough that python-can's 1024-byte reads split elements
constexpr int kToServer = 300;

// The twins of expected_from_server() and to_server() in socketcand_peer.py.
Frame from_server(int i) {
  Frame frame;
  frame.extended = i % 3 == 2;
  frame.id = frame.extended ? 0x18DA0000u + i : (0x100u + i) & 0x7FF;
  frame.size = static_cast<std::uint8_t>(i % 9);
  for (int j = 0; j < frame.size; ++j) frame.data[j] = static_cast<std::uint8_t>(i * 7 + j);
  return frame;
}

Frame to_server(int i) {
  Frame frame;
  frame.extended = i % 2 == 1;
  frame.id = frame.extended ? 0x1CEB0000u + i : (0x200u + i) & 0x7FF;
  frame.size = static_cast<std::uint8_t>((i + 3) % 9);
  for (int j = 0; j < frame.size; ++j) frame.data[j] = static_cast<std::uint8_t>(i * 13 + j + 1);
  return frame;
}

// A child process with pipes to its stdin and from its stdout; killed and reaped if still running.
class Peer {
 public:
  explicit Peer(asio::io_context& io) : stdout_(io) {}
  Peer(const Peer&) = delete;
  Peer& operator=(const Peer&) = delete;
  ~Peer() {
    if (stdin_fd_ >= 0) ::close(stdin_fd_);
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }

  bool start(const std::vector<std::string>& argv) {
    int in[2];
    int out[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) return false;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    std::vector<char*> args;
    for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    int spawned = posix_spawn(&pid_, argv[0].c_str(), &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(in[0]);
    ::close(out[1]);
    stdin_fd_ = in[1];
    stdout_.assign(out[0]);
    if (spawned != 0) {
      pid_ = -1;
      return false;
    }
    read_line();
    return true;
  }

  void write_line(const std::string& line) {
    std::string text = line + "\n";
    ASSERT_EQ(::write(stdin_fd_, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  }

  bool has_line(const std::string& line) const {
    for (const auto& l : lines_) {
      if (l == line) return true;
    }
    return false;
  }
  bool has_error() const {
    for (const auto& l : lines_) {
      if (l.rfind("error:", 0) == 0) return true;
    }
    return eof_;
  }
  bool eof() const { return eof_; }
  std::string transcript() const {
    std::string text;
    for (const auto& l : lines_) text += l + "\n";
    return text;
  }

  // Reaps the child after its stdout closed; returns its exit status (-1 if it did not exit).
  int wait() {
    int status = 0;
    if (pid_ <= 0 || ::waitpid(pid_, &status, 0) != pid_) return -1;
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  void read_line() {
    asio::async_read_until(stdout_, output_, '\n', [this](const asio::error_code& error, std::size_t) {
      if (error) {
        eof_ = true;
        return;
      }
      std::istream stream(&output_);
      std::string line;
      std::getline(stream, line);
      lines_.push_back(line);
      read_line();
    });
  }

  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  asio::posix::stream_descriptor stdout_;
  asio::streambuf output_;
  std::vector<std::string> lines_;
  bool eof_ = false;
};

TEST(PythonCanSocketcand, PythonCanReceivesAndSendsFramesExactlyThroughOurServer) {
  const char* source_dir = std::getenv("CELLGUARD_SOURCE_DIR");
  ASSERT_NE(source_dir, nullptr) << "run through ctest, which sets CELLGUARD_SOURCE_DIR";
  std::string script = std::string(source_dir) + "/tests/peers/socketcand_peer.py";
  ASSERT_TRUE(std::filesystem::exists(script)) << script;
  ASSERT_TRUE(std::filesystem::exists(kPython)) << kPython;

  asio::io_context io;
  SocketcandServerOptions options;
  options.inproc_bus = "rig";
  auto server = SocketcandServer::start(io, options);
  ASSERT_TRUE(server.ok()) << server.error().message;
  auto sim = open_bus(io, "inproc:rig");
  ASSERT_TRUE(sim.ok());
  std::vector<Frame> received;
  sim.value()->on_receive([&](const Frame& frame) { received.push_back(frame); });

  Peer peer(io);
  ASSERT_TRUE(peer.start({kPython, script, std::to_string(server.value()->port()),
                          std::to_string(kFromServer), std::to_string(kToServer)}));
  ASSERT_TRUE(run_until(
      io, [&] { return peer.has_line("ready") || peer.has_error(); }, 30s))
      << peer.transcript();
  ASSERT_TRUE(peer.has_line("ready")) << peer.transcript();

  for (int i = 0; i < kFromServer; ++i) ASSERT_TRUE(sim.value()->send(from_server(i)).ok());
  std::string received_line = "received " + std::to_string(kFromServer);
  ASSERT_TRUE(run_until(
      io, [&] { return peer.has_line(received_line) || peer.has_error(); }, 30s))
      << peer.transcript();
  ASSERT_TRUE(peer.has_line(received_line)) << peer.transcript();

  std::string sent_line = "sent " + std::to_string(kToServer);
  ASSERT_TRUE(run_until(
      io,
      [&] {
        return (static_cast<int>(received.size()) >= kToServer && peer.has_line(sent_line)) ||
               peer.has_error();
      },
      30s))
      << peer.transcript();
  ASSERT_EQ(static_cast<int>(received.size()), kToServer) << peer.transcript();
  for (int i = 0; i < kToServer; ++i) {
    Frame expected = to_server(i);
    expected.bus.assign("rig");
    expected.timestamp_ns = received[i].timestamp_ns;
    EXPECT_EQ(received[i], expected) << "frame " << i << " id " << std::hex << received[i].id;
  }

  peer.write_line("done");
  ASSERT_TRUE(run_until(
      io, [&] { return peer.eof(); }, 30s))
      << peer.transcript();
  EXPECT_EQ(peer.wait(), 0) << peer.transcript();
  EXPECT_EQ(server.value()->counters().malformed_elements, 0u);
  EXPECT_EQ(server.value()->counters().frames_dropped, 0u);
}

}  // namespace
}  // namespace cellguard::can
