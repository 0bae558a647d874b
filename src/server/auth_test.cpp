// Password hashes, sessions, the login rate limit and the rule deciding when a login is needed.
#include "server/auth.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "server/server_config.h"

namespace cellguard::server {
namespace {

using namespace std::chrono_literals;

AuthConfig one_user(const std::string& name, const std::string& password) {
  AuthConfig c;
  auto hash = hash_password(password, kMinPbkdf2Iterations);
  EXPECT_TRUE(hash);
  c.users.push_back({name, *hash});
  return c;
}

TEST(Auth, AHashVerifiesTheRightPasswordOnly) {
  auto hash = hash_password("correct horse", kMinPbkdf2Iterations);
  ASSERT_TRUE(hash) << hash.error().message;
  EXPECT_EQ(hash->salt_hex.size(), 32u);
  EXPECT_EQ(hash->hash_hex.size(), 64u);
  EXPECT_TRUE(verify_password("correct horse", *hash));
  EXPECT_FALSE(verify_password("correct horse ", *hash));
  EXPECT_FALSE(verify_password("", *hash));
  auto again = hash_password("correct horse", kMinPbkdf2Iterations);
  ASSERT_TRUE(again);
  EXPECT_NE(again->salt_hex, hash->salt_hex);  // a random salt each time
  EXPECT_NE(again->hash_hex, hash->hash_hex);
}

TEST(Auth, TheHashIsPbkdf2HmacSha256OfTheKnownVector) {
  // The published PBKDF2-HMAC-SHA256 vector: P = "password", S = "salt", c = 4096, dkLen = 32.
  PasswordHash h{"73616c74", 4096, "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a"};
  EXPECT_TRUE(verify_password("password", h));
}

TEST(Auth, AMalformedHashNeverVerifies) {
  auto good = hash_password("pw", kMinPbkdf2Iterations);
  ASSERT_TRUE(good);
  PasswordHash bad = *good;
  bad.hash_hex.pop_back();
  EXPECT_FALSE(verify_password("pw", bad));
  bad = *good;
  bad.salt_hex = "zz";
  EXPECT_FALSE(verify_password("pw", bad));
  bad = *good;
  bad.iterations = 1;
  EXPECT_FALSE(verify_password("pw", bad));
  EXPECT_FALSE(hash_password("pw", 10));
}

TEST(Auth, ALoginIsRequiredBeyondLoopbackOrWhenAskedFor) {
  for (const char* host : {"127.0.0.1", "127.0.0.2", "127.255.0.9", "::1", "[::1]", "localhost"}) {
    EXPECT_FALSE(login_required(host, false)) << host;
    EXPECT_TRUE(login_required(host, true)) << host;
  }
  for (const char* host : {"0.0.0.0", "::", "192.168.1.20", "10.0.0.1", "fe80::1", "lab.example.org", ""})
    EXPECT_TRUE(login_required(host, false)) << host;
}

TEST(Auth, ALoginGivesASessionUntilLogoutOrExpiry) {
  AuthConfig c = one_user("lab", "secret");
  c.session_lifetime = 10s;
  Authenticator auth(c);
  const auto t0 = Authenticator::Clock::now();
  auto r = auth.login("10.0.0.5", "lab", "secret", t0);
  ASSERT_EQ(r.outcome, Authenticator::Outcome::ok);
  EXPECT_EQ(r.token.size(), 64u);
  EXPECT_EQ(auth.user_of(r.token, t0 + 1s), "lab");
  EXPECT_FALSE(auth.user_of(r.token.substr(1) + "0", t0 + 1s));
  EXPECT_FALSE(auth.user_of(r.token, t0 + 11s));  // expired
  auto again = auth.login("10.0.0.5", "lab", "secret", t0);
  ASSERT_EQ(again.outcome, Authenticator::Outcome::ok);
  auth.logout(again.token);
  EXPECT_FALSE(auth.user_of(again.token, t0));
  EXPECT_EQ(auth.logins(), 2u);
}

TEST(Auth, WrongPasswordsAndUnknownUsersFailAlike) {
  Authenticator auth(one_user("lab", "secret"));
  EXPECT_EQ(auth.login("a", "lab", "wrong").outcome, Authenticator::Outcome::wrong);
  EXPECT_EQ(auth.login("b", "nobody", "secret").outcome, Authenticator::Outcome::wrong);
  EXPECT_EQ(auth.login("c", "la", "secret").outcome, Authenticator::Outcome::wrong);
  EXPECT_EQ(auth.failed_logins(), 3u);
}

TEST(Auth, RepeatedFailuresLockThatClientOutForAWhile) {
  AuthConfig c = one_user("lab", "secret");
  c.max_failures = 3;
  c.failure_window = 60s;
  c.lockout = 30s;
  Authenticator auth(c);
  const auto t0 = Authenticator::Clock::now();
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(auth.login("10.0.0.9", "lab", "guess", t0).outcome, Authenticator::Outcome::wrong);
  const auto locked = auth.login("10.0.0.9", "lab", "secret", t0 + 1s);  // even the right password
  EXPECT_EQ(locked.outcome, Authenticator::Outcome::rate_limited);
  EXPECT_EQ(locked.retry_after, 29s);
  EXPECT_EQ(auth.login("10.0.0.10", "lab", "secret", t0 + 1s).outcome,
            Authenticator::Outcome::ok);  // others not
  EXPECT_EQ(auth.login("10.0.0.9", "lab", "secret", t0 + 31s).outcome, Authenticator::Outcome::ok);
  EXPECT_EQ(auth.rate_limited(), 1u);
}

TEST(Auth, FailuresOutsideTheWindowDoNotAddUp) {
  AuthConfig c = one_user("lab", "secret");
  c.max_failures = 3;
  c.failure_window = 10s;
  Authenticator auth(c);
  const auto t0 = Authenticator::Clock::now();
  for (int i = 0; i < 6; ++i)
    EXPECT_EQ(auth.login("x", "lab", "guess", t0 + std::chrono::seconds(i * 6)).outcome,
              Authenticator::Outcome::wrong);
  EXPECT_EQ(auth.rate_limited(), 0u);
}

TEST(Auth, ConcurrentWrongLoginsGetNoMoreGuessesThanTheLimit) {
  // 20 at once from one address (the 11 got through a limit of 5): exactly 5 verified.
  AuthConfig c = one_user("lab", "secret");
  c.max_failures = 5;
  Authenticator auth(c);
  std::atomic<int> wrong{0}, limited{0};
  std::vector<std::thread> threads;
  threads.reserve(20);
  for (int i = 0; i < 20; ++i)
    threads.emplace_back([&] {
      const auto r = auth.login("127.0.0.1", "lab", "guess");
      (r.outcome == Authenticator::Outcome::wrong ? wrong : limited)++;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 5);
  EXPECT_EQ(limited.load(), 15);
}

TEST(Auth, RotatingAddressesMeetThePerUserLimit) {
  AuthConfig c = one_user("lab", "secret");
  c.max_failures = 5;
  c.max_failures_per_user = 8;
  Authenticator auth(c);
  const auto t0 = Authenticator::Clock::now();
  int wrong = 0;
  for (int i = 0; i < 30; ++i)  // a new loopback address for every guess
    if (auth.login("127.0.0." + std::to_string(i + 2), "lab", "guess", t0 + std::chrono::milliseconds(i))
            .outcome == Authenticator::Outcome::wrong)
      ++wrong;
  EXPECT_EQ(wrong, 8);
  // Another name is not locked by it; after the lockout the user logs in again.
  EXPECT_EQ(auth.login("127.0.0.99", "other", "x", t0 + 1s).outcome, Authenticator::Outcome::wrong);
  EXPECT_EQ(auth.login("127.0.0.99", "lab", "secret", t0 + 2s).outcome, Authenticator::Outcome::rate_limited);
  EXPECT_EQ(auth.login("127.0.0.99", "lab", "secret", t0 + 62s).outcome, Authenticator::Outcome::ok);
}

TEST(Auth, TheFailureMapIsBoundedByEvictingTheStalestNotEverything) {
  AuthConfig c = one_user("lab", "secret");
  c.max_failures = 2;
  c.max_failures_per_user = 1'000'000;
  c.max_tracked = 100;
  c.failure_window = 3600s;
  c.lockout = 3600s;
  Authenticator auth(c);
  const auto t0 = Authenticator::Clock::now();
  // A spray of 250 addresses, one guess each: never more than 100 tracked ...
  for (int i = 0; i < 250; ++i) {
    auth.login("10.0." + std::to_string(i / 200) + "." + std::to_string(i % 200), "lab", "x",
               t0 + std::chrono::milliseconds(i));
    ASSERT_LE(auth.tracked_addresses(), 100u);
  }
  EXPECT_EQ(auth.tracked_addresses(), 100u);
  // ... and the recent ones are kept (dropping everything would forget this address's first guess).
  EXPECT_EQ(auth.login("10.0.1.49", "lab", "y", t0 + 1s).outcome, Authenticator::Outcome::wrong);
  EXPECT_EQ(auth.login("10.0.1.49", "lab", "secret", t0 + 2s).outcome, Authenticator::Outcome::rate_limited);
}

TEST(Auth, ThePrintedUserEntryReadsBackFromServerToml) {
  auto hash = hash_password("pa\"ss", kMinPbkdf2Iterations);
  ASSERT_TRUE(hash);
  const std::string text = user_toml("lab \"one\"", *hash);
  auto parsed = parse_server_config(text, "printed");
  ASSERT_TRUE(parsed) << parsed.error().message << "\n" << text;
  ASSERT_EQ(parsed->auth.users.size(), 1u);
  EXPECT_EQ(parsed->auth.users[0].name, "lab \"one\"");
  EXPECT_TRUE(verify_password("pa\"ss", parsed->auth.users[0].password));
}

}  // namespace
}  // namespace cellguard::server
