// `cellguard monitor` as a user sees it: the live view driven in a pseudo-terminal (forkpty) against a
// log played at its own pace — the screen shows the decoded values and the module grid, `p` freezes
// it, `q` quits and restores the terminal — and the `--once` snapshot for scripts (text and JSON)
// checked against `cellguard decode` of the same log.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "support/cellguard_process.h"
#include "support/child_process.h"

namespace cellguard {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

struct Ran {
  int exit_code = -1;
  std::string out;
};

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

// A child process on a pseudo-terminal of 160 x 60.
class PtyChild {
 public:
  explicit PtyChild(std::vector<std::string> args) {
    winsize ws{};
    ws.ws_col = 160;
    ws.ws_row = 60;
    pid_ = ::forkpty(&master_, nullptr, nullptr, &ws);
    if (pid_ == 0) {
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
  }
  ~PtyChild() {
    if (pid_ > 0 && !exited_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (master_ >= 0) ::close(master_);
  }
  bool started() const { return pid_ > 0 && master_ >= 0; }

  // Reads output until `done(output so far)` or the timeout; true if done.
  template <typename Done>
  bool read_until(Done done, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done(output_)) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{master_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(std::min<long>(left.count(), 100))) <= 0) continue;
      char buf[8192];
      const ssize_t n = ::read(master_, buf, sizeof buf);
      if (n <= 0) return done(output_);  // EIO: the child closed the terminal
      output_.append(buf, static_cast<std::size_t>(n));
    }
    return true;
  }
  void type(char key) { ASSERT_EQ(::write(master_, &key, 1), 1); }
  // The exit code once it exits within the timeout, else -1.
  int wait_exit(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      read_until([](const std::string&) { return false; }, 50ms);  // drain, so the child never blocks
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        exited_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
    }
    return -1;
  }
  const std::string& output() const { return output_; }
  std::size_t size() const { return output_.size(); }

 private:
  pid_t pid_ = -1;
  int master_ = -1;
  bool exited_ = false;
  std::string output_;
};

// The screens drawn so far: each redraw starts at "ESC [ H"; escape sequences removed, lines split.
std::vector<std::vector<std::string>> screens(const std::string& output, std::size_t from = 0) {
  std::vector<std::vector<std::string>> result;
  static const std::regex csi("\x1b\\[[0-9;?]*[A-Za-z]");
  std::size_t at = output.find("\x1b[H", from);
  while (at != std::string::npos) {
    const std::size_t next = output.find("\x1b[H", at + 3);
    // Only complete screens: the next redraw has begun, or this one ended with "clear to end".
    const std::string raw = output.substr(at, next == std::string::npos ? std::string::npos : next - at);
    if (next == std::string::npos && raw.find("\x1b[J") == std::string::npos) break;
    const std::string text = std::regex_replace(raw, csi, "");
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      lines.push_back(line);
    }
    result.push_back(std::move(lines));
    at = next;
  }
  return result;
}

std::string joined(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l + "\n";
  return s;
}

// "1234 frames (...)" of a screen's second line.
long frames_on(const std::vector<std::string>& screen) {
  if (screen.size() < 2) return -1;
  return std::strtol(screen[1].c_str(), nullptr, 10);
}

class Monitor : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cellguard-monitor-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    dbc_ = (testing::source_dir() / "data/cellguard-rig.dbc").string();
    log_ = (dir_ / "rig.log").string();
    // 3 modules, SYNC at 10 Hz, 60 s: plays longer than any test runs.
    const Ran g = cellguard("generate --dbc " + dbc_ + " --modules 3 --seconds 60 -o " + log_ + " 2>&1");
    ASSERT_EQ(g.exit_code, 0) << g.out;
  }
  void TearDown() override { fs::remove_all(dir_); }
  Ran cellguard(const std::string& args) const { return run(testing::binary() + " " + args); }

  fs::path dir_;
  std::string dbc_, log_;
};

