#include "ipc/line_socket.h"

#include <grp.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <asio.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "core/thread_annotations.h"

namespace cellguard::ipc {
namespace {

struct ServerFixture;
bool wait_sessions(ServerFixture& fixture, std::size_t count, std::chrono::milliseconds timeout);

std::string temp_socket(const char* tag) {
  return "/tmp/cellguard-ipc-test-" + std::to_string(::getpid()) + "-" + tag + ".sock";
}

// Runs a server on a loop thread for the duration of a test.
struct ServerFixture {
  asio::io_context io;
  std::unique_ptr<LineServer> server;
  std::thread loop;
  std::atomic<int> requests{0};

  Mutex peers_mutex;
  std::vector<PeerCredentials> peers GUARDED_BY(peers_mutex);

  explicit ServerFixture(const std::string& path, std::size_t max_line = 4096)
      : ServerFixture(options_for(path, max_line)) {}
  static LineServerOptions options_for(const std::string& path, std::size_t max_line) {
    LineServerOptions options;
    options.path = path;
    options.max_line_bytes = max_line;
    return options;
  }
  explicit ServerFixture(const LineServerOptions& options) {
    auto started = LineServer::start(io, options, [this](std::string_view line, const PeerCredentials& peer) {
      ++requests;
      MutexLock lock(peers_mutex);
      peers.push_back(peer);
      return "echo:" + std::string(line);
    });
    EXPECT_TRUE(started) << (started ? "" : started.error().message);
    if (started) server = std::move(started.value());
    loop = std::thread([this] {
      auto guard = asio::make_work_guard(io);
      io.run();
    });
  }
  std::size_t sessions() {
    std::promise<std::size_t> count;
    asio::post(io, [&] { count.set_value(server ? server->session_count() : 0); });
    return count.get_future().get();
  }
  ~ServerFixture() {
    asio::post(io, [this] {
      if (server) server->close();
      io.stop();
    });
    loop.join();
  }
};

bool wait_sessions(ServerFixture& fixture, std::size_t count, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (fixture.sessions() == count) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling the loop's count
  }
  return fixture.sessions() == count;
}

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
  LineServerOptions options;
  options.path = plain;
  auto refused = LineServer::start(io, options, [](std::string_view) { return std::string(); });
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

TEST(LineSocket, DefaultPathUnderSystemdIsTheServicesRuntimeDirectory) {
  // RuntimeDirectory=cellguard in the packaged units: the edge's socket, and the operator's default.
  ::setenv("RUNTIME_DIRECTORY", "/run/cellguard:/run/other", 1);
  ::setenv("XDG_RUNTIME_DIR", "/run/user/1234", 1);
  EXPECT_EQ(default_socket_path("x.sock"), "/run/cellguard/x.sock");
  ::setenv("RUNTIME_DIRECTORY", "relative", 1);  // not systemd's: ignored
  EXPECT_EQ(default_socket_path("x.sock"), "/run/user/1234/cellguard/x.sock");
  ::unsetenv("RUNTIME_DIRECTORY");
  ::unsetenv("XDG_RUNTIME_DIR");
}

TEST(LineSocket, DefaultPathIsAPrivateDirectory) {
  ::setenv("XDG_RUNTIME_DIR", "/run/user/1234", 1);
  EXPECT_EQ(default_socket_path("x.sock"), "/run/user/1234/cellguard/x.sock");
  ::unsetenv("XDG_RUNTIME_DIR");
  // Never /tmp itself: root's is under /run, anybody else's is a per-uid directory that is verified.
  EXPECT_EQ(default_socket_path("x.sock"), ::geteuid() == 0
                                               ? std::string("/run/cellguard/x.sock")
                                               : "/tmp/cellguard-" + std::to_string(::geteuid()) + "/x.sock");
}

// ---- issue 12 item 6: who may talk to the socket -------------------------------------------------

namespace fs = std::filesystem;

// A fresh directory for one test, removed afterwards; `mode` applied exactly.
struct TempDir {
  fs::path path;
  explicit TempDir(const char* tag, mode_t mode = 0755) {
    path = fs::temp_directory_path() / ("cellguard-ipc-" + std::to_string(::getpid()) + "-" + tag);
    fs::remove_all(path);
    fs::create_directories(path);
    ::chmod(path.c_str(), mode);
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

struct UmaskGuard {
  mode_t saved;
  explicit UmaskGuard(mode_t mask) : saved(::umask(mask)) {}
  ~UmaskGuard() { ::umask(saved); }
};

mode_t mode_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

// Runs a shell command line; returns its exit status and its output (stdout and stderr).
int run(const std::string& command, std::string& output) {
  output.clear();
  FILE* out = ::popen((command + " 2>&1").c_str(), "r");
  if (out == nullptr) return -1;
  char buffer[4096];
  while (std::fgets(buffer, sizeof buffer, out) != nullptr) output += buffer;
  const int status = ::pclose(out);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool can_switch_users() {
  std::string out;
  return ::geteuid() == 0 &&
         run("setpriv --reuid=nobody --regid=nogroup --clear-groups /usr/bin/python3 -c 'pass'", out) == 0;
}

const char* kAsNobody = "setpriv --reuid=nobody --regid=nogroup --clear-groups /usr/bin/python3 -c ";

TEST(LineSocketAccess, SocketIs0600AndItsDirectory0700WhateverTheUmask) {
  TempDir runtime("runtime", 0700);
  ::setenv("XDG_RUNTIME_DIR", runtime.path.c_str(), 1);
  UmaskGuard umask_000(0);
  const std::string path = default_socket_path("edge.sock");
  EXPECT_EQ(path, runtime / "cellguard/edge.sock");
  {
    ServerFixture fixture(path);
    ASSERT_TRUE(fixture.server);
    EXPECT_EQ(mode_of(runtime / "cellguard"), 0700u);
    EXPECT_EQ(mode_of(path), 0600u);
    auto answer = request_line(path, "status");
    ASSERT_TRUE(answer) << answer.error().message;
    // The handler sees who asked.
    MutexLock lock(fixture.peers_mutex);
    ASSERT_EQ(fixture.peers.size(), 1u);
    EXPECT_EQ(fixture.peers[0].uid, ::geteuid());
    EXPECT_EQ(fixture.peers[0].pid, ::getpid());
    EXPECT_NE(fixture.peers[0].describe().find("pid " + std::to_string(::getpid()) + " uid " +
                                               std::to_string(::geteuid())),
              std::string::npos)
        << fixture.peers[0].describe();
  }
  ::unsetenv("XDG_RUNTIME_DIR");
}

TEST(LineSocketAccess, AConfiguredGroupGives0660AndTheDirectory0750) {
  TempDir runtime("group", 0700);
  ::setenv("XDG_RUNTIME_DIR", runtime.path.c_str(), 1);
  UmaskGuard umask_077(077);
  group* own = ::getgrgid(::getegid());
  ASSERT_NE(own, nullptr);
  LineServerOptions options;
  options.path = default_socket_path("edge.sock");
  options.group = own->gr_name;
  {
    ServerFixture fixture(options);
    ASSERT_TRUE(fixture.server);
    EXPECT_EQ(mode_of(options.path), 0660u);
    EXPECT_EQ(mode_of(runtime / "cellguard"), 0750u);
  }
  options.group = "cellguard-no-such-group";
  asio::io_context io;
  auto refused = LineServer::start(io, options, [](std::string_view) { return std::string(); });
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("group 'cellguard-no-such-group' does not exist"), std::string::npos)
      << refused.error().message;
  ::unsetenv("XDG_RUNTIME_DIR");
}

TEST(LineSocketAccess, AWorldWritableDirectoryIsRefusedUnlessSticky) {
  TempDir open_dir("open", 0777);
  asio::io_context io;
  LineServerOptions options;
  options.path = open_dir / "edge.sock";
  auto refused = LineServer::start(io, options, [](std::string_view) { return std::string(); });
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("is writable by others (mode 0777)"), std::string::npos)
      << refused.error().message;
  auto client = request_line(options.path, "status", 500);
  ASSERT_FALSE(client);
  EXPECT_NE(client.error().message.find("refusing to talk to it"), std::string::npos)
      << client.error().message;
  // The private default directory must not be writable by others even when sticky.
  TempDir runtime("sticky", 0700);
  ::mkdir((runtime / "cellguard").c_str(), 0700);
  ::chmod((runtime / "cellguard").c_str(), 01777);
  ::setenv("XDG_RUNTIME_DIR", runtime.path.c_str(), 1);
  options.path = default_socket_path("edge.sock");
  auto refused_private = LineServer::start(io, options, [](std::string_view) { return std::string(); });
  ASSERT_FALSE(refused_private);
  EXPECT_NE(refused_private.error().message.find("writable by others"), std::string::npos)
      << refused_private.error().message;
  ::unsetenv("XDG_RUNTIME_DIR");
}

TEST(LineSocketAccess, ADirectoryOrSocketPlantedByAnotherUserIsRefusedByServerAndClient) {
  if (!can_switch_users()) GTEST_SKIP() << "needs root and setpriv to plant files as user nobody";
  // A per-user directory squatted by nobody: the server refuses it (no requests ever go there).
  TempDir runtime("planted", 0755);
  ::mkdir((runtime / "cellguard").c_str(), 0700);
  ASSERT_EQ(::chown((runtime / "cellguard").c_str(), 65534, 65534), 0);
  ::setenv("XDG_RUNTIME_DIR", runtime.path.c_str(), 1);
  asio::io_context io;
  LineServerOptions options;
  options.path = default_socket_path("edge.sock");
  auto refused = LineServer::start(io, options, [](std::string_view) { return std::string(); });
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("belongs to uid 65534 (nobody), not to us"), std::string::npos)
      << refused.error().message;
  ::unsetenv("XDG_RUNTIME_DIR");

