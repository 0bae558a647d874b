// The sensor board link: pure protocol parts against hand-computed values and the simulator's
// independent implementation, then BoardLink over real pseudo-terminals (the test holds the
// "board" side, the pty master).
#include "devices/board_link.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <asio/io_context.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "sim/board_protocol.h"
#include "sim/device_pty.h"

namespace cellguard::devices {
namespace {

// ---------------------------------------------------------------------------------------------
// Thermistor table

TEST(ThermistorTable, ParsesRigLayoutWithBomHeaderAndBlankLines) {
  const auto table = parse_thermistor_table(
      "\xEF\xBB\xBFTemperature,Resistance\r\n140,40\r\n\r\n 21 , 3400 \r\n-40,100700\r\n", "t.csv");
  ASSERT_TRUE(table) << table.error().message;
  ASSERT_EQ(table->size(), 3u);
  EXPECT_EQ((*table)[0].temperature_c, 140);
  EXPECT_EQ((*table)[1].resistance_ohm, 3400);
  EXPECT_EQ((*table)[2].temperature_c, -40);
}

TEST(ThermistorTable, AcceptsRowsInRisingTemperatureOrder) {
  const auto table = parse_thermistor_table("-40,100700\n21,3400\n140,40\n", "t.csv");
  ASSERT_TRUE(table) << table.error().message;
  EXPECT_EQ((*table)[0].temperature_c, 140);  // stored by falling temperature
}

TEST(ThermistorTable, ErrorsNameOriginAndLine) {
  struct Case {
    const char* csv;
    const char* expected;
  };
  const Case cases[] = {
      {"140,40\nabc,50\n", "t.csv:2: expected `°C,Ω`"},
      {"140,40\n130\n", "t.csv:2: expected `°C,Ω`"},
      {"140,40\n130,-5\n", "t.csv:2: resistance must be > 0"},
      {"140,40\n140,50\n", "t.csv:2: temperature"},
      {"140,40\n130,50\n120,45\n", "t.csv:3: resistance is not strictly monotonic"},
      {"140,40\n130,40\n", "t.csv:2: resistance is not strictly monotonic"},
      {"140,40\n", "t.csv: a thermistor table needs at least 2 rows"},
      {"", "t.csv: a thermistor table needs at least 2 rows"},
  };
  for (const Case& c : cases) {
    const auto table = parse_thermistor_table(c.csv, "t.csv");
    ASSERT_FALSE(table) << c.csv;
    EXPECT_EQ(table.error().code, ErrorCode::parse_error);
    EXPECT_NE(table.error().message.find(c.expected), std::string::npos) << table.error().message;
  }
}

TEST(ThermistorTable, BuiltInTableIsTheSeedFileAndTheSimulators) {
  const auto& table = rig_thermistor_table();
  EXPECT_EQ(&table, &sim::rig_thermistor_table());  // one source (core/thermistor.h), not two copies
  // The seed file itself, read from the shared folder when present (never copied into the repo).
  std::ifstream seed("/work/shared/seed/thermistor-TempSensor.csv");
  if (!seed) GTEST_SKIP() << "seed file not available";
  std::stringstream text;
  text << seed.rdbuf();
  const auto parsed = parse_thermistor_table(text.str(), "thermistor-TempSensor.csv");
  ASSERT_TRUE(parsed) << parsed.error().message;
  ASSERT_EQ(parsed->size(), table.size());
  for (std::size_t i = 0; i < table.size(); ++i) {
    EXPECT_EQ((*parsed)[i].temperature_c, table[i].temperature_c);
    EXPECT_EQ((*parsed)[i].resistance_ohm, table[i].resistance_ohm);
  }
}

// ---------------------------------------------------------------------------------------------
// Conversions

TEST(Conversion, ThermistorHandComputedValues) {
  const BoardConversion rig;
  // 512 counts: V = 2.5, R = 2200 Ω, between (33 °C, 2150) and (21 °C, 3400): 33 − 12·50/1250.
  auto c = thermistor_temperature_c(rig, 512);
  EXPECT_NEAR(c.value, 32.52, 1e-9);
  EXPECT_TRUE(c.in_range);
  // 0 counts: R = 0, below the table's 40 Ω: clamped to 140 °C and flagged (shorted sensor).
  c = thermistor_temperature_c(rig, 0);
  EXPECT_EQ(c.value, 140);
  EXPECT_FALSE(c.in_range);
  // 1023 counts: R ≈ 2.2 MΩ, beyond 100700 Ω: clamped to −40 °C and flagged (open sensor).
  c = thermistor_temperature_c(rig, 1023);
  EXPECT_EQ(c.value, -40);
  EXPECT_FALSE(c.in_range);
}

TEST(Conversion, ThermistorAgreesWithTheSimulatorOnEveryCount) {
  const BoardConversion rig;
  for (int adc = 0; adc <= 1023; ++adc) {
    const Conversion c = thermistor_temperature_c(rig, adc);
    const double sim_value = sim::rig_thermistor_temperature_c(sim::rig_thermistor_table(), adc);
    if (c.in_range) {
      EXPECT_NEAR(c.value, sim_value, 1e-9) << adc;
    } else {
      // The rig's conversion returns its sentinels 140 / −1 there; ours clamps to the table's end.
      EXPECT_TRUE(sim_value == 140 || sim_value == -1) << adc;
      EXPECT_TRUE(c.value == 140 || c.value == -40) << adc;
    }
  }
}

TEST(Conversion, ThermistorWithCustomTableAndDivider) {
  BoardConversion conversion;
  conversion.thermistor = {{100, 1000}, {0, 3000}};
  conversion.series_ohm = 1000;
  conversion.adc_full_scale = 1000;
  // 600/1000·5 = 3 V; R = 1000·3/2 = 1500 Ω: a quarter of the way from 100 °C to 0 °C.
  const Conversion c = thermistor_temperature_c(conversion, 600);
  EXPECT_NEAR(c.value, 75, 1e-9);
  EXPECT_TRUE(c.in_range);
}

TEST(Conversion, PressureHandComputedAndAgreesWithTheSimulator) {
  const BoardConversion rig;
  auto p = pressure(rig, 512);  // 2.5 V: (2.0/4.0)·150
  EXPECT_NEAR(p.value, 75, 1e-9);
  EXPECT_TRUE(p.in_range);
  p = pressure(rig, 0);  // 0 V: the sensor is not there
  EXPECT_EQ(p.value, 0);
  EXPECT_FALSE(p.in_range);
  p = pressure(rig, 1023);  // 4.995 V: above the 4.5 V of full scale
  EXPECT_EQ(p.value, 150);
  EXPECT_FALSE(p.in_range);
  // The ends of the range quantize to one count outside the band; that is not a fault.
  p = pressure(rig, sim::pressure_counts(0));
  EXPECT_EQ(p.value, 0);
  EXPECT_TRUE(p.in_range);
  p = pressure(rig, sim::pressure_counts(150));
  EXPECT_NEAR(p.value, 150, 0.2);
  EXPECT_TRUE(p.in_range);
  for (int adc = 0; adc <= 1023; ++adc) {
    EXPECT_NEAR(pressure(rig, adc).value, sim::rig_pressure_bar(adc), 1e-9) << adc;
  }
  for (double bar = 0; bar <= 150; bar += 2.5) {
    EXPECT_NEAR(pressure(rig, sim::pressure_counts(bar)).value, bar, 0.5) << bar;
  }
}

// ---------------------------------------------------------------------------------------------
// Board line

TEST(BoardLine, ParsesTheRigsLine) {
  const BoardConversion rig;
  const auto reading =
      parse_board_line("Ardu_Temp1:512,Ardu_Temp2:498,Ardu_Press:102", rig, MonoTime::from_ns(42));
  ASSERT_TRUE(reading) << reading.error().message;
  EXPECT_EQ(reading->time, MonoTime::from_ns(42));
  EXPECT_EQ(reading->temp1_adc, 512);
  EXPECT_EQ(reading->temp2_adc, 498);
  EXPECT_EQ(reading->pressure_adc, 102);
  EXPECT_NEAR(reading->temp1_c.value, 32.52, 1e-9);
  EXPECT_NEAR(reading->temp2_c.value, thermistor_temperature_c(rig, 498).value, 1e-12);
  EXPECT_EQ(reading->pressure.value, 0);
  EXPECT_FALSE(reading->ground_fault.has_value());
}

TEST(BoardLine, ToleratesWhitespaceCrOrderUnknownFieldsAndCarriesGroundFault) {
  const BoardConversion rig;
  auto reading =
      parse_board_line("  Ardu_Press:7,Ardu_Temp2:0,Ardu_Current:55,Ardu_Temp1:1023,Ardu_GndFault:1 \r", rig,
                       MonoTime::from_ns(0));
  ASSERT_TRUE(reading) << reading.error().message;
  EXPECT_EQ(reading->temp1_adc, 1023);
  EXPECT_EQ(reading->pressure_adc, 7);
  ASSERT_TRUE(reading->ground_fault.has_value());
  EXPECT_TRUE(*reading->ground_fault);
  reading =
      parse_board_line("Ardu_Temp1:1,Ardu_Temp2:2,Ardu_Press:3,Ardu_GndFault:0", rig, MonoTime::from_ns(0));
  ASSERT_TRUE(reading);
  EXPECT_EQ(reading->ground_fault, std::optional<bool>(false));
  // The simulator's line (its own formatter) parses to the same counts.
  sim::BoardReading sim_reading{300, 400, 500, true};
  reading = parse_board_line(sim::format_board_line(sim_reading), rig, MonoTime::from_ns(0));
  ASSERT_TRUE(reading) << reading.error().message;
  EXPECT_EQ(reading->temp1_adc, 300);
  EXPECT_EQ(reading->temp2_adc, 400);
  EXPECT_EQ(reading->pressure_adc, 500);
  EXPECT_EQ(reading->ground_fault, std::optional<bool>(true));
}

TEST(BoardLine, RejectsWithFieldAndReason) {
  struct Case {
    const char* line;
    const char* expected;
  };
  const Case cases[] = {
      {"", "empty line"},
      {"   \r", "empty line"},
      {"Ardu_Temp1:512,Ardu_Temp2:498", "Ardu_Press is missing"},
      {"Ardu_Temp2:498,Ardu_Press:1", "Ardu_Temp1 is missing"},
      {"Ardu_Temp1:5x2,Ardu_Temp2:498,Ardu_Press:1", "Ardu_Temp1: '5x2' is not a number"},
      {"Ardu_Temp1:,Ardu_Temp2:498,Ardu_Press:1", "Ardu_Temp1: '' is not a number"},
      {"Ardu_Temp1:-1,Ardu_Temp2:498,Ardu_Press:1", "Ardu_Temp1: '-1' is not a number"},
      {"Ardu_Temp1:1.5,Ardu_Temp2:498,Ardu_Press:1", "Ardu_Temp1: '1.5' is not a number"},
      {"Ardu_Temp1:1,Ardu_Temp2:1024,Ardu_Press:1", "Ardu_Temp2: '1024' is outside 0..1023"},
      {"Ardu_Temp1:1,Ardu_Temp2:2,Ardu_Press:99999999999999999999",
       "Ardu_Press: '99999999999999999999' is outside"},
      {"Ardu_Temp1:1,Ardu_Temp2:2,Ardu_Press:3,Ardu_GndFault:2", "Ardu_GndFault: '2' is outside 0..1"},
      {"Ardu_Temp1:1,Ardu_Temp2:2,Ardu_Temp1:3,Ardu_Press:4", "Ardu_Temp1 appears twice"},
      {"Ardu_Temp1:1,Ardu_Temp2:2,Ardu_Press:3,", "field '' is not `name:value`"},
      {"Ardu_Temp1:1;Ardu_Temp2:2", "Ardu_Temp1: '1;Ardu_Temp2:2' is not a number"},
      {"hello", "field 'hello' is not `name:value`"},
  };
  const BoardConversion rig;
  for (const Case& c : cases) {
    const auto reading = parse_board_line(c.line, rig, MonoTime::from_ns(0));
    ASSERT_FALSE(reading) << c.line;
    EXPECT_EQ(reading.error().code, ErrorCode::parse_error);
    EXPECT_NE(reading.error().message.find(c.expected), std::string::npos)
        << "line '" << c.line << "': " << reading.error().message;
  }
}

// ---------------------------------------------------------------------------------------------
// Splitter

TEST(BoardLineSplitter, SplitsAtLfDropsCrAndJoinsPieces) {
  BoardLineSplitter splitter(64);
  std::vector<std::string> lines;
  const auto collect = [&](std::string_view line) { lines.emplace_back(line); };
  splitter.feed("Ardu_Te", collect);
  EXPECT_TRUE(lines.empty());
  splitter.feed("mp1:1\r", collect);
  splitter.feed("\nsecond\n\r\nthird\r", collect);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "Ardu_Temp1:1");
  EXPECT_EQ(lines[1], "second");
  EXPECT_EQ(lines[2], "");
  splitter.feed("\n", collect);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[3], "third");
  EXPECT_EQ(splitter.overlong_lines(), 0u);
}

