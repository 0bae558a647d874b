#include "devices/inverter_client.h"

#include <modbus/modbus.h>

#include <algorithm>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace cellguard::devices {
namespace {

using SteadyClock = std::chrono::steady_clock;
using Nanoseconds = std::chrono::nanoseconds;

// After this many transactions in a row fail, the link is closed and opened again: a TCP peer may
// have gone, a serial adapter may have been re-plugged.
constexpr int kFailuresBeforeReconnect = 3;

std::uint16_t to_raw(double value, double scale) {
  const double scaled = std::round(value * scale);
  const double clamped = std::clamp(scaled, -32768.0, 32767.0);
  return static_cast<std::uint16_t>(static_cast<std::int16_t>(clamped));
}

double from_raw(std::uint16_t raw, double scale) { return static_cast<std::int16_t>(raw) / scale; }

std::string format_ms(TimeNs ns) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.1f ms", static_cast<double>(ns) / 1e6);
  return buffer;
}

std::string format_value(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%g", v);
  return buffer;
}

bool is_exception(int err) { return err >= EMBXILFUN && err <= EMBXGTAR; }

// An answer arrived but is not the one asked for (wrong byte count, function, unit or echo).
bool is_malformed(int err) { return err == EMBBADDATA || err == EMBMDATA || err == EMBBADSLAVE || err == EMBBADEXC || err == EMBUNKEXC; }

}  // namespace

// --- the client ---

struct InverterClient::Impl {
  struct SetpointCommand {
    InverterMode mode = InverterMode::off;
    double setpoint = 0;
    TimeNs requested_ns = 0;
  };
  // One write of the start-up sequence.
  struct StartupWrite {
    std::uint16_t address;
    std::uint16_t value;
    std::string what;
  };

  Impl(asio::io_context& l, InverterClientConfig c, Clock clk) : loop(l), config(std::move(c)), clock(std::move(clk)) {}

  asio::io_context& loop;
  const InverterClientConfig config;
  const Clock clock;
  ReadingsHandler readings_handler;
  LinkHandler link_handler;
  EventHandler event_handler;
  HeartbeatHandler heartbeat_handler;

  std::thread worker;
  mutable std::mutex mutex;  // guards everything below
  std::condition_variable wake;
  bool stopping = false;
  bool started = false;
  std::uint64_t commands = 0;  // counts command_off/command_setpoint calls, to wake the worker
  std::optional<TimeNs> off_requested;
  std::optional<SetpointCommand> setpoint_pending;
  InverterLinkStats link_stats;

  // Worker thread only.
  modbus_t* ctx = nullptr;
  std::vector<StartupWrite> startup_writes;
  std::size_t startup_index = 0;
  bool settling = false;
  SteadyClock::time_point settle_deadline{};
  SteadyClock::time_point next_heartbeat{};
  SteadyClock::time_point next_poll{};
  SteadyClock::time_point next_startup{};
  SteadyClock::time_point next_off_attempt{};
  std::uint16_t input_first = 0;
  int input_count = 0;
  std::string echo_problem;  // why the last verified write was refused (set just before returning -1)
  int other_failing = 0;     // guarded by mutex: start-up/command writes failed since the last success

  // --- posting to the loop ---

  void post_event(InverterEvent::Kind kind, std::string message, TimeNs requested_ns = 0) {
    if (!event_handler) return;
    InverterEvent event{kind, clock(), std::move(message), requested_ns};
    asio::post(loop, [handler = event_handler, event = std::move(event)] { handler(event); });
  }
  void post_link(bool ok, std::string detail) {
    if (!link_handler) return;
    asio::post(loop, [handler = link_handler, ok, t = clock(), detail = std::move(detail)] { handler(ok, t, detail); });
  }
  void set_phase(InverterPhase phase) {
    std::lock_guard lock(mutex);
    link_stats.phase = phase;
  }
  InverterPhase phase() const {
    std::lock_guard lock(mutex);
    return link_stats.phase;
  }
  bool should_stop() const {
    std::lock_guard lock(mutex);
    return stopping;
  }

