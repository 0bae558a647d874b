// The server's store (issue 5, item 6): durable ingest rate, bytes per sample, query latency.
//
// Data: the rig stream of store/rig_stream.h (the project's DBC and codec, 15 modules x 8 PDOs at
// 10 Hz, board at 1 Hz, inverter at 5 Hz). Batches are 200 ms of one rig (~1,400 samples), as an edge
// sends them; one put_batches call (one transaction) carries the batches of many edges.
#include <benchmark/benchmark.h>
#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "store/rig_stream.h"
#include "store/store.h"

namespace {

using namespace cellguard::store;

constexpr TimeNs kT0 = 1'796'119'200'000'000'000;

std::string temp_dir() {
  char pattern[] = "/tmp/cellguard-store-bench-XXXXXX";
  return ::mkdtemp(pattern);
}

std::unique_ptr<Store> open(const std::string& path, Synchronous sync, bool background) {
  SqliteStoreConfig config;
  config.path = path;
  config.synchronous = sync;
  config.background_compaction = background;
  auto s = open_sqlite_store(config);
  if (!s) {
    std::fprintf(stderr, "%s\n", s.error().message.c_str());
    std::abort();
  }
  return std::move(s.value());
}

// Durable ingest: `edges` rigs, each call = one transaction with `per_call` batches of 200 ms per edge.
// Background compaction runs meanwhile (its cost is included). Arg 0: 1 = synchronous FULL.
void BM_Ingest(benchmark::State& state) {
  const bool full = state.range(0) == 1;
  const int edges = static_cast<int>(state.range(1));
  const int per_call = static_cast<int>(state.range(2));
  const std::string dir = temp_dir();
  auto store = open(dir + "/store.sqlite", full ? Synchronous::full : Synchronous::normal, true);
  // A pool of pre-generated batches per edge, re-sent with fresh seqs (generation is not measured;
  // copying them into the call is, standing in for the server's decoding).
  constexpr int kPool = 50;
  std::vector<std::vector<Batch>> pool(static_cast<std::size_t>(edges));
  for (int e = 0; e < edges; ++e) {
    auto rig = std::move(testing::RigStream::create({15, kT0, static_cast<std::uint64_t>(e + 1)}).value());
    const std::string id = "edge-" + std::to_string(e);
    (void)store->put_edge(rig->info(id));
    for (int i = 0; i < kPool; ++i) pool[static_cast<std::size_t>(e)].push_back(rig->next(200'000'000));
  }
  std::uint64_t seq = 0, samples = 0, cursor = 0;
  std::vector<EdgeBatches> call(static_cast<std::size_t>(edges));
  for (int e = 0; e < edges; ++e) call[static_cast<std::size_t>(e)].edge_id = "edge-" + std::to_string(e);
  for (auto _ : state) {
    for (int e = 0; e < edges; ++e) {
      auto& out = call[static_cast<std::size_t>(e)].batches;
      out.clear();
      for (int k = 0; k < per_call; ++k) {
        Batch& b = pool[static_cast<std::size_t>(e)][(cursor + static_cast<std::uint64_t>(k)) % kPool];
        b.seq = seq + static_cast<std::uint64_t>(k) + 1;
        out.push_back(b);
      }
    }
    auto r = store->put_batches(call);
    if (!r)
      state.SkipWithError(r.error().message.c_str());
    else
      samples += r->samples;
    seq += static_cast<std::uint64_t>(per_call);
    cursor += static_cast<std::uint64_t>(per_call);
  }
  const StoreStats st = store->stats();
  state.counters["samples_per_s"] =
      benchmark::Counter(static_cast<double>(samples), benchmark::Counter::kIsRate);
  state.counters["samples_per_call"] = static_cast<double>(samples) / static_cast<double>(state.iterations());
  state.counters["compacted_batches"] = static_cast<double>(st.batches_compacted);
  store.reset();
  std::filesystem::remove_all(dir);
}
// 20 rigs x 4 batches (800 ms of data each) ~ 113k samples per transaction.
// The first runs long enough (4,000 batches per edge = 8,000 rows per series) that background
// compaction folds every edge twice while ingest goes on; the others are short (no compaction).
BENCHMARK(BM_Ingest)->Args({1, 20, 4})->Iterations(1000)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Ingest)
    ->Args({1, 20, 4})
    ->Args({1, 100, 1})
    ->Args({0, 20, 4})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond)
    ->MinTime(5);

