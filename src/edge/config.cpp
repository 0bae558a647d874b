// The edge's configuration: TOML (toml++) -> EdgeConfig, with every problem located and named.
// See config.h for the contract and data/edge/rig.toml for the documented layout.
#include "edge/config.h"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <limits>
#include <set>
#include <utility>

// The system's toml++ is a shared library built with exceptions, so its no-exception mode cannot be
// used; parse_error (and anything else) is caught around the one call of toml::parse() below.
#include <toml++/toml.h>

#include "core/text.h"
#include "core/toml_nesting.h"
#include "dbc/dbc.h"

namespace cellguard::edge {
namespace {

namespace fs = std::filesystem;

constexpr std::int64_t kNsPerMs = 1'000'000;
constexpr std::int64_t kNsPerS = 1'000'000'000;
constexpr double kMaxMs = 1e9;  // ~11 days: a longer period or timeout is a typo
constexpr double kMaxS = 1e6;
constexpr int kMaxPin = 63;
constexpr std::array<unsigned, 9> kStandardBauds{1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400};
constexpr std::array<std::string_view, devices::kOutputCount> kOutputKeys{"pump", "fan", "relay1", "relay2",
                                                                          "relay3"};

std::string format_number(double v) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc() ? std::string(buf, end) : std::string("?");
}

std::string_view type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    default:
      return "nothing";
  }
}

KeyLocation location_of(const toml::node& n) {
  const auto& b = n.source().begin;
  return {static_cast<int>(b.line), static_cast<int>(b.column)};
}

// Collects problems; knows where every key read so far is written.
class Reader {
 public:
  Reader(std::string file, ConfigCheck& check, std::map<std::string, KeyLocation, std::less<>>& locations)
      : file_(std::move(file)), check_(check), locations_(locations) {}

  void remember(const std::string& key, const toml::node& n) { locations_[key] = location_of(n); }

  // A problem at the key's own location, else at the nearest enclosing table's.
  void problem(const std::string& key, std::string message) {
    KeyLocation at;
    std::string k = key;
    while (true) {
      auto it = locations_.find(k);
      if (it != locations_.end()) {
        at = it->second;
        break;
      }
      auto dot = k.find_last_of(".[");
      if (dot == std::string::npos) break;
      k.resize(dot);
    }
    check_.problems.push_back({file_, at.line, at.column, key, std::move(message)});
  }
  void problem_at(const toml::node& n, const std::string& key, std::string message) {
    KeyLocation at = location_of(n);
    check_.problems.push_back({file_, at.line, at.column, key, std::move(message)});
  }
  std::size_t count() const { return check_.problems.size(); }
  bool has_problem(std::string_view key) const {
    return std::any_of(check_.problems.begin(), check_.problems.end(),
                       [&](const ConfigProblem& p) { return p.key == key; });
  }

 private:
  std::string file_;
  ConfigCheck& check_;
  std::map<std::string, KeyLocation, std::less<>>& locations_;
};

// One table of the file. Every key it is asked for is "known"; finish() reports the others.
class Section {
 public:
  Section(Reader& r, const toml::table* t, std::string prefix) : r_(r), t_(t), prefix_(std::move(prefix)) {}

  bool present() const { return t_ != nullptr; }
  const std::string& prefix() const { return prefix_; }
  std::string key(std::string_view k) const {
    return prefix_.empty() ? std::string(k) : prefix_ + "." + std::string(k);
  }

  // The value node of `k`, or nullptr when absent. Marks `k` known.
  const toml::node* node(std::string_view k) {
    known_.emplace_back(k);
    if (!t_) return nullptr;
    const toml::node* n = t_->get(k);
    if (n) r_.remember(key(k), *n);
    return n;
  }

  Section table(std::string_view k) {
    const toml::node* n = node(k);
    if (n && !n->is_table()) {
      r_.problem_at(*n, key(k), "expected a table, found " + std::string(type_name(*n)));
      n = nullptr;
    }
    return Section(r_, n ? n->as_table() : nullptr, key(k));
  }

  bool number(std::string_view k, double& out) {
    const toml::node* n = node(k);
    if (!n) return false;
    if (auto i = n->as_integer()) {
      out = static_cast<double>(i->get());
      return true;
    }
    if (auto f = n->as_floating_point()) {
      if (!std::isfinite(f->get())) {
        r_.problem_at(*n, key(k), "must be a finite number");
        return false;
      }
      out = f->get();
      return true;
    }
    r_.problem_at(*n, key(k), "expected a number, found " + std::string(type_name(*n)));
    return false;
  }
  bool number(std::string_view k, std::optional<double>& out) {
    double v = 0;
    if (!number(k, v)) return false;
    out = v;
    return true;
  }
  // A number with bounds (inclusive unless `open_low`); on a problem `out` keeps its value.
  bool number_in(std::string_view k, double& out, double lo, double hi, bool open_low = false) {
    double v = 0;
    if (!number(k, v)) return false;
    if ((open_low ? !(v > lo) : !(v >= lo)) || !(v <= hi)) {
      r_.problem(key(k), format_number(v) + " is out of range (" + (open_low ? "> " : ">= ") +
                             format_number(lo) + " and <= " + format_number(hi) + ")");
      return false;
    }
    out = v;
    return true;
  }

  bool integer(std::string_view k, std::int64_t& out) {
    const toml::node* n = node(k);
    if (!n) return false;
    if (auto i = n->as_integer()) {
      out = i->get();
      return true;
    }
    r_.problem_at(*n, key(k), "expected an integer, found " + std::string(type_name(*n)));
    return false;
  }
  template <typename T>
  bool integer_in(std::string_view k, T& out, std::int64_t lo, std::int64_t hi) {
    std::int64_t v = 0;
    if (!integer(k, v)) return false;
    if (v < lo || v > hi) {
      r_.problem(key(k), std::to_string(v) + " is out of range (" + std::to_string(lo) + ".." +
                             std::to_string(hi) + ")");
      return false;
    }
    out = static_cast<T>(v);
    return true;
  }

  bool boolean(std::string_view k, bool& out) {
    const toml::node* n = node(k);
    if (!n) return false;
    if (auto b = n->as_boolean()) {
      out = b->get();
      return true;
    }
    r_.problem_at(*n, key(k), "expected true or false, found " + std::string(type_name(*n)));
    return false;
  }

  bool string(std::string_view k, std::string& out) {
    const toml::node* n = node(k);
    if (!n) return false;
    if (auto s = n->as_string()) {
      out = s->get();
      return true;
    }
    r_.problem_at(*n, key(k), "expected a string, found " + std::string(type_name(*n)));
    return false;
  }

  // One of `choices`; returns its index.
  bool choice(std::string_view k, const std::vector<std::string>& choices, std::size_t& out) {
    std::string v;
    if (!string(k, v)) return false;
    for (std::size_t i = 0; i < choices.size(); ++i) {
      if (choices[i] == v) {
        out = i;
        return true;
      }
    }
    std::string list;
    for (const auto& c : choices) list += (list.empty() ? "\"" : ", \"") + c + "\"";
    r_.problem(key(k), "\"" + v + "\" is not one of " + list + did_you_mean(v, choices));
    return false;
  }

