#include "support/test_pki.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "support/process.h"

namespace graydebug::testing {

TestPki::TestPki() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "graydebug-pki-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) {
    error_ = "mkdtemp failed";
    return;
  }
  dir_ = tmpl;
  auto r = Run({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", dir_ + "/ca.key", "-out", dir_ + "/ca.crt", "-days", "2", "-subj", "/CN=graydebug-test-ca"});
  if (r.exit_code != 0) error_ = "openssl CA: " + r.err;
}

TestPki::~TestPki() {
  std::error_code ec;
  if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
}

std::string TestPki::ca_pem() const {
  std::ifstream in(ca_file());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool TestPki::Issue(const std::string& name, const std::string& cn) {
  std::string base = dir_ + "/" + name;
  std::ofstream(base + ".ext") << "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                               << "extendedKeyUsage=serverAuth\n";
  auto key = Run({"openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                  base + ".key", "-out", base + ".csr", "-subj", "/CN=" + cn});
  if (key.exit_code != 0) {
    error_ = "openssl req: " + key.err;
    return false;
  }
  auto sign = Run({"openssl", "x509", "-req", "-in", base + ".csr", "-CA", ca_file(), "-CAkey", dir_ + "/ca.key",
                   "-CAcreateserial", "-out", base + ".crt", "-days", "2", "-extfile", base + ".ext"});
  if (sign.exit_code != 0) {
    error_ = "openssl x509: " + sign.err;
    return false;
  }
  return true;
}

}  // namespace graydebug::testing
