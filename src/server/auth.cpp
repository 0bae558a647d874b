// Users and sessions (auth.h).
#include "server/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>
#include <asio/ip/address.hpp>
#include <cstdio>

namespace cellguard::server {
namespace {

constexpr std::size_t kSaltBytes = 16, kKeyBytes = 32, kTokenBytes = 32;

std::string to_hex(const unsigned char* data, std::size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out(2 * n, '0');
  for (std::size_t i = 0; i < n; ++i) {
    out[2 * i] = digits[data[i] >> 4];
    out[2 * i + 1] = digits[data[i] & 15];
  }
  return out;
}

std::optional<std::vector<unsigned char>> from_hex(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::vector<unsigned char> out(hex.size() / 2);
  for (std::size_t i = 0; i < out.size(); ++i) {
    const int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  return out;
}

bool derive(std::string_view password, const std::vector<unsigned char>& salt, std::uint32_t iterations,
            unsigned char* key) {
  return PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()), salt.data(),
                           static_cast<int>(salt.size()), static_cast<int>(iterations), EVP_sha256(),
                           static_cast<int>(kKeyBytes), key) == 1;
}

std::string token_key(std::string_view token) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), digest);
  return to_hex(digest, sizeof digest);
}

std::string toml_string(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned char>(c));
      out += buf;
      continue;
    }
    out += c;
  }
  return out + "\"";
}

}  // namespace

Result<PasswordHash> hash_password(std::string_view password, std::uint32_t iterations) {
  if (iterations < kMinPbkdf2Iterations || iterations > kMaxPbkdf2Iterations)
    return Error(ErrorCode::invalid_argument, "hash_password: iterations must be between " +
                                                  std::to_string(kMinPbkdf2Iterations) + " and " +
                                                  std::to_string(kMaxPbkdf2Iterations));
  std::vector<unsigned char> salt(kSaltBytes);
  if (RAND_bytes(salt.data(), static_cast<int>(salt.size())) != 1)
    return Error(ErrorCode::io_error, "hash_password: no random bytes from OpenSSL");
  unsigned char key[kKeyBytes];
  if (!derive(password, salt, iterations, key))
    return Error(ErrorCode::io_error, "hash_password: PBKDF2 failed");
  return PasswordHash{to_hex(salt.data(), salt.size()), iterations, to_hex(key, sizeof key)};
}

bool verify_password(std::string_view password, const PasswordHash& hash) {
  const auto salt = from_hex(hash.salt_hex);
  const auto expected = from_hex(hash.hash_hex);
  if (!salt || !expected || salt->empty() || expected->size() != kKeyBytes) return false;
  if (hash.iterations < kMinPbkdf2Iterations || hash.iterations > kMaxPbkdf2Iterations) return false;
  unsigned char key[kKeyBytes];
  if (!derive(password, *salt, hash.iterations, key)) return false;
  return CRYPTO_memcmp(key, expected->data(), kKeyBytes) == 0;
}

std::string user_toml(std::string_view name, const PasswordHash& hash) {
  return "[[users]]\nname = " + toml_string(name) + "\nsalt = \"" + hash.salt_hex +
         "\"\niterations = " + std::to_string(hash.iterations) + "\nhash = \"" + hash.hash_hex + "\"\n";
}

bool is_loopback_host(std::string_view host) {
  if (host == "localhost") return true;
  std::string h(host);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  asio::error_code ec;
  const auto address = asio::ip::make_address(h, ec);
  return !ec && address.is_loopback();
}

bool login_required(std::string_view http_host, bool require_login) {
  return require_login || !is_loopback_host(http_host);
}

Authenticator::Authenticator(AuthConfig config) : config_(std::move(config)) {
  if (config_.max_failures_per_user <= 0)
    config_.max_failures_per_user = 4 * std::max(1, config_.max_failures);
  // The dummy costs what a real user costs: the first user's iteration count.
  const std::uint32_t iterations =
      config_.users.empty() ? kMinPbkdf2Iterations : config_.users.front().password.iterations;
  dummy_.iterations = std::clamp(iterations, kMinPbkdf2Iterations, kMaxPbkdf2Iterations);
  dummy_.salt_hex = std::string(2 * kSaltBytes, '0');
  dummy_.hash_hex = std::string(2 * kKeyBytes, '0');
}

std::optional<Authenticator::Clock::time_point> Authenticator::locked(FailureMap& map, std::string_view key,
                                                                      Clock::time_point now) const {
  auto it = map.find(key);
  if (it == map.end() || it->second.locked_until <= now) return std::nullopt;
  return it->second.locked_until;
}

