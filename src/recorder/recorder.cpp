// Recorder (writer thread + SQLite) and RecordingReader. The block layout: block_codec.cpp.
#include "recorder/recorder.h"

#include <sqlite3.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <thread>
#include <variant>

#include "core/thread_annotations.h"
#include "recorder/block_codec.h"

namespace cellguard::recorder {
namespace {

constexpr int kBusyTimeoutMs = 5000;
constexpr std::int64_t kPageSize = 4096;
// Event text waiting in the queue; beyond this, events are dropped like records in a full queue.
constexpr std::size_t kMaxQueuedEventBytes = 64u << 20;

// A prepared statement, finalized on destruction.
class Stmt {
 public:
  Stmt() = default;
  explicit Stmt(sqlite3_stmt* s) : s_(s) {}
  Stmt(Stmt&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  Stmt& operator=(Stmt&& o) noexcept {
    std::swap(s_, o.s_);
    return *this;
  }
  ~Stmt() { sqlite3_finalize(s_); }
  sqlite3_stmt* get() const { return s_; }
  // Ready for the next use: resets and unbinds (a failed step's error stays with the connection).
  void reset() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }

 private:
  sqlite3_stmt* s_ = nullptr;
};

Error db_error(const std::string& path, std::string_view what, sqlite3* db) {
  return Error(ErrorCode::io_error, "recording " + path + ": " + std::string(what) + ": " +
                                        (db ? sqlite3_errmsg(db) : "out of memory"));
}

Result<Stmt> prepare(sqlite3* db, const std::string& path, const char* sql) {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &s, nullptr) != SQLITE_OK) {
    sqlite3_finalize(s);
    return db_error(path, std::string("cannot prepare \"") + sql + "\"", db);
  }
  return Stmt(s);
}

Result<void> exec(sqlite3* db, const std::string& path, const char* sql) {
  char* message = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &message) != SQLITE_OK) {
    std::string text = message ? message : sqlite3_errmsg(db);
    sqlite3_free(message);
    return Error(ErrorCode::io_error, "recording " + path + ": " + sql + ": " + text);
  }
  return success();
}

// The first column of the first row as an integer (pragmas, counts).
Result<std::int64_t> query_int(sqlite3* db, const std::string& path, const char* sql) {
  auto stmt = prepare(db, path, sql);
  if (!stmt) return stmt.error();
  const int rc = sqlite3_step(stmt->get());
  if (rc == SQLITE_ROW) return static_cast<std::int64_t>(sqlite3_column_int64(stmt->get(), 0));
  if (rc == SQLITE_DONE) return std::int64_t{0};
  return db_error(path, sql, db);
}

Result<std::string> query_text(sqlite3* db, const std::string& path, const char* sql) {
  auto stmt = prepare(db, path, sql);
  if (!stmt) return stmt.error();
  if (sqlite3_step(stmt->get()) != SQLITE_ROW) return db_error(path, sql, db);
  const auto* text = sqlite3_column_text(stmt->get(), 0);
  return std::string(text ? reinterpret_cast<const char*>(text) : "");
}

struct Connection {
  sqlite3* db = nullptr;
  ~Connection() { sqlite3_close_v2(db); }
};

Result<void> open_connection(Connection& c, const std::string& path, int flags) {
  if (sqlite3_open_v2(path.c_str(), &c.db, flags | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
    return db_error(path, "cannot open", c.db);
  }
  sqlite3_extended_result_codes(c.db, 1);
  sqlite3_busy_timeout(c.db, kBusyTimeoutMs);
  return success();
}

// Refuses files of another format version, and SQLite files that are not recordings.
Result<void> check_version(sqlite3* db, const std::string& path, bool allow_empty, bool* empty,
                           bool migrate_v1) {
  auto version = query_int(db, path, "PRAGMA user_version");
  if (!version) {
    return Error(ErrorCode::io_error,
                 "recording " + path + ": not a readable SQLite database (" + version.error().message + ")");
  }
  auto tables = query_int(db, path, "SELECT count(*) FROM sqlite_master");
  if (!tables) return tables.error();
  if (*version == 0 && *tables == 0 && allow_empty) {
    *empty = true;
    return success();
  }
  if (*version == 0) {
    return Error(ErrorCode::unsupported,
                 "recording " + path + ": not a cellguard recording (user_version 0)");
  }
  if (*version == 1 && migrate_v1) {
    // Version 2 added delivery bookkeeping (uplink): a column and a table, nothing rewritten.
    if (auto r = exec(db, path,
                      "BEGIN; ALTER TABLE blocks ADD COLUMN lost INTEGER NOT NULL DEFAULT 0;"
                      " CREATE TABLE delivered(first INTEGER PRIMARY KEY, last INTEGER NOT NULL);"
                      " PRAGMA user_version = 2; COMMIT;");
        !r) {
      return r.error();
    }
    return success();
  }
  if (*version != kFormatVersion) {
    return Error(ErrorCode::unsupported,
                 "recording " + path + ": format version " + std::to_string(*version) +
                     ", this cellguard reads and writes version " + std::to_string(kFormatVersion) +
                     " only (move the file away or convert it)");
  }
  return success();
}

constexpr const char* kSchema =
    "BEGIN;"
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value BLOB);"
    "CREATE TABLE channels(id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, unit TEXT NOT NULL);"
    // AUTOINCREMENT: seq never goes back, even when the bounds deleted every block (uplink cursors).
    "CREATE TABLE blocks(seq INTEGER PRIMARY KEY AUTOINCREMENT, first_ns INTEGER NOT NULL,"
    " last_ns INTEGER NOT NULL, records INTEGER NOT NULL, data BLOB NOT NULL, lost INTEGER NOT NULL DEFAULT "
    "0);"
    "CREATE TABLE cursors(name TEXT PRIMARY KEY, seq INTEGER NOT NULL);"
    "CREATE TABLE delivered(first INTEGER PRIMARY KEY, last INTEGER NOT NULL);"
    "PRAGMA user_version = 2;"
    "COMMIT;";
