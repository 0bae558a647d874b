// The server's storage: sample batches and events from many edges, durable, idempotent and small.
//
// Nothing above this interface knows the backend: the server and the tools code against `Store`;
// open_sqlite_store() gives the SQLite backend (a PostgreSQL one comes next).
//
// Data model:
//  - an edge is named by its id and has a channel catalogue (put_edge on every hello);
//  - samples arrive as SeriesBatch row groups: channels sampled at the same instants (one CAN
//    message's signals), values row-major, NaN = the channel has no value in that row;
//  - every Batch carries the edge's sequence number; a stored (edge, seq) is never stored again
//    (duplicates are counted and skipped), even after retention deleted its data.
//
// Values: every non-NaN double is stored and returned bit for bit (-0.0, ±inf, denormals); any NaN
// means "absent" and is returned as a quiet NaN (its payload is not kept).
//
// Thread safety: every method may be called from any thread. Writes (put_edge, put_batches,
// apply_retention, compact) are serialized inside; the server is expected to call them from one writer
// thread. Queries run concurrently with writes (they see the last committed state).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "core/time.h"

namespace cellguard::store {

using TimeNs = std::int64_t;  // ns since the Unix epoch

struct Channel {
  std::uint32_t id = 0;  // the edge's channel id, unique per edge
  std::string name;      // e.g. "BMU03_pdo3.Cell_5_Voltage", "board.temp1_c", "safety.state"
  std::string unit;
  int module = 0;          // 0 = not a module's channel
  std::string rig_column;  // column in the rig's CSV layout ("BMU03_Cell_5_Voltage", "Ardu_Temp1",
                           // "modbus_Power"); empty = not in the rig CSV
  bool integral = false;   // the rig CSV writes its values as integers (a DBC signal with integral
                           // scale and offset); otherwise as doubles ("25.0")
};

struct EdgeInfo {
  std::string edge_id;
  std::string software_version;
  std::string config_sha256;
  std::string dbc_sha256;
  std::vector<Channel> channels;
};

// Channels sampled at the same instants. values.size() == times_ns.size() * channels.size().
struct SeriesBatch {
  std::vector<std::uint32_t> channels;
  std::vector<TimeNs> times_ns;
  std::vector<double> values;  // values[row * channels.size() + column]; NaN = absent
};

struct Event {
  TimeNs time_ns = 0;
  std::string kind;  // "state", "action", "module", "link", "limit", ...
  std::string json;  // the event as one JSON object
};

struct Batch {
  std::uint64_t seq = 0;
  std::vector<SeriesBatch> series;
  std::vector<Event> events;
  std::uint64_t lost_records = 0;  // records the edge had to drop from this batch (backlog overflow)
};

struct EdgeBatches {
  std::string edge_id;
  std::vector<Batch> batches;
};

struct PutResult {
  std::uint64_t stored = 0;      // batches newly stored
  std::uint64_t duplicates = 0;  // batches whose (edge, seq) was already stored: skipped
  std::uint64_t samples = 0;     // non-NaN values newly stored
};

struct SeqRange {
  std::uint64_t first = 0, last = 0;  // inclusive
  bool operator==(const SeqRange&) const = default;
};

struct LatestValue {
  std::uint32_t channel = 0;
  std::string name;
  TimeNs time_ns = 0;
  double value = 0;
};

struct Point {
  TimeNs time_ns = 0;
  double value = 0;
};

// One downsampling bucket: the samples with start_ns <= time < start_ns + Series::bucket_ns.
struct Bucket {
  TimeNs start_ns = 0;
  double min = 0, max = 0, mean = 0;
  std::uint64_t count = 0;
};

// A channel's samples in a time range: raw points (time order) when there are at most max_points,
// else buckets of equal width (only non-empty ones, time order).
struct Series {
  std::string channel;
  std::string unit;
  bool downsampled = false;
  TimeNs bucket_ns = 0;  // bucket width when downsampled
  std::vector<Point> points;
  std::vector<Bucket> buckets;
};

struct RetentionResult {
  std::uint64_t chunks_deleted = 0;   // compacted chunks
  std::uint64_t batches_deleted = 0;  // not yet compacted batches
  std::uint64_t events_deleted = 0;
};

struct CompactResult {
  std::uint64_t batches = 0;  // batches folded into chunks
  std::uint64_t chunks = 0;   // chunks written
  std::uint64_t samples = 0;
};

struct StoreStats {
  std::uint64_t file_bytes = 0;      // database + WAL on disk
  std::uint64_t samples_stored = 0;  // since open
  std::uint64_t batches_stored = 0;  // since open
  std::uint64_t duplicates = 0;      // since open
  std::uint64_t lost_records = 0;    // reported by edges, since open
  std::uint64_t commits = 0;         // put_batches transactions since open
  std::uint64_t compactions = 0;     // compaction transactions since open
  std::uint64_t batches_compacted = 0;
  std::uint64_t chunks_written = 0;
  std::uint64_t pending_batches = 0;  // stored, not yet compacted (now)
  std::string last_error;             // of the background compaction; empty when healthy
};

class Store {
 public:
  virtual ~Store() = default;