TEST(BoardLineSplitter, DiscardsOverlongLinesToTheirEndAndCountsThem) {
  BoardLineSplitter splitter(8);
  std::vector<std::string> lines;
  const auto collect = [&](std::string_view line) { lines.emplace_back(line); };
  splitter.feed("12345678\r\n", collect);  // exactly the limit (the CR does not count)
  splitter.feed("123456789", collect);     // one over: discarded
  for (int i = 0; i < 1000; ++i) splitter.feed("garbage without end ", collect);
  splitter.feed("tail\nok\n", collect);
  splitter.feed(std::string(20, 'x') + "\n" + std::string(30, 'y') + "\nlast\n", collect);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "12345678");
  EXPECT_EQ(lines[1], "ok");
  EXPECT_EQ(lines[2], "last");
  EXPECT_EQ(splitter.overlong_lines(), 3u);
}

// ---------------------------------------------------------------------------------------------
// Pin commands

TEST(PinCommands, FormatsTheRigsCommand) {
  const PinWrite writes[] = {{6, true}, {7, true}};
  const auto commands = format_pin_commands(writes);
  ASSERT_EQ(commands.size(), 1u);
  EXPECT_EQ(commands[0], "6:1&7:1");
  EXPECT_TRUE(format_pin_commands({}).empty());
}

