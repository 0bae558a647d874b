// Shared by the process-level tests: where the `cellguard` binary and the source tree are, and one
// JSON request to a process's control socket (edge, simulator, fault proxy).
// Needs CELLGUARD_TEST_BINARY and CELLGUARD_TEST_SOURCE_DIR defined by the test's CMake target;
// the environment variables CELLGUARD_BINARY and CELLGUARD_SOURCE_DIR override them.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "ipc/line_socket.h"

namespace cellguard::testing {

inline std::string binary() {
  const char* path = std::getenv("CELLGUARD_BINARY");
  return path != nullptr && *path != '\0' ? path : CELLGUARD_TEST_BINARY;
}

inline std::filesystem::path source_dir() {
  const char* dir = std::getenv("CELLGUARD_SOURCE_DIR");
  return dir != nullptr ? dir : CELLGUARD_TEST_SOURCE_DIR;
}

// {"ok":false,"error":...} when the socket does not answer.
inline nlohmann::json request(const std::string& socket, const nlohmann::json& req) {
  auto answer = ipc::request_line(socket, req.dump(), 10000);
  if (!answer) return {{"ok", false}, {"error", answer.error().message}};
  return nlohmann::json::parse(*answer, nullptr, false);
}

}  // namespace cellguard::testing
