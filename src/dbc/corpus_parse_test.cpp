// Compares the parser with the reference decoder's view of every corpus file (*.meta.json), and
// checks parse -> write -> parse over the corpus. Runs only when CELLGUARD_DBC_CORPUS names the
// corpus folder (shared/corpus/dbc); the reference's quirks are described in its README.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "core/text.h"
#include "dbc/dbc.h"

namespace cellguard::dbc {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::vector<fs::path> corpus_files() {
  std::vector<fs::path> files;
  const char* dir = std::getenv("CELLGUARD_DBC_CORPUS");
  if (dir == nullptr) return files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() == ".dbc") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// The reference reads files as cp1252: a UTF-8 file's text shows up as mojibake there.
std::string reference_view(const std::string& text, bool file_is_utf8) {
  return file_is_utf8 ? cp1252_to_utf8(text) : text;
}

// Strings the reference garbled (bytes undefined in cp1252 became U+FFFD) are not compared.
bool comparable(const std::string& expected) { return expected.find("\xEF\xBF\xBD") == std::string::npos; }

std::string optional_text(const json& j) { return j.is_null() ? std::string() : j.get<std::string>(); }

class CorpusComparison {
 public:
  CorpusComparison(std::string file, bool utf8) : file_(std::move(file)), utf8_(utf8) {}

  void mismatch(const std::string& where, const std::string& what, const std::string& expected,
                const std::string& actual) {
    problems_.push_back(file_ + ": " + where + ": " + what + " expected <" + expected + "> got <" + actual +
                        ">");
  }

  void text(const std::string& where, const std::string& what, const json& expected,
            const std::string& actual) {
    const std::string want = optional_text(expected);
    const std::string got = reference_view(actual, utf8_);
    if (comparable(want) && want != got) mismatch(where, what, want, got);
  }

  template <typename T>
  void value(const std::string& where, const std::string& what, const T& expected, const T& actual) {
    if (!(expected == actual)) mismatch(where, what, json(expected).dump(), json(actual).dump());
  }

  void signal(const std::string& where, const json& e, const Signal& s) {
    value(where, "start", e["start"].get<std::uint32_t>(), s.start_bit);
    value(where, "length", e["length"].get<std::uint32_t>(), s.length);
    value(where, "byte_order", e["byte_order"].get<std::string>(),
          std::string(s.byte_order == ByteOrder::big_endian ? "big_endian" : "little_endian"));
    value(where, "is_signed", e["is_signed"].get<bool>(), s.is_signed);
    value(where, "is_float", e["is_float"].get<bool>(), s.value_type != ValueType::integer);
    value(where, "scale", e["scale"].get<double>(), s.scale);
    value(where, "offset", e["offset"].get<double>(), s.offset);
    // null stands for the DBC's [0|0].
    const bool no_range = e["minimum"].is_null() && e["maximum"].is_null();
    if (no_range) {
      value(where, "range [0|0]", std::vector<double>{0, 0}, std::vector<double>{s.minimum, s.maximum});
    } else {
      value(where, "minimum", e["minimum"].is_null() ? 0.0 : e["minimum"].get<double>(), s.minimum);
      value(where, "maximum", e["maximum"].is_null() ? 0.0 : e["maximum"].get<double>(), s.maximum);
    }
    text(where, "unit", e["unit"], s.unit);
    text(where, "comment", e["comment"], s.comment);
    value(where, "is_multiplexer", e["is_multiplexer"].get<bool>(), s.is_multiplexer);
    value(where, "multiplexer_signal", optional_text(e["multiplexer_signal"]), s.multiplexer);

    std::vector<std::uint64_t> ids;
    for (const auto& r : s.multiplex_ranges) {
      for (std::uint64_t v = r.low; v <= r.high && ids.size() < 100000; ++v) ids.push_back(v);
    }
    std::vector<std::uint64_t> expected_ids;
    if (!e["multiplexer_ids"].is_null())
      expected_ids = e["multiplexer_ids"].get<std::vector<std::uint64_t>>();
    std::sort(ids.begin(), ids.end());
    std::sort(expected_ids.begin(), expected_ids.end());
    value(where, "multiplexer_ids", expected_ids, ids);

    std::set<std::string> receivers(s.receivers.begin(), s.receivers.end());
    value(where, "receivers", e["receivers"].get<std::set<std::string>>(), receivers);

    std::map<std::int64_t, std::string> choices;
    for (const auto& v : s.value_descriptions) choices[v.value] = reference_view(v.text, utf8_);
    std::map<std::int64_t, std::string> expected_choices;
    if (!e["choices"].is_null()) {
      for (const auto& c : e["choices"]) expected_choices[c[0].get<std::int64_t>()] = c[1].get<std::string>();
    }
    const bool garbled = std::any_of(expected_choices.begin(), expected_choices.end(),
                                     [](const auto& c) { return !comparable(c.second); });
    if (!garbled) value(where, "choices", expected_choices, choices);
  }

  void message(const json& e, const Message& m) {
    const std::string where = m.name;
    value(where, "name", e["name"].get<std::string>(), m.name);
    value(where, "frame_id", e["frame_id"].get<std::uint32_t>(), m.id);
    value(where, "is_extended_frame", e["is_extended_frame"].get<bool>(), m.extended);
    value(where, "length", e["length"].get<std::uint32_t>(), m.length);
    std::set<std::string> senders(m.transmitters.begin(), m.transmitters.end());
    if (!m.sender.empty()) senders.insert(m.sender);
    value(where, "senders", e["senders"].get<std::set<std::string>>(), senders);
    text(where, "comment", e["comment"], m.comment);
    value(where, "signal count", e["signals"].size(), m.signals.size());
    for (const auto& es : e["signals"]) {
      const std::string name = es["name"].get<std::string>();
      const Signal* s = m.find_signal(name);
      if (s == nullptr) {
        mismatch(where, "signal", name, "(missing)");
        continue;
      }
      signal(where + "." + name, es, *s);
    }
  }

