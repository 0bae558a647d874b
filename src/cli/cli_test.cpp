// Black-box tests of the `cellguard` binary: real processes, real files, output checked as a user
// (or a program reading JSON lines) would.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "store/rig_stream.h"
#include "store/store.h"

namespace {

namespace fs = std::filesystem;

struct Ran {
  int exit_code = -1;
  std::string out;
};

// Runs a shell command line, capturing stdout (stderr goes to the test log).
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

std::vector<nlohmann::json> json_lines(const std::string& text) {
  std::vector<nlohmann::json> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) lines.push_back(nlohmann::json::parse(line));
  }
  return lines;
}

// A two-module slice of the rig's layout, written for these tests.
constexpr const char* kRigDbc = R"(VERSION ""

NS_ :

BS_:

BU_: BMU Controller

BO_ 128 SYNC: 1 Controller
 SG_ Sync_Count : 0|8@1+ (1,0) [0|255] "" BMU

BO_ 385 BMU01_pdo1: 8 BMU
 SG_ CMA_Current : 0|16@1- (0.1,0) [-3276.8|3276.7] "A" Controller
 SG_ CMA_Voltage : 16|16@1+ (0.01,0) [0|655.35] "V" Controller
 SG_ Min_Cell_Voltage : 32|8@1+ (0.01,2.2) [2.2|4.75] "V" Controller
 SG_ Max_Cell_Voltage : 40|8@1+ (0.01,2.2) [2.2|4.75] "V" Controller
 SG_ CMA_Min_Temp : 48|8@1- (1,0) [-128|127] "degC" Controller
 SG_ CMA_Max_Temp : 56|8@1- (1,0) [-128|127] "degC" Controller

BO_ 641 BMU01_pdo2: 8 BMU
 SG_ CMA_Status : 0|16@1+ (1,0) [0|65535] "" Controller
 SG_ SOC : 16|8@1+ (0.5,0) [0|100] "%" Controller
 SG_ SOH : 24|8@1+ (1,0) [0|100] "%" Controller
 SG_ CellBalancingStatus : 32|16@1+ (1,0) [0|65535] "" Controller

BO_ 386 BMU02_pdo1: 8 BMU
 SG_ CMA_Current : 0|16@1- (0.1,0) [-3276.8|3276.7] "A" Controller
 SG_ CMA_Voltage : 16|16@1+ (0.01,0) [0|655.35] "V" Controller
 SG_ Min_Cell_Voltage : 32|8@1+ (0.01,2.2) [2.2|4.75] "V" Controller
 SG_ Max_Cell_Voltage : 40|8@1+ (0.01,2.2) [2.2|4.75] "V" Controller
 SG_ CMA_Min_Temp : 48|8@1- (1,0) [-128|127] "degC" Controller
 SG_ CMA_Max_Temp : 56|8@1- (1,0) [-128|127] "degC" Controller

CM_ BO_ 385 "Module 1: current, voltage, cell extremes, temperature extremes";
VAL_ 641 CMA_Status 0 "Idle" 3 "Balancing" 67 "Charging" ;
)";

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* binary = std::getenv("CELLGUARD_BINARY");
    ASSERT_NE(binary, nullptr) << "CELLGUARD_BINARY must name the built cellguard binary";
    binary_ = binary;
    dir_ = fs::temp_directory_path() / ("cellguard-cli-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    write("rig.dbc", kRigDbc);
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

TEST_F(Cli, DecodePrintsOneJsonObjectPerFrameWithPhysicalValues) {
  // CMA_Current raw -123 (0xFF85) = -12.3 A; CMA_Voltage raw 4730 (0x127A) = 47.3 V;
  // cells raw 174 = 3.94 V; temperatures 20 and 22 degC.
  write("a.log", "(1700000000.000250) can0 181#85FF7A12AEAE1416\n");
  const Ran r = cellguard("decode --dbc " + path("rig.dbc") + " " + path("a.log"));
  ASSERT_EQ(r.exit_code, 0);
  const auto lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), 1u);
  const auto& j = lines[0];
  EXPECT_DOUBLE_EQ(j["t"].get<double>(), 1700000000.00025);
  EXPECT_EQ(j["bus"], "can0");
  EXPECT_EQ(j["id"], 385);
  EXPECT_EQ(j["extended"], false);
  EXPECT_EQ(j["name"], "BMU01_pdo1");
  EXPECT_DOUBLE_EQ(j["signals"]["CMA_Current"].get<double>(), -12.3);
  EXPECT_DOUBLE_EQ(j["signals"]["CMA_Voltage"].get<double>(), 47.3);
  EXPECT_DOUBLE_EQ(j["signals"]["Min_Cell_Voltage"].get<double>(), 174 * 0.01 + 2.2);
  EXPECT_EQ(j["signals"]["CMA_Min_Temp"], 20);
  EXPECT_EQ(j["signals"]["CMA_Max_Temp"], 22);
  EXPECT_NE(r.out.find("\"CMA_Current\":-12.3,"), std::string::npos) << "shortest round-trip text: " << r.out;
}

