// socketcand client and server over real loopback TCP: our client against our server, and raw
// bytes against the server.
#include "can/socketcand.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <thread>
#include <vector>

#include "can/bus_test_support.h"
#include "core/text.h"

namespace cellguard::can {
namespace {

using testing::RawPeer;
using testing::run_ready;
using testing::run_until;

Frame make_frame(std::uint32_t id, std::vector<std::uint8_t> bytes, bool extended = false) {
  Frame frame;
  frame.id = id;
  frame.extended = extended;
  if (!bytes.empty()) frame.set_payload(bytes);  // an empty vector has no data pointer for memcpy
  return frame;
}

// The kinds of frame the protocol carries, each once.
std::vector<Frame> frame_kinds() {
  std::vector<Frame> frames;
  frames.push_back(make_frame(0x123, {0x11, 0x22, 0x33, 0x44}));
  frames.push_back(make_frame(0x000, {}));
  frames.push_back(make_frame(0x18DAF101, {1, 2, 3, 4, 5, 6, 7, 8}, true));
  frames.push_back(make_frame(0x005, {0xFF}, true));  // a small id that is still 29-bit
  Frame remote = make_frame(0x7FF, {});
  remote.remote = true;
  remote.size = 3;
  frames.push_back(remote);
  Frame fd = make_frame(0x1F0, {});
  fd.fd = true;
  fd.bitrate_switch = true;
  for (std::uint8_t i = 0; i < 64; ++i) fd.data[i] = i;
  fd.size = 64;
  frames.push_back(fd);
  Frame fd_extended = make_frame(0x1ABCDEF, {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2}, true);
  fd_extended.fd = true;
  fd_extended.error_state = true;
  frames.push_back(fd_extended);
  return frames;
}

// Compares all but the timestamp, which the receiving side sets.
void expect_same_frames(const std::vector<Frame>& actual, const std::vector<Frame>& expected,
                        std::string_view bus) {
  ASSERT_EQ(actual.size(), expected.size());
  for (std::size_t i = 0; i < actual.size(); ++i) {
    Frame want = expected[i];
    want.bus = bus;
    want.timestamp_ns = actual[i].timestamp_ns;
    EXPECT_EQ(actual[i], want) << "frame " << i << " id " << actual[i].id;
    EXPECT_GT(actual[i].timestamp_ns, 0) << "frame " << i;
  }
}

class SocketcandTest : public ::testing::Test {
 protected:
  void SetUp() override { start_server({}); }

  void start_server(SocketcandServerOptions options) {
    options.inproc_bus = "rig";
    auto started = SocketcandServer::start(io_, options);
    ASSERT_TRUE(started.ok()) << started.error().message;
    server_ = std::move(started).value();
    auto sim = open_bus(io_, "inproc:rig");
    ASSERT_TRUE(sim.ok());
    sim_ = std::move(sim).value();
    sim_->on_receive([this](const Frame& frame) { sim_frames_.push_back(frame); });
  }

  std::string url(std::string_view channel = "can0") const {
    return "socketcand://127.0.0.1:" + std::to_string(server_->port()) + "/" + std::string(channel);
  }

  struct Client {
    std::unique_ptr<Bus> bus;
    std::vector<Frame> frames;
    std::vector<Error> errors;
    bool ready = false;
  };

  // Opens a client and waits until it is in raw mode.
  std::unique_ptr<Client> connect(std::string_view channel = "can0", bool wait_ready = true) {
    auto client = std::make_unique<Client>();
    auto bus = open_bus(io_, url(channel));
    EXPECT_TRUE(bus.ok());
    if (!bus.ok()) return client;
    client->bus = std::move(bus).value();
    Client* raw = client.get();
    client->bus->on_receive([raw](const Frame& frame) { raw->frames.push_back(frame); });
    client->bus->on_error([raw](const Error& error) { raw->errors.push_back(error); });
    client->bus->on_ready([raw] { raw->ready = true; });
    if (wait_ready) {
      EXPECT_TRUE(run_until(io_, [raw] { return raw->ready; }));
    }
    return client;
  }

