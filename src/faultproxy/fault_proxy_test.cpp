#include "faultproxy/fault_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <asio.hpp>
#include <atomic>
#include <cerrno>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "ipc/line_socket.h"

namespace cellguard::faultproxy {
namespace {

using namespace std::chrono_literals;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout = 5s) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return condition();
}

// The target: an echo server (or a sink that never reads) on its own loop thread, recording how
// each of its connections ended ("eof", "reset", ...).
class EchoServer {
 public:
  explicit EchoServer(bool sink = false)
      : acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)), sink_(sink) {
    accept();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~EchoServer() {
    asio::post(io_, [this] {
      asio::error_code ignored;
      acceptor_.close(ignored);
      for (auto& socket : sockets_) socket->close(ignored);
    });
    thread_.join();
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  int accepted() const { return accepted_; }
  std::uint64_t received() const { return received_; }
  std::vector<std::string> outcomes() const {
    std::lock_guard lock(mutex_);
    return outcomes_;
  }

 private:
  void accept() {
    acceptor_.async_accept([this](asio::error_code ec, tcp::socket socket) {
      if (ec) return;
      ++accepted_;
      auto shared = std::make_shared<tcp::socket>(std::move(socket));
      sockets_.push_back(shared);
      if (!sink_) read(shared, std::make_shared<std::vector<char>>(64 * 1024));
      accept();
    });
  }
  void read(const std::shared_ptr<tcp::socket>& socket, const std::shared_ptr<std::vector<char>>& buffer) {
    socket->async_read_some(asio::buffer(*buffer), [this, socket, buffer](asio::error_code ec,
                                                                          std::size_t n) {
      if (ec) {
        record(ec == asio::error::eof ? "eof" : ec == asio::error::connection_reset ? "reset" : ec.message());
        asio::error_code ignored;
        socket->shutdown(tcp::socket::shutdown_send, ignored);
        socket->close(ignored);
        return;
      }
      received_ += n;
      asio::async_write(
          *socket, asio::buffer(buffer->data(), n),
          [this, socket, buffer](asio::error_code write_ec, std::size_t) {
            if (write_ec) {
              record(write_ec == asio::error::connection_reset || write_ec == asio::error::broken_pipe
                         ? "reset"
                         : write_ec.message());
              return;
            }
            read(socket, buffer);
          });
    });
  }
  void record(std::string how) {
    std::lock_guard lock(mutex_);
    outcomes_.push_back(std::move(how));
  }

  asio::io_context io_;
  tcp::acceptor acceptor_;
  bool sink_;
  std::vector<std::shared_ptr<tcp::socket>> sockets_;
  std::thread thread_;
  std::atomic<int> accepted_{0};
  std::atomic<std::uint64_t> received_{0};
  mutable std::mutex mutex_;
  std::vector<std::string> outcomes_;
};

// A FaultProxy on a loop thread; call() runs a function on that thread and returns its result.
class ProxyFixture {
 public:
  explicit ProxyFixture(ProxyOptions options) : guard_(asio::make_work_guard(io_)) {
    options.log = [this](std::string_view line) {
      std::lock_guard lock(mutex_);
      events_.push_back(nlohmann::json::parse(line));
    };
    auto started = FaultProxy::start(io_, std::move(options));
    if (started)
      proxy_ = std::move(*started);
    else
      error_ = started.error().message;
    thread_ = std::thread([this] { io_.run(); });
  }
  bool ok() const { return proxy_ != nullptr; }
  const std::string& error() const { return error_; }

  template <typename F>
  auto call(F f) {
    std::packaged_task<decltype(f())()> task(std::move(f));
    auto result = task.get_future();
    asio::post(io_, [&task] { task(); });
    return result.get();
  }
  ~ProxyFixture() {
    call([this] { proxy_.reset(); });
    guard_.reset();
    thread_.join();
  }
  std::uint16_t port() {
    return call([this] { return proxy_->listen_port(); });
  }
  ProxyStats stats() {
    return call([this] { return proxy_->stats(); });
  }
  void inject(Fault fault) {
    call([this, fault] { proxy_->inject(fault); });
  }
  std::vector<nlohmann::json> events(const std::string& kind) {
    std::lock_guard lock(mutex_);
    std::vector<nlohmann::json> found;
    for (const auto& e : events_)
      if (e.value("event", "") == kind) found.push_back(e);
    return found;
  }
  FaultProxy& proxy() { return *proxy_; }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  std::unique_ptr<FaultProxy> proxy_;
  std::string error_;
  std::thread thread_;
  std::mutex mutex_;
  std::vector<nlohmann::json> events_;
};

Fault fault(FaultKind kind, Nanos duration = Nanos{0}, Direction direction = Direction::both) {
  Fault f;
  f.kind = kind;
  f.duration = duration;
  f.direction = direction;
  return f;
}

ProxyOptions pass_options(std::uint16_t target_port) {
  ProxyOptions options;
  options.target = "127.0.0.1:" + std::to_string(target_port);
  options.mode = Mode::pass;
  return options;
}

// Blocking client sockets with timeouts.
struct Client {
  int fd = -1;
  explicit Client(std::uint16_t port) {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      ::close(fd);
      fd = -1;
    }
  }
  ~Client() {
    if (fd >= 0) ::close(fd);
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  void close() {
    ::close(fd);
    fd = -1;
  }
  bool send_all(std::string_view data) const {
    for (std::size_t sent = 0; sent < data.size();) {
      const ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      sent += static_cast<std::size_t>(n);
    }
    return true;
  }
  // Up to `n` bytes, stopping early at EOF, an error or the timeout.
  std::string recv_exact(std::size_t n, std::chrono::milliseconds timeout = 10s) const {
    std::string data;
    const auto deadline = Clock::now() + timeout;
    std::vector<char> buffer(64 * 1024);
    while (data.size() < n) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) break;
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
      const ssize_t got = ::recv(fd, buffer.data(), std::min(buffer.size(), n - data.size()), 0);
      if (got <= 0) break;
      data.append(buffer.data(), static_cast<std::size_t>(got));
    }
    return data;
  }
  // How the connection ends: "eof", "reset", "timeout", "data" (bytes arrived) or another error.
  std::string end(std::chrono::milliseconds timeout = 5s) const {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return "timeout";
    char byte;
    const ssize_t got = ::recv(fd, &byte, 1, 0);
    if (got == 0) return "eof";
    if (got > 0) return "data";
    return errno == ECONNRESET ? "reset" : std::strerror(errno);
  }
  // True when bytes (or an end) arrive within `timeout`.
  bool readable(std::chrono::milliseconds timeout) const {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, static_cast<int>(timeout.count())) > 0;
  }
};

