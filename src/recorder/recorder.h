// Durable local recording on the edge: every CAN frame, every non-CAN reading (board, inverter) and
// every event, in one SQLite file, crash-safe and bounded, readable by the uplink while it grows.
//
// Why frames and not decoded values: a frame holds all its decoded signals exactly, is ~8x smaller
// than one row per signal, and the DBC text is stored with the recording, so any reader decodes it
// the same way. Non-CAN readings are samples (channel id, value); channels are named in a table.
//
// Layout (SQLite, WAL journal, `PRAGMA user_version` = format version):
//   meta(key TEXT PRIMARY KEY, value BLOB)          e.g. "dbc" (text), "config_sha256", "edge_id"
//   channels(id INTEGER PRIMARY KEY, name TEXT UNIQUE, unit TEXT)
//   blocks(seq INTEGER PRIMARY KEY, first_ns INTEGER, last_ns INTEGER, records INTEGER, data BLOB)
//     data = zstd of the block's records in the binary layout documented in recorder.cpp
//     lost = records dropped from the block by the bounds before it was delivered (its events stay)
//   cursors(name TEXT PRIMARY KEY, seq INTEGER)     readers' progress
//   delivered(first INTEGER PRIMARY KEY, last INTEGER)  seq ranges the server acknowledged (uplink)
//
// Writing: record_*() only append to an in-memory queue (bounded; never blocks the caller; a full
// queue drops and counts). A writer thread cuts a block every commit_interval (or max_block_records),
// compresses it and commits it in its own transaction. A block is "acknowledged by the storage
// layer" when its commit returned: kill -9 loses at most the uncommitted tail and never corrupts
// what is committed (SQLite WAL, synchronous=FULL by default).
// Bounds: after each commit, the oldest blocks are deleted while the file exceeds max_bytes or a
// block is older than max_age. With `keep_undelivered_events` (the edge with an uplink), a block the
// server has not acknowledged is not deleted but stripped to its events: the frames and samples go
// (oldest first, counted in `lost` and in the stats), events and state changes are kept until delivered.
// Thread safety: record_*() and stats() from any thread; open/close from one.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "can/frame.h"
#include "core/result.h"
#include "core/time.h"

namespace cellguard::recorder {

using TimeNs = std::int64_t;  // ns since the Unix epoch (wall clock) in records

inline constexpr int kFormatVersion = 2;  // 1 is migrated on open

struct RecorderConfig {
  std::string path;                                        // the SQLite file; its folder is created
  std::uint64_t max_bytes = 1ull << 30;                    // 1 GiB
  TimeNs max_age_ns = 30LL * 24 * 3600 * 1'000'000'000LL;  // 30 days; 0 = no age bound
  TimeNs commit_interval_ns = 200'000'000;                 // a block at least this often while records arrive
  std::size_t max_block_records = 20'000;
  std::size_t queue_capacity = 1u << 18;  // records waiting for the writer
  bool synchronous_full = true;           // fsync on every commit (power-loss safe)
  int zstd_level = 3;
  bool keep_undelivered_events = false;  // see "Bounds" above
  const Clock* clock = &system_clock();  // the age bound's "now" (wall clock); never null
};

struct SampleRecord {
  TimeNs time_ns = 0;
  std::uint32_t channel = 0;
  double value = 0;
};

struct EventRecord {
  TimeNs time_ns = 0;
  std::string kind;  // "state", "action", "module", "link", "limit", ...
  std::string json;  // the event as one JSON object
};

struct Block {
  std::uint64_t seq = 0;
  TimeNs first_ns = 0;
  TimeNs last_ns = 0;
  std::uint64_t lost_records = 0;  // dropped by the bounds before delivery (frames, samples)
  std::vector<can::Frame> frames;  // timestamp_ns, id, flags, payload, bus name
  std::vector<SampleRecord> samples;
  std::vector<EventRecord> events;
};

struct RecorderStats {
  std::uint64_t records_queued = 0;  // accepted by record_*()
  std::uint64_t records_committed = 0;
  std::uint64_t records_dropped = 0;  // queue full or write failure
  std::uint64_t blocks_committed = 0;
  std::uint64_t blocks_deleted = 0;  // by the size/age bounds
  std::uint64_t records_lost = 0;    // undelivered frames and samples stripped by the bounds
  std::uint64_t file_bytes = 0;
  std::uint64_t last_seq = 0;
  TimeNs last_commit_duration_ns = 0;
  std::string last_error;    // empty when healthy
  TimeNs writer_cpu_ns = 0;  // CPU time the writer thread used so far (benchmarks)
};

struct ChannelInfo {
  std::uint32_t id = 0;
  std::string name;
  std::string unit;
};

class Recorder {
 public:
  // Opens or creates the recording (an existing file of another format version is refused) and
  // starts the writer thread. Errors name the path and the cause.
  static Result<std::unique_ptr<Recorder>> open(RecorderConfig config);
  ~Recorder();  // close()
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;