  // Durations: `k` in ms or s (by `unit_ns`), converted to ns, within (0 or >0) .. max.
  bool duration(std::string_view k, Duration& out, std::int64_t unit_ns, bool allow_zero) {
    double v = 0;
    if (!number(k, v)) return false;
    double max = unit_ns == kNsPerMs ? kMaxMs : kMaxS;
    if ((allow_zero ? !(v >= 0) : !(v > 0)) || v > max) {
      r_.problem(key(k), format_number(v) + " is out of range (" + (allow_zero ? ">= 0" : "> 0") +
                             " and <= " + format_number(max) + ")");
      return false;
    }
    out = Duration(std::llround(v * static_cast<double>(unit_ns)));
    return true;
  }
  bool ms(std::string_view k, Duration& out, bool allow_zero = false) {
    return duration(k, out, kNsPerMs, allow_zero);
  }
  bool s(std::string_view k, Duration& out, bool allow_zero = false) {
    return duration(k, out, kNsPerS, allow_zero);
  }

  void require(std::string_view k) {
    if (t_ && !t_->get(k)) r_.problem(key(k), "missing (required)");
  }

  // Reports every key of the table that nobody asked for.
  void finish() {
    if (!t_) return;
    for (auto&& [k, v] : *t_) {
      std::string name(k.str());
      if (std::find(known_.begin(), known_.end(), name) != known_.end()) continue;
      r_.problem_at(v, key(name), "unknown key" + did_you_mean(name, known_));
    }
  }

 private:
  Reader& r_;
  const toml::table* t_;
  std::string prefix_;
  std::vector<std::string> known_;
};

// Resolves a path of the file against its folder; empty stays empty.
std::string resolve(const fs::path& base, const std::string& p) {
  if (p.empty()) return p;
  fs::path path(p);
  if (path.is_relative()) path = base / path;
  return path.lexically_normal().string();
}

bool parse_hex_bytes(std::string_view text, std::vector<std::uint8_t>& out) {
  out.clear();
  std::size_t i = 0;
  while (i < text.size()) {
    if (text[i] == ' ') {
      ++i;
      continue;
    }
    if (i + 2 > text.size()) return false;
    std::uint8_t byte = 0;
    auto [end, ec] = std::from_chars(text.data() + i, text.data() + i + 2, byte, 16);
    if (ec != std::errc() || end != text.data() + i + 2) return false;
    out.push_back(byte);
    i += 2;
    if (i < text.size() && text[i] != ' ') return false;
  }
  return !out.empty() && out.size() <= 8;
}

// can/bus.h URL syntax (open_bus() checks the same when it opens).
std::string bus_url_problem(std::string_view url) {
  if (url.starts_with("inproc:")) return url.size() > 7 ? "" : "inproc: needs a name";
  if (url.starts_with("socketcan:")) {
    std::size_t n = url.size() - 10;
    return n >= 1 && n <= 15 ? "" : "socketcan: interface name must have 1 to 15 characters";
  }
  if (url.starts_with("socketcand://")) {
    std::string_view rest = url.substr(13);
    std::size_t slash = rest.find('/');
    if (slash == std::string_view::npos) return "expected socketcand://HOST:PORT/CHANNEL";
    std::string_view authority = rest.substr(0, slash);
    std::size_t colon = authority.rfind(':');
    if (colon == std::string_view::npos) return "socketcand: missing :PORT";
    if (colon == 0 || authority.substr(0, colon) == "[]") return "socketcand: missing host";
    std::string_view port_text = authority.substr(colon + 1);
    unsigned port = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || port == 0 || port > 65535) {
      return "socketcand: port must be 1..65535";
    }
    if (slash + 1 >= rest.size()) return "socketcand: missing channel";
    return "";
  }
  // A recorded log played back (can/bus.h); open_bus checks the file and the parameters.
  if (url.starts_with("replay:")) return url.size() > 7 ? "" : "replay: needs a log file path";
  return "unknown scheme (expected socketcan:IFNAME, socketcand://HOST:PORT/CHANNEL, inproc:NAME or "
         "replay:LOG)";
}

bool standard_baud(unsigned baud) {
  return std::find(kStandardBauds.begin(), kStandardBauds.end(), baud) != kStandardBauds.end();
}

// Pins or GPIO lines of the five outputs (absent table: keep the defaults).
void read_pins(Reader& r, Section s, devices::OutputPins& pins) {
  if (!s.present()) return;
  for (std::size_t i = 0; i < kOutputKeys.size(); ++i) {
    s.require(kOutputKeys[i]);
    s.integer_in(kOutputKeys[i], pins[i], 0, kMaxPin);
  }
  s.finish();
  for (std::size_t i = 0; i < pins.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      if (pins[i] == pins[j] && s.node(kOutputKeys[i])) {
        r.problem(s.key(kOutputKeys[i]), std::to_string(pins[i]) + " is also " + std::string(kOutputKeys[j]) +
                                             "'s (every output needs its own)");
      }
    }
  }
}

bool pins_unique(const devices::OutputPins& pins) {
  for (std::size_t i = 0; i < pins.size(); ++i)
    for (std::size_t j = 0; j < i; ++j)
      if (pins[i] == pins[j]) return false;
  return true;
}

void read_edge(Reader& r, Section s, EdgeConfig& c) {
  // The id names the operator socket file and recordings: keep it to safe file-name characters.
  if (s.string("id", c.edge_id)) {
    bool ok = !c.edge_id.empty() && c.edge_id.size() <= 64 &&
              std::all_of(c.edge_id.begin(), c.edge_id.end(), [](char ch) {
                return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                       ch == '-' || ch == '_' || ch == '.';
              });
    if (!ok) r.problem(s.key("id"), "must be 1 to 64 of A-Z a-z 0-9 - _ .");
  }
  s.finish();
}

void read_can(Reader& r, Section s, EdgeConfig& c, const fs::path& base) {
  auto& can = c.can;
  if (!s.present()) {
    r.problem("can", "missing table [can] (required: it names the DBC)");
  }
  if (s.string("url", can.url)) {
    std::string why = bus_url_problem(can.url);
    if (!why.empty()) r.problem(s.key("url"), "'" + can.url + "': " + why);
  }
  s.require("dbc");
  std::string dbc;
  if (s.string("dbc", dbc)) {
    if (dbc.empty()) r.problem(s.key("dbc"), "must name the modules' DBC file");
    can.dbc_path = resolve(base, dbc);
  }
  s.ms("sync_period_ms", can.sync_period_ns, /*allow_zero=*/true);
  s.integer_in("sync_id", can.sync_id, 0, 0x7FF);
  s.boolean("sync_counter", can.sync_counter);
  s.integer_in("sdo_request_base", can.sdo_request_base, 0, 0x7FF - 127);
  if (const toml::node* n = s.node("startup_sdo")) {
    if (const toml::array* a = n->as_array()) {
      for (std::size_t i = 0; i < a->size(); ++i) {
        const toml::node& e = *a->get(i);
        std::string key = s.key("startup_sdo") + "[" + std::to_string(i) + "]";
        std::vector<std::uint8_t> bytes;
        const auto* str = e.as_string();
        if (!str) {
          r.problem_at(e, key, "expected a string of hex bytes, found " + std::string(type_name(e)));
        } else if (!parse_hex_bytes(str->get(), bytes)) {
          r.problem_at(e, key,
                       "'" + str->get() + "' is not 1 to 8 hex bytes like \"2F 05 18 01 00 00 00 00\"");
        } else {
          can.startup_sdo.push_back(std::move(bytes));
        }
      }
    } else {
      r.problem_at(*n, s.key("startup_sdo"),
                   "expected an array of strings, found " + std::string(type_name(*n)));
    }
  }
  s.finish();
}