  // --- the link ---

  bool connect() {
    const auto& e = config.endpoint;
    ctx = e.transport == InverterEndpoint::Transport::tcp
              ? modbus_new_tcp(e.host.c_str(), e.port)
              : modbus_new_rtu(e.device.c_str(), static_cast<int>(e.baud), e.parity, e.data_bits, e.stop_bits);
    std::string reason;
    if (ctx == nullptr) {
      reason = std::string("cannot create the libmodbus context: ") + modbus_strerror(errno);
    } else {
      const auto timeout_us = std::max<TimeNs>(config.response_timeout_ns / 1000, 1000);
      modbus_set_response_timeout(ctx, static_cast<std::uint32_t>(timeout_us / 1'000'000),
                                  static_cast<std::uint32_t>(timeout_us % 1'000'000));
      modbus_set_slave(ctx, e.slave);
      if (modbus_connect(ctx) != 0) {
        reason = std::string("cannot connect to ") + to_string(e) + ": " + modbus_strerror(errno);
        modbus_free(ctx);
        ctx = nullptr;
      }
    }
    if (ctx == nullptr) {
      {
        std::lock_guard lock(mutex);
        link_stats.last_error = reason;
        ++link_stats.consecutive_failures;
      }
      post_link(false, reason);
      return false;
    }
    post_event(InverterEvent::Kind::connected, "connected to " + to_string(e));
    return true;
  }

  void disconnect(const std::string& reason) {
    if (ctx == nullptr) return;
    modbus_close(ctx);
    modbus_free(ctx);
    ctx = nullptr;
    {
      std::lock_guard lock(mutex);
      ++link_stats.reconnects;
      link_stats.phase = InverterPhase::connecting;
      link_stats.mode = InverterMode::off;  // unknown: the start-up writes it again
      // A setpoint asked for before the loss is not applied after the new start-up.
      if (setpoint_pending) {
        post_event(InverterEvent::Kind::command_failed,
                   std::string(to_string(setpoint_pending->mode)) + " " + format_value(setpoint_pending->setpoint) + ": link lost",
                   setpoint_pending->requested_ns);
        setpoint_pending.reset();
      }
    }
    post_event(InverterEvent::Kind::disconnected, reason);
  }

  // Which freshness a transaction feeds: polls and heartbeats each have their own; a failure of
  // one stays until that kind succeeds again. Other writes (start-up, commands) fail on their own.
  enum class Kind : std::uint8_t { reading, heartbeat, other };

  // The link is healthy when no kind is failing (caller holds the mutex).
  bool healthy_locked() const { return link_stats.read_failures == 0 && link_stats.heartbeat_failures == 0 && other_failing == 0; }

