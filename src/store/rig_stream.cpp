#include "store/rig_stream.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "dbc/codec.h"
#include "dbc/dbc.h"

namespace cellguard::store::testing {
namespace {

constexpr TimeNs kSyncNs = 100'000'000;

struct Module {
  int id = 0;
  std::array<int, 14> cells{};     // raw, 0.01 V above 2.2 V
  std::array<int, 14> cell_soc{};  // raw, 0.5 %
  std::array<int, 7> temps{};
  double current = -25.0;  // A
  std::uint64_t charge_as = 0, discharge_as = 0;
  double discharge_acc = 0;
  int balancing = 0;
  int soc = 160;
};

struct Message {
  const dbc::MessageCodec* codec = nullptr;
  int module = 0;
  int pdo = 0;
  std::vector<std::uint32_t> channels;
};

}  // namespace

struct RigStream::Impl {
  RigStreamOptions options;
  std::unique_ptr<dbc::DatabaseCodec> codec;
  std::vector<Message> messages;  // in bus order after a SYNC
  std::vector<Channel> channels;
  std::uint32_t board_first = 0, inverter_first = 0, state_channel = 0, flags_channel = 0;
  std::vector<Module> modules;
  std::mt19937_64 rng;
  TimeNs next_sync_ns = 0;
  std::uint64_t seq = 0;
  std::uint64_t samples = 0;
  std::int64_t syncs = 0;
  int state = 0;

  double uniform(double a, double b) { return std::uniform_real_distribution<double>(a, b)(rng); }
  bool chance(double p) { return uniform(0, 1) < p; }
  int jitter_ns(int us) { return static_cast<int>(uniform(-us * 1000.0, us * 1000.0)); }

  void step(Module& m) {
    for (int c = 0; c < 14; ++c) {
      if (chance(0.0005)) m.cells[c] += chance(0.8) ? -1 : 1;  // discharging: drifts down slowly
      if (chance(0.0003)) m.cell_soc[c] -= 1;
    }
    if (chance(0.001)) m.temps[static_cast<std::size_t>(rng() % 7)] += chance(0.5) ? 1 : -1;
    m.current = -25.0 + 3.0 * std::sin(static_cast<double>(syncs) / 300.0) + uniform(-0.4, 0.4);
    m.discharge_acc += 2.5;
    while (m.discharge_acc >= 1) {
      m.discharge_acc -= 1;
      ++m.discharge_as;
    }
    if (chance(0.002)) m.balancing ^= 1 << (rng() % 14);
    if (chance(0.0002)) --m.soc;
  }

