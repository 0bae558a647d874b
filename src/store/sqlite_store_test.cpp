#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bit>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "store/rig_stream.h"
#include "store/store.h"

namespace cellguard::store {
namespace {

constexpr TimeNs kT0 = 1'796'119'200'000'000'000;  // 2026-12-01T10:00:00Z

class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/cellguard-store-XXXXXX";
    path_ = ::mkdtemp(pattern);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

EdgeInfo small_edge(const std::string& id) {
  EdgeInfo e{id, "0.1.0", "aa", "bb", {}};
  for (std::uint32_t c = 1; c <= 4; ++c)
    e.channels.push_back({c, "ch" + std::to_string(c), "V", 1, "BMU01_ch" + std::to_string(c), false});
  return e;
}

// A batch of `rows` rows of channels {1, 2} and {3}: values derived from seq, row (exact doubles).
Batch make_batch(std::uint64_t seq, std::size_t rows = 2, TimeNs t0 = kT0) {
  Batch b;
  b.seq = seq;
  SeriesBatch a{{1, 2}, {}, {}}, c{{3}, {}, {}};
  for (std::size_t r = 0; r < rows; ++r) {
    const TimeNs t = t0 + static_cast<TimeNs>(seq * rows + r) * 100'000'000 + static_cast<TimeNs>(r * 17);
    a.times_ns.push_back(t);
    a.values.push_back(static_cast<double>(seq) * 0.01 + 2.2);
    a.values.push_back(r % 2 ? std::nan("") : -static_cast<double>(seq) / 3.0);
    c.times_ns.push_back(t + 5);
    c.values.push_back(static_cast<double>(seq * 1000 + r));
  }
  b.series = {a, c};
  b.events.push_back(
      {t0 + static_cast<TimeNs>(seq) * 1000, "state", "{\"seq\":" + std::to_string(seq) + "}"});
  return b;
}

std::unique_ptr<Store> open_store(const std::string& path, bool background = false, TimeNs max_age = 0,
                                  std::size_t chunk_rows = 4096) {
  SqliteStoreConfig config;
  config.path = path;
  config.background_compaction = background;
  config.max_age_ns = max_age;
  config.chunk_rows = chunk_rows;
  config.synchronous = Synchronous::normal;  // the crash test uses full
  auto store = open_sqlite_store(config);
  EXPECT_TRUE(store.ok()) << (store.ok() ? "" : store.error().message);
  return store.ok() ? std::move(*store) : nullptr;
}

PutResult put(Store& store, const std::string& edge, std::vector<Batch> batches) {
  std::vector<EdgeBatches> in{{edge, std::move(batches)}};
  auto r = store.put_batches(in);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : PutResult{};
}

std::vector<Point> all_points(Store& store, const std::string& edge, const std::string& channel) {
  auto s = store.series(edge, channel, std::numeric_limits<TimeNs>::min(), std::numeric_limits<TimeNs>::max(),
                        1u << 30);
  EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
  return s.ok() ? s->points : std::vector<Point>{};
}

bool same_points(const std::vector<Point>& a, const std::vector<Point>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].time_ns != b[i].time_ns ||
        std::bit_cast<std::uint64_t>(a[i].value) != std::bit_cast<std::uint64_t>(b[i].value))
      return false;
  return true;
}

TEST(SqliteStore, ReturnsWhatWasPutBitForBit) {
  TempDir dir;
  auto store = open_store(dir.file("s.sqlite"));
  ASSERT_TRUE(store->put_edge(small_edge("e1")).ok());
  const auto r = put(*store, "e1", {make_batch(1), make_batch(2)});
  EXPECT_EQ(r.stored, 2u);
  EXPECT_EQ(r.duplicates, 0u);
  EXPECT_EQ(r.samples, 2u * (2 + 1 + 2));  // per batch: ch1 x2, ch2 x1 (one NaN), ch3 x2
  const auto points = all_points(*store, "e1", "ch2");
  ASSERT_EQ(points.size(), 2u);
  EXPECT_EQ(std::bit_cast<std::uint64_t>(points[0].value), std::bit_cast<std::uint64_t>(-1.0 / 3.0));
  EXPECT_EQ(points[0].time_ns, kT0 + 2 * 100'000'000);
  EXPECT_EQ(all_points(*store, "e1", "ch1")[3].value, 2 * 0.01 + 2.2);
}

