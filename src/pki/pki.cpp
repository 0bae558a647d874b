#include "pki/pki.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>
#include <system_error>
#include <utility>

#include "core/text.h"
#include "pki/openssl_util.h"

namespace cellguard::pki {

namespace fs = std::filesystem;
using namespace detail;

namespace {

constexpr int kIndexVersion = 1;

// ---- files ----

std::string os_error(const fs::path& path, std::string_view what) {
  return path.string() + ": " + std::string(what) + ": " + std::strerror(errno);
}

// Writes `data` to `path` with `mode` through a temporary file and a rename, so readers (a server
// reloading the CRL) see the old or the new file, never a partial one. The mode is set explicitly,
// whatever the umask.
Result<void> write_atomic(const fs::path& path, std::string_view data, mode_t mode) {
  const fs::path temp = path.string() + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return Error(ErrorCode::io_error, os_error(temp, "cannot create"));
  bool ok = ::fchmod(fd, mode) == 0;
  std::size_t done = 0;
  while (ok && done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      ok = false;
    else
      done += static_cast<std::size_t>(n);
  }
  ok = ok && ::fsync(fd) == 0;
  std::string failure = ok ? std::string() : os_error(temp, "cannot write");
  if (::close(fd) != 0 && ok) {
    ok = false;
    failure = os_error(temp, "cannot close");
  }
  if (ok && ::rename(temp.c_str(), path.c_str()) != 0) {
    ok = false;
    failure = os_error(path, "cannot rename into place");
  }
  if (!ok) {
    ::unlink(temp.c_str());
    return Error(ErrorCode::io_error, failure);
  }
  return success();
}

Result<void> make_private_dir(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Error(ErrorCode::io_error, dir.string() + ": cannot create the folder: " + ec.message());
  if (::chmod(dir.c_str(), 0700) != 0)
    return Error(ErrorCode::io_error, os_error(dir, "cannot set mode 0700"));
  return success();
}

// An exclusive advisory lock on DIR/.lock for the lifetime of the object.
class DirLock {
 public:
  static Result<DirLock> acquire(const fs::path& dir) {
    const fs::path path = dir / ".lock";
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return Error(ErrorCode::io_error, os_error(path, "cannot open the lock file"));
    while (::flock(fd, LOCK_EX) != 0) {
      if (errno != EINTR) {
        ::close(fd);
        return Error(ErrorCode::io_error, os_error(path, "cannot lock"));
      }
    }
    return DirLock(fd);
  }
  DirLock(DirLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  DirLock& operator=(DirLock&&) = delete;
  ~DirLock() {
    if (fd_ >= 0) ::close(fd_);  // closing releases the lock
  }

 private:
  explicit DirLock(int fd) : fd_(fd) {}
  int fd_;
};

// ---- time ----

std::optional<Clock::time_point> parse_time(const std::string& text) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  char z = 0;
  if (text.size() != 20 ||
      std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%c", &y, &mo, &d, &h, &mi, &s, &z) != 7 || z != 'Z') {
    return std::nullopt;
  }
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  return Clock::from_time_t(::timegm(&tm));
}

// ---- names ----

bool valid_dns_name(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  std::size_t label = 0;
  char previous = '.';
  for (const char c : name) {
    if (c == '.') {
      if (label == 0 || previous == '-') return false;
      label = 0;
    } else if (std::isalnum(static_cast<unsigned char>(c)) || (c == '-' && label > 0)) {
      if (++label > 63) return false;
    } else {
      return false;
    }
    previous = c;
  }
  return label > 0 && previous != '-';
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// "IP:..."/"DNS:..." (the form OpenSSL's extension configuration takes) for one SAN given as
// "127.0.0.1", "::1", "host.example", "IP:..." or "DNS:...". Validated so the text cannot smuggle
// further entries (commas) into the extension configuration.
Result<std::string> normalise_san(std::string_view text) {
  std::string_view value = text;
  std::string_view forced;
  for (std::string_view prefix : {"IP:", "DNS:"}) {
    if (value.size() > prefix.size() && lower(value.substr(0, prefix.size())) == lower(prefix)) {
      forced = prefix;
      value.remove_prefix(prefix.size());
    }
  }
  const std::string v(value);
  unsigned char address[16];
  if (forced != "DNS:" &&
      (::inet_pton(AF_INET, v.c_str(), address) == 1 || ::inet_pton(AF_INET6, v.c_str(), address) == 1)) {
    return "IP:" + v;
  }
  if (forced != "IP:" && valid_dns_name(v)) return "DNS:" + lower(v);
  return Error(ErrorCode::invalid_argument, "subject alternative name '" + std::string(text) +
                                                "' is neither an IP address nor a DNS name");
}

// ---- index.json ----

struct Index {
  std::string ca_name;
  std::uint64_t crl_number = 0;
  std::vector<CertRecord> certificates;
};

nlohmann::json to_json(const CertRecord& r) {
  nlohmann::json j = {{"serial", r.serial},
                      {"name", r.name},
                      {"kind", std::string(to_string(r.kind))},
                      {"not_before", format_time(r.not_before)},
                      {"not_after", format_time(r.not_after)},
                      {"revoked_at", nullptr},
                      {"subject_alt_names", r.subject_alt_names}};
  if (r.revoked_at) j["revoked_at"] = format_time(*r.revoked_at);
  return j;
}

Result<Index> load_index(const CaFiles& files) {
  std::error_code ec;
  if (!fs::exists(files.index, ec)) {
    return Error(ErrorCode::not_found,
                 files.dir.string() + ": not a CA folder (no index.json; see `cellguard pki init`)");
  }
  auto text = read_file(files.index.string());
  if (!text) return text.error();
  const auto bad = [&](const std::string& why) {
    return Error(ErrorCode::parse_error, files.index.string() + ": " + why);
  };
  const nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
  if (!j.is_object()) return bad("not a JSON object");
  if (j.value("version", 0) != kIndexVersion)
    return bad("unsupported version (expected " + std::to_string(kIndexVersion) + ")");
  Index index;
  try {
    index.ca_name = j.at("ca_name").get<std::string>();
    index.crl_number = j.at("crl_number").get<std::uint64_t>();
    std::size_t i = 0;
    for (const auto& c : j.at("certificates")) {
      const std::string where = "certificates[" + std::to_string(i++) + "]: ";
      CertRecord r;
      r.serial = c.at("serial").get<std::string>();
      r.name = c.at("name").get<std::string>();
      const auto kind = parse_cert_kind(c.at("kind").get<std::string>());
      const auto not_before = parse_time(c.at("not_before").get<std::string>());
      const auto not_after = parse_time(c.at("not_after").get<std::string>());
      if (!kind || !not_before || !not_after) return bad(where + "bad kind or time");
      r.kind = *kind;
      r.not_before = *not_before;
      r.not_after = *not_after;
      if (!c.at("revoked_at").is_null()) {
        r.revoked_at = parse_time(c.at("revoked_at").get<std::string>());
        if (!r.revoked_at) return bad(where + "bad revoked_at");
      }
      if (c.contains("subject_alt_names"))
        r.subject_alt_names = c.at("subject_alt_names").get<std::vector<std::string>>();
      index.certificates.push_back(std::move(r));
    }
  } catch (const nlohmann::json::exception& e) {
    return bad(e.what());
  }
  return index;
}

Result<void> save_index(const CaFiles& files, const Index& index) {
  nlohmann::json certs = nlohmann::json::array();
  for (const CertRecord& r : index.certificates) certs.push_back(to_json(r));
  const nlohmann::json j = {{"version", kIndexVersion},
                            {"ca_name", index.ca_name},
                            {"crl_number", index.crl_number},
                            {"certificates", certs}};
  return write_atomic(files.index, j.dump(2) + "\n", 0644);
}

// ---- OpenSSL objects ----

Result<std::string> to_pem(const std::function<int(BIO*)>& write, std::string_view what) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || write(bio.get()) != 1)
    return openssl_error(ErrorCode::io_error, "cannot encode the " + std::string(what));
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(size));
}

