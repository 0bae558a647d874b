// server.toml (server_config.h).
#include "server/server_config.h"

#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

// The system's toml++ is a shared library built with exceptions (see edge/config.cpp).
#include <toml++/toml.h>

#include "core/toml_nesting.h"
#include "server/http_query.h"

namespace cellguard::server {
namespace {

// Appends the pieces (GCC 12 warns falsely, -Wrestrict, on "literal" + std::string temporaries).
template <typename... Parts>
std::string cat(const Parts&... parts) {
  std::string out;
  (out.append(parts), ...);
  return out;
}

// Collects problems as "file:line:column: key: message".
class Checker {
 public:
  explicit Checker(std::string origin) : origin_(std::move(origin)) {}

  void problem(const toml::node* at, const std::string& key, const std::string& message) {
    std::string where = origin_;
    if (at) {
      const auto& b = at->source().begin;
      where += cat(":", std::to_string(b.line), ":", std::to_string(b.column));
    }
    problems_.push_back(cat(where, ": ", key, ": ", message));
  }
  // Every key of `table` not in `known` is a problem.
  void unknown_keys(const toml::table& table, const std::string& prefix,
                    std::initializer_list<std::string_view> known) {
    const std::set<std::string_view> k(known);
    for (const auto& [name, node] : table) {
      if (!k.count(name.str()))
        problem(&node, cat(prefix, name.str()), "unknown key (see data/server/server.toml)");
    }
  }
  const toml::table* table(const toml::table& parent, std::string_view key, const std::string& prefix) {
    const toml::node* n = parent.get(key);
    if (!n) return nullptr;
    if (!n->is_table()) {
      problem(n, prefix + std::string(key), "expected a table");
      return nullptr;
    }
    return n->as_table();
  }
  void string(const toml::table& t, std::string_view key, const std::string& prefix, std::string& out) {
    const toml::node* n = t.get(key);
    if (!n) return;
    if (auto s = n->as_string())
      out = s->get();
    else
      problem(n, prefix + std::string(key), "expected a string");
  }
  void boolean(const toml::table& t, std::string_view key, const std::string& prefix, bool& out) {
    const toml::node* n = t.get(key);
    if (!n) return;
    if (auto b = n->as_boolean())
      out = b->get();
    else
      problem(n, prefix + std::string(key), "expected true or false");
  }
  bool number(const toml::table& t, std::string_view key, const std::string& prefix, double lo, double hi,
              double& out) {
    const toml::node* n = t.get(key);
    if (!n) return false;
    double v = 0;
    if (auto i = n->as_integer())
      v = static_cast<double>(i->get());
    else if (auto f = n->as_floating_point())
      v = f->get();
    else {
      problem(n, prefix + std::string(key), "expected a number");
      return false;
    }
    if (!std::isfinite(v) || v < lo || v > hi) {
      std::ostringstream m;
      m << "must be between " << lo << " and " << hi;
      problem(n, prefix + std::string(key), m.str());
      return false;
    }
    out = v;
    return true;
  }
  template <typename Int>
  void integer(const toml::table& t, std::string_view key, const std::string& prefix, double lo, double hi,
               Int& out) {
    double v = 0;
    if (!number(t, key, prefix, lo, hi, v)) return;
    if (v != std::floor(v)) {
      problem(t.get(key), prefix + std::string(key), "expected a whole number");
      return;
    }
    out = static_cast<Int>(v);
  }
  void millis(const toml::table& t, std::string_view key, const std::string& prefix, double lo_s, double hi_s,
              std::chrono::milliseconds& out) {
    double v = 0;
    if (number(t, key, prefix, lo_s, hi_s, v))
      out = std::chrono::milliseconds(static_cast<long long>(v * 1000));
  }

  Result<void> result() const {
    if (problems_.empty()) return success();
    std::string all;
    for (const auto& p : problems_) all += (all.empty() ? "" : "\n") + p;
    return Error(ErrorCode::parse_error, all);
  }