static_assert(kFormatVersion == 2, "update the schema's user_version");

std::uint64_t file_size_or_zero(const std::string& path) {
  std::error_code ec;
  const auto n = std::filesystem::file_size(path, ec);
  return ec ? 0 : static_cast<std::uint64_t>(n);
}

TimeNs thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<TimeNs>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

using Item = std::variant<can::Frame, SampleRecord, detail::EventRef>;

}  // namespace

struct Recorder::Impl {
  RecorderConfig config;
  // The connection and what the writer keeps beside it: writer thread vs channel()/set_meta()/close().
  // Taken before queue_mutex where both are held.
  Mutex db_mutex;
  Connection conn GUARDED_BY(db_mutex);
  Stmt insert_block GUARDED_BY(db_mutex), blocks_by_age GUARDED_BY(db_mutex),
      delete_block GUARDED_BY(db_mutex), block_sizes GUARDED_BY(db_mutex), page_count GUARDED_BY(db_mutex),
      freelist_count GUARDED_BY(db_mutex), read_one GUARDED_BY(db_mutex), strip_block GUARDED_BY(db_mutex);
  // Blocks up to here were already deleted or stripped by the bounds: later passes start above it.
  std::int64_t bounds_floor GUARDED_BY(db_mutex) = 0;
  std::chrono::steady_clock::time_point last_sweep GUARDED_BY(db_mutex){};
  std::uint64_t next_seq GUARDED_BY(db_mutex) = 1;
  std::int64_t wal_pages =
      1000;  // WAL checkpoint interval, sized from max_bytes (set before the writer starts)
  std::uint64_t high_water = 0, low_water = 0;  // bytes of used pages that trigger/end deletion (ditto)

  // The queue and everything the hot path touches, under one mutex held for a push_back.
  mutable Mutex queue_mutex;
  CondVar writer_wake, done;
  std::vector<Item> queue GUARDED_BY(queue_mutex);
  std::string event_text GUARDED_BY(queue_mutex);  // arena of the queued events' kind and json
  bool closed GUARDED_BY(queue_mutex) = false, stopping GUARDED_BY(queue_mutex) = false,
              flush_requested GUARDED_BY(queue_mutex) = false, writer_exited GUARDED_BY(queue_mutex) = false;
  std::uint64_t accepted GUARDED_BY(queue_mutex) = 0, processed GUARDED_BY(queue_mutex) = 0,
                         failures GUARDED_BY(queue_mutex) = 0;
  RecorderStats stats GUARDED_BY(queue_mutex);

  std::thread writer;

  bool admit() REQUIRES(queue_mutex) {
    if (closed || queue.size() >= config.queue_capacity) {
      ++stats.records_dropped;
      return false;
    }
    ++accepted;
    return true;
  }
  void pushed() REQUIRES(queue_mutex) {
    if (queue.size() == config.max_block_records) writer_wake.notify_one();
  }

  void run();
  void write_batch(const std::vector<Item>& batch, const std::string& text);
  void commit_block(detail::BlockEncoder& encoder) EXCLUDES(db_mutex, queue_mutex);
  void apply_bounds() REQUIRES(db_mutex) EXCLUDES(queue_mutex);
  // Strips an undelivered block to its events; false if it had nothing else. In a transaction.
  Result<bool> strip(std::int64_t seq, std::uint64_t& lost) REQUIRES(db_mutex);
  Result<std::vector<std::pair<std::uint64_t, std::uint64_t>>> delivered_ranges() REQUIRES(db_mutex);
  void sweep_delivered() REQUIRES(db_mutex) EXCLUDES(queue_mutex);
  void fail(const std::string& message, std::uint64_t records) EXCLUDES(queue_mutex);

  // The writer thread's own (no lock): block building and compression buffers.
  detail::BlockEncoder encoder, strip_encoder;
  std::vector<std::uint8_t> raw, packed;
};

Result<std::vector<std::pair<std::uint64_t, std::uint64_t>>> Recorder::Impl::delivered_ranges() {
  auto stmt = prepare(conn.db, config.path, "SELECT first, last FROM delivered ORDER BY first");
  if (!stmt) return stmt.error();
  std::vector<std::pair<std::uint64_t, std::uint64_t>> out;
  while (sqlite3_step(stmt->get()) == SQLITE_ROW) {
    out.emplace_back(static_cast<std::uint64_t>(sqlite3_column_int64(stmt->get(), 0)),
                     static_cast<std::uint64_t>(sqlite3_column_int64(stmt->get(), 1)));
  }
  return out;
}

Result<bool> Recorder::Impl::strip(std::int64_t seq, std::uint64_t& lost) {
  sqlite3_stmt* q = read_one.get();
  sqlite3_bind_int64(q, 1, seq);
  if (sqlite3_step(q) != SQLITE_ROW) {
    read_one.reset();
    return false;
  }
  const auto* data = static_cast<const std::uint8_t*>(sqlite3_column_blob(q, 3));
  auto block =
      detail::decode_block(static_cast<std::uint64_t>(seq), sqlite3_column_int64(q, 0),
                           sqlite3_column_int64(q, 1), static_cast<std::uint64_t>(sqlite3_column_int64(q, 2)),
                           {data ? data : reinterpret_cast<const std::uint8_t*>(""),
                            static_cast<std::size_t>(sqlite3_column_bytes(q, 3))});
  read_one.reset();
  if (!block) return block.error();
  const std::uint64_t dropped = block->frames.size() + block->samples.size();
  if (dropped == 0) return false;
  strip_encoder.reset();
  for (const EventRecord& e : block->events) strip_encoder.add_event(e.time_ns, e.kind, e.json);
  strip_encoder.finish(raw);
  if (auto r = detail::compress(raw, config.zstd_level, packed); !r) return r.error();
  sqlite3_stmt* u = strip_block.get();
  sqlite3_bind_int64(u, 1, static_cast<sqlite3_int64>(block->events.size()));
  sqlite3_bind_blob(u, 2, packed.data(), static_cast<int>(packed.size()), SQLITE_STATIC);
  sqlite3_bind_int64(u, 3, static_cast<sqlite3_int64>(dropped));
  sqlite3_bind_int64(u, 4, seq);
  const int rc = sqlite3_step(u);
  strip_block.reset();
  if (rc != SQLITE_DONE) return db_error(config.path, "cannot strip block " + std::to_string(seq), conn.db);
  lost += dropped;
  return true;
}

