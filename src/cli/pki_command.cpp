// `cellguard pki init|issue|revoke|list`: the installation's CA folder (pki/pki.h).
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "pki/pki.h"

namespace cellguard::cli {
namespace {

struct PkiOptions {
  std::string dir;
  std::string name;
  std::string server;
  std::string edge;
  std::vector<std::string> sans;
  int days = 0;
  bool force = false;
  bool json = false;
};

int fail(const char* command, const Error& error) {
  std::fprintf(stderr, "cellguard pki %s: %s\n", command, error.message.c_str());
  return error.code == ErrorCode::invalid_argument ? 2 : 1;
}

std::string status_of(const pki::CertRecord& r, pki::Clock::time_point now) {
  if (r.revoked_at) return "revoked " + pki::format_time(*r.revoked_at);
  if (now < r.not_before) return "not yet valid";
  if (now >= r.not_after) return "expired";
  return "valid";
}

int run_init(const PkiOptions& o) {
  pki::CaOptions options;
  options.name = o.name.empty() ? options.name : o.name;
  options.validity = pki::Validity::days_from_now(o.days);
  options.overwrite = o.force;
  if (auto r = pki::init_ca(o.dir, options); !r) return fail("init", r.error());
  const pki::CaFiles files = pki::ca_files(o.dir);
  std::printf("CA '%s' created in %s, valid until %s\n", options.name.c_str(), o.dir.c_str(),
              pki::format_time(options.validity.not_after).c_str());
  std::printf("  trust anchor for servers and edges: %s\n  private key (keep it here): %s\n",
              files.ca_cert.c_str(), files.ca_key.c_str());
  return 0;
}

int run_issue(const PkiOptions& o) {
  pki::IssueOptions options;
  options.kind = o.server.empty() ? pki::CertKind::edge : pki::CertKind::server;
  options.name = o.server.empty() ? o.edge : o.server;
  options.subject_alt_names = o.sans;
  options.validity = pki::Validity::days_from_now(o.days);
  options.overwrite = o.force;
  auto issued = pki::issue(o.dir, options);
  if (!issued) return fail("issue", issued.error());
  const pki::CaFiles files = pki::ca_files(o.dir);
  std::printf("%s certificate '%s' serial %s, valid until %s\n",
              std::string(pki::to_string(issued->kind)).c_str(), issued->name.c_str(), issued->serial.c_str(),
              pki::format_time(issued->not_after).c_str());
  for (const std::string& san : issued->subject_alt_names) std::printf("  for %s\n", san.c_str());
  std::printf("  certificate %s\n  key         %s (mode 0600)\n  CA          %s\n",
              files.cert_of(issued->name).c_str(), files.key_of(issued->name).c_str(), files.ca_cert.c_str());
  if (issued->kind == pki::CertKind::server) std::printf("  CRL         %s\n", files.crl.c_str());
  return 0;
}

int run_revoke(const PkiOptions& o) {
  auto revoked = pki::revoke(o.dir, o.name);
  if (!revoked) return fail("revoke", revoked.error());
  for (const pki::CertRecord& r : *revoked)
    std::printf("revoked '%s' serial %s\n", r.name.c_str(), r.serial.c_str());
  std::printf("  %s updated: a running server rejects it after reloading the CRL\n",
              pki::ca_files(o.dir).crl.c_str());
  return 0;
}

int run_list(const PkiOptions& o) {
  auto records = pki::list(o.dir);
  if (!records) return fail("list", records.error());
  const auto now = pki::Clock::now();
  if (o.json) {
    for (const pki::CertRecord& r : *records) {
      nlohmann::json j = {{"serial", r.serial},
                          {"name", r.name},
                          {"kind", std::string(pki::to_string(r.kind))},
                          {"not_before", pki::format_time(r.not_before)},
                          {"not_after", pki::format_time(r.not_after)},
                          {"revoked_at", nullptr},
                          {"status", status_of(r, now)},
                          {"subject_alt_names", r.subject_alt_names}};
      if (r.revoked_at) j["revoked_at"] = pki::format_time(*r.revoked_at);
      std::printf("%s\n", j.dump().c_str());
    }
    return 0;
  }
  std::printf("%-24s %-6s %-32s %-20s %s\n", "name", "kind", "serial", "not after", "status");
  for (const pki::CertRecord& r : *records) {
    std::printf("%-24s %-6s %-32s %-20s %s\n", r.name.c_str(), std::string(pki::to_string(r.kind)).c_str(),
                r.serial.c_str(), pki::format_time(r.not_after).c_str(), status_of(r, now).c_str());
  }
  return 0;
}

}  // namespace

void register_pki(CLI::App& app, Action& action) {
  CLI::App* pki_cmd =
      app.add_subcommand("pki", "The CA of an installation: certificates for the server and every edge");
  pki_cmd->require_subcommand(1);

  auto init_o = std::make_shared<PkiOptions>();
  init_o->days = 3650;
  CLI::App* init =
      pki_cmd->add_subcommand("init", "Create a CA folder: ca.key (0600), ca.crt, crl.pem, index.json");
  init->add_option("--dir", init_o->dir, "CA folder (created, mode 0700)")->required();
  init->add_option("--name", init_o->name, "the CA's name (default: cellguard CA)");
  init->add_option("--days", init_o->days, "validity in days")
      ->capture_default_str()
      ->check(CLI::Range(1, 36500));
  init->add_flag("--force", init_o->force, "replace an existing CA (forgets every certificate it issued)");
  init->callback([init_o, &action] { action = [init_o] { return run_init(*init_o); }; });

  auto issue_o = std::make_shared<PkiOptions>();
  issue_o->days = 825;
  CLI::App* issue = pki_cmd->add_subcommand(
      "issue",
      "Issue a certificate and key (DIR/issued/NAME.crt|.key): an edge's id is its certificate's name");
  issue->add_option("--dir", issue_o->dir, "CA folder")->required();
  CLI::Option* server =
      issue->add_option("--server", issue_o->server, "a server certificate (serverAuth) named NAME");
  CLI::Option* edge =
      issue->add_option("--edge", issue_o->edge, "an edge certificate (clientAuth) named NAME");
  server->excludes(edge);
  issue->add_option("--san", issue_o->sans, "an IP address or DNS name the server is reached at (repeatable)")
      ->needs(server);
  issue->add_option("--days", issue_o->days, "validity in days")
      ->capture_default_str()
      ->check(CLI::Range(1, 36500));
  issue->add_flag("--force", issue_o->force,
                  "issue although NAME has a valid certificate (the old one stays valid)");
  issue->callback([issue_o, &action] {
    if (issue_o->server.empty() == issue_o->edge.empty())
      throw CLI::ValidationError("give --server NAME or --edge NAME");
    action = [issue_o] { return run_issue(*issue_o); };
  });

  auto revoke_o = std::make_shared<PkiOptions>();
  CLI::App* revoke =
      pki_cmd->add_subcommand("revoke", "Revoke every certificate of NAME and regenerate crl.pem");
  revoke->add_option("--dir", revoke_o->dir, "CA folder")->required();
  revoke->add_option("name", revoke_o->name, "certificate name (edge id or server name)")->required();
  revoke->callback([revoke_o, &action] { action = [revoke_o] { return run_revoke(*revoke_o); }; });

  auto list_o = std::make_shared<PkiOptions>();
  CLI::App* list = pki_cmd->add_subcommand("list", "List every certificate issued, with its status");
  list->add_option("--dir", list_o->dir, "CA folder")->required();
  list->add_flag("--json", list_o->json, "one JSON object per line");
  list->callback([list_o, &action] { action = [list_o] { return run_list(*list_o); }; });
}

}  // namespace cellguard::cli