std::string random_bytes(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string data(n, '\0');
  for (char& c : data) c = static_cast<char>(rng());
  return data;
}

std::uint64_t fnv1a(std::string_view data) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : data) h = (h ^ c) * 0x100000001b3ULL;
  return h;
}

// An echoed round trip through the proxy works (the connection is relaying).
void expect_echo(const Client& client, std::string_view text) {
  ASSERT_TRUE(client.send_all(text));
  EXPECT_EQ(client.recv_exact(text.size()), text);
}

TEST(FaultProxy, PassModeRelaysEveryByteExactlyBothWays) {
  EchoServer echo;
  ProxyFixture proxy(pass_options(echo.port()));
  ASSERT_TRUE(proxy.ok()) << proxy.error();
  Client client(proxy.port());
  ASSERT_GE(client.fd, 0);
  const std::string data = random_bytes(16 << 20, 1);
  std::thread sender([&] { EXPECT_TRUE(client.send_all(data)); });
  const std::string back = client.recv_exact(data.size(), 60s);
  sender.join();
  ASSERT_EQ(back.size(), data.size());
  EXPECT_EQ(fnv1a(back), fnv1a(data));
  EXPECT_TRUE(back == data);
  ASSERT_TRUE(wait_until([&] { return proxy.stats().bytes_down == data.size(); }));
  const ProxyStats stats = proxy.stats();
  EXPECT_EQ(stats.bytes_up, data.size());
  EXPECT_EQ(stats.relayed, 1u);
  // Without delay a pipe holds one chunk at most: the rest waits in the peers' sockets.
  EXPECT_LE(stats.max_pipe_buffered, 16u * 1024);
}

