// Issue 14 item 3: the non-limit rules are one table. Each timed rule's deadline (next_deadline_ns)
// and its evaluation (check_time_rules, run by tick) must agree: replaying a scenario that arms only
// that rule, nothing of it happens one nanosecond before its deadline and it fires exactly at it.
// Each rule with a cause lists it (active_causes, in table order). A rule added to the table without
// a scenario here fails the test.
#include <algorithm>
#include <functional>
#include <map>

#include "safety/test_support.h"

namespace cellguard::safety {
namespace {

using namespace testing;

// A supervisor with one rule armed; `deadline_ns` is when that rule must fire; `fired` says whether
// the decisions of the tick at a time, and the causes after it, show the rule's kind.
struct Armed {
  Rig rig;
  MonoTime deadline_ns;
  RuleKind expected = RuleKind::none;  // the kind it fires with in this scenario
};

bool shows(const Supervisor& s, const std::vector<Decision>& decisions, RuleKind kind) {
  for (const Decision& d : decisions) {
    if (d.reason.rule == kind) return true;
  }
  for (const Reason& r : s.active_causes()) {
    if (r.rule == kind && r.level != Level::normal) return true;
  }
  return false;
}

// Scenarios per rule (by its first kind); each returns one or more armed supervisors.
using Scenario = std::function<std::vector<Armed>()>;

std::vector<Armed> module_silence() {
  // One module answers at 0 and then falls silent: dangerous after dangerous_silence_ns (1 s).
  SupervisorConfig c = test_config();
  Armed a{make_rig(c), ms(0) + c.dangerous_silence_ns, RuleKind::module_stale};
  a.rig.supervisor.on_module_pdo(1, ms(0));
  std::vector<Armed> out;
  out.push_back(std::move(a));
  return out;
}

std::vector<Armed> board_silence() {
  SupervisorConfig c = test_config();
  c.board_expected = true;
  c.expected_module_count = 0;
  Armed a{make_rig(c), ms(250) + c.board_timeout_ns, RuleKind::board_silent};
  a.rig.supervisor.on_board_line_valid(ms(0));
  a.rig.supervisor.on_board_line_valid(ms(250));
  std::vector<Armed> out;
  out.push_back(std::move(a));
  return out;
}

std::vector<Armed> inverter_freshness() {
  // Readings stop first (stale), or heartbeats stop first (heartbeat): the same rule, two kinds.
  SupervisorConfig c = test_config();
  c.inverter_expected = true;
  c.expected_module_count = 0;
  std::vector<Armed> out;
  Armed readings{make_rig(c), ms(100) + c.inverter_readings_timeout_ns, RuleKind::inverter_stale};
  readings.rig.supervisor.on_inverter_reading(ms(100));
  readings.rig.supervisor.on_inverter_heartbeat(ms(600));
  out.push_back(std::move(readings));
  Armed heartbeat{make_rig(c), ms(100) + c.inverter_heartbeat_timeout_ns, RuleKind::inverter_heartbeat};
  heartbeat.rig.supervisor.on_inverter_heartbeat(ms(100));
  heartbeat.rig.supervisor.on_inverter_reading(ms(600));
  out.push_back(std::move(heartbeat));
  return out;
}

std::vector<Armed> contactors() {
  // A trip with 100 A flowing: the contactors wait for the maximum delay (emergency opening).
  SupervisorConfig c = test_config();
  c.expected_module_count = 0;
  Armed a{make_rig(c), ms(300) + c.contactor_max_delay_ns, RuleKind::contactor_delay};
  a.rig.sample(a.rig.pack_current, ms(300), 100);
  a.rig.sample(a.rig.battery_voltage, ms(300), 395);  // above 390 V: dangerous
  EXPECT_EQ(a.rig.supervisor.state(), State::dangerous);
  std::vector<Armed> out;
  out.push_back(std::move(a));
  return out;
}

std::vector<Armed> precharge() {
  // A start request whose DC link never matches: the attempt times out after settle + timeout.
  SupervisorConfig c = test_config();
  c.expected_module_count = 0;
  c.precharge.settle_ns = 700ms;
  Armed a{make_rig(c), ms(200) + c.precharge.settle_ns + c.precharge.timeout_ns, RuleKind::precharge};
  a.rig.supervisor.on_start_request(ms(200));
  std::vector<Armed> out;
  out.push_back(std::move(a));
  return out;
}

const std::map<RuleKind, Scenario>& timed_scenarios() {
  static const std::map<RuleKind, Scenario> scenarios{
      {RuleKind::module_stale, module_silence},
      {RuleKind::board_silent, board_silence},
      {RuleKind::inverter_stale, inverter_freshness},
      {RuleKind::contactor_current, contactors},
      {RuleKind::precharge, precharge},
  };
  return scenarios;
}

// Rules decided by their input alone: the input that sets the cause.
const std::map<RuleKind, std::function<void(Supervisor&, MonoTime)>>& event_inputs() {
  static const std::map<RuleKind, std::function<void(Supervisor&, MonoTime)>> inputs{
      {RuleKind::inverter_link,
       [](Supervisor& s, MonoTime t) {
         for (int i = 0; i < 3; ++i) s.on_inverter_link(false, t);
       }},
      {RuleKind::insulation_fault, [](Supervisor& s, MonoTime t) { s.on_insulation_fault(true, t); }},
      {RuleKind::board_fault,
       [](Supervisor& s, MonoTime t) { s.on_board_fault(BoardFault::ground_fault, t); }},
      {RuleKind::stop_request,
       [](Supervisor& s, MonoTime t) { s.on_stop_request(StopOrigin::terminate_signal, t); }},
  };
  return inputs;
}

TEST(RuleTable, EveryRuleIsListedOnceWithAKind) {
  const auto table = Supervisor::rule_table();
  ASSERT_FALSE(table.empty());
  std::vector<RuleKind> seen;
  for (const auto& rule : table) {
    EXPECT_NE(rule.kinds[0], RuleKind::none);
    EXPECT_TRUE(rule.timed || rule.has_cause) << to_string(rule.kinds[0]) << " can never do anything";
    for (RuleKind k : rule.kinds) {
      if (k == RuleKind::none) continue;
      EXPECT_EQ(std::count(seen.begin(), seen.end(), k), 0) << to_string(k) << " is in two rules";
      EXPECT_NE(k, RuleKind::limit_high);  // the limit rules are per channel, not in the table
      EXPECT_NE(k, RuleKind::limit_low);
      seen.push_back(k);
    }
  }
}

TEST(RuleTable, EachTimedRuleFiresExactlyAtItsDeadline) {
  for (const auto& rule : Supervisor::rule_table()) {
    if (!rule.timed) continue;
    SCOPED_TRACE(std::string(to_string(rule.kinds[0])));
    auto scenario = timed_scenarios().find(rule.kinds[0]);
    ASSERT_NE(scenario, timed_scenarios().end()) << "no scenario for this timed rule";
    for (Armed& a : scenario->second()) {
      SCOPED_TRACE(std::string(to_string(a.expected)));
      EXPECT_TRUE(a.expected == rule.kinds[0] || a.expected == rule.kinds[1]);
      Supervisor& s = a.rig.supervisor;
      // next_deadline_ns() names this rule's deadline ...
      EXPECT_EQ(s.next_deadline_ns(), a.deadline_ns);
      // ... before it, time alone changes nothing of it ...
      auto before = copy(s.tick(a.deadline_ns - 1ns));
      EXPECT_FALSE(shows(s, before, a.expected)) << "fired early";
      EXPECT_EQ(s.next_deadline_ns(), a.deadline_ns);
      // ... and at it, check_time_rules fires it.
      auto at = copy(s.tick(a.deadline_ns));
      EXPECT_TRUE(shows(s, at, a.expected)) << "did not fire at its deadline";
      EXPECT_NE(s.next_deadline_ns(), a.deadline_ns) << "the deadline stays after firing";
    }
  }
}

TEST(RuleTable, EachRuleWithoutADeadlineIsDecidedByItsInput) {
  for (const auto& rule : Supervisor::rule_table()) {
    if (rule.timed) continue;
    SCOPED_TRACE(std::string(to_string(rule.kinds[0])));
    auto input = event_inputs().find(rule.kinds[0]);
    ASSERT_NE(input, event_inputs().end()) << "no input for this rule";
    SupervisorConfig c = test_config();
    c.expected_module_count = 0;
    Rig rig = make_rig(c);
    rig.supervisor.tick(ms(0));
    EXPECT_EQ(rig.supervisor.next_deadline_ns(), kNever);
    EXPECT_TRUE(rig.supervisor.tick(sec(100)).empty());  // nothing happens by time alone
    input->second(rig.supervisor, sec(101));
    EXPECT_TRUE(shows(rig.supervisor, {}, rule.kinds[0]));
    EXPECT_NE(rig.supervisor.state(), State::normal);
  }
}

TEST(RuleTable, CausesAreListedInTableOrder) {
  // Every rule with a cause active at once: active_causes() lists them in the table's order (the
  // first dangerous one is the state's reason).
  SupervisorConfig c = test_config();
  c.board_expected = true;
  c.inverter_expected = true;
  Rig rig = make_rig(c);
  Supervisor& s = rig.supervisor;
  s.on_module_pdo(1, ms(0));
  std::vector<RuleKind> expected;
  for (const auto& rule : Supervisor::rule_table()) {
    if (!rule.has_cause) continue;
    expected.push_back(rule.kinds[0]);
    if (auto input = event_inputs().find(rule.kinds[0]); input != event_inputs().end())
      input->second(s, sec(1) - 1ns);
  }
  s.tick(sec(10));  // module, board and inverter silent by now
  std::vector<RuleKind> listed;
  for (const Reason& r : s.active_causes()) {
    if (r.rule != RuleKind::limit_high && r.rule != RuleKind::limit_low) listed.push_back(r.rule);
  }
  EXPECT_EQ(listed, expected);
  // The first input of the loop above set the state's reason.
  EXPECT_EQ(s.status().state_reason.rule, RuleKind::inverter_link);
}

}  // namespace
}  // namespace cellguard::safety
