// python-can (Debian python3-can 4.1.0) as an independent peer for the CAN log formats.
//
// tests/peers/write_logs.py writes seeded random frames (standard, extended, remote, error, CAN FD
// with BRS/ESI, all lengths) with python-can's own writers plus frames.json, the ground truth.
// Our readers must read those files back frame by frame; in the other direction our writers' files
// must read back in python-can (the script compares and prints "ok" or "mismatch" lines).
//
// Quirks of python-can 4.1.0's writers, allowed for below:
// - CanutilsLogWriter writes remote frames as "123#R": the requested length is lost.
// - CanutilsLogWriter and ASCWriter write every error frame as CAN_ERR_BUSERROR without data, and
//   ASCWriter always on its default channel 1.
// - ASCWriter numbers channels from 1 ("can0" -> 1, "can1" -> 2), writes the first frame's time
//   to the millisecond in "Begin Triggerblock" (local time: the script runs with TZ=UTC) and
//   offsets from the exact first time, so absolute times are off by up to 1 ms, offsets are exact.
// - TRCWriter writes only classic data frames (no remote, error or CAN FD), a $STARTTIME that is
//   not a date (days "." milliseconds-of-day concatenated, plus the current time), so only offsets
//   from the first frame can be compared; version 1.0 keeps whole milliseconds.
// - ASCReader reads a CAN FD frame of 0 bytes as a remote frame, so the script makes none.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "can/log.h"

namespace cellguard::can {
namespace {

namespace fs = std::filesystem;

constexpr const char* kPython = "/usr/bin/python3";

struct Expected {
  std::int64_t ts_us = 0;
  Frame frame;
  std::string channel;
};

std::string shell_quote(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) {
    if (c == '\'') {
      quoted += "'\\''";
    } else {
      quoted += c;
    }
  }
  return quoted + "'";
}

fs::path script_path() {
  if (const char* source = std::getenv("CELLGUARD_SOURCE_DIR"); source != nullptr && *source != '\0') {
    return fs::path(source) / "tests" / "peers" / "write_logs.py";
  }
  return fs::path(__FILE__).parent_path() / "peers" / "write_logs.py";
}

// Runs a command with its output captured; returns the exit status and the output.
int run(const std::string& command, std::string& output, const fs::path& output_file) {
  const int status = std::system((command + " > " + shell_quote(output_file.string()) + " 2>&1").c_str());
  std::ifstream in(output_file);
  std::stringstream text;
  text << in.rdbuf();
  output = text.str();
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

class PythonCanPeer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (std::system((std::string(kPython) + " -c 'import can' > /dev/null 2>&1").c_str()) != 0) {
      skip_reason_ = "python-can is not installed for /usr/bin/python3 (Debian package python3-can)";
      return;
    }
    if (!fs::exists(script_path())) {
      skip_reason_ = "peer script not found: " + script_path().string();
      return;
    }
    dir_ = fs::temp_directory_path() / ("cellguard_python_can_peer_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::string output;
    const int status = run("TZ=UTC " + std::string(kPython) + " " + shell_quote(script_path().string()) +
                               " write " + shell_quote(dir_.string()),
                           output, dir_ / "write.out");
    if (status != 0) {
      setup_error_ = "write_logs.py failed (" + std::to_string(status) + "): " + output;
      return;
    }
    std::ifstream in(dir_ / "frames.json");
    const auto json = nlohmann::json::parse(in, nullptr, false);
    if (json.is_discarded()) {
      setup_error_ = "frames.json is not JSON";
      return;
    }
    for (const auto& item : json.at("frames")) {
      Expected e;
      e.ts_us = item.at("ts_us").get<std::int64_t>();
      e.channel = item.at("channel").get<std::string>();
      Frame& f = e.frame;
      f.timestamp_ns = e.ts_us * 1000;
      f.id = item.at("id").get<std::uint32_t>();
      f.extended = item.at("extended").get<bool>();
      f.remote = item.at("remote").get<bool>();
      f.error = item.at("error").get<bool>();
      f.fd = item.at("fd").get<bool>();
      f.bitrate_switch = item.at("brs").get<bool>();
      f.error_state = item.at("esi").get<bool>();
      f.size = item.at("size").get<std::uint8_t>();
      f.bus = BusName(e.channel);
      const std::string hex = item.at("data").get<std::string>();
      for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
        f.data[i / 2] = static_cast<std::uint8_t>(std::stoul(hex.substr(i, 2), nullptr, 16));
      }
      if (f.error) {
        f.id = 0x80;  // what python-can writes for any error frame: CAN_ERR_BUSERROR
        f.extended = false;
      }
      expected_.push_back(e);
    }
  }