TEST(SqliteStore, SkipsAResentBatchAsDuplicate) {
  TempDir dir;
  auto store = open_store(dir.file("s.sqlite"));
  ASSERT_TRUE(store->put_edge(small_edge("e1")).ok());
  put(*store, "e1", {make_batch(1)});
  const auto r = put(*store, "e1", {make_batch(1), make_batch(2)});
  EXPECT_EQ(r.stored, 1u);
  EXPECT_EQ(r.duplicates, 1u);
  EXPECT_EQ(all_points(*store, "e1", "ch3").size(), 4u);
  auto events = store->events("e1", 0, std::numeric_limits<TimeNs>::max(), 100);
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(events->size(), 2u);
}

TEST(SqliteStore, StoresTheSameSeqTwiceInOneCallOnce) {
  TempDir dir;
  auto store = open_store(dir.file("s.sqlite"));
  ASSERT_TRUE(store->put_edge(small_edge("e1")).ok());
  const auto r = put(*store, "e1", {make_batch(5), make_batch(5)});
  EXPECT_EQ(r.stored, 1u);
  EXPECT_EQ(r.duplicates, 1u);
}

TEST(SqliteStore, RecognizesDuplicatesAfterReopen) {
  TempDir dir;
  {
    auto store = open_store(dir.file("s.sqlite"));
    ASSERT_TRUE(store->put_edge(small_edge("e1")).ok());
    put(*store, "e1", {make_batch(1), make_batch(2), make_batch(3)});
  }
  auto store = open_store(dir.file("s.sqlite"));
  const auto r = put(*store, "e1", {make_batch(2), make_batch(4)});
  EXPECT_EQ(r.stored, 1u);
  EXPECT_EQ(r.duplicates, 1u);
  EXPECT_EQ(all_points(*store, "e1", "ch3").size(), 8u);
  auto edges = store->edges();
  ASSERT_TRUE(edges.ok());
  ASSERT_EQ(edges->size(), 1u);
  EXPECT_EQ((*edges)[0].channels.size(), 4u);
  EXPECT_EQ((*edges)[0].channels[0].rig_column, "BMU01_ch1");
}

TEST(SqliteStore, StoresManyEdgesInOneCall) {
  TempDir dir;
  auto store = open_store(dir.file("s.sqlite"));
  std::vector<EdgeBatches> in;
  for (int e = 0; e < 20; ++e) {
    const std::string id = "edge-" + std::to_string(e);
    ASSERT_TRUE(store->put_edge(small_edge(id)).ok());
    in.push_back({id, {make_batch(1), make_batch(2)}});
  }
  auto r = store->put_batches(in);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->stored, 40u);
  EXPECT_EQ(store->stats().commits, 1u);
  for (int e = 0; e < 20; ++e) EXPECT_EQ(all_points(*store, "edge-" + std::to_string(e), "ch1").size(), 4u);
}

TEST(SqliteStore, RefusesAWholeCallWithAnUnknownEdge) {
  TempDir dir;
  auto store = open_store(dir.file("s.sqlite"));
  ASSERT_TRUE(store->put_edge(small_edge("e1")).ok());
  std::vector<EdgeBatches> in{{"e1", {make_batch(1)}}, {"nobody", {make_batch(1)}}};
  auto r = store->put_batches(in);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("nobody"), std::string::npos);
  EXPECT_TRUE(all_points(*store, "e1", "ch1").empty());
  EXPECT_TRUE(store->stored_seqs("e1")->empty());
}

