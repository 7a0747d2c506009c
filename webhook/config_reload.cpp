#include "webhook/config_reload.h"

#include <utility>

#include "graydebug/config_file.h"

namespace graydebug::webhook {

// The injector and the handler that refers to it, owned together.
struct ReloadingAdmission::Generation {
  Generation(const InjectionConfig& config, const std::string& version, const ClusterView& cluster)
      : injector(config, version), handler(injector, cluster) {}
  SidecarInjector injector;
  AdmissionHandler handler;
};

ReloadingAdmission::ReloadingAdmission(std::string path, std::string text, const InjectionConfig& config,
                                       ClusterView cluster, std::string version)
    : path_(std::move(path)), cluster_(std::move(cluster)), version_(std::move(version)), text_(std::move(text)) {
  current_ = Build(config);
}

std::shared_ptr<const ReloadingAdmission::Generation> ReloadingAdmission::Build(const InjectionConfig& config) const {
  return std::make_shared<const Generation>(config, version_, cluster_);
}

std::shared_ptr<const AdmissionHandler> ReloadingAdmission::Current() const {
  std::lock_guard lock(mu_);
  // Aliasing: the handler's lifetime is its generation's.
  return {current_, &current_->handler};
}

ReloadingAdmission::Outcome ReloadingAdmission::Check(std::string* error) {
  if (path_.empty()) return Outcome::kUnchanged;
  FileReadResult file = ReadFileLimited(path_);
  if (!file.ok) {
    // A missing file mid-swap or a permission hiccup: keep the config in force, say why once.
    if (file.error == read_error_) return Outcome::kUnchanged;
    read_error_ = file.error;
    *error = file.error;
    return Outcome::kRefused;
  }
  read_error_.clear();
  if (file.contents == text_) return Outcome::kUnchanged;
  text_ = file.contents;  // a refused text is not parsed again until it changes
  ConfigLoadResult parsed = ParseInjectionConfig(file.contents);
  if (!parsed.ok) {
    *error = "config " + path_ + ": " + parsed.error;
    return Outcome::kRefused;
  }
  auto next = Build(parsed.config);
  std::lock_guard lock(mu_);
  current_ = std::move(next);
  return Outcome::kApplied;
}

}  // namespace graydebug::webhook
