// Fuzzes format detection and then the reader it picks, as `cellguard decode` does for a file.
#include <string_view>

#include "log_fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  (void)cellguard::can::detect_log_format(std::string_view(reinterpret_cast<const char*>(data), size));
  cellguard::can::fuzz::read_everything(data, size, std::nullopt);
  return 0;
}
