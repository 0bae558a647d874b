// Fuzzes the sensor board's line protocol: the splitter (bounded lines, fed in pieces of varying
// size) and parse_board_line on every line, plus the thermistor table parser on the whole input.
// Checks: lines never exceed the bound; an accepted reading holds 0..1023 counts and finite values;
// pin commands formatted from the input stay within 30 characters.
#include <cmath>
#include <cstdint>
#include <string_view>
#include <vector>

#include "devices/board_link.h"

namespace {

using namespace cellguard::devices;

void check(const Conversion& conversion) {
  if (!std::isfinite(conversion.value)) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  // The first byte chooses the piece size (how a serial read may cut the stream) and line bound.
  const std::size_t piece = 1 + data[0] % 64;
  const std::size_t max_bytes = 16 + data[0] % 128;
  const std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);

  static const BoardConversion rig;
  BoardLineSplitter splitter(max_bytes);
  std::uint64_t lines = 0;
  const auto on_line = [&](std::string_view line) {
    ++lines;
    if (line.size() > max_bytes || line.find('\n') != std::string_view::npos) __builtin_trap();
    auto reading = parse_board_line(line, rig, cellguard::MonoTime{});
    if (!reading) {
      if (reading.error().message.empty()) __builtin_trap();
      return;
    }
    for (const int adc : {reading->temp1_adc, reading->temp2_adc, reading->pressure_adc}) {
      if (adc < 0 || adc > 1023) __builtin_trap();
    }
    check(reading->temp1_c);
    check(reading->temp2_c);
    check(reading->pressure);
  };
  for (std::size_t at = 0; at < input.size(); at += piece) splitter.feed(input.substr(at, piece), on_line);
  // The whole input as one line, unsplit (CRs, LFs and all).
  (void)parse_board_line(input, rig, cellguard::MonoTime{});

  auto table = parse_thermistor_table(input, "fuzz");
  if (table) {
    BoardConversion custom;
    custom.thermistor = *table;
    for (const int adc : {0, 1, 100, 512, 1000, 1023}) {
      const Conversion c = thermistor_temperature_c(custom, adc);
      if (c.in_range) check(c);
    }
  }

  std::vector<PinWrite> writes;
  for (std::size_t i = 0; i + 1 < input.size() && writes.size() < 64; i += 2) {
    writes.push_back({static_cast<int>(static_cast<std::int8_t>(input[i])) * 1000, (input[i + 1] & 1) != 0});
  }
  for (const auto& command : format_pin_commands(writes)) {
    if (command.size() > 30 || command.empty()) __builtin_trap();
  }
  return 0;
}
