// The SunSpec power device: the pure session driven with replies computed from the simulator's
// register logic (no sockets, no sleeps: time is an argument), then the whole device over a real
// Modbus TCP connection to the simulator's SunSpec device with a real safety supervisor, as the
// edge wires it (readings supervised, a stop commands it off), and against an independent pymodbus
// server that lays out the official model definitions (CELLGUARD_SUNSPEC_DIR).
#include "devices/sunspec_device.h"

#include <gtest/gtest.h>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "safety/safety.h"
#include "sim/device_test_peer.h"
#include "sim/pack_model.h"
#include "sim/sunspec_device.h"

namespace cellguard::devices {
namespace {

namespace ss = sunspec;
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

InverterClientConfig fast_config(const std::string& url) {
  InverterClientConfig config;
  config.endpoint = *parse_inverter_url(url);
  config.heartbeat_period_ns = std::chrono::milliseconds(250);
  config.poll_period_ns = std::chrono::milliseconds(100);
  config.response_timeout_ns = std::chrono::milliseconds(200);
  config.startup_settle_timeout_ns = std::chrono::seconds(5);
  config.reconnect_interval_ns = std::chrono::milliseconds(300);
  return config;
}

// --- the pure session ---

// Answers a session's requests from the simulator's register logic, in-process; records them.
struct ScriptedDevice {
  sim::SunSpecLogic logic;
  std::vector<ModbusRequest> requests;
  std::function<std::optional<ModbusReply>(const ModbusRequest&)> fault;  // overrides an answer

