// The schedule driver on a real io_context with short steps: stepping, setpoints, precharge first,
// nudges holding the schedule's setpoint, read-back. Runs for a few hundred ms at most.
#include "edge/schedule_driver.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace cellguard::edge {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

struct Commands final : InverterCommands {
  void command_off(MonoTime) override { setpoints.push_back(0); }
  void command_setpoint(devices::InverterMode, double setpoint, MonoTime) override {
    setpoints.push_back(setpoint);
  }
  std::vector<double> setpoints;
};

class EdgeScheduleDriver : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = fs::temp_directory_path() / ("cellguard-schedule-driver-" + std::to_string(::getpid()) + ".csv");
  }
  void TearDown() override { fs::remove(path_); }

  std::unique_ptr<ScheduleDriver> make(const std::string& csv, Duration readback_timeout_ns = 10 * kSecond,
                                       std::function<void()> precharge = {}) {
    std::ofstream(path_) << csv;
    ScheduleSection config;
    config.path = path_.string();
    config.at_end = schedule::EndAction::stop;
    config.readback_tolerance = 0.5;
    config.readback_timeout_ns = readback_timeout_ns;
    auto driver = std::make_unique<ScheduleDriver>(
        io_, config, &inverter_, system_clock(), std::make_shared<spdlog::logger>("test"),
        ScheduleDriver::Hooks{[this](nlohmann::json e) { events_.push_back(std::move(e)); },
                              precharge ? precharge : [] {}});
    EXPECT_TRUE(driver->load().ok());
    return driver;
  }
  static safety::Status contactors_closed() {
    safety::Status s;
    s.precharge = safety::PrechargePhase::running;
    return s;
  }
  void run_until(const std::function<bool()>& done, std::chrono::milliseconds bound = 1000ms) {
    const auto until = std::chrono::steady_clock::now() + bound;
    while (!done() && std::chrono::steady_clock::now() < until) io_.run_for(2ms);
  }
  std::vector<std::string> event_names() const {
    std::vector<std::string> names;
    for (const auto& e : events_) names.push_back(e.value("event", e.value("operator", "")));
    return names;
  }

  fs::path path_;
  asio::io_context io_;
  Commands inverter_;
  std::vector<nlohmann::json> events_;
};

TEST_F(EdgeScheduleDriver, StepsThroughTheSetpointsAndEndsAtZero) {
  auto driver = make("Interval [s],Current [A]\n0.03,-10\n0.03,10\n");
  EXPECT_EQ(driver->request_start("operator", true, contactors_closed()), "");
  EXPECT_TRUE(driver->running());
  run_until([&] { return !driver->running(); });
  EXPECT_EQ(inverter_.setpoints, (std::vector<double>{-10, 10, 0}));
  EXPECT_EQ(event_names(), (std::vector<std::string>{"started", "step", "step", "ended"}));
  EXPECT_EQ(events_[1]["unit"], "A");
}

TEST_F(EdgeScheduleDriver, RefusedWithoutInverterOrInADangerousState) {
  auto driver = make("Interval [s],Current [A]\n1,5\n");
  EXPECT_EQ(driver->request_start("operator", false, contactors_closed()),
            "the inverter has not completed its start-up");
  safety::Status dangerous = contactors_closed();
  dangerous.state = safety::State::dangerous;
  EXPECT_EQ(driver->request_start("operator", true, dangerous), "state dangerous");
  EXPECT_TRUE(inverter_.setpoints.empty());
}

// With the contactors open, the start precharges first: the schedule starts on precharge_complete,
// or the supervisor's refusal is the answer.
TEST_F(EdgeScheduleDriver, PrechargeFirst) {
  ScheduleDriver* self = nullptr;
  int precharges = 0;
  auto driver = make("Interval [s],Current [A]\n1,5\n", 10 * kSecond, [&] {
    ++precharges;
    self->on_start_refused("2 of 8 modules found");
  });
  self = driver.get();
  EXPECT_EQ(driver->request_start("operator", true, safety::Status{}), "2 of 8 modules found");
  EXPECT_FALSE(driver->running());
  EXPECT_FALSE(driver->start_pending());

  auto accepted = make("Interval [s],Current [A]\n1,5\n");
  EXPECT_EQ(accepted->request_start("autostart", true, safety::Status{}), "");
  EXPECT_TRUE(accepted->start_pending());
  EXPECT_FALSE(accepted->running());
  accepted->on_precharge_complete(mono_now());
  EXPECT_TRUE(accepted->running());
  EXPECT_EQ(precharges, 1);
  EXPECT_EQ(inverter_.setpoints, std::vector<double>{5});
}

// A nudge replaces the schedule's setpoint; the schedule's steps wait until it ends.
TEST_F(EdgeScheduleDriver, NudgeHoldsTheScheduleSetpointUntilItEnds) {
  auto driver = make("Interval [s],Current [A]\n0.02,-10\n5,-20\n");
  ASSERT_EQ(driver->request_start("operator", true, contactors_closed()), "");
  driver->on_nudge_begin();
  run_until([&] { return driver->status().step == 1; });
  EXPECT_EQ(inverter_.setpoints, std::vector<double>{-10}) << "no schedule setpoint while the nudge runs";
  EXPECT_TRUE(driver->status().nudging);
  driver->on_nudge_end(mono_now());
  EXPECT_EQ(inverter_.setpoints, (std::vector<double>{-10, -20}));
  driver->stop_by_operator(mono_now());
  EXPECT_FALSE(driver->running());
  EXPECT_EQ(inverter_.setpoints.back(), 0);
}

// Read-back: the measured current within the tolerance is ok; no matching reading by the timeout fails.
TEST_F(EdgeScheduleDriver, ReadbackOkAndFailed) {
  auto driver = make("Interval [s],Current [A]\n0.05,5\n5,-5\n", 30 * kMs);
  ASSERT_EQ(driver->request_start("operator", true, contactors_closed()), "");
  devices::InverterReadings r;
  r.dc_link_current_a = 5.3;
  driver->on_inverter_readings(r, mono_now());
  EXPECT_EQ(driver->status().readback_ok, 1u);
  run_until([&] { return driver->status().readback_failed == 1; });
  const ScheduleStatus s = driver->status();
  EXPECT_EQ(s.readback_failed, 1u);
  EXPECT_EQ(s.last_readback["event"], "readback_failed");
  EXPECT_EQ(s.last_readback["expected"], -5.0);
}

}  // namespace
}  // namespace cellguard::edge
