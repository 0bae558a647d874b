// The HTTP API (http_api.h).
#include "server/http_api.h"

#include <httplib.h>
#include <netdb.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "core/text.h"
#include "core/thread_annotations.h"
#include "server/alarms.h"
#include "server/event_json.h"
#include "server/http_query.h"
#include "server/ingest.h"
#include "server/live.h"
#include "server/metrics.h"
#include "store/export.h"
#include "store/store.h"

namespace cellguard::server {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using store::TimeNs;

constexpr TimeNs kSecondNs = 1'000'000'000;
constexpr const char* kCookie = "cellguard_session";
const std::string kEdgePath = R"(/api/v1/edges/([A-Za-z0-9._-]{1,64}))";

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

void reply(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_header("Cache-Control", "no-store");
  res.set_content(dump(body), "application/json");
}
void fail(httplib::Response& res, int status, const std::string& message) {
  reply(res, status, {{"error", message}});
}

// The session cookie; `Secure` whenever the browser talks TLS (to us or to a proxy in front).
std::string session_cookie(const std::string& token, long long max_age_s, bool secure) {
  return std::string(kCookie) + "=" + token +
         "; Path=/; HttpOnly; SameSite=Strict; Max-Age=" + std::to_string(max_age_s) +
         (secure ? "; Secure" : "");
}

// Finite numbers as numbers; NaN and infinities have no JSON spelling: null.
json number(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

// A query parameter as an int64 (absent: `fallback`); false and a 400 when it is not one.
bool int_param(const httplib::Request& req, httplib::Response& res, const char* name, TimeNs fallback,
               TimeNs& out) {
  auto v = server::int_param(req.params, name, fallback);
  if (!v) {
    fail(res, 400, v.error().message);
    return false;
  }
  out = *v;
  return true;
}

// from/to with the defaults of the contract: the last `span` up to now.
bool range_params(const httplib::Request& req, httplib::Response& res, WallTime now, Duration span,
                  TimeNs& from, TimeNs& to) {
  auto r = server::range_params(req.params, now, span);
  if (!r) {
    fail(res, 400, r.error().message);
    return false;
  }
  from = r->from;
  to = r->to;
  return true;
}

int status_of(const Error& e) {
  switch (e.code) {
    case ErrorCode::not_found:
      return 404;
    case ErrorCode::invalid_argument:
    case ErrorCode::parse_error:
      return 400;
    default:
      return 500;
  }
}

std::string cookie_value(const httplib::Request& req, std::string_view name) {
  return server::cookie_value(req.get_header_value("Cookie"), name);
}

// The part of a channel name after the message: "BMU03_pdo3.Cell_5_Voltage" -> "Cell_5_Voltage".
std::string_view signal_of(std::string_view name) {
  const auto dot = name.rfind('.');
  return dot == std::string_view::npos ? name : name.substr(dot + 1);
}

// "Cell_5_Voltage" -> 5 with prefix "Cell_" and suffix "_Voltage"; 0 when it does not match.
int index_in(std::string_view s, std::string_view prefix, std::string_view suffix) {
  if (s.size() <= prefix.size() + suffix.size() || s.substr(0, prefix.size()) != prefix ||
      s.substr(s.size() - suffix.size()) != suffix)
    return 0;
  const std::string_view digits = s.substr(prefix.size(), s.size() - prefix.size() - suffix.size());
  int n = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  return ec == std::errc() && end == digits.data() + digits.size() && n >= 1 && n <= 64 ? n : 0;
}

// Concatenates the day files of a CSV export into one, the header once (again only where it changes).
Result<void> concatenate_csv(const std::vector<std::string>& files, const fs::path& out_path) {
  std::ofstream out(out_path, std::ios::binary);
  if (!out) return Error(ErrorCode::io_error, "export: cannot write " + out_path.string());
  std::string header, line;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    if (!in) return Error(ErrorCode::io_error, "export: cannot read " + f);
    bool first = true;
    while (std::getline(in, line)) {
      if (first) {
        first = false;
        if (line == header) continue;
        header = line;
      }
      out << line << '\n';
    }
  }
  out.flush();
  if (!out) return Error(ErrorCode::io_error, "export: cannot write " + out_path.string());
  return success();
}

std::string compact_time(TimeNs t) {
  std::string s = store::format_time_utc(t - t % kSecondNs);  // 2026-12-01T10:00:00Z
  std::string out;
  for (char c : s)
    if (c != '-' && c != ':') out += c;
  return out;
}

// ---- connections: budgets that cpp-httplib 0.11 does not have ----

using SteadyClock = std::chrono::steady_clock;

// One accepted connection, registered with the ConnectionGuard while a worker serves it.
struct Connection {
  int fd = -1;
  std::string ip;
  SteadyClock::time_point waiting_since{};
  bool waiting = true;  // waiting for a request head (after accept, or idle after a response)
  std::atomic<bool> evicted{false};
  bool close_after = false;  // the handler asked to close after this response
};

// Where the current worker's connection is (set for the duration of a connection).
thread_local Connection* current_connection = nullptr;

// Limits of connections: per address, and of those waiting for a request head. Making room closes
// the connection that has waited longest (a slow sender), so a new client is always served.
class ConnectionGuard {
 public:
  std::size_t max_per_address = 32, max_waiting = 16;

  bool admit(Connection& c) {
    MutexLock lock(mutex_);
    if (count_of(c.ip) >= max_per_address && !evict_oldest_waiting(&c.ip)) return false;
    if (waiting_count() >= max_waiting) evict_oldest_waiting(nullptr);
    c.waiting_since = SteadyClock::now();
    c.waiting = true;
    all_.push_back(&c);
    return true;
  }
  void set_waiting(Connection& c, bool waiting) {
    MutexLock lock(mutex_);
    c.waiting = waiting;
    if (waiting) c.waiting_since = SteadyClock::now();
  }
  void leave(Connection& c) {
    MutexLock lock(mutex_);
    std::erase(all_, &c);
  }
  // On stop: every blocked read or write returns at once.
  void shut_down_all() {
    MutexLock lock(mutex_);
    for (Connection* c : all_) {
      c->evicted = true;
      ::shutdown(c->fd, SHUT_RDWR);
    }
  }
  std::uint64_t evictions() const { return evictions_.load(); }

