// The SQLite backend of Store. Layout (WAL journal, `PRAGMA user_version` = kFormatVersion):
//
//   meta(key TEXT PRIMARY KEY, value)                 "format" = "cellguard-store"
//   edges(id INTEGER PRIMARY KEY, name TEXT UNIQUE, software_version, config_sha256, dbc_sha256,
//         lost_records INTEGER)
//   channels(edge, id, name, unit, module, rig_column, integral, PRIMARY KEY(edge, id))
//   seq_ranges(edge, first, last, PRIMARY KEY(edge, first))   every seq ever stored, as ranges: the
//         idempotency record; retention never touches it
//   pending(edge, seq, first_ns, last_ns, samples, data, PRIMARY KEY(edge, seq))
//         tier 1: each batch as committed, zstd of its series list (chunk_codec.h)
//   series(id INTEGER PRIMARY KEY, edge, channels BLOB, UNIQUE(edge, channels))  a row group's
//         channel ids (varints); one per CAN message, board, inverter...
//   chunks(id INTEGER PRIMARY KEY, series, first_ns, last_ns, rows, samples, data)
//         tier 2: up to chunk_rows rows of one series, zstd of one chunk (chunk_codec.h)
//   latest(edge, channel, time_ns, value, PRIMARY KEY(edge, channel))  the newest compacted sample per
//         channel (newer ones are in pending, which is scanned at open)
//   events(id INTEGER PRIMARY KEY, edge, time_ns, kind, json)
//
// put_batches writes pending rows (small: ~200 ms of a rig each) in one transaction. Compaction
// (background thread, or compact()) reads an edge's pending batches, regroups their rows per series
// into long chunks, and in one transaction inserts the chunks and deletes the batches, so a query in
// one read transaction sees every sample exactly once. Queries read both tiers.
//
// Locks: write_mu_ serializes the write connection; read_mu_ the query connection; compact_mu_
// compaction against retention (both delete pending rows); state_mu_ the in-memory catalogue, seq
// ranges, latest values and pending counters. Order: compact_mu_ -> write_mu_ -> state_mu_;
// read_mu_ -> state_mu_ never held together with write_mu_.
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <thread>
#include <unordered_map>

#include "core/thread_annotations.h"
#include "store/chunk_codec.h"
#include "store/store.h"

