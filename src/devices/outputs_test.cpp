// Outputs through the board over real pseudo-terminals (including a reconnect at the same path),
// the GPIO error paths, and the simulator's board device talking to BoardLink end to end.
#include "devices/outputs.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <asio/io_context.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "devices/board_link.h"
#include "sim/board_device.h"
#include "sim/device_pty.h"
#include "sim/pack_model.h"

namespace cellguard::devices {
namespace {

using SteadyClock = std::chrono::steady_clock;
constexpr auto kDeadline = std::chrono::seconds(10);

bool run_until(asio::io_context& io, const std::function<bool()>& done,
               const std::function<void()>& between = {}) {
  const auto deadline = SteadyClock::now() + kDeadline;
  while (!done()) {
    if (SteadyClock::now() > deadline) return false;
    if (io.stopped()) io.restart();
    io.run_for(std::chrono::milliseconds(2));
    if (between) between();
  }
  return true;
}

void drain(int master_fd, std::string& out) {
  char buffer[512];
  while (true) {
    const ssize_t n = ::read(master_fd, buffer, sizeof buffer);
    if (n <= 0) return;
    out.append(buffer, static_cast<std::size_t>(n));
  }
}

sim::Pty open_pty() {
  auto opened = sim::Pty::open(9600, sim::Pty::Mode::kDetectPeer);
  EXPECT_TRUE(opened) << opened.error().message;
  return opened ? std::move(*opened) : sim::Pty();
}

TEST(OutputNames, RoundTripAndUnknownNameIsAnError) {
  for (std::size_t i = 0; i < kOutputCount; ++i) {
    const auto output = static_cast<Output>(i);
    const auto parsed = output_from_string(to_string(output));
    ASSERT_TRUE(parsed);
    EXPECT_EQ(*parsed, output);
  }
  EXPECT_EQ(to_string(Output::relay3), "relay3");
  const auto bad = output_from_string("heater");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("heater"), std::string::npos);
}

class BoardOutputsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pty = open_pty();
    ASSERT_TRUE(pty.is_open());
  }
  void connect(const std::string& device) {
    BoardLinkConfig config;
    config.device = device;
    config.reopen_interval_ns = std::chrono::milliseconds(20);
    config.protocol = BoardProtocol::cellguard;  // immediate writes (the line-synced mode: board_writer_test)
    link = std::make_unique<BoardLink>(io, config);
    link->on_connection([this](bool connected, const std::string&) { events.push_back(connected); });
    outputs = make_board_outputs(*link, kRigBoardPins);
    link->start();
    ASSERT_TRUE(run_until(io, [&] { return link->connected(); }));
  }
  // Runs until `expected_size` bytes arrived on `board`.
  std::string receive(sim::Pty& board, std::size_t expected_size) {
    std::string received;
    EXPECT_TRUE(run_until(io, [&] {
      drain(board.master_fd(), received);
      return received.size() >= expected_size;
    }));
    return received;
  }

  asio::io_context io;
  sim::Pty pty;
  std::unique_ptr<BoardLink> link;
  std::unique_ptr<Outputs> outputs;
  std::vector<bool> events;
};

TEST_F(BoardOutputsTest, SetAndSetAllSendOneCommandEach) {
  connect(pty.slave_path());
  // On connect the outputs re-send their (all off) state: a board may have kept old ones.
  EXPECT_EQ(receive(pty, 20), "5:0&3:0&4:0&6:0&7:0&");
  EXPECT_EQ(outputs->describe(), "board " + pty.slave_path());
  ASSERT_TRUE(outputs->set(Output::pump, true));
  EXPECT_EQ(receive(pty, 4), "6:1&");  // only what changed
  EXPECT_TRUE(outputs->commanded(Output::pump));
  ASSERT_TRUE(outputs->set_all({std::nullopt, true, true, std::nullopt, false}));
  EXPECT_EQ(receive(pty, 8), "7:1&5:1&");
  EXPECT_TRUE(outputs->commanded(Output::fan));
  EXPECT_TRUE(outputs->commanded(Output::relay1));
  EXPECT_FALSE(outputs->commanded(Output::relay2));
  ASSERT_TRUE(outputs->refresh());
  EXPECT_EQ(receive(pty, 20), "3:0&4:0&6:1&7:1&5:1&");  // everything, openings first
  const OutputState relay1 = outputs->state(Output::relay1);
  EXPECT_TRUE(relay1.commanded);
  EXPECT_TRUE(relay1.sent);
  EXPECT_GT(relay1.sent_ns, MonoTime());
  EXPECT_FALSE(relay1.read_back);  // no read-back from a board without the extension
}

