// DBC parser: a hand-written scanner over the (UTF-8) text and one function per statement.
//
// The scanner is directed by the grammar (each statement asks for the next thing it expects), which
// keeps tricky spots simple: "1-1" in SG_MUL_VAL_ is two numbers and a dash, "@0-" is a byte order
// and a sign. There is no recursion and every byte is looked at a bounded number of times, so time
// is linear in the input. Errors stop the parse with "file:line:column: expected X, found Y".
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <fstream>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>

#include "core/text.h"
#include "dbc/dbc.h"
#include "dbc/multiplexing.h"

namespace cellguard::dbc {
namespace {

constexpr std::string_view kNoNode = "Vector__XXX";  // Vector's "no node" placeholder
constexpr std::uint32_t kExtendedFlag = 0x80000000u;

bool is_identifier_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || u >= 0x80;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Keywords that start a statement; lists of names (BU_) stop at them.
bool is_section_keyword(std::string_view word) {
  static constexpr std::string_view kKeywords[] = {"VERSION",
                                                   "NS_",
                                                   "BS_",
                                                   "BU_",
                                                   "VAL_TABLE_",
                                                   "BO_",
                                                   "SG_",
                                                   "BO_TX_BU_",
                                                   "CM_",
                                                   "BA_DEF_",
                                                   "BA_DEF_DEF_",
                                                   "BA_",
                                                   "BA_DEF_REL_",
                                                   "BA_REL_",
                                                   "BA_DEF_DEF_REL_",
                                                   "VAL_",
                                                   "SIG_VALTYPE_",
                                                   "SG_MUL_VAL_",
                                                   "SIG_GROUP_",
                                                   "EV_",
                                                   "ENVVAR_DATA_",
                                                   "BU_SG_REL_",
                                                   "BU_EV_REL_",
                                                   "BU_BO_REL_",
                                                   "SGTYPE_",
                                                   "SGTYPE_VAL_",
                                                   "SIG_TYPE_REF_",
                                                   "CAT_DEF_",
                                                   "CAT_",
                                                   "FILTER",
                                                   "EV_DATA_",
                                                   "BA_DEF_SGTYPE_",
                                                   "BA_SGTYPE_",
                                                   "SIGTYPE_VALTYPE_",
                                                   "NS_DESC_"};
  return std::find(std::begin(kKeywords), std::end(kKeywords), word) != std::end(kKeywords);
}

// Universal newlines inside strings, as the reference tools read files in text mode.
std::string normalize_newlines(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r') {
      out += '\n';
      if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
    } else {
      out += text[i];
    }
  }
  return out;
}

// Hashing for maps keyed by std::string that are searched with string_views.
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view text) const { return std::hash<std::string_view>()(text); }
};
template <typename Value>
using StringMap = std::unordered_map<std::string, Value, StringHash, std::equal_to<>>;

class Parser {
 public:
  Parser(std::string_view text, std::string_view source_name) : text_(text), source_(source_name) {}

  Result<ParseOutput> run() {
    while (true) {
      skip_space();
      if (at_end()) break;
      if (!parse_statement()) return Error(ErrorCode::parse_error, std::move(error_));
    }
    // Text without a single DBC statement (an empty file, a log, random bytes) is not a database
    // with no messages: it is the wrong file.
    if (!saw_dbc_statement_) {
      if (first_other_statement_ == std::string_view::npos) {
        return Error(
            ErrorCode::parse_error,
            std::string(source_) + ":1:1: no DBC content: no statement at all (empty, or only comments)");
      }
      const auto [line, column] = line_column(first_other_statement_);
      std::string_view word = text_.substr(first_other_statement_, 32);
      word = word.substr(0, word.find_first_of(" \t\r\n"));
      return Error(ErrorCode::parse_error,
                   std::string(source_) + ":" + std::to_string(line) + ":" + std::to_string(column) +
                       ": no DBC content: no VERSION, NS_, BU_ or BO_ statement found (the first word is '" +
                       escape_untrusted(word, 64) + "')");
    }
    merge_all_repeated_attributes();
    apply_long_names();
    resolve_simple_multiplexers();
    if (!resolve_bare_multiplex_markers()) return Error(ErrorCode::parse_error, std::move(error_));
    return std::move(out_);
  }

 private:
  // ---- scanning ----

  bool at_end() const { return pos_ >= text_.size(); }
  char peek() const { return at_end() ? '\0' : text_[pos_]; }

