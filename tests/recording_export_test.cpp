// `cellguard recording export` as a process: a recording written with the recorder API (and still
// open for writing, as on a running edge), a window exported as candump -L, ASC and TRC, read back by
// Debian's python-can (tests/peers/read_log.py) and by our own readers; bad input refused with
// the place and the cause.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "can/log.h"
#include "recorder/recorder.h"
#include "support/cellguard_process.h"

namespace cellguard {
namespace {

namespace fs = std::filesystem;

constexpr const char* kPython = "/usr/bin/python3";
constexpr std::int64_t kMs = 1'000'000;
constexpr std::int64_t kT0 = 1'796'616'000'000'000'000;  // 2026-12-07T04:00:00Z

struct Ran {
  int exit_code = -1;
  std::string out;  // stdout and stderr
};

Ran run(const std::string& command) {
  Ran r;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return r;
  char buf[65536];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) r.out.append(buf, n);
  const int status = ::pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// Frame n: 5 ms apart, standard and extended ids, lengths 0..8.
can::Frame frame_n(int n) {
  can::Frame f;
  f.timestamp_ns = kT0 + n * 5 * kMs;
  f.extended = n % 3 == 0;
  f.id = f.extended ? 0x18FF0000u + static_cast<std::uint32_t>(n)
                    : 0x100u + static_cast<std::uint32_t>(n % 0x600);
  f.bus.assign("can0");
  std::array<std::uint8_t, 8> data{};
  const auto size = static_cast<std::size_t>(n % 9);
  for (std::size_t i = 0; i < size; ++i)
    data[i] = static_cast<std::uint8_t>(static_cast<std::size_t>(n) * 7 + i);
  f.set_payload(std::span<const std::uint8_t>(data.data(), size));
  return f;
}

std::string hex(const can::Frame& f) {
  std::string s;
  char b[3];
  for (auto byte : f.payload()) {
    std::snprintf(b, sizeof b, "%02X", byte);
    s += b;
  }
  return s;
}

class RecordingExport : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cellguard-recexport-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    recording_ = (dir_ / "recording.sqlite").string();
    recorder::RecorderConfig config;
    config.path = recording_;
    config.synchronous_full = false;
    auto opened = recorder::Recorder::open(config);
    ASSERT_TRUE(opened) << opened.error().message;
    recorder_ = std::move(*opened);
    for (int n = 0; n < 1000; ++n) {  // 5 s of frames
      ASSERT_TRUE(recorder_->record_frame(frame_n(n)));
      if (n % 250 == 249) {
        ASSERT_TRUE(recorder_->flush());
      }
    }
  }
  void TearDown() override {
    recorder_.reset();
    fs::remove_all(dir_);
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  Ran cellguard(const std::string& args) const { return run(testing::binary() + " " + args); }

  fs::path dir_;
  std::string recording_;
  std::unique_ptr<recorder::Recorder> recorder_;  // open while exporting, as on a running edge
};

TEST_F(RecordingExport, AWindowReadsBackInPythonCanAndOurReadersInEveryFormat) {
  if (std::system((std::string(kPython) + " -c 'import can' > /dev/null 2>&1").c_str()) != 0)
    GTEST_SKIP() << "python-can is not installed for /usr/bin/python3 (Debian package python3-can)";
  // Frames 200..399: 04:00:01.000 to 04:00:01.995.
  const int first = 200, count = 200;
  for (const std::string ext : {"log", "asc", "trc"}) {
    SCOPED_TRACE(ext);
    const std::string out = path("window." + ext);
    const Ran r = cellguard("recording export " + recording_ +
                            " --from 2026-12-07T04:00:01Z --to 2026-12-07T04:00:01.995Z --out " + out);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    EXPECT_NE(r.out.find("export: 200 frames from 2026-12-07T04:00:01Z to 2026-12-07T04:00:01.995000000Z"),
              std::string::npos)
        << r.out;

    const Ran py = run(std::string(kPython) + " " +
                       (testing::source_dir() / "tests/peers/read_log.py").string() + " " + out);
    ASSERT_EQ(py.exit_code, 0) << py.out;
    std::vector<nlohmann::json> frames;
    std::istringstream lines(py.out);
    for (std::string line; std::getline(lines, line);)
      if (!line.empty()) frames.push_back(nlohmann::json::parse(line));
    ASSERT_EQ(frames.size(), static_cast<std::size_t>(count));
    for (int i = 0; i < count; ++i) {
      const can::Frame want = frame_n(first + i);
      const auto& got = frames[static_cast<std::size_t>(i)];
      EXPECT_EQ(got["id"].get<std::uint32_t>(), want.id) << i;
      EXPECT_EQ(got["extended"].get<bool>(), want.extended) << i;
      EXPECT_EQ(got["data"].get<std::string>(), hex(want)) << i;
      // Offsets from the window's first frame exactly (to the microsecond) in every format.
      const double offset = got["t"].get<double>() - frames[0]["t"].get<double>();
      EXPECT_NEAR(offset, i * 0.005, 1e-6) << i;
    }
    if (ext == "log") {  // candump -L keeps absolute times
      EXPECT_NEAR(frames[0]["t"].get<double>(), 1796616001.0, 1e-6);
    }

    auto reader = can::open_log_reader(out);
    ASSERT_TRUE(reader) << reader.error().message;
    can::Frame f;
    int n = 0;
    std::int64_t t0 = 0;
    for (;;) {
      auto next = (*reader)->next(f);
      ASSERT_TRUE(next) << next.error().message;
      if (!*next) break;
      const can::Frame want = frame_n(first + n);
      if (n == 0) t0 = f.timestamp_ns;
      EXPECT_EQ(f.id, want.id);
      EXPECT_EQ(f.extended, want.extended);
      EXPECT_EQ(hex(f), hex(want));
      EXPECT_EQ(f.timestamp_ns - t0, n * 5 * kMs);
      if (ext != "trc") {
        EXPECT_EQ(f.timestamp_ns, want.timestamp_ns) << "absolute times, to the microsecond";
      }
      ++n;
    }
    EXPECT_EQ(n, count);
  }
}

TEST_F(RecordingExport, RelativeTimesCountFromTheRecordingsEnds) {
  // The last second (frames 800..999) and the first 10 ms (frames 0..2) to standard output.
  Ran r = cellguard("recording export " + recording_ + " --from end-995ms --format candump");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("export: 200 frames"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(1796616004.000000) can0 420#"), std::string::npos) << r.out;
  r = cellguard("recording export " + recording_ + " --to start+10ms");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("export: 3 frames"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(1796616000.000000) can0 18FF0000#\n"), std::string::npos) << r.out;
}

TEST_F(RecordingExport, BadInputIsRefusedWithThePlaceAndTheCause) {
  struct Case {
    std::string args, message;
  };
  std::ofstream(path("capture.log")) << "(1.0) can0 123#00\n";
  const std::vector<Case> cases = {
      {recording_ + " --format pcap", "--format pcap: unknown log format: candump, asc or trc"},
      {recording_ + " --out x.bin", "--out x.bin: cannot tell the format from the extension"},
      {recording_ + " --from yesterday", "--from yesterday: expected ISO 8601"},
      {recording_ + " --to end-5parsecs", "--to end-5parsecs: '5parsecs' is not a duration"},
      {recording_ + " --from 2026-13-01T00:00:00Z", "--from 2026-13-01T00:00:00Z: expected ISO 8601"},
      {recording_ + " --from end --to start",
       "--from end (2026-12-07T04:00:04.995000000Z) is after --to start"},
      {path("none.sqlite"), "recording " + path("none.sqlite") + ": no such file"},
      {path("capture.log"), "recording " + path("capture.log") + ": not a readable SQLite database"},
  };
  for (const Case& c : cases) {
    const Ran r = cellguard("recording export " + c.args);
    EXPECT_EQ(r.exit_code, 2) << c.args << "\n" << r.out;
    EXPECT_NE(r.out.find("cellguard recording export: " + c.message), std::string::npos) << c.args << "\n"
                                                                                         << r.out;
  }
}

}  // namespace
}  // namespace cellguard
