// The simulated inverter on Modbus: the register logic of inverter_registers.h behind libmodbus
// servers, wired to the pack model.
//
// Transports (shared/spec/seed-rig.md, "Hardware": Modbus RTU, 19200 baud, slave address 2):
//   - RTU on a pseudo-terminal: start_rtu() creates a pty (device_pty.h); a peer opens the returned
//     slave path like /dev/ttyUSB0. The server drives the master side with libmodbus's RTU backend
//     (modbus_new_rtu + modbus_set_socket on the master fd, never modbus_connect, which would open a
//     path): a pty has one master, and the peer must have the path. Requests to another slave id are
//     ignored (no answer), broadcasts (id 0) are executed without an answer.
//   - TCP: start_tcp() listens on host:port (port 0: an ephemeral port; endpoint() tells which) with
//     modbus_tcp_listen, and serves up to `max_clients` connections at once. Any unit id is served.
// Both may run at once; they share one register state. Each server runs on its own thread, blocked
// in poll() on its descriptors and a wake pipe, so stop() (and the destructor) end it promptly.
//
// Threading and locking: the PackModel lives on the simulator's event-loop thread, and only that
// thread touches it: it calls sync() after each pack step. sync() copies the pack's readings
// (voltages, current, contactors, ambient) into the register logic and advances it to
// PackModel::time_s, then sets the pack's inverter current to the logic's demand — all under the
// device's mutex, which the server threads also take for each request. So the server threads never
// see the pack, only the state of the last sync(); a write they accept (a mode, a setpoint) reaches
// the pack at the next sync(). Fault hooks may be called from any thread.
//
// Usage:
//     auto inverter = InverterDevice::create(pack, InverterConfig{});
//     auto rtu = inverter->start_rtu({});        // rtu.value() == "/dev/pts/5"
//     auto tcp = inverter->start_tcp({});        // tcp.value() == "127.0.0.1:40123"
//     loop: pack.step(dt); inverter->sync();
//
// Fault injection (issue item 6): set_not_answering (requests are read and dropped: the client
// times out), set_fault_bit (a bit in 30272..30279; fault words stop the converter),
// set_wrong_readback (reported voltage/current/power are offset from the truth),
// set_response_delay, set_timeout_every (every n-th request unanswered), set_crc_error_every (RTU:
// every n-th answer with a corrupted CRC).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "core/result.h"
#include "core/thread_annotations.h"
#include "sim/inverter_registers.h"

namespace cellguard::sim {

class PackModel;

struct InverterRtuConfig {
  int slave_id = 2;  // the rig's slaveAddress (1..247)
  int baud = 19200;  // the rig's setting (a pty ignores it)
};

struct InverterTcpConfig {
  std::string host = "127.0.0.1";
  int port = 0;  // 0: an ephemeral port
  int max_clients = 8;
};

struct InverterStats {
  std::uint64_t requests = 0;      // well-formed requests addressed to us
  std::uint64_t answers = 0;       // normal responses sent
  std::uint64_t exceptions = 0;    // exception responses sent
  std::uint64_t unanswered = 0;    // dropped by not-answering or timeout injection
  std::uint64_t corrupted = 0;     // answers sent with a wrong CRC
  std::uint64_t bad_requests = 0;  // bad CRC, truncated, unparsable
};

class InverterDevice {
 public:
  // The register logic starts in its power-on state (locked, mode off, comm timer 0) and takes
  // the pack's state at once (one sync()). Call on the event-loop thread; `pack` must outlive the
  // device.
  static std::unique_ptr<InverterDevice> create(PackModel& pack, InverterConfig config = {});

  InverterDevice(const InverterDevice&) = delete;
  InverterDevice& operator=(const InverterDevice&) = delete;
  ~InverterDevice();  // stops the servers

  // Starts the RTU server on a new pty; returns its slave path. Fails if already started or the
  // pty or libmodbus context cannot be created.
  Result<std::string> start_rtu(const InverterRtuConfig& config);
  // Starts the TCP server; returns "host:port". Fails if already started or it cannot listen.
  Result<std::string> start_tcp(const InverterTcpConfig& config);
  std::string rtu_endpoint() const;  // empty if not started
  std::string tcp_endpoint() const;

  // Stops both servers and joins their threads. Idempotent.
  void stop() EXCLUDES(mutex_);

  // Event-loop thread only: exchanges state with the pack (see the header comment).
  void sync() EXCLUDES(mutex_);

  // Fault injection (any thread).
  void set_not_answering(bool on) { not_answering_ = on; }
  bool set_fault_bit(std::uint16_t address, int bit, bool on) EXCLUDES(mutex_);
  void set_wrong_readback(const InverterReadbackError& error) EXCLUDES(mutex_);
  void set_response_delay(std::chrono::milliseconds delay) { response_delay_ms_ = delay.count(); }
  void set_timeout_every(int n) { timeout_every_ = n; }      // 0: off
  void set_crc_error_every(int n) { crc_error_every_ = n; }  // 0: off; RTU only

  // A copy of the register logic as of now (for tests and the control channel).
  InverterLogic logic() const EXCLUDES(mutex_);
  InverterStats stats() const EXCLUDES(mutex_);

  // Implementation detail shared with the server threads (defined in inverter_device.cpp).
  struct Server;

 private:
  InverterDevice(PackModel& pack, InverterConfig config);
  friend struct Server;

  PackModel& pack_;
  mutable Mutex mutex_;
  InverterLogic logic_ GUARDED_BY(mutex_);
  InverterStats stats_ GUARDED_BY(mutex_);
  std::uint64_t request_counter_ GUARDED_BY(mutex_) = 0;
  CondVar stop_cv_;  // wakes response delays on stop
  bool stopping_ GUARDED_BY(mutex_) = false;

  std::atomic<bool> not_answering_{false};
  std::atomic<long long> response_delay_ms_{0};
  std::atomic<int> timeout_every_{0};
  std::atomic<int> crc_error_every_{0};

  std::unique_ptr<Server> rtu_;
  std::unique_ptr<Server> tcp_;
};

}  // namespace cellguard::sim
