// The live cache: latest values, state and reasons from the edge's state events and safety.state,
// resends ignored, late (backlog) data never replacing newer, loaded back from a real SQLite store.
#include "server/live.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>

namespace cellguard::server {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr store::TimeNs kT0 = 1'796'119'200'000'000'000;
constexpr store::TimeNs kS = 1'000'000'000;

class LiveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cellguard-live-test-" + std::to_string(getpid()));
    fs::remove_all(dir_);
    store::SqliteStoreConfig sc;
    sc.path = (dir_ / "store.db").string();
    sc.synchronous = store::Synchronous::off;
    auto st = store::open_sqlite_store(sc);
    ASSERT_TRUE(st) << st.error().message;
    store_ = std::move(*st);
    store::EdgeInfo info{"rig-01",
                         "0.1.0",
                         "cc",
                         "dd",
                         {{1, "BMU01_pdo1.CMA_Voltage", "V", 1, "BMU01_CMA_Voltage", false},
                          {2, "board.temp1_c", "degC", 0, "Ardu_Temp1", false},
                          {3, "safety.state", "", 0, "", false}}};
    ASSERT_TRUE(store_->put_edge(info));
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }

  // Stores and feeds one batch as the ingest does.
  void commit(LiveCache& live, store::Batch b) {
    std::vector<store::EdgeBatches> groups{{"rig-01", {b}}};
    ASSERT_TRUE(store_->put_batches(groups));
    live.on_committed("rig-01", groups[0].batches);
  }

  static store::Event state(store::TimeNs t, const char* from, const char* to,
                            const char* level = "warning") {
    json j{{"kind", "state"},
           {"from", from},
           {"to", to},
           {"reason",
            {{"rule", "limit_high"},
             {"level", level},
             {"quantity", "cell_voltage"},
             {"module", 1},
             {"measured", 4.21},
             {"threshold", 4.2}}}};
    return {t, "state", j.dump()};
  }

  fs::path dir_;
  std::unique_ptr<store::Store> store_;
};

TEST_F(LiveTest, LatestValuesAreTheNewestNonNanOfEachChannel) {
  LiveCache live(*store_);
  store::Batch b;
  b.seq = 1;
  b.series.push_back({{1, 2}, {kT0, kT0 + kS}, {48.1, 20.5, 48.2, std::nan("")}});
  commit(live, b);
  auto e = live.edge("rig-01");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->channels.size(), 3u);  // the catalogue, from the store
  EXPECT_EQ(e->latest.at(1).v, 48.2);
  EXPECT_EQ(e->latest.at(1).t, kT0 + kS);
  EXPECT_EQ(e->latest.at(2).v, 20.5);  // the NaN of the second row is "no value"
  EXPECT_EQ(e->latest.at(2).t, kT0);
  // A late batch (the backlog) with older samples does not replace them.
  store::Batch old;
  old.seq = 2;
  old.series.push_back({{1}, {kT0 - 10 * kS}, {47.0}});
  commit(live, old);
  EXPECT_EQ(live.edge("rig-01")->latest.at(1).v, 48.2);
}

TEST_F(LiveTest, TheStateAndItsReasonComeFromTheStateEvents) {
  std::vector<std::pair<std::string, store::Event>> sunk;
  LiveCache live(*store_,
                 [&](const std::string& edge, const store::Event& ev) { sunk.emplace_back(edge, ev); });
  EXPECT_EQ(live.state("rig-01").state, "unknown");  // nothing heard yet
  store::Batch b;
  b.seq = 1;
  b.series.push_back({{3}, {kT0}, {1}});
  b.events.push_back(state(kT0, "normal", "warning"));
  commit(live, b);
  LiveState s = live.state("rig-01");
  EXPECT_EQ(s.state, "warning");
  EXPECT_EQ(s.since_ns, kT0);
  ASSERT_EQ(s.reasons.size(), 1u);
  EXPECT_EQ(s.reasons[0]["rule"], "limit_high");
  EXPECT_EQ(s.reasons[0]["measured"], 4.21);
  ASSERT_EQ(sunk.size(), 1u);
  EXPECT_EQ(sunk[0].first, "rig-01");
  // Back to normal: no reasons.
  store::Batch n;
  n.seq = 2;
  n.series.push_back({{3}, {kT0 + kS}, {0}});
  n.events.push_back(state(kT0 + kS, "warning", "normal", "normal"));
  commit(live, n);
  s = live.state("rig-01");
  EXPECT_EQ(s.state, "normal");
  EXPECT_EQ(s.since_ns, kT0 + kS);
  EXPECT_TRUE(s.reasons.empty());
}