// Stripped blocks stay until the server has them; then they go. At most every 10 s.
void Recorder::Impl::sweep_delivered() {
  const auto now = std::chrono::steady_clock::now();
  if (bounds_floor == 0 || now - last_sweep < std::chrono::seconds(10)) return;
  last_sweep = now;
  auto ranges = delivered_ranges();
  if (!ranges || ranges->empty()) return;
  auto stmt = prepare(conn.db, config.path, "DELETE FROM blocks WHERE seq BETWEEN ? AND ?");
  if (!stmt) return;
  sqlite3_exec(conn.db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
  std::uint64_t deleted = 0;
  for (const auto& [first, last] : *ranges) {
    if (static_cast<std::int64_t>(first) > bounds_floor) break;
    sqlite3_bind_int64(stmt->get(), 1, static_cast<sqlite3_int64>(first));
    sqlite3_bind_int64(stmt->get(), 2,
                       std::min<sqlite3_int64>(static_cast<sqlite3_int64>(last), bounds_floor));
    if (sqlite3_step(stmt->get()) == SQLITE_DONE)
      deleted += static_cast<std::uint64_t>(sqlite3_changes(conn.db));
    stmt->reset();
  }
  if (sqlite3_exec(conn.db, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
    sqlite3_exec(conn.db, "ROLLBACK", nullptr, nullptr, nullptr);
    return;
  }
  MutexLock lock(queue_mutex);
  stats.blocks_deleted += deleted;
}

void Recorder::Impl::fail(const std::string& message, std::uint64_t records) {
  MutexLock lock(queue_mutex);
  stats.last_error = message;
  stats.records_dropped += records;
  ++failures;
}

void Recorder::Impl::run() {
  std::vector<Item> batch;
  std::string text;
  const auto interval = std::chrono::nanoseconds(std::max<TimeNs>(config.commit_interval_ns, 1'000'000));
  for (;;) {
    bool stop = false;
    {
      MutexLock lock(queue_mutex);
      const auto until = std::chrono::steady_clock::now() + interval;
      while (!stopping && !flush_requested && queue.size() < config.max_block_records) {
        if (writer_wake.wait_until(lock, until) == std::cv_status::timeout) break;
      }
      // Swap, not copy: both vectors keep their capacity, so steady state allocates nothing.
      batch.swap(queue);
      text.swap(event_text);
      flush_requested = false;
      stop = stopping;
    }
    if (!batch.empty()) write_batch(batch, text);
    {
      MutexLock lock(queue_mutex);
      processed += batch.size();
      stats.writer_cpu_ns = thread_cpu_ns();
    }
    done.notify_all();
    batch.clear();
    text.clear();
    if (stop) break;
  }
  MutexLock lock(queue_mutex);
  writer_exited = true;
  done.notify_all();
}

void Recorder::Impl::write_batch(const std::vector<Item>& batch, const std::string& text) {
  encoder.reset();
  const std::size_t limit = std::max<std::size_t>(config.max_block_records, 1);
  for (const Item& item : batch) {
    if (const auto* f = std::get_if<can::Frame>(&item)) {
      encoder.add_frame(*f);
    } else if (const auto* s = std::get_if<SampleRecord>(&item)) {
      encoder.add_sample(s->time_ns, s->channel, s->value);
    } else {
      const auto& e = std::get<detail::EventRef>(item);
      encoder.add_event(e.time_ns, std::string_view(text).substr(e.kind_offset, e.kind_size),
                        std::string_view(text).substr(e.json_offset, e.json_size));
    }
    if (encoder.records() >= limit) {
      commit_block(encoder);
      encoder.reset();
    }
  }
  if (encoder.records() > 0) commit_block(encoder);
}

void Recorder::Impl::commit_block(detail::BlockEncoder& enc) {
  const std::uint64_t records = enc.records();
  const auto start = std::chrono::steady_clock::now();
  enc.finish(raw);
  if (auto r = detail::compress(raw, config.zstd_level, packed); !r) {
    fail("recording " + config.path + ": " + r.error().message, records);
    return;
  }
  MutexLock db_lock(db_mutex);
  sqlite3* db = conn.db;
  auto undo = [&](std::string_view what) {
    const std::string message = db_error(config.path, what, db).message;
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    fail(message, records);
  };
  if (sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) {
    undo("cannot begin a block transaction");
    return;
  }
  sqlite3_stmt* s = insert_block.get();
  sqlite3_bind_int64(s, 1, static_cast<sqlite3_int64>(next_seq));
  sqlite3_bind_int64(s, 2, enc.first_ns());
  sqlite3_bind_int64(s, 3, enc.last_ns());
  sqlite3_bind_int64(s, 4, static_cast<sqlite3_int64>(records));
  sqlite3_bind_blob(s, 5, packed.data(), static_cast<int>(packed.size()), SQLITE_STATIC);
  const int rc = sqlite3_step(s);
  insert_block.reset();
  if (rc != SQLITE_DONE) {
    undo("cannot insert block " + std::to_string(next_seq));
    return;
  }
  if (sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
    undo("cannot commit block " + std::to_string(next_seq));
    return;
  }
  const std::uint64_t seq = next_seq++;
  const auto duration = std::chrono::steady_clock::now() - start;
  {
    MutexLock lock(queue_mutex);
    stats.records_committed += records;
    stats.blocks_committed += 1;
    stats.last_seq = seq;
    stats.last_commit_duration_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(duration).count();
    stats.last_error.clear();
  }
  apply_bounds();
}

// Deletes the oldest blocks past the age bound or while the used pages exceed the size budget, then
// gives the pages back to the file system (incremental vacuum + WAL truncation), so the bytes on disk
// (database + WAL) stay within max_bytes plus about one block.
void Recorder::Impl::apply_bounds() {
  sqlite3* db = conn.db;
  const std::string& path = config.path;
  // Reads first (no transaction when nothing is due, the common case): the seq to delete, oldest first,
  // so what remains is always one contiguous range of seq.
  std::vector<std::int64_t> victims;
  if (config.max_age_ns > 0) {
    const TimeNs cutoff = config.clock->wall_now().ns() - config.max_age_ns;
    sqlite3_stmt* s = blocks_by_age.get();
    sqlite3_bind_int64(s, 1, bounds_floor);
    while (sqlite3_step(s) == SQLITE_ROW) {
      const std::int64_t seq = sqlite3_column_int64(s, 0);
      if (sqlite3_column_int64(s, 1) >= cutoff) break;
      victims.push_back(seq);
    }
    blocks_by_age.reset();
  }
  std::uint64_t used = 0;
  if (sqlite3_step(page_count.get()) == SQLITE_ROW && sqlite3_step(freelist_count.get()) == SQLITE_ROW) {
    used = static_cast<std::uint64_t>(sqlite3_column_int64(page_count.get(), 0) -
                                      sqlite3_column_int64(freelist_count.get(), 0)) *
           kPageSize;
  }
  page_count.reset();
  freelist_count.reset();
  if (used > high_water) {
    // Down to the low-water mark, so deletion happens in batches, not at every commit.
    std::uint64_t freed = 0;
    const std::uint64_t need = used - low_water;
    sqlite3_stmt* s = block_sizes.get();
    sqlite3_bind_int64(s, 1, bounds_floor);
    while (freed < need && sqlite3_step(s) == SQLITE_ROW) {
      const std::int64_t seq = sqlite3_column_int64(s, 0);
      if (static_cast<std::uint64_t>(seq) + 1 >= next_seq) break;            // keep the newest block
      freed += static_cast<std::uint64_t>(sqlite3_column_int64(s, 1)) + 64;  // + row overhead
      if (victims.empty() || seq > victims.back()) victims.push_back(seq);
    }
    block_sizes.reset();
  }

  std::uint64_t deleted = 0, lost = 0;
  std::string error;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> delivered;
  if (!victims.empty() && config.keep_undelivered_events) {
    auto ranges = delivered_ranges();
    if (ranges) delivered = std::move(*ranges);
  }
  auto is_delivered = [&delivered](std::int64_t seq) {
    for (const auto& [first, last] : delivered)
      if (static_cast<std::uint64_t>(seq) >= first && static_cast<std::uint64_t>(seq) <= last) return true;
    return false;
  };
  if (!victims.empty()) {
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) {
      error = db_error(path, "cannot begin deleting old blocks", db).message;
    } else {
      for (const std::int64_t seq : victims) {
        if (config.keep_undelivered_events && !is_delivered(seq)) {
          auto stripped = strip(seq, lost);
          if (!stripped) {
            error = stripped.error().message;
            break;
          }
          continue;
        }
        sqlite3_bind_int64(delete_block.get(), 1, seq);
        const int rc = sqlite3_step(delete_block.get());
        delete_block.reset();
        if (rc != SQLITE_DONE) {
          error = db_error(path, "cannot delete block " + std::to_string(seq), db).message;
          break;
        }
        ++deleted;
      }
      if (!error.empty() || sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
        if (error.empty()) error = db_error(path, "cannot commit deleting old blocks", db).message;
        sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
        deleted = 0;
        lost = 0;
      } else {
        bounds_floor = std::max(bounds_floor, victims.back());
      }
    }
  }
  if (config.keep_undelivered_events) sweep_delivered();
  if (deleted > 0 || lost > 0) {
    // Freed pages go back to the OS only through the vacuum and a checkpoint that truncates the WAL.
    sqlite3_exec(db, "PRAGMA incremental_vacuum", nullptr, nullptr, nullptr);
    sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
  }
  const std::uint64_t bytes = file_size_or_zero(path) + file_size_or_zero(path + "-wal");
  MutexLock lock(queue_mutex);
  stats.blocks_deleted += deleted;
  stats.records_lost += lost;
  stats.file_bytes = bytes;
  if (!error.empty()) {
    stats.last_error = error;
    ++failures;
  }
}

Recorder::Recorder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Recorder::~Recorder() { close(); }

Result<std::unique_ptr<Recorder>> Recorder::open(RecorderConfig config) {
  const std::string path = config.path;
  if (path.empty()) return Error(ErrorCode::invalid_argument, "recording: empty path");
  if (config.queue_capacity == 0 || config.max_block_records == 0) {
    return Error(ErrorCode::invalid_argument,
                 "recording " + path + ": queue_capacity and max_block_records must be > 0");
  }
  const auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec) {
      return Error(ErrorCode::io_error, "recording " + path + ": cannot create its folder " +
                                            parent.string() + ": " + ec.message());
    }
  }
  auto impl = std::make_unique<Impl>();
  impl->config = std::move(config);
  // Nothing is shared before the writer starts; the locks only state that to the lock analysis.
  MutexLock db_lock(impl->db_mutex);
  MutexLock queue_lock(impl->queue_mutex);
  sqlite3*& db = impl->conn.db;
  if (auto r = open_connection(impl->conn, path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE); !r)
    return r.error();
  bool empty = false;
  if (auto r = check_version(db, path, true, &empty, true); !r) return r.error();
  if (empty) {
    // auto_vacuum must be chosen before the first table; INCREMENTAL lets the bounds shrink the file.
    if (auto r = exec(db, path, "PRAGMA page_size = 4096; PRAGMA auto_vacuum = INCREMENTAL"); !r)
      return r.error();
  }
  auto mode = query_text(db, path, "PRAGMA journal_mode = WAL");
  if (!mode) return mode.error();
  if (*mode != "wal")
    return Error(ErrorCode::io_error,
                 "recording " + path + ": cannot switch to WAL (journal mode " + *mode + ")");
  if (empty) {
    if (auto r = exec(db, path, kSchema); !r) return r.error();
  }
  // A WAL checkpoint every wal_pages keeps the WAL small relative to the bound.
  const std::uint64_t max_bytes = std::max<std::uint64_t>(impl->config.max_bytes, 64 * 1024);
  impl->wal_pages = std::clamp<std::int64_t>(static_cast<std::int64_t>(max_bytes / 16 / kPageSize), 4, 1000);
  const std::uint64_t wal_allowance =
      2 * static_cast<std::uint64_t>(impl->wal_pages) * kPageSize + 4 * kPageSize;
  impl->high_water = max_bytes > 2 * wal_allowance ? max_bytes - wal_allowance : max_bytes / 2;
  impl->low_water = impl->high_water - impl->high_water / 10;
  const std::string pragmas = std::string("PRAGMA synchronous = ") +
                              (impl->config.synchronous_full ? "FULL" : "NORMAL") +
                              "; PRAGMA wal_autocheckpoint = " + std::to_string(impl->wal_pages) +
                              "; PRAGMA journal_size_limit = " + std::to_string(impl->wal_pages * kPageSize);
  if (auto r = exec(db, path, pragmas.c_str()); !r) return r.error();

  auto seq = query_int(db, path,
                       "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'blocks'), 0),"
                       " coalesce((SELECT max(seq) FROM blocks), 0))");
  if (!seq) return seq.error();
  impl->next_seq = static_cast<std::uint64_t>(*seq) + 1;
  impl->stats.last_seq = static_cast<std::uint64_t>(*seq);

  struct {
    Stmt* stmt;
    const char* sql;
  } statements[] = {
      {&impl->insert_block,
       "INSERT INTO blocks(seq, first_ns, last_ns, records, data) VALUES(?, ?, ?, ?, ?)"},
      {&impl->blocks_by_age, "SELECT seq, last_ns FROM blocks WHERE seq > ? ORDER BY seq"},
      {&impl->delete_block, "DELETE FROM blocks WHERE seq = ?"},
      {&impl->block_sizes, "SELECT seq, length(data) FROM blocks WHERE seq > ? ORDER BY seq"},
      {&impl->read_one, "SELECT first_ns, last_ns, records, data FROM blocks WHERE seq = ?"},
      {&impl->strip_block, "UPDATE blocks SET records = ?, data = ?, lost = lost + ? WHERE seq = ?"},
      {&impl->page_count, "PRAGMA page_count"},
      {&impl->freelist_count, "PRAGMA freelist_count"},
  };
  for (auto& st : statements) {
    auto s = prepare(db, path, st.sql);
    if (!s) return s.error();
    *st.stmt = std::move(*s);
  }
  impl->stats.file_bytes = file_size_or_zero(path) + file_size_or_zero(path + "-wal");
  queue_lock.unlock();
  db_lock.unlock();
  Impl* raw = impl.get();
  raw->writer = std::thread([raw] { raw->run(); });
  return std::unique_ptr<Recorder>(new Recorder(std::move(impl)));
}