TEST_F(Monitor, LiveViewInAPseudoTerminalShowsValuesPausesAndQuits) {
  PtyChild child({testing::binary(), "monitor", "--dbc", dbc_, "--can", log_, "--filter", "BMU02_pdo1",
                  "--refresh", "100ms"});
  ASSERT_TRUE(child.started());
  // The alternate screen, then a screen with module 2's message, its values and the grid.
  auto shows_values = [](const std::string& out) {
    const auto all = screens(out);
    if (all.empty()) return false;
    const std::string s = joined(all.back());
    return s.find("BMU02_pdo1  0x182  ") != std::string::npos &&
           s.find("CMA_Voltage=") != std::string::npos && s.find("cell voltages (V)") != std::string::npos &&
           frames_on(all.back()) > 50;
  };
  ASSERT_TRUE(child.read_until(shows_values, 15s)) << child.output();
  EXPECT_NE(child.output().find("\x1b[?1049h"), std::string::npos) << "alternate screen";
  {
    const auto screen = screens(child.output()).back();
    const std::string s = joined(screen);
    EXPECT_EQ(screen.size(), 60u) << s;
    for (const auto& line : screen) EXPECT_LE(line.size(), 160u) << line;
    // A SYNC-driven PDO at 10 Hz (the replay's timers add a little jitter).
    EXPECT_TRUE(std::regex_search(s, std::regex("BMU02_pdo1  0x182  (9\\.[5-9]|10\\.[0-4])/s"))) << s;
    EXPECT_EQ(s.find("BMU01_pdo1"), std::string::npos) << "filtered out\n" << s;
    EXPECT_TRUE(std::regex_search(s, std::regex("\n +2  3\\.[0-9]{2}  3\\.[0-9]{2}"))) << "module 2's cells\n"
                                                                                       << s;
    EXPECT_TRUE(std::regex_search(s, std::regex("CMA_Voltage=4[0-9]\\.[0-9]{2} V"))) << s;
    EXPECT_NE(screen.back().find("[p] pause  [q] quit"), std::string::npos) << s;
  }

  // p: the display freezes (the same frame count on later redraws) and says PAUSED.
  child.type('p');
  ASSERT_TRUE(child.read_until(
      [](const std::string& out) {
        const auto all = screens(out);
        return !all.empty() && all.back()[0].find("PAUSED") != std::string::npos;
      },
      5s))
      << child.output();
  const long frozen = frames_on(screens(child.output()).back());
  const std::size_t mark = child.size();
  ASSERT_TRUE(child.read_until([&](const std::string& out) { return screens(out, mark).size() >= 4; }, 5s));
  for (const auto& screen : screens(child.output(), mark)) {
    EXPECT_NE(screen[0].find("PAUSED"), std::string::npos);
    EXPECT_EQ(frames_on(screen), frozen) << "paused screens do not change";
  }

  // p again: live again, the count moves on.
  child.type('p');
  ASSERT_TRUE(child.read_until(
      [&](const std::string& out) {
        const auto all = screens(out);
        return !all.empty() && all.back()[0].find("PAUSED") == std::string::npos &&
               frames_on(all.back()) > frozen;
      },
      5s))
      << child.output();

  // q: exits at once with 0 and restores the terminal (cursor shown, main screen back).
  child.type('q');
  EXPECT_EQ(child.wait_exit(5s), 0) << child.output();
  EXPECT_NE(child.output().find("\x1b[?25h\x1b[?1049l"), std::string::npos);
}