// Bytes per sample on disk for one hour of the full 15-module rig, after compaction (and VACUUM,
// so the freed pages of compacted batches do not count; a running store reuses them).
void BM_BytesPerSample(benchmark::State& state) {
  const int minutes = static_cast<int>(state.range(0));
  for (auto _ : state) {
    const std::string dir = temp_dir();
    auto store = open(dir + "/store.sqlite", Synchronous::normal, false);
    auto rig = std::move(testing::RigStream::create({15, kT0, 1}).value());
    (void)store->put_edge(rig->info("rig"));
    for (int i = 0; i < minutes * 60 * 5; i += 10) {
      std::vector<EdgeBatches> call{{"rig", {}}};
      for (int k = 0; k < 10; ++k) call[0].batches.push_back(rig->next(200'000'000));
      if (!store->put_batches(call)) state.SkipWithError("put failed");
    }
    const double before = static_cast<double>(store->stats().file_bytes);
    const auto t0 = std::chrono::steady_clock::now();
    auto c = store->compact(true);
    const double compact_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!c) state.SkipWithError(c.error().message.c_str());
    store.reset();
    sqlite3* db = nullptr;
    sqlite3_open((dir + "/store.sqlite").c_str(), &db);
    sqlite3_stmt* q = nullptr;
    sqlite3_prepare_v2(db, "SELECT sum(length(data)) FROM chunks", -1, &q, nullptr);
    sqlite3_step(q);
    const double chunk_bytes = static_cast<double>(sqlite3_column_int64(q, 0));
    sqlite3_finalize(q);
    sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE); VACUUM", nullptr, nullptr, nullptr);
    sqlite3_close(db);
    const double file = static_cast<double>(std::filesystem::file_size(dir + "/store.sqlite"));
    const double samples = static_cast<double>(rig->samples());
    state.counters["samples"] = samples;
    state.counters["B_per_sample_file"] = file / samples;
    state.counters["B_per_sample_chunks"] = chunk_bytes / samples;
    state.counters["B_per_sample_uncompacted"] = before / samples;
    state.counters["compact_samples_per_s"] = samples / compact_s;
    std::filesystem::remove_all(dir);
  }
}
BENCHMARK(BM_BytesPerSample)->Arg(60)->Iterations(1)->Unit(benchmark::kSecond);

// Series query over one day of a 1-module rig (each channel's data lives in its own series, so
// the other modules would not be read): downsampled to 1,000 buckets, and the last hour raw.
struct DayStore {
  std::string dir;
  std::unique_ptr<Store> store;
  DayStore() {
    dir = temp_dir();
    store = open(dir + "/store.sqlite", Synchronous::normal, false);
    auto rig = std::move(testing::RigStream::create({1, kT0, 2}).value());
    (void)store->put_edge(rig->info("rig"));
    for (int i = 0; i < 24 * 3600 / 10; ++i) {  // 10 s per transaction
      std::vector<EdgeBatches> call{{"rig", {}}};
      for (int k = 0; k < 50; ++k) call[0].batches.push_back(rig->next(200'000'000));
      (void)store->put_batches(call);
      if (i % 360 == 359) (void)store->compact(true);
    }
    (void)store->compact(true);
  }
  ~DayStore() {
    store.reset();
    std::filesystem::remove_all(dir);
  }
};

DayStore& day_store() {
  static DayStore d;
  return d;
}

void BM_SeriesDay(benchmark::State& state) {
  Store& store = *day_store().store;
  const std::size_t max_points = static_cast<std::size_t>(state.range(0));
  const TimeNs from = state.range(1) ? kT0 + 23 * 3'600'000'000'000LL : kT0;
  std::size_t points = 0;
  for (auto _ : state) {
    auto s = store.series("rig", "BMU01_pdo3.Cell_5_Voltage", from, kT0 + 86'400'000'000'000LL, max_points);
    if (!s)
      state.SkipWithError(s.error().message.c_str());
    else
      points = s->downsampled ? s->buckets.size() : s->points.size();
  }
  state.counters["returned"] = static_cast<double>(points);
}
BENCHMARK(BM_SeriesDay)->Args({1000, 0})->Args({100000, 1})->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