TEST(SqliteStore, RefusesAMalformedBatch) {
  TempDir dir;
  auto store = open_store(dir.file("s.sqlite"));
  ASSERT_TRUE(store->put_edge(small_edge("e1")).ok());
  Batch b = make_batch(1);
  b.series[0].values.pop_back();
  std::vector<EdgeBatches> in{{"e1", {b}}};
  EXPECT_FALSE(store->put_batches(in).ok());
  Batch c = make_batch(2);
  c.series[0].channels = {1, 99};
  in = {{"e1", {c}}};
  auto r = store->put_batches(in);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("catalogue"), std::string::npos);
}

TEST(SqliteStore, ReportsStoredSeqsAsMergedRanges) {
  TempDir dir;
  auto store = open_store(dir.file("s.sqlite"));
  ASSERT_TRUE(store->put_edge(small_edge("e1")).ok());
  put(*store, "e1", {make_batch(1), make_batch(2), make_batch(3), make_batch(5), make_batch(7)});
  put(*store, "e1", {make_batch(6), make_batch(10)});
  const std::vector<SeqRange> want = {{1, 3}, {5, 7}, {10, 10}};
  EXPECT_EQ(*store->stored_seqs("e1"), want);
  store.reset();
  store = open_store(dir.file("s.sqlite"));
  EXPECT_EQ(*store->stored_seqs("e1"), want);
  put(*store, "e1", {make_batch(4), make_batch(8), make_batch(9)});
  EXPECT_EQ(*store->stored_seqs("e1"), (std::vector<SeqRange>{{1, 10}}));
}

TEST(SqliteStore, FewPendingBatchesAreDueAfterCompactAfterOnTheInjectedClock) {
  TempDir dir;
  ManualClock clock;
  SqliteStoreConfig config;
  config.path = dir.file("s.sqlite");
  config.background_compaction = false;
  config.synchronous = Synchronous::normal;
  config.clock = &clock;
  config.compact_after_ns = 15LL * 60 * 1'000'000'000;
  auto opened = open_sqlite_store(config);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  auto store = std::move(*opened);
  ASSERT_TRUE(store->put_edge(small_edge("e1")).ok());
  put(*store, "e1", {make_batch(1), make_batch(2)});  // far fewer rows than chunk_rows
  auto c = store->compact(false);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->batches, 0u);  // not due yet
  clock.advance(std::chrono::minutes(14));
  EXPECT_EQ(store->compact(false)->batches, 0u);
  EXPECT_EQ(store->stats().pending_batches, 2u);
  clock.advance(std::chrono::minutes(1));  // the oldest pending batch is 15 min old
  c = store->compact(false);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->batches, 2u);
  EXPECT_EQ(store->stats().pending_batches, 0u);
}

TEST(SqliteStore, AnswersTheSameAfterCompactionAndReadsBothTiers) {
  TempDir dir;
  auto store = open_store(dir.file("s.sqlite"), false, 0, 64);
  ASSERT_TRUE(store->put_edge(small_edge("e1")).ok());
  std::vector<Batch> batches;
  for (std::uint64_t s = 1; s <= 200; ++s) batches.push_back(make_batch(s, 3));
  put(*store, "e1", batches);
  std::map<std::string, std::vector<Point>> before;
  for (const char* ch : {"ch1", "ch2", "ch3"}) before[ch] = all_points(*store, "e1", ch);
  auto c = store->compact(true);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->batches, 200u);
  EXPECT_EQ(c->chunks, 2u * ((600 + 63) / 64));  // two series of 600 rows, 64 rows per chunk
  EXPECT_EQ(store->stats().pending_batches, 0u);
  for (const char* ch : {"ch1", "ch2", "ch3"})
    EXPECT_TRUE(same_points(all_points(*store, "e1", ch), before[ch])) << ch;
  // New batches stay pending; a query sees both.
  put(*store, "e1", {make_batch(201, 3), make_batch(202, 3)});
  EXPECT_EQ(all_points(*store, "e1", "ch3").size(), 606u);
  // A sub-range crossing chunk boundaries.
  auto part = store->series("e1", "ch3", kT0 + 100 * 100'000'000LL, kT0 + 399 * 100'000'000LL + 1000, 10'000);
  ASSERT_TRUE(part.ok());
  EXPECT_EQ(part->points.size(), 300u);
  store.reset();
  store = open_store(dir.file("s.sqlite"));
  EXPECT_EQ(all_points(*store, "e1", "ch3").size(), 606u);
}