Result<PkeyPtr> generate_key() {
  PkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return openssl_error(ErrorCode::io_error, "cannot generate a P-256 key");
  return key;
}

Result<X509Ptr> read_cert_file(const fs::path& path) {
  BioPtr bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) return openssl_error(ErrorCode::not_found, path.string() + ": cannot open");
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) return openssl_error(ErrorCode::parse_error, path.string() + ": not a PEM certificate");
  return cert;
}

Result<PkeyPtr> read_key_file(const fs::path& path) {
  BioPtr bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) return openssl_error(ErrorCode::not_found, path.string() + ": cannot open");
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) return openssl_error(ErrorCode::parse_error, path.string() + ": not a PEM private key");
  return key;
}

struct Ca {
  PkeyPtr key;
  X509Ptr cert;
};

Result<Ca> load_ca(const CaFiles& files) {
  auto key = read_key_file(files.ca_key);
  if (!key) return key.error();
  auto cert = read_cert_file(files.ca_cert);
  if (!cert) return cert.error();
  if (X509_check_private_key(cert->get(), key->get()) != 1) {
    return openssl_error(ErrorCode::invalid_argument,
                         files.ca_key.string() + " does not belong to " + files.ca_cert.string());
  }
  return Ca{std::move(*key), std::move(*cert)};
}

