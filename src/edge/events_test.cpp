#include "edge/events.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

namespace cellguard::edge {
namespace {

TEST(Events, DecisionEventsCarryTheirReasonWithChannelNameAndTimes) {
  auto created = safety::Supervisor::create(safety::rig_defaults());
  ASSERT_TRUE(created);
  safety::Supervisor supervisor = std::move(created.value());
  auto cell = supervisor.add_channel(
      {"BMU03_pdo3.Cell_5_Voltage", safety::Quantity::cell_voltage, 3, "cell 5 of module 3"});
  ASSERT_TRUE(cell);
  // Wall-clock 2026-12-07 01:36:42.250 UTC; the edge has run for 14376 s (its monotonic clock).
  const TimeBase base{WallTime::from_ns(1'796'607'402'250'000'000), MonoTime::from_ns(14'376'000'000'000)};
  auto decisions = supervisor.on_sample(*cell, MonoTime::from_ns(14'376'000'000'000), 4.25);
  ASSERT_TRUE(decisions);
  bool saw_off = false, saw_state = false;
  for (const auto& d : *decisions) {
    const auto e = decision_event(supervisor, d, base);
    EXPECT_DOUBLE_EQ(e["t"].get<double>(), 1'796'607'402.25);
    EXPECT_DOUBLE_EQ(e["reason"]["since_s"].get<double>(), 1'796'607'402.25);
    EXPECT_EQ(e["reason"]["since_utc"], "2026-12-07T01:36:42.250Z");
    EXPECT_EQ(e["reason"]["text"],
              "cell 5 of module 3: 4.25 V >= 4.20 V (dangerous) since 2026-12-07 01:36:42");
    // No text or field carries the monotonic clock (14376 s).
    EXPECT_EQ(e.dump().find("14376"), std::string::npos) << e.dump();
    if (d.kind == safety::DecisionKind::inverter_off) {
      saw_off = true;
      EXPECT_EQ(e["kind"], "action");
      EXPECT_EQ(e["action"], "inverter_off");
      EXPECT_EQ(e["reason"]["rule"], "limit_high");
      EXPECT_EQ(e["reason"]["level"], "dangerous");
      EXPECT_EQ(e["reason"]["quantity"], "cell_voltage");
      EXPECT_EQ(e["reason"]["channel"], "BMU03_pdo3.Cell_5_Voltage");
      EXPECT_EQ(e["reason"]["module"], 3);
      EXPECT_DOUBLE_EQ(e["reason"]["measured"].get<double>(), 4.25);
      EXPECT_DOUBLE_EQ(e["reason"]["threshold"].get<double>(), 4.2);
      EXPECT_EQ(e["text"],
                "inverter off: cell 5 of module 3: 4.25 V >= 4.20 V (dangerous) since 2026-12-07 01:36:42");
    }
    if (d.kind == safety::DecisionKind::state_changed && d.to == safety::State::dangerous) {
      saw_state = true;
      EXPECT_EQ(e["kind"], "state");
      EXPECT_EQ(e["from"], "normal");
      EXPECT_EQ(e["to"], "dangerous");
    }
  }
  EXPECT_TRUE(saw_off);
  EXPECT_TRUE(saw_state);
}

TEST(Events, WriterAppendsLinesAndFlushWaitsForThem) {
  const std::string path = "/tmp/cellguard-events-test-" + std::to_string(::getpid()) + ".jsonl";
  ::unlink(path.c_str());
  {
    auto writer = EventWriter::open(path);
    ASSERT_TRUE(writer) << writer.error().message;
    for (int i = 0; i < 1000; ++i) EXPECT_TRUE((*writer)->write("{\"i\":" + std::to_string(i) + "}"));
    (*writer)->flush();
    std::ifstream in(path);
    int lines = 0;
    std::string line;
    while (std::getline(in, line)) {
      EXPECT_EQ(line, "{\"i\":" + std::to_string(lines) + "}");
      ++lines;
    }
    EXPECT_EQ(lines, 1000);
    EXPECT_EQ((*writer)->dropped(), 0u);
  }
  ::unlink(path.c_str());
  auto refused = EventWriter::open("/nonexistent-dir/events.jsonl");
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("/nonexistent-dir/events.jsonl"), std::string::npos);
}

}  // namespace
}  // namespace cellguard::edge

namespace cellguard::edge {
namespace {

TEST(EventText, BytesFromOutsideNeverMakeTheDumpThrowAndArriveEscaped) {
  // The element that aborted the edge (issue 12), a board line with terminal escapes, a bad key.
  nlohmann::json event = {
      {"kind", "link"},
      {"detail",
       "socketcand: unexpected character in '< frame 181 1796608346.000000 11\xfd"
       "22 >'"},
      {"nested", {{"line", std::string("T1:\x1b[2J\x07\x00", 9)}, {"list", {"\xc3\x28", 1.5}}}}};
  event["bad\xff key"] = true;
  EXPECT_THROW((void)event.dump(), nlohmann::json::type_error);  // what the edge used to do
  std::string text;
  ASSERT_NO_THROW(text = to_json_text(event));
  const auto parsed = nlohmann::json::parse(text);  // valid UTF-8 JSON
  EXPECT_EQ(parsed["detail"],
            "socketcand: unexpected character in '< frame 181 1796608346.000000 11\\xfd22 >'");
  EXPECT_EQ(parsed["nested"]["line"], "T1:\\x1b[2J\\x07\\x00");
  EXPECT_EQ(parsed["nested"]["list"][0], "\\xc3(");
  EXPECT_EQ(parsed["nested"]["list"][1], 1.5);
  EXPECT_TRUE(parsed.contains("bad\xef\xbf\xbd key"));  // keys: replaced, never thrown
  // Clean text is kept as it is.
  EXPECT_EQ(to_json_text({{"message",
                           "25 \xc2\xb0"
                           "C"}}),
            "{\"message\":\"25 \xc2\xb0"
            "C\"}");
  // Strings are bounded.
  const auto big = nlohmann::json::parse(to_json_text({{"line", std::string(100000, 'x')}}));
  EXPECT_LE(big["line"].get<std::string>().size(), kMaxJsonStringBytes);
}

}  // namespace
}  // namespace cellguard::edge
