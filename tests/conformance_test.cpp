// Conformance of load_dbc + DatabaseCodec against the DBC corpus (shared/corpus/dbc/README.md):
// every vector of every X.vectors.jsonl is decoded exactly and compared with the reference result.
//
// The encoder is checked against the same corpus: every decoded vector, and a decoded frame of every
// message, encodes back (cellguard encode's NAME=VALUE texts) to a payload that decodes to the same
// values.
//
// Set CELLGUARD_DBC_CORPUS to the corpus folder; without it the test is skipped. One test per DBC
// file. Vectors of messages the reference could not unpack (quirk 5: reference_unpack_failures > 0
// in X.meta.json) are informative only: counted, never failed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/text.h"
#include "dbc/codec.h"
#include "dbc/dbc.h"
#include "dbc/encoder.h"

namespace cellguard::dbc {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string corpus_dir() {
  const char* dir = std::getenv("CELLGUARD_DBC_CORPUS");
  return dir == nullptr ? std::string() : std::string(dir);
}

// The DBC files of the corpus, sorted; a single empty name when the corpus is not configured so the
// test suite still exists (and skips).
std::vector<std::string> corpus_files() {
  std::vector<std::string> files;
  const std::string dir = corpus_dir();
  std::error_code ec;
  if (!dir.empty() && fs::is_directory(dir, ec)) {
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      if (entry.path().extension() == ".dbc") files.push_back(entry.path().filename().string());
    }
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) files.emplace_back();
  return files;
}

// An expected signal value as the reference wrote it.
struct Expected {
  enum class Kind { integer, big_integer, real, text } kind = Kind::integer;
  Int128 integer = 0;
  double real = 0;
  std::string text;  // big_integer: the digits; text: "NaN", "Infinity", "-Infinity"
};

struct Vector {
  std::uint32_t id = 0;
  bool extended = false;
  std::string data;
  std::string message;
  bool is_error = false;
  std::map<std::string, Expected> signals;
};

// Reads one vector line with the SAX interface: it hands over the text of numbers nlohmann cannot
// hold as 64-bit integers, so integers beyond 64 bits stay exact.
class VectorReader : public json::json_sax_t {
 public:
  explicit VectorReader(Vector& out) : out_(out) {}

  bool null() override { return true; }
  bool boolean(bool v) override {
    if (depth_ == 1 && key_ == "extended") out_.extended = v;
    return true;
  }
  bool number_integer(json::number_integer_t v) override { return integer(v); }
  bool number_unsigned(json::number_unsigned_t v) override { return integer(static_cast<Int128>(v)); }
  bool number_float(json::number_float_t v, const json::string_t& text) override {
    if (!in_signals()) return true;
    Expected e;
    if (text.find_first_of(".eE") == std::string::npos) {
      e.kind = Expected::Kind::big_integer;  // an integer literal beyond 64 bits
      e.text = text;
    } else {
      e.kind = Expected::Kind::real;
      e.real = v;
    }
    out_.signals[key_] = e;
    return true;
  }
  bool string(json::string_t& v) override {
    if (in_signals()) {
      Expected e;
      e.kind = Expected::Kind::text;
      e.text = v;
      out_.signals[key_] = e;
    } else if (depth_ == 1) {
      if (key_ == "data") out_.data = v;
      if (key_ == "message") out_.message = v;
      if (key_ == "error") out_.is_error = true;
    }
    return true;
  }
  bool binary(json::binary_t&) override { return true; }
  bool start_object(std::size_t) override {
    if (depth_ == 1 && key_ == "signals") signals_depth_ = depth_ + 1;
    ++depth_;
    return true;
  }
  bool end_object() override {
    --depth_;
    return true;
  }
  bool start_array(std::size_t) override {
    ++depth_;
    return true;
  }
  bool end_array() override {
    --depth_;
    return true;
  }
  bool key(json::string_t& k) override {
    key_ = k;
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    error_ = e.what();
    return false;
  }
  const std::string& error() const { return error_; }

 private:
  bool in_signals() const { return signals_depth_ != 0 && depth_ == signals_depth_; }
  bool integer(Int128 v) {
    if (in_signals()) {
      Expected e;
      e.integer = v;
      out_.signals[key_] = e;
    } else if (depth_ == 1 && key_ == "id") {
      out_.id = static_cast<std::uint32_t>(v);
    }
    return true;
  }

  Vector& out_;
  int depth_ = 0;
  int signals_depth_ = 0;
  std::string key_;
  std::string error_;
};

