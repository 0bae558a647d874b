// The column codec of stored sample data (internal to the store; shared with its tests, benchmark and
// fuzzer). The layout is documented in chunk_codec.cpp.
//
// A chunk is one row group: `rows` timestamps and `columns` value columns. Timestamps are stored once
// per row (delta-of-delta); each column is either Gorilla XOR coded doubles or, when its values sit on
// a detected quantum (DBC signals: raw * scale + offset), delta-coded integers plus an exact ulp
// residual. Absent values (NaN) are a presence bitmap. Every non-NaN double round-trips bit for bit.
//
// Decoding is a parser of stored bytes: every count and length is checked against the input and the
// bounds below before anything is allocated.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "core/result.h"
#include "store/store.h"

namespace cellguard::store::detail {

inline constexpr std::size_t kMaxRows = 1u << 20;
inline constexpr std::size_t kMaxColumns = 1024;
inline constexpr std::size_t kMaxCells = 1u << 22;  // rows * columns of one chunk
inline constexpr std::size_t kMaxSeriesPerBlob = 1u << 16;
inline constexpr std::size_t kMaxRawBlobBytes = 128u << 20;  // decompressed
inline constexpr std::size_t kAllColumns = static_cast<std::size_t>(-1);

// Appends the chunk layout of `times` and row-major `values` (times.size() * columns) to `out`.
// Preconditions (checked by callers): times.size() <= kMaxRows, 1 <= columns <= kMaxColumns,
// times.size() * columns <= kMaxCells.
void encode_chunk(std::span<const TimeNs> times, std::size_t columns, std::span<const double> values,
                  std::vector<std::uint8_t>& out);

struct DecodedChunk {
  std::size_t rows = 0;
  std::size_t columns = 0;     // columns in the chunk
  std::vector<TimeNs> times;   // rows
  std::vector<double> values;  // rows * columns row-major, or rows when one column was wanted
};

// Decodes one chunk from the front of `in`; returns the bytes it used. wanted = kAllColumns decodes
// every column, else only column `wanted` (the others are skipped by their stored lengths).
Result<std::size_t> decode_chunk(std::span<const std::uint8_t> in, DecodedChunk& out,
                                 std::size_t wanted = kAllColumns);

// A list of row groups with their channel ids (a batch as committed): raw layout, no compression.
void encode_series_list(std::span<const SeriesBatch> series, std::vector<std::uint8_t>& out);
Result<void> decode_series_list(std::span<const std::uint8_t> raw, std::vector<SeriesBatch>& out);

// zstd with a bounded decompressed size (kMaxRawBlobBytes).
Result<void> compress(std::span<const std::uint8_t> raw, int level, std::vector<std::uint8_t>& out);
Result<void> decompress(std::span<const std::uint8_t> packed, std::vector<std::uint8_t>& out);

}  // namespace cellguard::store::detail
