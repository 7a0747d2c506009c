#pragma once

#include <string>

namespace graydebug::testing {

// A throwaway CA and ECDSA P-256 serving certificates (IP SAN 127.0.0.1, DNS localhost) made with
// the openssl CLI in a temporary directory, for servers under test.
class TestPki {
 public:
  TestPki();  // creates the directory and the CA; ok() tells whether it worked
  ~TestPki();
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  const std::string& dir() const { return dir_; }
  std::string ca_file() const { return dir_ + "/ca.crt"; }
  std::string ca_pem() const;
  // Issues a serving certificate with common name `cn` into <dir>/<name>.crt and .key; false on
  // failure (then error() says why).
  bool Issue(const std::string& name, const std::string& cn);

 private:
  std::string dir_, error_;
};

}  // namespace graydebug::testing