TEST_F(Cli, DecodeMarksUnknownFramesAndOmitsThemWithKnownOnly) {
  write("a.log", "(1.000000) can0 7FF#00\n(2.000000) can0 080#01\n");
  auto lines = json_lines(cellguard("decode --dbc " + path("rig.dbc") + " " + path("a.log")).out);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["unknown"], true);
  EXPECT_FALSE(lines[0].contains("signals"));
  EXPECT_EQ(lines[1]["name"], "SYNC");
  lines = json_lines(cellguard("decode --known-only --dbc " + path("rig.dbc") + " " + path("a.log")).out);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["name"], "SYNC");
}

TEST_F(Cli, DecodeReportsAShortFrameAsAnErrorNotGarbage) {
  write("a.log", "(1.000000) can0 181#85FF7A\n");
  const auto lines = json_lines(cellguard("decode -q --dbc " + path("rig.dbc") + " " + path("a.log")).out);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["name"], "BMU01_pdo1");
  EXPECT_FALSE(lines[0].contains("signals"));
  ASSERT_TRUE(lines[0].contains("error"));
  EXPECT_FALSE(lines[0]["error"].get<std::string>().empty());
}

TEST_F(Cli, DecodeReadsStandardInput) {
  const Ran r = run("printf '(1.5) can0 281#4300A06400000000\\n' | " + binary_ + " decode --dbc " +
                    path("rig.dbc") + " -");
  ASSERT_EQ(r.exit_code, 0);
  const auto lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["signals"]["CMA_Status"], 67);
  EXPECT_DOUBLE_EQ(lines[0]["signals"]["SOC"].get<double>(), 80.0);
  EXPECT_EQ(lines[0]["signals"]["SOH"], 100);
}

TEST_F(Cli, DecodeWithChoicesPrintsValueTableNames) {
  write("a.log", "(1.5) can0 281#4300A06400000000\n");
  const auto lines =
      json_lines(cellguard("decode --choices --dbc " + path("rig.dbc") + " " + path("a.log")).out);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["signals"]["CMA_Status"], "Charging");
  EXPECT_EQ(lines[0]["signals"]["SOH"], 100);
}

TEST_F(Cli, DecodeRawPrintsUnscaledValues) {
  write("a.log", "(1.5) can0 181#85FF7A12AEAE1416\n");
  const auto lines = json_lines(cellguard("decode --raw --dbc " + path("rig.dbc") + " " + path("a.log")).out);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["signals"]["CMA_Current"], -123);
  EXPECT_EQ(lines[0]["signals"]["CMA_Voltage"], 4730);
  EXPECT_EQ(lines[0]["signals"]["Min_Cell_Voltage"], 174);
}

TEST_F(Cli, DecodeTextFormatIsOneLinePerFrameLikeCantools) {
  write("a.log", "(1700000000.000250) can0 181#85FF7A12AEAE1416\n");
  const Ran r = cellguard("decode --format text --dbc " + path("rig.dbc") + " " + path("a.log"));
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out,
            "(1700000000.000250) can0 181#85FF7A12AEAE1416 :: BMU01_pdo1(CMA_Current: -12.3 A, CMA_Voltage: "
            "47.300000000000004 V, "
            "Min_Cell_Voltage: 3.9400000000000004 V, Max_Cell_Voltage: 3.9400000000000004 V, CMA_Min_Temp: "
            "20 degC, "
            "CMA_Max_Temp: 22 degC)\n");
}

