// The monitor's model and texts with given times: latest values, rates, ages, mux split, the module
// grid, filters, unknown ids and failed frames; the screen's size limits.
#include "monitor/monitor.h"

#include <gtest/gtest.h>

#include <string>

#include "dbc/dbc.h"
#include "monitor/render.h"

namespace cellguard::monitor {
namespace {

constexpr TimeNs kMs = 1'000'000;
constexpr TimeNs kS = 1'000'000'000;
constexpr TimeNs kT0 = 1'796'616'000 * kS;  // 2026-12-07 04:00:00 UTC

// Two modules of the rig's layout (PDO COB-IDs 0x181/0x182, 0x381/0x382), SYNC, and a multiplexed
// message with a value table.
constexpr const char* kDbc = R"(VERSION ""

NS_ :

BS_:

BU_: BMU Controller

BO_ 128 SYNC: 1 Controller
 SG_ Sync_Count : 0|8@1+ (1,0) [0|255] "" BMU

BO_ 385 BMU01_pdo1: 8 BMU
 SG_ CMA_Current : 0|16@1- (0.1,0) [-3276.8|3276.7] "A" Controller
 SG_ CMA_Voltage : 16|16@1+ (0.01,0) [0|655.35] "V" Controller
 SG_ CMA_Min_Temp : 48|8@1- (1,0) [-128|127] "degC" Controller
 SG_ CMA_Max_Temp : 56|8@1- (1,0) [-128|127] "degC" Controller

BO_ 386 BMU02_pdo1: 8 BMU
 SG_ CMA_Current : 0|16@1- (0.1,0) [-3276.8|3276.7] "A" Controller
 SG_ CMA_Voltage : 16|16@1+ (0.01,0) [0|655.35] "V" Controller

BO_ 897 BMU01_pdo3: 8 BMU
 SG_ Cell_1_Voltage : 0|8@1+ (0.01,2.2) [2.2|4.75] "V" Controller
 SG_ Cell_2_Voltage : 8|8@1+ (0.01,2.2) [2.2|4.75] "V" Controller
 SG_ CMA_Temp1 : 16|8@1- (1,0) [-128|127] "degC" Controller

BO_ 898 BMU02_pdo3: 8 BMU
 SG_ Cell_1_Voltage : 0|8@1+ (0.01,2.2) [2.2|4.75] "V" Controller
 SG_ Cell_2_Voltage : 8|8@1+ (0.01,2.2) [2.2|4.75] "V" Controller

BO_ 512 Diag: 8 BMU
 SG_ Page M : 0|8@1+ (1,0) [0|255] "" Controller
 SG_ Mode m1 : 8|8@1+ (1,0) [0|255] "" Controller
 SG_ Fan m2 : 8|16@1+ (0.5,0) [0|1000] "rpm" Controller

VAL_ 512 Mode 0 "Idle" 3 "Balancing" ;
)";

dbc::DatabaseCodec make_codec() {
  auto parsed = dbc::parse_dbc(kDbc, "test.dbc");
  EXPECT_TRUE(parsed) << parsed.error().message;
  return dbc::DatabaseCodec(std::move(parsed->database));
}

can::Frame frame(std::uint32_t id, std::initializer_list<std::uint8_t> bytes) {
  can::Frame f;
  f.id = id;
  std::vector<std::uint8_t> data(bytes);
  f.set_payload(data);
  f.bus.assign("can0");
  return f;
}

const MessageView* find(const Snapshot& s, std::string_view name, std::uint64_t mux = 0) {
  for (const auto& m : s.messages)
    if (m.name == name && m.mux_value == mux) return &m;
  return nullptr;
}

const SignalView* signal(const MessageView& m, std::string_view name) {
  for (const auto& s : m.signals)
    if (s.name == name) return &s;
  return nullptr;
}

TEST(Monitor, KeepsTheLatestValuesWithTheirRateAndAge) {
  auto codec = make_codec();
  Monitor monitor(codec, {});
  // 10 Hz for one second: -12.3 A then -12.4 A last.
  for (int i = 0; i < 10; ++i) {
    const std::uint8_t low = i < 9 ? 0x85 : 0x84;  // raw -123 / -124
    monitor.on_frame(frame(0x181, {low, 0xFF, 0x7A, 0x12, 0, 0, 20, 22}), kT0 + i * 100 * kMs);
  }
  const Snapshot s = monitor.snapshot(kT0 + 950 * kMs);
  ASSERT_EQ(s.messages.size(), 1u);
  const MessageView& m = s.messages[0];
  EXPECT_EQ(m.name, "BMU01_pdo1");
  EXPECT_EQ(m.id, 0x181u);
  EXPECT_EQ(m.frames, 10u);
  EXPECT_NEAR(m.rate_hz, 10.0, 1e-9);
  ASSERT_TRUE(m.age_ns);
  EXPECT_EQ(*m.age_ns, 50 * kMs);
  ASSERT_NE(signal(m, "CMA_Current"), nullptr);
  EXPECT_NEAR(signal(m, "CMA_Current")->value, -12.4, 1e-9);
  EXPECT_EQ(format_value(*signal(m, "CMA_Current")), "-12.4 A");
  EXPECT_EQ(format_value(*signal(m, "CMA_Voltage")), "47.30 V");
  EXPECT_EQ(s.frames, 10u);
  EXPECT_NEAR(s.rate_hz, 10 / 0.95, 1e-9);  // 10 frames since the first, 0.95 s ago
  EXPECT_NEAR(monitor.snapshot(kT0 + 1900 * kMs).rate_hz, 10 / 1.9, 1e-9);

  // Silent for longer than the rate window (2 s): rate 0, age grows.
  const Snapshot later = monitor.snapshot(kT0 + 900 * kMs + 2500 * kMs);
  EXPECT_EQ(later.messages[0].rate_hz, 0.0);
  EXPECT_EQ(*later.messages[0].age_ns, 2500 * kMs);
  EXPECT_EQ(format_age(later.messages[0].age_ns), "2.5 s");
}

TEST(Monitor, RateFollowsAChangeOfPace) {
  auto codec = make_codec();
  Monitor monitor(codec, {});
  TimeNs t = kT0;
  for (int i = 0; i < 40; ++i, t += 100 * kMs) monitor.on_frame(frame(0x80, {1}), t);  // 10 Hz
  for (int i = 0; i < 40; ++i, t += 20 * kMs) monitor.on_frame(frame(0x80, {1}), t);   // 50 Hz
  const Snapshot s = monitor.snapshot(t);
  ASSERT_NE(find(s, "SYNC"), nullptr);
  EXPECT_NEAR(find(s, "SYNC")->rate_hz, 50.0, 1e-6);  // the last 32 arrivals are all at 50 Hz
  EXPECT_EQ(find(s, "SYNC")->frames, 80u);
}

TEST(Monitor, TotalRateCountsBurstsOverTheWindow) {
  auto codec = make_codec();
  Monitor monitor(codec, {});
  // The rig's pattern: a SYNC every 100 ms, then 24 PDOs 150 us apart; 250 frames/s.
  TimeNs t = kT0;
  for (int cycle = 0; cycle < 50; ++cycle, t += 100 * kMs) {
    monitor.on_frame(frame(0x80, {1}), t);
    for (int i = 1; i <= 24; ++i) monitor.on_frame(frame(0x181, {0, 0, 0, 0, 0, 0, 0, 0}), t + i * 150'000);
  }
  const Snapshot s = monitor.snapshot(t - 50 * kMs);
  EXPECT_NEAR(s.rate_hz, 250.0, 250.0 * 0.05);  // 500 frames in 1.95 s: a burst more or less per window
  EXPECT_NEAR(find(s, "SYNC")->rate_hz, 10.0, 1e-9);
}

TEST(Monitor, SplitsAMultiplexedMessagePerMuxValue) {
  auto codec = make_codec();
  Monitor monitor(codec, {});
  monitor.on_frame(frame(0x200, {1, 3, 0, 0, 0, 0, 0, 0}), kT0);                   // Page 1: Mode 3
  monitor.on_frame(frame(0x200, {2, 0xE8, 0x03, 0, 0, 0, 0, 0}), kT0 + 10 * kMs);  // Page 2: Fan 500 rpm
  monitor.on_frame(frame(0x200, {2, 0xEA, 0x03, 0, 0, 0, 0, 0}), kT0 + 20 * kMs);  // Page 2: Fan 501 rpm
  const Snapshot s = monitor.snapshot(kT0 + 30 * kMs);
  const MessageView* page1 = find(s, "Diag", 1);
  const MessageView* page2 = find(s, "Diag", 2);
  ASSERT_NE(page1, nullptr);
  ASSERT_NE(page2, nullptr);
  EXPECT_EQ(page1->multiplexer, "Page");
  EXPECT_EQ(page1->frames, 1u);
  EXPECT_EQ(page2->frames, 2u);
  EXPECT_EQ(*page1->age_ns, 30 * kMs);
  EXPECT_EQ(*page2->age_ns, 10 * kMs);
  ASSERT_NE(signal(*page1, "Mode"), nullptr);
  EXPECT_EQ(signal(*page1, "Fan"), nullptr);
  EXPECT_EQ(format_value(*signal(*page1, "Mode")), "3 (Balancing)");
  ASSERT_NE(signal(*page2, "Fan"), nullptr);
  EXPECT_EQ(signal(*page2, "Mode"), nullptr);
  EXPECT_EQ(format_value(*signal(*page2, "Fan")), "501.0 rpm");
  EXPECT_NEAR(page2->rate_hz, 100.0, 1e-9);
  const std::string text = render_text(s, {});
  EXPECT_NE(text.find("Diag [Page = 1]  0x200"), std::string::npos) << text;
  EXPECT_NE(text.find("Diag [Page = 2]  0x200"), std::string::npos) << text;
}

TEST(Monitor, BuildsTheModuleGridFromCellsAndTemperatures) {
  auto codec = make_codec();
  Monitor monitor(codec, {});
  // Module 2's cells 3.94 V and 3.95 V (raw 174, 175), module 1's cells and temperature sensor 1.
  monitor.on_frame(frame(0x382, {174, 175, 0, 0, 0, 0, 0, 0}), kT0);
  monitor.on_frame(frame(0x381, {170, 171, 25, 0, 0, 0, 0, 0}), kT0 + 5 * kMs);
  monitor.on_frame(frame(0x181, {0x85, 0xFF, 0x7A, 0x12, 0, 0, 20, 22}), kT0 + 10 * kMs);
  monitor.on_frame(frame(0x80, {1}), kT0 + 11 * kMs);  // SYNC: no module
  const Snapshot s = monitor.snapshot(kT0 + 20 * kMs);
  ASSERT_EQ(s.modules.size(), 2u);
  EXPECT_EQ(s.grid_cells, 2);
  EXPECT_EQ(s.grid_temperatures, 1);
  EXPECT_EQ(s.cell_voltage_unit, "V");
  EXPECT_EQ(s.temperature_unit, "degC");
  const ModuleRow& m1 = s.modules[0];
  EXPECT_EQ(m1.module, 1);
  ASSERT_EQ(m1.cell_voltages.size(), 2u);
  EXPECT_NEAR(*m1.cell_voltages[0], 3.90, 1e-9);
  EXPECT_NEAR(*m1.cell_voltages[1], 3.91, 1e-9);
  EXPECT_NEAR(*m1.temperatures[0], 25, 1e-9);
  EXPECT_NEAR(*m1.voltage, 47.3, 1e-9);
  EXPECT_NEAR(*m1.current, -12.3, 1e-9);
  EXPECT_NEAR(*m1.min_temperature, 20, 1e-9);
  EXPECT_NEAR(*m1.max_temperature, 22, 1e-9);
  EXPECT_EQ(*m1.age_ns, 10 * kMs);
  const ModuleRow& m2 = s.modules[1];
  EXPECT_EQ(m2.module, 2);
  EXPECT_NEAR(*m2.cell_voltages[1], 3.95, 1e-9);
  EXPECT_FALSE(m2.voltage);
  EXPECT_EQ(*m2.age_ns, 20 * kMs);

  const std::string text = render_text(s, {});
  EXPECT_NE(text.find("cell voltages (V)"), std::string::npos) << text;
  EXPECT_NE(text.find("     1  3.90  3.91    47.30 V  -12.3 A       -       3.90/3.91   10 ms"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("     2  3.94  3.95          -        -       -       3.94/3.95   20 ms"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("temperatures (degC)"), std::string::npos) << text;
}

TEST(Monitor, ModulesByNamePattern) {
  auto codec = make_codec();
  MonitorOptions options;
  options.layout.discovery = GridLayout::Discovery::name_pattern;
  Monitor monitor(codec, options);
  monitor.on_frame(frame(0x382, {174, 175, 0, 0, 0, 0, 0, 0}), kT0);
  monitor.on_frame(frame(0x200, {1, 3, 0, 0, 0, 0, 0, 0}), kT0);
  const Snapshot s = monitor.snapshot(kT0);
  ASSERT_EQ(s.modules.size(), 1u);
  EXPECT_EQ(s.modules[0].module, 2);  // "BMU02_pdo3"
}

TEST(Monitor, FiltersByMessageSignalOrBoth) {
  auto codec = make_codec();
  auto feed = [](Monitor& m) {
    m.on_frame(frame(0x181, {0x85, 0xFF, 0x7A, 0x12, 0, 0, 20, 22}), kT0);
    m.on_frame(frame(0x182, {0x85, 0xFF, 0x7A, 0x12, 0, 0, 0, 0}), kT0);
    m.on_frame(frame(0x381, {170, 171, 25, 0, 0, 0, 0, 0}), kT0);
    m.on_frame(frame(0x80, {1}), kT0);
  };
  {
    MonitorOptions o;
    o.filters = {"BMU01_*"};
    Monitor m(codec, o);
    feed(m);
    const Snapshot s = m.snapshot(kT0);
    ASSERT_EQ(s.messages.size(), 2u);
    EXPECT_EQ(s.messages[0].name, "BMU01_pdo1");
    EXPECT_EQ(s.messages[0].signals.size(), 4u);
    EXPECT_EQ(s.messages[1].name, "BMU01_pdo3");
    EXPECT_EQ(s.modules.size(), 2u) << "the grid is not filtered";
  }
  {
    MonitorOptions o;
    o.filters = {"Cell_?_Voltage"};
    Monitor m(codec, o);
    feed(m);
    const Snapshot s = m.snapshot(kT0);
    ASSERT_EQ(s.messages.size(), 1u);
    EXPECT_EQ(s.messages[0].name, "BMU01_pdo3");
    ASSERT_EQ(s.messages[0].signals.size(), 2u);
    EXPECT_EQ(s.messages[0].signals[0].name, "Cell_1_Voltage");
  }
  {
    MonitorOptions o;
    o.filters = {"BMU02_pdo1.CMA_Voltage", "SYNC"};
    Monitor m(codec, o);
    feed(m);
    const Snapshot s = m.snapshot(kT0);
    ASSERT_EQ(s.messages.size(), 2u);  // in DBC order
    EXPECT_EQ(s.messages[0].name, "SYNC");
    EXPECT_EQ(s.messages[1].name, "BMU02_pdo1");
    ASSERT_EQ(s.messages[1].signals.size(), 1u);
    EXPECT_EQ(s.messages[1].signals[0].name, "CMA_Voltage");
  }
}

TEST(Monitor, CountsUnknownIdsFailedAndErrorFrames) {
  auto codec = make_codec();
  Monitor monitor(codec, {});
  monitor.on_frame(frame(0x181, {0x85, 0xFF, 0x7A, 0x12, 0, 0, 20, 22}), kT0);
  monitor.on_frame(frame(0x181, {0x85, 0xFF}), kT0 + kMs);  // too short: the values stay, with an error
  monitor.on_frame(frame(0x7FF, {0}), kT0 + 2 * kMs);
  monitor.on_frame(frame(0x7FF, {0}), kT0 + 12 * kMs);
  can::Frame error;
  error.error = true;
  error.id = 0x80;
  monitor.on_frame(error, kT0 + 3 * kMs);
  const Snapshot s = monitor.snapshot(kT0 + 20 * kMs);
  EXPECT_EQ(s.frames, 5u);
  EXPECT_EQ(s.unknown_frames, 2u);
  EXPECT_EQ(s.failed_frames, 1u);
  EXPECT_EQ(s.error_frames, 1u);
  ASSERT_EQ(s.unknown.size(), 1u);
  EXPECT_EQ(s.unknown[0].id, 0x7FFu);
  EXPECT_EQ(s.unknown[0].frames, 2u);
  EXPECT_NEAR(s.unknown[0].rate_hz, 100.0, 1e-9);
  const MessageView* m = find(s, "BMU01_pdo1");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->frames, 2u);
  EXPECT_EQ(m->error, "payload has 2 bytes, BMU01_pdo1 needs 8");
  EXPECT_NEAR(signal(*m, "CMA_Voltage")->value, 47.3, 1e-9);
  const std::string text = render_text(s, {});
  EXPECT_NE(text.find("error: payload has 2 bytes, BMU01_pdo1 needs 8"), std::string::npos) << text;
  EXPECT_NE(text.find("unknown ids: 0x7FF (2 frames, 100.0/s)"), std::string::npos) << text;
}

TEST(Monitor, BoundsTheUnknownIdsItTracks) {
  auto codec = make_codec();
  Monitor monitor(codec, {});
  for (std::uint32_t id = 0x600; id < 0x600 + kMaxUnknownIds + 10; ++id)
    monitor.on_frame(frame(id, {0}), kT0);
  const Snapshot s = monitor.snapshot(kT0);
  EXPECT_EQ(s.unknown.size(), kMaxUnknownIds);
  EXPECT_EQ(s.other_unknown_frames, 10u);
}

TEST(Monitor, ScreenFitsTheTerminalAndSaysWhatWasCut) {
  auto codec = make_codec();
  Monitor monitor(codec, {});
  monitor.on_frame(frame(0x181, {0x85, 0xFF, 0x7A, 0x12, 0, 0, 20, 22}), kT0);
  monitor.on_frame(frame(0x182, {0x85, 0xFF, 0x7A, 0x12, 0, 0, 0, 0}), kT0);
  monitor.on_frame(frame(0x381, {170, 171, 25, 0, 0, 0, 0, 0}), kT0);
  monitor.on_frame(frame(0x80, {1}), kT0);
  RenderContext context;
  context.source = "rig.log";
  context.wall_time = kT0;
  context.paused = true;
  const Snapshot s = monitor.snapshot(kT0 + 5 * kMs);
  const auto big = render_screen(s, context, 200, 60);
  ASSERT_EQ(big.size(), 60u);
  EXPECT_EQ(big[0], "cellguard monitor  rig.log  2026-12-07 04:00:00.000 UTC  PAUSED");
  EXPECT_EQ(big.back(), "[p] pause  [q] quit");
  const auto small = render_screen(s, context, 40, 20);
  ASSERT_EQ(small.size(), 20u);
  for (const auto& line : small) EXPECT_LE(line.size(), 40u) << line;
  EXPECT_NE(small.back().find("of 4 messages shown"), std::string::npos) << small.back();
}

TEST(Monitor, FitCountsUtf8CodePoints) {
  EXPECT_EQ(fit("25 °C", 5), "25 °C");
  EXPECT_EQ(fit("25 °C abc", 5), "25 °~");
  EXPECT_EQ(fit("abc", 0), "");
}

TEST(Monitor, JsonKeepsMachineFieldsBesideTheTexts) {
  auto codec = make_codec();
  Monitor monitor(codec, {});
  monitor.on_frame(frame(0x200, {1, 3, 0, 0, 0, 0, 0, 0}), kT0);
  monitor.on_frame(frame(0x381, {170, 171, 25, 0, 0, 0, 0, 0}), kT0);
  RenderContext context;
  context.source = "rig.log";
  context.wall_time = kT0 + 250 * kMs;
  const auto j = to_json(monitor.snapshot(kT0 + 250 * kMs), context);
  EXPECT_EQ(j["time_utc"], "2026-12-07 04:00:00.250 UTC");
  EXPECT_DOUBLE_EQ(j["t"].get<double>(), 1796616000.25);
  ASSERT_EQ(j["messages"].size(), 2u);
  EXPECT_EQ(j["messages"][1]["name"], "Diag");
  EXPECT_EQ(j["messages"][1]["mux"]["signal"], "Page");
  EXPECT_EQ(j["messages"][1]["mux"]["value"], 1);
  EXPECT_EQ(j["messages"][1]["signals"]["Mode"]["choice"], "Balancing");
  EXPECT_DOUBLE_EQ(j["messages"][1]["age_s"].get<double>(), 0.25);
  EXPECT_EQ(j["modules"][0]["module"], 1);
  EXPECT_DOUBLE_EQ(j["modules"][0]["cell_voltages"][0].get<double>(), 3.9);
  EXPECT_TRUE(j["modules"][0]["voltage"].is_null());
}

TEST(Monitor, DecimalsFollowTheScale) {
  EXPECT_EQ(decimals_for_scale(0.01), 2);
  EXPECT_EQ(decimals_for_scale(0.5), 1);
  EXPECT_EQ(decimals_for_scale(1), 0);
  EXPECT_EQ(decimals_for_scale(0.001), 3);
  EXPECT_EQ(decimals_for_scale(0), 0);
}

}  // namespace
}  // namespace cellguard::monitor
