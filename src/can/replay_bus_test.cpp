// The log replay bus (replay:PATH): frames and their order from each log format, timing at several
// speeds, looping, bus filter, the end of the log, malformed lines, URL and file errors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <asio/steady_timer.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "can/bus.h"
#include "can/bus_test_support.h"
#include "can/log.h"

namespace cellguard::can {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::run_until;
using Clock = std::chrono::steady_clock;

constexpr std::int64_t kMs = 1'000'000;
constexpr std::int64_t kStartNs = 1'700'000'000'000'000'000;  // a date, as candump -L logs have

Frame frame_of(std::int64_t timestamp_ns, std::uint32_t id, std::vector<std::uint8_t> data,
               std::string_view bus = "can0") {
  Frame frame;
  frame.timestamp_ns = timestamp_ns;
  frame.id = id;
  frame.extended = id > kMaxStandardId;
  frame.bus = bus;
  if (!data.empty()) frame.set_payload(data);
  return frame;
}

// Classic standard and extended, remote, CAN FD with and without BRS/ESI, empty payloads.
std::vector<Frame> mixed_frames(std::string_view bus) {
  std::vector<Frame> frames;
  frames.push_back(frame_of(kStartNs, 0x181, {0x85, 0xFF, 0x7A, 0x12, 0xAE, 0xAE, 0x14, 0x16}, bus));
  frames.push_back(frame_of(kStartNs + 1 * kMs, 0x18FF50E5, {1, 2, 3}, bus));
  Frame remote = frame_of(kStartNs + 2 * kMs, 0x601, {}, bus);
  remote.remote = true;
  remote.size = 4;
  frames.push_back(remote);
  Frame fd = frame_of(kStartNs + 3 * kMs, 0x123, {}, bus);
  fd.fd = true;
  fd.bitrate_switch = true;
  std::vector<std::uint8_t> payload(64);
  for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<std::uint8_t>(i * 3);
  fd.set_payload(payload);
  frames.push_back(fd);
  Frame fd_ext = frame_of(kStartNs + 4 * kMs, 0x1ABCDE, {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2}, bus);
  fd_ext.fd = true;
  fd_ext.error_state = true;
  frames.push_back(fd_ext);
  frames.push_back(frame_of(kStartNs + 5 * kMs, 0x7FF, {}, bus));
  return frames;
}

class ReplayBusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ =
        fs::temp_directory_path() / ("cellguard_replay_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write_log(const std::string& name, LogFormat format, const std::vector<Frame>& frames) {
    std::string path = (dir_ / name).string();  // not const: returned by move
    std::ofstream out(path, std::ios::binary);
    auto writer = make_log_writer(format, out);
    EXPECT_TRUE(writer.ok());
    if (!writer.ok()) return path;
    for (const auto& frame : frames) EXPECT_TRUE((*writer)->write(frame).ok());
    EXPECT_TRUE((*writer)->finish().ok());
    return path;
  }

  std::string write_text(const std::string& name, const std::string& text) {
    std::string path = (dir_ / name).string();  // not const: returned by move
    std::ofstream out(path, std::ios::binary);
    out << text;
    return path;
  }

  std::unique_ptr<Bus> open(const std::string& url) {
    auto bus = open_bus(io_, url);
    EXPECT_TRUE(bus.ok()) << url << ": " << (bus.ok() ? "" : bus.error().message);
    return bus.ok() ? std::move(bus).value() : nullptr;
  }

  fs::path dir_;
  asio::io_context io_;
};

struct Seen {
  std::vector<Frame> frames;
  std::vector<Clock::time_point> times;
  std::vector<Error> errors;
  bool ready = false;
  bool frame_before_ready = false;
  void attach(Bus& bus) {
    bus.on_receive([this](const Frame& frame) {
      if (!ready) frame_before_ready = true;
      frames.push_back(frame);
      times.push_back(Clock::now());
    });
    bus.on_error([this](const Error& error) { errors.push_back(error); });
    bus.on_ready([this] { ready = true; });
  }
  int end_reports() const {
    int n = 0;
    for (const auto& e : errors) n += e.code == ErrorCode::end_of_input ? 1 : 0;
    return n;
  }
};

// Everything but the time: what the bus delivered must be what the log holds.
void expect_same_frames(const std::vector<Frame>& got, const std::vector<Frame>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    Frame a = got[i];
    a.timestamp_ns = want[i].timestamp_ns;
    EXPECT_EQ(a, want[i]) << "frame " << i << ": id " << got[i].id << " want " << want[i].id;
  }
}