TEST_F(LiveTest, AnEdgeWithValuesAndNoStateReportIsNormal) {
  LiveCache live(*store_);
  store::Batch b;
  b.seq = 1;
  b.series.push_back({{2}, {kT0, kT0 + kS}, {21.0, 21.5}});
  commit(live, b);
  EXPECT_EQ(live.state("rig-01").state, "normal");
  EXPECT_EQ(live.state("rig-01").since_ns, kT0 + kS);  // the newest of each channel: its first seen
  store::Batch w;
  w.seq = 2;
  w.events.push_back(state(kT0 + 2 * kS, "normal", "warning"));
  commit(live, w);
  EXPECT_EQ(live.state("rig-01").state, "warning");
}

TEST_F(LiveTest, AResentBatchIsNeitherStreamedNorAlarmedTwice) {
  int sunk = 0;
  LiveCache live(*store_, [&](const std::string&, const store::Event&) { ++sunk; });
  store::Batch b;
  b.seq = 7;
  b.events.push_back(state(kT0, "normal", "dangerous", "dangerous"));
  commit(live, b);
  live.on_committed("rig-01", {b});  // the resend the store skipped as duplicate
  EXPECT_EQ(sunk, 1);
  EXPECT_EQ(live.events_after(0).size(), 1u);
  EXPECT_EQ(live.last_serial(), 1u);
}

TEST_F(LiveTest, ALateOlderStateEventDoesNotOverrideTheCurrentState) {
  LiveCache live(*store_);
  store::Batch now;
  now.seq = 10;
  now.series.push_back({{3}, {kT0 + 100 * kS}, {3}});
  now.events.push_back(state(kT0 + 100 * kS, "dangerous", "safe", "dangerous"));
  commit(live, now);
  store::Batch backlog;
  backlog.seq = 4;
  backlog.events.push_back(state(kT0, "normal", "warning"));
  commit(live, backlog);
  EXPECT_EQ(live.state("rig-01").state, "safe");
  EXPECT_EQ(live.state("rig-01").since_ns, kT0 + 100 * kS);
  // The late event is still in the recent events and the stream.
  EXPECT_EQ(live.edge("rig-01")->recent.size(), 2u);
  EXPECT_EQ(live.events_after(1).size(), 1u);
}

TEST_F(LiveTest, TheStateChannelAloneGivesTheState) {
  LiveCache live(*store_);
  store::Batch b;
  b.seq = 1;
  b.series.push_back({{3}, {kT0}, {2}});
  commit(live, b);
  EXPECT_EQ(live.state("rig-01").state, "dangerous");
  EXPECT_TRUE(live.state("rig-01").reasons.empty());
  EXPECT_EQ(state_name_of(3), "safe");
  EXPECT_EQ(state_name_of(7), "unknown");
  EXPECT_EQ(state_name_of(std::nan("")), "unknown");
}

TEST_F(LiveTest, ARestartedServerLoadsTheLastValuesAndStateFromTheStore) {
  {
    LiveCache live(*store_);
    store::Batch b;
    b.seq = 1;
    const store::TimeNs now = kT0;
    b.series.push_back({{1, 3}, {now}, {48.5, 1}});
    b.events.push_back(state(now, "normal", "warning"));
    commit(live, b);
  }
  LiveCache reloaded(*store_);
  ASSERT_TRUE(reloaded.load(WallTime::from_ns(kT0 + 60 * kS)));
  auto e = reloaded.edge("rig-01");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->latest.at(1).v, 48.5);
  EXPECT_EQ(e->software_version, "0.1.0");
  EXPECT_EQ(e->state.state, "warning");
  EXPECT_EQ(e->state.since_ns, kT0);
  ASSERT_EQ(e->state.reasons.size(), 1u);
  EXPECT_EQ(e->recent.size(), 1u);
}

