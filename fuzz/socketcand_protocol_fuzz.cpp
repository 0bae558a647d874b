// Fuzzes the socketcand element splitter and parser with bytes as they could arrive from a peer.
//
// Input: byte 0 picks the size of the reads (1..64 bytes) the stream is fed in; the rest is the
// stream. Checked besides memory safety:
//   - the splitter never holds more than one element plus one read;
//   - every parsed frame is written back to an element that parses to the same frame and text
//     (received frames with append_received, frames to send with append_send).
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "can/socketcand_protocol.h"

namespace {

using cellguard::can::Frame;
namespace socketcand = cellguard::can::socketcand;

void check(bool condition) {
  if (!condition) std::abort();
}

void round_trip(const socketcand::Element& element) {
  if (element.kind == socketcand::ElementKind::frame) {
    std::string text;
    socketcand::append_received(text, element.frame);
    auto again = socketcand::parse_element(text);
    check(again.ok() && again->kind == socketcand::ElementKind::frame);
    std::string text_again;
    socketcand::append_received(text_again, again->frame);
    check(text == text_again);
  } else if (element.kind == socketcand::ElementKind::send) {
    std::string text;
    check(socketcand::append_send(text, element.frame).ok());
    auto again = socketcand::parse_element(text);
    check(again.ok() && again->kind == socketcand::ElementKind::send);
    check(again->frame == element.frame);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::size_t read_bytes = data[0] % 64 + 1;
  std::string_view stream(reinterpret_cast<const char*>(data + 1), size - 1);
  constexpr std::size_t kMaxElement = 128;  // small, so that overlong elements are common
  socketcand::ElementSplitter splitter(kMaxElement);
  for (std::size_t offset = 0; offset < stream.size(); offset += read_bytes) {
    splitter.feed(stream.substr(offset, read_bytes));
    while (auto element = splitter.next()) {
      if (!element->ok()) continue;
      check(element->value().size() <= kMaxElement);
      auto parsed = socketcand::parse_element(element->value());
      if (parsed.ok()) round_trip(parsed.value());
    }
    check(splitter.buffered_bytes() <= kMaxElement + read_bytes);
  }
  // The parser alone, on the whole input as one element.
  auto parsed = socketcand::parse_element(stream);
  if (parsed.ok()) round_trip(parsed.value());
  return 0;
}
