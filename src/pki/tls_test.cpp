// Mutual TLS over real sockets on 127.0.0.1: our server and client contexts against each other and
// against the openssl s_client / s_server tools as independent peers.
#include "pki/tls.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <asio.hpp>
#include <atomic>
#include <chrono>
#include <optional>
#include <thread>

#include "pki/pki.h"
#include "pki/pki_test_support.h"

namespace cellguard::pki {
namespace {

namespace fs = std::filesystem;
using asio::ip::tcp;
using namespace std::chrono_literals;
using testing::quote;

constexpr auto kTimeout = 20s;  // an upper bound only: every exchange ends as soon as both sides are done

// What happened on both ends of one connection attempt.
struct Outcome {
  bool server_done = false;
  std::error_code server_ec;  // the server's handshake
  std::string server_reason;
  std::optional<PeerIdentity> identity;
  std::string server_protocol;

  std::error_code client_handshake_ec;
  std::string client_reason;
  std::error_code client_read_ec;  // a rejected client (TLS 1.3) learns it here
  std::string client_read;

  bool accepted() const { return server_done && !server_ec && client_read == "ok"; }
};

// One connection from `client` to `server` on one io_context: the server verifies, reads the peer's
// identity and sends "ok"; the client reads two bytes.
Outcome connect_once(TlsServerContext& server, asio::ssl::context& client) {
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  Outcome out;
  std::optional<TlsStream> server_stream;
  acceptor.async_accept([&](std::error_code ec, tcp::socket socket) {
    if (ec) {
      out.server_done = true;
      out.server_ec = ec;
      return;
    }
    server_stream.emplace(server.make_stream(std::move(socket)));
    server_stream->async_handshake(asio::ssl::stream_base::server, [&](std::error_code hec) {
      out.server_done = true;
      out.server_ec = hec;
      if (hec) {
        out.server_reason = handshake_failure_reason(server_stream->native_handle(), hec);
        std::error_code ignored;
        server_stream->lowest_layer().close(ignored);
        return;
      }
      out.server_protocol = protocol_version(server_stream->native_handle());
      if (auto id = peer_identity(server_stream->native_handle())) out.identity = *id;
      asio::async_write(*server_stream, asio::buffer("ok", 2), [](std::error_code, std::size_t) {});
    });
  });
  TlsStream client_stream(io, client);
  char buffer[2];
  client_stream.lowest_layer().async_connect(acceptor.local_endpoint(), [&](std::error_code ec) {
    if (ec) {
      out.client_handshake_ec = ec;
      return;
    }
    client_stream.async_handshake(asio::ssl::stream_base::client, [&](std::error_code hec) {
      out.client_handshake_ec = hec;
      if (hec) {
        out.client_reason = handshake_failure_reason(client_stream.native_handle(), hec);
        std::error_code ignored;
        client_stream.lowest_layer().close(ignored);
        return;
      }
      asio::async_read(client_stream, asio::buffer(buffer), [&](std::error_code rec, std::size_t n) {
        out.client_read_ec = rec;
        out.client_read.assign(buffer, n);
        out.client_reason = handshake_failure_reason(client_stream.native_handle(), rec);
      });
    });
  });
  io.run_for(kTimeout);
  return out;
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty());
    ASSERT_TRUE(init_ca(dir(), CaOptions{"test CA", Validity::days_from_now(30), false}).ok());
    ASSERT_TRUE(issue_server("server", {"127.0.0.1", "localhost"}).ok());
    ASSERT_TRUE(issue_edge("edge-1").ok());
    auto s = TlsServerContext::create(TlsFiles::from_ca_dir(dir(), "server"));
    ASSERT_TRUE(s.ok()) << s.error().message;
    server_ = std::move(*s);
  }

  fs::path dir() const { return tmp_.path() / "ca"; }

  Result<CertRecord> issue_server(const std::string& name, std::vector<std::string> sans) {
    IssueOptions o;
    o.kind = CertKind::server;
    o.name = name;
    o.validity = Validity::days_from_now(10);
    o.subject_alt_names = std::move(sans);
    return issue(dir(), o);
  }
  Result<CertRecord> issue_edge(const std::string& name, std::optional<Validity> validity = std::nullopt) {
    IssueOptions o;
    o.kind = CertKind::edge;
    o.name = name;
    o.validity = validity.value_or(Validity::days_from_now(10));
    return issue(dir(), o);
  }

