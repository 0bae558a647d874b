// The CA folder: init, issue, revoke, list; files checked with the openssl command line tool as an
// independent reader.
#include "pki/pki.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/text.h"
#include "pki/pki_test_support.h"

namespace cellguard::pki {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::quote;
using testing::run;

mode_t mode_of(const fs::path& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

IssueOptions server_options(std::string name = "server") {
  IssueOptions o;
  o.kind = CertKind::server;
  o.name = std::move(name);
  o.subject_alt_names = {"127.0.0.1", "localhost", "::1"};
  o.validity = Validity::days_from_now(10);  // within the test CA's 30 days
  return o;
}

IssueOptions edge_options(std::string name) {
  IssueOptions o;
  o.kind = CertKind::edge;
  o.name = std::move(name);
  o.validity = Validity::days_from_now(10);
  return o;
}

class PkiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty());
    auto r = init_ca(dir(), CaOptions{"test CA", Validity::days_from_now(30), false});
    ASSERT_TRUE(r.ok()) << r.error().message;
  }
  fs::path dir() const { return tmp_.path() / "ca"; }
  CaFiles files() const { return ca_files(dir()); }

  testing::TempDir tmp_;
};

TEST_F(PkiTest, InitCreatesTheCaFilesWithPrivateModes) {
  EXPECT_EQ(mode_of(dir()), 0700u);
  EXPECT_EQ(mode_of(files().issued), 0700u);
  EXPECT_EQ(mode_of(files().ca_key), 0600u);
  EXPECT_EQ(mode_of(files().ca_cert), 0644u);
  EXPECT_TRUE(fs::exists(files().crl));
  auto listed = list(dir());
  ASSERT_TRUE(listed.ok()) << listed.error().message;
  EXPECT_TRUE(listed->empty());
}

TEST_F(PkiTest, InitRefusesAnExistingCaUnlessTold) {
  const std::string before = *read_file(files().ca_cert.string());
  auto again = init_ca(dir(), CaOptions{"other", Validity::days_from_now(30), false});
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.error().message.find("exists already"), std::string::npos) << again.error().message;
  EXPECT_EQ(*read_file(files().ca_cert.string()), before);
  ASSERT_TRUE(issue(dir(), edge_options("edge-1")).ok());
  auto forced = init_ca(dir(), CaOptions{"other", Validity::days_from_now(30), true});
  ASSERT_TRUE(forced.ok()) << forced.error().message;
  EXPECT_NE(*read_file(files().ca_cert.string()), before);
  EXPECT_TRUE(list(dir())->empty());  // the old CA's certificates are forgotten
  EXPECT_FALSE(fs::exists(files().cert_of("edge-1")));
}

TEST_F(PkiTest, IssueListRoundTripRecordsEveryCertificate) {
  auto server = issue(dir(), server_options());
  ASSERT_TRUE(server.ok()) << server.error().message;
  auto edge = issue(dir(), edge_options("edge-1"));
  ASSERT_TRUE(edge.ok()) << edge.error().message;

  auto listed = list(dir());
  ASSERT_TRUE(listed.ok()) << listed.error().message;
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].name, "server");
  EXPECT_EQ((*listed)[0].kind, CertKind::server);
  EXPECT_EQ((*listed)[0].serial, server->serial);
  EXPECT_EQ((*listed)[0].subject_alt_names,
            (std::vector<std::string>{"DNS:server", "IP:127.0.0.1", "DNS:localhost", "IP:::1"}));
  EXPECT_EQ((*listed)[1].name, "edge-1");
  EXPECT_EQ((*listed)[1].kind, CertKind::edge);
  EXPECT_EQ((*listed)[1].not_after, edge->not_after);
  EXPECT_FALSE((*listed)[1].revoked_at.has_value());
  EXPECT_NE(server->serial, edge->serial);
  EXPECT_GE(edge->serial.size(), 30u);  // 128 random bits: 32 hex digits unless leading zeros
}

TEST_F(PkiTest, IssuedKeysAreWrittenWithMode0600) {
  ASSERT_TRUE(issue(dir(), edge_options("edge-1")).ok());
  EXPECT_EQ(mode_of(files().key_of("edge-1")), 0600u);
  EXPECT_EQ(mode_of(files().cert_of("edge-1")), 0644u);
}