 private:
  std::size_t count_of(const std::string& ip) const REQUIRES(mutex_) {
    return static_cast<std::size_t>(std::count_if(
        all_.begin(), all_.end(), [&](const Connection* c) { return !c->evicted && c->ip == ip; }));
  }
  std::size_t waiting_count() const REQUIRES(mutex_) {
    return static_cast<std::size_t>(std::count_if(
        all_.begin(), all_.end(), [](const Connection* c) { return !c->evicted && c->waiting; }));
  }
  bool evict_oldest_waiting(const std::string* ip) REQUIRES(mutex_) {
    Connection* oldest = nullptr;
    for (Connection* c : all_)
      if (!c->evicted && c->waiting && (!ip || c->ip == *ip) &&
          (!oldest || c->waiting_since < oldest->waiting_since))
        oldest = c;
    if (!oldest) return false;
    oldest->evicted = true;
    ::shutdown(oldest->fd, SHUT_RDWR);  // its worker's read fails and the connection ends
    ++evictions_;
    return true;
  }

  Mutex mutex_;  // all_, and the waiting fields of the connections in it
  std::vector<Connection*> all_ GUARDED_BY(mutex_);
  std::atomic<std::uint64_t> evictions_{0};
};

// A socket stream whose reads share one deadline (the whole request head and body, not each
// read), whose writes never raise SIGPIPE, and which is not writable once the connection is reset,
// evicted or the server stops.
class DeadlineStream final : public httplib::Stream {
 public:
  DeadlineStream(Connection& c, std::chrono::milliseconds io_timeout, const std::atomic<bool>& stopping)
      : c_(c), io_timeout_(io_timeout), stopping_(stopping) {}
  void set_deadline(SteadyClock::time_point t) { deadline_ = t; }

  bool is_readable() const override { return begin_ < end_ || wait(POLLIN, deadline_); }
  bool is_writable() const override {
    if (stopping_ || c_.evicted) return false;
    // (Not POLLRDHUP: a client may half-close after its request and still read the answer.)
    pollfd p{c_.fd, POLLOUT, 0};
    const int n = ::poll(&p, 1, static_cast<int>(io_timeout_.count()));
    return n == 1 && (p.revents & (POLLERR | POLLHUP | POLLNVAL)) == 0 && (p.revents & POLLOUT);
  }
  ssize_t read(char* ptr, std::size_t size) override {
    if (begin_ == end_) {
      if (!wait(POLLIN, deadline_)) return -1;
      ssize_t n;
      do n = ::recv(c_.fd, buffer_, sizeof buffer_, 0);
      while (n < 0 && errno == EINTR);
      if (n <= 0) return n;
      begin_ = 0;
      end_ = static_cast<std::size_t>(n);
    }
    const std::size_t n = std::min(size, end_ - begin_);
    std::memcpy(ptr, buffer_ + begin_, n);
    begin_ += n;
    return static_cast<ssize_t>(n);
  }
  ssize_t write(const char* ptr, std::size_t size) override {
    if (!is_writable()) return -1;
    ssize_t n;
    do n = ::send(c_.fd, ptr, size, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n;
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override { address(::getpeername, ip, port); }
  void get_local_ip_and_port(std::string& ip, int& port) const override { address(::getsockname, ip, port); }
  socket_t socket() const override { return c_.fd; }

  static void address(int (*get)(int, sockaddr*, socklen_t*), int fd, std::string& ip, int& port) {
    sockaddr_storage a{};
    socklen_t len = sizeof a;
    ip.clear();
    port = 0;
    if (get(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) return;
    char host[NI_MAXHOST], serv[NI_MAXSERV];
    if (::getnameinfo(reinterpret_cast<sockaddr*>(&a), len, host, sizeof host, serv, sizeof serv,
                      NI_NUMERICHOST | NI_NUMERICSERV) != 0)
      return;
    ip = host;
    port = std::atoi(serv);
  }

 private:
  void address(int (*get)(int, sockaddr*, socklen_t*), std::string& ip, int& port) const {
    address(get, c_.fd, ip, port);
  }
  // Until the socket has `events`, the deadline passes (also capped by io_timeout for one wait),
  // the connection is evicted or the server stops; polled in short steps for the last two.
  bool wait(short events, SteadyClock::time_point deadline) const {
    const auto cap = SteadyClock::now() + io_timeout_;
    const auto until = std::min(deadline, cap);
    for (;;) {
      if (stopping_ || c_.evicted) return false;
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(until - SteadyClock::now()).count();
      if (left <= 0) return false;
      pollfd p{c_.fd, events, 0};
      const int n = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 100)));
      if (n > 0) return true;
      if (n < 0 && errno != EINTR) return false;
    }
  }

