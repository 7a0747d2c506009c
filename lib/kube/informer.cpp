#include "graydebug/kube/informer.h"

#include <algorithm>

#include <random>
#include <unordered_set>

#include "graydebug/backoff.h"
#include "graydebug/log.h"
#include "graydebug/memory.h"
#include "graydebug/telemetry.h"
#include "packed_page.h"

namespace graydebug::kube {

using nlohmann::json;

namespace {

std::string RvOf(const json& obj) {
  if (!obj.is_object()) return "";
  auto md = obj.find("metadata");
  if (md == obj.end() || !md->is_object()) return "";
  auto rv = md->find("resourceVersion");
  return rv != md->end() && rv->is_string() ? rv->get<std::string>() : "";
}

}  // namespace

void Informer::Prepare(json& object) const {
  if (object.contains("metadata") && object["metadata"].is_object()) object["metadata"].erase("managedFields");
  if (options_.transform) options_.transform(object);
}

Informer::Entry Informer::Pack(const json& object) {
  Entry e{RvOf(object), json::to_msgpack(object)};
  e.packed.shrink_to_fit();  // the writer grows by doubling: up to half of it would be slack
  return e;
}

json Informer::Unpack(const Entry& e) {
  return json::from_msgpack(e.packed, true, false);
}

std::string Informer::Key(std::string_view ns, std::string_view name) {
  return ns.empty() ? std::string(name) : std::string(ns) + "/" + std::string(name);
}

std::string Informer::KeyOf(const json& object) {
  if (!object.is_object() || !object.contains("metadata") || !object["metadata"].is_object()) return "";
  const json& md = object["metadata"];
  std::string name = md.contains("name") && md["name"].is_string() ? md["name"].get<std::string>() : "";
  std::string ns = md.contains("namespace") && md["namespace"].is_string() ? md["namespace"].get<std::string>() : "";
  return name.empty() ? "" : Key(ns, name);
}

Informer::Informer(std::shared_ptr<Client> client, Resource resource, std::string ns, InformerOptions options)
    : client_(std::move(client)), resource_(std::move(resource)), ns_(std::move(ns)), options_(std::move(options)) {}

Informer::~Informer() {
  Stop();
}

void Informer::AddHandlers(EventHandlers handlers) {
  handlers_.push_back(std::move(handlers));
}

void Informer::Start() {
  thread_ = std::thread([this] { Run(); });
  if (options_.resync.count() > 0) resync_thread_ = std::thread([this] { ResyncLoop(); });
}

void Informer::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    if (current_watch_ != nullptr) current_watch_->Cancel();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (resync_thread_.joinable()) resync_thread_.join();
}

bool Informer::SleepInterruptible(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  return client_->clock().SleepFor(d, lock, cv_, [this] { return stopping_.load(); });
}

std::optional<json> Informer::Get(const std::string& key) const {
  std::shared_lock lock(store_mu_);
  auto it = store_.find(key);
  if (it == store_.end()) return std::nullopt;
  return Unpack(it->second);
}

std::vector<json> Informer::List() const {
  std::shared_lock lock(store_mu_);
  std::vector<json> out;
  out.reserve(store_.size());
  for (const auto& [k, v] : store_) out.push_back(Unpack(v));
  return out;
}

std::size_t Informer::Size() const {
  std::shared_lock lock(store_mu_);
  return store_.size();
}

std::string Informer::LastResourceVersion() const {
  std::shared_lock lock(store_mu_);
  return rv_;
}

void Informer::SetRv(const std::string& rv) {
  if (rv.empty()) return;
  std::unique_lock lock(store_mu_);
  rv_ = rv;
}

void Informer::Run() {
  Backoff backoff(options_.backoff_base, options_.backoff_cap);
  while (!stopping_) {
    if (!ListAndReplace()) {
      SleepInterruptible(backoff.Next());
      continue;
    }
    backoff.Reset();
    if (!WatchUntilRelist()) return;
  }
}