  const std::vector<std::string>& problems() const { return problems_; }

 private:
  std::string file_;
  bool utf8_;
  std::vector<std::string> problems_;
};

std::string report(const std::vector<std::string>& problems) {
  std::string text;
  for (std::size_t i = 0; i < problems.size() && i < 30; ++i) text += problems[i] + "\n";
  if (problems.size() > 30) text += "... and " + std::to_string(problems.size() - 30) + " more\n";
  return text;
}

TEST(DbcCorpus, EveryFileParsesLikeTheReferenceDecoder) {
  const auto files = corpus_files();
  if (files.empty()) GTEST_SKIP() << "set CELLGUARD_DBC_CORPUS to the DBC corpus folder";
  std::size_t messages_compared = 0;
  for (const auto& path : files) {
    SCOPED_TRACE(path.string());
    auto raw = read_file(path.string());
    ASSERT_TRUE(raw.ok()) << raw.error().message;
    auto parsed = parse_dbc(*raw, path.string());
    ASSERT_TRUE(parsed.ok()) << parsed.error().message;

    auto meta_path = path;
    meta_path.replace_extension(".meta.json");
    auto meta_text = read_file(meta_path.string());
    ASSERT_TRUE(meta_text.ok()) << meta_text.error().message;
    const json meta = json::parse(*meta_text);

    std::vector<const Message*> messages;
    for (const auto& m : parsed->database.messages) {
      if (!is_independent_signals_message(m)) messages.push_back(&m);
    }
    ASSERT_EQ(meta["messages"].size(), messages.size());
    CorpusComparison comparison(path.filename().string(), is_valid_utf8(*raw));
    for (std::size_t i = 0; i < messages.size(); ++i) comparison.message(meta["messages"][i], *messages[i]);
    messages_compared += messages.size();
    EXPECT_TRUE(comparison.problems().empty()) << report(comparison.problems());
  }
  EXPECT_GT(messages_compared, 0u);
}

TEST(DbcCorpus, EveryFileReadsBackEqualAfterWriting) {
  const auto files = corpus_files();
  if (files.empty()) GTEST_SKIP() << "set CELLGUARD_DBC_CORPUS to the DBC corpus folder";
  for (const auto& path : files) {
    SCOPED_TRACE(path.string());
    auto first = load_dbc(path.string());
    ASSERT_TRUE(first.ok()) << first.error().message;
    const std::string written = write_dbc(first->database);
    auto second = parse_dbc(written, "written");
    ASSERT_TRUE(second.ok()) << second.error().message;
    EXPECT_TRUE(first->database == second->database);
    EXPECT_EQ(written, write_dbc(second->database));
  }
}

// The reference lists signals outside the payload and overlapping pairs of one branch
// (layout_problems); the checker must find exactly those.
TEST(DbcCorpus, CheckerFindsTheLayoutProblemsTheReferenceFound) {
  const auto files = corpus_files();
  if (files.empty()) GTEST_SKIP() << "set CELLGUARD_DBC_CORPUS to the DBC corpus folder";
  for (const auto& path : files) {
    SCOPED_TRACE(path.string());
    auto parsed = load_dbc(path.string());
    ASSERT_TRUE(parsed.ok()) << parsed.error().message;
    auto meta_path = path;
    meta_path.replace_extension(".meta.json");
    auto meta_text = read_file(meta_path.string());
    ASSERT_TRUE(meta_text.ok());
    const json meta = json::parse(*meta_text);

    std::multiset<std::string> expected;
    for (const auto& m : meta["messages"]) {
      const auto& layout = m["layout_problems"];
      if (layout.is_null()) continue;
      const std::string name = m["name"].get<std::string>();
      for (const auto& s : layout["outside_payload"])
        expected.insert(name + " outside " + s.get<std::string>());
      for (const auto& pair : layout["overlapping"]) {
        auto a = pair[0].get<std::string>();
        auto b = pair[1].get<std::string>();
        if (b < a) std::swap(a, b);
        expected.insert(name + " overlap " + a + " " + b);
      }
    }
    std::multiset<std::string> found;
    for (const auto& problem : check_dbc(parsed->database)) {
      const auto& text = problem.message;
      // "message NAME (0x..) signal SIG: extends past ..." / ": overlaps signal OTHER (...)"
      const auto name_end = text.find(" (0x");
      const auto signal_pos = text.find(") signal ");
      const auto colon = text.find(": ", signal_pos);
      if (name_end == std::string::npos || signal_pos == std::string::npos || colon == std::string::npos)
        continue;
      const std::string message = text.substr(8, name_end - 8);
      const std::string signal = text.substr(signal_pos + 9, colon - signal_pos - 9);
      const std::string rest = text.substr(colon + 2);
      if (rest.rfind("extends past", 0) == 0) {
        found.insert(message + " outside " + signal);
      } else if (rest.rfind("overlaps signal ", 0) == 0) {
        auto other = rest.substr(16, rest.find(" (") - 16);
        auto a = signal;
        if (other < a) std::swap(a, other);
        found.insert(message + " overlap " + a + " " + other);
      }
    }
    EXPECT_EQ(expected, found);
  }
}

}  // namespace
}  // namespace cellguard::dbc
