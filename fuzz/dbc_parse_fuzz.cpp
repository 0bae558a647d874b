// libFuzzer target for the DBC parser: any input must give a Database or an Error (no crash, no
// hang), and a Database must write out as text that parses again.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "dbc/dbc.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = cellguard::dbc::parse_dbc(text, "fuzz.dbc");
  if (!parsed.ok()) return 0;
  (void)cellguard::dbc::check_dbc(parsed->database);
  const std::string written = cellguard::dbc::write_dbc(parsed->database);
  auto again = cellguard::dbc::parse_dbc(written, "written.dbc");
  if (!again.ok()) std::abort();  // the writer produced text its own parser rejects
  return 0;
}
