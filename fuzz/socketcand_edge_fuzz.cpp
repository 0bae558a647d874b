// Fuzzes what a socketcand peer's bytes become on their way into the edge's events, log and
// recording (issue 12: one byte that is not UTF-8 aborted the edge when its event was dumped).
//
// The stream goes through the splitter and parser the socketcand client uses; every text the client
// and the edge make of it (the parse error quoting the element, a server's `< error TEXT >`, an
// unexpected keyword) goes through escape_untrusted (core/text.h), the edge's event JSON and
// to_json_text (edge/events.h). Checked besides memory safety:
//   - every escaped text is printable UTF-8, within its bound, and escaping it again changes nothing;
//   - the event with the escaped text dumps WITHOUT the replacement fallback (nlohmann would throw on
//     invalid UTF-8: an uncaught exception is a crash here), and to_json_text's output parses back.
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "can/socketcand_protocol.h"
#include "core/text.h"
#include "edge/events.h"

namespace {

namespace socketcand = cellguard::can::socketcand;
using nlohmann::json;

void check(bool condition) {
  if (!condition) std::abort();
}

// As the edge reports a CAN problem: an event and a log line.
void report(std::string_view raw) {
  const std::string text = cellguard::escape_untrusted(raw);
  check(text.size() <= cellguard::kMaxUntrustedTextBytes);
  check(cellguard::is_printable_utf8(text));
  check(cellguard::escape_untrusted(text) == text);
  const json event = {
      {"t", 1.5}, {"kind", "link"}, {"link", "can"}, {"event", "malformed_element"}, {"detail", text}};
  const std::string plain = event.dump();  // throws (and so crashes) if escaping let a bad byte through
  const std::string line = cellguard::edge::to_json_text(event);
  check(line == plain);
  const json back = json::parse(line);
  check(back["detail"] == text);
  // Unescaped bytes straight into an event: the edge's emission must still never throw.
  const json careless = {{"detail", std::string(raw)}, {std::string(raw.substr(0, 8)), 1}};
  check(!json::parse(cellguard::edge::to_json_text(careless), nullptr, false).is_discarded());
}

void handle(std::string_view element) {
  auto parsed = socketcand::parse_element(element);
  if (!parsed.ok()) {
    report("socketcand://127.0.0.1:29536/can0: malformed element: " + parsed.error().message);
    return;
  }
  switch (parsed->kind) {
    case socketcand::ElementKind::error_message:
      report("socketcand://127.0.0.1:29536/can0: server error: " + parsed->text);
      break;
    case socketcand::ElementKind::other:
    case socketcand::ElementKind::open:
      report("socketcand: unexpected element '" + std::string(element) + "' (" + parsed->text + ")");
      break;
    default:
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view stream(reinterpret_cast<const char*>(data), size);
  socketcand::ElementSplitter splitter;
  // In two reads, so that elements are split across them.
  const std::size_t half = size / 2;
  for (std::string_view part : {stream.substr(0, half), stream.substr(half)}) {
    splitter.feed(part);
    while (auto element = splitter.next()) {
      if (!element->ok()) {
        report(element->error().message);
        continue;
      }
      handle(element->value());
    }
  }
  // The whole input as one element, and as text of its own.
  handle(stream);
  report(stream);
  return 0;
}
