#include "core/log_pattern.h"

#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>

namespace cellguard {

bool stderr_is_journal() {
  const char* stream = std::getenv("JOURNAL_STREAM");
  if (stream == nullptr || *stream == '\0') return false;
  unsigned long long device = 0;
  unsigned long long inode = 0;
  if (std::sscanf(stream, "%llu:%llu", &device, &inode) != 2) return false;
  struct stat st {};
  if (::fstat(2, &st) != 0) return false;
  return static_cast<unsigned long long>(st.st_dev) == device &&
         static_cast<unsigned long long>(st.st_ino) == inode;
}

std::string log_pattern(std::string_view name) {
  const std::string tail = std::string(name) + ": %v";
  return stderr_is_journal() ? "%l " + tail : "%Y-%m-%dT%H:%M:%S.%e %^%l%$ " + tail;
}

}  // namespace cellguard