  // The client context of edge `name` from this CA, dialling 127.0.0.1.
  asio::ssl::context edge_client(const std::string& name, const std::string& host = "127.0.0.1") {
    auto c = client_context(TlsFiles::from_ca_dir(dir(), name), host);
    EXPECT_TRUE(c.ok()) << c.error().message;
    return c.ok() ? std::move(*c) : asio::ssl::context(asio::ssl::context::tls_client);
  }

  testing::TempDir tmp_;
  std::unique_ptr<TlsServerContext> server_;
};

TEST_F(TlsTest, AValidEdgeCertificateCompletesTheHandshakeAndTheServerReadsItsName) {
  auto client = edge_client("edge-1");
  const Outcome out = connect_once(*server_, client);
  ASSERT_TRUE(out.accepted()) << out.server_reason << " / " << out.client_reason;
  ASSERT_TRUE(out.identity.has_value());
  EXPECT_EQ(out.identity->name, "edge-1");
  EXPECT_EQ(out.identity->serial, list(dir())->at(1).serial);
  EXPECT_EQ(out.identity->not_after, list(dir())->at(1).not_after);
  EXPECT_EQ(out.server_protocol, "TLSv1.3");
}

TEST_F(TlsTest, AClientWithoutCertificateIsRejected) {
  asio::ssl::context client(asio::ssl::context::tls_client);
  client.load_verify_file(ca_files(dir()).ca_cert.string());
  client.set_verify_mode(asio::ssl::verify_peer);
  const Outcome out = connect_once(*server_, client);
  EXPECT_FALSE(out.accepted());
  ASSERT_TRUE(out.server_ec);
  EXPECT_NE(out.server_reason.find("peer did not return a certificate"), std::string::npos)
      << out.server_reason;
  EXPECT_FALSE(out.identity.has_value());
  EXPECT_TRUE(out.client_read_ec || out.client_handshake_ec);
}

TEST_F(TlsTest, ACertificateFromAnotherCaIsRejected) {
  const fs::path other = tmp_.path() / "other-ca";
  ASSERT_TRUE(
      init_ca(other, CaOptions{"test CA", Validity::days_from_now(30), false}).ok());  // same name, other key
  IssueOptions o;
  o.name = "edge-1";
  o.validity = Validity::days_from_now(10);
  ASSERT_TRUE(issue(other, o).ok());
  TlsFiles files = TlsFiles::from_ca_dir(other, "edge-1");
  files.ca = ca_files(dir()).ca_cert;  // it trusts our server, but its own certificate is foreign
  files.crl.clear();
  auto client = client_context(files, "127.0.0.1");
  ASSERT_TRUE(client.ok()) << client.error().message;
  const Outcome out = connect_once(*server_, *client);
  EXPECT_FALSE(out.accepted());
  ASSERT_TRUE(out.server_ec);
  EXPECT_NE(out.server_reason.find("certificate rejected"), std::string::npos) << out.server_reason;
  EXPECT_TRUE(out.server_reason.find("unable to get local issuer certificate") != std::string::npos ||
              out.server_reason.find("certificate signature failure") != std::string::npos)
      << out.server_reason;
  EXPECT_TRUE(out.client_read_ec || out.client_handshake_ec);
}

TEST_F(TlsTest, AnExpiredCertificateIsRejected) {
  const auto now = Clock::now();
  ASSERT_TRUE(issue_edge("old", Validity{now - 48h, now - 1h}).ok());
  auto client = edge_client("old");
  const Outcome out = connect_once(*server_, client);
  EXPECT_FALSE(out.accepted());
  EXPECT_NE(out.server_reason.find("certificate has expired"), std::string::npos) << out.server_reason;
  EXPECT_TRUE(out.client_read_ec || out.client_handshake_ec);
}

TEST_F(TlsTest, ANotYetValidCertificateIsRejected) {
  const auto now = Clock::now();
  ASSERT_TRUE(issue_edge("future", Validity{now + 1h, now + 48h}).ok());
  auto client = edge_client("future");
  const Outcome out = connect_once(*server_, client);
  EXPECT_FALSE(out.accepted());
  EXPECT_NE(out.server_reason.find("certificate is not yet valid"), std::string::npos) << out.server_reason;
}