TEST(FaultProxy, HalfCloseIsPassedOnAndTheConnectionEndsCleanly) {
  EchoServer echo;
  ProxyFixture proxy(pass_options(echo.port()));
  ASSERT_TRUE(proxy.ok()) << proxy.error();
  Client client(proxy.port());
  ASSERT_TRUE(client.send_all("last words"));
  ::shutdown(client.fd, SHUT_WR);
  EXPECT_EQ(client.recv_exact(10), "last words");
  EXPECT_EQ(client.end(), "eof");
  ASSERT_TRUE(wait_until([&] { return proxy.stats().closed == 1; }));
  EXPECT_EQ(echo.outcomes(), std::vector<std::string>{"eof"});
  EXPECT_EQ(proxy.events("close").at(0).value("how", ""), "eof");
}

TEST(FaultProxy, CutClosesBothSidesWithFin) {
  EchoServer echo;
  ProxyFixture proxy(pass_options(echo.port()));
  ASSERT_TRUE(proxy.ok()) << proxy.error();
  Client client(proxy.port());
  expect_echo(client, "before the cut");
  proxy.inject(fault(FaultKind::cut));
  EXPECT_EQ(client.end(), "eof");
  client.close();  // the proxy drains a cut socket until the peer closes (or drain_timeout)
  ASSERT_TRUE(wait_until([&] { return echo.outcomes().size() == 1; }));
  EXPECT_EQ(echo.outcomes()[0], "eof");
  ASSERT_TRUE(wait_until([&] { return proxy.stats().active == 0; }));
  const auto faults = proxy.events("fault");
  ASSERT_EQ(faults.size(), 1u);
  EXPECT_EQ(faults[0]["kind"], "cut");
  EXPECT_EQ(faults[0]["conns"], nlohmann::json::array({1}));
  EXPECT_TRUE(faults[0].contains("t"));
  EXPECT_EQ(proxy.stats().faults[static_cast<int>(FaultKind::cut)], 1u);
}

TEST(FaultProxy, ResetGivesConnectionResetToBothPeers) {
  EchoServer echo;
  ProxyFixture proxy(pass_options(echo.port()));
  ASSERT_TRUE(proxy.ok()) << proxy.error();
  Client client(proxy.port());
  expect_echo(client, "before the reset");
  proxy.inject(fault(FaultKind::reset));
  EXPECT_EQ(client.end(), "reset");
  ASSERT_TRUE(wait_until([&] { return echo.outcomes().size() == 1; }));
  EXPECT_EQ(echo.outcomes()[0], "reset");
}

TEST(FaultProxy, StallStopsBytesForTheStatedTimeThenResumes) {
  EchoServer echo;
  ProxyFixture proxy(pass_options(echo.port()));
  ASSERT_TRUE(proxy.ok()) << proxy.error();
  Client client(proxy.port());
  expect_echo(client, "warm");
  const auto before = Clock::now();
  proxy.inject(fault(FaultKind::stall, 800ms, Direction::both));
  ASSERT_TRUE(client.send_all("ping"));
  EXPECT_EQ(client.recv_exact(4, 5s), "ping");
  const auto waited = Clock::now() - before;
  EXPECT_GE(waited, 800ms);
  EXPECT_LT(waited, 2500ms);
  EXPECT_EQ(echo.accepted(), 1);
  expect_echo(client, "after");  // the same connection carries on
  EXPECT_TRUE(echo.outcomes().empty());
}

TEST(FaultProxy, StallOfOneDirectionStopsOnlyThatDirection) {
  EchoServer echo;
  ProxyFixture proxy(pass_options(echo.port()));
  ASSERT_TRUE(proxy.ok()) << proxy.error();
  Client client(proxy.port());
  expect_echo(client, "warm");
  const auto before = Clock::now();
  proxy.inject(fault(FaultKind::stall, 700ms, Direction::down));
  ASSERT_TRUE(client.send_all("12345"));
  // Up still flows: the server gets the bytes while the client hears nothing.
  ASSERT_TRUE(wait_until([&] { return echo.received() == 9; }, 2s));
  EXPECT_LT(Clock::now() - before, 700ms);
  EXPECT_EQ(client.recv_exact(5, 5s), "12345");
  EXPECT_GE(Clock::now() - before, 700ms);
}

