#include "sim/canopen_modules.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <string_view>

namespace cellguard::sim {
namespace {

// Where a PDO signal's value comes from, by the signal's name in the rig's DBC.
enum class Source : std::uint8_t {
  zero,  // a signal this simulator does not know: sent as 0
  current_a,
  module_voltage_v,
  min_cell_v,
  max_cell_v,
  min_temp_c,
  max_temp_c,
  status,
  soc_pct,
  soh_pct,
  balancing_bits,
  charge_as,
  discharge_as,
  cell_voltage_v,
  sensor_c,
  cell_soc_pct,  // indexed by SignalSource::index
};

struct SignalSource {
  Source source = Source::zero;
  int index = 0;  // 0-based cell channel or sensor
};

// Parses the number between `prefix` and `suffix` in `name` (e.g. "Cell_" 12 "_Voltage").
int number_between(std::string_view name, std::string_view prefix, std::string_view suffix) {
  if (name.size() <= prefix.size() + suffix.size() || !name.starts_with(prefix) || !name.ends_with(suffix))
    return -1;
  std::string_view digits = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
  int value = -1;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc() || end != digits.data() + digits.size()) return -1;
  return value;
}

SignalSource source_of(std::string_view name) {
  static const std::map<std::string_view, Source> fixed = {
      {"CMA_Current", Source::current_a},
      {"CMA_Voltage", Source::module_voltage_v},
      {"Min_Cell_Voltage", Source::min_cell_v},
      {"Max_Cell_Voltage", Source::max_cell_v},
      {"CMA_Min_Temp", Source::min_temp_c},
      {"CMA_Max_Temp", Source::max_temp_c},
      {"CMA_Status", Source::status},
      {"SOC", Source::soc_pct},
      {"SOH", Source::soh_pct},
      {"CellBalancingStatus", Source::balancing_bits},
      {"Charge_Ah_from_BMU", Source::charge_as},
      {"Discharge_Ah_from_BMU", Source::discharge_as},
  };
  if (auto it = fixed.find(name); it != fixed.end()) return {it->second, 0};
  if (int n = number_between(name, "Cell_", "_Voltage"); n >= 1 && n <= kCellChannels)
    return {Source::cell_voltage_v, n - 1};
  if (int n = number_between(name, "Cell", "_SOC"); n >= 1 && n <= kCellChannels)
    return {Source::cell_soc_pct, n - 1};
  if (int n = number_between(name, "CMA_Temp", ""); n >= 1 && n <= kTemperatureSensors)
    return {Source::sensor_c, n - 1};
  return {};
}

double value_of(const SignalSource& s, const ModuleState& module, const PackModel& model) {
  const auto index = static_cast<std::size_t>(s.index);
  switch (s.source) {
    case Source::zero:
      return 0;
    case Source::current_a:
      return model.pack_current_a();
    case Source::module_voltage_v:
      return module.voltage_v();
    case Source::min_cell_v:
      return module.min_cell_v();
    case Source::max_cell_v:
      return module.max_cell_v();
    case Source::min_temp_c:
      return module.min_temperature_c();
    case Source::max_temp_c:
      return module.max_temperature_c();
    case Source::status:
      return module.status_bits();
    case Source::soc_pct:
      return 100.0 * module.soc();
    case Source::soh_pct:
      return module.soh_pct;
    case Source::balancing_bits:
      return module.balancing_bits();
    case Source::charge_as:
      return std::floor(module.charge_ah * 3600.0);  // see the DBC: A*s
    case Source::discharge_as:
      return std::floor(module.discharge_ah * 3600.0);
    case Source::cell_voltage_v:
      return module.cells[index].voltage_v;  // 0 if unpopulated -> raw 0
    case Source::sensor_c:
      return module.sensor_c(s.index);
    case Source::cell_soc_pct:
      return module.cells[index].populated ? 100.0 * module.cells[index].soc : 0.0;
  }
  return 0;
}

// CiA 301 EMCY error codes (table 21) and error register bits (object 0x1001).
constexpr std::uint16_t kEmcyErrorReset = 0x0000;
constexpr std::uint16_t kEmcyOverVoltage = 0x3210;   // voltage inside the device: over-voltage
constexpr std::uint16_t kEmcyUnderVoltage = 0x3220;  // under-voltage
constexpr std::uint16_t kEmcyOverTemperature = 0x4210;
constexpr std::uint8_t kErrorRegisterGeneric = 0x01;
constexpr std::uint8_t kErrorRegisterVoltage = 0x04;
constexpr std::uint8_t kErrorRegisterTemperature = 0x08;
constexpr std::uint16_t kFaultBits =
    kStatusCellOverVoltage | kStatusCellUnderVoltage | kStatusOverTemperature;

std::uint8_t error_register(std::uint16_t status) {
  std::uint8_t reg = 0;
  if (status & kFaultBits) reg |= kErrorRegisterGeneric;
  if (status & (kStatusCellOverVoltage | kStatusCellUnderVoltage)) reg |= kErrorRegisterVoltage;
  if (status & kStatusOverTemperature) reg |= kErrorRegisterTemperature;
  return reg;
}

can::Frame frame_of(std::uint32_t id, std::span<const std::uint8_t> bytes) {
  can::Frame frame;
  frame.id = id;
  frame.set_payload(bytes);
  return frame;
}

void put_u16(std::uint8_t* p, std::uint16_t v) {
  p[0] = static_cast<std::uint8_t>(v);
  p[1] = static_cast<std::uint8_t>(v >> 8);
}

void put_u32(std::uint8_t* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}

}  // namespace