TEST_F(TlsTest, ARevokedCertificateIsRejectedAfterCrlReloadWhileTheReissuedOneWorks) {
  ASSERT_TRUE(issue_edge("edge-2").ok());
  auto before = edge_client("edge-2");  // holds the soon-revoked certificate and key
  ASSERT_TRUE(connect_once(*server_, before).accepted());

  ASSERT_TRUE(revoke(dir(), "edge-2").ok());
  // The running server has not looked at the new CRL yet.
  EXPECT_TRUE(connect_once(*server_, before).accepted());

  auto reloaded = server_->reload_crl();
  ASSERT_TRUE(reloaded.ok()) << reloaded.error().message;
  const Outcome rejected = connect_once(*server_, before);
  EXPECT_FALSE(rejected.accepted());
  EXPECT_NE(rejected.server_reason.find("certificate revoked"), std::string::npos) << rejected.server_reason;
  EXPECT_TRUE(rejected.client_read_ec || rejected.client_handshake_ec);

  ASSERT_TRUE(issue_edge("edge-2").ok());
  auto fresh = edge_client("edge-2");
  const Outcome out = connect_once(*server_, fresh);
  ASSERT_TRUE(out.accepted()) << out.server_reason;
  EXPECT_EQ(out.identity->name, "edge-2");
  EXPECT_NE(out.identity->serial, list(dir())->at(2).serial);  // not the revoked one
  EXPECT_FALSE(connect_once(*server_, before).accepted());
}

TEST_F(TlsTest, ReloadIfChangedPicksUpARevocationOnce) {
  ASSERT_TRUE(issue_edge("edge-2").ok());
  auto client = edge_client("edge-2");
  auto unchanged = server_->reload_crl_if_changed();
  ASSERT_TRUE(unchanged.ok()) << unchanged.error().message;
  EXPECT_FALSE(*unchanged);
  ASSERT_TRUE(revoke(dir(), "edge-2").ok());
  auto changed = server_->reload_crl_if_changed();
  ASSERT_TRUE(changed.ok()) << changed.error().message;
  EXPECT_TRUE(*changed);
  EXPECT_FALSE(*server_->reload_crl_if_changed());
  EXPECT_NE(connect_once(*server_, client).server_reason.find("certificate revoked"), std::string::npos);
}

TEST_F(TlsTest, ReloadingWhileHandshakesRunOnAnotherThreadIsSafe) {
  auto client = edge_client("edge-1");
  std::atomic<bool> stop{false};
  std::atomic<int> reloads{0};
  std::thread reloader([&] {
    while (!stop) {
      if (server_->reload_crl().ok()) ++reloads;
    }
  });
  int accepted = 0;
  for (int i = 0; i < 20; ++i) accepted += connect_once(*server_, client).accepted() ? 1 : 0;
  stop = true;
  reloader.join();
  EXPECT_EQ(accepted, 20);
  EXPECT_GT(reloads.load(), 0);
}

TEST_F(TlsTest, TheClientRefusesAServerFromAnotherCa) {
  const fs::path other = tmp_.path() / "other-ca";
  ASSERT_TRUE(init_ca(other, CaOptions{"test CA", Validity::days_from_now(30), false}).ok());
  IssueOptions o;
  o.kind = CertKind::server;
  o.name = "server";
  o.subject_alt_names = {"127.0.0.1"};
  o.validity = Validity::days_from_now(10);
  ASSERT_TRUE(issue(other, o).ok());
  auto foreign = TlsServerContext::create(TlsFiles::from_ca_dir(other, "server"));
  ASSERT_TRUE(foreign.ok()) << foreign.error().message;
  auto client = edge_client("edge-1");
  const Outcome out = connect_once(**foreign, client);
  EXPECT_FALSE(out.accepted());
  ASSERT_TRUE(out.client_handshake_ec);
  EXPECT_NE(out.client_reason.find("unable to get local issuer certificate"), std::string::npos)
      << out.client_reason;
}

TEST_F(TlsTest, ReloadingABrokenCrlFailsAndKeepsTheOldOne) {
  ASSERT_TRUE(issue_edge("edge-2").ok());
  auto client = edge_client("edge-2");
  ASSERT_TRUE(revoke(dir(), "edge-2").ok());
  ASSERT_TRUE(server_->reload_crl().ok());
  // A CRL signed by another CA in place of ours.
  const fs::path other = tmp_.path() / "other-ca";
  ASSERT_TRUE(init_ca(other).ok());
  fs::copy_file(ca_files(other).crl, ca_files(dir()).crl, fs::copy_options::overwrite_existing);
  auto reloaded = server_->reload_crl();
  ASSERT_FALSE(reloaded.ok());
  EXPECT_NE(reloaded.error().message.find("not signed by the CA"), std::string::npos)
      << reloaded.error().message;
  EXPECT_NE(connect_once(*server_, client).server_reason.find("certificate revoked"), std::string::npos);
}

