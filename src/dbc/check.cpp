// Semantic checks of a parsed Database: what a DBC file can say but should not.
#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <variant>

#include "core/text.h"
#include "dbc/dbc.h"

namespace cellguard::dbc {
namespace {

constexpr std::uint32_t kMaxSignalBits = 64;

std::string hex_id(std::uint32_t id) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string text;
  do {
    text.insert(text.begin(), kDigits[id & 0xF]);
    id >>= 4;
  } while (id != 0);
  return "0x" + text;
}

std::string describe(const Message& m) { return "message " + m.name + " (" + hex_id(m.id) + ")"; }
std::string describe(const Message& m, const Signal& s) { return describe(m) + " signal " + s.name; }

// The payload bits a signal covers, as byte * 8 + bit-in-byte (bit 0 = LSB), whatever its byte
// order, so signals of different byte order can be compared. Bits past `limit_bits` are left out
// and reported through `outside`.
std::vector<std::uint64_t> physical_bits(const Signal& s, std::uint64_t limit_bits, bool& outside) {
  std::vector<std::uint64_t> bits;
  const std::uint32_t length = std::min(s.length, kMaxSignalBits);
  bits.reserve(length);
  outside = false;
  if (s.byte_order == ByteOrder::little_endian) {
    for (std::uint64_t b = s.start_bit; b < std::uint64_t{s.start_bit} + length; ++b) {
      if (b >= limit_bits)
        outside = true;
      else
        bits.push_back(b);
    }
  } else {
    // Motorola: the start bit is the MSB in sawtooth numbering; in a big-endian view of the payload
    // (position 0 = MSB of byte 0) it is at 8*(start/8) + 7 - start%8 and the signal runs upwards.
    const std::uint64_t msb = 8 * (std::uint64_t{s.start_bit} / 8) + 7 - s.start_bit % 8;
    for (std::uint64_t q = msb; q < msb + length; ++q) {
      if (q >= limit_bits)
        outside = true;
      else
        bits.push_back(8 * (q / 8) + 7 - q % 8);
    }
  }
  return bits;
}

class Checker {
 public:
  explicit Checker(const Database& db) : db_(db) {}

  std::vector<Problem> run() {
    check_names();
    for (const auto& m : db_.messages) {
      if (is_independent_signals_message(m)) continue;  // a container, not a frame
      check_signals(m);
      check_multiplexing(m);
      check_layout(m);
    }
    check_attributes();
    return std::move(problems_);
  }

 private:
  void error(SourcePosition at, std::string message) {
    problems_.push_back({Problem::Severity::error, std::move(message), at});
  }
  void warning(SourcePosition at, std::string message) {
    problems_.push_back({Problem::Severity::warning, std::move(message), at});
  }

  // Duplicate message names (lookups by name find the later one) and duplicate signal names in one
  // message (decoded values are keyed by name). Duplicate ids are the parser's warning.
  void check_names() {
    std::unordered_map<std::string_view, const Message*> messages;
    for (const auto& m : db_.messages) {
      if (is_independent_signals_message(m)) continue;
      const auto [it, inserted] = messages.emplace(m.name, &m);
      if (!inserted) {
        warning(m.position,
                describe(m) + ": another message has the same name (" + hex_id(it->second->id) +
                    (it->second->position.known() ? ", line " + std::to_string(it->second->position.line)
                                                  : std::string()) +
                    "); lookups by name find this one");
      }
      std::unordered_map<std::string_view, const Signal*> signals;
      for (const auto& s : m.signals) {
        const auto [sit, fresh] = signals.emplace(s.name, &s);
        if (!fresh) {
          error(s.position,
                describe(m, s) + ": a second signal with this name" +
                    (sit->second->position.known()
                         ? " (the first is on line " + std::to_string(sit->second->position.line) + ")"
                         : std::string()));
        }
      }
    }
  }

  // The physical values an integer signal's raw bits can hold: [low, high].
  static std::pair<double, double> physical_span(const Signal& s) {
    const int bits = static_cast<int>(s.length);
    const double raw_low = s.is_signed ? -std::ldexp(1.0, bits - 1) : 0.0;
    const double raw_high = s.is_signed ? std::ldexp(1.0, bits - 1) - 1 : std::ldexp(1.0, bits) - 1;
    double low = raw_low * s.scale + s.offset;
    double high = raw_high * s.scale + s.offset;
    if (low > high) std::swap(low, high);
    return {low, high};
  }

