// Internal to pki/: owning handles for OpenSSL objects and OpenSSL's error queue as text.
// Not part of the public interface (pki.h, tls.h).
#pragma once

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <chrono>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"

namespace cellguard::pki::detail {

template <auto Free>
struct Deleter {
  template <typename T>
  void operator()(T* p) const {
    Free(p);
  }
};

using BioPtr = std::unique_ptr<BIO, Deleter<BIO_free_all>>;
using BignumPtr = std::unique_ptr<BIGNUM, Deleter<BN_free>>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509_free>>;
using X509CrlPtr = std::unique_ptr<X509_CRL, Deleter<X509_CRL_free>>;
using X509RevokedPtr = std::unique_ptr<X509_REVOKED, Deleter<X509_REVOKED_free>>;
using X509StorePtr = std::unique_ptr<X509_STORE, Deleter<X509_STORE_free>>;
using X509ExtensionPtr = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION_free>>;
using Asn1IntegerPtr = std::unique_ptr<ASN1_INTEGER, Deleter<ASN1_INTEGER_free>>;
using Asn1TimePtr = std::unique_ptr<ASN1_TIME, Deleter<ASN1_TIME_free>>;
inline void openssl_free(void* p) { OPENSSL_free(p); }
using OpensslString = std::unique_ptr<char, Deleter<openssl_free>>;
using Utf8String = std::unique_ptr<unsigned char, Deleter<openssl_free>>;

// Drains OpenSSL's (thread-local) error queue into "reason; reason"; `fallback` when it is empty.
inline std::string drain_errors(std::string_view fallback = "no OpenSSL error reported") {
  std::string text;
  unsigned long code = 0;
  while ((code = ERR_get_error()) != 0) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof buffer);
    if (!text.empty()) text += "; ";
    text += buffer;
  }
  return text.empty() ? std::string(fallback) : text;
}

// An Error for a failed OpenSSL call: "<what>: <OpenSSL's reasons>".
inline Error openssl_error(ErrorCode code, std::string_view what) {
  return Error(code, std::string(what) + ": " + drain_errors());
}

inline std::optional<std::chrono::system_clock::time_point> to_time_point(const ASN1_TIME* t) {
  std::tm tm{};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return std::nullopt;
  return std::chrono::system_clock::from_time_t(::timegm(&tm));
}

// The serial as uppercase hex, as `openssl x509 -serial` prints it.
inline std::string serial_hex(const ASN1_INTEGER* serial) {
  BignumPtr bn(ASN1_INTEGER_to_BN(serial, nullptr));
  if (!bn) return {};
  OpensslString hex(BN_bn2hex(bn.get()));
  return hex ? std::string(hex.get()) : std::string();
}

// The single commonName of `name` as UTF-8; nullopt when absent, repeated or containing NUL.
inline std::optional<std::string> common_name(const X509_NAME* name) {
  if (name == nullptr) return std::nullopt;
  const int index = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (index < 0 || X509_NAME_get_index_by_NID(name, NID_commonName, index) >= 0) return std::nullopt;
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
  unsigned char* raw = nullptr;
  const int length = ASN1_STRING_to_UTF8(&raw, data);
  if (length < 0) return std::nullopt;
  Utf8String owned(raw);
  std::string text(reinterpret_cast<const char*>(raw), static_cast<std::size_t>(length));
  if (text.empty() || text.find('\0') != std::string::npos) return std::nullopt;
  return text;
}

}  // namespace cellguard::pki::detail
