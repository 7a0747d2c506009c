// The controller's reading of the agent's /probe/dlv answer (the agent runs in the user's pod, so
// the answer is untrusted). Includes regressions of bugs found while writing the dlv_reply fuzz target.
#include <doctest/doctest.h>

#include "controller/session_controller.h"

using graydebug::controller::ParseProbeReply;

TEST_CASE("probe reply: ok, failure, busy and cached answers of the agent") {
  auto ok = ParseProbeReply("10.0.0.1:9102", 200, R"({"ok":true,"latencySeconds":0.01,"cached":false})", 0.5);
  CHECK(ok.ok);
  CHECK(ok.error.empty());
  CHECK(ok.latency_seconds == doctest::Approx(0.5));

  auto cached = ParseProbeReply("a", 200, R"({"ok":true,"latencySeconds":0.25,"cached":true})", 0.5);
  CHECK(cached.ok);
  CHECK(cached.latency_seconds == doctest::Approx(0.75));  // the reused dlv call's time is added

  auto failed = ParseProbeReply("a", 502, R"({"ok":false,"error":"connect to dlv: refused","errorKind":"refused"})", 1);
  CHECK_FALSE(failed.ok);
  CHECK_FALSE(failed.own_fault);
  CHECK(failed.error == "connect to dlv: refused");

  auto busy = ParseProbeReply("a", 503, R"({"ok":false,"errorKind":"busy"})", 1);
  CHECK_FALSE(busy.ok);
  CHECK(busy.own_fault);

  CHECK_FALSE(ParseProbeReply("a", 200, "<html>", 1).ok);
  CHECK_FALSE(ParseProbeReply("a", 500, R"({"ok":true})", 1).ok);
}

TEST_CASE("probe reply: members of the wrong type are failures or ignored, never an exception") {
  // Found while writing the dlv_reply fuzz target: json::value("cached", false) and value("errorKind", "")
  // threw type_error on these, so a hostile agent made every reconcile of the session throw.
  for (const char* body : {R"({"ok":true,"cached":"yes"})", R"({"ok":false,"errorKind":503})",
                           R"({"ok":true,"cached":true,"latencySeconds":"1"})", R"({"ok":false,"error":{"x":1}})"}) {
    CAPTURE(body);
    for (int status : {200, 502, 503}) {
      graydebug::controller::ProbeResult p;
      CHECK_NOTHROW(p = ParseProbeReply("a", status, body, 0.1));
      CHECK(p.ok == p.error.empty());
      CHECK(p.latency_seconds == doctest::Approx(0.1));
    }
  }
  CHECK(ParseProbeReply("a", 200, R"({"ok":true,"cached":"yes"})", 0.1).ok);
  CHECK_FALSE(ParseProbeReply("a", 503, R"({"ok":false,"errorKind":503})", 0.1).own_fault);
}
