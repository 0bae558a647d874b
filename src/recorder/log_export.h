// Raw CAN logs out of a recording: the frames of a time window, written in a log format of
// can/log.h (candump -L, ASC, TRC), as `cellguard recording export` does. Reads through a
// RecordingReader (open it read-only: works while the edge writes), one page of blocks at a time, so
// memory stays bounded whatever the window.
#pragma once

#include <cstdint>

#include "can/log.h"
#include "core/result.h"
#include "recorder/recorder.h"

namespace cellguard::recorder {

struct LogExportStats {
  std::uint64_t frames = 0;          // written
  std::uint64_t blocks = 0;          // blocks that met the window
  std::uint64_t lost_records = 0;    // frames and samples of those blocks the bounds stripped before delivery
  TimeNs first_ns = 0, last_ns = 0;  // of the frames written (0 if none)
};

// Writes every frame with from_ns <= time <= to_ns, in recorded order, then finishes the writer.
Result<LogExportStats> export_frames(RecordingReader& reader, TimeNs from_ns, TimeNs to_ns,
                                     can::LogWriter& writer);

}  // namespace cellguard::recorder