Result<Asn1IntegerPtr> serial_from_hex(const std::string& hex) {
  BIGNUM* raw = nullptr;
  if (BN_hex2bn(&raw, hex.c_str()) == 0)
    return openssl_error(ErrorCode::parse_error, "bad serial '" + hex + "'");
  BignumPtr bn(raw);
  Asn1IntegerPtr serial(BN_to_ASN1_INTEGER(bn.get(), nullptr));
  if (!serial) return openssl_error(ErrorCode::io_error, "cannot encode serial " + hex);
  return serial;
}

// 128 random bits; DER adds a zero byte when the top bit is set (17 bytes, within RFC 5280's 20).
Result<Asn1IntegerPtr> random_serial() {
  unsigned char bytes[16];
  do {
    if (RAND_bytes(bytes, sizeof bytes) != 1)
      return openssl_error(ErrorCode::io_error, "no random bytes for a serial");
  } while (std::all_of(std::begin(bytes), std::end(bytes), [](unsigned char b) { return b == 0; }));
  BignumPtr bn(BN_bin2bn(bytes, sizeof bytes, nullptr));
  Asn1IntegerPtr serial(bn ? BN_to_ASN1_INTEGER(bn.get(), nullptr) : nullptr);
  if (!serial) return openssl_error(ErrorCode::io_error, "cannot encode a serial");
  return serial;
}

Result<void> set_time(ASN1_TIME* field, Clock::time_point t) {
  if (ASN1_TIME_set(field, Clock::to_time_t(t)) == nullptr)
    return openssl_error(ErrorCode::invalid_argument, "bad time");
  return success();
}

Result<void> add_extension(X509* cert, X509V3_CTX* ctx, int nid, const std::string& value) {
  X509ExtensionPtr ext(X509V3_EXT_conf_nid(nullptr, ctx, nid, value.c_str()));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) {
    return openssl_error(ErrorCode::invalid_argument,
                         std::string("cannot add extension ") + OBJ_nid2sn(nid) + "=" + value);
  }
  return success();
}

struct CertSpec {
  std::string name;
  Validity validity;
  // (nid, value) in order: subjectKeyIdentifier must precede authorityKeyIdentifier.
  std::vector<std::pair<int, std::string>> extensions;
};

// A certificate for `key` named spec.name, signed by `issuer_key`; self-signed when issuer is null.
Result<X509Ptr> build_cert(const CertSpec& spec, ASN1_INTEGER* serial, EVP_PKEY* key, X509* issuer,
                           EVP_PKEY* issuer_key) {
  X509Ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1 ||
      X509_set_serialNumber(cert.get(), serial) != 1 || X509_set_pubkey(cert.get(), key) != 1) {
    return openssl_error(ErrorCode::io_error, "cannot build the certificate of " + spec.name);
  }
  if (auto r = set_time(X509_getm_notBefore(cert.get()), spec.validity.not_before); !r) return r.error();
  if (auto r = set_time(X509_getm_notAfter(cert.get()), spec.validity.not_after); !r) return r.error();
  X509_NAME* subject = X509_get_subject_name(cert.get());
  if (X509_NAME_add_entry_by_NID(subject, NID_commonName, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(spec.name.c_str()), -1, -1, 0) != 1) {
    return openssl_error(ErrorCode::invalid_argument, "cannot set the name " + spec.name);
  }
  X509* signer = issuer != nullptr ? issuer : cert.get();
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(signer)) != 1) {
    return openssl_error(ErrorCode::io_error, "cannot set the issuer of " + spec.name);
  }
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, signer, cert.get(), nullptr, nullptr, 0);
  for (const auto& [nid, value] : spec.extensions) {
    if (auto r = add_extension(cert.get(), &ctx, nid, value); !r) return r.error();
  }
  if (X509_sign(cert.get(), issuer_key != nullptr ? issuer_key : key, EVP_sha256()) <= 0) {
    return openssl_error(ErrorCode::io_error, "cannot sign the certificate of " + spec.name);
  }
  return cert;
}