void read_modules(Reader& r, Section s, EdgeConfig& c) {
  auto& m = c.modules;
  std::size_t discovery = 0;
  if (s.choice("discovery", {"canopen", "name_pattern"}, discovery)) {
    m.discovery = static_cast<ModulesSection::Discovery>(discovery);
  }
  if (s.string("name_pattern", m.name_pattern)) {
    auto first = m.name_pattern.find("{id}");
    if (first == std::string::npos || m.name_pattern.find("{id}", first + 1) != std::string::npos) {
      r.problem(s.key("name_pattern"), "must contain {id} exactly once");
    }
  }
  if (const toml::node* n = s.node("pdo_bases")) {
    const toml::array* a = n->as_array();
    if (!a || a->empty()) {
      r.problem_at(*n, s.key("pdo_bases"), "expected a non-empty array of COB-IDs");
    } else {
      std::vector<std::uint32_t> bases;
      for (std::size_t i = 0; i < a->size(); ++i) {
        const toml::node& e = *a->get(i);
        std::string key = s.key("pdo_bases") + "[" + std::to_string(i) + "]";
        const auto* v = e.as_integer();
        if (!v || v->get() < 0 || v->get() > 0x7FF - 1) {
          r.problem_at(e, key, "expected an 11-bit COB-ID base (0..0x7FE)");
        } else if (std::find(bases.begin(), bases.end(), static_cast<std::uint32_t>(v->get())) !=
                   bases.end()) {
          r.problem_at(e, key, "duplicate base");
        } else {
          bases.push_back(static_cast<std::uint32_t>(v->get()));
        }
      }
      m.pdo_bases = std::move(bases);
    }
  }
  s.integer_in("expected", m.expected, 1, safety::kMaxModuleId);
  s.integer_in("cells", m.cells, 1, 64);
  if (s.string("cell_voltage_signal", m.cell_voltage_signal) &&
      m.cell_voltage_signal.find("{cell}") == std::string::npos) {
    r.problem(s.key("cell_voltage_signal"), "must contain {cell} (the cell number 1..cells)");
  }
  auto required_name = [&](std::string_view k, std::string& out) {
    if (s.string(k, out) && out.empty()) r.problem(s.key(k), "must name a signal");
  };
  required_name("module_voltage_signal", m.module_voltage_signal);
  required_name("max_temperature_signal", m.max_temperature_signal);
  s.string("min_temperature_signal", m.min_temperature_signal);  // "" = not supervised
  s.string("current_signal", m.current_signal);                  // "" = unknown current
  s.integer_in("stale_cycles", c.safety.stale_sync_cycles, 1, 1000);
  s.integer_in("dangerous_cycles", c.safety.dangerous_sync_cycles, 1, 10000);
  s.ms("dangerous_silence_ms", c.safety.dangerous_silence_ns);
  c.safety.expected_module_count = m.expected;
  s.finish();
}

void read_board(Reader& r, Section s, EdgeConfig& c, const fs::path& base) {
  auto& b = c.board;
  auto& conv = b.link.conversion;
  s.boolean("enabled", b.enabled);
  if (s.string("device", b.link.device) && b.link.device.empty())
    r.problem(s.key("device"), "must not be empty");
  std::int64_t baud = 0;
  if (s.integer("baud", baud)) {
    if (baud <= 0 || baud > 4'000'000 || !standard_baud(static_cast<unsigned>(baud))) {
      r.problem(s.key("baud"), std::to_string(baud) +
                                   " is not a standard rate (1200, 2400, 4800, 9600, "
                                   "19200, 38400, 57600, 115200, 230400)");
    } else {
      b.link.baud = static_cast<unsigned>(baud);
    }
  }
  s.ms("timeout_ms", c.safety.board_timeout_ns);
  s.ms("reopen_interval_ms", b.link.reopen_interval_ns);
  std::string table;
  if (s.string("thermistor_table", table)) {
    if (table.empty())
      r.problem(s.key("thermistor_table"), "must name a file (remove the key for the rig's table)");
    b.thermistor_table_path = resolve(base, table);
  }
  s.number_in("series_ohm", conv.series_ohm, 0, 1e9, true);
  s.number_in("supply_v", conv.supply_v, 0, 100, true);
  s.number_in("adc_full_scale", conv.adc_full_scale, 0, 1e9, true);
  s.number_in("pressure_min_v", conv.pressure_min_v, 0, 100);
  if (s.number_in("pressure_max_v", conv.pressure_max_v, 0, 100) &&
      !(conv.pressure_min_v < conv.pressure_max_v)) {
    r.problem(s.key("pressure_max_v"),
              "must be above pressure_min_v (" + format_number(conv.pressure_min_v) + ")");
  }
  if (!(conv.pressure_max_v <= conv.supply_v)) {
    r.problem(s.key("pressure_max_v"), "must not exceed supply_v (" + format_number(conv.supply_v) + ")");
  }
  s.number_in("pressure_full_scale", conv.pressure_full_scale, 0, 1e9, true);
  if (s.string("pressure_unit", conv.pressure_unit) && conv.pressure_unit.empty()) {
    r.problem(s.key("pressure_unit"), "must not be empty");
  }
  s.boolean("ground_fault_input", b.ground_fault_input);
  // Issue 13: how outputs are written (devices/board_writer.h).
  std::size_t protocol = 0;
  if (s.choice("protocol", {"auto", "rig-sketch", "cellguard"}, protocol)) {
    b.link.protocol = static_cast<devices::BoardProtocol>(protocol);
  }
  if (s.ms("cycle_ms", b.link.writer.cycle_ns) && (b.link.writer.cycle_ns < std::chrono::milliseconds(100) ||
                                                   b.link.writer.cycle_ns > std::chrono::seconds(10))) {
    r.problem(s.key("cycle_ms"), "must be within 100 .. 10000 ms (the rig's sketch: 1000)");
  }
  // Commands go out in the first 60 % of the board's cycle after its line (the sketch's delay()).
  b.link.writer.send_window_ns = b.link.writer.cycle_ns * 6 / 10;
  std::int64_t max_bytes = 0;
  if (s.integer("max_command_bytes", max_bytes)) {
    if (max_bytes < 8 || max_bytes > 64) {
      r.problem(s.key("max_command_bytes"),
                std::to_string(max_bytes) + " is outside 8 .. 64 (the rig's sketch reads 30)");
    } else {
      b.link.writer.max_command_bytes = static_cast<std::size_t>(max_bytes);
    }
  }
  s.boolean("pad_commands", b.link.writer.pad);
  std::int64_t retries = 0;
  if (s.integer("readback_retries", retries)) {
    if (retries < 0 || retries > 10) {
      r.problem(s.key("readback_retries"), std::to_string(retries) + " is outside 0 .. 10");
    } else {
      b.link.writer.readback_retries = static_cast<int>(retries);
    }
  }
  s.boolean("extension", b.link.extension);
  if (s.ms("heartbeat_interval_ms", b.link.heartbeat_interval_ns) &&
      b.link.heartbeat_interval_ns < std::chrono::milliseconds(10)) {
    r.problem(s.key("heartbeat_interval_ms"), "must be at least 10 ms");
  }
  std::int64_t heartbeat_timeout = 0;
  if (s.integer("heartbeat_timeout_ms", heartbeat_timeout)) {
    if (heartbeat_timeout < 100 || heartbeat_timeout > 5000) {
      r.problem(s.key("heartbeat_timeout_ms"),
                std::to_string(heartbeat_timeout) + " is outside 100..5000 ms (the board's range)");
    } else {
      b.link.heartbeat_timeout_ms = static_cast<int>(heartbeat_timeout);
    }
  }
  if (b.link.heartbeat_interval_ns * 2 > std::chrono::milliseconds(b.link.heartbeat_timeout_ms)) {
    r.problem(s.key("heartbeat_interval_ms"), "must be at most half of heartbeat_timeout_ms (" +
                                                  std::to_string(b.link.heartbeat_timeout_ms) + " ms)");
  }
  c.safety.board_expected = b.enabled;
  s.finish();
}