  // Setup (blocking, before or while recording): a channel id stable by name across restarts.
  Result<std::uint32_t> channel(std::string_view name, std::string_view unit);
  Result<void> set_meta(std::string_view key, std::string_view value);

  // Hot path: never block; false when the record was dropped (queue full or closed).
  bool record_frame(const can::Frame& frame);
  bool record_sample(TimeNs time_ns, std::uint32_t channel, double value);
  bool record_event(TimeNs time_ns, std::string_view kind, std::string_view json);

  // Blocks until everything queued before the call is committed (shutdown, tests).
  Result<void> flush();
  void close();
  RecorderStats stats() const;

 private:
  struct Impl;
  explicit Recorder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Read side, for the uplink and for tools: a separate read-only connection, safe while a Recorder
// writes the same file. Cursors are the only thing it writes.
class RecordingReader {
 public:
  static Result<RecordingReader> open(const std::string& path);
  // For tools that only read (export): a read-only connection; set_cursor() and add_delivered()
  // fail on it. Reads while an edge writes (WAL). A file that is not a recording is refused.
  static Result<RecordingReader> open_read_only(const std::string& path);
  RecordingReader(RecordingReader&&) noexcept;
  RecordingReader& operator=(RecordingReader&&) noexcept;
  ~RecordingReader();

  // Blocks with seq > after_seq, oldest first, at most max_blocks. Corrupt blocks are an error
  // naming their seq (never silently skipped).
  Result<std::vector<Block>> read_after(std::uint64_t after_seq, std::size_t max_blocks);
  Result<std::optional<Block>> read_block(std::uint64_t seq);  // none if not stored (deleted)
  Result<std::vector<ChannelInfo>> channels();
  Result<std::optional<std::string>> meta(std::string_view key);
  Result<std::uint64_t> cursor(std::string_view name);  // 0 if never set
  Result<void> set_cursor(std::string_view name, std::uint64_t seq);
  // Blocks whose time range [first_ns, last_ns] meets [from_ns, to_ns], seq > after_seq, oldest
  // first, at most max_blocks (page through with the last seq returned).
  Result<std::vector<Block>> read_overlapping(TimeNs from_ns, TimeNs to_ns, std::uint64_t after_seq,
                                              std::size_t max_blocks);
  // The earliest first_ns and latest last_ns of the stored blocks; none if there is no block.
  Result<std::optional<std::pair<TimeNs, TimeNs>>> time_range();
  Result<std::uint64_t> first_seq();  // 0 if empty
  Result<std::uint64_t> last_seq();

  // Delivery bookkeeping of the uplink: seq ranges the server acknowledged (merged, sorted), and
  // adding to them. A delivered block may be deleted by the bounds; an undelivered one is only
  // stripped to its events (see Recorder).
  Result<std::vector<std::pair<std::uint64_t, std::uint64_t>>> delivered();
  Result<void> add_delivered(const std::vector<std::pair<std::uint64_t, std::uint64_t>>& ranges);
  // Seqs of stored blocks not yet delivered, ascending, at most `max` of them, seq > after.
  Result<std::vector<std::uint64_t>> undelivered(std::uint64_t after, std::size_t max);
  // Total records the bounds stripped from undelivered blocks.
  Result<std::uint64_t> lost_records();

 private:
  struct Impl;
  explicit RecordingReader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cellguard::recorder
