# Sourced by the shell tests (tests/chart, tests/security): one line per check, leftover-process
# detection and the helpers they share. The sourcing script sets WORK (its scratch directory, the
# path every process it starts runs from) and may set CLUSTER_DIR (a hack/cluster directory).
. "$REPO/hack/lib/local-install.sh"
passed=0 failed=0 skipped=0
pids=()
# check NAME COMMAND...: runs COMMAND; "ok - NAME", or "FAIL - NAME" and the last lines it printed.
check() {
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then
    passed=$((passed + 1)); echo "ok   - $name"
  else
    failed=$((failed + 1)); echo "FAIL - $name"; printf '%s\n' "$out" | tail -n 25 | sed 's/^/       /'
  fi
}
skip() { skipped=$((skipped + 1)); echo "skip - $1: $2"; }
# fails COMMAND...: succeeds when COMMAND fails (the "rejects" checks).
fails() { if "$@" >/dev/null 2>&1; then echo "unexpectedly succeeded: $*"; return 1; fi; }
# wait_until SECONDS COMMAND...: polls COMMAND every 0.2 s; on a timeout prints its last output.
wait_until() {
  local end=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    # Timed out: once more with its output, for check's report.
    [ $SECONDS -lt "$end" ] || { "$@" 2>&1 | tail -n 10; return 1; }
    sleep 0.2
  done
}
# stop_all: SIGTERM to every pid in pids, SIGKILL after 5 s.
stop_all() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  pids=()
}
# checks_cleanup: the EXIT trap. Stops the processes and the cluster, fails when a process started
# from $WORK is left, keeps $WORK on failure.
checks_cleanup() {
  local rc=$? name=${CHECKS_NAME:-test}
  trap - EXIT INT TERM
  trap '' PIPE  # a reader that went away must not cut the cleanup short
  stop_all
  if [ -n "${CLUSTER_DIR:-}" ] && [ -d "$CLUSTER_DIR" ]; then
    "$REPO/hack/cluster" down --dir "$CLUSTER_DIR" >/dev/null 2>&1 || true
  fi
  local left
  left=$(pgrep -af -- "$WORK" || true)
  if [ -n "$left" ]; then
    echo "FAIL - processes left behind:"; echo "$left" | sed 's/^/       /'; rc=1
  fi
  if [ "$rc" -eq 0 ]; then rm -rf "$WORK"; else echo "$name: files and logs kept in $WORK"; fi
  exit "$rc"
}
