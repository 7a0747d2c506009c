#!/usr/bin/env bash
# `DEMO_MODE=local make demo`: graydebug end to end on a local control plane (issue #9). A real etcd +
# kube-apiserver; graydebug's webhook and controller as local processes; a gray pod whose "node" is
# this machine: its app (the demo leaky service), `graydebug-agent launch-dlv` with a real dlv and
# the agent sidecar run here, and the pod's IP is 127.0.0.1. Logs go to files whose paths are
# printed. Everything is stopped on exit, also on Ctrl-C.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
BIN=${GRAYDEBUG_BIN:-$REPO/build/bin}
DEMO_DIR=${DEMO_DIR:-$REPO/build/demo}

. "$REPO/hack/lib/demo-ui.sh"
# wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND every 0.2 s.
wait_for() {
  local secs=$1 what=$2; shift 2
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || fail "timed out after ${secs}s waiting for: $what"
    sleep 0.2
  done
}

pids=()
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  # Output piped into `head` that has gone away must not cut the cleanup short (SIGPIPE).
  trap '' PIPE
  step "Cleaning up"
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
  done
  "$REPO/hack/cluster" down --dir "$DEMO_DIR/cluster" 2>&1 | indent
  local left
  left=$(pgrep -af -- "$DEMO_DIR" || true)
  if [ -n "$left" ]; then
    echo "    processes left behind:"; echo "$left" | indent; exit 1
  fi
  ok "no process left behind"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rm -rf "$DEMO_DIR"
mkdir -p "$DEMO_DIR/logs" "$DEMO_DIR/bin"
KUBECTL="$("$REPO/hack/tools/bin-dir" kubernetes)/kubectl"
HELM="$("$REPO/hack/tools/bin-dir" helm)/helm"
# helm must not read or write the caller's configuration, repositories or plugins.
export HELM_CONFIG_HOME="$DEMO_DIR/helm/config" HELM_CACHE_HOME="$DEMO_DIR/helm/cache" HELM_DATA_HOME="$DEMO_DIR/helm/data"
DLV="$("$REPO/hack/tools/bin-dir" dlv)/dlv"
# The demo's processes run from copies under $DEMO_DIR, so cleanup can prove none is left.
for b in graydebug-webhook graydebug-controller graydebug-agent kubectl-graydebug leaky-app; do
  cp "$BIN/$b" "$DEMO_DIR/bin/"
done
cp "$DLV" "$DEMO_DIR/bin/dlv"
D="$DEMO_DIR/bin"
LOGS="$DEMO_DIR/logs"
. "$REPO/hack/lib/local-install.sh"
metric() { curl -sf "$1" | awk -v m="$2" 'index($0, m) == 1 {print $NF; exit}'; }

step "A local control plane (etcd + kube-apiserver $("$KUBECTL" version --client -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])'))"
if ! KUBECONFIG=$("$REPO/hack/cluster" up --dir "$DEMO_DIR/cluster" --owner-pid $$ 2>"$LOGS/cluster-up.log"); then
  indent < "$LOGS/cluster-up.log"; exit 1
fi
export KUBECONFIG
k() { "$KUBECTL" "$@"; }
look "kubeconfig: $KUBECONFIG"
look "logs:       $LOGS/ and $DEMO_DIR/cluster/logs/"
echo "    \$ kubectl get --raw /readyz"; { k get --raw /readyz; echo; } | indent

WEBHOOK_PORT=$(free_port); WEBHOOK_METRICS=$(free_port)
CTL_METRICS=$(free_port); CTL_HEALTH=$(free_port)
DLV_PORT=$(free_port); AGENT_PORT=$(free_port); APP_PORT=$(free_port)
step "Installing graydebug with its Helm chart (helm $("$HELM" version --template '{{.Version}}'))"
k create namespace shop | indent
# webhook.url: no kubelet runs pods here, so the webhook runs as a local process and the API server
# calls it at 127.0.0.1 (docs/helm.md, "Out-of-cluster webhook"). The injected sidecars get this
# machine's free ports, since several pods share one "node" here; the controller re-probes every
# second and a tripped breaker cools down for a minute, so the story fits in a few seconds.
echo "    \$ helm install graydebug charts/graydebug -n graydebug-system --create-namespace --set webhook.url=https://127.0.0.1:$WEBHOOK_PORT ..."
"$HELM" install graydebug "$REPO/charts/graydebug" -n graydebug-system --create-namespace --wait=false \
  --set "webhook.url=https://127.0.0.1:$WEBHOOK_PORT" \
  --set "injection.dlv.port=$DLV_PORT" --set "injection.agent.port=$AGENT_PORT" \
  --set controller.reprobeInterval=1s --set controller.breaker.coolDown=60s > "$LOGS/helm-install.txt" 2>&1 ||
  { indent < "$LOGS/helm-install.txt"; fail "helm install failed"; }
