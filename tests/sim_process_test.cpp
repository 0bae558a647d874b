// `cellguard sim` as a real process (issue 3, items 5..8), driven by independent peers:
// python-can's socketcand client (tests/peers/sim_rig_peer.py, Debian python3-can, its own decoder)
// for SYNC -> 8 PDOs and the rig's start-up SDO; our socketcand client for error frames and cyclic
// PDOs; the control socket for faults and status. Every wait is on a condition (ready line, frames,
// status), never a fixed sleep.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <asio.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "can/bus.h"
#include "ipc/line_socket.h"
#include "support/child_process.h"

namespace cellguard {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr const char* kPython = "/usr/bin/python3";  // Debian's, with python3-can

std::string binary() {
  // The harness sets CELLGUARD_BINARY; the build's own path is the fallback.
  const char* path = std::getenv("CELLGUARD_BINARY");
  return path && *path ? path : CELLGUARD_TEST_BINARY;
}

fs::path source_dir() {
  const char* dir = std::getenv("CELLGUARD_SOURCE_DIR");
  return dir ? dir : CELLGUARD_TEST_SOURCE_DIR;
}

fs::path temp_dir() {
  fs::path dir = fs::temp_directory_path() / ("cellguard-sim-test-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir;
}

// One `cellguard sim` child (support/child_process.h): started with arguments, its ready line read,
// SIGTERM at the end; requests over its control socket.
class SimProcess {
 public:
  explicit SimProcess(std::vector<std::string> args) {
    static int counter = 0;
    control_ = (temp_dir() / ("ctl-" + std::to_string(++counter) + ".sock")).string();
    const std::string log_path = (temp_dir() / ("sim-" + std::to_string(counter) + ".log")).string();
    fs::remove(log_path);
    args.insert(args.begin(), {binary(), "sim", "--control", control_});
    process_ = std::make_unique<testing::ChildProcess>(std::move(args), log_path);
  }

  // SIGTERM and the exit status (0 expected for a clean stop).
  int stop() { return process_->stop(); }
  bool ready() const { return process_->ready(); }
  const json& ready_line() const { return process_->ready_line(); }
  std::string log() const { return process_->log(); }
  const std::string& control_path() const { return control_; }

  // One request over the control socket.
  json control(const json& request) const {
    auto response = ipc::request_line(control_, request.dump(), 10000);
    if (!response) return json{{"ok", false}, {"error", response.error().message}};
    return json::parse(*response, nullptr, false);
  }

  json status() const { return control({{"cmd", "status"}})["status"]; }

  bool fault(json request) const {
    request["cmd"] = "fault";
    json response = control(request);
    EXPECT_TRUE(response.value("ok", false)) << response.dump();
    return response.value("ok", false);
  }

  // Polls the status until `condition` holds (each poll is a round trip to the simulator).
  bool wait_for(const std::function<bool(const json&)>& condition, double timeout_s = 20) const {
    const auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
    while (Clock::now() < deadline)
      if (condition(status())) return true;
    return false;
  }

  std::string can_host() const { return url_part(0); }
  std::string can_port() const { return url_part(1); }

 private:
  // socketcand://HOST:PORT/CHANNEL
  std::string url_part(int which) const {
    const std::string url = ready_line().value("can", "");
    const std::size_t host = url.find("://") + 3;
    const std::size_t colon = url.find(':', host);
    const std::size_t slash = url.find('/', colon);
    return which == 0 ? url.substr(host, colon - host) : url.substr(colon + 1, slash - colon - 1);
  }

  std::string control_;
  std::unique_ptr<testing::ChildProcess> process_;
};

// Runs the python-can peer: the rig's start-up SDO to `ids`, one SYNC, decoded answers.
json python_peer(const SimProcess& sim, const std::string& ids, double timeout_s = 10) {
  const std::string command = std::string(kPython) + " " +
                              (source_dir() / "tests/peers/sim_rig_peer.py").string() + " " + sim.can_host() +
                              " " + sim.can_port() + " can0 " + ids + " --timeout " +
                              std::to_string(timeout_s) + " 2>/dev/null";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return {};
  std::string out;
  char buffer[4096];
  while (std::size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) out.append(buffer, n);
  ::pclose(pipe);
  return json::parse(out, nullptr, false);
}

// Our socketcand client: optionally sends frames, then collects frames until `done` or timeout.
std::vector<can::Frame> collect(const SimProcess& sim, const std::vector<can::Frame>& to_send,
                                const std::function<bool(const std::vector<can::Frame>&)>& done,
                                double timeout_s = 10) {
  asio::io_context io;
  std::vector<can::Frame> frames;
  auto bus = can::open_bus(io, sim.ready_line().value("can", ""));
  if (!bus.ok()) return frames;
  (*bus)->on_receive([&](const can::Frame& frame) {
    frames.push_back(frame);
    if (done(frames)) io.stop();
  });
  (*bus)->on_ready([&] {
    for (const can::Frame& frame : to_send) (*bus)->send(frame).ok();
  });
  asio::steady_timer give_up(
      io, std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout_s)));
  give_up.async_wait([&](asio::error_code ec) {
    if (!ec) io.stop();
  });
  io.run();
  (*bus)->close();
  return frames;
}