TEST_F(Cli, DecodeSkipsMalformedLinesAndKeepsGoing) {
  write("a.log", "(1.0) can0 080#01\nthis is not a frame\n(2.0) can0 080#02\n");
  const Ran r = cellguard("decode -q --dbc " + path("rig.dbc") + " " + path("a.log"));
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(json_lines(r.out).size(), 2u);
}

TEST_F(Cli, DecodeFailsClearlyOnABrokenDbc) {
  write("broken.dbc", "VERSION \"\"\nBO_ 385 BMU01_pdo1 8 BMU\n");
  write("a.log", "(1.0) can0 080#01\n");
  const Ran r = run(binary_ + " decode --dbc " + path("broken.dbc") + " " + path("a.log") + " 2>&1");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.out.find("broken.dbc:2:"), std::string::npos) << r.out;
}

TEST_F(Cli, DbcCheckPassesAGoodFileAndFailsOverlappingSignals) {
  EXPECT_EQ(cellguard("dbc check " + path("rig.dbc")).exit_code, 0);
  write("overlap.dbc",
        "VERSION \"\"\nNS_ :\nBS_:\nBU_: A\nBO_ 1 M: 2 A\n SG_ X : 0|12@1+ (1,0) [0|0] \"\" A\n"
        " SG_ Y : 8|8@1+ (1,0) [0|0] \"\" A\n");
  const Ran r = cellguard("dbc check " + path("overlap.dbc"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find('X'), std::string::npos);
  EXPECT_NE(r.out.find('Y'), std::string::npos);
}

TEST_F(Cli, DbcShowListsSignalsWithScalingAndUnits) {
  const Ran r = cellguard("dbc show " + path("rig.dbc") + " --message BMU01_pdo1");
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("BMU01_pdo1  0x181  8 bytes"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("CMA_Current"), std::string::npos);
  EXPECT_NE(r.out.find("0.1"), std::string::npos);
  EXPECT_NE(r.out.find("Module 1: current"), std::string::npos);
  EXPECT_EQ(cellguard("dbc show " + path("rig.dbc") + " --message NoSuchMessage").exit_code, 1);
}

TEST_F(Cli, ConvertRoundTripsThroughAscAndTrc) {
  const std::string log = "(1700000000.000250) can0 181#85FF7A12AEAE1416\n(1700000000.100000) can0 080#02\n";
  write("a.log", log);
  ASSERT_EQ(cellguard("convert " + path("a.log") + " " + path("b.asc")).exit_code, 0);
  ASSERT_EQ(cellguard("convert " + path("b.asc") + " " + path("c.trc")).exit_code, 0);
  ASSERT_EQ(cellguard("convert " + path("c.trc") + " --to candump-log -").exit_code, 0);
  const auto a = json_lines(cellguard("decode --dbc " + path("rig.dbc") + " " + path("a.log")).out);
  const auto c = json_lines(cellguard("decode --dbc " + path("rig.dbc") + " " + path("c.trc")).out);
  ASSERT_EQ(a.size(), 2u);
  ASSERT_EQ(c.size(), 2u);
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i]["id"], c[i]["id"]);
    EXPECT_EQ(a[i]["signals"], c[i]["signals"]);
    EXPECT_NEAR(a[i]["t"].get<double>(), c[i]["t"].get<double>(), 1e-3);
  }
}

TEST_F(Cli, GenerateWritesSyncAndEveryModulesPdosThatDecodeToPlausibleValues) {
  ASSERT_EQ(cellguard("generate --dbc " + path("rig.dbc") + " --modules 2 --seconds 1 -o " + path("g.log"))
                .exit_code,
            0);
  const auto lines = json_lines(cellguard("decode --dbc " + path("rig.dbc") + " " + path("g.log")).out);
  // 10 cycles of SYNC + BMU01_pdo1, BMU01_pdo2, BMU02_pdo1.
  ASSERT_EQ(lines.size(), 40u);
  int pdo1 = 0;
  for (const auto& j : lines) {
    ASSERT_FALSE(j.contains("unknown")) << j.dump();
    if (j["name"] == "BMU02_pdo1") {
      ++pdo1;
      EXPECT_NEAR(j["signals"]["CMA_Voltage"].get<double>(), 47.0, 1.0);
      EXPECT_NEAR(j["signals"]["Max_Cell_Voltage"].get<double>(), 3.92, 0.05);
    }
  }
  EXPECT_EQ(pdo1, 10);
}