TEST(FaultProxy, DelayAddsAtLeastTheDelayToEachDirection) {
  EchoServer echo;
  ProxyFixture proxy(pass_options(echo.port()));
  ASSERT_TRUE(proxy.ok()) << proxy.error();
  Client client(proxy.port());
  expect_echo(client, "warm");
  Fault delay = fault(FaultKind::delay);
  delay.latency = {100ms, 100ms};
  proxy.inject(delay);
  const auto before = Clock::now();
  expect_echo(client, "ping");
  EXPECT_GE(Clock::now() - before, 200ms) << "100 ms up and 100 ms down";
}

TEST(FaultProxy, RandomDelaysKeepTheOrderOfTheBytes) {
  EchoServer echo;
  ProxyFixture proxy(pass_options(echo.port()));
  ASSERT_TRUE(proxy.ok()) << proxy.error();
  Client client(proxy.port());
  Fault delay = fault(FaultKind::delay);
  delay.latency = {0ms, 30ms};
  proxy.inject(delay);
  std::string sent;
  for (int i = 0; i < 300; ++i) {
    const std::string message = "message " + std::to_string(i) + ";";
    ASSERT_TRUE(client.send_all(message));
    sent += message;
    if (i % 20 == 0) std::this_thread::sleep_for(1ms);  // spread the messages over many chunks
  }
  EXPECT_EQ(client.recv_exact(sent.size()), sent);
}

TEST(FaultProxy, DelayedBytesStayWithinTheBound) {
  EchoServer sink(/*sink=*/true);
  ProxyOptions options = pass_options(sink.port());
  options.max_delayed_bytes = 128 * 1024;
  ProxyFixture proxy(options);
  ASSERT_TRUE(proxy.ok()) << proxy.error();
  Client client(proxy.port());
  Fault delay = fault(FaultKind::delay);
  delay.latency = {50ms, 50ms};
  proxy.inject(delay);
  // The sink never reads: the client can write only what the sockets and the proxy's queue hold.
  ::fcntl(client.fd, F_SETFL, O_NONBLOCK);
  const std::string block(64 * 1024, 'x');
  std::size_t sent = 0;
  auto last_progress = Clock::now();
  while (Clock::now() - last_progress < 500ms) {
    const ssize_t n = ::send(client.fd, block.data(), block.size(), MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
      last_progress = Clock::now();
    } else {
      std::this_thread::sleep_for(5ms);
    }
    ASSERT_LT(sent, 512u << 20) << "no backpressure";
  }
  const ProxyStats stats = proxy.stats();
  EXPECT_GT(sent, 0u);
  EXPECT_LE(stats.max_pipe_buffered, 128u * 1024);
  EXPECT_LE(stats.buffered_bytes, 128u * 1024);
}

TEST(FaultProxy, BlackholeAcceptsButNeverConnectsOrRelays) {
  EchoServer echo;
  ProxyFixture proxy(pass_options(echo.port()));
  ASSERT_TRUE(proxy.ok()) << proxy.error();
  Client existing(proxy.port());
  expect_echo(existing, "warm");
  proxy.inject(fault(FaultKind::blackhole, 3s));
  Client fresh(proxy.port());
  ASSERT_GE(fresh.fd, 0) << "the connection is accepted";
  ASSERT_TRUE(fresh.send_all("anyone there?"));
  ASSERT_TRUE(existing.send_all("still there?"));
  EXPECT_FALSE(fresh.readable(400ms));
  EXPECT_FALSE(existing.readable(10ms));
  EXPECT_EQ(echo.accepted(), 1) << "nothing reached the target";
  EXPECT_EQ(proxy.stats().blackholed, 1u);
  // The end of the blackhole (here by pass mode) lets the existing connection carry on.
  proxy.call([&] { proxy.proxy().set_mode(Mode::pass); });
  EXPECT_EQ(existing.recv_exact(12, 5s), "still there?");
}

