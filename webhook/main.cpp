// graydebug-webhook: the mutating admission webhook (SPEC §2). This file only wires flags.
#include <chrono>
#include <string>

#include "graydebug/cli_app.h"
#include "graydebug/config_file.h"
#include "graydebug/log.h"

using namespace graydebug;

int main(int argc, char** argv) {
  std::string listen = ":8443", metrics_addr = ":9090";
  std::string tls_cert_file, tls_key_file, config, kubeconfig;
  int64_t threads = 2;
  CommonFlags common;
  FlagSet flags("graydebug-webhook", "graydebug-webhook --tls-cert-file FILE --tls-key-file FILE [flags]",
                "Mutating admission webhook: injects the dlv-server and graydebug-agent sidecars into gray pods\n"
                "and stamps spec.requestedBy on DebugSessions. Serves POST /mutate/pods, POST /mutate/debugsessions,\n"
                "GET /healthz and GET /readyz over TLS; metrics on a separate plain-HTTP port.");
  flags.Address("listen", &listen, "HTTPS listen address for admission requests and health checks");
  flags.String("tls-cert-file", &tls_cert_file, "PEM serving certificate (reloaded when the file changes)");
  flags.String("tls-key-file", &tls_key_file, "PEM private key of the serving certificate (reloaded with it)");
  flags.String("config", &config, "injection configuration (YAML); built-in defaults when empty");
  flags.String("kubeconfig", &kubeconfig,
               "kubeconfig for reading circuit breakers; in-cluster config inside a pod; standalone without either");
  flags.Address("metrics-addr", &metrics_addr, "plain-HTTP address of /metrics");
  flags.Int("threads", &threads, 2, 64, "worker threads of the HTTPS server");
  common.Register(flags);

  std::vector<std::string> positionals;
  if (auto code = ParseCommandLine(flags, common, "webhook", ArgsOf(argc, argv), &positionals)) return *code;
  if (!positionals.empty()) return UsageError(flags, "unexpected argument \"" + positionals[0] + "\" (see --help)");
  if (tls_cert_file.empty() || tls_key_file.empty()) {
    return UsageError(flags, "--tls-cert-file and --tls-key-file are required (admission webhooks must serve TLS)");
  }
  if (!config.empty()) {
    if (std::string why = CheckYamlConfigFile(config); !why.empty()) return UsageError(flags, why);
  }
  log::Error("the admission server is not part of this build yet (tracked in issue #4); exiting",
             {{"listen", listen}, {"metrics_addr", metrics_addr}});
  return 3;
}
