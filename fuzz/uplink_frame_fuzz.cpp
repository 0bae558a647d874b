// The uplink frame decoder (uplink/protocol.h): arbitrary bytes from the network, fed in pieces of
// varying size, must give messages or an error, never a crash; every decoded message re-encodes
// and decodes to itself (values bit for bit).
#include <cstdint>
#include <cstdlib>
#include <span>

#include "uplink/protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace cellguard::uplink;
  FrameDecoder decoder;
  std::size_t at = 0;
  std::size_t piece = size > 0 ? (data[0] % 61) + 1 : 1;
  while (at < size) {
    const std::size_t n = std::min(piece, size - at);
    decoder.feed(std::span<const std::uint8_t>(data + at, n));
    at += n;
    piece = piece * 3 % 251 + 1;
    for (;;) {
      auto next = decoder.next();
      if (!next) return 0;  // final for the connection
      if (!next->has_value()) break;
      std::vector<std::uint8_t> frame;
      if (!encode_frame(**next, frame)) continue;  // e.g. re-encoded larger than a frame
      FrameDecoder again;
      again.feed(frame);
      auto back = again.next();
      if (!back || !back->has_value() || !(**back == **next)) std::abort();
    }
  }
  return 0;
}
