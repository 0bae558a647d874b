// The edge in-process (edge/edge_loop.h): over an `inproc:` CAN bus with the simulator's CANopen
// modules (sim/canopen_modules.h) as peers, a fake inverter session and fake outputs. Covers SYNC
// and SDO on the bus, decode dispatch -> supervisor -> actuator, the status snapshot, and a stop
// that leaves without blocking the loop. Runs the io_context for fractions of a second only.
#include <gtest/gtest.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "can/bus.h"
#include "canopen/canopen.h"
#include "dbc/dbc.h"
#include "edge/edge_loop.h"
#include "edge/status.h"
#include "sim/canopen_modules.h"
#include "sim/pack_model.h"

namespace cellguard::edge {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

fs::path source_dir() { return CELLGUARD_TEST_SOURCE_DIR; }

// The inverter as a fake session: records commands; a mode-off is confirmed on the loop as the
// Modbus client does (command_written after the write).
class FakeInverter final : public devices::PowerDevice {
 public:
  explicit FakeInverter(asio::io_context& io) : io_(io) {}
  void command_off(MonoTime requested_ns) override {
    ++offs;
    if (!confirm_off) return;  // a link that is down: the mode stays what it was
    devices::InverterEvent e{devices::InverterEvent::Kind::command_written, requested_ns, "mode off written",
                             requested_ns};
    asio::post(io_, [this, e] {
      stats_.mode = devices::InverterMode::off;
      stats_.setpoint = 0;
      if (events_) events_(e);
    });
  }
  void command_setpoint(devices::InverterMode mode, double setpoint, MonoTime) override {
    setpoints.push_back(setpoint);
    stats_.mode = mode;
    stats_.setpoint = setpoint;
  }
  void on_readings(devices::PowerDevice::ReadingsHandler h) override { readings_ = std::move(h); }
  void on_link(devices::PowerDevice::LinkHandler h) override { link_ = std::move(h); }
  void on_event(devices::PowerDevice::EventHandler h) override { events_ = std::move(h); }
  void on_heartbeat(devices::PowerDevice::HeartbeatHandler h) override { heartbeat_ = std::move(h); }
  void start() override { started = true; }
  void stop() override { stopped = true; }
  devices::InverterLinkStats stats() const override { return stats_; }

  void set_mode(devices::InverterMode mode) { stats_.mode = mode; }
  // A valid poll reading, delivered on the loop as the client does.
  void reading(double battery_v, double current_a) {
    devices::InverterReadings r;
    r.time_ns = mono_now();
    r.battery_voltage_v = battery_v;
    r.dc_link_voltage_v = battery_v;
    r.dc_link_current_a = current_a;
    asio::post(io_, [this, r] {
      if (readings_) readings_(r);
    });
  }

  int offs = 0;
  std::vector<double> setpoints;
  bool started = false, stopped = false;
  bool confirm_off = true;

 private:
  asio::io_context& io_;
  devices::InverterLinkStats stats_;
  devices::PowerDevice::ReadingsHandler readings_;
  devices::PowerDevice::LinkHandler link_;
  devices::PowerDevice::EventHandler events_;
  devices::PowerDevice::HeartbeatHandler heartbeat_;
};

// Pump, fan and relays as a fake driver: what was commanded, in order.
class FakeOutputs final : public devices::Outputs {
 public:
  Result<void> set(devices::Output output, bool on) override {
    state_[static_cast<std::size_t>(output)] = on;
    history.emplace_back(output, on);
    return success();
  }
  Result<void> set_all(const std::array<std::optional<bool>, devices::kOutputCount>& states) override {
    for (std::size_t i = 0; i < states.size(); ++i)
      if (states[i]) (void)set(static_cast<devices::Output>(i), *states[i]);
    return success();
  }
  Result<void> refresh() override { return success(); }
  bool commanded(devices::Output output) const override { return state_[static_cast<std::size_t>(output)]; }
  std::string describe() const override { return "fake outputs"; }

  std::vector<std::pair<devices::Output, bool>> history;

