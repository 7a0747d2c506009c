#!/usr/bin/env bash
# Faults on the real node (issue #16 item 7): a webhook pod deleted during a rollout (every new
# gray pod still gets its sidecars), the controller's leader pod deleted (the standby takes over and
# sessions continue), kubelet and containerd restarted (pods and sessions survive, new sessions
# attach), and the app container restarted (dlv re-attaches to the new process).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${WORK:-$REPO/build/e2e-work}/faults
. "$REPO/tests/e2e/lib.sh"
mkdir -p "$WORK"
NS=flt
trap 'kubectl delete namespace $NS --wait=false >/dev/null 2>&1 || true' EXIT

# session NAME [POD]: on the pod, else on the selector app=order.
session() {
  local target=selector
  [ -z "${2:-}" ] || target="pod $2"
  new_session "$NS" "$1" "$target" 30m
}
active() { phase_is "$NS" "$1" Active; }
# all_injected: every pod of the Deployment's current template carries both sidecars.
all_injected() {
  local hash p bad=0
  hash=$(k -n "$NS" get rs -l app=order --sort-by=.metadata.creationTimestamp -o jsonpath='{.items[-1:].metadata.labels.pod-template-hash}')
  for p in $(k -n "$NS" get pods -l "app=order,pod-template-hash=$hash" -o name); do
    k -n "$NS" get "$p" -o jsonpath='{.spec.containers[*].name}' | grep -q dlv-server || { echo "$p has no sidecars"; bad=1; }
  done
  return $bad
}

fresh_ns "$NS"
sed "s/^  namespace: shop$/  namespace: $NS/; s/^  replicas: 1$/  replicas: 4/" "$REPO/manifests/examples/gray-deployment.yaml" | k apply -f - >/dev/null
check "four injected gray pods Ready" wait_until 180 pods_ready "$NS" app=order 4

# --- a webhook pod deleted while a rollout creates pods -----------------------------------------
wh=$(k -n "$RELEASE_NS" get pods -l app.kubernetes.io/component=webhook -o jsonpath='{.items[0].metadata.name}')
k -n "$NS" rollout restart deploy/order-v2-alpha >/dev/null
k -n "$RELEASE_NS" delete pod "$wh" --wait=false >/dev/null
check "the rollout completes while a webhook pod is deleted" k -n "$NS" rollout status deploy/order-v2-alpha --timeout=180s
check "every pod of the new template got its sidecars" all_injected
check "the webhook Deployment is back to 2 Ready replicas" wait_until 120 pods_ready "$RELEASE_NS" app.kubernetes.io/component=webhook 2

# --- the controller's leader pod deleted ----------------------------------------------------------
session before-leader-change
check "a session is Active before the leader change" wait_until 90 active before-leader-change
leader_pod=$(leader_pod || true)
check "the Lease names a controller pod ($leader_pod)" test -n "$leader_pod"
k -n "$RELEASE_NS" delete pod "$leader_pod" --wait=false >/dev/null
check "another controller pod takes the Lease" wait_until 90 sh -c \
  "$(declare -f leader_pod k); RELEASE_NS=$RELEASE_NS; p=\$(leader_pod) && [ \"\$p\" != $leader_pod ]"
session after-leader-change
check "a new session becomes Active under the new leader" wait_until 90 active after-leader-change
check "the session from before stays Active" active before-leader-change

# --- kubelet and containerd restarted -------------------------------------------------------------
pods_before=$(k -n "$NS" get pods -l app=order -o jsonpath='{.items[*].metadata.uid}')
check "kubelet restarted" "$REPO/hack/node" restart kubelet --dir "$NODE_DIR"
check "the node is Ready again after the kubelet restart" wait_until 120 sh -c \
  "[ \"\$(kubectl get node graydebug-node -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}')\" = True ]"
check "containerd restarted" "$REPO/hack/node" restart containerd --dir "$NODE_DIR"
check "the gray pods are Ready again" wait_until 120 pods_ready "$NS" app=order 4
check "the same pods survived both restarts" sh -c "[ \"\$(kubectl -n $NS get pods -l app=order -o jsonpath='{.items[*].metadata.uid}')\" = '$pods_before' ]"
session after-node-restarts
check "a new session becomes Active after the restarts" wait_until 90 active after-node-restarts
check "the earlier sessions are still Active" sh -c "active() { [ \"\$(kubectl -n $NS get debugsession \$1 -o jsonpath='{.status.phase}')\" = Active ]; }; active before-leader-change && active after-leader-change"

# --- the app container restarted: dlv re-attaches to the new process ----------------------------
pod=$(newest_pod "$NS" app=order)
restarts=$(k -n "$NS" get pod "$pod" -o jsonpath='{.status.containerStatuses[?(@.name=="order")].restartCount}')
uid=$(k -n "$NS" get pod "$pod" -o jsonpath='{.metadata.uid}')
app_pid=$(uid_pids "$uid" leaky-app | head -1)
check "the app process of $pod is found on the node" test -n "$app_pid"
[ -z "$app_pid" ] || kill -KILL "$app_pid"
check "the app container restarted" wait_until 90 sh -c \
  "[ \"\$(kubectl -n $NS get pod $pod -o jsonpath='{.status.containerStatuses[?(@.name==\"order\")].restartCount}')\" -gt $restarts ]"
session after-app-restart "$pod"
check "a session on that pod becomes Active (dlv re-attached to the new app process)" wait_until 120 active after-app-restart
echo "passed $passed, failed $failed"
[ "$failed" -eq 0 ]
