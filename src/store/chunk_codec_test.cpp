#include "store/chunk_codec.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

namespace cellguard::store::detail {
namespace {

// Bit-exact equality, every NaN equal to every NaN (absent).
bool same(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  return std::bit_cast<std::uint64_t>(a) == std::bit_cast<std::uint64_t>(b);
}

void expect_round_trip(const std::vector<TimeNs>& times, std::size_t columns,
                       const std::vector<double>& values) {
  std::vector<std::uint8_t> bytes;
  encode_chunk(times, columns, values, bytes);
  DecodedChunk out;
  auto used = decode_chunk(bytes, out);
  ASSERT_TRUE(used.ok()) << used.error().message;
  EXPECT_EQ(*used, bytes.size());
  ASSERT_EQ(out.rows, times.size());
  ASSERT_EQ(out.columns, columns);
  EXPECT_EQ(out.times, times);
  ASSERT_EQ(out.values.size(), values.size());
  for (std::size_t i = 0; i < values.size(); ++i)
    ASSERT_TRUE(same(out.values[i], values[i]))
        << "value " << i << ": " << values[i] << " came back as " << out.values[i];
  // Each column alone gives the same.
  for (std::size_t c = 0; c < columns; ++c) {
    DecodedChunk one;
    ASSERT_TRUE(decode_chunk(bytes, one, c).ok());
    for (std::size_t r = 0; r < times.size(); ++r) ASSERT_TRUE(same(one.values[r], values[r * columns + c]));
  }
}

double random_double(std::mt19937_64& rng) {
  switch (rng() % 8) {
    case 0:
      return std::bit_cast<double>(rng());  // any bit pattern (NaNs included: absent)
    case 1:
      return std::numeric_limits<double>::infinity();
    case 2:
      return -std::numeric_limits<double>::infinity();
    case 3:
      return std::numeric_limits<double>::denorm_min() * static_cast<double>(rng() % 1000);
    case 4:
      return -0.0;
    case 5:
      return std::nan("");
    case 6:
      return static_cast<double>(rng() % 256) * 0.01 + 2.2;
    default:
      return std::uniform_real_distribution<double>(-1e6, 1e6)(rng);
  }
}

TEST(ChunkCodec, RoundTripsQuantizedDbcValuesBitForBit) {
  std::vector<TimeNs> times;
  std::vector<double> values;
  std::mt19937_64 rng(7);
  int raw = 140;
  for (int r = 0; r < 3000; ++r) {
    times.push_back(1'796'119'200'000'000'000 + r * 100'000'000LL + static_cast<TimeNs>(rng() % 40'000));
    if (rng() % 50 == 0) raw += rng() % 2 ? 1 : -1;
    values.push_back(raw * 0.01 + 2.2);                                               // cell voltage
    values.push_back(static_cast<double>(static_cast<int>(rng() % 40) - 250) * 0.1);  // current
    values.push_back(static_cast<double>(1'000'000 + r * 3));                         // counter
  }
  expect_round_trip(times, 3, values);
}

TEST(ChunkCodec, QuantizedSlowSignalsTakeLessThanHalfAByteEach) {
  std::vector<TimeNs> times;
  std::vector<double> values;
  std::mt19937_64 rng(3);
  std::vector<int> raw(8, 140);
  for (int r = 0; r < 4096; ++r) {
    times.push_back(r * 100'000'000LL + static_cast<TimeNs>(rng() % 40'000));
    for (int c = 0; c < 8; ++c) {
      if (rng() % 1000 == 0) raw[static_cast<std::size_t>(c)] -= 1;
      values.push_back(raw[static_cast<std::size_t>(c)] * 0.01 + 2.2);
    }
  }
  std::vector<std::uint8_t> raw_bytes, packed;
  encode_chunk(times, 8, values, raw_bytes);
  ASSERT_TRUE(compress(raw_bytes, 9, packed).ok());
  EXPECT_LT(static_cast<double>(packed.size()) / static_cast<double>(values.size()), 0.5);
}

TEST(ChunkCodec, RoundTripsRandomSeriesWithNanInfinitiesAndDenormals) {
  std::mt19937_64 rng(11);
  for (int trial = 0; trial < 300; ++trial) {
    const std::size_t rows = rng() % 70, columns = 1 + rng() % 9;
    std::vector<TimeNs> times;
    TimeNs t = static_cast<TimeNs>(rng());
    for (std::size_t r = 0; r < rows; ++r) {
      times.push_back(t);
      switch (rng() % 4) {  // equal timestamps, going backwards, huge jumps, normal steps
        case 0:
          break;
        case 1:
          t -= static_cast<TimeNs>(rng() % 1'000'000);
          break;
        case 2:
          t = static_cast<TimeNs>(rng());
          break;
        default:
          t += 100'000'000 + static_cast<TimeNs>(rng() % 1000);
      }
    }
    std::vector<double> values;
    for (std::size_t i = 0; i < rows * columns; ++i) values.push_back(random_double(rng));
    expect_round_trip(times, columns, values);
  }
}

TEST(ChunkCodec, RoundTripsExtremeTimestamps) {
  expect_round_trip({std::numeric_limits<TimeNs>::max(), std::numeric_limits<TimeNs>::min(), 0,
                     std::numeric_limits<TimeNs>::max(), -1},
                    1, {1.0, 2.0, 3.0, 4.0, 5.0});
}

TEST(ChunkCodec, KeepsAnAllAbsentColumnAbsent) {
  const double nan = std::nan("");
  expect_round_trip({1, 2, 3}, 2, {nan, 1.5, nan, 2.5, nan, nan});
}

TEST(ChunkCodec, RejectsEveryTruncationOfAChunk) {
  std::vector<double> values;
  std::vector<TimeNs> times;
  for (int r = 0; r < 50; ++r) {
    times.push_back(r * 1000);
    values.push_back(r * 0.5);
    values.push_back(r % 3 ? std::nan("") : 1e300 / (r + 1));
  }
  std::vector<std::uint8_t> bytes;
  encode_chunk(times, 2, values, bytes);
  DecodedChunk out;
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_FALSE(decode_chunk(std::span(bytes).first(n), out).ok()) << "prefix of " << n << " bytes";
  }
}

TEST(ChunkCodec, RefusesAbsurdCountsBeforeAllocating) {
  // version 1, rows = 2^40, columns = 1
  std::vector<std::uint8_t> bytes = {1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20, 1, 0};
  DecodedChunk out;
  auto r = decode_chunk(bytes, out);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("out of bounds"), std::string::npos);
}

TEST(ChunkCodec, SeriesListRoundTripsThroughZstd) {
  std::vector<SeriesBatch> in = {{{3, 1, 2}, {10, 20}, {1, 2, 3, 4, 5, std::nan("")}}, {{9}, {5}, {-0.0}}};
  std::vector<std::uint8_t> raw, packed, back;
  encode_series_list(in, raw);
  ASSERT_TRUE(compress(raw, 3, packed).ok());
  ASSERT_TRUE(decompress(packed, back).ok());
  std::vector<SeriesBatch> out;
  ASSERT_TRUE(decode_series_list(back, out).ok());
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].channels, in[0].channels);
  EXPECT_EQ(out[0].times_ns, in[0].times_ns);
  for (std::size_t i = 0; i < 6; ++i) EXPECT_TRUE(same(out[0].values[i], in[0].values[i]));
  EXPECT_TRUE(std::signbit(out[1].values[0]));
}

TEST(ChunkCodec, DecompressRefusesAFrameWithoutAKnownSize) {
  std::vector<std::uint8_t> garbage = {0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0}, out;
  EXPECT_FALSE(decompress(garbage, out).ok());
}

}  // namespace
}  // namespace cellguard::store::detail