TEST_F(BoardOutputsTest, LongSetIsSplitIntoCommandsOfAtMostThirtyCharacters) {
  // Pins with two digits make the full state longer than one command.
  BoardLinkConfig config;
  config.device = pty.slave_path();
  config.protocol = BoardProtocol::cellguard;
  config.output_pins = {10, 11, 12, 13, 14};
  config.relay_pins = {12, 13, 14};
  link = std::make_unique<BoardLink>(io, config);
  outputs = make_board_outputs(*link, OutputPins{10, 11, 12, 13, 14});
  link->start();
  ASSERT_TRUE(run_until(io, [&] { return link->connected(); }));
  const std::string expected = "12:0&13:0&14:0&10:0&11:0&";  // 25: still one command
  EXPECT_EQ(receive(pty, expected.size()), expected);
  ASSERT_TRUE(outputs->set_all({true, true, true, true, true}));
  // 25 bytes would fit; the writer keeps every command within 30 (split: board_writer_test).
  EXPECT_EQ(receive(pty, 25), "10:1&11:1&12:1&13:1&14:1&");
  // Pins outside the configured set are never written.
  const PinWrite other[] = {{20, true}};
  EXPECT_FALSE(link->write_pins(other));
}

TEST_F(BoardOutputsTest, NotConnectedRemembersTheStateAndSaysSo) {
  BoardLinkConfig config;
  config.device = "/nonexistent/ttyACM0";
  link = std::make_unique<BoardLink>(io, config);
  outputs = make_board_outputs(*link, kRigBoardPins);
  const auto result = outputs->set(Output::relay2, true);
  ASSERT_FALSE(result);
  EXPECT_NE(result.error().message.find("not connected"), std::string::npos) << result.error().message;
  EXPECT_NE(result.error().message.find("relay2=on"), std::string::npos) << result.error().message;
  EXPECT_TRUE(outputs->commanded(Output::relay2));
  // Outputs destroyed before the link: the link's listener must not reach them.
  outputs.reset();
  link->start();
  io.run_for(std::chrono::milliseconds(30));
}

// The device path is a symlink (as udev's /dev/serial/by-id names are): pull board A, plug board B
// at the same path; the link reconnects and the outputs give B the commanded state.
TEST_F(BoardOutputsTest, ReconnectAtTheSamePathResendsTheState) {
  char dir_template[] = "/tmp/cellguard-board-XXXXXX";
  ASSERT_NE(::mkdtemp(dir_template), nullptr);
  const std::filesystem::path dir(dir_template);
  const std::filesystem::path device = dir / "ttyACM0";
  std::filesystem::create_symlink(pty.slave_path(), device);

  connect(device.string());
  EXPECT_EQ(receive(pty, 20), "5:0&3:0&4:0&6:0&7:0&");
  ASSERT_TRUE(outputs->set_all({true, true, true, std::nullopt, std::nullopt}));
  EXPECT_EQ(receive(pty, 12), "6:1&7:1&5:1&");

  std::filesystem::remove(device);
  pty.close();
  ASSERT_TRUE(run_until(io, [&] { return !link->connected(); }));
  EXPECT_FALSE(outputs->set(Output::relay2, true));  // remembered, not sent

  sim::Pty board_b = open_pty();
  ASSERT_TRUE(board_b.is_open());
  std::filesystem::create_symlink(board_b.slave_path(), device);
  ASSERT_TRUE(run_until(io, [&] { return link->stats().opens == 2; }));
  EXPECT_EQ(receive(board_b, 20), "4:0&6:1&7:1&5:1&3:1&");
  EXPECT_EQ(link->stats().disconnects, 1u);
  ASSERT_GE(events.size(), 3u);
  EXPECT_TRUE(events.front());
  EXPECT_FALSE(events[1]);
  EXPECT_TRUE(events.back());

  link->stop();
  std::filesystem::remove_all(dir);
}