Result<std::uint32_t> Recorder::channel(std::string_view name, std::string_view unit) {
  MutexLock lock(impl_->db_mutex);
  const std::string& path = impl_->config.path;
  if (!impl_->conn.db) return Error(ErrorCode::invalid_argument, "recording " + path + ": closed");
  auto stmt = prepare(impl_->conn.db, path,
                      "INSERT INTO channels(name, unit) VALUES(?, ?) "
                      "ON CONFLICT(name) DO UPDATE SET unit = excluded.unit RETURNING id");
  if (!stmt) return stmt.error();
  sqlite3_bind_text(stmt->get(), 1, name.data(), static_cast<int>(name.size()), SQLITE_TRANSIENT);
  sqlite3_bind_text(stmt->get(), 2, unit.data(), static_cast<int>(unit.size()), SQLITE_TRANSIENT);
  if (sqlite3_step(stmt->get()) != SQLITE_ROW) {
    return db_error(path, "cannot register channel " + std::string(name), impl_->conn.db);
  }
  const auto id = static_cast<std::uint32_t>(sqlite3_column_int64(stmt->get(), 0));
  if (sqlite3_step(stmt->get()) != SQLITE_DONE) {
    return db_error(path, "cannot register channel " + std::string(name), impl_->conn.db);
  }
  return id;
}