bool Informer::ListAndReplace() {
  ListOptions o;
  o.label_selector = options_.label_selector;
  o.field_selector = options_.field_selector;
  o.limit = options_.page_size;
  // The first list may come from the API server's watch cache (resourceVersion=0: no etcd read,
  // no waiting for the cache to catch up), as client-go's reflector lists; the watch then starts at
  // that version, so anything newer arrives as events. A relist, after the watch's version was
  // compacted away (410), reads the current state.
  if (lists_ == 0 && options_.first_list_from_cache) o.resource_version = "0";
  o.prefer_protobuf = options_.protobuf && !protobuf_failed_ &&
                      ProtobufListKnown(resource_.group, resource_.version, resource_.resource);
  std::unordered_map<std::string, Entry> fresh;
  auto add = [&](json& item) {
    Prepare(item);
    std::string key = KeyOf(item);
    if (!key.empty()) fresh.insert_or_assign(std::move(key), Pack(item));
  };
  Result<std::string> rv{std::string()};
  // A page goes from simdjson into the cache (packed_page.h) with no tree for the whole page; a
  // page it cannot take is decoded the slow way. With a transform, each item is decoded from its
  // MessagePack, transformed and packed again: one item's tree at a time, so the cache's entries
  // are not interleaved on the heap with a page's worth of freed nodes (a controller that cached
  // 5000 trimmed pods through a whole-page tree held 4.5 KiB per pod).
  PagePacker packer;
  const PagePacker::Each keep = [&](std::string_view item_ns, std::string_view name, std::string item_rv,
                                    std::vector<std::uint8_t> packed) {
    if (!options_.transform) {
      fresh.insert_or_assign(Key(item_ns, name), Entry{std::move(item_rv), std::move(packed)});
      return;
    }
    json item = json::from_msgpack(packed, true, false);
    if (!item.is_discarded()) add(item);
  };
  auto page = [&](Client::BodyReader& body) {
    Client::PageInfo info;
    std::string text;
    while (text.size() < 4 && body.Next(&text)) {
    }
    if (IsProtobuf(text)) {
      // Decoded as it arrives: the API server is still sending the rest meanwhile.
      ProtobufListDecoder decoder(keep);
      std::string why = decoder.Feed(text);
      for (std::string piece; why.empty(); why = decoder.Feed(piece)) {
        piece.clear();
        if (!body.Next(&piece)) break;
      }
      if (body.error().kind != ErrorKind::kNone) return info;  // the list fails with the read error
      if (why.empty()) why = decoder.Finish(&info.continue_token, &info.resource_version);
      if (why.empty()) {
        protobuf_pages_++;
        return info;
      }
      // Only this decoder reads protobuf: list again as JSON (below), and from now on.
      protobuf_failed_ = true;
      info.error = "a protobuf list page graydebug cannot read: " + why;
      return info;
    }
    if (!body.Rest(&text)) return info;
    std::string why = packer.Pack(text, keep, &info.continue_token, &info.resource_version);
    if (why.empty()) return info;
    log::Debug("list page decoded the slow way", {{"informer", options_.name}, {"why", why}});
    slow_pages_++;
    return Client::EachItem(text, add);
  };
  rv = client_->ListEachRaw(resource_, ns_, o, page);
  if (!rv.ok() && o.prefer_protobuf && protobuf_failed_) {
    log::Warn("listing as JSON from now on", {{"informer", options_.name}, {"error", rv.error().ToString()}});
    fresh.clear();
    o.prefer_protobuf = false;
    o.continue_token.clear();
    rv = client_->ListEachRaw(resource_, ns_, o, page);
  }
  telemetry::Current().InformerList(options_.name, rv.ok());
  if (!rv.ok()) {
    log::Warn("list failed; retrying with backoff", {{"informer", options_.name}, {"error", rv.error().ToString()}});
    return false;
  }
  // Diff against the cache, swap it in, then tell the handlers (outside the store lock).
  std::vector<std::string> added;
  std::vector<std::pair<Entry, std::string>> updated, deleted;  // old entry, key
  {
    std::unique_lock lock(store_mu_);
    for (auto& [key, entry] : fresh) {
      auto it = store_.find(key);
      if (it == store_.end()) {
        added.push_back(key);
      } else if (it->second.rv != entry.rv) {
        updated.emplace_back(std::move(it->second), key);
      }
    }
    for (auto& [key, entry] : store_) {
      if (fresh.find(key) == fresh.end()) deleted.emplace_back(std::move(entry), key);
    }
    store_ = std::move(fresh);
    rv_ = rv.value();
  }
  lists_++;
  if (!handlers_.empty()) {
    std::lock_guard hl(handler_mu_);
    // Objects are decoded from the cache only for the handlers that take them.
    const bool adds = std::any_of(handlers_.begin(), handlers_.end(), [](const auto& h) { return bool(h.on_add); });
    for (const auto& key : adds ? added : std::vector<std::string>{}) {
      json obj = *Get(key);
      for (const auto& h : handlers_) {
        if (h.on_add) h.on_add(obj);
      }
    }
    for (const auto& [old_entry, key] : updated) {
      json old_obj = Unpack(old_entry), obj = *Get(key);
      for (const auto& h : handlers_) {
        if (h.on_update) h.on_update(old_obj, obj);
      }
    }
    for (const auto& [old_entry, key] : deleted) {
      json old_obj = Unpack(old_entry);
      for (const auto& h : handlers_) {
        if (h.on_delete) h.on_delete(old_obj);
      }
    }
  }
  // The list's transient pages are freed; give the memory back to the system.
  ReturnFreeMemory();
  if (!synced_) log::Info("informer synced", {{"informer", options_.name}, {"objects", std::to_string(Size())}});
  synced_ = true;
  return true;
}

