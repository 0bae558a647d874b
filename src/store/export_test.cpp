#include "store/export.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/text.h"
#include "store/rig_stream.h"

namespace cellguard::store {
namespace {

constexpr TimeNs kSecond = 1'000'000'000;

class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/cellguard-export-XXXXXX";
    path_ = ::mkdtemp(pattern);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::vector<std::vector<std::string>> read_csv(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::vector<std::string>> rows;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();  // CRLF, as the rig's files
    std::vector<std::string> cells;
    std::stringstream ss(line);
    std::string cell;
    while (std::getline(ss, cell, ',')) cells.push_back(cell);
    if (!line.empty() && line.back() == ',') cells.emplace_back();
    rows.push_back(cells);
  }
  return rows;
}

struct Fixture {
  TempDir dir;
  std::unique_ptr<Store> store;
  std::unique_ptr<testing::RigStream> rig;
  std::vector<Batch> sent;
  TimeNs start = *parse_time("2026-12-01T23:59:50Z");

  Fixture() {
    SqliteStoreConfig config;
    config.path = dir.path() + "/store.sqlite";
    config.background_compaction = false;
    config.synchronous = Synchronous::normal;
    store = std::move(open_sqlite_store(config).value());
    rig = std::move(testing::RigStream::create({1, start, 9}).value());
    EXPECT_TRUE(store->put_edge(rig->info("rig")).ok());
    for (int i = 0; i < 100; ++i) {  // 20 s in 200 ms batches; the first half compacted
      sent.push_back(rig->next(200'000'000));
      std::vector<EdgeBatches> in{{"rig", {sent.back()}}};
      EXPECT_TRUE(store->put_batches(in).ok());
      if (i == 49) {
        EXPECT_TRUE(store->compact(true).ok());
      }
    }
  }

