// The edge configuration against real files: data/edge/rig.toml, the project's DBC, temporary
// folders with copies, and (when CELLGUARD_SEED_DIR is set) the rig's own DBC.
#include "edge/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "core/text.h"

namespace cellguard::edge {
namespace {

namespace fs = std::filesystem;

std::string source_dir() {
  const char* dir = std::getenv("CELLGUARD_SOURCE_DIR");
  return dir ? dir : ".";
}
std::string rig_path() { return source_dir() + "/data/edge/rig.toml"; }
std::string rig_text() {
  auto text = read_file(rig_path());
  EXPECT_TRUE(text.ok());
  return text.ok() ? *text : std::string();
}

// 1-based line of the first occurrence of `needle` in `text`.
int line_of(const std::string& text, const std::string& needle) {
  auto at = text.find(needle);
  EXPECT_NE(at, std::string::npos) << needle;
  if (at == std::string::npos) return -1;
  return 1 + static_cast<int>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(at), '\n'));
}

// rig.toml with `from` replaced by `to` (must occur).
std::string rig_with(std::string text, const std::string& from, const std::string& to) {
  auto at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

// Parses as if the text were data/edge/rig.toml (so that relative paths work).
ConfigCheck parse_rig(const std::string& text, EdgeConfig& out) {
  return parse_edge_config(text, rig_path(), out);
}

const ConfigProblem* find_problem(const ConfigCheck& check, const std::string& key) {
  for (const auto& p : check.problems)
    if (p.key == key) return &p;
  return nullptr;
}

// Exactly one problem, at `key` on `line`, whose message contains `contains`.
void expect_one(const ConfigCheck& check, const std::string& key, int line,
                const std::string& contains = "") {
  ASSERT_EQ(check.problems.size(), 1u) << check.to_string();
  const auto& p = check.problems[0];
  EXPECT_EQ(p.key, key) << check.to_string();
  EXPECT_EQ(p.line, line) << check.to_string();
  EXPECT_GT(p.column, 0) << check.to_string();
  EXPECT_NE(p.message.find(contains), std::string::npos) << check.to_string();
}

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "cellguard-config-XXXXXX").string();
    char* made = ::mkdtemp(pattern.data());
    EXPECT_NE(made, nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  fs::path write(const std::string& name, const std::string& text) const {
    fs::path p = path_ / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << text;
    return p;
  }

 private:
  fs::path path_;
};

TEST(EdgeConfig, RigTomlLoadsAndChecksClean) {
  EdgeConfig c;
  auto check = load_edge_config(rig_path(), c);
  ASSERT_TRUE(check.ok()) << check.to_string();
  auto deep = check_edge_config(c);
  EXPECT_TRUE(deep.ok()) << deep.to_string();
  EXPECT_TRUE(fs::path(c.source_path).is_absolute());
  EXPECT_EQ(fs::path(c.can.dbc_path), fs::path(source_dir() + "/data/cellguard-rig.dbc").lexically_normal());
  EXPECT_EQ(fs::path(c.schedule.path).filename(), "schedule-current-example.csv");
  EXPECT_TRUE(fs::path(c.schedule.path).is_absolute());
  EXPECT_TRUE(c.schedule.loaded.has_value());
  EXPECT_EQ(c.sha256.size(), 64u);
  // Issue 12: the inverter's freshness bounds and the operator socket's group.
  EXPECT_EQ(c.safety.inverter_readings_timeout_ns, std::chrono::seconds(2));
  EXPECT_EQ(c.safety.inverter_heartbeat_timeout_ns, std::chrono::seconds(2));
  EXPECT_EQ(c.operator_interface.group, "");
}