std::string int128_text(Int128 v) {
  if (v == 0) return "0";
  __extension__ using UInt128 = unsigned __int128;
  const bool negative = v < 0;
  UInt128 u = negative ? static_cast<UInt128>(0) - static_cast<UInt128>(v) : static_cast<UInt128>(v);
  std::string digits;
  while (u != 0) {
    digits.push_back(static_cast<char>('0' + static_cast<int>(u % 10)));
    u /= 10;
  }
  if (negative) digits.push_back('-');
  std::reverse(digits.begin(), digits.end());
  return digits;
}

bool parse_hex(const std::string& hex, std::vector<std::uint8_t>& out) {
  if (hex.size() % 2 != 0) return false;
  out.clear();
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    const std::string pair = hex.substr(i, 2);
    char* end = nullptr;
    const long byte = std::strtol(pair.c_str(), &end, 16);
    if (end != pair.c_str() + 2) return false;
    out.push_back(static_cast<std::uint8_t>(byte));
  }
  return true;
}

// Empty if the decoded value matches the expected one, else a description of the difference.
std::string compare(const Expected& expected, const PhysicalValue& got) {
  const std::string got_text = got.is_integer ? int128_text(got.integer) : format_shortest(got.real, true);
  switch (expected.kind) {
    case Expected::Kind::integer:
      if (got.is_integer && got.integer == expected.integer) return {};
      return "expected integer " + int128_text(expected.integer) + ", got " + got_text;
    case Expected::Kind::big_integer:
      if (got.is_integer && int128_text(got.integer) == expected.text) return {};
      return "expected integer " + expected.text + ", got " + got_text;
    case Expected::Kind::real: {
      if (!got.is_integer) {
        const double a = expected.real;
        const double b = got.real;
        if (a == b || std::fabs(a - b) <= 1e-12 * std::max(std::fabs(a), std::fabs(b))) return {};
      }
      return "expected double " + format_shortest(expected.real, true) + ", got " + got_text;
    }
    case Expected::Kind::text: {
      if (!got.is_integer) {
        const double b = got.real;
        if (expected.text == "NaN" && std::isnan(b)) return {};
        if (expected.text == "Infinity" && std::isinf(b) && b > 0) return {};
        if (expected.text == "-Infinity" && std::isinf(b) && b < 0) return {};
      }
      return "expected " + expected.text + ", got " + got_text;
    }
  }
  return "unknown expectation";
}

struct Totals {
  std::size_t files = 0;
  std::size_t vectors = 0;
  std::size_t matched = 0;
  std::size_t informative = 0;
  std::size_t informative_matched = 0;
  std::size_t failed = 0;
};

Totals& totals() {
  static Totals t;
  return t;
}

class Summary : public ::testing::Environment {
 public:
  void TearDown() override {
    const Totals& t = totals();
    if (t.files == 0) return;
    std::printf(
        "DBC conformance: %zu files, %zu vectors, %zu matched, %zu informative only (quirk 5; %zu of them "
        "agree), "
        "%zu failed\n",
        t.files, t.vectors, t.matched, t.informative, t.informative_matched, t.failed);
  }
};

[[maybe_unused]] ::testing::Environment* const summary = ::testing::AddGlobalTestEnvironment(new Summary);

class DbcConformance : public ::testing::TestWithParam<std::string> {};