  asio::io_context io_;
  std::unique_ptr<SocketcandServer> server_;
  std::unique_ptr<Bus> sim_;
  std::vector<Frame> sim_frames_;
};

TEST_F(SocketcandTest, ServerListensOnAnEphemeralPort) { EXPECT_NE(server_->port(), 0); }

TEST_F(SocketcandTest, ClientReceivesEveryKindOfFrameTheInprocSideSends) {
  auto client = connect();
  auto frames = frame_kinds();
  Frame error_frame;
  error_frame.error = true;
  error_frame.id = 0x40;  // CAN_ERR_BUSOFF
  frames.push_back(error_frame);
  for (const Frame& frame : frames) ASSERT_TRUE(sim_->send(frame).ok());
  ASSERT_TRUE(run_until(io_, [&] { return client->frames.size() == frames.size(); }));
  expect_same_frames(client->frames, frames, "can0");
  EXPECT_TRUE(client->errors.empty());
  EXPECT_EQ(client->bus->counters().frames_received, frames.size());
}

TEST_F(SocketcandTest, FramesAClientSendsReachTheInprocSideAndOtherClientsButNotItself) {
  auto sender = connect();
  auto other = connect();
  auto frames = frame_kinds();
  for (const Frame& frame : frames) ASSERT_TRUE(sender->bus->send(frame).ok());
  ASSERT_TRUE(run_until(
      io_, [&] { return sim_frames_.size() == frames.size() && other->frames.size() == frames.size(); }));
  expect_same_frames(sim_frames_, frames, "rig");
  expect_same_frames(other->frames, frames, "can0");
  run_ready(io_);
  EXPECT_TRUE(sender->frames.empty());
  EXPECT_EQ(server_->counters().frames_from_clients, frames.size());
}

TEST_F(SocketcandTest, FramesSentBeforeTheHandshakeEndsGoOutAfterIt) {
  auto client = connect("can0", /*wait_ready=*/false);
  ASSERT_TRUE(client->bus->send(make_frame(0x42, {1})).ok());
  ASSERT_TRUE(run_until(io_, [&] { return sim_frames_.size() == 1; }));
  EXPECT_TRUE(client->ready);
  EXPECT_EQ(sim_frames_[0].id, 0x42u);
}

TEST_F(SocketcandTest, ManyFramesArriveInOrderBothWays) {
  auto client = connect();
  constexpr std::uint32_t kCount = 5000;
  auto nth = [](std::uint32_t i) {
    Frame frame = make_frame(i % 2 == 0 ? i % 0x800 : 0x10000000 + i, {}, i % 2 == 1);
    frame.size = static_cast<std::uint8_t>(i % 9);
    for (std::uint8_t j = 0; j < frame.size; ++j) frame.data[j] = static_cast<std::uint8_t>(i + j);
    return frame;
  };
  std::vector<Frame> expected;
  for (std::uint32_t i = 0; i < kCount; ++i) {
    expected.push_back(nth(i));
    ASSERT_TRUE(sim_->send(expected.back()).ok());
    ASSERT_TRUE(client->bus->send(expected.back()).ok());
  }
  ASSERT_TRUE(
      run_until(io_, [&] { return client->frames.size() == kCount && sim_frames_.size() == kCount; }));
  expect_same_frames(client->frames, expected, "can0");
  expect_same_frames(sim_frames_, expected, "rig");
  EXPECT_EQ(server_->counters().frames_dropped, 0u);
}

TEST_F(SocketcandTest, AClientDisconnectingLeavesTheOthersWorking) {
  auto leaving = connect();
  auto staying = connect();
  ASSERT_TRUE(run_until(io_, [&] { return server_->counters().clients_connected == 2; }));
  leaving->bus->close();
  ASSERT_TRUE(run_until(io_, [&] { return server_->counters().clients_connected == 1; }));
  ASSERT_TRUE(sim_->send(make_frame(0x1, {1})).ok());
  ASSERT_TRUE(staying->bus->send(make_frame(0x2, {2})).ok());
  ASSERT_TRUE(run_until(io_, [&] { return staying->frames.size() == 1 && sim_frames_.size() == 1; }));
  EXPECT_TRUE(leaving->frames.empty());
  EXPECT_TRUE(leaving->errors.empty()) << "closing is not an error";
}

TEST_F(SocketcandTest, ClientReportsALostLinkWhenTheServerGoes) {
  auto client = connect();
  server_->close();
  ASSERT_TRUE(run_until(io_, [&] { return !client->errors.empty(); }));
  EXPECT_EQ(client->errors[0].code, ErrorCode::io_error);
  EXPECT_NE(client->errors[0].message.find("link lost"), std::string::npos) << client->errors[0].message;
  EXPECT_TRUE(client->bus->is_closed());
  EXPECT_EQ(client->bus->send(make_frame(0x1, {})).error().code, ErrorCode::io_error);
}

TEST_F(SocketcandTest, ClientReportsABusTheServerDoesNotServe) {
  auto client = connect("vcan9", /*wait_ready=*/false);
  ASSERT_TRUE(run_until(io_, [&] { return !client->errors.empty(); }));
  EXPECT_EQ(client->errors[0].code, ErrorCode::not_found) << client->errors[0].message;
  EXPECT_FALSE(client->ready);
  EXPECT_TRUE(client->bus->is_closed());
}

TEST_F(SocketcandTest, ClientReportsAServerThatIsNotThere) {
  std::uint16_t port = server_->port();
  server_->close();
  auto bus = open_bus(io_, "socketcand://127.0.0.1:" + std::to_string(port) + "/can0");
  ASSERT_TRUE(bus.ok());
  std::vector<Error> errors;
  bus.value()->on_error([&](const Error& error) { errors.push_back(error); });
  ASSERT_TRUE(run_until(io_, [&] { return !errors.empty(); }));
  EXPECT_NE(errors[0].message.find("cannot connect"), std::string::npos) << errors[0].message;
}

TEST_F(SocketcandTest, ServerAnswersMalformedInputAndKeepsServing) {
  RawPeer peer(io_);
  ASSERT_TRUE(peer.connect(server_->port()));
  ASSERT_TRUE(run_until(io_, [&] { return peer.received() == "< hi >"; }));
  peer.write("< open can0 >< rawmode >");
  ASSERT_TRUE(run_until(io_, [&] { return peer.received() == "< hi >< ok >< ok >"; }));

  peer.write("< send 123 9 1 2 3 4 5 6 7 8 9 >");
  peer.write("< send 123 2 11 >");
  peer.write(std::string("<") + std::string(5000, 'x') + ">");
  peer.write("< subscribe 0 0 123 >");
  peer.write("garbage without brackets");
  peer.write("< echo >");
  ASSERT_TRUE(run_until(io_, [&] { return peer.contains("< echo >"); }));
  EXPECT_EQ(server_->counters().malformed_elements, 4u) << peer.received();
  EXPECT_TRUE(peer.contains("< error socketcand: bad length in '? send 123 9")) << peer.received();
  EXPECT_TRUE(peer.contains("< error unknown command >")) << peer.received();

  peer.write("< send 123 1 aa >");
  ASSERT_TRUE(run_until(io_, [&] { return sim_frames_.size() == 1; }));
  EXPECT_EQ(sim_frames_[0].data[0], 0xAA);
  ASSERT_TRUE(sim_->send(make_frame(0x321, {0xBE, 0xEF})).ok());
  ASSERT_TRUE(run_until(io_, [&] { return peer.contains("< frame 321 "); }));
  EXPECT_TRUE(peer.contains(" BEEF >\n")) << peer.received();
  EXPECT_FALSE(peer.closed_by_peer());

  // The server still takes new clients.
  auto client = connect();
  EXPECT_TRUE(client->ready);
}

TEST_F(SocketcandTest, ServerClosesAConnectionThatOpensAnUnknownBus) {
  RawPeer peer(io_);
  ASSERT_TRUE(peer.connect(server_->port()));
  peer.write("< open vcan7 >");
  ASSERT_TRUE(run_until(io_, [&] { return peer.closed_by_peer(); }));
  EXPECT_EQ(peer.received(), "< hi >< error could not open bus 'vcan7' >");
}

TEST_F(SocketcandTest, ServerSendsNoFramesBeforeRawMode) {
  RawPeer peer(io_);
  ASSERT_TRUE(peer.connect(server_->port()));
  peer.write("< open can0 >");
  ASSERT_TRUE(run_until(io_, [&] { return peer.received() == "< hi >< ok >"; }));
  ASSERT_TRUE(sim_->send(make_frame(0x1, {})).ok());
  peer.write("< echo >");
  ASSERT_TRUE(run_until(io_, [&] { return peer.contains("< echo >"); }));
  EXPECT_EQ(peer.received(), "< hi >< ok >< echo >");
}

// python-can's handshake, on a bus that is busy before it connects: each reply must come alone in
// one recv(256), as SocketCanDaemonBus._expect_msg compares it whole.
TEST_F(SocketcandTest, HandshakeRepliesArriveAloneOnABusyBus) {
  std::uint16_t port = server_->port();
  std::atomic<bool> done{false};
  std::vector<std::string> replies;
  std::thread peer([&] {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval timeout{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    auto recv_once = [&] {
      char buffer[256];
      ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
      replies.emplace_back(buffer, n > 0 ? static_cast<std::size_t>(n) : 0);
    };
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0) {
      recv_once();
      ::send(fd, "< open can0 >", 13, 0);
      recv_once();
      ::send(fd, "< rawmode >", 11, 0);
      recv_once();
    }
    ::close(fd);
    done = true;
  });
  bool finished = run_until(io_, [&] {
    EXPECT_TRUE(sim_->send(make_frame(0x80, {1})).ok());
    return done.load();
  });
  peer.join();
  ASSERT_TRUE(finished);
  EXPECT_EQ(replies, (std::vector<std::string>{"< hi >", "< ok >", "< ok >"}));
}

TEST(SocketcandServer, DropsFramesForAClientThatDoesNotReadAndNeverBlocksTheBus) {
  asio::io_context io;
  SocketcandServerOptions options;
  options.inproc_bus = "rig";
  options.max_client_queue_bytes = 64 * 1024;  // more than one batch below
  auto server = SocketcandServer::start(io, options);
  ASSERT_TRUE(server.ok());
  auto sim = open_bus(io, "inproc:rig");
  ASSERT_TRUE(sim.ok());

  RawPeer stalled(io);  // reads the handshake, then its socket is never read again
  ASSERT_TRUE(stalled.connect(server.value()->port()));
  stalled.write("< open can0 >< rawmode >");
  ASSERT_TRUE(run_until(io, [&] { return stalled.received() == "< hi >< ok >< ok >"; }));
  stalled.stop_reading();  // the kernel buffers fill, then the server's queue for it

  auto reader = open_bus(io, "socketcand://127.0.0.1:" + std::to_string(server.value()->port()) + "/can0");
  ASSERT_TRUE(reader.ok());
  bool ready = false;
  std::size_t received = 0;
  reader.value()->on_ready([&] { ready = true; });
  reader.value()->on_receive([&](const Frame&) { ++received; });
  ASSERT_TRUE(run_until(io, [&] { return ready; }));

  // 200000 frames of 39 bytes: more than the kernel buffers of both ends (a few MB) and the queue.
  constexpr std::size_t kBatches = 200;
  constexpr std::size_t kPerBatch = 1000;
  for (std::size_t batch = 0; batch < kBatches; ++batch) {
    for (std::size_t i = 0; i < kPerBatch; ++i) {
      ASSERT_TRUE(sim.value()->send(make_frame(0x100, {1, 2, 3, 4, 5, 6, 7, 8})).ok());
    }
    ASSERT_TRUE(run_until(io, [&] { return received == (batch + 1) * kPerBatch; }));
  }
  EXPECT_EQ(received, kBatches * kPerBatch);
  EXPECT_GT(server.value()->counters().frames_dropped, 0u);
  EXPECT_EQ(server.value()->counters().clients_connected, 2u);
  EXPECT_FALSE(stalled.closed_by_peer());
}

// A socketcand server that says what the test wants: the handshake, then `script` in one write, then
// `later` once told (blocking sockets, on its own thread).
class ScriptedServer {
 public:
  explicit ScriptedServer(std::string script) : script_(std::move(script)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      ADD_FAILURE() << "cannot bind the scripted server: " << std::strerror(errno);
    }
    ::listen(listen_fd_, 1);
    socklen_t length = sizeof address;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~ScriptedServer() {
    later_ready_ = true;
    // Unblocks accept() and recv() if the client never came or stopped talking.
    ::shutdown(listen_fd_, SHUT_RDWR);
    if (const int fd = fd_.load(); fd >= 0) ::shutdown(fd, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) ::close(fd_);
    ::close(listen_fd_);
  }
  std::uint16_t port() const { return port_; }
  void send_later(std::string bytes) {
    later_ = std::move(bytes);
    later_ready_ = true;
  }