TEST(PinCommands, SplitsLongSetsAtThirtyCharactersInOrder) {
  std::vector<PinWrite> writes;
  for (int pin = 2; pin <= 13; ++pin) writes.push_back({pin, pin % 2 == 0});
  const auto commands = format_pin_commands(writes);
  ASSERT_GT(commands.size(), 1u);
  std::string joined;
  for (const auto& command : commands) {
    EXPECT_LE(command.size(), 30u) << command;
    EXPECT_NE(command.front(), '&');
    EXPECT_NE(command.back(), '&');
    if (!joined.empty()) joined += '&';
    joined += command;
  }
  EXPECT_EQ(joined, "2:1&3:0&4:1&5:0&6:1&7:0&8:1&9:0&10:1&11:0&12:1&13:0");
  EXPECT_EQ(commands[0], "2:1&3:0&4:1&5:0&6:1&7:0&8:1");  // 27 chars: "&9:0" would make 31
  // The simulator's parser reads the commands back, sent back to back as the link does.
  sim::CommandParser parser;
  std::string stream;
  for (const auto& command : commands) stream += command;
  const auto parsed = parser.feed(stream);
  ASSERT_EQ(parsed.size(), writes.size());
  for (std::size_t i = 0; i < writes.size(); ++i) {
    EXPECT_EQ(parsed[i].pin, writes[i].pin);
    EXPECT_EQ(parsed[i].high, writes[i].on);
  }
  EXPECT_EQ(parser.malformed_bytes(), 0u);
}

