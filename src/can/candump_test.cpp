#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "can/log.h"
#include "can/log_test_util.h"

namespace cellguard::can {
namespace {

using testing::bytes;
using testing::make_frame;
using testing::read_all;
using testing::write_all;
using V = std::vector<std::uint8_t>;

constexpr auto kLog = LogFormat::candump_log;
constexpr auto kConsole = LogFormat::candump_console;

// ---- candump -L -------------------------------------------------------------------------------

TEST(CandumpLog, ReadsAClassicFrameWithMicrosecondTimestamp) {
  auto r = read_all("(1700000000.000250) can0 181#F2A7000000000000\n", kLog);
  ASSERT_TRUE(r.errors.empty());
  ASSERT_EQ(r.frames.size(), 1u);
  const Frame& f = r.frames[0];
  EXPECT_EQ(f.timestamp_ns, 1'700'000'000'000'250'000);
  EXPECT_EQ(f.id, 0x181u);
  EXPECT_FALSE(f.extended);
  EXPECT_EQ(f.bus.view(), "can0");
  EXPECT_EQ(bytes(f), (V{0xF2, 0xA7, 0, 0, 0, 0, 0, 0}));
}

TEST(CandumpLog, KeepsNanosecondDigitsOfTheTimestamp) {
  auto r = read_all("(1700000000.123456789) can0 001#\n", kLog);
  ASSERT_EQ(r.frames.size(), 1u);
  EXPECT_EQ(r.frames[0].timestamp_ns, 1'700'000'000'123'456'789);
  EXPECT_EQ(r.frames[0].size, 0u);
}

TEST(CandumpLog, ReadsEightDigitIdsAsExtended) {
  auto r = read_all("(1.0) vcan1 18FF50E5#0102\n", kLog);
  ASSERT_EQ(r.frames.size(), 1u);
  EXPECT_TRUE(r.frames[0].extended);
  EXPECT_EQ(r.frames[0].id, 0x18FF50E5u);
  EXPECT_EQ(r.frames[0].bus.view(), "vcan1");
}

TEST(CandumpLog, ReadsRemoteFramesWithAndWithoutLength) {
  auto r = read_all("(1.0) can0 123#R\n(1.1) can0 123#R5\n", kLog);
  ASSERT_EQ(r.frames.size(), 2u);
  EXPECT_TRUE(r.frames[0].remote);
  EXPECT_EQ(r.frames[0].size, 0u);
  EXPECT_TRUE(r.frames[1].remote);
  EXPECT_EQ(r.frames[1].size, 5u);
}

TEST(CandumpLog, AcceptsTheRawDlcSuffixOfEightByteFrames) {
  auto r = read_all("(1.0) can0 123#1122334455667788_C\n", kLog);
  ASSERT_TRUE(r.errors.empty());
  ASSERT_EQ(r.frames.size(), 1u);
  EXPECT_EQ(r.frames[0].size, 8u);
}

TEST(CandumpLog, ReadsErrorFlagAsErrorFrameWithClassBits) {
  auto r = read_all("(1.0) can0 20000080#0000000000000000\n", kLog);
  ASSERT_EQ(r.frames.size(), 1u);
  EXPECT_TRUE(r.frames[0].error);
  EXPECT_FALSE(r.frames[0].extended);
  EXPECT_EQ(r.frames[0].id, 0x80u);
  EXPECT_EQ(r.frames[0].size, 8u);
}

TEST(CandumpLog, ReadsCanFdFramesWithBrsAndEsiFlags) {
  auto r =
      read_all("(1.0) can0 123##3112233445566778899AABBCC\n(1.1) can0 124##0\n(1.2) can0 125##5AA\n", kLog);
  ASSERT_TRUE(r.errors.empty()) << r.errors[0];
  ASSERT_EQ(r.frames.size(), 3u);
  EXPECT_TRUE(r.frames[0].fd);
  EXPECT_TRUE(r.frames[0].bitrate_switch);
  EXPECT_TRUE(r.frames[0].error_state);
  EXPECT_EQ(r.frames[0].size, 12u);
  EXPECT_TRUE(r.frames[1].fd);
  EXPECT_FALSE(r.frames[1].bitrate_switch);
  EXPECT_EQ(r.frames[1].size, 0u);
  // FDF (4) set by newer kernels is ignored.
  EXPECT_TRUE(r.frames[2].bitrate_switch);
  EXPECT_FALSE(r.frames[2].error_state);
}

TEST(CandumpLog, AcceptsDirectionSuffixOfCandumpX) {
  auto r = read_all("(1.0) can0 123#11 R\n(1.0) can0 123#R T\n", kLog);
  EXPECT_TRUE(r.errors.empty());
  EXPECT_EQ(r.frames.size(), 2u);
}

TEST(CandumpLog, ReportsAMalformedLineWithSourceAndLineNumberAndContinues) {
  auto r = read_all("(1.0) can0 123#11\n(1.0) can0 123#1\n(2.0) can0 124#22\n", kLog, "rig.log");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0], "rig.log:2: data must be pairs of hex digits");
  ASSERT_EQ(r.frames.size(), 2u);
  EXPECT_EQ(r.frames[1].id, 0x124u);
}

