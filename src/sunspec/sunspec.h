// SunSpec information models over Modbus (the SunSpec Alliance's public register maps): the facts
// of the standard that cellguard uses, and the model-chain walk that finds them on a device.
//
// A SunSpec device holds the marker "SunS" (0x5375 0x6E53) at one of the base addresses 40000, 0
// or 50000 (raw PDU holding-register addresses, read with function 3). After the marker come the
// models one after another, each as its id, its length L (registers after these two) and L
// registers of points, ending with the id 0xFFFF (its length, usually 0, is not used).
//
// Points are named by model and offset from the model's id register (the id is offset 0, L is 1),
// as the standard's model definitions number them. Values with a scale factor are raw·10^sf, the
// scale factor being an int16 point (type sunssf) of the same model, −10..10. "Not implemented"
// is 0x8000 for int16 and sunssf, 0xFFFF for uint16 and enum16, 0x80000000 for int32 and
// 0xFFFFFFFF for uint32 and acc32 (where 0 means "not accumulated").
//
// Only the points cellguard reads or writes are written here (kPoints lists them): the tests check
// each against the official definitions (CELLGUARD_SUNSPEC_DIR, model_<id>.json).
//
// Pure: no I/O. ChainWalker asks for register reads and is fed their answers, so a client walks
// the chain with its own transport; parse_model_chain does the same walk over a register image.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace cellguard::sunspec {

inline constexpr std::uint16_t kMarkerHigh = 0x5375;  // "Su"
inline constexpr std::uint16_t kMarkerLow = 0x6E53;   // "nS"
inline constexpr std::uint16_t kEndId = 0xFFFF;
// Where a device may start its map, in the order a client tries them.
inline constexpr std::array<std::uint16_t, 3> kBaseAddresses = {40000, 0, 50000};
// A chain with more models than this is taken as garbage (real devices have a handful).
inline constexpr std::size_t kMaxModels = 128;

enum class PointType : std::uint8_t {
  uint16,
  int16,
  uint32,
  int32,
  acc32,
  enum16,
  bitfield16,
  bitfield32,
  sunssf,
  string,
  pad
};
std::string_view to_string(PointType type);  // the standard's names: "uint16", "sunssf", ...

struct Point {
  std::uint16_t model = 0;
  std::string_view name;     // the standard's point name
  std::uint16_t offset = 0;  // registers from the model's id register
  PointType type = PointType::uint16;
  std::uint16_t size = 1;         // registers
  std::string_view scale_factor;  // the sunssf point of the same model; empty: none
};

// --- the models cellguard uses ---

namespace common {  // model 1: who the device is
inline constexpr std::uint16_t kId = 1;
inline constexpr std::uint16_t kLength = 66;
inline constexpr Point Mn{kId, "Mn", 2, PointType::string, 16, {}};
inline constexpr Point Md{kId, "Md", 18, PointType::string, 16, {}};
inline constexpr Point Vr{kId, "Vr", 42, PointType::string, 8, {}};
inline constexpr Point SN{kId, "SN", 50, PointType::string, 16, {}};
}  // namespace common

namespace inverter {  // model 103: three-phase inverter, with its DC side and operating state
inline constexpr std::uint16_t kId = 103;
inline constexpr std::uint16_t kLength = 50;
inline constexpr Point W{kId, "W", 14, PointType::int16, 1, "W_SF"};
inline constexpr Point W_SF{kId, "W_SF", 15, PointType::sunssf, 1, {}};
inline constexpr Point DCA{kId, "DCA", 27, PointType::uint16, 1, "DCA_SF"};
inline constexpr Point DCA_SF{kId, "DCA_SF", 28, PointType::sunssf, 1, {}};
inline constexpr Point DCV{kId, "DCV", 29, PointType::uint16, 1, "DCV_SF"};
inline constexpr Point DCV_SF{kId, "DCV_SF", 30, PointType::sunssf, 1, {}};
inline constexpr Point DCW{kId, "DCW", 31, PointType::int16, 1, "DCW_SF"};
inline constexpr Point DCW_SF{kId, "DCW_SF", 32, PointType::sunssf, 1, {}};
inline constexpr Point TmpCab{kId, "TmpCab", 33, PointType::int16, 1, "Tmp_SF"};
inline constexpr Point TmpSnk{kId, "TmpSnk", 34, PointType::int16, 1, "Tmp_SF"};
inline constexpr Point Tmp_SF{kId, "Tmp_SF", 37, PointType::sunssf, 1, {}};
inline constexpr Point St{kId, "St", 38, PointType::enum16, 1, {}};
inline constexpr Point Evt1{kId, "Evt1", 40, PointType::bitfield32, 2, {}};
// St symbols.
enum class State : std::uint16_t {
  off = 1,
  sleeping = 2,
  starting = 3,
  mppt = 4,
  throttled = 5,
  shutting_down = 6,
  fault = 7,
  standby = 8,
};
std::string_view to_string(State state);  // "off", "MPPT", ... (the standard's names, lower case)
}  // namespace inverter

namespace storage {  // model 124: basic storage controls
inline constexpr std::uint16_t kId = 124;
inline constexpr std::uint16_t kLength = 24;
inline constexpr Point WChaMax{kId, "WChaMax", 2, PointType::uint16, 1, "WChaMax_SF"};
inline constexpr Point StorCtl_Mod{kId, "StorCtl_Mod", 5, PointType::bitfield16, 1, {}};
inline constexpr Point OutWRte{kId, "OutWRte", 12, PointType::int16, 1, "InOutWRte_SF"};
inline constexpr Point InWRte{kId, "InWRte", 13, PointType::int16, 1, "InOutWRte_SF"};
inline constexpr Point WChaMax_SF{kId, "WChaMax_SF", 18, PointType::sunssf, 1, {}};
inline constexpr Point InOutWRte_SF{kId, "InOutWRte_SF", 25, PointType::sunssf, 1, {}};
// StorCtl_Mod bits: the rate limits InWRte (charge) and OutWRte (discharge) apply.
inline constexpr std::uint16_t kChargeBit = 1u << 0;
inline constexpr std::uint16_t kDischargeBit = 1u << 1;
}  // namespace storage

