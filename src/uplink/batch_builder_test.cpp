#include "uplink/batch_builder.h"

#include <gtest/gtest.h>

#include <cmath>

#include "dbc/dbc.h"

namespace cellguard::uplink {
namespace {

constexpr const char* kDbc = R"(VERSION ""
BU_: Module
BO_ 385 BMU01_pdo1: 8 Module
 SG_ CMA_Current : 0|16@1- (0.1,0) [-3276.8|3276.7] "A" Vector__XXX
 SG_ SOH : 16|8@1+ (1,0) [0|100] "%" Vector__XXX
BO_ 512 Muxed: 2 Module
 SG_ Selector M : 0|8@1+ (1,0) [0|255] "" Vector__XXX
 SG_ A m0 : 8|8@1+ (1,0) [0|255] "" Vector__XXX
 SG_ B m1 : 8|8@1+ (1,0) [0|255] "" Vector__XXX
)";

can::Frame frame(std::uint32_t id, std::int64_t t, std::initializer_list<std::uint8_t> bytes) {
  can::Frame f;
  f.id = id;
  f.timestamp_ns = t;
  std::vector<std::uint8_t> b(bytes);
  f.set_payload(b);
  return f;
}

BatchBuilder make(const CatalogueHints& hints = {}) {
  auto b = BatchBuilder::create(kDbc, {{7, "board.temp1_c", "degC"}, {8, "board.pressure", "bar"}}, hints);
  EXPECT_TRUE(b) << (b ? "" : b.error().message);
  return std::move(*b);
}

TEST(BatchBuilder, NamesEverySignalAndSampleChannelWithModuleAndRigColumn) {
  CatalogueHints hints;
  hints.module_of = [](const dbc::Message& m) {
    return m.name == "BMU01_pdo1" ? ModuleOfMessage{1, "BMU01_"} : ModuleOfMessage{};
  };
  hints.rig_columns = {{"board.temp1_c", "Ardu_Temp1"}};
  BatchBuilder b = make(hints);
  const auto& c = b.catalogue();
  ASSERT_EQ(c.size(), 7u);
  EXPECT_EQ(c[0].name, "BMU01_pdo1.CMA_Current");
  EXPECT_EQ(c[0].unit, "A");
  EXPECT_EQ(c[0].module, 1u);
  EXPECT_EQ(c[0].rig_column, "BMU01_CMA_Current");
  EXPECT_FALSE(c[0].integral);
  EXPECT_TRUE(c[1].integral);
  EXPECT_EQ(c[2].module, 0u);
  EXPECT_EQ(c[5].name, "board.temp1_c");
  EXPECT_EQ(c[5].rig_column, "Ardu_Temp1");
  EXPECT_EQ(c[6].unit, "bar");
  for (std::size_t i = 0; i < c.size(); ++i) EXPECT_EQ(c[i].id, i + 1);
}

TEST(BatchBuilder, FramesBecomeOneSeriesPerMessageAndUnknownFramesAreCounted) {
  BatchBuilder b = make();
  recorder::Block block;
  block.seq = 9;
  block.frames = {frame(385, 100, {0x85, 0xff, 99, 0, 0, 0, 0, 0}), frame(0x7ff, 150, {1}),
                  frame(385, 200, {0x10, 0x00, 98, 0, 0, 0, 0, 0}), frame(385, 250, {1})};
  const Batch batch = b.build(block);
  EXPECT_EQ(batch.seq, 9u);
  EXPECT_EQ(batch.records, 4u);
  ASSERT_EQ(batch.series.size(), 1u);
  const Series& s = batch.series[0];
  EXPECT_EQ(s.channels, (std::vector<std::uint32_t>{1, 2}));
  EXPECT_EQ(s.times_ns, (std::vector<std::int64_t>{100, 200}));
  EXPECT_EQ(s.values,
            (std::vector<double>{static_cast<double>(-123) * 0.1, 99, static_cast<double>(16) * 0.1, 98}));
  EXPECT_EQ(b.counters().unknown_frames, 1u);
  EXPECT_EQ(b.counters().failed_frames, 1u);  // too short for BMU01_pdo1
}

TEST(BatchBuilder, SignalsAMultiplexerDidNotSelectAreNaN) {
  BatchBuilder b = make();
  recorder::Block block;
  block.seq = 1;
  block.frames = {frame(512, 10, {0, 5}), frame(512, 20, {1, 6})};
  const Batch batch = b.build(block);
  ASSERT_EQ(batch.series.size(), 1u);
  const auto& v = batch.series[0].values;  // Selector, A, B per row
  ASSERT_EQ(v.size(), 6u);
  EXPECT_EQ(v[0], 0);
  EXPECT_EQ(v[1], 5);
  EXPECT_TRUE(std::isnan(v[2]));
  EXPECT_EQ(v[3], 1);
  EXPECT_TRUE(std::isnan(v[4]));
  EXPECT_EQ(v[5], 6);
}

TEST(BatchBuilder, SamplesAtOneInstantFormARowAndEventsAndLossesCarryOver) {
  BatchBuilder b = make();
  recorder::Block block;
  block.seq = 3;
  block.lost_records = 11;
  block.samples = {{100, 7, 21.5}, {100, 8, 0.25}, {200, 7, 21.6}, {200, 8, 0.26}, {300, 7, 21.7}};
  block.events = {{150, "state", "{}"}};
  const Batch batch = b.build(block);
  ASSERT_EQ(batch.series.size(), 2u);
  EXPECT_EQ(batch.series[0].channels, (std::vector<std::uint32_t>{6, 7}));
  EXPECT_EQ(batch.series[0].times_ns, (std::vector<std::int64_t>{100, 200}));
  EXPECT_EQ(batch.series[0].values, (std::vector<double>{21.5, 0.25, 21.6, 0.26}));
  EXPECT_EQ(batch.series[1].channels, (std::vector<std::uint32_t>{6}));
  EXPECT_EQ(batch.series[1].values, (std::vector<double>{21.7}));
  ASSERT_EQ(batch.events.size(), 1u);
  EXPECT_EQ(batch.lost_records, 11u);
  EXPECT_EQ(batch.records, 5u + 1u + 11u);
}

TEST(BatchBuilder, ABrokenDbcIsAnError) {
  auto b = BatchBuilder::create("BO_ 1 X: 8 Y\n SG_ oops", {}, {});
  ASSERT_FALSE(b);
  EXPECT_FALSE(b.error().message.empty());
}

}  // namespace
}  // namespace cellguard::uplink