  // One transaction with retries after timeouts, CRC errors and malformed answers. Returns true on
  // success, else `error` holds the reason. Counts in the stats; reports to the link handler.
  template <typename Op>
  bool transact(const char* what, Kind kind, Op op, std::string& error) {
    int attempt = 0;
    while (true) {
      errno = 0;
      const int rc = op();
      const int err = errno;
      {
        std::lock_guard lock(mutex);
        ++link_stats.transactions;
        if (rc >= 0) {
        } else if (err == ETIMEDOUT) {
          ++link_stats.timeouts;
        } else if (err == EMBBADCRC) {
          ++link_stats.crc_errors;
        } else if (is_exception(err)) {
          ++link_stats.exceptions;
        } else if (is_malformed(err)) {
          ++link_stats.bad_answers;
        }
      }
      if (rc >= 0) {
        bool healthy = false;
        {
          std::lock_guard lock(mutex);
          if (kind == Kind::reading) link_stats.read_failures = 0;
          if (kind == Kind::heartbeat) link_stats.heartbeat_failures = 0;
          other_failing = 0;
          healthy = healthy_locked();
          if (healthy) link_stats.consecutive_failures = 0;
        }
        if (healthy) post_link(true, what);
        return true;
      }
      const bool retryable = err == ETIMEDOUT || err == EMBBADCRC || is_malformed(err);
      if (err == ETIMEDOUT) {
        error = std::string(what) + ": timeout";
      } else if (err == EMBBADDATA && !echo_problem.empty()) {
        error = std::string(what) + ": " + echo_problem;
      } else if (err == EMBBADDATA && kind == Kind::reading) {
        error = std::string(what) + ": malformed answer (wrong byte count or function)";
      } else {
        error = std::string(what) + ": " + modbus_strerror(err);
      }
      echo_problem.clear();
      if (retryable && attempt < config.retries && !should_stop()) {
        ++attempt;
        modbus_flush(ctx);  // a late answer must not be taken for the retry's
        std::lock_guard lock(mutex);
        ++link_stats.retries;
        continue;
      }
      int failures = 0;
      {
        std::lock_guard lock(mutex);
        link_stats.last_error = error;
        failures = ++link_stats.consecutive_failures;
        if (kind == Kind::reading) ++link_stats.read_failures;
        if (kind == Kind::heartbeat) ++link_stats.heartbeat_failures;
        if (kind == Kind::other) ++other_failing;
      }
      post_link(false, error);
      // An exception is an answer: the link works. Anything else (timeouts, broken socket,
      // malformed answers) counts toward a reconnect.
      if (!is_exception(err)) {
        if (retryable) modbus_flush(ctx);
        const bool broken = !retryable && err != EINVAL && err != EMBBADEXC && err != EMBUNKEXC;
        if (broken || failures >= kFailuresBeforeReconnect) disconnect("link lost: " + error);
      }
      return false;
    }
  }

  // Function 6 with its answer checked: libmodbus 3.1 compares only the function code of a
  // function-6 answer, so the request is sent raw and the echo (unit, address, value; for TCP the
  // transaction id, 0 for raw requests) is verified here. Returns -1 with errno like libmodbus.
  int write_register_verified(std::uint16_t address, std::uint16_t value) {
    const int unit = config.endpoint.slave;
    std::uint8_t request[6] = {static_cast<std::uint8_t>(unit), 0x06, static_cast<std::uint8_t>(address >> 8),
                               static_cast<std::uint8_t>(address & 0xff), static_cast<std::uint8_t>(value >> 8),
                               static_cast<std::uint8_t>(value & 0xff)};
    if (modbus_send_raw_request(ctx, request, sizeof request) < 0) return -1;
    std::uint8_t answer[MODBUS_MAX_ADU_LENGTH];
    const int length = modbus_receive_confirmation(ctx, answer);
    if (length < 0) return -1;
    const bool tcp = config.endpoint.transport == InverterEndpoint::Transport::tcp;
    const int header = modbus_get_header_length(ctx);  // TCP: MBAP (7), RTU: unit (1)
    const int trailer = tcp ? 0 : 2;                     // RTU: CRC (checked by libmodbus)
    if (length < header + 1 + trailer || answer[header - 1] != unit || (tcp && (answer[0] != 0 || answer[1] != 0))) {
      echo_problem = "answer from another unit or transaction";
      errno = EMBBADDATA;
      return -1;
    }
    std::string problem;
    const int err = check_write_echo(answer + header, static_cast<std::size_t>(length - header - trailer), address, value, problem);
    if (err != 0) {
      if (err == EMBBADDATA) {
        echo_problem = problem;
        std::lock_guard lock(mutex);
        ++link_stats.echo_mismatches;
      }
      errno = err;
      return -1;
    }
    return 1;
  }

  bool write(std::uint16_t address, std::uint16_t value, const char* what, std::string& error, Kind kind = Kind::other) {
    return transact(what, kind, [&] { return write_register_verified(address, value); }, error);
  }

  // --- start-up ---