namespace cellguard::store {
namespace {

constexpr int kFormatVersion = 1;
constexpr int kBusyTimeoutMs = 10000;
// Compaction reads at most this many samples of one edge at a time (bounds its memory).
constexpr std::uint64_t kMaxCompactSamples = 8u << 20;

using Key = std::vector<std::uint32_t>;  // a row group's channel ids

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
  void reset() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  Stmt& bind(int i, std::int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  Stmt& bind(int i, double v) {
    sqlite3_bind_double(s_, i, v);
    return *this;
  }
  Stmt& bind(int i, std::string_view v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& bind_blob(int i, std::span<const std::uint8_t> v) {
    sqlite3_bind_blob(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    return *this;
  }
  int step() { return sqlite3_step(s_); }
  std::int64_t i64(int c) const { return sqlite3_column_int64(s_, c); }
  double f64(int c) const { return sqlite3_column_double(s_, c); }
  std::string text(int c) const {
    const auto* p = sqlite3_column_text(s_, c);
    return p ? std::string(reinterpret_cast<const char*>(p),
                           static_cast<std::size_t>(sqlite3_column_bytes(s_, c)))
             : "";
  }
  std::span<const std::uint8_t> blob(int c) const {
    const auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(s_, c));
    return {p, p ? static_cast<std::size_t>(sqlite3_column_bytes(s_, c)) : 0};
  }

 private:
  sqlite3_stmt* s_ = nullptr;
};

std::vector<std::uint8_t> key_blob(const Key& key) {
  std::vector<std::uint8_t> out;
  for (std::uint32_t v : key) {
    while (v >= 0x80) {
      out.push_back(static_cast<std::uint8_t>(v | 0x80));
      v >>= 7;
    }
    out.push_back(static_cast<std::uint8_t>(v));
  }
  return out;
}

bool parse_key_blob(std::span<const std::uint8_t> b, Key& key) {
  key.clear();
  std::uint64_t v = 0;
  int shift = 0;
  for (std::uint8_t c : b) {
    if (shift > 28) return false;
    v |= static_cast<std::uint64_t>(c & 0x7f) << shift;
    if (c & 0x80) {
      shift += 7;
      continue;
    }
    if (v > 0xffffffffu) return false;
    key.push_back(static_cast<std::uint32_t>(v));
    v = 0;
    shift = 0;
  }
  return shift == 0 && !key.empty();
}

// Adds seq to disjoint ranges (first -> last), merging neighbours.
void add_seq(std::map<std::uint64_t, std::uint64_t>& ranges, std::uint64_t seq) {
  auto next = ranges.upper_bound(seq);
  if (next != ranges.begin()) {
    auto prev = std::prev(next);
    if (seq <= prev->second) return;
    if (prev->second + 1 == seq) {
      prev->second = seq;
      if (next != ranges.end() && next->first == seq + 1) {
        prev->second = next->second;
        ranges.erase(next);
      }
      return;
    }
  }
  if (next != ranges.end() && next->first == seq + 1) {
    const std::uint64_t last = next->second;
    ranges.erase(next);
    ranges.emplace(seq, last);
    return;
  }
  ranges.emplace(seq, seq);
}

bool has_seq(const std::map<std::uint64_t, std::uint64_t>& ranges, std::uint64_t seq) {
  auto it = ranges.upper_bound(seq);
  if (it == ranges.begin()) return false;
  return std::prev(it)->second >= seq;
}

struct EdgeState {
  std::int64_t row = 0;
  EdgeInfo info;
  std::unordered_map<std::uint32_t, std::size_t> channel_index;  // id -> info.channels index
  std::map<std::uint64_t, std::uint64_t> seqs;
  std::map<std::uint32_t, std::pair<TimeNs, double>> latest;
  std::map<Key, std::int64_t> series_ids;  // compacted series
  std::map<Key, std::uint64_t> pending_rows;
  std::uint64_t pending_batches = 0;
  MonoTime oldest_pending;  // arrival of the oldest pending batch (when pending_batches > 0)
};

void index_channels(EdgeState& e) {
  e.channel_index.clear();
  for (std::size_t i = 0; i < e.info.channels.size(); ++i) e.channel_index[e.info.channels[i].id] = i;
}

// Per column, the row with the greatest time (ties: the later row) among those with a value.
void note_latest(std::map<std::uint32_t, std::pair<TimeNs, double>>& latest, const SeriesBatch& s) {
  const std::size_t cols = s.channels.size();
  for (std::size_t c = 0; c < cols; ++c) {
    std::size_t best = s.times_ns.size();
    for (std::size_t r = 0; r < s.times_ns.size(); ++r)
      if (!std::isnan(s.values[r * cols + c]) &&
          (best == s.times_ns.size() || s.times_ns[r] >= s.times_ns[best]))
        best = r;
    if (best == s.times_ns.size()) continue;
    const std::pair<TimeNs, double> tv{s.times_ns[best], s.values[best * cols + c]};
    auto [it, inserted] = latest.try_emplace(s.channels[c], tv);
    if (!inserted && tv.first >= it->second.first) it->second = tv;
  }
}

class SqliteStore final : public Store {
 public:
  explicit SqliteStore(SqliteStoreConfig config) : config_(std::move(config)) {}

  ~SqliteStore() override {
    {
      MutexLock lock(wake_mu_);
      stop_ = true;
    }
    wake_.notify_all();
    if (compactor_.joinable()) compactor_.join();
    // Statements before connections.
    write_stmts_.clear();
    if (wdb_) sqlite3_close_v2(wdb_);
    if (rdb_) sqlite3_close_v2(rdb_);
  }

  Result<void> open() {
    std::error_code ec;
    const auto folder = std::filesystem::path(config_.path).parent_path();
    if (!folder.empty()) std::filesystem::create_directories(folder, ec);
    if (ec)
      return Error(ErrorCode::io_error,
                   "store " + config_.path + ": cannot create its folder: " + ec.message());
    if (auto ok = open_connection(wdb_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE); !ok) return ok;
    const char* sync = config_.synchronous == Synchronous::full     ? "PRAGMA synchronous=FULL"
                       : config_.synchronous == Synchronous::normal ? "PRAGMA synchronous=NORMAL"
                                                                    : "PRAGMA synchronous=OFF";
    if (auto ok = exec(wdb_, "PRAGMA journal_mode=WAL"); !ok) return ok;
    if (auto ok = exec(wdb_, sync); !ok) return ok;
    auto version = query_int(wdb_, "PRAGMA user_version");
    if (!version) return version.error();
    auto tables = query_int(wdb_, "SELECT count(*) FROM sqlite_master");
    if (!tables) return tables.error();
    if (*version == 0 && *tables != 0) {
      return Error(
          ErrorCode::unsupported,
          "store " + config_.path + ": not a cellguard store (a database without its format version)");
    }
    if (*version != 0 && *version != kFormatVersion) {
      return Error(ErrorCode::unsupported, "store " + config_.path + ": format version " +
                                               std::to_string(*version) + ", this build reads " +
                                               std::to_string(kFormatVersion));
    }
    if (*version == 0) {
      static const char* schema =
          "BEGIN;"
          "CREATE TABLE meta(key TEXT PRIMARY KEY, value);"
          "INSERT INTO meta VALUES('format', 'cellguard-store');"
          "CREATE TABLE edges(id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, software_version TEXT, "
          "  config_sha256 TEXT, dbc_sha256 TEXT, lost_records INTEGER NOT NULL DEFAULT 0);"
          "CREATE TABLE channels(edge INTEGER NOT NULL, id INTEGER NOT NULL, name TEXT, unit TEXT, module "
          "INTEGER, "
          "  rig_column TEXT, integral INTEGER, PRIMARY KEY(edge, id)) WITHOUT ROWID;"
          "CREATE TABLE seq_ranges(edge INTEGER NOT NULL, first INTEGER NOT NULL, last INTEGER NOT NULL, "
          "  PRIMARY KEY(edge, first)) WITHOUT ROWID;"
          "CREATE TABLE pending(edge INTEGER NOT NULL, seq INTEGER NOT NULL, first_ns INTEGER, last_ns "
          "INTEGER, "
          "  samples INTEGER, data BLOB NOT NULL, PRIMARY KEY(edge, seq));"
          "CREATE TABLE series(id INTEGER PRIMARY KEY, edge INTEGER NOT NULL, channels BLOB NOT NULL, "
          "UNIQUE(edge, channels));"
          "CREATE TABLE chunks(id INTEGER PRIMARY KEY, series INTEGER NOT NULL, first_ns INTEGER NOT NULL, "
          "  last_ns INTEGER NOT NULL, rows INTEGER NOT NULL, samples INTEGER NOT NULL, data BLOB NOT NULL);"
          "CREATE INDEX chunks_by_series ON chunks(series, last_ns);"
          "CREATE INDEX chunks_by_age ON chunks(last_ns);"
          "CREATE TABLE latest(edge INTEGER NOT NULL, channel INTEGER NOT NULL, time_ns INTEGER NOT NULL, "
          "value REAL, "
          "  PRIMARY KEY(edge, channel)) WITHOUT ROWID;"
          "CREATE TABLE events(id INTEGER PRIMARY KEY, edge INTEGER NOT NULL, time_ns INTEGER NOT NULL, kind "
          "TEXT, json TEXT);"
          "CREATE INDEX events_by_time ON events(edge, time_ns);"
          "PRAGMA user_version=1;"
          "COMMIT;";
      if (auto ok = exec(wdb_, schema); !ok) return ok;
    }
    if (auto ok = open_connection(rdb_, SQLITE_OPEN_READONLY); !ok) return ok;
    {
      MutexLock wlock(write_mu_);  // nothing else runs yet; stated for the lock analysis
      if (auto ok = prepare_write_statements(); !ok) return ok;
    }
    if (auto ok = load(); !ok) return ok;
    if (config_.background_compaction) compactor_ = std::thread([this] { compactor_loop(); });
    return success();
  }

  Result<void> put_edge(const EdgeInfo& info) override {
    if (info.edge_id.empty()) return Error(ErrorCode::invalid_argument, "store: put_edge: empty edge id");
    MutexLock wlock(write_mu_);
    std::int64_t row = 0;
    {
      MutexLock slock(state_mu_);
      if (auto it = edges_.find(info.edge_id); it != edges_.end()) row = it->second.row;
    }
    if (auto ok = exec(wdb_, "BEGIN IMMEDIATE"); !ok) return ok;
    auto fail = [&](std::string_view what) {
      Error e = db_error(what, wdb_);
      (void)exec(wdb_, "ROLLBACK");
      return e;
    };
    if (row == 0) {
      Stmt& ins =
          stmt("INSERT INTO edges(name, software_version, config_sha256, dbc_sha256) VALUES(?,?,?,?)");
      ins.bind(1, info.edge_id)
          .bind(2, info.software_version)
          .bind(3, info.config_sha256)
          .bind(4, info.dbc_sha256);
      const int rc = ins.step();
      ins.reset();
      if (rc != SQLITE_DONE) return fail("cannot insert edge");
      row = sqlite3_last_insert_rowid(wdb_);
    } else {
      Stmt& up = stmt("UPDATE edges SET software_version=?, config_sha256=?, dbc_sha256=? WHERE id=?");
      up.bind(1, info.software_version).bind(2, info.config_sha256).bind(3, info.dbc_sha256).bind(4, row);
      const int rc = up.step();
      up.reset();
      if (rc != SQLITE_DONE) return fail("cannot update edge");
    }
    Stmt& ch = stmt("INSERT OR REPLACE INTO channels VALUES(?,?,?,?,?,?,?)");
    for (const auto& c : info.channels) {
      ch.bind(1, row).bind(2, static_cast<std::int64_t>(c.id)).bind(3, c.name).bind(4, c.unit);
      ch.bind(5, static_cast<std::int64_t>(c.module))
          .bind(6, c.rig_column)
          .bind(7, static_cast<std::int64_t>(c.integral));
      const int rc = ch.step();
      ch.reset();
      if (rc != SQLITE_DONE) return fail("cannot store channel");
    }
    if (auto ok = exec(wdb_, "COMMIT"); !ok) {
      (void)exec(wdb_, "ROLLBACK");
      return ok;
    }
    MutexLock slock(state_mu_);
    EdgeState& e = edges_[info.edge_id];
    e.row = row;
    const std::vector<Channel> old = std::move(e.info.channels);
    e.info = info;
    e.info.channels.clear();
    std::map<std::uint32_t, Channel> merged;
    for (const auto& c : old) merged[c.id] = c;
    for (const auto& c : info.channels) merged[c.id] = c;
    for (auto& [id, c] : merged) e.info.channels.push_back(std::move(c));
    index_channels(e);
    return success();
  }

  Result<PutResult> put_batches(std::span<const EdgeBatches> batches) override {
    struct Encoded {
      EdgeState* edge;
      const Batch* batch;
      std::vector<std::uint8_t> data;
      TimeNs first = 0, last = 0;
      std::uint64_t samples = 0;
    };
    MutexLock wlock(write_mu_);
    PutResult result;
    std::vector<Encoded> todo;
    std::map<EdgeState*, std::map<std::uint64_t, std::uint64_t>> new_seqs;  // per edge: after this call
    std::map<EdgeState*, std::uint64_t> lost;
    {
      MutexLock slock(state_mu_);
      for (const auto& eb : batches) {
        auto it = edges_.find(eb.edge_id);
        if (it == edges_.end())
          return Error(ErrorCode::not_found, "store: unknown edge \"" + eb.edge_id + "\" (no put_edge)");
        EdgeState* e = &it->second;
        auto [ns, fresh] = new_seqs.try_emplace(e);
        if (fresh) ns->second = e->seqs;
        for (const auto& b : eb.batches) {
          if (has_seq(ns->second, b.seq)) {
            ++result.duplicates;
            continue;
          }
          if (auto ok = validate(*e, b); !ok) return ok.error();
          add_seq(ns->second, b.seq);
          todo.push_back({e, &b, {}, 0, 0, 0});
        }
      }
    }
    // Encoding needs no lock but write_mu_ (the catalogue is only changed under it).
    std::vector<std::uint8_t>& raw = scratch_;
    for (auto& t : todo) {
      lost[t.edge] += t.batch->lost_records;
      if (t.batch->series.empty()) continue;
      raw.clear();
      detail::encode_series_list(t.batch->series, raw);
      if (auto ok = detail::compress(raw, config_.zstd_level, t.data); !ok) return ok.error();
      t.first = std::numeric_limits<TimeNs>::max();
      t.last = std::numeric_limits<TimeNs>::min();
      for (const auto& s : t.batch->series) {
        for (TimeNs time : s.times_ns) {
          t.first = std::min(t.first, time);
          t.last = std::max(t.last, time);
        }
        for (double v : s.values) t.samples += !std::isnan(v);
      }
    }
    if (todo.empty()) {  // nothing new: what is already stored is durable
      duplicates_ += result.duplicates;
      return result;
    }
    if (auto ok = exec(wdb_, "BEGIN IMMEDIATE"); !ok) return ok.error();
    auto fail = [&](std::string_view what) {
      Error e = db_error(what, wdb_);
      (void)exec(wdb_, "ROLLBACK");
      return e;
    };
    Stmt& ins = stmt("INSERT INTO pending VALUES(?,?,?,?,?,?)");
    Stmt& ev = stmt("INSERT INTO events(edge, time_ns, kind, json) VALUES(?,?,?,?)");
    for (const auto& t : todo) {
      if (!t.data.empty()) {
        ins.bind(1, t.edge->row)
            .bind(2, static_cast<std::int64_t>(t.batch->seq))
            .bind(3, t.first)
            .bind(4, t.last);
        ins.bind(5, static_cast<std::int64_t>(t.samples)).bind_blob(6, t.data);
        const int rc = ins.step();
        ins.reset();
        if (rc != SQLITE_DONE) return fail("cannot store batch");
      }
      for (const auto& e : t.batch->events) {
        ev.bind(1, t.edge->row).bind(2, e.time_ns).bind(3, e.kind).bind(4, e.json);
        const int rc = ev.step();
        ev.reset();
        if (rc != SQLITE_DONE) return fail("cannot store event");
      }
      result.samples += t.samples;
      ++result.stored;
    }
    Stmt& del = stmt("DELETE FROM seq_ranges WHERE edge=? AND first=?");
    Stmt& put = stmt("INSERT OR REPLACE INTO seq_ranges VALUES(?,?,?)");
    for (const auto& [e, ranges] : new_seqs) {
      for (const auto& [first, last] : e->seqs) {
        auto it = ranges.find(first);
        if (it != ranges.end()) continue;
        del.bind(1, e->row).bind(2, static_cast<std::int64_t>(first));
        const int rc = del.step();
        del.reset();
        if (rc != SQLITE_DONE) return fail("cannot update seq ranges");
      }
      for (const auto& [first, last] : ranges) {
        auto it = e->seqs.find(first);
        if (it != e->seqs.end() && it->second == last) continue;
        put.bind(1, e->row)
            .bind(2, static_cast<std::int64_t>(first))
            .bind(3, static_cast<std::int64_t>(last));
        const int rc = put.step();
        put.reset();
        if (rc != SQLITE_DONE) return fail("cannot update seq ranges");
      }
    }
    Stmt& lost_stmt = stmt("UPDATE edges SET lost_records = lost_records + ? WHERE id=?");
    for (const auto& [e, n] : lost) {
      if (n == 0) continue;
      lost_stmt.bind(1, static_cast<std::int64_t>(n)).bind(2, e->row);
      const int rc = lost_stmt.step();
      lost_stmt.reset();
      if (rc != SQLITE_DONE) return fail("cannot count lost records");
    }
    if (sqlite3_exec(wdb_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) return fail("cannot commit");

    bool wake = false;
    {
      MutexLock slock(state_mu_);
      const MonoTime now = config_.clock->mono_now();
      for (auto& [e, ranges] : new_seqs) e->seqs = std::move(ranges);
      for (const auto& t : todo) {
        for (const auto& s : t.batch->series) {
          note_latest(t.edge->latest, s);
          auto& rows = t.edge->pending_rows[s.channels];
          rows += s.times_ns.size();
          if (rows >= config_.chunk_rows) wake = true;
        }
        if (!t.data.empty()) {
          if (t.edge->pending_batches++ == 0) t.edge->oldest_pending = now;
          ++pending_batches_;
        }
      }
    }
    std::uint64_t lost_total = 0;
    for (const auto& [e, n] : lost) lost_total += n;
    samples_stored_ += result.samples;
    batches_stored_ += result.stored;
    duplicates_ += result.duplicates;
    lost_records_ += lost_total;
    ++commits_;
    if (wake && config_.background_compaction) wake_.notify_one();
    return result;
  }

  Result<std::vector<SeqRange>> stored_seqs(std::string_view edge_id) override {
    MutexLock slock(state_mu_);
    auto it = edges_.find(edge_id);
    if (it == edges_.end())
      return Error(ErrorCode::not_found, "store: unknown edge \"" + std::string(edge_id) + "\"");
    std::vector<SeqRange> out;
    for (const auto& [first, last] : it->second.seqs) out.push_back({first, last});
    return out;
  }

  Result<std::vector<EdgeInfo>> edges() override {
    MutexLock slock(state_mu_);
    std::vector<EdgeInfo> out;
    for (const auto& [name, e] : edges_) out.push_back(e.info);
    return out;
  }

  Result<std::vector<LatestValue>> latest(std::string_view edge_id) override {
    MutexLock slock(state_mu_);
    auto it = edges_.find(edge_id);
    if (it == edges_.end())
      return Error(ErrorCode::not_found, "store: unknown edge \"" + std::string(edge_id) + "\"");
    const EdgeState& e = it->second;
    std::vector<LatestValue> out;
    for (const auto& [id, tv] : e.latest) {
      auto ci = e.channel_index.find(id);
      out.push_back(
          {id, ci == e.channel_index.end() ? "" : e.info.channels[ci->second].name, tv.first, tv.second});
    }
    return out;
  }

  Result<Series> series(std::string_view edge_id, std::string_view channel_name, TimeNs from, TimeNs to,
                        std::size_t max_points) override {
    if (max_points == 0) return Error(ErrorCode::invalid_argument, "store: series: max_points must be >= 1");
    Series out;
    std::uint32_t channel = 0;
    std::int64_t edge_row = 0;
    std::vector<std::pair<std::int64_t, std::size_t>> where;  // series id, column
    {
      MutexLock slock(state_mu_);
      auto it = edges_.find(edge_id);
      if (it == edges_.end())
        return Error(ErrorCode::not_found, "store: unknown edge \"" + std::string(edge_id) + "\"");
      const EdgeState& e = it->second;
      const Channel* found = nullptr;
      for (const auto& c : e.info.channels)
        if (c.name == channel_name) found = &c;
      if (!found) {
        return Error(ErrorCode::not_found, "store: edge \"" + std::string(edge_id) + "\" has no channel \"" +
                                               std::string(channel_name) + "\"");
      }
      channel = found->id;
      out.channel = found->name;
      out.unit = found->unit;
      edge_row = e.row;
    }
    std::vector<Point> points;
    {
      MutexLock rlock(read_mu_);
      if (auto ok = exec(rdb_, "BEGIN"); !ok) return ok.error();
      auto done = [&] { (void)exec(rdb_, "COMMIT"); };
      // The series from the same snapshot as the chunks (a compaction may have added some).
      auto all = read_series(edge_row);
      if (!all) return done(), all.error();
      for (const auto& [id, key] : *all) {
        auto pos = std::find(key.begin(), key.end(), channel);
        if (pos != key.end()) where.emplace_back(id, static_cast<std::size_t>(pos - key.begin()));
      }
      auto q = prepare(rdb_, "SELECT data FROM chunks WHERE series=? AND last_ns>=? AND first_ns<=?");
      if (!q) return done(), q.error();
      std::vector<std::uint8_t> raw;
      detail::DecodedChunk chunk;
      for (const auto& [id, column] : where) {
        q->bind(1, id).bind(2, from).bind(3, to);
        int rc;
        while ((rc = q->step()) == SQLITE_ROW) {
          if (auto ok = detail::decompress(q->blob(0), raw); !ok) return done(), ok.error();
          auto used = detail::decode_chunk(raw, chunk, column);
          if (!used) return done(), used.error();
          for (std::size_t r = 0; r < chunk.rows; ++r)
            if (chunk.times[r] >= from && chunk.times[r] <= to && !std::isnan(chunk.values[r]))
              points.push_back({chunk.times[r], chunk.values[r]});
        }
        q->reset();
        if (rc != SQLITE_DONE) return done(), db_error("cannot read chunks", rdb_);
      }
      auto ok = scan_pending(edge_row, from, to, [&](const SeriesBatch& s) {
        auto pos = std::find(s.channels.begin(), s.channels.end(), channel);
        if (pos == s.channels.end()) return;
        const std::size_t c = static_cast<std::size_t>(pos - s.channels.begin()), cols = s.channels.size();
        for (std::size_t r = 0; r < s.times_ns.size(); ++r) {
          const double v = s.values[r * cols + c];
          if (s.times_ns[r] >= from && s.times_ns[r] <= to && !std::isnan(v))
            points.push_back({s.times_ns[r], v});
        }
      });
      done();
      if (!ok) return ok.error();
    }
    std::stable_sort(points.begin(), points.end(),
                     [](const Point& a, const Point& b) { return a.time_ns < b.time_ns; });
    if (points.size() <= max_points) {
      out.points = std::move(points);
      return out;
    }
    out.downsampled = true;
    // Equal buckets over [from, to]; unsigned arithmetic: the span may exceed INT64_MAX.
    const std::uint64_t span = static_cast<std::uint64_t>(to) - static_cast<std::uint64_t>(from) + 1;
    std::uint64_t width = span / max_points + (span % max_points != 0);
    if (width == 0) width = 1;
    out.bucket_ns =
        static_cast<TimeNs>(std::min<std::uint64_t>(width, static_cast<std::uint64_t>(INT64_MAX)));
    Bucket* b = nullptr;
    std::uint64_t current = ~0ull;
    for (const Point& p : points) {
      const std::uint64_t index =
          (static_cast<std::uint64_t>(p.time_ns) - static_cast<std::uint64_t>(from)) / width;
      if (index != current || !b) {
        if (b) b->mean /= static_cast<double>(b->count);
        current = index;
        out.buckets.push_back(
            {static_cast<TimeNs>(static_cast<std::uint64_t>(from) + index * width), p.value, p.value, 0, 0});
        b = &out.buckets.back();
      }
      b->min = std::min(b->min, p.value);
      b->max = std::max(b->max, p.value);
      b->mean += p.value;
      ++b->count;
    }
    if (b) b->mean /= static_cast<double>(b->count);
    return out;
  }

  Result<std::vector<Event>> events(std::string_view edge_id, TimeNs from, TimeNs to,
                                    std::size_t limit) override {
    std::int64_t row = 0;
    {
      MutexLock slock(state_mu_);
      auto it = edges_.find(edge_id);
      if (it == edges_.end())
        return Error(ErrorCode::not_found, "store: unknown edge \"" + std::string(edge_id) + "\"");
      row = it->second.row;
    }
    MutexLock rlock(read_mu_);
    auto q = prepare(rdb_,
                     "SELECT time_ns, kind, json FROM events WHERE edge=? AND time_ns>=? AND time_ns<=? "
                     "ORDER BY time_ns, id LIMIT ?");
    if (!q) return q.error();
    q->bind(1, row).bind(2, from).bind(3, to).bind(
        4, static_cast<std::int64_t>(std::min<std::size_t>(limit, INT64_MAX)));
    std::vector<Event> out;
    int rc;
    while ((rc = q->step()) == SQLITE_ROW) out.push_back({q->i64(0), q->text(1), q->text(2)});
    if (rc != SQLITE_DONE) return db_error("cannot read events", rdb_);
    return out;
  }

  Result<void> scan(std::string_view edge_id, TimeNs from, TimeNs to,
                    const std::function<void(const SeriesBatch&)>& sink) override {
    std::int64_t row = 0;
    {
      MutexLock slock(state_mu_);
      auto it = edges_.find(edge_id);
      if (it == edges_.end())
        return Error(ErrorCode::not_found, "store: unknown edge \"" + std::string(edge_id) + "\"");
      row = it->second.row;
    }
    MutexLock rlock(read_mu_);
    if (auto ok = exec(rdb_, "BEGIN"); !ok) return ok;
    auto done = [&] { (void)exec(rdb_, "COMMIT"); };
    auto series_list = read_series(row);
    if (!series_list) return done(), series_list.error();
    const auto& all = *series_list;
    auto q = prepare(rdb_, "SELECT data FROM chunks WHERE series=? AND last_ns>=? AND first_ns<=?");
    if (!q) return done(), q.error();
    std::vector<std::uint8_t> raw;
    detail::DecodedChunk chunk;
    SeriesBatch clipped;
    for (const auto& [id, key] : all) {
      q->bind(1, id).bind(2, from).bind(3, to);
      int rc;
      while ((rc = q->step()) == SQLITE_ROW) {
        if (auto ok = detail::decompress(q->blob(0), raw); !ok) return done(), ok;
        auto used = detail::decode_chunk(raw, chunk);
        if (!used) return done(), used.error();
        if (chunk.columns != key.size())
          return done(), Error(ErrorCode::parse_error, "store: a chunk does not fit its series");
        SeriesBatch s{key, std::move(chunk.times), std::move(chunk.values)};
        clip_and_send(s, from, to, clipped, sink);
      }
      q->reset();
      if (rc != SQLITE_DONE) return done(), db_error("cannot read chunks", rdb_);
    }
    auto ok =
        scan_pending(row, from, to, [&](const SeriesBatch& s) { clip_and_send(s, from, to, clipped, sink); });
    done();
    return ok;
  }

  Result<RetentionResult> apply_retention(WallTime now) override {
    RetentionResult result;
    if (config_.max_age_ns <= 0) return result;
    const TimeNs cutoff = now.ns() - config_.max_age_ns;
    MutexLock clock(compact_mu_);
    MutexLock wlock(write_mu_);
    if (auto ok = exec(wdb_, "BEGIN IMMEDIATE"); !ok) return ok.error();
    auto run = [&](const char* sql, std::uint64_t& count) {
      auto s = prepare(wdb_, sql);
      if (!s) return false;
      s->bind(1, cutoff);
      if (s->step() != SQLITE_DONE) return false;
      count = static_cast<std::uint64_t>(sqlite3_changes(wdb_));
      return true;
    };
    if (!run("DELETE FROM chunks WHERE last_ns < ?", result.chunks_deleted) ||
        !run("DELETE FROM pending WHERE last_ns < ?", result.batches_deleted) ||
        !run("DELETE FROM events WHERE time_ns < ?", result.events_deleted)) {
      Error e = db_error("retention", wdb_);
      (void)exec(wdb_, "ROLLBACK");
      return e;
    }
    if (sqlite3_exec(wdb_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
      Error e = db_error("retention: cannot commit", wdb_);
      (void)exec(wdb_, "ROLLBACK");
      return e;
    }
    wlock.unlock();
    if (result.batches_deleted) {
      if (auto ok = recount_pending(); !ok) return ok.error();
    }
    return result;
  }

  Result<CompactResult> compact(bool force) override {
    CompactResult total;
    std::vector<std::string> names;
    {
      MutexLock slock(state_mu_);
      for (const auto& [name, e] : edges_)
        if (e.pending_batches && (force || due(e, config_.clock->mono_now()))) names.push_back(name);
    }
    for (const auto& name : names) {
      for (;;) {  // an edge with more pending than kMaxCompactSamples takes several rounds
        bool more = false;
        auto r = compact_edge(name, more);
        if (!r) return r.error();
        total.batches += r->batches;
        total.chunks += r->chunks;
        total.samples += r->samples;
        if (r->batches == 0 || !more) break;
      }
    }
    return total;
  }

  StoreStats stats() const override {
    StoreStats s;
    std::error_code ec;
    for (const char* suffix : {"", "-wal"}) {
      const auto size = std::filesystem::file_size(config_.path + suffix, ec);
      if (!ec) s.file_bytes += size;
    }
    s.samples_stored = samples_stored_;
    s.batches_stored = batches_stored_;
    s.duplicates = duplicates_;
    s.lost_records = lost_records_;
    s.commits = commits_;
    s.compactions = compactions_;
    s.batches_compacted = batches_compacted_;
    s.chunks_written = chunks_written_;
    s.pending_batches = pending_batches_;
    MutexLock lock(wake_mu_);
    s.last_error = last_error_;
    return s;
  }

 private:
  Error db_error(std::string_view what, sqlite3* db) const {
    return Error(ErrorCode::io_error, "store " + config_.path + ": " + std::string(what) + ": " +
                                          (db ? sqlite3_errmsg(db) : "out of memory"));
  }

  Result<void> open_connection(sqlite3*& db, int flags) {
    if (sqlite3_open_v2(config_.path.c_str(), &db, flags | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
      Error e = db_error("cannot open", db);
      sqlite3_close_v2(db);
      db = nullptr;
      return e;
    }
    sqlite3_busy_timeout(db, kBusyTimeoutMs);
    return success();
  }

  Result<void> exec(sqlite3* db, const char* sql) {
    char* message = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &message) != SQLITE_OK) {
      std::string text = message ? message : sqlite3_errmsg(db);
      sqlite3_free(message);
      return Error(ErrorCode::io_error, "store " + config_.path + ": " + sql + ": " + text);
    }
    return success();
  }

  Result<Stmt> prepare(sqlite3* db, const char* sql) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db, sql, -1, &s, nullptr) != SQLITE_OK) {
      sqlite3_finalize(s);
      return db_error(std::string("cannot prepare \"") + sql + "\"", db);
    }
    return Stmt(s);
  }