void read_outputs(Reader& r, Section s, EdgeConfig& c) {
  auto& o = c.outputs;
  std::size_t driver = 0;
  if (s.choice("driver", {"board", "gpio"}, driver)) o.driver = static_cast<OutputsSection::Driver>(driver);
  read_pins(r, s.table("pins"), o.board_pins);
  Section gpio = s.table("gpio");
  if (gpio.present()) {
    if (gpio.string("chip", o.gpio.chip) && o.gpio.chip.empty())
      r.problem(gpio.key("chip"), "must not be empty");
    read_pins(r, gpio.table("lines"), o.gpio.lines);
    gpio.boolean("active_low", o.gpio.active_low);
    gpio.finish();
  }
  s.finish();
  if (o.driver == OutputsSection::Driver::gpio && !pins_unique(o.gpio.lines)) {
    r.problem(s.key("driver"), "\"gpio\" needs [outputs.gpio] lines for every output");
  }
  if (o.driver == OutputsSection::Driver::board && !c.board.enabled) {
    r.problem(s.key("driver"), "\"board\" needs the board: set [board] enabled = true or driver = \"gpio\"");
  }
}

struct RegisterField {
  std::string_view key;
  std::uint16_t devices::InverterRegisterMap::*field;
  int words;
  bool holding;
};
constexpr std::array<RegisterField, 24> kRegisterFields{{
    {"security_code", &devices::InverterRegisterMap::security_code, 1, true},
    {"heartbeat", &devices::InverterRegisterMap::heartbeat, 1, true},
    {"op_mode", &devices::InverterRegisterMap::op_mode, 1, true},
    {"op_mode_setpoint", &devices::InverterRegisterMap::op_mode_setpoint, 1, true},
    {"bat_max_volt", &devices::InverterRegisterMap::bat_max_volt, 1, true},
    {"bat_min_volt", &devices::InverterRegisterMap::bat_min_volt, 1, true},
    {"bat_max_charge_current", &devices::InverterRegisterMap::bat_max_charge_current, 1, true},
    {"bat_max_discharge_current", &devices::InverterRegisterMap::bat_max_discharge_current, 1, true},
    {"bat_max_charge_power", &devices::InverterRegisterMap::bat_max_charge_power, 1, true},
    {"ambient_temp", &devices::InverterRegisterMap::ambient_temp, 1, false},
    {"heatsink_temp", &devices::InverterRegisterMap::heatsink_temp, 1, false},
    {"modbus_timer", &devices::InverterRegisterMap::modbus_timer, 1, false},
    {"battery_voltage", &devices::InverterRegisterMap::battery_voltage, 1, false},
    {"voltage_ref", &devices::InverterRegisterMap::voltage_ref, 1, false},
    {"dc_link_voltage", &devices::InverterRegisterMap::dc_link_voltage, 1, false},
    {"dc_link_power", &devices::InverterRegisterMap::dc_link_power, 1, false},
    {"dc_link_current", &devices::InverterRegisterMap::dc_link_current, 1, false},
    {"ready", &devices::InverterRegisterMap::ready, 1, false},
    {"fault_first", &devices::InverterRegisterMap::fault_first, 4, false},
    {"warning_first", &devices::InverterRegisterMap::warning_first, 3, false},
    {"status", &devices::InverterRegisterMap::status, 1, false},
    {"charged_kwh_high", &devices::InverterRegisterMap::charged_kwh_high, 2, false},
    {"discharged_kwh_high", &devices::InverterRegisterMap::discharged_kwh_high, 2, false},
    {"power_limit", &devices::InverterRegisterMap::power_limit, 1, false},
}};

void read_registers(Reader& r, Section s, devices::InverterRegisterMap& map) {
  if (!s.present()) return;  // the rig's map
  std::vector<std::string_view> missing;
  for (const auto& f : kRegisterFields) {
    if (!s.node(f.key)) {
      missing.push_back(f.key);
      continue;
    }
    s.integer_in(f.key, map.*f.field, 0, 65535 - (f.words - 1));
  }
  s.finish();
  // A half-given map would mix the file's addresses with the rig's: one problem lists what is missing.
  if (!missing.empty()) {
    std::string list;
    for (auto k : missing) list += (list.empty() ? "" : ", ") + std::string(k);
    r.problem(missing.size() == 1 ? s.key(missing[0]) : s.prefix(),
              "missing " + list + ": the register map must be complete when [inverter.registers] is given");
  }
  // Holding and input registers are separate address spaces; within each, no two may overlap.
  for (std::size_t i = 0; i < kRegisterFields.size(); ++i) {
    const auto& a = kRegisterFields[i];
    for (std::size_t j = 0; j < i; ++j) {
      const auto& b = kRegisterFields[j];
      if (a.holding != b.holding) continue;
      int a0 = map.*a.field, b0 = map.*b.field;
      if (a0 < b0 + b.words && b0 < a0 + a.words) {
        r.problem(s.key(a.key), std::to_string(a0) + " overlaps " + std::string(b.key) + " (" +
                                    std::to_string(b0) +
                                    (b.words > 1 ? ", " + std::to_string(b.words) + " words" : "") + ")");
      }
    }
  }
}