TEST(CandumpLog, RejectsIdsOfOtherLengthsAndStandardIdsAbove7FF) {
  auto r = read_all("(1.0) can0 12#11\n(1.0) can0 800#11\n(1.0) can0 123456789#\n", kLog);
  EXPECT_EQ(r.errors.size(), 3u);
  EXPECT_TRUE(r.frames.empty());
}

TEST(CandumpLog, RejectsMoreThanEightClassicBytes) {
  auto r = read_all("(1.0) can0 123#112233445566778899\n", kLog);
  EXPECT_EQ(r.errors.size(), 1u);
}

TEST(CandumpLog, SkipsBlankLinesAndReadsALastLineWithoutNewline) {
  auto r = read_all("\n   \n(1.0) can0 123#11\r\n(2.0) can0 124#22", kLog);
  EXPECT_TRUE(r.errors.empty());
  EXPECT_EQ(r.frames.size(), 2u);
}

TEST(CandumpLog, ReportsOverlongLinesAndReadsTheNextLine) {
  std::string text = "(1.0) can0 123#" + std::string(5000, 'A') + "\n(2.0) can0 124#22\n";
  auto r = read_all(text, kLog, "big.log");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0], "big.log:1: line longer than 4096 bytes");
  ASSERT_EQ(r.frames.size(), 1u);
  EXPECT_EQ(r.frames[0].id, 0x124u);
}

TEST(CandumpLog, SurvivesBinaryGarbage) {
  std::string garbage;
  for (int i = 0; i < 3000; ++i) garbage.push_back(static_cast<char>((i * 7919) & 0xFF));
  auto r = read_all(garbage, kLog);
  EXPECT_FALSE(r.errors.empty());
}