TEST_P(DbcConformance, DecodesEveryVectorLikeTheReference) {
  const std::string name = GetParam();
  if (name.empty()) GTEST_SKIP() << "set CELLGUARD_DBC_CORPUS to the DBC corpus folder to run";
  const fs::path dir = corpus_dir();
  const fs::path dbc_path = dir / name;
  const std::string stem = dbc_path.stem().string();

  auto loaded = load_dbc(dbc_path.string());
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  const DatabaseCodec codecs(std::move(loaded->database));

  // Messages whose vectors describe the reference's limitation rather than DBC semantics.
  std::set<std::pair<std::uint32_t, bool>> informative;
  {
    std::ifstream meta_file(dir / (stem + ".meta.json"));
    ASSERT_TRUE(meta_file) << "missing " << stem << ".meta.json";
    const json meta = json::parse(meta_file, nullptr, false);
    ASSERT_FALSE(meta.is_discarded());
    for (const auto& m : meta.at("messages")) {
      const auto& failures = m.at("reference_unpack_failures");
      if (failures.is_number() && failures.get<long long>() > 0) {
        informative.insert({m.at("frame_id").get<std::uint32_t>(), m.at("is_extended_frame").get<bool>()});
      }
    }
  }

  std::ifstream vectors_file(dir / (stem + ".vectors.jsonl"));
  ASSERT_TRUE(vectors_file) << "missing " << stem << ".vectors.jsonl";
  Totals file;
  std::string line;
  int line_number = 0;
  std::vector<PhysicalValue> values;
  PresenceMask present;
  std::vector<std::uint8_t> payload;
  while (std::getline(vectors_file, line)) {
    ++line_number;
    if (line.empty()) continue;
    Vector v;
    VectorReader reader(v);
    ASSERT_TRUE(json::sax_parse(line, &reader))
        << stem << ".vectors.jsonl:" << line_number << ": " << reader.error();
    ASSERT_TRUE(parse_hex(v.data, payload)) << stem << ".vectors.jsonl:" << line_number;
    ++file.vectors;
    const bool only_informative = informative.count({v.id, v.extended}) != 0;

    std::string problem;
    const MessageCodec* codec = codecs.find(v.id, v.extended);
    if (codec == nullptr) {
      problem = "no message for the frame id";
    } else if (codec->message().name != v.message) {
      problem = "frame selects " + codec->message().name + ", the reference selected " + v.message;
    } else {
      values.assign(codec->signal_count(), PhysicalValue{});
      present.resize(codec->signal_count());
      const DecodeStatus status = codec->decode_exact(payload, values.data(), present);
      if (v.is_error) {
        if (status == DecodeStatus::ok) problem = "decoded, the reference fails";
      } else if (status != DecodeStatus::ok) {
        problem = "decode failed (" + codec->describe(status, payload) + "), the reference decodes";
      } else {
        std::set<std::string> decoded;
        const auto& signals = codec->message().signals;
        for (std::size_t i = 0; i != signals.size(); ++i) {
          if (!present.test(i)) continue;
          decoded.insert(signals[i].name);
          const auto it = v.signals.find(signals[i].name);
          if (it == v.signals.end()) continue;
          if (std::string diff = compare(it->second, values[i]); !diff.empty()) {
            problem += signals[i].name + ": " + diff + "; ";
          }
        }
        std::set<std::string> expected_names;
        for (const auto& [signal_name, value] : v.signals) expected_names.insert(signal_name);
        if (decoded != expected_names) problem += "decoded signal set differs from the reference's";
      }
    }

    if (only_informative) {
      ++file.informative;
      if (problem.empty()) ++file.informative_matched;
    } else if (problem.empty()) {
      ++file.matched;
    } else {
      ++file.failed;
      ADD_FAILURE() << stem << ".vectors.jsonl:" << line_number << " (" << v.message << ", data " << v.data
                    << "): " << problem;
    }
  }
  std::printf("%s: %zu vectors, %zu matched, %zu informative only, %zu failed\n", name.c_str(), file.vectors,
              file.matched, file.informative, file.failed);
  Totals& t = totals();
  ++t.files;
  t.vectors += file.vectors;
  t.matched += file.matched;
  t.informative += file.informative;
  t.informative_matched += file.informative_matched;
  t.failed += file.failed;
}

// The NAME=VALUE text `cellguard encode` takes for a decoded value.
std::string assignment(const std::string& name, const PhysicalValue& v) {
  return name + "=" + (v.is_integer ? int128_text(v.integer) : format_shortest(v.real, true));
}

std::string assignment(const std::string& name, const Expected& e) {
  switch (e.kind) {
    case Expected::Kind::integer:
      return name + "=" + int128_text(e.integer);
    case Expected::Kind::big_integer:
    case Expected::Kind::text:
      return name + "=" + e.text;
    case Expected::Kind::real:
      return name + "=" + format_shortest(e.real, true);
  }
  return name;
}

// Encodes `assignments` into a frame of `codec`'s message and decodes it again; empty if every
// signal named in `expected` comes back equal and no other signal is decoded, else the difference.
std::string round_trip(const Database& db, const MessageCodec& codec,
                       const std::vector<std::string>& assignments,
                       const std::map<std::string, Expected>& expected) {
  EncodeOptions options;
  options.check_limits = false;  // random payloads hold values outside the DBC ranges
  auto frame = encode_assignments(db, codec, assignments, options);
  if (!frame) return "encode failed: " + frame.error().message;
  std::vector<PhysicalValue> values(codec.signal_count());
  PresenceMask present(codec.signal_count());
  const DecodeStatus status = codec.decode_exact(frame->payload, values.data(), present);
  if (status != DecodeStatus::ok)
    return "decode of the encoded frame failed: " + codec.describe(status, frame->payload);
  std::string problem;
  std::set<std::string> decoded;
  for (std::size_t i = 0; i != codec.signal_count(); ++i) {
    if (!present.test(i)) continue;
    const std::string& name = codec.message().signals[i].name;
    decoded.insert(name);
    const auto it = expected.find(name);
    if (it == expected.end()) continue;
    if (std::string diff = compare(it->second, values[i]); !diff.empty())
      problem += name + ": " + diff + "; ";
  }
  std::set<std::string> names;
  for (const auto& [name, value] : expected) names.insert(name);
  if (decoded != names) problem += "decoded signal set differs";
  return problem;
}