// ---------------------------------------------------------------------------------------------
// BoardLink over a pseudo-terminal

using SteadyClock = std::chrono::steady_clock;
constexpr auto kDeadline = std::chrono::seconds(10);  // generous; the tests take milliseconds

// Runs the loop until `done` holds; false on timeout.
bool run_until(asio::io_context& io, const std::function<bool()>& done) {
  const auto deadline = SteadyClock::now() + kDeadline;
  while (!done()) {
    if (SteadyClock::now() > deadline) return false;
    if (io.stopped()) io.restart();
    io.run_for(std::chrono::milliseconds(2));
  }
  return true;
}

// Appends what the link wrote to the board side.
void drain(int master_fd, std::string& out) {
  char buffer[512];
  while (true) {
    const ssize_t n = ::read(master_fd, buffer, sizeof buffer);
    if (n <= 0) return;
    out.append(buffer, static_cast<std::size_t>(n));
  }
}

void board_send(sim::Pty& pty, std::string_view bytes) {
  const auto written = pty.write_some(bytes);
  ASSERT_TRUE(written) << written.error().message;
  ASSERT_EQ(*written, bytes.size());
}

class BoardLinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = sim::Pty::open(9600, sim::Pty::Mode::kDetectPeer);
    ASSERT_TRUE(opened) << opened.error().message;
    pty = std::move(*opened);
    config.device = pty.slave_path();
    config.reopen_interval_ns = std::chrono::milliseconds(20);
  }

  void make_link() {
    link = std::make_unique<BoardLink>(io, config, clock);
    link->on_reading([this](const BoardReading& reading) { readings.push_back(reading); });
    link->on_invalid_line([this](std::string_view line, const Error& error) {
      invalid.emplace_back(std::string(line) + " => " + error.message);
    });
    link->on_connection([this](bool connected, const std::string& detail) {
      events.push_back({connected, detail});
    });
  }

  void start_connected() {
    make_link();
    link->start();
    ASSERT_TRUE(run_until(io, [&] { return link->connected(); }));
    ASSERT_EQ(events.size(), 1u);
    EXPECT_TRUE(events[0].first);
  }

  asio::io_context io;
  sim::Pty pty;
  BoardLinkConfig config;
  ManualClock clock{MonoTime::from_ns(1000)};  // outlives the link
  std::unique_ptr<BoardLink> link;
  std::vector<BoardReading> readings;
  std::vector<std::string> invalid;
  std::vector<std::pair<bool, std::string>> events;
};

