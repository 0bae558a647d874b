// End to end (issue 7): `cellguard edge` as a process against the simulator's CAN and inverter
// (`cellguard sim`, socketcand and Modbus TCP) and the board firmware in simavr as the sensor board
// (its pty as the edge's board device). The edge detects the firmware's extension, heartbeats it,
// closes the contactors on `start`; then it is killed with SIGKILL and the time until the contactor
// pins drop is measured (must be < 600 ms). Issue 13 item 4: the board's own fail-safe (heartbeat
// timeout, ground-fault input) and its watchdog reset reach the supervisor (SAFE with that cause),
// and after a reset the edge sends the commanded outputs again and verifies them by read-back.
#include <gtest/gtest.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "avr_board.h"
#include "ipc/line_socket.h"
#include "serial_peer.h"
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
    board_ = AvrBoard::create(elf(), error);
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
  virtual std::string elf() const { return CELLGUARD_BOARD_ELF; }
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
    config["schedule"].as_table()->insert_or_assign(
        "file", (source_dir() / "data/edge/schedule-current-example.csv").string());
    config["schedule"].as_table()->insert_or_assign("autostart", false);
    config["recording"].as_table()->insert_or_assign("csv_dir", (dir_ / "csv").string());
    config["operator"].as_table()->insert_or_assign("events", (dir_ / "events.jsonl").string());
    const std::string path = (dir_ / "edge.toml").string();
    std::ofstream(path) << config << "\n";
    return path;
  }

  json edge_status() { return request((dir_ / "edge.sock").string(), {{"cmd", "status"}})["status"]; }
  std::string logs() const {
    return "--- edge log ---\n" + (edge_ ? edge_->log() : "") + "\n--- sim log ---\n" +
           (sim_ ? sim_->log() : "");
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
  edge_ = std::make_unique<ChildProcess>(
      std::vector<std::string>{binary(), "edge", "--config", write_config()}, (dir_ / "edge.log").string());
  ASSERT_TRUE(edge_->ready()) << edge_->log();
  JsonLinesTail events((dir_ / "events.jsonl").string());
  // The edge finds the extension in the board's lines and heartbeats it.
  ASSERT_TRUE(wait_until([&] { return edge_status()["board"].value("extension", false); }, 10s)) << logs();
  ASSERT_TRUE(wait_until([&] { return edge_status()["board"].value("fail_safe", "") == "armed"; }, 5s))
      << edge_status()["board"].dump(2) << logs();
  ASSERT_TRUE(events.wait_for(
      [](const json& e) { return e.value("link", "") == "board" && e.value("event", "") == "extension"; },
      5s));
  ASSERT_TRUE(wait_until([&] { return edge_status()["modules"].value("found", 0) == 2; }, 10s)) << logs();
  ASSERT_TRUE(wait_until([&] { return edge_status()["inverter"].value("phase", "") == "running"; }, 20s))
      << logs();
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
  std::printf(
      "edge SIGKILL -> contactor pins low: main positive %.1f ms, main negative %.1f ms (wall clock); "
      "simulation lag at most %.1f ms\n",
      positive_ms, negative_ms, board_->max_lag_ms());
  EXPECT_LT(positive_ms, 600);
  EXPECT_LT(negative_ms, 600);
  EXPECT_FALSE(board_->output(4));  // the precharge relay too
}

// With the test build of the firmware (its `X` hangs the main loop: a watchdog reset).
class BoardFeedbackE2E : public BoardEdgeE2E {
 protected:
  std::string elf() const override { return CELLGUARD_BOARD_TEST_ELF; }
  json request_edge(const json& req) { return request((dir_ / "edge.sock").string(), req); }
  // Start (precharge) and wait until the main contactors are closed.
  void close_contactors() {
    json answer = request_edge({{"cmd", "start"}});
    ASSERT_TRUE(answer.value("ok", false)) << answer.dump() << logs();
    ASSERT_TRUE(board_->wait_output(kRelay1, true, 20s)) << edge_status().dump(2) << logs();
  }
  std::string state_reason() { return edge_status()["state_reason"].value("text", ""); }
};