void expect_delivered_from(asio::io_context& io, const std::string& path, std::string_view bus) {
  auto opened = open_bus(io, "replay:" + path + "?speed=0");
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  auto& replay = **opened;
  Seen seen;
  seen.attach(replay);
  const auto before = std::chrono::system_clock::now();
  ASSERT_TRUE(run_until(
      io, [&] { return seen.end_reports() == 1; }, 3s));
  EXPECT_TRUE(seen.ready);
  EXPECT_FALSE(seen.frame_before_ready);
  expect_same_frames(seen.frames, mixed_frames(bus));
  // The delivery time, not the log's.
  const auto before_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(before.time_since_epoch()).count();
  for (const auto& frame : seen.frames) EXPECT_GE(frame.timestamp_ns, before_ns);
  EXPECT_EQ(replay.counters().frames_received, seen.frames.size());
  EXPECT_EQ(replay.counters().frames_dropped, 0u);
}

TEST_F(ReplayBusTest, DeliversTheFramesOfACandumpLogInOrder) {
  expect_delivered_from(io_, write_log("rig.log", LogFormat::candump_log, mixed_frames("can0")), "can0");
}

TEST_F(ReplayBusTest, DeliversTheFramesOfAnAscLogInOrder) {
  expect_delivered_from(io_, write_log("rig.asc", LogFormat::asc, mixed_frames("1")), "1");
}

TEST_F(ReplayBusTest, DeliversTheFramesOfATrcLogInOrder) {
  expect_delivered_from(io_, write_log("rig.trc", LogFormat::trc, mixed_frames("1")), "1");
}

TEST_F(ReplayBusTest, TimeLogKeepsTheLogTimestamps) {
  const auto frames = mixed_frames("can0");
  auto bus = open("replay:" + write_log("rig.log", LogFormat::candump_log, frames) + "?speed=0&time=log");
  Seen seen;
  seen.attach(*bus);
  ASSERT_TRUE(run_until(
      io_, [&] { return seen.end_reports() == 1; }, 3s));
  ASSERT_EQ(seen.frames.size(), frames.size());
  for (std::size_t i = 0; i < frames.size(); ++i) EXPECT_EQ(seen.frames[i], frames[i]);
}

TEST_F(ReplayBusTest, HonoursTheGapsOfTheLogAtSpeedOne) {
  auto bus =
      open("replay:" + write_log("rig.log", LogFormat::candump_log,
                                 {frame_of(kStartNs, 0x1, {1}), frame_of(kStartNs + 200 * kMs, 0x2, {2})}));
  Seen seen;
  seen.attach(*bus);
  ASSERT_TRUE(run_until(
      io_, [&] { return seen.frames.size() == 2; }, 3s));
  const auto gap = seen.times[1] - seen.times[0];
  EXPECT_GE(gap, 195ms);
  EXPECT_LT(gap, 300ms);
  EXPECT_GE(seen.frames[1].timestamp_ns - seen.frames[0].timestamp_ns, 195 * kMs);
}

TEST_F(ReplayBusTest, SpeedTenIsTenTimesFaster) {
  auto bus = open("replay:" +
                  write_log("rig.log", LogFormat::candump_log,
                            {frame_of(kStartNs, 0x1, {1}), frame_of(kStartNs + 200 * kMs, 0x2, {2})}) +
                  "?speed=10");
  Seen seen;
  seen.attach(*bus);
  ASSERT_TRUE(run_until(
      io_, [&] { return seen.frames.size() == 2; }, 3s));
  const auto gap = seen.times[1] - seen.times[0];
  EXPECT_GE(gap, 19ms);
  EXPECT_LT(gap, 100ms);
}

TEST_F(ReplayBusTest, ATimeGoingBackwardsIsDeliveredAtOnce) {
  auto bus =
      open("replay:" + write_log("rig.log", LogFormat::candump_log,
                                 {frame_of(kStartNs + 500 * kMs, 0x1, {1}), frame_of(kStartNs, 0x2, {2}),
                                  frame_of(kStartNs + 510 * kMs, 0x3, {3})}));
  Seen seen;
  seen.attach(*bus);
  ASSERT_TRUE(run_until(
      io_, [&] { return seen.frames.size() == 3; }, 3s));
  EXPECT_LT(seen.times[1] - seen.times[0], 5ms);
  EXPECT_GE(seen.times[2] - seen.times[0], 9ms);
}