  void check_range(const Message& m, const Signal& s) {
    if (s.minimum == 0 && s.maximum == 0) return;  // [0|0]: no range given
    if (s.minimum > s.maximum) {
      error(s.position, describe(m, s) + ": minimum " + format_shortest(s.minimum) + " is above maximum " +
                            format_shortest(s.maximum));
      return;
    }
    if (s.value_type != ValueType::integer || s.length == 0 || s.length > kMaxSignalBits) return;
    const auto [low, high] = physical_span(s);
    const double slack = std::abs(s.scale) / 2;  // a range written rounded to the scale is fine
    if (s.minimum < low - slack || s.maximum > high + slack) {
      warning(s.position, describe(m, s) + ": range [" + format_shortest(s.minimum) + ", " +
                              format_shortest(s.maximum) + "] is beyond what its " +
                              std::to_string(s.length) + " raw bits can hold [" + format_shortest(low) +
                              ", " + format_shortest(high) + "]");
    }
  }

  void check_signals(const Message& m) {
    for (const auto& s : m.signals) {
      if (s.length == 0 || s.length > kMaxSignalBits) {
        error(s.position, describe(m, s) + ": length " + std::to_string(s.length) + " is outside 1..64 bits");
      }
      if (s.value_type == ValueType::float32 && s.length != 32) {
        error(s.position,
              describe(m, s) + ": float32 signal has length " + std::to_string(s.length) + ", not 32");
      }
      if (s.value_type == ValueType::float64 && s.length != 64) {
        error(s.position,
              describe(m, s) + ": double signal has length " + std::to_string(s.length) + ", not 64");
      }
      check_range(m, s);
    }
  }

  void check_multiplexing(const Message& m) {
    std::vector<std::string> top_level;
    for (const auto& s : m.signals) {
      if (s.is_multiplexer && !s.multiplex_value && s.multiplexer.empty()) top_level.push_back(s.name);
    }
    // Extended multiplexing (SG_MUL_VAL_) may have several top-level multiplexers, each selecting
    // its own signals; a multiplexer nobody refers to means the mN signals cannot tell which one.
    if (top_level.size() > 1) {
      const bool all_used = std::all_of(top_level.begin(), top_level.end(), [&m](const std::string& name) {
        return std::any_of(m.signals.begin(), m.signals.end(),
                           [&name](const Signal& s) { return s.multiplexer == name; });
      });
      if (!all_used) {
        std::string names;
        for (const auto& n : top_level) names += (names.empty() ? "" : ", ") + n;
        const Signal* second = nullptr;
        for (const auto& s : m.signals) {
          if (s.name == top_level[1]) second = &s;
        }
        error(second != nullptr ? second->position : m.position,
              describe(m) + ": several simple multiplexers (" + names +
                  "); only one may select the mN signals");
      }
    }
    for (const auto& s : m.signals) {
      if (s.multiplexer.empty()) {
        // The reference decoder reads such a signal as a plain one, and so does the codec.
        if (s.multiplex_value) {
          const bool several = std::count_if(m.signals.begin(), m.signals.end(),
                                             [](const Signal& x) { return x.is_multiplexer; }) > 1;
          warning(s.position, describe(m, s) + ": marked multiplexed (m" +
                                  std::to_string(*s.multiplex_value) + ") but the message has " +
                                  (several ? "several multiplexer signals (M) and no SG_MUL_VAL_ for it"
                                           : "no multiplexer signal (M)") +
                                  ": decoded as a plain signal");
        }
        continue;
      }
      const Signal* mux = m.find_signal(s.multiplexer);
      if (mux == nullptr) {
        error(s.position, describe(m, s) + ": its multiplexer " + s.multiplexer + " does not exist");
      } else if (mux == &s) {
        error(s.position, describe(m, s) + ": multiplexed by itself");
      } else if (!mux->is_multiplexer) {
        warning(s.position, describe(m, s) + ": its multiplexer " + s.multiplexer + " has no M flag");
      }
      for (const auto& r : s.multiplex_ranges) {
        if (r.low > r.high) {
          error(s.position, describe(m, s) + ": multiplexer range " + std::to_string(r.low) + "-" +
                                std::to_string(r.high) + " is empty");
        }
      }
    }
  }

