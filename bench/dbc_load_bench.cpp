// Loading a DBC file: read from disk and parse, and parse alone from memory.
// The file comes from CELLGUARD_DBC_FILE (e.g. the rig's Goodwood_15BMUs_IFSpecV3_Node.dbc); the
// budget is 5 ms for the rig file and 30 ms for the largest corpus file.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>

#include "core/text.h"
#include "dbc/dbc.h"

namespace {

const char* dbc_file() { return std::getenv("CELLGUARD_DBC_FILE"); }

void BM_LoadDbcFile(benchmark::State& state) {
  const char* path = dbc_file();
  if (path == nullptr) {
    state.SkipWithError("set CELLGUARD_DBC_FILE to a DBC file");
    return;
  }
  std::size_t bytes = 0;
  for (auto _ : state) {
    auto loaded = cellguard::dbc::load_dbc(path);
    if (!loaded.ok()) {
      state.SkipWithError(loaded.error().message.c_str());
      return;
    }
    bytes = loaded->database.messages.size();
    benchmark::DoNotOptimize(loaded);
  }
  state.counters["messages"] = static_cast<double>(bytes);
}
BENCHMARK(BM_LoadDbcFile)->Unit(benchmark::kMillisecond);

void BM_ParseDbcText(benchmark::State& state) {
  const char* path = dbc_file();
  if (path == nullptr) {
    state.SkipWithError("set CELLGUARD_DBC_FILE to a DBC file");
    return;
  }
  auto text = cellguard::read_file(path);
  if (!text.ok()) {
    state.SkipWithError(text.error().message.c_str());
    return;
  }
  for (auto _ : state) {
    auto parsed = cellguard::dbc::parse_dbc(*text, path);
    benchmark::DoNotOptimize(parsed);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * text->size()));
}
BENCHMARK(BM_ParseDbcText)->Unit(benchmark::kMillisecond);

void BM_WriteDbc(benchmark::State& state) {
  const char* path = dbc_file();
  if (path == nullptr) {
    state.SkipWithError("set CELLGUARD_DBC_FILE to a DBC file");
    return;
  }
  auto loaded = cellguard::dbc::load_dbc(path);
  if (!loaded.ok()) {
    state.SkipWithError(loaded.error().message.c_str());
    return;
  }
  for (auto _ : state) {
    auto text = cellguard::dbc::write_dbc(loaded->database);
    benchmark::DoNotOptimize(text);
  }
}
BENCHMARK(BM_WriteDbc)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
