# Sourced by the hack/tools scripts: pinned versions and cache locations.
TOOLS_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
. "$TOOLS_SRC/versions.env"
GRAYDEBUG_CACHE=${GRAYDEBUG_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/graydebug}
# Go's module and build caches live beside the tools so a warm CI run reuses them.
export GOMODCACHE=${GOMODCACHE_OVERRIDE:-$GRAYDEBUG_CACHE/go/mod}
export GOCACHE=${GOCACHE_OVERRIDE:-$GRAYDEBUG_CACHE/go/build}
export GOFLAGS="-mod=mod -buildvcs=false"
export GOTOOLCHAIN=local
export CGO_ENABLED=0

tool_version() {
  case "$1" in
    kubernetes) echo "$KUBERNETES_VERSION" ;;
    etcd) echo "$ETCD_VERSION" ;;
    helm) echo "$HELM_VERSION" ;;
    dlv) echo "$DLV_VERSION" ;;
    containerd) echo "$CONTAINERD_VERSION" ;;
    runc) echo "$RUNC_VERSION" ;;
    coredns) echo "$COREDNS_VERSION" ;;
    *) echo "unknown tool: $1" >&2; return 1 ;;
  esac
}
tool_bindir() { echo "$GRAYDEBUG_CACHE/tools/$1-$(tool_version "$1")/bin"; }