  Connection& c_;
  std::chrono::milliseconds io_timeout_;
  const std::atomic<bool>& stopping_;
  SteadyClock::time_point deadline_ = SteadyClock::time_point::max();
  char buffer_[4096];
  std::size_t begin_ = 0, end_ = 0;
};

// cpp-httplib's server with its connection loop replaced: the ConnectionGuard's limits and the
// DeadlineStream's total request timeout (cpp-httplib 0.11 times out each read, so a header line
// every few seconds held a worker for ever).
class GuardedServer : public httplib::Server {
 public:
  ConnectionGuard guard;
  std::chrono::milliseconds request_timeout{10'000};
  std::chrono::milliseconds io_timeout{5'000};
  std::size_t max_requests_per_connection = 100;
  std::atomic<bool> stopping{false};
  std::atomic<std::uint64_t> refused{0};

  // cpp-httplib 0.11 listens with a backlog of 5: a burst of connections overflows it and the
  // kernel drops SYNs, delaying honest clients by seconds of retransmission. Linux takes a second
  // listen() as a new backlog.
  void widen_backlog(int backlog) { ::listen(svr_sock_, backlog); }

 private:
  bool process_and_close_socket(socket_t sock) override {
    Connection c;
    c.fd = sock;
    int port = 0;
    DeadlineStream::address(::getpeername, sock, c.ip, port);
    bool ok = false;
    if (guard.admit(c)) {
      current_connection = &c;
      DeadlineStream stream(c, io_timeout, stopping);
      for (std::size_t n = 0; n < max_requests_per_connection && !stopping && !c.evicted; ++n) {
        guard.set_waiting(c, true);
        stream.set_deadline(SteadyClock::now() + request_timeout);
        bool closed = false;
        const bool last = n + 1 == max_requests_per_connection || stopping;
        ok = process_request(stream, last, closed, nullptr);
        if (!ok || closed || c.close_after) break;
      }
      current_connection = nullptr;
      guard.leave(c);
    } else {
      ++refused;
    }
    ::shutdown(sock, SHUT_RDWR);
    ::close(sock);
    return ok;
  }
};

// Whether the peer has closed or reset the connection (without waiting).
bool peer_gone(int fd) {
  pollfd p{fd, POLLRDHUP, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

// Asks cpp-httplib's worker loop to close the connection after this response.
void close_after_response(httplib::Response& res) {
  if (current_connection) current_connection->close_after = true;
  res.set_header("Connection", "close");
}

constexpr std::size_t kMaxBody = 64 * 1024;  // the only bodies are logins

// The dashboard's needs (web/: module scripts, a stylesheet, canvas charts, fetch and
// EventSource to this origin, a data: icon) and nothing more; never framed.
constexpr const char* kContentSecurityPolicy =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

}  // namespace

struct HttpApi::Impl {
  HttpApiConfig config;
  store::Store* store = nullptr;
  const IngestServer* ingest = nullptr;
  LiveCache* live = nullptr;
  const WebhookAlarms* alarms = nullptr;
  std::shared_ptr<spdlog::logger> log;
  GuardedServer server;
  std::thread thread;
  std::atomic<bool> listen_returned{false};  // set by `thread` when listen_after_bind() returns
  fs::path web_root_canonical;               // empty: no dashboard
  std::vector<std::string> allowed_hosts;
  int port = 0;
  bool login_needed = false;
  std::unique_ptr<Authenticator> auth;
  std::atomic<bool> stopping{false};
  std::atomic<std::uint64_t> requests{0};
  std::atomic<int> streams{0};
  int max_streams = 1;

  // ---- edges ----

  json summary(const std::string& id, const EdgeStatus* status, const LiveEdge* live_edge) const {
    json j;
    j["id"] = id;
    j["connected"] = status && status->connected;
    j["peer"] = status ? status->peer : "";
    j["last_seen_ns"] = status ? status->last_seen.ns() : 0;
    j["connected_since_ns"] = status && status->connected ? status->connected_since.ns() : 0;
    j["software_version"] = status && !status->software_version.empty() ? status->software_version
                            : live_edge                                 ? live_edge->software_version
                                                                        : "";
    j["config_sha256"] = status && !status->config_sha256.empty() ? status->config_sha256
                         : live_edge                              ? live_edge->config_sha256
                                                                  : "";
    const LiveState st = live_edge ? live_edge->state : LiveState{};
    j["state"] = st.state;
    j["state_since_ns"] = st.since_ns;
    j["reasons"] = st.reasons;
    j["active_causes"] = st.active_causes;
    j["reset_possible"] = st.reset_possible;
    j["backlog_batches"] = status ? status->backlog_batches : 0;
    j["lost_records"] = status ? status->lost_records : 0;
    j["batches"] = status ? status->batches : 0;
    j["samples"] = status ? status->samples : 0;
    j["duplicates"] = status ? status->duplicates : 0;
    j["connections"] = status ? status->connections : 0;
    j["last_error"] = status ? status->last_error : "";
    std::set<int> modules;
    TimeNs newest = 0;
    if (live_edge) {
      for (const auto& c : live_edge->channels)
        if (c.module != 0 && live_edge->latest.count(c.id)) modules.insert(c.module);
      for (const auto& entry : live_edge->latest) newest = std::max(newest, entry.second.t);
    }
    j["modules"] = modules.size();
    j["last_value_ns"] = newest;
    j["server_time_ns"] =
        config.clock->wall_now().ns();  // ages are measured against this clock, not the browser's
    return j;
  }

  // Every edge of the store or of this run, by id.
  json edges_json() const {
    std::map<std::string, EdgeStatus> statuses;
    for (auto& s : ingest->edges()) statuses[s.edge_id] = std::move(s);
    std::set<std::string> ids;
    for (const auto& [id, s] : statuses) ids.insert(id);
    for (auto& id : live->edge_ids()) ids.insert(std::move(id));
    json list = json::array();
    for (const auto& id : ids) {
      auto it = statuses.find(id);
      auto le = live->edge(id);
      list.push_back(summary(id, it == statuses.end() ? nullptr : &it->second, le ? &*le : nullptr));
    }
    return {{"edges", std::move(list)}, {"server_time_ns", config.clock->wall_now().ns()}};
  }

  // The edge's live view, or a 404.
  std::optional<LiveEdge> find_edge(const std::string& id, httplib::Response& res) const {
    if (auto le = live->edge(id)) return le;
    for (const auto& s : ingest->edges())
      if (s.edge_id == id) return LiveEdge{};
    fail(res, 404, "unknown edge \"" + id + "\"");
    return std::nullopt;
  }

  json latest_json(const LiveEdge& e) const {
    std::map<std::uint32_t, const store::Channel*> by_id;
    for (const auto& c : e.channels) by_id[c.id] = &c;
    json values = json::object();
    TimeNs newest = 0;
    for (const auto& [id, v] : e.latest) {
      auto it = by_id.find(id);
      const std::string name = it == by_id.end() ? "#" + std::to_string(id) : it->second->name;
      json item{{"t", v.t}, {"v", number(v.v)}};
      item["unit"] = it == by_id.end() ? "" : it->second->unit;
      item["module"] = it == by_id.end() ? 0 : it->second->module;
      values[name] = std::move(item);
      newest = std::max(newest, v.t);
    }
    return {{"t", newest}, {"values", std::move(values)}, {"server_time_ns", config.clock->wall_now().ns()}};
  }

  static json modules_json(const LiveEdge& e, WallTime now) {
    struct Module {
      json j;
      TimeNs newest = 0;
      std::vector<json> cells, temps;
    };
    std::map<int, Module> modules;
    for (const auto& c : e.channels) {
      if (c.module == 0) continue;
      Module& m = modules[c.module];
      auto it = e.latest.find(c.id);
      if (it == e.latest.end()) continue;
      const LiveValue& v = it->second;
      m.newest = std::max(m.newest, v.t);
      const std::string_view sig = signal_of(c.name);
      static const std::map<std::string_view, const char*> fields{{"CMA_Voltage", "voltage_v"},
                                                                  {"CMA_Current", "current_a"},
                                                                  {"SOC", "soc_pct"},
                                                                  {"SOH", "soh_pct"},
                                                                  {"CMA_Min_Temp", "min_temp_c"},
                                                                  {"CMA_Max_Temp", "max_temp_c"},
                                                                  {"CellBalancingStatus", "balancing"},
                                                                  {"CMA_Status", "status"},
                                                                  {"Min_Cell_Voltage", "min_cell_v"},
                                                                  {"Max_Cell_Voltage", "max_cell_v"}};
      if (auto f = fields.find(sig); f != fields.end()) {
        m.j[f->second] = number(v.v);
      } else if (int k = index_in(sig, "Cell_", "_Voltage")) {
        if (m.cells.size() < static_cast<std::size_t>(k)) m.cells.resize(static_cast<std::size_t>(k));
        m.cells[static_cast<std::size_t>(k - 1)] = number(v.v);
      } else if (int t = index_in(sig, "CMA_Temp", "")) {
        if (m.temps.size() < static_cast<std::size_t>(t)) m.temps.resize(static_cast<std::size_t>(t));
        m.temps[static_cast<std::size_t>(t - 1)] = number(v.v);
      }
    }
    json list = json::array();
    for (auto& [id, m] : modules) {
      if (m.newest == 0) continue;  // in the catalogue, never heard
      m.cells.resize(std::max<std::size_t>(m.cells.size(), 14));
      m.temps.resize(std::max<std::size_t>(m.temps.size(), 7));
      json j{
          {"module", id}, {"age_ms", std::max<TimeNs>(0, now.ns() - m.newest) / 1'000'000}, {"t", m.newest}};
      for (const char* f : {"voltage_v", "current_a", "soc_pct", "soh_pct", "min_temp_c", "max_temp_c",
                            "balancing", "status", "min_cell_v", "max_cell_v"})
        j[f] = m.j.contains(f) ? m.j[f] : json(nullptr);
      j["cells_v"] = m.cells;
      j["temps_c"] = m.temps;
      list.push_back(std::move(j));
    }
    return {{"modules", std::move(list)}};
  }

  // The values of the channels "<prefix><field>" as fields, with "t" the newest.
  static json group_json(const LiveEdge& e, const std::string& prefix,
                         const std::vector<std::string>& fields) {
    json j;
    TimeNs newest = 0;
    for (const auto& f : fields) j[f] = nullptr;
    for (const auto& c : e.channels) {
      if (c.name.rfind(prefix, 0) != 0) continue;
      auto it = e.latest.find(c.id);
      if (it == e.latest.end()) continue;
      j[c.name.substr(prefix.size())] = number(it->second.v);
      newest = std::max(newest, it->second.t);
    }
    j["t"] = newest;
    return j;
  }

  static json event_json(const store::Event& e) {
    // Parsed only when it passed the ingest's bounds (event_json.h); otherwise as a string.
    json parsed =
        event_json_problem(e.json) ? json(e.json.substr(0, 1024)) : json::parse(e.json, nullptr, false);
    if (parsed.is_discarded()) parsed = e.json.substr(0, 1024);
    return {{"t", e.time_ns}, {"kind", e.kind}, {"event", std::move(parsed)}};
  }

  // An event's stored JSON for splicing: as stored when it passes the ingest's check (events
  // stored before the check existed may not), else as a JSON string.
  static std::string stored_event(const store::Event& e) {
    if (!event_json_problem(e.json)) return e.json;
    return dump(json(e.json.substr(0, 1024)));
  }

  static bool about_inverter(const store::Event& e) {
    if (e.kind == "link" || e.kind == "action" || e.kind == "inverter")
      return e.json.find("inverter") != std::string::npos;
    return false;
  }

  json inverter_json(const LiveEdge& e) const {
    json j = group_json(e, "inverter.",
                        {"battery_voltage_v", "dc_link_voltage_v", "dc_link_current_a", "dc_link_power_kw",
                         "heatsink_c", "ambient_c"});
    json events = json::array();
    json link = nullptr, setpoint = nullptr;
    for (const auto& ev : e.recent) {
      if (!about_inverter(ev)) continue;
      json item = event_json(ev);
      if (ev.kind == "link") link = item;
      if (item["event"].is_object() && item["event"].contains("setpoint_a"))
        setpoint = item["event"]["setpoint_a"];
      events.push_back(std::move(item));
    }
    while (events.size() > 20) events.erase(events.begin());
    j["link"] = link;
    j["setpoint_a"] = setpoint;
    j["events"] = std::move(events);
    return j;
  }

  // ---- routes ----

  bool public_path(const std::string& path) const {
    if (path == "/api/v1/health" || path == "/api/v1/login" || path == "/api/v1/logout" ||
        path == "/api/v1/session")
      return true;
    if (path == "/metrics") return config.metrics_public;
    return path.rfind("/api/", 0) != 0;  // the dashboard's files (the login page is one of them)
  }

  std::optional<std::string> session_user(const httplib::Request& req) const {
    const std::string token = cookie_value(req, kCookie);
    if (token.empty()) return std::nullopt;
    return auth->user_of(token);
  }

  // Bodies are read only where one is expected (the login, bounded by its reader): anything else
  // with a body is refused before a byte of it is read. A status, or 0.
  struct Refusal {
    int status = 0;
    std::string message;
    explicit operator bool() const { return status != 0; }
  };
  static Refusal refuse_body(const httplib::Request& req) {
    const std::string te = req.get_header_value("Transfer-Encoding");
    const bool has_length = req.has_header("Content-Length");
    std::uint64_t length = 0;
    if (has_length) {
      const std::string v = req.get_header_value("Content-Length");
      auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), length);
      if (ec != std::errc() || end != v.data() + v.size()) {
        return {400, "bad Content-Length"};
      }
    }
    if (te.empty() && length == 0) return {};
    if (!te.empty() && te != "chunked") {
      return {501, "Transfer-Encoding \"" + te.substr(0, 40) + "\" is not supported"};
    }
    if (req.method != "POST" || req.path != "/api/v1/login") {
      return {413, "no body is accepted here"};
    }
    if (length > kMaxBody) {
      return {413, "a body of at most " + std::to_string(kMaxBody) + " bytes"};
    }
    return {};
  }

  // A dashboard path that resolves (through symbolic links) outside the web root.
  bool outside_web_root(const httplib::Request& req) const {
    if (web_root_canonical.empty() || (req.method != "GET" && req.method != "HEAD") ||
        req.path.rfind("/api/", 0) == 0)
      return false;
    std::error_code ec;
    fs::path p = web_root_canonical / fs::path(req.path).relative_path();
    if (fs::is_directory(p, ec)) p /= "index.html";
    if (!fs::exists(fs::symlink_status(p, ec))) return false;  // not a file: the single-page app
    const fs::path real = fs::canonical(p, ec);
    if (ec) return true;  // a dangling or looping link
    return !within_web_root(real);
  }
  bool within_web_root(const fs::path& real) const {
    const std::string root = web_root_canonical.string() + "/";
    return real.string().rfind(root, 0) == 0;
  }

  void routes() {
    server.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      ++requests;
      // The head has arrived: this connection is no longer a slow sender to be evicted.
      if (current_connection) server.guard.set_waiting(*current_connection, false);
      if (req.has_header("Host") && !host_allowed(req.get_header_value("Host"), allowed_hosts)) {
        close_after_response(res);
        fail(res, 421,
             "host \"" + host_of(req.get_header_value("Host")) +
                 "\" is not served here (allowed_hosts in server.toml)");
        return httplib::Server::HandlerResponse::Handled;
      }
      if (auto refused = refuse_body(req)) {
        close_after_response(res);
        fail(res, refused.status, refused.message);
        return httplib::Server::HandlerResponse::Handled;
      }
      if (outside_web_root(req)) {
        fail(res, 404, "not found");
        return httplib::Server::HandlerResponse::Handled;
      }
      if (!login_needed || public_path(req.path) || session_user(req))
        return httplib::Server::HandlerResponse::Unhandled;
      fail(res, 401, "login required");
      return httplib::Server::HandlerResponse::Handled;
    });
    server.set_exception_handler(
        [this](const httplib::Request& req, httplib::Response& res, const std::exception_ptr& ep) {
          std::string what = "unknown exception";
          try {
            if (ep) std::rethrow_exception(ep);
          } catch (const std::exception& e) {
            what = e.what();
          } catch (...) {
          }
          log->error("http {} {}: {}", req.method, req.path, what);
          fail(res, 500, "internal error: " + what);
        });
    server.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
      if (res.body.empty() && req.path.rfind("/api/", 0) == 0)
        fail(res, res.status,
             res.status == 404 ? "no such endpoint: " + req.method + " " + req.path : "HTTP error");
    });

    server.Get("/api/v1/health", [this](const httplib::Request&, httplib::Response& res) {
      const auto st = store->stats();
      std::size_t connected = 0, known = 0;
      std::set<std::string> ids;
      for (const auto& e : ingest->edges()) {
        connected += e.connected ? 1 : 0;
        ids.insert(e.edge_id);
      }
      for (auto& id : live->edge_ids()) ids.insert(std::move(id));
      known = ids.size();
      reply(
          res, 200,
          {{"ok", st.last_error.empty()},
           {"version", config.version},
           {"edges", known},
           {"connected", connected},
           {"login_required", login_needed},
           {"store",
            {{"file_bytes", st.file_bytes}, {"samples", st.samples_stored}, {"last_error", st.last_error}}}});
    });

    server.Get("/api/v1/session", [this](const httplib::Request& req, httplib::Response& res) {
      auto user = session_user(req);
      reply(res, 200, {{"login_required", login_needed}, {"user", user ? json(*user) : json(nullptr)}});
    });

    server.Post("/api/v1/login", [this](const httplib::Request& req, httplib::Response& res,
                                        const httplib::ContentReader& reader) {
      // Read through a bounded receiver: a chunked body past the limit stops the read.
      std::string text;
      bool too_long = false;
      const bool read = reader([&](const char* data, std::size_t n) {
        if (text.size() + n > kMaxBody) {
          too_long = true;
          return false;
        }
        text.append(data, n);
        return true;
      });
      if (too_long || !read) {
        close_after_response(res);
        return too_long ? fail(res, 413, "a body of at most " + std::to_string(kMaxBody) + " bytes")
                        : fail(res, 400, "the body could not be read");
      }
      const json body = json::parse(text, nullptr, false);
      if (!body.is_object() || !body.contains("user") || !body["user"].is_string() ||
          !body.contains("password") || !body["password"].is_string())
        return fail(res, 400, "expected {\"user\":\"...\",\"password\":\"...\"}");
      const auto result =
          auth->login(req.remote_addr, body["user"].get<std::string>(), body["password"].get<std::string>());
      switch (result.outcome) {
        case Authenticator::Outcome::rate_limited:
          res.set_header("Retry-After", std::to_string(result.retry_after.count()));
          log->warn("http login of \"{}\" from {} refused: too many failures",
                    body["user"].get<std::string>(), req.remote_addr);
          return fail(
              res, 429,
              "too many failed logins; try again in " + std::to_string(result.retry_after.count()) + " s");
        case Authenticator::Outcome::wrong:
          log->warn("http login of \"{}\" from {} failed", body["user"].get<std::string>(), req.remote_addr);
          return fail(res, 401, "wrong user or password");
        case Authenticator::Outcome::ok:
          break;
      }
      res.set_header("Set-Cookie", session_cookie(result.token, config.auth.session_lifetime.count(),
                                                  config.secure_cookie));
      log->info("http login of \"{}\" from {}", body["user"].get<std::string>(), req.remote_addr);
      reply(res, 200, {{"ok", true}, {"user", body["user"]}});
    });

    // A login without a body (cpp-httplib routes it past the content reader).
    server.Post("/api/v1/login", [](const httplib::Request&, httplib::Response& res) {
      fail(res, 400, "expected {\"user\":\"...\",\"password\":\"...\"}");
    });

    server.Post("/api/v1/logout", [this](const httplib::Request& req, httplib::Response& res) {
      const std::string token = cookie_value(req, kCookie);
      if (!token.empty()) auth->logout(token);
      res.set_header("Set-Cookie", session_cookie("", 0, config.secure_cookie));
      reply(res, 200, {{"ok", true}});
    });

    server.Get("/api/v1/edges",
               [this](const httplib::Request&, httplib::Response& res) { reply(res, 200, edges_json()); });

    server.Get(kEdgePath, [this](const httplib::Request& req, httplib::Response& res) {
      const std::string id = req.matches[1];
      auto le = find_edge(id, res);
      if (!le) return;
      std::optional<EdgeStatus> status;
      for (auto& s : ingest->edges())
        if (s.edge_id == id) status = std::move(s);
      json j = summary(id, status ? &*status : nullptr, &*le);
      json channels = json::array();
      for (const auto& c : le->channels)
        channels.push_back({{"id", c.id},
                            {"name", c.name},
                            {"unit", c.unit},
                            {"module", c.module},
                            {"rig_column", c.rig_column}});
      j["channels"] = std::move(channels);
      j["limits"] = le->limits;
      reply(res, 200, j);
    });

    server.Get(kEdgePath + "/latest", [this](const httplib::Request& req, httplib::Response& res) {
      if (auto le = find_edge(req.matches[1], res)) reply(res, 200, latest_json(*le));
    });
    server.Get(kEdgePath + "/modules", [this](const httplib::Request& req, httplib::Response& res) {
      if (auto le = find_edge(req.matches[1], res))
        reply(res, 200, modules_json(*le, config.clock->wall_now()));
    });
    server.Get(kEdgePath + "/inverter", [this](const httplib::Request& req, httplib::Response& res) {
      if (auto le = find_edge(req.matches[1], res)) reply(res, 200, inverter_json(*le));
    });
    server.Get(kEdgePath + "/board", [this](const httplib::Request& req, httplib::Response& res) {
      if (auto le = find_edge(req.matches[1], res))
        reply(res, 200, group_json(*le, "board.", {"temp1_c", "temp2_c", "pressure"}));
    });

    server.Get(kEdgePath + "/series", [this](const httplib::Request& req, httplib::Response& res) {
      const std::string id = req.matches[1];
      if (!req.has_param("channel")) return fail(res, 400, "parameter channel is required");
      TimeNs from = 0, to = 0, points = 0;
      if (!range_params(req, res, config.clock->wall_now(), std::chrono::hours(1), from, to) ||
          !int_param(req, res, "points", 1000, points))
        return;
      if (points < 1 || points > 10000) return fail(res, 400, "points must be between 1 and 10000");
      auto series =
          store->series(id, req.get_param_value("channel"), from, to, static_cast<std::size_t>(points));
      if (!series) return fail(res, status_of(series.error()), series.error().message);
      json j{{"channel", series->channel},     {"unit", series->unit}, {"downsampled", series->downsampled},
             {"bucket_ns", series->bucket_ns}, {"from", from},         {"to", to}};
      if (series->downsampled) {
        json buckets = json::array();
        for (const auto& b : series->buckets)
          buckets.push_back({b.start_ns, number(b.min), number(b.max), number(b.mean), b.count});
        j["buckets"] = std::move(buckets);
      } else {
        json pts = json::array();
        for (const auto& p : series->points) pts.push_back({p.time_ns, number(p.value)});
        j["points"] = std::move(pts);
      }
      reply(res, 200, j);
    });

    server.Get(kEdgePath + "/events", [this](const httplib::Request& req, httplib::Response& res) {
      const std::string id = req.matches[1];
      TimeNs from = 0, to = 0, limit = 0;
      if (!range_params(req, res, config.clock->wall_now(), std::chrono::hours(24), from, to) ||
          !int_param(req, res, "limit", 1000, limit))
        return;
      if (limit < 1 || limit > 10000) return fail(res, 400, "limit must be between 1 and 10000");
      const std::string kind = req.has_param("kind") ? req.get_param_value("kind") : "";
      // With a kind, read more and filter (the store filters by time only).
      const std::size_t read = kind.empty() ? static_cast<std::size_t>(limit) + 1 : 100'000;
      auto events = store->events(id, from, to, read);
      if (!events) return fail(res, status_of(events.error()), events.error().message);
      // The stored JSON was checked at ingest (event_json.h): spliced as it is, never parsed again.
      std::string list = "[";
      std::size_t n = 0;
      bool truncated = false;
      for (const auto& e : *events) {
        if (!kind.empty() && e.kind != kind) continue;
        if (n >= static_cast<std::size_t>(limit)) {
          truncated = true;
          break;
        }
        list += n++ ? ",{\"t\":" : "{\"t\":";
        list +=
            std::to_string(e.time_ns) + ",\"kind\":" + dump(e.kind) + ",\"event\":" + stored_event(e) + "}";
      }
      list += "]";
      if (!kind.empty() && events->size() >= read) truncated = true;
      res.status = 200;
      res.set_header("Cache-Control", "no-store");
      res.set_content("{\"events\":" + list + ",\"truncated\":" + (truncated ? "true" : "false") +
                          ",\"from\":" + std::to_string(from) + ",\"to\":" + std::to_string(to) + "}",
                      "application/json");
    });

    server.Get(kEdgePath + "/export",
               [this](const httplib::Request& req, httplib::Response& res) { do_export(req, res); });

    server.Get("/api/v1/stream",
               [this](const httplib::Request& req, httplib::Response& res) { stream(req, res); });

    server.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      MetricsInput in;
      in.ingest = ingest->stats();
      std::set<std::string> seen;
      for (auto& e : ingest->edges()) {
        seen.insert(e.edge_id);
        in.edges.push_back(std::move(e));
      }
      for (const auto& id : live->edge_ids())
        if (!seen.count(id)) {
          EdgeStatus status;
          status.edge_id = id;
          in.edges.push_back(std::move(status));
        }
      for (const auto& e : in.edges) in.states[e.edge_id] = live->state(e.edge_id).state;
      // The edges' CAN controller counters (bus-off, error passive, restarts, kernel queue overflows).
      for (const auto& e : in.edges) {
        const auto edge = live->edge(e.edge_id);
        if (!edge) continue;
        for (const auto& channel : edge->channels) {
          const bool counter = channel.name.rfind("can.", 0) == 0 && channel.name.size() > 6 &&
                               channel.name.compare(channel.name.size() - 6, 6, "_total") == 0;
          if (!counter) continue;
          const auto latest = edge->latest.find(channel.id);
          if (latest != edge->latest.end()) in.edge_counters[e.edge_id][channel.name] = latest->second.v;
        }
      }
      in.store = store->stats();
      if (alarms) in.alarms = alarms->stats();
      in.http = {requests.load(), static_cast<std::uint64_t>(std::max(0, streams.load())), auth->logins(),
                 auth->failed_logins(), auth->rate_limited()};
      in.now = config.clock->wall_now();
      res.set_content(render_metrics(in), "text/plain; version=0.0.4; charset=utf-8");
    });

    server.Get("/api/.*", [](const httplib::Request& req, httplib::Response& res) {
      fail(res, 404, "no such endpoint: GET " + req.path);
    });

    // The dashboard: its files from the mount point; any other path is a route of the single-page app.
    if (!config.web_root.empty()) {
      server.Get(".*", [this](const httplib::Request&, httplib::Response& res) {
        std::ifstream in(fs::path(config.web_root) / "index.html", std::ios::binary);
        if (!in) return fail(res, 404, "the dashboard has no index.html in " + config.web_root);
        std::string body((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        res.set_header("Cache-Control", "no-cache");
        res.set_content(body, "text/html; charset=utf-8");  // cpp-httplib 0.11 copies (no rvalue overload)
      });
    }
  }

  void do_export(const httplib::Request& req, httplib::Response& res) {
    const std::string id = req.matches[1];
    auto q = export_query(req.params, config.clock->wall_now());
    if (!q) return fail(res, 400, q.error().message);
    const TimeNs from = q->range.from, to = q->range.to;
    const std::string& format = q->format;
    store::ExportOptions o;
    o.edge_id = id;
    o.from_ns = from;
    o.to_ns = to;
    o.utc = q->utc;
    o.interval_ns = q->interval_ns;
    // The budget: rows, time, and the client still there (checked every 1024 rows or windows).
    o.max_rows = kMaxExportRows;
    const int fd = current_connection ? current_connection->fd : -1;
    const auto deadline = SteadyClock::now() + config.export_timeout;
    auto why = std::make_shared<std::string>();
    o.cancelled = [this, fd, deadline, why, calls = std::uint64_t{0}]() mutable {
      // The clock on every call (cheap); whether the client is still there (a poll) every 256th.
      if (stopping)
        *why = "the server is stopping";
      else if (SteadyClock::now() > deadline)
        *why = "the export took longer than " +
               format_shortest(static_cast<double>(config.export_timeout.count()) / 1000) +
               " s: choose a shorter range or a longer interval_s";
      else if (++calls % 256 == 1 && fd >= 0 && peer_gone(fd))
        *why = "the client went away";
      return !why->empty();
    };
    auto export_failed = [&](const Error& e) {
      if (!why->empty()) {
        log->warn("http export of {} stopped: {}", id, *why);
        return fail(res, 503, "export stopped: " + *why);
      }
      return fail(res, status_of(e), e.message);
    };
    const std::string board = req.has_param("board") ? req.get_param_value("board") : "raw";
    if (board != "raw" && board != "converted") return fail(res, 400, "board must be raw or converted");
    o.board_converted = board == "converted";
    o.extra_columns = req.has_param("extra") && req.get_param_value("extra") != "0";
    // Written to a private temporary folder, sent from there, removed after the download.
    std::string base =
        (fs::path(config.temp_dir.empty() ? fs::temp_directory_path().string() : config.temp_dir) /
         "cellguard-export-XXXXXX")
            .string();
    if (::mkdtemp(base.data()) == nullptr) return fail(res, 500, "export: cannot create a temporary folder");
    const fs::path dir = base;
    const fs::path file = dir / (format == "csv" ? "export.csv" : "export.jsonl");
    auto cleanup = [dir] {
      std::error_code ec;
      fs::remove_all(dir, ec);
    };
    std::uint64_t rows = 0;
    if (format == "csv") {
      auto r = store::export_csv(*store, o, (dir / "days").string());
      if (!r) {
        cleanup();
        return export_failed(r.error());
      }
      rows = r->rows;
      if (rows == 0) {
        cleanup();
        return fail(res, 404, "no data of \"" + id + "\" in the range");
      }
      if (auto ok = concatenate_csv(r->files, file); !ok) {
        cleanup();
        return fail(res, 500, ok.error().message);
      }
    } else {
      std::FILE* out = std::fopen(file.c_str(), "wb");
      if (!out) {
        cleanup();
        return fail(res, 500, "export: cannot write " + file.string());
      }
      auto r = store::export_jsonl(*store, o, out);
      const bool closed = std::fclose(out) == 0;
      if (!r || !closed) {
        cleanup();
        return r ? fail(res, 500, "export: cannot write " + file.string()) : export_failed(r.error());
      }
      rows = r->rows;
    }
    std::error_code ec;
    const auto size = fs::file_size(file, ec);
    if (ec) {
      cleanup();
      return fail(res, 500, "export: " + ec.message());
    }
    auto stream = std::make_shared<std::ifstream>(file, std::ios::binary);
    const std::string name = id + "-" + compact_time(from) + "-" + compact_time(to) + "." + format;
    res.set_header("Content-Disposition", "attachment; filename=\"" + name + "\"");
    res.set_header("X-Cellguard-Rows", std::to_string(rows));
    res.set_content_provider(
        static_cast<std::size_t>(size), format == "csv" ? "text/csv; charset=utf-8" : "application/x-ndjson",
        [this, stream](std::size_t offset, std::size_t length, httplib::DataSink& sink) {
          if (stopping) return false;
          std::vector<char> buffer(std::min<std::size_t>(length, 65536));
          stream->clear();
          stream->seekg(static_cast<std::streamoff>(offset));
          stream->read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
          const auto n = stream->gcount();
          if (n <= 0) return false;
          return sink.write(buffer.data(), static_cast<std::size_t>(n));
        },
        [cleanup](bool) { cleanup(); });
  }

  void stream(const httplib::Request& req, httplib::Response& res) {
    const std::string edge = req.has_param("edge") ? req.get_param_value("edge") : "";
    if (!edge.empty() && !live->edge(edge)) {
      bool known = false;
      for (const auto& s : ingest->edges()) known = known || s.edge_id == edge;
      if (!known) return fail(res, 404, "unknown edge \"" + edge + "\"");
    }
    if (streams.fetch_add(1) >= max_streams) {
      --streams;
      close_after_response(res);  // the worker is free again at once
      res.set_header("Retry-After", "5");
      return fail(res, 503, "too many live streams (" + std::to_string(max_streams) + ")");
    }
    struct State {
      std::uint64_t serial = 0, version = 0, generation = 0;
      std::chrono::steady_clock::time_point next_edges{}, next_latest{};
      bool started = false;
    };
    auto state = std::make_shared<State>();
    state->serial = live->last_serial();
    res.set_header("Cache-Control", "no-store");
    res.set_header("X-Accel-Buffering", "no");
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, edge, state](std::size_t, httplib::DataSink& sink) {
          using Clock = std::chrono::steady_clock;
          auto send = [&](const char* event, const json& data) {
            const std::string text = std::string("event: ") + event + "\ndata: " + dump(data) + "\n\n";
            return sink.write(text.data(), text.size());
          };
          if (!state->started) {
            state->started = true;
            const std::string hello = "retry: 1000\n\n";
            if (!sink.write(hello.data(), hello.size())) return false;
          }
          if (stopping || !sink.is_writable()) return false;  // stopping, or the client went away
          const auto now = Clock::now();
          if (now >= state->next_edges) {
            state->next_edges = now + config.edges_interval;
            if (!send("edges", edges_json())) return false;
          }
          if (!edge.empty() && now >= state->next_latest) {
            const std::uint64_t v = live->version(edge);
            if (v != state->version) {
              state->version = v;
              state->next_latest = now + config.latest_interval;
              if (auto le = live->edge(edge); le && !send("latest", latest_json(*le))) return false;
            }
          }
          for (const auto& e : live->events_after(state->serial)) {
            state->serial = e.serial;
            if (!edge.empty() && e.edge_id != edge) continue;
            json item = event_json(e.event);
            item["edge"] = e.edge_id;
            if (!send("event", item)) return false;
          }
          // Sleep until something changes or the next tick (short, so stop() is quick).
          state->generation = live->wait(state->generation, std::chrono::milliseconds(100));
          return !stopping;
        },
        [this](bool) { --streams; });
  }
};