  // On every hello: creates or updates the edge and its catalogue (channels are added or renamed by
  // id; channels no longer listed are kept, their data stays readable).
  virtual Result<void> put_edge(const EdgeInfo& info) = 0;

  // Stores many edges' batches in ONE transaction; durable on return (committed, fsync'd per the
  // synchronous setting). Idempotent: a batch whose (edge, seq) is already stored, or appears twice in
  // the call, is skipped and counted as duplicate. Unknown edges are an error (put_edge first), and so
  // is a malformed batch (values.size() mismatch, a channel not in the catalogue); then nothing of
  // the call is stored.
  virtual Result<PutResult> put_batches(std::span<const EdgeBatches> batches) = 0;

  // The seqs ever stored for the edge (retention does not forget them), as sorted disjoint ranges.
  virtual Result<std::vector<SeqRange>> stored_seqs(std::string_view edge_id) = 0;

  virtual Result<std::vector<EdgeInfo>> edges() = 0;

  // Per channel with data: the sample with the greatest time (ties: the last stored), by channel id;
  // kept when retention deleted the sample itself.
  virtual Result<std::vector<LatestValue>> latest(std::string_view edge_id) = 0;

  // Samples of one channel with from <= time <= to. max_points >= 1.
  virtual Result<Series> series(std::string_view edge_id, std::string_view channel_name, TimeNs from,
                                TimeNs to, std::size_t max_points) = 0;

  // Events with from <= time <= to in time order, at most `limit`.
  virtual Result<std::vector<Event>> events(std::string_view edge_id, TimeNs from, TimeNs to,
                                            std::size_t limit) = 0;

  // Every stored row group of the edge that has a row with from <= time <= to, clipped to those rows,
  // in no particular order (exports and tools). The SeriesBatch passed to `sink` lives for the call;
  // `sink` must not call the store (queries are serialized while it runs).
  virtual Result<void> scan(std::string_view edge_id, TimeNs from, TimeNs to,
                            const std::function<void(const SeriesBatch&)>& sink) = 0;

  // Deletes data older than the configured age: chunks and batches whose newest sample is older than
  // now - max_age, events older than that. The stored seq ranges stay (resends stay duplicates).
  virtual Result<RetentionResult> apply_retention(WallTime now) = 0;

  // Folds stored batches into long per-series chunks. The backend does this in the background when
  // enough has accumulated; force = fold everything now (tests, shutdown, tools).
  virtual Result<CompactResult> compact(bool force) = 0;

  virtual StoreStats stats() const = 0;
};

enum class Synchronous { off, normal, full };

struct SqliteStoreConfig {
  std::string path;                             // the database file; its folder is created
  TimeNs max_age_ns = 0;                        // retention age; 0 = keep forever
  Synchronous synchronous = Synchronous::full;  // full = fsync on every commit (power-loss safe)
  bool background_compaction = true;            // a thread compacts when an edge's series reach chunk_rows
  std::size_t chunk_rows = 4096;                // rows per compacted chunk (per series)
  const Clock* clock = &system_clock();         // monotonic: when pending batches are due; never null
  TimeNs compact_after_ns = 15LL * 60 * 1'000'000'000;  // compact batches older than this anyway
                                                        // (by arrival), so slow series get chunks too
  int zstd_level = 3;                                   // batches as committed
  int chunk_zstd_level = 9;                             // compacted chunks
};

// Opens or creates the database (an existing file of another format is refused).
Result<std::unique_ptr<Store>> open_sqlite_store(const SqliteStoreConfig& config);

// Default database file inside a data folder (`cellguard server --data DIR`, `cellguard export`).
std::string sqlite_store_path(const std::string& data_dir);

}  // namespace cellguard::store
