// The inverter client against real peers: the simulator's inverter over Modbus TCP and RTU on a pty
// (in-process, its pack stepped in real time), and an independent pymodbus server
// (tests/peers/pymodbus_edge_peer.py) that records what the client asks for; and a rogue Modbus
// server in front of the simulator's inverter (tests/support/rogue_modbus_proxy.h) with the client
// driving a real safety supervisor, as the edge does (issue 12 item 4).
#include "devices/inverter_client.h"

#include <gtest/gtest.h>
#include <modbus/modbus.h>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "safety/safety.h"
#include "sim/device_test_peer.h"
#include "sim/inverter_device.h"
#include "sim/pack_model.h"
#include "support/rogue_modbus_proxy.h"

namespace cellguard::devices {
namespace {

using SteadyClock = std::chrono::steady_clock;
using namespace std::chrono_literals;

MonoTime now_ns() { return system_clock().mono_now(); }

bool wait_for(const std::function<bool()>& done, std::chrono::milliseconds timeout = 10s) {
  const auto deadline = SteadyClock::now() + timeout;
  while (SteadyClock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(5ms);  // polling a condition the loop thread updates
  }
  return done();
}

// --- URLs ---

TEST(InverterUrl, ParsesRtuAndTcp) {
  auto rtu = parse_inverter_url("rtu:/dev/ttyUSB0?baud=19200&parity=E&data=8&stop=2&slave=2");
  ASSERT_TRUE(rtu.ok()) << rtu.error().message;
  EXPECT_EQ(rtu->transport, InverterEndpoint::Transport::rtu);
  EXPECT_EQ(rtu->device, "/dev/ttyUSB0");
  EXPECT_EQ(rtu->baud, 19200u);
  EXPECT_EQ(rtu->parity, 'E');
  EXPECT_EQ(rtu->stop_bits, 2);
  EXPECT_EQ(rtu->slave, 2);
  EXPECT_EQ(to_string(*rtu), "rtu:/dev/ttyUSB0?baud=19200&parity=E&data=8&stop=2&slave=2");
  auto plain = parse_inverter_url("rtu:/dev/pts/3");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->baud, 19200u);
  EXPECT_EQ(plain->slave, 2);
  auto tcp = parse_inverter_url("tcp:192.168.1.20:502?slave=7");
  ASSERT_TRUE(tcp.ok()) << tcp.error().message;
  EXPECT_EQ(tcp->transport, InverterEndpoint::Transport::tcp);
  EXPECT_EQ(tcp->host, "192.168.1.20");
  EXPECT_EQ(tcp->port, 502);
  EXPECT_EQ(tcp->slave, 7);
  EXPECT_EQ(to_string(*tcp), "tcp:192.168.1.20:502?slave=7");
}

TEST(InverterUrl, ErrorsNameTheBadPart) {
  const std::pair<const char*, const char*> cases[] = {
      {"serial:/dev/ttyUSB0", "unknown transport 'serial'"},
      {"/dev/ttyUSB0", "expected 'rtu:DEVICE' or 'tcp:HOST:PORT'"},
      {"rtu:", "the serial device is missing"},
      {"rtu:/dev/ttyUSB0?baud=fast", "option baud='fast' is not a baud rate"},
      {"rtu:/dev/ttyUSB0?parity=X", "option parity='X' is not N, E or O"},
      {"rtu:/dev/ttyUSB0?data=9", "option data='9' is not 5..8"},
      {"rtu:/dev/ttyUSB0?stop=3", "option stop='3' is not 1 or 2"},
      {"rtu:/dev/ttyUSB0?slave=0", "option slave='0' is not 1..247"},
      {"rtu:/dev/ttyUSB0?slave", "option 'slave' has no '='"},
      {"rtu:/dev/ttyUSB0?speed=9600", "unknown option 'speed' for rtu"},
      {"tcp:host", "expected HOST:PORT after 'tcp:'"},
      {"tcp::502", "the host is missing"},
      {"tcp:host:70000", "port '70000' is not 1..65535"},
      {"tcp:host:502?baud=9600", "unknown option 'baud' for tcp"},
  };
  for (const auto& [url, cause] : cases) {
    auto result = parse_inverter_url(url);
    ASSERT_FALSE(result.ok()) << url;
    EXPECT_EQ(result.error().code, ErrorCode::invalid_argument);
    EXPECT_NE(result.error().message.find(cause), std::string::npos)
        << url << " -> " << result.error().message;
  }
}

// --- the simulator's inverter ---

// The simulator in miniature, in real time (the heartbeat counts down in simulated time): steps the
// pack by the wall time elapsed and syncs the inverter.
class RealTimeSim {
 public:
  RealTimeSim() {
    pack.set_positive_contactor(true);
    pack.set_negative_contactor(true);
    inverter = sim::InverterDevice::create(pack);
  }
  ~RealTimeSim() { stop(); }
  void start() {
    thread_ = std::thread([this] {
      auto last = SteadyClock::now();
      while (!stopping_) {
        std::this_thread::sleep_for(5ms);  // pacing of the physics steps
        const auto now = SteadyClock::now();
        std::lock_guard lock(mutex_);
        pack.step(std::chrono::duration<double>(now - last).count());
        inverter->sync();
        last = now;
      }
    });
  }
  void stop() {
    stopping_ = true;
    if (thread_.joinable()) thread_.join();
    if (inverter) inverter->stop();
  }
  double pack_current_a() {
    std::lock_guard lock(mutex_);
    return pack.pack_current_a();
  }
  double pack_voltage_v() {
    std::lock_guard lock(mutex_);
    return pack.pack_voltage_v();
  }

  sim::PackModel pack{sim::PackConfig{}};
  std::unique_ptr<sim::InverterDevice> inverter;

 private:
  std::mutex mutex_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

// The edge's loop: an io_context on its own thread; records what the handlers see, and checks that
// they run on it.
struct Loop {
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> guard = asio::make_work_guard(io);
  std::thread thread{[this] { io.run(); }};
  ~Loop() {
    guard.reset();
    io.stop();
    thread.join();
  }

  std::mutex mutex;
  std::vector<InverterEvent> events;
  std::vector<InverterReadings> readings;
  int link_ok = 0;
  int link_failed = 0;
  std::string last_link_error;
  bool wrong_thread = false;