TEST_F(TlsTest, ATls12OnlyClientIsRejected) {
  const TlsFiles files = TlsFiles::from_ca_dir(dir(), "edge-1");
  asio::ssl::context client(asio::ssl::context::tls_client);
  ASSERT_EQ(SSL_CTX_set_max_proto_version(client.native_handle(), TLS1_2_VERSION), 1);
  client.use_certificate_chain_file(files.cert.string());
  client.use_private_key_file(files.key.string(), asio::ssl::context::pem);
  client.load_verify_file(files.ca.string());
  client.set_verify_mode(asio::ssl::verify_peer);
  const Outcome out = connect_once(*server_, client);
  EXPECT_FALSE(out.accepted());
  ASSERT_TRUE(out.server_ec);
  EXPECT_NE(out.server_reason.find("unsupported protocol"), std::string::npos) << out.server_reason;
  EXPECT_TRUE(out.client_handshake_ec);
}

TEST_F(TlsTest, TheClientRefusesAServerCertificateWhoseSanDoesNotMatchTheAddress) {
  auto client = edge_client("edge-1", "10.1.2.3");  // the certificate says 127.0.0.1 and localhost
  const Outcome out = connect_once(*server_, client);
  EXPECT_FALSE(out.accepted());
  ASSERT_TRUE(out.client_handshake_ec);
  EXPECT_NE(out.client_reason.find("IP address mismatch"), std::string::npos) << out.client_reason;
  auto by_name = edge_client("edge-1", "other.example");
  const Outcome named = connect_once(*server_, by_name);
  EXPECT_FALSE(named.accepted());
  EXPECT_NE(named.client_reason.find("hostname mismatch"), std::string::npos) << named.client_reason;
}

TEST_F(TlsTest, TheClientAcceptsTheServerByItsDnsName) {
  auto client = edge_client("edge-1", "localhost");
  EXPECT_TRUE(connect_once(*server_, client).accepted());
}

TEST_F(TlsTest, AnEdgeCertificateCannotActAsTheServer) {
  // The edge certificate has no SAN for 127.0.0.1 either; the purpose check comes first.
  auto impostor = TlsServerContext::create(TlsFiles::from_ca_dir(dir(), "edge-1"));
  ASSERT_TRUE(impostor.ok()) << impostor.error().message;
  auto client = edge_client("edge-1");
  const Outcome out = connect_once(**impostor, client);
  EXPECT_FALSE(out.accepted());
  ASSERT_TRUE(out.client_handshake_ec);
  EXPECT_NE(out.client_reason.find("unsuitable certificate purpose"), std::string::npos) << out.client_reason;
}

TEST_F(TlsTest, AServerCertificateCannotActAsAnEdge) {
  auto client = edge_client("server");
  const Outcome out = connect_once(*server_, client);
  EXPECT_FALSE(out.accepted());
  EXPECT_NE(out.server_reason.find("unsuitable certificate purpose"), std::string::npos) << out.server_reason;
}

TEST_F(TlsTest, PeerIdentityWithoutAVerifiedPeerIsAnError) {
  EXPECT_FALSE(peer_identity(nullptr).ok());
  asio::io_context io;
  TlsStream stream(io, server_->context());
  auto id = peer_identity(stream.native_handle());
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.error().code, ErrorCode::not_found);
}

TEST_F(TlsTest, ContextsReportUnusableFiles) {
  TlsFiles files = TlsFiles::from_ca_dir(dir(), "server");
  files.key = ca_files(dir()).key_of("edge-1");
  auto mismatched = TlsServerContext::create(files);
  ASSERT_FALSE(mismatched.ok());
  EXPECT_NE(mismatched.error().message.find("key values mismatch"), std::string::npos)
      << mismatched.error().message;
  files = TlsFiles::from_ca_dir(dir(), "server");
  files.crl = tmp_.path() / "missing.pem";
  auto missing = TlsServerContext::create(files);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("missing.pem"), std::string::npos) << missing.error().message;
  EXPECT_FALSE(client_context(TlsFiles::from_ca_dir(dir(), "edge-1"), "").ok());
}

// ---- independent peers: the openssl command line tools ----

