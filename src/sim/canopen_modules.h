// The simulated battery modules' CANopen side: what each BMU sends on the bus.
//
// The rig's modules are CANopen-style nodes (shared/spec/seed-rig.md, "CAN: CANopen-style modules"):
// on every SYNC (0x080) each present module sends its eight TPDOs (0x180+n .. 0x490+n); SDO requests
// on 0x600+n are answered on 0x580+n (CiA 301 expedited transfers, including the rig's start-up
// download `2F 05 18 01 00 00 00 00`); an internal fault raises an EMCY on 0x080+n.
//
// PDO payloads are encoded with our DBC codec from the DBC given at construction (the project's
// data/cellguard-rig.dbc or the rig's original file): signals are found by their names in the
// rig's convention (CMA_Voltage, Cell_5_Voltage, Cell05_SOC, CMA_Temp3, ...), so any DBC with the
// same layout works.
//
// Pure: frames and the pack model in, frames out. No sockets, no clock. Module-level faults
// (silent, frozen, garbage, truncated) are switched here; physical faults live in the PackModel.
//
// Thread safety: none; used on the simulator's loop thread.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "can/frame.h"
#include "canopen/canopen.h"
#include "core/result.h"
#include "dbc/codec.h"
#include "sim/pack_model.h"

namespace cellguard::sim {

inline constexpr std::uint32_t kSyncId = 0x080;
inline constexpr std::uint32_t kEmcyBase = 0x080;
inline constexpr std::uint32_t kSdoResponseBase = 0x580;
inline constexpr std::uint32_t kSdoRequestBase = 0x600;
inline constexpr int kPdosPerModule = 8;
// TPDO COB-ID bases in the rig's order pdo1..pdo8 (seed-rig.md table).
inline constexpr std::array<std::uint32_t, kPdosPerModule> kPdoBase = {0x180, 0x280, 0x380, 0x480,
                                                                       0x190, 0x290, 0x390, 0x490};

// CiA 301 SDO abort codes by name (canopen/canopen.h): the modules answer with command_unknown,
// object_missing, subindex_missing and general_error (segmented transfers are not offered).
using SdoAbort = canopen::SdoAbortCode;

// What a module does wrong, by fault injection (see faults.h).
struct ModuleFaults {
  bool silent = false;     // answers nothing (SYNC, SDO): the module fell off the bus
  bool frozen = false;     // repeats the PDO payloads it sent when the fault began
  bool garbage = false;    // PDO payloads are random bytes
  bool truncated = false;  // PDOs are cut to 3 bytes
};

struct ModuleCounters {
  std::uint64_t syncs = 0;
  std::uint64_t pdos_sent = 0;
  std::uint64_t sdo_requests = 0;
  std::uint64_t sdo_aborts = 0;
  std::uint64_t emergencies = 0;
};

class CanopenModules {
 public:
  // Compiles the PDO encoders for the modules of `model` from `codec`. Fails (not_found) if the
  // DBC lacks one of the eight PDOs of a present module, naming it.
  static Result<std::unique_ptr<CanopenModules>> create(
      const std::shared_ptr<const dbc::DatabaseCodec>& codec, const PackModel& model, std::uint64_t seed = 1);

  CanopenModules(const CanopenModules&) = delete;
  CanopenModules& operator=(const CanopenModules&) = delete;

  // Handles one received frame: SYNC -> all PDOs of all present modules; SDO request to a present
  // module -> its response. Appends the frames to send to `out`; other frames are ignored.
  void on_frame(const can::Frame& frame, const PackModel& model, std::vector<can::Frame>& out);

  // The eight PDOs of every present, non-silent module, as on SYNC (also used for cyclic mode).
  void append_pdos(const PackModel& model, std::vector<can::Frame>& out);

  // Compares each module's status with the last check and appends an EMCY for every change
  // (a new fault: its error code; all faults gone: error reset 0x0000). Call after model steps.
  void append_emergencies(const PackModel& model, std::vector<can::Frame>& out);

  // Fault injection. Returns false if `node_id` is not a present module.
  bool set_faults(int node_id, const ModuleFaults& faults);
  const ModuleFaults* faults(int node_id) const;
  void clear_faults();

  // The value last written by SDO to (index, subindex) of a node, if any (tests, diagnostics).
  const std::uint32_t* sdo_value(int node_id, std::uint16_t index, std::uint8_t subindex) const;
  const ModuleCounters& counters() const { return counters_; }

  struct Pdo;   // one compiled PDO: codec and where each signal's value comes from
  struct Node;  // one module's PDOs, faults and object dictionary entries written by SDO
  ~CanopenModules();

 private:
  CanopenModules(std::shared_ptr<const dbc::DatabaseCodec> codec, std::uint64_t seed);
  Node* find_node(int node_id);
  void append_node_pdos(Node& node, const ModuleState& module, const PackModel& model,
                        std::vector<can::Frame>& out);
  void answer_sdo(Node& node, const can::Frame& request, const ModuleState& module,
                  std::vector<can::Frame>& out);

  std::shared_ptr<const dbc::DatabaseCodec> codec_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::mt19937_64 rng_;
  ModuleCounters counters_;
};

// Builds SDO frames (CiA 301 expedited transfers, canopen/canopen.h), for clients and tests.
can::Frame make_sdo_download(int node_id, std::uint16_t index, std::uint8_t subindex, std::uint32_t value,
                             int size_bytes);
can::Frame make_sdo_upload_request(int node_id, std::uint16_t index, std::uint8_t subindex);
can::Frame make_sync(std::uint8_t counter);

}  // namespace cellguard::sim
