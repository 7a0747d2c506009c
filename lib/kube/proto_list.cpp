// A list page in Kubernetes' protobuf encoding, decoded straight into the MessagePack of its JSON
// form (issue #18): what `kubectl get -o json` would print for each item, member for member and in
// the same order, written from the wire with the tables hack/protoschema generated from the Go
// types. The rules are encoding/json's (omitempty, omitzero, nil slices and maps as null, map keys
// sorted, invalid UTF-8 replaced, []byte as base64) and those of the types with their own
// encodings (Time, MicroTime, Quantity, IntOrString). Anything the tables do not know (a field of a
// newer API server, a malformed message) is an error: the informer then lists as JSON, where
// nothing is lost. docs/decisions.md, "The informer lists pods as protobuf".

#include <simdjson.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>

#include "graydebug/base64.h"
#include "graydebug/kube/time.h"
#include "msgpack_writer.h"
#include "packed_page.h"
#include "proto_schema.h"

namespace graydebug::kube {
namespace {

using proto::Field;
using proto::Kind;
using proto::kInline;
using proto::kOmitEmpty;
using proto::kOmitZero;
using proto::kPointer;
using proto::kRepeated;
using proto::Message;

#include "proto_schema_gen.inc"

constexpr int kMessageCount = static_cast<int>(sizeof kMessages / sizeof kMessages[0]);
constexpr int kMaxDepth = 48;  // Pod nests 9 deep; a deeper message is hostile
constexpr std::string_view kMagic("k8s\0", 4);

// Field number -> index in the message's table, -1 for a number it does not have.
const std::vector<std::vector<std::int16_t>>& ByNumber() {
  static const std::vector<std::vector<std::int16_t>> table = [] {
    std::vector<std::vector<std::int16_t>> t(kMessageCount);
    for (int m = 0; m < kMessageCount; ++m) {
      std::uint32_t max = 0;
      for (int i = 0; i < kMessages[m].count; ++i) max = std::max(max, kMessages[m].fields[i].number);
      t[m].assign(max + 1, -1);
      for (int i = 0; i < kMessages[m].count; ++i) {
        if (kMessages[m].fields[i].number > 0) t[m][kMessages[m].fields[i].number] = static_cast<std::int16_t>(i);
      }
    }
    return t;
  }();
  return table;
}

struct Span {
  const std::uint8_t* p = nullptr;
  std::size_t n = 0;
  std::string_view view() const { return {reinterpret_cast<const char*>(p), n}; }
};

// One field of a message as read from the wire.
struct Rec {
  std::uint16_t field;
  std::uint8_t wire;
  std::uint64_t v;  // a varint's or a fixed field's value
  Span bytes;       // a length-delimited field's bytes
};

bool ReadVarint(const std::uint8_t*& p, const std::uint8_t* end, std::uint64_t* v) {
  if (p != end && *p < 0x80) {  // most keys and lengths
    *v = *p++;
    return true;
  }
  std::uint64_t x = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    if (p == end) return false;
    const std::uint8_t b = *p++;
    if (shift == 63 && b > 1) return false;
    x |= static_cast<std::uint64_t>(b & 0x7f) << shift;
    if (b < 0x80) {
      *v = x;
      return true;
    }
  }
  return false;
}

// One field as read from the wire: its number and wire type, and a varint's or fixed field's value
// or a length-delimited field's bytes.
struct Wire {
  std::uint32_t number = 0;
  std::uint8_t wire = 0;
  std::uint64_t v = 0;
  Span bytes;
};

// The protobuf fields of one message, in wire order.
class WireReader {
 public:
  explicit WireReader(Span s) : p_(s.p), end_(s.p + s.n) {}
  // False at the end; on a malformed field also false, with error() set.
  bool Next(Wire* f) {
    if (p_ == end_) return false;
    std::uint64_t key;
    if (!ReadVarint(p_, end_, &key) || key >> 3 == 0 || key >> 3 > 0x1FFFFFFF) return Fail("a bad field key");
    f->number = static_cast<std::uint32_t>(key >> 3);
    f->wire = static_cast<std::uint8_t>(key & 7);
    switch (f->wire) {
      case 0:
        if (!ReadVarint(p_, end_, &f->v)) return Fail("a truncated varint");
        return true;
      case 1:
      case 5: {
        const std::size_t n = f->wire == 1 ? 8 : 4;
        if (static_cast<std::size_t>(end_ - p_) < n) return Fail("a truncated fixed-size field");
        std::uint64_t x = 0;
        for (std::size_t i = 0; i < n; ++i) x |= static_cast<std::uint64_t>(p_[i]) << (8 * i);
        p_ += n;
        f->v = x;
        return true;
      }
      case 2: {
        std::uint64_t n;
        if (!ReadVarint(p_, end_, &n) || n > static_cast<std::uint64_t>(end_ - p_)) {
          return Fail("a length beyond the message");
        }
        f->bytes = Span{p_, static_cast<std::size_t>(n)};
        p_ += n;
        return true;
      }
      default: return Fail("wire type " + std::to_string(f->wire) + " (groups are not used by Kubernetes)");
    }
  }
  const std::string& error() const { return error_; }