TEST(SqliteStore, DownsamplesIntoBucketsWithMinMaxMeanCount) {
  TempDir dir;
  auto store = open_store(dir.file("s.sqlite"));
  EdgeInfo e = small_edge("e1");
  ASSERT_TRUE(store->put_edge(e).ok());
  Batch b;
  b.seq = 1;
  SeriesBatch s{{4}, {}, {}};
  for (int i = 0; i < 1000; ++i) {
    s.times_ns.push_back(kT0 + i * 1'000'000LL);  // 1 ms apart
    s.values.push_back(i);
  }
  b.series.push_back(s);
  put(*store, "e1", {b});
  auto r = store->series("e1", "ch4", kT0, kT0 + 999'999'999, 10);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->downsampled);
  EXPECT_EQ(r->bucket_ns, 100'000'000);
  ASSERT_EQ(r->buckets.size(), 10u);
  EXPECT_EQ(r->buckets[3].start_ns, kT0 + 300'000'000);
  EXPECT_EQ(r->buckets[3].count, 100u);
  EXPECT_EQ(r->buckets[3].min, 300);
  EXPECT_EQ(r->buckets[3].max, 399);
  EXPECT_DOUBLE_EQ(r->buckets[3].mean, 349.5);
  auto raw = store->series("e1", "ch4", kT0, kT0 + 9'000'000, 10);
  ASSERT_TRUE(raw.ok());
  EXPECT_FALSE(raw->downsampled);
  EXPECT_EQ(raw->points.size(), 10u);
  EXPECT_FALSE(store->series("e1", "nope", 0, 1, 10).ok());
}

TEST(SqliteStore, KeepsLatestValuesAcrossCompactionAndReopen) {
  TempDir dir;
  auto store = open_store(dir.file("s.sqlite"));
  ASSERT_TRUE(store->put_edge(small_edge("e1")).ok());
  put(*store, "e1", {make_batch(1), make_batch(3)});
  put(*store, "e1", {make_batch(2)});  // older data arriving late must not win
  auto check = [&](Store& s) {
    auto latest = s.latest("e1");
    ASSERT_TRUE(latest.ok());
    ASSERT_EQ(latest->size(), 3u);
    EXPECT_EQ((*latest)[0].name, "ch1");
    EXPECT_EQ((*latest)[0].value, 3 * 0.01 + 2.2);
    EXPECT_EQ((*latest)[1].value, -1.0);  // ch2's newest present value: seq 3, row 0
    EXPECT_EQ((*latest)[2].value, 3001);
    EXPECT_EQ((*latest)[2].time_ns, kT0 + 7 * 100'000'000LL + 17 + 5);
  };
  check(*store);
  ASSERT_TRUE(store->compact(true).ok());
  check(*store);
  store.reset();
  store = open_store(dir.file("s.sqlite"));
  check(*store);
  put(*store, "e1", {make_batch(4)});
  store.reset();
  store = open_store(dir.file("s.sqlite"));  // latest from the latest table plus pending
  EXPECT_EQ((*store->latest("e1"))[2].value, 4001);
}

TEST(SqliteStore, ReturnsEventsByTimeRangeInOrder) {
  TempDir dir;
  auto store = open_store(dir.file("s.sqlite"));
  ASSERT_TRUE(store->put_edge(small_edge("e1")).ok());
  put(*store, "e1", {make_batch(3), make_batch(1), make_batch(2), make_batch(4)});
  auto ev = store->events("e1", kT0 + 2000, kT0 + 4000, 2);
  ASSERT_TRUE(ev.ok());
  ASSERT_EQ(ev->size(), 2u);
  EXPECT_EQ((*ev)[0].json, "{\"seq\":2}");
  EXPECT_EQ((*ev)[1].json, "{\"seq\":3}");
  EXPECT_EQ((*ev)[0].kind, "state");
}

