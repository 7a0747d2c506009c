#!/usr/bin/env bash
# Prints what a node could leave on the host, one sorted line each: interfaces, routes, mounts,
# kubepods cgroups, iptables rules of the root namespace, and the fixed paths the kubelet, CNI and
# containerd would write when not confined (tests/e2e/node_down.sh compares before and after).
set -uo pipefail
ip -o link show | awk -F': ' '{print "link " $2}' | sed 's/@.*//'
ip route show | sed 's/^/route /'
awk '{print "mount " $2 " " $3}' /proc/self/mounts
for c in /sys/fs/cgroup/*/kubepods; do [ -d "$c" ] && echo "cgroup $c"; done
{ iptables-save 2>/dev/null || true; } | grep -v '^#' | sed -E 's/\[[0-9]+:[0-9]+\]//' | sed 's/^/iptables /'
for p in /var/lib/cni /var/log/containers /var/log/pods /run/containerd /etc/cni /opt/cni /var/lib/kubelet \
  /etc/kubernetes /usr/libexec/kubernetes /var/lib/containerd /run/netns; do
  [ -e "$p" ] && echo "path $p"
done
true