TEST_F(ReplayBusTest, SpeedZeroIsFastAndLeavesTheLoopToTimers) {
  // 20000 frames a second apart: more than five hours at speed 1.
  std::vector<Frame> frames;
  for (std::uint32_t i = 0; i < 20000; ++i) {
    frames.push_back(frame_of(kStartNs + static_cast<std::int64_t>(i) * 1000 * kMs, i % 0x800, {1, 2}));
  }
  auto bus = open("replay:" + write_log("big.log", LogFormat::candump_log, frames) + "?speed=0");
  Seen seen;
  seen.attach(*bus);
  int ticks = 0;
  int ticks_at_last_frame = -1;
  bus->on_receive([&](const Frame& frame) {
    seen.frames.push_back(frame);
    if (seen.frames.size() == frames.size()) ticks_at_last_frame = ticks;
  });
  asio::steady_timer timer(io_);
  std::function<void()> arm = [&] {
    timer.expires_after(1ms);
    timer.async_wait([&](const asio::error_code& ec) {
      if (ec) return;
      ++ticks;
      arm();
    });
  };
  arm();
  const auto start = Clock::now();
  ASSERT_TRUE(run_until(
      io_, [&] { return seen.end_reports() == 1; }, 4s));
  EXPECT_LT(Clock::now() - start, 3s);
  ASSERT_EQ(seen.frames.size(), frames.size());
  for (std::size_t i = 0; i < frames.size(); ++i) ASSERT_EQ(seen.frames[i].id, frames[i].id) << i;
  // The 1 ms timer ran while the log was being delivered (unless delivery took under a millisecond).
  const bool took_under_a_tick = Clock::now() - start < 1ms;
  EXPECT_TRUE(took_under_a_tick || ticks_at_last_frame > 0) << ticks_at_last_frame;
  timer.cancel();
}

TEST_F(ReplayBusTest, LoopStartsAgainAtTheEnd) {
  auto bus = open("replay:" +
                  write_log("rig.log", LogFormat::candump_log,
                            {frame_of(kStartNs, 0x1, {1}), frame_of(kStartNs + 1 * kMs, 0x2, {2}),
                             frame_of(kStartNs + 2 * kMs, 0x3, {3})}) +
                  "?loop=1&speed=0");
  Seen seen;
  seen.attach(*bus);
  ASSERT_TRUE(run_until(
      io_, [&] { return seen.frames.size() >= 10; }, 3s));
  bus->close();
  for (std::size_t i = 0; i < 10; ++i) EXPECT_EQ(seen.frames[i].id, i % 3 + 1) << i;
  EXPECT_EQ(seen.end_reports(), 0);
}

TEST_F(ReplayBusTest, LoopKeepsTheTimingAcrossTheWrap) {
  auto bus = open("replay:" +
                  write_log("rig.log", LogFormat::candump_log,
                            {frame_of(kStartNs, 0x1, {1}), frame_of(kStartNs + 20 * kMs, 0x2, {2})}) +
                  "?loop=1");
  Seen seen;
  seen.attach(*bus);
  ASSERT_TRUE(run_until(
      io_, [&] { return seen.frames.size() >= 4; }, 3s));
  bus->close();
  EXPECT_EQ(seen.frames[2].id, 1u);
  EXPECT_GE(seen.times[3] - seen.times[0], 38ms);  // two gaps of 20 ms; the wrap itself adds none
}

TEST_F(ReplayBusTest, BusParameterSelectsOneBus) {
  auto bus =
      open("replay:" +
           write_log("rig.log", LogFormat::candump_log,
                     {frame_of(kStartNs, 0x1, {1}, "can0"), frame_of(kStartNs + 1 * kMs, 0x2, {2}, "can1"),
                      frame_of(kStartNs + 2 * kMs, 0x3, {3}, "can0"),
                      frame_of(kStartNs + 3 * kMs, 0x4, {4}, "can1")}) +
           "?bus=can1&speed=0");
  Seen seen;
  seen.attach(*bus);
  ASSERT_TRUE(run_until(
      io_, [&] { return seen.end_reports() == 1; }, 3s));
  ASSERT_EQ(seen.frames.size(), 2u);
  EXPECT_EQ(seen.frames[0].id, 2u);
  EXPECT_EQ(seen.frames[1].id, 4u);
  EXPECT_EQ(seen.frames[0].bus.view(), "can1");
  EXPECT_EQ(bus->counters().frames_dropped, 0u);
}

