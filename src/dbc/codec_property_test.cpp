// Property tests of the codec on random layouts: a slow bit-by-bit decoder written here from the
// DBC bit numbering alone (no shifts of words, a walk over the bits) must agree with the codec, and
// encoding decoded raw values must give back the payload's bits wherever a signal covers them.
#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include "dbc/codec.h"

namespace cellguard::dbc {
namespace {

struct BitPosition {
  std::size_t byte = 0;
  unsigned bit = 0;  // 0 = LSB of the byte
};

// The payload bits of a signal from its MSB to its LSB. Little endian: the LSB is at start_bit and
// bits count up through each byte, then to the next byte. Big endian: the MSB is at start_bit and
// the walk goes down a byte to bit 0, then to bit 7 of the next byte ("sawtooth").
std::vector<BitPosition> bits_msb_first(const Signal& s) {
  std::vector<BitPosition> bits;
  if (s.byte_order == ByteOrder::little_endian) {
    for (std::uint32_t i = s.length; i-- > 0;) bits.push_back({(s.start_bit + i) / 8, (s.start_bit + i) % 8});
    return bits;
  }
  std::size_t byte = s.start_bit / 8;
  unsigned bit = s.start_bit % 8;
  for (std::uint32_t i = 0; i != s.length; ++i) {
    bits.push_back({byte, bit});
    if (bit == 0) {
      ++byte;
      bit = 7;
    } else {
      --bit;
    }
  }
  return bits;
}

std::uint64_t slow_raw(const Signal& s, const std::vector<std::uint8_t>& payload) {
  std::uint64_t value = 0;
  for (const auto& p : bits_msb_first(s)) value = (value << 1) | ((payload[p.byte] >> p.bit) & 1u);
  if (s.is_signed && s.value_type == ValueType::integer && s.length < 64 &&
      ((value >> (s.length - 1)) & 1u) != 0) {
    value |= ~std::uint64_t{0} << s.length;  // sign extension
  }
  return value;
}

double slow_physical(const Signal& s, std::uint64_t raw) {
  double number = 0;
  if (s.value_type == ValueType::float32) {
    number = std::bit_cast<float>(static_cast<std::uint32_t>(raw));
  } else if (s.value_type == ValueType::float64) {
    number = std::bit_cast<double>(raw);
  } else if (s.is_signed) {
    number = static_cast<double>(static_cast<std::int64_t>(raw));
  } else {
    number = static_cast<double>(raw);
  }
  volatile double product = number * s.scale;  // volatile: two roundings, as the reference
  return product + s.offset;
}

bool same_double(double a, double b) {
  return std::bit_cast<std::uint64_t>(a) == std::bit_cast<std::uint64_t>(b) || (a != a && b != b);
}

constexpr std::uint32_t kLengths[] = {1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 24, 32, 48, 64};

// A random message whose signals do not share bits and lie within the payload.
Message random_message(std::mt19937_64& rng, std::vector<std::vector<bool>>& covered_out) {
  Message m;
  m.name = "Random";
  m.id = 0x100;
  m.length = kLengths[rng() % std::size(kLengths)];
  std::vector<bool> covered(8 * m.length, false);
  const int attempts = 1 + static_cast<int>(rng() % 40);
  for (int a = 0; a != attempts; ++a) {
    Signal s;
    s.name = std::to_string(m.signals.size());
    s.name.insert(0, 1, 'S');
    s.byte_order = (rng() & 1) != 0 ? ByteOrder::big_endian : ByteOrder::little_endian;
    const std::uint64_t pick = rng() % 8;
    s.length = pick == 0 ? 64 : pick == 1 ? 1 : 1 + static_cast<std::uint32_t>(rng() % 64);
    s.start_bit = static_cast<std::uint32_t>(rng() % (8 * m.length));
    s.is_signed = (rng() & 1) != 0;
    if ((s.length == 32 || s.length == 64) && rng() % 3 == 0) {
      s.value_type = s.length == 32 ? ValueType::float32 : ValueType::float64;
    }
    const double scales[] = {1, 0.1, -2, 0.5, 3, 1e-3};
    s.scale = scales[rng() % std::size(scales)];
    s.offset = static_cast<double>(static_cast<int>(rng() % 200) - 100) / ((rng() & 1) != 0 ? 1 : 4);
    bool fits = true;
    const auto bits = bits_msb_first(s);
    for (const auto& p : bits) {
      if (p.byte >= m.length || covered[8 * p.byte + p.bit]) fits = false;
    }
    if (!fits) continue;
    for (const auto& p : bits) covered[8 * p.byte + p.bit] = true;
    m.signals.push_back(std::move(s));
  }
  covered_out.assign(1, covered);
  return m;
}

std::vector<std::uint8_t> random_payload(std::mt19937_64& rng, std::size_t size) {
  std::vector<std::uint8_t> payload(size);
  for (auto& b : payload) b = static_cast<std::uint8_t>(rng());
  return payload;
}

TEST(CodecProperty, AgreesWithABitByBitDecoderOnRandomLayouts) {
  std::mt19937_64 rng(20261125);
  std::size_t checked_signals = 0;
  for (int round = 0; round != 3000; ++round) {
    std::vector<std::vector<bool>> covered;
    Database db;
    db.messages.push_back(random_message(rng, covered));
    const DatabaseCodec codecs(std::move(db));
    const MessageCodec& codec = *codecs.find(0x100, false);
    const Message& m = codec.message();
    std::vector<std::uint64_t> raw(m.signals.size());
    std::vector<double> physical(m.signals.size());
    std::vector<PhysicalValue> exact(m.signals.size());
    PresenceMask present(m.signals.size());
    for (int frame = 0; frame != 4; ++frame) {
      // Payloads longer than the message must decode the same.
      const auto payload = random_payload(rng, m.length + (frame == 3 ? 5 : 0));
      ASSERT_EQ(codec.decode_raw(payload, raw.data(), present), DecodeStatus::ok);
      ASSERT_EQ(codec.decode(payload, physical.data(), present), DecodeStatus::ok);
      ASSERT_EQ(codec.decode_exact(payload, exact.data(), present), DecodeStatus::ok);
      for (std::size_t i = 0; i != m.signals.size(); ++i) {
        const Signal& s = m.signals[i];
        ASSERT_TRUE(present.test(i));
        const std::uint64_t expected = slow_raw(s, payload);
        ASSERT_EQ(raw[i], expected) << "round " << round << " signal " << s.name << " start " << s.start_bit
                                    << " length " << s.length
                                    << (s.byte_order == ByteOrder::big_endian ? " @0" : " @1");
        const double expected_physical = slow_physical(s, expected);
        ASSERT_TRUE(same_double(physical[i], expected_physical))
            << physical[i] << " vs " << expected_physical;
        if (exact[i].is_integer) {
          const Int128 r = s.is_signed ? static_cast<Int128>(static_cast<std::int64_t>(expected))
                                       : static_cast<Int128>(expected);
          ASSERT_TRUE(exact[i].integer == r * static_cast<Int128>(s.scale) + static_cast<Int128>(s.offset));
        } else {
          ASSERT_TRUE(same_double(exact[i].real, expected_physical));
        }
        ++checked_signals;
      }
    }
  }
  EXPECT_GT(checked_signals, 10000u);
}

TEST(CodecProperty, EncodingDecodedRawValuesRestoresTheCoveredBits) {
  std::mt19937_64 rng(42);
  for (int round = 0; round != 3000; ++round) {
    std::vector<std::vector<bool>> covered;
    Database db;
    db.messages.push_back(random_message(rng, covered));
    const DatabaseCodec codecs(std::move(db));
    const MessageCodec& codec = *codecs.find(0x100, false);
    const Message& m = codec.message();
    std::vector<std::uint64_t> raw(m.signals.size());
    PresenceMask present(m.signals.size());
    const auto payload = random_payload(rng, m.length);
    ASSERT_EQ(codec.decode_raw(payload, raw.data(), present), DecodeStatus::ok);
    const auto background = random_payload(rng, m.length);
    auto encoded = background;
    ASSERT_TRUE(codec.encode_raw(raw.data(), present, encoded).ok());
    for (std::size_t bit = 0; bit != 8 * m.length; ++bit) {
      const auto& source = covered[0][bit] ? payload : background;
      ASSERT_EQ((encoded[bit / 8] >> (bit % 8)) & 1, (source[bit / 8] >> (bit % 8)) & 1)
          << "round " << round << " bit " << bit;
    }
  }
}

TEST(CodecProperty, EncodingPhysicalValuesOfIntegerSignalsIsExactForDecodedValues) {
  std::mt19937_64 rng(7);
  for (int round = 0; round != 1000; ++round) {
    std::vector<std::vector<bool>> covered;
    Database db;
    Message m = random_message(rng, covered);
    // Exact round trips need values a double holds: at most 52 bits, scale 1 or integral.
    for (auto& s : m.signals) {
      s.value_type = ValueType::integer;
      s.scale = (rng() & 1) != 0 ? 1 : -2;
      if (s.length > 52) s.length = 52;
      s.offset = static_cast<double>(static_cast<int>(s.offset));
    }
    db.messages.push_back(std::move(m));
    const DatabaseCodec codecs(std::move(db));
    const MessageCodec& codec = *codecs.find(0x100, false);
    const std::size_t n = codec.signal_count();
    std::vector<std::uint64_t> raw(n);
    std::vector<std::uint64_t> raw_again(n);
    std::vector<double> physical(n);
    PresenceMask present(n);
    const auto payload = random_payload(rng, codec.message().length);
    ASSERT_EQ(codec.decode_raw(payload, raw.data(), present), DecodeStatus::ok);
    ASSERT_EQ(codec.decode(payload, physical.data(), present), DecodeStatus::ok);
    auto encoded = random_payload(rng, codec.message().length);
    ASSERT_TRUE(codec.encode(physical.data(), present, encoded).ok());
    ASSERT_EQ(codec.decode_raw(encoded, raw_again.data(), present), DecodeStatus::ok);
    ASSERT_EQ(raw, raw_again) << "round " << round;
  }
}

}  // namespace
}  // namespace cellguard::dbc
