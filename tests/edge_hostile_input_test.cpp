// `cellguard edge` against hostile peers (issue 12 items 1, 2, 3, 5), as real processes: a rogue
// socketcand peer between the simulator and the edge relays the simulator's traffic (so the edge has
// modules to supervise) and slips hostile elements in between two real ones: bytes that are not UTF-8,
// control bytes, overlong and malformed elements and a storm of error frames. A sensor board on a
// pseudo-terminal the test owns sends lines with terminal escapes and NUL bytes. The edge must stay
// alive, keep supervising, count and report what it got, escaped, in its events and its log.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <pty.h>
#include <sys/socket.h>
#include <termios.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>

#include "support/cellguard_process.h"
#include "support/child_process.h"
#include "support/rig_edge_config.h"

namespace cellguard {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::ChildProcess;
using testing::wait_until;
using namespace std::chrono_literals;

// The elements of issue 12 that aborted the edge, and more of their kind.
const std::vector<std::string> kHostileElements = {
    "< \xc3\x28 >",
    "< error \xff\xfe >",
    "< frame 181 1796608346.000000 11\xfd"
    "22 >",
    std::string("< error \x1b]0;owned\x07") + '\0' + " text >",
    "< frame zz 1.0 11 >",
    "<>",
    "< bogus keyword >",
    "< " + std::string(600, 'A') + " >",  // longer than any element (512 bytes)
};

// A socketcand peer in the middle: accepts the edge, connects to the real server for each
// connection, relays both ways, and writes injected bytes to the edge between two elements once the
// handshake is done (after the server's second `< ok >`, the one to `< rawmode >`).
class RoguePeer {
 public:
  RoguePeer(std::string upstream_host, int upstream_port)
      : upstream_host_(std::move(upstream_host)), upstream_port_(upstream_port) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(listen_fd_, 4) != 0)
      return;
    socklen_t length = sizeof address;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~RoguePeer() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    ::close(listen_fd_);
  }

  int port() const { return port_; }
  int connections() const { return connections_.load(); }
  void inject(const std::string& bytes) {
    std::lock_guard lock(mutex_);
    injected_ += bytes;
  }
  bool all_injected() {
    std::lock_guard lock(mutex_);
    return injected_.empty();
  }

 private:
  static bool send_all(int fd, std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  int connect_upstream() const {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(upstream_port_));
    ::inet_pton(AF_INET, upstream_host_.c_str(), &address.sin_addr);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      ::close(fd);
      return -1;
    }
    return fd;
  }

  void run() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      const int edge = ::accept(listen_fd_, nullptr, nullptr);
      if (edge < 0) continue;
      ++connections_;
      const int upstream = connect_upstream();
      if (upstream >= 0) relay(edge, upstream);
      ::close(edge);
      if (upstream >= 0) ::close(upstream);
    }
  }

  void relay(int edge, int upstream) {
    std::string down;  // from the server, not yet passed on: the rest of an element
    int oks = 0;
    char buffer[65536];
    while (!stop_) {
      pollfd fds[2] = {{edge, POLLIN, 0}, {upstream, POLLIN, 0}};
      const int ready = ::poll(fds, 2, 10);
      if (ready < 0) return;
      if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
        const ssize_t n = ::recv(edge, buffer, sizeof buffer, 0);
        if (n <= 0 || !send_all(upstream, {buffer, static_cast<std::size_t>(n)})) return;
      }
      if ((fds[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
        const ssize_t n = ::recv(upstream, buffer, sizeof buffer, 0);
        if (n <= 0) return;
        down.append(buffer, static_cast<std::size_t>(n));
        const std::size_t end = down.rfind('>');
        if (end != std::string::npos) {
          const std::string whole = down.substr(0, end + 1);
          for (std::size_t at = whole.find("< ok >"); at != std::string::npos;
               at = whole.find("< ok >", at + 1))
            ++oks;
          if (!send_all(edge, whole)) return;
          down.erase(0, end + 1);
        }
      }
      // Between two elements, in raw mode: the hostile bytes go in.
      if (oks >= 2 && down.find('<') == std::string::npos) {
        std::string bytes;
        {
          std::lock_guard lock(mutex_);
          bytes.swap(injected_);
        }
        if (!bytes.empty() && !send_all(edge, bytes)) return;
      }
    }
  }

  std::string upstream_host_;
  int upstream_port_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::mutex mutex_;
  std::string injected_;
  std::thread thread_;
};

std::string read_all(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

bool has_raw_byte(const std::string& text, char byte) { return text.find(byte) != std::string::npos; }

// Every line of the events file is JSON (nlohmann refuses invalid UTF-8); returns them.
std::vector<json> all_events(const fs::path& path, std::string& failure) {
  std::vector<json> events;
  std::istringstream in(read_all(path));
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto event = json::parse(line, nullptr, false);
    if (event.is_discarded()) {
      failure = "not JSON: " + line;
      continue;
    }
    events.push_back(std::move(event));
  }
  return events;
}