TEST_F(Monitor, OnceAtTheEndOfALogMatchesDecode) {
  const Ran r = cellguard("monitor --dbc " + dbc_ + " --can " + log_ + " --once --speed 0 --json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["frames"], 600 * 25);  // 600 SYNC cycles of 1 + 3 x 8 frames
  // The last BMU03_pdo1 of the log, decoded by `cellguard decode`, is what the snapshot shows.
  const Ran d = cellguard("decode --known-only --dbc " + dbc_ + " " + log_ + " | grep BMU03_pdo1 | tail -1");
  ASSERT_EQ(d.exit_code, 0);
  const auto last = nlohmann::json::parse(d.out);
  const nlohmann::json* message = nullptr;
  for (const auto& m : j["messages"])
    if (m["name"] == "BMU03_pdo1") message = &m;
  ASSERT_NE(message, nullptr) << r.out;
  EXPECT_EQ((*message)["frames"], 600);
  EXPECT_NEAR((*message)["rate_hz"].get<double>(), 10.0, 1e-6);
  for (const auto& [name, value] : last["signals"].items())
    EXPECT_NEAR((*message)["signals"][name]["value"].get<double>(), value.get<double>(), 1e-9) << name;
  ASSERT_EQ(j["modules"].size(), 3u);
  EXPECT_EQ(j["modules"][2]["module"], 3);
  EXPECT_NEAR(j["modules"][2]["voltage"].get<double>(), last["signals"]["CMA_Voltage"].get<double>(), 1e-9);
  EXPECT_EQ(j["modules"][2]["cell_voltages"].size(), 14u);
}

TEST_F(Monitor, OnceOnAPacedLogAfterADuration) {
  const auto start = std::chrono::steady_clock::now();
  const Ran r = cellguard("monitor --dbc " + dbc_ + " --can " + log_ + " --once --after 1s --filter SYNC");
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_LT(took, 5s);
  EXPECT_NE(r.out.find("cellguard monitor  " + log_), std::string::npos) << r.out;
  EXPECT_TRUE(std::regex_search(
      r.out, std::regex("\nSYNC  0x080  (9|10|11)\\.[0-9]/s  age [0-9]+ ms  (9|10|11) frames\n")))
      << "about 1 s of the log at its own pace\n"
      << r.out;
}

TEST_F(Monitor, OnceOnTheSimulatorsBusOverSocketcand) {
  // Two simulated modules sending their PDOs every 100 ms without SYNC (nobody sends SYNC here).
  testing::ChildProcess sim({testing::binary(), "sim", "--modules", "2", "--cells", "12", "--cyclic-ms",
                             "100", "--no-board", "--no-inverter", "--control", (dir_ / "sim.sock").string()},
                            (dir_ / "sim.log").string());
  ASSERT_TRUE(sim.ready()) << sim.log();
  const std::string url = sim.ready_line()["can"];
  const Ran r = cellguard("monitor --dbc " + dbc_ + " --can " + url + " --once --after 1500ms --json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["source"], url);
  ASSERT_EQ(j["modules"].size(), 2u) << r.out;
  for (int i = 0; i < 2; ++i) {
    const auto& m = j["modules"][static_cast<std::size_t>(i)];
    EXPECT_EQ(m["module"], i + 1);
    ASSERT_GE(m["cell_voltages"].size(), 12u) << m;
    for (std::size_t cell = 0; cell < 12; ++cell) {
      ASSERT_TRUE(m["cell_voltages"][cell].is_number()) << m;
      EXPECT_GT(m["cell_voltages"][cell].get<double>(), 2.5);
      EXPECT_LT(m["cell_voltages"][cell].get<double>(), 4.3);
    }
    EXPECT_LT(m["age_s"].get<double>(), 0.5);
  }
  bool found = false;
  for (const auto& m : j["messages"]) {
    if (m["name"] != "BMU02_pdo1") continue;
    found = true;
    EXPECT_NEAR(m["rate_hz"].get<double>(), 10.0, 1.5) << m;
    EXPECT_TRUE(m["signals"]["CMA_Voltage"]["value"].is_number()) << m;
  }
  EXPECT_TRUE(found) << r.out;
}

TEST_F(Monitor, BadInputIsRefusedWithThePlaceAndTheCause) {
  struct Case {
    std::string args, message;
  };
  std::ofstream(dir_ / "notes.txt") << "hello\n";
  const std::vector<Case> cases = {
      {"--dbc " + dbc_ + " --can " + (dir_ / "notes.txt").string() + " --once",
       "notes.txt: cannot recognise the log format"},
      {"--dbc " + dbc_ + " --can " + (dir_ / "none.log").string() + " --once",
       "--can " + (dir_ / "none.log").string() + ": no such log file, and not a bus URL"},
      {"--dbc " + (dir_ / "none.dbc").string() + " --can " + log_ + " --once", "none.dbc"},
      {"--dbc " + dbc_ + " --can " + log_ + " --once --after soon", "--after soon: expected a duration"},
      {"--dbc " + dbc_ + " --can " + log_ + " --speed 0", "--speed 0 (as fast as possible) needs --once"},
      {"--dbc " + dbc_ + " --can " + log_, "the live view needs a terminal; use --once"},
      {"--dbc " + dbc_ + " --can bogus://x --once", "bogus"},
      {"--dbc " + dbc_ + " --can " + log_ + " --once --modules-by slot",
       "--modules-by slot: canopen or name"},
  };
  for (const Case& c : cases) {
    const Ran r = cellguard("monitor " + c.args + " 2>&1 < /dev/null");
    EXPECT_NE(r.exit_code, 0) << c.args << "\n" << r.out;
    EXPECT_NE(r.out.find("cellguard monitor: "), std::string::npos) << c.args << "\n" << r.out;
    EXPECT_NE(r.out.find(c.message), std::string::npos) << c.args << "\n" << r.out;
  }
  // A socketcand server that is not there: a located error, exit 1, well before --after.
  const Ran r =
      cellguard("monitor --dbc " + dbc_ + " --can socketcand://127.0.0.1:1/can0 --once --after 10s 2>&1");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("cellguard monitor: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("127.0.0.1:1"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace cellguard
