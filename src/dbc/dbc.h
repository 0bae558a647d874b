// The DBC (CAN database) model, its parser, writer and checker.
//
// The pipeline is: text -> parse_dbc() -> Database (plain, complete model) -> write_dbc() text,
// and Database -> codec.h (compiled decode/encode plans). The model keeps everything a DBC file
// says (comments, attributes with their definitions, value tables, signal groups, environment
// variables, relation attributes), so a file can be written back without losing information.
//
// Text is UTF-8 in the model; the parser accepts UTF-8 and cp1252/Latin-1 files (as real files come
// in both) and converts. Line ends may be LF or CRLF.
//
// Thread safety: a Database is a plain value; concurrent reads are safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/result.h"

namespace cellguard::dbc {

// Where a definition starts in its file (1-based line and column; 0 = not from a file). Positions
// are not part of a definition's value: two definitions that differ only in where they were
// written compare equal, so a written and re-read file is still equal to the original.
struct SourcePosition {
  int line = 0;
  int column = 0;
  bool known() const { return line > 0; }
  friend bool operator==(const SourcePosition&, const SourcePosition&) { return true; }
};

enum class ByteOrder { little_endian, big_endian };  // DBC "@1" (Intel) and "@0" (Motorola)
enum class ValueType { integer, float32, float64 };  // SIG_VALTYPE_ 0 (or absent), 1, 2

// A BA_ value: INT/HEX/ENUM (enum as the index) as integers, FLOAT as doubles, STRING as text.
// ENUM values written as text in the file (some tools do) are kept as text.
using AttributeValue = std::variant<std::int64_t, double, std::string>;

struct Attribute {
  std::string name;
  AttributeValue value;
  SourcePosition position;  // of the BA_ statement (the last one, if repeated)
  friend bool operator==(const Attribute&, const Attribute&) = default;
};

enum class AttributeObject {
  network,
  node,
  message,
  signal,
  env_var,
  node_message,
  node_signal,
  node_env_var
};
enum class AttributeType { integer, hex, floating, string, enumeration };

// BA_DEF_ / BA_DEF_REL_ with its BA_DEF_DEF_ / BA_DEF_DEF_REL_ default.
struct AttributeDefinition {
  std::string name;
  AttributeObject object = AttributeObject::network;
  AttributeType type = AttributeType::integer;
  double minimum = 0;  // INT, HEX, FLOAT
  double maximum = 0;
  std::vector<std::string> enum_values;         // ENUM
  std::optional<AttributeValue> default_value;  // BA_DEF_DEF_
  SourcePosition position;                      // of the BA_DEF_ statement
  friend bool operator==(const AttributeDefinition&, const AttributeDefinition&) = default;
};

// BA_REL_: an attribute on a relation (node-signal, node-message, node-env-var).
struct RelationAttribute {
  std::string name;
  AttributeObject object = AttributeObject::node_signal;
  std::string node;
  std::uint32_t message_id = 0;  // as written in the file (with bit 31 for extended ids)
  std::string signal;            // node_signal only
  std::string env_var;           // node_env_var only
  AttributeValue value;
  SourcePosition position;
  friend bool operator==(const RelationAttribute&, const RelationAttribute&) = default;
};

struct ValueDescription {
  std::int64_t value = 0;
  std::string text;
  friend bool operator==(const ValueDescription&, const ValueDescription&) = default;
};

struct ValueTable {  // VAL_TABLE_
  std::string name;
  std::vector<ValueDescription> values;
  friend bool operator==(const ValueTable&, const ValueTable&) = default;
};

struct MultiplexRange {  // one "lo-hi" of SG_MUL_VAL_; a simple "mN" is the range N-N
  std::uint64_t low = 0;
  std::uint64_t high = 0;
  friend bool operator==(const MultiplexRange&, const MultiplexRange&) = default;
};

struct Signal {
  std::string name;
  std::uint32_t start_bit = 0;  // as in the file: LSB for little endian, MSB (sawtooth) for big endian
  std::uint32_t length = 0;     // bits, 1..64
  ByteOrder byte_order = ByteOrder::little_endian;
  bool is_signed = false;
  ValueType value_type = ValueType::integer;
  double scale = 1;
  double offset = 0;
  double minimum = 0;
  double maximum = 0;
  std::string unit;
  std::vector<std::string> receivers;  // without Vector__XXX, the "no receiver" placeholder

  // Multiplexing. `is_multiplexer`: the "M" flag (this signal selects branches). A multiplexed
  // signal has a `multiplexer` (the selecting signal's name) and the selector values for which it
  // is present. Simple multiplexing "mN" yields one range N-N and the message's only multiplexer;
  // extended multiplexing (SG_MUL_VAL_) names the multiplexer and ranges explicitly.
  bool is_multiplexer = false;
  std::optional<std::uint64_t> multiplex_value;  // the N of "mN" as written, if any
  std::string multiplexer;
  std::vector<MultiplexRange> multiplex_ranges;

  std::string comment;
  std::vector<ValueDescription> value_descriptions;  // VAL_, in file order
  std::vector<Attribute> attributes;                 // BA_ SG_
  SourcePosition position;                           // of its SG_ statement