  void begin_startup() {
    const auto& r = config.registers;
    const auto& l = config.limits;
    const auto heartbeat = static_cast<std::uint16_t>(std::clamp<TimeNs>(config.heartbeat_timeout_ns / 100'000'000, 1, 1000));
    startup_writes = {
        {r.security_code, r.security_value, "security code"},
        {r.heartbeat, heartbeat, "heartbeat"},
        {r.op_mode, r.mode_off, "mode off"},
        {r.bat_max_volt, to_raw(l.max_voltage_v, r.voltage_scale), "max voltage " + format_value(l.max_voltage_v) + " V"},
        {r.bat_min_volt, to_raw(l.min_voltage_v, r.voltage_scale), "min voltage " + format_value(l.min_voltage_v) + " V"},
        {r.bat_max_charge_current, to_raw(l.charge_current_a, r.current_scale),
         "charge current limit " + format_value(l.charge_current_a) + " A"},
        {r.bat_max_discharge_current, to_raw(l.discharge_current_a, r.current_scale),
         "discharge current limit " + format_value(l.discharge_current_a) + " A"},
        {r.bat_max_charge_power, to_raw(l.charge_power_kw, r.power_scale), "charge power limit " + format_value(l.charge_power_kw) + " kW"},
        {r.op_mode_setpoint, 0, "setpoint 0"},
    };
    startup_index = 0;
    settling = false;
    set_phase(InverterPhase::starting);
  }

  void acknowledge_heartbeat() {
    const TimeNs t = clock();
    {
      std::lock_guard lock(mutex);
      ++link_stats.heartbeats;
      link_stats.last_heartbeat_ack_ns = t;
    }
    if (heartbeat_handler) asio::post(loop, [handler = heartbeat_handler, t] { handler(t); });
  }

  void fail_startup(const std::string& reason) {
    set_phase(InverterPhase::startup_failed);
    settling = false;
    next_startup = SteadyClock::now() + Nanoseconds(config.reconnect_interval_ns);
    post_event(InverterEvent::Kind::startup_failed, reason);
  }

  // The next start-up write, with its readback (function 3) where the device allows it.
  void startup_step() {
    const auto& step = startup_writes[startup_index];
    std::string error;
    const bool is_heartbeat = step.address == config.registers.heartbeat;
    if (!write(step.address, step.value, step.what.c_str(), error, is_heartbeat ? Kind::heartbeat : Kind::other)) {
      if (ctx != nullptr) fail_startup("start-up: " + error);
      return;
    }
    if (is_heartbeat) acknowledge_heartbeat();
    std::uint16_t readback = 0;
    errno = 0;
    std::string detail = step.what + " written (" + std::to_string(step.value) + " to " + std::to_string(step.address) + ")";
    if (modbus_read_registers(ctx, step.address, 1, &readback) == 1) {
      // The security code register may read back as a status rather than the code; the heartbeat
      // is a countdown: compare the rest.
      const bool comparable = step.address != config.registers.security_code && step.address != config.registers.heartbeat;
      if (comparable && readback != step.value) {
        fail_startup("start-up: " + step.what + " reads back " + std::to_string(readback) + ", wrote " + std::to_string(step.value));
        return;
      }
      detail += ", read back " + std::to_string(readback);
    } else {
      modbus_flush(ctx);
      detail += ", no readback (" + std::string(modbus_strerror(errno)) + ")";
    }
    post_event(InverterEvent::Kind::startup_step, detail);
    if (step.address == config.registers.heartbeat) {
      next_heartbeat = SteadyClock::now() + Nanoseconds(config.heartbeat_period_ns);
    }
    if (step.address == config.registers.op_mode) {
      std::lock_guard lock(mutex);
      link_stats.mode = InverterMode::off;
      link_stats.setpoint = 0;
    }
    if (++startup_index == startup_writes.size()) {
      settling = true;
      settle_deadline = SteadyClock::now() + Nanoseconds(config.startup_settle_timeout_ns);
      next_poll = SteadyClock::now();
      post_event(InverterEvent::Kind::startup_step, "waiting up to " + format_ms(config.startup_settle_timeout_ns) +
                                                       " for current and power ≈ 0 and the voltage within the limits");
    }
  }

