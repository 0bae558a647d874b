// Cost of the rig simulator (issue 3, item 9: a 15-module rig at 10 Hz SYNC under 5 % of one core).
//
// One iteration is one simulated second of a 15-module rig as `cellguard sim` runs it: 50 physics
// ticks of 20 ms (the default tick) with EMCY checks, and 10 SYNCs, each answered with 120 PDOs
// encoded by our codec from the project's DBC. BM_SimulatedSecondOverInprocBus also carries every
// frame through the in-process bus to a second endpoint (the socketcand server's place).
// The CPU column is the CPU time per simulated second: at --speed 1, 0.5 ms means 0.05 % of a core.
#include <benchmark/benchmark.h>

#include <asio.hpp>
#include <memory>
#include <vector>

#include "can/bus.h"
#include "dbc/codec.h"
#include "dbc/dbc.h"
#include "sim/canopen_modules.h"
#include "sim/pack_model.h"
#include "sim/rig_dbc.h"

namespace {

using namespace cellguard;

struct Rig {
  Rig() : pack(config()) {
    auto parsed = dbc::parse_dbc(sim::builtin_rig_dbc());
    codec = std::make_shared<const dbc::DatabaseCodec>(std::move(parsed->database));
    modules = std::move(sim::CanopenModules::create(codec, pack).value());
    pack.set_positive_contactor(true);
    pack.set_negative_contactor(true);
    pack.set_pump(true);
    pack.set_fan(true);
    pack.set_inverter_current_a(50);
  }
  static sim::PackConfig config() {
    sim::PackConfig c;
    c.module_ids = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    return c;
  }
  // One simulated second; `send` takes each outgoing frame.
  template <typename Send>
  void second(Send&& send) {
    for (int tick = 0; tick < 50; ++tick) {
      pack.step(0.02);
      out.clear();
      modules->append_emergencies(pack, out);
      for (const can::Frame& f : out) send(f);
      if (tick % 5 == 0) {
        out.clear();
        modules->on_frame(sim::make_sync(static_cast<std::uint8_t>(tick)), pack, out);
        for (const can::Frame& f : out) send(f);
      }
    }
  }
  std::shared_ptr<const dbc::DatabaseCodec> codec;
  sim::PackModel pack;
  std::unique_ptr<sim::CanopenModules> modules;
  std::vector<can::Frame> out;
};

void report(benchmark::State& state, std::uint64_t frames) {
  state.counters["frames_per_sim_s"] =
      benchmark::Counter(static_cast<double>(frames), benchmark::Counter::kAvgIterations);
}

void BM_SimulatedSecond(benchmark::State& state) {
  Rig rig;
  std::uint64_t frames = 0;
  for (auto _ : state) {
    rig.second([&](const can::Frame& f) {
      benchmark::DoNotOptimize(f.data[0]);
      ++frames;
    });
  }
  report(state, frames);
}
BENCHMARK(BM_SimulatedSecond)->Unit(benchmark::kMillisecond);

void BM_SimulatedSecondOverInprocBus(benchmark::State& state) {
  Rig rig;
  asio::io_context io;
  auto sim_bus = std::move(can::open_bus(io, "inproc:sim-bench").value());
  auto peer = std::move(can::open_bus(io, "inproc:sim-bench").value());
  std::uint64_t received = 0;
  peer->on_receive([&](const can::Frame&) { ++received; });
  // poll() leaves a context without work stopped: restart it before every poll.
  auto pump = [&io] {
    io.restart();
    io.poll();
  };
  pump();
  std::uint64_t frames = 0;
  for (auto _ : state) {
    rig.second([&](const can::Frame& f) {
      sim_bus->send(f).ok();
      ++frames;
      if (frames % 64 == 0) pump();  // keep the queues short, as the running loop does
    });
    pump();
  }
  pump();
  report(state, frames);
  state.counters["received_per_sim_s"] =
      benchmark::Counter(static_cast<double>(received), benchmark::Counter::kAvgIterations);
}
BENCHMARK(BM_SimulatedSecondOverInprocBus)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
