#include "edge/status.h"

#include <ctime>

namespace cellguard::edge {

using nlohmann::json;

std::string utc_text(double wall_s) {
  const auto seconds = static_cast<std::time_t>(wall_s);
  std::tm tm{};
  ::gmtime_r(&seconds, &tm);
  char buffer[40];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%d %H:%M:%S", &tm);
  char millis[16];
  std::snprintf(millis, sizeof millis, ".%03d UTC",
                static_cast<int>((wall_s - static_cast<double>(seconds)) * 1000));
  return std::string(buffer) + millis;
}

json output_state_json(const devices::OutputState& st, const TimeBase& tb) {
  const std::string level = st.commanded ? "on" : "off";
  json j = {{"commanded", st.commanded}, {"sent", st.sent}};
  if (st.sent_ns > MonoTime()) j["sent_at_s"] = tb.wall_s(st.sent_ns);
  j["read_back"] = st.read_back ? json(*st.read_back) : json(nullptr);
  j["fault"] = st.fault;
  if (st.read_back && *st.read_back == st.commanded) {
    j["text"] = level + " (read back)";
  } else if (st.read_back) {
    j["text"] =
        "commanded " + level + ", reads " + (*st.read_back ? "on" : "off") + (st.fault ? " (fault)" : "");
  } else if (st.sent && st.sent_ns > MonoTime()) {
    j["text"] = "commanded " + level + " at " + utc_text(tb.wall_s(st.sent_ns));
  } else {
    j["text"] = "commanded " + level + ", not yet sent";
  }
  return j;
}

json contactors_json(bool commanded_closed, const std::optional<OutputsStatus>& outputs, const TimeBase& tb) {
  json j = {{"commanded_closed", commanded_closed}};
  if (!outputs) return j;
  bool confirmed = true;
  MonoTime latest_ns;
  for (const auto relay : {devices::Output::relay1, devices::Output::relay2, devices::Output::relay3}) {
    const auto& st = outputs->states[static_cast<std::size_t>(relay)];
    confirmed = confirmed && st.read_back && *st.read_back == st.commanded;
    latest_ns = std::max(latest_ns, st.sent_ns);
  }
  j["confirmed"] = confirmed;
  const std::string what = commanded_closed ? "closed" : "open";
  if (confirmed) {
    j["text"] = what + " (read back)";
  } else {
    j["text"] = "commanded " + what +
                (latest_ns > MonoTime() ? " at " + utc_text(tb.wall_s(latest_ns)) : std::string()) +
                " (no read-back from the board)";
  }
  return j;
}

json status_json(const StatusSnapshot& snap) {
  const MonoTime now = snap.now_ns;
  const auto& s = snap.safety;
  const TimeBase& tb = snap.time;
  const safety::Supervisor& supervisor = *snap.supervisor;
  json j;
  j["edge_id"] = snap.edge_id;
  j["config"] = snap.config_path;
  j["config_sha256"] = snap.config_sha256;
  j["uptime_s"] = snap.uptime_s;
  j["handler_failures"] = snap.handler_failures;
  j["state"] = state_name(s.state);
  j["state_since_s"] = tb.wall_s(s.state_since_ns);
  j["state_reason"] = reason_json(supervisor, s.state_reason, tb);
  j["causes"] = json::array();
  for (const auto& c : s.causes) j["causes"].push_back(reason_json(supervisor, c, tb));
  json modules = json::array();
  for (const auto& m : s.modules) {
    modules.push_back({{"id", m.module_id},
                       {"age_ms", static_cast<double>((now - m.last_seen_ns).count()) / 1e6},
                       {"missed_sync_cycles", m.missed_sync_cycles},
                       {"level", std::string(to_string(m.level))}});
  }
  j["modules"] = {{"expected", s.expected_module_count}, {"found", modules.size()}, {"list", modules}};
  // Issue 13: without read-back the edge only knows what it commanded, never "closed".
  j["contactors"] = contactors_json(s.contactors_closed, snap.outputs, tb);
  j["cooling_on"] = s.cooling_on;
  j["precharge"] = {{"phase", std::string(to_string(s.precharge))}, {"attempts", s.precharge_attempts}};
  const CanStatus& can = snap.can;
  const CanCounters& c = can.counters;
  const can::ControllerCounters& controller = can.controller;
  j["can"] = {{"url", can.url},
              {"connected", can.connected},
              {"frames", c.frames},
              {"module_frames", c.module_frames},
              {"other_known", c.other_known},
              {"unknown", c.unknown},
              {"malformed", c.malformed},
              {"error_frames", c.error_frames},
              {"dropped", can.bus.frames_dropped},
              {"sync_sent", c.sync_sent},
              {"sync_failed", c.sync_failed},
              {"sdo_sent", c.sdo_sent},
              {"sdo_responses", c.sdo_responses},
              {"sdo_aborts", c.sdo_aborts},
              {"link_errors", c.link_errors},
              {"malformed_elements", c.malformed_elements},
              {"error_frame_storm", {{"threshold", can.storm_threshold}, {"window_s", can.storm_window_s}}},
              {"reopens", c.reopens},
              {"controller_state", can::to_string(controller.state)},
              {"bus_off", controller.bus_off},
              {"error_passive", controller.error_passive},
              {"error_warning", controller.error_warning},
              {"restarts", controller.restarts},
              {"restart_requests", can.bus.restarts_requested},
              {"restart_failures", can.bus.restart_failures},
              {"bus_errors", controller.bus_errors},
              {"rx_queue_overflows", can.bus.rx_queue_overflows}};
  if (snap.board) {
    const auto& b = snap.board->stats;
    j["board"] = {{"device", snap.board->device},       {"connected", b.connected},
                  {"lines_valid", b.lines_valid},       {"lines_invalid", b.lines_invalid},
                  {"lines_overlong", b.lines_overlong}, {"opens", b.opens},
                  {"disconnects", b.disconnects},       {"checksum_errors", b.checksum_errors},
                  {"extension", b.extension},           {"firmware", b.firmware},
                  {"fail_safe", b.fail_safe},           {"heartbeats_sent", b.heartbeats_sent},
                  {"readbacks_ok", b.readbacks_ok},     {"readback_mismatches", b.readback_mismatches},
                  {"board_resets", b.board_resets},     {"watchdog_resets", b.watchdog_resets}};
    if (const auto& last = snap.board->last)
      j["board"]["last"] = {{"temp1_c", last->temp1_c.value},
                            {"temp2_c", last->temp2_c.value},
                            {"pressure", last->pressure.value},
                            {"age_ms", static_cast<double>((now - last->time).count()) / 1e6}};
  }
  if (snap.outputs) {
    json o;
    json states;
    for (std::size_t i = 0; i < devices::kOutputCount; ++i) {
      const auto output = static_cast<devices::Output>(i);
      o[std::string(to_string(output))] = snap.outputs->states[i].commanded;
      states[std::string(to_string(output))] = output_state_json(snap.outputs->states[i], tb);
    }
    j["outputs"] = {{"driver", snap.outputs->driver}, {"commanded", o}, {"state", states}};
  }
  if (snap.inverter) {
    const auto& st = snap.inverter->stats;
    j["inverter"] = {
        {"url", snap.inverter->url},
        {"phase", std::string(to_string(st.phase))},
        {"transactions", st.transactions},
        {"timeouts", st.timeouts},
        {"crc_errors", st.crc_errors},
        {"exceptions", st.exceptions},
        {"retries", st.retries},
        {"reconnects", st.reconnects},
        {"heartbeats", st.heartbeats},
        {"consecutive_failures", st.consecutive_failures},
        {"bad_answers", st.bad_answers},
        {"echo_mismatches", st.echo_mismatches},
        {"read_failures", st.read_failures},
        {"heartbeat_failures", st.heartbeat_failures},
        {"heartbeat_age_ms", static_cast<double>((now - s.inverter_last_heartbeat_ns).count()) / 1e6},
        {"last_error", st.last_error},
        {"mode", std::string(to_string(st.mode))},
        {"setpoint", st.setpoint}};
    if (const auto& last = snap.inverter->last)
      j["inverter"]["last"] = {{"battery_voltage_v", last->battery_voltage_v},
                               {"dc_link_voltage_v", last->dc_link_voltage_v},
                               {"dc_link_current_a", last->dc_link_current_a},
                               {"dc_link_power_kw", last->dc_link_power_kw},
                               {"ready", last->ready},
                               {"age_ms", static_cast<double>((now - last->time_ns).count()) / 1e6},
                               {"time_s", tb.wall_s(last->time_ns)},
                               // Older than the readings bound: a value from the past, not the present.
                               {"stale", s.inverter_readings_stale}};
    j["inverter"]["readings_stale"] = s.inverter_readings_stale;
  }
  if (snap.schedule) {
    const ScheduleStatus& p = *snap.schedule;
    j["schedule"] = {{"file", p.file},
                     {"steps", p.steps},
                     {"running", p.running},
                     {"precharging", p.precharging},
                     {"step", p.step},
                     {"cycle", p.cycle},
                     {"setpoint", p.setpoint},
                     {"nudging", p.nudging},
                     {"readback_ok", p.readback_ok},
                     {"readback_failed", p.readback_failed}};
    if (!p.last_readback.is_null()) j["schedule"]["last_readback"] = p.last_readback;
  }
  if (snap.recording) {
    const auto& r = snap.recording->second;
    j["recording"] = {{"path", snap.recording->first},
                      {"records_committed", r.records_committed},
                      {"records_dropped", r.records_dropped},
                      {"blocks", r.blocks_committed},
                      {"blocks_deleted", r.blocks_deleted},
                      {"file_bytes", r.file_bytes},
                      {"last_error", r.last_error}};
  }
  if (snap.uplink) {
    const auto& u = snap.uplink->second;
    j["uplink"] = {{"server", snap.uplink->first},     {"connected", u.connected},
                   {"connects", u.connects},           {"connect_failures", u.connect_failures},
                   {"disconnects", u.disconnects},     {"batches_sent", u.batches_sent},
                   {"batches_acked", u.batches_acked}, {"live_sent", u.live_sent},
                   {"backlog_sent", u.backlog_sent},   {"samples_sent", u.samples_sent},
                   {"bytes_sent", u.bytes_sent},       {"backlog_batches", u.backlog_batches},
                   {"lost_records", u.lost_records},   {"last_acked_seq", u.last_acked_seq},
                   {"last_error", u.last_error}};
  }
  j["latency"] = {{"frame_handling", snap.frame_handling_latency},
                  {"frame_to_action", snap.frame_to_action_latency}};
  j["events_dropped"] = snap.events_dropped;
  return j;
}

}  // namespace cellguard::edge
