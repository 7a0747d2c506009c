#!/usr/bin/env bash
# CTest fixture e2e_node (setup): the real node up (hack/node up), graydebug's images built and
# imported, and the checks that every component runs. The host's state before the node is kept
# for node_down.sh's leftover check.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${WORK:-$REPO/build/e2e-work}
. "$REPO/tests/e2e/lib.sh"
mkdir -p "$WORK"

# What the host looks like without a node, compared by node_down.sh.
if [ ! -f "$NODE_DIR/kubeconfig" ]; then "$REPO/tests/e2e/host_state.sh" > "$WORK/host-before.txt"; fi

start=$(date +%s.%N)
check "hack/node up starts a node and prints its kubeconfig" sh -c "\"$REPO/hack/node\" up --dir \"$NODE_DIR\" > \"$WORK/up.out\" 2>\"$WORK/up.err\" && [ \"\$(cat \"$WORK/up.out\")\" = \"$NODE_DIR/kubeconfig\" ]"
[ "$failed" -eq 0 ] || { cat "$WORK/up.err" >&2; exit 1; }
echo "node up in $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s"

check "hack/node up again is a no-op on a running node" sh -c "\"$REPO/hack/node\" up --dir \"$NODE_DIR\" 2>&1 | grep -q 'already running'"
for c in etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy; do
  check "$c runs inside the node's namespaces" sh -c "pid=\$(cat \"$NODE_DIR/run/$c.pid\") && [ \"\$(readlink /proc/\$pid/ns/net)\" != \"\$(readlink /proc/self/ns/net)\" ]"
done
check "node Ready" sh -c "[ \"\$(kubectl get node graydebug-node -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}')\" = True ]"
check "CoreDNS answers kubernetes.default.svc.cluster.local = 10.96.0.1 through the kube-dns Service" \
  sh -c "[ \"\$(python3 '$REPO/tests/e2e/dns_query.py' 10.96.0.10 kubernetes.default.svc.cluster.local)\" = 10.96.0.1 ]"
check "no name outside the cluster resolves (no upstream DNS)" sh -c "! python3 '$REPO/tests/e2e/dns_query.py' 10.96.0.10 debian.org"
check "the node has no default route" sh -c "! \"$REPO/hack/node\" exec --dir \"$NODE_DIR\" -- ip route show default | grep -q ."

# graydebug's images, built without a registry, imported under the names the chart and the
# example Deployment use.
check "make images' archives import into the node" sh -c "
  set -e
  tars=\$(\"$REPO/hack/images.sh\" build)
  \"$REPO/hack/node\" import --dir \"$NODE_DIR\" \$tars
  \"$REPO/hack/node\" exec --dir \"$NODE_DIR\" -- \"$(tool_bindir containerd)/ctr\" --address \"$NODE_DIR/containerd/containerd.sock\" -n k8s.io images tag --force \"$APP_IMAGE\" \"$EXAMPLE_IMAGE\" >/dev/null"
check "the graydebug, demo app, pause and CoreDNS images are in the node's containerd" sh -c \
  "\"$REPO/hack/node\" exec --dir \"$NODE_DIR\" -- \"$(tool_bindir containerd)/ctr\" --address \"$NODE_DIR/containerd/containerd.sock\" -n k8s.io images ls -q 2>/dev/null > '$WORK/images.txt' &&
   grep -qx 'docker.io/$IMAGE_REPO:$IMAGE_TAG' '$WORK/images.txt' && grep -qx '$APP_IMAGE' '$WORK/images.txt' &&
   grep -qx '$EXAMPLE_IMAGE' '$WORK/images.txt' && grep -q pause '$WORK/images.txt' && grep -q coredns '$WORK/images.txt'"
echo "passed $passed, failed $failed"
[ "$failed" -eq 0 ]