TEST_F(LiveTest, WaitReturnsOnAChange) {
  LiveCache live(*store_);
  const auto g = live.generation();
  std::thread t([&] {
    store::Batch b;
    b.seq = 1;
    b.series.push_back({{2}, {kT0}, {21.0}});
    commit(live, b);
  });
  const auto start = std::chrono::steady_clock::now();
  std::uint64_t now = g;
  while (now == g && std::chrono::steady_clock::now() - start < std::chrono::seconds(5))
    now = live.wait(g, std::chrono::milliseconds(1000));
  t.join();
  EXPECT_NE(now, g);
}

}  // namespace
}  // namespace cellguard::server

namespace cellguard::server {
namespace {

// Issue 13 item 7: the SAFE banner's "would a reset pass now" and the history's limit lines come from
// the edge's events: the newest limit/state event with active_causes, the newest limits event; a late
// (older) event never replaces them, and a restarted server finds them in the store.
TEST_F(LiveTest, ActiveCausesResetVerdictAndLimitsFollowTheNewestEvents) {
  const json cause{
      {"rule", "limit_high"}, {"level", "dangerous"}, {"quantity", "cell_voltage"}, {"module", 1}};
  auto limit = [&](store::TimeNs t, const char* what, json causes, bool reset) {
    json j{{"kind", "limit"},
           {"event", what},
           {"reason", cause},
           {"active_causes", std::move(causes)},
           {"reset_possible", reset}};
    return store::Event{t, "limit", j.dump()};
  };
  json safe_event = json::parse(state(kT0 + kS, "dangerous", "safe", "dangerous").json);
  safe_event["active_causes"] = json::array({cause});
  safe_event["reset_possible"] = false;
  const json limits{{"cell_voltage", {{"warning_high", 4.1}, {"dangerous_high", 4.2}}}};
  {
    LiveCache live(*store_);
    store::Batch b;
    b.seq = 1;
    b.events = {{kT0, "config", json{{"kind", "config"}, {"event", "limits"}, {"limits", limits}}.dump()},
                limit(kT0 + kS / 2, "active", json::array({cause}), false),
                {kT0 + kS, "state", safe_event.dump()}};
    commit(live, b);
    auto e = live.edge("rig-01");
    ASSERT_TRUE(e);
    EXPECT_EQ(e->state.state, "safe");
    EXPECT_EQ(e->state.reset_possible, false);
    EXPECT_EQ(e->state.active_causes, json::array({cause}));
    EXPECT_EQ(e->limits, limits);
    // The cause clears: a reset would pass now.
    store::Batch c;
    c.seq = 2;
    c.events = {limit(kT0 + 3 * kS, "cleared", json::array(), true)};
    commit(live, c);
    EXPECT_EQ(live.state("rig-01").reset_possible, true);
    EXPECT_TRUE(live.state("rig-01").active_causes.empty());
    // A late backlog event (older) does not bring the cause back.
    store::Batch late;
    late.seq = 3;
    late.events = {limit(kT0 + 2 * kS, "active", json::array({cause}), false)};
    commit(live, late);
    EXPECT_EQ(live.state("rig-01").reset_possible, true);
  }
  // A restarted server loads the same from the store.
  LiveCache restarted(*store_);
  ASSERT_TRUE(restarted.load(WallTime::from_ns(kT0 + 10 * kS)));
  auto e = restarted.edge("rig-01");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->state.state, "safe");
  EXPECT_EQ(e->state.reset_possible, true);
  EXPECT_EQ(e->limits, limits);
}

// An edge without these fields (older software): null, so the dashboard does not guess.
TEST_F(LiveTest, ResetVerdictIsNullWhenTheEdgeDoesNotSay) {
  LiveCache live(*store_);
  store::Batch b;
  b.seq = 1;
  b.events = {state(kT0, "normal", "safe", "dangerous")};
  commit(live, b);
  EXPECT_EQ(live.state("rig-01").state, "safe");
  EXPECT_TRUE(live.state("rig-01").reset_possible.is_null());
  EXPECT_TRUE(live.state("rig-01").active_causes.is_null());
  EXPECT_TRUE(live.edge("rig-01")->limits.is_null());
}

}  // namespace
}  // namespace cellguard::server
