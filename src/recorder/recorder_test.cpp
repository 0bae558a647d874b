#include "recorder/recorder.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

namespace cellguard::recorder {
namespace {

namespace fs = std::filesystem;

TimeNs now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

can::Frame counter_frame(TimeNs t, std::uint64_t counter, std::uint32_t id = 0x181) {
  can::Frame f;
  f.timestamp_ns = t;
  f.id = id;
  f.bus.assign("can0");
  std::uint8_t bytes[8];
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<std::uint8_t>(counter >> (8 * i));
  f.set_payload(bytes);
  return f;
}

std::uint64_t counter_of(const can::Frame& f) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<std::uint64_t>(f.data[i]) << (8 * i);
  return v;
}

std::uint64_t disk_bytes(const std::string& path) {
  std::error_code ec;
  std::uint64_t n = 0;
  for (const char* suffix : {"", "-wal", "-shm"}) {
    auto s = fs::file_size(path + suffix, ec);
    if (!ec) n += s;
  }
  return n;
}

void sql(const std::string& path, const std::string& statement) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  EXPECT_EQ(sqlite3_exec(db, statement.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(db);
}

std::string integrity(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) return "cannot open";
  sqlite3_stmt* s = nullptr;
  std::string out = "no result";
  if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s, nullptr) == SQLITE_OK &&
      sqlite3_step(s) == SQLITE_ROW) {
    out = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
  }
  sqlite3_finalize(s);
  sqlite3_close(db);
  return out;
}

class RecorderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static int n = 0;
    dir_ = (fs::temp_directory_path() /
            ("cellguard-recorder-test-" + std::to_string(getpid()) + "-" + std::to_string(n++)))
               .string();
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  RecorderConfig config(const std::string& name = "rec/recording.db") {
    RecorderConfig c;
    c.path = dir_ + "/" + name;
    c.commit_interval_ns = 20'000'000;
    return c;
  }
  std::unique_ptr<Recorder> open(RecorderConfig c) {
    auto r = Recorder::open(std::move(c));
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? std::move(*r) : nullptr;
  }
  std::vector<Block> read_all(const std::string& path) {
    auto reader = RecordingReader::open(path);
    EXPECT_TRUE(reader.ok()) << reader.error().message;
    if (!reader.ok()) return {};
    auto blocks = reader->read_after(0, 1'000'000);
    EXPECT_TRUE(blocks.ok()) << blocks.error().message;
    return blocks.ok() ? std::move(*blocks) : std::vector<Block>{};
  }

  std::string dir_;
};

TEST_F(RecorderTest, RecordsFramesSamplesEventsAndReadsThemBack) {
  auto c = config();
  auto rec = open(c);
  ASSERT_TRUE(rec);
  auto volts = rec->channel("Ardu_Press", "bar");
  ASSERT_TRUE(volts.ok()) << volts.error().message;
  ASSERT_TRUE(rec->set_meta("dbc", "VERSION \"\"\n").ok());
  const TimeNs t0 = now_ns();
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(rec->record_frame(counter_frame(t0 + i * 1000, i)));
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(rec->record_sample(t0 + i, *volts, i * 0.5));
  ASSERT_TRUE(rec->record_event(t0 + 5, "state", R"({"state":"NORMAL"})"));
  ASSERT_TRUE(rec->flush().ok());
  auto s = rec->stats();
  EXPECT_EQ(s.records_queued, 1011u);
  EXPECT_EQ(s.records_committed, 1011u);
  EXPECT_EQ(s.records_dropped, 0u);
  EXPECT_GE(s.blocks_committed, 1u);
  EXPECT_EQ(s.last_seq, s.blocks_committed);
  EXPECT_TRUE(s.last_error.empty());
  EXPECT_GT(s.file_bytes, 0u);

  auto blocks = read_all(c.path);
  std::size_t frames = 0, samples = 0, events = 0;
  std::uint64_t next = 0;
  for (const auto& b : blocks) {
    for (const auto& f : b.frames) EXPECT_EQ(counter_of(f), next++);
    frames += b.frames.size();
    samples += b.samples.size();
    events += b.events.size();
    EXPECT_LE(b.first_ns, b.last_ns);
  }
  EXPECT_EQ(frames, 1000u);
  EXPECT_EQ(samples, 10u);
  EXPECT_EQ(events, 1u);
  auto reader = RecordingReader::open(c.path);
  ASSERT_TRUE(reader.ok());
  EXPECT_EQ(*reader->meta("dbc").value(), "VERSION \"\"\n");
  EXPECT_FALSE(reader->meta("nope").value().has_value());
  auto channels = reader->channels();
  ASSERT_TRUE(channels.ok());
  ASSERT_EQ(channels->size(), 1u);
  EXPECT_EQ((*channels)[0].name, "Ardu_Press");
  EXPECT_EQ((*channels)[0].unit, "bar");
  EXPECT_EQ(*reader->first_seq(), 1u);
  EXPECT_EQ(*reader->last_seq(), s.last_seq);
  rec->close();
  EXPECT_FALSE(rec->record_frame(counter_frame(t0, 0)));
  EXPECT_FALSE(rec->record_event(t0, "x", "{}"));
}

