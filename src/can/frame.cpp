#include "can/frame.h"

namespace cellguard::can {

namespace {
constexpr std::array<std::uint8_t, 16> kFdLengths = {0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24, 32, 48, 64};
}

std::uint8_t dlc_to_length(std::uint8_t dlc, bool fd) {
  if (dlc > 15) dlc = 15;
  if (!fd) return dlc > 8 ? 8 : dlc;
  return kFdLengths[dlc];
}

std::uint8_t length_to_dlc(std::size_t length) {
  for (std::size_t dlc = 0; dlc < kFdLengths.size(); ++dlc) {
    if (kFdLengths[dlc] >= length) return static_cast<std::uint8_t>(dlc);
  }
  return 15;
}

bool is_valid_length(std::size_t length, bool fd) {
  if (!fd) return length <= kMaxClassicPayload;
  for (auto l : kFdLengths) {
    if (l == length) return true;
  }
  return false;
}

}  // namespace cellguard::can
