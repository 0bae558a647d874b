// Helpers shared by the safety tests: a small rig of channels, times as values, decision lookups.
#pragma once

#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <vector>

#include "safety/safety.h"

namespace cellguard {
// gtest prints times in failure messages as their ns count.
template <typename Tag>
void PrintTo(const TimePoint<Tag>& t, std::ostream* os) {
  *os << t.ns() << " ns";
}
}  // namespace cellguard

namespace cellguard::safety::testing {

using namespace std::chrono_literals;  // durations in tests: 300ms, 2s

// Times on the tests' monotonic clock: `v` ms or s after its epoch.
constexpr MonoTime ms(std::int64_t v) { return MonoTime() + std::chrono::milliseconds(v); }
constexpr MonoTime sec(std::int64_t v) { return MonoTime() + std::chrono::seconds(v); }

// The rig's limits with no warning debounce, one expected module, no board watchdog: each test turns
// on what it checks.
inline SupervisorConfig test_config() {
  SupervisorConfig c = rig_defaults();
  for (auto& rule : c.rules) rule.warning_debounce_ns = 0ns;
  c.expected_module_count = 1;
  c.board_expected = false;
  return c;
}

// One module (id 1) with 14 cells and its module channels, plus the inverter and board channels.
struct Rig {
  Supervisor supervisor;
  std::vector<ChannelId> cells;  // cells[0] = Cell_1 ... cells[13] = Cell_14
  ChannelId module_voltage = 0, max_temperature = 0, min_temperature = 0;
  ChannelId battery_voltage = 0, dc_link_voltage = 0, pack_current = 0;
  ChannelId board_temperature = 0, board_pressure = 0;

  // Feeds a sample; the test fails on a refused sample. Returns a copy of the decisions.
  std::vector<Decision> sample(ChannelId id, MonoTime time_ns, double value) {
    auto d = supervisor.on_sample(id, time_ns, value);
    EXPECT_TRUE(d.ok()) << (d.ok() ? "" : d.error().message);
    return d.ok() ? std::vector<Decision>(d->begin(), d->end()) : std::vector<Decision>{};
  }
};

inline ChannelId add(Supervisor& s, std::string name, Quantity q, int module_id, std::string label = {}) {
  auto id = s.add_channel(ChannelSpec{std::move(name), q, module_id, std::move(label)});
  EXPECT_TRUE(id.ok());
  return id.ok() ? *id : kNoChannel;
}

inline Rig make_rig(SupervisorConfig config = test_config()) {
  auto created = Supervisor::create(config);
  EXPECT_TRUE(created.ok()) << (created.ok() ? "" : created.error().message);
  Rig rig{std::move(created).value(), {}};
  Supervisor& s = rig.supervisor;
  for (int k = 1; k <= 14; ++k) {
    rig.cells.push_back(add(s, "BMU01.Cell_" + std::to_string(k) + "_Voltage", Quantity::cell_voltage, 1,
                            "cell " + std::to_string(k) + " of module 1"));
  }
  rig.module_voltage = add(s, "BMU01.CMA_Voltage", Quantity::module_voltage, 1);
  rig.max_temperature =
      add(s, "BMU01.CMA_Max_Temp", Quantity::module_max_temperature, 1, "module 1 maximum temperature");
  rig.min_temperature = add(s, "BMU01.CMA_Min_Temp", Quantity::module_min_temperature, 1);
  rig.battery_voltage = add(s, "inverter.dc_input_volt", Quantity::inverter_battery_voltage, 0);
  rig.dc_link_voltage = add(s, "inverter.dc_link_volt", Quantity::dc_link_voltage, 0);
  rig.pack_current = add(s, "inverter.dc_link_crnt", Quantity::pack_current, 0);
  rig.board_temperature = add(s, "board.Temp1", Quantity::board_temperature, 0);
  rig.board_pressure = add(s, "board.Press", Quantity::board_pressure, 0);
  return rig;
}

// Wall-clock 2026-12-07 01:36:42 UTC at monotonic 0: the texts' times.
constexpr WallTime kWallAtZero = WallTime::from_ns(1'796'607'402LL * 1'000'000'000);
inline ClockPair clock_at(MonoTime mono) { return ClockPair{mono, kWallAtZero + mono.since_epoch()}; }

inline std::vector<Decision> copy(Decisions d) { return {d.begin(), d.end()}; }

inline const Decision* find(const std::vector<Decision>& d, DecisionKind kind) {
  for (const Decision& x : d) {
    if (x.kind == kind) return &x;
  }
  return nullptr;
}

inline std::vector<DecisionKind> kinds(const std::vector<Decision>& d) {
  std::vector<DecisionKind> out;
  out.reserve(d.size());
  for (const Decision& x : d) out.push_back(x.kind);
  return out;
}

}  // namespace cellguard::safety::testing