can::Frame sync_frame() {
  can::Frame frame;
  frame.id = 0x080;
  frame.size = 1;
  return frame;
}

class SimProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (binary().empty()) GTEST_SKIP() << "CELLGUARD_BINARY is not set";
  }
};

TEST_F(SimProcessTest, PrintsOneReadyLineAndStopsCleanlyOnSigterm) {
  SimProcess sim({"--modules", "3"});
  ASSERT_TRUE(sim.ready()) << sim.log();
  const json& ready = sim.ready_line();
  EXPECT_TRUE(ready.value("can", "").starts_with("socketcand://127.0.0.1:"));
  EXPECT_EQ(ready["control"], sim.control_path());
  EXPECT_EQ(ready["modules"], json::array({1, 2, 3}));
  EXPECT_TRUE(ready.value("board", "").starts_with("/dev/pts/")) << ready.dump();  // the device parts
  EXPECT_TRUE(ready.value("inverter_rtu", "").starts_with("/dev/pts/"));
  EXPECT_TRUE(ready.value("inverter_tcp", "").starts_with("127.0.0.1:"));
  EXPECT_TRUE(fs::exists(sim.control_path()));
  EXPECT_EQ(sim.stop(), 0) << sim.log();
  EXPECT_FALSE(fs::exists(sim.control_path()));
}

TEST_F(SimProcessTest, PythonCanGetsEightPlausiblePdosFromEveryPresentModuleAndTheSdoAnswer) {
  SimProcess sim({"--module-ids", "1,2,5,9"});
  ASSERT_TRUE(sim.ready()) << sim.log();
  json peer = python_peer(sim, "1,2,5,9");
  ASSERT_TRUE(peer.is_object()) << "python peer failed";
  EXPECT_EQ(peer["pdo_counts"].size(), 32u) << peer["pdo_counts"].dump();
  for (const char* node : {"0x581", "0x582", "0x585", "0x589"})
    EXPECT_EQ(peer["sdo"].value(node, ""), std::string("60 05 18 01 00 00 00 00")) << node;
  for (const char* node : {"1", "2", "5", "9"}) {
    const json& m = peer["modules"][node];
    EXPECT_NEAR(m["voltage_v"].get<double>(), 47.3, 1.0) << node;  // 12 cells ≈ 3.94 V
    EXPECT_NEAR(m["current_a"].get<double>(), 0.0, 0.05);
    ASSERT_EQ(m["cells_v"].size(), 14u);
    for (int c = 0; c < 12; ++c) EXPECT_NEAR(m["cells_v"][c].get<double>(), 3.94, 0.06);
    EXPECT_NEAR(m["cells_v"][12].get<double>(), 2.2, 1e-9);  // unpopulated: raw 0
    EXPECT_NEAR(m["max_temp_c"].get<double>(), 22, 2);
    EXPECT_NEAR(m["soc_pct"].get<double>(), 78, 2);
  }
  EXPECT_EQ(peer["pdo_counts"].count("0x183"), 0u);  // absent module
  EXPECT_EQ(sim.status()["can"]["sdo_requests"], 4);
}

TEST_F(SimProcessTest, TheRigsOriginalDbcWorksThroughDbcOption) {
  // The rig's original file: CELLGUARD_SEED_DIR (set by CI), else shared/ beside the checkout.
  const char* seed_dir = std::getenv("CELLGUARD_SEED_DIR");
  const fs::path rig_dbc = (seed_dir != nullptr ? fs::path(seed_dir) : source_dir() / "../shared/seed") /
                           "Goodwood_15BMUs_IFSpecV3_Node.dbc";
  if (!fs::exists(rig_dbc)) GTEST_SKIP() << "no " << rig_dbc;
  SimProcess sim({"--modules", "8", "--dbc", rig_dbc.string()});
  ASSERT_TRUE(sim.ready()) << sim.log();
  json peer = python_peer(sim, "1,2,3,4,5,6,7,8");
  ASSERT_TRUE(peer.is_object());
  EXPECT_EQ(peer["pdo_counts"].size(), 64u);
  EXPECT_NEAR(peer["modules"]["8"]["voltage_v"].get<double>(), 47.3, 1.0);
}

