// Raw logs out of a recording: a window of frames written by the recorder, read back through our
// own log readers in every format; read-only access while the recorder writes; refusals.
#include "recorder/log_export.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "recorder/recorder.h"

namespace cellguard::recorder {
namespace {

namespace fs = std::filesystem;

constexpr TimeNs kMs = 1'000'000;
constexpr TimeNs kT0 = 1'796'616'000'000'000'000;  // 2026-12-07 04:00:00 UTC

can::Frame numbered_frame(TimeNs t, std::uint32_t n) {
  can::Frame f;
  f.timestamp_ns = t;
  f.id = 0x180 + (n % 8);
  f.bus.assign("can0");
  const std::uint8_t bytes[4] = {static_cast<std::uint8_t>(n), static_cast<std::uint8_t>(n >> 8), 0xAB, 0xCD};
  f.set_payload(bytes);
  return f;
}

class LogExport : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cellguard-log-export-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    path_ = (dir_ / "recording.sqlite").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  // 300 frames 10 ms apart in three committed blocks, a sample and an event among them.
  std::unique_ptr<Recorder> record() {
    RecorderConfig config;
    config.path = path_;
    config.synchronous_full = false;
    auto recorder = Recorder::open(config);
    EXPECT_TRUE(recorder) << recorder.error().message;
    auto channel = (*recorder)->channel("board.temp1_c", "degC");
    EXPECT_TRUE(channel);
    for (std::uint32_t n = 0; n < 300; ++n) {
      EXPECT_TRUE((*recorder)->record_frame(numbered_frame(kT0 + n * 10 * kMs, n)));
      if (n == 50) {
        (*recorder)->record_sample(kT0 + n * 10 * kMs, *channel, 22.5);
        (*recorder)->record_event(kT0 + n * 10 * kMs, "state", R"({"text":"x"})");
      }
      if (n % 100 == 99) {
        EXPECT_TRUE((*recorder)->flush());
      }
    }
    return std::move(*recorder);
  }