 private:
  std::array<bool, devices::kOutputCount> state_{};
};

class EdgeInproc : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cellguard-edge-inproc-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (edge_) edge_->shutdown();
    edge_.reset();
    peer_.reset();
    fs::remove_all(dir_);
  }

  // The project's rig.toml on `inproc:rig`: two modules, no board (fake outputs), a fake inverter,
  // no schedule, no recording; events and the operator socket in the test's folder.
  void start_edge(const std::function<void(toml::table&)>& change = {}) {
    auto parsed = toml::parse_file((source_dir() / "data/edge/rig.toml").string());
    toml::table config = std::move(parsed);
    config["edge"].as_table()->insert_or_assign("id", "inproc");
    config["can"].as_table()->insert_or_assign("url", "inproc:rig");
    config["can"].as_table()->insert_or_assign("dbc", (source_dir() / "data/cellguard-rig.dbc").string());
    config["modules"].as_table()->insert_or_assign("expected", 2);
    config["board"].as_table()->insert_or_assign("enabled", false);
    config["outputs"].as_table()->insert_or_assign("driver", "gpio");  // replaced by the fake below
    config["schedule"].as_table()->erase("file");
    config["recording"].as_table()->erase("path");
    config["recording"].as_table()->erase("csv_dir");
    config["operator"].as_table()->insert_or_assign("socket", (dir_ / "edge.sock").string());
    config["operator"].as_table()->insert_or_assign("events", (dir_ / "events.jsonl").string());
    // The pack's voltage limits scaled from the rig's 8 modules to these 2 (as the process tests do).
    const double scale = 2 / 8.0;
    auto* limits = config["inverter"]["limits"].as_table();
    limits->insert_or_assign("max_voltage_v", 384 * scale);
    limits->insert_or_assign("min_voltage_v", 264 * scale);
    auto* battery = config["safety"]["limits"]["inverter_battery_voltage"].as_table();
    battery->insert_or_assign("warning_high", 384 * scale);
    battery->insert_or_assign("dangerous_high", 390 * scale);
    battery->insert_or_assign("warning_low", 268 * scale);
    battery->insert_or_assign("dangerous_low", 264 * scale);
    battery->insert_or_assign("hysteresis", 0.2 * scale);
    if (change) change(config);
    const fs::path path = dir_ / "edge.toml";
    std::ofstream(path) << config;
    EdgeConfig edge_config;
    ConfigCheck check = load_edge_config(path.string(), edge_config);
    if (check.ok()) check = check_edge_config(edge_config);
    ASSERT_TRUE(check.ok()) << check.to_string();

    EdgeDevices devices;
    auto inverter = std::make_unique<FakeInverter>(io_);
    auto outputs = std::make_unique<FakeOutputs>();
    inverter_ = inverter.get();
    outputs_ = outputs.get();
    devices.inverter = std::move(inverter);
    devices.outputs = std::move(outputs);
    EdgeRunOptions options;
    options.ready_out = nullptr;
    options.handle_signals = false;
    edge_ = std::make_unique<EdgeLoop>(io_, std::move(edge_config), options, std::move(devices));
    ASSERT_TRUE(edge_->start().ok());
    start_modules();
  }

  // The simulator's two CANopen modules on the same bus: PDOs on every SYNC, SDO answers.
  void start_modules() {
    auto parsed = dbc::load_dbc((source_dir() / "data/cellguard-rig.dbc").string());
    ASSERT_TRUE(parsed.ok());
    codec_ = std::make_shared<const dbc::DatabaseCodec>(std::move(parsed->database));
    sim::PackConfig pack_config;
    pack_config.module_ids = {1, 2};
    pack_ = std::make_unique<sim::PackModel>(pack_config);
    auto modules = sim::CanopenModules::create(codec_, *pack_);
    ASSERT_TRUE(modules.ok());
    modules_ = std::move(modules.value());
    auto bus = can::open_bus(io_, "inproc:rig");
    ASSERT_TRUE(bus.ok());
    peer_ = std::move(bus.value());
    peer_->on_receive([this](const can::Frame& frame) {
      seen_.push_back(frame);
      std::vector<can::Frame> out;
      modules_->on_frame(frame, *pack_, out);
      for (const auto& f : out) (void)peer_->send(f);
    });
  }

  // Runs the loop until `done` or the bound (a few hundred ms), whichever first.
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds bound = 1500ms) {
    const auto until = std::chrono::steady_clock::now() + bound;
    while (!done()) {
      if (std::chrono::steady_clock::now() >= until || io_.stopped()) return done();
      io_.run_for(5ms);
    }
    return true;
  }

  std::vector<nlohmann::json> events() const {
    std::vector<nlohmann::json> list;
    std::ifstream in(dir_ / "events.jsonl");
    for (std::string line; std::getline(in, line);) list.push_back(nlohmann::json::parse(line));
    return list;
  }

  fs::path dir_;
  asio::io_context io_;
  std::unique_ptr<EdgeLoop> edge_;
  FakeInverter* inverter_ = nullptr;
  FakeOutputs* outputs_ = nullptr;
  std::shared_ptr<const dbc::DatabaseCodec> codec_;
  std::unique_ptr<sim::PackModel> pack_;
  std::unique_ptr<sim::CanopenModules> modules_;
  std::unique_ptr<can::Bus> peer_;
  std::vector<can::Frame> seen_;
};