TEST_F(Cli, DbcCheckRefusesAnEmptyOrNonDbcFileNamingThePlace) {
  write("empty.dbc", "");
  Ran r = cellguard("dbc check " + path("empty.dbc"));
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find(path("empty.dbc") + ":1:1: no DBC content"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("0 messages, 0 errors"), std::string::npos) << r.out;

  write("notes.dbc", "// only a comment\n\nThis is a shopping list, not a database.\nmilk eggs\n");
  r = cellguard("dbc check " + path("notes.dbc"));
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(
      r.out.find(path("notes.dbc") + ":3:1: no DBC content: no VERSION, NS_, BU_ or BO_ statement found"),
      std::string::npos)
      << r.out;
  // The same file is refused where a DBC is loaded for decoding.
  write("log.asc", "");
  EXPECT_EQ(cellguard("decode --dbc " + path("notes.dbc") + " " + path("log.asc") + " 2>&1").exit_code, 2);
}

TEST_F(Cli, DecodeOfInputWithoutOneFrameFailsInEveryFormatNamingTheFirstLine) {
  // Random printable text and bytes: not a single frame, in whichever format it is read.
  std::string noise = "date Mon Dec 7 03:17:06 2026\n";
  unsigned state = 12345;
  for (int line = 0; line < 50; ++line) {
    for (int i = 0; i < 60; ++i) {
      state = state * 1103515245u + 12345u;
      noise.push_back(static_cast<char>(0x20 + (state >> 16) % 0x5F));
    }
    noise += line % 7 == 0 ? "\x1b[2J\xfd\n" : "\n";
  }
  write("noise.log", noise);
  for (const char* format : {"asc", "trc", "candump-log", "candump"}) {
    const Ran r = cellguard(std::string("decode --dbc ") + path("rig.dbc") + " --input-format " + format +
                            " " + path("noise.log") + " 2>&1");
    EXPECT_EQ(r.exit_code, 1) << format << ": " << r.out;
    EXPECT_NE(r.out.find("no CAN frame in the input"), std::string::npos) << format << ": " << r.out;
    // Where: FILE:LINE of a malformed line (warning) or of the first line that was not a frame.
    EXPECT_NE(r.out.find(path("noise.log") + ":"), std::string::npos) << format << ": " << r.out;
    // The input's bytes are shown escaped, never raw.
    EXPECT_EQ(r.out.find('\x1b'), std::string::npos) << format;
    EXPECT_EQ(r.out.find('\xfd'), std::string::npos) << format;
  }
  // A real log with a few bad lines still decodes and exits 0; an empty one is an empty log.
  write("good.log", "(1700000000.000000) can0 181#0000000000000000\nnot a frame\n");
  EXPECT_EQ(cellguard("decode --dbc " + path("rig.dbc") + " " + path("good.log") + " 2>/dev/null").exit_code,
            0);
  write("empty.log", "");
  EXPECT_EQ(
      cellguard("decode --dbc " + path("rig.dbc") + " --input-format asc " + path("empty.log")).exit_code, 0);
}

