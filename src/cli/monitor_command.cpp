// `cellguard monitor`: a live terminal view of a CAN bus or log decoded with a DBC (monitor/monitor.h
// is the model, monitor/render.h the texts). This file is the thin front end: the bus or log, the
// terminal (raw mode through termios, plain ANSI escape sequences, the alternate screen) and keys.
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <asio.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "can/bus.h"
#include "can/log.h"
#include "cli/commands.h"
#include "dbc/codec.h"
#include "dbc/dbc.h"
#include "monitor/monitor.h"
#include "monitor/render.h"
#include "store/export.h"

namespace cellguard::cli {
namespace {

struct MonitorCliOptions {
  std::string dbc;
  std::string can;
  std::vector<std::string> filters;
  double speed = 1.0;
  bool once = false;
  std::string after;
  bool json = false;
  std::string refresh = "250ms";
  bool no_grid = false;
  std::string modules_by = "canopen";
  std::string name_pattern = "BMU{id}_";
  std::string cell_signal = "Cell_{n}_Voltage";
  std::string temperature_signal = "CMA_Temp{n}";
};

monitor::TimeNs mono_now() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
monitor::TimeNs wall_now() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int fail(const std::string& message, int code = 2) {
  std::fprintf(stderr, "cellguard monitor: %s\n", message.c_str());
  return code;
}

bool looks_like_url(const std::string& text) {
  return text.find("://") != std::string::npos || text.rfind("inproc:", 0) == 0 ||
         text.rfind("socketcan:", 0) == 0 || text.rfind("replay:", 0) == 0;
}

void print_snapshot(const monitor::Monitor& m, monitor::TimeNs now, const monitor::RenderContext& context,
                    bool json) {
  const monitor::Snapshot s = m.snapshot(now);
  if (json) {
    std::printf("%s\n", monitor::to_json(s, context).dump().c_str());
  } else {
    std::fputs(monitor::render_text(s, context).c_str(), stdout);
  }
  std::fflush(stdout);
}

// A log read as fast as it can be, with its own times: the snapshot is for its last frame.
int run_log_at_full_speed(monitor::Monitor& m, const std::string& path, monitor::RenderContext context,
                          bool json) {
  auto reader = can::open_log_reader(path);
  if (!reader) return fail(reader.error().message);
  can::Frame frame;
  std::optional<monitor::TimeNs> last;
  std::uint64_t bad = 0;
  for (;;) {
    auto next = (*reader)->next(frame);
    if (!next) {
      if (++bad <= 5) std::fprintf(stderr, "warning: %s\n", next.error().message.c_str());
      continue;
    }
    if (!*next) break;
    m.on_frame(frame, frame.timestamp_ns);
    last = last ? std::max(*last, frame.timestamp_ns) : frame.timestamp_ns;
  }
  if (!last) {
    const auto skipped = (*reader)->skipped_lines();
    return fail(path + ": no CAN frames" +
                (skipped.first.empty() ? "" : " (first line skipped: " + skipped.first + ")"));
  }
  // Logs with dates give wall-clock times; others count from the log's start (no date to show).
  if (*last > 946'684'800LL * 1'000'000'000) context.wall_time = *last;
  print_snapshot(m, *last, context, json);
  if (bad > 0)
    std::fprintf(stderr, "monitor: %llu malformed lines skipped\n", static_cast<unsigned long long>(bad));
  return 0;
}

// The terminal in raw mode on the alternate screen; restored on destruction.
class Terminal {
 public:
  Terminal() {
    if (::tcgetattr(STDIN_FILENO, &saved_) != 0) return;
    termios raw = saved_;
    raw.c_lflag &= static_cast<tcflag_t>(~(ICANON | ECHO));
    raw.c_cc[VMIN] = 1;  // with 0, a read without input returns 0, which reads as the end of input
    raw.c_cc[VTIME] = 0;
    ::tcsetattr(STDIN_FILENO, TCSANOW, &raw);
    active_ = true;
    write("\x1b[?1049h\x1b[?25l\x1b[2J");
  }
  ~Terminal() {
    if (!active_) return;
    write("\x1b[?25h\x1b[?1049l");
    ::tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
  }
  Terminal(const Terminal&) = delete;
  Terminal& operator=(const Terminal&) = delete;

  static std::pair<int, int> size() {
    winsize ws{};
    if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 && ws.ws_row > 0)
      return {ws.ws_col, ws.ws_row};
    return {80, 24};
  }
  // Redraws in place: home, each line cleared to its end, the rest of the screen cleared.
  void draw(const std::vector<std::string>& lines) {
    std::string out = "\x1b[H";
    for (std::size_t i = 0; i < lines.size(); ++i) {
      out += lines[i];
      out += "\x1b[K";
      if (i + 1 < lines.size()) out += "\r\n";
    }
    out += "\x1b[J";
    write(out);
  }

 private:
  static void write(const std::string& text) {
    std::size_t done = 0;
    while (done < text.size()) {
      const ssize_t n = ::write(STDOUT_FILENO, text.data() + done, text.size() - done);
      if (n <= 0) return;
      done += static_cast<std::size_t>(n);
    }
  }
  termios saved_{};
  bool active_ = false;
};

int run_monitor(const MonitorCliOptions& o) {
  if (o.speed < 0)
    return fail("--speed " + std::to_string(o.speed) + ": must be 0 (as fast as possible) or more");
  std::optional<std::int64_t> after_ns;
  if (!o.after.empty()) {
    auto d = store::parse_duration(o.after);
    if (!d || *d <= 0) return fail("--after " + o.after + ": expected a duration such as 5s, 500ms, 1m");
    after_ns = *d;
  }
  auto refresh = store::parse_duration(o.refresh);
  if (!refresh || *refresh < 10'000'000)
    return fail("--refresh " + o.refresh + ": expected a duration of 10ms or more");
  monitor::MonitorOptions options;
  options.filters = o.filters;
  if (o.modules_by == "name") {
    options.layout.discovery = monitor::GridLayout::Discovery::name_pattern;
  } else if (o.modules_by != "canopen") {
    return fail("--modules-by " + o.modules_by + ": canopen or name");
  }
  if (o.name_pattern.find("{id}") == std::string::npos)
    return fail("--name-pattern " + o.name_pattern + ": needs {id} where the module number stands");
  if (o.cell_signal.find("{n}") == std::string::npos)
    return fail("--cell-signal " + o.cell_signal + ": needs {n} where the cell number stands");
  if (o.temperature_signal.find("{n}") == std::string::npos)
    return fail("--temperature-signal " + o.temperature_signal +
                ": needs {n} where the sensor number stands");
  options.layout.name_pattern = o.name_pattern;
  options.layout.cell_voltage_signal = o.cell_signal;
  options.layout.temperature_signal = o.temperature_signal;

  auto parsed = dbc::load_dbc(o.dbc);
  if (!parsed) return fail(parsed.error().message);
  const dbc::DatabaseCodec codec(std::move(parsed->database));
  monitor::Monitor m(codec, options);
  monitor::RenderContext context;
  context.source = o.can;
  context.grid = !o.no_grid;

  // The source: a bus URL, or a log file replayed at its own pace (replay bus).
  std::string url = o.can;
  const bool is_log = !looks_like_url(o.can);
  if (is_log) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(o.can, ec))
      return fail("--can " + o.can +
                  ": no such log file, and not a bus URL (socketcand://HOST:PORT/CHANNEL, socketcan:IFNAME, "
                  "inproc:NAME, replay:LOG)");
    if (o.can.find('?') != std::string::npos)
      return fail("--can " + o.can + ": a log path cannot contain '?'");
    if (o.speed == 0) {
      if (!o.once)
        return fail("--speed 0 (as fast as possible) needs --once: there is nothing to watch live");
      return run_log_at_full_speed(m, o.can, context, o.json);
    }
    url = "replay:" + o.can + "?speed=" + std::to_string(o.speed);
  }
  const bool interactive = !o.once;
  if (interactive && (::isatty(STDIN_FILENO) == 0 || ::isatty(STDOUT_FILENO) == 0))
    return fail("the live view needs a terminal; use --once [--json] for a snapshot in scripts");

