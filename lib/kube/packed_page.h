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

}  // namespace graydebug::kube
