#!/usr/bin/env bash
# The local control plane that tests and the demo stand on: time from `hack/cluster up` to
# /readyz ok and namespace default, and the cost of a DebugSession create (CRD with CEL rules)
# beside a ConfigMap create (a built-in type, the peer) through the real kubectl.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
if [ "$QUICK" = 1 ]; then RUNS=${RUNS:-1} CREATES=${CREATES:-5}; fi
RUNS=${RUNS:-5}
CREATES=${CREATES:-20}
dir=$(mktemp -d /tmp/graydebug-bench-XXXXXX)
trap '"$REPO/hack/cluster" down --dir "$dir" >/dev/null 2>&1; rm -rf "$dir"' EXIT
trap 'exit 130' INT TERM
kubectl="$("$REPO/hack/tools/bin-dir" kubernetes)/kubectl"

starts=()
for i in $(seq 1 "$RUNS"); do
  t0=$(now_ms)
  "$REPO/hack/cluster" up --dir "$dir" --owner-pid $$ >/dev/null 2>&1
  starts+=($(( $(now_ms) - t0 )))
  [ "$i" -lt "$RUNS" ] && "$REPO/hack/cluster" down --dir "$dir" >/dev/null 2>&1
done
k() { "$kubectl" --kubeconfig "$dir/kubeconfig" "$@"; }
k apply -f "$REPO/manifests/crds/" >/dev/null
k wait --for=condition=Established crd/debugsessions.graydebug.io --timeout=60s >/dev/null

sess=() cms=()
for i in $(seq 1 "$CREATES"); do
  t0=$(now_ms)
  printf '{"apiVersion":"graydebug.io/v1alpha1","kind":"DebugSession","metadata":{"name":"b%d"},"spec":{"target":{"pod":"p%d"}}}' "$i" "$i" | k create -f - >/dev/null
  sess+=($(( $(now_ms) - t0 )))
  t0=$(now_ms)
  k create configmap "c$i" --from-literal=a=b >/dev/null
  cms+=($(( $(now_ms) - t0 )))
done

out=$(mktemp)
cat > "$out" <<MD
## Local control plane (bench/control_plane.bench.sh)

Machine: $(machine). Command: \`make bench\` (\`RUNS=$RUNS CREATES=$CREATES bench/control_plane.bench.sh\`), $(date -u +%Y-%m-%d).

| what | median | runs |
|---|---|---|
| \`hack/cluster up\` → /readyz ok and namespace default (certificates reused) | $(printf '%s\n' "${starts[@]}" | median) ms | $RUNS |
| \`kubectl create\` of a DebugSession (CRD, schema + CEL rules) | $(printf '%s\n' "${sess[@]}" | median) ms | $CREATES |
| \`kubectl create configmap\` (peer: a built-in type, same run) | $(printf '%s\n' "${cms[@]}" | median) ms | $CREATES |

Each create is a whole kubectl process (start, discovery cache, TLS, request), so the difference
between the two rows is what the CRD's validation costs; the rest is kubectl.
MD
write_section control-plane "$out"
rm -f "$out"
sed -n '/bench:control-plane -->/,/\/bench:control-plane/p' "$(bench_doc)"