TEST_F(BoardFeedbackE2E, TheBoardsOwnOpeningGivesSafeWithItsCauseAndAResetIsResentAndVerified) {
  // About 40 °C on the board's thermistors: pump and fan on (hot_c 30 °C), so a reset has
  // something to restore besides the (open) relays.
  board_->set_analog_mv(0, 1944);
  board_->set_analog_mv(1, 1944);
  edge_ = std::make_unique<ChildProcess>(
      std::vector<std::string>{binary(), "edge", "--config", write_config()}, (dir_ / "edge.log").string());
  ASSERT_TRUE(edge_->ready()) << edge_->log();
  JsonLinesTail events((dir_ / "events.jsonl").string());
  ASSERT_TRUE(wait_until([&] { return edge_status()["board"].value("fail_safe", "") == "armed"; }, 10s))
      << logs();
  ASSERT_TRUE(wait_until([&] { return edge_status()["modules"].value("found", 0) == 2; }, 10s)) << logs();
  ASSERT_TRUE(wait_until([&] { return edge_status()["inverter"].value("phase", "") == "running"; }, 20s))
      << logs();
  ASSERT_TRUE(board_->wait_output(6, true, 5s)) << logs();  // pump (and fan) on: hot
  ASSERT_TRUE(board_->wait_output(7, true, 1s));

  // 1. The heartbeat stops (the edge frozen for 0.8 s, beyond the board's 500 ms): the board opens
  // the relays; the edge, running again, goes SAFE with that cause.
  close_contactors();
  ::kill(edge_->pid(), SIGSTOP);
  ASSERT_TRUE(board_->wait_output(kRelay1, false, 2s));
  std::this_thread::sleep_for(300ms);
  ::kill(edge_->pid(), SIGCONT);
  ASSERT_TRUE(wait_until([&] { return edge_status().value("state", "") == "safe"; }, 5s)) << logs();
  EXPECT_NE(state_reason().find("board opened the relays: heartbeat timeout"), std::string::npos)
      << state_reason();
  const std::size_t before_stop = events.poll().size();
  ASSERT_TRUE(events.wait_for(
      [](const json& e) {
        return e.value("event", "") == "relays_opened" && e.value("detail", "") == "hb_lost";
      },
      2s));
  // The read-back confirms the relays open as now commanded: the cause clears, a reset is accepted.
  std::size_t opened_at = 0;
  for (std::size_t i = 0; i < events.all().size(); ++i)
    if (events.all()[i].value("event", "") == "relays_opened") opened_at = i;
  ASSERT_TRUE(events.wait_for([](const json& e) { return e.value("event", "") == "outputs_verified"; }, 5s,
                              opened_at))
      << logs();
  (void)before_stop;
  json answer = request_edge({{"cmd", "reset"}});
  ASSERT_TRUE(answer.value("ok", false)) << answer.dump() << logs();

  // 2. The ground-fault input: the board opens the relays itself (edge closed them again first).
  close_contactors();
  const std::size_t before_fault = events.poll().size();
  board_->set_digital_input(2, false);  // the insulation monitor's contact closes to GND: alarm
  ASSERT_TRUE(board_->wait_output(kRelay1, false, 2s));
  ASSERT_TRUE(wait_until([&] { return edge_status().value("state", "") == "safe"; }, 5s)) << logs();
  EXPECT_NE(state_reason().find("board opened the relays: ground-fault input"), std::string::npos)
      << state_reason();
  EXPECT_EQ(edge_status()["board"].value("fail_safe", ""), "gnd_fault");
  ASSERT_TRUE(events.wait_for([](const json& e) { return e.value("event", "") == "outputs_verified"; }, 5s,
                              before_fault))
      << logs();
  board_->set_digital_input(2, true);

  // 3. A watchdog reset: every output drops; the edge sends the commanded state again (pump and
  // fan on, relays open: it is SAFE) and verifies it by read-back.
  const json board_before = edge_status()["board"];
  const std::size_t before_reset = events.poll().size();
  board_->inject_input("X");
  ASSERT_TRUE(board_->wait_output(6, false, 2s));  // the reset dropped the pump
  ASSERT_TRUE(events.wait_for(
      [](const json& e) { return e.value("event", "") == "reset" && e.value("cause", "") == "wdt"; }, 3s,
      before_reset))
      << logs();
  ASSERT_TRUE(board_->wait_output(6, true, 3s)) << logs();  // re-sent
  ASSERT_TRUE(board_->wait_output(7, true, 1s));
  ASSERT_TRUE(events.wait_for([](const json& e) { return e.value("event", "") == "outputs_verified"; }, 5s,
                              before_reset))
      << logs();
  const json board_after = edge_status()["board"];
  EXPECT_EQ(board_after.value("watchdog_resets", 0), board_before.value("watchdog_resets", 0) + 1);
  EXPECT_GT(board_after.value("readbacks_ok", 0), board_before.value("readbacks_ok", 0));
  EXPECT_EQ(board_->outputs() & ((1 << 3) | (1 << 4) | (1 << 5)), 0);  // SAFE: the relays stay open
  EXPECT_EQ(edge_status().value("state", ""), "safe");
}

}  // namespace
}  // namespace cellguard::testing
