# Sourced by the end-to-end tests (CTest label e2e): they run against the real node of hack/node
# (kubelet, containerd, runc, CNI, CoreDNS) with the graydebug image and the chart installed
# in-cluster. The node is brought up once by e2e_node_up (a CTest fixture) and taken down, with its
# leftovers checked, by e2e_node_down.
REPO=${REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
. "$REPO/hack/tools/common.sh"
. "$REPO/tests/support/checks.sh"
NODE_DIR=${NODE_DIR:-$REPO/build/node}
GRAYDEBUG_BIN=${GRAYDEBUG_BIN:-$REPO/build/bin}
export KUBECONFIG=$NODE_DIR/kubeconfig
K8S_BIN=$(tool_bindir kubernetes)
HELM="$(tool_bindir helm)/helm"
DLV="$(tool_bindir dlv)/dlv"
# `kubectl graydebug` finds the plugin on PATH, as a user's kubectl does.
export PATH="$GRAYDEBUG_BIN:$K8S_BIN:$PATH"
RELEASE_NS=graydebug-system
RELEASE=graydebug
IMAGE_REPO=graydebug/graydebug
IMAGE_TAG=$(awk -F'"' '/^appVersion:/{print $2}' "$REPO/charts/graydebug/Chart.yaml")
APP_IMAGE=docker.io/graydebug/leaky-app:$IMAGE_TAG
# The example Deployment names this image; the node holds the demo app under that name too.
EXAMPLE_IMAGE=registry.example.com/shop/order:v2-alpha

k() { kubectl "$@"; }
# A new, empty namespace: one of the same name left by an earlier run (still Terminating) is
# waited for first, so reruns start from nothing.
fresh_ns() {
  k delete namespace "$1" --ignore-not-found --wait=true --timeout=180s >/dev/null
  k create namespace "$1" >/dev/null
}
node_exec() { "$REPO/hack/node" exec --dir "$NODE_DIR" -- "$@"; }

# The chart as a user installs it: only the image's repository, tag and pull policy are set.
helm_install() {  # extra helm args...
  "$HELM" upgrade --install "$RELEASE" "$REPO/charts/graydebug" -n "$RELEASE_NS" --create-namespace \
    --set image.repository="$IMAGE_REPO" --set image.tag="$IMAGE_TAG" --set image.pullPolicy=Never \
    --wait --timeout 180s "$@"
}

# ready_pods NS SELECTOR: how many pods matching SELECTOR are Ready.
ready_pods() {
  k -n "$1" get pods -l "$2" -o jsonpath='{range .items[*]}{.metadata.deletionTimestamp}{"|"}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' 2>/dev/null |
    grep -c '^|True$' || true
}
pods_ready() { [ "$(ready_pods "$1" "$2")" -ge "$3" ]; }

# session_phase NS NAME
# new_session NS NAME TARGET [TTL]: a DebugSession; TARGET is "pod NAME" or "selector" (app=order).
new_session() {
  local target="{selector: {matchLabels: {app: order}}}"
  [ "$3" = selector ] || target="{pod: ${3#pod }}"
  k -n "$1" apply -f - >/dev/null <<YAML
apiVersion: graydebug.io/v1alpha1
kind: DebugSession
metadata: {name: $2}
spec: {target: $target, ttl: ${4:-10m}, reason: "e2e"}
YAML
}
# breaker_state NS.RELEASE: closed, open, half-open, or "" (none recorded), from graydebug-circuits.
breaker_state() {
  k -n "$RELEASE_NS" get configmap graydebug-circuits -o json 2>/dev/null | python3 -c "
import json, sys
d = json.load(sys.stdin).get('data', {})
print(json.loads(d.get('$1', '{}')).get('state', ''))"
}
breaker_is() { [ "$(breaker_state "$1")" = "$2" ]; }
# forget_breaker NS.RELEASE: removes a release's breaker (a test's clean-up).
forget_breaker() {
  k -n "$RELEASE_NS" patch configmap graydebug-circuits --type json -p "[{\"op\":\"remove\",\"path\":\"/data/$1\"}]" >/dev/null 2>&1 || true
}
session_phase() { k -n "$1" get debugsession "$2" -o jsonpath='{.status.phase}' 2>/dev/null; }
phase_is() { [ "$(session_phase "$1" "$2")" = "$3" ]; }

# newest_pod NS SELECTOR: the name of the newest Running pod.
newest_pod() {
  k -n "$1" get pods -l "$2" --field-selector=status.phase=Running --sort-by=.metadata.creationTimestamp \
    -o jsonpath='{range .items[*]}{.metadata.deletionTimestamp}{"|"}{.metadata.name}{"\n"}{end}' | awk -F'|' '$1==""{n=$2} END{print n}'
}

# uid_pids POD_UID COMM: the host PIDs of the processes named COMM in that pod (the node's
# containers are host processes; a pod's cgroup path carries its UID).
uid_pids() {
  local p
  for p in $(pgrep -x "$2"); do
    if grep -q "${1//-/_}\|$1" "/proc/$p/cgroup" 2>/dev/null; then echo "$p"; fi
  done
  return 0
}
# pod_pids NS SELECTOR COMM: the same for every pod matching SELECTOR.
pod_pids() {
  local uid
  for uid in $(k -n "$1" get pods -l "$2" -o jsonpath='{.items[*].metadata.uid}' 2>/dev/null); do uid_pids "$uid" "$3"; done
}
# signal_pods SIGNAL NS SELECTOR COMM: sends SIGNAL to them; prints how many.
signal_pods() {
  local pids
  pids=$(pod_pids "$2" "$3" "$4")
  [ -z "$pids" ] || kill "-$1" $pids
  echo "$pids" | grep -c . || true
}

# leader_pod: the controller pod named by the Lease (holderIdentity is "<pod>-<pid>").
leader_pod() {
  local h p
  h=$(k -n "$RELEASE_NS" get lease -o jsonpath='{.items[*].spec.holderIdentity}' 2>/dev/null)
  [ -n "$h" ] || return 1
  for p in $(k -n "$RELEASE_NS" get pods -l app.kubernetes.io/component=controller -o jsonpath='{.items[*].metadata.name}'); do
    case $h in "$p"-*) echo "$p"; return 0 ;; esac
  done
  return 1
}