TEST(FaultProxy, RefuseClosesNewConnectionsAtOnceAndCutsTheOpenOnes) {
  EchoServer echo;
  ProxyFixture proxy(pass_options(echo.port()));
  ASSERT_TRUE(proxy.ok()) << proxy.error();
  Client existing(proxy.port());
  expect_echo(existing, "warm");
  proxy.inject(fault(FaultKind::refuse, 5s));
  EXPECT_EQ(existing.end(), "eof");
  Client fresh(proxy.port());
  const std::string how = fresh.end(2s);
  EXPECT_TRUE(how == "eof" || how == "reset") << how;
  EXPECT_EQ(proxy.stats().refused, 1u);
  EXPECT_EQ(echo.accepted(), 1);
  proxy.call([&] { proxy.proxy().set_mode(Mode::pass); });  // ends the period
  Client after(proxy.port());
  expect_echo(after, "welcome back");
}

TEST(FaultProxy, PassModeEndsAStallAtOnce) {
  EchoServer echo;
  ProxyOptions options = pass_options(echo.port());
  options.mode = Mode::random;
  options.plan.interval = {std::chrono::hours(1), std::chrono::hours(1)};  // no planned fault in this test
  ProxyFixture proxy(options);
  ASSERT_TRUE(proxy.ok()) << proxy.error();
  Client client(proxy.port());
  expect_echo(client, "warm");
  proxy.inject(fault(FaultKind::stall, 60s));
  ASSERT_TRUE(client.send_all("ping"));
  EXPECT_FALSE(client.readable(200ms));
  const auto before = Clock::now();
  proxy.call([&] { proxy.proxy().set_mode(Mode::pass); });
  EXPECT_EQ(client.recv_exact(4, 5s), "ping");
  EXPECT_LT(Clock::now() - before, 2s);
}

TEST(FaultProxy, AnUnreachableTargetResetsTheClient) {
  std::uint16_t closed_port = 0;
  {
    EchoServer gone;
    closed_port = gone.port();
  }
  ProxyFixture proxy(pass_options(closed_port));
  ASSERT_TRUE(proxy.ok()) << proxy.error();
  Client client(proxy.port());
  const std::string how = client.end();
  EXPECT_TRUE(how == "reset" || how == "eof") << how;
  ASSERT_TRUE(wait_until([&] { return proxy.stats().connect_failures == 1; }));
}

TEST(FaultProxy, RelaysManyConcurrentConnections) {
  EchoServer echo;
  ProxyFixture proxy(pass_options(echo.port()));
  ASSERT_TRUE(proxy.ok()) << proxy.error();
  constexpr int kConnections = 200;
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < kConnections; ++i) {
    clients.push_back(std::make_unique<Client>(proxy.port()));
    ASSERT_GE(clients.back()->fd, 0);
  }
  ASSERT_TRUE(wait_until([&] { return proxy.stats().relayed == kConnections; }));
  EXPECT_EQ(proxy.stats().active, static_cast<std::uint64_t>(kConnections));
  std::atomic<int> good{0};
  std::vector<std::thread> threads;
  threads.reserve(8);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t; i < kConnections; i += 8) {
        const std::string data = random_bytes(64 * 1024, static_cast<std::uint64_t>(i));
        if (clients[i]->send_all(data) && clients[i]->recv_exact(data.size(), 30s) == data) ++good;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(good.load(), kConnections);
  // Counted when the proxy's write completes, which may be just after the client has the bytes.
  EXPECT_TRUE(wait_until([&] { return proxy.stats().bytes_down == kConnections * 64u * 1024; }))
      << proxy.stats().bytes_down;
  clients.clear();
  ASSERT_TRUE(wait_until([&] { return proxy.stats().active == 0; }));
  EXPECT_EQ(proxy.stats().closed, static_cast<std::uint64_t>(kConnections));
}

TEST(FaultProxy, RandomModeCarriesOutTheSeededPlanInOrder) {
  EchoServer echo;
  ProxyOptions options = pass_options(echo.port());
  options.mode = Mode::random;
  options.seed = 77;
  options.plan.interval = {20ms, 40ms};
  options.plan.stall = {10ms, 30ms};
  options.plan.outage = {10ms, 30ms};
  ProxyFixture proxy(options);
  ASSERT_TRUE(proxy.ok()) << proxy.error();
  ASSERT_TRUE(wait_until([&] { return proxy.events("fault").size() >= 8; }));
  FaultPlan plan(options.plan, options.seed);
  const auto faults = proxy.events("fault");
  for (int i = 0; i < 8; ++i) {
    const PlannedFault expected = plan.next();
    EXPECT_EQ(faults[i]["kind"], std::string(to_string(expected.kind))) << i;
    EXPECT_EQ(faults[i]["source"], "plan");
    if (expected.duration > 0ns) {
      EXPECT_NEAR(faults[i]["ms"].get<double>(), expected.duration.count() / 1e6, 0.001);  // logged to the µs
    }
  }
}

