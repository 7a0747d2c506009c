#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "webhook/admission.h"
#include "webhook/injection_config.h"
#include "webhook/sidecar_injector.h"

namespace graydebug::webhook {

// The admission handler of the injection config in a file, rebuilt when the file's text changes
// (a ConfigMap volume swaps its files atomically; `kubectl edit` of the ConfigMap reaches the pod
// within the kubelet's sync period). A change that does not parse or validate is refused: the
// previous config stays in force and the error names the field. Requests in flight keep the
// handler they started with (shared ownership), so a reload never changes a request midway.
class ReloadingAdmission {
 public:
  // `text` is the file's text that `config` was parsed from ("" with `path` "" for the built-in
  // defaults, which never reload).
  ReloadingAdmission(std::string path, std::string text, const InjectionConfig& config, ClusterView cluster,
                     std::string version);

  std::shared_ptr<const AdmissionHandler> Current() const;

  enum class Outcome { kUnchanged, kApplied, kRefused };
  // Re-reads the file. kRefused fills *error with one line (unreadable, too large, invalid).
  Outcome Check(std::string* error);

 private:
  struct Generation;
  std::shared_ptr<const Generation> Build(const InjectionConfig& config) const;

  const std::string path_;
  const ClusterView cluster_;
  const std::string version_;
  std::string text_;        // of the config in force, or of the last refused one (not retried)
  std::string read_error_;  // why the last read failed ("" when it did not); reported once
  mutable std::mutex mu_;   // guards current_
  std::shared_ptr<const Generation> current_;
};

}  // namespace graydebug::webhook
