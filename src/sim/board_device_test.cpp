// The sensor board over a real pseudo-terminal: the test opens the slave side like the edge opens
// /dev/ttyACM0, reads the lines and sends the rig's commands, and watches the pack model.
#include "sim/board_device.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>

#include "sim/device_test_peer.h"
#include "sim/pack_model.h"

namespace cellguard::sim {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kWallTimeout = std::chrono::seconds(10);
constexpr double kStepS = 0.1;

// The peer's end of the serial line.
class SerialPeer {
 public:
  explicit SerialPeer(const std::string& path)
      : fd_(::open(path.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC)) {}
  ~SerialPeer() {
    if (fd_ >= 0) ::close(fd_);
  }
  SerialPeer(const SerialPeer&) = delete;
  SerialPeer& operator=(const SerialPeer&) = delete;

  bool ok() const { return fd_ >= 0; }
  void send(const std::string& text) {
    ASSERT_EQ(::write(fd_, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  }

  // Waits up to `wait` for bytes; returns false on hang-up or error (the cable was pulled).
  bool pump(std::chrono::milliseconds wait) {
    pollfd fds{fd_, POLLIN, 0};
    if (::poll(&fds, 1, static_cast<int>(wait.count())) < 0) return false;
    if ((fds.revents & (POLLHUP | POLLERR)) != 0) return false;
    if ((fds.revents & POLLIN) == 0) return true;
    char buffer[512];
    const ssize_t n = ::read(fd_, buffer, sizeof buffer);
    if (n <= 0) return false;
    received_.append(buffer, static_cast<std::size_t>(n));
    return true;
  }

  // The next complete line (with its CR LF), if one arrived.
  std::optional<std::string> take_line() {
    const std::size_t end = received_.find("\r\n");
    if (end == std::string::npos) return std::nullopt;
    std::string line = received_.substr(0, end + 2);
    received_.erase(0, end + 2);
    return line;
  }
  std::string& received() { return received_; }

 private:
  int fd_ = -1;
  std::string received_;
};

class BoardDeviceTest : public ::testing::Test {
 protected:
  // Steps the simulation until `done` holds (bounded in wall time); the peer's input is pumped
  // meanwhile. Returns false on timeout.
  bool run_until(SerialPeer& peer, const std::function<bool()>& done) {
    const auto deadline = Clock::now() + kWallTimeout;
    while (Clock::now() < deadline) {
      pack.step(kStepS);
      board->poll();
      peer.pump(std::chrono::milliseconds(2));
      if (done()) return true;
    }
    return false;
  }

  std::string next_line(SerialPeer& peer) {
    std::optional<std::string> line;
    EXPECT_TRUE(run_until(peer, [&] { return (line = peer.take_line()).has_value(); }));
    return line.value_or("");
  }

  void open_board(BoardConfig config = {}) {
    auto opened = BoardDevice::open(pack, std::move(config));
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    board = std::move(*opened);
  }

  PackModel pack{PackConfig{}};
  std::unique_ptr<BoardDevice> board;
};

// True if `line` is exactly the rig's "Ardu_Temp1:<n>,Ardu_Temp2:<n>,Ardu_Press:<n>\r\n"; fills counts.
bool parse_rig_line(const std::string& line, int (&counts)[3]) {
  int consumed = 0;
  if (std::sscanf(line.c_str(), "Ardu_Temp1:%d,Ardu_Temp2:%d,Ardu_Press:%d%n", &counts[0], &counts[1],
                  &counts[2], &consumed) != 3) {
    return false;
  }
  for (char c : line.substr(0, static_cast<std::size_t>(consumed))) {
    if (c == '-' || c == '+' || c == ' ') return false;  // digits only, as the board prints them
  }
  return line.substr(static_cast<std::size_t>(consumed)) == "\r\n";
}

TEST_F(BoardDeviceTest, SendsALineOfAdcCountsEverySimulatedSecond) {
  open_board();
  ASSERT_EQ(board->path().rfind("/dev/pts/", 0), 0u) << board->path();
  SerialPeer peer(board->path());
  ASSERT_TRUE(peer.ok());
  int counts[3] = {};
  const std::string first = next_line(peer);
  const double first_time_s = pack.time_s();
  ASSERT_TRUE(parse_rig_line(first, counts)) << first;
  const std::string second = next_line(peer);
  EXPECT_NEAR(pack.time_s() - first_time_s, 1.0, kStepS + 1e-9);
  ASSERT_TRUE(parse_rig_line(second, counts)) << second;

  // The rig's conversion of these counts gives back the model's values (one count of resolution).
  const auto& table = rig_thermistor_table();
  EXPECT_NEAR(rig_thermistor_temperature_c(table, counts[0]), pack.coolant_c(), 0.3);
  EXPECT_NEAR(rig_thermistor_temperature_c(table, counts[1]), pack.ambient_c(), 0.3);
  EXPECT_NEAR(rig_pressure_bar(counts[2]), pack.coolant_pressure_bar(), 0.2);
}

TEST_F(BoardDeviceTest, CommandsSwitchContactorsPumpAndFanOfThePack) {
  open_board();
  SerialPeer peer(board->path());
  ASSERT_TRUE(peer.ok());
  EXPECT_FALSE(pack.contactors_closed());
  // The rig's host sends pairs back to back, without terminator.
  peer.send("6:1&7:1");
  peer.send("5:1&3:1&4:0");
  ASSERT_TRUE(run_until(
      peer, [&] { return pack.contactors_closed() && pack.pump_commanded() && pack.fan_commanded(); }));
  EXPECT_TRUE(pack.positive_contactor());
  EXPECT_TRUE(pack.negative_contactor());
  EXPECT_FALSE(pack.precharge_relay());
  peer.send("4:1");
  ASSERT_TRUE(run_until(peer, [&] { return pack.precharge_relay(); }));
  peer.send("5:0&3:0&6:0&7:0&4:0");
  ASSERT_TRUE(run_until(peer, [&] {
    return !pack.positive_contactor() && !pack.negative_contactor() && !pack.pump_commanded();
  }));
  EXPECT_EQ(board->stats().commands_applied, 11u);
  EXPECT_EQ(board->stats().malformed_bytes, 0u);
}

TEST_F(BoardDeviceTest, PinsAreConfigurable) {
  BoardConfig config;
  config.pins.pump = 9;
  config.pins.relay1 = 10;
  open_board(config);
  SerialPeer peer(board->path());
  ASSERT_TRUE(peer.ok());
  peer.send("6:1&9:1&10:1");
  ASSERT_TRUE(run_until(peer, [&] { return pack.pump_commanded() && pack.positive_contactor(); }));
  EXPECT_EQ(board->stats().commands_ignored, 1u);  // pin 6 drives nothing now
}

TEST_F(BoardDeviceTest, UnplugClosesTheLineAndReplugOpensANewOneWithOutputsLow) {
  open_board();
  auto peer = std::make_unique<SerialPeer>(board->path());
  ASSERT_TRUE(peer->ok());
  peer->send("5:1&3:1&6:1");
  ASSERT_TRUE(run_until(*peer, [&] { return pack.contactors_closed(); }));

  ASSERT_TRUE(board->set_unplugged(true).ok());
  EXPECT_TRUE(board->unplugged());
  EXPECT_TRUE(board->path().empty());
  EXPECT_FALSE(pack.contactors_closed());  // the USB-powered board lost power
  EXPECT_FALSE(pack.pump_commanded());
  EXPECT_FALSE(peer->pump(std::chrono::milliseconds(1000)));  // hang-up seen by the peer

  ASSERT_TRUE(board->set_unplugged(false).ok());
  ASSERT_FALSE(board->path().empty());
  peer = std::make_unique<SerialPeer>(board->path());
  ASSERT_TRUE(peer->ok());
  EXPECT_EQ(next_line(*peer).rfind("Ardu_Temp1:", 0), 0u);
  EXPECT_FALSE(pack.contactors_closed());
  peer->send("5:1&3:1");
  ASSERT_TRUE(run_until(*peer, [&] { return pack.contactors_closed(); }));
}

TEST_F(BoardDeviceTest, GroundFaultExtensionReportsTheInsulationFault) {
  BoardConfig config;
  config.report_ground_fault = true;
  open_board(config);
  SerialPeer peer(board->path());
  ASSERT_TRUE(peer.ok());
  EXPECT_NE(next_line(peer).find(",Ardu_GndFault:0\r\n"), std::string::npos);
  pack.set_insulation_fault(true);
  std::string line;
  ASSERT_TRUE(run_until(peer, [&] {
    auto next = peer.take_line();
    return next && (line = *next).find(",Ardu_GndFault:1\r\n") != std::string::npos;
  }));
}

TEST_F(BoardDeviceTest, ByDefaultTheLineCarriesNoExtensionField) {
  open_board();
  SerialPeer peer(board->path());
  ASSERT_TRUE(peer.ok());
  pack.set_insulation_fault(true);
  EXPECT_EQ(next_line(peer).find("GndFault"), std::string::npos);
}

TEST_F(BoardDeviceTest, LinesAreSentOnlyWhileAPeerHasThePortOpen) {
  open_board();
  for (int i = 0; i < 600; ++i) {  // a minute of simulated time with nobody listening
    pack.step(kStepS);
    board->poll();
  }
  EXPECT_GE(board->stats().lines_unheard, 59u);
  EXPECT_EQ(board->stats().lines_written, 0u);
  SerialPeer peer(board->path());
  ASSERT_TRUE(peer.ok());
  ASSERT_TRUE(peer.pump(std::chrono::milliseconds(20)));
  EXPECT_TRUE(peer.received().empty()) << "a stale backlog: " << peer.received().size() << " bytes";
  EXPECT_EQ(next_line(peer).rfind("Ardu_Temp1:", 0), 0u);
}

TEST_F(BoardDeviceTest, WhatADepartingPeerLeftUnreadDoesNotReachTheNextOne) {
  open_board();
  {
    SerialPeer first(board->path());
    ASSERT_TRUE(first.ok());
    for (int i = 0; i < 50; ++i) {  // five lines the first peer never reads
      pack.step(kStepS);
      board->poll();
    }
    ASSERT_GE(board->stats().lines_written, 4u);
  }
  for (int i = 0; i < 20; ++i) {  // the board notices the departure at its next line
    pack.step(kStepS);
    board->poll();
  }
  SerialPeer second(board->path());
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE(second.pump(std::chrono::milliseconds(20)));
  EXPECT_TRUE(second.received().empty()) << second.received();
}

TEST_F(BoardDeviceTest, PyserialPeerReadsTheRigsLinesAndItsBackToBackCommandsActOnThePack) {
  if (!testing::python_module_available("serial/__init__.py"))
    GTEST_SKIP() << "python3-serial is not installed";
  open_board();
  std::string output;
  const int status = testing::run_peer(
      "board_peer.py", {board->path(), "--lines", "3", "--send", "6:1&7:1", "--send", "5:1&3:1"}, output,
      [&] {
        pack.step(kStepS);
        board->poll();
      });
  ASSERT_EQ(status, 0) << output;
  EXPECT_NE(output.find("\"ok\": true"), std::string::npos) << output;
  const auto deadline = Clock::now() + kWallTimeout;
  while (!(pack.contactors_closed() && pack.pump_commanded() && pack.fan_commanded()) &&
         Clock::now() < deadline) {
    pack.step(kStepS);
    board->poll();
  }
  EXPECT_TRUE(pack.contactors_closed());
  EXPECT_TRUE(pack.pump_commanded());
  EXPECT_TRUE(pack.fan_commanded());
  EXPECT_EQ(board->stats().malformed_bytes, 0u);
}

}  // namespace
}  // namespace cellguard::sim
