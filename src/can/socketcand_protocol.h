// The socketcand ASCII protocol, as bytes and values only: no sockets, no clocks.
//
// Reference: linux-can/socketcand doc/protocol.md and src/state_raw.c (what the daemon really
// sends and accepts), and python-can's socketcand interface (the most common client).
//
//   handshake   server `< hi >`, client `< open can0 >`, server `< ok >`,
//               client `< rawmode >`, server `< ok >`
//   server->    `< frame 123 1700000000.000250 11223344 >`    id %03X (11 bit) or %08X (29 bit),
//   client                                                    seconds.microseconds, data as one hex run
//               `< fdframe 123 01 1700000000.000250 1122.. >` FD: flags hex (BRS 0x01, ESI 0x02)
//               `< rtr 123 1700000000.000250 4 >`             remote frame, DLC decimal (protocol.md)
//               `< error 004 1700000000.000250 >`             error frame, class bits (CAN_ERR_*)
//               `< error unknown command >`                   a command failed
//   client->    `< send 123 4 11 22 33 44 >`                  length decimal, bytes hex (1-2 digits)
//   server      `< fdsend 123 01 12 11 22 .. >`               FD: flags hex, length decimal
//               `< sendrtr 123 4 >`                           remote frame (protocol.md)
//               `< echo >`                                    answered with `< echo >`
//
// An identifier written with 8 hex digits is extended (socketcand's element_length(buf, 2) == 8).
// We also take any id above 0x7FF as extended, because python-can 4.1 writes ids without padding.
// Bytes between elements are ignored (socketcand's receive_command skips to the next '<').
//
// Thread safety: ElementSplitter is used by one thread at a time; the functions are pure.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "can/frame.h"
#include "core/result.h"

namespace cellguard::can::socketcand {

// The longest element we accept, brackets included. The longest valid one is an `fdsend` of 64
// bytes with 3-character bytes and padding, about 220 bytes; socketcand's own buffer is larger.
inline constexpr std::size_t kMaxElementBytes = 512;

inline constexpr std::string_view kHi = "< hi >";
inline constexpr std::string_view kOk = "< ok >";
inline constexpr std::string_view kEcho = "< echo >";
inline constexpr std::string_view kRawmode = "< rawmode >";

// Splits a TCP byte stream into `< ... >` elements.
class ElementSplitter {
 public:
  explicit ElementSplitter(std::size_t max_element_bytes = kMaxElementBytes)
      : max_element_bytes_(max_element_bytes) {}

  // Appends received bytes. Views returned by next() stay valid until the next feed().
  void feed(std::string_view bytes);

  // The next complete element, brackets included; nullopt when more bytes are needed. An element
  // longer than the limit yields a parse_error once; the splitter then resumes after its '>'.
  std::optional<Result<std::string_view>> next();

  // Bytes held waiting for the rest of an element.
  std::size_t buffered_bytes() const { return buffer_.size() - position_; }

 private:
  std::size_t max_element_bytes_;
  std::string buffer_;
  std::size_t position_ = 0;  // first byte of buffer_ not yet consumed
  bool discarding_ = false;   // inside an overlong element: skip up to its '>'
};

enum class ElementKind {
  hi,             // `< hi >`
  ok,             // `< ok >`
  echo,           // `< echo >`
  open,           // `< open CHANNEL >`: `text` is the channel
  rawmode,        // `< rawmode >`
  bcmmode,        // `< bcmmode >`
  frame,          // received frame: frame, fdframe, rtr, or error with a class (`frame.error`)
  send,           // frame to send: send, fdsend, sendrtr
  error_message,  // `< error TEXT >`: `text` is the message
  other,          // a well-formed element with another keyword: `text` is the keyword
};

struct Element {
  ElementKind kind = ElementKind::other;
  Frame frame;       // for frame and send
  std::string text;  // for open, error_message, other
};

// Parses one element, brackets included. Errors (parse_error) name the element and the reason.
Result<Element> parse_element(std::string_view element);

// Appends the server->client element for a received frame (frame, fdframe, rtr or error).
// Timestamps before the epoch are written as 0.000000.
void append_received(std::string& out, const Frame& frame);

// Appends the client->server element that sends `frame` (send, fdsend or sendrtr). Error frames
// cannot be sent (unsupported); the frame must otherwise pass validate_frame().
Result<void> append_send(std::string& out, const Frame& frame);

// `< open CHANNEL >`; the channel must be 1..16 characters without spaces or brackets.
Result<std::string> format_open(std::string_view channel);
// `< error TEXT >`, with brackets in TEXT replaced so the element stays one element.
std::string format_error(std::string_view text);

}  // namespace cellguard::can::socketcand
