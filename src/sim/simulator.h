// `cellguard sim`: the rig simulator process (issue 3, items 5 and 7): the thin I/O shell around
// the pure parts (PackModel, CanopenModules, FaultDispatcher, ScenarioPlayer, ControlHandler).
//
// One asio event loop on the calling thread:
//   - a physics tick steps the pack by (wall time elapsed) x speed, then lets the devices sync,
//     plays due scenario steps, sends EMCYs and, during a bus error storm, error frames;
//   - frames from the bus go to the modules, whose answers go back to the bus;
//   - optional cyclic PDOs every cyclic_ms of simulated time, without SYNC;
//   - the control socket (JSON lines, control_protocol.h);
//   - SIGINT/SIGTERM end the loop cleanly (sockets closed, control socket file removed).
//
// CAN exposure: by default an in-process bus served by a socketcand server on 127.0.0.1 (python-can
// and other tools reach it at socketcand://127.0.0.1:PORT/can0); with `can_url` any bus URL of
// can/bus.h instead, e.g. socketcan:vcan0.
//
// When everything listens, one JSON line goes to the ready stream (stdout), e.g.
//   {"ready":true,"can":"socketcand://127.0.0.1:29536/can0","control":"/run/user/1000/cellguard/cellguard-sim-1234.sock",
//    "modules":[1,2,3,4,5,6,7,8],"speed":1.0,"board":"/dev/pts/4",...}
// with the endpoints devices add. Logs go to stderr through spdlog.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/result.h"
#include "sim/control_protocol.h"
#include "sim/faults.h"
#include "sim/pack_model.h"

namespace asio {
class io_context;
}  // namespace asio

namespace cellguard::sim {

// Where the devices the other simulator parts provide (sensor board, inverter) plug in.
class SimDevice {
 public:
  SimDevice() = default;
  SimDevice(const SimDevice&) = delete;
  SimDevice& operator=(const SimDevice&) = delete;
  virtual ~SimDevice() = default;

  // On the loop thread, before the ready line: open the device, register its faults on `faults`
  // and its status on `control`, add its endpoints to `ready` (e.g. ready["board"] = "/dev/pts/4").
  // An error aborts the start of the simulator.
  virtual Result<void> start(asio::io_context& io, PackModel& pack, FaultDispatcher& faults,
                             ControlHandler& control, nlohmann::json& ready) = 0;
  // On the loop thread after every physics step (e.g. BoardDevice::poll, InverterDevice::sync).
  virtual void after_step() = 0;
  // On the loop thread at shutdown.
  virtual void stop() = 0;
};

struct SimOptions {
  PackConfig pack;
  std::string dbc_path;  // empty: the built-in data/cellguard-rig.dbc
  std::string can_url;   // empty: in-process bus + socketcand server
  std::string can_listen_address = "127.0.0.1";
  std::uint16_t can_port = 0;  // socketcand port; 0 = ephemeral
  std::string can_channel = "can0";
  double speed = 1.0;         // simulated seconds per wall-clock second
  double tick_ms = 20;        // wall-clock period of the physics tick
  double cyclic_ms = 0;       // > 0: PDOs every cyclic_ms of simulated time, without SYNC
  std::string scenario_path;  // TOML, see scenario.h
  std::string control_path;   // empty: ipc::default_runtime_dir()/cellguard-sim-<pid>.sock
  double duration_s = 0;      // > 0: stop after this much simulated time (tests, benchmarks)
  std::vector<std::unique_ptr<SimDevice>> devices;
};

// Runs the simulator until SIGINT/SIGTERM (or duration_s). Writes the ready line to `ready_out`.
// Returns the process exit code: 0 after a clean stop, 1 if it could not start (logged).
int run_simulator(SimOptions options, std::FILE* ready_out = stdout);

}  // namespace cellguard::sim
