// Fuzzes the store's column codec: stored chunks and committed batches are read back from disk, so
// they are external input. The first byte picks the path: odd = a zstd frame holding a series list
// (as in `pending.data`), even = one raw chunk (as in `chunks.data` after zstd). Whatever decodes
// must re-encode and decode to the same times and values (bit for bit; NaN = absent).
#include <bit>
#include <cmath>
#include <cstring>

#include "store/chunk_codec.h"

namespace {

using namespace cellguard::store;

bool same_values(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) || std::isnan(b[i])) {
      if (!(std::isnan(a[i]) && std::isnan(b[i]))) return false;
    } else if (std::bit_cast<std::uint64_t>(a[i]) != std::bit_cast<std::uint64_t>(b[i])) {
      return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::span<const std::uint8_t> input(data + 1, size - 1);
  if (data[0] & 1) {
    std::vector<std::uint8_t> raw;
    if (!detail::decompress(input, raw).ok()) return 0;
    std::vector<SeriesBatch> list;
    if (!detail::decode_series_list(raw, list).ok()) return 0;
    std::vector<std::uint8_t> again;
    detail::encode_series_list(list, again);
    std::vector<SeriesBatch> back;
    if (!detail::decode_series_list(again, back).ok() || back.size() != list.size()) __builtin_trap();
    for (std::size_t i = 0; i < list.size(); ++i) {
      if (back[i].channels != list[i].channels || back[i].times_ns != list[i].times_ns ||
          !same_values(back[i].values, list[i].values)) {
        __builtin_trap();
      }
    }
    return 0;
  }
  detail::DecodedChunk chunk;
  auto used = detail::decode_chunk(input, chunk);
  if (!used.ok()) return 0;
  if (*used > input.size()) __builtin_trap();
  std::vector<std::uint8_t> again;
  detail::encode_chunk(chunk.times, chunk.columns, chunk.values, again);
  detail::DecodedChunk back;
  if (!detail::decode_chunk(again, back).ok() || back.times != chunk.times ||
      !same_values(back.values, chunk.values)) {
    __builtin_trap();
  }
  return 0;
}