TEST_F(BoardLinkTest, LinesArriveAsConvertedReadings) {
  start_connected();
  // Split across writes, with the rig's CR LF.
  board_send(pty, "Ardu_Temp1:512,Ardu_Te");
  ASSERT_TRUE(run_until(io, [&] { return link->stats().bytes_received >= 22; }));
  EXPECT_TRUE(readings.empty());
  board_send(pty, "mp2:498,Ardu_Press:512\r\nArdu_Temp1:0,Ardu_Temp2:1023,Ardu_Press:");
  board_send(pty, std::to_string(sim::pressure_counts(30)) + ",Ardu_GndFault:1\r\n");
  ASSERT_TRUE(run_until(io, [&] { return readings.size() == 2; }));
  EXPECT_EQ(readings[0].temp1_adc, 512);
  EXPECT_NEAR(readings[0].temp1_c.value, 32.52, 1e-9);
  EXPECT_NEAR(readings[0].temp2_c.value, sim::rig_thermistor_temperature_c(sim::rig_thermistor_table(), 498),
              1e-9);
  EXPECT_NEAR(readings[0].pressure.value, 75, 1e-9);
  EXPECT_EQ(readings[0].time, MonoTime::from_ns(1000));  // the injected clock's
  EXPECT_FALSE(readings[0].ground_fault.has_value());
  EXPECT_EQ(readings[1].temp1_c.value, 140);
  EXPECT_FALSE(readings[1].temp1_c.in_range);
  EXPECT_EQ(readings[1].temp2_c.value, -40);
  EXPECT_FALSE(readings[1].temp2_c.in_range);
  EXPECT_NEAR(readings[1].pressure.value, 30, 0.5);
  EXPECT_EQ(readings[1].ground_fault, std::optional<bool>(true));
  const auto stats = link->stats();
  EXPECT_EQ(stats.lines_valid, 2u);
  EXPECT_EQ(stats.lines_invalid, 0u);
  EXPECT_TRUE(stats.connected);
  EXPECT_EQ(stats.opens, 1u);
}

TEST_F(BoardLinkTest, InvalidAndOverlongLinesAreCountedAndReported) {
  config.max_line_bytes = 64;
  start_connected();
  board_send(pty, "Ardu_Temp1:512,Ardu_Temp2:1024,Ardu_Press:1\r\n");
  board_send(pty, std::string(200, 'Z') + "\r\n");
  board_send(pty, "garbage\r\nArdu_Temp1:1,Ardu_Temp2:2,Ardu_Press:3\r\n");
  ASSERT_TRUE(run_until(io, [&] { return readings.size() == 1; }));
  const auto stats = link->stats();
  EXPECT_EQ(stats.lines_valid, 1u);
  EXPECT_EQ(stats.lines_invalid, 2u);
  EXPECT_EQ(stats.lines_overlong, 1u);
  ASSERT_EQ(invalid.size(), 3u);
  EXPECT_NE(invalid[0].find("Ardu_Temp2: '1024' is outside 0..1023"), std::string::npos) << invalid[0];
  EXPECT_NE(invalid[1].find("longer than 64 bytes"), std::string::npos) << invalid[1];
  EXPECT_NE(invalid[2].find("garbage => "), std::string::npos) << invalid[2];
}

TEST_F(BoardLinkTest, PinCommandsWaitForTheBoardsLineAndGoOnePerLine) {
  // The rig's sketch reads commands in the second after its line: nothing before the first line,
  // then the whole desired state in one padded command, and one command per line after that.
  start_connected();
  const PinWrite pump_and_fan[] = {{6, true}, {7, true}};
  ASSERT_TRUE(link->write_pins(pump_and_fan));
  std::string received;
  io.run_for(std::chrono::milliseconds(30));
  drain(pty.master_fd(), received);
  EXPECT_EQ(received, "");
  board_send(pty, "Ardu_Temp1:512,Ardu_Temp2:498,Ardu_Press:102\r\n");
  ASSERT_TRUE(run_until(io, [&] {
    drain(pty.master_fd(), received);
    return received.size() >= 30;
  }));
  EXPECT_EQ(received, "5:0&3:0&4:0&6:1&7:1&&&&&&&&&&&");
  const PinWrite relay[] = {{5, true}};
  ASSERT_TRUE(link->write_pins(relay));
  const PinWrite outside[] = {{13, true}};
  EXPECT_FALSE(link->write_pins(outside));  // never a pin outside the configured set
  io.run_for(std::chrono::milliseconds(30));
  received.clear();
  drain(pty.master_fd(), received);
  EXPECT_EQ(received, "");  // one command per line
  board_send(pty, "Ardu_Temp1:512,Ardu_Temp2:498,Ardu_Press:102\r\n");
  // The count grows when the write completes, which may run after its bytes arrived.
  ASSERT_TRUE(run_until(io, [&] {
    drain(pty.master_fd(), received);
    return received.size() >= 30 && link->stats().commands_sent >= 2;
  }));
  EXPECT_EQ(received, "5:1&" + std::string(26, '&'));
  EXPECT_EQ(link->stats().commands_sent, 2u);
}