// CiA 301 §7.2.5: the edge's SYNC carries the counter 1, 2, 3, ... every sync period; each module
// found gets the configured start-up SDO download (0x600 + node), which the modules answer.
TEST_F(EdgeInproc, SyncCountsAndEveryModuleGetsItsStartupSdo) {
  start_edge();
  ASSERT_TRUE(run_until([&] { return edge_->snapshot().can.counters.sdo_responses >= 2; }));
  std::vector<int> counters;
  std::vector<std::uint32_t> sdo_requests;
  for (const auto& f : seen_) {
    if (f.id == 0x080) counters.push_back(f.size == 1 ? f.data[0] : -1);
    if (const auto cob = canopen::classify(f.id); cob && cob->function == canopen::Function::sdo_request) {
      sdo_requests.push_back(f.id);
      EXPECT_EQ(std::vector<std::uint8_t>(f.payload().begin(), f.payload().end()),
                (std::vector<std::uint8_t>{0x2F, 0x05, 0x18, 0x01, 0, 0, 0, 0}));
    }
  }
  ASSERT_GE(counters.size(), 1u);
  for (std::size_t i = 0; i < counters.size(); ++i) EXPECT_EQ(counters[i], static_cast<int>(i + 1));
  std::sort(sdo_requests.begin(), sdo_requests.end());
  EXPECT_EQ(sdo_requests, (std::vector<std::uint32_t>{0x601, 0x602}));
  const StatusSnapshot s = edge_->snapshot();
  EXPECT_EQ(s.can.counters.sdo_sent, 2u);
  EXPECT_EQ(s.can.counters.sdo_aborts, 0u);
  EXPECT_EQ(s.can.counters.sync_sent, counters.size());
  EXPECT_EQ(s.safety.modules.size(), 2u);
  // What the modules wrote: object 0x1805 sub 1 = 0 on both.
  for (int node : {1, 2}) {
    const std::uint32_t* value = modules_->sdo_value(node, 0x1805, 1);
    ASSERT_NE(value, nullptr) << "node " << node;
    EXPECT_EQ(*value, 0u);
  }
}

// An SDO abort from a module is counted and reported with its CiA 301 name and text.
TEST_F(EdgeInproc, SdoAbortIsReportedByName) {
  start_edge();
  ASSERT_TRUE(run_until([&] { return edge_->snapshot().safety.modules.size() == 2; }));
  ASSERT_TRUE(peer_->send(canopen::sdo_abort(0x582, 0x1805, 1, 0x06010002)).ok());
  ASSERT_TRUE(run_until([&] { return edge_->snapshot().can.counters.sdo_aborts == 1; }));
  bool found = false;
  for (const auto& e : events()) {
    if (e.value("event", "") != "sdo_abort") continue;
    found = true;
    EXPECT_EQ(e["module"], 2);
    EXPECT_EQ(e["abort_code"], 0x06010002u);
    EXPECT_EQ(e["abort"], "write_read_only");
    EXPECT_EQ(e["index"], 0x1805);
    EXPECT_EQ(e["text"], "module 2: SDO abort: attempt to write a read-only object (SDO abort 0x06010002)");
  }
  EXPECT_TRUE(found);
}

// Decode dispatch -> supervisor -> actuator: a module's PDO with a cell above dangerous_high (4.2 V)
// turns the inverter off and opens the contactor relays, in that batch, before the events.
TEST_F(EdgeInproc, DangerousCellInAPdoTurnsTheInverterOffAndOpensTheContactors) {
  start_edge();
  ASSERT_TRUE(run_until([&] { return edge_->snapshot().safety.modules.size() == 2; }));
  inverter_->set_mode(devices::InverterMode::current);  // as if a schedule ran
  const std::size_t outputs_before = outputs_->history.size();
  ASSERT_TRUE(pack_->drift_cell(2, 5, 100.0, 4.35));
  pack_->step(0.1);
  ASSERT_TRUE(run_until([&] { return edge_->snapshot().safety.state == safety::State::dangerous; }));
  EXPECT_GE(inverter_->offs, 1);
  // The contactors open once the current is seen low (safety: contactor_open_current_a).
  inverter_->reading(pack_->pack_voltage_v(), 0.0);
  ASSERT_TRUE(run_until([&] { return outputs_->history.size() >= outputs_before + 3; }, 1000ms));
  std::set<devices::Output> opened;
  for (std::size_t i = outputs_before; i < outputs_->history.size(); ++i)
    if (!outputs_->history[i].second) opened.insert(outputs_->history[i].first);
  EXPECT_TRUE(opened.count(devices::Output::relay1) && opened.count(devices::Output::relay2) &&
              opened.count(devices::Output::relay3));
  // The action events carry the frame-to-action latency, measured from the offending frame.
  bool inverter_off_event = false;
  for (const auto& e : events()) {
    if (e.value("kind", "") == "action" && e.value("action", "") == "inverter_off") {
      inverter_off_event = true;
      EXPECT_TRUE(e.contains("latency_us")) << e.dump();
      EXPECT_TRUE(e.contains("frame_id")) << e.dump();
    }
  }
  EXPECT_TRUE(inverter_off_event);
  const StatusSnapshot s = edge_->snapshot();
  EXPECT_EQ(s.frame_to_action_latency["count"].get<std::uint64_t>() >= 1, true);
  ASSERT_FALSE(s.safety.causes.empty());
  EXPECT_EQ(s.safety.causes.front().quantity, safety::Quantity::cell_voltage);
  EXPECT_EQ(s.safety.causes.front().module_id, 2);
}