void Informer::Apply(WatchEvent& ev) {
  json& obj = ev.object;
  Prepare(obj);
  std::string key = KeyOf(obj);
  if (key.empty()) return;
  std::optional<Entry> old_entry;
  {
    std::unique_lock lock(store_mu_);
    auto it = store_.find(key);
    if (it != store_.end()) old_entry = std::move(it->second);
    if (ev.type == WatchEvent::Type::kDeleted) {
      if (it != store_.end()) store_.erase(it);
    } else {
      store_.insert_or_assign(key, Pack(obj));
    }
    std::string rv = RvOf(obj);
    if (!rv.empty()) rv_ = rv;
  }
  if (handlers_.empty()) return;
  std::optional<json> old;
  if (old_entry) old = Unpack(*old_entry);
  std::lock_guard hl(handler_mu_);
  for (const auto& h : handlers_) {
    if (ev.type == WatchEvent::Type::kDeleted) {
      if (h.on_delete) h.on_delete(obj);
    } else if (old) {
      if (h.on_update) h.on_update(*old, obj);
    } else if (h.on_add) {
      h.on_add(obj);
    }
  }
}

bool Informer::WatchUntilRelist() {
  Backoff backoff(options_.backoff_base, options_.backoff_cap);
  std::mt19937_64 rng{std::random_device{}()};
  while (!stopping_) {
    ListOptions o;
    o.label_selector = options_.label_selector;
    o.field_selector = options_.field_selector;
    o.resource_version = LastResourceVersion();
    o.allow_bookmarks = true;
    std::uniform_int_distribution<int64_t> jitter(0, std::max<int64_t>(0, options_.watch_timeout_seconds - 1));
    o.timeout_seconds = options_.watch_timeout_seconds + jitter(rng);
    Result<std::unique_ptr<Watch>> started = client_->StartWatch(resource_, ns_, o);
    if (!started.ok()) {
      const bool gone = started.error().kind == ErrorKind::kGone;
      telemetry::Current().WatchRestart(options_.name, gone ? "gone" : "error");
      if (gone) return true;
      log::Warn("watch failed to start; retrying with backoff",
                {{"informer", options_.name}, {"error", started.error().ToString()}});
      SleepInterruptible(backoff.Next());
      continue;
    }
    std::unique_ptr<Watch> watch = std::move(started).value();
    {
      std::lock_guard lock(mu_);
      if (stopping_) return false;
      current_watch_ = watch.get();
    }
    WatchEvent ev;
    ApiError err;
    bool relist = false, got_event = false;
    while (watch->Next(&ev, &err)) {
      got_event = true;
      if (ev.type == WatchEvent::Type::kBookmark) {
        SetRv(RvOf(ev.object));
      } else if (ev.type == WatchEvent::Type::kError) {
        // A Status object; read by type, since json::value() throws on a member of another type
        // and this thread has nobody to catch it.
        auto c = ev.object.find("code");
        int64_t code = c != ev.object.end() && c->is_number_integer() ? c->get<int64_t>() : 0;
        auto m = ev.object.find("message");
        std::string message = m != ev.object.end() && m->is_string() ? m->get<std::string>() : "";
        log::Info("watch ended with an error event",
                  {{"informer", options_.name}, {"code", std::to_string(code)}, {"message", message}});
        relist = code == 410;
        break;
      } else {
        Apply(ev);
      }
    }
    {
      std::lock_guard lock(mu_);
      current_watch_ = nullptr;
    }
    if (stopping_) return false;
    const bool closed = err.kind == ErrorKind::kNone || err.kind == ErrorKind::kTimeout;
    telemetry::Current().WatchRestart(options_.name, relist ? "gone" : closed ? "closed" : "error");
    if (relist) return true;
    if (closed) {
      // The server closed the watch (timeoutSeconds) or it was idle: reconnect at once.
      backoff.Reset();
      continue;
    }
    if (got_event) backoff.Reset();
    log::Warn("watch broke; reconnecting with backoff", {{"informer", options_.name}, {"error", err.ToString()}});
    SleepInterruptible(backoff.Next());
  }
  return false;
}

void Informer::ResyncLoop() {
  while (!SleepInterruptible(options_.resync)) {
    if (!synced_) continue;
    std::vector<json> all = List();
    std::lock_guard hl(handler_mu_);
    for (const auto& h : handlers_) {
      if (!h.on_update) continue;
      for (const auto& o : all) h.on_update(o, o);
    }
  }
}

}  // namespace graydebug::kube
