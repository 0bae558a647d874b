// The edge's status as the operator's `{"cmd":"status"}` answers it: a snapshot struct the edge
// fills from its parts (supervisor, CAN, devices, schedule, recorder, uplink) and one function that
// turns it into JSON. The JSON's fields are the operator protocol (README, the dashboard and the
// process tests read them); the snapshot is what in-process tests check.
#pragma once

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "can/bus.h"
#include "can/error_frame.h"
#include "devices/board_link.h"
#include "devices/inverter_client.h"
#include "devices/outputs.h"
#include "edge/events.h"
#include "edge/schedule_driver.h"
#include "recorder/recorder.h"
#include "safety/safety.h"
#include "uplink/sender.h"

namespace cellguard::edge {

// Counters of the CAN side.
struct CanCounters {
  std::uint64_t frames = 0;
  std::uint64_t module_frames = 0;
  std::uint64_t other_known = 0;
  std::uint64_t unknown = 0;
  std::uint64_t malformed = 0;
  std::uint64_t error_frames = 0;
  std::uint64_t sync_sent = 0;
  std::uint64_t sync_failed = 0;
  std::uint64_t sdo_sent = 0;
  std::uint64_t sdo_responses = 0;
  std::uint64_t sdo_aborts = 0;
  std::uint64_t link_errors = 0;
  std::uint64_t malformed_elements =
      0;  // protocol elements (socketcand) or log lines (replay) that did not parse
  std::uint64_t reopens = 0;
};

struct CanStatus {
  std::string url;
  bool connected = false;
  CanCounters counters;
  can::BusCounters bus;  // of the open bus plus those closed and replaced (dropped, overflows, restarts)
  can::ControllerCounters controller;
  std::uint64_t storm_threshold = 0;  // error frames within the window that make a storm
  double storm_window_s = 0;
};

struct BoardStatus {
  std::string device;
  devices::BoardLinkStats stats;
  std::optional<devices::BoardReading> last;
};

struct OutputsStatus {
  std::string driver;
  std::array<devices::OutputState, devices::kOutputCount> states{};
};

struct InverterStatus {
  std::string url;
  devices::InverterLinkStats stats;
  std::optional<devices::InverterReadings> last;
};

struct StatusSnapshot {
  MonoTime now_ns{};
  TimeBase time;
  std::string edge_id, config_path, config_sha256;
  double uptime_s = 0;
  std::uint64_t handler_failures = 0;
  const safety::Supervisor* supervisor = nullptr;  // for the reasons' texts
  safety::Status safety;
  CanStatus can;
  std::optional<BoardStatus> board;
  std::optional<OutputsStatus> outputs;
  std::optional<InverterStatus> inverter;
  std::optional<ScheduleStatus> schedule;
  std::optional<std::pair<std::string, recorder::RecorderStats>> recording;  // path, stats
  std::optional<std::pair<std::string, uplink::SenderStats>> uplink;         // "host:port", stats
  nlohmann::json frame_handling_latency, frame_to_action_latency;
  std::uint64_t events_dropped = 0;
};

nlohmann::json status_json(const StatusSnapshot& snapshot);

// One output for people and machines: "commanded on at 2026-12-07 03:40:12.345 UTC" without
// read-back, "on (read back)" with it.
nlohmann::json output_state_json(const devices::OutputState& state, const TimeBase& time);
// The contactors as the edge knows them: confirmed only when every contactor relay reads back as
// commanded; without read-back, only "commanded open/closed".
nlohmann::json contactors_json(bool commanded_closed, const std::optional<OutputsStatus>& outputs,
                               const TimeBase& time);
// "2026-12-07 03:40:12.345 UTC".
std::string utc_text(double wall_s);

}  // namespace cellguard::edge