TEST_F(PkiTest, OpensslVerifiesIssuedCertificatesAgainstTheCaAndCrl) {
  ASSERT_TRUE(issue(dir(), edge_options("edge-1")).ok());
  const auto verified = run("openssl verify -CAfile " + quote(files().ca_cert) + " -crl_check -CRLfile " +
                            quote(files().crl) + " -purpose sslclient " + quote(files().cert_of("edge-1")));
  EXPECT_EQ(verified.exit_code, 0) << verified.out;
  EXPECT_NE(verified.out.find(": OK"), std::string::npos) << verified.out;
}

TEST_F(PkiTest, ServerCertificatesCarryServerAuthAndTheirAddresses) {
  ASSERT_TRUE(issue(dir(), server_options()).ok());
  const auto text = run("openssl x509 -noout -text -in " + quote(files().cert_of("server")));
  ASSERT_EQ(text.exit_code, 0) << text.out;
  EXPECT_NE(text.out.find("TLS Web Server Authentication"), std::string::npos) << text.out;
  EXPECT_EQ(text.out.find("TLS Web Client Authentication"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("IP Address:127.0.0.1"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("DNS:localhost"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("ASN1 OID: prime256v1"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("CA:FALSE"), std::string::npos) << text.out;
}

TEST_F(PkiTest, EdgeCertificatesCarryClientAuthOnlyAndTheNameAsCn) {
  ASSERT_TRUE(issue(dir(), edge_options("edge-7")).ok());
  const auto text = run("openssl x509 -noout -text -in " + quote(files().cert_of("edge-7")));
  ASSERT_EQ(text.exit_code, 0) << text.out;
  EXPECT_NE(text.out.find("TLS Web Client Authentication"), std::string::npos) << text.out;
  EXPECT_EQ(text.out.find("TLS Web Server Authentication"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("Subject: CN = edge-7"), std::string::npos) << text.out;
}

TEST_F(PkiTest, IssueRefusesANameWithAValidCertificateUnlessTold) {
  auto first = issue(dir(), edge_options("edge-1"));
  ASSERT_TRUE(first.ok());
  auto second = issue(dir(), edge_options("edge-1"));
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.error().message.find("has a valid certificate already"), std::string::npos);
  IssueOptions forced = edge_options("edge-1");
  forced.overwrite = true;
  auto third = issue(dir(), forced);
  ASSERT_TRUE(third.ok()) << third.error().message;
  EXPECT_NE(third->serial, first->serial);
  EXPECT_EQ(list(dir())->size(), 2u);
}

TEST_F(PkiTest, IssueRejectsNamesThatAreNotSafeFileNames) {
  for (const char* name : {"", "../evil", "a/b", ".hidden", "with space", "x\ny"}) {
    auto r = issue(dir(), edge_options(name));
    EXPECT_FALSE(r.ok()) << "accepted '" << name << "'";
  }
  EXPECT_FALSE(issue(dir(), edge_options(std::string(65, 'a'))).ok());
  EXPECT_TRUE(issue(dir(), edge_options(std::string(64, 'a'))).ok());
}

TEST_F(PkiTest, IssueRejectsSubjectAltNamesThatCouldInjectExtensions) {
  IssueOptions o = server_options();
  o.subject_alt_names = {"127.0.0.1,DNS:evil.example"};
  auto r = issue(dir(), o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("neither an IP address nor a DNS name"), std::string::npos)
      << r.error().message;
}

TEST_F(PkiTest, EdgeCertificatesRefuseSubjectAltNames) {
  IssueOptions o = edge_options("edge-1");
  o.subject_alt_names = {"127.0.0.1"};
  EXPECT_FALSE(issue(dir(), o).ok());
}

TEST_F(PkiTest, AServerNameThatIsNoHostNameNeedsAnExplicitSan) {
  IssueOptions o = server_options("srv_1");
  o.subject_alt_names.clear();
  EXPECT_FALSE(issue(dir(), o).ok());
  o.subject_alt_names = {"10.0.0.5"};
  auto r = issue(dir(), o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->subject_alt_names, std::vector<std::string>{"IP:10.0.0.5"});
}

TEST_F(PkiTest, IssueAcceptsValidityWindowsInThePastAndFuture) {
  const auto now = Clock::now();
  IssueOptions expired = edge_options("old");
  expired.validity = {now - 48h, now - 24h};
  ASSERT_TRUE(issue(dir(), expired).ok());
  IssueOptions future = edge_options("future");
  future.validity = {now + 24h, now + 48h};
  ASSERT_TRUE(issue(dir(), future).ok());
  const auto dates = run("openssl x509 -noout -checkend 0 -in " + quote(files().cert_of("old")));
  EXPECT_NE(dates.exit_code, 0) << "openssl considers the expired certificate valid: " << dates.out;
  IssueOptions backwards = edge_options("backwards");
  backwards.validity = {now, now - 1h};
  EXPECT_FALSE(issue(dir(), backwards).ok());
}

TEST_F(PkiTest, IssueRefusesACertificateThatOutlivesTheCa) {
  IssueOptions o = edge_options("edge-1");
  o.validity = Validity::days_from_now(31);
  auto r = issue(dir(), o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("outlive the CA"), std::string::npos) << r.error().message;
}

TEST_F(PkiTest, RevokeMarksTheIndexAndListsTheSerialInTheCrl) {
  auto edge = issue(dir(), edge_options("edge-1"));
  ASSERT_TRUE(edge.ok());
  auto revoked = revoke(dir(), "edge-1");
  ASSERT_TRUE(revoked.ok()) << revoked.error().message;
  ASSERT_EQ(revoked->size(), 1u);
  EXPECT_EQ((*revoked)[0].serial, edge->serial);
  EXPECT_TRUE(list(dir())->at(0).revoked_at.has_value());

  const auto crl =
      run("openssl crl -noout -text -CAfile " + quote(files().ca_cert) + " -in " + quote(files().crl));
  EXPECT_EQ(crl.exit_code, 0) << crl.out;
  EXPECT_NE(crl.out.find("verify OK"), std::string::npos) << crl.out;
  EXPECT_NE(crl.out.find("Serial Number: " + edge->serial), std::string::npos) << crl.out;
  const auto verified = run("openssl verify -CAfile " + quote(files().ca_cert) + " -crl_check -CRLfile " +
                            quote(files().crl) + " " + quote(files().cert_of("edge-1")));
  EXPECT_NE(verified.exit_code, 0) << verified.out;
  EXPECT_NE(verified.out.find("certificate revoked"), std::string::npos) << verified.out;
}

TEST_F(PkiTest, RevokeOfAnUnknownOrRevokedNameIsNotFound) {
  auto unknown = revoke(dir(), "nobody");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, ErrorCode::not_found);
  ASSERT_TRUE(issue(dir(), edge_options("edge-1")).ok());
  ASSERT_TRUE(revoke(dir(), "edge-1").ok());
  EXPECT_FALSE(revoke(dir(), "edge-1").ok());
}

TEST_F(PkiTest, ARevokedNameCanBeIssuedAgain) {
  auto first = issue(dir(), edge_options("edge-1"));
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(revoke(dir(), "edge-1").ok());
  auto second = issue(dir(), edge_options("edge-1"));
  ASSERT_TRUE(second.ok()) << second.error().message;
  const auto verified = run("openssl verify -CAfile " + quote(files().ca_cert) + " -crl_check -CRLfile " +
                            quote(files().crl) + " " + quote(files().cert_of("edge-1")));
  EXPECT_EQ(verified.exit_code, 0) << verified.out;
  EXPECT_TRUE(fs::exists(files().issued / "by-serial" / (first->serial + ".crt")));
}

TEST_F(PkiTest, ListOfAFolderWithoutCaIsNotFound) {
  auto r = list(tmp_.path() / "nothing");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::not_found);
}

TEST_F(PkiTest, ACorruptIndexIsAParseErrorNotACrash) {
  for (const char* text : {"", "{", "[]", R"({"version":1})", R"({"version":1,"ca_name":"x","crl_number":1,
      "certificates":[{"serial":"01","name":"a","kind":"robot","not_before":"x","not_after":"y","revoked_at":null}]})"}) {
    std::ofstream(files().index) << text;
    auto r = list(dir());
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.error().code, ErrorCode::parse_error) << text;
  }
}

}  // namespace
}  // namespace cellguard::pki
