// The charge/discharge schedule as the edge runs it: start (precharging first through the
// supervisor), stepping on a timer, each step's setpoint to the inverter, the read-back check of the
// measured current or power, and the supervisor's nudges, which replace the schedule's setpoint
// until they end. Runs on the edge's loop thread; the schedule itself is schedule/schedule.h.
#pragma once

#include <spdlog/spdlog.h>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "core/result.h"
#include "devices/inverter_client.h"
#include "edge/actuator.h"
#include "edge/config.h"
#include "edge/edge_time.h"
#include "schedule/schedule.h"

namespace cellguard::edge {

// What status shows of the schedule.
struct ScheduleStatus {
  std::string file;
  std::size_t steps = 0;
  bool running = false;
  bool precharging = false;  // a start waits for the precharge
  std::size_t step = 0;
  std::uint64_t cycle = 0;
  double setpoint = 0;
  bool nudging = false;
  std::uint64_t readback_ok = 0, readback_failed = 0;
  nlohmann::json last_readback;  // null before the first
};

class ScheduleDriver {
 public:
  struct Hooks {
    std::function<void(nlohmann::json)> emit;  // an event
    std::function<void()> request_precharge;   // the supervisor's start request, carried out
  };

  // `inverter` may be null (no inverter configured): then nothing is commanded.
  ScheduleDriver(asio::io_context& io, ScheduleSection config, InverterCommands* inverter, const Clock& clock,
                 std::shared_ptr<spdlog::logger> log, Hooks hooks);

  // The inverter once it is opened (null: none configured).
  void set_inverter(InverterCommands* inverter) { inverter_ = inverter; }
  // Loads the configured schedule file; without one the driver stays unconfigured.
  Result<void> load();
  bool configured() const { return runner_.has_value(); }
  bool running() const { return runner_ && runner_->position().running; }
  bool start_pending() const { return start_pending_; }

  // Starts the schedule: at once when the contactors are closed (precharge running), otherwise
  // precharging first. Returns "" or why the start is refused. `inverter_ready`: start-up completed.
  std::string request_start(const std::string& origin, bool inverter_ready, const safety::Status& status);
  // The supervisor's answers to a start the schedule asked for.
  void on_precharge_complete(MonoTime now);
  void on_start_refused(const std::string& why);
  // Stops a running schedule (and forgets a pending start); the setpoint stays as it is.
  void stop(const std::string& why);
  // The operator's stop: stop, then setpoint 0 unless a nudge runs.
  void stop_by_operator(MonoTime now);

  // Nudges (actuator.h): the schedule's setpoint waits while one runs.
  void on_nudge_begin();
  void on_nudge_end(MonoTime now);

  // The inverter's readings, for the read-back of the last setpoint.
  void on_inverter_readings(const devices::InverterReadings& readings, MonoTime now);

  void cancel_timers();
  ScheduleStatus status() const;

 private:
  void start_now(MonoTime now);
  void changed(MonoTime now);
  void apply_setpoint(MonoTime now);
  void arm_readback_timer();
  void readback_event(const schedule::ReadbackResult& result);
  devices::InverterMode setpoint_mode() const;

  asio::io_context& io_;
  ScheduleSection config_;
  InverterCommands* inverter_;
  const Clock* clock_;
  std::shared_ptr<spdlog::logger> log_;
  Hooks hooks_;
  asio::steady_timer step_timer_;
  std::optional<schedule::Runner> runner_;
  std::optional<schedule::ReadbackCheck> readback_;
  bool nudging_ = false;
  bool start_pending_ = false;
  std::string last_refusal_;
  std::uint64_t readback_ok_ = 0, readback_failed_ = 0;
  nlohmann::json last_readback_;
};

}  // namespace cellguard::edge