TEST_F(ReplayBusTest, EndOfLogIsReportedOnceAndTheBusStaysOpen) {
  const std::string path = write_log("rig.log", LogFormat::candump_log,
                                     {frame_of(kStartNs, 0x1, {1}), frame_of(kStartNs + 1 * kMs, 0x2, {2}),
                                      frame_of(kStartNs + 2 * kMs, 0x3, {3})});
  auto bus = open("replay:" + path);
  Seen seen;
  seen.attach(*bus);
  ASSERT_TRUE(run_until(
      io_, [&] { return seen.end_reports() == 1; }, 3s));
  io_.restart();
  io_.run_for(50ms);
  ASSERT_EQ(seen.errors.size(), 1u);
  EXPECT_EQ(seen.errors[0].code, ErrorCode::end_of_input);
  EXPECT_EQ(seen.errors[0].message, "replay: " + path + ": end of log after 3 frames");
  EXPECT_EQ(seen.frames.size(), 3u);
  EXPECT_FALSE(bus->is_closed());
  EXPECT_EQ(bus->counters().errors, 1u);
  // send() still accepts (and counts) valid frames, and refuses invalid ones.
  EXPECT_TRUE(bus->send(frame_of(0, 0x10, {1})).ok());
  Frame bad = frame_of(0, 0x10, {1});
  bad.id = 0x800;
  EXPECT_FALSE(bus->send(bad).ok());
  EXPECT_EQ(bus->counters().frames_sent, 1u);
  EXPECT_EQ(bus->describe(), "replay:" + path);
  bus->close();
  EXPECT_TRUE(bus->is_closed());
  EXPECT_FALSE(bus->send(frame_of(0, 0x10, {1})).ok());
}

TEST_F(ReplayBusTest, MalformedLinesAreSkippedCountedAndReportedWithTheirLine) {
  const std::string path = write_text("bad.log",
                                      "(1700000000.000000) can0 181#0102\n"
                                      "(1700000000.001000) can0 18G#0102\n"
                                      "(1700000000.002000) can0 182#03\n"
                                      "garbage that is no frame\n"
                                      "(1700000000.003000) can0 183#\n");
  auto bus = open("replay:" + path + "?speed=0");
  Seen seen;
  seen.attach(*bus);
  ASSERT_TRUE(run_until(
      io_, [&] { return seen.end_reports() == 1; }, 3s));
  ASSERT_EQ(seen.frames.size(), 3u);
  EXPECT_EQ(seen.frames[0].id, 0x181u);
  EXPECT_EQ(seen.frames[1].id, 0x182u);
  EXPECT_EQ(seen.frames[2].id, 0x183u);
  EXPECT_EQ(bus->counters().frames_dropped, 2u);
  ASSERT_EQ(seen.errors.size(), 3u);
  EXPECT_EQ(seen.errors[0].code, ErrorCode::parse_error);
  EXPECT_NE(seen.errors[0].message.find(path + ":2:"), std::string::npos) << seen.errors[0].message;
  EXPECT_NE(seen.errors[1].message.find(path + ":4:"), std::string::npos) << seen.errors[1].message;
  EXPECT_EQ(seen.errors[2].code, ErrorCode::end_of_input);
  EXPECT_FALSE(bus->is_closed());
}

TEST_F(ReplayBusTest, OnlyTheFirstMalformedLinesAreReported) {
  std::string text = "(1700000000.000000) can0 181#01\n";
  for (int i = 0; i < 50; ++i) text += "(1700000000.000000) can0 XYZ#01\n";
  text += "(1700000000.000000) can0 182#01\n";
  auto bus = open("replay:" + write_text("bad.log", text) + "?speed=0");
  Seen seen;
  seen.attach(*bus);
  ASSERT_TRUE(run_until(
      io_, [&] { return seen.end_reports() == 1; }, 3s));
  EXPECT_EQ(seen.frames.size(), 2u);
  EXPECT_EQ(bus->counters().frames_dropped, 50u);
  EXPECT_EQ(seen.errors.size(), 6u);  // five lines and the end
}

TEST_F(ReplayBusTest, HandlersMayCloseOrDestroyTheBus) {
  const std::string path = write_log("rig.log", LogFormat::candump_log, mixed_frames("can0"));
  auto bus = open("replay:" + path + "?speed=0");
  int received = 0;
  bus->on_receive([&](const Frame&) {
    ++received;
    bus.reset();
  });
  ASSERT_TRUE(run_until(
      io_, [&] { return received == 1; }, 3s));
  io_.restart();
  io_.run_for(20ms);
  EXPECT_EQ(received, 1);
}

TEST_F(ReplayBusTest, AMissingFileIsAnOpenErrorNamingThePath) {
  const std::string path = (dir_ / "no-such.log").string();
  auto bus = open_bus(io_, "replay:" + path);
  ASSERT_FALSE(bus.ok());
  EXPECT_EQ(bus.error().code, ErrorCode::io_error);
  EXPECT_NE(bus.error().message.find(path), std::string::npos) << bus.error().message;
}

