#include "schedule/schedule.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

namespace cellguard::schedule {
namespace {

constexpr std::int64_t kS = 1'000'000'000;

// A time on the test's monotonic timeline, ns after its start.
constexpr MonoTime T(std::int64_t ns) { return MonoTime::from_ns(ns); }

Schedule parse_ok(std::string_view text) {
  auto result = parse_schedule(text, "t.csv");
  EXPECT_TRUE(result.ok()) << result.error().message;
  return result.ok() ? std::move(result).value() : Schedule{};
}

std::string parse_error(std::string_view text) {
  auto result = parse_schedule(text, "t.csv");
  EXPECT_FALSE(result.ok());
  if (result.ok()) return "";
  EXPECT_EQ(result.error().code, ErrorCode::parse_error);
  return result.error().message;
}

TEST(ParseSchedule, ReadsBomCrlfAndBlankLines) {
  const auto s =
      parse_ok("\xEF\xBB\xBFInterval [s],Current [A]\r\n300,-35\r\n\r\n  \r\n1.5, 20.25 \r\n+2,0\r\n");
  EXPECT_EQ(s.kind, SetpointKind::current_a);
  ASSERT_EQ(s.steps.size(), 3u);
  EXPECT_EQ(s.steps[0].duration, Duration(300 * kS));
  EXPECT_EQ(s.steps[0].setpoint, -35);
  EXPECT_EQ(s.steps[0].line, 2);
  EXPECT_EQ(s.steps[1].duration, Duration(1'500'000'000));
  EXPECT_EQ(s.steps[1].setpoint, 20.25);
  EXPECT_EQ(s.steps[1].line, 5);
  EXPECT_EQ(s.steps[2].line, 6);
  EXPECT_EQ(s.total(), Duration(303'500'000'000));
  EXPECT_EQ(s.origin, "t.csv");
}

TEST(ParseSchedule, PowerHeaderAndNoFinalNewline) {
  const auto s = parse_ok("Interval [s],Power [kW]\n100,-15.72");
  EXPECT_EQ(s.kind, SetpointKind::power_kw);
  ASSERT_EQ(s.steps.size(), 1u);
  EXPECT_DOUBLE_EQ(s.steps[0].setpoint, -15.72);
}

TEST(ParseSchedule, ErrorsNameOriginLineAndCause) {
  EXPECT_EQ(
      parse_error(""),
      "t.csv:1: empty file: expected the header 'Interval [s],Current [A]' or 'Interval [s],Power [kW]'");
  EXPECT_EQ(parse_error("Interval [s],Voltage [V]\n1,2\n"),
            "t.csv:1: expected 'Current [A]' or 'Power [kW]' as the second column, found 'Voltage [V]'");
  EXPECT_EQ(parse_error("300,-35\n"),
            "t.csv:1: expected the header 'Interval [s],Current [A]' or 'Interval [s],Power [kW]', found "
            "'300,-35'");
  EXPECT_EQ(parse_error("Interval [s],Current [A]\n"), "t.csv:2: no steps after the header");
  EXPECT_EQ(parse_error("Interval [s],Current [A]\r\n300,-35\r\n0,1\r\n"),
            "t.csv:3: interval 0 s is not > 0");
  EXPECT_EQ(parse_error("Interval [s],Current [A]\n-5,1\n"), "t.csv:2: interval -5 s is not > 0");
  EXPECT_EQ(parse_error("Interval [s],Current [A]\n\n5,abc\n"), "t.csv:3: setpoint 'abc' is not a number");
  EXPECT_EQ(parse_error("Interval [s],Current [A]\n5,nan\n"), "t.csv:2: setpoint 'nan' is not finite");
  EXPECT_EQ(parse_error("Interval [s],Current [A]\ninf,1\n"), "t.csv:2: interval 'inf' is not finite");
  EXPECT_EQ(parse_error("Interval [s],Current [A]\n5,1,2\n"),
            "t.csv:2: expected two fields, found more in '5,1,2'");
  EXPECT_EQ(parse_error("Interval [s],Current [A]\n5\n"),
            "t.csv:2: expected two fields separated by ',', found '5'");
  EXPECT_EQ(parse_error("Interval [s],Current [A]\n,1\n"), "t.csv:2: interval '' is not a number");
  EXPECT_EQ(parse_error("Interval [s],Current [A]\n1e-12,1\n"),
            "t.csv:2: interval 1e-12 s is shorter than 1 ns");
  EXPECT_EQ(parse_error("Interval [s],Current [A]\n1e300,1\n"),
            "t.csv:2: interval 1e+300 s is longer than a year");
  EXPECT_EQ(parse_error("Interval [s],Current [A]\n1,1e999\n"), "t.csv:2: setpoint '1e999' is not a number");
}

TEST(ValidateSchedule, NamesTheFirstOffendingLineValueAndLimit) {
  const auto s = parse_ok("Interval [s],Current [A]\n1,-100\n1,100\n1,-100.5\n1,200\n");
  auto result = validate_schedule(s, ScheduleLimits{});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::invalid_argument);
  EXPECT_EQ(result.error().message, "t.csv:4: current -100.5 A is beyond the charge current limit -100 A");
  const auto p = parse_ok("Interval [s],Power [kW]\n1,30\n1,30.5\n");
  result = validate_schedule(p, ScheduleLimits{});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().message, "t.csv:3: power 30.5 kW is beyond the discharge power limit 30 kW");
  EXPECT_TRUE(validate_schedule(p, ScheduleLimits{.discharge_power_kw = 31}).ok());
}

Schedule three_steps() {
  // 10 s at 1, 20 s at 2, 30 s at 3: total 60 s.
  return parse_ok("Interval [s],Current [A]\n10,1\n20,2\n30,3\n");
}

TEST(Runner, StepsAtExactBoundaries) {
  Runner runner(three_steps(), EndAction::stop);
  EXPECT_FALSE(runner.advance(T(0)).has_value());  // not started
  runner.start(T(100 * kS));
  EXPECT_TRUE(runner.position().running);
  EXPECT_EQ(runner.position().setpoint, 1);
  EXPECT_EQ(runner.position().next_change, T(110 * kS));
  EXPECT_FALSE(runner.advance(T(110 * kS - 1)).has_value());
  auto p = runner.advance(T(110 * kS));
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->step, 1u);
  EXPECT_EQ(p->setpoint, 2);
  EXPECT_EQ(p->step_started, T(110 * kS));
  EXPECT_EQ(p->next_change, T(130 * kS));
  EXPECT_FALSE(runner.advance(T(110 * kS)).has_value());  // no change on a repeated call
  EXPECT_FALSE(runner.advance(T(129 * kS)).has_value());
}

TEST(Runner, LongGapPassesSeveralStepsAtOnceWithoutDrift) {
  Runner runner(three_steps(), EndAction::loop);
  runner.start(T(0));
  auto p = runner.advance(T(35 * kS));  // past steps 0 and 1, into step 2
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->step, 2u);
  EXPECT_EQ(p->step_started, T(30 * kS));  // on the schedule's timeline, not at the call
  EXPECT_EQ(p->next_change, T(60 * kS));
  p = runner.advance(T(60 * kS));
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->step, 0u);
  EXPECT_EQ(p->cycle, 1u);
  // A gap of many cycles is skipped arithmetically: 1e6 cycles later, 15 s into a cycle.
  p = runner.advance(T(60 * kS + 1'000'000 * 60 * kS + 15 * kS));
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->step, 1u);
  EXPECT_EQ(p->cycle, 1'000'001u);
  EXPECT_EQ(p->step_started, T((1'000'001LL * 60 + 10) * kS));
  EXPECT_EQ(p->setpoint, 2);
}

