#!/usr/bin/env bash
# What happens after the breaker trips, on real pods (issue #19 items 3, 5, 6): the release's pods
# are replaced while its breaker is open (they come up without sidecars); after the cool-down the
# breaker is half-open and the webhook still injects a few new pods, so trial sessions have pods to
# attach to and the breaker closes again. Heap gauges come from the app's expvar through the
# graydebug.io/expvar-url annotation. Final sessions are deleted after finalSessionRetention.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${WORK:-$REPO/build/e2e-work}/recovery
. "$REPO/tests/e2e/lib.sh"
mkdir -p "$WORK"
NS=rec
KEY="$NS.v2-alpha"

cleanup() {
  signal_pods CONT "$NS" app=order dlv >/dev/null 2>&1 || true
  forget_breaker "$KEY"
  k delete namespace "$NS" --wait=false >/dev/null 2>&1 || true
}
trap cleanup EXIT

state_is() { breaker_is "$KEY" "$1"; }
injected() { k -n "$NS" get pod "$1" -o jsonpath='{.spec.containers[*].name}' | grep -qw dlv-server; }
not_injected() { k -n "$NS" get pod "$1" >/dev/null && ! injected "$1"; }
replace_pod() {  # deletes the release's pods; prints the name of the new Ready one
  local old
  old=$(k -n "$NS" get pods -l app=order -o name)
  k -n "$NS" delete $old --wait=false >/dev/null
  wait_until 120 sh -c "[ -z \"\$(kubectl -n $NS get $old -o name 2>/dev/null)\" ]" >/dev/null || true
  wait_until 120 pods_ready "$NS" app=order 1 >/dev/null || true
  newest_pod "$NS" app=order
}

check "helm upgrade: coolDown 15s, finalSessionRetention 1m, no pauseRollout" helm_install --reuse-values \
  --set controller.breaker.coolDown=15s --set controller.finalSessionRetention=1m --set controller.pauseRollout=false

fresh_ns "$NS"
# The example Deployment with the per-pod expvar annotation (the agent reads the app's memstats there).
sed "s/^  namespace: shop$/  namespace: $NS/; s|^        graydebug.io/target-container: order.*|&\n        graydebug.io/expvar-url: http://127.0.0.1:8080/debug/vars|" \
  "$REPO/manifests/examples/gray-deployment.yaml" | k apply -f - >/dev/null
check "an injected gray pod Ready" wait_until 120 pods_ready "$NS" app=order 1
pod=$(newest_pod "$NS" app=order)
ip=$(k -n "$NS" get pod "$pod" -o jsonpath='{.status.podIP}')
check "graydebug.io/expvar-url: the agent exports heap gauges from the app's expvar" wait_until 60 sh -c \
  "curl -fsS --max-time 5 http://$ip:9102/metrics | grep -Eq '^graydebug_target_heap_(alloc|inuse)_bytes [1-9]'"

# Trip the breaker: dlv frozen, 7 sessions x 3 tries.
signal_pods STOP "$NS" app=order dlv >/dev/null
for i in $(seq 1 7); do new_session "$NS" "broken-$i" "pod $pod"; done
check "the breaker opens" wait_until 240 state_is open
# The breaker's ConfigMap is written before the status of the attempt that tripped it (no attempt is
# lost), so the last sessions may still be writing Failed when it reads open: wait for it.
check "the failed sessions have status.finishedAt" wait_until 60 sh -c \
  "[ -n \"\$(kubectl -n $NS get debugsession broken-1 -o jsonpath='{.status.finishedAt}')\" ]"

# Replaced while open: the new pod has no sidecars (nothing left to run trials on).
pod=$(replace_pod)
check "a pod replaced while the breaker is open comes up without sidecars ($pod)" not_injected "$pod"

# After the cool-down: half-open, and a new pod of the release is injected again for the trials.
check "after the cool-down the breaker is half-open" wait_until 90 state_is half-open
pod=$(replace_pod)
check "a pod created while half-open gets its sidecars (halfOpenInjections; $pod)" injected "$pod"
check "the trial pod is Ready" wait_until 120 pods_ready "$NS" app=order 1
for i in $(seq 1 5); do
  new_session "$NS" "trial-$i" "pod $pod"
  check "trial session $i becomes Active" wait_until 90 phase_is "$NS" "trial-$i" Active
done
check "five successful trials close the breaker" wait_until 60 state_is closed
new_session "$NS" after-close selector
check "a new session is accepted and Active once closed" wait_until 90 phase_is "$NS" after-close Active

# Retention: the Failed sessions go 1 min after finishedAt; Active ones stay.
check "Failed sessions are deleted after finalSessionRetention (1m)" wait_until 150 sh -c \
  "[ -z \"\$(kubectl -n $NS get debugsession broken-1 broken-7 -o name --ignore-not-found)\" ]"
check "Active sessions are kept" phase_is "$NS" after-close Active
check "helm upgrade back to the defaults of the other tests" helm_install --reuse-values \
  --set controller.breaker.coolDown=60s --set controller.finalSessionRetention=24h
echo "passed $passed, failed $failed"
[ "$failed" -eq 0 ]