  void check_settled(const InverterReadings& r) {
    const auto& l = config.limits;
    const bool settled = std::fabs(r.dc_link_current_a) <= config.settle_current_a &&
                         std::fabs(r.dc_link_power_kw) <= config.settle_power_kw && r.battery_voltage_v >= l.min_voltage_v &&
                         r.battery_voltage_v <= l.max_voltage_v;
    if (settled) {
      settling = false;
      set_phase(InverterPhase::running);
      post_event(InverterEvent::Kind::startup_done,
                 "start-up done: " + format_value(r.battery_voltage_v) + " V, " + format_value(r.dc_link_current_a) + " A, " +
                     format_value(r.dc_link_power_kw) + " kW");
    } else if (SteadyClock::now() >= settle_deadline) {
      fail_startup("start-up: not settled within " + format_ms(config.startup_settle_timeout_ns) + ": " +
                   format_value(r.battery_voltage_v) + " V (limits " + format_value(l.min_voltage_v) + ".." +
                   format_value(l.max_voltage_v) + "), " + format_value(r.dc_link_current_a) + " A, " +
                   format_value(r.dc_link_power_kw) + " kW");
    }
  }

  // --- periodic work ---

  void compute_input_block() {
    const auto& r = config.registers;
    const std::uint16_t first[] = {r.ambient_temp, r.heatsink_temp, r.modbus_timer, r.battery_voltage, r.voltage_ref,
                                   r.dc_link_voltage, r.dc_link_power, r.dc_link_current, r.ready, r.fault_first,
                                   r.warning_first, r.status, r.charged_kwh_high, r.discharged_kwh_high, r.power_limit};
    const std::uint16_t last[] = {r.ambient_temp, r.heatsink_temp, r.modbus_timer, r.battery_voltage, r.voltage_ref,
                                  r.dc_link_voltage, r.dc_link_power, r.dc_link_current, r.ready,
                                  static_cast<std::uint16_t>(r.fault_first + 3), static_cast<std::uint16_t>(r.warning_first + 2),
                                  r.status, static_cast<std::uint16_t>(r.charged_kwh_high + 1),
                                  static_cast<std::uint16_t>(r.discharged_kwh_high + 1), r.power_limit};
    input_first = *std::min_element(std::begin(first), std::end(first));
    input_count = *std::max_element(std::begin(last), std::end(last)) - input_first + 1;
  }

  void poll() {
    // One read of the whole block (30256..30285 on the rig: 30 registers, within the 125 a read
    // may ask for) keeps the readings of one instant together.
    std::vector<std::uint16_t> regs(static_cast<std::size_t>(input_count));
    std::string error;
    // libmodbus checks the byte count against the request (EMBBADDATA) and the CRC (RTU).
    if (!transact("read input registers", Kind::reading,
                  [&] { return modbus_read_input_registers(ctx, input_first, input_count, regs.data()); }, error)) {
      if (settling && SteadyClock::now() >= settle_deadline) fail_startup("start-up: " + error);
      return;
    }
    const auto& m = config.registers;
    auto at = [&](std::uint16_t address) { return regs[static_cast<std::size_t>(address - input_first)]; };
    auto u32 = [&](std::uint16_t high) { return (static_cast<std::uint32_t>(at(high)) << 16) | at(static_cast<std::uint16_t>(high + 1)); };
    InverterReadings r;
    r.time_ns = clock();
    r.battery_voltage_v = from_raw(at(m.battery_voltage), m.voltage_scale);
    r.voltage_ref_v = from_raw(at(m.voltage_ref), m.voltage_scale);
    r.dc_link_voltage_v = from_raw(at(m.dc_link_voltage), m.voltage_scale);
    r.dc_link_power_kw = from_raw(at(m.dc_link_power), m.power_scale);
    r.dc_link_current_a = from_raw(at(m.dc_link_current), m.current_scale);
    r.ambient_c = from_raw(at(m.ambient_temp), m.temperature_scale);
    r.heatsink_c = from_raw(at(m.heatsink_temp), m.temperature_scale);
    r.comm_timer_s = at(m.modbus_timer) * 0.1;
    r.ready = at(m.ready) != 0;
    for (std::size_t i = 0; i < r.faults.size(); ++i) r.faults[i] = at(static_cast<std::uint16_t>(m.fault_first + i));
    for (std::size_t i = 0; i < r.warnings.size(); ++i) r.warnings[i] = at(static_cast<std::uint16_t>(m.warning_first + i));
    r.status = at(m.status);
    r.charged_kwh = u32(m.charged_kwh_high) * 0.1;
    r.discharged_kwh = u32(m.discharged_kwh_high) * 0.1;
    r.power_limit_kw = from_raw(at(m.power_limit), m.power_scale);
    {
      std::lock_guard lock(mutex);
      link_stats.last_reading_ns = r.time_ns;
    }
    if (readings_handler) asio::post(loop, [handler = readings_handler, r] { handler(r); });
    if (settling) check_settled(r);
  }

