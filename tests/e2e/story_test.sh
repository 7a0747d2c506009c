#!/usr/bin/env bash
# The story on real pods (issue #16 item 4, #19 items 1-2): the example gray Deployment gets both
# sidecars from the in-cluster webhook (classic and native-sidecar modes), dlv-server attaches
# across containers, `kubectl graydebug attach deploy/NAME` reaches Active through the pod network,
# its port-forward through the kubelet works on the first try, a real `dlv connect` sets a
# breakpoint in a handler that a request hits, reads a variable and continues, the app keeps
# serving, and the leak is detected. Runs once with the app as root (the image's default, like most
# Go images) and once as a non-root user.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${WORK:-$REPO/build/e2e-work}/story
. "$REPO/tests/e2e/lib.sh"
mkdir -p "$WORK"
trap 'stop_all' EXIT

MAIN_GO=$REPO/demo/leaky-app/main.go
# The /order handler's reply line: `n` is set just before it.
ORDER_LINE=$(grep -n 'fmt.Fprintf(w, "order %d ok' "$MAIN_GO" | cut -d: -f1)

deploy_gray() {  # namespace [kubectl patch of the pod template]
  local ns=$1 patch=${2:-}
  k create namespace "$ns" --dry-run=client -o yaml | k apply -f - >/dev/null
  # The example as a user applies it, with the app listening on the pod network.
  sed "s/^  namespace: shop$/  namespace: $ns/" "$REPO/manifests/examples/gray-deployment.yaml" | k apply -f - >/dev/null
  [ -z "$patch" ] || k -n "$ns" patch deploy order-v2-alpha --type strategic -p "$patch" >/dev/null
  k -n "$ns" rollout status deploy/order-v2-alpha --timeout=120s >/dev/null
}

has_sidecars() {  # ns pod mode(classic|native)
  local c i
  c=$(k -n "$1" get pod "$2" -o jsonpath='{.spec.containers[*].name}')
  i=$(k -n "$1" get pod "$2" -o jsonpath='{range .spec.initContainers[*]}{.name}={.restartPolicy}{" "}{end}')
  [ "$(k -n "$1" get pod "$2" -o jsonpath='{.spec.shareProcessNamespace}')" = true ] || { echo "no shareProcessNamespace"; return 1; }
  if [ "$3" = native ]; then
    [[ " $i " == *" dlv-server=Always "* && " $i " == *" graydebug-agent=Always "* ]] || { echo "initContainers: $i"; return 1; }
  else
    [[ " $c " == *" dlv-server "* && " $c " == *" graydebug-agent "* ]] || { echo "containers: $c"; return 1; }
  fi
}

