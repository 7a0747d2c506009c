#!/usr/bin/env bash
# graydebug's container images without a Docker daemon or a registry (docs/images.md):
#
#   hack/images.sh [build] [--only LIST] [--out DIR]    build (or reuse) the image tarballs; prints their paths
#   hack/images.sh import [--address SOCK] [--ctr PATH] [--only LIST] [--out DIR]
#                                                       build, then `ctr -n k8s.io images import` each
#   hack/images.sh names [--only LIST]                  prints the image names
#
# LIST: comma-separated graydebug, leaky-app, pause, coredns; `node` = pause,coredns; default all.
# Tarballs are OCI image layouts (also docker-archive) in ${GRAYDEBUG_CACHE}/images (or --out DIR).
# Env: GRAYDEBUG_BIN (the C++ binaries; default build/bin), SOURCE_DATE_EPOCH (fixed by default),
# IMAGES_CACHE (default ${GRAYDEBUG_CACHE}/images).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
. "$REPO/hack/tools/common.sh"

die() { echo "images: $*" >&2; exit 1; }
say() { echo "images: $*" >&2; }

cmd=build
case "${1:-}" in build | import | names) cmd=$1; shift ;; esac
only=all out="" address=/run/containerd/containerd.sock ctr=""
while [ $# -gt 0 ]; do
  case "$1" in
    --only) only=${2:?}; shift 2 ;;
    --only=*) only=${1#*=}; shift ;;
    --out) out=${2:?}; shift 2 ;;
    --out=*) out=${1#*=}; shift ;;
    --address) address=${2:?}; shift 2 ;;
    --address=*) address=${1#*=}; shift ;;
    --ctr) ctr=${2:?}; shift 2 ;;
    --ctr=*) ctr=${1#*=}; shift ;;
    *) die "unknown argument $1 (usage: hack/images.sh build|import|names [--only LIST] [--out DIR] [--address SOCK] [--ctr PATH])" ;;
  esac
done

CACHE=${IMAGES_CACHE:-$GRAYDEBUG_CACHE/images}  # the base rootfs and work files; tarballs too unless --out
OUT=${out:-$CACHE}
BLOBS=$CACHE/blobs
GRAYDEBUG_BIN=${GRAYDEBUG_BIN:-$REPO/build/bin}
TAG=$(awk -F'"' '/^appVersion:/{print $2}' "$REPO/charts/graydebug/Chart.yaml")
[ -n "$TAG" ] || die "no appVersion in charts/graydebug/Chart.yaml"
PAUSE_VERSION=3.10
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1747699200}
# Bump when the base rootfs is made differently (mmdebstrap hooks, oci.py rootfs_entries).
BASE_REVISION=1

# image -> name and tarball
image_name() {
  case "$1" in
    graydebug) echo "docker.io/graydebug/graydebug:$TAG" ;;
    leaky-app) echo "docker.io/graydebug/leaky-app:$TAG" ;;
    pause) echo "registry.k8s.io/pause:$PAUSE_VERSION" ;;
    coredns) echo "docker.io/graydebug/coredns:$COREDNS_VERSION" ;;
  esac
}
image_tar() {
  case "$1" in
    graydebug | leaky-app) echo "$OUT/$1-$TAG.tar" ;;
    pause) echo "$OUT/pause-$PAUSE_VERSION.tar" ;;
    coredns) echo "$OUT/coredns-$COREDNS_VERSION.tar" ;;
  esac
}

selected=()
IFS=, read -ra want <<<"$only"
for w in "${want[@]}"; do
  case "$w" in
    all) selected+=(graydebug leaky-app pause coredns) ;;
    node) selected+=(pause coredns) ;;
    graydebug | leaky-app | pause | coredns) selected+=("$w") ;;
    *) die "unknown image $w (graydebug, leaky-app, pause, coredns, node, all)" ;;
  esac
done

if [ "$cmd" = names ]; then
  for i in "${selected[@]}"; do image_name "$i"; done
  exit 0
fi