Result<void> Recorder::set_meta(std::string_view key, std::string_view value) {
  MutexLock lock(impl_->db_mutex);
  const std::string& path = impl_->config.path;
  if (!impl_->conn.db) return Error(ErrorCode::invalid_argument, "recording " + path + ": closed");
  auto stmt = prepare(impl_->conn.db, path, "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)");
  if (!stmt) return stmt.error();
  sqlite3_bind_text(stmt->get(), 1, key.data(), static_cast<int>(key.size()), SQLITE_TRANSIENT);
  sqlite3_bind_text(stmt->get(), 2, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
  if (sqlite3_step(stmt->get()) != SQLITE_DONE) {
    return db_error(path, "cannot set meta " + std::string(key), impl_->conn.db);
  }
  return success();
}

bool Recorder::record_frame(const can::Frame& frame) {
  MutexLock lock(impl_->queue_mutex);
  if (!impl_->admit()) return false;
  impl_->queue.emplace_back(std::in_place_index<0>, frame);
  impl_->pushed();
  return true;
}

bool Recorder::record_sample(TimeNs time_ns, std::uint32_t channel, double value) {
  MutexLock lock(impl_->queue_mutex);
  if (!impl_->admit()) return false;
  impl_->queue.emplace_back(std::in_place_index<1>, SampleRecord{time_ns, channel, value});
  impl_->pushed();
  return true;
}

bool Recorder::record_event(TimeNs time_ns, std::string_view kind, std::string_view json) {
  MutexLock lock(impl_->queue_mutex);
  auto& text = impl_->event_text;
  if (text.size() + kind.size() + json.size() > kMaxQueuedEventBytes) {
    ++impl_->stats.records_dropped;
    return false;
  }
  if (!impl_->admit()) return false;
  detail::EventRef e;
  e.time_ns = time_ns;
  e.kind_offset = static_cast<std::uint32_t>(text.size());
  e.kind_size = static_cast<std::uint32_t>(kind.size());
  text.append(kind);
  e.json_offset = static_cast<std::uint32_t>(text.size());
  e.json_size = static_cast<std::uint32_t>(json.size());
  text.append(json);
  impl_->queue.emplace_back(std::in_place_index<2>, e);
  impl_->pushed();
  return true;
}

Result<void> Recorder::flush() {
  MutexLock lock(impl_->queue_mutex);
  const std::uint64_t target = impl_->accepted;
  const std::uint64_t failures = impl_->failures;
  impl_->flush_requested = true;
  impl_->writer_wake.notify_one();
  while (impl_->processed < target && !impl_->writer_exited) impl_->done.wait(lock);
  if (impl_->processed < target) {
    return Error(ErrorCode::io_error,
                 "recording " + impl_->config.path + ": closed before the flush completed");
  }
  if (impl_->failures != failures) return Error(ErrorCode::io_error, impl_->stats.last_error);
  return success();
}

void Recorder::close() {
  if (!impl_) return;
  {
    MutexLock lock(impl_->queue_mutex);
    impl_->closed = true;
    impl_->stopping = true;
  }
  impl_->writer_wake.notify_one();
  if (impl_->writer.joinable()) impl_->writer.join();
  MutexLock lock(impl_->db_mutex);
  if (impl_->conn.db) {
    impl_->insert_block = Stmt();
    impl_->blocks_by_age = Stmt();
    impl_->page_count = Stmt();
    impl_->freelist_count = Stmt();
    impl_->delete_block = Stmt();
    impl_->block_sizes = Stmt();
    impl_->read_one = Stmt();
    impl_->strip_block = Stmt();
    sqlite3_close_v2(impl_->conn.db);
    impl_->conn.db = nullptr;
  }
}

RecorderStats Recorder::stats() const {
  MutexLock lock(impl_->queue_mutex);
  RecorderStats s = impl_->stats;
  s.records_queued = impl_->accepted;
  return s;
}

// ---------------------------------------------------------------------------------------------
// Reader

struct RecordingReader::Impl {
  std::string path;
  Connection conn;
};

RecordingReader::RecordingReader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RecordingReader::RecordingReader(RecordingReader&&) noexcept = default;
RecordingReader& RecordingReader::operator=(RecordingReader&&) noexcept = default;
RecordingReader::~RecordingReader() = default;

Result<RecordingReader> RecordingReader::open_read_only(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return Error(ErrorCode::not_found, "recording " + path + ": no such file");
  }
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  if (auto r = open_connection(impl->conn, path, SQLITE_OPEN_READONLY); !r) return r.error();
  bool empty = false;
  if (auto r = check_version(impl->conn.db, path, false, &empty, false); !r) return r.error();
  return RecordingReader(std::move(impl));
}

