// libFuzzer target for the edge configuration loader: any bytes give an EdgeConfig or located
// problems (no crash, no exception, no hang). Only stage one runs: stage two opens the files a
// configuration names, which a fuzzer must not do.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "edge/config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace e = cellguard::edge;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  e::EdgeConfig config;
  auto check = e::parse_edge_config(text, "/fuzz/edge.toml", config);
  if (config.sha256.size() != 64) std::abort();
  for (const auto& p : check.problems) {
    if (p.file != "/fuzz/edge.toml" || p.line < 0 || p.column < 0 || p.message.empty()) std::abort();
  }
  (void)check.to_string();
  if (check.ok()) {
    // A valid configuration is valid for the supervisor too, and overrides never throw.
    if (!cellguard::safety::validate(config.safety).empty()) std::abort();
    (void)e::apply_overrides(
        config, {.can = "inproc:fuzz", .board = "none", .inverter = "none", .gpio = "gpiochip0"});
  }
  return 0;
}