 private:
  bool Fail(std::string why) {
    error_ = std::move(why);
    p_ = end_;
    return false;
  }
  const std::uint8_t* p_;
  const std::uint8_t* end_;
  std::string error_;
};

bool IsVarintKind(Kind k) {
  return k == Kind::kBool || k == Kind::kInt32 || k == Kind::kInt64 || k == Kind::kUint32 || k == Kind::kUint64;
}

// Go's utf8.DecodeRune: the length of a valid sequence at p, 0 when it is not one.
std::size_t ValidRuneAt(const std::uint8_t* p, std::size_t left) {
  const std::uint8_t b = p[0];
  if (b < 0x80) return 1;
  auto cont = [&](std::size_t i, std::uint8_t lo = 0x80, std::uint8_t hi = 0xBF) {
    return i < left && p[i] >= lo && p[i] <= hi;
  };
  if (b >= 0xC2 && b <= 0xDF) return cont(1) ? 2 : 0;
  if (b >= 0xE0 && b <= 0xEF) {
    const std::uint8_t lo = b == 0xE0 ? 0xA0 : 0x80, hi = b == 0xED ? 0x9F : 0xBF;
    return cont(1, lo, hi) && cont(2) ? 3 : 0;
  }
  if (b >= 0xF0 && b <= 0xF4) {
    const std::uint8_t lo = b == 0xF0 ? 0x90 : 0x80, hi = b == 0xF4 ? 0x8F : 0xBF;
    return cont(1, lo, hi) && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

// Go's zero time.Time is 0001-01-01T00:00:00Z.
constexpr std::int64_t kZeroTimeUnix = -62135596800;

class ProtoWriter : public MsgpackWriter {
 public:
  ProtoWriter(std::vector<std::uint8_t>* out, std::vector<std::vector<Rec>>* recs,
              std::vector<std::vector<std::pair<std::string_view, Rec>>>* entries)
      : MsgpackWriter(out), recs_(*recs), entries_(*entries) {}

  enum class Meta { kNone, kItem, kItemMetadata };

  // The message `m` in `s` as a map. kItem: a list item, whose metadata is written without
  // managedFields.
  std::string Object(int m, Span s, int depth, Meta meta = Meta::kNone) {
    const std::size_t at = out().size();
    for (int i = 0; i < 5; ++i) Byte(0);  // the largest map header, shrunk below
    std::size_t count = 0;
    if (std::string why = Members(m, s, depth, meta, &count); !why.empty()) return why;
    std::vector<std::uint8_t>& o = out();
    const std::size_t hs = HeaderSize(count);
    std::memmove(o.data() + at + hs, o.data() + at + 5, o.size() - at - 5);
    o.resize(o.size() - (5 - hs));
    EncodeMapHeader(count, o.data() + at);
    return {};
  }

  // A string as encoding/json writes it: invalid UTF-8 becomes U+FFFD, byte by byte.
  void GoString(std::string_view s) {
    bool ascii = true;
    for (char c : s) ascii &= static_cast<unsigned char>(c) < 0x80;
    if (ascii || simdjson::validate_utf8(s.data(), s.size())) {
      String(s);
      return;
    }
    std::string fixed;
    const auto* p = reinterpret_cast<const std::uint8_t*>(s.data());
    for (std::size_t i = 0; i < s.size();) {
      const std::size_t n = ValidRuneAt(p + i, s.size() - i);
      if (n == 0) {
        fixed += "\xEF\xBF\xBD";
        i += 1;
      } else {
        fixed.append(s.data() + i, n);
        i += n;
      }
    }
    String(fixed);
  }

 private:
  std::string Members(int m, Span s, int depth, Meta meta, std::size_t* count) {
    if (depth >= kMaxDepth) return "messages nested deeper than " + std::to_string(kMaxDepth);
    if (m < 0 || m >= kMessageCount) return "no message " + std::to_string(m);
    const Message& msg = kMessages[m];
    const std::vector<std::int16_t>& by_number = ByNumber()[m];
    std::vector<Rec>& recs = recs_[depth];
    recs.clear();
    WireReader r(s);
    Wire field;
    auto& [number, wire, v, bytes] = field;
    while (r.Next(&field)) {
      const int idx = number < by_number.size() ? by_number[number] : -1;
      if (idx < 0) {
        return "field " + std::to_string(number) + " of " + msg.name + " is not in graydebug's tables";
      }
      const Field& f = msg.fields[idx];
      const bool varint = IsVarintKind(f.kind);
      if (varint ? !(wire == 0 || (wire == 2 && (f.flags & proto::kRepeated))) : wire != 2) {
        return std::string(msg.name) + "." + std::string(f.json) + " has wire type " + std::to_string(wire);
      }
      recs.push_back(Rec{static_cast<std::uint16_t>(idx), wire, v, bytes});
    }
    if (!r.error().empty()) return std::string(msg.name) + ": " + r.error();
    // JSON order is the table's; the wire's is by field number. Stable, so the last of a repeated
    // scalar stays last (protobuf's "last one wins").
    for (std::size_t i = 1; i < recs.size(); ++i) {
      for (std::size_t j = i; j > 0 && recs[j - 1].field > recs[j].field; --j) std::swap(recs[j - 1], recs[j]);
    }
    std::size_t at = 0;
    for (int i = 0; i < msg.count; ++i) {
      const std::size_t a = at;
      while (at < recs.size() && recs[at].field == i) ++at;
      const Field& f = msg.fields[i];
      if (meta == Meta::kItemMetadata && f.json == "managedFields") continue;
      // Members() of a nested message reuses recs_[depth + 1..]; this level's stay put.
      if (std::string why = FieldOf(f, &recs_[depth], a, at, depth, meta, count); !why.empty()) return why;
    }
    return {};
  }

  std::string FieldOf(const Field& f, std::vector<Rec>* level, std::size_t a, std::size_t b, int depth, Meta meta,
                      std::size_t* count) {
    const bool present = b > a;
    const bool omitempty = f.flags & proto::kOmitEmpty;
    auto key = [&] {
      String(f.json);
      ++*count;
    };
    if (f.flags & proto::kRepeated) {
      std::size_t n = 0;
      for (std::size_t i = a; i < b; ++i) {
        const Rec& r = (*level)[i];
        if (r.wire == 2 && IsVarintKind(f.kind)) {
          const std::uint8_t* p = r.bytes.p;
          const std::uint8_t* end = p + r.bytes.n;
          std::uint64_t x;
          while (p < end) {
            if (!ReadVarint(p, end, &x)) return std::string(f.json) + ": a truncated packed varint";
            ++n;
          }
        } else {
          ++n;
        }
      }
      if (n == 0) {
        if (!omitempty) {
          key();
          Nil();
        }
        return {};
      }
      key();
      ArrayHeader(n);
      for (std::size_t i = a; i < b; ++i) {
        const Rec r = (*level)[i];
        if (r.wire == 2 && IsVarintKind(f.kind)) {
          const std::uint8_t* p = r.bytes.p;
          const std::uint8_t* end = p + r.bytes.n;
          while (p < end) {
            Rec one{r.field, 0, 0, {}};
            ReadVarint(p, end, &one.v);
            if (std::string why = Element(f.kind, f.message, one, depth); !why.empty()) return why;
          }
        } else if (std::string why = Element(f.kind, f.message, r, depth); !why.empty()) {
          return why;
        }
      }
      return {};
    }
    if (f.kind == Kind::kMap) return MapOf(f, level, a, b, depth, count);
    const Rec last = present ? (*level)[b - 1] : Rec{0, 0, 0, {}};
    if (f.flags & proto::kPointer) {
      if (!present) {
        if (!omitempty) {
          key();
          Nil();
        }
        return {};
      }
      key();
      return Element(f.kind, f.message, last, depth);
    }
    switch (f.kind) {
      case Kind::kMessage:
        if (f.flags & proto::kInline) return Members(f.message, last.bytes, depth + 1, Meta::kNone, count);
        key();  // encoding/json never omits a struct for omitempty
        return Object(f.message, last.bytes, depth + 1,
                      meta == Meta::kItem && f.json == "metadata" ? Meta::kItemMetadata : Meta::kNone);
      case Kind::kTime:
      case Kind::kMicroTime: {
        if ((f.flags & proto::kOmitZero) && IsZeroTime(f.kind, last)) return {};
        key();
        return Element(f.kind, f.message, last, depth);
      }
      case Kind::kQuantity:
      case Kind::kIntOrString:
      case Kind::kDuration:
      case Kind::kRawJson:
        if ((f.flags & proto::kOmitZero) && !present) return {};
        key();
        return Element(f.kind, f.message, last, depth);
      case Kind::kBytes:
        if (omitempty && last.bytes.n == 0) return {};
        key();
        if (!present) {
          Nil();  // a nil []byte
          return {};
        }
        return Element(f.kind, f.message, last, depth);
      default:
        if (omitempty && (f.kind == Kind::kString ? last.bytes.n == 0 : Truncated(f.kind, last.v) == 0)) return {};
        key();
        return Element(f.kind, f.message, last, depth);
    }
  }

  // A map's entries sorted by key (encoding/json sorts them), the last of a repeated key winning.
  std::string MapOf(const Field& f, std::vector<Rec>* level, std::size_t a, std::size_t b, int depth,
                    std::size_t* count) {
    auto& entries = entries_[depth];
    entries.clear();
    for (std::size_t i = a; i < b; ++i) {
      WireReader r((*level)[i].bytes);
      Wire field;
      auto& [number, wire, v, bytes] = field;
      std::string_view k;
      Rec value{0, 0, 0, {}};
      while (r.Next(&field)) {
        if (number == 1 && wire == 2) {
          k = bytes.view();
        } else if (number == 2) {
          if ((wire == 0) != IsVarintKind(f.value_kind))
            return std::string(f.json) + ": a map value of wire type " + std::to_string(wire);
          value = Rec{0, wire, v, bytes};
        } else {
          return std::string(f.json) + ": a map entry with field " + std::to_string(number);
        }
      }
      if (!r.error().empty()) return std::string(f.json) + ": " + r.error();
      entries.emplace_back(k, value);
    }
    std::stable_sort(entries.begin(), entries.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
    std::size_t n = 0;
    for (std::size_t i = 0; i < entries.size(); ++i) {
      if (i + 1 < entries.size() && entries[i + 1].first == entries[i].first) continue;
      entries[n++] = entries[i];
    }
    entries.resize(n);
    if (n == 0) {
      if (!(f.flags & proto::kOmitEmpty)) {
        String(f.json);
        ++*count;
        Nil();
      }
      return {};
    }
    String(f.json);
    ++*count;
    MapHeader(n);
    // Element() below may reuse entries_[depth + 1..], never this level's.
    for (std::size_t i = 0; i < n; ++i) {
      const auto [k, value] = entries_[depth][i];
      GoString(k);
      if (std::string why = Element(f.value_kind, f.value_message, value, depth); !why.empty()) return why;
    }
    return {};
  }

  static std::int64_t Truncated(Kind k, std::uint64_t v) {
    switch (k) {
      case Kind::kInt32: return static_cast<std::int32_t>(static_cast<std::uint32_t>(v));
      case Kind::kUint32: return static_cast<std::uint32_t>(v);
      case Kind::kBool: return v != 0;
      default: return static_cast<std::int64_t>(v);
    }
  }

  // A Timestamp's seconds and nanos.
  static bool Timestamp(Span s, std::int64_t* seconds, std::int64_t* nanos, std::string* error) {
    *seconds = 0;
    *nanos = 0;
    WireReader r(s);
    Wire field;
    auto& [number, wire, v, bytes] = field;
    while (r.Next(&field)) {
      if (wire != 0 || (number != 1 && number != 2)) {
        *error = "a Timestamp with field " + std::to_string(number);
        return false;
      }
      if (number == 1) *seconds = static_cast<std::int64_t>(v);
      if (number == 2) *nanos = static_cast<std::int32_t>(static_cast<std::uint32_t>(v));
    }
    *error = r.error();
    return error->empty();
  }

  // A Time or MicroTime as Go holds it after Unmarshal: *zero for Go's zero time (JSON null).
  static std::string TimeOf(Kind k, const Rec& r, bool* zero, Clock::Wall* t) {
    *zero = true;
    if (r.bytes.n == 0) return {};
    std::int64_t seconds, nanos;
    std::string error;
    if (!Timestamp(r.bytes, &seconds, &nanos, &error)) return error;
    // metav1.Time keeps seconds only; MicroTime truncates to microseconds.
    nanos = k == Kind::kTime ? 0 : nanos / 1000 * 1000;
    // time.Unix normalizes nanoseconds outside [0, 1e9) into the seconds.
    seconds += nanos / 1'000'000'000;
    nanos %= 1'000'000'000;
    if (nanos < 0) {
      nanos += 1'000'000'000;
      seconds -= 1;
    }
    if (seconds == kZeroTimeUnix && nanos == 0) return {};
    // Clock::Wall (nanoseconds) spans 1678-2262; the API server takes only years 0000-9999 as JSON,
    // so a time outside is not one a JSON client wrote: decode the list as JSON instead.
    constexpr std::int64_t kMaxSeconds = 9'000'000'000;
    if (seconds > kMaxSeconds || seconds < -kMaxSeconds) return "a time of " + std::to_string(seconds) + " s";
    *zero = false;
    *t = Clock::Wall(std::chrono::duration_cast<Clock::Wall::duration>(std::chrono::seconds(seconds) +
                                                                       std::chrono::nanoseconds(nanos)));
    return {};
  }

  static bool IsZeroTime(Kind k, const Rec& r) {
    bool zero;
    Clock::Wall t;
    return TimeOf(k, r, &zero, &t).empty() && zero;
  }

  // One value of kind k (a field's, an array's element or a map's value).
  std::string Element(Kind k, int message, const Rec& r, int depth) {
    switch (k) {
      case Kind::kString: GoString(r.bytes.view()); return {};
      case Kind::kBytes: Base64(r.bytes); return {};
      case Kind::kBool: Bool(r.v != 0); return {};
      case Kind::kInt32:
      case Kind::kInt64: Integer(Truncated(k, r.v)); return {};
      case Kind::kUint32: Unsigned(static_cast<std::uint32_t>(r.v)); return {};
      case Kind::kUint64: Unsigned(r.v); return {};
      case Kind::kMessage: return Object(message, r.bytes, depth + 1);
      case Kind::kTime:
      case Kind::kMicroTime: {
        bool zero;
        Clock::Wall t;
        if (std::string why = TimeOf(k, r, &zero, &t); !why.empty()) return why;
        if (zero) {
          Nil();
        } else {
          String(FormatTime(t, k == Kind::kMicroTime ? 6 : 0));
        }
        return {};
      }
      case Kind::kQuantity: {
        std::string_view q = "0";  // a zero Quantity's String()
        if (std::string why = OnlyString(r.bytes, 1, &q); !why.empty()) return "a Quantity: " + why;
        String(q);
        return {};
      }
      case Kind::kIntOrString: {
        std::uint64_t type = 0, int_val = 0;
        std::string_view str_val;
        WireReader w(r.bytes);
        Wire field;
        auto& [number, wire, v, bytes] = field;
        while (w.Next(&field)) {
          if (number == 1 && wire == 0) {
            type = v;
          } else if (number == 2 && wire == 0) {
            int_val = v;
          } else if (number == 3 && wire == 2) {
            str_val = bytes.view();
          } else {
            return "an IntOrString with field " + std::to_string(number);
          }
        }
        if (!w.error().empty()) return "an IntOrString: " + w.error();
        if (type == 1) {
          GoString(str_val);
        } else if (type == 0) {
          Integer(static_cast<std::int32_t>(static_cast<std::uint32_t>(int_val)));
        } else {
          return "an IntOrString of type " + std::to_string(type);
        }
        return {};
      }
      case Kind::kDuration: return "a metav1.Duration (not decoded here)";
      case Kind::kRawJson: return "a raw JSON field (not decoded here)";
      case Kind::kMap: return "a map inside a list";
    }
    return "an unknown kind";
  }

  // A message with one string field `number`; *s keeps its default when the field is absent.
  static std::string OnlyString(Span s, std::uint32_t want, std::string_view* out) {
    WireReader r(s);
    Wire field;
    auto& [number, wire, v, bytes] = field;
    while (r.Next(&field)) {
      if (number != want || wire != 2) return "field " + std::to_string(number);
      *out = bytes.view();
    }
    return r.error();
  }

  void Base64(Span s) {
    text_.clear();
    AppendBase64(s.view(), &text_);
    String(text_);
  }

  std::vector<std::vector<Rec>>& recs_;
  std::vector<std::vector<std::pair<std::string_view, Rec>>>& entries_;
  std::string text_;  // base64 of a []byte
};

// The envelope's typeMeta: {1: apiVersion, 2: kind}.
std::string TypeMeta(Span s, std::string_view* api_version, std::string_view* kind) {
  WireReader t(s);
  for (Wire m; t.Next(&m);) {
    if (m.wire == 2 && m.number == 1) *api_version = m.bytes.view();
    if (m.wire == 2 && m.number == 2) *kind = m.bytes.view();
  }
  return t.error().empty() ? std::string() : "the envelope's typeMeta: " + t.error();
}

// runtime.Unknown after the magic: {1: typeMeta, 2: raw, 3: contentEncoding, 4: contentType}.
std::string Envelope(std::string_view body, std::string_view* api_version, std::string_view* kind, Span* raw) {
  if (!IsProtobuf(body)) return "not a Kubernetes protobuf message";
  const Span all{reinterpret_cast<const std::uint8_t*>(body.data()) + kMagic.size(), body.size() - kMagic.size()};
  WireReader r(all);
  Wire field;
  auto& [number, wire, v, bytes] = field;
  while (r.Next(&field)) {
    if (wire != 2) continue;
    if (number == 1) {
      if (std::string why = TypeMeta(bytes, api_version, kind); !why.empty()) return why;
    } else if (number == 2) {
      *raw = bytes;
    } else if (number == 3 && bytes.n > 0) {
      return "a content encoding (" + std::string(bytes.view().substr(0, 40)) + ")";
    }
  }
  if (!r.error().empty()) return "the envelope: " + r.error();
  return {};
}

int RootFor(std::string_view kind) {
  if (kind == "PodList") return kPodListMessage;
  if (kind == "Status") return kStatusMessage;
  return -1;
}

// The name, namespace and resourceVersion of an item's ObjectMeta (its field 1).
void ItemKey(Span item, std::string_view* ns, std::string_view* name, std::string_view* rv) {
  WireReader r(item);
  Wire field;
  auto& [number, wire, v, bytes] = field;
  Span md;
  while (r.Next(&field)) {
    if (number == 1 && wire == 2) md = bytes;
  }
  WireReader m(md);
  while (m.Next(&field)) {
    if (wire != 2) continue;
    if (number == 1) *name = bytes.view();
    if (number == 3) *ns = bytes.view();
    if (number == 6) *rv = bytes.view();
  }
}

struct Scratch {
  std::vector<std::vector<Rec>> recs = std::vector<std::vector<Rec>>(kMaxDepth + 1);
  std::vector<std::vector<std::pair<std::string_view, Rec>>> entries =
      std::vector<std::vector<std::pair<std::string_view, Rec>>>(kMaxDepth + 1);
};

}  // namespace

bool IsProtobuf(std::string_view body) {
  return body.substr(0, kMagic.size()) == kMagic;
}

bool ProtobufListKnown(std::string_view group, std::string_view version, std::string_view resource) {
  return group.empty() && version == "v1" && resource == "pods";
}

namespace {

// A varint at p: 1 when read (its length in *n), 0 when more bytes are needed, -1 when malformed.
int PeekVarint(const std::uint8_t* p, const std::uint8_t* end, std::uint64_t* v, std::size_t* n) {
  const std::uint8_t* q = p;
  if (!ReadVarint(q, end, v)) return end - p >= 10 ? -1 : 0;
  *n = static_cast<std::size_t>(q - p);
  return 1;
}

// A length-delimited field's header at p: 1 when read (number, length, header size), 0 when more
// bytes are needed, -1 (with *error) when malformed.
int PeekField(const std::uint8_t* p, const std::uint8_t* end, std::uint32_t* number, std::uint64_t* len,
              std::size_t* header, std::string* error) {
  std::uint64_t key;
  std::size_t k, l;
  int got = PeekVarint(p, end, &key, &k);
  if (got <= 0) {
    if (got < 0) *error = "a bad field key";
    return got;
  }
  if ((key & 7) != 2 || key >> 3 == 0 || key >> 3 > 0x1FFFFFFF) {
    *error = "field " + std::to_string(key >> 3) + " of wire type " + std::to_string(key & 7);
    return -1;
  }
  got = PeekVarint(p + k, end, len, &l);
  if (got <= 0) {
    if (got < 0) *error = "a bad length";
    return got;
  }
  *number = static_cast<std::uint32_t>(key >> 3);
  *header = k + l;
  return 1;
}

constexpr std::uint64_t kMaxItemBytes = 64u << 20;  // one object of a list

}  // namespace

struct ProtobufListDecoder::Impl {
  PagePacker::Each each;
  enum class Stage { kMagic, kEnvelope, kList, kAfter, kFailed } stage = Stage::kMagic;
  std::string buf;  // bytes not yet decoded start at pos
  std::size_t pos = 0;
  std::uint64_t list_left = 0;  // bytes of the list (the envelope's raw) not yet decoded
  std::string api_version, kind, continue_token, resource_version;
  const Message* list = nullptr;
  const Field* items = nullptr;
  const Field* metadata = nullptr;
  std::vector<std::uint8_t> scratch;
  Scratch s;

  std::string Fail(std::string why) {
    stage = Stage::kFailed;
    return why;
  }

  // The list's message, once the envelope's typeMeta has been read.
  std::string StartList() {
    const int root = RootFor(kind);
    if (root < 0 || std::string_view(kMessages[root].name).substr(0, 3) != "v1." || api_version != "v1") {
      return "a " + api_version.substr(0, 40) + " " + kind.substr(0, 40) + ", not a list graydebug has tables for";
    }
    list = &kMessages[root];
    for (int i = 0; i < list->count; ++i) {
      if (list->fields[i].json == "items") items = &list->fields[i];
      if (list->fields[i].json == "metadata") metadata = &list->fields[i];
    }
    if (items == nullptr || metadata == nullptr) return std::string(list->name) + " is not a list";
    return {};
  }

  std::string ListField(std::uint32_t number, Span bytes) {
    if (number == metadata->number) {
      WireReader m(bytes);
      for (Wire f; m.Next(&f);) {
        if (f.wire == 2 && f.number == 2) resource_version = std::string(f.bytes.view());
        if (f.wire == 2 && f.number == 3) continue_token = std::string(f.bytes.view());
      }
      if (!m.error().empty()) return "the list's metadata: " + m.error();
      return {};
    }
    if (number != items->number) {
      return "field " + std::to_string(number) + " of " + list->name + " is not in graydebug's tables";
    }
    std::string_view ns, name, rv;
    ItemKey(bytes, &ns, &name, &rv);
    scratch.clear();
    ProtoWriter w(&scratch, &s.recs, &s.entries);
    if (std::string why = w.Object(items->message, bytes, 0, ProtoWriter::Meta::kItem); !why.empty()) return why;
    // Written into a scratch buffer kept across items, then copied out at its exact size.
    if (!name.empty()) each(ns, name, std::string(rv), std::vector<std::uint8_t>(scratch.begin(), scratch.end()));
    return {};
  }

  // Decodes every whole field buffered; keeps a partial one for the next bytes.
  std::string Drain() {
    while (true) {
      const auto* base = reinterpret_cast<const std::uint8_t*>(buf.data());
      const std::uint8_t* p = base + pos;
      const std::uint8_t* end = base + buf.size();
      switch (stage) {
        case Stage::kFailed: return "the list could not be decoded";
        case Stage::kMagic:
          if (end - p < static_cast<std::ptrdiff_t>(kMagic.size())) return {};
          if (!IsProtobuf(std::string_view(buf).substr(pos))) return Fail("not a Kubernetes protobuf message");
          pos += kMagic.size();
          stage = Stage::kEnvelope;
          continue;
        case Stage::kEnvelope:
        case Stage::kAfter: {
          if (p == end) return {};
          std::uint32_t number;
          std::uint64_t len;
          std::size_t header;
          std::string error;
          const int got = PeekField(p, end, &number, &len, &header, &error);
          if (got < 0) return Fail("the envelope: " + error);
          if (got == 0) return {};
          if (stage == Stage::kEnvelope && number == 2) {  // raw: the list itself, decoded as it comes
            if (kind.empty()) return Fail("the envelope has no typeMeta before its object");
            if (std::string why = StartList(); !why.empty()) return Fail(why);
            pos += header;
            list_left = len;
            stage = Stage::kList;
            continue;
          }
          if (len > kMaxItemBytes) return Fail("an envelope field of " + std::to_string(len) + " bytes");
          if (static_cast<std::uint64_t>(end - p) < header + len) return {};
          const Span value{p + header, static_cast<std::size_t>(len)};
          if (number == 1) {
            std::string_view v, k;
            if (std::string why = TypeMeta(value, &v, &k); !why.empty()) return Fail(why);
            api_version = std::string(v);
            kind = std::string(k);
          } else if (number == 3 && len > 0) {
            return Fail("a content encoding (" + std::string(value.view().substr(0, 40)) + ")");
          }
          pos += header + len;
          continue;
        }
        case Stage::kList: {
          if (list_left == 0) {
            stage = Stage::kAfter;
            continue;
          }
          const std::uint8_t* stop = end - p > static_cast<std::ptrdiff_t>(list_left) ? p + list_left : end;
          if (p == stop) return {};
          std::uint32_t number;
          std::uint64_t len;
          std::size_t header;
          std::string error;
          const int got = PeekField(p, stop, &number, &len, &header, &error);
          if (got < 0) return Fail(std::string(list->name) + ": " + error);
          if (got == 0) {
            if (stop - p == static_cast<std::ptrdiff_t>(list_left))
              return Fail(std::string(list->name) + ": truncated");
            return {};
          }
          if (header + len > list_left) return Fail(std::string(list->name) + ": an item beyond the list");
          if (len > kMaxItemBytes) return Fail("an object of " + std::to_string(len) + " bytes");
          if (static_cast<std::uint64_t>(end - p) < header + len) return {};
          if (std::string why = ListField(number, Span{p + header, static_cast<std::size_t>(len)}); !why.empty()) {
            return Fail(why);
          }
          pos += header + len;
          list_left -= header + len;
          continue;
        }
      }
    }
  }
};

ProtobufListDecoder::ProtobufListDecoder(PagePacker::Each each) : impl_(std::make_unique<Impl>()) {
  impl_->each = std::move(each);
}
ProtobufListDecoder::~ProtobufListDecoder() = default;

std::string ProtobufListDecoder::Feed(std::string_view bytes) {
  Impl& d = *impl_;
  if (d.pos > 0 && d.pos >= d.buf.size() / 2) {  // drop what was decoded; keep a partial field
    d.buf.erase(0, d.pos);
    d.pos = 0;
  }
  d.buf.append(bytes);
  return d.Drain();
}

std::string ProtobufListDecoder::Finish(std::string* continue_token, std::string* resource_version) {
  Impl& d = *impl_;
  if (std::string why = d.Drain(); !why.empty()) return why;
  if (d.stage != Impl::Stage::kAfter || d.pos != d.buf.size()) {
    return d.Fail(d.stage == Impl::Stage::kList || d.pos != d.buf.size() ? "the list ended early"
                                                                         : "no list in the envelope");
  }
  *continue_token = d.continue_token;
  *resource_version = d.resource_version;
  return {};
}

std::string PackProtobufList(std::string_view body, const PagePacker::Each& each, std::string* continue_token,
                             std::string* resource_version) {
  ProtobufListDecoder d(each);
  if (std::string why = d.Feed(body); !why.empty()) return why;
  return d.Finish(continue_token, resource_version);
}

std::string ProtobufToJson(std::string_view body, std::string* error) {
  std::string_view api_version, kind;
  Span raw;
  if (std::string why = Envelope(body, &api_version, &kind, &raw); !why.empty()) {
    *error = why;
    return {};
  }
  const int root = RootFor(kind);
  if (root < 0) {
    *error = "a " + std::string(kind.substr(0, 40)) + ", which graydebug has no tables for";
    return {};
  }
  std::vector<std::uint8_t> packed;
  Scratch s;
  ProtoWriter w(&packed, &s.recs, &s.entries);
  if (std::string why = w.Object(root, raw, 0); !why.empty()) {
    *error = why;
    return {};
  }
  nlohmann::json j = nlohmann::json::from_msgpack(packed, true, false);
  if (j.is_discarded() || !j.is_object()) {
    *error = "the decoded object is not MessagePack nlohmann reads";
    return {};
  }
  j["kind"] = std::string(kind);  // TypeMeta is the envelope's
  j["apiVersion"] = std::string(api_version);
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace graydebug::kube