TEST_F(TlsTest, OpensslSClientWithAnEdgeCertificateNegotiatesTls13WithOurServer) {
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  const unsigned short port = acceptor.local_endpoint().port();
  Outcome out;
  std::optional<TlsStream> stream;
  acceptor.async_accept([&](std::error_code ec, tcp::socket socket) {
    if (ec) return;
    stream.emplace(server_->make_stream(std::move(socket)));
    stream->async_handshake(asio::ssl::stream_base::server, [&](std::error_code hec) {
      out.server_done = true;
      out.server_ec = hec;
      if (hec) {
        out.server_reason = handshake_failure_reason(stream->native_handle(), hec);
        return;
      }
      out.server_protocol = protocol_version(stream->native_handle());
      if (auto id = peer_identity(stream->native_handle())) out.identity = *id;
      // Then hang up: s_client (-ign_eof) prints what it read and exits when the server closes.
      asio::async_write(*stream, asio::buffer("hello edge\n", 11), [&](std::error_code, std::size_t) {
        stream->async_shutdown([&](std::error_code) {
          std::error_code ignored;
          stream->lowest_layer().close(ignored);
        });
      });
    });
  });
  std::thread server_thread([&] { io.run_for(kTimeout); });
  const TlsFiles files = TlsFiles::from_ca_dir(dir(), "edge-1");
  const auto ran =
      testing::run("timeout 20 openssl s_client -connect 127.0.0.1:" + std::to_string(port) + " -cert " +
                   quote(files.cert) + " -key " + quote(files.key) + " -CAfile " + quote(files.ca) +
                   " -verify_return_error -verify_ip 127.0.0.1 -brief -ign_eof");
  server_thread.join();
  EXPECT_NE(ran.out.find("Protocol version: TLSv1.3"), std::string::npos) << ran.out;
  EXPECT_NE(ran.out.find("Verification: OK"), std::string::npos) << ran.out;
  EXPECT_NE(ran.out.find("hello edge"), std::string::npos) << ran.out;
  ASSERT_TRUE(out.server_done && !out.server_ec) << out.server_reason;
  EXPECT_EQ(out.server_protocol, "TLSv1.3");
  ASSERT_TRUE(out.identity.has_value());
  EXPECT_EQ(out.identity->name, "edge-1");
}

TEST_F(TlsTest, OpensslSClientForcedToTls12IsRefusedByOurServer) {
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  const unsigned short port = acceptor.local_endpoint().port();
  Outcome out;
  std::optional<TlsStream> stream;
  acceptor.async_accept([&](std::error_code ec, tcp::socket socket) {
    if (ec) return;
    stream.emplace(server_->make_stream(std::move(socket)));
    stream->async_handshake(asio::ssl::stream_base::server, [&](std::error_code hec) {
      out.server_done = true;
      out.server_ec = hec;
      out.server_reason = handshake_failure_reason(stream->native_handle(), hec);
    });
  });
  std::thread server_thread([&] { io.run_for(kTimeout); });
  const TlsFiles files = TlsFiles::from_ca_dir(dir(), "edge-1");
  const auto ran = testing::run(
      "timeout 20 openssl s_client -tls1_2 -connect 127.0.0.1:" + std::to_string(port) + " -cert " +
      quote(files.cert) + " -key " + quote(files.key) + " -CAfile " + quote(files.ca) + " -brief");
  server_thread.join();
  EXPECT_NE(ran.exit_code, 0) << ran.out;
  ASSERT_TRUE(out.server_done);
  EXPECT_NE(out.server_reason.find("unsupported protocol"), std::string::npos) << out.server_reason;
}

// `openssl s_server` in a child process; its "ACCEPT host:port" line gives the port.
class OpensslServer {
 public:
  explicit OpensslServer(std::vector<std::string> args) {
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      ::dup2(out[1], 2);
      const int null = ::open("/dev/null", O_RDONLY);
      if (null >= 0) ::dup2(null, 0);
      std::vector<char*> argv;
      argv.reserve(args.size() + 1);
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execvp(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(out[1]);
    fd_ = out[0];
  }
  ~OpensslServer() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
    if (fd_ >= 0) ::close(fd_);
  }
  OpensslServer(const OpensslServer&) = delete;
  OpensslServer& operator=(const OpensslServer&) = delete;