// The CRL of every revoked certificate in `index`, valid from an hour ago (tolerates servers whose
// clock is a little behind) until the CA expires: a CRL past its nextUpdate fails every handshake.
Result<std::string> build_crl(const Ca& ca, const Index& index) {
  X509CrlPtr crl(X509_CRL_new());
  if (!crl || X509_CRL_set_version(crl.get(), X509_CRL_VERSION_2) != 1 ||
      X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(ca.cert.get())) != 1) {
    return openssl_error(ErrorCode::io_error, "cannot build the CRL");
  }
  Asn1TimePtr last(ASN1_TIME_set(nullptr, Clock::to_time_t(Clock::now() - std::chrono::hours(1))));
  if (!last || X509_CRL_set1_lastUpdate(crl.get(), last.get()) != 1 ||
      X509_CRL_set1_nextUpdate(crl.get(), X509_get0_notAfter(ca.cert.get())) != 1) {
    return openssl_error(ErrorCode::io_error, "cannot set the CRL's update times");
  }
  for (const CertRecord& r : index.certificates) {
    if (!r.revoked_at) continue;
    auto serial = serial_from_hex(r.serial);
    if (!serial) return serial.error();
    X509RevokedPtr revoked(X509_REVOKED_new());
    Asn1TimePtr when(ASN1_TIME_set(nullptr, Clock::to_time_t(*r.revoked_at)));
    if (!revoked || !when || X509_REVOKED_set_serialNumber(revoked.get(), serial->get()) != 1 ||
        X509_REVOKED_set_revocationDate(revoked.get(), when.get()) != 1 ||
        X509_CRL_add0_revoked(crl.get(), revoked.get()) != 1) {
      return openssl_error(ErrorCode::io_error, "cannot add serial " + r.serial + " to the CRL");
    }
    static_cast<void>(revoked.release());  // owned by the CRL now
  }
  Asn1IntegerPtr number(ASN1_INTEGER_new());
  if (!number || ASN1_INTEGER_set_uint64(number.get(), index.crl_number) != 1 ||
      X509_CRL_add1_ext_i2d(crl.get(), NID_crl_number, number.get(), 0, 0) != 1) {
    return openssl_error(ErrorCode::io_error, "cannot number the CRL");
  }
  if (X509_CRL_sort(crl.get()) != 1 || X509_CRL_sign(crl.get(), ca.key.get(), EVP_sha256()) <= 0) {
    return openssl_error(ErrorCode::io_error, "cannot sign the CRL");
  }
  return to_pem([&](BIO* bio) { return PEM_write_bio_X509_CRL(bio, crl.get()); }, "CRL");
}

Result<void> write_crl(const CaFiles& files, const Ca& ca, const Index& index) {
  auto pem = build_crl(ca, index);
  if (!pem) return pem.error();
  return write_atomic(files.crl, *pem, 0644);
}

Result<void> check_validity(const Validity& v) {
  if (v.not_before >= v.not_after)
    return Error(ErrorCode::invalid_argument, "validity: not_before must precede not_after");
  return success();
}

}  // namespace

std::string_view to_string(CertKind kind) { return kind == CertKind::server ? "server" : "edge"; }

std::optional<CertKind> parse_cert_kind(std::string_view text) {
  if (text == "server") return CertKind::server;
  if (text == "edge") return CertKind::edge;
  return std::nullopt;
}

Validity Validity::days_from_now(int days) {
  const auto now = std::chrono::time_point_cast<std::chrono::seconds>(Clock::now());
  return {now - std::chrono::hours(1), now + std::chrono::hours(24) * days};
}

