#pragma once
// The Kubernetes types the informer decodes from protobuf (issue #18), as tables generated from
// the Go types by hack/protoschema: for each message its fields in the order encoding/json writes
// them, with their protobuf field number and what encoding/json does with an empty value. Internal
// to graydebug_kube (proto_list.cpp).

#include <cstdint>
#include <string_view>

namespace graydebug::kube::proto {

enum class Kind : std::uint8_t {
  kString,
  kBytes,  // []byte: base64 in JSON
  kBool,
  kInt32,
  kInt64,
  kUint32,
  kUint64,
  kMessage,      // a struct: `message` is its index
  kMap,          // map[string]V: entries {1: key, 2: value}, V is value_kind (value_message)
  kTime,         // metav1.Time: Timestamp {1: seconds}; RFC 3339 in UTC, null when zero
  kMicroTime,    // metav1.MicroTime: Timestamp {1: seconds, 2: nanos}; RFC 3339 with microseconds
  kQuantity,     // resource.Quantity: {1: its canonical string}
  kIntOrString,  // intstr.IntOrString: {1: type, 2: intVal, 3: strVal}
  kDuration,     // metav1.Duration: not decoded here (not in the tables' types)
  kRawJson,      // runtime.RawExtension, metav1.FieldsV1: not decoded here (only in managedFields)
};

enum : std::uint8_t {
  kRepeated = 1,   // a slice: null when empty (unless kOmitEmpty)
  kPointer = 2,    // written when present on the wire, even when zero
  kOmitEmpty = 4,  // encoding/json's omitempty (no effect on structs)
  kOmitZero = 8,   // encoding/json's omitzero
  kInline = 16,    // an embedded struct: its members are the parent's
};

struct Field {
  std::uint32_t number;
  std::string_view json;
  Kind kind;
  std::uint8_t flags;
  std::int16_t message;
  Kind value_kind;
  std::int16_t value_message;
};

struct Message {
  const char* name;
  const Field* fields;
  std::uint16_t count;
};

}  // namespace graydebug::kube::proto
