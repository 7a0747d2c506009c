// libFuzzer target: the kubeconfig parser (kube::ParseKubeconfig) and its base64 decoder. The
// first input byte picks the options (context, allow-insecure); the rest is the YAML. Relative
// file references resolve under a directory that does not exist, so nothing is read from disk.
// Run by `make fuzz`.
#include <cstddef>
#include <cstdint>
#include <string>

#include "graydebug/kube/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace graydebug::kube;
  if (size == 0) return 0;
  const uint8_t selector = data[0];
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::string context = (selector & 1) ? "fuzz" : "";
  ConfigResult r = ParseKubeconfig(text, "/nonexistent-graydebug-fuzz/kubeconfig", context, (selector & 2) != 0);
  // A result is either a usable config or one error, never both or neither.
  if (r.ok != r.error.empty()) __builtin_trap();
  if (r.ok) {
    if (r.config.server.rfind("https://", 0) != 0 && r.config.server.rfind("http://", 0) != 0) __builtin_trap();
    if (r.config.insecure_skip_tls_verify && !(selector & 2)) __builtin_trap();
    if (r.config.namespace_.empty()) __builtin_trap();
  }
  std::string decoded;
  if (DecodeBase64(text, &decoded) && decoded.size() > text.size()) __builtin_trap();
  return 0;
}
