#include <gtest/gtest.h>

#include "can/log.h"
#include "can/log_test_util.h"

namespace cellguard::can {
namespace {

using testing::bytes;
using testing::make_frame;
using testing::read_all;
using testing::write_all;
using V = std::vector<std::uint8_t>;

constexpr auto kAsc = LogFormat::asc;

// 2023-11-14 22:13:20 UTC is Unix time 1700000000.
constexpr std::int64_t kStart = 1'700'000'000'000'000'000;

const char* const kHeader =
    "date Tue Nov 14 10:13:20.000 pm 2023\n"
    "base hex  timestamps absolute\n"
    "internal events logged\n"
    "// version 9.0.0\n"
    "Begin Triggerblock Tue Nov 14 10:13:20.000 pm 2023\n"
    "   0.000000 Start of measurement\n";

TEST(Asc, ReadsClassicFramesRelativeToTheTriggerblockDate) {
  auto r = read_all(
      std::string(kHeader) + "   0.000250 1  181             Rx   d 8 F2 A7 00 00 00 00 00 01\n", kAsc);
  ASSERT_TRUE(r.errors.empty()) << r.errors[0];
  ASSERT_EQ(r.frames.size(), 1u);
  EXPECT_EQ(r.frames[0].timestamp_ns, kStart + 250'000);
  EXPECT_EQ(r.frames[0].id, 0x181u);
  EXPECT_EQ(r.frames[0].bus.view(), "1");
  EXPECT_EQ(bytes(r.frames[0]), (V{0xF2, 0xA7, 0, 0, 0, 0, 0, 1}));
}

TEST(Asc, ReadsTrailingXAsExtendedId) {
  auto r = read_all("   1.5 2  18FF50E5x       Tx   d 2 01 02\n", kAsc);
  ASSERT_EQ(r.frames.size(), 1u);
  EXPECT_TRUE(r.frames[0].extended);
  EXPECT_EQ(r.frames[0].id, 0x18FF50E5u);
  EXPECT_EQ(r.frames[0].timestamp_ns, 1'500'000'000);
  EXPECT_EQ(r.frames[0].bus.view(), "2");
}

TEST(Asc, ReadsRemoteFramesWithAndWithoutDlc) {
  auto r = read_all("0.1 1  100  Rx   r 4\n0.2 1  100  Rx   r\n", kAsc);
  ASSERT_EQ(r.frames.size(), 2u);
  EXPECT_TRUE(r.frames[0].remote);
  EXPECT_EQ(r.frames[0].size, 4u);
  EXPECT_TRUE(r.frames[1].remote);
  EXPECT_EQ(r.frames[1].size, 0u);
}

TEST(Asc, ReadsErrorFramesAsBusErrors) {
  auto r = read_all("0.1 1  ErrorFrame\n0.2 CANFD   2 Rx ErrorFrame 0 0\n", kAsc);
  ASSERT_EQ(r.frames.size(), 2u);
  EXPECT_TRUE(r.frames[0].error);
  EXPECT_EQ(r.frames[0].id, 0x80u);
  EXPECT_TRUE(r.frames[1].error);
  EXPECT_EQ(r.frames[1].bus.view(), "2");
}

TEST(Asc, ReadsCanFdLinesWithAndWithoutSymbolicName) {
  auto r = read_all(
      "0.1 CANFD   1 Rx        123  Engine_Data  1 0 9 12 01 02 03 04 05 06 07 08 09 0A 0B 0C 0 0 3000 0 0 0 "
      "0 0\n"
      "0.2 CANFD   1 Rx 18FF50E5x                                  0 1 8  8 11 22 33 44 55 66 77 88 0 0 5000 "
      "0 0 0 0 0\n",
      kAsc);
  ASSERT_TRUE(r.errors.empty()) << r.errors[0];
  ASSERT_EQ(r.frames.size(), 2u);
  EXPECT_TRUE(r.frames[0].fd);
  EXPECT_TRUE(r.frames[0].bitrate_switch);
  EXPECT_FALSE(r.frames[0].error_state);
  EXPECT_EQ(r.frames[0].size, 12u);
  EXPECT_TRUE(r.frames[1].extended);
  EXPECT_TRUE(r.frames[1].error_state);
  EXPECT_EQ(r.frames[1].data[7], 0x88);
}

TEST(Asc, ReadsClassicFramesLoggedOnAnFdChannelByTheirFlags) {
  auto r = read_all(
      "0.1 CANFD   1 Rx 123  0 0 2  2 AA BB 0 0 0 0 0 0 0 0\n0.2 CANFD   1 Rx 124  0 0 3  0 0 0 10 0 0 0 0 "
      "0\n",
      kAsc);
  ASSERT_EQ(r.frames.size(), 2u);
  EXPECT_FALSE(r.frames[0].fd);
  EXPECT_EQ(r.frames[0].size, 2u);
  EXPECT_TRUE(r.frames[1].remote);
  EXPECT_EQ(r.frames[1].size, 3u);
}

TEST(Asc, HonoursDecimalBase) {
  auto r =
      read_all("base dec  timestamps absolute\n0.1 1  385  Rx   d 2 255 16\n0.2 1  100x  Rx   d 1 7\n", kAsc);
  ASSERT_EQ(r.frames.size(), 2u);
  EXPECT_EQ(r.frames[0].id, 385u);
  EXPECT_EQ(bytes(r.frames[0]), (V{255, 16}));
  EXPECT_TRUE(r.frames[1].extended);
  EXPECT_EQ(r.frames[1].id, 100u);
}

TEST(Asc, AccumulatesRelativeTimestamps) {
  auto r = read_all("base hex  timestamps relative\n0.5 1  1  Rx   d 0\n0.25 1  2  Rx   d 0\n", kAsc);
  ASSERT_EQ(r.frames.size(), 2u);
  EXPECT_EQ(r.frames[0].timestamp_ns, 500'000'000);
  EXPECT_EQ(r.frames[1].timestamp_ns, 750'000'000);
}

TEST(Asc, UsesTheDateLineWithoutATriggerblockDate) {
  auto r = read_all("date Tue Nov 14 22:13:20 2023\nBegin Triggerblock\n1.0 1  1  Rx   d 0\n", kAsc);
  ASSERT_EQ(r.frames.size(), 1u);
  EXPECT_EQ(r.frames[0].timestamp_ns, kStart + 1'000'000'000);
}

TEST(Asc, ReadsGermanMonthNames) {
  auto r = read_all("date Di Dez 12 10:00:00.500 am 2023\n0.0 1  1  Rx   d 0\n", kAsc);
  ASSERT_EQ(r.frames.size(), 1u);
  EXPECT_EQ(r.frames[0].timestamp_ns, 1'702'375'200'500'000'000);
}

TEST(Asc, SkipsStatisticsChipStatusAndComments) {
  auto r = read_all(
      "// a comment\n"
      "   1.0 1  Statistic: D 0 R 0 XD 0 XR 0 E 0 O 0 B 0.00%\n"
      "   1.1 CAN 1 Status:chip status error active\n"
      "   1.2 1  181  Rx   d 1 01\n"
      "End TriggerBlock\n",
      kAsc);
  EXPECT_TRUE(r.errors.empty()) << r.errors[0];
  EXPECT_EQ(r.frames.size(), 1u);
}

TEST(Asc, ReportsMissingDataBytesWithTheLineNumber) {
  auto r = read_all("0.1 1  181  Rx   d 8 01 02\n0.2 1  181  Rx   d 1 01\n", kAsc, "rig.asc");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0], "rig.asc:1: fewer data bytes than the DLC says");
  EXPECT_EQ(r.frames.size(), 1u);
}

TEST(Asc, WritesTheHeaderFromTheFirstFrameAndRelativeOffsets) {
  Frame a = make_frame(kStart + 123'456'789, 0x181, {0xF2, 0xA7}, "can0");
  Frame b = make_frame(kStart + 200'000'000, 0x18FF50E5, {0x01}, "2");
  EXPECT_EQ(write_all(kAsc, {a, b}),
            "date Tue Nov 14 10:13:20.123 pm 2023\n"
            "base hex  timestamps absolute\n"
            "internal events logged\n"
            "// version 9.0.0\n"
            "Begin Triggerblock Tue Nov 14 10:13:20.123 pm 2023\n"
            "   0.000000 Start of measurement\n"
            "   0.000456 1  181             Rx   d 2 F2 A7\n"
            "   0.077000 2  18FF50E5x       Rx   d 1 01\n"
            "End TriggerBlock\n");
}

TEST(Asc, RoundTripsEveryKindOfFrameToTheMicrosecond) {
  std::vector<Frame> frames;
  frames.push_back(make_frame(kStart + 1'000, 0x7FF, {1, 2, 3, 4, 5, 6, 7, 8}, "1"));
  Frame remote = make_frame(kStart + 2'000, 0x100, {}, "1");
  remote.remote = true;
  remote.size = 3;
  frames.push_back(remote);
  Frame error = make_frame(kStart + 3'000, 0x80, {}, "1");
  error.error = true;
  error.extended = false;
  frames.push_back(error);
  Frame fd = make_frame(kStart + 4'000, 0x1ABCDEF0, V(48, 0x5A), "3");
  fd.fd = true;
  fd.error_state = true;
  frames.push_back(fd);
  auto r = read_all(write_all(kAsc, frames), kAsc);
  ASSERT_TRUE(r.errors.empty()) << r.errors[0];
  EXPECT_EQ(r.frames, frames);
}

}  // namespace
}  // namespace cellguard::can