  asio::io_context io;
  auto bus = can::open_bus(io, url);
  if (!bus) return fail(bus.error().message);
  int exit_code = 0;
  std::string status;                       // the bus's latest problem or the end of the log, for the header
  std::optional<monitor::Snapshot> frozen;  // while paused
  std::unique_ptr<Terminal> terminal;
  asio::steady_timer redraw(io), deadline(io);

  auto snapshot_context = [&] {
    monitor::RenderContext c = context;
    c.wall_time = wall_now();
    if (!status.empty()) c.source += "  (" + status + ")";
    return c;
  };
  auto finish_once = [&] {
    print_snapshot(m, mono_now(), snapshot_context(), o.json);
    io.stop();
  };
  (*bus)->on_receive([&](const can::Frame& frame) { m.on_frame(frame, mono_now()); });
  (*bus)->on_error([&](const Error& e) {
    if (e.code == ErrorCode::end_of_input) {
      status = "end of log";
      if (o.once) finish_once();
      return;
    }
    status = e.message;
    if ((*bus)->is_closed()) {
      if (o.once) {
        exit_code = fail(e.message, 1);
        io.stop();
      }
      status = "link lost: " + e.message;
    }
  });
  if (o.once) {
    // A bus: a snapshot after --after (default 2 s); a log: at its end, or after --after if sooner.
    if (!is_log || after_ns) {
      deadline.expires_after(std::chrono::nanoseconds(after_ns.value_or(2'000'000'000)));
      deadline.async_wait([&](const asio::error_code& ec) {
        if (!ec) finish_once();
      });
    }
    io.run();
    (*bus)->close();
    return exit_code;
  }

  terminal = std::make_unique<Terminal>();
  bool paused = false;
  std::function<void()> draw = [&] {
    const auto [width, height] = Terminal::size();
    monitor::RenderContext c = snapshot_context();
    c.paused = paused;
    const monitor::Snapshot s = paused && frozen ? *frozen : m.snapshot(mono_now());
    terminal->draw(monitor::render_screen(s, c, width, height));
  };
  std::function<void()> schedule_redraw = [&] {
    redraw.expires_after(std::chrono::nanoseconds(*refresh));
    redraw.async_wait([&](const asio::error_code& ec) {
      if (ec) return;
      draw();
      schedule_redraw();
    });
  };
  asio::posix::stream_descriptor keys(io, ::dup(STDIN_FILENO));
  std::array<char, 64> key_buffer{};
  std::function<void()> read_keys = [&] {
    keys.async_read_some(asio::buffer(key_buffer), [&](const asio::error_code& ec, std::size_t n) {
      if (ec) {
        io.stop();  // the terminal went away
        return;
      }
      for (std::size_t i = 0; i < n; ++i) {
        const char k = key_buffer[i];
        if (k == 'q' || k == 'Q' || k == 3 /* Ctrl-C in raw mode without ISIG: ISIG stays on */) {
          io.stop();
          return;
        }
        if (k == 'p' || k == 'P' || k == ' ') {
          paused = !paused;
          if (paused) frozen = m.snapshot(mono_now());
          draw();
        }
      }
      read_keys();
    });
  };
  asio::signal_set signals(io, SIGINT, SIGTERM, SIGWINCH);
  std::function<void()> wait_signal = [&] {
    signals.async_wait([&](const asio::error_code& ec, int signal) {
      if (ec) return;
      if (signal == SIGWINCH) {
        draw();
        wait_signal();
        return;
      }
      io.stop();
    });
  };
  wait_signal();
  read_keys();
  draw();
  schedule_redraw();
  io.run();
  (*bus)->close();
  terminal.reset();
  return exit_code;
}

}  // namespace

void register_monitor(CLI::App& app, Action& action) {
  auto o = std::make_shared<MonitorCliOptions>();
  CLI::App* cmd = app.add_subcommand(
      "monitor",
      "Watch a CAN bus or log live, decoded with a DBC: the latest value of every signal, rates and ages, "
      "the battery modules' cells as a grid, multiplexed messages per mux value");
  cmd->footer(
      "Keys: p (or space) pauses and resumes the display (frames are still counted), q quits.\n"
      "Examples:\n"
      "  cellguard monitor --dbc data/cellguard-rig.dbc --can socketcand://127.0.0.1:29536/can0\n"
      "  cellguard monitor --dbc rig.dbc --can socketcan:can0 --filter 'BMU03_*' --filter '*Temp*'\n"
      "  cellguard monitor --dbc rig.dbc --can capture.asc --speed 10\n"
      "  cellguard monitor --dbc rig.dbc --can capture.log --once --speed 0 --json   # the log's end state");
  cmd->add_option("--dbc", o->dbc, "the DBC file that decodes the frames")->required();
  cmd->add_option(
         "--can", o->can,
         "a bus URL (socketcand://HOST:PORT/CHANNEL, socketcan:IFNAME, inproc:NAME, replay:LOG?speed=K) "
         "or a log file (candump -L, candump console, ASC, TRC; played at its own pace)")
      ->required();
  cmd->add_option("--filter", o->filters,
                  "show only messages or signals matching this glob: a message name (BMU01_*), a signal name "
                  "(Cell_*_Voltage) or message.signal; repeatable (any matches)");
  cmd->add_option(
         "--speed", o->speed,
         "a log's pace: 1 = as recorded, 10 = ten times faster, 0 = as fast as possible (with --once)")
      ->capture_default_str();
  cmd->add_flag("--once", o->once,
                "no live view: print one snapshot and exit (at the end of a log, or after --after on a bus)");
  cmd->add_option("--after", o->after,
                  "--once: the snapshot after this long (5s, 500ms; default on a bus: 2s)");
  cmd->add_flag("--json", o->json, "--once: the snapshot as one JSON object");
  cmd->add_option("--refresh", o->refresh, "live view: redraw interval")->capture_default_str();
  cmd->add_flag("--no-grid", o->no_grid, "leave out the module grid (cell voltages and temperatures)");
  cmd->add_option("--modules-by", o->modules_by,
                  "how messages map to battery modules: canopen (PDO COB-IDs 0x180/0x280/0x380/0x480 and "
                  "0x190/0x290/0x390/0x490 + node id, as the edge) or name (--name-pattern)")
      ->capture_default_str();
  cmd->add_option("--name-pattern", o->name_pattern, "--modules-by name: message names, {id} = module number")
      ->capture_default_str();
  cmd->add_option("--cell-signal", o->cell_signal, "cell voltage signals of a module, {n} = cell number")
      ->capture_default_str();
  cmd->add_option("--temperature-signal", o->temperature_signal,
                  "temperature signals of a module, {n} = sensor number")
      ->capture_default_str();
  cmd->callback([o, &action] { action = [o] { return run_monitor(*o); }; });
}

}  // namespace cellguard::cli