TEST(GpioOutputs, MissingChipIsNamed) {
  GpioConfig config;
  config.chip = "gpiochip-cellguard-missing";
  config.lines = {17, 18, 22, 23, 24};
  const auto outputs = open_gpio_outputs(config);
  ASSERT_FALSE(outputs);
  EXPECT_NE(outputs.error().message.find("gpiochip-cellguard-missing"), std::string::npos)
      << outputs.error().message;
  config.chip = "/dev/gpiochip97";
  const auto by_path = open_gpio_outputs(config);
  ASSERT_FALSE(by_path);
  EXPECT_NE(by_path.error().message.find("/dev/gpiochip97"), std::string::npos) << by_path.error().message;
}

TEST(GpioOutputs, BadLineConfigurationIsRejectedBeforeOpening) {
  GpioConfig config;
  config.lines = {17, 18, 17, 23, 24};
  auto outputs = open_gpio_outputs(config);
  ASSERT_FALSE(outputs);
  EXPECT_NE(outputs.error().message.find("line 17 is configured for both pump and relay1"), std::string::npos)
      << outputs.error().message;
  config.lines = {17, 18, 19, -1, 24};
  outputs = open_gpio_outputs(config);
  ASSERT_FALSE(outputs);
  EXPECT_NE(outputs.error().message.find("-1 of relay2"), std::string::npos) << outputs.error().message;
  // A real chip (line request, active_low, set) cannot be tested here: the host has no GPIO chip.
}

// The simulator's board device and BoardLink + BoardOutputs, both over the real pty.
TEST(BoardEndToEnd, SimulatedBoardAndLinkUnderstandEachOther) {
  sim::PackModel pack{sim::PackConfig{}};
  sim::BoardConfig board_config;
  board_config.report_ground_fault = true;
  auto board = sim::BoardDevice::open(pack, board_config);
  ASSERT_TRUE(board) << board.error().message;
  asio::io_context io;
  BoardLinkConfig config;
  config.device = (*board)->path();
  BoardLink link(io, config);
  std::vector<BoardReading> readings;
  std::vector<std::string> invalid;
  link.on_reading([&](const BoardReading& reading) { readings.push_back(reading); });
  link.on_invalid_line([&](std::string_view line, const Error&) { invalid.emplace_back(line); });
  auto outputs = make_board_outputs(link, kRigBoardPins);
  link.start();
  const auto step = [&] {
    pack.step(0.1);
    (*board)->poll();
  };
  ASSERT_TRUE(run_until(
      io, [&] { return readings.size() >= 2; }, step));
  const sim::BoardReading expected = (*board)->reading();
  const BoardReading& got = readings.back();
  EXPECT_NEAR(got.temp1_adc, expected.temp1_counts, 2);  // the pack moves a little between lines
  EXPECT_NEAR(got.temp2_adc, expected.temp2_counts, 2);
  EXPECT_NEAR(got.pressure_adc, expected.pressure_counts, 2);
  EXPECT_TRUE(got.temp1_c.in_range);
  EXPECT_NEAR(got.temp2_c.value, pack.ambient_c(), 1.0);  // Ardu_Temp2 is the ambient air
  ASSERT_TRUE(got.ground_fault.has_value());
  EXPECT_FALSE(*got.ground_fault);
  EXPECT_TRUE(invalid.empty());

  ASSERT_TRUE(outputs->set_all({true, true, true, true, false}));
  ASSERT_TRUE(run_until(
      io, [&] { return (*board)->outputs().relay2; }, step));
  EXPECT_TRUE((*board)->outputs().pump);
  EXPECT_TRUE((*board)->outputs().fan);
  EXPECT_TRUE(pack.positive_contactor());
  EXPECT_TRUE(pack.negative_contactor());
  EXPECT_FALSE(pack.precharge_relay());
  EXPECT_EQ((*board)->stats().malformed_bytes, 0u);
}

}  // namespace
}  // namespace cellguard::devices
