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

constexpr auto kTrc = LogFormat::trc;

TEST(Trc, ReadsVersion10LinesAsMillisecondsSinceStart) {
  auto r = read_all(
      ";##########\n"
      "     1)      1841  0001  8  00 01 02 03 04 05 06 07\n"
      "     2)      1842  0008  4  ERROR 00 19 08 08\n"
      "     3)      1843  FFFFFFFF  4  00 00 00 04 -- -- -- --  BUSLIGHT\n"
      "     4)      1844  0100  3  RTR\n",
      kTrc);
  ASSERT_TRUE(r.errors.empty()) << r.errors[0];
  ASSERT_EQ(r.frames.size(), 3u);
  EXPECT_EQ(r.frames[0].timestamp_ns, 1'841'000'000);
  EXPECT_EQ(r.frames[0].id, 1u);
  EXPECT_EQ(bytes(r.frames[0]), (V{0, 1, 2, 3, 4, 5, 6, 7}));
  EXPECT_TRUE(r.frames[1].error);
  EXPECT_TRUE(r.frames[2].remote);
  EXPECT_EQ(r.frames[2].size, 3u);
  EXPECT_EQ(r.frames[2].bus.view(), "");
}

TEST(Trc, ReadsVersion11WithStartTimeAsAbsoluteTime) {
  // 45244.5 days after 1899-12-30 is 2023-11-14 12:00:00 UTC.
  auto r = read_all(
      ";$FILEVERSION=1.1\n"
      ";$STARTTIME=45244.5\n"
      "     1)      1059.9  Rx         0300  2  00 01\n"
      "     2)      1346.8  Warng  FFFFFFFF  4  00 00 00 04  BUSLIGHT\n"
      "     3)      1349.2  Error      0008  4  00 19 08 08\n"
      "     4)      1352.7  Tx     18EFC034  1  AA\n",
      kTrc);
  ASSERT_TRUE(r.errors.empty()) << r.errors[0];
  ASSERT_EQ(r.frames.size(), 3u);
  constexpr std::int64_t kStart = 1'699'963'200'000'000'000;
  EXPECT_EQ(r.frames[0].timestamp_ns, kStart + 1'059'900'000);
  EXPECT_EQ(r.frames[0].id, 0x300u);
  EXPECT_FALSE(r.frames[0].extended);
  EXPECT_TRUE(r.frames[1].error);
  EXPECT_TRUE(r.frames[2].extended);
  EXPECT_EQ(r.frames[2].id, 0x18EFC034u);
}

TEST(Trc, ReadsVersion13BusAndReservedColumns) {
  auto r = read_all(
      ";$FILEVERSION=1.3\n"
      "     1)      1059.900 2  Rx        0300 -  2    00 01\n"
      "     7)      1352.743 1  Rx        0100 -  3    RTR\n",
      kTrc);
  ASSERT_TRUE(r.errors.empty()) << r.errors[0];
  ASSERT_EQ(r.frames.size(), 2u);
  EXPECT_EQ(r.frames[0].bus.view(), "2");
  EXPECT_EQ(r.frames[0].timestamp_ns, 1'059'900'000);
  EXPECT_TRUE(r.frames[1].remote);
}

TEST(Trc, ReadsVersion20WithDataLengthColumn) {
  auto r = read_all(
      ";$FILEVERSION=2.0\n"
      ";$COLUMNS=N,O,T,I,d,l,D\n"
      "      1      1059.900 DT     0300 Rx 7  00 00 00 00 04 00 00\n"
      "      5      1334.416 FD     0500 Tx 12 01 02 03 04 05 06 07 08 09 0A 0B 0C\n"
      "      6      1334.522 ER          Rx    04 00 02 00 00\n"
      "      7      1334.531 ST          Rx    00 00 00 08\n"
      "      8      1334.643 EC          Rx    02 02\n"
      "     10      1336.543 RR     0100 Rx 3\n",
      kTrc);
  ASSERT_TRUE(r.errors.empty()) << r.errors[0];
  ASSERT_EQ(r.frames.size(), 4u);
  EXPECT_EQ(r.frames[0].size, 7u);
  EXPECT_TRUE(r.frames[1].fd);
  EXPECT_EQ(r.frames[1].size, 12u);
  EXPECT_TRUE(r.frames[2].error);
  EXPECT_TRUE(r.frames[3].remote);
  EXPECT_EQ(r.frames[3].size, 3u);
}

TEST(Trc, ReadsVersion21DlcColumnAndFdTypes) {
  auto r = read_all(
      ";$FILEVERSION=2.1\n"
      ";$STARTTIME=45244.5\n"
      ";$COLUMNS=N,O,T,B,I,d,R,L,D\n"
      "      5      1334.416 FB 1      0500 Tx -  9    01 02 03 04 05 06 07 08 09 0A 0B 0C\n"
      "      6      1334.222 ER 2         - Rx -  5    04 00 02 00 00\n"
      "      7      1334.224 EV 1  User-defined event for bus 1\n"
      "      8      1334.225 BI 1  18EFC034 Rx -  1    AA\n"
      "      9      1334.226 FE 1      0001 Rx -  0\n",
      kTrc);
  ASSERT_TRUE(r.errors.empty()) << r.errors[0];
  ASSERT_EQ(r.frames.size(), 4u);
  EXPECT_EQ(r.frames[0].size, 12u);
  EXPECT_TRUE(r.frames[0].bitrate_switch);
  EXPECT_FALSE(r.frames[0].error_state);
  EXPECT_EQ(r.frames[0].bus.view(), "1");
  EXPECT_TRUE(r.frames[1].error);
  EXPECT_EQ(r.frames[1].bus.view(), "2");
  EXPECT_TRUE(r.frames[2].bitrate_switch);
  EXPECT_TRUE(r.frames[2].error_state);
  EXPECT_TRUE(r.frames[2].extended);
  EXPECT_TRUE(r.frames[3].error_state);
  EXPECT_FALSE(r.frames[3].bitrate_switch);
}

TEST(Trc, ReportsMissingDataBytesAndContinues) {
  auto r = read_all(";$FILEVERSION=2.1\n 1 1.000 DT 1 0300 Rx - 8 00 01\n 2 2.000 DT 1 0300 Rx - 1 07\n",
                    kTrc, "x.trc");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0], "x.trc:2: fewer data bytes than the length says");
  EXPECT_EQ(r.frames.size(), 1u);
}

TEST(Trc, RejectsUnknownFileVersions) {
  auto r = read_all(";$FILEVERSION=3.0\n", kTrc);
  EXPECT_EQ(r.errors.size(), 1u);
}

TEST(Trc, WritesVersion21WithAnExactStartTime) {
  Frame a = make_frame(1'699'963'200'000'000'000 + 1'059'900'000, 0x300, {0, 1});
  a.bus = BusName("2");
  const std::string text = write_all(kTrc, {a});
  EXPECT_NE(text.find(";$FILEVERSION=2.1\r\n;$STARTTIME=45244.50001\r\n;$COLUMNS=N,O,T,B,I,d,R,L,D\r\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("      1       195.900 DT  2     0300 Rx -  2    00 01 \r\n"), std::string::npos)
      << text;
}

TEST(Trc, RoundTripsEveryKindOfFrameToTheMicrosecond) {
  std::vector<Frame> frames;
  frames.push_back(make_frame(1'700'000'000'000'001'000, 0x7FF, {1, 2, 3, 4, 5, 6, 7, 8}, "1"));
  frames.push_back(make_frame(1'700'000'000'500'002'000, 0x1, {1}, "16"));
  Frame remote = make_frame(1'700'000'001'000'000'000, 0x100, {}, "1");
  remote.remote = true;
  remote.size = 3;
  frames.push_back(remote);
  Frame error = make_frame(1'700'000'002'000'000'000, 0x80, {}, "1");
  error.error = true;
  error.extended = false;
  frames.push_back(error);
  for (int flags = 0; flags < 4; ++flags) {
    Frame fd = make_frame(1'700'000'003'000'000'000 + flags, 0x1ABCDEF0,
                          V(64, static_cast<std::uint8_t>(flags)), "3");
    fd.timestamp_ns -= flags;  // microsecond precision
    fd.fd = true;
    fd.bitrate_switch = (flags & 1) != 0;
    fd.error_state = (flags & 2) != 0;
    frames.push_back(fd);
  }
  auto r = read_all(write_all(kTrc, frames), kTrc);
  ASSERT_TRUE(r.errors.empty()) << r.errors[0];
  EXPECT_EQ(r.frames, frames);
}

}  // namespace
}  // namespace cellguard::can