  // Overlaps within one branch: the unmultiplexed signals together with the signals one value of
  // one multiplexer selects. Signals of different branches may share bits (quirk 6 of the corpus).
  // Each branch is compared with the unmultiplexed signals' bits once, so the work grows with the
  // number of (signal, branch) pairs, not with branches times all signals.
  void check_layout(const Message& m) {
    const std::uint64_t limit_bits = std::uint64_t{m.length} * 8;
    std::vector<std::vector<std::uint64_t>> bits(m.signals.size());
    for (std::size_t i = 0; i < m.signals.size(); ++i) {
      bool outside = false;
      bits[i] = physical_bits(m.signals[i], limit_bits, outside);
      if (outside) {
        error(m.signals[i].position, describe(m, m.signals[i]) + ": extends past the payload of " +
                                         std::to_string(m.length) + " bytes");
      }
    }
    // Branch keys: the range starts of each multiplexer stand for every value it can take.
    std::unordered_map<std::string, std::set<std::uint64_t>> selector_values;
    std::vector<std::size_t> always;
    for (std::size_t i = 0; i < m.signals.size(); ++i) {
      const Signal& s = m.signals[i];
      if (s.multiplexer.empty())
        always.push_back(i);
      else
        for (const auto& r : s.multiplex_ranges) selector_values[s.multiplexer].insert(r.low);
    }
    std::unordered_map<std::string, std::map<std::uint64_t, std::vector<std::size_t>>> branches;
    for (std::size_t i = 0; i < m.signals.size(); ++i) {
      const Signal& s = m.signals[i];
      if (s.multiplexer.empty()) continue;
      const auto& values = selector_values[s.multiplexer];
      auto& mux_branches = branches[s.multiplexer];
      std::set<std::uint64_t> selected;
      for (const auto& r : s.multiplex_ranges) {
        for (auto it = values.lower_bound(r.low); it != values.end() && *it <= r.high; ++it)
          selected.insert(*it);
      }
      for (const std::uint64_t value : selected) mux_branches[value].push_back(i);
    }

    std::set<std::pair<std::size_t, std::size_t>> reported;
    std::unordered_map<std::uint64_t, std::size_t> always_owner;
    claim_bits(m, bits, always, always_owner, nullptr, reported);
    for (const auto& [mux, by_value] : branches) {
      for (const auto& [value, members] : by_value) {
        std::unordered_map<std::uint64_t, std::size_t> owner;
        claim_bits(m, bits, members, owner, &always_owner, reported);
      }
    }
  }

  // Gives each bit of `members` an owner, reporting bits another signal of the branch (or one of
  // the always-present signals in `shared`) already owns.
  void claim_bits(const Message& m, const std::vector<std::vector<std::uint64_t>>& bits,
                  const std::vector<std::size_t>& members,
                  std::unordered_map<std::uint64_t, std::size_t>& owner,
                  const std::unordered_map<std::uint64_t, std::size_t>* shared,
                  std::set<std::pair<std::size_t, std::size_t>>& reported) {
    for (const std::size_t i : members) {
      for (const std::uint64_t bit : bits[i]) {
        std::size_t other = i;
        if (shared != nullptr) {
          if (const auto it = shared->find(bit); it != shared->end()) other = it->second;
        }
        if (other == i) {
          const auto [it, inserted] = owner.emplace(bit, i);
          if (!inserted) other = it->second;
        }
        if (other != i && reported.emplace(other, i).second) {
          error(m.signals[i].position, describe(m, m.signals[i]) + ": overlaps signal " +
                                           m.signals[other].name + " (byte " + std::to_string(bit / 8) +
                                           ", bit " + std::to_string(bit % 8) + ")");
        }
      }
    }
  }

  static bool object_matches(AttributeObject defined, AttributeObject used) { return defined == used; }

  static std::string_view object_name(AttributeObject object) {
    switch (object) {
      case AttributeObject::network:
        return "the network";
      case AttributeObject::node:
        return "a node";
      case AttributeObject::message:
        return "a message";
      case AttributeObject::signal:
        return "a signal";
      case AttributeObject::env_var:
        return "an environment variable";
      case AttributeObject::node_message:
        return "a node-message relation";
      case AttributeObject::node_signal:
        return "a node-signal relation";
      case AttributeObject::node_env_var:
        return "a node-environment variable relation";
    }
    return "an object";
  }

