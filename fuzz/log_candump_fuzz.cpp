// Fuzzes the candump readers (log and console forms) and checks that every frame read from a log
// line survives the candump writer and reader unchanged (times cut to microseconds).
#include <sstream>

#include "log_fuzz_common.h"

namespace {

using cellguard::can::Frame;
using cellguard::can::LogFormat;

void round_trip(const Frame& frame) {
  std::ostringstream out;
  auto writer = cellguard::can::make_log_writer(LogFormat::candump_log, out);
  if (!writer.ok() || !(*writer)->write(frame).ok() || !(*writer)->finish().ok()) __builtin_trap();
  std::istringstream in(out.str());
  auto reader = cellguard::can::make_log_reader(in, "round-trip", LogFormat::candump_log);
  Frame back;
  if (!reader.ok()) __builtin_trap();
  auto got = (*reader)->next(back);
  Frame expected = frame;
  expected.timestamp_ns -= expected.timestamp_ns % 1000;
  if (!got.ok() || !*got || !(back == expected)) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  cellguard::can::fuzz::read_everything(data, size, LogFormat::candump_log, round_trip);
  cellguard::can::fuzz::read_everything(data, size, LogFormat::candump_console);
  return 0;
}