TEST(EdgeConfig, RigTomlReproducesTheRig) {
  EdgeConfig c;
  auto check = load_edge_config(rig_path(), c);
  ASSERT_TRUE(check.ok()) << check.to_string();
  const auto rig = safety::rig_defaults();
  for (std::size_t i = 0; i < safety::kQuantityCount; ++i) {
    SCOPED_TRACE(safety::to_string(static_cast<safety::Quantity>(i)));
    const auto& a = c.safety.rules[i];
    const auto& b = rig.rules[i];
    EXPECT_EQ(a.warning_high, b.warning_high);
    EXPECT_EQ(a.dangerous_high, b.dangerous_high);
    EXPECT_EQ(a.warning_low, b.warning_low);
    EXPECT_EQ(a.dangerous_low, b.dangerous_low);
    EXPECT_EQ(a.hysteresis, b.hysteresis);
    EXPECT_EQ(a.warning_debounce_ns, b.warning_debounce_ns);
    EXPECT_EQ(a.dangerous_debounce_ns, b.dangerous_debounce_ns);
  }
  // 8 modules fitted in the sample log (rig_defaults counts the 15 slots).
  EXPECT_EQ(c.safety.expected_module_count, 8);
  EXPECT_EQ(c.modules.expected, 8);
  EXPECT_EQ(c.safety.stale_sync_cycles, rig.stale_sync_cycles);
  EXPECT_EQ(c.safety.dangerous_sync_cycles, rig.dangerous_sync_cycles);
  EXPECT_EQ(c.safety.dangerous_silence_ns, rig.dangerous_silence_ns);
  EXPECT_EQ(c.safety.board_timeout_ns, rig.board_timeout_ns);
  EXPECT_EQ(c.safety.board_expected, rig.board_expected);
  EXPECT_EQ(c.safety.inverter_failure_limit, rig.inverter_failure_limit);
  EXPECT_EQ(c.safety.contactor_open_current_a, rig.contactor_open_current_a);
  EXPECT_EQ(c.safety.contactor_max_delay_ns, rig.contactor_max_delay_ns);
  EXPECT_EQ(c.safety.hot_c, rig.hot_c);
  EXPECT_EQ(c.safety.cooled_c, rig.cooled_c);
  EXPECT_EQ(c.safety.nudge_current_a, rig.nudge_current_a);
  EXPECT_EQ(c.safety.precharge.relays.precharge, rig.precharge.relays.precharge);
  EXPECT_EQ(c.safety.precharge.relays.main_positive, rig.precharge.relays.main_positive);
  EXPECT_EQ(c.safety.precharge.relays.main_negative, rig.precharge.relays.main_negative);
  EXPECT_EQ(c.safety.precharge.match_tolerance_v, rig.precharge.match_tolerance_v);
  EXPECT_EQ(c.safety.precharge.timeout_ns, rig.precharge.timeout_ns);
  EXPECT_EQ(c.safety.precharge.retry_delay_ns, rig.precharge.retry_delay_ns);
  EXPECT_EQ(c.safety.precharge.max_attempts, rig.precharge.max_attempts);
  EXPECT_TRUE(safety::validate(c.safety).empty());

  // Devices and CAN as on the rig (seed-rig.md).
  EXPECT_EQ(c.edge_id, "rig");
  EXPECT_EQ(c.can.url, "socketcan:can0");
  EXPECT_EQ(c.can.sync_period_ns, std::chrono::milliseconds(100));
  EXPECT_EQ(c.can.sync_id, 0x080u);
  EXPECT_EQ(c.can.sdo_request_base, 0x600u);
  ASSERT_EQ(c.can.startup_sdo.size(), 1u);
  EXPECT_EQ(c.can.startup_sdo[0], (std::vector<std::uint8_t>{0x2F, 0x05, 0x18, 0x01, 0, 0, 0, 0}));
  EXPECT_EQ(c.modules.discovery, ModulesSection::Discovery::canopen);
  EXPECT_EQ(c.modules.cells, 12);
  EXPECT_EQ(c.modules.pdo_bases, ModulesSection{}.pdo_bases);
  EXPECT_EQ(c.board.link.device, "/dev/ttyACM0");
  EXPECT_EQ(c.board.link.baud, 9600u);
  EXPECT_EQ(c.outputs.driver, OutputsSection::Driver::board);
  EXPECT_EQ(c.outputs.board_pins, devices::kRigBoardPins);
  EXPECT_TRUE(c.inverter.enabled);
  EXPECT_EQ(c.inverter.client.endpoint.transport, devices::InverterEndpoint::Transport::rtu);
  EXPECT_EQ(c.inverter.client.endpoint.device, "/dev/ttyUSB0");
  EXPECT_EQ(c.inverter.client.endpoint.baud, 19200u);
  EXPECT_EQ(c.inverter.client.endpoint.slave, 2);
  const devices::InverterLimits limits;
  EXPECT_EQ(c.inverter.client.limits.charge_current_a, limits.charge_current_a);
  EXPECT_EQ(c.inverter.client.limits.discharge_current_a, limits.discharge_current_a);
  EXPECT_EQ(c.inverter.client.limits.charge_power_kw, limits.charge_power_kw);
  EXPECT_EQ(c.inverter.client.limits.max_voltage_v, limits.max_voltage_v);
  EXPECT_EQ(c.inverter.client.limits.min_voltage_v, limits.min_voltage_v);
  const devices::InverterRegisterMap map;
  const auto& reg = c.inverter.client.registers;
  EXPECT_EQ(reg.security_code, map.security_code);
  EXPECT_EQ(reg.heartbeat, map.heartbeat);
  EXPECT_EQ(reg.bat_max_charge_power, map.bat_max_charge_power);
  EXPECT_EQ(reg.battery_voltage, map.battery_voltage);
  EXPECT_EQ(reg.fault_first, map.fault_first);
  EXPECT_EQ(reg.discharged_kwh_high, map.discharged_kwh_high);
  EXPECT_EQ(reg.power_limit, map.power_limit);
  EXPECT_EQ(reg.current_scale, map.current_scale);
  EXPECT_EQ(reg.security_value, map.security_value);
  EXPECT_EQ(reg.mode_voltage, map.mode_voltage);
  EXPECT_EQ(c.inverter.client.heartbeat_timeout_ns, std::chrono::seconds(2));
  EXPECT_EQ(c.inverter.client.startup_settle_timeout_ns, std::chrono::seconds(35));
  EXPECT_EQ(c.schedule.at_end, schedule::EndAction::loop);
  EXPECT_EQ(c.schedule.readback_tolerance, 0.5);
  EXPECT_EQ(c.schedule.readback_timeout_ns, std::chrono::seconds(10));
}

TEST(EdgeConfig, BoardWriterAndPrechargeSettleFollowTheBoard) {
  EdgeConfig c;
  auto check = parse_rig(rig_text(), c);
  ASSERT_TRUE(check.ok()) << check.to_string();
  EXPECT_EQ(c.board.link.protocol, devices::BoardProtocol::automatic);
  EXPECT_EQ(c.board.link.writer.max_command_bytes, 30u);
  EXPECT_EQ(c.board.link.writer.send_window_ns, std::chrono::milliseconds(600));
  EXPECT_EQ(c.safety.precharge.settle_ns, std::chrono::milliseconds(2500));  // 2.5 cycles of the rig's sketch
  EdgeConfig slow;
  std::string text = rig_with(rig_with(rig_text(), "cycle_ms = 1000", "cycle_ms = 2000"),
                              "protocol = \"auto\"", "protocol = \"rig-sketch\"");
  ASSERT_TRUE(parse_rig(text, slow).ok());
  EXPECT_EQ(slow.board.link.protocol, devices::BoardProtocol::rig_sketch);
  EXPECT_EQ(slow.safety.precharge.settle_ns, std::chrono::seconds(5));
  EdgeConfig firmware;
  ASSERT_TRUE(
      parse_rig(rig_with(rig_text(), "protocol = \"auto\"", "protocol = \"cellguard\""), firmware).ok());
  EXPECT_EQ(firmware.safety.precharge.settle_ns, Duration::zero());
}

