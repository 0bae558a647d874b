// Log reading rates: candump -L lines per second through the public reader, from memory and from a
// file, and the ASC and TRC readers for comparison. The CLI's budget is 2 M decoded lines/s end to
// end, so the candump reader alone is meant to run at 10 M lines/s or more.
//
//   cmake --build build-logs --target log_read_bench && build-logs/bench/log_read_bench
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include "can/log.h"

namespace cellguard::can {
namespace {

constexpr std::size_t kFrames = 1'000'000;

// Rig-like traffic: PDO ids 0x181.. on can0, 8 random bytes, 100 us apart.
std::vector<Frame> make_frames() {
  std::mt19937 random(42);
  std::vector<Frame> frames(kFrames);
  for (std::size_t i = 0; i < kFrames; ++i) {
    Frame& f = frames[i];
    f.timestamp_ns = 1'700'000'000'000'000'000 + static_cast<std::int64_t>(i) * 100'000;
    f.id =
        0x181 + static_cast<std::uint32_t>(random() % 15) + 0x100 * static_cast<std::uint32_t>(random() % 4);
    f.bus = BusName("can0");
    f.size = 8;
    for (auto& b : f.data) b = static_cast<std::uint8_t>(random());
  }
  return frames;
}

const std::string& log_text(LogFormat format) {
  static std::string texts[4];
  std::string& text = texts[static_cast<int>(format)];
  if (text.empty()) {
    std::ostringstream out;
    auto writer = make_log_writer(format, out);
    for (const auto& f : make_frames()) (void)(*writer)->write(f);
    (void)(*writer)->finish();
    text = out.str();
  }
  return text;
}

void read_all(LogReader& reader, benchmark::State& state) {
  Frame frame;
  std::size_t frames = 0;
  for (;;) {
    auto got = reader.next(frame);
    if (!got.ok()) {
      state.SkipWithError(got.error().message.c_str());
      return;
    }
    if (!*got) break;
    ++frames;
  }
  benchmark::DoNotOptimize(frame);
  if (frames != kFrames) state.SkipWithError("wrong frame count");
}

// An istream over a string without copying it, so the copy is not measured.
class ViewBuf : public std::streambuf {
 public:
  explicit ViewBuf(const std::string& text) {
    char* begin = const_cast<char*>(text.data());
    setg(begin, begin, begin + text.size());
  }
};

void read_from_memory(benchmark::State& state, LogFormat format) {
  const std::string& text = log_text(format);
  for (auto _ : state) {
    ViewBuf buffer(text);
    std::istream in(&buffer);
    auto reader = make_log_reader(in, "bench", format);
    read_all(**reader, state);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kFrames));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * text.size()));
}

void BM_CandumpLogFromMemory(benchmark::State& state) { read_from_memory(state, LogFormat::candump_log); }
void BM_AscFromMemory(benchmark::State& state) { read_from_memory(state, LogFormat::asc); }
void BM_TrcFromMemory(benchmark::State& state) { read_from_memory(state, LogFormat::trc); }

// open_log_reader on a file, with format detection: the path the CLI takes.
void BM_CandumpLogFromFile(benchmark::State& state) {
  const auto path =
      std::filesystem::temp_directory_path() / ("cellguard_bench_" + std::to_string(::getpid()) + ".log");
  {
    std::ofstream out(path, std::ios::binary);
    out << log_text(LogFormat::candump_log);
  }
  for (auto _ : state) {
    auto reader = open_log_reader(path.string());
    read_all(**reader, state);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kFrames));
  std::filesystem::remove(path);
}

BENCHMARK(BM_CandumpLogFromMemory)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CandumpLogFromFile)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_AscFromMemory)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TrcFromMemory)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace cellguard::can

BENCHMARK_MAIN();
