// The board firmware (firmware/board/board.c) in simavr: the built ELF on a simulated ATmega328P at
// 16 MHz, its UART on a pty opened like /dev/ttyACM0, simulated time locked to the wall clock.
// Sensor lines against injected voltages, pin commands, checksums and read-back, the heartbeat
// fail-safe and its timing, the AVR watchdog against a hung main loop (test build with `X`).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <thread>

#include "avr_board.h"
#include "devices/board_link.h"
#include "serial_peer.h"

namespace cellguard::testing {
namespace {

using namespace std::chrono_literals;

// Pins of the rig's wiring.
constexpr int kRelay2 = 3, kRelay3 = 4, kRelay1 = 5, kPump = 6, kFan = 7;

struct Firmware {
  explicit Firmware(const char* elf = CELLGUARD_BOARD_ELF) {
    std::string error;
    board = AvrBoard::create(elf, error);
    if (!board) {
      ADD_FAILURE() << error;
      return;
    }
    peer = std::make_unique<SerialPeer>(board->path());
    EXPECT_TRUE(peer->is_open()) << board->path();
    board->start();
  }
  std::unique_ptr<AvrBoard> board;
  std::unique_ptr<SerialPeer> peer;

  std::optional<BoardFields> hello() {
    return peer->line_where([](const BoardFields& f) { return f.count("Ardu_Hello") != 0; });
  }
  // A fresh status line (the `?` answer): the read-back after the commands sent before it.
  std::optional<BoardFields> status() {
    peer->send("?");
    return peer->line_where([](const BoardFields& f) { return f.count("Ardu_Re") != 0; }, 2000ms);
  }
};

// Sends a heartbeat every period from its own thread until destroyed.
class Heartbeats {
 public:
  Heartbeats(SerialPeer& peer, std::chrono::milliseconds period = 100ms)
      : thread_([this, &peer, period] {
          while (running_) {
            peer.send("H");
            std::this_thread::sleep_for(period);
          }
        }) {}
  ~Heartbeats() { stop(); }
  void stop() {
    running_ = false;
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::atomic<bool> running_{true};
  std::thread thread_;
};

int expected_counts(int millivolts) { return millivolts * 1024 / 5000; }

TEST(BoardFirmware, StartsWithEveryOutputLowAndAHelloLineThatTheRigParserAccepts) {
  Firmware fw;
  ASSERT_TRUE(fw.board);
  auto hello = fw.hello();
  ASSERT_TRUE(hello);
  EXPECT_EQ((*hello)["Ardu_Hello"], "cellguard-board/1");
  EXPECT_EQ((*hello)["Ardu_Reset"], "por");
  EXPECT_EQ(fw.peer->bad_checksums(), 0);
  EXPECT_EQ(fw.board->outputs(), 0);
  auto status = fw.status();
  ASSERT_TRUE(status);
  EXPECT_EQ((*status)["Ardu_Out"], "00");
  EXPECT_EQ((*status)["Ardu_Fs"], "off");
  EXPECT_EQ((*status)["Ardu_Hb"], "500");
}

TEST(BoardFirmware, SensorLinesCarryTheCountsOfTheInjectedVoltages) {
  Firmware fw;
  ASSERT_TRUE(fw.board);
  fw.board->set_analog_mv(0, 1000);
  fw.board->set_analog_mv(1, 2500);
  fw.board->set_analog_mv(2, 4000);
  const auto matches = [](const BoardFields& f, int t1, int t2, int p) {
    const auto near = [&](const char* name, int mv) {
      return f.count(name) && std::abs(std::stoi(f.at(name)) - expected_counts(mv)) <= 1;
    };
    return near("Ardu_Temp1", t1) && near("Ardu_Temp2", t2) && near("Ardu_Press", p);
  };
  // The periodic lines (about once a second) follow the inputs.
  auto line = fw.peer->line_where(
      [&](const BoardFields& f) { return f.count("Ardu_Fs") && matches(f, 1000, 2500, 4000); });
  ASSERT_TRUE(line);
  fw.board->set_analog_mv(0, 4900);
  fw.board->set_analog_mv(1, 100);
  fw.board->set_analog_mv(2, 500);
  const auto before = std::chrono::steady_clock::now();
  line = fw.peer->line_where(
      [&](const BoardFields& f) { return f.count("Ardu_Fs") && matches(f, 4900, 100, 500); });
  ASSERT_TRUE(line);
  EXPECT_LT(std::chrono::steady_clock::now() - before, 2500ms);
  EXPECT_EQ(fw.peer->bad_checksums(), 0);

  // The edge's own parser of the rig's line reads the extended line as a valid reading.
  fw.peer->send("?");
  auto text = fw.peer->line(2000ms);
  ASSERT_TRUE(text);
  auto reading = devices::parse_board_line(*text, devices::BoardConversion{}, MonoTime{});
  ASSERT_TRUE(reading) << reading.error().message << " in " << *text;
  EXPECT_NEAR(reading->temp1_adc, expected_counts(4900), 1);
  EXPECT_NEAR(reading->pressure_adc, expected_counts(500), 1);
}

TEST(BoardFirmware, CommandsSwitchTheRightPinsAndTheReadBackShowsThem) {
  Firmware fw;
  ASSERT_TRUE(fw.board);
  ASSERT_TRUE(fw.hello());
  fw.peer->send("6:1&7:1");
  ASSERT_TRUE(fw.board->wait_output(kPump, true, 1s));
  ASSERT_TRUE(fw.board->wait_output(kFan, true, 1s));
  EXPECT_EQ(fw.board->outputs(), (1 << kPump) | (1 << kFan));
  // Two commands back to back, no terminator: `5:1` then `3:1` arrive as `5:13:1`.
  fw.peer->send("5:1");
  fw.peer->send("3:1");
  ASSERT_TRUE(fw.board->wait_output(kRelay2, true, 1s));
  ASSERT_TRUE(fw.board->wait_output(kRelay1, true, 1s));
  EXPECT_FALSE(fw.board->output(kRelay3));
  auto status = fw.status();
  ASSERT_TRUE(status);
  EXPECT_EQ(std::stoi((*status)["Ardu_Out"], nullptr, 16),
            (1 << kPump) | (1 << kFan) | (1 << kRelay1) | (1 << kRelay2));
  // Pins that are not outputs of the board, garbage and values other than 0/1 change nothing.
  fw.peer->send("2:1&9:1&12:1&xyz&4:7&0:1&1:1");
  status = fw.status();
  ASSERT_TRUE(status);
  EXPECT_EQ(std::stoi((*status)["Ardu_Out"], nullptr, 16),
            (1 << kPump) | (1 << kFan) | (1 << kRelay1) | (1 << kRelay2));
  fw.peer->send("4:1");
  ASSERT_TRUE(fw.board->wait_output(kRelay3, true, 1s));
  fw.peer->send("3:0&4:0&5:0&6:0&7:0");
  for (int pin : {kRelay2, kRelay3, kRelay1, kPump, kFan})
    EXPECT_TRUE(fw.board->wait_output(pin, false, 1s)) << pin;
  status = fw.status();
  ASSERT_TRUE(status);
  EXPECT_EQ((*status)["Ardu_Out"], "00");
  EXPECT_EQ(fw.peer->bad_checksums(), 0);
}

TEST(BoardFirmware, WithoutHeartbeatsTheBoardBehavesLikeTheRigSketchAndNeverTrips) {
  Firmware fw;
  ASSERT_TRUE(fw.board);
  ASSERT_TRUE(fw.hello());
  fw.peer->send("5:1&3:1");
  ASSERT_TRUE(fw.board->wait_output(kRelay1, true, 1s));
  // Well past the heartbeat timeout: an old edge never sends one, so the fail-safe is not armed.
  auto later = fw.peer->line_where([](const BoardFields&) { return false; }, 1500ms);
  EXPECT_FALSE(later);
  EXPECT_TRUE(fw.board->output(kRelay1));
  EXPECT_TRUE(fw.board->output(kRelay2));
  auto status = fw.status();
  ASSERT_TRUE(status);
  EXPECT_EQ((*status)["Ardu_Fs"], "off");
}

TEST(BoardFirmware, MissingHeartbeatsOpenTheRelaysBetween500And600MsKeepCoolingOnAndSayWhy) {
  Firmware fw;
  ASSERT_TRUE(fw.board);
  ASSERT_TRUE(fw.hello());
  fw.peer->send("6:1&7:1&5:1&3:1&4:1");
  ASSERT_TRUE(fw.board->wait_output(kRelay3, true, 1s));
  fw.peer->send("H");  // the first heartbeat arms the fail-safe
  auto heartbeats = std::make_unique<Heartbeats>(*fw.peer);
  auto armed = fw.status();
  ASSERT_TRUE(armed);
  EXPECT_EQ((*armed)["Ardu_Fs"], "armed");
  std::this_thread::sleep_for(1s);  // heartbeats hold the relays closed
  EXPECT_TRUE(fw.board->output(kRelay1));
  heartbeats.reset();  // the host stops
  const auto stopped = std::chrono::steady_clock::now();
  auto drop = fw.board->wait_output(kRelay1, false, 2s);
  ASSERT_TRUE(drop);
  auto last = fw.board->last_input_byte_s('H');
  ASSERT_TRUE(last);
  const double trip_ms = (drop->sim_s - *last) * 1000;
  const double wall_ms = std::chrono::duration<double, std::milli>(drop->wall - stopped).count();
  std::printf(
      "board fail-safe: relays open %.1f ms (simulated) after the last heartbeat reached the UART, "
      "%.1f ms (wall) after the host stopped; simulation lag at most %.1f ms\n",
      trip_ms, wall_ms, fw.board->max_lag_ms());
  EXPECT_GE(trip_ms, 500);
  EXPECT_LE(trip_ms, 600);
  EXPECT_LE(wall_ms, 600 + 100);  // plus at most one heartbeat period before the host stopped
  EXPECT_FALSE(fw.board->output(kRelay2));
  EXPECT_FALSE(fw.board->output(kRelay3));
  EXPECT_TRUE(fw.board->output(kPump));
  EXPECT_TRUE(fw.board->output(kFan));
  auto why = fw.peer->line_where(
      [](const BoardFields& f) { return f.count("Ardu_Fs") && f.at("Ardu_Fs") == "hb_lost"; });
  ASSERT_TRUE(why);
  EXPECT_EQ(std::stoi((*why)["Ardu_Out"], nullptr, 16), (1 << kPump) | (1 << kFan));
  EXPECT_EQ(fw.peer->bad_checksums(), 0);
}

TEST(BoardFirmware, AfterATripRelaysCloseOnlyAfterHeartbeatsResumeAndAnExplicitReArm) {
  Firmware fw;
  ASSERT_TRUE(fw.board);
  ASSERT_TRUE(fw.hello());
  fw.peer->send("H5:1");
  ASSERT_TRUE(fw.board->wait_output(kRelay1, true, 1s));
  ASSERT_TRUE(fw.board->wait_output(kRelay1, false, 2s));  // no more heartbeats: trip
  // Closing is refused while tripped; re-arming is refused without fresh heartbeats.
  fw.peer->send("5:1");
  auto status = fw.status();
  ASSERT_TRUE(status);
  EXPECT_EQ((*status)["Ardu_Fs"], "hb_lost");
  EXPECT_FALSE(fw.board->output(kRelay1));
  fw.peer->send("R");
  status = fw.peer->line_where([](const BoardFields& f) { return f.count("Ardu_Re") != 0; }, 2000ms);
  ASSERT_TRUE(status);
  EXPECT_EQ((*status)["Ardu_Fs"], "hb_lost");
  // Heartbeats resume: still open (no implicit re-close), until R and a new close command.
  Heartbeats heartbeats(*fw.peer);
  std::this_thread::sleep_for(300ms);
  EXPECT_FALSE(fw.board->output(kRelay1));
  fw.peer->send("R");
  status = fw.peer->line_where([](const BoardFields& f) { return f.count("Ardu_Re") != 0; }, 2000ms);
  ASSERT_TRUE(status);
  EXPECT_EQ((*status)["Ardu_Fs"], "armed");
  fw.peer->send("5:1");
  EXPECT_TRUE(fw.board->wait_output(kRelay1, true, 1s));
}

TEST(BoardFirmware, TheHeartbeatTimeoutIsConfigurable) {
  Firmware fw;
  ASSERT_TRUE(fw.board);
  ASSERT_TRUE(fw.hello());
  fw.peer->send("T0200");
  auto status = fw.peer->line_where([](const BoardFields& f) { return f.count("Ardu_Re") != 0; }, 2000ms);
  ASSERT_TRUE(status);
  EXPECT_EQ((*status)["Ardu_Hb"], "200");
  fw.peer->send("T9999");  // outside 100..5000 ms: refused
  status = fw.peer->line_where([](const BoardFields& f) { return f.count("Ardu_Re") != 0; }, 2000ms);
  ASSERT_TRUE(status);
  EXPECT_EQ((*status)["Ardu_Hb"], "200");
  fw.peer->send("3:1H");
  ASSERT_TRUE(fw.board->wait_output(kRelay2, true, 1s));
  auto drop = fw.board->wait_output(kRelay2, false, 2s);
  ASSERT_TRUE(drop);
  const double trip_ms = (drop->sim_s - *fw.board->last_input_byte_s('H')) * 1000;
  EXPECT_GE(trip_ms, 200);
  EXPECT_LE(trip_ms, 300);
}

TEST(BoardFirmware, GroundFaultInputIsReportedAtOnce) {
  Firmware fw;
  ASSERT_TRUE(fw.board);
  auto hello = fw.hello();
  ASSERT_TRUE(hello);
  EXPECT_EQ((*hello)["Ardu_GndFault"], "0");
  fw.board->set_digital_input(2, false);  // the insulation monitor closes its alarm contact
  const auto t0 = std::chrono::steady_clock::now();
  auto fault = fw.peer->line_where(
      [](const BoardFields& f) { return f.count("Ardu_GndFault") && f.at("Ardu_GndFault") == "1"; });
  ASSERT_TRUE(fault);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 500ms);  // not only with the next periodic line
  fw.board->set_digital_input(2, true);
  EXPECT_TRUE(fw.peer->line_where(
      [](const BoardFields& f) { return f.count("Ardu_GndFault") && f.at("Ardu_GndFault") == "0"; }));
}

TEST(BoardFirmware, AHungMainLoopIsResetByTheWatchdogWithTheRelaysOpen) {
  Firmware fw(CELLGUARD_BOARD_TEST_ELF);
  ASSERT_TRUE(fw.board);
  ASSERT_TRUE(fw.hello());
  fw.peer->send("6:1&5:1&3:1&4:1");
  ASSERT_TRUE(fw.board->wait_output(kRelay3, true, 1s));
  fw.peer->send("X");  // test build only: the main loop spins without feeding the watchdog
  auto drop = fw.board->wait_output(kRelay1, false, 2s);
  ASSERT_TRUE(drop);
  const double reset_ms = (drop->sim_s - *fw.board->last_input_byte_s('X')) * 1000;
  std::printf("board watchdog: hung main loop reset %.1f ms (simulated) after the hang\n", reset_ms);
  EXPECT_LT(reset_ms, 400);           // the 250 ms watchdog (its oscillator is not exact) plus the reset
  EXPECT_EQ(fw.board->outputs(), 0);  // pump too: a reset starts with everything off
  auto hello = fw.hello();
  ASSERT_TRUE(hello);
  EXPECT_EQ((*hello)["Ardu_Reset"], "wdt");
  EXPECT_EQ(fw.peer->bad_checksums(), 0);
}

}  // namespace
}  // namespace cellguard::testing