  void heartbeat() {
    const auto value = static_cast<std::uint16_t>(std::clamp<TimeNs>(config.heartbeat_timeout_ns / 100'000'000, 1, 1000));
    std::string error;
    // Scheduled from the previous due time, not from now, so slow transactions do not stretch it.
    next_heartbeat += Nanoseconds(config.heartbeat_period_ns);
    if (next_heartbeat < SteadyClock::now()) next_heartbeat = SteadyClock::now() + Nanoseconds(config.heartbeat_period_ns);
    if (write(config.registers.heartbeat, value, "heartbeat", error, Kind::heartbeat)) acknowledge_heartbeat();
  }

  void write_off(TimeNs requested_ns) {
    std::string error;
    if (write(config.registers.op_mode, config.registers.mode_off, "mode off", error)) {
      {
        std::lock_guard lock(mutex);
        // A newer off request arrived meanwhile: this write served it too.
        off_requested.reset();
        link_stats.mode = InverterMode::off;
        link_stats.setpoint = 0;
      }
      post_event(InverterEvent::Kind::command_written, "mode off written " + format_ms(clock() - requested_ns) + " after the request",
                 requested_ns);
    } else {
      // Stays queued: off is retried until it is written (paced, so an exception does not spin).
      next_off_attempt = SteadyClock::now() + Nanoseconds(config.poll_period_ns);
      post_event(InverterEvent::Kind::command_failed, "mode off: " + error + " (retrying)", requested_ns);
    }
  }

  std::uint16_t mode_value(InverterMode mode) const {
    const auto& r = config.registers;
    switch (mode) {
      case InverterMode::off: return r.mode_off;
      case InverterMode::power: return r.mode_power;
      case InverterMode::current: return r.mode_current;
      case InverterMode::voltage: return r.mode_voltage;
    }
    return r.mode_off;
  }

  std::uint16_t setpoint_raw(InverterMode mode, double value) const {
    const auto& r = config.registers;
    switch (mode) {
      case InverterMode::power: return to_raw(value, r.power_scale);
      case InverterMode::current: return to_raw(value, r.current_scale);
      case InverterMode::voltage: return to_raw(value, r.voltage_scale);
      case InverterMode::off: break;
    }
    return 0;
  }

  bool off_queued() const {
    std::lock_guard lock(mutex);
    return off_requested.has_value();
  }

