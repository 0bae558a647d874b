// Users and sessions of the HTTP API: PBKDF2-HMAC-SHA256 password hashes (OpenSSL), cookie
// sessions, a rate limit on failed logins, and the rule deciding when a login is required.
//
// Passwords are never stored: a user has a random salt, an iteration count and the derived key
// (hex). Verification recomputes the key and compares in constant time (CRYPTO_memcmp); an unknown
// user costs the same work as a known one, so the answer's timing does not tell which names exist.
// Sessions are random 256-bit tokens (RAND_bytes) handed out as a cookie; the server keeps only
// their SHA-256, so neither a lookup's timing nor a memory dump yields a usable token.
//
// Thread safety: Authenticator may be used from any thread (one mutex); the free functions are pure.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "core/thread_annotations.h"

namespace cellguard::server {

// OWASP's 2023 figure for PBKDF2-HMAC-SHA256; about 0.3 s per login on a small machine.
inline constexpr std::uint32_t kDefaultPbkdf2Iterations = 600'000;
inline constexpr std::uint32_t kMinPbkdf2Iterations = 1'000;
inline constexpr std::uint32_t kMaxPbkdf2Iterations = 10'000'000;

struct PasswordHash {
  std::string salt_hex;  // 16 random bytes
  std::uint32_t iterations = kDefaultPbkdf2Iterations;
  std::string hash_hex;  // 32 bytes of PBKDF2-HMAC-SHA256(password, salt, iterations)
};

struct User {
  std::string name;
  PasswordHash password;
};

// A new hash with a random salt.
Result<PasswordHash> hash_password(std::string_view password,
                                   std::uint32_t iterations = kDefaultPbkdf2Iterations);
// Recomputes and compares in constant time. A malformed hash (bad hex, wrong length) never verifies.
bool verify_password(std::string_view password, const PasswordHash& hash);
// The [[users]] table for server.toml (what `cellguard server hash-password` prints).
std::string user_toml(std::string_view name, const PasswordHash& hash);

// 127.0.0.0/8, ::1 and "localhost"; anything else (0.0.0.0, ::, a LAN address, a host name) is not.
bool is_loopback_host(std::string_view host);
// The rule: a login is needed when asked for, or when the HTTP listener is not on a loopback address.
bool login_required(std::string_view http_host, bool require_login);

struct AuthConfig {
  std::vector<User> users;
  std::chrono::seconds session_lifetime{12 * 3600};
  int max_failures = 5;           // failed logins per client address within `failure_window` ...
  int max_failures_per_user = 0;  // ... or per user name from any address (0: 4 x max_failures) ...
  std::chrono::seconds failure_window{60};
  std::chrono::seconds lockout{60};  // ... then every login of that client (user) is refused this long
  std::size_t max_tracked = 65536;   // addresses and names tracked each; the stalest goes first
  std::size_t max_sessions = 4096;   // the oldest session goes when a new one would exceed this
};

class Authenticator {
 public:
  using Clock = std::chrono::steady_clock;
  explicit Authenticator(AuthConfig config);

  enum class Outcome { ok, wrong, rate_limited };
  struct LoginResult {
    Outcome outcome = Outcome::wrong;
    std::string token;                    // the session cookie's value when ok
    std::chrono::seconds retry_after{0};  // when rate_limited
  };
  // `client`: the peer address. The attempt is counted against the address and the user name
  // under one lock before the password is verified, so concurrent guesses cannot pass the limit;
  // a correct password takes its count back.
  LoginResult login(std::string_view client, std::string_view user, std::string_view password,
                    Clock::time_point now = Clock::now());
  // The session's user, if the token names a live session.
  std::optional<std::string> user_of(std::string_view token, Clock::time_point now = Clock::now());
  void logout(std::string_view token);

  std::uint64_t logins() const;
  std::uint64_t failed_logins() const;
  std::uint64_t rate_limited() const;
  std::size_t sessions() const;
  std::size_t tracked_addresses() const;

 private:
  struct Session {
    std::string user;
    Clock::time_point expires;
    Clock::time_point created;
  };
  struct Failures {
    std::vector<Clock::time_point> times;
    Clock::time_point locked_until{};
    Clock::time_point last{};
  };
  using FailureMap = std::map<std::string, Failures, std::less<>>;
  // Counts an attempt of `key` (locking it at `max`); the time it stays locked when it already is.
  std::optional<Clock::time_point> locked(FailureMap& map, std::string_view key, Clock::time_point now) const
      REQUIRES(mutex_);
  void count_attempt(FailureMap& map, std::string_view key, int max, Clock::time_point now) REQUIRES(mutex_);
  void take_back_attempt(FailureMap& map, std::string_view key, Clock::time_point now) REQUIRES(mutex_);
  AuthConfig config_;
  PasswordHash dummy_;  // verified against for unknown users (same cost)
  mutable Mutex mutex_;
  std::map<std::string, Session, std::less<>> sessions_ GUARDED_BY(mutex_);  // by SHA-256 of the token (hex)
  FailureMap failures_ GUARDED_BY(mutex_);                                   // by client address
  FailureMap user_failures_ GUARDED_BY(mutex_);                              // by user name
  std::uint64_t logins_ GUARDED_BY(mutex_) = 0, failed_ GUARDED_BY(mutex_) = 0,
                        rate_limited_ GUARDED_BY(mutex_) = 0;
};

}  // namespace cellguard::server
