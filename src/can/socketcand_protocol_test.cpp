#include "can/socketcand_protocol.h"

#include <gtest/gtest.h>

#include <vector>

namespace cellguard::can::socketcand {
namespace {

Frame classic(std::uint32_t id, std::vector<std::uint8_t> bytes, bool extended = false) {
  Frame frame;
  frame.id = id;
  frame.extended = extended;
  if (!bytes.empty()) frame.set_payload(bytes);  // an empty vector has no data pointer for memcpy
  return frame;
}

std::vector<std::string> split_all(ElementSplitter& splitter, std::vector<std::string>* errors = nullptr) {
  std::vector<std::string> elements;
  while (auto element = splitter.next()) {
    if (element->ok()) {
      elements.emplace_back(element->value());
    } else if (errors != nullptr) {
      errors->push_back(element->error().message);
    }
  }
  return elements;
}

Element parse_ok(std::string_view text) {
  auto parsed = parse_element(text);
  EXPECT_TRUE(parsed.ok()) << text << ": " << (parsed.ok() ? "" : parsed.error().message);
  return parsed.ok() ? parsed.value() : Element{};
}

TEST(SocketcandSplitter, SplitsBackToBackElementsAndSkipsBytesBetweenThem) {
  ElementSplitter splitter;
  splitter.feed("< hi >< ok >\n  garbage < frame 123 1.000000 11 >\n");
  EXPECT_EQ(split_all(splitter), (std::vector<std::string>{"< hi >", "< ok >", "< frame 123 1.000000 11 >"}));
  EXPECT_EQ(splitter.buffered_bytes(), 0u);
}

TEST(SocketcandSplitter, JoinsAnElementSplitAcrossReads) {
  ElementSplitter splitter;
  splitter.feed("< fra");
  EXPECT_TRUE(split_all(splitter).empty());
  splitter.feed("me 123 1.0");
  EXPECT_TRUE(split_all(splitter).empty());
  splitter.feed("00000 AA >< echo");
  EXPECT_EQ(split_all(splitter), (std::vector<std::string>{"< frame 123 1.000000 AA >"}));
  splitter.feed(" >");
  EXPECT_EQ(split_all(splitter), (std::vector<std::string>{"< echo >"}));
}

TEST(SocketcandSplitter, ReportsAnOverlongElementOnceAndResumesAfterIt) {
  ElementSplitter splitter(32);
  std::vector<std::string> errors;
  splitter.feed(std::string("< send ") + std::string(40, '1'));
  EXPECT_TRUE(split_all(splitter, &errors).empty());
  splitter.feed(std::string(1000, '2'));
  splitter.feed("33 >< echo >");
  EXPECT_EQ(split_all(splitter, &errors), (std::vector<std::string>{"< echo >"}));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("longer than 32"), std::string::npos);
}

TEST(SocketcandSplitter, RejectsAnOverlongElementThatArrivedWhole) {
  ElementSplitter splitter(16);
  std::vector<std::string> errors;
  splitter.feed("< this element is too long >< ok >");
  EXPECT_EQ(split_all(splitter, &errors), (std::vector<std::string>{"< ok >"}));
  EXPECT_EQ(errors.size(), 1u);
}

TEST(SocketcandParse, ReadsTheHandshakeElements) {
  EXPECT_EQ(parse_ok("< hi >").kind, ElementKind::hi);
  EXPECT_EQ(parse_ok("< ok >").kind, ElementKind::ok);
  EXPECT_EQ(parse_ok("<rawmode>").kind, ElementKind::rawmode);
  EXPECT_EQ(parse_ok("< echo >").kind, ElementKind::echo);
  Element open = parse_ok("< open can0 >");
  EXPECT_EQ(open.kind, ElementKind::open);
  EXPECT_EQ(open.text, "can0");
  EXPECT_FALSE(parse_element("< open >").ok());
  EXPECT_FALSE(parse_element("< hi there >").ok());
}

TEST(SocketcandParse, ReadsAFrameAsStateRawWritesIt) {
  Element element = parse_ok("< frame 123 1700000000.000250 11223344 >");
  ASSERT_EQ(element.kind, ElementKind::frame);
  Frame expected = classic(0x123, {0x11, 0x22, 0x33, 0x44});
  expected.timestamp_ns = 1'700'000'000'000'250'000;
  EXPECT_EQ(element.frame, expected);
}

TEST(SocketcandParse, ReadsDataBytesSeparatedBySpacesAsProtocolMdShowsThem) {
  Element element = parse_ok("< frame 123 23.424242 11 22 33 44 >");
  EXPECT_EQ(element.frame.size, 4);
  EXPECT_EQ(element.frame.data[3], 0x44);
  EXPECT_EQ(element.frame.timestamp_ns, 23'424'242'000);
}

TEST(SocketcandParse, ReadsAFrameWithoutDataWrittenWithTwoSpaces) {
  Element element = parse_ok("< frame 7FF 1.000000  >");
  EXPECT_EQ(element.frame.id, 0x7FFu);
  EXPECT_FALSE(element.frame.extended);
  EXPECT_EQ(element.frame.size, 0);
}

TEST(SocketcandParse, TakesEightDigitIdsAndIdsAbove7FFAsExtended) {
  Element padded = parse_ok("< frame 00000123 1.0 01 >");
  EXPECT_TRUE(padded.frame.extended);
  EXPECT_EQ(padded.frame.id, 0x123u);
  Element large = parse_ok("< send 1AAAAAAA 2 1 F1 >");  // protocol.md example
  EXPECT_TRUE(large.frame.extended);
  EXPECT_EQ(large.frame.id, 0x1AAAAAAAu);
  EXPECT_TRUE(parse_ok("< send 800 0 >").frame.extended);
  EXPECT_FALSE(parse_element("< send 20000000 0 >").ok());
  EXPECT_FALSE(parse_element("< send 000000123 0 >").ok());
}

TEST(SocketcandParse, ReadsFdFramesWithTheirFlags) {
  std::string data(24 * 2, 'A');
  Element element = parse_ok(std::string("< fdframe 18DA00F1 03 5.000001 ") + data + " >");
  EXPECT_TRUE(element.frame.fd);
  EXPECT_TRUE(element.frame.extended);
  EXPECT_TRUE(element.frame.bitrate_switch);
  EXPECT_TRUE(element.frame.error_state);
  EXPECT_EQ(element.frame.size, 24);
  EXPECT_EQ(element.frame.data[23], 0xAA);
  EXPECT_FALSE(parse_element(std::string("< fdframe 123 00 1.0 ") + std::string(9 * 2, 'B') + " >").ok())
      << "9 bytes is no FD length";
  EXPECT_FALSE(parse_element(std::string("< frame 123 1.0 ") + std::string(9 * 2, 'B') + " >").ok());
}

TEST(SocketcandParse, ReadsRemoteAndErrorFrames) {
  Element remote = parse_ok("< rtr 123 23.424242 4 >");
  EXPECT_TRUE(remote.frame.remote);
  EXPECT_EQ(remote.frame.size, 4);
  Element error_frame = parse_ok("< error 040 1.500000 >");
  EXPECT_EQ(error_frame.kind, ElementKind::frame);
  EXPECT_TRUE(error_frame.frame.error);
  EXPECT_EQ(error_frame.frame.id, 0x40u);
  Element message = parse_ok("< error unknown command >");
  EXPECT_EQ(message.kind, ElementKind::error_message);
  EXPECT_EQ(message.text, "unknown command");
}

TEST(SocketcandParse, ReadsSendAsPythonCanWritesIt) {
  // python-can: f"< send {can_id:X} {length:X} {bytes_string} >" with bytes as "{:x}".
  Element element = parse_ok("< send 1F 3 a 0 ff >");
  EXPECT_EQ(element.kind, ElementKind::send);
  EXPECT_EQ(element.frame, classic(0x1F, {0x0A, 0x00, 0xFF}));
  Element empty = parse_ok("< send 123 0  >");
  EXPECT_EQ(empty.frame.size, 0);
}

TEST(SocketcandParse, RejectsSendWhoseBytesDoNotMatchItsLength) {
  EXPECT_FALSE(parse_element("< send 123 2 11 >").ok());
  EXPECT_FALSE(parse_element("< send 123 1 11 22 >").ok());
  EXPECT_FALSE(parse_element("< send 123 9 1 2 3 4 5 6 7 8 9 >").ok());
  EXPECT_FALSE(parse_element("< send 123 1 123 >").ok());
  EXPECT_FALSE(parse_element("< send 123 1 zz >").ok());
  EXPECT_FALSE(parse_element("< send 123 -1 >").ok());
  EXPECT_FALSE(parse_element("< send >").ok());
}

TEST(SocketcandParse, ReadsFdsendAndSendrtr) {
  std::string bytes;
  for (int i = 0; i < 12; ++i) {
    bytes += ' ';
    bytes += std::to_string(i);
  }
  Element fd = parse_ok(std::string("< fdsend 123 01 12") + bytes + " >");
  EXPECT_TRUE(fd.frame.fd);
  EXPECT_TRUE(fd.frame.bitrate_switch);
  EXPECT_EQ(fd.frame.size, 12);
  EXPECT_FALSE(parse_element(std::string("< fdsend 123 00 11") + bytes + " >").ok());
  Element remote = parse_ok("< sendrtr 1AAAAAAA 2 >");
  EXPECT_TRUE(remote.frame.remote);
  EXPECT_TRUE(remote.frame.extended);
  EXPECT_EQ(remote.frame.size, 2);
}

TEST(SocketcandParse, RejectsBadTimestampsAndCharacters) {
  EXPECT_FALSE(parse_element("< frame 123 1.0000000000 >").ok());
  EXPECT_FALSE(parse_element("< frame 123 -1.0 >").ok());
  EXPECT_FALSE(parse_element("< frame 123 1. >").ok());
  EXPECT_FALSE(parse_element("< frame 123 99999999999.0 >").ok());
  EXPECT_FALSE(parse_element(std::string("< ok \0 >", 8)).ok());
  EXPECT_FALSE(parse_element("< fr<ame >").ok());
  EXPECT_FALSE(parse_element("<  >").ok());
}

TEST(SocketcandParse, NamesOtherKeywords) {
  Element element = parse_ok("< subscribe 0 0 123 >");
  EXPECT_EQ(element.kind, ElementKind::other);
  EXPECT_EQ(element.text, "subscribe");
}

TEST(SocketcandFormat, WritesReceivedFramesAsStateRawDoes) {
  Frame frame = classic(0x123, {0x11, 0x22, 0x33, 0x44});
  frame.timestamp_ns = 1'700'000'000'000'250'999;
  std::string out;
  append_received(out, frame);
  EXPECT_EQ(out, "< frame 123 1700000000.000250 11223344 >");

  out.clear();
  append_received(out, classic(0x5, {}, true));
  EXPECT_EQ(out, "< frame 00000005 0.000000  >");
}

TEST(SocketcandFormat, WritesFdRemoteAndErrorFrames) {
  Frame fd = classic(0x10, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  fd.fd = true;
  fd.bitrate_switch = true;
  fd.timestamp_ns = 2'000'001'000;
  std::string out;
  append_received(out, fd);
  EXPECT_EQ(out, "< fdframe 010 01 2.000001 0102030405060708090A0B0C >");

  Frame remote = classic(0x1AAAAAAA, {}, true);
  remote.remote = true;
  remote.size = 2;
  out.clear();
  append_received(out, remote);
  EXPECT_EQ(out, "< rtr 1AAAAAAA 0.000000 2 >");

  Frame error;
  error.error = true;
  error.id = 0x40;
  out.clear();
  append_received(out, error);
  EXPECT_EQ(out, "< error 040 0.000000 >");
}

TEST(SocketcandFormat, WritesSendCommands) {
  std::string out;
  ASSERT_TRUE(append_send(out, classic(0x123, {0x11, 0x22, 0x33, 0x44})).ok());
  EXPECT_EQ(out, "< send 123 4 11 22 33 44 >");
  out.clear();
  ASSERT_TRUE(append_send(out, classic(0x1AAAAAAA, {0x01, 0xF1}, true)).ok());
  EXPECT_EQ(out, "< send 1AAAAAAA 2 01 F1 >");
  out.clear();
  ASSERT_TRUE(append_send(out, classic(0x123, {})).ok());
  EXPECT_EQ(out, "< send 123 0 >");

  Frame fd = classic(0x123, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  fd.fd = true;
  fd.error_state = true;
  out.clear();
  ASSERT_TRUE(append_send(out, fd).ok());
  EXPECT_EQ(out, "< fdsend 123 02 12 01 02 03 04 05 06 07 08 09 0A 0B 0C >");

  Frame remote = classic(0x123, {});
  remote.remote = true;
  remote.size = 8;
  out.clear();
  ASSERT_TRUE(append_send(out, remote).ok());
  EXPECT_EQ(out, "< sendrtr 123 8 >");
}

TEST(SocketcandFormat, RefusesToSendErrorAndInvalidFrames) {
  std::string out;
  Frame error;
  error.error = true;
  EXPECT_EQ(append_send(out, error).error().code, ErrorCode::unsupported);
  EXPECT_EQ(append_send(out, classic(0x800, {})).error().code, ErrorCode::invalid_argument);
  Frame nine = classic(0x1, {});
  nine.size = 9;
  EXPECT_EQ(append_send(out, nine).error().code, ErrorCode::invalid_argument);
  EXPECT_TRUE(out.empty());
}

TEST(SocketcandFormat, ReceivedFramesSurviveARoundTrip) {
  for (std::uint32_t i = 0; i < 200; ++i) {
    Frame frame = classic(i % 3 == 0 ? 0x18DA0000 + i : i * 7 % 0x800, {}, i % 3 == 0);
    frame.fd = i % 4 == 1;
    std::size_t size = frame.fd ? dlc_to_length(static_cast<std::uint8_t>(i % 16), true) : i % 9;
    for (std::size_t j = 0; j < size; ++j) frame.data[j] = static_cast<std::uint8_t>(i * 31 + j);
    frame.size = static_cast<std::uint8_t>(size);
    frame.bitrate_switch = frame.fd && i % 2 == 1;
    frame.timestamp_ns = 1'700'000'000'000'000'000 + i * 1'001'000;
    std::string out;
    append_received(out, frame);
    Element element = parse_ok(out);
    EXPECT_EQ(element.frame, frame) << out;

    std::string send;
    if (!frame.fd || is_valid_length(frame.size, true)) {
      ASSERT_TRUE(append_send(send, frame).ok());
      Element sent = parse_ok(send);
      Frame expected = frame;
      expected.timestamp_ns = 0;
      EXPECT_EQ(sent.frame, expected) << send;
    }
  }
}

TEST(SocketcandFormat, ValidatesBusNamesAndEscapesErrorText) {
  EXPECT_EQ(format_open("can0").value(), "< open can0 >");
  EXPECT_FALSE(format_open("").ok());
  EXPECT_FALSE(format_open("a b").ok());
  EXPECT_FALSE(format_open("can>").ok());
  EXPECT_FALSE(format_open(std::string(17, 'x')).ok());
  EXPECT_EQ(format_error("bad <x>\n"), "< error bad ?x?? >");
}

}  // namespace
}  // namespace cellguard::can::socketcand
