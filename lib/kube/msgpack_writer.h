#pragma once
// MessagePack written the way nlohmann::json::to_msgpack writes it (the smallest form of every
// header and number), so that bytes packed here and objects packed by nlohmann compare equal.
// Internal to graydebug_kube: the informer's page decoders (packed_page.cpp, proto_list.cpp).

#include <cstdint>
#include <string_view>
#include <vector>

namespace graydebug::kube {

class MsgpackWriter {
 public:
  explicit MsgpackWriter(std::vector<std::uint8_t>* out) : out_(*out) {}

  std::vector<std::uint8_t>& out() { return out_; }
  void Byte(std::uint8_t b) { out_.push_back(b); }
  void Big(std::uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; --i) out_.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  }
  void Nil() { Byte(0xc0); }
  void Bool(bool b) { Byte(b ? 0xc3 : 0xc2); }
  void MapHeader(std::size_t n) { Header(n, 0x80, 0xde, 0xdf); }
  void ArrayHeader(std::size_t n) { Header(n, 0x90, 0xdc, 0xdd); }
  // The size of the header MapHeader(n) writes.
  static std::size_t HeaderSize(std::size_t n) { return n < 16 ? 1 : n <= 0xFFFF ? 3 : 5; }
  // MapHeader(n)'s bytes at `at` (HeaderSize(n) of them), for a map whose size is known after its
  // members were written.
  static void EncodeMapHeader(std::size_t n, std::uint8_t* at) { EncodeHeader(n, 0x80, 0xde, 0xdf, at); }
  // fix (with its mask) for < 16 members, else the 16- or 32-bit form.
  void Header(std::size_t n, std::uint8_t fix, std::uint8_t b16, std::uint8_t b32) {
    std::uint8_t bytes[5];
    EncodeHeader(n, fix, b16, b32, bytes);
    out_.insert(out_.end(), bytes, bytes + HeaderSize(n));
  }
  // A string's header; its n bytes follow.
  void StringHeader(std::size_t n) {
    if (n < 32) {
      Byte(static_cast<std::uint8_t>(0xa0 | n));
    } else if (n <= 0xFF) {
      Byte(0xd9);
      Big(n, 1);
    } else if (n <= 0xFFFF) {
      Byte(0xda);
      Big(n, 2);
    } else {
      Byte(0xdb);
      Big(n, 4);
    }
  }
  void String(std::string_view s) {
    StringHeader(s.size());
    out_.insert(out_.end(), s.begin(), s.end());
  }
  void Integer(std::int64_t v) {
    if (v >= 0) {
      Unsigned(static_cast<std::uint64_t>(v));
    } else {
      Signed(v);
    }
  }
  void Unsigned(std::uint64_t v) {
    if (v < 128) {
      Byte(static_cast<std::uint8_t>(v));
    } else if (v <= 0xFF) {
      Byte(0xcc);
      Big(v, 1);
    } else if (v <= 0xFFFF) {
      Byte(0xcd);
      Big(v, 2);
    } else if (v <= 0xFFFFFFFFull) {
      Byte(0xce);
      Big(v, 4);
    } else {
      Byte(0xcf);
      Big(v, 8);
    }
  }
  void Signed(std::int64_t v) {  // v < 0
    const auto bits = static_cast<std::uint64_t>(v);
    if (v >= -32) {
      Byte(static_cast<std::uint8_t>(bits));
    } else if (v >= -128) {
      Byte(0xd0);
      Big(bits, 1);
    } else if (v >= -32768) {
      Byte(0xd1);
      Big(bits, 2);
    } else if (v >= INT32_MIN) {
      Byte(0xd2);
      Big(bits, 4);
    } else {
      Byte(0xd3);
      Big(bits, 8);
    }
  }

 private:
  static void EncodeHeader(std::size_t n, std::uint8_t fix, std::uint8_t b16, std::uint8_t b32, std::uint8_t* at) {
    const std::size_t size = HeaderSize(n);
    if (size == 1) {
      at[0] = static_cast<std::uint8_t>(fix | n);
      return;
    }
    at[0] = size == 3 ? b16 : b32;
    for (std::size_t i = 1; i < size; ++i) at[i] = static_cast<std::uint8_t>(n >> (8 * (size - 1 - i)));
  }

  std::vector<std::uint8_t>& out_;
};

}  // namespace graydebug::kube