  // Raw value of a signal of module m by name; flicker = one reading off by one LSB.
  std::int64_t raw(const Module& m, const std::string& name) {
    auto flick = [&](int v) { return v + (chance(0.01) ? (chance(0.5) ? 1 : -1) : 0); };
    int cell = 0;
    if (std::sscanf(name.c_str(), "Cell_%d_Voltage", &cell) == 1 && cell >= 1 && cell <= 14)
      return flick(m.cells[cell - 1]);
    if (std::sscanf(name.c_str(), "Cell%d_SOC", &cell) == 1 && cell >= 1 && cell <= 14)
      return m.cell_soc[cell - 1];
    if (std::sscanf(name.c_str(), "CMA_Temp%d", &cell) == 1 && cell >= 1 && cell <= 7)
      return m.temps[cell - 1];
    if (name == "CMA_Current") return std::llround(m.current * 10);
    if (name == "CMA_Voltage") {
      int sum = 0;
      for (int c : m.cells) sum += c + 220;
      return sum + static_cast<int>(uniform(-3, 3));
    }
    if (name == "Min_Cell_Voltage") return *std::min_element(m.cells.begin(), m.cells.end());
    if (name == "Max_Cell_Voltage") return *std::max_element(m.cells.begin(), m.cells.end());
    if (name == "CMA_Min_Temp") return *std::min_element(m.temps.begin(), m.temps.end());
    if (name == "CMA_Max_Temp") return *std::max_element(m.temps.begin(), m.temps.end());
    if (name == "CMA_Status") return 3;
    if (name == "SOC") return m.soc;
    if (name == "SOH") return 98;
    if (name == "CellBalancingStatus") return m.balancing;
    if (name == "Charge_Ah_from_BMU") return static_cast<std::int64_t>(m.charge_as);
    if (name == "Discharge_Ah_from_BMU") return static_cast<std::int64_t>(m.discharge_as);
    return 0;
  }
};

RigStream::RigStream(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RigStream::~RigStream() = default;

Result<std::unique_ptr<RigStream>> RigStream::create(const RigStreamOptions& options) {
  auto parsed = dbc::load_dbc(CELLGUARD_RIG_DBC);
  if (!parsed) return parsed.error();
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->rng.seed(options.seed);
  impl->codec = std::make_unique<dbc::DatabaseCodec>(std::move(parsed->database));
  std::uint32_t next_id = 1;
  for (int m = 1; m <= options.modules; ++m) {
    Module mod;
    mod.id = m;
    for (int c = 0; c < 14; ++c) {
      mod.cells[c] = 140 + static_cast<int>(impl->rng() % 5);
      mod.cell_soc[c] = 150 + static_cast<int>(impl->rng() % 10);
    }
    for (auto& t : mod.temps) t = 24 + static_cast<int>(impl->rng() % 4);
    mod.charge_as = 1'000'000 + impl->rng() % 1000;
    mod.discharge_as = 2'000'000 + impl->rng() % 1000;
    impl->modules.push_back(mod);
    for (int p = 1; p <= options.pdos; ++p) {
      char name[32];
      std::snprintf(name, sizeof name, "BMU%02d_pdo%d", m, p);
      const dbc::MessageCodec* mc = impl->codec->find(name);
      if (!mc)
        return Error(ErrorCode::not_found,
                     std::string("rig stream: ") + CELLGUARD_RIG_DBC + " has no " + name);
      Message msg{mc, m, p, {}};
      for (const auto& s : mc->message().signals) {
        char column[64];
        std::snprintf(column, sizeof column, "BMU%02d_", m);
        Channel ch;
        ch.id = next_id++;
        ch.name = std::string(name) + "." + s.name;
        ch.unit = s.unit;
        ch.module = m;
        ch.rig_column = column + s.name;
        ch.integral = s.scale == std::floor(s.scale) && s.offset == std::floor(s.offset);
        impl->channels.push_back(ch);
        msg.channels.push_back(ch.id);
      }
      impl->messages.push_back(std::move(msg));
    }
  }
  auto add = [&](const char* name, const char* unit, const char* column) {
    impl->channels.push_back(Channel{next_id++, name, unit, 0, column, false});
    return impl->channels.back().id;
  };
  // As the edge records them: converted values, and the raw counts that feed the rig CSV's columns.
  impl->board_first = add("board.pressure", "bar", "");
  add("board.temp1_c", "degC", "");
  add("board.temp2_c", "degC", "");
  add("board.pressure_adc", "count", "Ardu_Press");
  add("board.temp1_adc", "count", "Ardu_Temp1");
  add("board.temp2_adc", "count", "Ardu_Temp2");
  impl->inverter_first = add("inverter.dc_link_power_kw", "kW", "modbus_Power");
  add("inverter.dc_link_current_a", "A", "modbus_Current");
  add("inverter.battery_voltage_v", "V", "modbus_Voltage");
  impl->state_channel = add(kStateChannel, "", "");
  impl->flags_channel = add("safety.flags", "", "");
  impl->next_sync_ns = options.start_ns;
  return std::unique_ptr<RigStream>(new RigStream(std::move(impl)));
}

EdgeInfo RigStream::info(const std::string& edge_id) const {
  return EdgeInfo{edge_id, "0.1.0", std::string(64, 'c'), std::string(64, 'd'), impl_->channels};
}

TimeNs RigStream::now_ns() const { return impl_->next_sync_ns; }
std::uint64_t RigStream::samples() const { return impl_->samples; }

Batch RigStream::next(TimeNs duration_ns) {
  Impl& s = *impl_;
  Batch batch;
  batch.seq = ++s.seq;
  const TimeNs end = s.next_sync_ns + duration_ns;
  std::vector<SeriesBatch> pdo(s.messages.size());
  for (std::size_t i = 0; i < s.messages.size(); ++i) pdo[i].channels = s.messages[i].channels;
  SeriesBatch board{{s.board_first, s.board_first + 1, s.board_first + 2, s.board_first + 3,
                     s.board_first + 4, s.board_first + 5},
                    {},
                    {}};
  SeriesBatch inverter{{s.inverter_first, s.inverter_first + 1, s.inverter_first + 2}, {}, {}};
  SeriesBatch state{{s.state_channel, s.flags_channel}, {}, {}};
  std::vector<std::uint64_t> raw(64);
  std::vector<double> out(64);
  std::array<std::uint8_t, 8> payload{};
  while (s.next_sync_ns < end) {
    const TimeNs sync = s.next_sync_ns + s.jitter_ns(200);
    for (auto& m : s.modules) s.step(m);
    for (std::size_t i = 0; i < s.messages.size(); ++i) {
      const Message& msg = s.messages[i];
      const Module& mod = s.modules[static_cast<std::size_t>(msg.module - 1)];
      const auto& signals = msg.codec->message().signals;
      dbc::PresenceMask present(signals.size());
      for (std::size_t k = 0; k < signals.size(); ++k) {
        raw[k] = static_cast<std::uint64_t>(s.raw(mod, signals[k].name));
        present.words()[k / 64] |= 1ull << (k % 64);
      }
      payload.fill(0);
      (void)msg.codec->encode_raw(raw.data(), present, payload);
      dbc::PresenceMask decoded(signals.size());
      (void)msg.codec->decode(payload, out.data(), decoded);
      pdo[i].times_ns.push_back(sync + 300'000 + static_cast<TimeNs>(i) * 110'000 + s.jitter_ns(40));
      pdo[i].values.insert(pdo[i].values.end(), out.begin(),
                           out.begin() + static_cast<std::ptrdiff_t>(signals.size()));
      s.samples += signals.size();
    }
    if (s.syncs % 10 == 0) {  // the board's line, once a second
      board.times_ns.push_back(sync + 50'000'000 + s.jitter_ns(2000));
      board.values.insert(board.values.end(), {1.013 + s.uniform(-0.002, 0.002), 23.7 + s.uniform(-0.3, 0.3),
                                               24.1 + s.uniform(-0.3, 0.3), std::floor(s.uniform(80, 90)),
                                               std::floor(s.uniform(20, 23)), std::floor(s.uniform(33, 36))});
      s.samples += 6;
    }
    if (s.syncs % 2 == 0) {  // inverter polls, 5 Hz
      const double v = 3.6 * 14 * s.options.modules + s.uniform(-0.5, 0.5);
      const double a = -25.0 + s.uniform(-0.5, 0.5);
      inverter.times_ns.push_back(sync + 20'000'000 + s.jitter_ns(3000));
      inverter.values.insert(inverter.values.end(), {v * a / 1000.0, a, v});
      s.samples += 3;
    }
    if (s.syncs == 0 || s.syncs % 6000 == 3000) {  // a warning every 10 minutes, cleared 5 minutes later
      if (s.syncs != 0) s.state = s.state == 0 ? 1 : 0;
      state.times_ns.push_back(sync + 1'000'000);
      state.values.push_back(s.state);
      state.values.push_back(s.state ? 4 : 0);  // the warning is a cell voltage: pcan_isCellVolVio
      s.samples += 2;
      batch.events.push_back(
          {sync + 1'000'000, "state",
           std::string(R"({"kind":"state","to":")") + (s.state ? "warning" : "normal") + "\"}"});
    }
    ++s.syncs;
    s.next_sync_ns += kSyncNs;
  }
  for (auto& p : pdo)
    if (!p.times_ns.empty()) batch.series.push_back(std::move(p));
  for (SeriesBatch* extra : {&board, &inverter, &state})
    if (!extra->times_ns.empty()) batch.series.push_back(std::move(*extra));
  return batch;
}

}  // namespace cellguard::store::testing
