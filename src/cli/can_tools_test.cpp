// Black-box tests of the DBC tools of the `cellguard` binary: `dbc check` positions and tolerance,
// `encode` (printed, decoded back, sent to a real socketcand server), `decode --format csv` against the
// JSON output of the same log.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <asio.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "can/bus.h"
#include "can/socketcand.h"

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

struct Ran {
  int exit_code = -1;
  std::string out;
};

// Runs a shell command line, capturing stdout (and stderr with " 2>&1" in the command).
Ran run(const std::string& command) {
  Ran r;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return r;
  char buf[65536];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) r.out.append(buf, n);
  const int status = ::pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

// RFC 4180 records (quoted fields may hold commas, quotes and line ends).
std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      row.push_back(std::move(field));
      field.clear();
    } else if (c == '\n') {
      row.push_back(std::move(field));
      field.clear();
      rows.push_back(std::move(row));
      row.clear();
    } else {
      field += c;
    }
  }
  return rows;
}

// A rig message, a multiplexed message and a message with awkward texts, written for these tests.
constexpr const char* kDbc = R"(VERSION ""
BU_: BMU Controller
BO_ 385 BMU01_pdo1: 8 BMU
 SG_ CMA_Current : 0|16@1- (0.1,0) [-3276.8|3276.7] "A" Controller
 SG_ CMA_Voltage : 16|16@1+ (0.01,0) [0|655.35] "V" Controller
 SG_ Min_Cell_Voltage : 32|8@1+ (0.01,2.2) [2.2|4.75] "V" Controller
 SG_ Max_Cell_Voltage : 40|8@1+ (0.01,2.2) [2.2|4.75] "V" Controller
 SG_ CMA_Min_Temp : 48|8@1- (1,0) [-40|85] "degC" Controller
 SG_ CMA_Max_Temp : 56|8@1- (1,0) [-40|85] "degC" Controller
BO_ 641 BMU01_pdo2: 8 BMU
 SG_ CMA_Status : 0|16@1+ (1,0) [0|65535] "" Controller
 SG_ SOC : 16|8@1+ (0.5,0) [0|100] "%" Controller
BO_ 1792 Diag: 8 BMU
 SG_ Page M : 0|8@1+ (1,0) [0|3] "" Controller
 SG_ Serial m1 : 8|32@1+ (1,0) [0|0] "" Controller
 SG_ Firmware m2 : 8|16@1+ (1,0) [0|0] "" Controller
 SG_ Odd : 40|8@1+ (1,0) [0|0] "mm,\"in\"" Controller
BO_ 2566834709 Big: 8 BMU
 SG_ Counter : 0|64@1+ (1,0) [0|0] "" Controller
VAL_ 641 CMA_Status 0 "Idle" 3 "Balancing, passive" 67 "Charging" ;
)";

class CanTools : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* binary = std::getenv("CELLGUARD_BINARY");
    ASSERT_NE(binary, nullptr) << "CELLGUARD_BINARY must name the built cellguard binary";
    binary_ = binary;
    dir_ = fs::temp_directory_path() / ("cellguard-cantools-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    write("t.dbc", kDbc);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  void write(const std::string& name, const std::string& text) const {
    std::ofstream(path(name), std::ios::binary) << text;
  }
  Ran cellguard(const std::string& args) const { return run(binary_ + " " + args); }

  std::string binary_;
  fs::path dir_;
};