TEST(SqliteStore, RetentionDeletesOldDataButResentOldBatchesStayDuplicates) {
  TempDir dir;
  const TimeNs day = 86'400'000'000'000;
  auto store = open_store(dir.file("s.sqlite"), false, day);
  ASSERT_TRUE(store->put_edge(small_edge("e1")).ok());
  put(*store, "e1", {make_batch(1, 2, kT0), make_batch(2, 2, kT0)});
  ASSERT_TRUE(store->compact(true).ok());
  put(*store, "e1", {make_batch(3, 2, kT0 + 10 * day)});  // pending
  put(*store, "e1", {make_batch(4, 2, kT0)});             // old, pending
  auto r = store->apply_retention(WallTime::from_ns(kT0 + 10 * day));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->chunks_deleted, 2u);
  EXPECT_EQ(r->batches_deleted, 1u);
  EXPECT_EQ(r->events_deleted, 3u);
  const auto points = all_points(*store, "e1", "ch3");
  ASSERT_EQ(points.size(), 2u);
  EXPECT_EQ(points[0].value, 3000);
  EXPECT_EQ(store->stats().pending_batches, 1u);
  const auto again = put(*store, "e1", {make_batch(1, 2, kT0), make_batch(4, 2, kT0)});
  EXPECT_EQ(again.duplicates, 2u);
  EXPECT_EQ(again.stored, 0u);
  EXPECT_EQ(*store->stored_seqs("e1"), (std::vector<SeqRange>{{1, 4}}));
}

TEST(SqliteStore, CompactsInTheBackgroundWhenASeriesFillsAChunk) {
  TempDir dir;
  auto store = open_store(dir.file("s.sqlite"), true, 0, 32);
  ASSERT_TRUE(store->put_edge(small_edge("e1")).ok());
  std::vector<Batch> batches;
  for (std::uint64_t s = 1; s <= 20; ++s) batches.push_back(make_batch(s, 2));
  put(*store, "e1", batches);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (store->stats().batches_compacted < 20 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(store->stats().batches_compacted, 20u);
  EXPECT_EQ(store->stats().last_error, "");
  EXPECT_EQ(all_points(*store, "e1", "ch1").size(), 40u);
}

TEST(SqliteStore, RefusesAFileThatIsNotAStore) {
  TempDir dir;
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(dir.file("other.sqlite").c_str(), &db), SQLITE_OK);
  sqlite3_exec(db, "CREATE TABLE x(a)", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  SqliteStoreConfig config;
  config.path = dir.file("other.sqlite");
  auto r = open_sqlite_store(config);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("not a cellguard store"), std::string::npos);
}