struct CanopenModules::Pdo {
  const dbc::MessageCodec* codec = nullptr;
  std::vector<SignalSource> sources;  // parallel to the message's signals
  dbc::PresenceMask all;
  std::vector<double> values;
  std::array<std::uint8_t, 8> last_payload{};  // for the frozen fault
  std::uint8_t last_size = 0;
};

struct CanopenModules::Node {
  int node_id = 0;
  std::array<Pdo, kPdosPerModule> pdos;
  ModuleFaults faults;
  std::uint16_t last_status = 0;
  std::map<std::uint32_t, std::uint32_t> written;  // (index << 8 | subindex) -> value
};

CanopenModules::CanopenModules(std::shared_ptr<const dbc::DatabaseCodec> codec, std::uint64_t seed)
    : codec_(std::move(codec)), rng_(seed) {}

CanopenModules::~CanopenModules() = default;

Result<std::unique_ptr<CanopenModules>> CanopenModules::create(
    const std::shared_ptr<const dbc::DatabaseCodec>& codec, const PackModel& model, std::uint64_t seed) {
  if (!codec) return Error(ErrorCode::invalid_argument, "no DBC codec for the simulated modules");
  std::unique_ptr<CanopenModules> modules(new CanopenModules(codec, seed));
  for (const ModuleState& module : model.modules()) {
    auto node = std::make_unique<Node>();
    node->node_id = module.node_id;
    for (int p = 0; p < kPdosPerModule; ++p) {
      const std::uint32_t id =
          kPdoBase[static_cast<std::size_t>(p)] + static_cast<std::uint32_t>(module.node_id);
      Pdo& pdo = node->pdos[static_cast<std::size_t>(p)];
      pdo.codec = codec->find(id, false);
      if (pdo.codec == nullptr || pdo.codec->message().length < 1 || pdo.codec->message().length > 8) {
        char name[64];
        std::snprintf(name, sizeof name, "BMU%02d_pdo%d (0x%03X)", module.node_id, p + 1, id);
        return Error(ErrorCode::not_found, std::string("the DBC has no 1..8-byte message ") + name);
      }
      const dbc::Message& message = pdo.codec->message();
      for (const dbc::Signal& signal : message.signals) pdo.sources.push_back(source_of(signal.name));
      pdo.all.resize(message.signals.size());
      for (std::size_t i = 0; i < message.signals.size(); ++i) pdo.all.words()[i / 64] |= 1ull << (i % 64);
      pdo.values.assign(message.signals.size(), 0.0);
    }
    node->last_status = module.status_bits() & kFaultBits;
    modules->nodes_.push_back(std::move(node));
  }
  return modules;
}

CanopenModules::Node* CanopenModules::find_node(int node_id) {
  for (auto& node : nodes_)
    if (node->node_id == node_id) return node.get();
  return nullptr;
}

bool CanopenModules::set_faults(int node_id, const ModuleFaults& faults) {
  Node* node = find_node(node_id);
  if (node == nullptr) return false;
  node->faults = faults;
  return true;
}

const ModuleFaults* CanopenModules::faults(int node_id) const {
  for (const auto& node : nodes_)
    if (node->node_id == node_id) return &node->faults;
  return nullptr;
}

void CanopenModules::clear_faults() {
  for (auto& node : nodes_) node->faults = {};
}

const std::uint32_t* CanopenModules::sdo_value(int node_id, std::uint16_t index,
                                               std::uint8_t subindex) const {
  for (const auto& node : nodes_) {
    if (node->node_id != node_id) continue;
    auto it = node->written.find(static_cast<std::uint32_t>(index) << 8 | subindex);
    return it == node->written.end() ? nullptr : &it->second;
  }
  return nullptr;
}