void read_inverter(Reader& r, Section s, EdgeConfig& c) {
  auto& inv = c.inverter;
  auto& cl = inv.client;
  s.boolean("enabled", inv.enabled);
  std::size_t model = 0;
  if (s.choice("model", {"rig", "sunspec"}, model)) inv.model = static_cast<devices::PowerDeviceModel>(model);
  // The rig's register map, scalings and mode codes mean nothing to a SunSpec device (its map is found on
  // it).
  if (inv.model == devices::PowerDeviceModel::sunspec) {
    for (const char* rig_only : {"registers", "scales", "codes"}) {
      if (s.node(rig_only))
        r.problem(s.key(rig_only), "applies to model \"rig\" only (a SunSpec device describes its own map)");
    }
  }
  if (s.string("url", inv.url)) {
    auto ep = devices::parse_inverter_url(inv.url);
    if (!ep) {
      r.problem(s.key("url"), ep.error().message);
    } else {
      cl.endpoint = *ep;
      if (cl.endpoint.transport == devices::InverterEndpoint::Transport::rtu &&
          !standard_baud(cl.endpoint.baud)) {
        r.problem(s.key("url"), "baud " + std::to_string(cl.endpoint.baud) + " is not a standard rate");
      }
    }
  } else if (inv.enabled) {
    auto ep = devices::parse_inverter_url(inv.url);  // the default URL
    if (ep) cl.endpoint = *ep;
  }
  // The register holds the timeout in 0.1 s, 0..1000.
  if (s.ms("heartbeat_timeout_ms", cl.heartbeat_timeout_ns) &&
      (cl.heartbeat_timeout_ns % std::chrono::milliseconds(100) != Duration::zero() ||
       cl.heartbeat_timeout_ns > std::chrono::seconds(100))) {
    r.problem(s.key("heartbeat_timeout_ms"),
              "must be a multiple of 100 ms and at most 100000 ms (the register "
              "counts 0.1 s up to 1000)");
  }
  if (s.ms("heartbeat_period_ms", cl.heartbeat_period_ns) &&
      !(cl.heartbeat_period_ns < cl.heartbeat_timeout_ns / 2)) {
    r.problem(s.key("heartbeat_period_ms"),
              "must be below half of heartbeat_timeout_ms (" +
                  std::to_string(cl.heartbeat_timeout_ns / std::chrono::milliseconds(1)) +
                  "), so one lost write does not stop the converter");
  }
  s.ms("poll_period_ms", cl.poll_period_ns);
  // Issue 12 item 4: freshness bounds of the supervisor. A heartbeat not acknowledged for the
  // converter's own timeout means it may have stopped by itself.
  c.safety.inverter_heartbeat_timeout_ns = cl.heartbeat_timeout_ns;
  s.ms("heartbeat_ack_timeout_ms", c.safety.inverter_heartbeat_timeout_ns);
  if (s.ms("readings_timeout_ms", c.safety.inverter_readings_timeout_ns) &&
      c.safety.inverter_readings_timeout_ns <= cl.poll_period_ns) {
    r.problem(s.key("readings_timeout_ms"),
              "must be longer than poll_period_ms (" +
                  std::to_string(cl.poll_period_ns / std::chrono::milliseconds(1)) + ")");
  }
  if (c.safety.inverter_heartbeat_timeout_ns <= cl.heartbeat_period_ns) {
    r.problem(s.key("heartbeat_ack_timeout_ms"),
              "must be longer than heartbeat_period_ms (" +
                  std::to_string(cl.heartbeat_period_ns / std::chrono::milliseconds(1)) + ")");
  }
  s.ms("response_timeout_ms", cl.response_timeout_ns);
  s.integer_in("retries", cl.retries, 0, 10);
  s.integer_in("failure_limit", c.safety.inverter_failure_limit, 1, 1000);
  s.ms("reconnect_interval_ms", cl.reconnect_interval_ns);
  s.s("startup_settle_timeout_s", cl.startup_settle_timeout_ns);
  s.number_in("settle_current_a", cl.settle_current_a, 0, 1e4, true);
  s.number_in("settle_power_kw", cl.settle_power_kw, 0, 1e4, true);

  Section scales = s.table("scales");
  auto& reg = cl.registers;
  scales.number_in("voltage", reg.voltage_scale, 0, 1e6, true);
  scales.number_in("current", reg.current_scale, 0, 1e6, true);
  scales.number_in("power", reg.power_scale, 0, 1e6, true);
  scales.number_in("temperature", reg.temperature_scale, 0, 1e6, true);
  scales.finish();

  Section codes = s.table("codes");
  codes.integer_in("security_value", reg.security_value, 0, 65535);
  codes.integer_in("mode_off", reg.mode_off, 0, 65535);
  codes.integer_in("mode_power", reg.mode_power, 0, 65535);
  codes.integer_in("mode_current", reg.mode_current, 0, 65535);
  codes.integer_in("mode_voltage", reg.mode_voltage, 0, 65535);
  codes.finish();
  {
    const std::array<std::pair<std::string_view, std::uint16_t>, 4> modes{
        {{"mode_off", reg.mode_off},
         {"mode_power", reg.mode_power},
         {"mode_current", reg.mode_current},
         {"mode_voltage", reg.mode_voltage}}};
    for (std::size_t i = 0; i < modes.size(); ++i)
      for (std::size_t j = 0; j < i; ++j)
        if (modes[i].second == modes[j].second)
          r.problem(codes.key(modes[i].first), "same value as " + std::string(modes[j].first));
  }

  Section limits = s.table("limits");
  auto& l = cl.limits;
  // Written as int16 raw values: value * scale must fit.
  auto fits = [&](std::string_view k, double v, double scale) {
    if (std::abs(v * scale) > 32767) {
      r.problem(limits.key(k),
                format_number(v) + " × scale " + format_number(scale) + " does not fit the 16-bit register");
    }
  };
  if (limits.number("charge_current_a", l.charge_current_a)) {
    if (l.charge_current_a > 0) r.problem(limits.key("charge_current_a"), "must be <= 0 (negative charges)");
    fits("charge_current_a", l.charge_current_a, reg.current_scale);
  }
  if (limits.number("discharge_current_a", l.discharge_current_a)) {
    if (l.discharge_current_a < 0) r.problem(limits.key("discharge_current_a"), "must be >= 0");
    fits("discharge_current_a", l.discharge_current_a, reg.current_scale);
  }
  if (limits.number("charge_power_kw", l.charge_power_kw)) {
    if (!(l.charge_power_kw > 0)) r.problem(limits.key("charge_power_kw"), "must be > 0");
    fits("charge_power_kw", l.charge_power_kw, reg.power_scale);
  }
  if (limits.number("max_voltage_v", l.max_voltage_v))
    fits("max_voltage_v", l.max_voltage_v, reg.voltage_scale);
  if (limits.number("min_voltage_v", l.min_voltage_v)) {
    if (l.min_voltage_v < 0) r.problem(limits.key("min_voltage_v"), "must be >= 0");
    fits("min_voltage_v", l.min_voltage_v, reg.voltage_scale);
  }
  if (!(l.min_voltage_v < l.max_voltage_v)) {
    r.problem(limits.key("min_voltage_v"),
              "must be below max_voltage_v (" + format_number(l.max_voltage_v) + ")");
  }
  limits.finish();

  read_registers(r, s.table("registers"), reg);
  s.finish();
}

void read_schedule(Reader& r, Section s, EdgeConfig& c, const fs::path& base) {
  auto& sc = c.schedule;
  std::string file;
  if (s.string("file", file)) {
    if (file.empty()) r.problem(s.key("file"), "must name a file (remove the key for no schedule)");
    sc.path = resolve(base, file);
  }
  std::size_t at_end = 0;
  if (s.choice("at_end", {"loop", "stop"}, at_end)) sc.at_end = static_cast<schedule::EndAction>(at_end);
  if (s.boolean("autostart", sc.autostart) && sc.autostart && sc.path.empty()) {
    r.problem(s.key("autostart"), "true needs a schedule file");
  }
  s.number_in("readback_tolerance", sc.readback_tolerance, 0, 1e4, true);
  s.s("readback_timeout_s", sc.readback_timeout_ns);
  s.finish();
}

// One rule table; absent thresholds stay disabled. Its consistency (warning inside dangerous,
// hysteresis within the gaps) is safety::validate()'s, reported at each key by check_supervisor().
void read_rule(Section s, safety::RuleConfig& rule) {
  s.number("warning_high", rule.warning_high);
  s.number("dangerous_high", rule.dangerous_high);
  s.number("warning_low", rule.warning_low);
  s.number("dangerous_low", rule.dangerous_low);
  s.number_in("hysteresis", rule.hysteresis, 0, 1e9);
  s.ms("warning_debounce_ms", rule.warning_debounce_ns, true);
  s.ms("dangerous_debounce_ms", rule.dangerous_debounce_ns, true);
  s.finish();
}

