#include "http/tls_source.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <sys/stat.h>

#include "graydebug/file_read.h"
#include "graydebug/log.h"
#include "graydebug/telemetry.h"

namespace graydebug::http::detail {

namespace ssl = boost::asio::ssl;

namespace {

constexpr std::size_t kMaxPemBytes = 1u << 20;

// Mozilla's "intermediate" list for TLS 1.2: ECDHE key exchange with AEAD ciphers only. TLS 1.3
// keeps OpenSSL's default suites, which are all AEAD.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

// Drains OpenSSL's thread-local error queue into one line.
std::string OpenSslError() {
  std::string out;
  while (unsigned long code = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

// Encrypted keys are refused instead of prompting on a terminal.
int NoPassphrase(char*, int, int, void*) {
  return -1;
}

// Sets the protocol floor, ciphers and the pair on one connection's fresh context.
// Returns "" or OpenSSL's reason.
std::string ConfigureContext(SSL_CTX* ctx, const TlsPair& pair) {
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(
      ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET);
  // No resumption: a client reconnecting after a rotation must see the new certificate, and
  // webhook clients keep their connections open anyway.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(ctx, 0);
  if (SSL_CTX_set_cipher_list(ctx, kTls12Ciphers) != 1 || SSL_CTX_use_certificate(ctx, pair.leaf) != 1 ||
      SSL_CTX_set1_chain(ctx, pair.chain) != 1 || SSL_CTX_use_PrivateKey(ctx, pair.key) != 1 ||
      SSL_CTX_check_private_key(ctx) != 1) {
    return OpenSslError();
  }
  return "";
}

using BioPtr = std::unique_ptr<BIO, decltype(&BIO_free)>;

BioPtr MemBio(const std::string& data) {
  return BioPtr(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())), BIO_free);
}

std::string AsnTime(const ASN1_TIME* t) {
  BioPtr out(BIO_new(BIO_s_mem()), BIO_free);
  if (!out || ASN1_TIME_print(out.get(), t) != 1) return "";
  char* data = nullptr;
  long n = BIO_get_mem_data(out.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

}  // namespace

std::shared_ptr<const TlsPair> LoadTlsPair(const std::string& cert_file, const std::string& key_file,
                                           std::string* error) {
  ERR_clear_error();
  FileReadResult cert_pem = ReadFileLimited(cert_file, kMaxPemBytes);
  if (!cert_pem.ok) {
    *error = "cannot read the TLS certificate: " + cert_pem.error;
    return nullptr;
  }
  FileReadResult key_pem = ReadFileLimited(key_file, kMaxPemBytes);
  if (!key_pem.ok) {
    *error = "cannot read the TLS key: " + key_pem.error;
    return nullptr;
  }
  auto pair = std::make_shared<TlsPair>();
  BioPtr cert_bio = MemBio(cert_pem.contents);
  pair->chain = sk_X509_new_null();
  if (!cert_bio || !pair->chain) {
    *error = "out of memory reading " + cert_file;
    return nullptr;
  }
  pair->leaf = PEM_read_bio_X509(cert_bio.get(), nullptr, NoPassphrase, nullptr);
  if (pair->leaf == nullptr) {
    *error = cert_file + ": no PEM certificate in it (" + OpenSslError() + ")";
    return nullptr;
  }
  while (X509* extra = PEM_read_bio_X509(cert_bio.get(), nullptr, NoPassphrase, nullptr)) {
    if (sk_X509_push(pair->chain, extra) == 0) {
      X509_free(extra);
      *error = "out of memory reading " + cert_file;
      return nullptr;
    }
  }
  // The loop ends at "no start line" when the file is complete; anything else is a torn or
  // corrupt certificate after the leaf (a half-written file, say).
  unsigned long last = ERR_peek_last_error();
  if (ERR_GET_LIB(last) != ERR_LIB_PEM || ERR_GET_REASON(last) != PEM_R_NO_START_LINE) {
    *error = cert_file + ": malformed certificate after the first one (" + OpenSslError() + ")";
    return nullptr;
  }
  ERR_clear_error();

  BioPtr key_bio = MemBio(key_pem.contents);
  pair->key = key_bio ? PEM_read_bio_PrivateKey(key_bio.get(), nullptr, NoPassphrase, nullptr) : nullptr;
  if (pair->key == nullptr) {
    *error = key_file + ": no unencrypted PEM private key in it (" + OpenSslError() + ")";
    return nullptr;
  }
  if (X509_check_private_key(pair->leaf, pair->key) != 1) {
    ERR_clear_error();
    *error = key_file + ": the private key does not match the certificate in " + cert_file;
    return nullptr;
  }
  // The context the connections will use: also catches keys or signatures that OpenSSL's
  // security level refuses (RSA < 2048 bits, say).
  try {
    pair->context = std::make_shared<ssl::context>(ssl::context::tls_server);
  } catch (const std::exception& e) {
    *error = std::string("cannot create a TLS context: ") + e.what();
    return nullptr;
  }
  if (std::string why = ConfigureContext(pair->context->native_handle(), *pair); !why.empty()) {
    *error = cert_file + ": unusable for TLS: " + why;
    return nullptr;
  }
  char subject[512];
  X509_NAME_oneline(X509_get_subject_name(pair->leaf), subject, sizeof subject);
  pair->subject = subject;
  pair->not_after = AsnTime(X509_get0_notAfter(pair->leaf));
  return pair;
}

namespace {

FileStamp Stamp(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {};
  auto ns = [](const timespec& t) { return static_cast<std::int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec; };
  return {true, st.st_dev, st.st_ino, st.st_size, ns(st.st_mtim), ns(st.st_ctim)};
}

}  // namespace

std::string TlsSource::Load() {
  FileStamp cert = Stamp(cert_file_), key = Stamp(key_file_);
  std::string error;
  auto pair = LoadTlsPair(cert_file_, key_file_, &error);
  if (!pair) return error;
  std::lock_guard lock(mu_);
  current_ = pair;
  seen_ = {cert, key};
  log::Info("tls certificate loaded",
            {{"server", server_}, {"subject", pair->subject}, {"not_after", pair->not_after}});
  return "";
}

void TlsSource::Poll() {
  FileStamp cert = Stamp(cert_file_), key = Stamp(key_file_);
  {
    std::lock_guard lock(mu_);
    if (seen_ == std::pair(cert, key)) return;
    seen_ = {cert, key};
  }
  std::string error;
  auto pair = LoadTlsPair(cert_file_, key_file_, &error);
  if (!pair) {
    log::Warn("tls files changed but are unusable; keeping the current certificate",
              {{"server", server_}, {"error", error}});
    telemetry::Current().TlsReload(server_, false);
    return;
  }
  {
    std::lock_guard lock(mu_);
    current_ = pair;
  }
  std::string count = std::to_string(++reloads_);
  telemetry::Current().TlsReload(server_, true);
  log::Info("tls certificate reloaded",
            {{"server", server_}, {"subject", pair->subject}, {"not_after", pair->not_after}, {"reloads", count}});
}

}  // namespace graydebug::http::detail
