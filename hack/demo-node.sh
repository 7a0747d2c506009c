#!/usr/bin/env bash
# `make demo` (the default): graydebug's story on a real node (hack/node: kubelet, containerd, runc,
# CNI, CoreDNS in a network namespace of their own). The graydebug image and the demo app are built
# without a registry (make images) and imported; the chart is installed in-cluster; the example gray
# Deployment gets its sidecars from the webhook pods; `kubectl graydebug attach` goes through the
# kubelet's port-forward; a real `dlv connect` stops a request at a breakpoint; the agent flags the
# leak; broken debuggers trip the breaker. The node is taken down at the end unless it was already
# running (or DEMO_KEEP=1). `DEMO_MODE=local make demo` is the older story with host processes.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=${DEMO_DIR:-$REPO/build/demo-node}
. "$REPO/tests/e2e/lib.sh"
rm -rf "$WORK"; mkdir -p "$WORK"
export HELM_CONFIG_HOME="$WORK/helm/config" HELM_CACHE_HOME="$WORK/helm/cache" HELM_DATA_HOME="$WORK/helm/data"

. "$REPO/hack/lib/demo-ui.sh"
run() { echo "    \$ $*"; "$@" 2>&1 | indent; }
wait_for() {  # seconds description command...
  local secs=$1 what=$2; shift 2
  wait_until "$secs" "$@" || fail "timed out after ${secs}s waiting for: $what"
}

started_node=0
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  trap '' PIPE
  step "Cleaning up"
  stop_all
  signal_pods CONT shop app=order dlv 2>/dev/null || true
  k delete namespace shop --wait=false >/dev/null 2>&1 || true
  forget_breaker shop.v2-alpha
  if [ "$started_node" = 1 ] && [ -z "${DEMO_KEEP:-}" ]; then
    "$REPO/hack/node" down --dir "$NODE_DIR" 2>&1 | indent
    local left
    left=$(pgrep -af -- "[${NODE_DIR:0:1}]${NODE_DIR:1}" || true)
    if [ -n "$left" ]; then echo "    processes left behind:"; echo "$left" | indent; exit 1; fi
    ok "node down, no process left behind"
  else
    ok "the node keeps running (it was up before the demo, or DEMO_KEEP=1): make cluster-down stops it"
  fi
  [ "$rc" -eq 0 ] && printf '\n%sDemo finished on the real node; no process left behind.%s\n' "$B" "$R"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "A real node: etcd, kube-apiserver, controller-manager, scheduler, containerd $(basename "$(tool_bindir containerd)" | sed 's/containerd-//'), runc, kubelet, kube-proxy, CNI, CoreDNS"
"$REPO/hack/node" status --dir "$NODE_DIR" 2>/dev/null || started_node=1
"$REPO/hack/node" up --dir "$NODE_DIR" >/dev/null 2>"$WORK/node-up.log" || { indent < "$WORK/node-up.log"; exit 1; }
indent < "$WORK/node-up.log"
look "kubeconfig: $KUBECONFIG   (the node lives in its own network namespace at 10.201.0.2)"
run kubectl get nodes -o wide

step "The graydebug image and the demo app, built without a registry and imported into the node"
tars=$("$REPO/hack/images.sh" build 2>"$WORK/images.log") || { indent < "$WORK/images.log"; exit 1; }
"$REPO/hack/node" import --dir "$NODE_DIR" $tars
node_exec "$(tool_bindir containerd)/ctr" --address "$NODE_DIR/containerd/containerd.sock" -n k8s.io images tag --force "$APP_IMAGE" "$EXAMPLE_IMAGE" >/dev/null
run sh -c "kubectl get node graydebug-node -o jsonpath='{range .status.images[*]}{.names[0]}{\"\\n\"}{end}' | grep -v pause"

step "helm install graydebug, in-cluster (only the image is set)"
t0=$SECONDS
helm_install --set controller.pauseRollout=true > "$WORK/helm.log" 2>&1 || { indent < "$WORK/helm.log"; exit 1; }
ok "installed and Ready in $((SECONDS - t0)) s"
run kubectl -n "$RELEASE_NS" get pods -o wide