  void write_setpoint(const SetpointCommand& command) {
    InverterMode current_mode;
    {
      std::lock_guard lock(mutex);
      current_mode = link_stats.mode;
    }
    const std::string what = std::string(to_string(command.mode)) + " " + format_value(command.setpoint);
    std::string error;
    // A mode change first zeroes the setpoint: the old one means something else (A vs kW) in the
    // new mode. The setpoint is written before the mode so the new mode starts at its own value.
    bool ok = true;
    if (current_mode != command.mode && current_mode != InverterMode::off) {
      ok = write(config.registers.op_mode_setpoint, 0, "setpoint 0", error);
    }
    if (ok && !off_queued()) ok = write(config.registers.op_mode_setpoint, setpoint_raw(command.mode, command.setpoint), "setpoint", error);
    if (ok && !off_queued() && current_mode != command.mode) ok = write(config.registers.op_mode, mode_value(command.mode), "mode", error);
    if (ok && off_queued()) {
      post_event(InverterEvent::Kind::command_failed, what + ": preempted by mode off", command.requested_ns);
      return;
    }
    if (!ok) {
      post_event(InverterEvent::Kind::command_failed, what + ": " + error, command.requested_ns);
      return;
    }
    {
      std::lock_guard lock(mutex);
      link_stats.mode = command.mode;
      link_stats.setpoint = command.setpoint;
    }
    post_event(InverterEvent::Kind::command_written, what + " written " + format_ms(clock() - command.requested_ns) + " after the request",
               command.requested_ns);
  }

  // --- the worker ---

  void run() {
    compute_input_block();
    auto now = SteadyClock::now();
    next_startup = now;
    while (!should_stop()) {
      now = SteadyClock::now();
      std::uint64_t seen = 0;
      std::optional<TimeNs> off;
      std::optional<SetpointCommand> setpoint;
      {
        std::lock_guard lock(mutex);
        seen = commands;
        off = off_requested;
        if (!off && link_stats.phase == InverterPhase::running) setpoint = setpoint_pending;
      }
      if (ctx == nullptr) {
        if (now < next_startup) {
          wait_until(next_startup, seen);
          continue;
        }
        if (!connect()) {
          next_startup = SteadyClock::now() + Nanoseconds(config.reconnect_interval_ns);
          continue;
        }
        if (input_count > MODBUS_MAX_READ_REGISTERS) {
          fail_startup("the input registers span " + std::to_string(input_count) + " registers, more than one read may ask for");
          return;
        }
        begin_startup();
        next_poll = now;
        next_heartbeat = now + Nanoseconds(config.heartbeat_period_ns);
      }

      // One transaction per turn, by priority: mode off, heartbeat, start-up, setpoint, poll.
      const InverterPhase current_phase = phase();
      const bool heartbeat_live = current_phase == InverterPhase::running || settling ||
                                  (current_phase == InverterPhase::starting && startup_index > 1);
      if (off && now >= next_off_attempt) {
        write_off(*off);
      } else if (heartbeat_live && now >= next_heartbeat) {
        heartbeat();
      } else if (current_phase == InverterPhase::starting && !settling) {
        startup_step();
      } else if (current_phase == InverterPhase::startup_failed && now >= next_startup) {
        begin_startup();
      } else if (setpoint) {
        {
          std::lock_guard lock(mutex);
          setpoint_pending.reset();
        }
        write_setpoint(*setpoint);
      } else if (now >= next_poll) {
        next_poll += Nanoseconds(config.poll_period_ns);
        if (next_poll < now) next_poll = now + Nanoseconds(config.poll_period_ns);
        poll();
      } else {
        auto until = next_poll;
        if (heartbeat_live) until = std::min(until, next_heartbeat);
        if (current_phase == InverterPhase::startup_failed) until = std::min(until, next_startup);
        if (off) until = std::min(until, next_off_attempt);
        wait_until(until, seen);
      }
      if (ctx == nullptr && !should_stop()) next_startup = SteadyClock::now() + Nanoseconds(config.reconnect_interval_ns);
    }
    if (ctx != nullptr) {
      modbus_close(ctx);
      modbus_free(ctx);
      ctx = nullptr;
    }
  }

