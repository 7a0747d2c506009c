#!/usr/bin/env bash
# CTest fixture e2e_node (cleanup): hack/node down, then proof that the node left nothing behind:
# no process, mount, cgroup, interface, route, iptables rule, fixed path or state directory.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${WORK:-$REPO/build/e2e-work}
. "$REPO/tests/e2e/lib.sh"

check "hack/node down" "$REPO/hack/node" down --dir "$NODE_DIR"
# "[/]path": the pattern does not match this check's own command line.
check "no process of the node is left" sh -c "! pgrep -af -- '[${NODE_DIR:0:1}]${NODE_DIR:1}' && ! pgrep -af '[c]ontainerd-shim-runc-v2'"
check "the node's state directory is gone" test ! -e "$NODE_DIR"
if [ -f "$WORK/host-before.txt" ]; then
  "$REPO/tests/e2e/host_state.sh" > "$WORK/host-after.txt"
  check "the host is as it was before the node (links, routes, mounts, cgroups, iptables, paths)" \
    diff <(sort "$WORK/host-before.txt") <(sort "$WORK/host-after.txt")
else
  skip "host state comparison" "no snapshot from before the node (it was already up)"
fi
echo "passed $passed, failed $failed, skipped $skipped"
[ "$failed" -eq 0 ]