void CanopenModules::append_node_pdos(Node& node, const ModuleState& module, const PackModel& model,
                                      std::vector<can::Frame>& out) {
  for (Pdo& pdo : node.pdos) {
    const std::uint32_t id = pdo.codec->message().id;
    const auto length = static_cast<std::uint8_t>(pdo.codec->message().length);
    std::array<std::uint8_t, 8> payload{};
    if (node.faults.frozen && pdo.last_size != 0) {
      payload = pdo.last_payload;
    } else if (node.faults.garbage) {
      for (auto& byte : payload) byte = static_cast<std::uint8_t>(rng_());
    } else {
      for (std::size_t i = 0; i < pdo.sources.size(); ++i)
        pdo.values[i] = value_of(pdo.sources[i], module, model);
      // Values outside a signal's bit range are clamped by the codec (e.g. an unpopulated cell's
      // 0 V becomes raw 0, i.e. 2.2 V, as the rig reads it).
      if (!pdo.codec->encode(pdo.values.data(), pdo.all, std::span<std::uint8_t>(payload.data(), length))
               .ok())
        continue;
      pdo.last_payload = payload;
      pdo.last_size = length;
    }
    std::uint8_t size = node.faults.truncated ? std::min<std::uint8_t>(3, length) : length;
    out.push_back(frame_of(id, std::span<const std::uint8_t>(payload.data(), size)));
    ++counters_.pdos_sent;
  }
}

void CanopenModules::append_pdos(const PackModel& model, std::vector<can::Frame>& out) {
  for (auto& node : nodes_) {
    if (node->faults.silent) continue;
    const ModuleState* module = model.module(node->node_id);
    if (module != nullptr) append_node_pdos(*node, *module, model, out);
  }
}

void CanopenModules::on_frame(const can::Frame& frame, const PackModel& model, std::vector<can::Frame>& out) {
  if (frame.extended || frame.remote || frame.error || frame.fd) return;
  if (frame.id == kSyncId) {
    ++counters_.syncs;
    append_pdos(model, out);
    return;
  }
  if (frame.id > kSdoRequestBase && frame.id <= kSdoRequestBase + kMaxModules) {
    Node* node = find_node(static_cast<int>(frame.id - kSdoRequestBase));
    const ModuleState* module = node ? model.module(node->node_id) : nullptr;
    if (node == nullptr || module == nullptr || node->faults.silent) return;
    ++counters_.sdo_requests;
    answer_sdo(*node, frame, *module, out);
  }
}