TEST_F(CanTools, EncodeAndCsvHaveHelpWithExamples) {
  Ran r = cellguard("encode --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("Usage"), std::string::npos);
  EXPECT_NE(r.out.find("--send"), std::string::npos);
  EXPECT_NE(r.out.find("Examples:"), std::string::npos) << r.out;
  r = cellguard("decode --help");
  EXPECT_NE(r.out.find("--resample"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--aggregate"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("'Cell_V_01 [V]'"), std::string::npos) << r.out;
}

// ---- dbc check ----

TEST_F(CanTools, DbcCheckNamesFileLineAndColumnOfEveryProblem) {
  write("bad.dbc",
        "VERSION \"\"\n"
        "BO_ 354 Status: 2 BMS\n"
        " SG_ A : 0|12@1+ (1,0) [0|0] \"\" BMS\n"
        " SG_ B : 8|12@1+ (1,0) [10|5] \"\" BMS\n"
        "BO_ 354 Again: 8 BMS\n");
  const Ran r = cellguard("dbc check " + path("bad.dbc"));
  EXPECT_EQ(r.exit_code, 1);
  const std::string file = path("bad.dbc");
  EXPECT_NE(r.out.find("warning: " + file + ":5:1: duplicate message id 0x162 (Status and Again)"),
            std::string::npos)
      << r.out;
  EXPECT_NE(
      r.out.find("error: " + file + ":4:2: message Status (0x162) signal B: minimum 10 is above maximum 5"),
      std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("error: " + file +
                       ":4:2: message Status (0x162) signal B: extends past the payload of 2 bytes"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("error: " + file + ":4:2: message Status (0x162) signal B: overlaps signal A"),
            std::string::npos)
      << r.out;
}

TEST_F(CanTools, DbcCheckLoadsMultiplexedMarkersWithoutAMultiplexerWithWarnings) {
  // Issue 16's public file: m2, m3 and a bare m, but no M signal.
  write("pub.dbc",
        "VERSION \"\"\nBO_ 354 Status: 8 BMS\n SG_ A m2 : 0|8@1+ (1,0) [0|0] \"\" BMS\n"
        " SG_ B m3 : 8|8@1+ (1,0) [0|0] \"\" BMS\n SG_ C m : 16|8@1+ (1,0) [0|0] \"\" BMS\n");
  const Ran r = cellguard("dbc check " + path("pub.dbc"));
  EXPECT_EQ(r.exit_code, 0) << r.out;
  const std::string file = path("pub.dbc");
  EXPECT_NE(r.out.find(file + ":5:8: message Status signal C is marked multiplexed ('m')"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find(file + ":3:2: message Status (0x162) signal A: marked multiplexed (m2)"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("1 messages, 0 errors, 3 warnings"), std::string::npos) << r.out;
  // And it decodes with all three as plain signals.
  write("a.log", "(1.0) can0 162#0102030000000000\n");
  const Ran d = cellguard("decode -q --dbc " + path("pub.dbc") + " " + path("a.log"));
  EXPECT_NE(d.out.find("\"signals\":{\"A\":1,\"B\":2,\"C\":3}"), std::string::npos) << d.out;
}

// ---- encode ----

TEST_F(CanTools, EncodePrintsACandumpLineThatDecodesToTheGivenValues) {
  const Ran r = cellguard("encode -q --dbc " + path("t.dbc") +
                          " BMU01_pdo1 CMA_Current=-12.3 CMA_Voltage=47.3 Min_Cell_Voltage=3.94 "
                          "Max_Cell_Voltage=3.94 CMA_Min_Temp=20 CMA_Max_Temp=22");
  ASSERT_EQ(r.exit_code, 0);
  // candump -L: "(seconds.micros) can0 181#85FF7A12AEAE1416"
  const auto space = r.out.find(") can0 ");
  ASSERT_NE(space, std::string::npos) << r.out;
  EXPECT_EQ(r.out.substr(space + 2), "can0 181#85FF7A12AEAE1416\n");
  write("a.log", r.out);
  const auto decoded =
      json::parse(lines_of(cellguard("decode --dbc " + path("t.dbc") + " " + path("a.log")).out).at(0));
  EXPECT_DOUBLE_EQ(decoded["signals"]["CMA_Current"].get<double>(), -12.3);
  EXPECT_EQ(decoded["signals"]["CMA_Max_Temp"], 22);
}

TEST_F(CanTools, EncodeTakesIdsValueTableNamesMultiplexersAndSixtyFourBitValues) {
  Ran r = cellguard("encode -q --dbc " + path("t.dbc") + " 0x281 \"CMA_Status=Balancing, passive\" SOC=80.5");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find(" can0 281#0300A10000000000"), std::string::npos) << r.out;
  r = cellguard("encode -q --dbc " + path("t.dbc") + " Diag Page=1 Serial=4000000000 Odd=7");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find(" can0 700#0100286BEE070000"), std::string::npos) << r.out;
  r = cellguard("encode -q --dbc " + path("t.dbc") + " Big Counter=18446744073709551615");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find(" can0 18FECA15#FFFFFFFFFFFFFFFF"), std::string::npos) << r.out;
}

TEST_F(CanTools, EncodeErrorsNameTheArgumentAndTheCause) {
  const std::string dbc = " --dbc " + path("t.dbc") + " ";
  struct Case {
    std::string args;
    std::string error;
  };
  const std::vector<Case> cases = {
      {"BMU01_pdo1 CMA_Voltage=1 CMA_Curent=2",
       "argument 2 'CMA_Curent=2': BMU01_pdo1 has no signal CMA_Curent (did you mean 'CMA_Current'?)"},
      {"BMU01_pdo1 CMA_Voltage=700",
       "argument 1 'CMA_Voltage=700': 700 V is above the maximum 655.35 V of CMA_Voltage"},
      {"BMU01_pdo1 CMA_Min_Temp=-41", "-41 degC is below the minimum -40 degC of CMA_Min_Temp"},
      {"--no-limits BMU01_pdo1 CMA_Voltage=700",
       "argument 1 'CMA_Voltage=700': needs raw 70000, beyond the 16 bits of CMA_Voltage (raw 0..65535, "
       "physical "
       "0..655.35 V)"},
      {"BMU01_pdo1 CMA_Voltage=high", "'high' is not a number"},
      {"BMU01_pdo2 CMA_Status=Charing", "nor a value of CMA_Status (did you mean 'Charging'?)"},
      {"BMU01_pdo1 CMA_Voltage", "expected NAME=VALUE"},
      {"BMU01_pdo1 SOC=1", "BMU01_pdo1 has no signal SOC"},
      {"BMU01_pdo1 CMA_Voltage=1 CMA_Voltage=2", "CMA_Voltage is already given by argument 1"},
      {"Diag Serial=1", "Diag is multiplexed: give Page=VALUE (one of 1, 2)"},
      {"Diag Page=2 Serial=1", "argument 2 'Serial=1': Serial is sent only when Page is 1, and Page is 2"},
      {"Diag Page=3", "Page 3 selects nothing in Diag: a decoder rejects the frame (valid: 1, 2)"},
      {"BMU1_pdo1 CMA_Voltage=1", "no message named 'BMU1_pdo1' in the DBC (did you mean 'BMU01_pdo1'?)"},
  };
  for (const auto& c : cases) {
    const Ran r = cellguard("encode" + dbc + c.args + " 2>&1");
    EXPECT_NE(r.exit_code, 0) << c.args;
    EXPECT_NE(r.out.find(c.error), std::string::npos) << c.args << "\n" << r.out;
    EXPECT_EQ(r.out.find(" can0 "), std::string::npos) << "no frame on an error: " << r.out;
  }
}

TEST_F(CanTools, EncodeSendsTheFrameToASocketcandServer) {
  asio::io_context io;
  cellguard::can::SocketcandServerOptions options;
  options.inproc_bus = "encode-test";
  auto server = cellguard::can::SocketcandServer::start(io, options);
  ASSERT_TRUE(server.ok()) << server.error().message;
  auto listener = cellguard::can::open_bus(io, "inproc:encode-test");
  ASSERT_TRUE(listener.ok());
  std::vector<cellguard::can::Frame> received;
  (*listener)->on_receive([&](const cellguard::can::Frame& f) {
    received.push_back(f);
    io.stop();
  });
  const std::string url = "socketcand://127.0.0.1:" + std::to_string((*server)->port()) + "/can0";
  Ran r;
  std::thread child([&] {
    r = cellguard("encode -q --dbc " + path("t.dbc") + " BMU01_pdo2 CMA_Status=Charging SOC=50 --send " +
                  url);
  });
  asio::steady_timer deadline(io, std::chrono::seconds(20));
  deadline.async_wait([&](const asio::error_code& ec) {
    if (!ec) io.stop();
  });
  io.run();
  child.join();
  EXPECT_EQ(r.exit_code, 0) << r.out;
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0].id, 0x281u);
  ASSERT_EQ(received[0].size, 8u);
  EXPECT_EQ(received[0].data[0], 67);
  EXPECT_EQ(received[0].data[2], 100);
  (*listener)->close();
  (*server)->close();
}

TEST_F(CanTools, EncodeSendFailsClearlyWithoutAServer) {
  // A port that was free a moment ago: nobody listens there.
  asio::io_context io;
  asio::ip::tcp::acceptor probe(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const auto port = probe.local_endpoint().port();
  probe.close();
  const Ran r = cellguard(
      "encode -q --dbc " + path("t.dbc") +
      " BMU01_pdo2 SOC=50 --timeout 5 --send socketcand://127.0.0.1:" + std::to_string(port) + "/can0 2>&1");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("sending on socketcand://127.0.0.1:" + std::to_string(port) + "/can0 failed"),
            std::string::npos)
      << r.out;
}

// ---- decode --format csv ----

// The rig's log from the simulator's generator, with the project's DBC.
class CsvAgainstJson : public CanTools {
 protected:
  void SetUp() override {
    CanTools::SetUp();
    const char* source = std::getenv("CELLGUARD_SOURCE_DIR");
    ASSERT_NE(source, nullptr);
    rig_dbc_ = std::string(source) + "/data/cellguard-rig.dbc";
    ASSERT_EQ(
        cellguard("generate --dbc " + rig_dbc_ + " --modules 3 --seconds 2 -o " + path("rig.log")).exit_code,
        0);
    write("rig.log",
          read("rig.log") + "(1700000002.500000) can0 7FF#00\n(1700000002.600000) can0 181#0102\n");
    for (const auto& line : lines_of(cellguard("decode -q --dbc " + rig_dbc_ + " " + path("rig.log")).out))
      frames_.push_back(json::parse(line));
  }
  std::string read(const std::string& name) const {
    std::ifstream in(path(name));
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }
  static std::string strip_unit(const std::string& header) { return header.substr(0, header.find(" [")); }

  std::string rig_dbc_;
  std::vector<json> frames_;
};

TEST_F(CsvAgainstJson, OneRowPerFrameHoldsTheJsonValues) {
  const Ran r = cellguard("decode -q --format csv --dbc " + rig_dbc_ + " " + path("rig.log"));
  ASSERT_EQ(r.exit_code, 0);
  const auto rows = parse_csv(r.out);
  ASSERT_GT(frames_.size(), 100u);
  // Every frame but the short one (which fails to decode) has its row.
  ASSERT_EQ(rows.size(), frames_.size());
  const auto& header = rows[0];
  ASSERT_EQ(std::vector<std::string>(header.begin(), header.begin() + 4),
            (std::vector<std::string>{"time", "bus", "id", "message"}));
  EXPECT_NE(std::find(header.begin(), header.end(), "BMU01_pdo1.CMA_Voltage [V]"), header.end());
  EXPECT_NE(std::find(header.begin(), header.end(), "Sync_Count"), header.end());
  std::size_t row = 1;
  std::size_t values = 0;
  for (const auto& frame : frames_) {
    if (frame.contains("error")) continue;
    ASSERT_LT(row, rows.size());
    const auto& cells = rows[row++];
    ASSERT_EQ(cells.size(), header.size());
    EXPECT_NEAR(std::stod(cells[0]), frame["t"].get<double>(), 1e-6);
    EXPECT_EQ(std::stoul(cells[2], nullptr, 16), frame["id"].get<unsigned long>());
    if (frame.contains("unknown")) {
      EXPECT_EQ(cells[3], "");
      continue;
    }
    EXPECT_EQ(cells[3], frame["name"]);
    std::size_t filled = 0;
    for (std::size_t k = 4; k < cells.size(); ++k) {
      if (cells[k].empty()) continue;
      ++filled;
      // "MESSAGE.SIGNAL", or the bare name of a signal only one message has.
      const std::string column = strip_unit(header[k]);
      const auto dot = column.find('.');
      if (dot != std::string::npos) {
        EXPECT_EQ(column.substr(0, dot), frame["name"]) << column;
      }
      const std::string signal = dot == std::string::npos ? column : column.substr(dot + 1);
      ASSERT_TRUE(frame["signals"].contains(signal)) << column << " in " << frame.dump();
      const auto& expected = frame["signals"][signal];
      EXPECT_EQ(std::stod(cells[k]), expected.get<double>()) << column;
      ++values;
    }
    EXPECT_EQ(filled, frame["signals"].size());
  }
  EXPECT_GT(values, 1000u);
}

TEST_F(CsvAgainstJson, ResampledRowsHoldTheLastValueOrTheMeanOfEachInterval) {
  const std::string args = "decode -q --format csv --dbc " + rig_dbc_ + " " + path("rig.log") +
                           " --signals BMU02_pdo1.CMA_Current,Sync_Count --resample 250ms";
  const auto last = parse_csv(cellguard(args).out);
  const auto mean = parse_csv(cellguard(args + " --aggregate mean").out);
  ASSERT_FALSE(last.empty());
  EXPECT_EQ(last[0], (std::vector<std::string>{"time", "CMA_Current [A]", "Sync_Count"}));
  EXPECT_EQ(mean[0], last[0]);
  // The same from the JSON lines: per 250 ms interval, the last value and the mean.
  std::map<long long, std::pair<double, std::vector<double>>> expected;  // interval -> (last, all)
  long long first = -1;
  long long end = 0;
  for (const auto& frame : frames_) {
    const long long k = static_cast<long long>(std::floor(frame["t"].get<double>() * 4 + 1e-9));
    if (first < 0) first = k;
    end = k;
    if (frame.value("name", "") != "BMU02_pdo1" || !frame.contains("signals")) continue;
    const double v = frame["signals"]["CMA_Current"].get<double>();
    expected[k].first = v;
    expected[k].second.push_back(v);
  }
  ASSERT_EQ(last.size(), static_cast<std::size_t>(end - first + 2));  // header + every interval
  ASSERT_EQ(mean.size(), last.size());
  double held = NAN;
  for (long long k = first; k <= end; ++k) {
    const auto& l = last[static_cast<std::size_t>(k - first + 1)];
    const auto& m = mean[static_cast<std::size_t>(k - first + 1)];
    EXPECT_NEAR(std::stod(l[0]), static_cast<double>(k) / 4, 1e-6);
    EXPECT_EQ(l[0], m[0]);
    const auto it = expected.find(k);
    if (it != expected.end()) {
      held = it->second.first;
      double sum = 0;
      for (const double v : it->second.second) sum += v;
      EXPECT_NEAR(std::stod(m[1]), sum / static_cast<double>(it->second.second.size()), 1e-9) << k;
    } else {
      EXPECT_EQ(m[1], "") << k;
    }
    if (std::isnan(held)) {
      EXPECT_EQ(l[1], "");
    } else {
      EXPECT_EQ(std::stod(l[1]), held) << k;
    }
  }
}

TEST_F(CanTools, CsvQuotesTextsWithCommasAndQuotesAndRejectsUnknownColumns) {
  write("a.log", "(1.0) can0 281#0300A00000000000\n(2.0) can0 700#02000000002A0000\n");
  Ran r = cellguard("decode -q --format csv --choices --dbc " + path("t.dbc") + " " + path("a.log") +
                    " --signals CMA_Status,Diag.*");
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out,
            "time,bus,id,message,CMA_Status,Page,Serial,Firmware,\"Odd [mm,\"\"in\"\"]\"\n"
            "1.000000,can0,0x281,BMU01_pdo2,\"Balancing, passive\",,,,\n"
            "2.000000,can0,0x700,Diag,,2,,0,42\n");
  const auto rows = parse_csv(r.out);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0][8], "Odd [mm,\"in\"]");
  EXPECT_EQ(rows[1][4], "Balancing, passive");

  r = cellguard("decode --format csv --dbc " + path("t.dbc") + " " + path("a.log") +
                " --signals CMA_Volage 2>&1");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.out.find("--signals: no signal matches 'CMA_Volage' (did you mean 'CMA_Voltage'?)"),
            std::string::npos)
      << r.out;
  r = cellguard("decode --format csv --dbc " + path("t.dbc") + " " + path("a.log") +
                " --resample 100ms 2>&1");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.out.find("--resample needs --signals"), std::string::npos) << r.out;
  r = cellguard("decode --format csv --dbc " + path("t.dbc") + " " + path("a.log") +
                " --signals SOC --resample 100 2>&1");
  EXPECT_NE(r.out.find("expected a time from 1us to 1 day with a unit"), std::string::npos) << r.out;
}

}  // namespace