TEST(EdgeConfig, SyntaxErrorIsLocated) {
  EdgeConfig c;
  std::string text = rig_with(rig_text(), "[board]", "[board");
  auto check = parse_rig(text, c);
  ASSERT_EQ(check.problems.size(), 1u) << check.to_string();
  EXPECT_EQ(check.problems[0].line, line_of(text, "[board"));
  EXPECT_NE(check.to_string().find("rig.toml:" + std::to_string(line_of(text, "[board"))), std::string::npos)
      << check.to_string();
}

TEST(EdgeConfig, StringWhereNumberIsAnError) {
  EdgeConfig c;
  std::string text = rig_with(rig_text(), "sync_period_ms = 100", "sync_period_ms = \"100\"");
  expect_one(parse_rig(text, c), "can.sync_period_ms", line_of(text, "sync_period_ms ="),
             "expected a number");
}

TEST(EdgeConfig, IntegerWhereFloatIsFineButNotTheReverse) {
  EdgeConfig c;
  // supply_v is a float in rig.toml; an integer is fine.
  auto ok = parse_rig(rig_with(rig_text(), "supply_v = 5.0", "supply_v = 5"), c);
  EXPECT_TRUE(ok.ok()) << ok.to_string();
  EXPECT_EQ(c.board.link.conversion.supply_v, 5.0);
  std::string text = rig_with(rig_text(), "cells = 12", "cells = 12.0");
  expect_one(parse_rig(text, c), "modules.cells", line_of(text, "cells = 12.0"), "expected an integer");
}

TEST(EdgeConfig, UnknownKeySuggestsTheKnownOne) {
  EdgeConfig c;
  std::string text = rig_with(rig_text(), "hysteresis = 0.02", "hysterisis = 0.02");
  expect_one(parse_rig(text, c), "safety.limits.cell_voltage.hysterisis", line_of(text, "hysterisis"),
             "did you mean 'hysteresis'?");
}

TEST(EdgeConfig, UnknownTableSuggestsTheQuantity) {
  EdgeConfig c;
  std::string text = rig_with(rig_text(), "[safety.limits.module_voltage]", "[safety.limits.module_votlage]");
  auto check = parse_rig(text, c);
  auto* p = find_problem(check, "safety.limits.module_votlage");
  ASSERT_NE(p, nullptr) << check.to_string();
  EXPECT_NE(p->message.find("did you mean 'module_voltage'?"), std::string::npos) << check.to_string();
  EXPECT_EQ(p->line, line_of(text, "[safety.limits.module_votlage]"));
}

TEST(EdgeConfig, RangesAreChecked) {
  struct Case {
    std::string from, to, key, contains;
  };
  const std::vector<Case> cases{
      {"cells = 12", "cells = 65", "modules.cells", "out of range"},
      {"0x390, 0x490]", "0x390, 0x390]", "modules.pdo_bases[7]", "duplicate"},
      {"expected = 8", "expected = 0", "modules.expected", "out of range"},
      {"baud = 9600", "baud = 9601", "board.baud", "standard"},
      {"pump = 6", "pump = 64", "outputs.pins.pump", "out of range"},
      {"relay3 = 4", "relay3 = 6", "outputs.pins.relay3", "also pump"},
      {"heartbeat_period_ms = 500", "heartbeat_period_ms = 1000", "inverter.heartbeat_period_ms", "half"},
      {"heartbeat_timeout_ms = 2000", "heartbeat_timeout_ms = 2050", "inverter.heartbeat_timeout_ms",
       "multiple"},
      {"poll_period_ms = 200", "poll_period_ms = 0", "inverter.poll_period_ms", "out of range"},
      {"readings_timeout_ms = 2000", "readings_timeout_ms = 200", "inverter.readings_timeout_ms",
       "longer than poll_period_ms"},
      {"heartbeat_ack_timeout_ms = 2000", "heartbeat_ack_timeout_ms = 500",
       "inverter.heartbeat_ack_timeout_ms", "longer than heartbeat_period_ms"},
      {"dangerous_cycles = 10", "dangerous_cycles = 2", "modules.dangerous_cycles", "stale_cycles"},
      {"sync_id = 0x080", "sync_id = 0x800", "can.sync_id", "out of range"},
      {"at_end = \"loop\"", "at_end = \"lop\"", "schedule.at_end", "did you mean 'loop'"},
      {"cooled_c = 29", "cooled_c = 31", "safety.cooled_c", "below hot_c"},
      {"id = \"rig\"", "id = \"my rig/1\"", "edge.id", "must be"},
      {"name_pattern = \"BMU{id}_\"", "name_pattern = \"BMU_\"", "modules.name_pattern", "{id}"},
      {"\"2F 05 18 01 00 00 00 00\"", "\"2F 05 18 01 00 00 00 00 00\"", "can.startup_sdo[0]", "hex bytes"},
      {"protocol = \"auto\"", "protocol = \"rig\"", "board.protocol", "rig-sketch"},
      {"cycle_ms = 1000", "cycle_ms = 50", "board.cycle_ms", "100 .. 10000"},
      {"max_command_bytes = 30", "max_command_bytes = 4", "board.max_command_bytes", "8 .. 64"},
      {"readback_retries = 2", "readback_retries = 11", "board.readback_retries", "0 .. 10"},
  };
  for (const auto& k : cases) {
    SCOPED_TRACE(k.to);
    EdgeConfig c;
    std::string text = rig_with(rig_text(), k.from, k.to);
    expect_one(parse_rig(text, c), k.key, line_of(text, k.to), k.contains);
  }
}