  void attach(InverterClient& client) {
    client.on_event([this](const InverterEvent& e) {
      std::lock_guard lock(mutex);
      wrong_thread |= std::this_thread::get_id() != thread.get_id();
      events.push_back(e);
    });
    client.on_readings([this](const InverterReadings& r) {
      std::lock_guard lock(mutex);
      wrong_thread |= std::this_thread::get_id() != thread.get_id();
      readings.push_back(r);
    });
    client.on_link([this](bool ok, MonoTime, const std::string& detail) {
      std::lock_guard lock(mutex);
      wrong_thread |= std::this_thread::get_id() != thread.get_id();
      (ok ? link_ok : link_failed)++;
      if (!ok) last_link_error = detail;
    });
  }
  std::optional<InverterEvent> find_event(InverterEvent::Kind kind, const std::string& text = "",
                                          std::size_t from = 0) {
    std::lock_guard lock(mutex);
    for (std::size_t i = from; i < events.size(); ++i) {
      if (events[i].kind == kind && events[i].message.find(text) != std::string::npos) return events[i];
    }
    return std::nullopt;
  }
  std::size_t event_count() {
    std::lock_guard lock(mutex);
    return events.size();
  }
  std::optional<InverterReadings> last_readings() {
    std::lock_guard lock(mutex);
    if (readings.empty()) return std::nullopt;
    return readings.back();
  }
  std::string dump() {
    std::lock_guard lock(mutex);
    std::string out;
    for (const auto& e : events) out += std::string(to_string(e.kind)) + ": " + e.message + "\n";
    return out;
  }
};

InverterClientConfig fast_config(const std::string& url) {
  InverterClientConfig config;
  config.endpoint = *parse_inverter_url(url);
  config.heartbeat_timeout_ns = std::chrono::seconds(1);
  config.heartbeat_period_ns = std::chrono::milliseconds(250);
  config.poll_period_ns = std::chrono::milliseconds(100);
  config.response_timeout_ns = std::chrono::milliseconds(200);
  config.startup_settle_timeout_ns = std::chrono::seconds(5);
  config.reconnect_interval_ns = std::chrono::milliseconds(300);
  return config;
}

bool started_up(Loop& loop) {
  return wait_for([&] { return loop.find_event(InverterEvent::Kind::startup_done).has_value(); });
}

TEST(InverterClientSim, StartsUpReadsFollowsASetpointAndTurnsOffOverTcp) {
  RealTimeSim sim;
  auto endpoint = sim.inverter->start_tcp({});
  ASSERT_TRUE(endpoint.ok()) << endpoint.error().message;
  sim.start();
  Loop loop;
  InverterClient client(loop.io, fast_config("tcp:" + *endpoint + "?slave=2"), system_clock());
  loop.attach(client);
  client.command_setpoint(InverterMode::current, 5, now_ns());  // before start: refused
  client.start();
  ASSERT_TRUE(started_up(loop)) << loop.dump();
  EXPECT_TRUE(loop.find_event(InverterEvent::Kind::command_failed, "refused: start-up not done").has_value())
      << loop.dump();
  // Every step of the start-up was reported.
  for (const char* step :
       {"security code written", "heartbeat written", "mode off written", "max voltage 384 V written",
        "min voltage 264 V written", "charge current limit -100 A written",
        "discharge current limit 100 A written", "charge power limit 30 kW written", "setpoint 0 written"}) {
    EXPECT_TRUE(loop.find_event(InverterEvent::Kind::startup_step, step).has_value()) << step << "\n"
                                                                                      << loop.dump();
  }
  EXPECT_EQ(client.stats().phase, InverterPhase::running);
  const auto logic = sim.inverter->logic();
  EXPECT_TRUE(logic.unlocked());
  const auto holding = logic.holding_registers();
  EXPECT_EQ(holding[1], 10);  // heartbeat: 1 s in 0.1 s
  EXPECT_EQ(holding[4], sim::to_raw(384, sim::kVoltageScale));
  EXPECT_EQ(holding[6], sim::to_raw(-100, sim::kCurrentScale));

  // Readings: the pack's voltage, scaled.
  ASSERT_TRUE(wait_for([&] { return loop.last_readings().has_value(); }));
  const auto r = *loop.last_readings();
  EXPECT_NEAR(r.battery_voltage_v, sim.pack_voltage_v(), 1.0);
  EXPECT_GT(r.battery_voltage_v, 300);
  EXPECT_NEAR(r.dc_link_current_a, 0, 0.1);
  EXPECT_GT(r.comm_timer_s, 0);
  EXPECT_TRUE(r.ready);
  EXPECT_NEAR(r.power_limit_kw, 30, 0.01);

  // A setpoint: the sim's current follows (discharge, so the voltage stays within the limits).
  std::size_t mark = loop.event_count();
  client.command_setpoint(InverterMode::current, 20, now_ns());
  ASSERT_TRUE(wait_for([&] {
    return loop.find_event(InverterEvent::Kind::command_written, "current 20", mark).has_value();
  })) << loop.dump();
  EXPECT_EQ(client.stats().mode, InverterMode::current);
  EXPECT_EQ(client.stats().setpoint, 20);
  ASSERT_TRUE(wait_for([&] {
    auto last = loop.last_readings();
    return last && std::fabs(last->dc_link_current_a - 20) <= 0.5;
  })) << loop.last_readings()->dc_link_current_a;
  EXPECT_NEAR(sim.pack_current_a(), 20, 0.5);

  // Clamped to the limits; the latest of two quick requests wins.
  mark = loop.event_count();
  client.command_setpoint(InverterMode::current, 10, now_ns());
  client.command_setpoint(InverterMode::current, 500, now_ns());
  ASSERT_TRUE(wait_for([&] { return client.stats().setpoint == 100; })) << loop.dump();
  EXPECT_EQ(sim.inverter->logic().holding_registers()[3], sim::to_raw(100, sim::kCurrentScale));

  // Off: the next transaction; measured from the call to the write's completion.
  mark = loop.event_count();
  const MonoTime requested = now_ns();
  client.command_off(requested);
  ASSERT_TRUE(wait_for([&] {
    return loop.find_event(InverterEvent::Kind::command_written, "mode off", mark).has_value();
  })) << loop.dump();
  const auto off = *loop.find_event(InverterEvent::Kind::command_written, "mode off", mark);
  EXPECT_EQ(off.requested_ns, requested);
  const double latency_ms = static_cast<double>((off.time_ns - requested).count()) / 1e6;
  std::printf("command_off latency over TCP: %.3f ms (%s)\n", latency_ms, off.message.c_str());
  RecordProperty("command_off_latency_us", static_cast<int>(latency_ms * 1000));
  EXPECT_LT(latency_ms, 250);  // at worst one transaction in flight (200 ms timeout) before it
  EXPECT_EQ(sim.inverter->logic().mode(), sim::InverterMode::off);
  EXPECT_EQ(client.stats().mode, InverterMode::off);
  ASSERT_TRUE(wait_for([&] { return std::fabs(sim.pack_current_a()) < 0.5; }));

  const auto stats = client.stats();
  EXPECT_GT(stats.transactions, 15u);
  EXPECT_EQ(stats.timeouts, 0u);
  EXPECT_EQ(stats.exceptions, 0u);
  {
    std::lock_guard lock(loop.mutex);
    EXPECT_GT(loop.link_ok, 15);
    EXPECT_EQ(loop.link_failed, 0);
    EXPECT_FALSE(loop.wrong_thread);
  }
  const auto stop_started = SteadyClock::now();
  client.stop();
  EXPECT_LT(SteadyClock::now() - stop_started, 500ms);
  EXPECT_EQ(client.stats().phase, InverterPhase::stopped);
}

TEST(InverterClientSim, OffPreemptsAQueuedSetpointWhileATransactionIsInFlight) {
  RealTimeSim sim;
  auto endpoint = sim.inverter->start_tcp({});
  ASSERT_TRUE(endpoint.ok());
  sim.start();
  Loop loop;
  auto config = fast_config("tcp:" + *endpoint);
  config.response_timeout_ns = std::chrono::milliseconds(500);
  InverterClient client(loop.io, config, system_clock());
  loop.attach(client);
  client.start();
  ASSERT_TRUE(started_up(loop)) << loop.dump();
  // Every answer 80 ms late: whatever is in flight when off is asked for takes that long.
  sim.inverter->set_response_delay(std::chrono::milliseconds(80));
  std::this_thread::sleep_for(150ms);
  const std::size_t mark = loop.event_count();
  client.command_setpoint(InverterMode::current, 10, now_ns());
  const MonoTime requested = now_ns();
  client.command_off(requested);
  ASSERT_TRUE(wait_for([&] {
    return loop.find_event(InverterEvent::Kind::command_written, "mode off", mark).has_value();
  })) << loop.dump();
  const auto off = *loop.find_event(InverterEvent::Kind::command_written, "mode off", mark);
  const double latency_ms = static_cast<double>((off.time_ns - requested).count()) / 1e6;
  std::printf("command_off latency with 80 ms answers and a setpoint queued: %.1f ms\n", latency_ms);
  // The transaction in flight, then off; at worst a setpoint write already begun before it.
  EXPECT_LT(latency_ms, 3 * 80 + 60);
  EXPECT_FALSE(loop.find_event(InverterEvent::Kind::command_written, "current 10", mark).has_value())
      << loop.dump();
  EXPECT_TRUE(loop.find_event(InverterEvent::Kind::command_failed, "current 10", mark).has_value())
      << loop.dump();
  EXPECT_EQ(sim.inverter->logic().mode(), sim::InverterMode::off);
  EXPECT_EQ(client.stats().mode, InverterMode::off);
  sim.inverter->set_response_delay(std::chrono::milliseconds(0));
}

TEST(InverterClientSim, HeartbeatKeepsTheConverterRunningForMoreThanThreeTimeouts) {
  RealTimeSim sim;
  auto endpoint = sim.inverter->start_tcp({});
  ASSERT_TRUE(endpoint.ok());
  sim.start();
  Loop loop;
  InverterClient client(loop.io, fast_config("tcp:" + *endpoint), system_clock());
  loop.attach(client);
  client.start();
  ASSERT_TRUE(started_up(loop)) << loop.dump();
  client.command_setpoint(InverterMode::current, 10, now_ns());
  ASSERT_TRUE(wait_for([&] { return sim.inverter->logic().running(); }));
  const auto heartbeats_before = client.stats().heartbeats;
  // 3.5 heartbeat timeouts (1 s each): running all along.
  const auto until = SteadyClock::now() + 3500ms;
  int samples = 0;
  while (SteadyClock::now() < until) {
    const auto logic = sim.inverter->logic();
    ASSERT_TRUE(logic.running()) << "stopped after " << samples << " samples; comm timer "
                                 << logic.comm_timer_s();
    ++samples;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_GE(client.stats().heartbeats - heartbeats_before, 12u);  // every 250 ms
  // Without the client the converter stops within the timeout.
  client.stop();
  EXPECT_TRUE(wait_for([&] { return !sim.inverter->logic().running(); }, 2s));
}

TEST(InverterClientSim, SilentInverterGivesCountedLinkFailuresThenRecovers) {
  RealTimeSim sim;
  auto endpoint = sim.inverter->start_tcp({});
  ASSERT_TRUE(endpoint.ok());
  sim.start();
  Loop loop;
  auto config = fast_config("tcp:" + *endpoint);
  config.retries = 1;
  InverterClient client(loop.io, config, system_clock());
  loop.attach(client);
  client.start();
  ASSERT_TRUE(started_up(loop)) << loop.dump();
  const std::size_t mark = loop.event_count();
  sim.inverter->set_not_answering(true);
  ASSERT_TRUE(wait_for([&] {
    return loop.find_event(InverterEvent::Kind::disconnected, "timeout", mark).has_value();
  })) << loop.dump();
  {
    std::lock_guard lock(loop.mutex);
    EXPECT_GE(loop.link_failed, 3);
    EXPECT_NE(loop.last_link_error.find("timeout"), std::string::npos) << loop.last_link_error;
  }
  auto stats = client.stats();
  EXPECT_GE(stats.timeouts, 6u);  // 3 transactions, each tried twice
  EXPECT_GE(stats.retries, 3u);
  EXPECT_GE(stats.reconnects, 1u);
  EXPECT_NE(stats.last_error.find("timeout"), std::string::npos);
  // A setpoint while the link is down is refused; off is kept until it can be written.
  client.command_setpoint(InverterMode::current, 5, now_ns());
  EXPECT_TRUE(wait_for(
      [&] { return loop.find_event(InverterEvent::Kind::command_failed, "refused", mark).has_value(); }));
  // Stop stays prompt while transactions time out.
  sim.inverter->set_not_answering(false);
  const std::size_t mark2 = loop.event_count();
  ASSERT_TRUE(wait_for([&] {
    return loop.find_event(InverterEvent::Kind::startup_done, "", mark2).has_value();
  })) << loop.dump();
  EXPECT_EQ(client.stats().phase, InverterPhase::running);
  EXPECT_EQ(client.stats().consecutive_failures, 0);
}

TEST(InverterClientSim, StopIsPromptWhileTheInverterIsSilent) {
  RealTimeSim sim;
  auto endpoint = sim.inverter->start_tcp({});
  ASSERT_TRUE(endpoint.ok());
  sim.start();
  sim.inverter->set_not_answering(true);
  Loop loop;
  auto config = fast_config("tcp:" + *endpoint);
  InverterClient client(loop.io, config, system_clock());
  client.start();
  std::this_thread::sleep_for(700ms);
  const auto start = SteadyClock::now();
  client.stop();
  // At most the transaction in flight (200 ms response timeout).
  EXPECT_LT(SteadyClock::now() - start, 450ms);
  EXPECT_GE(client.stats().timeouts, 1u);
}

TEST(InverterClientSim, StartupFailsWhenTheVoltageIsOutsideTheLimitsAndIsRetried) {
  RealTimeSim sim;
  auto endpoint = sim.inverter->start_tcp({});
  ASSERT_TRUE(endpoint.ok());
  sim.start();
  Loop loop;
  auto config = fast_config("tcp:" + *endpoint);
  config.limits.min_voltage_v = 390;  // the pack is at ~378 V
  config.limits.max_voltage_v = 400;
  config.startup_settle_timeout_ns = std::chrono::milliseconds(600);
  InverterClient client(loop.io, config, system_clock());
  loop.attach(client);
  client.start();
  ASSERT_TRUE(wait_for([&] {
    return loop.find_event(InverterEvent::Kind::startup_failed, "not settled").has_value();
  })) << loop.dump();
  EXPECT_FALSE(loop.find_event(InverterEvent::Kind::startup_done).has_value());
  // Retried after reconnect_interval (0.3 s): a second "security code" step.
  ASSERT_TRUE(wait_for([&] {
    std::lock_guard lock(loop.mutex);
    int n = 0;
    for (const auto& e : loop.events) n += e.message.rfind("security code written", 0) == 0;
    return n >= 2;
  })) << loop.dump();
  const auto failure = *loop.find_event(InverterEvent::Kind::startup_failed);
  EXPECT_NE(failure.message.find("limits 390..400"), std::string::npos) << failure.message;
}

TEST(InverterClientSim, RefusedWritesCountAsExceptionsAndFailTheStartup) {
  RealTimeSim sim;
  auto endpoint = sim.inverter->start_tcp({});
  ASSERT_TRUE(endpoint.ok());
  sim.start();
  Loop loop;
  auto config = fast_config("tcp:" + *endpoint);
  config.registers.security_value = 124;  // wrong code: the device stays locked
  InverterClient client(loop.io, config, system_clock());
  loop.attach(client);
  client.start();
  ASSERT_TRUE(wait_for([&] { return loop.find_event(InverterEvent::Kind::startup_failed).has_value(); }))
      << loop.dump();
  const auto failure = *loop.find_event(InverterEvent::Kind::startup_failed);
  EXPECT_NE(failure.message.find("Illegal function"), std::string::npos) << failure.message;
  EXPECT_GE(client.stats().exceptions, 1u);
  EXPECT_EQ(client.stats().reconnects, 0u);  // an exception is an answer, not a lost link
}

TEST(InverterClientSim, RtuOnAPtyWithCrcErrorsRetried) {
  RealTimeSim sim;
  auto path = sim.inverter->start_rtu({});
  ASSERT_TRUE(path.ok()) << path.error().message;
  sim.start();
  Loop loop;
  auto config = fast_config("rtu:" + *path + "?baud=19200&parity=N&data=8&stop=1&slave=2");
  config.retries = 2;
  InverterClient client(loop.io, config, system_clock());
  loop.attach(client);
  client.start();
  ASSERT_TRUE(started_up(loop)) << loop.dump();
  ASSERT_TRUE(wait_for([&] { return loop.last_readings().has_value(); }));
  EXPECT_NEAR(loop.last_readings()->battery_voltage_v, sim.pack_voltage_v(), 1.0);
  sim.inverter->set_crc_error_every(3);
  std::this_thread::sleep_for(1500ms);
  sim.inverter->set_crc_error_every(0);
  const auto stats = client.stats();
  EXPECT_GE(stats.crc_errors, 2u);
  EXPECT_GE(stats.retries, stats.crc_errors);
  // Each CRC error was retried and the retry succeeded: no transaction failed.
  EXPECT_EQ(stats.reconnects, 0u);
  EXPECT_EQ(client.stats().phase, InverterPhase::running);
  const MonoTime requested = now_ns();
  const std::size_t mark = loop.event_count();
  client.command_off(requested);
  ASSERT_TRUE(wait_for(
      [&] { return loop.find_event(InverterEvent::Kind::command_written, "mode off", mark).has_value(); }));
  const auto off = *loop.find_event(InverterEvent::Kind::command_written, "mode off", mark);
  std::printf("command_off latency over RTU (pty): %.3f ms\n",
              static_cast<double>((off.time_ns - requested).count()) / 1e6);
}

// --- the independent peer: pymodbus ---

TEST(InverterClientPymodbus, WritesTheSpecsAddressesWithFunction6AndReadsTheBlockWithFunction4) {
  if (!sim::testing::python_module_available("pymodbus/__init__.py"))
    GTEST_SKIP() << "python3-pymodbus is not installed";
  Loop loop;
  std::unique_ptr<InverterClient> client;
  std::string output;
  int stage = 0;
  MonoTime off_requested;
  std::size_t mark = 0;
  const auto between = [&] {
    if (stage == 0) {
      const auto pos = output.find("PORT ");
      if (pos == std::string::npos || output.find('\n', pos) == std::string::npos) return;
      const int port = std::stoi(output.substr(pos + 5));
      auto config = fast_config("tcp:127.0.0.1:" + std::to_string(port) + "?slave=2");
      client = std::make_unique<InverterClient>(loop.io, config, system_clock());
      loop.attach(*client);
      client->start();
      stage = 1;
    } else if (stage == 1 && loop.find_event(InverterEvent::Kind::startup_done) &&
               client->stats().heartbeats >= 3) {
      mark = loop.event_count();
      client->command_setpoint(InverterMode::current, -20, now_ns());
      stage = 2;
    } else if (stage == 2 && loop.find_event(InverterEvent::Kind::command_written, "current -20", mark)) {
      mark = loop.event_count();
      client->command_setpoint(InverterMode::power, 5, now_ns());
      stage = 3;
    } else if (stage == 3 && loop.find_event(InverterEvent::Kind::command_written, "power 5", mark)) {
      mark = loop.event_count();
      off_requested = now_ns();
      client->command_off(off_requested);
      stage = 4;
    } else if (stage == 4 && loop.find_event(InverterEvent::Kind::command_written, "mode off", mark)) {
      client->stop();
      stage = 5;
    }
  };
  ASSERT_EQ(sim::testing::run_peer("pymodbus_edge_peer.py", {"--seconds", "6"}, output, between), 0)
      << output;
  ASSERT_EQ(stage, 5) << loop.dump() << output;

  // The requests as the peer recorded them: [fc, address, count or [values]].
  const auto json = output.substr(output.find('{'));
  auto has = [&](const std::string& request) { return json.find(request) != std::string::npos; };
  auto index = [&](const std::string& request) { return json.find(request); };
  const auto raw = [](double v, double scale) { return std::to_string(sim::to_raw(v, scale)); };
  // Start-up, in the spec's order, function 6 at the raw PDU addresses.
  const std::vector<std::string> startup = {"[6, 41024, [125]]",
                                            "[6, 41025, [10]]",
                                            "[6, 41026, [0]]",
                                            "[6, 41028, [" + raw(384, 32.767) + "]]",
                                            "[6, 41029, [" + raw(264, 32.767) + "]]",
                                            "[6, 41030, [" + raw(-100, 52.094) + "]]",
                                            "[6, 41031, [" + raw(100, 52.094) + "]]",
                                            "[6, 41032, [" + raw(30, 218.44) + "]]",
                                            "[6, 41027, [0]]"};
  std::size_t previous = 0;
  for (const auto& request : startup) {
    const auto at = index(request);
    ASSERT_NE(at, std::string::npos) << request << "\n" << json;
    EXPECT_GT(at, previous) << request << " out of order\n" << json;
    previous = at;
  }
  EXPECT_TRUE(has("[3, 41026, 1]")) << "readback with function 3\n" << json;
  EXPECT_TRUE(has("[4, 30256, 30]")) << "one read of the 30-register block\n" << json;
  EXPECT_FALSE(has("[16,")) << json;
  // Current -20 A: setpoint first, then mode 2; power 5 kW: setpoint 0, setpoint, mode 1; then off.
  const auto current = index("[6, 41027, [" + raw(-20, 52.094) + "]]");
  const auto mode_current = index("[6, 41026, [2]]");
  const auto power = index("[6, 41027, [" + raw(5, 218.44) + "]]");
  const auto mode_power = index("[6, 41026, [1]]");
  ASSERT_NE(current, std::string::npos) << json;
  ASSERT_NE(power, std::string::npos) << json;
  EXPECT_LT(current, mode_current);
  EXPECT_LT(mode_current, power);
  EXPECT_LT(power, mode_power);
  EXPECT_NE(json.find("[6, 41026, [0]]", mode_power), std::string::npos) << "mode off last\n" << json;
  // Heartbeats during the run.
  std::size_t heartbeats = 0;
  for (auto at = json.find("[6, 41025, [10]]"); at != std::string::npos;
       at = json.find("[6, 41025, [10]]", at + 1))
    ++heartbeats;
  EXPECT_GE(heartbeats, 3u);

  // The readings, scaled from the peer's known values (signed; u32 high word first).
  ASSERT_TRUE(loop.last_readings().has_value());
  const auto r = *loop.last_readings();
  EXPECT_NEAR(r.ambient_c, 21.5, 0.01);
  EXPECT_NEAR(r.heatsink_c, -3.0, 0.01);
  EXPECT_NEAR(r.comm_timer_s, 12.3, 1e-9);
  EXPECT_NEAR(r.battery_voltage_v, 350.0, 0.02);
  EXPECT_NEAR(r.voltage_ref_v, 351.0, 0.02);
  EXPECT_NEAR(r.dc_link_voltage_v, 349.5, 0.02);
  EXPECT_NEAR(r.dc_link_power_kw, -0.25, 0.005);
  EXPECT_NEAR(r.dc_link_current_a, -0.5, 0.01);
  EXPECT_TRUE(r.ready);
  EXPECT_EQ(r.faults, (std::array<std::uint16_t, 4>{0x0001, 0x0002, 0x0004, 0x8000}));
  EXPECT_EQ(r.warnings, (std::array<std::uint16_t, 3>{0x0010, 0x0020, 0x0040}));
  EXPECT_EQ(r.status, 0x4030);
  EXPECT_NEAR(r.charged_kwh, 6553.8, 1e-6);
  EXPECT_NEAR(r.discharged_kwh, 10.0, 1e-9);
  EXPECT_NEAR(r.power_limit_kw, 30.0, 0.005);
}

// --- a half-dead inverter (issue 12 item 4) ---

using testing::RogueModbusProxy;

// The edge's wiring in miniature: the supervisor on the loop thread, fed valid readings, heartbeat
// acknowledgements and link results, ticked when its next deadline is due (checked every 10 ms).
struct Guarded {
  static constexpr Duration kReadingsBound = std::chrono::milliseconds(800);
  static constexpr Duration kHeartbeatBound = std::chrono::milliseconds(800);

  Guarded(Loop& l, InverterClient& c) : loop(l), client(c), timer(l.io) {
    safety::SupervisorConfig config = safety::rig_defaults();
    config.expected_module_count = 0;
    config.board_expected = false;
    config.inverter_expected = true;
    config.inverter_readings_timeout_ns = kReadingsBound;
    config.inverter_heartbeat_timeout_ns = kHeartbeatBound;
    config.inverter_failure_limit = 1000;  // the freshness rules alone must catch it
    supervisor.emplace(std::move(safety::Supervisor::create(config)).value());
    pack_current = *supervisor->add_channel({"inverter.dc_link_current", safety::Quantity::pack_current, 0});
    client.on_readings([this](const InverterReadings& r) {
      feed(supervisor->on_inverter_reading(now_ns()));
      if (auto d = supervisor->on_sample(pack_current, now_ns(), r.dc_link_current_a)) feed(*d);
    });
    client.on_heartbeat([this](MonoTime) { feed(supervisor->on_inverter_heartbeat(now_ns())); });
    client.on_link([this](bool ok, MonoTime, const std::string& detail) {
      std::lock_guard lock(mutex);
      (ok ? link_ok : link_failed)++;
      if (!ok) last_link_error = detail;
      link_flips += ok != link_up;
      link_up = ok;
    });
    client.on_event([this](const InverterEvent& e) {
      std::lock_guard lock(loop.mutex);
      loop.events.push_back(e);
    });
    asio::post(loop.io, [this] { arm(); });
  }
  ~Guarded() {
    client.stop();  // no more results; those already posted run before the barrier below
    std::promise<void> cancelled;
    asio::post(loop.io, [&] {
      timer.cancel();
      stopping = true;
      cancelled.set_value();
    });
    cancelled.get_future().wait();
  }

  void arm() {
    if (stopping) return;
    timer.expires_after(10ms);
    timer.async_wait([this](asio::error_code ec) {
      if (ec || stopping) return;
      if (supervisor->next_deadline_ns() <= now_ns()) feed(supervisor->tick(now_ns()));
      arm();
    });
  }
  void feed(safety::Decisions decisions) {
    std::lock_guard lock(mutex);
    for (const auto& d : decisions) {
      if (d.kind == safety::DecisionKind::state_changed) {
        states.push_back({d.to, now_ns(), d.reason.rule});
      }
    }
    status = supervisor->status();
  }
  struct Change {
    safety::State to;
    MonoTime at_ns;
    safety::RuleKind rule;
  };
  std::optional<Change> first(safety::State to) {
    std::lock_guard lock(mutex);
    for (const auto& c : states)
      if (c.to == to) return c;
    return std::nullopt;
  }
  safety::Status last_status() {
    std::lock_guard lock(mutex);
    return status;
  }

  Loop& loop;
  InverterClient& client;
  asio::steady_timer timer;
  bool stopping = false;                         // loop thread
  std::optional<safety::Supervisor> supervisor;  // loop thread only
  safety::ChannelId pack_current = safety::kNoChannel;
  std::mutex mutex;  // guards below
  std::vector<Change> states;
  safety::Status status;
  int link_ok = 0, link_failed = 0, link_flips = 0;
  bool link_up = false;
  std::string last_link_error;
};

struct HalfDeadCase {
  RogueModbusProxy::Mode mode;
  const char* name;
  safety::RuleKind expected_rule;
};

class InverterHalfDead : public ::testing::TestWithParam<HalfDeadCase> {};

TEST_P(InverterHalfDead, IsFlaggedWithinTheBoundGoesDangerousThenSafeAndShowsStaleReadings) {
  const HalfDeadCase& c = GetParam();
  RealTimeSim sim;
  auto endpoint = sim.inverter->start_tcp({});
  ASSERT_TRUE(endpoint.ok()) << endpoint.error().message;
  sim.start();
  const int device_port = std::stoi(endpoint->substr(endpoint->rfind(':') + 1));
  InverterClientConfig config = fast_config("tcp:127.0.0.1:1?slave=2");
  RogueModbusProxy proxy(device_port, config.registers.heartbeat);
  ASSERT_GT(proxy.port(), 0);
  config.endpoint.port = proxy.port();
  config.heartbeat_timeout_ns = std::chrono::seconds(2);  // the converter itself must keep running meanwhile
  Loop loop;
  InverterClient client(loop.io, config, system_clock());
  Guarded guard(loop, client);
  client.start();
  ASSERT_TRUE(started_up(loop)) << loop.dump();
  // Relayed faithfully: fresh, normal, link up.
  ASSERT_TRUE(wait_for([&] { return guard.last_status().inverter_last_reading_ns > MonoTime(); }));
  EXPECT_FALSE(guard.first(safety::State::dangerous).has_value());
  EXPECT_EQ(client.stats().read_failures, 0);

  const MonoTime fault_at = now_ns();
  proxy.set_mode(c.mode);
  ASSERT_TRUE(wait_for([&] { return guard.first(safety::State::safe).has_value(); }, 5s)) << loop.dump();
  const auto dangerous = guard.first(safety::State::dangerous);
  ASSERT_TRUE(dangerous.has_value());
  EXPECT_EQ(dangerous->rule, c.expected_rule) << safety::to_string(dangerous->rule);
  // Within the bound (counted from the last valid answer, at most one period before the fault)
  // plus the tick granularity and a scheduling margin.
  const Duration bound = c.expected_rule == safety::RuleKind::inverter_heartbeat ? Guarded::kHeartbeatBound
                                                                                 : Guarded::kReadingsBound;
  const double flagged_after_s = static_cast<double>((dangerous->at_ns - fault_at).count()) / 1e9;
  std::printf("%s: dangerous %.3f s after the fault (bound %.1f s)\n", c.name, flagged_after_s,
              static_cast<double>(bound.count()) / 1e9);
  EXPECT_LE(dangerous->at_ns - fault_at, bound + std::chrono::milliseconds(300));
  EXPECT_GE(dangerous->at_ns - fault_at,
            bound - std::chrono::milliseconds(400));  // not flagged by something else first
  EXPECT_GT(proxy.misbehaved(), 0);

  const auto stats = client.stats();
  const auto status = guard.last_status();
  std::lock_guard lock(guard.mutex);
  switch (c.mode) {
    case RogueModbusProxy::Mode::drop_read_answers:
      EXPECT_GT(stats.timeouts, 0u);
      EXPECT_GE(stats.read_failures + static_cast<int>(stats.reconnects), 1);
      EXPECT_TRUE(status.inverter_readings_stale);
      break;
    case RogueModbusProxy::Mode::wrong_byte_count:
      EXPECT_GT(stats.bad_answers, 0u);
      EXPECT_NE(guard.last_link_error.find("malformed answer"), std::string::npos) << guard.last_link_error;
      EXPECT_TRUE(status.inverter_readings_stale);
      break;
    case RogueModbusProxy::Mode::heartbeat_exception:
      EXPECT_GT(stats.exceptions, 0u);
      EXPECT_GE(stats.heartbeat_failures, 1);
      // Reads keep working, but the link does not flap back to ok between refused heartbeats.
      EXPECT_LE(guard.link_flips, 2) << "ok " << guard.link_ok << ", failed " << guard.link_failed;
      EXPECT_FALSE(guard.link_up);
      EXPECT_FALSE(status.inverter_readings_stale);
      break;
    case RogueModbusProxy::Mode::wrong_echo:
      EXPECT_GT(stats.echo_mismatches, 0u);
      EXPECT_NE(guard.last_link_error.find("wrong echo"), std::string::npos) << guard.last_link_error;
      EXPECT_FALSE(guard.link_up);
      break;
    case RogueModbusProxy::Mode::relay:
      break;
  }
}

INSTANTIATE_TEST_SUITE_P(
    RogueServer, InverterHalfDead,
    ::testing::Values(HalfDeadCase{RogueModbusProxy::Mode::drop_read_answers, "reads never answered",
                                   safety::RuleKind::inverter_stale},
                      HalfDeadCase{RogueModbusProxy::Mode::wrong_byte_count, "reads with a wrong byte count",
                                   safety::RuleKind::inverter_stale},
                      HalfDeadCase{RogueModbusProxy::Mode::heartbeat_exception, "heartbeats refused",
                                   safety::RuleKind::inverter_heartbeat},
                      HalfDeadCase{RogueModbusProxy::Mode::wrong_echo, "writes with a wrong echo",
                                   safety::RuleKind::inverter_heartbeat}),
    [](const ::testing::TestParamInfo<HalfDeadCase>& param_info) {
      switch (param_info.param.mode) {
        case RogueModbusProxy::Mode::drop_read_answers:
          return std::string("DropReadAnswers");
        case RogueModbusProxy::Mode::wrong_byte_count:
          return std::string("WrongByteCount");
        case RogueModbusProxy::Mode::heartbeat_exception:
          return std::string("HeartbeatException");
        case RogueModbusProxy::Mode::wrong_echo:
          return std::string("WrongEcho");
        case RogueModbusProxy::Mode::relay:
          break;
      }
      return std::string("Relay");
    });

TEST(InverterWriteEcho, AnEchoMustRepeatTheFunctionAddressAndValue) {
  std::string problem;
  const std::uint8_t good[] = {0x06, 0xa0, 0x41, 0x00, 0x14};  // 20 to 41025
  EXPECT_EQ(check_write_echo(good, sizeof good, 41025, 20, problem), 0);
  const std::uint8_t wrong_value[] = {0x06, 0xa0, 0x41, 0x00, 0x15};
  EXPECT_EQ(check_write_echo(wrong_value, sizeof wrong_value, 41025, 20, problem), EMBBADDATA);
  EXPECT_EQ(problem, "wrong echo: address 41025 value 21, wrote 20 to 41025");
  const std::uint8_t wrong_address[] = {0x06, 0xa0, 0x42, 0x00, 0x14};
  EXPECT_EQ(check_write_echo(wrong_address, sizeof wrong_address, 41025, 20, problem), EMBBADDATA);
  EXPECT_EQ(problem, "wrong echo: address 41026 value 20, wrote 20 to 41025");
  const std::uint8_t short_answer[] = {0x06, 0xa0, 0x41};
  EXPECT_EQ(check_write_echo(short_answer, sizeof short_answer, 41025, 20, problem), EMBBADDATA);
  const std::uint8_t other_function[] = {0x03, 0x02, 0x00, 0x14, 0x00};
  EXPECT_EQ(check_write_echo(other_function, sizeof other_function, 41025, 20, problem), EMBBADDATA);
  const std::uint8_t exception[] = {0x86, 0x04};
  EXPECT_EQ(check_write_echo(exception, sizeof exception, 41025, 20, problem), EMBXSFAIL);
  const std::uint8_t unknown_exception[] = {0x86, 0x42};
  EXPECT_EQ(check_write_echo(unknown_exception, sizeof unknown_exception, 41025, 20, problem), EMBBADEXC);
}

// --- the pure session (issue 14 item 2): virtual time, answers from the simulator's register logic ---

namespace session {

// Answers from sim::InverterLogic in-process; no sockets, no sleeps: time is an argument.
struct Device {
  sim::InverterLogic logic;
  std::vector<ModbusRequest> requests;
  std::function<std::optional<ModbusReply>(const ModbusRequest&)> fault;

  ModbusReply answer(const ModbusRequest& r) {
    requests.push_back(r);
    if (fault) {
      if (auto reply = fault(r)) return *reply;
    }
    ModbusReply reply;
    switch (r.function) {
      case ModbusRequest::Function::write_register:
        if (logic.write_holding(r.address, r.value) != sim::ModbusException::none) {
          return {ModbusReply::Status::exception, {}, r.what + ": refused", "refused"};
        }
        return reply;
      case ModbusRequest::Function::read_holding_registers:
      case ModbusRequest::Function::read_input_registers:
        for (std::uint16_t i = 0; i < r.count; ++i) {
          std::uint16_t value = 0;
          if (!logic.read_register(static_cast<std::uint16_t>(r.address + i), value)) {
            return {ModbusReply::Status::exception,
                    {},
                    r.what + ": Illegal data address",
                    "Illegal data address"};
          }
          reply.registers.push_back(value);
        }
        return reply;
    }
    return reply;
  }
};

struct Replay {
  InverterSession session;
  Device device;
  MonoTime now = MonoTime::from_ns(1'000'000'000);
  SessionOutput out;

  explicit Replay(InverterClientConfig config) : session(std::move(config)) {
    sim::InverterInputs in;
    in.battery_voltage_v = 350;
    in.dc_link_voltage_v = 350;
    device.logic.update(in);
  }
  void collect() {
    SessionOutput step = session.take_output();
    for (auto& x : step.events) out.events.push_back(std::move(x));
    for (auto& x : step.readings) out.readings.push_back(x);
    for (auto& x : step.links) out.links.push_back(std::move(x));
    for (auto& x : step.heartbeats) out.heartbeats.push_back(x);
  }
  // Steps to `until`: each transaction takes 1 ms; idle time jumps to the session's next wake.
  void until(MonoTime end) {
    while (now <= end) {
      if (auto request = session.next_request(now)) {
        const ModbusReply reply = device.answer(*request);
        now += Duration(1'000'000);
        session.reply(*request, reply, now);
      } else {
        now = std::max(now + Duration(1), session.next_wake(now));
      }
      collect();
    }
  }
  bool has(InverterEvent::Kind kind, const std::string& text) const {
    for (const auto& e : out.events)
      if (e.kind == kind && e.message.find(text) != std::string::npos) return true;
    return false;
  }
  std::string dump() const {
    std::string text;
    for (const auto& e : out.events) text += std::string(to_string(e.kind)) + ": " + e.message + "\n";
    return text;
  }
};

TEST(InverterSession, StartsUpInVirtualTimeWithReadbacksAndKeepsTheHeartbeatSchedule) {
  Replay run(fast_config("tcp:127.0.0.1:1502?slave=2"));
  run.session.connected(run.now, "tcp:127.0.0.1:1502?slave=2");
  const MonoTime start = run.now;
  run.until(start + Duration(2'000'000'000));
  ASSERT_EQ(run.session.stats().phase, InverterPhase::running) << run.dump();
  EXPECT_TRUE(run.has(InverterEvent::Kind::startup_step, "security code written (125 to 41024), read back"))
      << run.dump();
  EXPECT_TRUE(run.has(InverterEvent::Kind::startup_step, "mode off written (0 to 41026), read back 0"))
      << run.dump();
  EXPECT_TRUE(run.has(InverterEvent::Kind::startup_done, "start-up done: 349.9"))
      << run.dump();  // 350 V in raw steps of 1/32.767 V
  // Each start-up write is followed by its readback (function 3, never retried).
  const auto& r = run.device.requests;
  ASSERT_GE(r.size(), 18u);
  EXPECT_EQ(r[0].function, ModbusRequest::Function::write_register);
  EXPECT_EQ(r[0].address, 41024);
  EXPECT_EQ(r[1].function, ModbusRequest::Function::read_holding_registers);
  EXPECT_EQ(r[1].address, 41024);
  EXPECT_EQ(r[1].retries, 0);
  // Heartbeats every 250 ms of virtual time (give or take the 1 ms transaction they may wait for):
  // 2 s give 8 (one per period after the start-up's).
  std::vector<MonoTime> beats = run.out.heartbeats;
  ASSERT_GE(beats.size(), 8u);
  for (std::size_t i = 2; i < beats.size(); ++i)
    EXPECT_NEAR(static_cast<double>((beats[i] - beats[i - 1]).count()), 250e6, 2e6) << i;
  EXPECT_EQ(run.session.stats().heartbeats, beats.size());
}

TEST(InverterSession, OffPreemptsASetpointBeingWrittenAndIsTheNextRequest) {
  Replay run(fast_config("tcp:127.0.0.1:1502?slave=2"));
  run.session.connected(run.now, "sim");
  run.until(run.now + Duration(1'000'000'000));
  ASSERT_EQ(run.session.stats().phase, InverterPhase::running) << run.dump();
  run.session.command_setpoint(InverterMode::current, -20, run.now, run.now);
  // Whatever is due first (a heartbeat, a poll) goes first; then the setpoint register is written.
  bool setpoint_written = false;
  for (int i = 0; i < 5 && !setpoint_written; ++i) {
    auto request = run.session.next_request(run.now);
    ASSERT_TRUE(request.has_value());
    setpoint_written = request->what == "setpoint";
    run.session.reply(*request, run.device.answer(*request), run.now + Duration(1'000'000));
  }
  ASSERT_TRUE(setpoint_written);
  // Off arrives while the mode write is still to come: it is next, and the setpoint is preempted.
  run.session.command_off(run.now, run.now);
  auto next = run.session.next_request(run.now);
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->what, "mode off");
  run.session.reply(*next, run.device.answer(*next), run.now + Duration(2'000'000));
  run.collect();
  EXPECT_TRUE(run.has(InverterEvent::Kind::command_failed, "current -20: preempted by mode off"))
      << run.dump();
  EXPECT_TRUE(run.has(InverterEvent::Kind::command_written, "mode off written 2.0 ms after the request"))
      << run.dump();
  EXPECT_EQ(run.session.stats().mode, InverterMode::off);
  // The mode register was never set to current.
  for (const auto& r : run.device.requests)
    EXPECT_FALSE(r.address == 41026 && r.value == 2 && r.function == ModbusRequest::Function::write_register);
}

TEST(InverterSession, UnansweredReadsAreReadFailuresUntilAReadSucceeds) {
  Replay run(fast_config("tcp:127.0.0.1:1502?slave=2"));
  run.session.connected(run.now, "sim");
  run.until(run.now + Duration(1'000'000'000));
  ASSERT_EQ(run.session.stats().phase, InverterPhase::running) << run.dump();
  run.device.fault = [](const ModbusRequest& r) -> std::optional<ModbusReply> {
    if (r.function == ModbusRequest::Function::read_input_registers)
      return ModbusReply{ModbusReply::Status::timeout, {}, r.what + ": timeout", "timeout"};
    return std::nullopt;
  };
  const MonoTime last = run.session.stats().last_reading_ns;
  bool reconnect = false;
  while (!reconnect) {
    auto request = run.session.next_request(run.now);
    if (!request) {
      run.now = run.session.next_wake(run.now);
      continue;
    }
    run.now += Duration(1'000'000);
    reconnect = run.session.reply(*request, run.device.answer(*request), run.now);
  }
  // Heartbeats succeed in between, yet the reads stay failing: three in a row ask for a reconnect.
  EXPECT_GE(run.session.stats().read_failures, 3);
  EXPECT_EQ(run.session.stats().heartbeat_failures, 0);
  EXPECT_EQ(run.session.stats().last_reading_ns, last);
  EXPECT_EQ(run.session.stats().last_error, "read input registers: timeout");
  run.session.disconnected(run.now, "link lost: read input registers: timeout");
  EXPECT_EQ(run.session.stats().phase, InverterPhase::connecting);
}

}  // namespace session

}  // namespace
}  // namespace cellguard::devices