  // Reads output until `marker` appears (true) or the timeout / EOF (false).
  bool wait_for(const std::string& marker, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (output_.find(marker) == std::string::npos) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buffer[4096];
      const ssize_t n = ::read(fd_, buffer, sizeof buffer);
      if (n <= 0) return false;
      output_.append(buffer, static_cast<std::size_t>(n));
    }
    return true;
  }
  // The port from "ACCEPT 127.0.0.1:PORT", 0 if not seen within the timeout.
  unsigned short port(std::chrono::milliseconds timeout) {
    if (!wait_for("ACCEPT ", timeout) || !wait_for("\n", timeout)) return 0;
    const auto at = output_.find("ACCEPT ");
    const auto colon = output_.find(':', at);
    return static_cast<unsigned short>(std::stoi(output_.substr(colon + 1)));
  }
  const std::string& output() const { return output_; }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
  std::string output_;
};

TEST_F(TlsTest, OurClientNegotiatesTls13WithOpensslSServerRequiringItsCertificate) {
  const CaFiles ca = ca_files(dir());
  OpensslServer peer({"openssl", "s_server", "-accept", "127.0.0.1:0", "-naccept", "1", "-www", "-cert",
                      ca.cert_of("server").string(), "-key", ca.key_of("server").string(), "-CAfile",
                      ca.ca_cert.string(), "-Verify", "1", "-verify_return_error", "-CRL", ca.crl.string(),
                      "-crl_check"});
  const unsigned short port = peer.port(10s);
  ASSERT_NE(port, 0) << peer.output();

  auto client = edge_client("edge-1");
  asio::io_context io;
  TlsStream stream(io, client);
  std::string protocol;
  std::error_code failure;
  std::string response;
  asio::streambuf buffer;
  const std::string request = "GET / HTTP/1.0\r\n\r\n";
  stream.lowest_layer().async_connect(
      tcp::endpoint(asio::ip::address_v4::loopback(), port), [&](std::error_code ec) {
        if (ec) {
          failure = ec;
          return;
        }
        stream.async_handshake(asio::ssl::stream_base::client, [&](std::error_code hec) {
          if (hec) {
            failure = hec;
            return;
          }
          protocol = protocol_version(stream.native_handle());
          asio::async_write(stream, asio::buffer(request), [&](std::error_code wec, std::size_t) {
            if (wec) {
              failure = wec;
              return;
            }
            asio::async_read(stream, buffer, [&](std::error_code, std::size_t) {  // until s_server closes
              response.assign(asio::buffers_begin(buffer.data()), asio::buffers_end(buffer.data()));
            });
          });
        });
      });
  io.run_for(kTimeout);
  ASSERT_FALSE(failure) << handshake_failure_reason(stream.native_handle(), failure) << "\n" << peer.output();
  EXPECT_EQ(protocol, "TLSv1.3");
  auto server_id = peer_identity(stream.native_handle());
  ASSERT_TRUE(server_id.ok()) << server_id.error().message;
  EXPECT_EQ(server_id->name, "server");
  // s_server -www reports the session as it saw it.
  EXPECT_NE(response.find("Protocol  : TLSv1.3"), std::string::npos) << response;
  EXPECT_NE(response.find("edge-1"), std::string::npos) << response;  // the client certificate it verified
}

TEST_F(TlsTest, OpensslSServerWithAnEdgeCertificateIsRefusedByOurClient) {
  const CaFiles ca = ca_files(dir());
  OpensslServer peer({"openssl", "s_server", "-accept", "127.0.0.1:0", "-naccept", "1", "-www", "-cert",
                      ca.cert_of("edge-1").string(), "-key", ca.key_of("edge-1").string(), "-CAfile",
                      ca.ca_cert.string(), "-Verify", "1"});
  const unsigned short port = peer.port(10s);
  ASSERT_NE(port, 0) << peer.output();
  auto client = edge_client("edge-1");
  asio::io_context io;
  TlsStream stream(io, client);
  std::error_code failure;
  stream.lowest_layer().async_connect(
      tcp::endpoint(asio::ip::address_v4::loopback(), port), [&](std::error_code ec) {
        if (ec) {
          failure = ec;
          return;
        }
        stream.async_handshake(asio::ssl::stream_base::client, [&](std::error_code hec) { failure = hec; });
      });
  io.run_for(kTimeout);
  ASSERT_TRUE(failure);
  EXPECT_NE(handshake_failure_reason(stream.native_handle(), failure).find("unsuitable certificate purpose"),
            std::string::npos)
      << handshake_failure_reason(stream.native_handle(), failure);
}

}  // namespace
}  // namespace cellguard::pki