  fs::path dir_;
  std::string path_;
};

std::vector<can::Frame> read_back(const std::string& text, can::LogFormat format) {
  std::istringstream in(text);
  auto reader = can::make_log_reader(in, "export", format);
  EXPECT_TRUE(reader) << reader.error().message;
  std::vector<can::Frame> frames;
  can::Frame f;
  for (;;) {
    auto next = (*reader)->next(f);
    EXPECT_TRUE(next) << next.error().message;
    if (!next || !*next) break;
    frames.push_back(f);
  }
  return frames;
}

TEST_F(LogExport, WritesTheFramesOfAWindowAcrossBlocks) {
  auto recorder = record();
  // Frames 95..205 (1.10 s): across the three blocks, ends included.
  auto reader = RecordingReader::open_read_only(path_);
  ASSERT_TRUE(reader) << reader.error().message;
  std::ostringstream out;
  auto writer = can::make_log_writer(can::LogFormat::candump_log, out);
  ASSERT_TRUE(writer);
  auto stats = export_frames(*reader, kT0 + 950 * kMs, kT0 + 2050 * kMs, **writer);
  ASSERT_TRUE(stats) << stats.error().message;
  EXPECT_EQ(stats->frames, 111u);
  EXPECT_EQ(stats->blocks, 3u);
  EXPECT_EQ(stats->first_ns, kT0 + 950 * kMs);
  EXPECT_EQ(stats->last_ns, kT0 + 2050 * kMs);
  const auto frames = read_back(out.str(), can::LogFormat::candump_log);
  ASSERT_EQ(frames.size(), 111u);
  for (std::size_t i = 0; i < frames.size(); ++i) {
    const auto expected =
        numbered_frame(kT0 + (95 + static_cast<TimeNs>(i)) * 10 * kMs, 95 + static_cast<std::uint32_t>(i));
    EXPECT_EQ(frames[i], expected) << "frame " << i;
  }
  EXPECT_EQ(out.str().substr(0, 38), "(1796616000.950000) can0 187#5F00ABCD\n");
}

TEST_F(LogExport, AscAndTrcKeepIdsDataAndTimeOffsets) {
  auto recorder = record();
  auto reader = RecordingReader::open_read_only(path_);
  ASSERT_TRUE(reader) << reader.error().message;
  for (auto format : {can::LogFormat::asc, can::LogFormat::trc}) {
    std::ostringstream out;
    auto writer = can::make_log_writer(format, out);
    ASSERT_TRUE(writer);
    auto stats = export_frames(*reader, kT0, kT0 + 99 * 10 * kMs, **writer);
    ASSERT_TRUE(stats) << stats.error().message;
    EXPECT_EQ(stats->frames, 100u);
    const auto frames = read_back(out.str(), format);
    ASSERT_EQ(frames.size(), 100u) << can::to_string(format);
    for (std::size_t i = 0; i < frames.size(); ++i) {
      const auto expected = numbered_frame(0, static_cast<std::uint32_t>(i));
      EXPECT_EQ(frames[i].id, expected.id);
      EXPECT_EQ(std::vector<std::uint8_t>(frames[i].payload().begin(), frames[i].payload().end()),
                std::vector<std::uint8_t>(expected.payload().begin(), expected.payload().end()));
      EXPECT_EQ(frames[i].timestamp_ns - frames[0].timestamp_ns, static_cast<TimeNs>(i) * 10 * kMs)
          << can::to_string(format) << " frame " << i;
    }
  }
}

TEST_F(LogExport, AWindowWithoutFramesWritesAnEmptyLog) {
  record().reset();  // closed: no -wal or -shm file beside the recording
  auto reader = RecordingReader::open_read_only(path_);
  ASSERT_TRUE(reader);
  std::ostringstream out;
  auto writer = can::make_log_writer(can::LogFormat::candump_log, out);
  auto stats = export_frames(*reader, kT0 - 5000 * kMs, kT0 - 1, **writer);
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->frames, 0u);
  EXPECT_EQ(stats->blocks, 0u);
  EXPECT_EQ(out.str(), "");
}

TEST_F(LogExport, ReadsWhileTheRecorderWritesAndNeverWrites) {
  auto recorder = record();  // still open: the writer holds the file
  auto reader = RecordingReader::open_read_only(path_);
  ASSERT_TRUE(reader) << reader.error().message;
  auto range = reader->time_range();
  ASSERT_TRUE(range);
  ASSERT_TRUE(*range);
  EXPECT_EQ((*range)->first, kT0);
  EXPECT_EQ((*range)->second, kT0 + 2990 * kMs);
  // More frames arrive while the reader is open: a new export sees them.
  ASSERT_TRUE(recorder->record_frame(numbered_frame(kT0 + 3000 * kMs, 300)));
  ASSERT_TRUE(recorder->flush());
  std::ostringstream out;
  auto writer = can::make_log_writer(can::LogFormat::candump_log, out);
  auto stats = export_frames(*reader, kT0 + 2995 * kMs, kT0 + 4000 * kMs, **writer);
  ASSERT_TRUE(stats) << stats.error().message;
  EXPECT_EQ(stats->frames, 1u);
  EXPECT_FALSE(reader->set_cursor("uplink", 3)) << "a read-only reader must not write";
}

TEST_F(LogExport, RefusesMissingAndForeignFiles) {
  auto missing = RecordingReader::open_read_only((dir_ / "none.sqlite").string());
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("none.sqlite: no such file"), std::string::npos)
      << missing.error().message;
  std::ofstream((dir_ / "text.log").string()) << "(1.0) can0 123#00\n";
  auto text = RecordingReader::open_read_only((dir_ / "text.log").string());
  ASSERT_FALSE(text);
  EXPECT_NE(text.error().message.find("text.log: not a readable SQLite database"), std::string::npos)
      << text.error().message;
}

}  // namespace
}  // namespace cellguard::recorder
