#include "core/log_pattern.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <optional>
#include <string>

namespace cellguard {
namespace {

class JournalStream : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const char* old = std::getenv("JOURNAL_STREAM")) saved_ = old;
  }
  void TearDown() override {
    if (saved_)
      ::setenv("JOURNAL_STREAM", saved_->c_str(), 1);
    else
      ::unsetenv("JOURNAL_STREAM");
  }
  static std::string stderr_identity() {
    struct stat st {};
    EXPECT_EQ(::fstat(2, &st), 0);
    return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  }
  std::optional<std::string> saved_;
};

TEST_F(JournalStream, TimeOnlyOutsideTheJournal) {
  ::unsetenv("JOURNAL_STREAM");
  EXPECT_FALSE(stderr_is_journal());
  EXPECT_EQ(log_pattern("edge"), "%Y-%m-%dT%H:%M:%S.%e %^%l%$ edge: %v");
}

TEST_F(JournalStream, NoTimeWhenStderrIsTheJournalsStream) {
  ::setenv("JOURNAL_STREAM", stderr_identity().c_str(), 1);
  EXPECT_TRUE(stderr_is_journal());
  EXPECT_EQ(log_pattern("server"), "%l server: %v");
}

TEST_F(JournalStream, AStreamOfAnotherFileIsNotOurs) {
  // A child whose stderr was redirected inherits the variable: it must keep its timestamps.
  struct stat st {};
  ASSERT_EQ(::fstat(2, &st), 0);
  const std::string other = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino + 1);
  ::setenv("JOURNAL_STREAM", other.c_str(), 1);
  EXPECT_FALSE(stderr_is_journal());
  ::setenv("JOURNAL_STREAM", "garbage", 1);
  EXPECT_FALSE(stderr_is_journal());
  EXPECT_EQ(log_pattern("sim"), "%Y-%m-%dT%H:%M:%S.%e %^%l%$ sim: %v");
}

}  // namespace
}  // namespace cellguard