namespace battery {  // model 802: battery base
inline constexpr std::uint16_t kId = 802;
inline constexpr std::uint16_t kLength = 62;
inline constexpr Point CtrlHb{kId, "CtrlHb", 19, PointType::uint16, 1, {}};
inline constexpr Point State{kId, "State", 22, PointType::enum16, 1, {}};
inline constexpr Point Evt1{kId, "Evt1", 26, PointType::bitfield32, 2, {}};
inline constexpr Point V{kId, "V", 34, PointType::uint16, 1, "V_SF"};
inline constexpr Point A{kId, "A", 44, PointType::int16, 1, "A_SF"};
inline constexpr Point W{kId, "W", 47, PointType::int16, 1, "W_SF"};
inline constexpr Point SetInvState{kId, "SetInvState", 51, PointType::enum16, 1, {}};
inline constexpr Point V_SF{kId, "V_SF", 59, PointType::sunssf, 1, {}};
inline constexpr Point A_SF{kId, "A_SF", 61, PointType::sunssf, 1, {}};
inline constexpr Point W_SF{kId, "W_SF", 63, PointType::sunssf, 1, {}};
// State symbols.
enum class BankState : std::uint16_t {
  disconnected = 1,
  initializing = 2,
  connected = 3,
  standby = 4,
  soc_protection = 5,
  suspending = 6,
  fault = 99,
};
// SetInvState symbols.
enum class InverterCommand : std::uint16_t { stopped = 1, standby = 2, started = 3 };
}  // namespace battery

// Every point above, for the conformance test.
inline constexpr std::array kPoints = {
    common::Mn,
    common::Md,
    common::Vr,
    common::SN,
    inverter::W,
    inverter::W_SF,
    inverter::DCA,
    inverter::DCA_SF,
    inverter::DCV,
    inverter::DCV_SF,
    inverter::DCW,
    inverter::DCW_SF,
    inverter::TmpCab,
    inverter::TmpSnk,
    inverter::Tmp_SF,
    inverter::St,
    inverter::Evt1,
    storage::WChaMax,
    storage::StorCtl_Mod,
    storage::OutWRte,
    storage::InWRte,
    storage::WChaMax_SF,
    storage::InOutWRte_SF,
    battery::CtrlHb,
    battery::State,
    battery::Evt1,
    battery::V,
    battery::A,
    battery::W,
    battery::SetInvState,
    battery::V_SF,
    battery::A_SF,
    battery::W_SF,
};

struct ModelLength {
  std::uint16_t id;
  std::uint16_t length;
};
inline constexpr std::array kModelLengths = {
    ModelLength{common::kId, common::kLength}, ModelLength{inverter::kId, inverter::kLength},
    ModelLength{storage::kId, storage::kLength}, ModelLength{battery::kId, battery::kLength}};

// --- values ---

// The value of a raw register (int16 points as two's complement) with its scale factor; nullopt if
// the point or the scale factor is "not implemented" or the scale factor is outside −10..10.
std::optional<double> scaled(PointType type, std::uint16_t raw, std::uint16_t scale_factor);
// The raw register for `value` (rounded, clamped to the type's range, never the "not implemented"
// value); nullopt if the scale factor is not usable or the value not finite.
std::optional<std::uint16_t> to_raw(PointType type, double value, std::uint16_t scale_factor);
bool is_implemented(PointType type, std::span<const std::uint16_t> registers);
// A string point (NUL padded, 2 characters per register, high byte first), trailing NULs and
// spaces dropped, non-printable bytes as '?'.
std::string decode_string(std::span<const std::uint16_t> registers);
void encode_string(std::string_view text, std::span<std::uint16_t> registers);

// --- the model chain ---

struct Model {
  std::uint16_t id = 0;
  std::uint16_t length = 0;   // L: registers after id and L
  std::uint16_t address = 0;  // of the id register
  // Address of a point of this model.
  std::uint16_t at(const Point& point) const { return static_cast<std::uint16_t>(address + point.offset); }
  bool holds(const Point& point) const { return point.offset + point.size <= length + 2; }
};

struct ModelChain {
  std::uint16_t base = 0;  // where the marker is
  std::vector<Model> models;
  const Model* find(std::uint16_t id) const;  // the first model with that id, or null
};

// A Modbus read of holding registers.
struct RegisterRead {
  std::uint16_t address = 0;
  std::uint16_t count = 0;
};

// Walks a chain from one base address: next() says what to read, feed() takes the answer.
// Errors name the address and the cause ("40070: model 103 of length 300 runs past register 65535").
class ChainWalker {
 public:
  explicit ChainWalker(std::uint16_t base);

  RegisterRead next() const;  // valid while !done()
  // The registers read for next() (exactly next().count of them). Returns done() afterwards.
  Result<bool> feed(std::span<const std::uint16_t> registers);
  bool done() const { return done_; }
  const ModelChain& chain() const { return chain_; }

 private:
  ModelChain chain_;
  std::uint32_t position_;  // the next register to read: the marker, or a model's id
  bool marker_seen_ = false;
  bool done_ = false;
};

// The walk over a register image whose first register is at address `first`; the base is found at
// the first of kBaseAddresses that holds the marker inside the image.
Result<ModelChain> parse_model_chain(std::uint16_t first, std::span<const std::uint16_t> registers);

}  // namespace cellguard::sunspec