Result<RecordingReader> RecordingReader::open(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return Error(ErrorCode::not_found, "recording " + path + ": no such file");
  }
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  // Read-write only for the cursors and delivered tables; nothing else is written through this connection.
  if (auto r = open_connection(impl->conn, path, SQLITE_OPEN_READWRITE); !r) return r.error();
  bool empty = false;
  if (auto r = check_version(impl->conn.db, path, false, &empty, false); !r) return r.error();
  return RecordingReader(std::move(impl));
}

namespace {

// One row of `SELECT seq, first_ns, last_ns, records, data, lost` as a block.
Result<Block> block_from_row(sqlite3_stmt* s, const std::string& path) {
  const auto seq = static_cast<std::uint64_t>(sqlite3_column_int64(s, 0));
  const auto* data = static_cast<const std::uint8_t*>(sqlite3_column_blob(s, 4));
  const auto size = static_cast<std::size_t>(sqlite3_column_bytes(s, 4));
  auto block = detail::decode_block(seq, sqlite3_column_int64(s, 1), sqlite3_column_int64(s, 2),
                                    static_cast<std::uint64_t>(sqlite3_column_int64(s, 3)),
                                    {data ? data : reinterpret_cast<const std::uint8_t*>(""), size});
  if (!block) return Error(block.error().code, "recording " + path + ": " + block.error().message);
  block->lost_records = static_cast<std::uint64_t>(sqlite3_column_int64(s, 5));
  return block;
}

}  // namespace

Result<std::optional<Block>> RecordingReader::read_block(std::uint64_t seq) {
  sqlite3* db = impl_->conn.db;
  auto stmt = prepare(db, impl_->path,
                      "SELECT seq, first_ns, last_ns, records, data, lost FROM blocks WHERE seq = ?");
  if (!stmt) return stmt.error();
  sqlite3_bind_int64(stmt->get(), 1, static_cast<sqlite3_int64>(std::min<std::uint64_t>(seq, INT64_MAX)));
  const int rc = sqlite3_step(stmt->get());
  if (rc == SQLITE_DONE) return std::optional<Block>();
  if (rc != SQLITE_ROW) return db_error(impl_->path, "cannot read block " + std::to_string(seq), db);
  auto block = block_from_row(stmt->get(), impl_->path);
  if (!block) return block.error();
  return std::optional<Block>(std::move(*block));
}

Result<std::vector<std::pair<std::uint64_t, std::uint64_t>>> RecordingReader::delivered() {
  auto stmt = prepare(impl_->conn.db, impl_->path, "SELECT first, last FROM delivered ORDER BY first");
  if (!stmt) return stmt.error();
  std::vector<std::pair<std::uint64_t, std::uint64_t>> out;
  int rc;
  while ((rc = sqlite3_step(stmt->get())) == SQLITE_ROW) {
    out.emplace_back(static_cast<std::uint64_t>(sqlite3_column_int64(stmt->get(), 0)),
                     static_cast<std::uint64_t>(sqlite3_column_int64(stmt->get(), 1)));
  }
  if (rc != SQLITE_DONE) return db_error(impl_->path, "cannot read delivered ranges", impl_->conn.db);
  return out;
}