# --- inputs ------------------------------------------------------------------------------------
# The Dockerfile's runtime stage on mmdebstrap: bookworm minbase + its apt packages, with the dpkg
# excludes of Debian's -slim images. Slow (a minute or more), so cached under a key of everything
# that goes into it; the mirror is the host's (the same one apt uses).
SOURCES=/etc/apt/sources.list.d/debian.sources
[ -f "$SOURCES" ] || SOURCES=/etc/apt/sources.list
SLIM_EXCLUDES=(
  'path-exclude=/usr/share/doc/*' 'path-include=/usr/share/doc/*/copyright'
  'path-exclude=/usr/share/man/*' 'path-exclude=/usr/share/groff/*' 'path-exclude=/usr/share/info/*'
  'path-exclude=/usr/share/lintian/*' 'path-exclude=/usr/share/linda/*' 'path-exclude=/usr/share/locale/*'
)
base_layer() {  # prints the path of the base layer's descriptor JSON
  local df suite slim pkgs key dir opts=()
  df=$(python3 "$REPO/hack/images/oci.py" dockerfile "$REPO/Dockerfile")
  suite=$(jq -r .suite <<<"$df")
  slim=$(jq -r .slim <<<"$df")
  pkgs=$(jq -r '.packages | join(",")' <<<"$df")
  opts=(--variant=minbase --mode=root --include="$pkgs" --aptopt='Acquire::Retries "3"'
    --customize-hook='rm -f "$1/etc/resolv.conf" "$1/etc/hostname"')
  if [ "$slim" = true ]; then
    local e
    for e in "${SLIM_EXCLUDES[@]}"; do opts+=(--dpkgopt="$e"); done
  fi
  key=$( { echo "rev=$BASE_REVISION epoch=$SOURCE_DATE_EPOCH suite=$suite"; printf '%s\n' "${opts[@]}"; cat "$SOURCES"; } |
    sha256sum | cut -c1-16)
  dir=$CACHE/base/$suite-$key
  if [ ! -f "$dir/layer.json" ]; then
    command -v mmdebstrap >/dev/null || die "mmdebstrap is missing (make deps, or apt-get install mmdebstrap)"
    say "base rootfs $suite + $pkgs (mmdebstrap, cached as $dir)"
    local tmp started
    started=$(date +%s)
    rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
    mmdebstrap --quiet "${opts[@]}" "$suite" "$dir.tmp/rootfs" "$SOURCES" >"$dir.tmp/mmdebstrap.log" 2>&1 ||
      die "mmdebstrap failed; see $dir.tmp/mmdebstrap.log"
    dpkg-query --admindir="$dir.tmp/rootfs/var/lib/dpkg" -W >"$dir.tmp/packages.txt"
    mkdir -p "$BLOBS"
    python3 "$REPO/hack/images/oci.py" rootfs-layer "$dir.tmp/rootfs" "$dir.tmp/layer.tar.gz" >"$dir.tmp/desc.json"
    local digest
    digest=$(jq -r .digest "$dir.tmp/desc.json")
    mv "$dir.tmp/layer.tar.gz" "$BLOBS/${digest#sha256:}"
    jq --arg p "$BLOBS/${digest#sha256:}" '. + {path: $p}' "$dir.tmp/desc.json" >"$dir.tmp/layer.json"
    rm -rf "$dir.tmp/rootfs" "$dir.tmp/desc.json"
    rm -rf "$dir" && mv "$dir.tmp" "$dir"
    say "base rootfs done in $(($(date +%s) - started)) s ($(wc -l <"$dir/packages.txt") packages)"
  fi
  [ -f "$(jq -r .path "$dir/layer.json")" ] || { rm -rf "$dir"; die "base layer blob missing; run again to rebuild it"; }
  echo "$dir/layer.json"
}

