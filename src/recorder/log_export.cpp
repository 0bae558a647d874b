#include "recorder/log_export.h"

namespace cellguard::recorder {

Result<LogExportStats> export_frames(RecordingReader& reader, TimeNs from_ns, TimeNs to_ns,
                                     can::LogWriter& writer) {
  constexpr std::size_t kPage = 16;  // blocks per query: a few MiB at most
  LogExportStats stats;
  std::uint64_t after = 0;
  for (;;) {
    auto blocks = reader.read_overlapping(from_ns, to_ns, after, kPage);
    if (!blocks) return blocks.error();
    if (blocks->empty()) break;
    for (const Block& block : *blocks) {
      after = block.seq;
      ++stats.blocks;
      stats.lost_records += block.lost_records;
      for (const can::Frame& frame : block.frames) {
        if (frame.timestamp_ns < from_ns || frame.timestamp_ns > to_ns) continue;
        if (auto r = writer.write(frame); !r) {
          return Error(r.error().code, "frame " + std::to_string(stats.frames + 1) +
                                           " of the window (block " + std::to_string(block.seq) +
                                           "): " + r.error().message);
        }
        if (stats.frames == 0) stats.first_ns = frame.timestamp_ns;
        stats.last_ns = frame.timestamp_ns;
        ++stats.frames;
      }
    }
  }
  if (auto r = writer.finish(); !r) return r.error();
  return stats;
}

}  // namespace cellguard::recorder