TEST_F(RecorderTest, CutsBlocksAtMaxBlockRecords) {
  auto c = config();
  c.max_block_records = 100;
  auto rec = open(c);
  const TimeNs t0 = now_ns();
  for (int i = 0; i < 1050; ++i) ASSERT_TRUE(rec->record_sample(t0 + i, 1, i));
  ASSERT_TRUE(rec->flush().ok());
  rec->close();
  auto blocks = read_all(c.path);
  ASSERT_GE(blocks.size(), 11u);
  double next = 0;
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    EXPECT_EQ(blocks[i].seq, i + 1);
    EXPECT_LE(blocks[i].samples.size(), 100u);
    for (const auto& smp : blocks[i].samples) EXPECT_EQ(smp.value, next++);
  }
  EXPECT_EQ(next, 1050);
}

TEST_F(RecorderTest, ChannelIdsMetaAndSeqAreStableAcrossReopen) {
  auto c = config();
  std::uint32_t a = 0, b = 0;
  {
    auto rec = open(c);
    a = *rec->channel("Ardu_Temp1", "degC");
    b = *rec->channel("modbus_Power", "W");
    EXPECT_NE(a, b);
    EXPECT_EQ(*rec->channel("Ardu_Temp1", "degC"), a);
    ASSERT_TRUE(rec->set_meta("edge_id", "rig-7").ok());
    rec->record_sample(now_ns(), a, 1);
    ASSERT_TRUE(rec->flush().ok());
    EXPECT_EQ(rec->stats().last_seq, 1u);
  }
  auto rec = open(c);
  EXPECT_EQ(*rec->channel("modbus_Power", "W"), b);
  EXPECT_EQ(*rec->channel("Ardu_Temp1", "degC"), a);
  EXPECT_NE(*rec->channel("Ardu_Temp2", "degC"), a);
  EXPECT_EQ(rec->stats().last_seq, 1u);
  rec->record_sample(now_ns(), b, 2);
  ASSERT_TRUE(rec->flush().ok());
  EXPECT_EQ(rec->stats().last_seq, 2u);
  rec->close();
  auto reader = RecordingReader::open(c.path);
  ASSERT_TRUE(reader.ok());
  EXPECT_EQ(*reader->meta("edge_id").value(), "rig-7");
  EXPECT_EQ(reader->channels()->size(), 3u);
}

TEST_F(RecorderTest, RefusesAnotherFormatVersionWithAClearMessage) {
  auto c = config();
  { auto rec = open(c); }
  sql(c.path, "PRAGMA user_version = 3");
  auto rec = Recorder::open(c);
  ASSERT_FALSE(rec.ok());
  EXPECT_NE(rec.error().message.find(c.path), std::string::npos) << rec.error().message;
  EXPECT_NE(rec.error().message.find("format version 3"), std::string::npos) << rec.error().message;
  auto reader = RecordingReader::open(c.path);
  ASSERT_FALSE(reader.ok());
  EXPECT_NE(reader.error().message.find("format version 3"), std::string::npos) << reader.error().message;
}

TEST_F(RecorderTest, AVersionOneRecordingIsMigratedOnOpenAndKeepsItsBlocks) {
  auto c = config();
  {
    auto rec = open(c);
    rec->record_sample(now_ns(), 1, 42);
    ASSERT_TRUE(rec->flush().ok());
  }
  // Turn it back into the version 1 layout: no lost column, no delivered table.
  sql(c.path, "ALTER TABLE blocks DROP COLUMN lost; DROP TABLE delivered; PRAGMA user_version = 1");
  auto reader_before = RecordingReader::open(c.path);
  ASSERT_FALSE(reader_before.ok());  // readers do not migrate; the recorder does
  auto rec = open(c);
  ASSERT_NE(rec, nullptr);
  rec->record_sample(now_ns(), 1, 43);
  ASSERT_TRUE(rec->flush().ok());
  rec->close();
  auto blocks = read_all(c.path);
  ASSERT_EQ(blocks.size(), 2u);
  EXPECT_EQ(blocks[0].samples[0].value, 42);
  EXPECT_EQ(blocks[1].samples[0].value, 43);
}

