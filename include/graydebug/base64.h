#pragma once

#include <string>
#include <string_view>

namespace graydebug {

// Standard base64 with padding (RFC 4648 §4), as Kubernetes' []byte fields expect. Decoding lives
// with the kubeconfig reader (kube::DecodeBase64).
std::string EncodeBase64(std::string_view in);
// The same, appended to *out.
void AppendBase64(std::string_view in, std::string* out);

}  // namespace graydebug
