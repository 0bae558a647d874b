// libFuzzer target for `cellguard encode`'s assignment reader: any DBC and any NAME=VALUE texts must
// give a frame or an Error (no crash, no hang), and a frame always has the message's length.
//
// Input: DBC text, a line "===", the message (name or id) on the next line, then one assignment per
// line. Without "===", the whole input is that message-and-assignments part for a built-in
// multiplexed DBC.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "dbc/codec.h"
#include "dbc/dbc.h"
#include "dbc/encoder.h"

namespace {

constexpr std::string_view kBuiltIn =
    "BO_ 385 BMU01_pdo1: 8 BMU\n"
    " SG_ CMA_Current : 0|16@1- (0.1,0) [-3276.8|3276.7] \"A\" Controller\n"
    " SG_ Min_Cell_Voltage : 32|8@1+ (0.01,2.2) [2.2|4.75] \"V\" Controller\n"
    "BO_ 1792 Diag: 8 BMU\n"
    " SG_ Page M : 0|8@1+ (1,0) [0|3] \"\" Controller\n"
    " SG_ Sub m1M : 8|8@1+ (1,0) [0|0] \"\" Controller\n"
    " SG_ Serial m2 : 16|32@1+ (1,0) [0|0] \"\" Controller\n"
    " SG_ Deep m3 : 48|16@0- (0.5,-3) [0|0] \"\" Controller\n"
    " SG_ F : 16|32@1+ (1,0) [0|0] \"\" Controller\n"
    "BO_ 2566834709 Big: 8 BMU\n"
    " SG_ Counter : 0|64@1+ (1,0) [0|0] \"\" Controller\n"
    "SG_MUL_VAL_ 1792 Deep Sub 3-9;\n"
    "SIG_VALTYPE_ 1792 F : 1;\n"
    "VAL_ 1792 Page 1 \"one\" 2 \"two, too\" ;\n";

std::vector<std::string> lines_of(std::string_view text) {
  std::vector<std::string> lines;
  while (!text.empty() && lines.size() < 256) {
    const auto end = text.find('\n');
    lines.emplace_back(text.substr(0, end));
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return lines;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string_view dbc_text = kBuiltIn;
  if (const auto split = input.find("\n===\n"); split != std::string_view::npos) {
    dbc_text = input.substr(0, split);
    input.remove_prefix(split + 5);
  }
  auto parsed = cellguard::dbc::parse_dbc(dbc_text, "fuzz.dbc");
  if (!parsed.ok()) return 0;
  const cellguard::dbc::DatabaseCodec codec(std::move(parsed->database));
  auto lines = lines_of(input);
  if (lines.empty()) return 0;
  auto message = cellguard::dbc::find_message_for_encoding(codec, lines[0]);
  if (!message.ok()) return 0;
  lines.erase(lines.begin());
  for (const bool limits : {true, false}) {
    cellguard::dbc::EncodeOptions options;
    options.check_limits = limits;
    auto frame = cellguard::dbc::encode_assignments(codec.database(), **message, lines, options);
    if (frame.ok() && frame->payload.size() != (*message)->message().length) std::abort();
  }
  return 0;
}
