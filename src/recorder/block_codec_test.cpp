#include "recorder/block_codec.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace cellguard::recorder::detail {
namespace {

can::Frame make_frame(TimeNs t, std::uint32_t id, std::vector<std::uint8_t> payload,
                      std::string_view bus = "can0") {
  can::Frame f;
  f.timestamp_ns = t;
  f.id = id;
  f.bus = bus;
  f.set_payload(payload);
  return f;
}

std::vector<std::uint8_t> encode_sample_block(Block& expected) {
  BlockEncoder enc;
  enc.reset();
  expected.frames.push_back(make_frame(1'700'000'000'000'000'000, 0x181, {1, 2, 3, 4, 5, 6, 7, 8}));
  auto ext = make_frame(1'700'000'000'100'000'000, 0x1ABCDEF, {9}, "vcan1");
  ext.extended = true;
  expected.frames.push_back(ext);
  auto fd =
      make_frame(1'699'999'999'900'000'000, 0x7FF, std::vector<std::uint8_t>(64, 0xAB), "can-fd-bus-long");
  fd.fd = fd.bitrate_switch = fd.error_state = true;
  expected.frames.push_back(fd);
  auto remote = make_frame(1'700'000'000'200'000'000, 0x123, {});
  remote.remote = true;
  remote.size = 8;  // requested length, no payload
  expected.frames.push_back(remote);
  auto error = make_frame(1'700'000'000'300'000'000, 0x4, {0, 0, 0, 0, 0, 0, 0, 0});
  error.error = true;
  expected.frames.push_back(error);
  expected.samples.push_back({1'700'000'000'050'000'000, 7, 3.25});
  expected.samples.push_back(
      {1'700'000'000'040'000'000, 0xFFFFFFFFu, -std::numeric_limits<double>::infinity()});
  expected.samples.push_back({1'700'000'000'060'000'000, 1, std::numeric_limits<double>::quiet_NaN()});
  expected.events.push_back({1'700'000'000'070'000'000, "state", R"({"to":"WARNING"})"});
  expected.events.push_back({1'700'000'000'070'000'000, "", ""});
  for (const auto& f : expected.frames) enc.add_frame(f);
  for (const auto& s : expected.samples) enc.add_sample(s.time_ns, s.channel, s.value);
  for (const auto& e : expected.events) enc.add_event(e.time_ns, e.kind, e.json);
  EXPECT_EQ(enc.records(), 10u);
  EXPECT_EQ(enc.first_ns(), 1'699'999'999'900'000'000);
  EXPECT_EQ(enc.last_ns(), 1'700'000'000'300'000'000);
  std::vector<std::uint8_t> raw;
  enc.finish(raw);
  return raw;
}

TEST(BlockCodec, RoundTripsEveryKindOfRecord) {
  Block expected;
  const auto raw = encode_sample_block(expected);
  Block got;
  ASSERT_TRUE(decode_records(raw, got).ok());
  ASSERT_EQ(got.frames.size(), expected.frames.size());
  for (std::size_t i = 0; i < got.frames.size(); ++i) EXPECT_TRUE(got.frames[i] == expected.frames[i]) << i;
  EXPECT_EQ(got.frames[3].size, 8);
  EXPECT_EQ(got.frames[2].bus.view(), "can-fd-bus-long");
  ASSERT_EQ(got.samples.size(), 3u);
  EXPECT_EQ(got.samples[0].value, 3.25);
  EXPECT_EQ(got.samples[1].channel, 0xFFFFFFFFu);
  EXPECT_TRUE(std::isinf(got.samples[1].value));
  EXPECT_TRUE(std::isnan(got.samples[2].value));
  EXPECT_EQ(got.samples[1].time_ns, 1'700'000'000'040'000'000);
  ASSERT_EQ(got.events.size(), 2u);
  EXPECT_EQ(got.events[0].kind, "state");
  EXPECT_EQ(got.events[0].json, R"({"to":"WARNING"})");
  EXPECT_EQ(got.events[1].time_ns, 1'700'000'000'070'000'000);
}

TEST(BlockCodec, PdoFrameIsCompact) {
  BlockEncoder enc;
  enc.reset();
  for (int i = 0; i < 100; ++i)
    enc.add_frame(
        make_frame(1'700'000'000'000'000'000 + i * 833'333, 0x181 + i % 8, {1, 2, 3, 4, 5, 6, 7, 8}));
  std::vector<std::uint8_t> raw;
  enc.finish(raw);
  EXPECT_LE(raw.size(), 100u * 16 + 32);  // time delta 3 + id 2 + flags + size + bus + 8 payload
}

TEST(BlockCodec, EveryTruncationIsAnErrorNotACrash) {
  Block expected;
  const auto raw = encode_sample_block(expected);
  for (std::size_t n = 0; n < raw.size(); ++n) {
    Block got;
    auto r = decode_records(std::span(raw.data(), n), got);
    EXPECT_FALSE(r.ok()) << n;
  }
  auto longer = raw;
  longer.push_back(0);
  Block got;
  auto r = decode_records(longer, got);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("trailing"), std::string::npos) << r.error().message;
}

TEST(BlockCodec, EveryByteFlipDecodesOrFailsCleanly) {
  Block expected;
  const auto raw = encode_sample_block(expected);
  for (std::size_t i = 0; i < raw.size(); ++i) {
    for (std::uint8_t x : {0x01, 0x80, 0xFF}) {
      auto bad = raw;
      bad[i] ^= x;
      Block got;
      (void)decode_records(bad, got);
    }
  }
}

TEST(BlockCodec, RefusesOtherLayoutVersionsAndHugeCounts) {
  Block b;
  std::vector<std::uint8_t> v2 = {2, 0, 0, 0, 0, 0};
  auto r = decode_records(v2, b);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("layout version 2"), std::string::npos);
  std::vector<std::uint8_t> huge = {1, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0, 0};
  r = decode_records(huge, b);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("record counts"), std::string::npos) << r.error().message;
}

TEST(BlockCodec, DecodeBlockNamesTheSeqAndChecksTheRow) {
  Block expected;
  const auto raw = encode_sample_block(expected);
  std::vector<std::uint8_t> packed;
  ASSERT_TRUE(compress(raw, 3, packed).ok());
  const TimeNs first = 1'699'999'999'900'000'000, last = 1'700'000'000'300'000'000;
  auto ok = decode_block(42, first, last, 10, packed);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->seq, 42u);
  auto wrong_count = decode_block(42, first, last, 11, packed);
  ASSERT_FALSE(wrong_count.ok());
  EXPECT_NE(wrong_count.error().message.find("block 42"), std::string::npos);
  auto wrong_time = decode_block(43, first + 1, last, 10, packed);
  ASSERT_FALSE(wrong_time.ok());
  EXPECT_NE(wrong_time.error().message.find("block 43"), std::string::npos);
  std::vector<std::uint8_t> garbage = {1, 2, 3};
  auto bad = decode_block(44, first, last, 10, garbage);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("block 44"), std::string::npos);
  packed.resize(packed.size() / 2);
  auto cut = decode_block(45, first, last, 10, packed);
  ASSERT_FALSE(cut.ok());
  EXPECT_NE(cut.error().message.find("block 45"), std::string::npos);
}

}  // namespace
}  // namespace cellguard::recorder::detail
