// Entry point of every test binary: gives tests the locations the build knows — the source tree and
// the built `cellguard` binary — as environment variables, unless the caller has set them already.
#include <gtest/gtest.h>

#include <cstdlib>

int main(int argc, char** argv) {
  ::setenv("CELLGUARD_SOURCE_DIR", CELLGUARD_TEST_SOURCE_DIR, 0);
  ::setenv("CELLGUARD_BINARY", CELLGUARD_TEST_BINARY, 0);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