grep -E '^(NAME|STATUS|REVISION):' "$LOGS/helm-install.txt" | indent
look "NOTES (how to label a Deployment and start a session): $LOGS/helm-install.txt"
k wait --for=condition=Established crd/debugsessions.graydebug.io --timeout=60s >/dev/null
k get mutatingwebhookconfiguration graydebug -o jsonpath='{range .webhooks[*]}{.name}{" -> "}{.clientConfig.url}{"  failurePolicy="}{.failurePolicy}{"\n"}{end}' | indent
# What the chart's Deployments would mount, for the local processes: the certificate, the config
# files and a token of each ServiceAccount (so they run with the chart's least-privilege RBAC).
chart_files "$KUBECTL" graydebug-system "$DEMO_DIR" 1h
ok "serving certificate from Secret graydebug-webhook-tls: $(openssl x509 -in "$DEMO_DIR/tls.crt" -noout -ext subjectAltName | grep -o 'IP Address:[0-9.]*')"
ok "configs from ConfigMaps graydebug-webhook and graydebug-controller; tokens of their ServiceAccounts"

step "Starting graydebug-webhook and graydebug-controller"
POD_NAMESPACE=graydebug-system "$D/graydebug-webhook" --listen="127.0.0.1:$WEBHOOK_PORT" --metrics-addr="127.0.0.1:$WEBHOOK_METRICS" \
  --tls-cert-file="$DEMO_DIR/tls.crt" --tls-key-file="$DEMO_DIR/tls.key" --config="$DEMO_DIR/webhook.yaml" \
  --kubeconfig="$DEMO_DIR/webhook.kubeconfig" --circuits-namespace=graydebug-system 2>"$LOGS/webhook.log" &
pids+=($!); disown "$!"
POD_NAMESPACE=graydebug-system "$D/graydebug-controller" --kubeconfig="$DEMO_DIR/controller.kubeconfig" --metrics-addr="127.0.0.1:$CTL_METRICS" \
  --health-addr="127.0.0.1:$CTL_HEALTH" --config="$DEMO_DIR/controller.yaml" --lease-namespace=graydebug-system \
  2>"$LOGS/controller.log" &
pids+=($!); disown "$!"
wait_for 30 "webhook /readyz" curl -sf --cacert "$DEMO_DIR/ca.crt" "https://127.0.0.1:$WEBHOOK_PORT/readyz"
wait_for 30 "controller /readyz" curl -sf "http://127.0.0.1:$CTL_HEALTH/readyz"
ok "webhook ready on https://127.0.0.1:$WEBHOOK_PORT (metrics :$WEBHOOK_METRICS)"
ok "controller ready (metrics http://127.0.0.1:$CTL_METRICS/metrics)"

