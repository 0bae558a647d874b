#include <string>

#include "dbc/dbc.h"

namespace cellguard::dbc {

const Signal* Message::find_signal(std::string_view signal_name) const {
  for (const auto& s : signals) {
    if (s.name == signal_name) return &s;
  }
  return nullptr;
}

const Message* Database::find_message(std::uint32_t id, bool extended) const {
  for (auto it = messages.rbegin(); it != messages.rend(); ++it) {
    if (it->id == id && it->extended == extended && !is_independent_signals_message(*it)) return &*it;
  }
  return nullptr;
}

const Message* Database::find_message(std::string_view name) const {
  for (auto it = messages.rbegin(); it != messages.rend(); ++it) {
    if (it->name == name) return &*it;
  }
  return nullptr;
}

const AttributeDefinition* Database::find_attribute_definition(std::string_view name) const {
  for (const auto& d : attribute_definitions) {
    if (d.name == name) return &d;
  }
  return nullptr;
}

std::string Problem::located(std::string_view file) const {
  std::string text(file);
  if (position.known()) {
    text.append(":").append(std::to_string(position.line));
    text.append(":").append(std::to_string(position.column));
  }
  text.append(": ").append(message);
  return text;
}

bool is_independent_signals_message(const Message& message) {
  return message.file_id() == kIndependentSignalsFileId || message.name == "VECTOR__INDEPENDENT_SIG_MSG";
}

std::optional<AttributeValue> attribute_value(const Database& db, const std::vector<Attribute>& own,
                                              std::string_view name) {
  for (const auto& a : own) {
    if (a.name == name) return a.value;
  }
  if (const auto* def = db.find_attribute_definition(name); def != nullptr) return def->default_value;
  return std::nullopt;
}

std::optional<std::int64_t> cycle_time_ms(const Database& db, const Message& message) {
  const auto v = attribute_value(db, message.attributes, "GenMsgCycleTime");
  if (!v) return std::nullopt;
  std::int64_t ms = 0;
  if (const auto* i = std::get_if<std::int64_t>(&*v))
    ms = *i;
  else if (const auto* d = std::get_if<double>(&*v))
    ms = static_cast<std::int64_t>(*d);
  if (ms <= 0) return std::nullopt;
  return ms;
}

bool is_fd(const Database& db, const Message& message) {
  const auto v = attribute_value(db, message.attributes, "VFrameFormat");
  if (!v) return false;
  std::string text;
  if (const auto* s = std::get_if<std::string>(&*v)) {
    text = *s;
  } else if (const auto* i = std::get_if<std::int64_t>(&*v)) {
    const auto* def = db.find_attribute_definition("VFrameFormat");
    if (def == nullptr || *i < 0 || static_cast<std::size_t>(*i) >= def->enum_values.size()) return false;
    text = def->enum_values[static_cast<std::size_t>(*i)];
  }
  return text.find("FD") != std::string::npos;
}

}  // namespace cellguard::dbc
