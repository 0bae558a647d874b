#include "core/time.h"

#include <gtest/gtest.h>

#include <thread>
#include <type_traits>
#include <vector>

namespace cellguard {
namespace {

using namespace std::chrono_literals;

// The point of the types: the compiler refuses to mix the clocks or to take a raw count as a time.
static_assert(!std::is_convertible_v<MonoTime, WallTime>);
static_assert(!std::is_convertible_v<WallTime, MonoTime>);
static_assert(!std::is_constructible_v<WallTime, MonoTime>);
static_assert(!std::is_constructible_v<MonoTime, WallTime>);
static_assert(!std::is_convertible_v<std::int64_t, MonoTime>);
static_assert(!std::is_convertible_v<std::int64_t, WallTime>);
static_assert(!std::is_constructible_v<MonoTime, std::int64_t>);
static_assert(!std::is_convertible_v<MonoTime, std::int64_t>);
static_assert(!std::is_convertible_v<std::int64_t, Duration>);
static_assert(std::is_trivially_copyable_v<MonoTime> && sizeof(MonoTime) == sizeof(std::int64_t));

template <typename A, typename B>
concept Subtractable = requires(A a, B b) {
  a - b;
};
template <typename A, typename B>
concept Addable = requires(A a, B b) {
  a + b;
};
template <typename A, typename B>
concept Comparable = requires(A a, B b) {
  a < b;
};
static_assert(Subtractable<MonoTime, MonoTime> && Subtractable<WallTime, WallTime>);
static_assert(!Subtractable<MonoTime, WallTime> && !Subtractable<WallTime, MonoTime>);
static_assert(!Addable<MonoTime, MonoTime> && !Addable<MonoTime, WallTime>);
static_assert(!Addable<MonoTime, std::int64_t> && !Subtractable<WallTime, std::int64_t>);
static_assert(!Comparable<MonoTime, WallTime> && !Comparable<MonoTime, std::int64_t>);
static_assert(std::is_same_v<decltype(MonoTime{} - MonoTime{}), Duration>);
static_assert(std::is_same_v<decltype(WallTime{} + 1s), WallTime>);

TEST(Time, ArithmeticWithDurationsStaysOnItsClock) {
  const MonoTime t = MonoTime::from_ns(5'000'000'000);
  EXPECT_EQ((t + 250ms).ns(), 5'250'000'000);
  EXPECT_EQ((2s + t).ns(), 7'000'000'000);
  EXPECT_EQ((t - 1500ms).ns(), 3'500'000'000);
  EXPECT_EQ((t + 1s) - t, Duration(1'000'000'000));
  EXPECT_EQ(t - (t + 3us), Duration(-3'000));
  MonoTime u = t;
  u += 10ns;
  u -= 4ns;
  EXPECT_EQ(u.ns(), 5'000'000'006);
  EXPECT_EQ(u.since_epoch(), 5'000'000'006ns);
  EXPECT_DOUBLE_EQ(to_seconds(u - t), 6e-9);
  EXPECT_DOUBLE_EQ(to_seconds(-1500ms), -1.5);
}

TEST(Time, TimesOfOneClockCompare) {
  const WallTime a = WallTime::from_ns(1);
  const WallTime b = WallTime::from_ns(2);
  EXPECT_LT(a, b);
  EXPECT_GT(b, a);
  EXPECT_LE(a, a);
  EXPECT_EQ(a, WallTime::from_ns(1));
  EXPECT_NE(a, b);
  EXPECT_EQ(WallTime{}.ns(), 0);
  EXPECT_LT(MonoTime::min(), MonoTime{});
  EXPECT_GT(MonoTime::max(), MonoTime::from_ns(9'000'000'000'000'000'000));
}

TEST(Time, ConversionsToChronoRoundTrip) {
  const auto steady = std::chrono::steady_clock::time_point(123'456'789ns);
  EXPECT_EQ(to_mono(steady).ns(), 123'456'789);
  EXPECT_EQ(to_steady(to_mono(steady)), steady);
  // 2024-01-01T00:00:00Z
  const auto sys = std::chrono::sys_days(std::chrono::year(2024) / 1 / 1);
  EXPECT_EQ(to_wall(sys).ns(), 1'704'067'200'000'000'000);
  EXPECT_EQ(to_system(WallTime::from_ns(1'704'067'200'000'000'000)), sys);
}

TEST(Time, SystemClockReadsTheOperatingSystemsClocks) {
  const Clock& clock = system_clock();
  const WallTime wall_before = to_wall(std::chrono::system_clock::now());
  const MonoTime mono_before = to_mono(std::chrono::steady_clock::now());
  const MonoTime mono = clock.mono_now();
  const WallTime wall = clock.wall_now();
  EXPECT_GE(mono, mono_before);
  EXPECT_GE(wall, wall_before);
  EXPECT_LT(wall - wall_before, 10s);
  EXPECT_LT(mono - mono_before, 10s);
  EXPECT_GE(clock.mono_now(), mono);                              // monotonic
  EXPECT_GT(wall, WallTime::from_ns(1'600'000'000'000'000'000));  // after 2020: ns since the Unix epoch
}

TEST(Time, ManualClockMovesOnlyWhenTold) {
  ManualClock clock(MonoTime::from_ns(10), WallTime::from_ns(1'000));
  EXPECT_EQ(clock.mono_now().ns(), 10);
  EXPECT_EQ(clock.wall_now().ns(), 1'000);
  EXPECT_EQ(clock.mono_now().ns(), 10);  // reading does not move it
  clock.advance(5ns);
  EXPECT_EQ(clock.mono_now().ns(), 15);
  EXPECT_EQ(clock.wall_now().ns(), 1'005);
  clock.set_wall(WallTime::from_ns(200));  // the wall clock steps back; the monotonic one does not
  EXPECT_EQ(clock.wall_now().ns(), 200);
  EXPECT_EQ(clock.mono_now().ns(), 15);
  const Clock& as_interface = clock;
  clock.advance(1s);
  EXPECT_EQ(as_interface.mono_now().ns(), 1'000'000'015);
  EXPECT_EQ(as_interface.wall_now().ns(), 1'000'000'200);
}

TEST(Time, ManualClockDefaultsLookLikeARealMachine) {
  const ManualClock clock;
  EXPECT_GT(clock.mono_now(), MonoTime{});
  EXPECT_EQ(to_system(clock.wall_now()), std::chrono::sys_seconds(1'700'000'000s));
}

TEST(Time, ManualClockAdvancesFromManyThreads) {
  ManualClock clock(MonoTime{}, WallTime{});
  std::vector<std::thread> threads;
  threads.reserve(4);
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&clock] {
      for (int k = 0; k < 1000; ++k) clock.advance(1ns);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(clock.mono_now().ns(), 4000);
  EXPECT_EQ(clock.wall_now().ns(), 4000);
}

}  // namespace
}  // namespace cellguard