TEST(EdgeConfig, WarningOutsideDangerousNamesTheKey) {
  EdgeConfig c;
  std::string text = rig_with(rig_text(), "warning_high = 4.1", "warning_high = 4.3");
  expect_one(parse_rig(text, c), "safety.limits.cell_voltage.warning_high",
             line_of(text, "warning_high = 4.3"), "not inside the dangerous limit 4.2");
  text = rig_with(rig_text(), "warning_low = 34", "warning_low = 32");
  expect_one(parse_rig(text, c), "safety.limits.module_voltage.warning_low",
             line_of(text, "warning_low = 32"), "dangerous");
}

TEST(EdgeConfig, HysteresisMustBeSmallerThanTheGap) {
  EdgeConfig c;
  std::string text = rig_with(rig_text(), "hysteresis = 0.02", "hysteresis = 0.1");
  expect_one(parse_rig(text, c), "safety.limits.cell_voltage.hysteresis", line_of(text, "hysteresis = 0.1"),
             "gap");
  text = rig_with(rig_text(), "hysteresis = 0.02", "hysteresis = -0.1");
  expect_one(parse_rig(text, c), "safety.limits.cell_voltage.hysteresis", line_of(text, "hysteresis = -0.1"),
             "out of range");
}

// Issue 14 item 3: safety::validate() is the one check of the supervisor's settings; each of its
// problems is reported at the key that sets the field it names (file, line, key).
TEST(EdgeConfig, EverySupervisorSettingHasAKeyInTheFile) {
  // Every key a validate() problem can point at is one the reader takes from rig.toml.
  EdgeConfig c;
  std::string text = rig_with(rig_text(), "# settle_ms = 2500", "settle_ms = 2500");
  ASSERT_TRUE(parse_rig(text, c).ok());
  int fields = 0;
  for (int i = 0; i < 256; ++i) {
    const auto field = static_cast<safety::ConfigField>(i);
    if (safety::to_string(field) == "?") break;
    ++fields;
    for (auto q : {safety::Quantity::cell_voltage, safety::Quantity::inverter_battery_voltage}) {
      if (!safety::is_rule_field(field) && q != safety::Quantity::cell_voltage) continue;
      const std::string key = supervisor_setting_key(field, q);
      EXPECT_EQ(c.key_locations.count(key), 1u) << safety::to_string(field) << " -> " << key;
    }
  }
  EXPECT_EQ(fields, static_cast<int>(safety::ConfigField::settle_ns) + 1);
}

// The line of the first `needle` after `after` in `text`.
int line_after(const std::string& text, const std::string& after, const std::string& needle) {
  auto start = text.find(after);
  EXPECT_NE(start, std::string::npos) << after;
  auto at = text.find(needle, start == std::string::npos ? 0 : start);
  EXPECT_NE(at, std::string::npos) << needle;
  if (at == std::string::npos) return -1;
  return 1 + static_cast<int>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(at), '\n'));
}

TEST(EdgeConfig, SupervisorProblemsPointAtTheirKey) {
  using F = safety::ConfigField;
  using Q = safety::Quantity;
  struct Case {
    std::vector<std::pair<std::string, std::string>> edits;  // from -> to, in order
    F field;
    Q quantity;
    std::string table, needle;  // the key's line: the first `needle` after `table`
    std::string contains;
  };
  const std::string temperature = "[safety.limits.module_max_temperature]";
  const std::vector<Case> cases{
      {{{"warning_high = 4.1", "warning_high = 4.3"}},
       F::warning_high,
       Q::cell_voltage,
       "",
       "warning_high = 4.3",
       "4.3 is not inside the dangerous limit 4.2 (must be below dangerous_high)"},
      {{{"warning_low = 34", "warning_low = 32"}},
       F::warning_low,
       Q::module_voltage,
       "",
       "warning_low = 32",
       "must be above dangerous_low"},
      {{{"hysteresis = 0.02", "hysteresis = 0.1"}},
       F::hysteresis,
       Q::cell_voltage,
       "",
       "hysteresis = 0.1",
       "0.1 must be smaller than the gap warning_low - dangerous_low (0.1)"},
      {{{temperature, temperature + "\nwarning_low = 29.5"}},
       F::hysteresis,
       Q::module_max_temperature,
       temperature,
       "hysteresis",
       "smaller than the normal band (0.5)"},
      {{{temperature, temperature + "\ndangerous_low = 60"}},
       F::dangerous_low,
       Q::module_max_temperature,
       "",
       "dangerous_low = 60",
       "60 must be below the high threshold 30"},
      {{{"dangerous_cycles = 10", "dangerous_cycles = 3"}},
       F::dangerous_sync_cycles,
       Q::cell_voltage,
       "",
       "dangerous_cycles = 3",
       "must be greater than stale_cycles (3)"},
      {{{"cooled_c = 29", "cooled_c = 30.5"}},
       F::cooled_c,
       Q::cell_voltage,
       "",
       "cooled_c = 30.5",
       "must be below hot_c (30)"},
      {{{"main_positive_relay = \"relay1\"", "main_positive_relay = \"relay3\""}},
       F::main_positive_relay,
       Q::cell_voltage,
       "",
       "main_positive_relay = \"relay3\"",
       "relay3 is already the precharge relay"},
      {{{"main_negative_relay = \"relay2\"", "main_negative_relay = \"relay1\""}},
       F::main_negative_relay,
       Q::cell_voltage,
       "",
       "main_negative_relay = \"relay1\"",
       "relay1 already has another role"},
      // A key with a problem of its own (out of range, so not taken) is not reported twice.
      {{{"stale_cycles = 3", "stale_cycles = 20"}, {"dangerous_cycles = 10", "dangerous_cycles = 0"}},
       F::dangerous_sync_cycles,
       Q::cell_voltage,
       "",
       "dangerous_cycles = 0",
       "out of range"},
  };
  for (const auto& k : cases) {
    SCOPED_TRACE(k.edits.back().second);
    std::string text = rig_text();
    for (const auto& [from, to] : k.edits) text = rig_with(text, from, to);
    EdgeConfig c;
    const int line = k.table.empty() ? line_of(text, k.needle) : line_after(text, k.table, k.needle);
    expect_one(parse_rig(text, c), supervisor_setting_key(k.field, k.quantity), line, k.contains);
  }
}