  // The last value of every channel at or before t, from what was sent (independent of the store).
  std::map<std::uint32_t, double> last_at(TimeNs t) const {
    std::map<std::uint32_t, std::pair<TimeNs, double>> last;
    for (const auto& b : sent)
      for (const auto& s : b.series)
        for (std::size_t r = 0; r < s.times_ns.size(); ++r)
          for (std::size_t c = 0; c < s.channels.size(); ++c) {
            const double v = s.values[r * s.channels.size() + c];
            auto& slot = last[s.channels[c]];
            if (s.times_ns[r] <= t && !std::isnan(v) && (slot.first == 0 || s.times_ns[r] >= slot.first))
              slot = {s.times_ns[r], v};
          }
    std::map<std::uint32_t, double> out;
    for (const auto& [ch, tv] : last)
      if (tv.first != 0) out[ch] = tv.second;
    return out;
  }
};

TEST(Export, WritesTheRigCsvLayoutWithANewFileAtMidnight) {
  Fixture f;
  ExportOptions o;
  o.edge_id = "rig";
  o.from_ns = f.start;
  o.to_ns = f.start + 19 * kSecond;
  o.utc = true;
  o.window_ns = 7 * kSecond;  // several windows, not aligned to rows or days
  TempDir out;
  auto r = export_csv(*f.store, o, out.path());
  ASSERT_TRUE(r.ok()) << r.error().message;
  const std::string base = out.path() + "/Battery-System-database/Battery-System 12-2026/";
  ASSERT_EQ(r->files.size(), 2u);
  EXPECT_EQ(r->files[0], base + "log-Battery-System 01-12-2026-23-59-51.csv");
  EXPECT_EQ(r->files[1], base + "log-Battery-System 02-12-2026-00-00-00.csv");
  EXPECT_EQ(r->rows, 19u);  // 23:59:50 has no sample yet: 23:59:51 .. 00:00:09

  const auto day1 = read_csv(r->files[0]), day2 = read_csv(r->files[1]);
  ASSERT_EQ(day1.size(), 1u + 9);
  ASSERT_EQ(day2.size(), 1u + 10);
  const auto& header = day1[0];
  EXPECT_EQ(header, day2[0]);
  ASSERT_EQ(header.size(), 2u + 47 + 16);
  const std::vector<std::string> head = {"date",
                                         "time",
                                         "BMU01_CMA_Current",
                                         "BMU01_CMA_Max_Temp",
                                         "BMU01_CMA_Min_Temp",
                                         "BMU01_CMA_Status",
                                         "BMU01_CMA_Temp1"};
  EXPECT_EQ(std::vector<std::string>(header.begin(), header.begin() + 7), head);
  const std::vector<std::string> tail = {"Ardu_Press",
                                         "Ardu_Temp1",
                                         "Ardu_Temp2",
                                         "modbus_Power",
                                         "modbus_Current",
                                         "modbus_Voltage",
                                         "pcan_isCMATempVio",
                                         "pcan_isCMAVolVio",
                                         "pcan_isCellVolVio",
                                         "pcan_isArduTempHigh",
                                         "pcan_isArduPressViolated",
                                         "pcan_isModbusCurrentViolated",
                                         "pcan_isModbusVoltageViolated",
                                         "pcan_isModbusPowerViolated",
                                         "warning",
                                         "dangerous"};
  EXPECT_EQ(std::vector<std::string>(header.end() - 16, header.end()), tail);
  EXPECT_TRUE(std::is_sorted(header.begin() + 2, header.end() - 16));
  EXPECT_EQ(day1[1][0], "01-12-2026");
  EXPECT_EQ(day1[1][1], "23:59:51");
  EXPECT_EQ(day2[1][0], "02-12-2026");
  EXPECT_EQ(day2[10][1], "00:00:09");

  // Every cell of every row against the values sent.
  std::map<std::string, const Channel*> by_column;
  const EdgeInfo info = f.rig->info("rig");
  for (const auto& c : info.channels)
    if (!c.rig_column.empty()) by_column[c.rig_column] = &c;
  std::vector<std::vector<std::string>> rows(day1.begin() + 1, day1.end());
  rows.insert(rows.end(), day2.begin() + 1, day2.end());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto last = f.last_at(f.start + static_cast<TimeNs>(i + 1) * kSecond);
    ASSERT_EQ(rows[i].size(), header.size()) << "row " << i;
    for (std::size_t c = 2; c + 10 < header.size(); ++c) {  // modules, board (raw counts), inverter
      const Channel* ch = by_column.at(header[c]);
      auto it = last.find(ch->id);
      std::string want;
      const bool integral = ch->integral || header[c].rfind("Ardu_", 0) == 0;
      if (it != last.end()) {
        want = integral ? std::to_string(static_cast<std::int64_t>(it->second))
                        : format_shortest(it->second, true);
      }
      EXPECT_EQ(rows[i][c], want) << "row " << i << " column " << header[c];
    }
    for (std::size_t c = header.size() - 10; c < header.size(); ++c)  // flags, warning, dangerous
      EXPECT_EQ(rows[i][c], "False") << "row " << i << " column " << header[c];
  }
  EXPECT_NE(rows[0][2].find('.'), std::string::npos) << rows[0][2];  // CMA_Current (x0.1): a double
  EXPECT_EQ(rows[0][5], "3");                                        // CMA_Status: an integer
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Issue 13 item 8: the rig's own file (seed/sample-record-log.csv, 8 modules that sent pdo1..pdo6)
// and an export of the same rig agree byte for byte in the header, with CRLF line ends and the same
// column count in every row.
TEST(Export, HeaderIsTheRigSampleByteForByteWithCrlfLines) {
  const char* seed = std::getenv("CELLGUARD_SEED_DIR");
  if (seed == nullptr || *seed == '\0')
    GTEST_SKIP() << "CELLGUARD_SEED_DIR not set: the rig's sample-record-log.csv is needed";
  const std::string sample = slurp(std::string(seed) + "/sample-record-log.csv");
  ASSERT_FALSE(sample.empty()) << seed << "/sample-record-log.csv";
  const std::string sample_header = sample.substr(0, sample.find("\r\n") + 2);
  ASSERT_GT(sample_header.size(), 2u) << "the sample's lines end in CRLF";

  TempDir dir;
  SqliteStoreConfig config;
  config.path = dir.path() + "/store.sqlite";
  config.background_compaction = false;
  auto store = std::move(open_sqlite_store(config).value());
  const TimeNs start = *parse_time("2021-03-31T12:52:00Z");
  auto rig = std::move(testing::RigStream::create({8, start, 3, 6}).value());
  ASSERT_TRUE(store->put_edge(rig->info("rig")).ok());
  std::vector<EdgeBatches> in{{"rig", {}}};
  for (int i = 0; i < 30; ++i) in[0].batches.push_back(rig->next(200'000'000));  // 6 s
  ASSERT_TRUE(store->put_batches(in).ok());

  ExportOptions o;
  o.edge_id = "rig";
  o.from_ns = start;
  o.to_ns = start + 6 * kSecond;
  o.utc = true;
  TempDir out;
  auto r = export_csv(*store, o, out.path());
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->files.size(), 1u);
  const std::string text = slurp(r->files[0]);
  EXPECT_EQ(text.substr(0, text.find("\r\n") + 2), sample_header);
  // Every line ends in CRLF (no bare LF) and has the header's column count.
  const auto columns = std::count(sample_header.begin(), sample_header.end(), ',') + 1;
  std::size_t lines = 0;
  for (std::size_t at = 0; at < text.size();) {
    const std::size_t end = text.find('\n', at);
    ASSERT_NE(end, std::string::npos) << "an unterminated last line";
    ASSERT_GT(end, at) << "an empty line at byte " << at;
    EXPECT_EQ(text[end - 1], '\r') << "line " << lines << " ends in a bare LF";
    const std::string line = text.substr(at, end - at);
    EXPECT_EQ(std::count(line.begin(), line.end(), ',') + 1, columns) << "line " << lines;
    at = end + 1;
    ++lines;
  }
  EXPECT_EQ(lines, 1 + r->rows);
  EXPECT_EQ(r->rows, 6u);  // 12:52:01 .. 12:52:06
  // The board columns as the rig logged them: ADC counts ("89"), not converted values.
  const auto header = read_csv(r->files[0])[0];
  const auto row = read_csv(r->files[0])[1];
  const auto at = [&](const char* name) {
    return row[static_cast<std::size_t>(std::find(header.begin(), header.end(), name) - header.begin())];
  };
  for (const char* name : {"Ardu_Press", "Ardu_Temp1", "Ardu_Temp2"})
    EXPECT_EQ(at(name).find_first_not_of("0123456789"), std::string::npos) << name << " = " << at(name);
}

