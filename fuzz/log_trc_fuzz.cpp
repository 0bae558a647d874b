// Fuzzes the PEAK TRC reader, and writes what it read with the TRC writer.
#include <sstream>

#include "log_fuzz_common.h"

namespace {

void write_back(const cellguard::can::Frame& frame) {
  std::ostringstream out;
  auto writer = cellguard::can::make_log_writer(cellguard::can::LogFormat::trc, out);
  if (!writer.ok()) __builtin_trap();
  (void)(*writer)->write(frame);
  (void)(*writer)->finish();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  cellguard::can::fuzz::read_everything(data, size, cellguard::can::LogFormat::trc, write_back);
  return 0;
}