std::string format_time(Clock::time_point t) {
  const std::time_t seconds = Clock::to_time_t(t);
  std::tm tm{};
  ::gmtime_r(&seconds, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buffer;
}

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > 64 || !std::isalnum(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

fs::path CaFiles::cert_of(std::string_view name) const { return issued / (std::string(name) + ".crt"); }
fs::path CaFiles::key_of(std::string_view name) const { return issued / (std::string(name) + ".key"); }

CaFiles ca_files(const fs::path& dir) {
  return CaFiles{dir, dir / "ca.key", dir / "ca.crt", dir / "crl.pem", dir / "index.json", dir / "issued"};
}

Result<void> init_ca(const fs::path& dir, const CaOptions& options) {
  ERR_clear_error();
  const CaFiles files = ca_files(dir);
  if (options.name.empty() || options.name.size() > 64) {
    return Error(ErrorCode::invalid_argument, "CA name must have 1..64 characters");
  }
  if (auto r = check_validity(options.validity); !r) return r;
  std::error_code ec;
  if (!options.overwrite && (fs::exists(files.ca_key, ec) || fs::exists(files.ca_cert, ec))) {
    return Error(
        ErrorCode::invalid_argument,
        dir.string() +
            ": a CA exists already (ca.key/ca.crt); replacing it (--force) invalidates every certificate");
  }
  if (auto r = make_private_dir(dir); !r) return r;
  auto lock = DirLock::acquire(dir);
  if (!lock) return lock.error();
  if (options.overwrite) {
    // A new CA makes every certificate of the old one useless: forget them.
    fs::remove_all(files.issued, ec);
    if (ec) return Error(ErrorCode::io_error, files.issued.string() + ": cannot remove: " + ec.message());
  }
  if (auto r = make_private_dir(files.issued); !r) return r;
  if (auto r = make_private_dir(files.issued / "by-serial"); !r) return r;

  auto key = generate_key();
  if (!key) return key.error();
  auto serial = random_serial();
  if (!serial) return serial.error();
  const CertSpec spec{options.name,
                      options.validity,
                      {{NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
                       {NID_key_usage, "critical,keyCertSign,cRLSign"},
                       {NID_subject_key_identifier, "hash"}}};
  auto cert = build_cert(spec, serial->get(), key->get(), nullptr, nullptr);
  if (!cert) return cert.error();
  auto key_pem = to_pem(
      [&](BIO* bio) {
        return PEM_write_bio_PrivateKey(bio, key->get(), nullptr, nullptr, 0, nullptr, nullptr);
      },
      "CA key");
  if (!key_pem) return key_pem.error();
  auto cert_pem = to_pem([&](BIO* bio) { return PEM_write_bio_X509(bio, cert->get()); }, "CA certificate");
  if (!cert_pem) return cert_pem.error();
  if (auto r = write_atomic(files.ca_key, *key_pem, 0600); !r) return r;
  if (auto r = write_atomic(files.ca_cert, *cert_pem, 0644); !r) return r;
  Index index{options.name, 1, {}};
  if (auto r = save_index(files, index); !r) return r;
  return write_crl(files, Ca{std::move(*key), std::move(*cert)}, index);
}

Result<CertRecord> issue(const fs::path& dir, const IssueOptions& options) {
  ERR_clear_error();
  const CaFiles files = ca_files(dir);
  if (!valid_name(options.name)) {
    return Error(ErrorCode::invalid_argument,
                 "certificate name '" + options.name +
                     "': use 1..64 of A-Z a-z 0-9 . _ -, starting with a letter or digit");
  }
  if (auto r = check_validity(options.validity); !r) return r.error();
  std::vector<std::string> sans;
  if (options.kind == CertKind::edge && !options.subject_alt_names.empty()) {
    return Error(ErrorCode::invalid_argument,
                 "edge certificates carry no subject alternative names: an edge is its name");
  }
  if (options.kind == CertKind::server) {
    if (valid_dns_name(options.name)) sans.push_back("DNS:" + lower(options.name));
    for (const std::string& text : options.subject_alt_names) {
      auto san = normalise_san(text);
      if (!san) return san.error();
      if (std::find(sans.begin(), sans.end(), *san) == sans.end()) sans.push_back(*san);
    }
    if (sans.empty()) {
      return Error(ErrorCode::invalid_argument,
                   "server certificate '" + options.name +
                       "' needs an address: give a subject alternative name (--san)");
    }
  }

  auto lock = DirLock::acquire(dir);
  if (!lock) return lock.error();
  auto index = load_index(files);
  if (!index) return index.error();
  const auto now = Clock::now();
  for (const CertRecord& r : index->certificates) {
    if (r.name == options.name && !r.revoked_at && r.not_after > now && !options.overwrite) {
      return Error(ErrorCode::invalid_argument, "'" + options.name +
                                                    "' has a valid certificate already (serial " + r.serial +
                                                    "); revoke it first or replace it (--force)");
    }
  }
  auto ca = load_ca(files);
  if (!ca) return ca.error();
  const auto ca_not_after = to_time_point(X509_get0_notAfter(ca->cert.get()));
  if (ca_not_after && options.validity.not_after > *ca_not_after) {
    return Error(ErrorCode::invalid_argument, "the certificate would outlive the CA (valid until " +
                                                  format_time(*ca_not_after) + "): ask for fewer days");
  }

  auto key = generate_key();
  if (!key) return key.error();
  Asn1IntegerPtr serial;
  std::string serial_text;
  do {  // a collision of 128 random bits will not happen, but a duplicate serial must not either
    auto s = random_serial();
    if (!s) return s.error();
    serial = std::move(*s);
    serial_text = serial_hex(serial.get());
  } while (std::any_of(index->certificates.begin(), index->certificates.end(),
                       [&](const CertRecord& r) { return r.serial == serial_text; }));

  CertSpec spec{options.name,
                options.validity,
                {{NID_basic_constraints, "critical,CA:FALSE"},
                 {NID_key_usage, "critical,digitalSignature"},
                 {NID_ext_key_usage, options.kind == CertKind::server ? "serverAuth" : "clientAuth"},
                 {NID_subject_key_identifier, "hash"},
                 {NID_authority_key_identifier, "keyid:always"}}};
  if (!sans.empty()) {
    std::string joined;
    for (const std::string& s : sans) joined += (joined.empty() ? "" : ",") + s;
    spec.extensions.emplace_back(NID_subject_alt_name, joined);
  }
  auto cert = build_cert(spec, serial.get(), key->get(), ca->cert.get(), ca->key.get());
  if (!cert) return cert.error();
  auto key_pem = to_pem(
      [&](BIO* bio) {
        return PEM_write_bio_PrivateKey(bio, key->get(), nullptr, nullptr, 0, nullptr, nullptr);
      },
      "key");
  if (!key_pem) return key_pem.error();
  auto cert_pem = to_pem([&](BIO* bio) { return PEM_write_bio_X509(bio, cert->get()); }, "certificate");
  if (!cert_pem) return cert_pem.error();

  if (auto r = make_private_dir(files.issued / "by-serial"); !r) return r.error();
  if (auto r = write_atomic(files.issued / "by-serial" / (serial_text + ".crt"), *cert_pem, 0644); !r)
    return r.error();
  // The key first: a certificate file never exists without its key.
  if (auto r = write_atomic(files.key_of(options.name), *key_pem, 0600); !r) return r.error();
  if (auto r = write_atomic(files.cert_of(options.name), *cert_pem, 0644); !r) return r.error();

  CertRecord record;
  record.serial = serial_text;
  record.name = options.name;
  record.kind = options.kind;
  record.not_before = std::chrono::time_point_cast<std::chrono::seconds>(options.validity.not_before);
  record.not_after = std::chrono::time_point_cast<std::chrono::seconds>(options.validity.not_after);
  record.subject_alt_names = sans;
  index->certificates.push_back(record);
  if (auto r = save_index(files, *index); !r) return r.error();
  return record;
}

Result<std::vector<CertRecord>> revoke(const fs::path& dir, std::string_view name) {
  ERR_clear_error();
  const CaFiles files = ca_files(dir);
  auto lock = DirLock::acquire(dir);
  if (!lock) return lock.error();
  auto index = load_index(files);
  if (!index) return index.error();
  auto ca = load_ca(files);
  if (!ca) return ca.error();
  const auto now = std::chrono::time_point_cast<std::chrono::seconds>(Clock::now());
  std::vector<CertRecord> revoked;
  for (CertRecord& r : index->certificates) {
    if (r.name == name && !r.revoked_at) {
      r.revoked_at = now;
      revoked.push_back(r);
    }
  }
  if (revoked.empty()) {
    return Error(ErrorCode::not_found,
                 "no unrevoked certificate named '" + std::string(name) + "' in " + dir.string());
  }
  ++index->crl_number;
  if (auto r = save_index(files, *index); !r) return r.error();
  if (auto r = write_crl(files, *ca, *index); !r) return r.error();
  return revoked;
}

Result<std::vector<CertRecord>> list(const fs::path& dir) {
  auto index = load_index(ca_files(dir));
  if (!index) return index.error();
  return std::move(index->certificates);
}

}  // namespace cellguard::pki