void Authenticator::count_attempt(FailureMap& map, std::string_view key, int max, Clock::time_point now) {
  auto it = map.find(key);
  if (it == map.end()) {
    // Bounded: forget what is over, then the stalest entry (never everything at once).
    if (map.size() >= config_.max_tracked)
      std::erase_if(map, [&](const auto& e) {
        return e.second.locked_until <= now && now - e.second.last > config_.failure_window;
      });
    while (map.size() >= config_.max_tracked && !map.empty())
      map.erase(std::min_element(map.begin(), map.end(),
                                 [](const auto& a, const auto& b) { return a.second.last < b.second.last; }));
    it = map.emplace(std::string(key), Failures{}).first;
  }
  Failures& f = it->second;
  std::erase_if(f.times, [&](Clock::time_point t) { return now - t > config_.failure_window; });
  f.times.push_back(now);
  f.last = now;
  if (static_cast<int>(f.times.size()) >= max) {
    f.locked_until = now + config_.lockout;
    f.times.clear();
  }
}

void Authenticator::take_back_attempt(FailureMap& map, std::string_view key, Clock::time_point now) {
  auto it = map.find(key);
  if (it == map.end()) return;
  auto& times = it->second.times;
  if (auto t = std::find(times.begin(), times.end(), now); t != times.end()) times.erase(t);
  if (it->second.locked_until == now + config_.lockout) it->second.locked_until = {};  // set by this attempt
  if (times.empty() && it->second.locked_until <= now) map.erase(it);
}

Authenticator::LoginResult Authenticator::login(std::string_view client, std::string_view user,
                                                std::string_view password, Clock::time_point now) {
  LoginResult result;
  // The name as a key: bounded, so a spray of huge names cannot grow the map's memory.
  const std::string_view user_key = user.substr(0, 256);
  {
    MutexLock lock(mutex_);
    auto until = locked(failures_, client, now);
    const auto user_until = locked(user_failures_, user_key, now);
    if (user_until && (!until || *user_until > *until)) until = user_until;
    if (until) {
      ++rate_limited_;
      result.outcome = Outcome::rate_limited;
      result.retry_after =
          std::max(std::chrono::seconds(1), std::chrono::ceil<std::chrono::seconds>(*until - now));
      return result;
    }
    // Counted before the (slow) verification: the limit holds for concurrent attempts too.
    count_attempt(failures_, client, config_.max_failures, now);
    count_attempt(user_failures_, user_key, config_.max_failures_per_user, now);
  }
  // The expensive part outside the lock: logins of different clients run in parallel.
  const User* found = nullptr;
  for (const User& u : config_.users)
    if (u.name.size() == user.size() && CRYPTO_memcmp(u.name.data(), user.data(), user.size()) == 0)
      found = &u;
  const bool ok = verify_password(password, found ? found->password : dummy_) && found != nullptr;
  MutexLock lock(mutex_);
  if (!ok) {
    ++failed_;
    result.outcome = Outcome::wrong;
    return result;
  }
  failures_.erase(std::string(client));
  take_back_attempt(user_failures_, user_key, now);
  unsigned char raw[kTokenBytes];
  if (RAND_bytes(raw, static_cast<int>(sizeof raw)) != 1) {
    result.outcome = Outcome::wrong;
    return result;
  }
  result.token = to_hex(raw, sizeof raw);
  std::erase_if(sessions_, [&](const auto& entry) { return entry.second.expires <= now; });
  while (sessions_.size() >= config_.max_sessions && !sessions_.empty()) {
    auto oldest = std::min_element(sessions_.begin(), sessions_.end(), [](const auto& a, const auto& b) {
      return a.second.created < b.second.created;
    });
    sessions_.erase(oldest);
  }
  sessions_[token_key(result.token)] = {found->name, now + config_.session_lifetime, now};
  ++logins_;
  result.outcome = Outcome::ok;
  return result;
}

std::optional<std::string> Authenticator::user_of(std::string_view token, Clock::time_point now) {
  if (token.size() != 2 * kTokenBytes) return std::nullopt;
  const std::string key = token_key(token);
  MutexLock lock(mutex_);
  auto it = sessions_.find(key);
  if (it == sessions_.end()) return std::nullopt;
  if (it->second.expires <= now) {
    sessions_.erase(it);
    return std::nullopt;
  }
  return it->second.user;
}

void Authenticator::logout(std::string_view token) {
  const std::string key = token_key(token);
  MutexLock lock(mutex_);
  sessions_.erase(key);
}

std::uint64_t Authenticator::logins() const {
  MutexLock lock(mutex_);
  return logins_;
}
std::uint64_t Authenticator::failed_logins() const {
  MutexLock lock(mutex_);
  return failed_;
}
std::uint64_t Authenticator::rate_limited() const {
  MutexLock lock(mutex_);
  return rate_limited_;
}
std::size_t Authenticator::sessions() const {
  MutexLock lock(mutex_);
  return sessions_.size();
}

}  // namespace cellguard::server

namespace cellguard::server {
std::size_t Authenticator::tracked_addresses() const {
  MutexLock lock(mutex_);
  return failures_.size();
}
}  // namespace cellguard::server
