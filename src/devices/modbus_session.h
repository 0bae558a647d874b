// A power device as a pure Modbus session: time in, Modbus requests out, answers in, readings,
// events and link reports out. No I/O, no threads, no clock: the Modbus worker (modbus_worker.h)
// owns the libmodbus context and drives a session; tests drive one with scripted answers.
//
// The worker asks next_request(now) whenever it is free; a session returns the most urgent request
// due (mode off before the heartbeat before everything else) or nothing, and then next_wake(now)
// says when to ask again. Each request gets exactly one reply() before the next request; the
// session tells from it whether the link is to be closed and opened again. Commands arrive between
// requests (the worker serialises all calls), so an off requested while a transaction is in flight
// is the next request.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "devices/power_device.h"

namespace cellguard::devices {

struct ModbusRequest {
  enum class Function : std::uint8_t {
    read_holding_registers,  // function 3
    read_input_registers,    // function 4
    write_register,          // function 6, the answer's echo of address and value verified
  };
  Function function = Function::read_holding_registers;
  std::uint16_t address = 0;
  std::uint16_t count = 1;  // reads: 1..125
  std::uint16_t value = 0;  // write_register
  std::string what;         // for people: "read model 103", "heartbeat", "mode off"
  int retries = -1;         // after a timeout, CRC error or malformed answer; -1: the worker's setting
};

struct ModbusReply {
  enum class Status : std::uint8_t {
    ok,
    timeout,     // no answer within the response timeout (after the retries)
    crc_error,   // RTU: an answer with a wrong CRC (after the retries)
    exception,   // a Modbus exception response: the device answered and refused
    malformed,   // an answer of the wrong length, function, unit or echo (after the retries)
    link_error,  // the transport failed (socket closed, serial port gone): the link is closed
  };
  Status status = Status::ok;
  std::vector<std::uint16_t> registers;  // reads: exactly `count` registers when ok
  std::string error;                     // not ok: "read model 103: timeout"
  std::string cause;                     // not ok: the error without the request's name ("timeout")
};
std::string_view to_string(ModbusReply::Status status);

// What a session hands to the loop, in order of appearance per kind. The worker posts it after each
// call in this order: link reports, readings, heartbeats, events (the order in which a transaction's
// results arise: the link first, then what was read or acknowledged, then what it meant).
struct SessionOutput {
  struct Link {
    bool ok = false;
    MonoTime time_ns{};
    std::string detail;
  };
  std::vector<InverterReadings> readings;
  std::vector<InverterEvent> events;
  std::vector<Link> links;
  std::vector<MonoTime> heartbeats;  // acknowledged heartbeat writes
};

// Which freshness a transaction proves (issue 12 item 4): a valid reading, an acknowledged
// heartbeat, or neither (start-up and command writes).
enum class Freshness : std::uint8_t { reading, heartbeat, other };

// Counts one reply into `stats` (failures in a row, in all and per kind) and reports the link in
// `output` (up again only once neither readings nor heartbeats are failing). True: close the link and
// open it again (a transport failure, or kFailuresBeforeReconnect failed transactions in a row: a TCP
// peer may have gone, a serial adapter may have been re-plugged; an exception is an answer, so the
// link works).
inline constexpr int kFailuresBeforeReconnect = 3;
bool account_reply(InverterLinkStats& stats, SessionOutput& output, Freshness kind, const ModbusReply& reply,
                   const std::string& what, MonoTime now);

// The sessions' texts for people: "12.5 ms", "4.2".
std::string format_ms(Duration d);
std::string format_value(double v);

class ModbusSession {
 public:
  virtual ~ModbusSession() = default;

  virtual void connected(MonoTime now, const std::string& endpoint) = 0;
  virtual void connect_failed(MonoTime now, const std::string& reason) = 0;
  virtual void disconnected(MonoTime now, const std::string& reason) = 0;
  virtual void stopped(MonoTime now) = 0;

  virtual std::optional<ModbusRequest> next_request(MonoTime now) = 0;
  virtual MonoTime next_wake(MonoTime now) const = 0;
  // The reply to the last request; true: close the link (it is opened again after the reconnect
  // interval, and the session gets disconnected()).
  virtual bool reply(const ModbusRequest& request, const ModbusReply& reply, MonoTime now) = 0;

  virtual void command_off(MonoTime requested_ns, MonoTime now) = 0;
  virtual void command_setpoint(InverterMode mode, double setpoint, MonoTime requested_ns, MonoTime now) = 0;

  // Phase, freshness, mode and setpoint; the worker adds its transport counters.
  virtual InverterLinkStats stats() const = 0;

  SessionOutput take_output() { return std::exchange(output_, {}); }

 protected:
  SessionOutput output_;
};

}  // namespace cellguard::devices