  // A value against its definition's type and range. `where` names the object.
  void check_value(SourcePosition at, const std::string& where, const AttributeDefinition& def,
                   const AttributeValue& value) {
    const std::string prefix = where + ": attribute " + def.name;
    const auto* integer = std::get_if<std::int64_t>(&value);
    const auto* real = std::get_if<double>(&value);
    const auto* text = std::get_if<std::string>(&value);
    switch (def.type) {
      case AttributeType::integer:
      case AttributeType::hex:
      case AttributeType::floating: {
        if (text != nullptr) {
          error(at, prefix + ": text value \"" + *text + "\" for a numeric attribute");
          return;
        }
        const double v = integer != nullptr ? static_cast<double>(*integer) : *real;
        // "INT 0 0" is the usual way of saying "no limits".
        if (def.minimum < def.maximum && (v < def.minimum || v > def.maximum)) {
          error(at, prefix + ": value " + format_shortest(v) + " outside its range [" +
                        format_shortest(def.minimum) + ", " + format_shortest(def.maximum) + "]");
        }
        if (def.type != AttributeType::floating && integer == nullptr) {
          error(at, prefix + ": non-integer value for an integer attribute");
        }
        return;
      }
      case AttributeType::string:
        if (text == nullptr) error(at, prefix + ": numeric value for a STRING attribute");
        return;
      case AttributeType::enumeration:
        if (integer != nullptr) {
          if (*integer < 0 || static_cast<std::uint64_t>(*integer) >= def.enum_values.size()) {
            error(at, prefix + ": enum index " + std::to_string(*integer) + " outside 0.." +
                          std::to_string(static_cast<std::int64_t>(def.enum_values.size()) - 1));
          }
        } else if (text != nullptr) {
          if (text->empty()) {
            // Vector's tools write "" as the default of enums that have none.
            if (std::find(def.enum_values.begin(), def.enum_values.end(), "") == def.enum_values.end()) {
              warning(at, prefix + ": empty value is not one of its enum values");
            }
          } else if (std::find(def.enum_values.begin(), def.enum_values.end(), *text) ==
                     def.enum_values.end()) {
            error(at, prefix + ": \"" + *text + "\" is not one of its enum values");
          }
        } else {
          error(at, prefix + ": non-integer enum index");
        }
        return;
    }
  }

  void check_attribute(SourcePosition at, const std::string& where, AttributeObject object,
                       const std::string& name, const AttributeValue& value) {
    const auto found = definitions_.find(name);
    const AttributeDefinition* def = found == definitions_.end() ? nullptr : found->second;
    if (def == nullptr) {
      error(at, where + ": attribute " + name + " has no definition (BA_DEF_)");
      return;
    }
    if (!object_matches(def->object, object)) {
      warning(at, where + ": attribute " + name + " is defined for " + std::string(object_name(def->object)) +
                      ", not " + std::string(object_name(object)));
    }
    check_value(at, where, *def, value);
  }

  void check_attributes() {
    // The first definition of a name counts, as in Database::find_attribute_definition.
    for (const auto& def : db_.attribute_definitions) definitions_.emplace(def.name, &def);
    for (const auto& def : db_.attribute_definitions) {
      if (def.default_value) check_value(def.position, "default", def, *def.default_value);
    }
    for (const auto& a : db_.attributes)
      check_attribute(a.position, "network", AttributeObject::network, a.name, a.value);
    for (const auto& node : db_.nodes) {
      for (const auto& a : node.attributes)
        check_attribute(a.position, "node " + node.name, AttributeObject::node, a.name, a.value);
    }
    for (const auto& m : db_.messages) {
      for (const auto& a : m.attributes)
        check_attribute(a.position, describe(m), AttributeObject::message, a.name, a.value);
      for (const auto& s : m.signals) {
        for (const auto& a : s.attributes)
          check_attribute(a.position, describe(m, s), AttributeObject::signal, a.name, a.value);
      }
    }
    for (const auto& ev : db_.environment_variables) {
      for (const auto& a : ev.attributes) {
        check_attribute(a.position, "environment variable " + ev.name, AttributeObject::env_var, a.name,
                        a.value);
      }
    }
    for (const auto& r : db_.relation_attributes) {
      std::string where = "relation of node " + r.node;
      if (r.object == AttributeObject::node_signal)
        where += " and signal " + r.signal;
      else if (r.object == AttributeObject::node_env_var)
        where += " and environment variable " + r.env_var;
      else
        where += " and message " + std::to_string(r.message_id);
      check_attribute(r.position, where, r.object, r.name, r.value);
    }
  }

  const Database& db_;
  std::vector<Problem> problems_;
  std::unordered_map<std::string, const AttributeDefinition*> definitions_;
};

}  // namespace

std::vector<Problem> check_dbc(const Database& db) { return Checker(db).run(); }

}  // namespace cellguard::dbc