TEST(EdgeConfig, RelayRolesMustDiffer) {
  EdgeConfig c;
  std::string text =
      rig_with(rig_text(), "main_negative_relay = \"relay2\"", "main_negative_relay = \"relay1\"");
  expect_one(parse_rig(text, c), "safety.precharge.main_negative_relay",
             line_of(text, "main_negative_relay ="), "another role");
  text = rig_with(rig_text(), "precharge_relay = \"relay3\"", "precharge_relay = \"relay4\"");
  expect_one(parse_rig(text, c), "safety.precharge.precharge_relay", line_of(text, "precharge_relay ="),
             "relay3");
}

TEST(EdgeConfig, LimitsMustBeConsistent) {
  EdgeConfig c;
  std::string text = rig_with(rig_text(), "charge_current_a = -100", "charge_current_a = 10");
  expect_one(parse_rig(text, c), "inverter.limits.charge_current_a", line_of(text, "charge_current_a = 10"),
             "<= 0");
  text = rig_with(rig_text(), "min_voltage_v = 264", "min_voltage_v = 390");
  expect_one(parse_rig(text, c), "inverter.limits.min_voltage_v", line_of(text, "min_voltage_v = 390"),
             "below max_voltage_v");
  // The converter must not be allowed into the supervisor's dangerous band.
  text = rig_with(rig_text(), "max_voltage_v = 384", "max_voltage_v = 395");
  expect_one(parse_rig(text, c), "inverter.limits.max_voltage_v", line_of(text, "max_voltage_v = 395"),
             "dangerous_high");
  text = rig_with(rig_text(), "charge_power_kw = 30", "charge_power_kw = 200");
  expect_one(parse_rig(text, c), "inverter.limits.charge_power_kw", line_of(text, "charge_power_kw = 200"),
             "16-bit");
}

TEST(EdgeConfig, UrlsMustParse) {
  EdgeConfig c;
  std::string text = rig_with(rig_text(), "url = \"socketcan:can0\"", "url = \"can0\"");
  expect_one(parse_rig(text, c), "can.url", line_of(text, "url = \"can0\""), "scheme");
  text = rig_with(rig_text(), "url = \"socketcan:can0\"", "url = \"socketcand://localhost/can0\"");
  expect_one(parse_rig(text, c), "can.url", line_of(text, "socketcand://"), "PORT");
  text = rig_with(rig_text(), "url = \"socketcan:can0\"", "url = \"socketcand://localhost:29536/can0\"");
  EXPECT_TRUE(parse_rig(text, c).ok());
  text = rig_with(rig_text(), "url = \"socketcan:can0\"", "url = \"inproc:rig\"");
  EXPECT_TRUE(parse_rig(text, c).ok());
  text = rig_with(rig_text(), "url = \"socketcan:can0\"", "url = \"replay:rig.log?speed=10\"");
  EXPECT_TRUE(parse_rig(text, c).ok());
  text = rig_with(rig_text(), "url = \"socketcan:can0\"", "url = \"replay:\"");
  expect_one(parse_rig(text, c), "can.url", line_of(text, "url = \"replay:\""), "log file");
  text =
      rig_with(rig_text(), "url = \"rtu:/dev/ttyUSB0?baud=19200&slave=2\"", "url = \"modbus:/dev/ttyUSB0\"");
  auto check = parse_rig(text, c);
  ASSERT_EQ(check.problems.size(), 1u) << check.to_string();
  EXPECT_EQ(check.problems[0].key, "inverter.url");
  EXPECT_EQ(check.problems[0].line, line_of(text, "modbus:"));
  text = rig_with(rig_text(), "url = \"rtu:/dev/ttyUSB0?baud=19200&slave=2\"",
                  "url = \"tcp:localhost:1502?slave=2\"");
  check = parse_rig(text, c);
  EXPECT_TRUE(check.ok()) << check.to_string();
  EXPECT_EQ(c.inverter.client.endpoint.transport, devices::InverterEndpoint::Transport::tcp);
  EXPECT_EQ(c.inverter.client.endpoint.port, 1502);
}