  Result<std::int64_t> query_int(sqlite3* db, const char* sql) {
    auto s = prepare(db, sql);
    if (!s) return s.error();
    const int rc = s->step();
    if (rc == SQLITE_ROW) return s->i64(0);
    if (rc == SQLITE_DONE) return std::int64_t{0};
    return db_error(sql, db);
  }

  // The write connection's statements, prepared once.
  Result<void> prepare_write_statements() REQUIRES(write_mu_) {
    for (const char* sql :
         {"INSERT INTO edges(name, software_version, config_sha256, dbc_sha256) VALUES(?,?,?,?)",
          "UPDATE edges SET software_version=?, config_sha256=?, dbc_sha256=? WHERE id=?",
          "INSERT OR REPLACE INTO channels VALUES(?,?,?,?,?,?,?)", "INSERT INTO pending VALUES(?,?,?,?,?,?)",
          "INSERT INTO events(edge, time_ns, kind, json) VALUES(?,?,?,?)",
          "DELETE FROM seq_ranges WHERE edge=? AND first=?",
          "INSERT OR REPLACE INTO seq_ranges VALUES(?,?,?)",
          "UPDATE edges SET lost_records = lost_records + ? WHERE id=?",
          "INSERT INTO chunks(series, first_ns, last_ns, rows, samples, data) VALUES(?,?,?,?,?,?)",
          "DELETE FROM pending WHERE edge=? AND seq=?", "INSERT OR REPLACE INTO latest VALUES(?,?,?,?)"}) {
      auto s = prepare(wdb_, sql);
      if (!s) return s.error();
      write_stmts_.emplace(sql, std::move(*s));
    }
    return success();
  }