TEST(FaultProxy, RandomModeConnectionsSurviveTheFaultsOrEndCleanly) {
  // Clients that reconnect after every end: every ending is one of the fault kinds' endings.
  EchoServer echo;
  ProxyOptions options = pass_options(echo.port());
  options.mode = Mode::random;
  options.seed = 3;
  options.plan.interval = {30ms, 60ms};
  options.plan.stall = {20ms, 50ms};
  options.plan.outage = {20ms, 50ms};
  options.delay = {0ms, 5ms};
  ProxyFixture proxy(options);
  ASSERT_TRUE(proxy.ok()) << proxy.error();
  int round_trips = 0;
  int endings = 0;
  const auto until = Clock::now() + 2s;
  while (Clock::now() < until) {
    Client client(proxy.port());
    if (client.fd < 0) continue;
    while (Clock::now() < until) {
      if (!client.send_all("abc")) break;
      const std::string back = client.recv_exact(3, 500ms);  // stalls and outages last 50 ms at most
      if (back == "abc") {
        ++round_trips;
        continue;
      }
      if (!back.empty() || client.readable(0ms)) {
        ASSERT_NE(client.end(0ms), "data") << "bytes out of order or invented";
      }
      ++endings;
      break;
    }
  }
  EXPECT_GT(round_trips, 10);
  EXPECT_GT(endings, 2);
  EXPECT_GE(proxy.events("fault").size(), 10u);
}

TEST(FaultProxy, ScopeOneHitsASingleConnectionPerPlannedFault) {
  EchoServer echo;
  ProxyOptions options = pass_options(echo.port());
  options.mode = Mode::random;
  options.scope = Scope::one;
  options.plan.kinds = {FaultKind::reset};
  options.plan.interval = {300ms, 300ms};
  ProxyFixture proxy(options);
  ASSERT_TRUE(proxy.ok()) << proxy.error();
  std::vector<std::unique_ptr<Client>> clients;
  clients.reserve(3);
  for (int i = 0; i < 3; ++i) clients.push_back(std::make_unique<Client>(proxy.port()));
  ASSERT_TRUE(wait_until([&] { return proxy.stats().relayed == 3; }));
  ASSERT_TRUE(wait_until([&] { return !proxy.events("fault").empty(); }));
  proxy.call([&] { proxy.proxy().set_mode(Mode::pass); });  // no second fault
  const auto fault = proxy.events("fault").at(0);
  ASSERT_EQ(fault["conns"].size(), 1u) << fault.dump();
  const std::uint64_t hit = fault["conns"][0];
  for (std::uint64_t id = 1; id <= 3; ++id) {
    const Client& client = *clients[id - 1];
    if (id == hit) {
      EXPECT_EQ(client.end(), "reset");
    } else {
      expect_echo(client, "untouched");
    }
  }
}

TEST(FaultProxy, ControlSocketAnswersCommands) {
  EchoServer echo;
  ProxyOptions options = pass_options(echo.port());
  options.control_path = "/tmp/cellguard-faultproxy-test-" + std::to_string(::getpid()) + ".sock";
  ProxyFixture proxy(options);
  ASSERT_TRUE(proxy.ok()) << proxy.error();
  Client client(proxy.port());
  expect_echo(client, "warm");
  auto ask = [&](const std::string& line) {
    Result<std::string> answer = ipc::request_line(options.control_path, line);
    EXPECT_TRUE(answer) << line;
    return answer ? nlohmann::json::parse(*answer) : nlohmann::json();
  };
  nlohmann::json stats = ask(R"({"cmd":"stats"})");
  EXPECT_EQ(stats["ok"], true);
  EXPECT_EQ(stats["stats"]["relayed"], 1);
  EXPECT_EQ(stats["stats"]["mode"], "pass");

  const auto before = Clock::now();
  EXPECT_EQ(ask(R"({"cmd":"stall","ms":500})")["conns"], nlohmann::json::array({1}));
  expect_echo(client, "slow");
  EXPECT_GE(Clock::now() - before, 500ms);

  EXPECT_EQ(ask(R"({"cmd":"mode","mode":"random"})")["mode"], "random");
  EXPECT_EQ(ask(R"({"cmd":"mode","mode":"pass"})")["mode"], "pass");
  EXPECT_EQ(ask(R"({"cmd":"cut","conn":99})")["ok"], false);
  const nlohmann::json bad = ask(R"({"cmd":"explode"})");
  EXPECT_EQ(bad["ok"], false);
  EXPECT_NE(bad["error"].get<std::string>().find("explode"), std::string::npos);
  EXPECT_EQ(ask(R"({"cmd":"cut"})")["ok"], true);
  EXPECT_EQ(client.end(), "eof");
  stats = ask(R"({"cmd":"stats"})");
  EXPECT_EQ(stats["stats"]["faults"]["cut"], 1);
  EXPECT_EQ(stats["stats"]["faults"]["stall"], 1);
}