  bool is_multiplexed() const { return !multiplexer.empty(); }
  friend bool operator==(const Signal&, const Signal&) = default;
};

struct SignalGroup {  // SIG_GROUP_
  std::string name;
  std::uint32_t repetitions = 1;
  std::vector<std::string> signals;
  friend bool operator==(const SignalGroup&, const SignalGroup&) = default;
};

struct Message {
  std::uint32_t id = 0;  // without flag bits
  bool extended = false;
  std::string name;
  std::uint32_t length = 0;               // bytes
  std::string sender;                     // empty if the file says Vector__XXX (no sender)
  std::vector<std::string> transmitters;  // BO_TX_BU_
  std::vector<Signal> signals;            // in file order
  std::vector<SignalGroup> signal_groups;
  std::string comment;
  std::vector<Attribute> attributes;  // BA_ BO_
  SourcePosition position;            // of its BO_ statement

  // The id as a DBC file writes it: with bit 31 set for extended ids.
  std::uint32_t file_id() const { return extended ? (id | 0x80000000u) : id; }
  const Signal* find_signal(std::string_view signal_name) const;
  friend bool operator==(const Message&, const Message&) = default;
};

struct Node {  // BU_
  std::string name;
  std::string comment;
  std::vector<Attribute> attributes;
  SourcePosition position;  // of its name in BU_
  friend bool operator==(const Node&, const Node&) = default;
};

struct EnvironmentVariable {  // EV_
  std::string name;
  std::uint32_t type = 0;  // 0 integer, 1 float, 2 string
  double minimum = 0;
  double maximum = 0;
  std::string unit;
  double initial_value = 0;
  std::uint32_t id = 0;
  std::string access_type;  // e.g. DUMMY_NODE_VECTOR0
  std::vector<std::string> access_nodes;
  std::string comment;
  std::vector<ValueDescription> value_descriptions;
  std::vector<Attribute> attributes;
  std::string data_type;  // ENVVAR_DATA_ length, if any, as text
  SourcePosition position;
  friend bool operator==(const EnvironmentVariable&, const EnvironmentVariable&) = default;
};

struct Database {
  std::string version;
  std::vector<std::string> new_symbols;  // NS_
  std::string bit_timing;                // BS_ content after the colon, trimmed
  std::vector<Node> nodes;
  std::vector<ValueTable> value_tables;
  std::vector<Message> messages;  // file order; VECTOR__INDEPENDENT_SIG_MSG included
  std::vector<EnvironmentVariable> environment_variables;
  std::vector<AttributeDefinition> attribute_definitions;
  std::vector<Attribute> attributes;  // BA_ on the network
  std::vector<RelationAttribute> relation_attributes;
  std::string comment;  // CM_ on the network
  // Statements of sections the model does not describe (BU_SG_REL_, BU_BO_REL_, BU_EV_REL_, SGTYPE_,
  // CAT_DEF_, FILTER, ...), verbatim and ending in ';', so that writing a file loses none of them.
  std::vector<std::string> other_statements;

  // The message a frame (id, extended) selects: the last one defined with that id, as tools do.
  const Message* find_message(std::uint32_t id, bool extended) const;
  const Message* find_message(std::string_view name) const;
  const AttributeDefinition* find_attribute_definition(std::string_view name) const;
  friend bool operator==(const Database&, const Database&) = default;
};

// Vector's placeholder message that holds signals not mapped to any frame.
inline constexpr std::uint32_t kIndependentSignalsFileId = 0xC0000000u;
bool is_independent_signals_message(const Message& message);

// The value of an attribute on a message or signal: its own BA_, else the definition's default.
std::optional<AttributeValue> attribute_value(const Database& db, const std::vector<Attribute>& own,
                                              std::string_view name);
// GenMsgCycleTime in ms, if set or defaulted to non-zero.
std::optional<std::int64_t> cycle_time_ms(const Database& db, const Message& message);
// True if VFrameFormat marks the message as CAN FD (values named like "...FD...").
bool is_fd(const Database& db, const Message& message);

struct ParseWarning {
  int line = 0;
  int column = 0;
  std::string message;  // "file:line:column: duplicate message id 0x123 (...): the later definition wins"
};

struct ParseOutput {
  Database database;
  std::vector<ParseWarning> warnings;
};

// Parses DBC text. `source_name` (a path) appears in errors and warnings. A malformed file yields
// an Error whose message gives "file:line:column: expected X, found Y". Statements naming objects
// that do not exist (CM_/BA_/VAL_ on an unknown message or signal) and duplicate message ids give
// warnings. Names cut to 32 characters by Vector's tools are replaced by their full names from the
// System{Node,Message,Signal}LongSymbol attributes, as the reference decoder does.
Result<ParseOutput> parse_dbc(std::string_view text, std::string_view source_name = "<dbc>");
// Reads and parses a file.
Result<ParseOutput> load_dbc(const std::string& path);

// Writes a Database as DBC text (UTF-8; see write options of the caller for cp1252). A written file
// parses back to an equal Database.
std::string write_dbc(const Database& db);

struct Problem {
  enum class Severity { warning, error };
  Severity severity = Severity::error;
  std::string message;      // names the message and signal concerned
  SourcePosition position;  // of the offending definition (signal, message, attribute), if known
  // "FILE:LINE:COLUMN: message" (or "FILE: message" without a position).
  std::string located(std::string_view file) const;
};

// Semantic checks a parser does not make: overlapping signals in one multiplexer branch, signals
// outside the payload, bad multiplexer references, duplicate names, signal ranges that are empty or
// beyond the raw bits, attribute values without a definition, etc. Each problem carries the source
// position of the definition it is about.
std::vector<Problem> check_dbc(const Database& db);

}  // namespace cellguard::dbc
