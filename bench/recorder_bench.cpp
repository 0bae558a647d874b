// The edge's recording load: the rig's full CAN traffic (15 modules x 8 PDOs x 10 Hz = 1200 frames/s),
// ~10 samples/s and a few events, through Recorder (SQLite WAL, synchronous FULL, zstd 3, a block
// every 200 ms). Reports the writer thread's CPU per second of rig data and the record_frame() cost.
#include <benchmark/benchmark.h>
#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>

#include "recorder/recorder.h"

namespace {

using namespace cellguard;
using namespace cellguard::recorder;

struct TempDir {
  std::string path;
  TempDir() {
    path = (std::filesystem::temp_directory_path() / ("cellguard-recorder-bench-" + std::to_string(getpid())))
               .string();
    std::filesystem::remove_all(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

std::unique_ptr<Recorder> open_recorder(const std::string& path, bool synchronous_full = true) {
  RecorderConfig c;
  c.path = path;
  c.synchronous_full = synchronous_full;
  auto r = Recorder::open(c);
  if (!r.ok()) {
    std::fprintf(stderr, "%s\n", r.error().message.c_str());
    std::abort();
  }
  return std::move(*r);
}

// Rig-like PDOs: four 16-bit values per frame that wander by a few counts, as cell voltages,
// currents and temperatures do between 10 Hz samples.
class RigTraffic {
 public:
  can::Frame next(TimeNs t, int module, int pdo) {
    static constexpr std::uint32_t kBase[8] = {0x180, 0x280, 0x380, 0x480, 0x190, 0x290, 0x390, 0x490};
    can::Frame f;
    f.timestamp_ns = t;
    f.id = kBase[pdo] + static_cast<std::uint32_t>(module + 1);
    f.size = 8;
    f.bus.assign("can0");
    auto& v = values_[module][pdo];
    for (int i = 0; i < 4; ++i) {
      rng_ = rng_ * 6364136223846793005ull + 1442695040888963407ull;
      v[i] = static_cast<std::uint16_t>(v[i] + static_cast<int>((rng_ >> 60) % 5) - 2);
      f.data[2 * i] = static_cast<std::uint8_t>(v[i]);
      f.data[2 * i + 1] = static_cast<std::uint8_t>(v[i] >> 8);
    }
    return f;
  }
  RigTraffic() {
    for (auto& m : values_)
      for (auto& p : m)
        for (int i = 0; i < 4; ++i) p[i] = static_cast<std::uint16_t>(3940 + 100 * i);
  }

 private:
  std::uint16_t values_[15][8][4];
  std::uint64_t rng_ = 42;
};

std::uint64_t stored_bytes(const std::string& path) {
  sqlite3* db = nullptr;
  std::uint64_t n = 0;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    std::fprintf(stderr, "%s: %s\n", path.c_str(), sqlite3_errmsg(db));
  } else {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db, "SELECT coalesce(sum(length(data)), 0) FROM blocks", -1, &s, nullptr) ==
            SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW) {
      n = static_cast<std::uint64_t>(sqlite3_column_int64(s, 0));
    }
    sqlite3_finalize(s);
  }
  sqlite3_close(db);
  return n;
}

// One iteration = one second of rig data in five 200 ms slices; each slice ends with flush(), which
// commits a block as the 200 ms timer would (so one block per 200 ms, as on the edge).
// Argument: 1 = synchronous FULL (the default: fsync per commit), 0 = NORMAL.
void BM_RecorderRigSecond(benchmark::State& state) {
  TempDir dir;
  const std::string path = dir.path + "/rig.db";
  auto rec = open_recorder(path, state.range(0) != 0);
  std::uint32_t channels[10];
  for (int i = 0; i < 10; ++i) channels[i] = *rec->channel("chan" + std::to_string(i), "V");
  RigTraffic traffic;
  // Now, not a fixed date: the 30-day age bound would delete older blocks at once.
  TimeNs t = std::chrono::duration_cast<std::chrono::nanoseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  const TimeNs cpu_before = rec->stats().writer_cpu_ns;
  std::int64_t seconds = 0;
  for (auto _ : state) {
    for (int slice = 0; slice < 5; ++slice) {
      for (int cycle = 0; cycle < 2; ++cycle) {  // 2 x 100 ms PDO cycles per slice
        for (int m = 0; m < 15; ++m)
          for (int p = 0; p < 8; ++p) rec->record_frame(traffic.next(t + (m * 8 + p) * 50'000, m, p));
        t += 100'000'000;
      }
      for (int i = 0; i < 2; ++i) rec->record_sample(t, channels[(slice * 2 + i) % 10], 20.0 + slice * 0.01);
      if (slice == 0) rec->record_event(t, "state", R"({"state":"NORMAL","reason":"periodic"})");
      if (!rec->flush().ok()) state.SkipWithError("flush failed");
    }
    ++seconds;
  }
  const auto stats = rec->stats();
  rec->close();
  const double cpu_s = static_cast<double>(stats.writer_cpu_ns - cpu_before) / 1e9;
  state.counters["writer_cpu_pct_of_core"] = 100.0 * cpu_s / static_cast<double>(seconds);
  state.counters["writer_cpu_us_per_rig_s"] = 1e6 * cpu_s / static_cast<double>(seconds);
  state.counters["stored_bytes_per_rig_s"] =
      static_cast<double>(stored_bytes(path)) / static_cast<double>(seconds);
  state.counters["dropped"] = static_cast<double>(stats.records_dropped);
  state.SetItemsProcessed(seconds * 1213);
}
BENCHMARK(BM_RecorderRigSecond)->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond)->UseRealTime();

// The hot-path cost of record_frame() with the writer running; the queue is drained by a flush
// outside the timed region every 16384 calls so no call is a drop.
void BM_RecordFrame(benchmark::State& state) {
  TempDir dir;
  auto rec = open_recorder(dir.path + "/frames.db");
  RigTraffic traffic;
  can::Frame frame = traffic.next(1'700'000'000'000'000'000, 0, 0);
  std::int64_t n = 0;
  for (auto _ : state) {
    frame.timestamp_ns += 833'333;
    benchmark::DoNotOptimize(rec->record_frame(frame));
    if (++n % 16384 == 0) {
      state.PauseTiming();
      if (!rec->flush().ok()) state.SkipWithError("flush failed");
      state.ResumeTiming();
    }
  }
  const auto stats = rec->stats();
  state.counters["dropped"] = static_cast<double>(stats.records_dropped);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RecordFrame);

}  // namespace

BENCHMARK_MAIN();
