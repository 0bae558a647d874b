// `cellguard convert`: copies the frames of a CAN log into another log format.
#include <cstdio>
#include <memory>
#include <string>

#include "can/log.h"
#include "cli/commands.h"
#include "cli/output.h"

namespace cellguard::cli {
namespace {

struct ConvertOptions {
  std::string input;
  std::string output;
  std::string from;
  std::string to;
};

int run_convert(const ConvertOptions& o) {
  std::optional<can::LogFormat> from;
  if (!o.from.empty()) {
    from = can::parse_log_format(o.from);
    if (!from) {
      std::fprintf(stderr, "cellguard convert: unknown input format '%s'\n", o.from.c_str());
      return 2;
    }
  }
  std::optional<can::LogFormat> to =
      o.to.empty() ? can::log_format_from_extension(o.output) : can::parse_log_format(o.to);
  if (!to) {
    std::fprintf(stderr,
                 "cellguard convert: cannot tell the output format of '%s': give --to candump-log|asc|trc\n",
                 o.output.c_str());
    return 2;
  }
  auto reader = can::open_log_reader(o.input, from);
  if (!reader) {
    std::fprintf(stderr, "cellguard convert: %s\n", reader.error().message.c_str());
    return 2;
  }
  auto output = LogOutput::open(o.output, *to);
  if (!output) {
    std::fprintf(stderr, "cellguard convert: %s\n", output.error().message.c_str());
    return 2;
  }
  can::LogWriter& writer = (*output)->writer();
  can::Frame frame;
  std::uint64_t frames = 0;
  std::uint64_t bad_lines = 0;
  while (true) {
    auto next = (*reader)->next(frame);
    if (!next) {
      ++bad_lines;
      std::fprintf(stderr, "warning: %s\n", next.error().message.c_str());
      continue;
    }
    if (!*next) break;
    if (auto written = writer.write(frame); !written) {
      std::fprintf(stderr, "cellguard convert: %s\n", written.error().message.c_str());
      return 1;
    }
    ++frames;
  }
  if (auto finished = writer.finish(); !finished) {
    std::fprintf(stderr, "cellguard convert: %s\n", finished.error().message.c_str());
    return 1;
  }
  std::fprintf(stderr, "convert: %llu frames written as %s, %llu malformed lines skipped\n",
               static_cast<unsigned long long>(frames), std::string(can::to_string(*to)).c_str(),
               static_cast<unsigned long long>(bad_lines));
  return 0;
}

}  // namespace

void register_convert(CLI::App& app, Action& action) {
  auto o = std::make_shared<ConvertOptions>();
  CLI::App* cmd = app.add_subcommand("convert", "Convert a CAN log between formats (candump -L, ASC, TRC)");
  cmd->add_option("input", o->input, "input log, or - for standard input")->required();
  cmd->add_option("output", o->output, "output log, or - for standard output")->required();
  cmd->add_option("--from", o->from, "input format (default: detect)");
  cmd->add_option("--to", o->to, "output format: candump-log, asc or trc (default: from the extension)");
  cmd->callback([o, &action] { action = [o] { return run_convert(*o); }; });
}

}  // namespace cellguard::cli