 private:
  std::string origin_;
  std::vector<std::string> problems_;
};

bool is_hex(const std::string& s) {
  for (char c : s)
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  return !s.empty() && s.size() % 2 == 0;
}

}  // namespace

Result<ServerFileConfig> parse_server_config(std::string_view text, const std::string& origin) {
  // toml++ recurses per level: a file nested deeper than any configuration is refused before it does.
  if (auto deep = check_toml_nesting(text)) {
    return Error(ErrorCode::parse_error, cat(origin, ":", std::to_string(deep->line), ":",
                                             std::to_string(deep->column), ": ", deep->message));
  }
  toml::table root;
  try {
    root = toml::parse(text, origin);
  } catch (const toml::parse_error& e) {
    const auto& b = e.source().begin;
    return Error(ErrorCode::parse_error, cat(origin, ":", std::to_string(b.line), ":",
                                             std::to_string(b.column), ": ", e.description()));
  } catch (const std::exception& e) {
    return Error(ErrorCode::parse_error, origin + ": " + e.what());
  }
  ServerFileConfig config;
  Checker c(origin);
  c.unknown_keys(root, "", {"http", "users", "alarms", "store"});

  if (const toml::table* http = c.table(root, "http", "")) {
    const std::string p = "http.";
    c.unknown_keys(*http, p,
                   {"listen", "web_root", "require_login", "metrics_public", "threads", "session_hours",
                    "login_max_failures", "login_window_s", "login_lockout_s", "allowed_hosts",
                    "behind_tls_proxy", "max_streams"});
    c.string(*http, "listen", p, config.http.listen);
    c.string(*http, "web_root", p, config.http.web_root);
    c.boolean(*http, "require_login", p, config.http.require_login);
    c.boolean(*http, "metrics_public", p, config.http.metrics_public);
    c.integer(*http, "threads", p, 4, 1024, config.http.threads);
    c.integer(*http, "max_streams", p, 0, 1024, config.http.max_streams);
    c.boolean(*http, "behind_tls_proxy", p, config.http.behind_tls_proxy);
    if (const toml::node* hosts = http->get("allowed_hosts")) {
      const toml::array* list = hosts->as_array();
      if (!list) c.problem(hosts, p + "allowed_hosts", "expected a list of host names");
      for (std::size_t i = 0; list && i < list->size(); ++i) {
        const auto* name = list->get(i)->as_string();
        const std::string host = name ? host_of(name->get()) : "";
        if (host.empty())
          c.problem(list->get(i), p + "allowed_hosts", "expected a host name such as \"rig.example.org\"");
        else
          config.http.allowed_hosts.push_back(host);
      }
    }
    double hours = 0;
    if (c.number(*http, "session_hours", p, 0.01, 24 * 365, hours))
      config.auth.session_lifetime = std::chrono::seconds(static_cast<long long>(hours * 3600));
    c.integer(*http, "login_max_failures", p, 1, 1000, config.auth.max_failures);
    double s = 0;
    if (c.number(*http, "login_window_s", p, 1, 86400, s))
      config.auth.failure_window = std::chrono::seconds(static_cast<long long>(s));
    if (c.number(*http, "login_lockout_s", p, 1, 86400, s))
      config.auth.lockout = std::chrono::seconds(static_cast<long long>(s));
  }

  if (const toml::node* users = root.get("users")) {
    const toml::array* list = users->as_array();
    if (!list) {
      c.problem(users, "users", "expected [[users]] tables");
    } else {
      std::set<std::string> names;
      for (std::size_t i = 0; i < list->size(); ++i) {
        const std::string p = cat("users[", std::to_string(i), "].");
        const toml::node& n = *list->get(i);
        const toml::table* t = n.as_table();
        if (!t) {
          c.problem(&n, cat("users[", std::to_string(i), "]"), "expected a table");
          continue;
        }
        c.unknown_keys(*t, p, {"name", "salt", "iterations", "hash"});
        User u;
        u.password.iterations = 0;
        c.string(*t, "name", p, u.name);
        c.string(*t, "salt", p, u.password.salt_hex);
        c.string(*t, "hash", p, u.password.hash_hex);
        c.integer(*t, "iterations", p, kMinPbkdf2Iterations, kMaxPbkdf2Iterations, u.password.iterations);
        if (u.name.empty())
          c.problem(&n, p + "name", "a user needs a name");
        else if (!names.insert(u.name).second)
          c.problem(&n, p + "name", cat("user \"", u.name, "\" appears twice"));
        if (!is_hex(u.password.salt_hex))
          c.problem(&n, p + "salt", "expected hex digits (cellguard server hash-password)");
        if (!is_hex(u.password.hash_hex) || u.password.hash_hex.size() != 64)
          c.problem(&n, p + "hash", "expected 64 hex digits (cellguard server hash-password)");
        if (u.password.iterations == 0) c.problem(&n, p + "iterations", "missing");
        config.auth.users.push_back(std::move(u));
      }
    }
  }

  if (const toml::table* alarms = c.table(root, "alarms", "")) {
    const std::string p = "alarms.";
    c.unknown_keys(*alarms, p,
                   {"webhook_url", "bearer_token", "timeout_s", "queue", "retry_initial_s", "retry_max_s",
                    "max_attempts", "state_changes", "dangerous_events"});
    WebhookConfig& w = config.webhook;
    c.string(*alarms, "webhook_url", p, w.url);
    if (!w.url.empty()) {
      if (auto t = parse_webhook_url(w.url); !t)
        c.problem(alarms->get("webhook_url"), p + "webhook_url", t.error().message);
    }
    c.string(*alarms, "bearer_token", p, w.bearer_token);
    c.millis(*alarms, "timeout_s", p, 0.1, 300, w.timeout);
    c.integer(*alarms, "queue", p, 1, 1'000'000, w.max_queue);
    c.millis(*alarms, "retry_initial_s", p, 0.01, 3600, w.retry_initial);
    c.millis(*alarms, "retry_max_s", p, 0.01, 86400, w.retry_max);
    c.integer(*alarms, "max_attempts", p, 1, 1'000'000, w.max_attempts);
    c.boolean(*alarms, "state_changes", p, w.state_changes);
    c.boolean(*alarms, "dangerous_events", p, w.dangerous_events);
  }

  if (const toml::table* st = c.table(root, "store", "")) {
    c.unknown_keys(*st, "store.", {"retention_days"});
    double days = 0;
    if (c.number(*st, "retention_days", "store.", 0, 36500, days)) config.retention_days = days;
  }
  if (auto ok = c.result(); !ok) return ok.error();
  return config;
}

Result<ServerFileConfig> load_server_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error(ErrorCode::io_error, path + ": cannot open the server configuration");
  std::ostringstream text;
  text << in.rdbuf();
  return parse_server_config(text.str(), path);
}

}  // namespace cellguard::server
