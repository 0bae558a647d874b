// The disk-full test support (support/small_fs.h, scripts/disk-full.sh): the filesystem really is
// that small, SQLite in WAL mode on it reports SQLITE_FULL and recovers, and it goes away afterwards.
#include "support/small_fs.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cstdlib>
#include <string>
#include <vector>

namespace {

using cellguard::testing::SmallFilesystem;

// Writes 64 KiB blocks into `path` until a write fails; returns the bytes written and the errno.
std::pair<std::size_t, int> fill(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return {0, errno};
  const std::vector<char> block(64 * 1024, 'x');
  std::size_t written = 0;
  int error = 0;
  while (written < (64u << 20)) {
    const ssize_t n = ::write(fd, block.data(), block.size());
    if (n < 0) {
      error = errno;
      break;
    }
    written += static_cast<std::size_t>(n);
  }
  ::close(fd);
  return {written, error};
}

void expect_enospc_near(const SmallFilesystem& fs, std::size_t size) {
  const auto [written, error] = fill(fs.path() + "/fill");
  EXPECT_EQ(error, ENOSPC) << std::strerror(error);
  EXPECT_LE(written, size);
  EXPECT_GE(written, size / 2) << "far smaller than asked for";
}

TEST(SmallFilesystem, TmpfsWritesBeyondItsSizeFailWithNoSpace) {
  SmallFilesystem fs(4 << 20);
  if (!fs.mounted()) GTEST_SKIP() << fs.reason();
  EXPECT_TRUE(SmallFilesystem::is_mount_point(fs.path()));
  expect_enospc_near(fs, 4 << 20);
}

TEST(SmallFilesystem, Ext4ImageWritesBeyondItsSizeFailWithNoSpace) {
  SmallFilesystem fs(8 << 20, SmallFilesystem::Kind::ext4);
  if (!fs.mounted()) GTEST_SKIP() << fs.reason();
  expect_enospc_near(fs, 8 << 20);
}

TEST(SmallFilesystem, IsUnmountedAndRemovedWhenDestroyed) {
  std::string path;
  {
    SmallFilesystem fs(1 << 20);
    if (!fs.mounted()) GTEST_SKIP() << fs.reason();
    path = fs.path();
    ASSERT_TRUE(fill(path + "/some").first > 0);
  }
  EXPECT_FALSE(SmallFilesystem::is_mount_point(path));
  struct stat st {};
  EXPECT_NE(::stat(path.c_str(), &st), 0) << path << " left behind";
}

int exec(sqlite3* db, const std::string& sql) {
  return sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
}

TEST(SmallFilesystem, SqliteInWalModeReportsFullAndRecoversWhenSpaceIsFreed) {
  for (SmallFilesystem::Kind kind : {SmallFilesystem::Kind::tmpfs, SmallFilesystem::Kind::ext4}) {
    SCOPED_TRACE(kind == SmallFilesystem::Kind::tmpfs ? "tmpfs" : "ext4");
    SmallFilesystem fs(8 << 20, kind);
    if (!fs.mounted()) GTEST_SKIP() << fs.reason();
    // Room taken by another file, so freeing it later gives the database space again.
    const auto [ballast, error] = fill(fs.path() + "/ballast");
    ASSERT_EQ(error, ENOSPC);
    ASSERT_EQ(::truncate((fs.path() + "/ballast").c_str(), static_cast<off_t>(ballast - (2 << 20))), 0);

    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((fs.path() + "/store.db").c_str(), &db), SQLITE_OK);
    char* mode = nullptr;
    ASSERT_EQ(sqlite3_exec(
                  db, "PRAGMA journal_mode=WAL",
                  [](void* out, int, char** values, char**) {
                    *static_cast<char**>(out) = sqlite3_mprintf("%s", values[0]);
                    return 0;
                  },
                  &mode, nullptr),
              SQLITE_OK);
    EXPECT_STREQ(mode, "wal");
    sqlite3_free(mode);
    ASSERT_EQ(exec(db, "CREATE TABLE t(seq INTEGER PRIMARY KEY, payload BLOB)"), SQLITE_OK);
    int committed = 0;
    int rc = SQLITE_OK;
    for (int seq = 1; seq < 100000 && rc == SQLITE_OK; ++seq) {
      rc = exec(db, "INSERT INTO t VALUES(" + std::to_string(seq) + ", randomblob(16384))");
      if (rc == SQLITE_OK) committed = seq;
    }
    EXPECT_EQ(rc, SQLITE_FULL) << sqlite3_errmsg(db);
    EXPECT_GT(committed, 10);
    // Every committed row is still there, and after freeing space the next insert succeeds.
    sqlite3_stmt* count = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT count(*), max(seq) FROM t", -1, &count, nullptr), SQLITE_OK);
    ASSERT_EQ(sqlite3_step(count), SQLITE_ROW);
    EXPECT_EQ(sqlite3_column_int(count, 0), committed);
    EXPECT_EQ(sqlite3_column_int(count, 1), committed);
    sqlite3_finalize(count);
    ASSERT_EQ(::unlink((fs.path() + "/ballast").c_str()), 0);
    EXPECT_EQ(exec(db, "INSERT INTO t VALUES(" + std::to_string(committed + 1) + ", randomblob(16384))"),
              SQLITE_OK)
        << sqlite3_errmsg(db);
    sqlite3_close(db);
  }
}

TEST(DiskFullScript, MountsFillsAndUnmounts) {
  if (::geteuid() != 0) GTEST_SKIP() << "scripts/disk-full.sh needs root to mount";
  const char* source = std::getenv("CELLGUARD_SOURCE_DIR");
  ASSERT_NE(source, nullptr);
  const std::string script = std::string(source) + "/scripts/disk-full.sh";
  const std::string dir = "/tmp/cellguard-disk-full-test-" + std::to_string(::getpid());
  auto sh = [&](const std::string& args) {
    const int status = std::system((script + " " + args + " > /dev/null").c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  ASSERT_EQ(sh("mount " + dir + " 1m"), 0);
  EXPECT_TRUE(SmallFilesystem::is_mount_point(dir));
  EXPECT_EQ(sh("fill " + dir), 0) << "fill succeeds by reaching ENOSPC";
  struct stat st {};
  ASSERT_EQ(::stat((dir + "/fill").c_str(), &st), 0);
  EXPECT_LE(st.st_size, 1 << 20);
  EXPECT_EQ(sh("umount " + dir), 0);
  EXPECT_FALSE(SmallFilesystem::is_mount_point(dir));
}

}  // namespace
