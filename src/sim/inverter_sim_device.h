// The inverter as a `cellguard sim` device (simulator.h's SimDevice): starts the InverterDevice's
// Modbus servers at start, syncs it with the pack after every physics step (so the inverter owns the
// pack's current: a `drive current_a=...` is overridden at the next step), and plugs its faults and
// status into the simulator.
//
// Ready line: "inverter_rtu": the pty path; "inverter_tcp": "127.0.0.1:PORT".
// Fault kinds (faults.h; scenario steps and `cellguard sim ctl fault ...`):
//   inverter_not_answering  on [1]                   requests are read and dropped (timeouts)
//   inverter_fault_bit      register [30273], bit [0], on [1]
//                                                    a bit in 30272..30279; fault words stop it
//   inverter_wrong_readback current_a [0], power_kw [0], voltage_v [0]
//                                                    offsets of the reported values (0s: off)
//   inverter_delay          ms [0]                   response delay
//   inverter_timeouts       every [0]                every n-th request unanswered (0: off)
//   inverter_crc_errors     every [0]                every n-th RTU answer with a bad CRC (0: off)
// "clear" turns all of them off (injected fault bits cleared).
// Status ("inverter"): endpoints, mode, running, unlocked, comm timer, current demand, counters.
#pragma once

#include <memory>

#include "sim/inverter_device.h"
#include "sim/simulator.h"

namespace cellguard::sim {

struct InverterSimOptions {
  InverterConfig logic;
  bool rtu = true;
  InverterRtuConfig rtu_config;
  bool tcp = true;
  InverterTcpConfig tcp_config;
};

std::unique_ptr<SimDevice> make_inverter_sim_device(InverterSimOptions options = {});

}  // namespace cellguard::sim