  Stmt& stmt(const char* sql) REQUIRES(write_mu_) { return write_stmts_.at(sql); }

  Result<void> validate(const EdgeState& e, const Batch& b) const {
    auto bad = [&](const std::string& why) {
      return Error(ErrorCode::invalid_argument,
                   "store: edge \"" + e.info.edge_id + "\" batch " + std::to_string(b.seq) + ": " + why);
    };
    for (const auto& s : b.series) {
      if (s.channels.empty() || s.channels.size() > detail::kMaxColumns)
        return bad("a series with " + std::to_string(s.channels.size()) + " channels");
      if (s.times_ns.size() > detail::kMaxRows || s.times_ns.size() * s.channels.size() > detail::kMaxCells)
        return bad("a series too large");
      if (s.values.size() != s.times_ns.size() * s.channels.size())
        return bad("values do not fill rows x channels");
      for (std::size_t i = 0; i < s.channels.size(); ++i) {
        if (!e.channel_index.count(s.channels[i]))
          return bad("channel " + std::to_string(s.channels[i]) + " is not in the catalogue");
        for (std::size_t j = 0; j < i; ++j)
          if (s.channels[j] == s.channels[i])
            return bad("channel " + std::to_string(s.channels[i]) + " twice in one series");
      }
    }
    return success();
  }

