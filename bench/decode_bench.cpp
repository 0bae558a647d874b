// In-process decode of the seed rig's PDO stream (shared/spec/seed-rig.md): 15 modules x 8 PDOs,
// random payloads generated up front; each iteration finds the codec by frame id and decodes every
// signal into a preallocated buffer. items/s = frames/s.
//
// "Rig" streams come in the order the bus delivers them: after each SYNC all 120 PDOs arbitrate
// and leave in ascending COB-ID order. "Shuffled" streams pick ids at random, which defeats the
// branch predictor (signal counts differ per PDO) and gives a pessimistic figure.
//
//   CELLGUARD_SEED_DBC=/path/to/Goodwood_15BMUs_IFSpecV3_Node.dbc build-codec/bench/decode_bench
//
// Without the variable the seed file in /work/shared/seed is used if it exists.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "dbc/codec.h"
#include "dbc/dbc.h"

namespace {

using cellguard::dbc::DatabaseCodec;
using cellguard::dbc::DecodeStatus;
using cellguard::dbc::MessageCodec;
using cellguard::dbc::PhysicalValue;
using cellguard::dbc::PresenceMask;

constexpr std::uint32_t kPdoBases[] = {0x180, 0x280, 0x380, 0x480, 0x190, 0x290, 0x390, 0x490};
constexpr std::uint32_t kModules = 15;
constexpr std::size_t kFrames = 120 * 40;  // 40 SYNC cycles

struct Frame {
  std::uint32_t id = 0;
  std::uint8_t data[8] = {};
};

struct Rig {
  std::unique_ptr<DatabaseCodec> codecs;
  std::vector<Frame> frames;  // SYNC cycles, ascending ids
  std::vector<Frame> shuffled;
  std::size_t max_signals = 0;
  std::string error;
};

const Rig& rig() {
  static const Rig loaded = [] {
    Rig r;
    const char* env = std::getenv("CELLGUARD_SEED_DBC");
    const std::string path = env != nullptr ? env : "/work/shared/seed/Goodwood_15BMUs_IFSpecV3_Node.dbc";
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
      r.error = "seed DBC not found (set CELLGUARD_SEED_DBC): " + path;
      return r;
    }
    auto parsed = cellguard::dbc::load_dbc(path);
    if (!parsed.ok()) {
      r.error = parsed.error().message;
      return r;
    }
    r.codecs = std::make_unique<DatabaseCodec>(std::move(parsed->database));
    std::vector<std::uint32_t> ids;
    for (const std::uint32_t base : kPdoBases) {
      for (std::uint32_t n = 1; n <= kModules; ++n) {
        const MessageCodec* codec = r.codecs->find(base + n, false);
        if (codec == nullptr) {
          r.error = "seed DBC has no PDO with id " + std::to_string(base + n);
          return r;
        }
        ids.push_back(base + n);
        if (codec->signal_count() > r.max_signals) r.max_signals = codec->signal_count();
      }
    }
    std::sort(ids.begin(), ids.end());
    std::mt19937_64 rng(0x5EED);
    r.frames.resize(kFrames);
    r.shuffled.resize(kFrames);
    for (std::size_t i = 0; i != kFrames; ++i) {
      r.frames[i].id = ids[i % ids.size()];
      r.shuffled[i].id = ids[rng() % ids.size()];
      for (auto& b : r.frames[i].data) b = static_cast<std::uint8_t>(rng());
      for (auto& b : r.shuffled[i].data) b = static_cast<std::uint8_t>(rng());
    }
    return r;
  }();
  return loaded;
}

const std::vector<Frame>& stream(const Rig& r, const benchmark::State& state) {
  return state.range(0) == 0 ? r.frames : r.shuffled;
}

void BM_Decode(benchmark::State& state) {
  const Rig& r = rig();
  if (!r.error.empty()) {
    state.SkipWithError(r.error.c_str());
    return;
  }
  std::vector<double> values(r.max_signals);
  PresenceMask present(r.max_signals);
  std::size_t i = 0;
  std::size_t failed = 0;
  const std::vector<Frame>& frames = stream(r, state);
  for (auto _ : state) {
    const Frame& f = frames[i];
    i = (i + 1) % kFrames;
    const MessageCodec* codec = r.codecs->find(f.id, false);
    const DecodeStatus status = codec->decode(f.data, values.data(), present);
    failed += status != DecodeStatus::ok;
    benchmark::DoNotOptimize(values.data());
    benchmark::ClobberMemory();
  }
  if (failed != 0) state.SkipWithError("a rig frame failed to decode");
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_Decode)->ArgName("shuffled")->Arg(0)->Arg(1);

void BM_DecodeExact(benchmark::State& state) {
  const Rig& r = rig();
  if (!r.error.empty()) {
    state.SkipWithError(r.error.c_str());
    return;
  }
  std::vector<PhysicalValue> values(r.max_signals);
  PresenceMask present(r.max_signals);
  std::size_t i = 0;
  std::size_t failed = 0;
  const std::vector<Frame>& frames = stream(r, state);
  for (auto _ : state) {
    const Frame& f = frames[i];
    i = (i + 1) % kFrames;
    const MessageCodec* codec = r.codecs->find(f.id, false);
    const DecodeStatus status = codec->decode_exact(f.data, values.data(), present);
    failed += status != DecodeStatus::ok;
    benchmark::DoNotOptimize(values.data());
    benchmark::ClobberMemory();
  }
  if (failed != 0) state.SkipWithError("a rig frame failed to decode");
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_DecodeExact)->ArgName("shuffled")->Arg(0)->Arg(1);

}  // namespace

BENCHMARK_MAIN();