TEST_F(Cli, DeeplyNestedTomlIsRefusedWithItsPlaceBeforeTheParserRecurses) {
  std::string dotted = "a";
  for (int i = 0; i < 50000; ++i) dotted += ".a";
  const std::vector<std::pair<std::string, std::string>> files = {
      {"dotted.toml", "# hostile\n" + dotted + " = 1\n"},
      {"arrays.toml", "a = " + std::string(50000, '[') + "\n"},
      {"tables.toml", [] {
         std::string text = "a = ";
         for (int i = 0; i < 20000; ++i) text += "{b = ";
         return text + "\n";
       }()}};
  for (const auto& [name, text] : files) {
    write(name, text);
    Ran r = cellguard("edge check-config " + path(name) + " 2>&1");
    EXPECT_EQ(r.exit_code, 1) << name << ": " << r.out;
    EXPECT_NE(r.out.find(path(name) + ":"), std::string::npos) << name << ": " << r.out;
    EXPECT_NE(r.out.find("more than 64"), std::string::npos) << name << ": " << r.out;
    r = cellguard("server --data " + path("store") + " --listen 127.0.0.1:0 --duration 5 --config " +
                  path(name) + " 2>&1");
    EXPECT_EQ(r.exit_code, 1) << name << ": " << r.out;
    EXPECT_NE(r.out.find(path(name) + ":"), std::string::npos) << name << ": " << r.out;
    EXPECT_NE(r.out.find("more than 64"), std::string::npos) << name << ": " << r.out;
  }
  const Ran dotted_run = cellguard("edge check-config " + path("dotted.toml") + " 2>&1");
  EXPECT_NE(dotted_run.out.find(path("dotted.toml") + ":2:128:"), std::string::npos) << dotted_run.out;
}

TEST_F(Cli, EverySubcommandHasHelp) {
  for (const std::string sub :
       {"decode", "dbc", "dbc show", "dbc check", "convert", "generate", "fault-proxy", "fault-proxy ctl",
        "pki", "pki init", "pki issue", "pki revoke", "pki list", "export", "server"}) {
    const Ran r = cellguard(sub + " --help");
    EXPECT_EQ(r.exit_code, 0) << sub;
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << sub << ": " << r.out;
  }
}

TEST_F(Cli, PkiInitIssueRevokeListRoundTrip) {
  const std::string ca = path("ca");
  ASSERT_EQ(cellguard("pki init --dir " + ca + " --name 'rig CA' --days 100").exit_code, 0);
  EXPECT_NE(cellguard("pki init --dir " + ca).exit_code, 0) << "an existing CA must not be replaced silently";
  ASSERT_EQ(cellguard("pki issue --dir " + ca + " --server srv --san 127.0.0.1 --san localhost --days 30")
                .exit_code,
            0);
  ASSERT_EQ(cellguard("pki issue --dir " + ca + " --edge edge-1 --days 30").exit_code, 0);
  EXPECT_NE(cellguard("pki issue --dir " + ca + " --edge edge-1 --days 30").exit_code, 0);
  EXPECT_NE(cellguard("pki issue --dir " + ca + " --edge e2 --san 1.2.3.4").exit_code, 0)
      << "SANs are for servers";
  EXPECT_NE(cellguard("pki issue --dir " + ca + " --days 30").exit_code, 0) << "neither --server nor --edge";
  EXPECT_NE(cellguard("pki issue --dir " + ca + " --edge edge-2 --days 200").exit_code, 0)
      << "outlives the CA";
  ASSERT_EQ(cellguard("pki revoke --dir " + ca + " edge-1").exit_code, 0);
  EXPECT_NE(cellguard("pki revoke --dir " + ca + " edge-1").exit_code, 0);
  const Ran listed = cellguard("pki list --json --dir " + ca);
  ASSERT_EQ(listed.exit_code, 0);
  const auto lines = json_lines(listed.out);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["name"], "srv");
  EXPECT_EQ(lines[0]["kind"], "server");
  EXPECT_EQ(lines[0]["status"], "valid");
  EXPECT_EQ(lines[0]["subject_alt_names"], nlohmann::json({"DNS:srv", "IP:127.0.0.1", "DNS:localhost"}));
  EXPECT_EQ(lines[1]["name"], "edge-1");
  EXPECT_TRUE(lines[1]["revoked_at"].is_string());
  const Ran table = cellguard("pki list --dir " + ca);
  EXPECT_NE(table.out.find("edge-1"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("revoked"), std::string::npos) << table.out;
}

