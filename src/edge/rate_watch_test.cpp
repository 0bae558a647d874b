#include "edge/rate_watch.h"

#include <gtest/gtest.h>

namespace cellguard::edge {
namespace {

constexpr Duration kMs = std::chrono::milliseconds(1);
constexpr Duration kSecond = std::chrono::seconds(1);
constexpr MonoTime at(Duration since_epoch) { return MonoTime() + since_epoch; }

TEST(RateWatch, AStormWarnsOnceWithTheCountAndTheWindowAndRepeatsAtMostOncePerPeriod) {
  RateWatch watch(100, kSecond, 10 * kSecond);
  // 5,000 error frames within 0.5 s: one warning, when the 100th arrives.
  int reports = 0;
  std::optional<RateWatch::Report> first;
  for (int i = 0; i < 5000; ++i) {
    if (auto r = watch.add(at(i * Duration(100'000)))) {  // every 0.1 ms
      ++reports;
      if (!first) first = r;
    }
  }
  EXPECT_EQ(reports, 1);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->count, 100u);
  EXPECT_EQ(first->window_ns, kSecond);
  EXPECT_EQ(first->since_last, 100u);
  EXPECT_EQ(watch.total(), 5000u);
  // Still storming 10 s later: a second warning with what happened since the first.
  std::optional<RateWatch::Report> second;
  for (int i = 0; i < 200 && !second; ++i) second = watch.add(at(10 * kSecond + i * kMs));
  ASSERT_TRUE(second);
  EXPECT_EQ(second->since_last, 5000u - 100u + 100u);
  EXPECT_GE(second->since_last_ns, 10 * kSecond - 10 * kMs);
}

TEST(RateWatch, ASteadyTrickleBelowTheThresholdNeverWarns) {
  RateWatch watch(100, kSecond, 10 * kSecond);
  for (int i = 0; i < 10000; ++i) EXPECT_FALSE(watch.add(at(i * 20 * kMs))) << i;  // 50 per second
  // 99 in one window, the 100th in the next: windows do not carry over.
  RateWatch edge_case(100, kSecond, kSecond);
  for (int i = 0; i < 99; ++i) EXPECT_FALSE(edge_case.add(at(i * kMs)));
  EXPECT_FALSE(edge_case.add(at(kSecond)));
}

}  // namespace
}  // namespace cellguard::edge