TEST(Runner, StopsAtTheEndOrOnRequest) {
  Runner runner(three_steps(), EndAction::stop);
  runner.start(T(0));
  auto p = runner.advance(T(1000 * kS));
  ASSERT_TRUE(p.has_value());
  EXPECT_FALSE(p->running);
  EXPECT_EQ(p->setpoint, 0);
  EXPECT_EQ(p->step_started, T(60 * kS));
  EXPECT_FALSE(runner.advance(T(2000 * kS)).has_value());

  Runner looping(three_steps(), EndAction::loop);
  looping.start(T(0));
  looping.stop(T(5 * kS));
  EXPECT_FALSE(looping.position().running);
  EXPECT_FALSE(looping.advance(T(100 * kS)).has_value());
  looping.start(T(200 * kS));  // a restart begins at the first step
  EXPECT_EQ(looping.position().step, 0u);
  EXPECT_EQ(looping.position().cycle, 0u);
  EXPECT_EQ(looping.position().next_change, T(210 * kS));
}

TEST(ReadbackCheck, OkWithinToleranceAndTimeout) {
  ReadbackCheck check(0.5, Duration(10 * kS));
  EXPECT_FALSE(check.on_measurement(1, T(0)).has_value());  // nothing expected
  check.expect(-20, T(100 * kS));
  EXPECT_TRUE(check.pending());
  EXPECT_EQ(check.deadline(), T(110 * kS));
  EXPECT_FALSE(check.on_measurement(-10, T(101 * kS)).has_value());
  EXPECT_FALSE(check.tick(T(110 * kS)).has_value());  // the deadline itself is still in time
  auto r = check.on_measurement(-19.6, T(110 * kS));
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->ok);
  EXPECT_EQ(r->after, Duration(10 * kS));
  EXPECT_EQ(r->measured, -19.6);
  EXPECT_FALSE(check.pending());
  EXPECT_FALSE(check.tick(T(200 * kS)).has_value());
}

