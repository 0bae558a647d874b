// DBC writer: the sections in the order Vector's tools write them, every number in its shortest
// exact form, so parse(write(db)) == db.
#include <cmath>
#include <string>
#include <string_view>
#include <variant>

#include "core/text.h"
#include "dbc/dbc.h"
#include "dbc/multiplexing.h"

namespace cellguard::dbc {
namespace {

constexpr std::string_view kNoNode = "Vector__XXX";

class Writer {
 public:
  explicit Writer(const Database& db) : db_(db) {}

  std::string run() {
    out_.reserve(4096 + db_.messages.size() * 512);
    write_header();
    write_value_tables();
    write_messages();
    write_transmitters();
    write_environment_variables();
    write_comments();
    write_attribute_definitions();
    write_attribute_values();
    write_value_descriptions();
    write_signal_groups();
    write_value_types();
    write_multiplex_ranges();
    write_other_statements();
    return std::move(out_);
  }

 private:
  void number(double value) {
    // DBC has no words for non-finite numbers: infinity as a literal that overflows to it again,
    // NaN (which no parsed file holds) as 0.
    if (std::isinf(value)) {
      out_ += value > 0 ? "1E+309" : "-1E+309";
      return;
    }
    if (std::isnan(value)) {
      out_ += '0';
      return;
    }
    char buffer[32];
    out_.append(buffer, format_shortest(value, buffer));
  }
  void integer(std::uint64_t value) { out_ += std::to_string(value); }
  void integer(std::int64_t value) { out_ += std::to_string(value); }
  void integer(std::uint32_t value) { out_ += std::to_string(value); }

  void quoted(std::string_view text) {
    out_ += '"';
    for (const char c : text) {
      if (c == '"' || c == '\\') out_ += '\\';
      out_ += c;
    }
    out_ += '"';
  }

  void value(const AttributeValue& v) {
    if (const auto* i = std::get_if<std::int64_t>(&v))
      integer(*i);
    else if (const auto* d = std::get_if<double>(&v))
      number(*d);
    else
      quoted(std::get<std::string>(v));
  }

  void node_or_placeholder(const std::string& node) { out_ += node.empty() ? std::string(kNoNode) : node; }

  // Last, so that a statement with an unterminated string (kept as found) cannot swallow others.
  void write_other_statements() {
    if (!db_.other_statements.empty()) out_ += '\n';
    for (const auto& statement : db_.other_statements) {
      out_ += statement;
      out_ += '\n';
    }
  }

  void write_header() {
    out_ += "VERSION ";
    quoted(db_.version);
    out_ += "\n\n\nNS_ : \n";
    for (const auto& symbol : db_.new_symbols) {
      out_ += '\t';
      out_ += symbol;
      out_ += '\n';
    }
    out_ += "\nBS_:";
    if (!db_.bit_timing.empty()) {
      out_ += ' ';
      out_ += db_.bit_timing;
    }
    out_ += "\n\nBU_:";
    for (const auto& node : db_.nodes) {
      out_ += ' ';
      out_ += node.name;
    }
    out_ += "\n";
  }

  void descriptions(const std::vector<ValueDescription>& values) {
    for (const auto& v : values) {
      out_ += ' ';
      integer(v.value);
      out_ += ' ';
      quoted(v.text);
    }
    out_ += " ;\n";
  }

  void write_value_tables() {
    for (const auto& table : db_.value_tables) {
      out_ += "VAL_TABLE_ ";
      out_ += table.name;
      descriptions(table.values);
    }
    out_ += '\n';
  }

  void write_signal(const Signal& s) {
    out_ += " SG_ ";
    out_ += s.name;
    out_ += ' ';
    if (s.multiplex_value) {
      out_ += 'm';
      integer(*s.multiplex_value);
    }
    if (s.is_multiplexer) out_ += 'M';
    if (s.multiplex_value || s.is_multiplexer) out_ += ' ';
    out_ += ": ";
    integer(s.start_bit);
    out_ += '|';
    integer(s.length);
    out_ += s.byte_order == ByteOrder::big_endian ? "@0" : "@1";
    out_ += s.is_signed ? "- (" : "+ (";
    number(s.scale);
    out_ += ',';
    number(s.offset);
    out_ += ") [";
    number(s.minimum);
    out_ += '|';
    number(s.maximum);
    out_ += "] ";
    quoted(s.unit);
    out_ += ' ';
    if (s.receivers.empty()) out_ += kNoNode;
    for (std::size_t i = 0; i < s.receivers.size(); ++i) {
      if (i > 0) out_ += ',';
      out_ += s.receivers[i];
    }
    out_ += '\n';
  }