TEST_F(SimProcessTest, ChargingThroughTheControlSocketShowsInThePdos) {
  SimProcess sim({"--modules", "2", "--speed", "100", "--no-inverter", "--no-board"});
  ASSERT_TRUE(sim.ready()) << sim.log();
  const double v0 = sim.status()["pack_voltage_v"];
  ASSERT_TRUE(sim.control({{"cmd", "drive"}, {"contactors", true}, {"current_a", -100}})["ok"].get<bool>());
  ASSERT_TRUE(sim.wait_for([](const json& s) { return s["pack_soc_pct"].get<double>() > 80; }));
  json peer = python_peer(sim, "1,2");
  EXPECT_NEAR(peer["modules"]["1"]["current_a"].get<double>(), -100, 0.1);
  EXPECT_GT(peer["modules"]["1"]["soc_pct"].get<double>(), 79.5);
  EXPECT_GT(2 * peer["modules"]["1"]["voltage_v"].get<double>(), v0);
}

TEST_F(SimProcessTest, EveryModuleAndPackFaultIsObservable) {
  SimProcess sim({"--modules", "8", "--speed", "20", "--no-inverter", "--no-board"});
  ASSERT_TRUE(sim.ready()) << sim.log();

  ASSERT_TRUE(sim.fault(
      {{"fault", "cell_drift"}, {"module", 2}, {"cell", 3}, {"rate_v_per_s", 0.5}, {"target_v", 4.3}}));
  ASSERT_TRUE(
      sim.fault({{"fault", "module_overtemp"}, {"module", 3}, {"rate_c_per_s", 5}, {"target_c", 70}}));
  ASSERT_TRUE(sim.wait_for([](const json& s) {
    return s["modules"][1]["max_cell_v"].get<double>() > 4.29 &&
           s["modules"][2]["temperature_c"].get<double>() > 69.5;
  }));
  EXPECT_GE(sim.status()["can"]["emergencies"].get<int>(), 2);  // over-voltage and over-temperature EMCYs
  ASSERT_TRUE(sim.fault({{"fault", "module_silent"}, {"module", 4}}));
  ASSERT_TRUE(sim.fault({{"fault", "module_truncated"}, {"module", 5}}));
  ASSERT_TRUE(sim.fault({{"fault", "module_frozen"}, {"module", 7}}));
  ASSERT_TRUE(sim.fault({{"fault", "module_garbage"}, {"module", 6}}));
  ASSERT_TRUE(sim.control({{"cmd", "drive"}, {"contactors", true}, {"current_a", 200}})["ok"].get<bool>());

  json first = python_peer(sim, "1,2,3,5,6,7,8");
  ASSERT_TRUE(first.is_object());
  EXPECT_NEAR(first["modules"]["2"]["max_cell_v"].get<double>(), 4.3, 0.011);
  EXPECT_NEAR(first["modules"]["2"]["cells_v"][2].get<double>(), 4.3, 0.011);
  EXPECT_EQ(first["modules"]["2"]["status"].get<int>() & 1, 1);  // CMA_Status: cell over-voltage
  EXPECT_GE(first["modules"]["3"]["max_temp_c"].get<double>(), 69);
  EXPECT_EQ(first["modules"]["3"]["status"].get<int>() & 4, 4);  // CMA_Status: over-temperature
  EXPECT_EQ(first["lengths"].value("0x185", 0), 3);              // truncated
  EXPECT_EQ(first["lengths"].value("0x495", 0), 3);
  const double t0 = sim.status()["time_s"];
  ASSERT_TRUE(sim.wait_for([&](const json& s) { return s["time_s"].get<double>() > t0 + 20; }));
  json second = python_peer(sim, "1,2,3,5,6,7,8");
  ASSERT_TRUE(second.is_object());
  EXPECT_EQ(first["raw"]["0x187"], second["raw"]["0x187"]);  // frozen
  EXPECT_EQ(first["raw"]["0x197"], second["raw"]["0x197"]);
  EXPECT_NE(first["raw"]["0x181"], second["raw"]["0x181"]);  // a live module moved on (200 A)
  EXPECT_NE(first["raw"]["0x196"], second["raw"]["0x196"]);  // garbage
  EXPECT_EQ(second["pdo_counts"].count("0x184"), 0u);        // silent
  EXPECT_EQ(second["sdo"].count("0x584"), 0u);

  ASSERT_TRUE(
      sim.control({{"cmd", "drive"}, {"pump", true}, {"fan", true}, {"current_a", 0}})["ok"].get<bool>());
  EXPECT_GT(sim.status()["coolant_pressure_bar"].get<double>(), 1.0);
  ASSERT_TRUE(sim.fault({{"fault", "pump_failure"}}));
  ASSERT_TRUE(sim.fault({{"fault", "insulation_fault"}}));
  json status = sim.status();
  EXPECT_FALSE(status["pump_running"].get<bool>());
  EXPECT_LT(status["coolant_pressure_bar"].get<double>(), 0.5);
  EXPECT_TRUE(status["insulation_fault"].get<bool>());

  ASSERT_TRUE(sim.fault({{"fault", "bus_error_storm"}, {"duration_s", 20}, {"rate_per_s", 2000}}));
  std::vector<can::Frame> frames = collect(sim, {}, [](const std::vector<can::Frame>& f) {
    return std::count_if(f.begin(), f.end(), [](const can::Frame& x) { return x.error; }) >= 50;
  });
  EXPECT_GE(std::count_if(frames.begin(), frames.end(), [](const can::Frame& x) { return x.error; }), 50);

  ASSERT_TRUE(sim.fault({{"fault", "clear"}}));
  status = sim.status();
  EXPECT_FALSE(status["insulation_fault"].get<bool>());
  EXPECT_TRUE(status["pump_running"].get<bool>());
  json after = python_peer(sim, "1,2,3,4,5,6,7,8");
  EXPECT_EQ(after["pdo_counts"].size(), 64u);
  EXPECT_EQ(after["lengths"].value("0x185", 0), 8);
  EXPECT_LT(after["modules"]["2"]["max_cell_v"].get<double>(), 4.1);
  EXPECT_FALSE(sim.control({{"cmd", "fault"}, {"fault", "cell_drift"}, {"module", 12}, {"cell", 1}})["ok"]
                   .get<bool>());
  EXPECT_EQ(sim.stop(), 0) << sim.log();
}