TEST_F(BoardLinkTest, ClosingTheBoardSideReportsDisconnectAndRetries) {
  // Through a stable name that disappears with the device (as /dev/serial/by-id does): the bare
  // /dev/pts/N may be handed to another process's pty at once, and reopening that would succeed.
  const std::string by_id = "/tmp/cellguard-board-test-" + std::to_string(::getpid()) + "-by-id";
  ::unlink(by_id.c_str());
  ASSERT_EQ(::symlink(pty.slave_path().c_str(), by_id.c_str()), 0);
  config.device = by_id;
  start_connected();
  ::unlink(by_id.c_str());
  pty.close();  // the USB cable is pulled
  ASSERT_TRUE(run_until(io, [&] { return !link->connected(); }));
  ASSERT_GE(events.size(), 2u);
  EXPECT_FALSE(events[1].first);
  EXPECT_NE(events[1].second.find(config.device), std::string::npos) << events[1].second;
  EXPECT_EQ(link->stats().disconnects, 1u);
  const PinWrite pump[] = {{6, true}};
  EXPECT_FALSE(link->write_pins(pump));  // dropped while disconnected
  // Retries keep failing quietly (one report per reason) until stopped.
  const auto reported = events.size();
  const auto until = SteadyClock::now() + std::chrono::milliseconds(100);
  ASSERT_TRUE(run_until(io, [&] { return SteadyClock::now() > until; }));
  EXPECT_LE(events.size(), reported + 1);
  link->stop();
  EXPECT_FALSE(link->connected());
}

TEST_F(BoardLinkTest, MissingDeviceIsReportedWithItsPath) {
  config.device = "/nonexistent/ttyACM9";
  make_link();
  link->start();
  ASSERT_TRUE(run_until(io, [&] { return !events.empty(); }));
  EXPECT_FALSE(events[0].first);
  EXPECT_NE(events[0].second.find("/nonexistent/ttyACM9"), std::string::npos) << events[0].second;
  EXPECT_FALSE(link->connected());
  EXPECT_EQ(link->stats().opens, 0u);
}

TEST_F(BoardLinkTest, DestroyingWithPendingOperationsIsSafe) {
  start_connected();
  const PinWrite pump[] = {{6, true}};
  ASSERT_TRUE(link->write_pins(pump));
  link.reset();  // a read, a write pending
  io.restart();
  io.run_for(std::chrono::milliseconds(20));  // their completions find a stopped link
  EXPECT_EQ(events.size(), 1u);
}

// ---------------------------------------------------------------------------------------------
// Extension of cellguard's board firmware

// A line as the firmware sends it: the fields, then `,Ardu_Crc:XX` CR LF.
std::string with_crc(const std::string& fields) {
  char crc[3];
  std::snprintf(crc, sizeof crc, "%02X", board_crc8(fields));
  return fields + ",Ardu_Crc:" + crc + "\r\n";
}

TEST(BoardCrc, IsCrc8WithPolynomial7) {
  EXPECT_EQ(board_crc8("123456789"), 0xF4);  // the CRC-8 (SMBus) check value
  EXPECT_EQ(board_crc8(""), 0x00);
}

TEST(BoardLine, ReadsTheExtensionFieldsWhenTheChecksumIsValid) {
  std::string line = with_crc(
      "Ardu_Temp1:512,Ardu_Temp2:498,Ardu_Press:102,Ardu_GndFault:1,Ardu_Out:F8,Ardu_Fs:armed,"
      "Ardu_Hb:500,Ardu_Re:1");
  line.resize(line.size() - 2);
  const auto reading = parse_board_line(line, BoardConversion{}, MonoTime::from_ns(5));
  ASSERT_TRUE(reading) << reading.error().message;
  EXPECT_EQ(reading->temp1_adc, 512);
  EXPECT_EQ(reading->ground_fault, std::optional<bool>(true));
  ASSERT_TRUE(reading->extension);
  EXPECT_EQ(reading->extension->outputs, std::optional<std::uint16_t>(0xF8));
  EXPECT_EQ(reading->extension->fail_safe, "armed");
  EXPECT_EQ(reading->extension->heartbeat_timeout_ms, std::optional<int>(500));
  EXPECT_TRUE(reading->extension->reply);
  // The rig's line has no checksum: no extension, and extension-looking fields are ignored.
  const auto rig = parse_board_line("Ardu_Temp1:512,Ardu_Temp2:498,Ardu_Press:102,Ardu_Fs:armed",
                                    BoardConversion{}, MonoTime::from_ns(5));
  ASSERT_TRUE(rig) << rig.error().message;
  EXPECT_FALSE(rig->extension);
}