  void write_messages() {
    for (const auto& m : db_.messages) {
      out_ += "\nBO_ ";
      integer(m.file_id());
      out_ += ' ';
      out_ += m.name;
      out_ += ": ";
      integer(m.length);
      out_ += ' ';
      node_or_placeholder(m.sender);
      out_ += '\n';
      for (const auto& s : m.signals) write_signal(s);
    }
    out_ += '\n';
  }

  void write_transmitters() {
    for (const auto& m : db_.messages) {
      if (m.transmitters.empty()) continue;
      out_ += "BO_TX_BU_ ";
      integer(m.file_id());
      out_ += " : ";
      for (std::size_t i = 0; i < m.transmitters.size(); ++i) {
        if (i > 0) out_ += ',';
        out_ += m.transmitters[i];
      }
      out_ += ";\n";
    }
  }

  void write_environment_variables() {
    for (const auto& ev : db_.environment_variables) {
      out_ += "\nEV_ ";
      out_ += ev.name;
      out_ += ": ";
      integer(ev.type);
      out_ += " [";
      number(ev.minimum);
      out_ += '|';
      number(ev.maximum);
      out_ += "] ";
      quoted(ev.unit);
      out_ += ' ';
      number(ev.initial_value);
      out_ += ' ';
      integer(ev.id);
      out_ += ' ';
      out_ += ev.access_type.empty() ? std::string("DUMMY_NODE_VECTOR0") : ev.access_type;
      out_ += ' ';
      for (std::size_t i = 0; i < ev.access_nodes.size(); ++i) {
        if (i > 0) out_ += ',';
        out_ += ev.access_nodes[i];
      }
      out_ += ";\n";
    }
    for (const auto& ev : db_.environment_variables) {
      if (ev.data_type.empty()) continue;
      out_ += "ENVVAR_DATA_ ";
      out_ += ev.name;
      out_ += ": ";
      out_ += ev.data_type;
      out_ += ";\n";
    }
    out_ += '\n';
  }

  void comment(std::string_view prefix, const std::string& text) {
    out_ += "CM_ ";
    out_ += prefix;
    quoted(text);
    out_ += ";\n";
  }

  void write_comments() {
    if (!db_.comment.empty()) comment("", db_.comment);
    for (const auto& node : db_.nodes) {
      if (!node.comment.empty()) comment("BU_ " + node.name + " ", node.comment);
    }
    for (const auto& m : db_.messages) {
      const std::string id = std::to_string(m.file_id());
      if (!m.comment.empty()) comment("BO_ " + id + " ", m.comment);
      for (const auto& s : m.signals) {
        if (!s.comment.empty()) comment("SG_ " + id + " " + s.name + " ", s.comment);
      }
    }
    for (const auto& ev : db_.environment_variables) {
      if (!ev.comment.empty()) comment("EV_ " + ev.name + " ", ev.comment);
    }
  }

  static bool is_relation(AttributeObject object) {
    return object == AttributeObject::node_signal || object == AttributeObject::node_message ||
           object == AttributeObject::node_env_var;
  }

  static std::string_view object_keyword(AttributeObject object) {
    switch (object) {
      case AttributeObject::network:
        return "";
      case AttributeObject::node:
        return "BU_ ";
      case AttributeObject::message:
        return "BO_ ";
      case AttributeObject::signal:
        return "SG_ ";
      case AttributeObject::env_var:
        return "EV_ ";
      case AttributeObject::node_message:
        return "BU_BO_REL_ ";
      case AttributeObject::node_signal:
        return "BU_SG_REL_ ";
      case AttributeObject::node_env_var:
        return "BU_EV_REL_ ";
    }
    return "";
  }

  void write_attribute_definitions() {
    for (const auto& def : db_.attribute_definitions) {
      out_ += is_relation(def.object) ? "BA_DEF_REL_ " : "BA_DEF_ ";
      out_ += object_keyword(def.object);
      out_ += ' ';
      quoted(def.name);
      switch (def.type) {
        case AttributeType::integer:
        case AttributeType::hex:
        case AttributeType::floating:
          out_ += def.type == AttributeType::integer ? " INT "
                  : def.type == AttributeType::hex   ? " HEX "
                                                     : " FLOAT ";
          number(def.minimum);
          out_ += ' ';
          number(def.maximum);
          break;
        case AttributeType::string:
          out_ += " STRING ";
          break;
        case AttributeType::enumeration:
          out_ += " ENUM  ";
          for (std::size_t i = 0; i < def.enum_values.size(); ++i) {
            if (i > 0) out_ += ',';
            quoted(def.enum_values[i]);
          }
          break;
      }
      out_ += ";\n";
    }
    for (const auto& def : db_.attribute_definitions) {
      if (!def.default_value) continue;
      out_ += is_relation(def.object) ? "BA_DEF_DEF_REL_ " : "BA_DEF_DEF_  ";
      quoted(def.name);
      out_ += ' ';
      value(*def.default_value);
      out_ += ";\n";
    }
  }

