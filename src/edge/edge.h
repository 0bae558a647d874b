// `cellguard edge`: the controller next to the battery (issue 4). The I/O shell around the pure
// supervisor (safety/safety.h): one asio loop thread owns the CAN bus, the sensor board, the
// timers, the operator socket and the supervisor; the inverter client (devices/inverter_client.h)
// and the recorder (recorder/recorder.h) have their own threads and never block the loop.
//
// On every frame: decode with the DBC, feed the watched signals to the supervisor, carry out its
// decisions at once (inverter off, relays, pump and fan), then record and report. A SYNC goes out
// every sync period; modules are discovered from their PDOs (module_map.h) and each new one gets
// the start-up SDO requests. Links that fail (CAN, board, inverter) are reopened with a back-off
// while the supervisor's staleness, board and inverter rules see the silence.
//
// Operator interface: a Unix socket with JSON lines (ipc/line_socket.h):
//   {"cmd":"status"}                          -> {"ok":true,"status":{...}}
//   {"cmd":"reset"}                           -> leave SAFE when no dangerous cause remains
//   {"cmd":"start"}                           -> precharge and close the contactors
//   {"cmd":"schedule","action":"start|stop"}  -> run the configured schedule (precharging first)
//   {"cmd":"stop"}                            -> safe stop, then the edge exits
// When everything listens, one JSON line goes to `ready_out`:
//   {"ready":true,"control":"/run/user/1000/cellguard/cellguard-edge-rig.sock","config_sha256":"...","modules_defined":15}
#pragma once

#include <cstdio>
#include <string>

#include "edge/config.h"

namespace cellguard::edge {

struct EdgeRunOptions {
  std::string events_path;  // overrides [operator] events
  std::string socket_path;  // overrides [operator] socket
  std::FILE* ready_out = stdout;
  double duration_s = 0;        // > 0: stop after this long (tests, benchmarks)
  EndpointOverrides overrides;  // applied again when SIGHUP re-reads the configuration
  bool handle_signals = true;   // SIGINT/SIGTERM stop, SIGHUP reloads (in-process tests: false)
};

// Runs until SIGINT/SIGTERM, `{"cmd":"stop"}` (or duration_s); each is a safe stop (inverter off,
// contactors open once the current is low or after the maximum delay, then exit). SIGHUP re-checks
// the configuration file: errors stop the edge safely with them as the reason. The configuration
// must have passed check_edge_config(). Returns the exit code: 0 after a clean stop, 1 if it could
// not start or stopped for a configuration error at reload.
int run_edge(EdgeConfig config, const EdgeRunOptions& options);

}  // namespace cellguard::edge
