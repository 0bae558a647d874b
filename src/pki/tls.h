// TLS 1.3 with mutual authentication between edges and the server, on standalone Asio's ssl streams.
//
// Both sides: TLS 1.3 only (minimum and maximum), the peer's certificate required and verified
// against the CA of the installation as the only trust anchor (no system roots), no intermediates.
// The server also checks the CRL (a revoked, expired, not-yet-valid, foreign or serverAuth-only
// client certificate fails the handshake), sends no session tickets and keeps no session cache (a
// resumed session would skip the certificate checks, so every connection is fully verified).
// The client checks that the server's certificate is for the address it dials (IP or DNS SAN) and
// carries serverAuth (an edge certificate cannot act as the server).
//
// Note on TLS 1.3: the client finishes its handshake before the server has verified the client's
// certificate. A rejected client sees the rejection (an alert) on its first read, not in
// async_handshake; the server's async_handshake fails with the reason (handshake_failure_reason()).
#pragma once

#include <openssl/ssl.h>

#include <asio/ip/tcp.hpp>
#include <asio/ssl.hpp>
#include <filesystem>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <system_error>

#include "core/result.h"
#include "pki/pki.h"

namespace cellguard::pki {

using TlsStream = asio::ssl::stream<asio::ip::tcp::socket>;

// PEM files of one side: its certificate and key, the CA certificate, the CA's CRL.
struct TlsFiles {
  std::filesystem::path cert;
  std::filesystem::path key;
  std::filesystem::path ca;
  std::filesystem::path crl;  // required by the server; optional for the client (empty: not checked)

  // The files of `name` in a CA folder (pki.h layout).
  static TlsFiles from_ca_dir(const std::filesystem::path& dir, std::string_view name);
};

// The server's TLS context, whose revocation list can be reloaded while it runs.
//
// Thread safety: make_stream() and reload_crl() may be called from any threads at once. Streams
// built directly from context() are equally fine as long as reload_crl() runs on the thread that
// builds them (OpenSSL takes the verification store when the SSL object is created).
class TlsServerContext {
 public:
  // Loads the certificate, key (checked to match), CA and CRL. Errors name the file and OpenSSL's reason.
  static Result<std::unique_ptr<TlsServerContext>> create(const TlsFiles& files);

  TlsServerContext(const TlsServerContext&) = delete;
  TlsServerContext& operator=(const TlsServerContext&) = delete;

  asio::ssl::context& context() { return context_; }

  // A stream over an accepted socket; it verifies with the newest CRL.
  TlsStream make_stream(asio::ip::tcp::socket socket);

  // Reads the CA and CRL files again into a fresh verification store (after `cellguard pki revoke`,
  // e.g. on SIGHUP or when crl.pem's mtime changes). Handshakes that start afterwards see it; ones
  // already running keep the old one. On error (unreadable CRL, a CRL not signed by the CA) the old
  // store stays in use and the error says why.
  Result<void> reload_crl();

  // reload_crl() when the CRL file is another one than at the last load (inode, size or mtime differ,
  // as after `cellguard pki revoke`, which replaces it by a rename): cheap enough to call on a timer.
  // True when it reloaded.
  Result<bool> reload_crl_if_changed();

  // The serials (uppercase hex, as PeerIdentity::serial) the CRL loaded last revokes: a server
  // closes live connections of those after a reload (handshakes only check new ones).
  std::set<std::string> revoked_serials();

 private:
  TlsServerContext(asio::ssl::context context, TlsFiles files);

  // Identifies one version of the CRL file.
  struct FileStamp {
    unsigned long long inode = 0, size = 0;
    long long mtime_ns = 0;
    bool operator==(const FileStamp&) const = default;
  };

  std::mutex mutex_;  // guards the SSL_CTX's verification store and crl_stamp_
  asio::ssl::context context_;
  TlsFiles files_;
  FileStamp crl_stamp_;
  std::set<std::string> revoked_;
};

// The client's (edge's) context. `server_host` is the address or DNS name the client dials; the
// server's certificate must name it in its subject alternative names.
Result<asio::ssl::context> client_context(const TlsFiles& files, std::string_view server_host);

// Who the peer is, from its verified certificate.
struct PeerIdentity {
  std::string name;    // the subject CN: the edge id
  std::string serial;  // uppercase hex
  Clock::time_point not_after;
};

// The identity of the peer of a completed handshake. An error when there is no peer certificate or
// it did not verify (so an unverified name is never returned).
Result<PeerIdentity> peer_identity(const SSL* ssl);

// Text for a certificate verification result, e.g. "certificate revoked", "certificate has expired".
std::string verify_result_text(long verify_result);

// Why a handshake on `ssl` failed with `ec`, for the log: the certificate verification failure when
// there was one ("peer certificate rejected: certificate revoked"), otherwise OpenSSL's reason from
// `ec` ("peer did not return a certificate", "unsupported protocol", "tlsv1 alert unknown ca").
std::string handshake_failure_reason(const SSL* ssl, const std::error_code& ec);

// The negotiated protocol of `ssl`, e.g. "TLSv1.3".
std::string protocol_version(const SSL* ssl);

}  // namespace cellguard::pki
