// Fuzzes the SunSpec model-chain walk (sunspec.h) over a register image taken from the input, and
// the value conversions on its registers. The first byte picks where the image starts (at a base
// address, or just before one so the walk may run past its end); the rest are big-endian registers.
// Checks: an accepted chain starts at a base address, its models lie inside the image in
// increasing order with room for the end marker, never more than kMaxModels; scaled values are
// finite.
#include <cmath>
#include <cstdint>
#include <vector>

#include "sunspec/sunspec.h"

using namespace cellguard::sunspec;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint16_t base = kBaseAddresses[data[0] % kBaseAddresses.size()];
  const std::uint16_t first = (data[0] & 0x80) != 0 && base > 0 ? static_cast<std::uint16_t>(base - 1) : base;
  std::vector<std::uint16_t> registers;
  for (std::size_t i = 1; i + 1 < size; i += 2)
    registers.push_back(static_cast<std::uint16_t>((data[i] << 8) | data[i + 1]));

  auto chain = parse_model_chain(first, registers);
  if (chain.ok()) {
    if (chain->base != base) __builtin_trap();
    if (chain->models.size() > kMaxModels) __builtin_trap();
    std::uint32_t next = chain->base + 2u;
    for (const Model& m : chain->models) {
      if (m.address != next) __builtin_trap();
      next = m.address + 2u + m.length;
    }
    if (next + 2u > first + registers.size()) __builtin_trap();
    if (registers[next - first] != kEndId) __builtin_trap();
    for (const Model& m : chain->models) {
      if (chain->find(m.id) == nullptr) __builtin_trap();
    }
  } else if (chain.error().message.empty()) {
    __builtin_trap();
  }
  for (std::size_t i = 0; i + 1 < registers.size(); ++i) {
    const auto value = scaled(PointType::int16, registers[i], registers[i + 1]);
    if (value && !std::isfinite(*value)) __builtin_trap();
    if (value && to_raw(PointType::int16, *value, registers[i + 1]) != registers[i]) __builtin_trap();
  }
  if (!registers.empty()) (void)decode_string(registers);
  return 0;
}
