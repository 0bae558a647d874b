// CANopen frame decoding (canopen/canopen.h): any id and bytes a peer may send go through the COB-ID
// mapping, the SDO decoder (both directions), the EMCY decoder and an SDO client mid-transfer; each
// answers with a value or an error, never a crash or unbounded memory.
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "canopen/canopen.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace cellguard;
  if (size < 3) return 0;
  // A stream of frames: 2 bytes id, 1 byte length (0..8 used), then the payload.
  canopen::SdoClient upload(5, 1000);
  canopen::SdoClient download(5, 1000);
  (void)upload.upload(0x1008, 0, 0);
  const std::uint8_t blob[20] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20};
  (void)download.download(0x2000, 1, blob, 0);
  std::int64_t now = 0;
  std::size_t at = 0;
  while (at + 3 <= size) {
    can::Frame frame;
    frame.id = (static_cast<std::uint32_t>(data[at]) | static_cast<std::uint32_t>(data[at + 1]) << 8) & 0x7FF;
    const std::size_t length = std::min<std::size_t>(data[at + 2] % 9, size - at - 3);
    frame.set_payload({data + at + 3, length});
    at += 3 + length;
    ++now;
    (void)canopen::classify(frame.id, false);
    (void)canopen::decode_sdo(frame.payload(), canopen::SdoDirection::request);
    (void)canopen::decode_sdo(frame.payload(), canopen::SdoDirection::response);
    if (auto e = canopen::decode_emcy(frame)) (void)canopen::describe(*e);
    // Steer most frames at the clients' node, so transfers advance.
    if (frame.id & 0x400) frame.id = 0x585;
    auto step = upload.on_frame(frame, now);
    if (step.done) (void)canopen::sdo_abort_text(step.done->abort_code);
    if (!upload.busy()) (void)upload.upload(0x1008, 0, now);
    step = download.on_frame(frame, now);
    if (!download.busy()) (void)download.download(0x2000, 1, blob, now);
  }
  (void)upload.tick(now + 1000);
  return 0;
}