Result<void> RecordingReader::add_delivered(
    const std::vector<std::pair<std::uint64_t, std::uint64_t>>& ranges) {
  if (ranges.empty()) return success();
  sqlite3* db = impl_->conn.db;
  if (auto r = exec(db, impl_->path, "BEGIN IMMEDIATE"); !r) return r.error();
  auto current = delivered();
  if (!current) {
    (void)exec(db, impl_->path, "ROLLBACK");
    return current.error();
  }
  // Merge in memory (a handful of ranges), then rewrite the table.
  auto all = std::move(*current);
  for (const auto& r : ranges)
    if (r.first <= r.second) all.push_back(r);
  std::sort(all.begin(), all.end());
  std::vector<std::pair<std::uint64_t, std::uint64_t>> merged;
  for (const auto& r : all) {
    if (!merged.empty() && r.first <= merged.back().second + 1)
      merged.back().second = std::max(merged.back().second, r.second);
    else
      merged.push_back(r);
  }
  auto del = exec(db, impl_->path, "DELETE FROM delivered");
  auto ins = prepare(db, impl_->path, "INSERT INTO delivered(first, last) VALUES(?, ?)");
  if (!del || !ins) {
    (void)exec(db, impl_->path, "ROLLBACK");
    return !del ? del.error() : ins.error();
  }
  for (const auto& [first, last] : merged) {
    sqlite3_bind_int64(ins->get(), 1, static_cast<sqlite3_int64>(std::min<std::uint64_t>(first, INT64_MAX)));
    sqlite3_bind_int64(ins->get(), 2, static_cast<sqlite3_int64>(std::min<std::uint64_t>(last, INT64_MAX)));
    if (sqlite3_step(ins->get()) != SQLITE_DONE) {
      auto e = db_error(impl_->path, "cannot record delivered ranges", db);
      (void)exec(db, impl_->path, "ROLLBACK");
      return e;
    }
    ins->reset();
  }
  return exec(db, impl_->path, "COMMIT");
}

Result<std::vector<std::uint64_t>> RecordingReader::undelivered(std::uint64_t after, std::size_t max) {
  auto ranges = delivered();
  if (!ranges) return ranges.error();
  auto stmt = prepare(impl_->conn.db, impl_->path,
                      "SELECT seq FROM blocks WHERE seq > ? AND seq < ? ORDER BY seq LIMIT ?");
  if (!stmt) return stmt.error();
  std::vector<std::uint64_t> out;
  // The gaps between delivered ranges, walked in order: each gap is one indexed range scan.
  std::uint64_t from = after;
  auto scan = [&](std::uint64_t lo, std::uint64_t hi_exclusive) -> Result<void> {
    if (out.size() >= max || hi_exclusive <= lo + 1) return success();
    sqlite3_bind_int64(stmt->get(), 1, static_cast<sqlite3_int64>(std::min<std::uint64_t>(lo, INT64_MAX)));
    sqlite3_bind_int64(stmt->get(), 2,
                       static_cast<sqlite3_int64>(std::min<std::uint64_t>(hi_exclusive, INT64_MAX)));
    sqlite3_bind_int64(stmt->get(), 3, static_cast<sqlite3_int64>(max - out.size()));
    int rc;
    while ((rc = sqlite3_step(stmt->get())) == SQLITE_ROW)
      out.push_back(static_cast<std::uint64_t>(sqlite3_column_int64(stmt->get(), 0)));
    stmt->reset();
    if (rc != SQLITE_DONE) return db_error(impl_->path, "cannot list undelivered blocks", impl_->conn.db);
    return success();
  };
  for (const auto& [first, last] : *ranges) {
    if (last <= from) continue;
    if (first > from + 1) {
      if (auto r = scan(from, first); !r) return r.error();
    }
    from = std::max(from, last);
  }
  if (auto r = scan(from, static_cast<std::uint64_t>(INT64_MAX)); !r) return r.error();
  return out;
}

Result<std::uint64_t> RecordingReader::lost_records() {
  auto v = query_int(impl_->conn.db, impl_->path, "SELECT coalesce(sum(lost), 0) FROM blocks");
  if (!v) return v.error();
  return static_cast<std::uint64_t>(*v);
}

Result<std::vector<Block>> RecordingReader::read_after(std::uint64_t after_seq, std::size_t max_blocks) {
  std::vector<Block> blocks;
  if (max_blocks == 0) return blocks;
  sqlite3* db = impl_->conn.db;
  auto stmt = prepare(
      db, impl_->path,
      "SELECT seq, first_ns, last_ns, records, data, lost FROM blocks WHERE seq > ? ORDER BY seq LIMIT ?");
  if (!stmt) return stmt.error();
  sqlite3_bind_int64(stmt->get(), 1,
                     static_cast<sqlite3_int64>(std::min<std::uint64_t>(after_seq, INT64_MAX)));
  sqlite3_bind_int64(stmt->get(), 2,
                     static_cast<sqlite3_int64>(std::min<std::size_t>(max_blocks, INT64_MAX)));
  int rc;
  while ((rc = sqlite3_step(stmt->get())) == SQLITE_ROW) {
    auto block = block_from_row(stmt->get(), impl_->path);
    if (!block) return block.error();
    blocks.push_back(std::move(*block));
  }
  if (rc != SQLITE_DONE) return db_error(impl_->path, "cannot read blocks", db);
  return blocks;
}