TEST(EdgeConfig, RegisterMapMustBeCompleteAndDistinct) {
  EdgeConfig c;
  std::string text = rig_with(rig_text(), "power_limit = 30285\n", "");
  expect_one(parse_rig(text, c), "inverter.registers.power_limit", line_of(text, "[inverter.registers]"),
             "register map must be complete");
  text = rig_with(rig_with(rig_text(), "power_limit = 30285\n", ""), "status = 30279\n", "");
  expect_one(parse_rig(text, c), "inverter.registers", line_of(text, "[inverter.registers]"),
             "missing status, power_limit");
  // fault_first spans 4 words: 30273 is inside it.
  text = rig_with(rig_text(), "warning_first = 30276", "warning_first = 30273");
  expect_one(parse_rig(text, c), "inverter.registers.warning_first", line_of(text, "warning_first = 30273"),
             "overlaps fault_first");
  text = rig_with(rig_text(), "heatsink_temp = 30257", "heatsink_temp = 30256");
  expect_one(parse_rig(text, c), "inverter.registers.heatsink_temp", line_of(text, "heatsink_temp = 30256"),
             "overlaps ambient_temp");
}

// Issue 14 item 2: the device model is chosen in [inverter]; the rig's map tables belong to "rig" only.
TEST(EdgeConfig, InverterModelSelectsTheDevice) {
  EdgeConfig c;
  ASSERT_TRUE(parse_rig(rig_text(), c).ok());
  EXPECT_EQ(c.inverter.model, devices::PowerDeviceModel::rig);
  // Without the rig's map tables, "sunspec" loads clean.
  std::string text = rig_text();
  text = text.substr(0, text.find("[inverter.registers]")) + text.substr(text.find("[inverter.codes]"));
  text = text.substr(0, text.find("[inverter.codes]")) +
         text.substr(text.find("\n[", text.find("[inverter.codes]")) + 1);
  text = rig_with(text, "[inverter]", "[inverter]\nmodel = \"sunspec\"");
  EdgeConfig sunspec;
  auto check = parse_rig(text, sunspec);
  EXPECT_TRUE(check.ok()) << check.to_string();
  EXPECT_EQ(sunspec.inverter.model, devices::PowerDeviceModel::sunspec);
  // With them, each is named.
  EdgeConfig mixed;
  std::string with_map = rig_with(rig_text(), "[inverter]", "[inverter]\nmodel = \"sunspec\"");
  auto problems = parse_rig(with_map, mixed);
  for (const char* key : {"inverter.registers", "inverter.scales", "inverter.codes"}) {
    auto* p = find_problem(problems, key);
    ASSERT_NE(p, nullptr) << key << "\n" << problems.to_string();
    EXPECT_NE(p->message.find("applies to model \"rig\" only"), std::string::npos) << p->message;
  }
  text = rig_with(rig_text(), "[inverter]", "[inverter]\nmodel = \"sunspek\"");
  auto wrong = parse_rig(text, mixed);
  auto* p = find_problem(wrong, "inverter.model");
  ASSERT_NE(p, nullptr) << wrong.to_string();
  EXPECT_NE(p->message.find("did you mean 'sunspec'"), std::string::npos) << p->message;
}

TEST(EdgeConfig, MissingRequiredParts) {
  EdgeConfig c;
  std::string text = rig_with(rig_text(), "dbc = \"../cellguard-rig.dbc\"", "");
  expect_one(parse_rig(text, c), "can.dbc", line_of(text, "[can]"), "required");
  text = rig_with(rig_text(), "dangerous_high = 4.2", "");
  auto check = parse_rig(text, c);
  EXPECT_NE(find_problem(check, "safety.limits.cell_voltage"), nullptr) << check.to_string();
}

TEST(EdgeConfig, EveryProblemIsReportedAtOnce) {
  EdgeConfig c;
  std::string text = rig_text();
  text = rig_with(text, "cells = 12", "cells = 0");
  text = rig_with(text, "baud = 9600", "baud = \"fast\"");
  text = rig_with(text, "warning_high = 4.1", "warning_high = 4.5");
  text = rig_with(text, "hot_c = 30", "hot_C = 30");
  text = rig_with(text, "relay2 = 3", "relay2 = 5");
  auto check = parse_rig(text, c);
  EXPECT_FALSE(check.ok());
  for (const char* key : {"modules.cells", "board.baud", "safety.limits.cell_voltage.warning_high",
                          "safety.hot_C", "outputs.pins.relay2"}) {
    EXPECT_NE(find_problem(check, key), nullptr) << key << "\n" << check.to_string();
  }
  EXPECT_EQ(check.problems.size(), 5u) << check.to_string();
  // One line per problem, each "file:line:column: key: message" (the column of the value).
  const std::string all = check.to_string();
  EXPECT_EQ(std::count(all.begin(), all.end(), '\n'), 4);
  EXPECT_NE(all.find("rig.toml:" + std::to_string(line_of(text, "cells = 0")) + ":9: modules.cells: "),
            std::string::npos)
      << all;
}

// A minimal configuration in a temporary folder, with relative paths.
std::string temp_config(const std::string& dbc, const std::string& extra = "") {
  return "[can]\ndbc = \"" + dbc + "\"\n" + extra +
         "\n[safety.limits.cell_voltage]\ndangerous_high = 4.2\ndangerous_low = 2.7\n"
         "[safety.limits.module_max_temperature]\ndangerous_high = 50\n";
}

