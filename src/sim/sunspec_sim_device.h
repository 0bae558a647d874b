// The SunSpec storage inverter (sunspec_device.h) as a `cellguard sim` device (simulator.h), the
// second power-device model next to the rig's inverter: `cellguard sim --sunspec` serves it on
// Modbus TCP and syncs it with the pack after every physics step.
//
// Ready line: "sunspec_tcp": "127.0.0.1:PORT".
// Fault kind: sunspec_not_answering on [1]   requests are read and dropped (the client times out).
// Status ("sunspec"): endpoint, started, heartbeat lost, power and current demand, requests.
#pragma once

#include <memory>

#include "sim/simulator.h"
#include "sim/sunspec_device.h"

namespace cellguard::sim {

struct SunSpecSimOptions {
  SunSpecSimConfig device;
  InverterTcpConfig tcp;
};

std::unique_ptr<SimDevice> make_sunspec_sim_device(SunSpecSimOptions options = {});

}  // namespace cellguard::sim