TEST_F(ReplayBusTest, AnUnrecognisableFileIsAnOpenError) {
  const std::string path = write_text("noise.bin", "this is not\na CAN log\nat all\n");
  auto bus = open_bus(io_, "replay:" + path);
  ASSERT_FALSE(bus.ok());
  EXPECT_NE(bus.error().message.find(path), std::string::npos) << bus.error().message;
}

TEST_F(ReplayBusTest, BadUrlsAreInvalidArgumentsNamingTheParameter) {
  const std::string path = write_log("rig.log", LogFormat::candump_log, mixed_frames("can0"));
  struct Case {
    std::string query;
    std::string names;
  };
  const std::vector<Case> cases = {
      {"?speed=fast", "'speed'"}, {"?speed=-1", "'speed'"},
      {"?speed=", "'speed'"},     {"?loop=2", "'loop'"},
      {"?bus=", "'bus'"},         {"?bus=a_name_too_long_for_can", "'bus'"},
      {"?tempo=2", "'tempo'"},    {"?speed=1&speed=2", "'speed'"},
      {"?time=local", "'time'"},
  };
  for (const auto& c : cases) {
    auto bus = open_bus(io_, "replay:" + path + c.query);
    ASSERT_FALSE(bus.ok()) << c.query;
    EXPECT_EQ(bus.error().code, ErrorCode::invalid_argument) << c.query;
    EXPECT_NE(bus.error().message.find(c.names), std::string::npos) << bus.error().message;
  }
  auto empty = open_bus(io_, "replay:");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().code, ErrorCode::invalid_argument);
  EXPECT_TRUE(open_bus(io_, "replay:" + path + "?speed=0.5&loop=0&bus=can0&time=wall").ok());
}

// python-can (Debian python3-can) as an independent writer of the logs the bus replays.
TEST_F(ReplayBusTest, ReplaysLogsWrittenByPythonCan) {
  constexpr const char* kPython = "/usr/bin/python3";
  if (std::system((std::string(kPython) + " -c 'import can' > /dev/null 2>&1").c_str()) != 0) {
    GTEST_SKIP() << "python-can is not installed for /usr/bin/python3 (Debian package python3-can)";
  }
  const std::string script = write_text("write.py", R"(import sys, can
d = sys.argv[1]
msgs = [
    can.Message(timestamp=1700000000.0, arbitration_id=0x181, is_extended_id=False, data=bytes([1, 2, 3, 4]), channel="can0"),
    can.Message(timestamp=1700000000.05, arbitration_id=0x18FF50E5, is_extended_id=True, data=bytes(range(8)), channel="can0"),
    can.Message(timestamp=1700000000.1, arbitration_id=0x123, is_extended_id=False, is_fd=True, bitrate_switch=True, data=bytes(range(64)), channel="can0"),
]
with can.io.CanutilsLogWriter(d + "/py.log", channel="can0") as w:
    for m in msgs: w.on_message_received(m)
with can.io.ASCWriter(d + "/py.asc") as w:
    for m in msgs: w.on_message_received(m)
)");
  const std::string command = "TZ=UTC " + std::string(kPython) + " " + script + " " + dir_.string() + " > " +
                              (dir_ / "py.out").string() + " 2>&1";
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  for (const std::string name : {"py.log", "py.asc"}) {
    auto bus = open("replay:" + (dir_ / name).string() + "?speed=0");
    ASSERT_TRUE(bus);
    Seen seen;
    seen.attach(*bus);
    ASSERT_TRUE(run_until(
        io_, [&] { return seen.end_reports() == 1; }, 3s))
        << name;
    ASSERT_EQ(seen.frames.size(), 3u) << name;
    EXPECT_EQ(bus->counters().frames_dropped, 0u) << name;
    EXPECT_EQ(seen.frames[0].id, 0x181u);
    EXPECT_FALSE(seen.frames[0].extended);
    EXPECT_EQ(seen.frames[0].size, 4u);
    EXPECT_EQ(seen.frames[0].data[3], 4u);
    EXPECT_EQ(seen.frames[1].id, 0x18FF50E5u);
    EXPECT_TRUE(seen.frames[1].extended);
    EXPECT_EQ(seen.frames[1].size, 8u);
    EXPECT_TRUE(seen.frames[2].fd) << name;
    EXPECT_TRUE(seen.frames[2].bitrate_switch) << name;
    EXPECT_EQ(seen.frames[2].size, 64u);
    EXPECT_EQ(seen.frames[2].data[63], 63u);
  }
}

}  // namespace
}  // namespace cellguard::can