  ModbusReply answer(const ModbusRequest& request) {
    requests.push_back(request);
    if (fault) {
      if (auto reply = fault(request)) return *reply;
    }
    ModbusReply reply;
    if (request.function == ModbusRequest::Function::write_register) {
      if (logic.write(request.address, request.value) != sim::ModbusException::none) {
        return {ModbusReply::Status::exception, {}, request.what + ": illegal data", "illegal data"};
      }
      return reply;
    }
    const auto regs = logic.registers();
    if (request.address < logic.first() || request.address + request.count > logic.first() + regs.size()) {
      return {ModbusReply::Status::exception,
              {},
              request.what + ": Illegal data address",
              "Illegal data address"};
    }
    const auto from = regs.begin() + (request.address - logic.first());
    reply.registers.assign(from, from + request.count);
    return reply;
  }
};

// Runs the session until `until` (virtual time, stepping to each wake), answering from `device`.
void run(SunSpecSession& session, ScriptedDevice& device, MonoTime& now, MonoTime until, SessionOutput& out) {
  while (now <= until) {
    if (auto request = session.next_request(now)) {
      const ModbusReply reply = device.answer(*request);
      now += Duration(1'000'000);  // 1 ms per transaction
      session.reply(*request, reply, now);
    } else {
      now = std::max(now + Duration(1), session.next_wake(now));
    }
    SessionOutput step = session.take_output();
    for (auto& x : step.events) out.events.push_back(std::move(x));
    for (auto& x : step.readings) out.readings.push_back(x);
    for (auto& x : step.links) out.links.push_back(std::move(x));
    for (auto& x : step.heartbeats) out.heartbeats.push_back(x);
  }
}

std::string dump(const SessionOutput& out) {
  std::string text;
  for (const auto& e : out.events) text += std::string(to_string(e.kind)) + ": " + e.message + "\n";
  return text;
}

bool has_event(const SessionOutput& out, InverterEvent::Kind kind, const std::string& text) {
  for (const auto& e : out.events)
    if (e.kind == kind && e.message.find(text) != std::string::npos) return true;
  return false;
}

sim::SunSpecInputs pack_at(double volts, double amps = 0) { return {0, volts, volts, amps, 25, true}; }

TEST(SunSpecSession, FindsTheMapAtBaseZeroStartsUpAndReads) {
  sim::SunSpecSimConfig sim_config;
  sim_config.base = 0;  // 40000 answers ILLEGAL DATA ADDRESS: the next base is tried
  ScriptedDevice device{sim::SunSpecLogic(sim_config), {}, {}};
  device.logic.update(pack_at(352.4, 0));
  SunSpecSession session(fast_config("tcp:127.0.0.1:1502"));
  MonoTime now = MonoTime::from_ns(1'000'000'000);
  SessionOutput out;
  session.connected(now, "tcp:127.0.0.1:1502?slave=2");
  run(session, device, now, now + Duration(1'000'000'000), out);

  ASSERT_EQ(session.stats().phase, InverterPhase::running) << dump(out);
  EXPECT_EQ(session.chain().base, 0);
  EXPECT_TRUE(has_event(out, InverterEvent::Kind::startup_step, "SunSpec map at 0: models 1, 103, 124, 802"))
      << dump(out);
  EXPECT_TRUE(
      has_event(out, InverterEvent::Kind::startup_step, "device: cellguard sim storage, serial SIM-0001"))
      << dump(out);
  EXPECT_TRUE(has_event(out, InverterEvent::Kind::startup_step, "WChaMax 60 kW")) << dump(out);
  EXPECT_TRUE(has_event(out, InverterEvent::Kind::startup_done, "352.4 V")) << dump(out);
  // The first request asked for the marker at 40000; the start-up wrote off first, then the heartbeat.
  ASSERT_FALSE(device.requests.empty());
  EXPECT_EQ(device.requests[0].address, 40000);
  std::vector<std::string> writes;
  for (const auto& r : device.requests)
    if (r.function == ModbusRequest::Function::write_register) writes.push_back(r.what);
  ASSERT_GE(writes.size(), 5u);
  EXPECT_EQ(writes[0], "mode off (SetInvState INVERTER_STOPPED)");
  EXPECT_EQ(writes[1], "heartbeat (CtrlHb)");
  ASSERT_FALSE(out.readings.empty());
  const InverterReadings& r = out.readings.back();
  EXPECT_NEAR(r.battery_voltage_v, 352.4, 1e-9);
  EXPECT_NEAR(r.dc_link_voltage_v, 352.4, 1e-9);
  EXPECT_EQ(r.dc_link_current_a, 0);
  EXPECT_TRUE(r.ready);
  EXPECT_EQ(r.status, static_cast<std::uint16_t>(ss::inverter::State::off));
  EXPECT_GE(session.stats().heartbeats, 3u);  // every 250 ms
  EXPECT_FALSE(out.links.empty());
  EXPECT_TRUE(out.links.back().ok);
}

TEST(SunSpecSession, PowerSetpointThenOffPreemptsAndCurrentIsRefused) {
  ScriptedDevice device{sim::SunSpecLogic(), {}, {}};
  device.logic.update(pack_at(350));
  SunSpecSession session(fast_config("tcp:127.0.0.1:1502"));
  MonoTime now;
  SessionOutput out;
  session.connected(now, "sim");
  run(session, device, now, MonoTime::from_ns(500'000'000), out);
  ASSERT_EQ(session.stats().phase, InverterPhase::running) << dump(out);

  session.command_setpoint(InverterMode::current, 10, now, now);
  EXPECT_TRUE(
      has_event(session.take_output(), InverterEvent::Kind::command_failed, "take power setpoints only"));
  session.command_setpoint(InverterMode::power, 6, now, now);  // 10 % of 60 kW
  run(session, device, now, now + Duration(50'000'000), out);
  EXPECT_TRUE(has_event(out, InverterEvent::Kind::command_written, "power 6 kW written")) << dump(out);
  EXPECT_EQ(session.stats().mode, InverterMode::power);
  device.logic.update(pack_at(350));
  EXPECT_TRUE(device.logic.started());
  EXPECT_NEAR(device.logic.power_demand_w(), 6000, 1e-6);

  // A setpoint queued, then off at once: off is the next request and the setpoint is dropped.
  session.command_setpoint(InverterMode::power, -3, now, now);
  session.command_off(now, now);
  auto next = session.next_request(now);
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->what, "mode off (SetInvState INVERTER_STOPPED)");
  session.reply(*next, device.answer(*next), now + Duration(1'000'000));
  const SessionOutput after = session.take_output();
  EXPECT_TRUE(has_event(after, InverterEvent::Kind::command_failed, "power -3 kW: replaced by mode off"));
  EXPECT_TRUE(
      has_event(after, InverterEvent::Kind::command_written, "mode off written 1.0 ms after the request"));
  EXPECT_EQ(session.stats().mode, InverterMode::off);
  device.logic.update(pack_at(350));
  EXPECT_FALSE(device.logic.started());
  EXPECT_EQ(device.logic.current_demand_a(), 0);
}

TEST(SunSpecSession, UnansweredReadsAndRefusedHeartbeatsStayFailuresOfTheirKind) {
  ScriptedDevice device{sim::SunSpecLogic(), {}, {}};
  device.logic.update(pack_at(350));
  SunSpecSession session(fast_config("tcp:127.0.0.1:1502"));
  MonoTime now;
  SessionOutput out;
  session.connected(now, "sim");
  run(session, device, now, MonoTime::from_ns(500'000'000), out);
  ASSERT_EQ(session.stats().phase, InverterPhase::running) << dump(out);
  const MonoTime last_reading = session.stats().last_reading_ns;

  // Heartbeats refused with an exception, reads fine: the link stays reported failing (no
  // flapping back to ok on the reads), the readings stay fresh.
  device.fault = [](const ModbusRequest& r) -> std::optional<ModbusReply> {
    if (r.what == "heartbeat (CtrlHb)")
      return ModbusReply{ModbusReply::Status::exception,
                         {},
                         "heartbeat (CtrlHb): Slave device or server failure",
                         "Slave device or server failure"};
    return std::nullopt;
  };
  out = {};
  run(session, device, now, now + Duration(1'000'000'000), out);
  EXPECT_GE(session.stats().heartbeat_failures, 3);
  EXPECT_EQ(session.stats().read_failures, 0);
  EXPECT_GT(session.stats().last_reading_ns, last_reading);
  bool ok_after_failure = false, failed = false;
  for (const auto& l : out.links) {
    failed |= !l.ok;
    ok_after_failure |= failed && l.ok;
  }
  EXPECT_TRUE(failed);
  EXPECT_FALSE(ok_after_failure);

  // Reads unanswered: failures of the reading kind, no reading; the third failure in a row asks
  // for a reconnect.
  device.fault = [](const ModbusRequest& r) -> std::optional<ModbusReply> {
    if (r.function == ModbusRequest::Function::read_holding_registers)
      return ModbusReply{ModbusReply::Status::timeout, {}, r.what + ": timeout", "timeout"};
    return std::nullopt;
  };
  const MonoTime stale_since = session.stats().last_reading_ns;
  bool reconnect = false;
  for (int i = 0; i < 20 && !reconnect; ++i) {
    auto request = session.next_request(now);
    if (!request) {
      now = session.next_wake(now);
      continue;
    }
    now += Duration(1'000'000);
    reconnect = session.reply(*request, device.answer(*request), now);
  }
  EXPECT_TRUE(reconnect);
  EXPECT_GE(session.stats().read_failures, 1);
  EXPECT_EQ(session.stats().last_reading_ns, stale_since);
  EXPECT_EQ(session.stats().last_error, "read model 103: timeout");
}

TEST(SunSpecSession, NoMarkerAnywhereFailsTheStartUpWithTheReason) {
  ScriptedDevice device{sim::SunSpecLogic(), {}, {}};
  device.fault = [](const ModbusRequest& r) -> std::optional<ModbusReply> {
    if (r.function == ModbusRequest::Function::read_holding_registers)
      return ModbusReply{ModbusReply::Status::ok, {0x1234, 0x5678}, {}, {}};
    return std::nullopt;
  };
  SunSpecSession session(fast_config("tcp:127.0.0.1:1502"));
  MonoTime now;
  SessionOutput out;
  session.connected(now, "sim");
  run(session, device, now, MonoTime::from_ns(10'000'000), out);
  EXPECT_EQ(session.stats().phase, InverterPhase::startup_failed);
  EXPECT_TRUE(has_event(out, InverterEvent::Kind::startup_failed,
                        "no SunSpec device: 50000: no SunSpec marker \"SunS\" (found 1234 5678)"))
      << dump(out);
  ASSERT_EQ(device.requests.size(), 3u);  // 40000, 0, 50000
}

// --- over Modbus TCP against the simulator, with the supervisor ---

// The simulator in miniature, in real time: steps the pack and syncs the SunSpec device.
class RealTimeSim {
 public:
  RealTimeSim() {
    pack.set_positive_contactor(true);
    pack.set_negative_contactor(true);
    device = sim::SunSpecDevice::create(pack);
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
        device->sync();
        last = now;
      }
    });
  }
  void stop() {
    stopping_ = true;
    if (thread_.joinable()) thread_.join();
    if (device) device->stop();
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
  std::unique_ptr<sim::SunSpecDevice> device;

 private:
  std::mutex mutex_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

// The edge's wiring in miniature, on a loop thread: readings, heartbeats and link results into the
// supervisor, its inverter_off decisions to the device.
struct Edge {
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(io);
  std::unique_ptr<PowerDevice> device;
  std::optional<safety::Supervisor> supervisor;
  safety::ChannelId battery = safety::kNoChannel, current = safety::kNoChannel;
  std::mutex mutex;  // guards below
  std::vector<InverterEvent> events;
  std::vector<InverterReadings> readings;
  std::vector<safety::DecisionKind> decisions;
  std::thread thread;

  explicit Edge(InverterClientConfig config) {
    safety::SupervisorConfig sc = safety::rig_defaults();
    sc.expected_module_count = 0;
    sc.board_expected = false;
    sc.inverter_expected = true;
    supervisor.emplace(std::move(safety::Supervisor::create(sc)).value());
    battery =
        *supervisor->add_channel({"inverter.battery_voltage", safety::Quantity::inverter_battery_voltage, 0});
    current = *supervisor->add_channel({"inverter.dc_link_current", safety::Quantity::pack_current, 0});
    device = make_sunspec_device(io, std::move(config), system_clock());
    device->on_readings([this](const InverterReadings& r) {
      execute(supervisor->on_inverter_reading(now_ns()));
      if (auto d = supervisor->on_sample(battery, now_ns(), r.battery_voltage_v)) execute(*d);
      if (auto d = supervisor->on_sample(current, now_ns(), r.dc_link_current_a)) execute(*d);
      std::lock_guard lock(mutex);
      readings.push_back(r);
    });
    device->on_heartbeat([this](MonoTime) { execute(supervisor->on_inverter_heartbeat(now_ns())); });
    device->on_link([this](bool ok, MonoTime, const std::string&) {
      execute(supervisor->on_inverter_link(ok, now_ns()));
    });
    device->on_event([this](const InverterEvent& e) {
      std::lock_guard lock(mutex);
      events.push_back(e);
    });
    thread = std::thread([this] { io.run(); });
  }
  ~Edge() {
    device->stop();
    work.reset();
    io.stop();
    thread.join();
  }
  void execute(safety::Decisions ds) {
    for (const auto& d : ds) {
      if (d.kind == safety::DecisionKind::inverter_off) device->command_off(now_ns());
      std::lock_guard lock(mutex);
      decisions.push_back(d.kind);
    }
  }
  void stop_request() {
    asio::post(
        io, [this] { execute(supervisor->on_stop_request(safety::StopOrigin::operator_command, now_ns())); });
  }
  std::optional<InverterEvent> find(InverterEvent::Kind kind, const std::string& text = "") {
    std::lock_guard lock(mutex);
    for (const auto& e : events)
      if (e.kind == kind && e.message.find(text) != std::string::npos) return e;
    return std::nullopt;
  }
  std::optional<InverterReadings> last() {
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

TEST(SunSpecOverTcp, ReadsSupervisesDrivesAndStopsTheSimulatedDevice) {
  RealTimeSim sim;
  auto endpoint = sim.device->start_tcp({});
  ASSERT_TRUE(endpoint.ok()) << endpoint.error().message;
  sim.start();
  Edge edge(fast_config("tcp:" + *endpoint));
  edge.device->start();
  ASSERT_TRUE(wait_for([&] { return edge.find(InverterEvent::Kind::startup_done).has_value(); }))
      << edge.dump();
  ASSERT_TRUE(wait_for([&] { return edge.last().has_value(); }));
  EXPECT_NEAR(edge.last()->battery_voltage_v, sim.pack_voltage_v(), 0.2);
  EXPECT_EQ(edge.device->stats().phase, InverterPhase::running);
  EXPECT_GT(edge.device->stats().transactions, 10u);

  // 6 kW discharge: the pack's current follows (P / V), and the readings show it.
  edge.device->command_setpoint(InverterMode::power, 6, now_ns());
  ASSERT_TRUE(wait_for([&] {
    return edge.find(InverterEvent::Kind::command_written, "power 6 kW").has_value();
  })) << edge.dump();
  ASSERT_TRUE(wait_for([&] { return sim.pack_current_a() > 10; }));
  EXPECT_NEAR(sim.pack_current_a(), 6000 / sim.pack_voltage_v(), 1.0);
  ASSERT_TRUE(wait_for([&] { return edge.last() && edge.last()->dc_link_current_a > 10; })) << edge.dump();
  EXPECT_NEAR(edge.last()->dc_link_power_kw, 6, 0.3);

  // A safe stop: the supervisor decides inverter off; the device stops and the current ends.
  const MonoTime stop_at = now_ns();
  edge.stop_request();
  ASSERT_TRUE(wait_for([&] {
    return edge.find(InverterEvent::Kind::command_written, "mode off").has_value();
  })) << edge.dump();
  const auto off = edge.find(InverterEvent::Kind::command_written, "mode off");
  EXPECT_LT(off->time_ns - stop_at, std::chrono::milliseconds(200)) << off->message;
  ASSERT_TRUE(wait_for([&] { return std::fabs(sim.pack_current_a()) < 1e-9; }));
  EXPECT_FALSE(sim.device->logic().started());
  EXPECT_EQ(edge.device->stats().mode, InverterMode::off);
  std::printf("stop request to mode off acknowledged: %s\n", off->message.c_str());
}

TEST(SunSpecOverTcp, ADeviceThatStopsAnsweringIsFlaggedStaleAndGoesDangerous) {
  RealTimeSim sim;
  auto endpoint = sim.device->start_tcp({});
  ASSERT_TRUE(endpoint.ok()) << endpoint.error().message;
  sim.start();
  Edge edge(fast_config("tcp:" + *endpoint));
  edge.device->start();
  ASSERT_TRUE(wait_for([&] { return edge.find(InverterEvent::Kind::startup_done).has_value(); }))
      << edge.dump();
  sim.device->set_not_answering(true);
  auto dangerous = [&] {
    safety::Status status;
    std::promise<void> done;
    asio::post(edge.io, [&] {
      edge.execute(edge.supervisor->tick(now_ns()));
      status = edge.supervisor->status();
      done.set_value();
    });
    done.get_future().wait();
    return status.state == safety::State::dangerous || status.state == safety::State::safe;
  };
  ASSERT_TRUE(wait_for(dangerous, 10s)) << edge.dump();
  EXPECT_GT(edge.device->stats().timeouts, 0u);
  EXPECT_GE(edge.device->stats().read_failures + static_cast<int>(edge.device->stats().reconnects), 1);
}

// --- against an independent peer laid out from the official definitions ---

TEST(SunSpecPymodbusPeer, FindsReadsAndWritesThePointsWhereTheStandardPutsThem) {
  const char* dir = std::getenv("CELLGUARD_SUNSPEC_DIR");
  if (dir == nullptr || *dir == '\0')
    GTEST_SKIP() << "set CELLGUARD_SUNSPEC_DIR to the SunSpec model definitions (shared/corpus/sunspec)";
  if (!sim::testing::python_module_available("pymodbus")) GTEST_SKIP() << "python3-pymodbus is not installed";
  asio::io_context io;
  auto work = asio::make_work_guard(io);
  std::thread loop([&] { io.run(); });
  std::unique_ptr<PowerDevice> device;
  std::mutex mutex;
  std::vector<InverterEvent> events;
  std::optional<InverterReadings> last;
  auto find = [&](InverterEvent::Kind kind, const std::string& text) {
    std::lock_guard lock(mutex);
    for (const auto& e : events)
      if (e.kind == kind && e.message.find(text) != std::string::npos) return true;
    return false;
  };
  int stage = 0;
  std::string output;
  auto between = [&] {
    if (stage == 0) {
      const auto pos = output.find("PORT ");
      if (pos == std::string::npos || output.find('\n', pos) == std::string::npos) return;
      device = make_sunspec_device(
          io, fast_config("tcp:127.0.0.1:" + std::to_string(std::stoi(output.substr(pos + 5)))),
          system_clock());
      device->on_event([&](const InverterEvent& e) {
        std::lock_guard lock(mutex);
        events.push_back(e);
      });
      device->on_readings([&](const InverterReadings& r) {
        std::lock_guard lock(mutex);
        last = r;
      });
      device->start();
      stage = 1;
    } else if (stage == 1 && find(InverterEvent::Kind::startup_done, "")) {
      device->command_setpoint(InverterMode::power, -3, now_ns());
      stage = 2;
    } else if (stage == 2 && find(InverterEvent::Kind::command_written, "power -3 kW")) {
      device->command_off(now_ns());
      stage = 3;
    } else if (stage == 3 && find(InverterEvent::Kind::command_written, "mode off")) {
      device->stop();
      stage = 4;
    }
  };
  ASSERT_EQ(
      sim::testing::run_peer("pymodbus_sunspec_peer.py",
                             {"--definitions", dir, "--base", "50000", "--seconds", "2.5"}, output, between),
      0)
      << output;
  work.reset();
  io.stop();
  loop.join();
  std::string log;
  for (const auto& e : events) log += std::string(to_string(e.kind)) + ": " + e.message + "\n";
  ASSERT_EQ(stage, 4) << log << output;
  EXPECT_TRUE(find(InverterEvent::Kind::startup_step, "SunSpec map at 50000: models 1, 103, 124, 802"))
      << log;
  EXPECT_TRUE(find(InverterEvent::Kind::startup_step, "device: SunSpecPeer pymodbus, serial PEER-42")) << log;

  // The readings, from the peer's known values placed by the official offsets and scale factors.
  ASSERT_TRUE(last.has_value());
  EXPECT_NEAR(last->battery_voltage_v, 350.0, 1e-9);
  EXPECT_NEAR(last->dc_link_current_a, -0.5, 1e-9);
  EXPECT_NEAR(last->dc_link_voltage_v, 349.5, 1e-9);
  EXPECT_NEAR(last->dc_link_power_kw, -0.25, 1e-9);
  EXPECT_NEAR(last->heatsink_c, 41.5, 1e-9);
  EXPECT_EQ(last->status, static_cast<std::uint16_t>(ss::inverter::State::standby));

  // The writes the peer saw, by the official point names: [model, point, value].
  const auto json = nlohmann::json::parse(output.substr(output.find('{')));
  std::vector<std::string> writes;
  for (const auto& w : json.at("writes"))
    writes.push_back(w.at(0).get<std::string>() + "." + w.at(1).get<std::string>() + "=" +
                     std::to_string(w.at(2).get<int>()));
  auto index = [&](const std::string& w, std::size_t from = 0) {
    for (std::size_t i = from; i < writes.size(); ++i)
      if (writes[i] == w) return i;
    return writes.size();
  };
  std::string all;
  for (const auto& w : writes) all += w + " ";
  const auto off_first = index("802.SetInvState=1");
  ASSERT_LT(off_first, writes.size()) << all;
  EXPECT_LT(index("802.CtrlHb=1"), writes.size()) << all;  // the start-up's heartbeat is the first CtrlHb
  EXPECT_LT(index("124.StorCtl_Mod=3"), writes.size()) << all;
  // -3 kW of WChaMax 30 kW: InWRte 10 % (InOutWRte_SF -2: 1000), then started, then off.
  const auto in_rate = index("124.InWRte=1000");
  const auto started = index("802.SetInvState=3", in_rate);
  ASSERT_LT(in_rate, writes.size()) << all;
  ASSERT_LT(started, writes.size()) << all;
  EXPECT_LT(index("802.SetInvState=1", started), writes.size()) << "mode off last: " << all;
  for (const auto& w : writes)
    EXPECT_EQ(w.find("?"), std::string::npos) << "a write to no official point: " << all;
}

}  // namespace
}  // namespace cellguard::devices