void read_safety(Reader& r, Section s, EdgeConfig& c) {
  auto& sc = c.safety;
  // The file replaces the rule defaults entirely: an absent table or threshold is disabled.
  sc.rules = {};
  if (!s.present()) r.problem("safety", "missing table [safety] (the limits are required)");
  s.number_in("contactor_open_current_a", sc.contactor_open_current_a, 0, 1e4, true);
  s.ms("contactor_max_delay_ms", sc.contactor_max_delay_ns, true);
  s.ms("current_max_age_ms", sc.current_max_age_ns);
  s.number_in("hot_c", sc.hot_c, -100, 500);
  s.number_in("cooled_c", sc.cooled_c, -100, 500);
  s.number_in("nudge_current_a", sc.nudge_current_a, 0, 1e4);

  Section limits = s.table("limits");
  if (s.present() && !limits.present())
    r.problem(s.key("limits"), "missing table [safety.limits] (required)");
  for (std::size_t i = 0; i < safety::kQuantityCount; ++i) {
    auto q = static_cast<safety::Quantity>(i);
    Section t = limits.table(safety::to_string(q));
    if (t.present()) read_rule(t, sc.rules[i]);
  }
  limits.finish();
  if (limits.present()) {
    // Without these the edge would guard nothing that matters: refuse rather than run unguarded.
    const auto& cell = sc.rule(safety::Quantity::cell_voltage);
    if (!cell.dangerous_high || !cell.dangerous_low) {
      r.problem(limits.key("cell_voltage"), "dangerous_high and dangerous_low are required");
    }
    if (!sc.rule(safety::Quantity::module_max_temperature).dangerous_high) {
      r.problem(limits.key("module_max_temperature"), "dangerous_high is required");
    }
  }

  Section p = s.table("precharge");
  auto& pc = sc.precharge;
  auto role = [&](std::string_view k, int& out) {
    std::size_t idx = 0;
    if (p.choice(k, {"relay1", "relay2", "relay3"}, idx)) out = static_cast<int>(idx) + 1;
  };
  role("precharge_relay", pc.relays.precharge);
  role("main_positive_relay", pc.relays.main_positive);
  role("main_negative_relay", pc.relays.main_negative);
  if (!p.ms("settle_ms", pc.settle_ns, true) && c.outputs.driver == OutputsSection::Driver::board &&
      c.board.link.protocol != devices::BoardProtocol::cellguard) {
    // A command waits up to one board cycle to be sent and is applied up to one cycle later (the
    // rig's sketch): the precharge must not take a DC-link reading as its result before then.
    pc.settle_ns = c.board.link.writer.cycle_ns * 5 / 2;
  }
  p.number_in("match_tolerance_v", pc.match_tolerance_v, 0, 1e4, true);
  p.s("timeout_s", pc.timeout_ns);
  p.s("retry_delay_s", pc.retry_delay_ns, true);
  p.integer_in("max_attempts", pc.max_attempts, 1, 100);
  p.finish();
  s.finish();
}

void read_recording(Reader& r, Section s, EdgeConfig& c, const fs::path& base) {
  auto& rec = c.recording;
  std::string v;
  if (s.string("path", v)) rec.path = resolve(base, v);
  double mb = 0;
  if (s.number_in("max_mb", mb, 0, 1e9, true)) rec.max_bytes = static_cast<std::uint64_t>(mb * 1024 * 1024);
  double days = 0;
  if (s.number_in("max_age_days", days, 0, 36500, true)) {
    rec.max_age_ns = Duration(std::llround(days * 86400.0 * static_cast<double>(kNsPerS)));
  }
  if (s.string("csv_dir", v)) rec.csv_dir = resolve(base, v);
  std::size_t board = 0;
  if (s.choice("csv_board", {"raw", "converted"}, board)) rec.csv_board_converted = board == 1;
  s.boolean("csv_extra_columns", rec.csv_extra_columns);
  (void)r;
  s.finish();
}

void read_uplink(Reader& r, Section s, EdgeConfig& c, const fs::path& base) {
  auto& u = c.uplink;
  std::string v;
  if (s.string("server", v) && !v.empty()) {
    const auto colon = v.rfind(':');
    std::int64_t port = 0;
    const bool bracketed = !v.empty() && v.front() == '[';
    if (colon == std::string::npos || colon + 1 >= v.size() ||
        std::from_chars(v.data() + colon + 1, v.data() + v.size(), port).ptr != v.data() + v.size() ||
        port < 1 || port > 65535) {
      r.problem(s.key("server"), "\"" + v + "\" is not HOST:PORT (e.g. \"192.0.2.10:6699\")");
    } else {
      u.host = v.substr(bracketed ? 1 : 0, colon - (bracketed ? 2 : 0));
      u.port = static_cast<std::uint16_t>(port);
    }
  }
  std::string pki_dir;
  if (s.string("pki_dir", v) && !v.empty()) pki_dir = resolve(base, v);
  if (!pki_dir.empty()) {
    u.ca_path = pki_dir + "/ca.crt";
    u.cert_path = pki_dir + "/issued/" + c.edge_id + ".crt";
    u.key_path = pki_dir + "/issued/" + c.edge_id + ".key";
  }
  if (s.string("ca", v) && !v.empty()) u.ca_path = resolve(base, v);
  if (s.string("cert", v) && !v.empty()) u.cert_path = resolve(base, v);
  if (s.string("key", v) && !v.empty()) u.key_path = resolve(base, v);
  s.boolean("plaintext", u.plaintext);
  s.s("keepalive_s", u.keepalive_ns);
  s.s("dead_after_s", u.dead_after_ns);
  s.s("backoff_max_s", u.backoff_max_ns);
  if (u.enabled() && !u.plaintext && (u.ca_path.empty() || u.cert_path.empty() || u.key_path.empty()))
    r.problem(s.key("server"),
              "a TLS uplink needs ca, cert and key (or pki_dir), or plaintext = true for a loopback server");
  if (u.enabled() && c.recording.path.empty())
    r.problem(s.key("server"), "the uplink sends the recording: set recording.path");
  if (u.dead_after_ns <= u.keepalive_ns) r.problem(s.key("dead_after_s"), "must be longer than keepalive_s");
  s.finish();
}

void read_operator(Reader&, Section s, EdgeConfig& c, const fs::path& base) {
  std::string v;
  if (s.string("socket", v)) c.operator_interface.socket_path = resolve(base, v);
  if (s.string("events", v)) c.operator_interface.events_path = resolve(base, v);
  s.string("group", c.operator_interface.group);
  s.finish();
}

// Checks across sections (after every section is read).
void check_across(Reader& r, EdgeConfig& c) {
  const auto& ibv = c.safety.rule(safety::Quantity::inverter_battery_voltage);
  const auto& l = c.inverter.client.limits;
  // The inverter must stop before the supervisor calls the pack voltage dangerous; otherwise the
  // converter's own limits would drive the pack into DANGEROUS.
  if (c.inverter.enabled && ibv.dangerous_high && l.max_voltage_v > *ibv.dangerous_high) {
    r.problem("inverter.limits.max_voltage_v",
              format_number(l.max_voltage_v) +
                  " is above safety.limits.inverter_battery_voltage.dangerous_high (" +
                  format_number(*ibv.dangerous_high) + ")");
  }
  if (c.inverter.enabled && ibv.dangerous_low && l.min_voltage_v < *ibv.dangerous_low) {
    r.problem("inverter.limits.min_voltage_v",
              format_number(l.min_voltage_v) +
                  " is below safety.limits.inverter_battery_voltage.dangerous_low (" +
                  format_number(*ibv.dangerous_low) + ")");
  }
  if (c.safety.rule(safety::Quantity::module_min_temperature).warning_high.has_value() ||
      c.safety.rule(safety::Quantity::module_min_temperature).dangerous_high.has_value() ||
      c.safety.rule(safety::Quantity::module_min_temperature).warning_low.has_value() ||
      c.safety.rule(safety::Quantity::module_min_temperature).dangerous_low.has_value()) {
    if (c.modules.min_temperature_signal.empty()) {
      r.problem("modules.min_temperature_signal",
                "must name a signal: safety.limits.module_min_temperature is set");
    }
  }
}