 private:
  void write_all(std::string_view bytes) const {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
  }
  void read_until(std::string_view what) const {
    std::string got;
    char c = 0;
    while (got.find(what) == std::string::npos && ::recv(fd_, &c, 1, 0) == 1) got.push_back(c);
  }
  void serve() {
    fd_ = ::accept(listen_fd_, nullptr, nullptr);
    if (fd_ < 0) return;
    write_all("< hi >");
    read_until("< open can0 >");
    write_all("< ok >");
    read_until("< rawmode >");
    write_all("< ok >");
    write_all(script_);
    while (!later_ready_) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    write_all(later_);
  }

  std::string script_;
  std::string later_;
  std::atomic<bool> later_ready_{false};
  int listen_fd_ = -1;
  std::atomic<int> fd_{-1};
  std::uint16_t port_ = 0;
  std::thread thread_;
};

TEST(SocketcandClient, OneBadElementIsCountedAndReportedEscapedAndTheLinkStaysUp) {
  // The element of issue 12 between two good frames.
  ScriptedServer server(
      "< frame 123 1796608346.000000 11 >< frame 181 1796608346.000000 11\xfd"
      "22 >< frame 124 1796608346.000000 22 >");
  asio::io_context io;
  auto bus = open_bus(io, "socketcand://127.0.0.1:" + std::to_string(server.port()) + "/can0");
  ASSERT_TRUE(bus.ok());
  std::vector<Frame> frames;
  std::vector<Error> errors;
  bus.value()->on_receive([&](const Frame& frame) { frames.push_back(frame); });
  bus.value()->on_error([&](const Error& error) { errors.push_back(error); });
  ASSERT_TRUE(run_until(io, [&] { return frames.size() == 2; }));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].code, ErrorCode::parse_error);  // one bad element, not a lost link
  EXPECT_NE(errors[0].message.find("malformed element"), std::string::npos) << errors[0].message;
  EXPECT_NE(errors[0].message.find("11\\xfd22"), std::string::npos) << errors[0].message;
  EXPECT_TRUE(is_printable_utf8(errors[0].message)) << errors[0].message;
  EXPECT_FALSE(bus.value()->is_closed());
  EXPECT_EQ(bus.value()->counters().malformed_elements, 1u);
  EXPECT_EQ(bus.value()->counters().frames_dropped, 0u);
  EXPECT_EQ(frames[1].id, 0x124u);

  // A stream that is not socketcand at all: 64 bad elements in a row close the link, as lost.
  std::string garbage;
  for (int i = 0; i < 64; ++i) garbage += "< \xff garbage >";
  server.send_later(garbage);
  ASSERT_TRUE(run_until(io, [&] { return bus.value()->is_closed(); }));
  EXPECT_EQ(errors.back().code, ErrorCode::io_error);
  EXPECT_NE(errors.back().message.find("64 malformed elements in a row"), std::string::npos)
      << errors.back().message;
  EXPECT_EQ(bus.value()->counters().malformed_elements, 65u);
}

}  // namespace
}  // namespace cellguard::can