// No stray file before the modules are found: board and inverter data of an edge whose modules are
// not yet answering give no rows (the rig wrote none: its loop waited for the modules).
TEST(Export, NoFileBeforeTheModulesAreFound) {
  TempDir dir;
  SqliteStoreConfig config;
  config.path = dir.path() + "/store.sqlite";
  config.background_compaction = false;
  auto store = std::move(open_sqlite_store(config).value());
  const TimeNs start = *parse_time("2026-12-01T10:00:10Z");
  auto rig = std::move(testing::RigStream::create({2, start, 5, 6}).value());
  const EdgeInfo info = rig->info("rig");
  ASSERT_TRUE(store->put_edge(info).ok());
  // 10 s of the board alone before the modules' first PDO.
  auto id_of = [&](const std::string& name) {
    for (const auto& c : info.channels)
      if (c.name == name) return c.id;
    ADD_FAILURE() << name;
    return 0u;
  };
  SeriesBatch board{{id_of("board.temp1_adc"), id_of("board.temp1_c")}, {}, {}};
  for (int s = 0; s < 10; ++s) {
    board.times_ns.push_back(start - 10 * kSecond + s * kSecond);
    board.values.insert(board.values.end(), {21.0, 23.5});
  }
  Batch early;
  early.seq = 1000;
  early.series.push_back(board);
  std::vector<EdgeBatches> in{{"rig", {early}}};
  for (int i = 0; i < 15; ++i) in[0].batches.push_back(rig->next(200'000'000));  // 3 s with modules
  ASSERT_TRUE(store->put_batches(in).ok());

  ExportOptions o;
  o.edge_id = "rig";
  o.from_ns = start - 10 * kSecond;
  o.to_ns = start + 3 * kSecond;
  o.utc = true;
  o.extra_columns = true;
  o.board_converted = true;
  TempDir out;
  auto r = export_csv(*store, o, out.path());
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->files.size(), 1u) << "one file, with the modules";
  EXPECT_NE(r->files[0].find("10-00-11.csv"), std::string::npos) << r->files[0];
  const auto rows = read_csv(r->files[0]);
  ASSERT_EQ(rows.size(), 1u + 3);  // 10:00:11 .. 10:00:13
  EXPECT_EQ(rows[0][2], "BMU01_CMA_Current");
  // Asked for: converted board values and the extra column.
  EXPECT_EQ(rows[0].back(), "CurrentState");
  EXPECT_EQ(rows[1].back(), "normal");
  const auto temp1 = std::find(rows[0].begin(), rows[0].end(), "Ardu_Temp1") - rows[0].begin();
  EXPECT_NE(rows[1][static_cast<std::size_t>(temp1)].find('.'), std::string::npos) << "converted: a double";
}

