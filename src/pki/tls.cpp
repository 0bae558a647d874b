#include "pki/tls.h"

#include <arpa/inet.h>
#include <openssl/pem.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "pki/openssl_util.h"

namespace cellguard::pki {

namespace fs = std::filesystem;
using namespace detail;

namespace {

// The CA signs the leaves directly (pathlen:0): no intermediate certificates between leaf and anchor.
constexpr int kVerifyDepth = 0;

// A verification store that trusts exactly the certificates in `ca` and checks the CRL in `crl`
// (when given; it must be signed by the CA).
Result<X509StorePtr> build_store(const fs::path& ca, const fs::path& crl,
                                 std::set<std::string>* revoked = nullptr) {
  X509StorePtr store(X509_STORE_new());
  if (!store) return openssl_error(ErrorCode::io_error, "cannot create a certificate store");
  std::vector<X509Ptr> anchors;
  {
    BioPtr bio(BIO_new_file(ca.c_str(), "r"));
    if (!bio) return openssl_error(ErrorCode::not_found, ca.string() + ": cannot open the CA certificate");
    while (X509* raw = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) anchors.emplace_back(raw);
    ERR_clear_error();  // the end of the file reads as "no start line"
    if (anchors.empty()) return Error(ErrorCode::parse_error, ca.string() + ": no PEM certificate in it");
  }
  for (const X509Ptr& cert : anchors) {
    if (X509_STORE_add_cert(store.get(), cert.get()) != 1) {
      return openssl_error(ErrorCode::invalid_argument, ca.string() + ": cannot trust its certificate");
    }
  }
  if (!crl.empty()) {
    BioPtr bio(BIO_new_file(crl.c_str(), "r"));
    if (!bio) return openssl_error(ErrorCode::not_found, crl.string() + ": cannot open the CRL");
    X509CrlPtr list(PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr));
    if (!list) return openssl_error(ErrorCode::parse_error, crl.string() + ": not a PEM CRL");
    const bool signed_by_ca = std::any_of(anchors.begin(), anchors.end(), [&](const X509Ptr& cert) {
      return X509_CRL_verify(list.get(), X509_get0_pubkey(cert.get())) == 1;
    });
    ERR_clear_error();
    if (!signed_by_ca)
      return Error(ErrorCode::invalid_argument, crl.string() + ": not signed by the CA in " + ca.string());
    if (X509_STORE_add_crl(store.get(), list.get()) != 1) {
      return openssl_error(ErrorCode::invalid_argument, crl.string() + ": cannot use the CRL");
    }
    X509_STORE_set_flags(store.get(), X509_V_FLAG_CRL_CHECK);
    if (revoked) {
      revoked->clear();
      const STACK_OF(X509_REVOKED)* entries = X509_CRL_get_REVOKED(list.get());
      for (int i = 0; entries && i < sk_X509_REVOKED_num(entries); ++i)
        revoked->insert(serial_hex(X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(entries, i))));
    }
  }
  return store;
}

// Settings both sides share: TLS 1.3 only, own certificate and key, peer verification.
Result<void> configure_common(SSL_CTX* ctx, const TlsFiles& files, int verify_mode) {
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1) {
    return openssl_error(ErrorCode::unsupported, "cannot restrict TLS to version 1.3");
  }
  if (SSL_CTX_use_certificate_chain_file(ctx, files.cert.c_str()) != 1) {
    return openssl_error(ErrorCode::invalid_argument, files.cert.string() + ": cannot use the certificate");
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, files.key.c_str(), SSL_FILETYPE_PEM) != 1) {
    return openssl_error(ErrorCode::invalid_argument, files.key.string() + ": cannot use the private key");
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return openssl_error(ErrorCode::invalid_argument,
                         files.key.string() + " does not belong to " + files.cert.string());
  }
  SSL_CTX_set_verify(ctx, verify_mode, nullptr);
  SSL_CTX_set_verify_depth(ctx, kVerifyDepth);
  return success();
}

Result<asio::ssl::context> make_context(asio::ssl::context::method method) {
  try {
    return asio::ssl::context(method);
  } catch (const std::system_error& e) {
    return Error(ErrorCode::io_error, std::string("cannot create a TLS context: ") + e.what());
  }
}

}  // namespace

TlsFiles TlsFiles::from_ca_dir(const fs::path& dir, std::string_view name) {
  const CaFiles f = ca_files(dir);
  return TlsFiles{f.cert_of(name), f.key_of(name), f.ca_cert, f.crl};
}

TlsServerContext::TlsServerContext(asio::ssl::context context, TlsFiles files)
    : context_(std::move(context)), files_(std::move(files)) {}

Result<std::unique_ptr<TlsServerContext>> TlsServerContext::create(const TlsFiles& files) {
  ERR_clear_error();
  if (files.crl.empty()) return Error(ErrorCode::invalid_argument, "the TLS server needs the CA's CRL");
  auto context = make_context(asio::ssl::context::tls_server);
  if (!context) return context.error();
  SSL_CTX* ctx = context->native_handle();
  if (auto r = configure_common(ctx, files, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT); !r)
    return r.error();
  // Every connection is verified in full against the current CRL: no resumption.
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(ctx, 0);
  X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(ctx), X509_V_FLAG_CRL_CHECK);
  // Tell clients which CA to pick a certificate for (tools such as openssl s_client use it).
  if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(files.ca.c_str()))
    SSL_CTX_set_client_CA_list(ctx, names);
  std::unique_ptr<TlsServerContext> server(new TlsServerContext(std::move(*context), files));
  if (auto r = server->reload_crl(); !r) return r.error();
  return server;
}