// Where each supervisor setting is written in the file. Exhaustive (no default): a new setting of
// safety::validate() needs its key here.
std::string setting_key(safety::ConfigField field, safety::Quantity quantity) {
  using F = safety::ConfigField;
  const std::string limits = "safety.limits." + std::string(safety::to_string(quantity)) + ".";
  switch (field) {
    case F::warning_high:
      return limits + "warning_high";
    case F::dangerous_high:
      return limits + "dangerous_high";
    case F::warning_low:
      return limits + "warning_low";
    case F::dangerous_low:
      return limits + "dangerous_low";
    case F::hysteresis:
      return limits + "hysteresis";
    case F::warning_debounce_ns:
      return limits + "warning_debounce_ms";
    case F::dangerous_debounce_ns:
      return limits + "dangerous_debounce_ms";
    case F::expected_module_count:
      return "modules.expected";
    case F::stale_sync_cycles:
      return "modules.stale_cycles";
    case F::dangerous_sync_cycles:
      return "modules.dangerous_cycles";
    case F::dangerous_silence_ns:
      return "modules.dangerous_silence_ms";
    case F::board_timeout_ns:
      return "board.timeout_ms";
    case F::inverter_failure_limit:
      return "inverter.failure_limit";
    case F::inverter_readings_timeout_ns:
      return "inverter.readings_timeout_ms";
    case F::inverter_heartbeat_timeout_ns:
      return "inverter.heartbeat_ack_timeout_ms";
    case F::contactor_open_current_a:
      return "safety.contactor_open_current_a";
    case F::contactor_max_delay_ns:
      return "safety.contactor_max_delay_ms";
    case F::hot_c:
      return "safety.hot_c";
    case F::cooled_c:
      return "safety.cooled_c";
    case F::nudge_current_a:
      return "safety.nudge_current_a";
    case F::precharge_relay:
      return "safety.precharge.precharge_relay";
    case F::main_positive_relay:
      return "safety.precharge.main_positive_relay";
    case F::main_negative_relay:
      return "safety.precharge.main_negative_relay";
    case F::match_tolerance_v:
      return "safety.precharge.match_tolerance_v";
    case F::precharge_timeout_ns:
      return "safety.precharge.timeout_s";
    case F::retry_delay_ns:
      return "safety.precharge.retry_delay_s";
    case F::max_attempts:
      return "safety.precharge.max_attempts";
    case F::settle_ns:
      return "safety.precharge.settle_ms";
  }
  return "safety";
}

// A setting as the messages name it: its key in its table ("stale_cycles", "hot_c"); the settings a
// message relates are always in one table.
std::string key_name(safety::ConfigField field) {
  std::string key = setting_key(field, safety::Quantity::cell_voltage);
  return key.substr(key.rfind('.') + 1);
}

// safety::validate() is the one check of the supervisor's settings: every problem at its key, unless
// that key already has a problem (a value out of range was not taken, so the check saw the default).
void check_supervisor(Reader& r, const safety::SupervisorConfig& config) {
  for (const safety::ConfigProblem& p : safety::validate(config, key_name)) {
    const std::string key = setting_key(p.field, p.quantity);
    if (!r.has_problem(key)) r.problem(key, p.message);
  }
}

}  // namespace

std::string supervisor_setting_key(safety::ConfigField field, safety::Quantity quantity) {
  return setting_key(field, quantity);
}

namespace {

std::string sha256_of(std::string_view bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr) != 1) return {};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * len);
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

void parse_into(const toml::table& root, Reader& r, EdgeConfig& c, const fs::path& base) {
  Section top(r, &root, "");
  read_edge(r, top.table("edge"), c);
  read_can(r, top.table("can"), c, base);
  read_modules(r, top.table("modules"), c);
  read_board(r, top.table("board"), c, base);
  read_outputs(r, top.table("outputs"), c);
  read_inverter(r, top.table("inverter"), c);
  read_schedule(r, top.table("schedule"), c, base);
  read_safety(r, top.table("safety"), c);
  read_recording(r, top.table("recording"), c, base);
  read_uplink(r, top.table("uplink"), c, base);
  read_operator(r, top.table("operator"), c, base);
  top.finish();
  check_across(r, c);
}

// ---- stage two ----

struct ModuleMessages {
  std::vector<const dbc::Message*> messages;
  std::vector<std::string> signal_names;  // for "did you mean"
};

// Message name matches prefix DIGITS suffix... (name_pattern with {id}); returns the id or 0.
int pattern_module_id(std::string_view name, std::string_view pattern) {
  auto at = pattern.find("{id}");
  if (at == std::string_view::npos) return 0;
  std::string_view prefix = pattern.substr(0, at), suffix = pattern.substr(at + 4);
  if (!name.starts_with(prefix)) return 0;
  name.remove_prefix(prefix.size());
  std::size_t digits = 0;
  while (digits < name.size() && digits < 4 && name[digits] >= '0' && name[digits] <= '9') ++digits;
  if (digits == 0) return 0;
  int id = 0;
  std::from_chars(name.data(), name.data() + digits, id);
  if (!name.substr(digits).starts_with(suffix)) return 0;
  return id >= 1 && id <= safety::kMaxModuleId ? id : 0;
}

ModuleMessages module_messages(const dbc::Database& db, const ModulesSection& m) {
  ModuleMessages out;
  std::set<std::string> names;
  for (const auto& msg : db.messages) {
    bool module = false;
    if (m.discovery == ModulesSection::Discovery::canopen) {
      // As the edge maps frames: node id = offset from the nearest PDO base below the COB-ID, 1..127.
      std::uint32_t nearest = 0;
      bool found = false;
      for (auto b : m.pdo_bases) {
        if (b < msg.id && (!found || b > nearest)) {
          nearest = b;
          found = true;
        }
      }
      module = !msg.extended && found && msg.id - nearest <= static_cast<std::uint32_t>(safety::kMaxModuleId);
    } else {
      module = pattern_module_id(msg.name, m.name_pattern) != 0;
    }
    if (!module) continue;
    out.messages.push_back(&msg);
    for (const auto& sig : msg.signals) names.insert(sig.name);
  }
  out.signal_names.assign(names.begin(), names.end());
  return out;
}

bool has_signal(const ModuleMessages& mm, std::string_view name) {
  return std::binary_search(mm.signal_names.begin(), mm.signal_names.end(), name,
                            [](std::string_view a, std::string_view b) { return a < b; });
}

std::string cell_signal(const std::string& pattern, int cell) {
  std::string out = pattern;
  auto at = out.find("{cell}");
  if (at != std::string::npos) out.replace(at, 6, std::to_string(cell));
  return out;
}