TEST(Export, WritesOneJsonLinePerSampleAndEvent) {
  Fixture f;
  ExportOptions o;
  o.edge_id = "rig";
  o.from_ns = f.start;
  o.to_ns = f.start + 30 * kSecond;
  o.window_ns = 3 * kSecond;
  TempDir out;
  const std::string path = out.path() + "/out.jsonl";
  std::FILE* file = std::fopen(path.c_str(), "w");
  auto r = export_jsonl(*f.store, o, file);
  std::fclose(file);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->samples, f.rig->samples());
  EXPECT_EQ(r->events, 1u);
  std::ifstream in(path);
  std::string line;
  std::uint64_t lines = 0;
  TimeNs previous = 0;
  std::map<std::string, int> per_channel;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line);
    EXPECT_GE(j["time_ns"].get<TimeNs>(), previous);
    previous = j["time_ns"].get<TimeNs>();
    if (j.contains("event"))
      EXPECT_EQ(j["data"]["kind"], "state");
    else
      ++per_channel[j["channel"].get<std::string>()];
    ++lines;
  }
  EXPECT_EQ(lines, r->rows);
  EXPECT_EQ(lines, f.rig->samples() + 1);
  EXPECT_EQ(per_channel["BMU01_pdo3.Cell_5_Voltage"], 200);
}

TEST(Export, RefusesAnUnknownEdge) {
  Fixture f;
  ExportOptions o;
  o.edge_id = "other";
  o.from_ns = 0;
  o.to_ns = 1;
  EXPECT_FALSE(export_csv(*f.store, o, "/tmp").ok());
}

TEST(ExportTime, ParsesIsoAndUnixSeconds) {
  EXPECT_EQ(*parse_time("2026-12-01T10:00:00Z"), 1'796'119'200'000'000'000);
  EXPECT_EQ(*parse_time("2026-12-01T11:00:00+01:00"), 1'796'119'200'000'000'000);
  EXPECT_EQ(*parse_time("2026-12-01T10:00:00.25Z"), 1'796'119'200'250'000'000);
  EXPECT_EQ(*parse_time("2026-12-01"), 1'796'083'200'000'000'000);
  EXPECT_EQ(*parse_time("1796119200"), 1'796'119'200'000'000'000);
  EXPECT_EQ(*parse_time("1796119200.5"), 1'796'119'200'500'000'000);
  EXPECT_FALSE(parse_time("yesterday").ok());
  EXPECT_FALSE(parse_time("2026-13-01T00:00:00Z").ok());
  EXPECT_FALSE(parse_time("99999999999").ok());  // beyond what ns in an int64 hold
  EXPECT_FALSE(parse_time("9999-01-01T00:00:00Z").ok());
  EXPECT_EQ(format_time_utc(1'796'119'200'000'000'001), "2026-12-01T10:00:00.000000001Z");
  EXPECT_EQ(*parse_duration("1s"), kSecond);
  EXPECT_EQ(*parse_duration("250ms"), 250'000'000);
  EXPECT_FALSE(parse_duration("0s").ok());
}

}  // namespace
}  // namespace cellguard::store