TEST(BoardLine, RejectsAWrongChecksumNamingBothValues) {
  std::string line = with_crc("Ardu_Temp1:512,Ardu_Temp2:498,Ardu_Press:102,Ardu_Fs:off");
  line.resize(line.size() - 2);
  line[12] = '3';  // one flipped digit
  const auto reading = parse_board_line(line, BoardConversion{}, MonoTime::from_ns(5));
  ASSERT_FALSE(reading);
  EXPECT_NE(reading.error().message.find("checksum mismatch"), std::string::npos) << reading.error().message;
  EXPECT_FALSE(parse_board_line("Ardu_Temp1:1,Ardu_Temp2:1,Ardu_Press:1,Ardu_Crc:ZZ", BoardConversion{},
                                MonoTime::from_ns(5)));
}

class BoardExtensionTest : public BoardLinkTest {
 protected:
  void SetUp() override {
    BoardLinkTest::SetUp();
    config.heartbeat_interval_ns = std::chrono::milliseconds(20);
    config.heartbeat_timeout_ms = 300;
  }
  void start_with_events() {
    start_connected();
    link->on_event([this](const BoardEvent& e) {
      board_events.push_back(std::string(to_string(e.kind)) + ":" + e.detail);
    });
  }
  bool wait_received(const std::function<bool(const std::string&)>& done) {
    return run_until(io, [&] {
      drain(pty.master_fd(), received);
      return done(received);
    });
  }
  std::string received;
  std::vector<std::string> board_events;
};

TEST_F(BoardExtensionTest, AgainstTheRigsSketchTheLinkSendsOnlyPinCommands) {
  start_with_events();
  for (int i = 0; i < 3; ++i) board_send(pty, "Ardu_Temp1:512,Ardu_Temp2:498,Ardu_Press:102\r\n");
  ASSERT_TRUE(run_until(io, [&] { return readings.size() == 3; }));
  const PinWrite relay[] = {{5, true}};
  ASSERT_TRUE(link->write_pins(relay));
  const auto until = SteadyClock::now() + std::chrono::milliseconds(100);  // five heartbeat periods
  ASSERT_TRUE(run_until(io, [&] {
    drain(pty.master_fd(), received);
    return SteadyClock::now() > until;
  }));
  // The start-up state went out after a line; the relay after a later line (if the three lines
  // arrived in separate reads) or not yet: whole 30-byte commands, never a heartbeat.
  ASSERT_GE(received.size(), 30u);
  EXPECT_EQ(received.substr(0, 30), "5:0&3:0&4:0&6:0&7:0&&&&&&&&&&&");
  if (received.size() > 30) {
    EXPECT_EQ(received.substr(30), "5:1&" + std::string(26, '&'));
  }
  EXPECT_FALSE(link->stats().extension);
  EXPECT_EQ(link->stats().heartbeats_sent, 0u);
  EXPECT_TRUE(board_events.empty());
}

TEST_F(BoardExtensionTest, AHelloStartsTimeoutAndHeartbeatsOnTheLinksOwnTimer) {
  start_with_events();
  board_send(
      pty,
      with_crc("Ardu_Temp1:512,Ardu_Temp2:498,Ardu_Press:102,Ardu_GndFault:0,Ardu_Hello:cellguard-board/1,"
               "Ardu_Reset:wdt"));
  // No other traffic at all: the heartbeats come from the timer.
  // After a reset the commanded outputs (all off) are sent again and read back.
  const std::string resend = "T0300H5:0&3:0&4:0&6:0&7:0&?";
  ASSERT_TRUE(wait_received([&](const std::string& r) { return r.size() >= resend.size() + 3; }));
  EXPECT_EQ(received.substr(0, resend.size()), resend);
  EXPECT_EQ(received.substr(resend.size()), std::string(received.size() - resend.size(), 'H'));
  EXPECT_TRUE(link->stats().extension);
  EXPECT_EQ(link->stats().firmware, "cellguard-board/1");
  EXPECT_EQ(link->stats().watchdog_resets, 1u);
  ASSERT_GE(board_events.size(), 2u);
  EXPECT_EQ(board_events[0], "extension:cellguard-board/1");
  EXPECT_EQ(board_events[1], "reset:wdt");
  ASSERT_EQ(readings.size(), 1u);  // the hello is a reading too
}

