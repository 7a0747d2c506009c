#pragma once
// A list page decoded with simdjson straight into what the informer caches (issue #18): for each
// item its key, its resourceVersion and its MessagePack bytes without metadata.managedFields, with
// no nlohmann tree in between (docs/decisions.md: simdjson reads a page ~20x faster). Internal to
// graydebug_kube, the only library that links simdjson.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace graydebug::kube {

class PagePacker {
 public:
  PagePacker();
  ~PagePacker();
  PagePacker(const PagePacker&) = delete;
  PagePacker& operator=(const PagePacker&) = delete;

  using Each =
      std::function<void(std::string_view ns, std::string_view name, std::string rv, std::vector<std::uint8_t> packed)>;
  // Decodes one page ({"metadata": {...}, "items": [...]}): `each` gets every item that has a
  // name (its namespace, "" for a cluster object, and name; Informer::Key makes the cache key); *continue_token and
  // *resource_version get the page's. Returns "" or why the page cannot be packed here (not JSON, not a list, an
  // integer beyond 64 bits, a container of 2^24 or more members): the caller then decodes it the slow way, where
  // nothing is lost. Before an error, `each` may have been called for earlier items.
  std::string Pack(const std::string& body, const Each& each, std::string* continue_token,
                   std::string* resource_version);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// One JSON document as MessagePack, without metadata.managedFields of its top-level object (the
// packer's writer, for tests). "" in *error when it worked.
std::vector<std::uint8_t> PackJson(std::string_view json, std::string* error);

// True when `body` is in Kubernetes' protobuf encoding (it starts with "k8s\0").
bool IsProtobuf(std::string_view body);

// Whether proto_list.cpp has tables for a list of this resource (core v1 pods).
bool ProtobufListKnown(std::string_view group, std::string_view version, std::string_view resource);

// A list in protobuf decoded as it arrives (proto_list.cpp): each item, once its bytes are all
// there, goes to `each` as the MessagePack of the JSON the API server would have sent, without
// metadata.managedFields. Feed and Finish return "" or why the list cannot be decoded here (a kind
// without tables, a field they do not have, a malformed or truncated message): then list as JSON.
// Items before the error have been handed out.
class ProtobufListDecoder {
 public:
  explicit ProtobufListDecoder(PagePacker::Each each);
  ~ProtobufListDecoder();
  ProtobufListDecoder(const ProtobufListDecoder&) = delete;
  ProtobufListDecoder& operator=(const ProtobufListDecoder&) = delete;

  std::string Feed(std::string_view bytes);
  // After the last bytes: the list's continue token and resourceVersion.
  std::string Finish(std::string* continue_token, std::string* resource_version);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A whole protobuf list body through a ProtobufListDecoder (PagePacker::Pack's protobuf case).
std::string PackProtobufList(std::string_view body, const PagePacker::Each& each, std::string* continue_token,
                             std::string* resource_version);

// A protobuf object with tables (a Status) as JSON text; "" and *error when it cannot be decoded.
std::string ProtobufToJson(std::string_view body, std::string* error);

}  // namespace graydebug::kube
