// Shared body of the log reader fuzz targets: read every frame of the input in one format.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <sstream>
#include <string>

#include "can/log.h"

namespace cellguard::can::fuzz {

// Reads the whole input; a malformed line must give an Error, never a crash or a hang. Frames must
// be representable: ids and sizes within the limits of their kind.
inline std::size_t read_everything(const std::uint8_t* data, std::size_t size,
                                   std::optional<LogFormat> format,
                                   void (*on_frame)(const Frame&) = nullptr) {
  std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
  auto reader = make_log_reader(in, "fuzz", format);
  if (!reader.ok()) return 0;
  Frame frame;
  std::size_t frames = 0;
  // Every call consumes at least one line, so the number of calls is bounded by the input.
  for (std::size_t calls = 0; calls <= size + 1; ++calls) {
    auto got = (*reader)->next(frame);
    if (got.ok() && !*got) break;
    if (!got.ok()) continue;
    ++frames;
    const bool fits = frame.size <= (frame.fd ? kMaxFdPayload : kMaxClassicPayload) &&
                      (frame.error || frame.id <= (frame.extended ? kMaxExtendedId : kMaxStandardId));
    if (!fits) __builtin_trap();
    if (on_frame != nullptr) on_frame(frame);
  }
  return frames;
}

}  // namespace cellguard::can::fuzz