  // The edge's compacted series (read_mu_ held, inside the caller's read transaction).
  Result<std::vector<std::pair<std::int64_t, Key>>> read_series(std::int64_t edge_row) {
    auto q = prepare(rdb_, "SELECT id, channels FROM series WHERE edge=?");
    if (!q) return q.error();
    q->bind(1, edge_row);
    std::vector<std::pair<std::int64_t, Key>> out;
    Key key;
    int rc;
    while ((rc = q->step()) == SQLITE_ROW) {
      if (!parse_key_blob(q->blob(1), key))
        return Error(ErrorCode::parse_error, "store " + config_.path + ": a corrupt series row");
      out.emplace_back(q->i64(0), key);
    }
    if (rc != SQLITE_DONE) return db_error("cannot read series", rdb_);
    return out;
  }

  // Calls f with every series of the edge's pending batches overlapping [from, to] (read_mu_ held,
  // inside the caller's read transaction).
  template <typename F>
  Result<void> scan_pending(std::int64_t edge_row, TimeNs from, TimeNs to, F&& f) {
    auto q = prepare(rdb_, "SELECT seq, data FROM pending WHERE edge=? AND last_ns>=? AND first_ns<=?");
    if (!q) return q.error();
    q->bind(1, edge_row).bind(2, from).bind(3, to);
    std::vector<std::uint8_t> raw;
    std::vector<SeriesBatch> list;
    int rc;
    while ((rc = q->step()) == SQLITE_ROW) {
      if (auto ok = detail::decompress(q->blob(1), raw); !ok) return ok;
      if (auto ok = detail::decode_series_list(raw, list); !ok) {
        return Error(ErrorCode::parse_error,
                     "store: batch " + std::to_string(q->i64(0)) + ": " + ok.error().message);
      }
      for (const auto& s : list) f(s);
    }
    if (rc != SQLITE_DONE) return db_error("cannot read batches", rdb_);
    return success();
  }

