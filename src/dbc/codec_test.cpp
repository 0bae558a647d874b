// Unit tests of the signal codec on small hand-built messages. Expected values are worked out by
// hand from the DBC bit numbering (see the comments at each payload).
#include "dbc/codec.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace cellguard::dbc {
namespace {

Signal make_signal(std::string name, std::uint32_t start_bit, std::uint32_t length, ByteOrder order,
                   bool is_signed = false, double scale = 1, double offset = 0) {
  Signal s;
  s.name = std::move(name);
  s.start_bit = start_bit;
  s.length = length;
  s.byte_order = order;
  s.is_signed = is_signed;
  s.scale = scale;
  s.offset = offset;
  return s;
}

Signal muxed(Signal s, std::string multiplexer, std::uint64_t low, std::uint64_t high) {
  s.multiplexer = std::move(multiplexer);
  s.multiplex_ranges.push_back({low, high});
  if (low == high) s.multiplex_value = low;
  return s;
}

Message make_message(std::uint32_t id, std::uint32_t length, std::vector<Signal> signals,
                     bool extended = false) {
  Message m;
  m.id = id;
  m.extended = extended;
  m.name = "Msg" + std::to_string(id);
  m.length = length;
  m.signals = std::move(signals);
  return m;
}

// Decodes with every entry point and checks they agree on status and presence.
struct Decoded {
  DecodeStatus status = DecodeStatus::ok;
  std::vector<double> physical;
  std::vector<PhysicalValue> exact;
  std::vector<std::uint64_t> raw;
  PresenceMask present;
};

Decoded decode_all(const MessageCodec& codec, const std::vector<std::uint8_t>& payload) {
  Decoded d;
  const std::size_t n = codec.signal_count();
  d.physical.assign(n, -12345);
  d.exact.assign(n, PhysicalValue{});
  d.raw.assign(n, 0);
  d.present.resize(n);
  PresenceMask exact_present(n);
  PresenceMask raw_present(n);
  d.status = codec.decode(payload, d.physical.data(), d.present);
  EXPECT_EQ(codec.decode_exact(payload, d.exact.data(), exact_present), d.status);
  EXPECT_EQ(codec.decode_raw(payload, d.raw.data(), raw_present), d.status);
  for (std::size_t i = 0; i != n; ++i) {
    EXPECT_EQ(exact_present.test(i), d.present.test(i));
    EXPECT_EQ(raw_present.test(i), d.present.test(i));
  }
  return d;
}

struct OneMessage {
  explicit OneMessage(Message m)
      : db(database_of(std::move(m))),
        codec(*db.find(db.database().messages[0].id, db.database().messages[0].extended)) {}
  static Database database_of(Message m) {
    Database database;
    database.messages.push_back(std::move(m));
    return database;
  }
  DatabaseCodec db;
  const MessageCodec& codec;
};

TEST(Codec, DecodesIntelSignalAtOddPosition) {
  // start 3, 10 bits: bits 3..7 of byte 0 are the low 5 bits, bits 0..4 of byte 1 the high 5.
  OneMessage t(make_message(1, 2, {make_signal("A", 3, 10, ByteOrder::little_endian)}));
  const auto d = decode_all(t.codec, {0b1011'1000, 0b1110'0110});
  ASSERT_EQ(d.status, DecodeStatus::ok);
  EXPECT_EQ(d.raw[0], (0b00110u << 5) | 0b10111u);
  EXPECT_TRUE(d.exact[0].is_integer);
  EXPECT_EQ(static_cast<std::int64_t>(d.exact[0].integer), (0b00110 << 5) | 0b10111);
}

TEST(Codec, DecodesMotorolaSignalAtOddPosition) {
  // start 12 is bit 4 of byte 1 (MSB); 10 bits run through bit 0 of byte 1 (5 bits), then bits
  // 7..3 of byte 2.
  OneMessage t(make_message(1, 3, {make_signal("B", 12, 10, ByteOrder::big_endian)}));
  const auto d = decode_all(t.codec, {0xFF, 0b1110'1101, 0b0110'1111});
  ASSERT_EQ(d.status, DecodeStatus::ok);
  EXPECT_EQ(d.raw[0], (0b01101u << 5) | 0b01101u);
}

TEST(Codec, DecodesMotorolaSixteenBitsAcrossTwoBytes) {
  OneMessage t(make_message(1, 8, {make_signal("B", 7, 16, ByteOrder::big_endian)}));
  const auto d = decode_all(t.codec, {0x12, 0x34, 0, 0, 0, 0, 0, 0});
  EXPECT_EQ(d.raw[0], 0x1234u);
}

TEST(Codec, SignExtendsSignedSignals) {
  OneMessage t(make_message(1, 2,
                            {make_signal("S", 4, 8, ByteOrder::little_endian, true),
                             make_signal("M", 15, 4, ByteOrder::big_endian, true)}));
  // S = bits 4..11 = 0x8F -> -113; M = bits 15..12 of the payload = 0b1000 -> -8.
  const auto d = decode_all(t.codec, {0xF0, 0x88});
  ASSERT_EQ(d.status, DecodeStatus::ok);
  EXPECT_EQ(static_cast<std::int64_t>(d.raw[0]), -113);
  EXPECT_EQ(d.physical[0], -113);
  EXPECT_EQ(static_cast<std::int64_t>(d.exact[1].integer), -8);
}

TEST(Codec, DecodesOneBitAndSixtyFourBitSignals) {
  OneMessage t(make_message(1, 8,
                            {make_signal("Bit", 63, 1, ByteOrder::little_endian),
                             make_signal("All", 0, 64, ByteOrder::little_endian)}));
  const auto d = decode_all(t.codec, {1, 2, 3, 4, 5, 6, 7, 0x80});
  EXPECT_EQ(d.raw[0], 1u);
  EXPECT_EQ(d.raw[1], 0x8007060504030201u);
  EXPECT_EQ(d.exact[1].integer, static_cast<Int128>(0x8007060504030201u));
}

TEST(Codec, DecodesUnalignedSixtyFourBitSignalSpanningNineBytes) {
  OneMessage t(make_message(
      1, 16,
      {make_signal("L", 4, 64, ByteOrder::little_endian), make_signal("B", 3, 64, ByteOrder::big_endian)}));
  std::vector<std::uint8_t> payload(16, 0);
  payload[0] = 0xA0;  // L's low nibble 0xA
  for (int i = 1; i < 8; ++i) payload[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(0x11 * i);
  payload[8] = 0x0F;  // L's high nibble 0xF
  const auto d = decode_all(t.codec, payload);
  EXPECT_EQ(d.raw[0], 0xF77665544332211Au);
  // B: bits 3..0 of byte 0, bytes 1..7, then bits 7..4 of byte 8.
  EXPECT_EQ(d.raw[1], 0x0112233445566770u);
}

TEST(Codec, DecodesFloat32AndFloat64) {
  auto f = make_signal("F", 0, 32, ByteOrder::little_endian, false, 2, 1);
  f.value_type = ValueType::float32;
  auto g = make_signal("G", 7, 64, ByteOrder::big_endian);
  g.value_type = ValueType::float64;
  auto message = make_message(1, 12, {f});
  g.start_bit = 39;  // MSB of byte 4
  message.signals.push_back(g);
  OneMessage u(message);
  std::vector<std::uint8_t> payload(12, 0);
  const float ff = 1.5f;
  std::uint32_t fbits = std::bit_cast<std::uint32_t>(ff);
  for (int i = 0; i < 4; ++i)
    payload[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(fbits >> (8 * i));
  const std::uint64_t gbits = std::bit_cast<std::uint64_t>(-0.1);
  for (int i = 0; i < 8; ++i)
    payload[4 + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(gbits >> (56 - 8 * i));
  const auto d = decode_all(u.codec, payload);
  ASSERT_EQ(d.status, DecodeStatus::ok);
  EXPECT_FALSE(d.exact[0].is_integer);
  EXPECT_EQ(d.exact[0].real, 4.0);
  EXPECT_EQ(d.physical[1], -0.1);
  EXPECT_EQ(d.raw[1], gbits);
  EXPECT_EQ(d.raw[0], fbits);
}

TEST(Codec, ScalesWithTwoRoundingsAndNegativeScale) {
  OneMessage t(make_message(1, 2,
                            {make_signal("V", 0, 8, ByteOrder::little_endian, false, 0.1, 0.2),
                             make_signal("N", 8, 8, ByteOrder::little_endian, true, -2, 5)}));
  const auto d = decode_all(t.codec, {3, 0xFD});
  volatile double product = 3.0 * 0.1;  // volatile keeps the two roundings here too
  EXPECT_EQ(d.physical[0], product + 0.2);
  EXPECT_FALSE(d.exact[0].is_integer);
  EXPECT_TRUE(d.exact[1].is_integer);
  EXPECT_EQ(static_cast<std::int64_t>(d.exact[1].integer), -3 * -2 + 5);
  EXPECT_EQ(d.physical[1], 11);
}

TEST(Codec, KeepsIntegerResultsExactBeyondTwoToTheSixtyThree) {
  OneMessage t(make_message(1, 8, {make_signal("Big", 0, 64, ByteOrder::little_endian, false, 3, 7)}));
  const auto d = decode_all(t.codec, std::vector<std::uint8_t>(8, 0xFF));
  ASSERT_TRUE(d.exact[0].is_integer);
  const Int128 expected = static_cast<Int128>(~std::uint64_t{0}) * 3 + 7;
  EXPECT_TRUE(d.exact[0].integer == expected);
  EXPECT_EQ(d.physical[0], static_cast<double>(~std::uint64_t{0}) * 3 + 7);
}

TEST(Codec, DecodesOnlyTheSelectedBranchOfASimpleMultiplexer) {
  auto mux = make_signal("Mux", 0, 8, ByteOrder::little_endian);
  mux.is_multiplexer = true;
  OneMessage t(make_message(1, 3,
                            {mux, make_signal("Plain", 16, 8, ByteOrder::little_endian),
                             muxed(make_signal("A", 8, 8, ByteOrder::little_endian), "Mux", 1, 1),
                             muxed(make_signal("B", 8, 8, ByteOrder::little_endian), "Mux", 2, 2)}));
  auto d = decode_all(t.codec, {1, 10, 20});
  ASSERT_EQ(d.status, DecodeStatus::ok);
  EXPECT_TRUE(d.present.test(0) && d.present.test(1) && d.present.test(2));
  EXPECT_FALSE(d.present.test(3));
  EXPECT_EQ(d.physical[2], 10);
  d = decode_all(t.codec, {2, 10, 20});
  EXPECT_FALSE(d.present.test(2));
  EXPECT_TRUE(d.present.test(3));
}

TEST(Codec, FailsTheWholeFrameOnAMultiplexerValueThatSelectsNothing) {
  auto mux = make_signal("Mux", 0, 8, ByteOrder::little_endian);
  mux.is_multiplexer = true;
  mux.value_descriptions.push_back({7, "seven"});  // value-table keys are valid values too
  OneMessage t(
      make_message(1, 2, {mux, muxed(make_signal("A", 8, 8, ByteOrder::little_endian), "Mux", 1, 1)}));
  auto d = decode_all(t.codec, {3, 0});
  EXPECT_EQ(d.status, DecodeStatus::invalid_multiplexer);
  EXPECT_FALSE(d.present.test(0));
  const std::vector<std::uint8_t> payload{3, 0};
  EXPECT_EQ(t.codec.describe(d.status, payload),
            "Msg1: multiplexer Mux holds 3, which selects no signals (valid: 1, 7)");
  d = decode_all(t.codec, {7, 0});
  EXPECT_EQ(d.status, DecodeStatus::ok);
  EXPECT_TRUE(d.present.test(0));
  EXPECT_FALSE(d.present.test(1));
}

TEST(Codec, DoesNotCheckAMultiplexerThatSelectsNothingAtAll) {
  auto mux = make_signal("Mux", 0, 8, ByteOrder::little_endian);
  mux.is_multiplexer = true;
  OneMessage t(make_message(1, 1, {mux}));
  EXPECT_EQ(decode_all(t.codec, {200}).status, DecodeStatus::ok);
}

TEST(Codec, DecodesExtendedCascadedMultiplexing) {
  // MUX_A selects B_MUX (2) and A_1 (1); B_MUX selects B_0 (0) and B_1 (1), with ranges.
  auto a = make_signal("MUX_A", 0, 8, ByteOrder::little_endian, true);
  a.is_multiplexer = true;
  auto b = muxed(make_signal("B_MUX", 8, 8, ByteOrder::little_endian, true), "MUX_A", 2, 2);
  b.is_multiplexer = true;
  auto a1 = muxed(make_signal("A_1", 8, 8, ByteOrder::little_endian, true), "MUX_A", 1, 1);
  auto b0 = muxed(make_signal("B_0", 16, 8, ByteOrder::little_endian), "B_MUX", 0, 0);
  auto b1 = muxed(make_signal("B_1", 24, 8, ByteOrder::little_endian), "B_MUX", 1, 3);
  b1.multiplex_ranges.push_back({10, 10});
  OneMessage t(make_message(5, 4, {a, b, a1, b0, b1}, true));
  auto d = decode_all(t.codec, {2, 3, 11, 12});
  ASSERT_EQ(d.status, DecodeStatus::ok);
  EXPECT_TRUE(d.present.test(0) && d.present.test(1) && d.present.test(4));
  EXPECT_FALSE(d.present.test(2) || d.present.test(3));
  EXPECT_EQ(d.physical[4], 12);
  d = decode_all(t.codec, {2, 10, 11, 12});
  EXPECT_TRUE(d.present.test(4));
  d = decode_all(t.codec, {2, 0, 11, 12});
  EXPECT_TRUE(d.present.test(3));
  EXPECT_FALSE(d.present.test(4));
  d = decode_all(t.codec, {1, 0, 11, 12});  // B_MUX is not active: its children are not decoded
  ASSERT_EQ(d.status, DecodeStatus::ok);
  EXPECT_TRUE(d.present.test(2));
  EXPECT_FALSE(d.present.test(1) || d.present.test(3) || d.present.test(4));
  EXPECT_EQ(decode_all(t.codec, {2, 4, 0, 0}).status, DecodeStatus::invalid_multiplexer);
  EXPECT_EQ(decode_all(t.codec, {0xFF, 0, 0, 0}).status, DecodeStatus::invalid_multiplexer);
}

TEST(Codec, TakesTheMultiplexerValueAfterScalingTruncated) {
  auto mux = make_signal("Mux", 0, 8, ByteOrder::little_endian, false, 0.5, 0);
  mux.is_multiplexer = true;
  OneMessage t(
      make_message(1, 2, {mux, muxed(make_signal("A", 8, 8, ByteOrder::little_endian), "Mux", 1, 1)}));
  EXPECT_TRUE(decode_all(t.codec, {3, 0}).present.test(1));                          // 1.5 -> 1
  EXPECT_EQ(decode_all(t.codec, {1, 0}).status, DecodeStatus::invalid_multiplexer);  // 0.5 -> 0
}

TEST(Codec, RejectsAShortPayloadAndIgnoresExtraBytes) {
  OneMessage t(make_message(0x181, 8, {make_signal("Last", 56, 8, ByteOrder::little_endian)}));
  const std::vector<std::uint8_t> short_payload(7, 0);
  auto d = decode_all(t.codec, short_payload);
  EXPECT_EQ(d.status, DecodeStatus::too_short);
  EXPECT_EQ(t.codec.describe(d.status, short_payload), "payload has 7 bytes, Msg385 needs 8");
  std::vector<std::uint8_t> long_payload(12, 0xAB);
  d = decode_all(t.codec, long_payload);
  ASSERT_EQ(d.status, DecodeStatus::ok);
  EXPECT_EQ(d.raw[0], 0xABu);
}

TEST(Codec, ReadsBitsBeyondTheMessageLengthAsZero) {
  OneMessage t(make_message(1, 2, {make_signal("Outside", 12, 8, ByteOrder::little_endian)}));
  const auto d = decode_all(t.codec, {0xFF, 0xFF, 0xFF, 0xFF});
  EXPECT_EQ(d.raw[0], 0x0Fu);
}

TEST(Codec, DecodesSignalsAtTheEndOfASixtyFourByteFrame) {
  OneMessage t(make_message(1, 64,
                            {make_signal("LastIntel", 500, 12, ByteOrder::little_endian),
                             make_signal("LastMotorola", 491, 12, ByteOrder::big_endian)}));
  std::vector<std::uint8_t> payload(64, 0);
  payload[62] = 0x5A;  // LastIntel: bits 4..7 of byte 62 (0x5), all of byte 63 (0xC3)
  payload[63] = 0xC3;
  payload[61] = 0x0F;  // LastMotorola: bit 3 of byte 61 down, 12 bits: 0xF then byte 62 = 0x5A
  const auto d = decode_all(t.codec, payload);
  ASSERT_EQ(d.status, DecodeStatus::ok);
  EXPECT_EQ(d.raw[0], 0xC35u);
  EXPECT_EQ(d.raw[1], 0xF5Au);
}

TEST(Codec, TracksPresenceOfMoreThanSixtyFourSignals) {
  std::vector<Signal> bits;
  for (std::uint32_t i = 0; i != 72; ++i) {
    std::string name = std::to_string(i);
    name.insert(0, 1, 'B');  // not "B" + ...: GCC 12 gives a false -Wrestrict warning there
    bits.push_back(make_signal(std::move(name), i, 1, ByteOrder::little_endian));
  }
  OneMessage t(make_message(1, 9, bits));
  std::vector<std::uint8_t> payload(9, 0);
  payload[8] = 0x80;
  const auto d = decode_all(t.codec, payload);
  ASSERT_EQ(d.status, DecodeStatus::ok);
  for (std::size_t i = 0; i != 72; ++i) EXPECT_TRUE(d.present.test(i)) << i;
  EXPECT_EQ(d.raw[71], 1u);
  EXPECT_EQ(d.raw[70], 0u);
}

TEST(Codec, EncodesPhysicalValuesThatDecodeBack) {
  OneMessage t(make_message(1, 8,
                            {make_signal("Current", 0, 16, ByteOrder::little_endian, true, 0.1, 0),
                             make_signal("Voltage", 23, 16, ByteOrder::big_endian, false, 0.01, 0),
                             make_signal("Cell", 40, 8, ByteOrder::little_endian, false, 0.01, 2.2)}));
  const double physical[] = {-12.3, 47.5, 3.65};
  PresenceMask all(3);
  for (std::size_t i = 0; i < 3; ++i) all.words()[0] |= 1u << i;
  std::vector<std::uint8_t> payload(8, 0);
  ASSERT_TRUE(t.codec.encode(physical, all, payload).ok());
  const auto d = decode_all(t.codec, payload);
  EXPECT_NEAR(d.physical[0], -12.3, 1e-9);
  EXPECT_NEAR(d.physical[1], 47.5, 1e-9);
  EXPECT_NEAR(d.physical[2], 3.65, 1e-9);
  EXPECT_EQ(static_cast<std::int64_t>(d.raw[0]), -123);
  EXPECT_EQ(d.raw[2], 145u);
}

TEST(Codec, EncodeClampsToTheSignalRange) {
  OneMessage t(make_message(1, 2,
                            {make_signal("U", 0, 4, ByteOrder::little_endian),
                             make_signal("S", 4, 4, ByteOrder::little_endian, true)}));
  PresenceMask all(2);
  all.words()[0] = 3;
  std::vector<std::uint8_t> payload(2, 0);
  const double high[] = {100, 100};
  ASSERT_TRUE(t.codec.encode(high, all, payload).ok());
  auto d = decode_all(t.codec, payload);
  EXPECT_EQ(d.raw[0], 15u);
  EXPECT_EQ(static_cast<std::int64_t>(d.raw[1]), 7);
  const double low[] = {-5, -100};
  ASSERT_TRUE(t.codec.encode(low, all, payload).ok());
  d = decode_all(t.codec, payload);
  EXPECT_EQ(d.raw[0], 0u);
  EXPECT_EQ(static_cast<std::int64_t>(d.raw[1]), -8);
  EXPECT_EQ(payload[1], 0) << "bits outside every signal keep their value";
  const double nan[] = {std::nan(""), 0};
  EXPECT_FALSE(t.codec.encode(nan, all, payload).ok());
}

TEST(Codec, EncodeRoundsHalfToEven) {
  OneMessage t(make_message(1, 1, {make_signal("U", 0, 8, ByteOrder::little_endian)}));
  PresenceMask all(1);
  all.words()[0] = 1;
  std::vector<std::uint8_t> payload(1, 0);
  const double v[] = {2.5};
  ASSERT_TRUE(t.codec.encode(v, all, payload).ok());
  EXPECT_EQ(payload[0], 2);
}

TEST(Codec, EncodeRawLeavesUncoveredBitsAndRejectsShortPayloads) {
  OneMessage t(make_message(1, 2, {make_signal("M", 11, 4, ByteOrder::big_endian)}));
  PresenceMask all(1);
  all.words()[0] = 1;
  std::vector<std::uint8_t> payload{0xFF, 0xFF};
  const std::uint64_t raw[] = {0};
  ASSERT_TRUE(t.codec.encode_raw(raw, all, payload).ok());
  EXPECT_EQ(payload[1], 0xF0);  // start 11 = bit 3 of byte 1, down to bit 0
  std::vector<std::uint8_t> short_payload(1, 0);
  EXPECT_FALSE(t.codec.encode_raw(raw, all, short_payload).ok());
}

TEST(Codec, FloatSignalsEncodeTheirIeeeBits) {
  auto f = make_signal("F", 0, 32, ByteOrder::little_endian);
  f.value_type = ValueType::float32;
  OneMessage t(make_message(1, 4, {f}));
  PresenceMask all(1);
  all.words()[0] = 1;
  std::vector<std::uint8_t> payload(4, 0);
  const double v[] = {-2.75};
  ASSERT_TRUE(t.codec.encode(v, all, payload).ok());
  EXPECT_EQ(decode_all(t.codec, payload).physical[0], -2.75);
}

TEST(Codec, GivesValueTableTextForARawValue) {
  auto s = make_signal("State", 0, 8, ByteOrder::little_endian);
  s.value_descriptions = {{0, "off"}, {1, "on"}, {1, "running"}};
  OneMessage t(make_message(1, 1, {s}));
  EXPECT_EQ(t.codec.choice(0, 0), "off");
  EXPECT_EQ(t.codec.choice(0, 1), "running");
  EXPECT_EQ(t.codec.choice(0, 2), "");
  EXPECT_EQ(t.codec.choice(5, 0), "");
}

TEST(DatabaseCodec, FindsTheLastMessageDefinedForAnIdAndNeverTheIndependentSignals) {
  Database db;
  db.messages.push_back(make_message(0x181, 8, {}));
  db.messages.push_back(make_message(0x181, 8, {}));
  db.messages[1].name = "Later";
  db.messages.push_back(make_message(0x181, 8, {}, true));
  db.messages[2].name = "Extended";
  db.messages.push_back(make_message(0x1ABCDEF, 8, {}, true));
  Message independent = make_message(0x40000000, 0, {make_signal("X", 0, 8, ByteOrder::little_endian)}, true);
  independent.name = "VECTOR__INDEPENDENT_SIG_MSG";
  db.messages.push_back(independent);
  const DatabaseCodec codec(std::move(db));
  ASSERT_NE(codec.find(0x181, false), nullptr);
  EXPECT_EQ(codec.find(0x181, false)->message().name, "Later");
  EXPECT_EQ(codec.find(0x181, true)->message().name, "Extended");
  EXPECT_EQ(codec.find(0x1ABCDEF, true)->message().name, "Msg28036591");
  EXPECT_EQ(codec.find(0x1ABCDEF, false), nullptr);
  EXPECT_EQ(codec.find(0x40000000, true), nullptr);
  EXPECT_EQ(codec.find(0x182, false), nullptr);
  EXPECT_EQ(codec.find("Later")->message().id, 0x181u);
  EXPECT_EQ(codec.find("Nope"), nullptr);
}

}  // namespace
}  // namespace cellguard::dbc
