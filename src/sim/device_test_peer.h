// Test support: runs an independent peer script (tests/peers/*.py, Debian's /usr/bin/python3) and
// keeps the simulation going while it runs. Header-only, for the device tests.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

namespace cellguard::sim::testing {

inline std::string source_dir() {
  if (const char* dir = std::getenv("CELLGUARD_SOURCE_DIR")) return dir;
  return CELLGUARD_TEST_SOURCE_DIR;
}

inline bool python_module_available(const std::string& module) {
  return ::access(("/usr/lib/python3/dist-packages/" + module).c_str(), R_OK) == 0;
}

// Runs `/usr/bin/python3 <source>/tests/peers/<script> <arguments>`, calling `between` repeatedly
// (every few milliseconds) until it exits; collects its stdout. Returns the exit status, or -1 if it
// could not start, was killed, or outlived `timeout` (it is then killed).
inline int run_peer(const std::string& script, const std::vector<std::string>& arguments, std::string& output,
                    const std::function<void()>& between = {},
                    std::chrono::seconds timeout = std::chrono::seconds(60)) {
  int out_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return -1;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
  std::vector<std::string> args = {"/usr/bin/python3", source_dir() + "/tests/peers/" + script};
  args.insert(args.end(), arguments.begin(), arguments.end());
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (auto& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out_pipe[1]);
  if (spawned != 0) {
    ::close(out_pipe[0]);
    return -1;
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  bool exited = false;
  bool open = true;
  while (!exited) {
    if (between) between();
    if (open) {
      pollfd fds{out_pipe[0], POLLIN, 0};
      if (::poll(&fds, 1, 5) > 0) {
        char buffer[1024];
        const ssize_t n = ::read(out_pipe[0], buffer, sizeof buffer);
        if (n > 0)
          output.append(buffer, static_cast<std::size_t>(n));
        else
          open = false;
      }
    } else {
      ::usleep(5000);
    }
    exited = ::waitpid(pid, &status, WNOHANG) == pid;
    if (!exited && std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      ::close(out_pipe[0]);
      return -1;
    }
  }
  char buffer[1024];
  ssize_t n = 0;
  while (open && (n = ::read(out_pipe[0], buffer, sizeof buffer)) > 0)
    output.append(buffer, static_cast<std::size_t>(n));
  ::close(out_pipe[0]);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace cellguard::sim::testing