// The status JSON is built from the snapshot alone, and the operator protocol answers with it.
TEST_F(EdgeInproc, StatusJsonComesFromTheSnapshot) {
  start_edge();
  ASSERT_TRUE(run_until([&] { return edge_->snapshot().can.counters.module_frames >= 16; }));
  const StatusSnapshot s = edge_->snapshot();
  EXPECT_EQ(s.edge_id, "inproc");
  EXPECT_EQ(s.can.url, "inproc:rig");
  EXPECT_TRUE(s.can.connected);
  ASSERT_TRUE(s.outputs);
  EXPECT_EQ(s.outputs->driver, "fake outputs");
  ASSERT_TRUE(s.inverter);
  EXPECT_FALSE(s.board);
  EXPECT_FALSE(s.schedule);
  const nlohmann::json j = status_json(s);
  EXPECT_EQ(j["edge_id"], "inproc");
  EXPECT_EQ(j["can"]["module_frames"], s.can.counters.module_frames);
  EXPECT_EQ(j["modules"]["found"], 2);
  EXPECT_EQ(j["outputs"]["driver"], "fake outputs");
  EXPECT_EQ(j["contactors"]["text"].get<std::string>().rfind("commanded open", 0), 0u) << j["contactors"];
  const auto answer = nlohmann::json::parse(edge_->handle_control(R"({"cmd":"status"})"));
  EXPECT_EQ(answer["ok"], true);
  EXPECT_EQ(answer["status"]["edge_id"], "inproc");
  EXPECT_EQ(answer["status"]["can"]["url"], "inproc:rig");
  const auto unknown = nlohmann::json::parse(edge_->handle_control(R"({"cmd":"dance"})"));
  EXPECT_EQ(unknown["ok"], false);
}

// A stop with the inverter still running: the last mode-off is awaited on the loop (its
// confirmation is an event there), so the edge leaves as soon as it arrives.
TEST_F(EdgeInproc, StopWaitsForTheInverterOnTheLoopAndLeaves) {
  start_edge();
  ASSERT_TRUE(run_until([&] { return edge_->snapshot().safety.modules.size() == 2; }));
  inverter_->set_mode(devices::InverterMode::current);  // mode-off not yet confirmed when leaving
  const auto answer = nlohmann::json::parse(edge_->handle_control(R"({"cmd":"stop"})"));
  EXPECT_EQ(answer["stopping"], true);
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(run_until([&] { return edge_->left(); }, 3000ms));
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(took, 500ms) << "left on the confirmation, not after the 1 s bound";
  EXPECT_EQ(inverter_->stats().mode, devices::InverterMode::off);
  EXPECT_GE(inverter_->offs, 1);
  EXPECT_TRUE(inverter_->stopped);
  EXPECT_TRUE(io_.stopped());
}

// An inverter that never confirms: the wait is bounded (1 s) and does not block the loop meanwhile
// (other handlers, here the peer's frames, still run).
TEST_F(EdgeInproc, AnUnconfirmedInverterOffIsWaitedForAtMostASecond) {
  start_edge();
  ASSERT_TRUE(run_until([&] { return edge_->snapshot().safety.modules.size() == 2; }));
  inverter_->confirm_off = false;
  inverter_->set_mode(devices::InverterMode::current);
  edge_->request_stop();
  // The supervisor opens the contactors once the current is low; then the edge leaves.
  bool loop_ran = false;
  asio::post(io_, [&] { loop_ran = true; });
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(run_until([&] { return edge_->left(); }, 4000ms));
  EXPECT_TRUE(loop_ran);
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, 900ms) << "the 1 s bound for the confirmation";
  EXPECT_LT(took, 3500ms);
  EXPECT_TRUE(inverter_->stopped);
}

}  // namespace
}  // namespace cellguard::edge