TEST_F(BoardExtensionTest, PinWritesAreReadBackAndAMismatchIsReported) {
  start_with_events();
  board_send(
      pty,
      with_crc("Ardu_Temp1:1,Ardu_Temp2:1,Ardu_Press:1,Ardu_GndFault:0,Ardu_Out:00,Ardu_Fs:off,Ardu_Hb:500"));
  // The extension found: the timeout, a heartbeat, then the whole state at once (no line sync).
  ASSERT_TRUE(wait_received(
      [](const std::string& r) { return r.find("T0300H5:0&3:0&4:0&6:0&7:0&?") != std::string::npos; }));
  const PinWrite on[] = {{6, true}, {5, true}};
  ASSERT_TRUE(link->write_pins(on));
  ASSERT_TRUE(wait_received([](const std::string& r) { return r.find("6:1&5:1&?") != std::string::npos; }));
  // The answers to `T` and the first `?` (before the writes) do not count as their read-back.
  const std::string reply =
      "Ardu_Temp1:1,Ardu_Temp2:1,Ardu_Press:1,Ardu_GndFault:0,Ardu_Fs:armed,Ardu_Hb:300,Ardu_Re:1,Ardu_Out:";
  board_send(pty, with_crc(reply + "00"));
  board_send(pty, with_crc(reply + "00"));
  board_send(pty, with_crc(reply + "60"));
  ASSERT_TRUE(run_until(io, [&] { return link->stats().readbacks_ok == 1; }));
  EXPECT_EQ(link->stats().readback_mismatches, 0u);
  const PinWrite off[] = {{6, false}};
  ASSERT_TRUE(link->write_pins(off));
  ASSERT_TRUE(wait_received([](const std::string& r) { return r.find("6:0&?") != std::string::npos; }));
  received.clear();
  board_send(pty, with_crc(reply + "60"));
  ASSERT_TRUE(run_until(io, [&] { return link->stats().readback_mismatches == 1; }));
  EXPECT_EQ(board_events.back(), "readback_mismatch:pin 6 sent off, reads on");
  // Re-sent, and after readback_retries (2) wrong read-backs a fault.
  for (int attempt = 0; attempt < 2; ++attempt) {
    ASSERT_TRUE(wait_received([](const std::string& r) { return r.find("6:0&?") != std::string::npos; }))
        << attempt;
    received.clear();
    board_send(pty, with_crc(reply + "60"));
    ASSERT_TRUE(run_until(io, [&] { return link->stats().readback_mismatches == 2u + attempt; }));
  }
  EXPECT_EQ(board_events.back(), "output_fault:pin 6 reads on after 2 re-sends of off");
}

TEST_F(BoardExtensionTest, AfterATripClosingARelayReArmsTheBoardFirst) {
  start_with_events();
  board_send(
      pty,
      with_crc(
          "Ardu_Temp1:1,Ardu_Temp2:1,Ardu_Press:1,Ardu_GndFault:0,Ardu_Out:40,Ardu_Fs:hb_lost,Ardu_Hb:500"));
  ASSERT_TRUE(
      run_until(io, [&] { return !board_events.empty() && board_events.back() == "fail_safe:hb_lost"; }));
  const PinWrite pump[] = {{6, true}};
  ASSERT_TRUE(link->write_pins(pump));  // not a relay: no re-arm
  ASSERT_TRUE(wait_received([](const std::string& r) { return r.find("6:1&?") != std::string::npos; }));
  EXPECT_EQ(received.find('R'), std::string::npos);
  const PinWrite relay[] = {{3, true}};
  ASSERT_TRUE(link->write_pins(relay));
  ASSERT_TRUE(wait_received([](const std::string& r) { return r.find("HR3:1&?") != std::string::npos; }));
}

TEST_F(BoardExtensionTest, BadChecksumsAreCountedAsInvalidLines) {
  start_with_events();
  std::string line = with_crc("Ardu_Temp1:1,Ardu_Temp2:1,Ardu_Press:1,Ardu_Fs:off");
  line[11] = '7';
  board_send(pty, line);
  ASSERT_TRUE(run_until(io, [&] { return link->stats().lines_invalid == 1; }));
  EXPECT_EQ(link->stats().checksum_errors, 1u);
  EXPECT_FALSE(link->stats().extension);
  EXPECT_TRUE(readings.empty());
}

}  // namespace
}  // namespace cellguard::devices
