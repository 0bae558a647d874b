// `cellguard encode`: one frame from signal values, printed as a candump -L line or sent on a bus.
#include <asio.hpp>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "can/bus.h"
#include "can/log.h"
#include "cli/commands.h"
#include "dbc/codec.h"
#include "dbc/dbc.h"
#include "dbc/encoder.h"

namespace cellguard::cli {
namespace {

struct EncodeOptions {
  std::string dbc_path;
  std::string message;
  std::vector<std::string> assignments;
  std::string send_url;
  std::string interface_name = "can0";
  bool no_limits = false;
  bool quiet = false;
  int timeout_s = 5;
};

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The smallest CAN FD payload length that holds `bytes` (FD has 0..8, 12, 16, 20, 24, 32, 48, 64).
std::size_t fd_length(std::size_t bytes) {
  for (const std::size_t n : {8, 12, 16, 20, 24, 32, 48, 64}) {
    if (bytes <= n) return bytes <= 8 ? bytes : n;
  }
  return bytes;
}

// Sends one frame and waits until the bus is ready and has had the chance to write it out.
int send_frame(const std::string& url, const can::Frame& frame, int timeout_s) {
  asio::io_context io;
  auto bus = can::open_bus(io, url);
  if (!bus) {
    std::fprintf(stderr, "cellguard encode: %s\n", bus.error().message.c_str());
    return 2;
  }
  int code = 1;
  std::string failure = "no connection within " + std::to_string(timeout_s) + " s";
  asio::steady_timer timer(io, std::chrono::seconds(timeout_s));
  timer.async_wait([&](const asio::error_code& ec) {
    if (!ec) (*bus)->close();
  });
  (*bus)->on_error([&](const Error& e) {
    if (e.code == ErrorCode::end_of_input) return;  // a replay log ended: it takes no frames anyway
    failure = e.message;
    code = 1;
    timer.cancel();
    (*bus)->close();
  });
  (*bus)->on_ready([&] {
    if (auto sent = (*bus)->send(frame); !sent) {
      failure = sent.error().message;
      timer.cancel();
      (*bus)->close();
      return;
    }
    code = 0;
    // send() only queues: a moment for the transport to write it before the bus closes.
    timer.cancel();
    timer.expires_after(std::chrono::milliseconds(100));
    timer.async_wait([&](const asio::error_code& ec) {
      if (!ec) (*bus)->close();
    });
  });
  io.run();
  if (code != 0) {
    std::fprintf(stderr, "cellguard encode: sending on %s failed: %s\n", url.c_str(), failure.c_str());
    return 1;
  }
  return 0;
}

int run_encode(const EncodeOptions& options) {
  auto parsed = dbc::load_dbc(options.dbc_path);
  if (!parsed) {
    std::fprintf(stderr, "cellguard encode: %s\n", parsed.error().message.c_str());
    return 2;
  }
  if (!options.quiet) {
    for (const auto& w : parsed->warnings) std::fprintf(stderr, "warning: %s\n", w.message.c_str());
  }
  const dbc::DatabaseCodec codec(std::move(parsed->database));
  auto message = dbc::find_message_for_encoding(codec, options.message);
  if (!message) {
    std::fprintf(stderr, "cellguard encode: %s: %s\n", options.dbc_path.c_str(),
                 message.error().message.c_str());
    return 2;
  }
  dbc::EncodeOptions encode_options;
  encode_options.check_limits = !options.no_limits;
  // Arguments count from 1 after MESSAGE, as a person reads the command line.
  auto encoded = dbc::encode_assignments(codec.database(), **message, options.assignments, encode_options, 1);
  if (!encoded) {
    std::fprintf(stderr, "cellguard encode: %s\n", encoded.error().message.c_str());
    return 1;
  }
  if (!options.quiet && !encoded->defaulted.empty()) {
    std::string names;
    for (const auto& n : encoded->defaulted) names += (names.empty() ? "" : ", ") + n;
    std::fprintf(stderr, "note: not given, sent as raw 0 or their start value: %s\n", names.c_str());
  }
  can::Frame frame;
  frame.timestamp_ns = now_ns();
  frame.id = encoded->id;
  frame.extended = encoded->extended;
  frame.fd = encoded->fd;
  frame.bus.assign(options.interface_name);
  std::vector<std::uint8_t> payload = encoded->payload;
  if (frame.fd) payload.resize(fd_length(payload.size()), 0);
  frame.set_payload(payload);
  if (auto valid = can::validate_frame(frame); !valid) {
    std::fprintf(stderr, "cellguard encode: %s: %s\n", (**message).message().name.c_str(),
                 valid.error().message.c_str());
    return 1;
  }

  std::ostringstream line;
  auto writer = can::make_log_writer(can::LogFormat::candump_log, line);
  if (!writer || !(*writer)->write(frame) || !(*writer)->finish()) {
    std::fprintf(stderr, "cellguard encode: cannot format the frame\n");
    return 1;
  }
  std::fputs(line.str().c_str(), stdout);
  std::fflush(stdout);
  if (options.send_url.empty()) return 0;
  return send_frame(options.send_url, frame, options.timeout_s);
}

}  // namespace

void register_encode(CLI::App& app, Action& action) {
  auto options = std::make_shared<EncodeOptions>();
  CLI::App* cmd = app.add_subcommand("encode", "Build one CAN frame from signal values (a candump -L line)");
  cmd->footer(
      "Values: numbers (3.65, -12.5, 1e3, 0x1F for integer signals), value-table names "
      "(CMA_Status=Charging),\n"
      "nan/inf for float signals. Each value is checked against the signal's raw bits and its DBC range\n"
      "[minimum|maximum] (unless [0|0] or --no-limits). A multiplexed message needs its multiplexer's "
      "value,\n"
      "and only the signals that value selects. Signals not given are sent as raw 0 (or GenSigStartValue).\n"
      "Exit codes: 0 sent/printed, 1 a bad value or a failed send, 2 a bad DBC, message or bus URL.\n"
      "Examples:\n"
      "  cellguard encode --dbc rig.dbc BMU01_pdo1 CMA_Current=-12.3 CMA_Voltage=47.3\n"
      "  cellguard encode --dbc rig.dbc 0x281 CMA_Status=Charging SOC=80 --send "
      "socketcand://127.0.0.1:29536/can0");
  cmd->add_option("--dbc", options->dbc_path, "DBC file")->required()->check(CLI::ExistingFile);
  cmd->add_option("message", options->message, "message name, or its id (0x181, 385)")->required();
  cmd->add_option("values", options->assignments, "SIGNAL=VALUE (or MESSAGE.SIGNAL=VALUE), one per signal");
  cmd->add_option("--send", options->send_url,
                  "also send the frame on this bus: socketcand://HOST:PORT/CHANNEL or socketcan:IFNAME");
  cmd->add_option("--interface", options->interface_name, "interface name written in the candump line")
      ->capture_default_str();
  cmd->add_option("--timeout", options->timeout_s, "seconds to wait for the bus with --send")
      ->check(CLI::Range(1, 600))
      ->capture_default_str();
  cmd->add_flag("--no-limits", options->no_limits, "accept values outside the DBC's [minimum|maximum]");
  cmd->add_flag("-q,--quiet", options->quiet, "no warnings or notes on stderr");
  cmd->callback([options, &action] { action = [options] { return run_encode(*options); }; });
}

}  // namespace cellguard::cli
