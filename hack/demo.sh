#!/usr/bin/env bash
# `make demo`: graydebug end to end on a local control plane. Grows with the project (issue #9):
# today it brings up a real etcd + kube-apiserver, installs graydebug's CRD and shows a gray pod
# and a DebugSession through the real kubectl. Logs go to files; the paths are printed.
# Everything is stopped on exit, also on Ctrl-C.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
BIN=${GRAYDEBUG_BIN:-$REPO/build/bin}
DEMO_DIR=${DEMO_DIR:-$REPO/build/demo}

if [ -t 1 ]; then B=$'\e[1m'; G=$'\e[32m'; Y=$'\e[33m'; R=$'\e[0m'; else B=""; G=""; Y=""; R=""; fi
n=0
step() { n=$((n + 1)); printf '\n%s[%d] %s%s\n' "$B" "$n" "$*" "$R"; }
look() { printf '    %s▶ %s%s\n' "$Y" "$*" "$R"; }
ok() { printf '    %s✔ %s%s\n' "$G" "$*" "$R"; }
indent() { sed 's/^/      /'; }

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  step "Cleaning up"
  "$REPO/hack/cluster" down --dir "$DEMO_DIR/cluster" 2>&1 | indent
  if pgrep -f -- "$DEMO_DIR/cluster" >/dev/null; then
    echo "    processes left behind:"; pgrep -af -- "$DEMO_DIR/cluster" | indent; exit 1
  fi
  ok "no process left behind"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$DEMO_DIR"
KUBECTL="$("$REPO/hack/tools/bin-dir" kubernetes)/kubectl"

step "Starting a local control plane (etcd + kube-apiserver $("$KUBECTL" version --client -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])'))"
if ! KUBECONFIG=$("$REPO/hack/cluster" up --dir "$DEMO_DIR/cluster" --owner-pid $$ 2>"$DEMO_DIR/cluster-up.log"); then
  indent < "$DEMO_DIR/cluster-up.log"; exit 1
fi
export KUBECONFIG
tail -1 "$DEMO_DIR/cluster-up.log" | indent
k() { "$KUBECTL" "$@"; }
look "kubeconfig: $KUBECONFIG"
look "logs:       $DEMO_DIR/cluster/logs/"
echo "    \$ kubectl get --raw /readyz"; k get --raw /readyz | indent; echo

step "Installing graydebug's DebugSession CRD"
k apply -f "$REPO/manifests/crds/" | indent
k wait --for=condition=Established crd/debugsessions.graydebug.io --timeout=60s | indent

step "The graydebug binaries"
for b in graydebug-webhook graydebug-controller graydebug-agent kubectl-graydebug; do
  "$BIN/$b" --version | indent
done
look "serving comes with issues #4-#8; the demo grows with them"

step "A gray pod (label graydebug.io/inject=true, release v2-alpha) gets its IP"
k create -f - <<'YAML' | indent
apiVersion: v1
kind: Pod
metadata:
  name: order-v2-alpha-7d9f-x2x
  labels: {app: order, version: v2-alpha, graydebug.io/inject: "true"}
spec:
  containers:
  - {name: order, image: shop/order:v2-alpha}
YAML
k patch pod order-v2-alpha-7d9f-x2x --subresource=status --type=merge \
  -p '{"status":{"phase":"Running","podIP":"127.0.0.1","podIPs":[{"ip":"127.0.0.1"}]}}' | indent
k get pod order-v2-alpha-7d9f-x2x -o wide | indent

step "A developer asks for a DebugSession with kubectl"
k apply -f "$REPO/manifests/examples/debugsession.yaml" | indent
k get dbgs | indent
look "ttl defaulted by the schema: $(k get dbgs leak-hunt -o jsonpath='{.spec.ttl}')"

step "The schema refuses a session without a target"
if k create -f - 2>&1 <<'YAML' | indent; then echo "    unexpected: accepted"; exit 1; fi
apiVersion: graydebug.io/v1alpha1
kind: DebugSession
metadata: {name: no-target}
spec: {ttl: 5m}
YAML
ok "rejected"

printf '\n%sDemo finished.%s\n' "$B" "$R"
