#include "graydebug/base64.h"

#include <array>
#include <cstring>

namespace graydebug {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// Two output characters for every 12-bit value: 3 input bytes take 2 lookups instead of 4. The
// webhook encodes every patch (2-3 KB for a gray pod), where the 4-lookup loop was the largest
// symbol of its profile (docs/decisions.md).
constexpr std::array<std::array<char, 2>, 4096> MakePairs() {
  std::array<std::array<char, 2>, 4096> t{};
  for (unsigned v = 0; v < 4096; ++v) t[v] = {kAlphabet[v >> 6], kAlphabet[v & 63]};
  return t;
}
constexpr auto kPairs = MakePairs();

}  // namespace

void AppendBase64(std::string_view in, std::string* out) {
  const std::size_t start = out->size();
  out->resize(start + (in.size() + 2) / 3 * 4);
  char* o = out->data() + start;
  const auto* p = reinterpret_cast<const unsigned char*>(in.data());
  const std::size_t n = in.size();
  std::size_t i = 0;
  for (; i + 3 <= n; i += 3, o += 4) {
    const unsigned v = (unsigned{p[i]} << 16) | (unsigned{p[i + 1]} << 8) | p[i + 2];
    std::memcpy(o, kPairs[v >> 12].data(), 2);
    std::memcpy(o + 2, kPairs[v & 4095].data(), 2);
  }
  if (std::size_t rest = n - i; rest > 0) {
    unsigned v = unsigned{p[i]} << 16;
    if (rest == 2) v |= unsigned{p[i + 1]} << 8;
    *o++ = kAlphabet[(v >> 18) & 63];
    *o++ = kAlphabet[(v >> 12) & 63];
    *o++ = rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
    *o++ = '=';
  }
}

std::string EncodeBase64(std::string_view in) {
  std::string out;
  AppendBase64(in, &out);
  return out;
}

}  // namespace graydebug