// The child ingests batches of 3 edges in a loop (synchronous=FULL, background compaction on) and
// writes each seq to the pipe after put_batches returned; the parent kills it at a random point.
TEST(SqliteStore, KilledWriterLosesNoAcknowledgedBatchAndDuplicatesNone) {
  TempDir dir;
  const std::string path = dir.file("crash.sqlite");
  std::mt19937_64 rng(
      static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()));
  for (int round = 0; round < 3; ++round) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      ::close(fds[0]);
      SqliteStoreConfig config;
      config.path = path;
      config.chunk_rows = 16;
      config.synchronous = Synchronous::full;
      auto opened = open_sqlite_store(config);
      if (!opened) ::_exit(2);
      Store& store = **opened;
      for (const char* e : {"a", "b", "c"})
        if (!store.put_edge(small_edge(e)).ok()) ::_exit(3);
      std::uint64_t start = 1;
      if (auto seqs = store.stored_seqs("a"); seqs.ok() && !seqs->empty()) start = seqs->back().last + 1;
      for (std::uint64_t seq = start;; ++seq) {
        std::vector<EdgeBatches> in{
            {"a", {make_batch(seq)}}, {"b", {make_batch(seq)}}, {"c", {make_batch(seq)}}};
        if (!store.put_batches(in).ok()) ::_exit(4);
        if (::write(fds[1], &seq, sizeof seq) != sizeof seq) ::_exit(5);
      }
    }
    ::close(fds[1]);
    const std::size_t kill_after = 20 + rng() % 200;
    std::set<std::uint64_t> acked;
    std::uint64_t seq = 0;
    while (acked.size() < kill_after && ::read(fds[0], &seq, sizeof seq) == sizeof seq) acked.insert(seq);
    ::kill(child, SIGKILL);
    while (::read(fds[0], &seq, sizeof seq) == sizeof seq) acked.insert(seq);  // written before the kill
    ::close(fds[0]);
    int status = 0;
    ::waitpid(child, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
    ASSERT_EQ(acked.size() >= kill_after, true);

    auto store = open_store(path);
    ASSERT_TRUE(store);
    for (const char* e : {"a", "b", "c"}) {
      const auto points = all_points(*store, e, "ch3");
      std::map<std::uint64_t, int> count;  // seq -> points of the batch (2 rows each)
      for (const auto& p : points) ++count[static_cast<std::uint64_t>(p.value) / 1000];
      for (std::uint64_t s : acked) EXPECT_EQ(count[s], 2) << "edge " << e << " seq " << s;
      for (const auto& [s, n] : count)
        EXPECT_EQ(n, 2) << "edge " << e << " seq " << s << " stored " << n / 2.0 << " times";
      const auto ranges = *store->stored_seqs(e);
      ASSERT_EQ(ranges.size(), 1u);
      EXPECT_EQ(ranges[0].first, 1u);
      EXPECT_GE(ranges[0].last, *acked.rbegin());
    }
    // Resending everything acknowledged stores nothing new.
    std::vector<Batch> resend;
    resend.reserve(acked.size());
    for (std::uint64_t s : acked) resend.push_back(make_batch(s));
    const auto r = put(*store, "a", resend);
    EXPECT_EQ(r.stored, 0u);
    EXPECT_EQ(r.duplicates, acked.size());
  }
}

// Bytes per sample on disk for the rig stream (the project's DBC and codec), after compaction.
TEST(SqliteStore, StoresTheRigStreamInAtMostTwoBytesPerSample) {
  TempDir dir;
  auto rig = testing::RigStream::create({8, kT0, 5});
  ASSERT_TRUE(rig.ok()) << rig.error().message;
  auto store = open_store(dir.file("rig.sqlite"));
  ASSERT_TRUE(store->put_edge((*rig)->info("rig")).ok());
  for (int i = 0; i < 5 * 60 * 10; ++i) {  // 10 minutes in 200 ms batches, 10 per transaction
    std::vector<Batch> batches;
    batches.reserve(10);
    for (int k = 0; k < 10; ++k) batches.push_back((*rig)->next(200'000'000));
    put(*store, "rig", std::move(batches));
    i += 9;
  }
  ASSERT_TRUE(store->compact(true).ok());
  store.reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(dir.file("rig.sqlite").c_str(), &db), SQLITE_OK);
  sqlite3_stmt* q = nullptr;
  sqlite3_prepare_v2(db, "SELECT sum(length(data)) FROM chunks", -1, &q, nullptr);
  ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
  const double chunk_bytes = static_cast<double>(sqlite3_column_int64(q, 0));
  sqlite3_finalize(q);
  sqlite3_exec(db, "VACUUM", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  const double file_bytes = static_cast<double>(std::filesystem::file_size(dir.file("rig.sqlite")));
  const double samples = static_cast<double>((*rig)->samples());
  std::printf(
      "rig stream, 8 modules, 10 minutes: %.0f samples, chunks %.3f B/sample, file after VACUUM %.3f "
      "B/sample\n",
      samples, chunk_bytes / samples, file_bytes / samples);
  EXPECT_LE(file_bytes / samples, 2.0);
}

}  // namespace
}  // namespace cellguard::store
