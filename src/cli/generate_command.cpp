// `cellguard generate`: writes a synthetic log of the rig's CAN traffic (SYNC, then the PDOs of every
// module), for demonstrations and benchmarks. The simulator (`cellguard sim`) is the faithful model;
// this is a quick, deterministic stream with plausible values or random payloads.
#include <cstdio>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "can/log.h"
#include "cli/commands.h"
#include "cli/output.h"
#include "dbc/codec.h"
#include "dbc/dbc.h"

namespace cellguard::cli {
namespace {

struct GenerateOptions {
  std::string dbc_path;
  std::string output = "-";
  std::string format = "candump-log";
  int modules = 8;
  double seconds = 10;
  double sync_hz = 10;
  std::uint64_t frames = 0;  // stop after this many frames, if set
  bool random_payloads = false;
  std::uint32_t seed = 1;
  std::string bus = "can0";
  double start_time_s = 1700000000.0;
};

// The module number of a rig PDO named "BMUnn_pdoN" (nn two digits, N one or more), or 0.
int pdo_module(std::string_view name) {
  constexpr std::string_view kPrefix = "BMU";
  constexpr std::string_view kInfix = "_pdo";
  if (name.size() <= kPrefix.size() + 2 + kInfix.size() || name.substr(0, 3) != kPrefix) return 0;
  const char tens = name[3];
  const char ones = name[4];
  if (tens < '0' || tens > '9' || ones < '0' || ones > '9' || name.substr(5, kInfix.size()) != kInfix)
    return 0;
  for (char c : name.substr(5 + kInfix.size())) {
    if (c < '0' || c > '9') return 0;
  }
  return (tens - '0') * 10 + (ones - '0');
}

// A plausible physical value for a rig signal, by name (see the rig's sample log).
double plausible_value(const dbc::Signal& s, int module, std::uint64_t cycle, std::mt19937& rng) {
  std::normal_distribution<double> noise(0.0, 1.0);
  const std::string& n = s.name;
  const double drift = static_cast<double>(cycle % 600) / 600.0;
  if (n.find("Cell") != std::string::npos && n.find("Voltage") != std::string::npos) {
    return 3.90 + 0.05 * drift + 0.005 * noise(rng);
  }
  if (n.find("Cell") != std::string::npos && n.find("SOC") != std::string::npos) return 80 + 5 * drift;
  if (n == "CMA_Voltage") return 12 * (3.90 + 0.05 * drift);
  if (n == "CMA_Current") return -20.0 + noise(rng);
  if (n.find("Temp") != std::string::npos) return 22 + module % 3 + 2 * drift;
  if (n == "SOC") return 80 + 5 * drift;
  if (n == "CMA_Status") return 3;  // as in the rig's sample log
  if (n == "CellBalancingStatus") return 0;
  if (n == "SOH") return 100;
  if (n.find("Ah") != std::string::npos) return 1000 + static_cast<double>(cycle);
  if (s.minimum < s.maximum) return (s.minimum + s.maximum) / 2;
  return s.offset;
}

int run_generate(const GenerateOptions& o) {
  auto parsed = dbc::load_dbc(o.dbc_path);
  if (!parsed) {
    std::fprintf(stderr, "cellguard generate: %s\n", parsed.error().message.c_str());
    return 2;
  }
  const dbc::DatabaseCodec codec(std::move(parsed->database));
  const auto format = can::parse_log_format(o.format);
  if (!format) {
    std::fprintf(stderr, "cellguard generate: unknown format '%s'\n", o.format.c_str());
    return 2;
  }

  // The messages of each present module: BMUnn_<anything> for nn in 1..modules, in file order.
  struct Item {
    const dbc::MessageCodec* codec;
    int module;
  };
  std::vector<Item> items;
  for (int module = 1; module <= o.modules; ++module) {
    for (const auto& m : codec.database().messages) {
      if (pdo_module(m.name) == module) {
        if (const auto* c = codec.find(m.id, m.extended); c != nullptr) items.push_back({c, module});
      }
    }
  }
  if (items.empty()) {
    std::fprintf(stderr, "cellguard generate: %s has no BMUnn_pdoN messages for modules 1..%d\n",
                 o.dbc_path.c_str(), o.modules);
    return 2;
  }

  auto output = LogOutput::open(o.output, *format);
  if (!output) {
    std::fprintf(stderr, "cellguard generate: %s\n", output.error().message.c_str());
    return 2;
  }
  can::LogWriter& writer = (*output)->writer();

  std::mt19937 rng(o.seed);
  const auto period_ns = static_cast<std::int64_t>(1e9 / o.sync_hz);
  const auto cycles = static_cast<std::uint64_t>(o.seconds * o.sync_hz);
  const auto start_ns = static_cast<std::int64_t>(o.start_time_s * 1e9);
  std::uint64_t written = 0;
  std::vector<double> values;
  can::Frame frame;
  frame.bus.assign(o.bus);
  for (std::uint64_t cycle = 0; o.frames > 0 || cycle < cycles; ++cycle) {
    const std::int64_t t0 = start_ns + static_cast<std::int64_t>(cycle) * period_ns;
    // SYNC (CANopen COB-ID 0x080) with its one-byte counter, as the rig's controller sends it.
    frame.id = 0x080;
    frame.extended = false;
    frame.timestamp_ns = t0;
    frame.size = 1;
    frame.data[0] = static_cast<std::uint8_t>(cycle % 240 + 1);
    if (auto w = writer.write(frame); !w) {
      std::fprintf(stderr, "cellguard generate: %s\n", w.error().message.c_str());
      return 1;
    }
    if (o.frames > 0 && ++written >= o.frames) break;
    for (std::size_t k = 0; k < items.size(); ++k) {
      const auto& item = items[k];
      const auto& message = item.codec->message();
      frame.id = message.id;
      frame.extended = message.extended;
      frame.timestamp_ns =
          t0 + static_cast<std::int64_t>(k + 1) * 150'000;  // ~150 us per frame at 500 kbit/s
      frame.size = static_cast<std::uint8_t>(message.length);
      frame.data.fill(0);
      if (o.random_payloads) {
        for (std::size_t b = 0; b < frame.size; ++b) frame.data[b] = static_cast<std::uint8_t>(rng());
      } else {
        values.resize(message.signals.size());
        dbc::PresenceMask present(message.signals.size());
        for (std::size_t i = 0; i < message.signals.size(); ++i) {
          values[i] = plausible_value(message.signals[i], item.module, cycle, rng);
          present.words()[i / 64] |= std::uint64_t{1} << (i % 64);
        }
        if (auto encoded = item.codec->encode(values.data(), present, {frame.data.data(), frame.size});
            !encoded) {
          std::fprintf(stderr, "cellguard generate: %s\n", encoded.error().message.c_str());
          return 1;
        }
      }
      if (auto w = writer.write(frame); !w) {
        std::fprintf(stderr, "cellguard generate: %s\n", w.error().message.c_str());
        return 1;
      }
      if (o.frames > 0 && ++written >= o.frames) break;
    }
    if (o.frames > 0 && written >= o.frames) break;
  }
  if (auto finished = writer.finish(); !finished) {
    std::fprintf(stderr, "cellguard generate: %s\n", finished.error().message.c_str());
    return 1;
  }
  return 0;
}

}  // namespace

void register_generate(CLI::App& app, Action& action) {
  auto o = std::make_shared<GenerateOptions>();
  CLI::App* cmd =
      app.add_subcommand("generate", "Write a synthetic log of the rig's CAN traffic (SYNC + module PDOs)");
  cmd->add_option("--dbc", o->dbc_path, "DBC with the rig's BMUnn_pdoN messages")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("-o,--output", o->output, "output log, or - for standard output")->capture_default_str();
  cmd->add_option("--format", o->format, "candump-log, asc or trc")->capture_default_str();
  cmd->add_option("--modules", o->modules, "modules present (node ids 1..N)")
      ->check(CLI::Range(1, 15))
      ->capture_default_str();
  cmd->add_option("--seconds", o->seconds, "length of the log in seconds")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--sync-hz", o->sync_hz, "SYNC rate")
      ->check(CLI::Range(0.1, 1000.0))
      ->capture_default_str();
  cmd->add_option("--frames", o->frames, "stop after this many frames (overrides --seconds)");
  cmd->add_flag("--random", o->random_payloads, "random payloads instead of plausible values");
  cmd->add_option("--seed", o->seed, "random seed")->capture_default_str();
  cmd->add_option("--bus", o->bus, "bus name written in the log")->capture_default_str();
  cmd->callback([o, &action] { action = [o] { return run_generate(*o); }; });
}

}  // namespace cellguard::cli