TEST_F(SimProcessTest, AScenarioFilePlaysItsStepsInSimulatedTime) {
  const fs::path scenario = temp_dir() / "scenario.toml";
  std::ofstream(scenario) << "# module 1 falls silent at 5 s, insulation fault at 10 s\n"
                             "[[step]]\nat_s = 10\nfault = \"insulation_fault\"\n\n"
                             "[[step]]\nat_s = 5\nfault = \"module_silent\"\nmodule = 1\n";
  SimProcess sim({"--modules", "2", "--speed", "50", "--scenario", scenario.string()});
  ASSERT_TRUE(sim.ready()) << sim.log();
  ASSERT_TRUE(sim.wait_for([](const json& s) { return s["insulation_fault"].get<bool>(); }));
  json status = sim.status();
  EXPECT_TRUE(status["modules"][0]["silent"].get<bool>());
  EXPECT_EQ(status["faults_applied"], json::array({"module_silent", "insulation_fault"}));
}

TEST_F(SimProcessTest, ABadScenarioStopsTheStartWithAReason) {
  const fs::path scenario = temp_dir() / "bad.toml";
  std::ofstream(scenario) << "[[step]]\nat_s = 1\nfault = \"cell_drift\"\nmodule = 12\ncell = 1\n";
  SimProcess sim({"--modules", "2", "--scenario", scenario.string()});
  EXPECT_FALSE(sim.ready());
  EXPECT_EQ(sim.stop(), 1);
  EXPECT_NE(sim.log().find("module 12"), std::string::npos) << sim.log();
}

TEST_F(SimProcessTest, CyclicModeSendsPdosWithoutSync) {
  SimProcess sim({"--modules", "2", "--cyclic-ms", "100"});
  ASSERT_TRUE(sim.ready()) << sim.log();
  std::vector<can::Frame> frames =
      collect(sim, {}, [](const std::vector<can::Frame>& f) { return f.size() >= 32; });
  ASSERT_GE(frames.size(), 32u);
  std::map<std::uint32_t, int> counts;
  for (const can::Frame& f : frames) ++counts[f.id];
  EXPECT_GE(counts[0x181], 2);
  EXPECT_GE(counts[0x492], 1);
}

TEST_F(SimProcessTest, SyncFromOurOwnSocketcandClientIsAnsweredToo) {
  SimProcess sim({"--modules", "15"});
  ASSERT_TRUE(sim.ready()) << sim.log();
  std::vector<can::Frame> frames =
      collect(sim, {sync_frame()}, [](const std::vector<can::Frame>& f) { return f.size() >= 120; });
  EXPECT_EQ(frames.size(), 120u);
}

TEST_F(SimProcessTest, TheCtlSubcommandSendsFaultsAndReportsFailures) {
  SimProcess sim({"--modules", "2"});
  ASSERT_TRUE(sim.ready()) << sim.log();
  const std::string ctl = binary() + " sim ctl --socket " + sim.control_path() + " ";
  EXPECT_EQ(std::system((ctl + "fault module_silent module=2 >/dev/null").c_str()), 0);
  EXPECT_TRUE(sim.status()["modules"][1]["silent"].get<bool>());
  EXPECT_NE(std::system((ctl + "fault no_such_fault >/dev/null").c_str()), 0);
  EXPECT_EQ(std::system((ctl + "status >/dev/null").c_str()), 0);
}

}  // namespace
}  // namespace cellguard