  // Skips spaces, line ends and "//" comments.
  void skip_space() {
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
        ++pos_;
      } else if (c == '/' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '/') {
        while (pos_ < text_.size() && text_[pos_] != '\n') ++pos_;
      } else {
        break;
      }
    }
  }

  // Skips spaces and tabs only; true if something other than a line end, comment or the end of
  // the text follows on the same line.
  bool more_on_line() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t')) ++pos_;
    if (at_end()) return false;
    const char c = text_[pos_];
    if (c == '\n' || c == '\r') return false;
    return !(c == '/' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '/');
  }

  std::pair<int, int> line_column(std::size_t pos) const {
    int line = 1;
    std::size_t line_start = 0;
    for (std::size_t i = 0; i < pos && i < text_.size(); ++i) {
      if (text_[i] == '\n') {
        ++line;
        line_start = i + 1;
      }
    }
    return {line, static_cast<int>(pos - line_start) + 1};
  }

  // Positions of definitions and warnings: they come in increasing order, so counting on from the
  // last one keeps the whole parse linear.
  SourcePosition position_of(std::size_t pos) {
    if (pos < cursor_pos_) {
      cursor_pos_ = 0;
      cursor_line_ = 1;
      cursor_line_start_ = 0;
    }
    for (; cursor_pos_ < pos && cursor_pos_ < text_.size(); ++cursor_pos_) {
      if (text_[cursor_pos_] == '\n') {
        ++cursor_line_;
        cursor_line_start_ = cursor_pos_ + 1;
      }
    }
    return {cursor_line_, static_cast<int>(std::min(pos, text_.size()) - cursor_line_start_) + 1};
  }

  std::string describe_token_at(std::size_t pos) const {
    if (pos >= text_.size()) return "end of file";
    constexpr std::size_t kMaxShown = 24;
    std::size_t end = pos;
    if (text_[pos] == '"') {
      end = pos + 1;
      while (end < text_.size() && end - pos < kMaxShown && text_[end] != '"' && text_[end] != '\n') ++end;
      if (end < text_.size() && text_[end] == '"') ++end;
    } else if (is_identifier_char(text_[pos]) || text_[pos] == '-' || text_[pos] == '+' ||
               text_[pos] == '.') {
      ++end;
      while (
          end < text_.size() && end - pos < kMaxShown &&
          (is_identifier_char(text_[end]) || text_[end] == '.' ||
           ((text_[end] == '+' || text_[end] == '-') && (text_[end - 1] == 'e' || text_[end - 1] == 'E')))) {
        ++end;
      }
    } else if (text_[pos] == '\n' || text_[pos] == '\r') {
      return "end of line";
    } else {
      end = pos + 1;
    }
    std::string shown;
    shown.reserve(end - pos + 2);
    shown.push_back('\'');
    shown.append(escape_untrusted(text_.substr(pos, end - pos)));  // a file's bytes, shown escaped
    shown.push_back('\'');
    return shown;
  }

  bool fail_at(std::size_t pos, std::string_view what) {
    const auto [line, column] = line_column(pos);
    error_ = std::string(source_) + ":" + std::to_string(line) + ":" + std::to_string(column) +
             ": expected " + std::string(what) + ", found " + describe_token_at(pos);
    return false;
  }
  bool fail(std::string_view what) { return fail_at(pos_, what); }

  void warn(std::size_t pos, std::string message) { warn_at(position_of(pos), std::move(message)); }
  void warn_at(SourcePosition where, std::string message) {
    out_.warnings.push_back({where.line, where.column,
                             std::string(source_) + ":" + std::to_string(where.line) + ":" +
                                 std::to_string(where.column) + ": " + std::move(message)});
  }

  bool expect(char c) {
    skip_space();
    if (peek() != c) {
      const char quoted[3] = {'\'', c, '\''};
      return fail(std::string_view(quoted, sizeof quoted));
    }
    ++pos_;
    return true;
  }

  // Consumes `c` if it is the next character; false (no error) otherwise.
  bool accept(char c) {
    skip_space();
    if (peek() != c) return false;
    ++pos_;
    return true;
  }

  bool read_identifier(std::string_view& out, std::string_view what) {
    skip_space();
    const std::size_t start = pos_;
    while (pos_ < text_.size() && is_identifier_char(text_[pos_])) ++pos_;
    if (pos_ == start) return fail(what);
    out = text_.substr(start, pos_ - start);
    return true;
  }

  bool read_string(std::string& out) {
    skip_space();
    if (peek() != '"') return fail("'\"'");
    const std::size_t open = pos_;
    ++pos_;
    std::string value;
    bool has_cr = false;
    while (true) {
      // Copy the plain run up to the next quote or backslash in one go.
      std::size_t end = pos_;
      while (end < text_.size() && text_[end] != '"' && text_[end] != '\\') {
        has_cr = has_cr || text_[end] == '\r';
        ++end;
      }
      value.append(text_.data() + pos_, end - pos_);
      pos_ = end;
      if (at_end()) return fail_at(open, "a closing '\"' for this string");
      if (text_[pos_] == '"') {
        ++pos_;
        break;
      }
      // A backslash escapes a quote or a backslash; before anything else it is kept as it is.
      if (pos_ + 1 < text_.size() && (text_[pos_ + 1] == '"' || text_[pos_ + 1] == '\\')) {
        value += text_[pos_ + 1];
        pos_ += 2;
      } else {
        value += '\\';
        ++pos_;
      }
    }
    out = has_cr ? normalize_newlines(value) : std::move(value);
    return true;
  }

  // A number's text: [+-] digits [. digits] [e [+-] digits], or 0x hex digits.
  bool scan_number(std::string_view& out, std::string_view what) {
    skip_space();
    const std::size_t start = pos_;
    std::size_t p = pos_;
    if (p < text_.size() && (text_[p] == '+' || text_[p] == '-')) ++p;
    if (p + 1 < text_.size() && text_[p] == '0' && (text_[p + 1] == 'x' || text_[p + 1] == 'X')) {
      std::size_t q = p + 2;
      while (q < text_.size() && std::isxdigit(static_cast<unsigned char>(text_[q])) != 0) ++q;
      if (q > p + 2) {
        pos_ = q;
        out = text_.substr(start, q - start);
        return true;
      }
    }
    std::size_t digits = 0;
    while (p < text_.size() && is_digit(text_[p])) ++p, ++digits;
    if (p < text_.size() && text_[p] == '.') {
      ++p;
      while (p < text_.size() && is_digit(text_[p])) ++p, ++digits;
    }
    if (digits == 0) return fail(what);
    if (p < text_.size() && (text_[p] == 'e' || text_[p] == 'E')) {
      std::size_t q = p + 1;
      if (q < text_.size() && (text_[q] == '+' || text_[q] == '-')) ++q;
      if (q < text_.size() && is_digit(text_[q])) {
        while (q < text_.size() && is_digit(text_[q])) ++q;
        p = q;
      }
    }
    // A number glued to a name ("12abc") is not a number.
    if (p < text_.size() && is_identifier_char(text_[p])) return fail(what);
    pos_ = p;
    out = text_.substr(start, p - start);
    return true;
  }

  static bool is_hex_literal(std::string_view t) {
    const std::size_t i = (!t.empty() && (t[0] == '+' || t[0] == '-')) ? 1 : 0;
    return t.size() > i + 1 && t[i] == '0' && (t[i + 1] == 'x' || t[i + 1] == 'X');
  }

  // Converts a scanned number; false if it is not integral or does not fit.
  static bool to_int64(std::string_view t, std::int64_t& out) {
    bool negative = false;
    if (!t.empty() && (t[0] == '+' || t[0] == '-')) {
      negative = t[0] == '-';
      t.remove_prefix(1);
    }
    int base = 10;
    if (is_hex_literal(t)) {
      t.remove_prefix(2);
      base = 16;
    }
    std::uint64_t magnitude = 0;
    const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), magnitude, base);
    if (ec != std::errc() || end != t.data() + t.size()) return false;
    if (negative) {
      if (magnitude > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) + 1) return false;
      out = static_cast<std::int64_t>(0 - magnitude);
    } else {
      if (magnitude > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return false;
      out = static_cast<std::int64_t>(magnitude);
    }
    return true;
  }

  static double to_double(std::string_view t) {
    std::int64_t integer = 0;
    if (is_hex_literal(t) && to_int64(t, integer)) return static_cast<double>(integer);
    const bool negative = !t.empty() && t[0] == '-';
    if (!t.empty() && (t[0] == '+' || t[0] == '-')) t.remove_prefix(1);
    double value = 0;
    const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), value);
    if (ec == std::errc::result_out_of_range) {
      // Too large becomes infinity, too small zero, as strtod and Python do.
      const auto e = t.find_first_of("eE");
      const bool tiny = e != std::string_view::npos && e + 1 < t.size() && t[e + 1] == '-';
      value = tiny ? 0.0 : std::numeric_limits<double>::infinity();
    }
    return negative ? -value : value;
  }

  bool read_double(double& out, std::string_view what) {
    std::string_view t;
    if (!scan_number(t, what)) return false;
    out = to_double(t);
    return true;
  }

  bool read_uint(std::uint64_t& out, std::string_view what, std::uint64_t max) {
    skip_space();
    const std::size_t start = pos_;
    std::string_view t;
    if (!scan_number(t, what)) return false;
    std::int64_t value = 0;
    std::uint64_t magnitude = 0;
    if (t.find_first_of(".eE-") == std::string_view::npos || is_hex_literal(t)) {
      const bool hex = is_hex_literal(t);
      std::string_view digits = t;
      if (!digits.empty() && digits[0] == '+') digits.remove_prefix(1);
      if (hex) digits.remove_prefix(2);
      const auto [end, ec] =
          std::from_chars(digits.data(), digits.data() + digits.size(), magnitude, hex ? 16 : 10);
      if (ec == std::errc() && end == digits.data() + digits.size() && magnitude <= max) {
        out = magnitude;
        return true;
      }
    } else if (to_int64(t, value) && value >= 0) {
      out = static_cast<std::uint64_t>(value);
      return true;
    }
    return fail_at(start, what);
  }

  bool read_uint32(std::uint32_t& out, std::string_view what) {
    std::uint64_t v = 0;
    if (!read_uint(v, what, std::numeric_limits<std::uint32_t>::max())) return false;
    out = static_cast<std::uint32_t>(v);
    return true;
  }

  // A value description key: an integer, possibly negative or beyond int64 (kept modulo 2^64).
  bool read_value_key(std::int64_t& out) {
    skip_space();
    const std::size_t start = pos_;
    std::string_view t;
    if (!scan_number(t, "an integer value")) return false;
    if (to_int64(t, out)) return true;
    std::string_view digits = t;
    if (!digits.empty() && digits[0] == '+') digits.remove_prefix(1);
    std::uint64_t magnitude = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), magnitude);
    if (ec == std::errc() && end == digits.data() + digits.size()) {
      out = static_cast<std::int64_t>(magnitude);
      return true;
    }
    const double d = to_double(t);
    if (std::isfinite(d) && d == std::floor(d) && std::abs(d) < 9.2e18) {
      out = static_cast<std::int64_t>(d);
      return true;
    }
    return fail_at(start, "an integer value");
  }

  // Skips an unknown statement up to its ';' (outside strings), the end of the text, or a line that
  // starts with a keyword: a statement without its ';' must not swallow the ones after it.
  void skip_statement() {
    while (pos_ < text_.size()) {
      const char c = text_[pos_++];
      if (c == ';') return;
      if (c == '"') {
        while (pos_ < text_.size() && text_[pos_] != '"') {
          if (text_[pos_] == '\\' && pos_ + 1 < text_.size()) ++pos_;
          ++pos_;
        }
        if (pos_ < text_.size()) ++pos_;
      } else if (c == '\n') {
        std::size_t word = pos_;
        while (word < text_.size() && (text_[word] == ' ' || text_[word] == '\t' || text_[word] == '\r'))
          ++word;
        std::size_t end = word;
        while (end < text_.size() && is_identifier_char(text_[end])) ++end;
        if (end > word && is_section_keyword(text_.substr(word, end - word))) return;
      }
    }
  }

  // ---- lookups (the later definition wins, as in find_message) ----

  Message* message_by_file_id(std::uint32_t file_id) {
    const auto it = message_index_.find(file_id);
    return it == message_index_.end() ? nullptr : &out_.database.messages[it->second];
  }

  Signal* signal_in(Message& message, std::string_view name) {
    auto& index = signal_index_[static_cast<std::size_t>(&message - out_.database.messages.data())];
    const auto it = index.find(name);
    return it == index.end() ? nullptr : &message.signals[it->second];
  }

  Node* node_by_name(std::string_view name) {
    const auto it = node_index_.find(name);
    return it == node_index_.end() ? nullptr : &out_.database.nodes[it->second];
  }

  EnvironmentVariable* env_var_by_name(std::string_view name) {
    const auto it = env_var_index_.find(name);
    return it == env_var_index_.end() ? nullptr : &out_.database.environment_variables[it->second];
  }

  // Message and signal for statements that name "id signal"; warns and returns null if missing.
  bool read_message_ref(Message*& message, std::size_t& where) {
    std::uint32_t file_id = 0;
    skip_space();
    where = pos_;
    if (!read_uint32(file_id, "a message id")) return false;
    message = message_by_file_id(file_id);
    if (message == nullptr)
      warn(where, "no message with id " + std::to_string(file_id) + ": statement ignored");
    return true;
  }

  bool read_signal_ref(Message*& message, Signal*& signal) {
    std::size_t where = 0;
    if (!read_message_ref(message, where)) return false;
    std::string_view name;
    if (!read_identifier(name, "a signal name")) return false;
    signal = nullptr;
    if (message != nullptr) {
      signal = signal_in(*message, name);
      if (signal == nullptr) {
        warn(where,
             "message " + message->name + " has no signal " + std::string(name) + ": statement ignored");
      }
    }
    return true;
  }

  // ---- statements ----

  bool parse_statement() {
    const std::size_t start = pos_;
    statement_start_ = start;
    std::string_view keyword;
    if (!read_identifier(keyword, "a keyword")) return false;
    if (is_section_keyword(keyword)) {
      saw_dbc_statement_ = true;
    } else if (first_other_statement_ == std::string_view::npos) {
      first_other_statement_ = start;
    }
    if (keyword == "VERSION") return read_string(out_.database.version);
    if (keyword == "NS_") return parse_new_symbols();
    if (keyword == "BS_") return parse_bit_timing();
    if (keyword == "BU_") return parse_nodes();
    if (keyword == "VAL_TABLE_") return parse_value_table();
    if (keyword == "BO_") return parse_message(start);
    if (keyword == "SG_") return parse_signal(start);
    if (keyword == "BO_TX_BU_") return parse_transmitters();
    if (keyword == "CM_") return parse_comment();
    if (keyword == "BA_DEF_") return parse_attribute_definition(false);
    if (keyword == "BA_DEF_REL_") return parse_attribute_definition(true);
    if (keyword == "BA_DEF_DEF_" || keyword == "BA_DEF_DEF_REL_") return parse_attribute_default();
    if (keyword == "BA_") return parse_attribute();
    if (keyword == "BA_REL_") return parse_relation_attribute();
    if (keyword == "VAL_") return parse_value_descriptions();
    if (keyword == "SIG_VALTYPE_") return parse_signal_value_type();
    if (keyword == "SG_MUL_VAL_") return parse_multiplex_ranges();
    if (keyword == "SIG_GROUP_") return parse_signal_group();
    if (keyword == "EV_") return parse_environment_variable();
    if (keyword == "ENVVAR_DATA_") return parse_environment_variable_data();
    // BU_SG_REL_, BU_EV_REL_, BU_BO_REL_, SGTYPE_, CAT_DEF_, FILTER, ...: not modelled, kept verbatim.
    skip_statement();
    std::string_view statement = text_.substr(start, pos_ - start);
    while (!statement.empty() && (statement.back() == ' ' || statement.back() == '\t' ||
                                  statement.back() == '\r' || statement.back() == '\n')) {
      statement.remove_suffix(1);
    }
    // Only statements of known sections, in plain text, are kept: garbage is skipped, not preserved.
    const bool plain = std::none_of(statement.begin(), statement.end(), [](char c) {
      return static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\r' && c != '\n';
    });
    if (is_section_keyword(keyword) && plain) {
      std::string kept(statement);
      if (kept.back() != ';') kept += ';';  // so it cannot run into what follows it when written
      out_.database.other_statements.push_back(std::move(kept));
    }
    return true;
  }

  bool parse_new_symbols() {
    if (!expect(':')) return false;
    auto& symbols = out_.database.new_symbols;
    while (true) {
      // Indented: on a new line after some white space, or on the line of the previous word.
      const std::size_t before = pos_;
      skip_space();
      const std::size_t newline = text_.substr(before, pos_ - before).rfind('\n');
      const bool indented = newline == std::string_view::npos || before + newline + 1 < pos_;
      const std::size_t start = pos_;
      while (pos_ < text_.size() && is_identifier_char(text_[pos_])) ++pos_;
      const std::string_view word = text_.substr(start, pos_ - start);
      const bool alone_on_line = !more_on_line();
      pos_ = start;
      // The list ends at the first statement: an unindented word with more on its line, or BS_.
      if (word.empty() || word == "BS_" || word == "BU_" || word == "BO_" || (!indented && !alone_on_line))
        break;
      symbols.emplace_back(word);
      pos_ = start + word.size();
    }
    return true;
  }

  bool parse_bit_timing() {
    if (!expect(':')) return false;
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t')) ++pos_;
    const std::size_t start = pos_;
    while (pos_ < text_.size() && text_[pos_] != '\n' && text_[pos_] != '\r') ++pos_;
    std::string_view content = text_.substr(start, pos_ - start);
    while (!content.empty() && (content.back() == ' ' || content.back() == '\t')) content.remove_suffix(1);
    out_.database.bit_timing = std::string(content);
    return true;
  }

  bool parse_nodes() {
    if (!expect(':')) return false;
    while (true) {
      skip_space();
      const std::size_t start = pos_;
      while (pos_ < text_.size() && is_identifier_char(text_[pos_])) ++pos_;
      const std::string_view name = text_.substr(start, pos_ - start);
      if (name.empty() || is_section_keyword(name)) {
        pos_ = start;
        return true;
      }
      node_index_.emplace(std::string(name), out_.database.nodes.size());
      out_.database.nodes.push_back(Node{std::string(name), {}, {}, position_of(start)});
    }
  }

  bool read_value_descriptions(std::vector<ValueDescription>& values) {
    values.clear();
    while (true) {
      skip_space();
      if (accept(';')) return true;
      ValueDescription entry;
      if (!read_value_key(entry.value)) return false;
      if (!read_string(entry.text)) return false;
      values.push_back(std::move(entry));
    }
  }

  bool parse_value_table() {
    ValueTable table;
    std::string_view name;
    if (!read_identifier(name, "a value table name")) return false;
    table.name = std::string(name);
    if (!read_value_descriptions(table.values)) return false;
    out_.database.value_tables.push_back(std::move(table));
    return true;
  }

  bool parse_message(std::size_t start) {
    Message message;
    message.position = position_of(start);
    std::uint32_t file_id = 0;
    if (!read_uint32(file_id, "a message id")) return false;
    message.extended = (file_id & kExtendedFlag) != 0;
    message.id = file_id & ~kExtendedFlag;
    std::string_view name;
    if (!read_identifier(name, "a message name")) return false;
    message.name = std::string(name);
    if (!expect(':')) return false;
    if (!read_uint32(message.length, "a message length")) return false;
    // A message without its sender (the next line's SG_ right after the length) has no sender, as
    // if it said Vector__XXX; the reference decoder reads such files too.
    skip_space();
    const std::size_t sender_pos = pos_;
    std::string_view sender;
    if (!read_identifier(sender, "a sender node")) return false;
    if (is_section_keyword(sender)) {
      pos_ = sender_pos;
      warn(sender_pos, "message " + message.name + " has no sender node: read as Vector__XXX (none)");
    } else if (sender != kNoNode) {
      message.sender = std::string(sender);
    }

    if (const Message* earlier = message_by_file_id(file_id); earlier != nullptr) {
      char hex[16];
      const auto [end, ec] = std::to_chars(hex, hex + sizeof hex, message.id, 16);
      warn(start, "duplicate message id 0x" + std::string(hex, end) + " (" + earlier->name + " and " +
                      message.name + "): the later definition wins");
    }
    message_index_[file_id] = out_.database.messages.size();
    out_.database.messages.push_back(std::move(message));
    signal_index_.emplace_back();
    return true;
  }

  bool parse_multiplex_indicator(Signal& signal) {
    skip_space();
    if (peek() == ':') return true;
    const std::size_t start = pos_;
    std::string_view indicator;
    if (!read_identifier(indicator, "':' or a multiplexer indicator")) return false;
    std::string_view rest = indicator;
    if (rest == "m") {
      // A bare "m" (no value): a multiplexed signal whose value was never written. Decided once the
      // whole file is read (resolve_bare_multiplex_markers).
      bare_markers_.push_back({out_.database.messages.size() - 1,
                               out_.database.messages.back().signals.size(), start, position_of(start)});
      return true;
    }
    if (rest.size() > 1 && rest[0] == 'm' && is_digit(rest[1])) {
      std::size_t digits = 1;
      while (digits < rest.size() && is_digit(rest[digits])) ++digits;
      std::uint64_t value = 0;
      const auto [end, ec] = std::from_chars(rest.data() + 1, rest.data() + digits, value);
      if (ec != std::errc()) return fail_at(start, "a multiplexer value that fits 64 bits");
      signal.multiplex_value = value;
      signal.multiplex_ranges = {MultiplexRange{value, value}};
      rest.remove_prefix(digits);
    }
    if (rest == "M") {
      signal.is_multiplexer = true;
      rest = {};
    }
    if (!rest.empty()) return fail_at(start, "a multiplexer indicator (M, mN or mNM)");
    return true;
  }

  bool parse_signal(std::size_t start) {
    if (out_.database.messages.empty()) return fail_at(start, "BO_ before SG_");
    Message& message = out_.database.messages.back();
    Signal signal;
    signal.position = position_of(start);
    std::string_view name;
    if (!read_identifier(name, "a signal name")) return false;
    signal.name = std::string(name);
    if (!parse_multiplex_indicator(signal)) return false;
    if (!expect(':')) return false;
    if (!read_uint32(signal.start_bit, "a start bit")) return false;
    if (!expect('|')) return false;
    if (!read_uint32(signal.length, "a signal length")) return false;
    if (!expect('@')) return false;
    skip_space();
    if (peek() == '0') {
      signal.byte_order = ByteOrder::big_endian;
    } else if (peek() == '1') {
      signal.byte_order = ByteOrder::little_endian;
    } else {
      return fail("byte order 0 or 1");
    }
    ++pos_;
    skip_space();
    if (peek() != '+' && peek() != '-') return fail("'+' or '-'");
    signal.is_signed = peek() == '-';
    ++pos_;
    if (!expect('(') || !read_double(signal.scale, "a scale") || !expect(',') ||
        !read_double(signal.offset, "an offset") || !expect(')')) {
      return false;
    }
    if (!expect('[') || !read_double(signal.minimum, "a minimum") || !expect('|') ||
        !read_double(signal.maximum, "a maximum") || !expect(']')) {
      return false;
    }
    if (!read_string(signal.unit)) return false;
    // Receivers: the rest of the line, separated by commas or spaces.
    while (more_on_line()) {
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      std::string_view receiver;
      if (!read_identifier(receiver, "a receiver node")) return false;
      if (receiver != kNoNode) signal.receivers.emplace_back(receiver);
    }
    auto& index = signal_index_.back();
    index.emplace(signal.name, message.signals.size());
    message.signals.push_back(std::move(signal));
    return true;
  }

  bool parse_transmitters() {
    Message* message = nullptr;
    std::size_t where = 0;
    if (!read_message_ref(message, where)) return false;
    if (!expect(':')) return false;
    std::vector<std::string> nodes;
    while (true) {
      skip_space();
      if (accept(';')) break;
      if (accept(',')) continue;
      std::string_view node;
      if (!read_identifier(node, "a node name or ';'")) return false;
      nodes.emplace_back(node);
    }
    if (message != nullptr) message->transmitters = std::move(nodes);
    return true;
  }

  bool parse_comment() {
    skip_space();
    std::string* target = nullptr;
    std::string text;
    if (peek() == '"') {
      target = &out_.database.comment;
    } else {
      const std::size_t where = pos_;
      std::string_view kind;
      if (!read_identifier(kind, "BU_, BO_, SG_, EV_ or a string")) return false;
      if (kind == "BU_" || kind == "EV_") {
        std::string_view name;
        if (!read_identifier(name, kind == "BU_" ? "a node name" : "an environment variable name"))
          return false;
        if (kind == "BU_") {
          if (Node* node = node_by_name(name); node != nullptr) target = &node->comment;
        } else if (EnvironmentVariable* ev = env_var_by_name(name); ev != nullptr) {
          target = &ev->comment;
        }
        if (target == nullptr) warn(where, "comment on unknown " + std::string(name) + " ignored");
      } else if (kind == "BO_") {
        Message* message = nullptr;
        std::size_t ref = 0;
        if (!read_message_ref(message, ref)) return false;
        if (message != nullptr) target = &message->comment;
      } else if (kind == "SG_") {
        Message* message = nullptr;
        Signal* signal = nullptr;
        if (!read_signal_ref(message, signal)) return false;
        if (signal != nullptr) target = &signal->comment;
      } else {
        return fail_at(where, "BU_, BO_, SG_, EV_ or a string");
      }
    }
    if (!read_string(text)) return false;
    if (!expect(';')) return false;
    if (target != nullptr) *target = std::move(text);
    return true;
  }

  bool parse_attribute_definition(bool relation) {
    AttributeDefinition def;
    def.position = position_of(statement_start_);
    skip_space();
    const std::size_t where = pos_;
    if (peek() != '"') {
      std::string_view object;
      if (!read_identifier(object, "an object type or the attribute name")) return false;
      if (!relation && object == "BU_")
        def.object = AttributeObject::node;
      else if (!relation && object == "BO_")
        def.object = AttributeObject::message;
      else if (!relation && object == "SG_")
        def.object = AttributeObject::signal;
      else if (!relation && object == "EV_")
        def.object = AttributeObject::env_var;
      else if (relation && object == "BU_SG_REL_")
        def.object = AttributeObject::node_signal;
      else if (relation && object == "BU_BO_REL_")
        def.object = AttributeObject::node_message;
      else if (relation && object == "BU_EV_REL_")
        def.object = AttributeObject::node_env_var;
      else
        return fail_at(where,
                       relation ? "BU_SG_REL_, BU_BO_REL_ or BU_EV_REL_" : "BU_, BO_, SG_, EV_ or '\"'");
    } else if (relation) {
      return fail("BU_SG_REL_, BU_BO_REL_ or BU_EV_REL_");
    }
    if (!read_string(def.name)) return false;
    skip_space();
    const std::size_t type_pos = pos_;
    std::string_view type;
    if (!read_identifier(type, "an attribute type")) return false;
    if (type == "INT" || type == "HEX" || type == "FLOAT") {
      def.type = type == "INT"   ? AttributeType::integer
                 : type == "HEX" ? AttributeType::hex
                                 : AttributeType::floating;
      skip_space();
      // Some tools leave the range out.
      if (peek() != ';') {
        if (!read_double(def.minimum, "a minimum") || !read_double(def.maximum, "a maximum")) return false;
      }
    } else if (type == "STRING") {
      def.type = AttributeType::string;
    } else if (type == "ENUM") {
      def.type = AttributeType::enumeration;
      while (true) {
        skip_space();
        if (peek() == ';') break;
        if (accept(',')) continue;
        std::string value;
        if (!read_string(value)) return false;
        def.enum_values.push_back(std::move(value));
      }
    } else {
      return fail_at(type_pos, "INT, HEX, FLOAT, STRING or ENUM");
    }
    if (!expect(';')) return false;
    definition_index_.emplace(def.name, out_.database.attribute_definitions.size());  // the first one counts
    out_.database.attribute_definitions.push_back(std::move(def));
    return true;
  }

  // Reads a BA_ value and types it by the definition (see AttributeValue).
  bool read_attribute_value(std::string_view name, AttributeValue& value) {
    skip_space();
    if (peek() == '"') {
      std::string text;
      if (!read_string(text)) return false;
      value = std::move(text);
      return true;
    }
    std::string_view t;
    if (!scan_number(t, "an attribute value")) return false;
    const auto found = definition_index_.find(name);
    const AttributeDefinition* def =
        found == definition_index_.end() ? nullptr : &out_.database.attribute_definitions[found->second];
    const bool floating = def != nullptr && def->type == AttributeType::floating;
    std::int64_t integer = 0;
    if (!floating && to_int64(t, integer)) {
      value = integer;
      return true;
    }
    const double real = to_double(t);
    // Integral values of non-FLOAT attributes stay integers, so a written file reads back equal.
    if (!floating && std::isfinite(real) && real == std::floor(real) && std::abs(real) < 9.2e18) {
      value = static_cast<std::int64_t>(real);
    } else {
      value = real;
    }
    return true;
  }

  bool parse_attribute_default() {
    skip_space();
    const std::size_t where = pos_;
    std::string name;
    if (!read_string(name)) return false;
    AttributeValue value;
    if (!read_attribute_value(name, value)) return false;
    if (!expect(';')) return false;
    if (const auto found = definition_index_.find(name); found != definition_index_.end()) {
      out_.database.attribute_definitions[found->second].default_value = std::move(value);
      return true;
    }
    warn(where, "default for undefined attribute " + name + " ignored");
    return true;
  }

  // Appends; repeated names are merged once the whole file is read (merge_repeated_attributes).
  static void set_attribute(std::vector<Attribute>& attributes, std::string name, AttributeValue value,
                            SourcePosition at) {
    attributes.push_back(Attribute{std::move(name), std::move(value), at});
  }

  // A repeated BA_ for one object replaces the earlier value in its place: the later one wins.
  static void merge_repeated_attributes(std::vector<Attribute>& attributes) {
    if (attributes.size() < 2) return;
    StringMap<std::size_t> first;
    std::vector<Attribute> merged;
    merged.reserve(attributes.size());
    for (auto& a : attributes) {
      const auto [it, inserted] = first.emplace(a.name, merged.size());
      if (inserted)
        merged.push_back(std::move(a));
      else
        merged[it->second] = std::move(a);  // the later value, and where it was written
    }
    attributes = std::move(merged);
  }

  void merge_all_repeated_attributes() {
    auto& db = out_.database;
    merge_repeated_attributes(db.attributes);
    for (auto& node : db.nodes) merge_repeated_attributes(node.attributes);
    for (auto& ev : db.environment_variables) merge_repeated_attributes(ev.attributes);
    for (auto& m : db.messages) {
      merge_repeated_attributes(m.attributes);
      for (auto& s : m.signals) merge_repeated_attributes(s.attributes);
    }
  }

  bool parse_attribute() {
    const SourcePosition at = position_of(statement_start_);
    std::string name;
    if (!read_string(name)) return false;
    skip_space();
    std::vector<Attribute>* target = &out_.database.attributes;
    if (peek() != '"' && !is_digit(peek()) && peek() != '-' && peek() != '+' && peek() != '.') {
      const std::size_t where = pos_;
      std::string_view kind;
      if (!read_identifier(kind, "BU_, BO_, SG_, EV_ or a value")) return false;
      target = nullptr;
      if (kind == "BU_" || kind == "EV_") {
        std::string_view object;
        if (!read_identifier(object, kind == "BU_" ? "a node name" : "an environment variable name"))
          return false;
        if (kind == "BU_") {
          if (Node* node = node_by_name(object); node != nullptr) target = &node->attributes;
        } else if (EnvironmentVariable* ev = env_var_by_name(object); ev != nullptr) {
          target = &ev->attributes;
        }
        if (target == nullptr)
          warn(where, "attribute " + name + " on unknown " + std::string(object) + " ignored");
      } else if (kind == "BO_") {
        Message* message = nullptr;
        std::size_t ref = 0;
        if (!read_message_ref(message, ref)) return false;
        if (message != nullptr) target = &message->attributes;
      } else if (kind == "SG_") {
        Message* message = nullptr;
        Signal* signal = nullptr;
        if (!read_signal_ref(message, signal)) return false;
        if (signal != nullptr) target = &signal->attributes;
      } else {
        return fail_at(where, "BU_, BO_, SG_, EV_ or a value");
      }
    }
    AttributeValue value;
    if (!read_attribute_value(name, value)) return false;
    if (!expect(';')) return false;
    if (target != nullptr) set_attribute(*target, std::move(name), std::move(value), at);
    return true;
  }

  bool parse_relation_attribute() {
    RelationAttribute attribute;
    attribute.position = position_of(statement_start_);
    if (!read_string(attribute.name)) return false;
    skip_space();
    const std::size_t where = pos_;
    std::string_view kind;
    if (!read_identifier(kind, "BU_SG_REL_, BU_BO_REL_ or BU_EV_REL_")) return false;
    std::string_view node;
    if (kind == "BU_SG_REL_") {
      attribute.object = AttributeObject::node_signal;
      std::string_view sg;
      std::string_view signal;
      if (!read_identifier(node, "a node name")) return false;
      skip_space();
      const std::size_t sg_pos = pos_;
      if (!read_identifier(sg, "SG_")) return false;
      if (sg != "SG_") return fail_at(sg_pos, "SG_");
      if (!read_uint32(attribute.message_id, "a message id")) return false;
      if (!read_identifier(signal, "a signal name")) return false;
      attribute.signal = std::string(signal);
    } else if (kind == "BU_BO_REL_") {
      attribute.object = AttributeObject::node_message;
      if (!read_identifier(node, "a node name")) return false;
      if (!read_uint32(attribute.message_id, "a message id")) return false;
    } else if (kind == "BU_EV_REL_") {
      attribute.object = AttributeObject::node_env_var;
      std::string_view ev;
      if (!read_identifier(node, "a node name")) return false;
      if (!read_identifier(ev, "an environment variable name")) return false;
      attribute.env_var = std::string(ev);
    } else {
      return fail_at(where, "BU_SG_REL_, BU_BO_REL_ or BU_EV_REL_");
    }
    attribute.node = std::string(node);
    if (!read_attribute_value(attribute.name, attribute.value)) return false;
    if (!expect(';')) return false;
    out_.database.relation_attributes.push_back(std::move(attribute));
    return true;
  }

  bool parse_value_descriptions() {
    skip_space();
    std::vector<ValueDescription>* target = nullptr;
    if (is_digit(peek())) {
      Message* message = nullptr;
      Signal* signal = nullptr;
      if (!read_signal_ref(message, signal)) return false;
      if (signal != nullptr) target = &signal->value_descriptions;
    } else {
      const std::size_t where = pos_;
      std::string_view name;
      if (!read_identifier(name, "a message id or an environment variable name")) return false;
      if (EnvironmentVariable* ev = env_var_by_name(name); ev != nullptr)
        target = &ev->value_descriptions;
      else
        warn(where, "value descriptions for unknown environment variable " + std::string(name) + " ignored");
    }
    std::vector<ValueDescription> values;
    if (!read_value_descriptions(values)) return false;
    if (target != nullptr) *target = std::move(values);
    return true;
  }

  bool parse_signal_value_type() {
    Message* message = nullptr;
    Signal* signal = nullptr;
    if (!read_signal_ref(message, signal)) return false;
    accept(':');  // some writers leave the colon out
    skip_space();
    const std::size_t where = pos_;
    std::uint64_t type = 0;
    if (!read_uint(type, "value type 0, 1 or 2", 2)) return false;
    if (!expect(';')) return false;
    if (type > 2) return fail_at(where, "value type 0, 1 or 2");
    if (signal != nullptr) {
      signal->value_type = type == 1   ? ValueType::float32
                           : type == 2 ? ValueType::float64
                                       : ValueType::integer;
    }
    return true;
  }

  bool parse_multiplex_ranges() {
    Message* message = nullptr;
    Signal* signal = nullptr;
    if (!read_signal_ref(message, signal)) return false;
    std::string_view multiplexer;
    if (!read_identifier(multiplexer, "a multiplexer signal name")) return false;
    std::vector<MultiplexRange> ranges;
    while (true) {
      skip_space();
      if (accept(';')) break;
      if (!ranges.empty() && !expect(',')) return false;
      MultiplexRange range;
      if (!read_uint(range.low, "a range start", std::numeric_limits<std::uint64_t>::max())) return false;
      if (!expect('-')) return false;
      if (!read_uint(range.high, "a range end", std::numeric_limits<std::uint64_t>::max())) return false;
      ranges.push_back(range);
    }
    if (signal != nullptr) {
      signal->multiplexer = std::string(multiplexer);
      signal->multiplex_ranges = std::move(ranges);
    }
    return true;
  }

  bool parse_signal_group() {
    std::size_t where = 0;
    Message* message = nullptr;
    if (!read_message_ref(message, where)) return false;
    SignalGroup group;
    std::string_view name;
    if (!read_identifier(name, "a signal group name")) return false;
    group.name = std::string(name);
    if (!read_uint32(group.repetitions, "a repetition count")) return false;
    if (!expect(':')) return false;
    while (true) {
      skip_space();
      if (accept(';')) break;
      if (accept(',')) continue;
      std::string_view signal;
      if (!read_identifier(signal, "a signal name or ';'")) return false;
      group.signals.emplace_back(signal);
    }
    if (message != nullptr) message->signal_groups.push_back(std::move(group));
    return true;
  }

  bool parse_environment_variable() {
    EnvironmentVariable ev;
    ev.position = position_of(statement_start_);
    std::string_view name;
    if (!read_identifier(name, "an environment variable name")) return false;
    ev.name = std::string(name);
    if (!expect(':')) return false;
    if (!read_uint32(ev.type, "an environment variable type")) return false;
    if (!expect('[') || !read_double(ev.minimum, "a minimum") || !expect('|') ||
        !read_double(ev.maximum, "a maximum") || !expect(']')) {
      return false;
    }
    if (!read_string(ev.unit)) return false;
    if (!read_double(ev.initial_value, "an initial value")) return false;
    if (!read_uint32(ev.id, "an environment variable id")) return false;
    std::string_view access;
    if (!read_identifier(access, "an access type")) return false;
    ev.access_type = std::string(access);
    while (true) {
      skip_space();
      if (accept(';')) break;
      if (accept(',')) continue;
      std::string_view node;
      if (!read_identifier(node, "a node name or ';'")) return false;
      ev.access_nodes.emplace_back(node);
    }
    env_var_index_[ev.name] = out_.database.environment_variables.size();
    out_.database.environment_variables.push_back(std::move(ev));
    return true;
  }

  bool parse_environment_variable_data() {
    skip_space();
    const std::size_t where = pos_;
    std::string_view name;
    if (!read_identifier(name, "an environment variable name")) return false;
    if (!expect(':')) return false;
    std::string_view size;
    if (!scan_number(size, "a data size")) return false;
    if (!expect(';')) return false;
    if (EnvironmentVariable* ev = env_var_by_name(name); ev != nullptr)
      ev->data_type = std::string(size);
    else
      warn(where, "ENVVAR_DATA_ for unknown environment variable " + std::string(name) + " ignored");
    return true;
  }

  static const std::string* long_name(const std::vector<Attribute>& attributes, std::string_view attribute) {
    for (const auto& a : attributes) {
      if (a.name != attribute) continue;
      const auto* text = std::get_if<std::string>(&a.value);
      // Only names the DBC syntax can carry, so a written file reads back the same.
      if (text == nullptr || text->empty() || is_section_keyword(*text) || *text == kNoNode ||
          !std::all_of(text->begin(), text->end(), is_identifier_char)) {
        return nullptr;
      }
      return text;
    }
    return nullptr;
  }

  // Vector's tools cut names to 32 characters and keep the full name in a System*LongSymbol
  // attribute; the full name is the real one. Renaming happens after all statements are read,
  // because they refer to the short names.
  void apply_long_names() {
    auto& db = out_.database;
    std::unordered_map<std::string, std::string> node_names;
    for (auto& node : db.nodes) {
      if (const auto* name = long_name(node.attributes, "SystemNodeLongSymbol"); name != nullptr) {
        node_names[node.name] = *name;
        node.name = *name;
      }
    }
    const auto rename_node = [&node_names](std::string& name) {
      if (const auto it = node_names.find(name); it != node_names.end()) name = it->second;
    };
    for (auto& message : db.messages) {
      if (const auto* name = long_name(message.attributes, "SystemMessageLongSymbol"); name != nullptr) {
        message.name = *name;
      }
      if (!node_names.empty()) {
        rename_node(message.sender);
        for (auto& t : message.transmitters) rename_node(t);
        for (auto& s : message.signals) {
          for (auto& r : s.receivers) rename_node(r);
        }
      }
      std::unordered_map<std::string, std::string> signal_names;
      for (auto& s : message.signals) {
        if (const auto* name = long_name(s.attributes, "SystemSignalLongSymbol"); name != nullptr) {
          signal_names[s.name] = *name;
          s.name = *name;
        }
      }
      if (signal_names.empty()) continue;
      const auto rename_signal = [&signal_names](std::string& name) {
        if (const auto it = signal_names.find(name); it != signal_names.end()) name = it->second;
      };
      for (auto& s : message.signals) rename_signal(s.multiplexer);
      for (auto& g : message.signal_groups) {
        for (auto& name : g.signals) rename_signal(name);
      }
    }
  }

  // "mN" signals without SG_MUL_VAL_ belong to the message's multiplexer.
  void resolve_simple_multiplexers() {
    for (auto& message : out_.database.messages) {
      const std::string mux(detail::simple_multiplexer_name(message));
      for (auto& s : message.signals) {
        if (s.multiplex_value && s.multiplexer.empty()) s.multiplexer = mux;
      }
    }
  }

  // A signal marked "m" without a value: in a message without a multiplexer signal (M) it is a
  // plain signal, as the reference decoder reads it, with a warning; an SG_MUL_VAL_ may also give
  // it its multiplexer and values. In a message with a multiplexer the missing value is an error.
  bool resolve_bare_multiplex_markers() {
    for (const BareMarker& marker : bare_markers_) {
      const Message& message = out_.database.messages[marker.message];
      const Signal& signal = message.signals[marker.signal];
      if (signal.is_multiplexed()) continue;  // SG_MUL_VAL_ said which multiplexer and values
      const std::string_view mux = detail::simple_multiplexer_name(message);
      if (!mux.empty()) {
        return fail_at(marker.pos, "a multiplexer value after 'm' (message " + message.name +
                                       " has the multiplexer " + std::string(mux) + ")");
      }
      const bool several = std::count_if(message.signals.begin(), message.signals.end(),
                                         [](const Signal& x) { return x.is_multiplexer; }) > 1;
      warn_at(marker.where, "message " + message.name + " signal " + signal.name +
                                " is marked multiplexed ('m') but the message has " +
                                (several ? "several multiplexer signals (M) and no SG_MUL_VAL_ for it"
                                         : "no multiplexer signal (M)") +
                                ": read as a plain signal");
    }
    return true;
  }

  std::string_view text_;
  std::string_view source_;
  std::size_t pos_ = 0;
  std::string error_;
  bool saw_dbc_statement_ = false;                              // one statement with a DBC keyword
  std::size_t first_other_statement_ = std::string_view::npos;  // where the first other word starts
  ParseOutput out_;
  std::unordered_map<std::uint32_t, std::size_t> message_index_;  // file id -> last message
  std::vector<StringMap<std::size_t>> signal_index_;              // per message: signal name -> first with it
  StringMap<std::size_t> node_index_;
  StringMap<std::size_t> env_var_index_;
  StringMap<std::size_t> definition_index_;  // attribute name -> first definition
  // A bare "m" marker: message and signal index, where it is.
  struct BareMarker {
    std::size_t message = 0;
    std::size_t signal = 0;
    std::size_t pos = 0;
    SourcePosition where;
  };
  std::vector<BareMarker> bare_markers_;
  std::size_t statement_start_ = 0;
  std::size_t cursor_pos_ = 0;
  int cursor_line_ = 1;
  std::size_t cursor_line_start_ = 0;
};

}  // namespace