Result<std::vector<ChannelInfo>> RecordingReader::channels() {
  auto stmt = prepare(impl_->conn.db, impl_->path, "SELECT id, name, unit FROM channels ORDER BY id");
  if (!stmt) return stmt.error();
  std::vector<ChannelInfo> out;
  int rc;
  while ((rc = sqlite3_step(stmt->get())) == SQLITE_ROW) {
    ChannelInfo c;
    c.id = static_cast<std::uint32_t>(sqlite3_column_int64(stmt->get(), 0));
    const auto* name = sqlite3_column_text(stmt->get(), 1);
    const auto* unit = sqlite3_column_text(stmt->get(), 2);
    c.name = name ? reinterpret_cast<const char*>(name) : "";
    c.unit = unit ? reinterpret_cast<const char*>(unit) : "";
    out.push_back(std::move(c));
  }
  if (rc != SQLITE_DONE) return db_error(impl_->path, "cannot read channels", impl_->conn.db);
  return out;
}

Result<std::optional<std::string>> RecordingReader::meta(std::string_view key) {
  auto stmt = prepare(impl_->conn.db, impl_->path, "SELECT value FROM meta WHERE key = ?");
  if (!stmt) return stmt.error();
  sqlite3_bind_text(stmt->get(), 1, key.data(), static_cast<int>(key.size()), SQLITE_TRANSIENT);
  const int rc = sqlite3_step(stmt->get());
  if (rc == SQLITE_DONE) return std::optional<std::string>();
  if (rc != SQLITE_ROW) return db_error(impl_->path, "cannot read meta " + std::string(key), impl_->conn.db);
  const auto* data = static_cast<const char*>(sqlite3_column_blob(stmt->get(), 0));
  const int size = sqlite3_column_bytes(stmt->get(), 0);
  return std::optional<std::string>(std::string(data ? data : "", static_cast<std::size_t>(size)));
}

Result<std::uint64_t> RecordingReader::cursor(std::string_view name) {
  auto stmt = prepare(impl_->conn.db, impl_->path, "SELECT seq FROM cursors WHERE name = ?");
  if (!stmt) return stmt.error();
  sqlite3_bind_text(stmt->get(), 1, name.data(), static_cast<int>(name.size()), SQLITE_TRANSIENT);
  const int rc = sqlite3_step(stmt->get());
  if (rc == SQLITE_DONE) return std::uint64_t{0};
  if (rc != SQLITE_ROW)
    return db_error(impl_->path, "cannot read cursor " + std::string(name), impl_->conn.db);
  return static_cast<std::uint64_t>(sqlite3_column_int64(stmt->get(), 0));
}

Result<void> RecordingReader::set_cursor(std::string_view name, std::uint64_t seq) {
  auto stmt = prepare(
      impl_->conn.db, impl_->path,
      "INSERT INTO cursors(name, seq) VALUES(?, ?) ON CONFLICT(name) DO UPDATE SET seq = excluded.seq");
  if (!stmt) return stmt.error();
  sqlite3_bind_text(stmt->get(), 1, name.data(), static_cast<int>(name.size()), SQLITE_TRANSIENT);
  sqlite3_bind_int64(stmt->get(), 2, static_cast<sqlite3_int64>(std::min<std::uint64_t>(seq, INT64_MAX)));
  if (sqlite3_step(stmt->get()) != SQLITE_DONE) {
    return db_error(impl_->path, "cannot set cursor " + std::string(name), impl_->conn.db);
  }
  return success();
}

Result<std::vector<Block>> RecordingReader::read_overlapping(TimeNs from_ns, TimeNs to_ns,
                                                             std::uint64_t after_seq,
                                                             std::size_t max_blocks) {
  std::vector<Block> blocks;
  if (max_blocks == 0 || from_ns > to_ns) return blocks;
  sqlite3* db = impl_->conn.db;
  auto stmt = prepare(db, impl_->path,
                      "SELECT seq, first_ns, last_ns, records, data, lost FROM blocks"
                      " WHERE seq > ? AND last_ns >= ? AND first_ns <= ? ORDER BY seq LIMIT ?");
  if (!stmt) return stmt.error();
  sqlite3_bind_int64(stmt->get(), 1,
                     static_cast<sqlite3_int64>(std::min<std::uint64_t>(after_seq, INT64_MAX)));
  sqlite3_bind_int64(stmt->get(), 2, from_ns);
  sqlite3_bind_int64(stmt->get(), 3, to_ns);
  sqlite3_bind_int64(stmt->get(), 4,
                     static_cast<sqlite3_int64>(std::min<std::size_t>(max_blocks, INT64_MAX)));
  int rc;
  while ((rc = sqlite3_step(stmt->get())) == SQLITE_ROW) {
    auto block = block_from_row(stmt->get(), impl_->path);
    if (!block) return block.error();
    blocks.push_back(std::move(*block));
  }
  if (rc != SQLITE_DONE) return db_error(impl_->path, "cannot read blocks", db);
  return blocks;
}

Result<std::optional<std::pair<TimeNs, TimeNs>>> RecordingReader::time_range() {
  auto stmt =
      prepare(impl_->conn.db, impl_->path, "SELECT count(*), min(first_ns), max(last_ns) FROM blocks");
  if (!stmt) return stmt.error();
  if (sqlite3_step(stmt->get()) != SQLITE_ROW)
    return db_error(impl_->path, "cannot read the time range", impl_->conn.db);
  if (sqlite3_column_int64(stmt->get(), 0) == 0) return std::optional<std::pair<TimeNs, TimeNs>>();
  return std::optional<std::pair<TimeNs, TimeNs>>(
      std::pair<TimeNs, TimeNs>(sqlite3_column_int64(stmt->get(), 1), sqlite3_column_int64(stmt->get(), 2)));
}

Result<std::uint64_t> RecordingReader::first_seq() {
  auto v = query_int(impl_->conn.db, impl_->path, "SELECT coalesce(min(seq), 0) FROM blocks");
  if (!v) return v.error();
  return static_cast<std::uint64_t>(*v);
}

Result<std::uint64_t> RecordingReader::last_seq() {
  auto v = query_int(impl_->conn.db, impl_->path, "SELECT coalesce(max(seq), 0) FROM blocks");
  if (!v) return v.error();
  return static_cast<std::uint64_t>(*v);
}

}  // namespace cellguard::recorder