TEST_F(RecorderTest, BoundsStripUndeliveredBlocksToTheirEventsAndCountTheLoss) {
  auto c = config();
  c.max_age_ns = 0;  // no bound while the old blocks are written
  c.keep_undelivered_events = true;
  auto rec = open(c);
  const TimeNs old = now_ns() - 3 * 3600LL * 1'000'000'000;
  // Block 1: old and delivered (deleted); block 2: old, undelivered (stripped); block 3: young.
  rec->record_sample(old, 1, 1);
  ASSERT_TRUE(rec->flush().ok());
  rec->record_frame(counter_frame(old + 1, 7));
  rec->record_sample(old + 2, 1, 2);
  rec->record_event(old + 3, "state", R"({"to":"safe"})");
  ASSERT_TRUE(rec->flush().ok());
  rec->close();
  {
    auto reader = RecordingReader::open(c.path);
    ASSERT_TRUE(reader.ok()) << reader.error().message;
    ASSERT_TRUE(reader->add_delivered({{1, 1}}).ok());
  }
  c.max_age_ns = 3600LL * 1'000'000'000;
  rec = open(c);
  rec->record_sample(now_ns(), 1, 3);
  ASSERT_TRUE(rec->flush().ok());
  const auto s = rec->stats();
  EXPECT_EQ(s.records_lost, 2u);
  rec->close();
  auto blocks = read_all(c.path);
  ASSERT_EQ(blocks.size(), 2u);
  EXPECT_EQ(blocks[0].seq, 2u);
  EXPECT_TRUE(blocks[0].frames.empty());
  EXPECT_TRUE(blocks[0].samples.empty());
  ASSERT_EQ(blocks[0].events.size(), 1u);
  EXPECT_EQ(blocks[0].events[0].json, R"({"to":"safe"})");
  EXPECT_EQ(blocks[0].lost_records, 2u);
  EXPECT_EQ(blocks[1].seq, 3u);
  EXPECT_EQ(blocks[1].lost_records, 0u);
  auto again = RecordingReader::open(c.path);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again->lost_records(), 2u);
  auto pending = again->undelivered(0, 100);
  ASSERT_TRUE(pending.ok()) << pending.error().message;
  EXPECT_EQ(*pending, (std::vector<std::uint64_t>{2, 3}));
}

TEST_F(RecorderTest, DeliveredRangesMergeAndUndeliveredListsTheGaps) {
  auto c = config();
  auto rec = open(c);
  for (int i = 0; i < 10; ++i) {
    rec->record_sample(now_ns(), 1, i);
    ASSERT_TRUE(rec->flush().ok());
  }
  auto reader = RecordingReader::open(c.path);
  ASSERT_TRUE(reader.ok());
  ASSERT_TRUE(reader->add_delivered({{8, 9}, {2, 3}}).ok());
  ASSERT_TRUE(reader->add_delivered({{4, 4}, {6, 6}}).ok());
  using Ranges = std::vector<std::pair<std::uint64_t, std::uint64_t>>;
  EXPECT_EQ(*reader->delivered(), (Ranges{{2, 4}, {6, 6}, {8, 9}}));
  EXPECT_EQ(*reader->undelivered(0, 100), (std::vector<std::uint64_t>{1, 5, 7, 10}));
  EXPECT_EQ(*reader->undelivered(5, 100), (std::vector<std::uint64_t>{7, 10}));
  EXPECT_EQ(*reader->undelivered(0, 2), (std::vector<std::uint64_t>{1, 5}));
  auto one = reader->read_block(7);
  ASSERT_TRUE(one.ok());
  ASSERT_TRUE(one->has_value());
  EXPECT_EQ((*one)->samples[0].value, 6);
  EXPECT_FALSE(reader->read_block(99)->has_value());
}

