// A small filesystem for "disk full" tests: a size-limited tmpfs (or a loop-mounted ext4 image) on a
// fresh directory under /tmp, unmounted and removed again by the destructor.
//
// Mounting needs root (CAP_SYS_ADMIN). Without it the object is not mounted() and reason() says why;
// a test then skips itself with that message:
//
//   cellguard::testing::SmallFilesystem fs(4 << 20);
//   if (!fs.mounted()) GTEST_SKIP() << fs.reason();
//   ... write into fs.path() until ENOSPC / SQLITE_FULL ...
//
// SQLite in WAL mode works on tmpfs (shared memory for the -shm file is a plain mmap there), so tmpfs is
// the default; ext4 is there for behaviour that differs on a block filesystem (reserved blocks, journal).
// scripts/disk-full.sh does the same from a shell. Thread safety: one owner; not copyable.
#pragma once

#include <fcntl.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

extern char** environ;

namespace cellguard::testing {

class SmallFilesystem {
 public:
  enum class Kind { tmpfs, ext4 };

  explicit SmallFilesystem(std::size_t bytes = 4 << 20, Kind kind = Kind::tmpfs) : kind_(kind) {
    if (::geteuid() != 0) {
      reason_ = "needs root to mount a " + std::string(kind == Kind::tmpfs ? "tmpfs" : "loop ext4 image") +
                " for the disk-full test (run as root, e.g. in CI's container)";
      return;
    }
    char dir[] = "/tmp/cellguard-smallfs-XXXXXX";
    if (::mkdtemp(dir) == nullptr) {
      reason_ = std::string("mkdtemp: ") + std::strerror(errno);
      return;
    }
    path_ = dir;
    if (kind == Kind::tmpfs) {
      const std::string data = "size=" + std::to_string(bytes) + ",mode=0755";
      if (::mount("tmpfs", path_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, data.c_str()) != 0) {
        reason_ = "mount -t tmpfs on " + path_ + ": " + std::strerror(errno) +
                  " (no CAP_SYS_ADMIN in this container?)";
        return;
      }
    } else {
      image_ = path_ + ".img";
      const int fd = ::open(image_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
      if (fd < 0 || ::ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
        reason_ = "image " + image_ + ": " + std::strerror(errno);
        if (fd >= 0) ::close(fd);
        return;
      }
      ::close(fd);
      // -m 0: no blocks reserved for root, so root sees ENOSPC at the stated size too.
      if (int rc = run({"mkfs.ext4", "-q", "-F", "-m", "0", image_}); rc != 0) {
        reason_ =
            "mkfs.ext4 " + image_ + " failed (exit " + std::to_string(rc) + "; is e2fsprogs installed?)";
        return;
      }
      if (int rc = run({"mount", "-o", "loop", image_, path_}); rc != 0) {
        reason_ =
            "mount -o loop " + image_ + " failed (exit " + std::to_string(rc) + "; no loop devices here?)";
        return;
      }
    }
    mounted_ = true;
  }

  ~SmallFilesystem() {
    if (mounted_ && ::umount2(path_.c_str(), 0) != 0) ::umount2(path_.c_str(), MNT_DETACH);  // busy: lazily
    if (!path_.empty()) ::rmdir(path_.c_str());
    if (!image_.empty()) ::unlink(image_.c_str());
  }
  SmallFilesystem(const SmallFilesystem&) = delete;
  SmallFilesystem& operator=(const SmallFilesystem&) = delete;

  bool mounted() const { return mounted_; }
  const std::string& reason() const { return reason_; }
  const std::string& path() const { return path_; }  // the mount point
  Kind kind() const { return kind_; }

  // Whether `path` is a mount point now (from /proc/self/mounts).
  static bool is_mount_point(const std::string& path) {
    std::ifstream mounts("/proc/self/mounts");
    std::string device, point, rest;
    while (mounts >> device >> point && std::getline(mounts, rest))
      if (point == path) return true;
    return false;
  }

 private:
  // Runs a program (no shell), output discarded; returns its exit code.
  static int run(std::vector<std::string> args) {
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid = 0;
    const int spawned = ::posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (spawned != 0) return 127;
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  Kind kind_;
  bool mounted_ = false;
  std::string reason_;
  std::string path_;
  std::string image_;
};

}  // namespace cellguard::testing
