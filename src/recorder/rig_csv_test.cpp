#include "recorder/rig_csv.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

namespace cellguard::recorder {
namespace {

namespace fs = std::filesystem;

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// 31-03-2021 12:52:01 UTC
constexpr TimeNs kT0 = 1617195121LL * 1'000'000'000;

TEST(RigCsv, WritesTheRigLayoutAndStartsNewFilesOnDayOrColumnChange) {
  const std::string base =
      (fs::temp_directory_path() / ("cellguard-rigcsv-" + std::to_string(getpid()))).string();
  fs::remove_all(base);
  {
    RigCsvWriter w(base, true);
    const std::vector<std::string> cols = {"BMU01_CMA_Current", "BMU01_CMA_Max_Temp", "warning", "note"};
    std::vector<CsvValue> row = {-96.30000000000001, std::int64_t{22}, false, std::monostate{}};
    ASSERT_TRUE(w.write(kT0, cols, row).ok());
    const std::string first = w.current_path();
    EXPECT_EQ(first, base + "/Battery-System 03-2021/log-Battery-System 31-03-2021-12-52-01.csv");
    row = {47.0, std::int64_t{-3}, true, std::string("a,\"b\"")};
    ASSERT_TRUE(w.write(kT0 + 6'000'000'000, cols, row).ok());
    EXPECT_EQ(w.current_path(), first);
    EXPECT_EQ(slurp(first),
              "date,time,BMU01_CMA_Current,BMU01_CMA_Max_Temp,warning,note\r\n"
              "31-03-2021,12:52:01,-96.30000000000001,22,False,\r\n"
              "31-03-2021,12:52:07,47.0,-3,True,\"a,\"\"b\"\"\"\r\n");
    // The column set changes: a new file.
    const std::vector<std::string> more = {"BMU01_CMA_Current", "BMU02_CMA_Current"};
    const std::vector<CsvValue> two = {1.5, 2.5};
    ASSERT_TRUE(w.write(kT0 + 12'000'000'000, more, two).ok());
    EXPECT_EQ(w.current_path(), base + "/Battery-System 03-2021/log-Battery-System 31-03-2021-12-52-13.csv");
    // The day changes (and the month): a new file in a new folder.
    ASSERT_TRUE(w.write(kT0 + 12LL * 3600 * 1'000'000'000, more, two).ok());
    EXPECT_EQ(w.current_path(), base + "/Battery-System 04-2021/log-Battery-System 01-04-2021-00-52-01.csv");
    EXPECT_EQ(slurp(w.current_path()),
              "date,time,BMU01_CMA_Current,BMU02_CMA_Current\r\n01-04-2021,00:52:01,1.5,2.5\r\n");
    const std::vector<CsvValue> one = {1.5};
    EXPECT_FALSE(w.write(kT0, more, one).ok());
  }
  fs::remove_all(base);
}

TEST(RigCsv, ValuesAsThePythonToolWroteThem) {
  auto text = [](const CsvValue& v) {
    std::string s;
    RigCsvWriter::append_value(s, v);
    return s;
  };
  EXPECT_EQ(text(377.7886288033692), "377.7886288033692");
  EXPECT_EQ(text(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(text(20.0), "20.0");
  EXPECT_EQ(text(std::int64_t{20}), "20");
  EXPECT_EQ(text(true), "True");
  EXPECT_EQ(text(std::monostate{}), "");
  EXPECT_EQ(text(std::numeric_limits<double>::quiet_NaN()), "nan");
  EXPECT_EQ(text(-std::numeric_limits<double>::infinity()), "-inf");
}

// The columns after the modules, as the rig's own file has them (CELLGUARD_SEED_DIR).
TEST(RigCsv, TailColumnsAreTheRigSampleOnes) {
  const char* seed = std::getenv("CELLGUARD_SEED_DIR");
  if (seed == nullptr || *seed == '\0')
    GTEST_SKIP() << "CELLGUARD_SEED_DIR not set: the rig's sample-record-log.csv is needed";
  std::ifstream in(std::string(seed) + "/sample-record-log.csv", std::ios::binary);
  std::string header;
  ASSERT_TRUE(std::getline(in, header)) << seed << "/sample-record-log.csv";
  ASSERT_FALSE(header.empty());
  ASSERT_EQ(header.back(), '\r') << "the rig's lines end in CRLF";
  header.pop_back();
  std::string tail;
  for (const char* c : kRigDeviceColumns) tail += std::string(",") + c;
  for (const char* c : kRigFlagColumns) tail += std::string(",") + c;
  tail += ",warning,dangerous";
  ASSERT_GE(header.size(), tail.size());
  EXPECT_EQ(header.substr(header.size() - tail.size()), tail);
}

TEST(RigCsv, UnwritableBaseIsAClearError) {
  const std::string file =
      (fs::temp_directory_path() / ("cellguard-rigcsv-file-" + std::to_string(getpid()))).string();
  std::ofstream(file) << "x";
  RigCsvWriter w(file, true);
  const std::vector<std::string> cols = {"a"};
  const std::vector<CsvValue> row = {1.0};
  auto r = w.write(kT0, cols, row);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find(file), std::string::npos) << r.error().message;
  fs::remove(file);
}

}  // namespace
}  // namespace cellguard::recorder
