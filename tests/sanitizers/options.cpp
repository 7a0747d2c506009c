// Linked into every executable of a GRAYDEBUG_SANITIZE build (never into a normal one): the
// sanitizers' default options, so that the test binaries and every graydebug binary they spawn
// (webhook, controller, agent, plugin, the leader-election helper) write their reports to
// <build>/sanitizer-reports/ and the CTest fixture `sanitizer_reports` fails the run when any
// report is there. Baked in rather than passed through the environment, so a report in a child
// process cannot be lost to a script that does not pass ASAN_OPTIONS on; the *_OPTIONS variables
// still override any of these. Why each option: docs/reliability.md#sanitizers-and-fuzzing.
#ifndef GRAYDEBUG_SANITIZER_REPORTS
#error "GRAYDEBUG_SANITIZER_REPORTS (the report path prefix) must be defined"
#endif

#define GRAYDEBUG_SAN_COMMON "log_path=" GRAYDEBUG_SANITIZER_REPORTS ":log_exe_name=1:print_suppressions=0"

extern "C" {

__attribute__((used, visibility("default"))) const char* __asan_default_options() {
  return GRAYDEBUG_SAN_COMMON ":detect_leaks=1:check_initialization_order=1:strict_init_order=1:halt_on_error=1";
}

__attribute__((used, visibility("default"))) const char* __lsan_default_options() {
  return "suppressions=" GRAYDEBUG_SANITIZER_SUPPRESSIONS "/lsan.supp:print_suppressions=0";
}

__attribute__((used, visibility("default"))) const char* __ubsan_default_options() {
  return GRAYDEBUG_SAN_COMMON ":print_stacktrace=1:halt_on_error=1:suppressions=" GRAYDEBUG_SANITIZER_SUPPRESSIONS
                              "/ubsan.supp";
}

__attribute__((used, visibility("default"))) const char* __tsan_default_options() {
  return GRAYDEBUG_SAN_COMMON ":second_deadlock_stack=1:history_size=4:suppressions=" GRAYDEBUG_SANITIZER_SUPPRESSIONS
                              "/tsan.supp";
}

}  // extern "C"