class EdgeHostileInput : public ::testing::Test {
 protected:
  void SetUp() override {
    // Short: the operator socket's path must fit in 108 bytes.
    static int count = 0;
    dir_ = fs::temp_directory_path() /
           ("cg-hostile-" + std::to_string(::getpid()) + "-" + std::to_string(++count));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    sim_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{testing::binary(), "sim", "--modules", "2", "--control",
                                 (dir_ / "sim.sock").string(), "--board-link", (dir_ / "board").string(),
                                 "--inverter-tcp-port", "0"},
        (dir_ / "sim.log").string());
    ASSERT_TRUE(sim_->ready()) << sim_->log();
  }
  void TearDown() override {
    edge_.reset();
    sim_.reset();
    if (!HasFailure()) fs::remove_all(dir_);
  }

  // The rig configuration for 2 modules, with the CAN URL and board device given.
  void start_edge(const std::string& can_url, const std::string& board_device) {
    toml::table config = testing::rig_edge_config(sim_->ready_line(), dir_, 2, "hostile", board_device);
    config["can"].as_table()->insert_or_assign("url", can_url);
    config["operator"].as_table()->insert_or_assign("events", (dir_ / "events.jsonl").string());
    const std::string path = (dir_ / "edge.toml").string();
    std::ofstream(path) << config << "\n";
    edge_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{testing::binary(), "edge", "--config", path}, (dir_ / "edge.log").string());
    ASSERT_TRUE(edge_->ready()) << edge_->log();
  }

  json status() { return testing::request((dir_ / "edge.sock").string(), {{"cmd", "status"}})["status"]; }
  std::string logs() const { return "--- edge log ---\n" + (edge_ ? edge_->log() : "") + "\n"; }

  fs::path dir_;
  std::unique_ptr<ChildProcess> sim_;
  std::unique_ptr<ChildProcess> edge_;
};

TEST_F(EdgeHostileInput, ARogueSocketcandPeerCannotKillOrResetTheEdgeAndIsReportedEscaped) {
  // socketcand://127.0.0.1:PORT/can0 of the simulator: the rogue peer relays to it.
  const std::string sim_can = sim_->ready_line()["can"];
  const std::size_t colon = sim_can.rfind(':');
  const std::size_t slash = sim_can.rfind('/');
  RoguePeer rogue("127.0.0.1", std::stoi(sim_can.substr(colon + 1, slash - colon - 1)));
  ASSERT_GT(rogue.port(), 0);
  ASSERT_NO_FATAL_FAILURE(start_edge("socketcand://127.0.0.1:" + std::to_string(rogue.port()) + "/can0",
                                     (dir_ / "board").string()));
  ASSERT_TRUE(wait_until([&] { return status()["modules"].value("found", 0) == 2; }, 15s)) << logs();

  for (const std::string& element : kHostileElements) rogue.inject(element);
  const std::size_t hostile = kHostileElements.size();
  ASSERT_TRUE(wait_until([&] { return status()["can"].value("malformed_elements", 0u) >= hostile; }, 10s))
      << status().dump(2) << logs();

  // Item 3: a storm of 5,000 error frames (controller problems, class 0x004) raises a warning.
  std::string storm;
  for (int i = 0; i < 5000; ++i) storm += "< error 00000004 1796608346." + std::to_string(100000 + i) + " >";
  rogue.inject(storm);
  ASSERT_TRUE(wait_until([&] { return status()["can"].value("error_frames", 0u) >= 5000u; }, 15s))
      << status().dump(2) << logs();

  // Alive, answering, still supervising: the modules stay found and frames keep arriving after it all.
  const std::uint64_t frames_after = status()["can"].value("frames", 0u);
  ASSERT_TRUE(wait_until([&] { return status()["can"].value("frames", 0u) > frames_after + 20; }, 10s))
      << logs();
  EXPECT_TRUE(edge_->running());
  const json s = status();
  EXPECT_EQ(s["modules"].value("found", 0), 2) << s.dump(2);
  EXPECT_EQ(s.value("handler_failures", 1u), 0u) << s.dump(2);
  EXPECT_EQ(s["can"].value("malformed_elements", 0u), hostile) << s.dump(2);
  EXPECT_TRUE(s["can"].value("connected", false)) << s.dump(2);
  // Item 2: bad elements are not dropped frames and reset nothing: one connection, no reopen.
  EXPECT_EQ(s["can"].value("reopens", 1u), 0u) << s.dump(2);
  EXPECT_EQ(rogue.connections(), 1);

  // Events: every line JSON, no raw hostile byte, the bad elements reported escaped.
  std::string failure;
  const auto events = all_events(dir_ / "events.jsonl", failure);
  EXPECT_TRUE(failure.empty()) << failure;
  const std::string events_text = read_all(dir_ / "events.jsonl");
  for (char byte : {'\xfd', '\xff', '\x1b', '\x07'})
    EXPECT_FALSE(has_raw_byte(events_text, byte)) << int(byte);
  int malformed_events = 0;
  bool saw_fd = false, saw_esc = false, saw_storm = false, saw_can_down = false;
  for (const auto& e : events) {
    if (e.value("link", "") != "can") continue;
    if (e.value("event", "") == "malformed_element") {
      ++malformed_events;
      const std::string detail = e.value("detail", "");
      if (detail.find("11\\xfd22") != std::string::npos) saw_fd = true;
      if (detail.find("\\x1b]0;owned\\x07\\x00") != std::string::npos) saw_esc = true;
    }
    if (e.value("event", "") == "error_frame_storm") {
      saw_storm = true;
      EXPECT_GE(e.value("count", 0u), 100u) << e.dump();
      EXPECT_DOUBLE_EQ(e.value("window_s", 0.0), 1.0) << e.dump();
      EXPECT_NE(e.value("message", "").find("error frames within 1.0 s"), std::string::npos) << e.dump();
    }
    if (e.contains("up") && !e.value("up", true)) saw_can_down = true;
  }
  EXPECT_EQ(malformed_events, static_cast<int>(hostile));
  EXPECT_TRUE(saw_fd) << events_text;
  EXPECT_TRUE(saw_esc) << events_text;
  EXPECT_TRUE(saw_storm) << events_text;
  EXPECT_FALSE(saw_can_down) << events_text;

  // The log: one line per message, escaped, without a raw hostile byte.
  const std::string log = edge_->log();
  for (char byte : {'\xfd', '\xff', '\x1b', '\x07'}) EXPECT_FALSE(has_raw_byte(log, byte)) << int(byte);
  EXPECT_NE(log.find("11\\xfd22"), std::string::npos) << log;
  EXPECT_NE(log.find("CAN error-frame storm"), std::string::npos) << log;
}