TEST(ControlRequest, ParsesEveryCommand) {
  Result<ControlRequest> stall = parse_control_request(R"({"cmd":"stall","ms":3000,"dir":"up","conn":4})");
  ASSERT_TRUE(stall) << stall.error().message;
  EXPECT_EQ(stall->verb, ControlRequest::Verb::fault);
  EXPECT_EQ(stall->fault.kind, FaultKind::stall);
  EXPECT_EQ(stall->fault.duration, 3s);
  EXPECT_EQ(stall->fault.direction, Direction::up);
  EXPECT_EQ(stall->fault.connection, 4u);

  Result<ControlRequest> delay =
      parse_control_request(R"({"cmd":"delay","ms":50,"max_ms":150,"for_ms":10000})");
  ASSERT_TRUE(delay) << delay.error().message;
  EXPECT_EQ(delay->fault.latency, (DurationRange{50ms, 150ms}));
  EXPECT_EQ(delay->fault.duration, 10s);

  EXPECT_EQ(parse_control_request(R"({"cmd":"mode","mode":"random"})")->mode, Mode::random);
  EXPECT_EQ(parse_control_request(R"({"cmd":"stats"})")->verb, ControlRequest::Verb::stats);
  EXPECT_EQ(parse_control_request(R"({"cmd":"cut"})")->fault.kind, FaultKind::cut);
  EXPECT_FALSE(parse_control_request(R"({"cmd":"cut"})")->fault.connection.has_value());
}

TEST(ControlRequest, RejectsMalformedRequestsWithAReason) {
  for (const char* bad :
       {"", "not json", "[1,2]", "{}", R"({"cmd":7})", R"({"cmd":"stall"})", R"({"cmd":"stall","ms":-5})",
        R"({"cmd":"stall","ms":"5"})", R"({"cmd":"stall","ms":1e300})",
        R"({"cmd":"stall","ms":10,"dir":"left"})", R"({"cmd":"cut","conn":-1})",
        R"({"cmd":"cut","conn":1.5})", R"({"cmd":"delay"})", R"({"cmd":"delay","ms":10,"max_ms":5})",
        R"({"cmd":"mode"})", R"({"cmd":"mode","mode":"chaos"})", R"({"cmd":"refuse","ms":0})"}) {
    Result<ControlRequest> parsed = parse_control_request(bad);
    EXPECT_FALSE(parsed) << bad;
    if (!parsed) {
      EXPECT_TRUE(parsed.error().message.starts_with("control:")) << parsed.error().message;
    }
  }
}

TEST(FaultProxy, StartReportsBadAddressesByOption) {
  asio::io_context io;
  ProxyOptions options;
  options.target = "no-port";
  Result<std::unique_ptr<FaultProxy>> started = FaultProxy::start(io, options);
  ASSERT_FALSE(started);
  EXPECT_NE(started.error().message.find("--target"), std::string::npos) << started.error().message;
  options.target = "127.0.0.1:9";
  options.listen = "127.0.0.1:99999";
  started = FaultProxy::start(io, options);
  ASSERT_FALSE(started);
  EXPECT_NE(started.error().message.find("--listen"), std::string::npos) << started.error().message;
}

}  // namespace
}  // namespace cellguard::faultproxy