  static void TearDownTestSuite() {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  void SetUp() override {
    if (!skip_reason_.empty()) GTEST_SKIP() << skip_reason_;
    ASSERT_TRUE(setup_error_.empty()) << setup_error_;
    ASSERT_GE(expected_.size(), 100u);
  }

  static std::vector<Frame> read_file(const std::string& name) {
    std::vector<Frame> frames;
    auto reader = open_log_reader((dir_ / name).string());
    EXPECT_TRUE(reader.ok()) << reader.error().message;
    if (!reader.ok()) return frames;
    Frame frame;
    for (;;) {
      auto got = (*reader)->next(frame);
      EXPECT_TRUE(got.ok()) << got.error().message;
      if (!got.ok()) continue;
      if (!*got) break;
      frames.push_back(frame);
    }
    return frames;
  }

  static std::vector<Expected> classic_data_only() {
    std::vector<Expected> result;
    for (const auto& e : expected_) {
      if (!e.frame.remote && !e.frame.error && !e.frame.fd) result.push_back(e);
    }
    return result;
  }

  // Writes the ground-truth frames with our writer and has python-can read them back.
  static void check_python_reads_ours(LogFormat format, const std::string& kind) {
    {
      std::ofstream out(dir_ / ("ours." + kind), std::ios::binary);
      auto writer = make_log_writer(format, out);
      ASSERT_TRUE(writer.ok());
      for (const auto& e : expected_) {
        Frame f = e.frame;
        ASSERT_TRUE((*writer)->write(f).ok());
      }
      ASSERT_TRUE((*writer)->finish().ok());
    }
    std::string output;
    const int status = run(std::string(kPython) + " " + shell_quote(script_path().string()) + " check " +
                               shell_quote(dir_.string()) + " " + kind,
                           output, dir_ / ("check_" + kind + ".out"));
    EXPECT_EQ(status, 0) << output;
    EXPECT_NE(output.find("ok ours." + kind), std::string::npos) << output;
  }

  static std::string skip_reason_;
  static std::string setup_error_;
  static fs::path dir_;
  static std::vector<Expected> expected_;
};

std::string PythonCanPeer::skip_reason_;
std::string PythonCanPeer::setup_error_;
fs::path PythonCanPeer::dir_;
std::vector<Expected> PythonCanPeer::expected_;

void expect_same_content(const Frame& got, const Frame& want, std::size_t index) {
  SCOPED_TRACE("frame " + std::to_string(index));
  EXPECT_EQ(got.error, want.error);
  EXPECT_EQ(got.id, want.id);
  EXPECT_EQ(got.extended, want.extended);
  EXPECT_EQ(got.remote, want.remote);
  EXPECT_EQ(got.fd, want.fd);
  EXPECT_EQ(got.bitrate_switch, want.bitrate_switch);
  EXPECT_EQ(got.error_state, want.error_state);
  EXPECT_EQ(got.size, want.size);
  if (!want.remote) {
    EXPECT_TRUE(std::equal(want.data.begin(), want.data.begin() + want.size, got.data.begin()));
  }
}

TEST_F(PythonCanPeer, OurCandumpReaderReadsCanutilsLogWriterFramesExactly) {
  const auto frames = read_file("py.log");
  ASSERT_EQ(frames.size(), expected_.size());
  for (std::size_t i = 0; i < frames.size(); ++i) {
    Frame want = expected_[i].frame;
    if (want.remote) want.size = 0;  // python-can drops the remote length
    expect_same_content(frames[i], want, i);
    EXPECT_EQ(frames[i].timestamp_ns, want.timestamp_ns) << "frame " << i;
    EXPECT_EQ(frames[i].bus.view(), expected_[i].channel) << "frame " << i;
  }
}

TEST_F(PythonCanPeer, OurAscReaderReadsAscWriterFramesWithExactOffsets) {
  const auto frames = read_file("py.asc");
  ASSERT_EQ(frames.size(), expected_.size());
  const std::int64_t first_ns = expected_[0].frame.timestamp_ns;
  for (std::size_t i = 0; i < frames.size(); ++i) {
    const Frame& want = expected_[i].frame;
    expect_same_content(frames[i], want, i);
    EXPECT_EQ(frames[i].timestamp_ns - frames[0].timestamp_ns, want.timestamp_ns - first_ns) << "frame " << i;
    const std::string channel = want.error ? "1" : (expected_[i].channel == "can0" ? "1" : "2");
    EXPECT_EQ(frames[i].bus.view(), channel) << "frame " << i;
  }
  // The Begin Triggerblock date holds the first time to the millisecond.
  EXPECT_LE(frames[0].timestamp_ns, first_ns);
  EXPECT_GT(frames[0].timestamp_ns, first_ns - 1'000'000);
}

TEST_F(PythonCanPeer, OurTrcReaderReadsTrcWriterVersion21Offsets) {
  const auto frames = read_file("py.trc");
  const auto want = classic_data_only();
  ASSERT_EQ(frames.size(), want.size());
  for (std::size_t i = 0; i < frames.size(); ++i) {
    expect_same_content(frames[i], want[i].frame, i);
    EXPECT_EQ(frames[i].timestamp_ns - frames[0].timestamp_ns, (want[i].ts_us - want[0].ts_us) * 1000)
        << "frame " << i;
    EXPECT_EQ(frames[i].bus.view(), want[i].channel == "can0" ? "1" : "2") << "frame " << i;
  }
}

TEST_F(PythonCanPeer, OurTrcReaderReadsTrcWriterVersion10ToTheMillisecond) {
  const auto frames = read_file("py_v10.trc");
  const auto want = classic_data_only();
  ASSERT_EQ(frames.size(), want.size());
  // Offsets are from python-can's first frame, whatever its kind.
  const std::int64_t first_us = expected_[0].ts_us;
  for (std::size_t i = 0; i < frames.size(); ++i) {
    expect_same_content(frames[i], want[i].frame, i);
    const std::int64_t offset_us = want[i].ts_us - first_us;
    EXPECT_NEAR(static_cast<double>(frames[i].timestamp_ns), static_cast<double>(offset_us * 1000), 1e6)
        << "frame " << i;
  }
}

TEST_F(PythonCanPeer, PythonCanReadsOurCandumpLog) { check_python_reads_ours(LogFormat::candump_log, "log"); }

TEST_F(PythonCanPeer, PythonCanReadsOurAsc) { check_python_reads_ours(LogFormat::asc, "asc"); }

TEST_F(PythonCanPeer, PythonCanReadsTheDataFramesOfOurTrc) { check_python_reads_ours(LogFormat::trc, "trc"); }

}  // namespace
}  // namespace cellguard::can