TEST(ReadbackCheck, FailsAfterTheTimeoutAndIsReplacedByANewExpectation) {
  ReadbackCheck check(0.5, Duration(10 * kS));
  check.expect(5, T(0));
  check.expect(-5, T(5 * kS));  // replaces: the deadline moves
  EXPECT_FALSE(check.on_measurement(3, T(12 * kS)).has_value());
  EXPECT_FALSE(check.tick(T(15 * kS)).has_value());
  auto r = check.tick(T(15 * kS + 1));
  ASSERT_TRUE(r.has_value());
  EXPECT_FALSE(r->ok);
  EXPECT_EQ(r->expected, -5);
  EXPECT_EQ(r->measured, 3);
  EXPECT_FALSE(check.pending());
  check.expect(1, T(0));
  r = check.on_measurement(1, T(11 * kS));  // a match after the deadline is late
  ASSERT_TRUE(r.has_value());
  EXPECT_FALSE(r->ok);
  check.expect(1, T(0));
  check.cancel();
  EXPECT_FALSE(check.tick(T(100 * kS)).has_value());
}

// --- the project's examples and the rig's real files ---

std::string source_dir() {
  const char* dir = std::getenv("CELLGUARD_SOURCE_DIR");
  return dir != nullptr ? dir : ".";
}

TEST(ScheduleFiles, ProjectExamplesLoadAndValidate) {
  for (const char* name : {"schedule-current-example.csv", "schedule-power-example.csv"}) {
    auto s = load_schedule(source_dir() + "/data/edge/" + name);
    ASSERT_TRUE(s.ok()) << s.error().message;
    EXPECT_EQ(s->steps.size(), 5u) << name;
    EXPECT_TRUE(validate_schedule(*s, ScheduleLimits{}).ok()) << name;
  }
}

TEST(ScheduleFiles, LoadErrorNamesThePath) {
  auto s = load_schedule("/nonexistent/schedule.csv");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("/nonexistent/schedule.csv"), std::string::npos) << s.error().message;
}

const char* seed_dir() { return std::getenv("CELLGUARD_SEED_DIR"); }

TEST(SeedScheduleFiles, CurrentFileLoadsWithinTheRigLimits) {
  if (seed_dir() == nullptr) GTEST_SKIP() << "CELLGUARD_SEED_DIR is not set";
  auto s = load_schedule(std::string(seed_dir()) + "/schedule-current-Characterization_test.csv");
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->kind, SetpointKind::current_a);
  EXPECT_EQ(s->steps.size(), 324u);  // 325 lines with the header
  EXPECT_EQ(s->steps.front().setpoint, -35);
  EXPECT_EQ(s->steps.front().duration, Duration(300 * kS));
  EXPECT_EQ(s->steps.back().line, 325);
  EXPECT_TRUE(validate_schedule(*s, ScheduleLimits{}).ok());
  // At ±30 A it is refused at its first row (-35 A).
  auto v = validate_schedule(*s, ScheduleLimits{.charge_current_a = -30, .discharge_current_a = 30});
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.error().message.find("schedule-current-Characterization_test.csv:2: current -35 A is beyond "
                                   "the charge current limit -30 A"),
            std::string::npos)
      << v.error().message;
}

TEST(SeedScheduleFiles, PowerFileLoadsAtTheRig30KwAndIsRefusedAtTighterLimitsNamingItsFirstOffendingLine) {
  if (seed_dir() == nullptr) GTEST_SKIP() << "CELLGUARD_SEED_DIR is not set";
  auto s = load_schedule(std::string(seed_dir()) + "/schedule-power-cmsDART_3_300_sec_interval.csv");
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->kind, SetpointKind::power_kw);
  EXPECT_EQ(s->steps.size(), 288u);
  EXPECT_EQ(s->steps.front().duration, Duration(100 * kS));  // despite "300_sec" in its name
  // Its setpoints stay within ±15.72 kW, so the rig's 30 kW limits accept it.
  EXPECT_TRUE(validate_schedule(*s, ScheduleLimits{}).ok());
  auto v = validate_schedule(*s, ScheduleLimits{.charge_power_kw = -15, .discharge_power_kw = 15});
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.error().message.find("schedule-power-cmsDART_3_300_sec_interval.csv:7: power -15.72 kW is "
                                   "beyond the charge power limit -15 kW"),
            std::string::npos)
      << v.error().message;
}

}  // namespace
}  // namespace cellguard::schedule
