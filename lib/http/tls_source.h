#pragma once
// The TLS side of http::Server: a certificate/key pair loaded and checked, and the source that
// swaps it when the files change (internal to lib/; docs/architecture.md, "The HTTP server").

#include <utility>  // must precede boost/asio with C++20 (Boost 1.74)

#include <openssl/x509.h>
#include <sys/types.h>

#include <atomic>
#include <boost/asio/ssl/context.hpp>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

namespace graydebug::http::detail {

// A parsed certificate chain and its key; immutable once built, shared by every connection
// context that uses it (OpenSSL reference-counts the objects).
struct TlsPair {
  X509* leaf = nullptr;
  STACK_OF(X509) * chain = nullptr;  // intermediates after the leaf, maybe empty
  EVP_PKEY* key = nullptr;
  std::string subject;
  std::string not_after;
  // The server context every new connection is made from (configured from the fields above).
  // Shared by the connections that use it; a rotation builds a new one.
  std::shared_ptr<boost::asio::ssl::context> context;

  TlsPair() = default;
  TlsPair(const TlsPair&) = delete;
  TlsPair& operator=(const TlsPair&) = delete;
  ~TlsPair() {
    X509_free(leaf);
    sk_X509_pop_free(chain, X509_free);
    EVP_PKEY_free(key);
  }
};

// Reads and checks a certificate/key pair. Returns nullptr and one line in *error when a file is
// unreadable, is not complete PEM, or the key does not belong to the certificate.
std::shared_ptr<const TlsPair> LoadTlsPair(const std::string& cert_file, const std::string& key_file,
                                           std::string* error);

// What stat says about a file; a change in any field means "read it again". stat follows
// symlinks, so Kubernetes' swap of the `..data` link shows up as a new inode.
struct FileStamp {
  bool exists = false;
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = 0;
  std::int64_t mtime_ns = 0;
  std::int64_t ctime_ns = 0;
  bool operator==(const FileStamp&) const = default;
};

// The serving pair, swapped in place when the files change into another valid pair.
class TlsSource {
 public:
  TlsSource(std::string cert_file, std::string key_file, std::string server)
      : cert_file_(std::move(cert_file)), key_file_(std::move(key_file)), server_(std::move(server)) {}

  // The first load: "" or why the pair is unusable.
  std::string Load();
  // Loads the files again when stat says they changed. An unusable new pair (half-written,
  // mismatched) is logged once and skipped; the current pair stays.
  void Poll();

  std::shared_ptr<const TlsPair> Current() const {
    std::lock_guard lock(mu_);
    return current_;
  }
  std::uint64_t reloads() const { return reloads_.load(); }

 private:
  const std::string cert_file_, key_file_, server_;
  mutable std::mutex mu_;
  std::shared_ptr<const TlsPair> current_;
  std::pair<FileStamp, FileStamp> seen_;  // the stamps last looked at, loaded or refused
  std::atomic<std::uint64_t> reloads_{0};
};

}  // namespace graydebug::http::detail