  static void clip_and_send(const SeriesBatch& s, TimeNs from, TimeNs to, SeriesBatch& clipped,
                            const std::function<void(const SeriesBatch&)>& sink) {
    bool all = true;
    for (TimeNs t : s.times_ns) all = all && t >= from && t <= to;
    if (all) {
      if (!s.times_ns.empty()) sink(s);
      return;
    }
    clipped.channels = s.channels;
    clipped.times_ns.clear();
    clipped.values.clear();
    const std::size_t cols = s.channels.size();
    for (std::size_t r = 0; r < s.times_ns.size(); ++r) {
      if (s.times_ns[r] < from || s.times_ns[r] > to) continue;
      clipped.times_ns.push_back(s.times_ns[r]);
      clipped.values.insert(clipped.values.end(), s.values.begin() + static_cast<std::ptrdiff_t>(r * cols),
                            s.values.begin() + static_cast<std::ptrdiff_t>((r + 1) * cols));
    }
    if (!clipped.times_ns.empty()) sink(clipped);
  }

  // Loads the catalogue, seq ranges, series, latest values and the pending counters.
  Result<void> load() {
    MutexLock wlock(write_mu_);
    MutexLock slock(state_mu_);
    std::map<std::int64_t, EdgeState*> by_row;
    {
      auto q = prepare(wdb_, "SELECT id, name, software_version, config_sha256, dbc_sha256 FROM edges");
      if (!q) return q.error();
      while (q->step() == SQLITE_ROW) {
        EdgeState& e = edges_[q->text(1)];
        e.row = q->i64(0);
        e.info = {q->text(1), q->text(2), q->text(3), q->text(4), {}};
        by_row[e.row] = &e;
      }
    }
    auto edge_of = [&](std::int64_t row) -> EdgeState* {
      auto it = by_row.find(row);
      return it == by_row.end() ? nullptr : it->second;
    };
    {
      auto q = prepare(
          wdb_, "SELECT edge, id, name, unit, module, rig_column, integral FROM channels ORDER BY edge, id");
      if (!q) return q.error();
      while (q->step() == SQLITE_ROW) {
        if (EdgeState* e = edge_of(q->i64(0))) {
          e->info.channels.push_back({static_cast<std::uint32_t>(q->i64(1)), q->text(2), q->text(3),
                                      static_cast<int>(q->i64(4)), q->text(5), q->i64(6) != 0});
        }
      }
      for (auto& [row, e] : by_row) index_channels(*e);
    }
    {
      auto q = prepare(wdb_, "SELECT edge, first, last FROM seq_ranges");
      if (!q) return q.error();
      while (q->step() == SQLITE_ROW)
        if (EdgeState* e = edge_of(q->i64(0)))
          e->seqs[static_cast<std::uint64_t>(q->i64(1))] = static_cast<std::uint64_t>(q->i64(2));
    }
    {
      auto q = prepare(wdb_, "SELECT id, edge, channels FROM series");
      if (!q) return q.error();
      Key key;
      while (q->step() == SQLITE_ROW) {
        if (!parse_key_blob(q->blob(2), key))
          return Error(ErrorCode::parse_error, "store " + config_.path + ": a corrupt series row");
        if (EdgeState* e = edge_of(q->i64(1))) e->series_ids[key] = q->i64(0);
      }
    }
    {
      auto q = prepare(wdb_, "SELECT edge, channel, time_ns, value FROM latest");
      if (!q) return q.error();
      while (q->step() == SQLITE_ROW)
        if (EdgeState* e = edge_of(q->i64(0)))
          e->latest[static_cast<std::uint32_t>(q->i64(1))] = {q->i64(2), q->f64(3)};
    }
    return recount_pending_locked(by_row, true);
  }

