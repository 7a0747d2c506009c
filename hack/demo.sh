#!/usr/bin/env bash
# `make demo`: graydebug end to end. By default (DEMO_MODE=node) the story on a real node
# (hack/demo-node.sh: kubelet, containerd, the image, the chart in-cluster, a real port-forward and
# breakpoint); DEMO_MODE=local on a bare control plane with the pod's processes on this machine
# (hack/demo-local.sh, quicker, no node).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
case "${DEMO_MODE:-node}" in
  node) exec "$here/demo-node.sh" "$@" ;;
  local) exec "$here/demo-local.sh" "$@" ;;
  *) echo "demo: DEMO_MODE must be node or local, not '$DEMO_MODE'" >&2; exit 2 ;;
esac