  // A socket served by nobody in a shared sticky directory (as /tmp without XDG_RUNTIME_DIR): the
  // client refuses to send it the operator's request; the server refuses to replace it.
  TempDir shared("shared", 01777);
  const std::string planted = shared / "edge.sock";
  const std::string script =
      std::string(kAsNobody) +
      "'import socket,sys,time; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); "
      "s.listen(); print(\"ready\", flush=True); c,_=s.accept(); print(\"GOT\", c.recv(100), flush=True)' " +
      planted;
  FILE* rogue = ::popen(("timeout 10 " + script).c_str(), "r");
  ASSERT_NE(rogue, nullptr);
  char line[256] = {};
  ASSERT_NE(std::fgets(line, sizeof line, rogue), nullptr);
  auto answer = request_line(planted, R"({"cmd":"reset"})", 1000);
  ASSERT_FALSE(answer);
  EXPECT_NE(answer.error().message.find(
                "belongs to uid 65534 (nobody), neither root nor you: refusing to talk to it"),
            std::string::npos)
      << answer.error().message;
  options.path = planted;
  auto replaced = LineServer::start(io, options, [](std::string_view) { return std::string(); });
  ASSERT_FALSE(replaced);
  EXPECT_NE(replaced.error().message.find("belongs to uid 65534 (nobody), not to us"), std::string::npos)
      << replaced.error().message;
  // Renamed into a name the client trusts: the file looks like ours, the serving process does not.
  const std::string disguised = shared / "ours.sock";
  ASSERT_EQ(::rename(planted.c_str(), disguised.c_str()), 0);
  ASSERT_EQ(::chown(disguised.c_str(), 0, 0), 0);
  auto disguised_answer = request_line(disguised, R"({"cmd":"reset"})", 1000);
  ASSERT_FALSE(disguised_answer);
  EXPECT_NE(disguised_answer.error().message.find("served by uid 65534 (nobody)"), std::string::npos)
      << disguised_answer.error().message;
  std::string rest;
  while (std::fgets(line, sizeof line, rogue) != nullptr) rest += line;
  ::pclose(rogue);
  EXPECT_EQ(rest.find("reset"), std::string::npos) << "the rogue server received: " << rest;
}

TEST(LineSocketAccess, AnUnprivilegedUserCannotConnectUnderUmask000) {
  if (!can_switch_users()) GTEST_SKIP() << "needs root and setpriv to act as user nobody";
  UmaskGuard umask_000(0);
  TempDir open_dir("unprivileged", 0755);  // others may traverse: only the socket's own mode protects it
  const std::string path = open_dir / "edge.sock";
  ServerFixture fixture(path);
  ASSERT_TRUE(fixture.server);
  std::string output;
  const int status = run(std::string(kAsNobody) +
                             "'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); "
                             "s.sendall(b\"{\\\"cmd\\\":\\\"start\\\"}\\n\"); print(s.recv(100))' " +
                             path,
                         output);
  EXPECT_NE(status, 0) << output;
  EXPECT_NE(output.find("PermissionError"), std::string::npos) << output;
  EXPECT_EQ(fixture.requests.load(), 0);
}

TEST(LineSocketAccess, IdleClientsOfTheOwnerDoNotBlockStatusAndAreDroppedAfterTheIdleTimeout) {
  TempDir dir("idle", 0700);
  LineServerOptions options = ServerFixture::options_for(dir / "edge.sock", 4096);
  options.idle_timeout_ms = 400;
  ServerFixture fixture(options);
  ASSERT_TRUE(fixture.server);
  std::vector<int> idle;
  for (int i = 0; i < 24; ++i) {  // more than max_sessions + reserved_sessions
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::snprintf(address.sun_path, sizeof address.sun_path, "%s", options.path.c_str());
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    ASSERT_EQ(::send(fd, "{\"cmd\"", 7, MSG_NOSIGNAL), 7);  // a line begun, never finished
    idle.push_back(fd);
  }
  const auto start = std::chrono::steady_clock::now();
  auto answer = request_line(options.path, "status", 2000);
  ASSERT_TRUE(answer) << answer.error().message;
  EXPECT_EQ(*answer, "echo:status");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(300));
  EXPECT_LE(fixture.sessions(), options.max_sessions + options.reserved_sessions);
  // After the idle timeout every idle client has been dropped (its socket reads end-of-file).
  std::this_thread::sleep_for(std::chrono::milliseconds(600));  // the idle timeout plus a margin
  EXPECT_EQ(fixture.sessions(), 0u);
  int closed = 0;
  for (int fd : idle) {
    char byte = 0;
    closed += ::recv(fd, &byte, 1, MSG_DONTWAIT) == 0;
    ::close(fd);
  }
  EXPECT_EQ(closed, static_cast<int>(idle.size()));
}

