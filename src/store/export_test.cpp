#include "store/export.h"

#include <gtest/gtest.h>

namespace cellguard::store {
namespace {

TEST(ExportTime, ParsesIsoAndUnixSeconds) {
  EXPECT_EQ(*parse_time("2026-12-01T10:00:00Z"), 1'796'119'200'000'000'000);
  EXPECT_EQ(*parse_time("1796119200"), 1'796'119'200'000'000'000);
}

}  // namespace
}  // namespace cellguard::store
