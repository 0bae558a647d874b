// The coalescing board writer: desired state and time in, command bytes out (no I/O, no sleeps).
#include "devices/board_writer.h"

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <string>

namespace cellguard::devices {
namespace {

constexpr std::int64_t kMs = 1'000'000;

// A time on the test's monotonic timeline, ns after its start.
constexpr MonoTime T(std::int64_t ns) { return MonoTime::from_ns(ns); }
// The rig's wiring: pump 6, fan 7, relay1 5, relay2 3, relay3 4.
BoardOutputWriter rig_writer(BoardWriterConfig config = {}) {
  return BoardOutputWriter(config, {6, 7, 5, 3, 4}, {5, 3, 4});
}
// An immediate-mode writer whose start-up state (everything off) has been sent.
BoardOutputWriter settled_immediate_writer(BoardWriterConfig config = {}) {
  auto writer = rig_writer(config);
  writer.set_line_synced(false);
  EXPECT_EQ(writer.next_command(T(0)).value_or(""), "5:0&3:0&4:0&6:0&7:0&");  // nothing sent yet: all of it
  return writer;
}

// What the rig's sketch does with the bytes of one read: strtok on `&`, atoi on both halves.
std::map<int, int> sketch_apply(std::string input) {
  std::map<int, int> writes;
  input = input.substr(0, 30);
  for (char* command = std::strtok(input.data(), "&"); command != nullptr;
       command = std::strtok(nullptr, "&")) {
    char* separator = std::strchr(command, ':');
    if (separator == nullptr) continue;
    *separator = 0;
    writes[std::atoi(command)] = std::atoi(separator + 1);
  }
  return writes;
}

TEST(BoardWriter, WaitsForALineAndSendsOneCoalescedPaddedCommandPerLine) {
  auto writer = rig_writer();
  for (int pin : {6, 7, 5, 3, 4}) ASSERT_TRUE(writer.set_desired(pin, false));
  EXPECT_FALSE(writer.next_command(T(0)));  // no line yet: the board's cycle is unknown
  writer.on_board_line(T(1000 * kMs));
  const auto first = writer.next_command(T(1001 * kMs));
  ASSERT_TRUE(first);
  EXPECT_EQ(*first, "5:0&3:0&4:0&6:0&7:0&&&&&&&&&&&");
  EXPECT_EQ(first->size(), 30u);
  EXPECT_FALSE(writer.pending());
  // Start-up of the rig: pump/fan on, then the precharge relays: one command per line.
  writer.set_desired(6, true);
  writer.set_desired(7, true);
  EXPECT_FALSE(writer.next_command(T(1100 * kMs)));  // already one command since this line
  writer.set_desired(3, true);
  writer.set_desired(4, true);
  writer.on_board_line(T(2000 * kMs));
  const auto second = writer.next_command(T(2000 * kMs));
  ASSERT_TRUE(second);
  EXPECT_EQ(sketch_apply(*second), (std::map<int, int>{{6, 1}, {7, 1}, {3, 1}, {4, 1}}));
  EXPECT_EQ(writer.pin(3)->sent_at, T(2000 * kMs));
}

TEST(BoardWriter, SendsOnlyInsideTheWindowAfterALine) {
  auto writer = rig_writer();
  writer.on_board_line(T(0));
  writer.set_desired(6, true);
  EXPECT_FALSE(writer.next_command(T(600 * kMs)));  // the sketch may be reading: wait for the next line
  EXPECT_FALSE(writer.next_command(T(-1)));
  writer.on_board_line(T(1000 * kMs));
  EXPECT_TRUE(writer.next_command(T(1599 * kMs)));
}

TEST(BoardWriter, OpeningGoesFirstAndClosingWaitsWhenBothDoNotFit) {
  BoardWriterConfig config;
  config.max_command_bytes = 12;
  auto writer = rig_writer(config);
  writer.on_board_line(T(0));
  for (int pin : {6, 7, 5, 3, 4}) writer.set_desired(pin, false);
  ASSERT_TRUE(writer.next_command(T(0)));
  writer.on_board_line(T(1000 * kMs));
  ASSERT_TRUE(writer.next_command(T(1000 * kMs)));
  writer.on_board_line(T(2000 * kMs));
  writer.set_desired(5, true);
  writer.set_desired(3, true);
  ASSERT_TRUE(writer.next_command(T(2000 * kMs)));
  // Open both relays and close relay 4 and the pump in one go: the openings first.
  writer.set_desired(6, true);
  writer.set_desired(4, true);
  writer.set_desired(3, false);
  writer.set_desired(5, false);
  writer.on_board_line(T(3000 * kMs));
  const auto command = writer.next_command(T(3000 * kMs));
  ASSERT_TRUE(command);
  EXPECT_EQ(*command, "5:0&3:0&6:1&");  // both openings, then pump; the closing of 4 does not fit
  writer.on_board_line(T(4000 * kMs));
  EXPECT_EQ(writer.next_command(T(4000 * kMs)).value_or(""), "4:1&&&&&&&&&");
}

TEST(BoardWriter, ConcatenatedCommandsStillParseRight) {
  // The failure: `4:0` then `6:1` ran together as `4:06:1`. With every pair ending in `&`
  // two commands read as one still give every pin its value.
  BoardWriterConfig config;
  config.pad = false;
  auto writer = settled_immediate_writer(config);
  writer.set_desired(4, true);
  const auto a = writer.next_command(T(0));
  writer.set_desired(6, true);
  const auto b = writer.next_command(T(1));
  ASSERT_TRUE(a && b);
  EXPECT_EQ(*a + *b, "4:1&6:1&");
  EXPECT_EQ(sketch_apply(*a + *b), (std::map<int, int>{{4, 1}, {6, 1}}));
}

TEST(BoardWriter, RefusesPinsOutsideTheConfiguredSet) {
  auto writer = settled_immediate_writer();
  EXPECT_FALSE(writer.set_desired(0, true));
  EXPECT_FALSE(writer.set_desired(13, true));
  EXPECT_FALSE(writer.pending());
}

TEST(BoardWriter, ImmediateModeWritesAtOnceAndReadBackRetriesThenFaults) {
  auto writer = settled_immediate_writer();
  writer.set_desired(5, true);
  EXPECT_EQ(writer.next_command(T(0)).value_or(""), "5:1&");  // no padding: the firmware parses by grammar
  // Read-back agrees.
  auto rb = writer.on_readback(1u << 5, T(1 * kMs));
  EXPECT_TRUE(rb.mismatch.empty());
  EXPECT_EQ(writer.pin(5)->confirmed, true);
  // A pin that does not follow: re-sent twice, then a fault, then no more re-sends.
  writer.set_desired(3, true);
  EXPECT_EQ(writer.next_command(T(2 * kMs)).value_or(""), "3:1&");
  for (int attempt = 0; attempt < 2; ++attempt) {
    rb = writer.on_readback(1u << 5, T((3 + attempt) * kMs));
    EXPECT_NE(rb.mismatch.find("pin 3 sent on, reads off"), std::string::npos) << rb.mismatch;
    EXPECT_TRUE(rb.fault.empty());
    EXPECT_EQ(writer.next_command(T((3 + attempt) * kMs)).value_or(""), "3:1&");
  }
  rb = writer.on_readback(1u << 5, T(10 * kMs));
  EXPECT_EQ(rb.fault, "pin 3 reads off after 2 re-sends of on");
  EXPECT_FALSE(writer.next_command(T(11 * kMs)));
  EXPECT_TRUE(writer.pin(3)->fault);
  // A new decision for the pin starts over.
  writer.set_desired(3, false);
  EXPECT_EQ(writer.next_command(T(12 * kMs)).value_or(""), "3:0&");
}

TEST(BoardWriter, AfterAResetEverythingIsSentAgainAndTheBoardsOwnOpeningIsAdopted) {
  auto writer = rig_writer();
  writer.set_line_synced(false);
  writer.set_desired(6, true);
  writer.set_desired(5, true);
  ASSERT_TRUE(writer.next_command(T(0)));
  // The board's fail-safe opened relay 5: the writer follows instead of closing it again.
  writer.board_switched(5, false, T(5 * kMs));
  EXPECT_FALSE(writer.pin(5)->desired);
  EXPECT_FALSE(writer.pending());
  writer.forget_sent();
  EXPECT_EQ(writer.next_command(T(6 * kMs)).value_or(""), "5:0&3:0&4:0&6:1&7:0&");
}

}  // namespace
}  // namespace cellguard::devices