TEST_F(EdgeHostileInput, RawControlBytesFromTheBoardArriveEscapedInTheLogAndEvents) {
  // The board on a pseudo-terminal of the test's own: it says what the test wants, byte for byte.
  int master = -1, slave = -1;
  char name[256] = {};
  ASSERT_EQ(::openpty(&master, &slave, name, nullptr, nullptr), 0);
  termios raw{};
  ::tcgetattr(slave, &raw);
  ::cfmakeraw(&raw);
  ::tcsetattr(slave, TCSANOW, &raw);
  ASSERT_NO_FATAL_FAILURE(start_edge(sim_->ready_line()["can"], name));
  const std::string lines[] = {std::string("T1:\x1b[2J\x07") + '\0' + "junk\r\n",
                               "\xff\xfe\xc3\x28 garbage\r\n"};
  bool reported = false;
  for (int attempt = 0; attempt < 50 && !reported; ++attempt) {
    for (const auto& line : lines)
      ASSERT_EQ(::write(master, line.data(), line.size()), static_cast<ssize_t>(line.size()));
    reported = wait_until(
        [&] { return read_all(dir_ / "events.jsonl").find("\\\\xff\\\\xfe") != std::string::npos; }, 200ms);
  }
  ASSERT_TRUE(reported) << read_all(dir_ / "events.jsonl") << logs();
  EXPECT_TRUE(edge_->running());
  EXPECT_TRUE(status().is_object());

  std::string failure;
  const auto events = all_events(dir_ / "events.jsonl", failure);
  EXPECT_TRUE(failure.empty()) << failure;
  bool saw_escape_line = false;
  for (const auto& e : events) {
    if (e.value("link", "") == "board" && e.value("event", "") == "invalid_line" &&
        e.value("line", "").find("T1:\\x1b[2J\\x07\\x00junk") != std::string::npos)
      saw_escape_line = true;
  }
  EXPECT_TRUE(saw_escape_line) << read_all(dir_ / "events.jsonl");
  const std::string events_text = read_all(dir_ / "events.jsonl");
  const std::string log = edge_->log();
  for (char byte : {'\x1b', '\x07', '\xff', '\xfe'}) {
    EXPECT_FALSE(has_raw_byte(events_text, byte)) << int(byte);
    EXPECT_FALSE(has_raw_byte(log, byte)) << int(byte);
  }
  EXPECT_NE(log.find("T1:\\x1b[2J\\x07\\x00junk"), std::string::npos) << log;
  ::close(master);
  ::close(slave);
}

}  // namespace
}  // namespace cellguard
