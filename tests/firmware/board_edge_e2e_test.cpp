// End to end (issue 7): `cellguard edge` as a process against the simulator's CAN and inverter
// (`cellguard sim`, socketcand and Modbus TCP) and the board firmware in simavr as the sensor board
// (its pty as the edge's board device). The edge detects the firmware's extension, heartbeats it,
// closes the contactors on `start`; then it is killed with SIGKILL and the time until the contactor
// pins drop is measured (must be < 600 ms).
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <toml++/toml.h>

#include "avr_board.h"
#include "serial_peer.h"
#include "ipc/line_socket.h"
#include "support/cellguard_process.h"
#include "support/child_process.h"
#include "support/rig_edge_config.h"

namespace cellguard::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

constexpr int kRelay2 = 3, kRelay1 = 5;  // main negative and main positive contactors (rig pins)

using testing::binary;
using testing::request;
using testing::source_dir;

class BoardEdgeE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cellguard-board-e2e-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::string error;
    board_ = AvrBoard::create(CELLGUARD_BOARD_ELF, error);
    ASSERT_TRUE(board_) << error;
    // About 22 °C on both thermistors (3400 Ω against 2200 Ω: 3.04 V), pressure sensor at 0.5 V.
    board_->set_analog_mv(0, 3036);
    board_->set_analog_mv(1, 3036);
    board_->set_analog_mv(2, 500);
    board_->start();
    sim_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{binary(), "sim", "--modules", "2", "--control", (dir_ / "sim.sock").string(),
                                 "--board-link", (dir_ / "sim-board").string(), "--inverter-tcp-port", "0"},
        (dir_ / "sim.log").string());
    ASSERT_TRUE(sim_->ready()) << sim_->log();
    // The wiring: the firmware's relay and cooling pins switch the simulated pack's contactors and
    // pump, through the simulator's board input (the simulated pack is where the DC link voltage
    // the precharge waits for comes from).
    wiring_ = std::make_unique<SerialPeer>((dir_ / "sim-board").string());
    ASSERT_TRUE(wiring_->is_open());
    wiring_thread_ = std::thread([this] {
      int forwarded = -1;
      while (wiring_running_) {
        const int now = board_->outputs();
        if (now != forwarded) {
          std::string command;
          for (int pin = 3; pin <= 7; ++pin) {
            if (pin > 3) command.push_back('&');
            command.push_back(static_cast<char>('0' + pin));
            command.append((now >> pin & 1) != 0 ? ":1" : ":0");
          }
          wiring_->send(command);
          forwarded = now;
        }
        wiring_->line(1ms);  // the simulator's lines are not needed: drop them
      }
    });
  }
  void TearDown() override {
    wiring_running_ = false;
    if (wiring_thread_.joinable()) wiring_thread_.join();
    edge_.reset();
    sim_.reset();
    board_.reset();
    if (!HasFailure()) fs::remove_all(dir_);
  }

  std::string write_config() {
    toml::table config = testing::rig_edge_config(sim_->ready_line(), dir_, 2, "board-e2e", board_->path());
    config["schedule"].as_table()->insert_or_assign("file",
                                                    (source_dir() / "data/edge/schedule-current-example.csv").string());
    config["schedule"].as_table()->insert_or_assign("autostart", false);
    config["recording"].as_table()->insert_or_assign("csv_dir", (dir_ / "csv").string());
    config["operator"].as_table()->insert_or_assign("events", (dir_ / "events.jsonl").string());
    const std::string path = (dir_ / "edge.toml").string();
    std::ofstream(path) << config << "\n";
    return path;
  }

  json edge_status() { return request((dir_ / "edge.sock").string(), {{"cmd", "status"}})["status"]; }
  std::string logs() const {
    return "--- edge log ---\n" + (edge_ ? edge_->log() : "") + "\n--- sim log ---\n" + (sim_ ? sim_->log() : "");
  }

  fs::path dir_;
  std::unique_ptr<AvrBoard> board_;
  std::unique_ptr<ChildProcess> sim_;
  std::unique_ptr<ChildProcess> edge_;
  std::unique_ptr<SerialPeer> wiring_;
  std::thread wiring_thread_;
  std::atomic<bool> wiring_running_{true};
};

TEST_F(BoardEdgeE2E, AKilledEdgeLeavesTheBatteryDisconnectedWithin600Ms) {
  edge_ = std::make_unique<ChildProcess>(std::vector<std::string>{binary(), "edge", "--config", write_config()},
                                         (dir_ / "edge.log").string());
  ASSERT_TRUE(edge_->ready()) << edge_->log();
  JsonLinesTail events((dir_ / "events.jsonl").string());
  // The edge finds the extension in the board's lines and heartbeats it.
  ASSERT_TRUE(wait_until([&] { return edge_status()["board"].value("extension", false); }, 10s)) << logs();
  ASSERT_TRUE(wait_until([&] { return edge_status()["board"].value("fail_safe", "") == "armed"; }, 5s))
      << edge_status()["board"].dump(2) << logs();
  ASSERT_TRUE(events.wait_for([](const json& e) { return e.value("link", "") == "board" && e.value("event", "") == "extension"; }, 5s));
  ASSERT_TRUE(wait_until([&] { return edge_status()["modules"].value("found", 0) == 2; }, 10s)) << logs();
  ASSERT_TRUE(wait_until([&] { return edge_status()["inverter"].value("phase", "") == "running"; }, 20s)) << logs();
  // Start: precharge through the board, then the main contactors close.
  json answer = request((dir_ / "edge.sock").string(), {{"cmd", "start"}});
  ASSERT_TRUE(answer.value("ok", false)) << answer.dump() << logs();
  ASSERT_TRUE(board_->wait_output(kRelay2, true, 20s)) << edge_status().dump(2) << logs();
  ASSERT_TRUE(board_->wait_output(kRelay1, true, 20s)) << edge_status().dump(2) << logs();
  // The read-back agreed with every command so far.
  ASSERT_TRUE(wait_until([&] { return edge_status()["board"].value("readbacks_ok", 0) > 0; }, 5s)) << logs();
  EXPECT_EQ(edge_status()["board"].value("readback_mismatches", -1), 0) << logs();
  EXPECT_EQ(edge_status()["board"].value("checksum_errors", -1), 0);
  EXPECT_TRUE(board_->output(kRelay1));

  const auto killed = std::chrono::steady_clock::now();
  EXPECT_EQ(edge_->kill_hard(), 128 + SIGKILL);
  auto positive = board_->wait_output(kRelay1, false, 2s);
  auto negative = board_->wait_output(kRelay2, false, 2s);
  ASSERT_TRUE(positive);
  ASSERT_TRUE(negative);
  const double positive_ms = std::chrono::duration<double, std::milli>(positive->wall - killed).count();
  const double negative_ms = std::chrono::duration<double, std::milli>(negative->wall - killed).count();
  std::printf("edge SIGKILL -> contactor pins low: main positive %.1f ms, main negative %.1f ms (wall clock); "
              "simulation lag at most %.1f ms\n",
              positive_ms, negative_ms, board_->max_lag_ms());
  EXPECT_LT(positive_ms, 600);
  EXPECT_LT(negative_ms, 600);
  EXPECT_FALSE(board_->output(4));  // the precharge relay too
}

}  // namespace
}  // namespace cellguard::testing