gray_pod() { # name release
  cat <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: $1
  namespace: shop
  labels: {app: order, version: $2, graydebug.io/inject: "true"}
spec:
  containers:
  - {name: order, image: shop/order:$2, ports: [{containerPort: $APP_PORT}]}
YAML
}
step "A gray pod (release v2-alpha) is created: it comes back with dlv-server and graydebug-agent"
containers_of() { gray_pod "$1" "$2" | k create --dry-run=server -o jsonpath='{.spec.containers[*].name}' -f -; }
# Output captured first: under pipefail, `| grep -q` fails when grep stops reading early, and a
# failed dry-run must not pass as "not injected".
injected() { local c; c=$(containers_of probe v2-alpha) && [[ " $c " == *" dlv-server "* ]]; }
not_injected() { local c; c=$(containers_of probe v2-alpha) && [[ " $c " != *" dlv-server "* ]]; }
phase_is() { [ "$(k get dbgs -n shop "$1" -o jsonpath='{.status.phase}')" = "$2" ]; }
agent_metric_is() { [ "$(metric "http://127.0.0.1:$AGENT_PORT/metrics" "$1")" = "$2" ]; }
successes_at_least() {
  [ "$(curl -sf "http://127.0.0.1:$CTL_METRICS/metrics" | awk '/^graydebug_attach_attempts_total.*success/ {s += $2} END {print int(s)}')" -ge "$1" ]
}
breaker_open() {
  local m
  m=$(curl -sf "http://127.0.0.1:$CTL_METRICS/metrics") &&
    grep -qF 'graydebug_circuit_state{namespace="shop",release="v2-alpha"} 2' <<<"$m"
}
wait_for 30 "the API server to call the webhook" injected
gray_pod order-v2-alpha-7d9f-x2x v2-alpha | k create -f - | indent
echo "    \$ kubectl get pod -n shop order-v2-alpha-7d9f-x2x -o jsonpath='{.spec.containers[*].name}'"
look "$(k get pod -n shop order-v2-alpha-7d9f-x2x -o jsonpath='{.spec.containers[*].name}')"
look "shareProcessNamespace=$(k get pod -n shop order-v2-alpha-7d9f-x2x -o jsonpath='{.spec.shareProcessNamespace}')  label graydebug.io/injected=$(k get pod -n shop order-v2-alpha-7d9f-x2x -o jsonpath='{.metadata.labels.graydebug\.io/injected}')"
look "dlv: $(k get pod -n shop order-v2-alpha-7d9f-x2x -o jsonpath='{.spec.containers[1].args}')  capabilities $(k get pod -n shop order-v2-alpha-7d9f-x2x -o jsonpath='{.spec.containers[1].securityContext.capabilities.add}')"
k create -n shop -f - <<'YAML' | indent
apiVersion: v1
kind: Pod
metadata: {name: order-stable-5c6d-abc, labels: {app: order, version: v1}}
spec: {containers: [{name: order, image: shop/order:v1}]}
YAML
look "the stable pod is untouched: $(k get pod -n shop order-stable-5c6d-abc -o jsonpath='{.spec.containers[*].name}')"

step "The pod runs here: the leaky app, launch-dlv attaching a real dlv, the agent; pod IP 127.0.0.1"
"$D/leaky-app" --listen "127.0.0.1:$APP_PORT" 2>"$LOGS/leaky-app.log" &
APP=$!; pids+=($APP); disown "$APP"
"$D/graydebug-agent" launch-dlv --dlv-path="$D/dlv" --target-pid="$APP" --listen="127.0.0.1:$DLV_PORT" \
  >"$LOGS/dlv.log" 2>&1 &
LAUNCHER=$!; pids+=($LAUNCHER); disown "$LAUNCHER"
"$D/graydebug-agent" --listen="127.0.0.1:$AGENT_PORT" --dlv-addr="127.0.0.1:$DLV_PORT" --target-pid="$APP" \
  --expvar-url="http://127.0.0.1:$APP_PORT/debug/vars" --sample-interval=500ms --leak-window=4s \
  --leak-baseline-window=60s --leak-floor=1048576 --leak-consecutive=2 2>"$LOGS/agent.log" &
pids+=($!); disown "$!"
wait_for 30 "the agent's dlv probe" curl -sf "http://127.0.0.1:$AGENT_PORT/probe/dlv"
k patch pod -n shop order-v2-alpha-7d9f-x2x --subresource=status --type=merge \
  -p '{"status":{"phase":"Running","podIP":"127.0.0.1","podIPs":[{"ip":"127.0.0.1"}]}}' >/dev/null
ok "leaky-app pid $APP; $(grep -m1 'dlv started' "$LOGS/dlv.log" | python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); print("dlv pid", d["dlv_pid"], "attached, listening on", d["listen"])')"
look "GET /probe/dlv → $(curl -s "http://127.0.0.1:$AGENT_PORT/probe/dlv")"

step "A developer creates a DebugSession with kubectl; the controller attaches"
k create -n shop --as=alice --as-group=system:masters -f - <<'YAML' | indent
apiVersion: graydebug.io/v1alpha1
kind: DebugSession
metadata: {name: leak-hunt}
spec:
  target: {pod: order-v2-alpha-7d9f-x2x}
  ttl: 15m
  reason: "heap grows 40 MB/h after v2-alpha"
  requestedBy: {username: somebody-else}
YAML
wait_for 30 "the session to be Active" phase_is leak-hunt Active
k get dbgs -n shop | indent
look "requestedBy (stamped by the webhook): $(k get dbgs -n shop leak-hunt -o jsonpath='{.spec.requestedBy.username}')"
look "attach latency: $(k get dbgs -n shop leak-hunt -o jsonpath='{.status.attach.latencySeconds}' | awk '{printf "%.1f ms", $1 * 1000}') (controller -> agent -> dlv GetVersion -> back)"
look "connect: $(k get dbgs -n shop leak-hunt -o jsonpath='{.status.connect}')"
echo "    (no kubelet here, so no port-forward: the pod's loopback is this machine's; a real dlv client call:)"
python3 - "$DLV_PORT" <<'PY' | indent
import json, socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5)
def call(method, params, i):
    s.sendall(json.dumps({"method": method, "params": [params], "id": i}).encode() + b"\n")
    buf = b""
    while not buf.endswith(b"\n"):
        buf += s.recv(1 << 20)
    return json.loads(buf)["result"]
version = call("RPCServer.GetVersion", {}, 1)["DelveVersion"].splitlines()[0]
state = call("RPCServer.State", {"NonBlocking": True}, 2)["State"]
print(f"dlv answers: {version}; target running: {state['Running']}")
PY
if "$D/kubectl-graydebug" attach --help >/dev/null 2>&1; then
  echo "    \$ kubectl graydebug attach order-v2-alpha-7d9f-x2x --ttl 10m --no-port-forward"
  KUBECTL="$KUBECTL" "$D/kubectl-graydebug" attach order-v2-alpha-7d9f-x2x -n shop --ttl 10m --reason demo \
    --no-port-forward 2>"$LOGS/plugin.log" | indent || look "kubectl graydebug attach: see $LOGS/plugin.log"
fi

step "The leak is switched on; the agent sees it (seed chapters 1 and 4)"
has_growth() { [ -n "$(metric "http://127.0.0.1:$AGENT_PORT/metrics" graydebug_target_heap_growth_bytes_per_second)" ]; }
growth() { metric "http://127.0.0.1:$AGENT_PORT/metrics" graydebug_target_heap_growth_bytes_per_second | awk '{printf "%.2f MiB/s", $1 / 1048576}'; }
wait_for 30 "a first growth rate" has_growth
look "before: heap growth $(growth), leak_suspected $(metric "http://127.0.0.1:$AGENT_PORT/metrics" graydebug_target_leak_suspected)"
curl -s "http://127.0.0.1:$APP_PORT/leak?kind=list&rate=16384" | indent
wait_for 60 "leak_suspected" agent_metric_is graydebug_target_leak_suspected 1
look "after:  heap growth $(growth), leak_suspected $(metric "http://127.0.0.1:$AGENT_PORT/metrics" graydebug_target_leak_suspected)"
curl -s "http://127.0.0.1:$APP_PORT/leak/off" >/dev/null
look "retained by the app: $(curl -s "http://127.0.0.1:$APP_PORT/stats")  (list elements kept by the index map)"

step "Prometheus' view of the controller"
curl -s "http://127.0.0.1:$CTL_METRICS/metrics" | grep -E '^(debug_session_active|dlv_attach_latency_seconds_(count|sum)|graydebug_attach_attempts_total|graydebug_circuit_state)' | indent

step "dlv is made to fail: attach attempts fail, the breaker of v2-alpha opens (> 5 %)"
k create -n shop -f - <<'YAML' >/dev/null
apiVersion: graydebug.io/v1alpha1
kind: DebugSession
metadata: {name: second-look}
spec: {target: {pod: order-v2-alpha-7d9f-x2x}}
YAML
wait_for 60 "20 attach attempts in the window" successes_at_least 20
DLV_PID=$(pgrep -P "$LAUNCHER" dlv || true)
kill -9 "$LAUNCHER"; [ -n "$DLV_PID" ] && kill -9 "$DLV_PID"
ok "killed launch-dlv and dlv (pid ${DLV_PID:-?})"
wait_for 30 "the breaker to open" breaker_open
curl -s "http://127.0.0.1:$CTL_METRICS/metrics" | grep -E '^(graydebug_attach_attempts_total|graydebug_circuit_state|graydebug_circuit_trips_total)' | indent
look "ConfigMap graydebug-circuits: $(k get configmap -n graydebug-system graydebug-circuits -o jsonpath='{.data.shop\.v2-alpha}' | python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); w=d["window"]; print(d["state"], "-", sum(1 for e in w if not e[1]), "failures of", len(w), "attempts")')"
wait_for 30 "the webhook to skip the release" not_injected
gray_pod order-v2-alpha-7d9f-y3y v2-alpha | k create -f - | indent
look "new gray pod of v2-alpha: $(k get pod -n shop order-v2-alpha-7d9f-y3y -o jsonpath='{.spec.containers[*].name}')  (no sidecars: circuit-open)"
k create -n shop -f - <<'YAML' | indent
apiVersion: graydebug.io/v1alpha1
kind: DebugSession
metadata: {name: one-more-try}
spec: {target: {pod: order-v2-alpha-7d9f-x2x}}
YAML
wait_for 30 "the new session to be Rejected" phase_is one-more-try Rejected
k get dbgs -n shop | indent
look "$(k get dbgs -n shop one-more-try -o jsonpath='{.status.conditions[?(@.type=="CircuitAllowed")].message}')"
look "another gray release (v3) still gets sidecars: $(containers_of order-v3-x v3)"

printf '\n%sDemo finished.%s Logs: %s\n' "$B" "$R" "$LOGS"