HttpApi::HttpApi(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpApi::~HttpApi() { stop(); }

Result<std::unique_ptr<HttpApi>> HttpApi::start(HttpApiConfig config, store::Store& store,
                                                const IngestServer& ingest, LiveCache& live,
                                                const WebhookAlarms* alarms) {
  auto impl = std::make_unique<Impl>();
  impl->log = config.log ? config.log : spdlog::default_logger();
  impl->login_needed = server::login_required(config.host, config.require_login);
  if (impl->login_needed && config.auth.users.empty())
    return Error(ErrorCode::invalid_argument,
                 "http: a login is required on " + config.host +
                     " (not a loopback address, or require_login) but the configuration has no [[users]] "
                     "(cellguard server hash-password makes one)");
  if (!config.web_root.empty() && !fs::is_directory(config.web_root))
    return Error(ErrorCode::not_found, "http: web root " + config.web_root + " is not a folder");
  impl->config = std::move(config);
  impl->store = &store;
  impl->ingest = &ingest;
  impl->live = &live;
  impl->alarms = alarms;
  impl->auth = std::make_unique<Authenticator>(impl->config.auth);
  const int threads = std::max(4, impl->config.threads);
  // Streams, slow senders and one address's connections each get a share of the workers, so the
  // rest always serve the API.
  impl->max_streams = impl->config.max_streams > 0 ? impl->config.max_streams : std::max(1, threads / 4);
  impl->server.guard.max_waiting = static_cast<std::size_t>(std::max(1, threads / 4));
  impl->server.guard.max_per_address = static_cast<std::size_t>(std::max(2, threads / 2));
  impl->server.request_timeout = impl->config.request_timeout;
  impl->server.new_task_queue = [threads] {
    return new httplib::ThreadPool(static_cast<std::size_t>(threads));
  };
  impl->server.set_payload_max_length(kMaxBody);
  impl->server.set_default_headers({{"Content-Security-Policy", kContentSecurityPolicy},
                                    {"X-Content-Type-Options", "nosniff"},
                                    {"X-Frame-Options", "DENY"},
                                    {"Referrer-Policy", "no-referrer"}});
  impl->allowed_hosts = impl->config.allowed_hosts;
  if (auto h = host_of(impl->config.host); !h.empty()) impl->allowed_hosts.push_back(h);
  if (!impl->config.web_root.empty()) {
    std::error_code ec;
    impl->web_root_canonical = fs::canonical(impl->config.web_root, ec);
    if (ec)
      return Error(ErrorCode::not_found, "http: web root " + impl->config.web_root + ": " + ec.message());
  }
  if (!impl->config.web_root.empty() && !impl->server.set_mount_point("/", impl->config.web_root))
    return Error(ErrorCode::io_error, "http: cannot serve " + impl->config.web_root);
  impl->routes();
  const std::string where = impl->config.host + ":" + std::to_string(impl->config.port);
  // cpp-httplib sets SO_REUSEPORT by default: a second server on the same port would start and the
  // kernel would split the connections between the two. Only SO_REUSEADDR (a restart during TIME_WAIT).
  impl->server.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  if (impl->config.port == 0) {
    impl->port = impl->server.bind_to_any_port(impl->config.host);
    if (impl->port <= 0) return Error(ErrorCode::io_error, "http: cannot listen on " + where);
  } else {
    if (!impl->server.bind_to_port(impl->config.host, impl->config.port))
      return Error(ErrorCode::io_error,
                   "http: cannot listen on " + where + " (in use, or not an address of this machine)");
    impl->port = impl->config.port;
  }
  impl->server.widen_backlog(SOMAXCONN);
  Impl* raw = impl.get();
  raw->thread = std::thread([raw] {
    raw->server.listen_after_bind();
    raw->listen_returned = true;
  });
  return std::unique_ptr<HttpApi>(new HttpApi(std::move(impl)));
}

std::uint16_t HttpApi::port() const { return static_cast<std::uint16_t>(impl_->port); }
bool HttpApi::login_required() const { return impl_->login_needed; }

void HttpApi::stop() {
  if (!impl_ || impl_->stopping.exchange(true)) return;
  impl_->server.stopping = true;
  impl_->live->wake_all();
  // cpp-httplib's stop() does nothing until listen_after_bind() has marked the server running; a
  // stop right after start() (a test, a start-up that fails later) would otherwise leave the
  // listening thread blocked in accept() for ever and the join below with it.
  while (!impl_->listen_returned) {
    if (impl_->server.is_running()) {
      impl_->server.stop();
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  // Blocked reads and writes (slow clients, streams, downloads) return at once; exports see
  // `stopping` at their next window.
  impl_->server.guard.shut_down_all();
  if (impl_->thread.joinable()) impl_->thread.join();
}

}  // namespace cellguard::server