// A store filled through the library, exported by the binary as a user would.
TEST_F(Cli, ExportWritesTheRigCsvAndJsonLinesFromAStore) {
  using namespace cellguard::store;
  {
    SqliteStoreConfig config;
    config.path = sqlite_store_path(path("data"));
    config.background_compaction = false;
    auto store = open_sqlite_store(config);
    ASSERT_TRUE(store.ok()) << store.error().message;
    auto rig = cellguard::store::testing::RigStream::create({2, 1'796'119'200'000'000'000, 4});
    ASSERT_TRUE(rig.ok());
    ASSERT_TRUE((*store)->put_edge((*rig)->info("rig-1")).ok());
    std::vector<EdgeBatches> in{{"rig-1", {}}};
    for (int i = 0; i < 25; ++i) in[0].batches.push_back((*rig)->next(200'000'000));  // 5 s
    ASSERT_TRUE((*store)->put_batches(in).ok());
  }
  const Ran csv =
      cellguard("export --data " + path("data") +
                " --edge rig-1 --from 2026-12-01T10:00:00Z --to 1796119204 --utc --out " + path("out"));
  ASSERT_EQ(csv.exit_code, 0);
  const std::string file =
      path("out") +
      "/Battery-System-database/Battery-System 12-2026/log-Battery-System 01-12-2026-10-00-01.csv";
  EXPECT_EQ(csv.out, file + "\n");
  std::ifstream in(file);
  std::string header, line;
  std::getline(in, header);
  EXPECT_EQ(header.rfind("date,time,BMU01_CMA_Current,", 0), 0u) << header;
  EXPECT_NE(header.find(",BMU02_SOH,"), std::string::npos);
  EXPECT_NE(header.find(",modbus_Voltage,pcan_isCMATempVio,"), std::string::npos) << header;
  EXPECT_EQ(header.substr(header.size() - 45), "pcan_isModbusPowerViolated,warning,dangerous\r") << header;
  int rows = 0;
  while (std::getline(in, line)) {
    ++rows;
    EXPECT_EQ(line.substr(line.size() - 13), ",False,False\r") << line;
  }
  EXPECT_EQ(rows, 4);  // 10:00:01 .. 10:00:04

  const Ran jsonl = cellguard("export --data " + path("data") +
                              " --edge rig-1 --from 1796119200 --to 1796119200.5 --format jsonl");
  ASSERT_EQ(jsonl.exit_code, 0);
  const auto lines = json_lines(jsonl.out);
  ASSERT_FALSE(lines.empty());
  EXPECT_TRUE(lines[0].contains("time_ns"));
  EXPECT_NE(cellguard("export --data " + path("data") + " --edge nobody --from 0 --to 1").exit_code, 0);
  EXPECT_NE(cellguard("export --data " + path("data") + " --edge rig-1 --from tomorrow --to 1").exit_code, 0);
}

// `edge check-config` checks the devices as the service user would see them (issue 15 item 4).
TEST_F(Cli, CheckConfigWarnsAboutDevicesTheServiceUserCannotUse) {
  const fs::path dir = dir_;
  // A "serial port" only its owner may use, one anybody may use.
  const fs::path closed = dir / "ttyCLOSED";
  const fs::path open = dir / "ttyOPEN";
  std::ofstream(closed) << "";
  std::ofstream(open) << "";
  fs::permissions(closed, fs::perms::owner_read | fs::perms::owner_write);
  fs::permissions(open,
                  fs::perms::all & ~(fs::perms::owner_exec | fs::perms::group_exec | fs::perms::others_exec));
  const char* source = std::getenv("CELLGUARD_SOURCE_DIR");
  ASSERT_NE(source, nullptr);
  const std::string config = std::string(source) + "/data/edge/rig.toml";
  const std::string check = binary_ + " edge check-config " + config + " --service-user nobody";

  Ran r = run(check + " --board " + closed.string() +
              " --inverter 'tcp:127.0.0.1:502?slave=2' --can socketcan:cgnone0");
  EXPECT_EQ(r.exit_code, 0) << r.out;  // warnings, not errors: the devices may appear later
  EXPECT_NE(r.out.find("warning: board: " + closed.string() + " is -rw------- "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("nobody may not read and write it"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("warning: can: interface cgnone0 does not exist"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("warning: inverter"), std::string::npos) << "Modbus TCP has no device: " << r.out;

  r = run(check + " --board " + open.string() + " --inverter 'rtu:" + (dir / "ttyMISSING").string() +
          "?baud=19200&slave=2' --can socketcan:lo");
  EXPECT_EQ(r.out.find("warning: board"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("warning: inverter: " + (dir / "ttyMISSING").string() + " does not exist"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(r.out.find("warning: can"), std::string::npos) << "lo is up: " << r.out;
}

}  // namespace