Result<ParseOutput> parse_dbc(std::string_view text, std::string_view source_name) {
  // A UTF-8 byte order mark would otherwise glue itself to the first keyword.
  constexpr std::string_view kByteOrderMark = "\xEF\xBB\xBF";
  if (text.substr(0, kByteOrderMark.size()) == kByteOrderMark) text.remove_prefix(kByteOrderMark.size());
  try {
    if (is_valid_utf8(text)) return Parser(text, source_name).run();
    const std::string utf8 = cp1252_to_utf8(text);
    return Parser(utf8, source_name).run();
  } catch (const std::bad_alloc&) {
    return Error(ErrorCode::parse_error, std::string(source_name) + ": out of memory while parsing");
  }
}

namespace {

// Reads the file in one call: read_file's character iterator costs more than parsing a large file.
Result<std::string> read_whole_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return read_file(path);  // for its error message
  const std::streamoff size = in.tellg();
  if (size < 0) return read_file(path);
  std::string text(static_cast<std::size_t>(size), '\0');
  in.seekg(0);
  if (!in.read(text.data(), size)) return read_file(path);
  return text;
}

}  // namespace

Result<ParseOutput> load_dbc(const std::string& path) {
  try {
    auto text = read_whole_file(path);
    if (!text.ok()) return text.error();
    return parse_dbc(*text, path);
  } catch (const std::exception& e) {
    return Error(ErrorCode::io_error, path + ": " + e.what());
  }
}

}  // namespace cellguard::dbc
