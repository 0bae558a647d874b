// Bus throughput: socketcand text per frame, in-process delivery, and frames through the
// socketcand server over loopback TCP. A CAN bus at 1 Mbit/s carries at most about 8000 frames/s.
#include <benchmark/benchmark.h>

#include <asio/io_context.hpp>
#include <string>

#include "can/bus.h"
#include "can/bus_test_support.h"
#include "can/socketcand.h"
#include "can/socketcand_protocol.h"

namespace {

using namespace cellguard::can;

Frame eight_byte_frame() {
  Frame frame;
  frame.id = 0x181;
  frame.size = 8;
  for (std::uint8_t i = 0; i < 8; ++i) frame.data[i] = static_cast<std::uint8_t>(0xA0 + i);
  frame.timestamp_ns = 1'700'000'000'000'250'000;
  return frame;
}

void BM_SocketcandFormatFrame(benchmark::State& state) {
  Frame frame = eight_byte_frame();
  std::string out;
  for (auto _ : state) {
    out.clear();
    socketcand::append_received(out, frame);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SocketcandFormatFrame);

void BM_SocketcandParseFrame(benchmark::State& state) {
  std::string text;
  socketcand::append_received(text, eight_byte_frame());
  for (auto _ : state) {
    auto element = socketcand::parse_element(text);
    benchmark::DoNotOptimize(element);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SocketcandParseFrame);

constexpr int kBatch = 1000;

void BM_InprocDelivery(benchmark::State& state) {
  asio::io_context io;
  auto sender = open_bus(io, "inproc:bench").value();
  auto receiver = open_bus(io, "inproc:bench").value();
  std::size_t received = 0;
  receiver->on_receive([&](const Frame&) { ++received; });
  Frame frame = eight_byte_frame();
  for (auto _ : state) {
    received = 0;
    for (int i = 0; i < kBatch; ++i) (void)sender->send(frame);
    testing::run_until(io, [&] { return received == kBatch; });
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_InprocDelivery);

// In-process sender -> SocketcandServer -> TCP -> our socketcand client.
void BM_SocketcandLoopback(benchmark::State& state) {
  asio::io_context io;
  SocketcandServerOptions options;
  options.inproc_bus = "bench";
  auto server = SocketcandServer::start(io, options).value();
  auto sender = open_bus(io, "inproc:bench").value();
  auto client = open_bus(io, "socketcand://127.0.0.1:" + std::to_string(server->port()) + "/can0").value();
  bool ready = false;
  std::size_t received = 0;
  client->on_ready([&] { ready = true; });
  client->on_receive([&](const Frame&) { ++received; });
  if (!testing::run_until(io, [&] { return ready; })) {
    state.SkipWithError("client did not connect");
    return;
  }
  Frame frame = eight_byte_frame();
  for (auto _ : state) {
    received = 0;
    for (int i = 0; i < kBatch; ++i) (void)sender->send(frame);
    testing::run_until(io, [&] { return received == kBatch; });
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_SocketcandLoopback);

}  // namespace

BENCHMARK_MAIN();