TEST_F(RecorderTest, RefusesFilesThatAreNotRecordings) {
  fs::create_directories(dir_);
  const std::string text = dir_ + "/notes.db";
  std::ofstream(text) << "this is not a database, just some text that is long enough to have a header\n";
  auto c = config("notes.db");
  auto rec = Recorder::open(c);
  ASSERT_FALSE(rec.ok());
  EXPECT_NE(rec.error().message.find(text), std::string::npos) << rec.error().message;
  const std::string other = dir_ + "/other.db";
  sql(other, "CREATE TABLE t(x)");
  auto rec2 = Recorder::open(config("other.db"));
  ASSERT_FALSE(rec2.ok());
  EXPECT_NE(rec2.error().message.find("not a cellguard recording"), std::string::npos)
      << rec2.error().message;
  auto missing = RecordingReader::open(dir_ + "/missing.db");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("missing.db"), std::string::npos);
}

TEST_F(RecorderTest, UnwritablePathIsAClearError) {
  fs::create_directories(dir_);
  std::ofstream(dir_ + "/plainfile") << "x";
  // A regular file where a folder should be: fails even for root.
  auto c = config("plainfile/sub/recording.db");
  auto rec = Recorder::open(c);
  ASSERT_FALSE(rec.ok());
  EXPECT_NE(rec.error().message.find(c.path), std::string::npos) << rec.error().message;
  EXPECT_NE(rec.error().message.find("cannot create its folder"), std::string::npos) << rec.error().message;
  auto c2 = config("plainfile/recording.db");
  auto rec2 = Recorder::open(c2);
  ASSERT_FALSE(rec2.ok());
  EXPECT_NE(rec2.error().message.find(c2.path), std::string::npos) << rec2.error().message;
}

TEST_F(RecorderTest, FullQueueDropsAndCountsWithoutBlocking) {
  auto c = config();
  c.queue_capacity = 100;
  c.max_block_records = 1000;             // never reached: the writer does not wake early
  c.commit_interval_ns = 60'000'000'000;  // nor on its timer during the test
  auto rec = open(c);
  const TimeNs t0 = now_ns();
  int accepted = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 150; ++i) accepted += rec->record_sample(t0 + i, 1, i) ? 1 : 0;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
  EXPECT_EQ(accepted, 100);
  EXPECT_FALSE(rec->record_event(t0, "state", "{}"));
  auto s = rec->stats();
  EXPECT_EQ(s.records_queued, 100u);
  EXPECT_EQ(s.records_dropped, 51u);
  ASSERT_TRUE(rec->flush().ok());
  EXPECT_EQ(rec->stats().records_committed, 100u);
  EXPECT_TRUE(rec->record_sample(t0, 1, 0));  // room again after the flush
}

TEST_F(RecorderTest, SizeBoundKeepsTheFileSmall) {
  auto c = config();
  c.max_bytes = 1u << 20;
  c.synchronous_full = false;  // the bound, not durability, is under test here
  auto rec = open(c);
  std::mt19937_64 rng(7);
  const TimeNs t0 = now_ns();
  std::uint64_t counter = 0, max_seen = 0;
  // Slack: the WAL may hold one block beyond the budget before the next checkpoint.
  const std::uint64_t slack = 64 * 1024;
  while (rec->stats().records_committed * 9 < 3 * c.max_bytes + c.max_bytes / 2) {  // >= 3x the bound
    for (int i = 0; i < 4000; ++i) {
      can::Frame f = counter_frame(t0 + static_cast<TimeNs>(counter) * 1000, counter);
      const std::uint64_t noise = rng();  // incompressible payload
      for (int b = 0; b < 8; ++b) f.data[b] ^= static_cast<std::uint8_t>(noise >> (8 * b)) & 0xF0;
      ASSERT_TRUE(rec->record_frame(f));
      ++counter;
    }
    ASSERT_TRUE(rec->flush().ok());
    max_seen = std::max(max_seen, disk_bytes(c.path));
    ASSERT_LE(rec->stats().file_bytes, c.max_bytes + slack);
  }
  auto s = rec->stats();
  EXPECT_GT(s.blocks_deleted, 0u);
  EXPECT_LE(max_seen, c.max_bytes + slack + 32 * 1024 /* -shm */) << max_seen;
  std::printf("size bound: max_bytes %llu, largest database+WAL+shm seen %llu, committed %llu records\n",
              static_cast<unsigned long long>(c.max_bytes), static_cast<unsigned long long>(max_seen),
              static_cast<unsigned long long>(s.records_committed));
  rec->close();
  EXPECT_EQ(integrity(c.path), "ok");
  auto blocks = read_all(c.path);
  ASSERT_FALSE(blocks.empty());
  EXPECT_GT(blocks.front().seq, 1u);
  EXPECT_EQ(blocks.back().seq, s.last_seq);
  for (std::size_t i = 1; i < blocks.size(); ++i) EXPECT_EQ(blocks[i].seq, blocks[i - 1].seq + 1);
  const std::uint64_t low_nibbles = 0x0F0F0F0F0F0F0F0Full;  // the noise only touched the high ones
  EXPECT_EQ(counter_of(blocks.back().frames.back()) & low_nibbles, (counter - 1) & low_nibbles);
}