  void attribute(const Attribute& a, std::string_view object) {
    out_ += "BA_ ";
    quoted(a.name);
    out_ += ' ';
    out_ += object;
    value(a.value);
    out_ += ";\n";
  }

  void write_attribute_values() {
    for (const auto& a : db_.attributes) attribute(a, "");
    for (const auto& node : db_.nodes) {
      for (const auto& a : node.attributes) attribute(a, "BU_ " + node.name + " ");
    }
    for (const auto& m : db_.messages) {
      const std::string id = std::to_string(m.file_id());
      for (const auto& a : m.attributes) attribute(a, "BO_ " + id + " ");
      for (const auto& s : m.signals) {
        for (const auto& a : s.attributes) attribute(a, "SG_ " + id + " " + s.name + " ");
      }
    }
    for (const auto& ev : db_.environment_variables) {
      for (const auto& a : ev.attributes) attribute(a, "EV_ " + ev.name + " ");
    }
    for (const auto& r : db_.relation_attributes) {
      out_ += "BA_REL_ ";
      quoted(r.name);
      out_ += ' ';
      out_ += object_keyword(r.object);
      out_ += r.node;
      out_ += ' ';
      if (r.object == AttributeObject::node_signal) {
        out_ += "SG_ ";
        integer(r.message_id);
        out_ += ' ';
        out_ += r.signal;
      } else if (r.object == AttributeObject::node_env_var) {
        out_ += r.env_var;
      } else {
        integer(r.message_id);
      }
      out_ += ' ';
      value(r.value);
      out_ += ";\n";
    }
  }

  void write_value_descriptions() {
    for (const auto& m : db_.messages) {
      for (const auto& s : m.signals) {
        if (s.value_descriptions.empty()) continue;
        out_ += "VAL_ ";
        integer(m.file_id());
        out_ += ' ';
        out_ += s.name;
        descriptions(s.value_descriptions);
      }
    }
    for (const auto& ev : db_.environment_variables) {
      if (ev.value_descriptions.empty()) continue;
      out_ += "VAL_ ";
      out_ += ev.name;
      descriptions(ev.value_descriptions);
    }
  }

  void write_signal_groups() {
    for (const auto& m : db_.messages) {
      for (const auto& g : m.signal_groups) {
        out_ += "SIG_GROUP_ ";
        integer(m.file_id());
        out_ += ' ';
        out_ += g.name;
        out_ += ' ';
        integer(g.repetitions);
        out_ += " :";
        for (const auto& name : g.signals) {
          out_ += ' ';
          out_ += name;
        }
        out_ += ";\n";
      }
    }
  }

  void write_value_types() {
    for (const auto& m : db_.messages) {
      for (const auto& s : m.signals) {
        if (s.value_type == ValueType::integer) continue;
        out_ += "SIG_VALTYPE_ ";
        integer(m.file_id());
        out_ += ' ';
        out_ += s.name;
        out_ += s.value_type == ValueType::float32 ? " : 1;\n" : " : 2;\n";
      }
    }
  }

  // SG_MUL_VAL_ only where the "mN" of the SG_ line does not already say it all.
  static bool needs_multiplex_ranges(const Message& m, const Signal& s) {
    if (s.multiplexer.empty()) return false;
    if (!s.multiplex_value) return true;
    return s.multiplexer != detail::simple_multiplexer_name(m) ||
           s.multiplex_ranges !=
               std::vector<MultiplexRange>{MultiplexRange{*s.multiplex_value, *s.multiplex_value}};
  }

  void write_multiplex_ranges() {
    for (const auto& m : db_.messages) {
      for (const auto& s : m.signals) {
        if (!needs_multiplex_ranges(m, s)) continue;
        out_ += "SG_MUL_VAL_ ";
        integer(m.file_id());
        out_ += ' ';
        out_ += s.name;
        out_ += ' ';
        out_ += s.multiplexer;
        for (std::size_t i = 0; i < s.multiplex_ranges.size(); ++i) {
          out_ += i > 0 ? ", " : " ";
          integer(s.multiplex_ranges[i].low);
          out_ += '-';
          integer(s.multiplex_ranges[i].high);
        }
        out_ += ";\n";
      }
    }
  }

  const Database& db_;
  std::string out_;
};

}  // namespace

std::string write_dbc(const Database& db) { return Writer(db).run(); }

}  // namespace cellguard::dbc
