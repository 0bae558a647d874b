// Scenario replays: timestamped inputs from a table, the loop's timer driven by next_deadline_ns(),
// and the exact decision times asserted (issue 4 item 10 in pure form).
#include <utility>

#include "safety/test_support.h"

namespace cellguard::safety {
namespace {

using namespace testing;

enum class Input { sample, sync, pdo };

struct Row {
  MonoTime time_ns;
  Input input;
  ChannelId channel;  // sample
  double value;       // sample value or module id
};

using Timeline = std::vector<std::pair<MonoTime, DecisionKind>>;

// Feeds the rows in order, firing tick() at every deadline before the next row like the edge's
// timer would, then runs the timer until `end_ns`. Returns every decision with its time.
Timeline replay(Supervisor& s, const std::vector<Row>& rows, MonoTime end_ns,
                std::vector<Decision>* all = nullptr) {
  Timeline timeline;
  auto record = [&](Decisions d) {
    for (const Decision& x : d) {
      timeline.emplace_back(x.time_ns, x.kind);
      if (all) all->push_back(x);
    }
  };
  auto run_timer_until = [&](MonoTime t) {
    while (s.next_deadline_ns() <= t) record(s.tick(s.next_deadline_ns()));
  };
  for (const Row& row : rows) {
    run_timer_until(row.time_ns);
    switch (row.input) {
      case Input::sample: {
        auto d = s.on_sample(row.channel, row.time_ns, row.value);
        EXPECT_TRUE(d.ok()) << (d.ok() ? "" : d.error().message);
        if (d.ok()) record(*d);
        break;
      }
      case Input::sync:
        record(s.on_sync_sent(row.time_ns));
        break;
      case Input::pdo:
        record(s.on_module_pdo(static_cast<int>(row.value), row.time_ns));
        break;
    }
  }
  run_timer_until(end_ns);
  return timeline;
}

SupervisorConfig scenario_config() {
  SupervisorConfig c = rig_defaults();  // warnings debounced 300 ms, dangerous at once
  c.expected_module_count = 1;
  c.board_expected = false;
  return c;
}

TEST(Scenario, ACellDriftingOverItsDangerousLimitTurnsTheInverterOffThenOpensTheContactors) {
  Rig rig = make_rig(scenario_config());
  const ChannelId cell = rig.cells[4];
  const ChannelId current = rig.pack_current;
  const std::vector<Row> rows = {
      {ms(0), Input::sample, current, 40},   {ms(0), Input::sample, cell, 4.05},
      {ms(100), Input::sample, cell, 4.08},  {ms(200), Input::sample, cell, 4.11},  // warning from 200 ms
      {ms(300), Input::sample, cell, 4.14},  {ms(400), Input::sample, cell, 4.16},
      {ms(500), Input::sample, cell, 4.18},  {ms(600), Input::sample, cell, 4.20},  // dangerous
      {ms(650), Input::sample, current, 25}, {ms(700), Input::sample, cell, 4.21},
      {ms(750), Input::sample, current, 4},
  };
  std::vector<Decision> all;
  Timeline t = replay(rig.supervisor, rows, ms(5000), &all);
  const Timeline expected = {
      {ms(500), DecisionKind::state_changed},   {ms(500), DecisionKind::inverter_nudge_discharge},
      {ms(600), DecisionKind::state_changed},   {ms(600), DecisionKind::inverter_off},
      {ms(750), DecisionKind::contactors_open}, {ms(750), DecisionKind::state_changed},
  };
  EXPECT_EQ(t, expected);
  ASSERT_EQ(all.size(), expected.size());
  EXPECT_EQ(all[0].to, State::warning);
  EXPECT_EQ(all[0].reason.since_ns, ms(200));
  EXPECT_EQ(all[3].reason.channel, cell);
  EXPECT_DOUBLE_EQ(all[3].reason.measured, 4.20);
  EXPECT_EQ(all[3].reason.since_ns, ms(600));
  EXPECT_FALSE(all[4].emergency);
  EXPECT_EQ(all[5].to, State::safe);
}

TEST(Scenario, AModuleFallingSilentGoesStaleThenDangerousThenSafeAfterTheMaximumDelay) {
  Rig rig = make_rig(scenario_config());
  std::vector<Row> rows;
  for (int k = 0; k <= 30; ++k) {
    rows.push_back({ms(100 * k), Input::sync, kNoChannel, 0});
    if (k <= 10) rows.push_back({ms(100 * k) + 5ms, Input::pdo, kNoChannel, 1});  // silent after 1005 ms
  }
  std::vector<Decision> all;
  Timeline t = replay(rig.supervisor, rows, ms(6000), &all);
  const Timeline expected = {
      {ms(5), DecisionKind::module_joined},
      {ms(1400), DecisionKind::state_changed},  // third missed cycle: stale warning
      {ms(2005), DecisionKind::state_changed},  // 1 s of silence: dangerous
      {ms(2005), DecisionKind::inverter_off},
      {ms(4005), DecisionKind::contactors_open},  // no current known: emergency at the max delay
      {ms(4005), DecisionKind::state_changed},
  };
  EXPECT_EQ(t, expected);
  ASSERT_EQ(all.size(), expected.size());
  EXPECT_EQ(all[1].to, State::warning);
  EXPECT_EQ(all[2].to, State::dangerous);
  EXPECT_EQ(all[3].reason.rule, RuleKind::module_stale);
  EXPECT_EQ(all[3].reason.since_ns, ms(1005));
  EXPECT_TRUE(all[4].emergency);
  EXPECT_EQ(rig.supervisor.state(), State::safe);
}

TEST(Scenario, FifteenModulesAtTheRigRateStayNormal) {
  SupervisorConfig c = scenario_config();
  c.expected_module_count = 15;
  auto created = Supervisor::create(c);
  ASSERT_TRUE(created.ok());
  Supervisor& s = *created;
  std::vector<ChannelId> cells;
  for (int m = 1; m <= 15; ++m) {
    for (int k = 1; k <= 14; ++k) {
      cells.push_back(*s.add_channel({"cell", Quantity::cell_voltage, m}));
    }
  }
  std::vector<Row> rows;
  for (int k = 0; k < 50; ++k) {
    rows.push_back({ms(100 * k), Input::sync, kNoChannel, 0});
    for (int m = 1; m <= 15; ++m) {
      rows.push_back({ms(100 * k) + 2ms, Input::pdo, kNoChannel, static_cast<double>(m)});
    }
    for (ChannelId id : cells) rows.push_back({ms(100 * k) + 3ms, Input::sample, id, 3.7});
  }
  Timeline t = replay(s, rows, ms(4950));
  EXPECT_EQ(t.size(), 15u);  // the joins, nothing else
  EXPECT_EQ(s.state(), State::normal);
  EXPECT_EQ(s.status().modules.size(), 15u);
}

}  // namespace
}  // namespace cellguard::safety
