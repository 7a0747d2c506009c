// kubectl-graydebug: the kubectl plugin (`kubectl graydebug attach|list|end|status`, SPEC §7).
// This file only wires flags; the commands are in cli/commands.cpp, their pure parts in cli/plugin.cpp.
#include <chrono>
#include <iostream>
#include <string>

#include "cli/commands.h"
#include "cli/plugin.h"
#include "graydebug/cli_app.h"
#include "graydebug/log.h"

using namespace graydebug;
using namespace std::chrono_literals;

namespace {

constexpr const char* kCommands =
    "Commands:\n"
    "  attach <pod|deploy/NAME>   create a DebugSession, wait until Active, port-forward and print `dlv connect`\n"
    "  list                       list DebugSessions\n"
    "  end <session>              end a DebugSession\n"
    "  status                     show the circuit breakers of the gray releases\n"
    "  completion bash|zsh        print a shell completion script\n";

struct Global {
  std::string kubeconfig, context, namespace_;
  CommonFlags common{"warn", "logfmt"};
  void Register(FlagSet& flags) {
    flags.String("kubeconfig", &kubeconfig, "kubeconfig file (else $KUBECONFIG, else ~/.kube/config)");
    flags.String("context", &context, "kubeconfig context to use");
    flags.String("namespace", &namespace_, "namespace (default: the context's namespace)");
    flags.Alias('n', "namespace");
    common.Register(flags);
  }
};

int Run(const std::string& command, const std::vector<std::string>& args) {
  Global global;
  std::string reason, output = "table", circuits_namespace = "graydebug-system", selector, shell;
  std::chrono::milliseconds ttl = 15min, timeout = 60s;
  bool all_namespaces = false, no_port_forward = false, keep = false;
  int64_t local_port = 2345, port = 2345;
  FlagSet flags("kubectl graydebug " + command, "", "");
  if (command == "attach") {
    flags = FlagSet("kubectl graydebug attach", "kubectl graydebug attach <pod|deploy/NAME | -l SELECTOR> [flags]",
                    "Creates a DebugSession for the pod (or the newest ready injected pod of the Deployment), waits\n"
                    "until it is Active, starts the port-forward and prints the `dlv connect` line and a VS Code\n"
                    "launch.json snippet.");
    flags.Duration("ttl", &ttl, 1min, 168h, "how long the session lives");
    flags.String("reason", &reason, "why you are debugging (kept in the session)");
    flags.Duration("timeout", &timeout, 1s, 1h, "how long to wait for the session to become Active");
    flags.Int(
        "local-port", &local_port, 1, 65535,
        "local port of the port-forward to dlv; when not given, the pod's dlv port (2345 unless the pod overrides it)");
    flags.Int("port", &port, 1, 65535, "same as --local-port");
    flags.String("selector", &selector, "label selector: debug the newest ready injected pod that matches");
    flags.Alias('l', "selector");
    flags.Bool("keep", &keep,
               "on Ctrl-C, or when the port-forward fails before dlv answered through it, leave the session Active\n"
               "(it expires by its ttl) instead of ending it");
    flags.Bool("no-port-forward", &no_port_forward,
               "create the session, print how to connect and exit, without starting kubectl port-forward");
  } else if (command == "completion") {
    flags = FlagSet("kubectl graydebug completion", "kubectl graydebug completion bash|zsh",
                    "Prints a shell completion script for kubectl-graydebug (and `kubectl graydebug` through\n"
                    "kubectl's plugin completion: save it as kubectl_complete-graydebug on PATH).");
  } else if (command == "list") {
    flags = FlagSet("kubectl graydebug list", "kubectl graydebug list [flags]", "Lists DebugSessions.");
    flags.Bool("all-namespaces", &all_namespaces, "list sessions in every namespace");
    flags.Alias('A', "all-namespaces");
    flags.Enum("output", &output, {"table", "json", "yaml"}, "output format");
    flags.Alias('o', "output");
  } else if (command == "end") {
    flags = FlagSet("kubectl graydebug end", "kubectl graydebug end <session> [flags]",
                    "Ends a DebugSession (it becomes Terminated and its metrics are removed).");
  } else if (command == "status") {
    flags = FlagSet("kubectl graydebug status", "kubectl graydebug status [flags]",
                    "Prints the circuit breaker of every gray release (ConfigMap graydebug-circuits); with -n, only\n"
                    "the releases of that namespace.");
    flags.String("circuits-namespace", &circuits_namespace,
                 "namespace of ConfigMap graydebug-circuits (the controller's)");
    flags.Enum("output", &output, {"table", "json", "yaml"}, "output format");
    flags.Alias('o', "output");
  } else {
    std::cerr << "kubectl graydebug: unknown command \"" << command << "\"\n" << kCommands;
    return 2;
  }
  global.Register(flags);
  // attach waits for SIGINT/SIGTERM itself; they must be blocked before any client thread starts.
  if (command == "attach") cli::BlockStopSignals();
  std::vector<std::string> positionals;
  if (auto code = ParseCommandLine(flags, global.common, "kubectl-graydebug", args, &positionals)) return *code;
  const std::size_t want =
      (command == "end" || command == "completion" || (command == "attach" && selector.empty())) ? 1 : 0;
  if (positionals.size() != want) {
    return UsageError(flags, want == 1 ? "needs exactly one argument (see --help)" : "takes no arguments (see --help)");
  }
  if (command == "completion") {
    if (positionals[0] != "bash" && positionals[0] != "zsh") return UsageError(flags, "shells: bash, zsh");
    std::cout << cli::CompletionScript(positionals[0]);
    return 0;
  }
  cli::Globals g{flags.program(), global.kubeconfig, global.context, global.namespace_};
  if (command == "attach") {
    cli::AttachOptions o;
    o.target = positionals.empty() ? "" : positionals[0];
    o.selector = selector;
    o.keep = keep;
    o.ttl = ttl;
    o.reason = reason;
    o.timeout = timeout;
    o.port_forward = !no_port_forward;
    if (flags.WasSet("local-port")) o.local_port = static_cast<int>(local_port);
    if (flags.WasSet("port")) o.local_port = static_cast<int>(port);
    return cli::Attach(g, o);
  }
  if (command == "list") return cli::List(g, all_namespaces, output);
  if (command == "end") return cli::End(g, positionals[0]);
  return cli::Status(g, circuits_namespace, output);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args = ArgsOf(argc, argv);
  if (args.empty() || args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
    std::cout << "Usage: kubectl graydebug <command> [flags]\n\nDebug gray (canary) releases with delve.\n\n"
              << kCommands << "\nRun `kubectl graydebug <command> --help` for a command's flags.\n";
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "--version" || args[0] == "version") {
    Global global;
    FlagSet flags("kubectl-graydebug", "", "");
    return ParseCommandLine(flags, global.common, "kubectl-graydebug", {"--version"}, nullptr).value_or(0);
  }
  return Run(args[0], {args.begin() + 1, args.end()});
}
