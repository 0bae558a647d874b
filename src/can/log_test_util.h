// Helpers for the log format tests: read a whole text, write frames to a text.
#pragma once

#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "can/log.h"

namespace cellguard::can::testing {

struct ReadAll {
  std::vector<Frame> frames;
  std::vector<std::string> errors;  // messages of the malformed lines, in order
};

inline ReadAll read_all(std::string_view text, std::optional<LogFormat> format,
                        const std::string& name = "test") {
  ReadAll result;
  std::istringstream in{std::string(text)};
  auto reader = make_log_reader(in, name, format);
  if (!reader.ok()) {
    result.errors.push_back(reader.error().message);
    return result;
  }
  Frame frame;
  for (int guard = 0; guard < 100000; ++guard) {
    auto got = (*reader)->next(frame);
    if (!got.ok()) {
      result.errors.push_back(got.error().message);
      continue;
    }
    if (!*got) break;
    result.frames.push_back(frame);
  }
  return result;
}

inline std::string write_all(LogFormat format, const std::vector<Frame>& frames) {
  std::ostringstream out;
  auto writer = make_log_writer(format, out);
  if (!writer.ok()) return "<" + writer.error().message + ">";
  for (const auto& frame : frames) {
    auto written = (*writer)->write(frame);
    if (!written.ok()) return "<" + written.error().message + ">";
  }
  auto finished = (*writer)->finish();
  if (!finished.ok()) return "<" + finished.error().message + ">";
  return out.str();
}

inline Frame make_frame(std::int64_t timestamp_ns, std::uint32_t id, std::vector<std::uint8_t> data,
                        std::string_view bus = "can0") {
  Frame frame;
  frame.timestamp_ns = timestamp_ns;
  frame.id = id;
  frame.extended = id > kMaxStandardId;
  frame.bus = bus;
  // set_payload with an empty vector would pass memcpy a null pointer (UBSan flags it).
  if (!data.empty()) frame.set_payload(data);
  return frame;
}

inline std::vector<std::uint8_t> bytes(const Frame& frame) {
  auto payload = frame.payload();
  return {payload.begin(), payload.end()};
}

}  // namespace cellguard::can::testing
