#!/usr/bin/env bash
# The circuit breaker on real pods (issue #16 item 5): dlv really broken in the gray pods (frozen
# with SIGSTOP, so the agent's GetVersion times out), sessions until failures exceed 5 %; then new
# pods of the release come up without sidecars, new sessions are Rejected, and pauseRollout really
# stops a rollout (the real kube-controller-manager reports DeploymentPaused).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${WORK:-$REPO/build/e2e-work}/breaker
. "$REPO/tests/e2e/lib.sh"
mkdir -p "$WORK"
NS=brk
KEY="$NS.v2-alpha"

cleanup() {
  signal_pods CONT "$NS" app=order dlv >/dev/null 2>&1 || true
  forget_breaker "$KEY"
  k delete namespace "$NS" --wait=false >/dev/null 2>&1 || true
}
trap cleanup EXIT

check "helm upgrade with controller.pauseRollout=true" helm_install --reuse-values --set controller.pauseRollout=true

fresh_ns "$NS"
sed "s/^  namespace: shop$/  namespace: $NS/; s/^  replicas: 1$/  replicas: 2/" "$REPO/manifests/examples/gray-deployment.yaml" | k apply -f - >/dev/null
check "two injected gray pods Ready" wait_until 120 pods_ready "$NS" app=order 2
mapfile -t PODS < <(k -n "$NS" get pods -l app=order -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}')
frozen=$(signal_pods STOP "$NS" app=order dlv)
check "dlv processes found and frozen: $frozen" test "$frozen" -ge 2

# 7 sessions × 3 tries = 21 attempts, all failures: > 20 attempts, > 2 failures, ratio > 5 %.
for i in $(seq 1 7); do
  new_session "$NS" "broken-$i" "pod ${PODS[$((i % 2))]}"
done
check "the breaker of $NS/v2-alpha opens" wait_until 240 breaker_is "$KEY" open
# The session whose attempt tripped the breaker writes its status after the breaker's ConfigMap.
check "the failed sessions are Failed" wait_until 60 sh -c "[ \$(kubectl -n $NS get debugsessions -o jsonpath='{range .items[*]}{.status.phase}{\"\\n\"}{end}' | grep -c Failed) -ge 7 ]"
check "kubectl graydebug status shows the release open" sh -c "kubectl graydebug status --circuits-namespace $RELEASE_NS -n $NS 2>&1 | grep -i '$NS/v2-alpha' | grep -qi open"
check "a Warning Event on the Deployment" wait_until 30 sh -c \
  "kubectl -n $NS get events --field-selector involvedObject.kind=Deployment,involvedObject.name=order-v2-alpha,type=Warning -o name | grep -q ."
check "pauseRollout: the Deployment is paused" wait_until 30 sh -c "[ \"\$(kubectl -n $NS get deploy order-v2-alpha -o jsonpath='{.spec.paused}')\" = true ]"

# New pods of the release: no sidecars while the breaker is open.
k -n "$NS" scale deploy order-v2-alpha --replicas=3 >/dev/null
check "a new pod of the open release is Ready" wait_until 120 pods_ready "$NS" app=order 3
newest=$(newest_pod "$NS" app=order)
check "the new pod came up without sidecars (circuit-open)" sh -c \
  "c=\$(kubectl -n $NS get pod $newest -o jsonpath='{.spec.containers[*].name} {.spec.initContainers[*].name}'); [ \"\$c\" = 'order ' ] || [ \"\$c\" = order ]"
new_session "$NS" after-trip selector
check "a new session is Rejected with CircuitOpen" wait_until 60 sh -c \
  "[ \"\$(kubectl -n $NS get debugsession after-trip -o jsonpath='{.status.phase}')\" = Rejected ] &&
   kubectl -n $NS get debugsession after-trip -o jsonpath='{.status.conditions[*].reason}' | grep -q CircuitOpen"

# A rollout of the paused Deployment does not progress: the real deployment controller says so.
k -n "$NS" patch deploy order-v2-alpha --type merge -p '{"spec":{"template":{"metadata":{"annotations":{"e2e/rollout":"1"}}}}}' >/dev/null
gen=$(k -n "$NS" get deploy order-v2-alpha -o jsonpath='{.metadata.generation}')
check "the deployment controller saw the change and reports DeploymentPaused" wait_until 60 sh -c \
  "[ \"\$(kubectl -n $NS get deploy order-v2-alpha -o jsonpath='{.status.observedGeneration}')\" = $gen ] &&
   [ \"\$(kubectl -n $NS get deploy order-v2-alpha -o jsonpath='{.status.conditions[?(@.type==\"Progressing\")].reason}')\" = DeploymentPaused ]"
check "no pod of the new template was created" sh -c \
  "[ -z \"\$(kubectl -n $NS get pods -l app=order -o jsonpath='{.items[*].metadata.annotations.e2e/rollout}')\" ]"
echo "passed $passed, failed $failed"
[ "$failed" -eq 0 ]