  Result<void> recount_pending() {
    MutexLock wlock(write_mu_);
    MutexLock slock(state_mu_);
    std::map<std::int64_t, EdgeState*> by_row;
    for (auto& [name, e] : edges_) by_row[e.row] = &e;
    return recount_pending_locked(by_row, false);
  }

  // Pending counters (and, at open, latest values) from the pending table (write_mu_, state_mu_ held).
  Result<void> recount_pending_locked(std::map<std::int64_t, EdgeState*>& by_row, bool with_latest) {
    const MonoTime now = config_.clock->mono_now();
    pending_batches_ = 0;
    for (auto& [row, e] : by_row) {
      e->pending_rows.clear();
      e->pending_batches = 0;
      e->oldest_pending = MonoTime{};
    }
    auto q = prepare(wdb_, "SELECT edge, seq, data FROM pending ORDER BY edge, seq");
    if (!q) return q.error();
    std::vector<std::uint8_t> raw;
    std::vector<SeriesBatch> list;
    while (q->step() == SQLITE_ROW) {
      auto it = by_row.find(q->i64(0));
      if (it == by_row.end()) continue;
      EdgeState& e = *it->second;
      if (auto ok = detail::decompress(q->blob(2), raw); !ok) return ok;
      if (auto ok = detail::decode_series_list(raw, list); !ok) {
        return Error(ErrorCode::parse_error,
                     "store: batch " + std::to_string(q->i64(1)) + ": " + ok.error().message);
      }
      for (const auto& s : list) {
        if (with_latest) note_latest(e.latest, s);
        e.pending_rows[s.channels] += s.times_ns.size();
      }
      if (e.pending_batches++ == 0) e.oldest_pending = now;
      ++pending_batches_;
    }
    return success();
  }

  bool due(const EdgeState& e, MonoTime now) const {
    if (e.pending_batches == 0) return false;
    for (const auto& [key, rows] : e.pending_rows)
      if (rows >= config_.chunk_rows) return true;
    return now - e.oldest_pending >= Duration(config_.compact_after_ns);
  }