void CanopenModules::answer_sdo(Node& node, const can::Frame& request, const ModuleState& module,
                                std::vector<can::Frame>& out) {
  // CiA 301 7.2.4.3: byte 0 is the command (ccs in bits 7..5), bytes 1..2 the index (little
  // endian), byte 3 the sub-index, bytes 4..7 the data of an expedited transfer.
  std::array<std::uint8_t, 8> b{};
  std::copy_n(request.data.begin(), std::min<std::size_t>(request.size, 8), b.begin());
  const std::uint8_t command = b[0];
  const auto index = static_cast<std::uint16_t>(b[1] | b[2] << 8);
  const std::uint8_t subindex = b[3];
  const std::uint32_t response_id = kSdoResponseBase + static_cast<std::uint32_t>(node.node_id);
  std::array<std::uint8_t, 8> r{};
  r[1] = b[1];
  r[2] = b[2];
  r[3] = b[3];
  auto abort = [&](SdoAbort code) {
    r[0] = 0x80;
    put_u32(&r[4], static_cast<std::uint32_t>(code));
    ++counters_.sdo_aborts;
    out.push_back(frame_of(response_id, r));
  };
  const int ccs = command >> 5;
  if (request.size != 8) return abort(SdoAbort::command_unknown);
  const bool is_tpdo_parameter = index >= 0x1800 && index < 0x1800 + kPdosPerModule;
  if (ccs == 1) {                                                      // initiate download
    if ((command & 0x02) == 0) return abort(SdoAbort::general_error);  // segmented: not offered
    if (!is_tpdo_parameter && index != 0x1017) return abort(SdoAbort::object_missing);
    if (is_tpdo_parameter && (subindex < 1 || subindex > 5)) return abort(SdoAbort::subindex_missing);
    const int unused = (command & 0x01) ? (command >> 2) & 0x03 : 0;
    std::uint32_t value = 0;
    for (std::size_t i = 0; i < static_cast<std::size_t>(4 - unused); ++i)
      value |= static_cast<std::uint32_t>(b[4 + i]) << (8 * i);
    node.written[static_cast<std::uint32_t>(index) << 8 | subindex] = value;
    r[0] = 0x60;  // initiate download response
    out.push_back(frame_of(response_id, r));
    return;
  }
  if (ccs == 2) {  // initiate upload
    std::uint32_t value = 0;
    int size = 4;
    if (auto it = node.written.find(static_cast<std::uint32_t>(index) << 8 | subindex);
        it != node.written.end()) {
      value = it->second;
    } else if (index == 0x1000 && subindex == 0) {
      value = 0;  // device type: no standard device profile
    } else if (index == 0x1001 && subindex == 0) {
      value = error_register(module.status_bits());
      size = 1;
    } else if (index == 0x1008 && subindex == 0) {
      value = 'C' | 'M' << 8 | 'A' << 16 | 0u << 24;  // manufacturer device name "CMA"
      size = 3;
    } else if (index == 0x1017 && subindex == 0) {
      value = 0;  // producer heartbeat time (ms): off, the rig's modules answer SYNC only
      size = 2;
    } else if (index == 0x1018 && subindex <= 4) {
      // identity: sub 0 = 4 entries, vendor 0 (simulated), product 0x434D41 ("CMA"), revision 1, serial =
      // node id
      const std::uint32_t identity[] = {4, 0, 0x434D41, 1, static_cast<std::uint32_t>(node.node_id)};
      value = identity[subindex];
      size = subindex == 0 ? 1 : 4;
    } else if (is_tpdo_parameter && subindex == 1) {
      value = kPdoBase[index - 0x1800u] + static_cast<std::uint32_t>(node.node_id);  // TPDO COB-ID
    } else if (is_tpdo_parameter && subindex == 2) {
      value = 1;  // transmission type: synchronous, every SYNC
      size = 1;
    } else {
      return abort(index == 0x1000 || index == 0x1001 || index == 0x1008 || index == 0x1017 ||
                           index == 0x1018 || is_tpdo_parameter
                       ? SdoAbort::subindex_missing
                       : SdoAbort::object_missing);
    }
    // Expedited upload response: 0x43/0x47/0x4B/0x4F for 4/3/2/1 bytes.
    r[0] = static_cast<std::uint8_t>(0x43 | ((4 - size) << 2));
    put_u32(&r[4], value);
    out.push_back(frame_of(response_id, r));
    return;
  }
  if (ccs == 4) return;  // abort from the client: nothing to answer
  abort(SdoAbort::command_unknown);
}

void CanopenModules::append_emergencies(const PackModel& model, std::vector<can::Frame>& out) {
  for (auto& node : nodes_) {
    const ModuleState* module = model.module(node->node_id);
    if (module == nullptr) continue;
    const std::uint16_t status = module->status_bits();
    const std::uint16_t faults = status & kFaultBits;
    const std::uint16_t raised = faults & static_cast<std::uint16_t>(~node->last_status);
    const bool cleared = faults == 0 && node->last_status != 0;
    node->last_status = faults;
    if (node->faults.silent || (raised == 0 && !cleared)) continue;
    std::uint16_t code = kEmcyErrorReset;
    if (raised & kStatusCellOverVoltage)
      code = kEmcyOverVoltage;
    else if (raised & kStatusCellUnderVoltage)
      code = kEmcyUnderVoltage;
    else if (raised & kStatusOverTemperature)
      code = kEmcyOverTemperature;
    std::array<std::uint8_t, 8> payload{};
    put_u16(&payload[0], code);
    payload[2] = error_register(status);
    put_u16(&payload[3], status);
    out.push_back(frame_of(kEmcyBase + static_cast<std::uint32_t>(node->node_id), payload));
    ++counters_.emergencies;
  }
}

can::Frame make_sdo_download(int node_id, std::uint16_t index, std::uint8_t subindex, std::uint32_t value,
                             int size_bytes) {
  std::array<std::uint8_t, 4> bytes{};
  for (int i = 0; i < 4; ++i)
    bytes[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(value >> (8 * i));
  return canopen::sdo_expedited_download(
      node_id, index, subindex,
      std::span(bytes).first(static_cast<std::size_t>(std::clamp(size_bytes, 1, 4))));
}

can::Frame make_sdo_upload_request(int node_id, std::uint16_t index, std::uint8_t subindex) {
  return canopen::sdo_upload_request(node_id, index, subindex);
}

can::Frame make_sync(std::uint8_t counter) {
  const std::uint8_t b[1] = {counter};
  return frame_of(kSyncId, b);
}

}  // namespace cellguard::sim