TlsStream TlsServerContext::make_stream(asio::ip::tcp::socket socket) {
  std::lock_guard lock(mutex_);
  return TlsStream(std::move(socket), context_);
}

Result<void> TlsServerContext::reload_crl() {
  ERR_clear_error();
  // Stamped before reading: if the file changes meanwhile, the next check sees a difference.
  struct stat st {};
  const bool stamped = ::stat(files_.crl.c_str(), &st) == 0;
  std::set<std::string> revoked;
  auto store = build_store(files_.ca, files_.crl, &revoked);
  if (!store) return store.error();
  std::lock_guard lock(mutex_);
  revoked_ = std::move(revoked);
  if (stamped) {
    crl_stamp_ =
        FileStamp{static_cast<unsigned long long>(st.st_ino), static_cast<unsigned long long>(st.st_size),
                  static_cast<long long>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec};
  }
  // set1 takes its own reference; SSL objects made earlier hold theirs to the old store.
  if (SSL_CTX_set1_verify_cert_store(context_.native_handle(), store->get()) != 1) {
    return openssl_error(ErrorCode::io_error, "cannot install the new verification store");
  }
  return success();
}

std::set<std::string> TlsServerContext::revoked_serials() {
  std::lock_guard lock(mutex_);
  return revoked_;
}

Result<bool> TlsServerContext::reload_crl_if_changed() {
  struct stat st {};
  if (::stat(files_.crl.c_str(), &st) != 0) {
    return Error(ErrorCode::io_error, files_.crl.string() + ": cannot stat: " + std::strerror(errno));
  }
  const FileStamp now{static_cast<unsigned long long>(st.st_ino), static_cast<unsigned long long>(st.st_size),
                      static_cast<long long>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec};
  {
    std::lock_guard lock(mutex_);
    if (now == crl_stamp_) return false;
  }
  if (auto r = reload_crl(); !r) return r.error();
  return true;
}

Result<asio::ssl::context> client_context(const TlsFiles& files, std::string_view server_host) {
  ERR_clear_error();
  if (server_host.empty())
    return Error(ErrorCode::invalid_argument, "the TLS client needs the server's address or name");
  auto context = make_context(asio::ssl::context::tls_client);
  if (!context) return context.error();
  SSL_CTX* ctx = context->native_handle();
  if (auto r = configure_common(ctx, files, SSL_VERIFY_PEER); !r) return r.error();
  auto store = build_store(files.ca, files.crl);
  if (!store) return store.error();
  if (SSL_CTX_set1_verify_cert_store(ctx, store->get()) != 1) {
    return openssl_error(ErrorCode::io_error, "cannot install the verification store");
  }
  X509_VERIFY_PARAM* param = SSL_CTX_get0_param(ctx);
  if (!files.crl.empty()) X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_CRL_CHECK);
  // Only subject alternative names count, never the CN; no partial wildcards.
  X509_VERIFY_PARAM_set_hostflags(param,
                                  X509_CHECK_FLAG_NEVER_CHECK_SUBJECT | X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  const std::string host(server_host);
  unsigned char address[16];
  const bool is_ip =
      ::inet_pton(AF_INET, host.c_str(), address) == 1 || ::inet_pton(AF_INET6, host.c_str(), address) == 1;
  const int set = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str())
                        : X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size());
  if (set != 1)
    return openssl_error(ErrorCode::invalid_argument, "cannot check the server's name '" + host + "'");
  return std::move(*context);
}

Result<PeerIdentity> peer_identity(const SSL* ssl) {
  if (ssl == nullptr) return Error(ErrorCode::invalid_argument, "peer identity: no TLS session");
  const X509* cert = SSL_get0_peer_certificate(ssl);
  if (cert == nullptr) return Error(ErrorCode::not_found, "peer identity: the peer presented no certificate");
  const long verified = SSL_get_verify_result(ssl);
  if (verified != X509_V_OK) {
    return Error(ErrorCode::invalid_argument,
                 "peer identity: the certificate did not verify: " + verify_result_text(verified));
  }
  auto name = common_name(X509_get_subject_name(cert));
  if (!name)
    return Error(ErrorCode::invalid_argument, "peer identity: the certificate has no single, well-formed CN");
  const auto not_after = to_time_point(X509_get0_notAfter(cert));
  if (!not_after) return Error(ErrorCode::invalid_argument, "peer identity: unreadable notAfter");
  return PeerIdentity{std::move(*name), serial_hex(X509_get0_serialNumber(cert)), *not_after};
}

std::string verify_result_text(long verify_result) { return X509_verify_cert_error_string(verify_result); }

std::string handshake_failure_reason(const SSL* ssl, const std::error_code& ec) {
  if (ssl != nullptr) {
    const long verified = SSL_get_verify_result(ssl);
    if (verified != X509_V_OK) return "peer certificate rejected: " + verify_result_text(verified);
  }
  if (!ec) return "no failure";
  if (ec == asio::error::eof) return "the peer closed the connection during the handshake";
  return ec.message();
}

std::string protocol_version(const SSL* ssl) { return ssl != nullptr ? SSL_get_version(ssl) : ""; }

}  // namespace cellguard::pki