void check_signals(Reader& r, const EdgeConfig& c, const dbc::Database& db) {
  const auto& m = c.modules;
  ModuleMessages mm = module_messages(db, m);
  if (mm.messages.empty()) {
    r.problem(
        m.discovery == ModulesSection::Discovery::canopen ? "modules.discovery" : "modules.name_pattern",
        "no message of " + c.can.dbc_path +
            (m.discovery == ModulesSection::Discovery::canopen
                 ? " has a PDO COB-ID (a base of modules.pdo_bases + node id 1..127)"
                 : " matches the name pattern '" + m.name_pattern + "'"));
    return;
  }
  auto check = [&](const char* key, const std::string& name) {
    if (name.empty() || has_signal(mm, name)) return;
    r.problem(std::string("modules.") + key, "signal '" + name + "' is in no module message of " +
                                                 fs::path(c.can.dbc_path).filename().string() +
                                                 did_you_mean(name, mm.signal_names));
  };
  check("module_voltage_signal", m.module_voltage_signal);
  check("max_temperature_signal", m.max_temperature_signal);
  check("min_temperature_signal", m.min_temperature_signal);
  check("current_signal", m.current_signal);
  // Every cell 1..cells (the rig skipped the last one: flaw 2); one problem lists the missing ones.
  std::string missing;
  int missing_count = 0;
  std::string first_missing;
  for (int k = 1; k <= m.cells; ++k) {
    std::string name = cell_signal(m.cell_voltage_signal, k);
    if (has_signal(mm, name)) continue;
    if (missing_count++ == 0) first_missing = name;
    if (missing_count <= 8) missing += (missing.empty() ? "" : ", ") + name;
  }
  if (missing_count > 0) {
    r.problem("modules.cell_voltage_signal",
              std::to_string(missing_count) + " of " + std::to_string(m.cells) +
                  " cell signals are in no module message: " + missing + (missing_count > 8 ? ", ..." : "") +
                  did_you_mean(first_missing, mm.signal_names));
  }
}

}  // namespace

std::string ConfigProblem::to_string() const {
  std::string out = file;
  if (line > 0) out += ":" + std::to_string(line) + ":" + std::to_string(column);
  out += ": ";
  if (!key.empty()) out += key + ": ";
  out += message;
  return out;
}

std::string ConfigCheck::to_string() const {
  std::string out;
  for (const auto& p : problems) {
    if (!out.empty()) out += '\n';
    out += p.to_string();
  }
  return out;
}

ConfigCheck parse_edge_config(std::string_view text, const std::string& path, EdgeConfig& out) {
  ConfigCheck check;
  out = EdgeConfig{};
  std::error_code ec;
  fs::path abs = fs::absolute(fs::path(path), ec);
  if (ec) abs = fs::path(path);
  abs = abs.lexically_normal();
  out.source_path = abs.string();
  out.sha256 = sha256_of(text);
  Reader r(path, check, out.key_locations);
  // toml++ recurses per level: a file nested deeper than any configuration is refused before it does.
  if (auto deep = check_toml_nesting(text)) {
    check.problems.push_back({path, deep->line, deep->column, "", deep->message});
    return check;
  }
  toml::table root;
  try {
    root = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    const auto& b = e.source().begin;
    check.problems.push_back(
        {path, static_cast<int>(b.line), static_cast<int>(b.column), "", std::string(e.description())});
    return check;
  } catch (const std::exception& e) {
    check.problems.push_back({path, 0, 0, "", std::string("cannot parse: ") + e.what()});
    return check;
  }
  parse_into(root, r, out, abs.parent_path());
  check_supervisor(r, out.safety);
  // In file order (missing keys sort at their table), as an editor would walk them.
  std::stable_sort(check.problems.begin(), check.problems.end(),
                   [](const ConfigProblem& a, const ConfigProblem& b) {
                     return std::pair(a.line, a.column) < std::pair(b.line, b.column);
                   });
  return check;
}

ConfigCheck load_edge_config(const std::string& path, EdgeConfig& out) {
  auto text = read_file(path);
  if (!text) {
    out = EdgeConfig{};
    ConfigCheck check;
    check.problems.push_back({path, 0, 0, "", text.error().message});
    return check;
  }
  return parse_edge_config(*text, path, out);
}

ConfigCheck check_edge_config(EdgeConfig& config) {
  ConfigCheck check;
  // Messages name the file as the user wrote it where possible; the absolute path is what we have.
  Reader r(config.source_path, check, config.key_locations);

  auto dbc = dbc::load_dbc(config.can.dbc_path);
  if (!dbc) {
    r.problem("can.dbc", "cannot load the DBC: " + dbc.error().message);
  } else {
    check_signals(r, config, dbc->database);
  }

  config.board.link.conversion.thermistor.clear();
  if (!config.board.thermistor_table_path.empty()) {
    auto text = read_file(config.board.thermistor_table_path);
    if (!text) {
      r.problem("board.thermistor_table", text.error().message);
    } else {
      auto table = devices::parse_thermistor_table(*text, config.board.thermistor_table_path);
      if (!table) {
        r.problem("board.thermistor_table", table.error().message);
      } else {
        config.board.link.conversion.thermistor = std::move(*table);
      }
    }
  }

  config.schedule.loaded.reset();
  if (!config.schedule.path.empty()) {
    auto s = schedule::load_schedule(config.schedule.path);
    if (!s) {
      r.problem("schedule.file", s.error().message);
    } else {
      const auto& l = config.inverter.client.limits;
      schedule::ScheduleLimits limits{l.charge_current_a, l.discharge_current_a, -l.charge_power_kw,
                                      l.charge_power_kw};
      auto v = schedule::validate_schedule(*s, limits);
      if (!v) {
        r.problem("schedule.file", v.error().message + " (limits from [inverter.limits])");
      } else {
        config.schedule.loaded = std::move(*s);
      }
    }
  }
  return check;
}

ConfigCheck apply_overrides(EdgeConfig& config, const EndpointOverrides& overrides) {
  ConfigCheck check;
  auto problem = [&](std::string key, std::string message) {
    check.problems.push_back({"command line", 0, 0, std::move(key), std::move(message)});
  };
  if (!overrides.can.empty()) {
    std::string why = bus_url_problem(overrides.can);
    if (!why.empty()) {
      problem("--can", "'" + overrides.can + "': " + why);
    } else {
      config.can.url = overrides.can;
    }
  }
  if (overrides.board == "none") {
    config.board.enabled = false;
    config.safety.board_expected = false;
  } else if (!overrides.board.empty()) {
    config.board.enabled = true;
    config.board.link.device = overrides.board;
    config.safety.board_expected = true;
  }
  if (overrides.inverter == "none") {
    config.inverter.enabled = false;
  } else if (!overrides.inverter.empty()) {
    auto ep = devices::parse_inverter_url(overrides.inverter);
    if (!ep) {
      problem("--inverter", ep.error().message);
    } else {
      config.inverter.enabled = true;
      config.inverter.url = overrides.inverter;
      config.inverter.client.endpoint = *ep;
    }
  }
  if (!overrides.gpio.empty()) {
    config.outputs.driver = OutputsSection::Driver::gpio;
    config.outputs.gpio.chip = overrides.gpio;
    if (!pins_unique(config.outputs.gpio.lines)) {
      problem("--gpio", "the file's [outputs.gpio] lines must give every output its own line");
    }
  }
  if (config.outputs.driver == OutputsSection::Driver::board && !config.board.enabled) {
    problem("--board", "the outputs are driven through the board; with no board use --gpio CHIP");
  }
  return check;
}

std::string sha256_hex(std::string_view bytes) { return sha256_of(bytes); }

}  // namespace cellguard::edge