step "A gray release: manifests/examples/gray-deployment.yaml, as a user applies it"
k create namespace shop --dry-run=client -o yaml | k apply -f - >/dev/null
run kubectl apply -f "$REPO/manifests/examples/gray-deployment.yaml"
wait_for 120 "the gray pod Ready" pods_ready shop app=order 1
pod=$(newest_pod shop app=order)
ip=$(k -n shop get pod "$pod" -o jsonpath='{.status.podIP}')
run kubectl -n shop get pod "$pod" -o jsonpath='{range .spec.containers[*]}{.name}{"\t"}{.image}{"\n"}{end}'
ok "the webhook (running in its pods) injected dlv-server and graydebug-agent; dlv listens on the pod's loopback only"

step "kubectl graydebug attach deploy/order-v2-alpha: a DebugSession, Active, then the port-forward through the kubelet"
port=$(free_port)
kubectl graydebug attach deploy/order-v2-alpha -n shop --local-port "$port" --ttl 15m \
  --reason "heap grows 40 MB/h after v2-alpha" >"$WORK/attach.log" 2>&1 &
pids+=($!)
wait_for 120 "Port-forward ready" grep -q 'Port-forward ready' "$WORK/attach.log"
indent < "$WORK/attach.log"
run kubectl -n shop get debugsessions

step "A real dlv client through the port-forward: a breakpoint in the /order handler, a request hits it"
line=$(grep -n 'fmt.Fprintf(w, "order %d ok' "$REPO/demo/leaky-app/main.go" | cut -d: -f1)
look "dlv connect 127.0.0.1:$port; break main.go:$line; continue; (curl http://$ip:8080/order); print n; continue"
python3 "$REPO/tests/e2e/dlv_session.py" --dlv "$DLV" --addr "127.0.0.1:$port" --location "main.go:$line" \
  --var n --url "http://$ip:8080/order" | indent || fail "the dlv session failed"
run curl -sS --max-time 5 "http://$ip:8080/order"
ok "the app kept serving after the debugger left"

step "The leak (seed chapter 2: a map that only grows): the agent sidecar flags it"
run curl -sS --max-time 5 "http://$ip:8080/leak?kind=map&rate=4096"
if wait_until 240 sh -c "curl -fsS --max-time 5 http://$ip:9102/metrics | grep -q '^graydebug_target_leak_suspected 1'"; then
  run sh -c "curl -fsS http://$ip:9102/metrics | grep -E '^graydebug_target_(rss_bytes|heap|leak)' | head -6"
  ok "graydebug_target_leak_suspected 1"
else
  fail "the leak was not flagged within 240 s"
fi
curl -sS --max-time 5 "http://$ip:8080/leak/reset" >/dev/null || true

step "When debugging itself is broken: dlv frozen in the gray pod, sessions fail, the breaker opens"
kill -INT "${pids[0]}" 2>/dev/null || true
wait_until 30 sh -c "[ -z \"\$(kubectl -n shop get debugsession -o name)\" ]" || true
signal_pods STOP shop app=order dlv >/dev/null
for i in $(seq 1 7); do
  k -n shop apply -f - >/dev/null <<YAML
apiVersion: graydebug.io/v1alpha1
kind: DebugSession
metadata: {name: frozen-$i}
spec: {target: {pod: $pod}, ttl: 10m, reason: demo}
YAML
done
look "7 sessions x 3 tries against a frozen dlv: 21 failed attaches (> 20 attempts, > 5 %)"
wait_for 240 "the breaker to open" sh -c "kubectl graydebug status -n shop 2>/dev/null | grep 'shop/v2-alpha' | grep -qi open"
run kubectl graydebug status -n shop
run kubectl -n shop get debugsessions
k -n shop apply -f - >/dev/null <<'YAML'
apiVersion: graydebug.io/v1alpha1
kind: DebugSession
metadata: {name: after-trip}
spec: {target: {selector: {matchLabels: {app: order}}}, ttl: 10m}
YAML
wait_for 60 "the new session to be Rejected" sh -c "[ \"\$(kubectl -n shop get debugsession after-trip -o jsonpath='{.status.phase}')\" = Rejected ]"
ok "a new session is Rejected (CircuitOpen)"
wait_for 30 "the rollout to be paused" sh -c "[ \"\$(kubectl -n shop get deploy order-v2-alpha -o jsonpath='{.spec.paused}')\" = true ]"
ok "pauseRollout: the Deployment is paused"
k -n shop scale deploy order-v2-alpha --replicas=2 >/dev/null
wait_for 120 "a second pod" pods_ready shop app=order 2
new=$(newest_pod shop app=order)
run kubectl -n shop get pod "$new" -o jsonpath='{.spec.containers[*].name}{"\n"}'
ok "a new pod of the open release came up without sidecars"
signal_pods CONT shop app=order dlv >/dev/null