  // Folds up to kMaxCompactSamples of the edge's pending batches (oldest seq first) into chunks.
  Result<CompactResult> compact_edge(const std::string& name, bool& more) {
    MutexLock clock(compact_mu_);
    CompactResult result;
    more = false;
    std::int64_t edge_row = 0;
    {
      MutexLock slock(state_mu_);
      auto it = edges_.find(name);
      if (it == edges_.end()) return result;
      edge_row = it->second.row;
    }
    struct Group {
      std::vector<TimeNs> times;
      std::vector<double> values;
    };
    std::map<Key, Group> groups;
    std::vector<std::int64_t> seqs;
    {
      MutexLock rlock(read_mu_);
      auto q = prepare(rdb_, "SELECT seq, samples, data FROM pending WHERE edge=? ORDER BY seq");
      if (!q) return q.error();
      q->bind(1, edge_row);
      std::vector<std::uint8_t> raw;
      std::vector<SeriesBatch> list;
      std::uint64_t samples = 0;
      int rc;
      while ((rc = q->step()) == SQLITE_ROW) {
        if (samples >= kMaxCompactSamples) {
          more = true;
          break;
        }
        if (auto ok = detail::decompress(q->blob(2), raw); !ok) return ok.error();
        if (auto ok = detail::decode_series_list(raw, list); !ok) {
          return Error(ErrorCode::parse_error,
                       "store: batch " + std::to_string(q->i64(0)) + ": " + ok.error().message);
        }
        seqs.push_back(q->i64(0));
        samples += static_cast<std::uint64_t>(q->i64(1));
        for (auto& s : list) {
          Group& g = groups[s.channels];
          g.times.insert(g.times.end(), s.times_ns.begin(), s.times_ns.end());
          g.values.insert(g.values.end(), s.values.begin(), s.values.end());
        }
      }
      if (rc != SQLITE_DONE && rc != SQLITE_ROW) return db_error("cannot read batches", rdb_);
    }
    if (seqs.empty()) return result;

    struct Chunk {
      const Key* key;
      TimeNs first, last;
      std::size_t rows;
      std::uint64_t samples;
      std::vector<std::uint8_t> data;
    };
    std::vector<Chunk> chunks;
    std::map<std::uint32_t, std::pair<TimeNs, double>> newest;
    std::vector<std::uint8_t> raw;
    for (const auto& [key, g] : groups) {
      const std::size_t cols = key.size();
      const std::size_t rows = g.times.size();
      const std::size_t per = std::max<std::size_t>(
          1, std::min(config_.chunk_rows, std::min(detail::kMaxRows, detail::kMaxCells / cols)));
      for (std::size_t at = 0; at < rows; at += per) {
        const std::size_t n = std::min(per, rows - at);
        std::span<const TimeNs> times(g.times.data() + at, n);
        std::span<const double> values(g.values.data() + at * cols, n * cols);
        raw.clear();
        detail::encode_chunk(times, cols, values, raw);
        Chunk c{&key,
                *std::min_element(times.begin(), times.end()),
                *std::max_element(times.begin(), times.end()),
                n,
                0,
                {}};
        for (double v : values) c.samples += !std::isnan(v);
        if (auto ok = detail::compress(raw, config_.chunk_zstd_level, c.data); !ok) return ok.error();
        result.samples += c.samples;
        chunks.push_back(std::move(c));
      }
      note_latest(newest, SeriesBatch{key, g.times, g.values});
    }

    MutexLock wlock(write_mu_);
    if (auto ok = exec(wdb_, "BEGIN IMMEDIATE"); !ok) return ok.error();
    auto fail = [&](std::string_view what) {
      Error e = db_error(what, wdb_);
      (void)exec(wdb_, "ROLLBACK");
      return e;
    };
    std::map<Key, std::int64_t> new_series;
    {
      std::map<Key, std::int64_t> known;
      {
        MutexLock slock(state_mu_);
        known = edges_.at(name).series_ids;
      }
      Stmt& ins =
          stmt("INSERT INTO chunks(series, first_ns, last_ns, rows, samples, data) VALUES(?,?,?,?,?,?)");
      for (const auto& c : chunks) {
        std::int64_t id = 0;
        if (auto it = known.find(*c.key); it != known.end()) {
          id = it->second;
        } else {
          auto s = prepare(wdb_, "INSERT INTO series(edge, channels) VALUES(?,?)");
          if (!s) return (void)exec(wdb_, "ROLLBACK"), s.error();
          const auto blob = key_blob(*c.key);
          s->bind(1, edge_row).bind_blob(2, blob);
          if (s->step() != SQLITE_DONE) return fail("cannot insert series");
          id = sqlite3_last_insert_rowid(wdb_);
          known[*c.key] = id;
          new_series[*c.key] = id;
        }
        ins.bind(1, id).bind(2, c.first).bind(3, c.last).bind(4, static_cast<std::int64_t>(c.rows));
        ins.bind(5, static_cast<std::int64_t>(c.samples)).bind_blob(6, c.data);
        const int rc = ins.step();
        ins.reset();
        if (rc != SQLITE_DONE) return fail("cannot insert chunk");
      }
    }
    Stmt& del = stmt("DELETE FROM pending WHERE edge=? AND seq=?");
    for (std::int64_t seq : seqs) {
      del.bind(1, edge_row).bind(2, seq);
      const int rc = del.step();
      del.reset();
      if (rc != SQLITE_DONE) return fail("cannot delete batch");
    }
    {
      std::map<std::uint32_t, std::pair<TimeNs, double>> stored;
      {
        auto q = prepare(wdb_, "SELECT channel, time_ns FROM latest WHERE edge=?");
        if (!q) return (void)exec(wdb_, "ROLLBACK"), q.error();
        q->bind(1, edge_row);
        while (q->step() == SQLITE_ROW) stored[static_cast<std::uint32_t>(q->i64(0))] = {q->i64(1), 0};
      }
      Stmt& up = stmt("INSERT OR REPLACE INTO latest VALUES(?,?,?,?)");
      for (const auto& [ch, tv] : newest) {
        auto it = stored.find(ch);
        if (it != stored.end() && it->second.first > tv.first) continue;
        up.bind(1, edge_row).bind(2, static_cast<std::int64_t>(ch)).bind(3, tv.first).bind(4, tv.second);
        const int rc = up.step();
        up.reset();
        if (rc != SQLITE_DONE) return fail("cannot update latest");
      }
    }
    if (sqlite3_exec(wdb_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK)
      return fail("cannot commit compaction");
    {
      MutexLock slock(state_mu_);
      EdgeState& e = edges_.at(name);
      for (auto& [key, id] : new_series) e.series_ids[key] = id;
      for (const auto& [key, g] : groups) {
        auto it = e.pending_rows.find(key);
        if (it == e.pending_rows.end()) continue;
        it->second -= std::min<std::uint64_t>(it->second, g.times.size());
        if (it->second == 0) e.pending_rows.erase(it);
      }
      e.pending_batches -= std::min<std::uint64_t>(e.pending_batches, seqs.size());
      e.oldest_pending = e.pending_batches ? config_.clock->mono_now() : MonoTime{};
      pending_batches_ -= std::min<std::uint64_t>(pending_batches_, seqs.size());
    }
    result.batches = seqs.size();
    result.chunks = chunks.size();
    ++compactions_;
    batches_compacted_ += seqs.size();
    chunks_written_ += chunks.size();
    return result;
  }

  void compactor_loop() {
    MutexLock lock(wake_mu_);
    while (!stop_) {
      wake_.wait_for(lock, std::chrono::seconds(1));
      if (stop_) break;
      lock.unlock();
      auto r = compact(false);
      lock.lock();
      last_error_ = r ? "" : r.error().message;
    }
  }

  SqliteStoreConfig config_;
  sqlite3* wdb_ = nullptr;
  sqlite3* rdb_ = nullptr;
  // Where nested: compact_mu_ before write_mu_ before state_mu_.
  Mutex write_mu_;    // the write connection wdb_ and what goes with it
  Mutex read_mu_;     // the read connection rdb_
  Mutex compact_mu_;  // one compaction at a time
  mutable Mutex state_mu_;
  std::map<std::string, Stmt, std::less<>> write_stmts_ GUARDED_BY(write_mu_);
  std::vector<std::uint8_t> scratch_ GUARDED_BY(write_mu_);
  std::map<std::string, EdgeState, std::less<>> edges_ GUARDED_BY(state_mu_);

  std::thread compactor_;
  mutable Mutex wake_mu_;
  CondVar wake_;
  bool stop_ GUARDED_BY(wake_mu_) = false;
  std::string last_error_ GUARDED_BY(wake_mu_);

  std::atomic<std::uint64_t> samples_stored_{0}, batches_stored_{0}, duplicates_{0}, lost_records_{0},
      commits_{0};
  std::atomic<std::uint64_t> compactions_{0}, batches_compacted_{0}, chunks_written_{0}, pending_batches_{0};
};

}  // namespace

Result<std::unique_ptr<Store>> open_sqlite_store(const SqliteStoreConfig& config) {
  if (config.path.empty()) return Error(ErrorCode::invalid_argument, "store: no database path");
  if (config.chunk_rows == 0) return Error(ErrorCode::invalid_argument, "store: chunk_rows must be >= 1");
  auto store = std::make_unique<SqliteStore>(config);
  if (auto ok = store->open(); !ok) return ok.error();
  return std::unique_ptr<Store>(std::move(store));
}

std::string sqlite_store_path(const std::string& data_dir) {
  return (std::filesystem::path(data_dir) / "store.sqlite").string();
}

}  // namespace cellguard::store