  // Waits on the condition variable so stop() and new commands wake the worker at once (a command
  // already seen does not: an off waiting for its retry time must not spin).
  void wait_until(SteadyClock::time_point until, std::uint64_t seen) {
    std::unique_lock lock(mutex);
    wake.wait_until(lock, until, [&] { return stopping || commands != seen; });
  }
};

InverterClient::InverterClient(asio::io_context& loop, InverterClientConfig config, Clock clock)
    : impl_(std::make_unique<Impl>(loop, std::move(config), std::move(clock))) {}

InverterClient::~InverterClient() { stop(); }

void InverterClient::on_readings(ReadingsHandler handler) { impl_->readings_handler = std::move(handler); }
void InverterClient::on_link(LinkHandler handler) { impl_->link_handler = std::move(handler); }
void InverterClient::on_event(EventHandler handler) { impl_->event_handler = std::move(handler); }
void InverterClient::on_heartbeat(HeartbeatHandler handler) { impl_->heartbeat_handler = std::move(handler); }

void InverterClient::start() {
  std::lock_guard lock(impl_->mutex);
  if (impl_->started) return;
  impl_->started = true;
  impl_->stopping = false;
  impl_->link_stats.phase = InverterPhase::connecting;
  impl_->worker = std::thread([impl = impl_.get()] { impl->run(); });
}

void InverterClient::stop() {
  {
    std::lock_guard lock(impl_->mutex);
    if (!impl_->started) return;
    impl_->stopping = true;
  }
  impl_->wake.notify_all();
  if (impl_->worker.joinable()) impl_->worker.join();
  std::lock_guard lock(impl_->mutex);
  impl_->started = false;
  impl_->link_stats.phase = InverterPhase::stopped;
}

void InverterClient::command_off(TimeNs requested_ns) {
  {
    std::lock_guard lock(impl_->mutex);
    // The oldest unserved request is kept: its latency is the one that matters.
    if (!impl_->off_requested) impl_->off_requested = requested_ns;
    ++impl_->commands;
    if (impl_->setpoint_pending) {
      const auto dropped = *impl_->setpoint_pending;
      impl_->setpoint_pending.reset();
      impl_->post_event(InverterEvent::Kind::command_failed,
                        std::string(to_string(dropped.mode)) + " " + format_value(dropped.setpoint) + ": replaced by mode off",
                        dropped.requested_ns);
    }
  }
  impl_->wake.notify_all();
}

void InverterClient::command_setpoint(InverterMode mode, double setpoint, TimeNs requested_ns) {
  if (mode == InverterMode::off) {
    command_off(requested_ns);
    return;
  }
  const auto& l = impl_->config.limits;
  double low = 0;
  double high = 0;
  switch (mode) {
    case InverterMode::current: low = l.charge_current_a; high = l.discharge_current_a; break;
    // The rig has one power limit register; it bounds both directions.
    case InverterMode::power: low = -std::fabs(l.charge_power_kw); high = std::fabs(l.charge_power_kw); break;
    case InverterMode::voltage: low = l.min_voltage_v; high = l.max_voltage_v; break;
    case InverterMode::off: break;
  }
  const std::string what = std::string(to_string(mode)) + " " + format_value(setpoint);
  if (!std::isfinite(setpoint)) {
    impl_->post_event(InverterEvent::Kind::command_failed, what + ": refused: not a finite value", requested_ns);
    return;
  }
  const double clamped = std::clamp(setpoint, std::min(low, high), std::max(low, high));
  {
    std::lock_guard lock(impl_->mutex);
    if (impl_->link_stats.phase != InverterPhase::running) {
      impl_->post_event(InverterEvent::Kind::command_failed,
                        what + ": refused: start-up not done (" + std::string(to_string(impl_->link_stats.phase)) + ")", requested_ns);
      return;
    }
    impl_->setpoint_pending = Impl::SetpointCommand{mode, clamped, requested_ns};
    ++impl_->commands;
  }
  impl_->wake.notify_all();
}

InverterLinkStats InverterClient::stats() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->link_stats;
}

}  // namespace cellguard::devices
