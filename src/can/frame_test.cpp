#include "can/frame.h"

#include <gtest/gtest.h>

#include <array>

namespace cellguard::can {
namespace {

TEST(Frame, FdDlcsMapToTheLengthsOfIso11898Table5) {
  const std::array<std::uint8_t, 16> lengths = {0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24, 32, 48, 64};
  for (std::uint8_t dlc = 0; dlc < 16; ++dlc) {
    EXPECT_EQ(dlc_to_length(dlc, true), lengths[dlc]);
    EXPECT_EQ(length_to_dlc(lengths[dlc]), dlc);
  }
}

TEST(Frame, ClassicDlcsAboveEightMeanEightBytes) {
  EXPECT_EQ(dlc_to_length(9, false), 8);
  EXPECT_EQ(dlc_to_length(15, false), 8);
  EXPECT_EQ(dlc_to_length(5, false), 5);
}

TEST(Frame, LengthsBetweenFdStepsRoundUpToTheNextDlc) {
  EXPECT_EQ(length_to_dlc(9), 9);
  EXPECT_EQ(length_to_dlc(33), 14);
  EXPECT_EQ(length_to_dlc(65), 15);
}

TEST(Frame, ValidLengthsDependOnFd) {
  EXPECT_TRUE(is_valid_length(8, false));
  EXPECT_FALSE(is_valid_length(9, false));
  EXPECT_TRUE(is_valid_length(12, true));
  EXPECT_FALSE(is_valid_length(10, true));
}

TEST(Frame, BusNamesLongerThanFifteenBytesAreCut) {
  BusName name("a_very_long_interface_name");
  EXPECT_EQ(name.view(), "a_very_long_int");
  EXPECT_FALSE(name.empty());
  EXPECT_TRUE(BusName().empty());
}

TEST(Frame, EqualityIgnoresBytesBeyondTheSizeAndRemoteData) {
  Frame a;
  a.size = 2;
  a.data[0] = 1;
  a.data[5] = 9;
  Frame b = a;
  b.data[5] = 7;
  EXPECT_EQ(a, b);
  a.remote = b.remote = true;
  b.data[0] = 2;
  EXPECT_EQ(a, b);
  b.bus = BusName("can1");
  EXPECT_FALSE(a == b);
}

TEST(Frame, SetPayloadCopiesAtMostSixtyFourBytes) {
  std::array<std::uint8_t, 70> bytes{};
  bytes[63] = 0x63;
  Frame frame;
  frame.set_payload(bytes);
  EXPECT_EQ(frame.size, 64);
  EXPECT_EQ(frame.payload().size(), 64u);
  EXPECT_EQ(frame.data[63], 0x63);
}

}  // namespace
}  // namespace cellguard::can
