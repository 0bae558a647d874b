// libFuzzer target for server.toml (server/server_config.h): any bytes give a configuration or an
// error naming the file (no crash, no exception, no hang); users of a valid file have hex hashes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "server/server_config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto config = cellguard::server::parse_server_config(text, "/fuzz/server.toml");
  if (!config) {
    if (config.error().message.rfind("/fuzz/server.toml", 0) != 0) std::abort();
    return 0;
  }
  for (const auto& u : config->auth.users)
    if (u.name.empty() || u.password.hash_hex.size() != 64) std::abort();
  return 0;
}