class DbcEncodeRoundTrip : public ::testing::TestWithParam<std::string> {};

TEST_P(DbcEncodeRoundTrip, EveryVectorAndEveryMessageEncodesBackToItsValues) {
  const std::string name = GetParam();
  if (name.empty()) GTEST_SKIP() << "set CELLGUARD_DBC_CORPUS to the DBC corpus folder to run";
  const fs::path dir = corpus_dir();
  const fs::path dbc_path = dir / name;
  const std::string stem = dbc_path.stem().string();
  auto loaded = load_dbc(dbc_path.string());
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  const DatabaseCodec codecs(std::move(loaded->database));
  const Database& db = codecs.database();

  // Signals that overlap in one branch or leave the payload cannot all be encoded: skipped.
  std::set<std::string> layout_problems;
  {
    std::ifstream meta_file(dir / (stem + ".meta.json"));
    ASSERT_TRUE(meta_file);
    const json meta = json::parse(meta_file, nullptr, false);
    ASSERT_FALSE(meta.is_discarded());
    for (const auto& m : meta.at("messages")) {
      if (!m.at("layout_problems").is_null()) layout_problems.insert(m.at("name").get<std::string>());
    }
  }

  std::size_t vectors = 0;
  std::size_t messages = 0;
  std::ifstream vectors_file(dir / (stem + ".vectors.jsonl"));
  std::string line;
  int line_number = 0;
  while (std::getline(vectors_file, line)) {
    ++line_number;
    if (line.empty()) continue;
    Vector v;
    VectorReader reader(v);
    ASSERT_TRUE(json::sax_parse(line, &reader));
    if (v.is_error || layout_problems.count(v.message) != 0) continue;
    const MessageCodec* codec = codecs.find(v.id, v.extended);
    ASSERT_NE(codec, nullptr);
    std::vector<std::string> assignments;
    for (const auto& [signal, value] : v.signals) assignments.push_back(assignment(signal, value));
    const std::string problem = round_trip(db, *codec, assignments, v.signals);
    EXPECT_EQ(problem, "") << stem << ".vectors.jsonl:" << line_number << " (" << v.message << ")";
    ++vectors;
  }

  // Every message, vectors or not: a decoded pseudo-random payload encodes back to its values.
  std::uint32_t seed = 12345;
  for (const auto& m : db.messages) {
    if (is_independent_signals_message(m) || layout_problems.count(m.name) != 0) continue;
    const MessageCodec* codec = codecs.find(m.id, m.extended);
    if (codec == nullptr || &codec->message() != &m) continue;  // shadowed by a later definition
    std::vector<PhysicalValue> values(codec->signal_count());
    PresenceMask present(codec->signal_count());
    bool decoded = false;
    for (int attempt = 0; attempt < 20 && !decoded; ++attempt) {
      std::vector<std::uint8_t> payload(m.length);
      for (auto& byte : payload) {
        seed = seed * 1103515245u + 12345u;
        byte = attempt == 19 ? 0 : static_cast<std::uint8_t>(seed >> 16);
      }
      decoded = codec->decode_exact(payload, values.data(), present) == DecodeStatus::ok;
    }
    if (!decoded) continue;  // no payload selects a valid branch: nothing to encode
    std::vector<std::string> assignments;
    std::map<std::string, Expected> expected;
    for (std::size_t i = 0; i != codec->signal_count(); ++i) {
      if (!present.test(i)) continue;
      const auto& signal = m.signals[i];
      assignments.push_back(assignment(signal.name, values[i]));
      Expected e;
      if (values[i].is_integer) {
        e.integer = values[i].integer;
      } else if (std::isfinite(values[i].real)) {
        e.kind = Expected::Kind::real;
        e.real = values[i].real;
      } else {
        e.kind = Expected::Kind::text;
        e.text = format_shortest(values[i].real);
      }
      expected[signal.name] = e;
    }
    EXPECT_EQ(round_trip(db, *codec, assignments, expected), "") << stem << ": message " << m.name;
    ++messages;
  }
  std::printf("%s: %zu vectors and %zu messages encoded back to their values\n", name.c_str(), vectors,
              messages);
}

std::string test_name(const ::testing::TestParamInfo<std::string>& info) {
  if (info.param.empty()) return "NoCorpus";
  std::string out;
  for (const char c : fs::path(info.param).stem().string()) {
    out.push_back(std::isalnum(static_cast<unsigned char>(c)) != 0 ? c : '_');
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Corpus, DbcConformance, ::testing::ValuesIn(corpus_files()), test_name);
INSTANTIATE_TEST_SUITE_P(Corpus, DbcEncodeRoundTrip, ::testing::ValuesIn(corpus_files()), test_name);

}  // namespace
}  // namespace cellguard::dbc