# leaky-app exactly as the Dockerfile's go stage builds it (and demo/CMakeLists.txt): no
# optimisations or inlining, so dlv sees every variable; static (CGO_ENABLED=0).
leaky_app() {
  mkdir -p "$CACHE/work"
  (cd "$REPO/demo/leaky-app" && CGO_ENABLED=0 "$GO" build -gcflags='all=-N -l' -o "$CACHE/work/leaky-app.new" .) ||
    die "go build demo/leaky-app failed"
  if ! cmp -s "$CACHE/work/leaky-app.new" "$CACHE/work/leaky-app"; then
    mv "$CACHE/work/leaky-app.new" "$CACHE/work/leaky-app"
  else
    rm -f "$CACHE/work/leaky-app.new"
  fi
  echo "$CACHE/work/leaky-app"
}

pause_bin() {
  mkdir -p "$CACHE/work"
  gcc -static -Os -s -Wall -Wextra -Werror -o "$CACHE/work/pause.new" "$REPO/hack/images/pause.c" || die "gcc pause.c failed"
  if ! cmp -s "$CACHE/work/pause.new" "$CACHE/work/pause"; then mv "$CACHE/work/pause.new" "$CACHE/work/pause"; else rm -f "$CACHE/work/pause.new"; fi
  echo "$CACHE/work/pause"
}

build_one() {  # image
  local spec
  spec=$(mktemp "$CACHE/work/spec-$1.XXXXXX")
  IMAGE_NAME=$(image_name "$1") IMAGE_OUT=$(image_tar "$1") BLOBS=$BLOBS DOCKERFILE="$REPO/Dockerfile" \
    python3 "$REPO/hack/images/specs.py" "$1" "$spec" || { rm -f "$spec"; die "no spec for $1"; }
  python3 "$REPO/hack/images/oci.py" build "$spec" || { rm -f "$spec"; die "building $1 failed"; }
  rm -f "$spec"
}

build() {
  mkdir -p "$CACHE/work" "$OUT"
  # One build at a time per cache (make images and the image test may overlap).
  exec 9>"$CACHE/.lock"
  flock 9
  local i
  for i in "${selected[@]}"; do
    case "$i" in
      graydebug)
        for b in graydebug-webhook graydebug-controller graydebug-agent kubectl-graydebug; do
          [ -x "$GRAYDEBUG_BIN/$b" ] || die "$GRAYDEBUG_BIN/$b is missing (make build)"
        done
        [ -x "$(tool_bindir dlv)/dlv" ] || die "$(tool_bindir dlv)/dlv is missing (make deps)"
        local base app
        base=$(base_layer)
        app=$(leaky_app)
        BASE_LAYER=$base LEAKY_APP=$app DLV="$(tool_bindir dlv)/dlv" GRAYDEBUG_BIN=$GRAYDEBUG_BIN build_one graydebug ;;
      leaky-app)
        local app
        app=$(leaky_app)
        LEAKY_APP=$app build_one leaky-app ;;
      pause)
        local bin
        bin=$(pause_bin)
        PAUSE_BIN=$bin build_one pause ;;
      coredns)
        [ -x "$(tool_bindir coredns)/coredns" ] || die "$(tool_bindir coredns)/coredns is missing (make deps)"
        COREDNS_BIN="$(tool_bindir coredns)/coredns" build_one coredns ;;
    esac
  done
  exec 9>&-
}

case "$cmd" in
  build) build ;;
  import)
    ctr=${ctr:-$(tool_bindir containerd)/ctr}
    [ -x "$ctr" ] || die "no ctr at $ctr (make deps builds containerd; or --ctr PATH)"
    [ -S "$address" ] || die "no containerd socket at $address"
    mapfile -t tars < <(build)
    for t in "${tars[@]}"; do
      "$ctr" --address "$address" -n k8s.io images import --all-platforms "$t" >/dev/null 2>"$CACHE/work/import.err" ||
        die "ctr images import $t failed: $(grep -v -i 'cgroup.*deprecat' "$CACHE/work/import.err" | tail -n 3)"
      echo "$t"
    done
    say "imported: $(for i in "${selected[@]}"; do printf '%s ' "$(image_name "$i")"; done)" ;;
esac
