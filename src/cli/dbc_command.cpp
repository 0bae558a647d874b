// `cellguard dbc show|check`: look into a DBC file, like `cantools dump`, and check it.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "cli/commands.h"
#include "core/text.h"
#include "dbc/dbc.h"

namespace cellguard::cli {
namespace {

std::string value_text(const dbc::AttributeValue& v) {
  if (const auto* i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
  if (const auto* d = std::get_if<double>(&v)) return format_shortest(*d);
  return "\"" + std::get<std::string>(v) + "\"";
}

std::string attribute_list(const std::vector<dbc::Attribute>& attributes) {
  std::string out;
  for (const auto& a : attributes) {
    if (!out.empty()) out += ", ";
    out += a.name + "=" + value_text(a.value);
  }
  return out;
}

std::string id_text(const dbc::Message& m) {
  char buf[32];
  std::snprintf(buf, sizeof buf, m.extended ? "0x%08X (extended)" : "0x%03X", m.id);
  return buf;
}

// The payload bits a signal covers, as byte*8+bit (bit 0 = least significant of the byte).
std::vector<std::uint32_t> covered_bits(const dbc::Signal& s) {
  std::vector<std::uint32_t> bits;
  std::uint32_t pos = s.start_bit;
  for (std::uint32_t k = 0; k < s.length && k < 64; ++k) {
    if (s.byte_order == dbc::ByteOrder::little_endian) {
      bits.push_back(s.start_bit + k);
    } else {
      bits.push_back(pos);
      pos = (pos % 8 == 0) ? pos + 15 : pos - 1;  // Motorola: down within a byte, then next byte's bit 7
    }
  }
  return bits;
}

void print_layout(const dbc::Message& m) {
  if (m.length == 0 || m.signals.empty()) return;
  // One letter per signal (a..z, A..Z, then '#'); '.' for unused bits, '*' where signals of one
  // branch would overlap (multiplexed alternatives share bits by design and are shown as '+').
  std::vector<char> grid(static_cast<std::size_t>(m.length) * 8, '.');
  auto letter = [](std::size_t i) {
    if (i < 26) return static_cast<char>('a' + i);
    if (i < 52) return static_cast<char>('A' + (i - 26));
    return '#';
  };
  for (std::size_t i = 0; i < m.signals.size(); ++i) {
    for (std::uint32_t bit : covered_bits(m.signals[i])) {
      if (bit >= grid.size()) continue;
      char& cell = grid[bit];
      cell = (cell == '.') ? letter(i) : (m.signals[i].is_multiplexed() ? '+' : '*');
    }
  }
  std::printf("  layout (bit 7 .. 0 of each byte):\n");
  for (std::uint32_t byte = 0; byte < m.length; ++byte) {
    std::printf("    byte %2u  ", byte);
    for (int bit = 7; bit >= 0; --bit) std::printf("%c ", grid[byte * 8 + static_cast<std::uint32_t>(bit)]);
    std::printf("\n");
  }
}

void print_message(const dbc::Database& db, const dbc::Message& m) {
  std::printf("\n%s  %s  %u bytes", m.name.c_str(), id_text(m).c_str(), m.length);
  if (dbc::is_fd(db, m)) std::printf("  CAN FD");
  if (!m.sender.empty()) std::printf("  sender %s", m.sender.c_str());
  if (auto ms = dbc::cycle_time_ms(db, m)) std::printf("  cycle %lld ms", static_cast<long long>(*ms));
  std::printf("\n");
  if (!m.transmitters.empty()) {
    std::printf("  transmitters:");
    for (const auto& t : m.transmitters) std::printf(" %s", t.c_str());
    std::printf("\n");
  }
  if (!m.comment.empty()) std::printf("  comment: %s\n", m.comment.c_str());
  if (!m.attributes.empty()) std::printf("  attributes: %s\n", attribute_list(m.attributes).c_str());
  if (m.signals.empty()) return;
  std::printf("  %-2s %-32s %5s %4s %-8s %-8s %12s %12s %12s %12s %-8s %s\n", "", "signal", "start", "len",
              "order", "type", "scale", "offset", "min", "max", "unit", "multiplexing");
  for (std::size_t i = 0; i < m.signals.size(); ++i) {
    const auto& s = m.signals[i];
    const char* type = s.value_type == dbc::ValueType::float32   ? "float32"
                       : s.value_type == dbc::ValueType::float64 ? "double"
                       : s.is_signed                             ? "signed"
                                                                 : "unsigned";
    std::string mux;
    if (s.is_multiplexer) mux = "multiplexer";
    if (s.is_multiplexed()) {
      if (!mux.empty()) mux += ", ";
      mux += s.multiplexer + " in ";
      for (std::size_t r = 0; r < s.multiplex_ranges.size(); ++r) {
        if (r > 0) mux += ",";
        const auto& range = s.multiplex_ranges[r];
        mux += std::to_string(range.low);
        if (range.high != range.low) mux += "-" + std::to_string(range.high);
      }
    }
    const char letter = i < 26   ? static_cast<char>('a' + i)
                        : i < 52 ? static_cast<char>('A' + (i - 26))
                                 : '#';
    std::printf("  %c  %-32s %5u %4u %-8s %-8s %12s %12s %12s %12s %-8s %s\n", letter, s.name.c_str(),
                s.start_bit, s.length, s.byte_order == dbc::ByteOrder::little_endian ? "intel" : "motorola",
                type, format_shortest(s.scale).c_str(), format_shortest(s.offset).c_str(),
                format_shortest(s.minimum).c_str(), format_shortest(s.maximum).c_str(), s.unit.c_str(),
                mux.c_str());
    if (!s.receivers.empty()) {
      std::string r;
      for (const auto& x : s.receivers) r += (r.empty() ? "" : ", ") + x;
      std::printf("       receivers: %s\n", r.c_str());
    }
    if (!s.comment.empty()) std::printf("       comment: %s\n", s.comment.c_str());
    if (!s.attributes.empty()) std::printf("       attributes: %s\n", attribute_list(s.attributes).c_str());
    if (!s.value_descriptions.empty()) {
      std::printf("       values:");
      for (const auto& v : s.value_descriptions)
        std::printf(" %lld=\"%s\"", static_cast<long long>(v.value), v.text.c_str());
      std::printf("\n");
    }
  }
  print_layout(m);
}

int run_show(const std::string& path, const std::string& message_name) {
  auto parsed = dbc::load_dbc(path);
  if (!parsed) {
    std::fprintf(stderr, "cellguard dbc show: %s\n", parsed.error().message.c_str());
    return 2;
  }
  const dbc::Database& db = parsed->database;
  if (!message_name.empty()) {
    const dbc::Message* m = db.find_message(message_name);
    if (m == nullptr) {
      std::fprintf(stderr, "cellguard dbc show: %s has no message named '%s'\n", path.c_str(),
                   message_name.c_str());
      return 1;
    }
    print_message(db, *m);
    return 0;
  }
  std::size_t signals = 0;
  for (const auto& m : db.messages) signals += m.signals.size();
  std::printf("%s: version \"%s\", %zu messages, %zu signals, %zu nodes\n", path.c_str(), db.version.c_str(),
              db.messages.size(), signals, db.nodes.size());
  if (!db.nodes.empty()) {
    std::printf("nodes:");
    for (const auto& n : db.nodes) std::printf(" %s", n.name.c_str());
    std::printf("\n");
  }
  if (!db.comment.empty()) std::printf("comment: %s\n", db.comment.c_str());
  if (!db.attributes.empty()) std::printf("attributes: %s\n", attribute_list(db.attributes).c_str());
  if (!db.attribute_definitions.empty()) {
    std::printf("attribute definitions:");
    for (const auto& d : db.attribute_definitions) std::printf(" %s", d.name.c_str());
    std::printf("\n");
  }
  if (!db.value_tables.empty()) {
    std::printf("value tables:");
    for (const auto& t : db.value_tables) std::printf(" %s(%zu)", t.name.c_str(), t.values.size());
    std::printf("\n");
  }
  for (const auto& w : parsed->warnings) std::printf("warning: %s\n", w.message.c_str());
  for (const auto& m : db.messages) print_message(db, m);
  return 0;
}

int run_check(const std::string& path) {
  auto parsed = dbc::load_dbc(path);
  if (!parsed) {
    std::printf("%s\n", parsed.error().message.c_str());
    std::printf("%s: 1 error\n", path.c_str());
    return 1;
  }
  // Parse warnings and checker problems together, in file order (those without a place last).
  struct Line {
    int line = 0;
    int column = 0;
    std::string text;
  };
  std::vector<Line> lines;
  std::size_t warnings = parsed->warnings.size();
  std::size_t errors = 0;
  for (const auto& w : parsed->warnings) lines.push_back({w.line, w.column, "warning: " + w.message});
  for (const auto& p : dbc::check_dbc(parsed->database)) {
    const bool error = p.severity == dbc::Problem::Severity::error;
    (error ? errors : warnings) += 1;
    lines.push_back(
        {p.position.line, p.position.column, (error ? "error: " : "warning: ") + p.located(path)});
  }
  std::stable_sort(lines.begin(), lines.end(), [](const Line& a, const Line& b) {
    const auto key = [](const Line& l) { return std::pair(l.line > 0 ? l.line : INT32_MAX, l.column); };
    return key(a) < key(b);
  });
  for (const auto& l : lines) std::printf("%s\n", l.text.c_str());
  std::printf("%s: %zu messages, %zu errors, %zu warnings\n", path.c_str(), parsed->database.messages.size(),
              errors, warnings);
  return errors > 0 ? 1 : 0;
}

}  // namespace

void register_dbc(CLI::App& app, Action& action) {
  CLI::App* dbc_cmd = app.add_subcommand("dbc", "Inspect and check DBC files");
  dbc_cmd->require_subcommand(1);

  auto show_path = std::make_shared<std::string>();
  auto show_message = std::make_shared<std::string>();
  CLI::App* show = dbc_cmd->add_subcommand("show",
                                           "List messages, signals (layout, scaling, unit, multiplexing), "
                                           "attributes and comments");
  show->add_option("file", *show_path, "DBC file")->required()->check(CLI::ExistingFile);
  show->add_option("--message", *show_message, "show only this message");
  show->callback([show_path, show_message, &action] {
    action = [show_path, show_message] { return run_show(*show_path, *show_message); };
  });

  auto check_path = std::make_shared<std::string>();
  CLI::App* check =
      dbc_cmd->add_subcommand("check", "Parse a DBC file and report problems; exit code 1 on errors");
  check->add_option("file", *check_path, "DBC file")->required()->check(CLI::ExistingFile);
  check->callback([check_path, &action] { action = [check_path] { return run_check(*check_path); }; });
}

}  // namespace cellguard::cli
