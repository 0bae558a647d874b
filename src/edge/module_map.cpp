#include "edge/module_map.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <map>
#include <set>

namespace cellguard::edge {
namespace {

// Matches `text` against `pattern` where `placeholder` (e.g. "{id}") stands for a decimal number.
// `prefix_only`: the pattern must match a prefix of `text`. Returns the number, or 0.
int match_number_pattern(std::string_view pattern, std::string_view placeholder, std::string_view text,
                         bool prefix_only) {
  const auto at = pattern.find(placeholder);
  if (at == std::string_view::npos) return 0;
  const std::string_view before = pattern.substr(0, at);
  const std::string_view after = pattern.substr(at + placeholder.size());
  if (text.substr(0, before.size()) != before) return 0;
  std::size_t i = before.size();
  int value = 0;
  std::size_t digits = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9' && digits < 6) {
    value = value * 10 + (text[i] - '0');
    ++i;
    ++digits;
  }
  if (digits == 0) return 0;
  const std::string_view rest = text.substr(i);
  if (prefix_only ? rest.substr(0, after.size()) != after : rest != after) return 0;
  return value;
}

// CANopen services that are never module PDOs: NMT, SYNC/EMCY, TIME, SDO, heartbeat.
bool is_canopen_service(std::uint32_t id) {
  return id < 0x180 || (id >= 0x580 && id < 0x680) || (id >= 0x700 && id < 0x780);
}

// The node id of a PDO COB-ID: its offset from the nearest base at or below it, or 0.
int pdo_node(std::uint32_t id, const std::vector<std::uint32_t>& bases) {
  std::uint32_t best = 0;
  bool found = false;
  for (std::uint32_t base : bases) {
    if (base < id && (!found || base > best)) {
      best = base;
      found = true;
    }
  }
  if (!found || id - best > static_cast<std::uint32_t>(safety::kMaxModuleId)) return 0;
  return static_cast<int>(id - best);
}

}  // namespace

int match_name_pattern(std::string_view pattern, std::string_view name) {
  return match_number_pattern(pattern, "{id}", name, true);
}

Result<ModuleMap> ModuleMap::build(const dbc::DatabaseCodec& codec, const ModulesSection& modules,
                                   safety::Supervisor& supervisor) {
  const auto& messages = codec.database().messages;
  std::vector<int> module_of(messages.size(), 0);

  if (modules.discovery == ModulesSection::Discovery::canopen) {
    for (std::size_t i = 0; i < messages.size(); ++i) {
      const auto& m = messages[i];
      if (m.extended || is_canopen_service(m.id)) continue;
      module_of[i] = pdo_node(m.id, modules.pdo_bases);
    }
  } else {
    for (std::size_t i = 0; i < messages.size(); ++i) {
      const int id = match_name_pattern(modules.name_pattern, messages[i].name);
      if (id >= 1 && id <= safety::kMaxModuleId) module_of[i] = id;
    }
  }

  // What each module must provide: cells 1..cells and the four per-module quantities.
  enum Need : std::size_t { module_voltage, max_temperature, min_temperature, current, needs };
  struct Found {
    std::array<bool, needs> quantity{};
    std::vector<bool> cell;
  };
  std::map<int, Found> found;

  ModuleMap map;
  map.messages_.reserve(messages.size());
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const auto& m = messages[i];
    const dbc::MessageCodec* message_codec = codec.find(m.id, m.extended);
    if (message_codec == nullptr || &message_codec->message() != &m)
      continue;  // a duplicate id: the later wins
    ModuleMessage entry;
    entry.codec = message_codec;
    entry.module_id = module_of[i];
    map.largest_ = std::max(map.largest_, m.signals.size());
    if (entry.module_id != 0) {
      auto& f = found[entry.module_id];
      f.cell.resize(static_cast<std::size_t>(modules.cells) + 1, false);
      for (std::size_t s = 0; s < m.signals.size(); ++s) {
        const std::string& name = m.signals[s].name;
        std::optional<safety::Quantity> quantity;
        const std::string module_text = fmt::format("module {}", entry.module_id);
        std::string label;  // for people's texts: "cell 5 of module 3", "module 3 voltage"
        if (name == modules.module_voltage_signal) {
          quantity = safety::Quantity::module_voltage;
          label = module_text + " voltage";
          f.quantity[module_voltage] = true;
        } else if (name == modules.max_temperature_signal) {
          quantity = safety::Quantity::module_max_temperature;
          label = module_text + " maximum temperature";
          f.quantity[max_temperature] = true;
        } else if (name == modules.min_temperature_signal) {
          quantity = safety::Quantity::module_min_temperature;
          label = module_text + " minimum temperature";
          f.quantity[min_temperature] = true;
        } else if (name == modules.current_signal) {
          quantity = safety::Quantity::pack_current;
          label = module_text + " current";
          f.quantity[current] = true;
        } else if (const int cell = match_number_pattern(modules.cell_voltage_signal, "{cell}", name, false);
                   cell >= 1 && cell <= modules.cells) {
          quantity = safety::Quantity::cell_voltage;
          label = fmt::format("cell {} of {}", cell, module_text);
          f.cell[static_cast<std::size_t>(cell)] = true;
        }
        if (!quantity) continue;
        auto channel = supervisor.add_channel(
            {fmt::format("{}.{}", m.name, name), *quantity, entry.module_id, std::move(label)});
        if (!channel) return channel.error();
        entry.watched.push_back({s, channel.value()});
        ++map.watched_count_;
      }
    }
    map.by_id_[key(m.id, m.extended)] = map.messages_.size();
    map.messages_.push_back(std::move(entry));
  }

  if (found.empty()) {
    return Error(
        ErrorCode::not_found,
        modules.discovery == ModulesSection::Discovery::canopen
            ? "the DBC defines no module: no message has a CANopen TPDO COB-ID (0x180/0x280/0x380/0x480 + "
              "node)"
            : fmt::format("the DBC defines no module: no message name matches \"{}\"", modules.name_pattern));
  }
  static constexpr std::array<const char*, needs> kNeedKey = {
      "module_voltage_signal", "max_temperature_signal", "min_temperature_signal", "current_signal"};
  const std::array<const std::string*, needs> need_name = {
      &modules.module_voltage_signal, &modules.max_temperature_signal, &modules.min_temperature_signal,
      &modules.current_signal};
  for (const auto& [id, f] : found) {
    for (std::size_t q = 0; q < needs; ++q) {
      if (!need_name[q]->empty() && !f.quantity[q]) {
        return Error(ErrorCode::not_found,
                     fmt::format("module {}: no signal \"{}\" (modules.{}) in its messages", id,
                                 *need_name[q], kNeedKey[q]));
      }
    }
    for (int cell = 1; cell <= modules.cells; ++cell) {
      if (!f.cell[static_cast<std::size_t>(cell)]) {
        std::string name = modules.cell_voltage_signal;
        if (const auto at = name.find("{cell}"); at != std::string::npos)
          name.replace(at, 6, std::to_string(cell));
        return Error(
            ErrorCode::not_found,
            fmt::format(
                "module {}: no signal \"{}\" (modules.cell_voltage_signal, cell {} of modules.cells = {})",
                id, name, cell, modules.cells));
      }
    }
    map.defined_modules_.push_back(id);
  }
  return map;
}

}  // namespace cellguard::edge