TEST(EdgeConfig, RelativePathsAreResolvedAgainstTheFilesFolder) {
  TempDir dir;
  auto dbc = read_file(source_dir() + "/data/cellguard-rig.dbc");
  ASSERT_TRUE(dbc.ok());
  dir.write("dbc/rig.dbc", *dbc);
  dir.write("conf/thermistor.csv", "Temperature [C],Resistance [Ohm]\n-10,50000\n25,10000\n80,1200\n");
  dir.write("conf/sched.csv", "Interval [s],Current [A]\n10,-5\n10,5\n");
  auto path = dir.write("conf/edge.toml", temp_config("../dbc/rig.dbc",
                                                      "[board]\nthermistor_table = \"thermistor.csv\"\n"
                                                      "[schedule]\nfile = \"sched.csv\"\n"
                                                      "[recording]\npath = \"rec/edge.sqlite\"\n"));
  // From another working folder: nothing may depend on it.
  auto cwd = fs::current_path();
  fs::current_path(fs::temp_directory_path());
  EdgeConfig c;
  auto check = load_edge_config(path.string(), c);
  fs::current_path(cwd);
  ASSERT_TRUE(check.ok()) << check.to_string();
  EXPECT_EQ(fs::path(c.can.dbc_path), (dir.path() / "dbc/rig.dbc").lexically_normal());
  EXPECT_EQ(fs::path(c.recording.path), (dir.path() / "conf/rec/edge.sqlite").lexically_normal());
  auto deep = check_edge_config(c);
  EXPECT_TRUE(deep.ok()) << deep.to_string();
  ASSERT_EQ(c.board.link.conversion.thermistor.size(), 3u);
  EXPECT_EQ(c.board.link.conversion.thermistor[1].resistance_ohm, 10000);
  ASSERT_TRUE(c.schedule.loaded.has_value());
  EXPECT_EQ(c.schedule.loaded->steps.size(), 2u);
}

TEST(EdgeConfig, StageTwoNamesTheKeyThatNamedTheFile) {
  TempDir dir;
  auto dbc = read_file(source_dir() + "/data/cellguard-rig.dbc");
  ASSERT_TRUE(dbc.ok());
  dir.write("rig.dbc", *dbc);
  dir.write("sched.csv", "Interval [s],Current [A]\n10,-5\n10,150\n");  // beyond discharge 100 A
  std::string text = temp_config("rig.dbc",
                                 "[modules]\ncell_voltage_signal = \"Cell{cell}_Voltage\"\n"
                                 "current_signal = \"CMA_Curent\"\n"
                                 "[board]\nthermistor_table = \"missing.csv\"\n"
                                 "[schedule]\nfile = \"sched.csv\"\n");
  auto path = dir.write("edge.toml", text);
  EdgeConfig c;
  auto check = load_edge_config(path.string(), c);
  ASSERT_TRUE(check.ok()) << check.to_string();
  auto deep = check_edge_config(c);
  EXPECT_EQ(deep.problems.size(), 4u) << deep.to_string();
  auto* cells = find_problem(deep, "modules.cell_voltage_signal");
  ASSERT_NE(cells, nullptr) << deep.to_string();
  EXPECT_EQ(cells->line, line_of(text, "cell_voltage_signal"));
  EXPECT_NE(cells->message.find("12 of 12"), std::string::npos) << cells->message;
  EXPECT_NE(cells->message.find("did you mean 'Cell_1_Voltage'"), std::string::npos) << cells->message;
  auto* current = find_problem(deep, "modules.current_signal");
  ASSERT_NE(current, nullptr) << deep.to_string();
  EXPECT_NE(current->message.find("did you mean 'CMA_Current'"), std::string::npos) << current->message;
  auto* table = find_problem(deep, "board.thermistor_table");
  ASSERT_NE(table, nullptr) << deep.to_string();
  EXPECT_EQ(table->line, line_of(text, "thermistor_table"));
  auto* sched = find_problem(deep, "schedule.file");
  ASSERT_NE(sched, nullptr) << deep.to_string();
  EXPECT_EQ(sched->line, line_of(text, "file = "));
  EXPECT_FALSE(c.schedule.loaded.has_value());

  // A DBC that does not load is reported at can.dbc.
  EdgeConfig c2;
  auto path2 = dir.write("other.toml", temp_config("nowhere.dbc"));
  ASSERT_TRUE(load_edge_config(path2.string(), c2).ok());
  auto deep2 = check_edge_config(c2);
  ASSERT_EQ(deep2.problems.size(), 1u) << deep2.to_string();
  EXPECT_EQ(deep2.problems[0].key, "can.dbc");
  EXPECT_EQ(deep2.problems[0].line, 2);
}

TEST(EdgeConfig, MoreCellsThanTheDbcHas) {
  EdgeConfig c;
  auto check = parse_rig(rig_with(rig_text(), "cells = 12", "cells = 16"), c);
  ASSERT_TRUE(check.ok()) << check.to_string();
  auto deep = check_edge_config(c);
  auto* p = find_problem(deep, "modules.cell_voltage_signal");
  ASSERT_NE(p, nullptr) << deep.to_string();
  EXPECT_NE(p->message.find("Cell_15_Voltage, Cell_16_Voltage"), std::string::npos) << p->message;
}

TEST(EdgeConfig, NamePatternDiscoveryFindsTheModules) {
  EdgeConfig c;
  auto check = parse_rig(rig_with(rig_text(), "discovery = \"canopen\"", "discovery = \"name_pattern\""), c);
  ASSERT_TRUE(check.ok()) << check.to_string();
  EXPECT_EQ(c.modules.discovery, ModulesSection::Discovery::name_pattern);
  auto deep = check_edge_config(c);
  EXPECT_TRUE(deep.ok()) << deep.to_string();
  check = parse_rig(rig_with(rig_with(rig_text(), "discovery = \"canopen\"", "discovery = \"name_pattern\""),
                             "name_pattern = \"BMU{id}_\"", "name_pattern = \"CMA{id}_\""),
                    c);
  ASSERT_TRUE(check.ok()) << check.to_string();
  deep = check_edge_config(c);
  ASSERT_EQ(deep.problems.size(), 1u) << deep.to_string();
  EXPECT_EQ(deep.problems[0].key, "modules.name_pattern");
}