# attach_and_debug NS LABEL: kubectl graydebug attach, the real dlv client through its port-forward.
attach_and_debug() {
  local ns=$1 label=$2 port pod ip out=$WORK/attach-$1.out
  port=$(free_port)
  kubectl graydebug attach deploy/order-v2-alpha -n "$ns" --local-port "$port" --ttl 10m \
    --reason "e2e $label" >"$out" 2>&1 &
  local pid=$!
  pids+=("$pid")
  check "$label: kubectl graydebug attach reaches Active and the port-forward is ready" \
    wait_until 120 grep -q 'Port-forward ready' "$out"
  if ! grep -q 'Port-forward ready' "$out"; then sed 's/^/       /' "$out"; return 0; fi
  pod=$(k -n "$ns" get debugsession -o jsonpath='{.items[0].status.pod}')
  ip=$(k -n "$ns" get pod "$pod" -o jsonpath='{.status.podIP}')
  check "$label: the session is Active with an attach latency" sh -c \
    "[ \"\$(kubectl -n $ns get debugsession -o jsonpath='{.items[0].status.phase}')\" = Active ] &&
     [ -n \"\$(kubectl -n $ns get debugsession -o jsonpath='{.items[0].status.attach.latencySeconds}')\" ]"
  check "$label: a real dlv client through the port-forward: breakpoint in /order hit, n read, continued" \
    python3 "$REPO/tests/e2e/dlv_session.py" --dlv "$DLV" --addr "127.0.0.1:$port" \
      --location "main.go:$ORDER_LINE" --var n --url "http://$ip:8080/order"
  check "$label: the port-forward survived the session (first try, no reset)" \
    sh -c "kill -0 $pid && ! grep -qi 'lost connection to pod' '$out'"
  check "$label: the app keeps serving after the debugger left" sh -c "curl -fsS --max-time 5 http://$ip:8080/order | grep -q 'ok'"
  # Ctrl-C: the plugin stops the port-forward and ends its session.
  kill -INT "$pid"
  check "$label: Ctrl-C ends the session" wait_until 30 sh -c "[ -z \"\$(kubectl -n $ns get debugsession -o name)\" ]"
}

# --- classic sidecars, the app as root (the image's user) ---------------------------------------
deploy_gray shop-root
pod=$(newest_pod shop-root app=order)
check "root app: the in-cluster webhook injected both sidecars" has_sidecars shop-root "$pod" classic
check "root app: dlv-server runs as the app's user (root) with only SYS_PTRACE added" sh -c \
  "kubectl -n shop-root get pod $pod -o json | python3 -c '
import json,sys
p=json.load(sys.stdin); c=[c for c in p[\"spec\"][\"containers\"] if c[\"name\"]==\"dlv-server\"][0]
sc=c.get(\"securityContext\",{}); caps=sc.get(\"capabilities\",{})
assert caps.get(\"add\")==[\"SYS_PTRACE\"], caps
assert \"ALL\" in caps.get(\"drop\",[]), caps
assert sc.get(\"allowPrivilegeEscalation\") is False, sc
'"
check "root app: all containers Ready" pods_ready shop-root app=order 1
attach_and_debug shop-root "root app"

ip=$(k -n shop-root get pod "$pod" -o jsonpath='{.status.podIP}')
curl -fsS --max-time 5 "http://$ip:8080/leak?kind=map&rate=4096" >/dev/null || true
check "root app: the agent flags the leak (graydebug_target_leak_suspected 1)" \
  wait_until 240 sh -c "curl -fsS --max-time 5 http://$ip:9102/metrics | grep -q '^graydebug_target_leak_suspected 1'"
curl -fsS --max-time 5 "http://$ip:8080/leak/reset" >/dev/null || true

# --- classic sidecars, the app as a non-root user ----------------------------------------------
deploy_gray shop-nonroot '{"spec":{"template":{"spec":{"securityContext":{"runAsUser":1000,"runAsGroup":1000,"runAsNonRoot":true}}}}}'
pod=$(newest_pod shop-nonroot app=order)
check "non-root app: both sidecars injected" has_sidecars shop-nonroot "$pod" classic
check "non-root app: dlv-server runs as the app's uid 1000" sh -c \
  "[ \"\$(kubectl -n shop-nonroot get pod $pod -o jsonpath='{.spec.containers[?(@.name==\"dlv-server\")].securityContext.runAsUser}')\" = 1000 ] ||
   [ \"\$(kubectl -n shop-nonroot get pod $pod -o jsonpath='{.spec.securityContext.runAsUser}')\" = 1000 ]"
attach_and_debug shop-nonroot "non-root app"

# --- native sidecars ---------------------------------------------------------------------------
check "helm upgrade to native sidecars" helm_install --reuse-values --set injection.nativeSidecars=true
deploy_gray shop-native
pod=$(newest_pod shop-native app=order)
check "native: sidecars are initContainers with restartPolicy Always" has_sidecars shop-native "$pod" native
attach_and_debug shop-native "native sidecars"
check "helm upgrade back to classic sidecars" helm_install --reuse-values --set injection.nativeSidecars=false

for ns in shop-root shop-nonroot shop-native; do k delete namespace "$ns" --wait=false >/dev/null; done
echo "passed $passed, failed $failed"
[ "$failed" -eq 0 ]