TEST(LineSocketAccess, IdleClientsOfAGroupMemberAreCappedAndTheOwnerStillGetsIn) {
  if (!can_switch_users()) GTEST_SKIP() << "needs root and setpriv to act as user nobody";
  TempDir dir("groupflood", 0755);
  LineServerOptions options = ServerFixture::options_for(dir / "edge.sock", 4096);
  options.group = "nogroup";
  options.idle_timeout_ms = 800;
  ServerFixture fixture(options);
  ASSERT_TRUE(fixture.server);
  // nobody (group nogroup, allowed by 0660) opens 20 connections and keeps them idle.
  const std::string script =
      "setpriv --reuid=nobody --regid=nogroup --init-groups /usr/bin/python3 -c "
      "'import socket,sys,time\nsocks=[]\nfor i in range(20):\n s=socket.socket(socket.AF_UNIX); "
      "s.connect(sys.argv[1]); socks.append(s)\nprint(\"connected\", len(socks), flush=True)\n"
      "busy=0\nfor s in socks:\n s.settimeout(0.3)\n try:\n  busy += "
      "s.recv(100).startswith(b\"{\\\"ok\\\":false,\\\"error\\\":\\\"busy\")\n"
      " except OSError: pass\nprint(\"busy\", busy, flush=True)\ntime.sleep(1.5)' " +
      options.path;
  FILE* flood = ::popen(("timeout 10 " + script + " 2>&1").c_str(), "r");
  ASSERT_NE(flood, nullptr);
  char line[256] = {};
  ASSERT_NE(std::fgets(line, sizeof line, flood), nullptr);
  EXPECT_STREQ(line, "connected 20\n");
  ASSERT_NE(std::fgets(line, sizeof line, flood), nullptr);
  EXPECT_STREQ(line, "busy 4\n");  // 16 admitted, the rest told so
  const auto start = std::chrono::steady_clock::now();
  auto answer = request_line(options.path, "status", 2000);
  ASSERT_TRUE(answer) << answer.error().message;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(300));
  {
    MutexLock lock(fixture.peers_mutex);
    EXPECT_EQ(fixture.peers.back().uid, ::geteuid());
  }
  EXPECT_TRUE(wait_sessions(fixture, 0, std::chrono::milliseconds(3000)));
  ::pclose(flood);
}

}  // namespace
}  // namespace cellguard::ipc
