// Fuzzes the recording's block decoder: a recording file from disk is external input. The first
// byte picks the path: odd = a zstd frame as stored in `blocks.data`, even = the raw layout (so the
// fuzzer reaches the record decoder without building valid zstd frames). Whatever decodes must
// re-encode to the same records.
#include <cstring>

#include "recorder/block_codec.h"

namespace {

using namespace cellguard::recorder;

bool same(const Block& a, const Block& b) {
  if (a.frames.size() != b.frames.size() || a.samples.size() != b.samples.size() ||
      a.events.size() != b.events.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.frames.size(); ++i)
    if (!(a.frames[i] == b.frames[i])) return false;
  for (std::size_t i = 0; i < a.samples.size(); ++i) {
    if (a.samples[i].time_ns != b.samples[i].time_ns || a.samples[i].channel != b.samples[i].channel ||
        std::memcmp(&a.samples[i].value, &b.samples[i].value, sizeof(double)) != 0) {
      return false;
    }
  }
  for (std::size_t i = 0; i < a.events.size(); ++i) {
    if (a.events[i].time_ns != b.events[i].time_ns || a.events[i].kind != b.events[i].kind ||
        a.events[i].json != b.events[i].json) {
      return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::span<const std::uint8_t> input(data + 1, size - 1);
  std::vector<std::uint8_t> raw;
  if (data[0] & 1) {
    if (!detail::decompress(input, raw).ok()) return 0;
    input = raw;
  }
  Block block;
  if (!detail::decode_records(input, block).ok()) return 0;

  detail::BlockEncoder encoder;
  encoder.reset();
  for (const auto& f : block.frames) encoder.add_frame(f);
  for (const auto& s : block.samples) encoder.add_sample(s.time_ns, s.channel, s.value);
  for (const auto& e : block.events) encoder.add_event(e.time_ns, e.kind, e.json);
  std::vector<std::uint8_t> again;
  encoder.finish(again);
  Block back;
  if (!detail::decode_records(again, back).ok() || !same(block, back)) __builtin_trap();
  return 0;
}