TEST_F(RecorderTest, TheAgeBoundMeasuresAgainstTheInjectedWallClock) {
  // Records from 2020 are young to a clock that says 2020, whatever the machine's clock says.
  ManualClock clock(MonoTime{}, WallTime::from_ns(1'600'000'000'000'000'000));
  auto c = config();
  c.clock = &clock;
  c.max_age_ns = 3600LL * 1'000'000'000;
  auto rec = open(c);
  const TimeNs t = clock.wall_now().ns();
  rec->record_sample(t - c.max_age_ns / 2, 1, 1);
  ASSERT_TRUE(rec->flush().ok());
  EXPECT_EQ(rec->stats().blocks_deleted, 0u);
  clock.advance(std::chrono::hours(1));  // now block 1 is 1.5 h old
  rec->record_sample(clock.wall_now().ns(), 1, 2);
  ASSERT_TRUE(rec->flush().ok());
  EXPECT_EQ(rec->stats().blocks_deleted, 1u);
  rec->close();
  auto blocks = read_all(c.path);
  ASSERT_EQ(blocks.size(), 1u);
  EXPECT_EQ(blocks[0].seq, 2u);
}

TEST_F(RecorderTest, AgeBoundDeletesOldBlocks) {
  auto c = config();
  c.max_age_ns = 3600LL * 1'000'000'000;
  auto rec = open(c);
  const TimeNs now = now_ns();
  rec->record_sample(now - 3 * c.max_age_ns, 1, 1);  // block 1: too old
  ASSERT_TRUE(rec->flush().ok());
  rec->record_sample(now - c.max_age_ns / 2, 1, 2);  // block 2: young enough
  ASSERT_TRUE(rec->flush().ok());
  auto s = rec->stats();
  EXPECT_EQ(s.blocks_committed, 2u);
  EXPECT_EQ(s.blocks_deleted, 1u);
  rec->close();
  auto blocks = read_all(c.path);
  ASSERT_EQ(blocks.size(), 1u);
  EXPECT_EQ(blocks[0].seq, 2u);
  EXPECT_EQ(blocks[0].samples[0].value, 2);
  // Seq never goes back, even after every block was deleted.
  c.max_age_ns = 1;
  rec = open(c);
  rec->record_sample(now - 1'000'000'000, 1, 3);
  ASSERT_TRUE(rec->flush().ok());
  EXPECT_EQ(rec->stats().last_seq, 3u);
  rec->close();
  EXPECT_TRUE(read_all(c.path).empty());
  rec = open(c);
  EXPECT_EQ(rec->stats().last_seq, 3u);
}

TEST_F(RecorderTest, ReaderReadsWhileTheWriterWritesAndKeepsCursors) {
  auto c = config();
  c.commit_interval_ns = 2'000'000;
  auto rec = open(c);
  rec->record_sample(now_ns(), 1, 0);
  ASSERT_TRUE(rec->flush().ok());
  auto reader = RecordingReader::open(c.path);
  ASSERT_TRUE(reader.ok()) << reader.error().message;
  std::atomic<bool> stop = false;
  std::thread producer([&] {
    std::uint64_t i = 1;
    while (!stop) {
      rec->record_sample(now_ns(), 1, static_cast<double>(i++));
      if (i % 50 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  std::uint64_t after = 0;
  double next = 0;
  for (int round = 0; round < 40; ++round) {
    auto blocks = reader->read_after(after, 3);
    ASSERT_TRUE(blocks.ok()) << blocks.error().message;
    for (const auto& b : blocks.value()) {
      EXPECT_EQ(b.seq, after + 1);
      after = b.seq;
      for (const auto& smp : b.samples) EXPECT_EQ(smp.value, next++);
    }
    ASSERT_TRUE(reader->set_cursor("uplink", after).ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
  }
  stop = true;
  producer.join();
  EXPECT_GT(after, 3u);
  rec->close();
  EXPECT_EQ(*reader->cursor("uplink"), after);
  EXPECT_EQ(*reader->cursor("never"), 0u);
  auto again = RecordingReader::open(c.path);
  EXPECT_EQ(*again->cursor("uplink"), after);
}

TEST_F(RecorderTest, CorruptBlockIsAnErrorNamingItsSeq) {
  auto c = config();
  auto rec = open(c);
  for (int b = 0; b < 3; ++b) {
    rec->record_sample(now_ns(), 1, b);
    ASSERT_TRUE(rec->flush().ok());
  }
  rec->close();
  sql(c.path, "UPDATE blocks SET data = x'28b52ffd0400' WHERE seq = 2");
  auto reader = RecordingReader::open(c.path);
  ASSERT_TRUE(reader.ok());
  auto first = reader->read_after(0, 1);
  ASSERT_TRUE(first.ok());
  auto bad = reader->read_after(0, 10);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("block 2"), std::string::npos) << bad.error().message;
  EXPECT_TRUE(reader->read_after(2, 10).ok());
}

// The writer process: records a counter as fast as it can, flushes, reports "seq counter" per flush.
[[noreturn]] void crash_writer(const std::string& path, int fd) {
  RecorderConfig c;
  c.path = path;
  c.commit_interval_ns = 2'000'000;
  auto rec = Recorder::open(c);
  if (!rec.ok()) _exit(3);
  auto ch = (*rec)->channel("counter", "1");
  if (!ch.ok()) _exit(4);
  std::uint64_t counter = 0;
  const TimeNs t0 = now_ns();
  for (;;) {
    for (int i = 0; i < 300; ++i, ++counter) {
      const TimeNs t = t0 + static_cast<TimeNs>(counter) * 1'000'000;
      (*rec)->record_sample(t, *ch, static_cast<double>(counter));
      (*rec)->record_frame(counter_frame(t, counter));
      if (counter % 97 == 0) (*rec)->record_event(t, "tick", "{\"n\":" + std::to_string(counter) + "}");
    }
    if (!(*rec)->flush().ok()) _exit(5);
    const std::string line = std::to_string((*rec)->stats().last_seq) + " " + std::to_string(counter) + "\n";
    if (write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) _exit(6);
  }
}

TEST_F(RecorderTest, SigkillMidStreamLosesOnlyTheUncommittedTail) {
  std::mt19937 rng(12345);
  for (int round = 0; round < 5; ++round) {
    const std::string path = dir_ + "/crash-" + std::to_string(round) + ".db";
    fs::create_directories(dir_);
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(fds[0]);
      crash_writer(path, fds[1]);
    }
    close(fds[1]);
    // Kill after a random number of reports plus a random delay: anywhere within a commit.
    const int reports = 3 + static_cast<int>(rng() % 12);
    std::string text;
    char buf[4096];
    int lines = 0;
    while (lines < reports) {
      const ssize_t n = read(fds[0], buf, sizeof buf);
      ASSERT_GT(n, 0) << "writer exited early";
      text.append(buf, static_cast<std::size_t>(n));
      lines = static_cast<int>(std::count(text.begin(), text.end(), '\n'));
    }
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 3000));
    ASSERT_EQ(kill(pid, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof buf)) > 0) text.append(buf, static_cast<std::size_t>(n));
    close(fds[0]);
    // The last complete report.
    text.erase(text.find_last_of('\n'));
    std::istringstream last(
        text.substr(text.find_last_of('\n') == std::string::npos ? 0 : text.find_last_of('\n') + 1));
    std::uint64_t reported_seq = 0, reported_counter = 0;
    last >> reported_seq >> reported_counter;
    ASSERT_GT(reported_seq, 0u);

    EXPECT_EQ(integrity(path), "ok") << path;
    auto blocks = read_all(path);
    ASSERT_GE(blocks.size(), reported_seq) << "round " << round;
    std::uint64_t next_sample = 0, next_frame = 0;
    for (std::size_t i = 0; i < blocks.size(); ++i) {
      ASSERT_EQ(blocks[i].seq, i + 1);
      for (const auto& s : blocks[i].samples) ASSERT_EQ(s.value, static_cast<double>(next_sample++));
      for (const auto& f : blocks[i].frames) ASSERT_EQ(counter_of(f), next_frame++);
    }
    EXPECT_GE(next_sample, reported_counter) << "round " << round;
    EXPECT_GE(next_frame, reported_counter) << "round " << round;
    // And the file stays writable: a new writer continues after the last committed block.
    RecorderConfig again;
    again.path = path;
    auto rec = open(again);
    ASSERT_TRUE(rec);
    EXPECT_EQ(rec->stats().last_seq, blocks.size());
  }
}

}  // namespace
}  // namespace cellguard::recorder