TEST(EdgeConfig, SeedDbcWorksWithItsSignalNames) {
  const char* seed = std::getenv("CELLGUARD_SEED_DIR");
  if (!seed || !*seed) GTEST_SKIP() << "CELLGUARD_SEED_DIR not set";
  std::string dbc = std::string(seed) + "/Goodwood_15BMUs_IFSpecV3_Node.dbc";
  TempDir dir;
  // The seed DBC names the supervised signals as the rig's; all 14 cell channels exist.
  auto path = dir.write("seed.toml", temp_config(dbc,
                                                 "[modules]\ncells = 14\n"
                                                 "[board]\nthermistor_table = \"" +
                                                     std::string(seed) + "/thermistor-TempSensor.csv\"\n"));
  EdgeConfig c;
  auto check = load_edge_config(path.string(), c);
  ASSERT_TRUE(check.ok()) << check.to_string();
  auto deep = check_edge_config(c);
  EXPECT_TRUE(deep.ok()) << deep.to_string();
  EXPECT_FALSE(c.board.link.conversion.thermistor.empty());
  // By name pattern too; its per-cell SOC signals are named Cell01_SOC .. Cell14_SOC (no {cell} padding
  // support): a config asking for Cell{cell}_SOC misses 1..9 and is told so.
  path = dir.write("seed2.toml", temp_config(dbc,
                                             "[modules]\ndiscovery = \"name_pattern\"\n"
                                             "cell_voltage_signal = \"Cell{cell}_SOC\"\ncells = 14\n"));
  ASSERT_TRUE(load_edge_config(path.string(), c).ok());
  deep = check_edge_config(c);
  ASSERT_EQ(deep.problems.size(), 1u) << deep.to_string();
  EXPECT_NE(deep.problems[0].message.find("9 of 14"), std::string::npos) << deep.to_string();
}

TEST(EdgeConfig, HashIsStableAndChangesWithOneByte) {
  EdgeConfig a, b, d;
  std::string text = rig_text();
  ASSERT_TRUE(parse_rig(text, a).ok());
  ASSERT_TRUE(load_edge_config(rig_path(), b).ok());
  EXPECT_EQ(a.sha256, b.sha256);
  std::string changed = rig_with(text, "id = \"rig\"", "id = \"riG\"");
  ASSERT_TRUE(parse_rig(changed, d).ok());
  EXPECT_NE(a.sha256, d.sha256);
  // A known vector: SHA-256("abc").
  auto check = parse_edge_config("abc", "x.toml", d);
  EXPECT_FALSE(check.ok());
  EXPECT_EQ(d.sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(EdgeConfig, OverridesSwitchDevices) {
  EdgeConfig c;
  ASSERT_TRUE(load_edge_config(rig_path(), c).ok());
  EdgeConfig base = c;

  // No board: the outputs would have nowhere to go unless GPIO is chosen too.
  auto check = apply_overrides(c, {.can = "", .board = "none", .inverter = "", .gpio = ""});
  EXPECT_FALSE(check.ok());
  ASSERT_EQ(check.problems.size(), 1u);
  EXPECT_EQ(check.problems[0].key, "--board");

  c = base;
  check = apply_overrides(c, {.can = "inproc:sim", .board = "none", .inverter = "none", .gpio = "gpiochip1"});
  EXPECT_TRUE(check.ok()) << check.to_string();
  EXPECT_EQ(c.can.url, "inproc:sim");
  EXPECT_FALSE(c.board.enabled);
  EXPECT_FALSE(c.safety.board_expected);
  EXPECT_FALSE(c.inverter.enabled);
  EXPECT_EQ(c.outputs.driver, OutputsSection::Driver::gpio);
  EXPECT_EQ(c.outputs.gpio.chip, "gpiochip1");

  c = base;
  check = apply_overrides(
      c, {.can = "", .board = "/dev/ttyACM3", .inverter = "tcp:127.0.0.1:1502?slave=2", .gpio = ""});
  EXPECT_TRUE(check.ok()) << check.to_string();
  EXPECT_EQ(c.board.link.device, "/dev/ttyACM3");
  EXPECT_EQ(c.inverter.url, "tcp:127.0.0.1:1502?slave=2");
  EXPECT_EQ(c.inverter.client.endpoint.transport, devices::InverterEndpoint::Transport::tcp);
  EXPECT_EQ(c.inverter.client.endpoint.port, 1502);
  EXPECT_EQ(c.outputs.driver, OutputsSection::Driver::board);

  c = base;
  check = apply_overrides(c, {.can = "vcan0", .board = "", .inverter = "carrier-pigeon", .gpio = ""});
  EXPECT_EQ(check.problems.size(), 2u) << check.to_string();
  EXPECT_EQ(c.can.url, base.can.url);

  // GPIO without lines in the file: refused.
  EdgeConfig bare;
  ASSERT_TRUE(
      parse_rig(
          rig_with(rig_text(), "lines = { pump = 17, fan = 27, relay1 = 22, relay2 = 23, relay3 = 24 }", ""),
          bare)
          .ok());
  check = apply_overrides(bare, {.can = "", .board = "", .inverter = "", .gpio = "gpiochip0"});
  ASSERT_EQ(check.problems.size(), 1u) << check.to_string();
  EXPECT_EQ(check.problems[0].key, "--gpio");
}

TEST(EdgeConfig, MissingFileIsAProblemNotACrash) {
  EdgeConfig c;
  auto check = load_edge_config("/nonexistent/edge.toml", c);
  ASSERT_EQ(check.problems.size(), 1u);
  EXPECT_EQ(check.problems[0].file, "/nonexistent/edge.toml");
}

}  // namespace
}  // namespace cellguard::edge