TEST(CandumpLog, WritesExactlyWhatCandumpWrites) {
  Frame classic = make_frame(1'700'000'000'000'250'999, 0x181, {0xF2, 0xA7, 0x0B});
  Frame extended = make_frame(5'000'000, 0x18FF50E5, {0x01}, "vcan1");
  Frame remote = make_frame(1'700'000'000'000'000'000, 0x123, {});
  remote.remote = true;
  remote.size = 5;
  Frame fd = make_frame(1'700'000'000'000'000'000, 0x123, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  fd.fd = true;
  fd.bitrate_switch = true;
  Frame error = make_frame(1'700'000'000'000'000'000, 0x80, {0, 0, 0, 0, 0, 0, 0, 0});
  error.error = true;
  error.extended = false;
  EXPECT_EQ(write_all(kLog, {classic, extended, remote, fd, error}),
            "(1700000000.000250) can0 181#F2A70B\n"
            "(0000000000.005000) vcan1 18FF50E5#01\n"
            "(1700000000.000000) can0 123#R5\n"
            "(1700000000.000000) can0 123##10102030405060708090A0B0C\n"
            "(1700000000.000000) can0 20000080#0000000000000000\n");
}

TEST(CandumpLog, WriterRefusesIdsOutOfRange) {
  Frame bad = make_frame(0, 0x900, {});
  bad.extended = false;
  EXPECT_EQ(write_all(kLog, {bad}).front(), '<');
}

TEST(CandumpLog, RoundTripsEveryKindOfFrame) {
  const std::string text =
      "(1700000000.000001) can0 000#\n"
      "(1700000000.000002) can1 7FF#0011223344556677\n"
      "(1700000000.000003) can0 1FFFFFFF#AB\n"
      "(1700000000.000004) can0 321#R\n"
      "(1700000000.000005) can0 321#R8\n"
      "(1700000000.000006) can0 00000123##2" +
      std::string(128, 'E') +
      "\n"
      "(1700000000.000007) can0 20000004#0004000000000000\n";
  auto r = read_all(text, kLog);
  ASSERT_TRUE(r.errors.empty()) << r.errors[0];
  EXPECT_EQ(write_all(kLog, r.frames), text);
}

// ---- candump console ----------------------------------------------------------------------------

TEST(CandumpConsole, ReadsTheDefaultForm) {
  auto r = read_all("  can0  181   [8]  F2 A7 00 00 00 00 00 01\n", kConsole);
  ASSERT_TRUE(r.errors.empty()) << r.errors[0];
  ASSERT_EQ(r.frames.size(), 1u);
  EXPECT_EQ(r.frames[0].id, 0x181u);
  EXPECT_EQ(r.frames[0].bus.view(), "can0");
  EXPECT_EQ(r.frames[0].timestamp_ns, 0);
  EXPECT_EQ(bytes(r.frames[0]), (V{0xF2, 0xA7, 0, 0, 0, 0, 0, 1}));
}

TEST(CandumpConsole, ReadsTheAbsoluteTimestampForm) {
  auto r = read_all("(1700000000.000250)  can0  18FF50E5   [2]  01 02\n", kConsole);
  ASSERT_EQ(r.frames.size(), 1u);
  EXPECT_EQ(r.frames[0].timestamp_ns, 1'700'000'000'000'250'000);
  EXPECT_TRUE(r.frames[0].extended);
}

TEST(CandumpConsole, ReadsRelativeTimestampsAsWritten) {
  auto r = read_all("(000.000250)  vcan0  0C8   [1]  F0\n(001.500000)  vcan0  0C8   [1]  F1\n", kConsole);
  ASSERT_EQ(r.frames.size(), 2u);
  EXPECT_EQ(r.frames[0].timestamp_ns, 250'000);
  EXPECT_EQ(r.frames[1].timestamp_ns, 1'500'000'000);
}

TEST(CandumpConsole, ReadsTheDateTimestampFormAsUtc) {
  auto r = read_all("(2023-11-14 22:13:20.000250)  vcan0  0C8   [1]  F0\n", kConsole);
  ASSERT_EQ(r.frames.size(), 1u);
  EXPECT_EQ(r.frames[0].timestamp_ns, 1'700'000'000'000'250'000);
}

TEST(CandumpConsole, ReadsTwoDigitLengthsAsCanFd) {
  auto r = read_all("  can0  123  [12]  01 02 03 04 05 06 07 08 09 0A 0B 0C\n", kConsole);
  ASSERT_EQ(r.frames.size(), 1u);
  EXPECT_TRUE(r.frames[0].fd);
  EXPECT_EQ(r.frames[0].size, 12u);
}

TEST(CandumpConsole, ReadsRemoteRequests) {
  auto r = read_all("  can0  100   [4]  remote request\n", kConsole);
  ASSERT_EQ(r.frames.size(), 1u);
  EXPECT_TRUE(r.frames[0].remote);
  EXPECT_EQ(r.frames[0].size, 4u);
}

TEST(CandumpConsole, IgnoresTheAsciiColumnAndErrorDetailLines) {
  auto r = read_all(
      "  vcan0  0C8   [8]  31 30 30 2E 35 20 46 4D   '100.5 FM'\n"
      "  can0  20000080   [8]  00 00 00 00 00 00 00 00   ERRORFRAME\n"
      "\tbus-error\n",
      kConsole);
  ASSERT_TRUE(r.errors.empty()) << r.errors[0];
  ASSERT_EQ(r.frames.size(), 2u);
  EXPECT_TRUE(r.frames[1].error);
}

TEST(CandumpConsole, AcceptsUnindentedLinesLikeCantools) {
  auto r = read_all("vcan0  0C8   [8]  F0 00 00 00 00 00 00 00\n", kConsole);
  EXPECT_EQ(r.frames.size(), 1u);
}

TEST(CandumpConsole, ReportsFewerBytesThanTheLength) {
  auto r = read_all("  can0  181   [8]  F2 A7\n", kConsole);
  EXPECT_EQ(r.errors.size(), 1u);
}

// ---- names, detection, opening ----------------------------------------------------------------

TEST(LogApi, ParsesFormatNamesAndRoundTripsToString) {
  EXPECT_EQ(parse_log_format("candump"), LogFormat::candump_log);
  EXPECT_EQ(parse_log_format("ASC"), LogFormat::asc);
  EXPECT_EQ(parse_log_format("trc"), LogFormat::trc);
  EXPECT_EQ(parse_log_format("blf"), std::nullopt);
  for (auto f : {kLog, kConsole, LogFormat::asc, LogFormat::trc})
    EXPECT_EQ(parse_log_format(to_string(f)), f);
}

TEST(LogApi, GuessesFormatsFromExtensions) {
  EXPECT_EQ(log_format_from_extension("/tmp/rig.log"), kLog);
  EXPECT_EQ(log_format_from_extension("x.ASC"), LogFormat::asc);
  EXPECT_EQ(log_format_from_extension("x.trc"), LogFormat::trc);
  EXPECT_EQ(log_format_from_extension("dir.log/file"), std::nullopt);
}

TEST(LogApi, DetectsEachFormatFromItsFirstLines) {
  EXPECT_EQ(detect_log_format("(1700000000.000250) can0 181#F2A7\n"), kLog);
  EXPECT_EQ(detect_log_format("  can0  181   [2]  F2 A7\n"), kConsole);
  EXPECT_EQ(detect_log_format("(1700000000.000250)  can0  181   [2]  F2 A7\n"), kConsole);
  EXPECT_EQ(detect_log_format("date Wed Nov 15 10:13:20.000 pm 2023\nbase hex  timestamps absolute\n"),
            LogFormat::asc);
  EXPECT_EQ(detect_log_format("   0.000250 1  181  Rx   d 1 F2\n"), LogFormat::asc);
  EXPECT_EQ(detect_log_format(";$FILEVERSION=2.1\n"), LogFormat::trc);
  EXPECT_EQ(detect_log_format("     1)      1841  0001  8  00 00 00 00 00 00 00 00\n"), LogFormat::trc);
  EXPECT_EQ(detect_log_format("hello world\n"), std::nullopt);
  EXPECT_EQ(detect_log_format(""), std::nullopt);
}

TEST(LogApi, OpensAFileAndDetectsItsFormat) {
  const auto path =
      std::filesystem::temp_directory_path() / ("cellguard_log_api_" + std::to_string(::getpid()) + ".txt");
  {
    std::ofstream out(path);
    out << "  can0  181   [2]  F2 A7\n";
  }
  auto reader = open_log_reader(path.string());
  ASSERT_TRUE(reader.ok()) << reader.error().message;
  EXPECT_EQ((*reader)->format(), kConsole);
  Frame frame;
  auto got = (*reader)->next(frame);
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(*got);
  EXPECT_EQ((*reader)->bytes_read(), 25u);
  std::filesystem::remove(path);
}

TEST(LogApi, OpeningAMissingFileIsAnIoError) {
  auto reader = open_log_reader("/nonexistent/cellguard.log");
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.error().code, ErrorCode::io_error);
}

TEST(LogApi, UnrecognisableContentIsAParseError) {
  std::istringstream in("hello world\n");
  auto reader = make_log_reader(in, "x");
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.error().code, ErrorCode::parse_error);
}

TEST(LogApi, WritingConsoleFormatIsUnsupported) {
  std::ostringstream out;
  auto writer = make_log_writer(kConsole, out);
  ASSERT_FALSE(writer.ok());
  EXPECT_EQ(writer.error().code, ErrorCode::unsupported);
}

}  // namespace
}  // namespace cellguard::can
