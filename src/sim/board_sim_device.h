// The sensor board as a `cellguard sim` device (simulator.h's SimDevice): opens the BoardDevice on a
// pty at start, polls it after every physics step, and plugs its fault and status into the
// simulator.
//
// Ready line: "board": the pty path (e.g. "/dev/pts/4").
// Fault kinds (faults.h; scenario steps and `cellguard sim ctl fault ...`):
//   board_unplugged   on [1]   1: close the pty (USB cable pulled); 0: replug on a new pty. The new
//                              path is logged and shown in the status ("board": {"path": ...}).
//   The insulation monitor's ground fault is the pack's `insulation_fault` (built in); the board
//   reports it when BoardConfig::report_ground_fault is set.
// "clear" replugs an unplugged board.
// Status ("board"): path, unplugged, outputs (pump, fan, relay1..3), counters.
//
// Thread safety: none; everything runs on the simulator's loop thread.
#pragma once

#include <memory>
#include <string>

#include "sim/board_device.h"
#include "sim/simulator.h"

namespace cellguard::sim {

// `link_path` (optional): a symbolic link kept pointing at the current pty, removed while unplugged
// (as udev's /dev/serial/by-id names are), so a peer can reopen the board by a stable name after a
// replug. The ready line then gives the link instead of the pty.
std::unique_ptr<SimDevice> make_board_sim_device(BoardConfig config = {}, std::string link_path = {});

}  // namespace cellguard::sim
