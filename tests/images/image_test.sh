#!/usr/bin/env bash
# CTest `images` (label unit): the images of hack/images.sh (make images), built or reused in
# $WORK/a and rebuilt from scratch in $WORK/b (the cached mmdebstrap base layer is shared), checked
# as OCI layouts and against the Dockerfile:
#   - the two builds are byte-identical (reproducible digests);
#   - graydebug: User, Entrypoint, Cmd, WorkingDir, Env as the Dockerfile's final stage; every COPY
#     destination exists with the source's mode, owner and content; every runtime apt package is
#     installed in the image's dpkg status; every ELF under /usr/local/bin has all its shared
#     libraries inside the image (ldd in a chroot of the unpacked rootfs); the binaries run there as
#     the image's user; leaky-app is built with -gcflags='all=-N -l';
#   - leaky-app: static, -N -l, root and nobody in /etc/passwd, /tmp 1777, serves /healthz from its
#     ENTRYPOINT + CMD as nobody (in a network namespace of its own);
#   - pause: static, user 65535, exits 0 on SIGTERM; coredns: static, runs;
#   - with containerd built (make deps): all four import into a throwaway containerd (its own root,
#     state and socket under $WORK, stopped and removed afterwards) under their names, unpacked.
# One line per problem; exit 1 if any. IMAGES_TEST_IMPORT=0 skips the containerd part.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/hack/tools/common.sh"
WORK=${WORK:-$REPO/build/images-test}
export GRAYDEBUG_BIN=${GRAYDEBUG_BIN:-$REPO/build/bin}
IMAGES="$REPO/hack/images.sh"
problems=0
problem() { echo "PROBLEM: $*"; problems=$((problems + 1)); }
ok() { echo "ok: $*"; }

[ "$(id -u)" = 0 ] || { echo "skip: needs root (chroot into the unpacked images)"; exit 77; }
# A sanitizer build (make test's ASan half) links its runtime statically, so ldd does not show it:
# look for the runtime's entry point (its binaries hang in a chroot without /proc).
if [ -n "${GRAYDEBUG_SANITIZE:-}" ] || grep -qa -e __asan_init -e __tsan_init "$GRAYDEBUG_BIN/graydebug-agent" 2>/dev/null; then
  echo "skip: $GRAYDEBUG_BIN holds a sanitizer build; images are made of the release binaries"
  exit 77
fi
mkdir -p "$WORK"
cd "$WORK" || exit 1

# --- build twice --------------------------------------------------------------------------
start=$SECONDS
a_tars=$("$IMAGES" build --out "$WORK/a") || { echo "PROBLEM: hack/images.sh build failed"; exit 1; }
ok "built or reused in $((SECONDS - start)) s: $(echo $a_tars)"
start=$SECONDS
rm -rf "$WORK/b"
b_tars=$("$IMAGES" build --out "$WORK/b") || { echo "PROBLEM: hack/images.sh build (second) failed"; exit 1; }
ok "rebuilt in $((SECONDS - start)) s"
mapfile -t names < <("$IMAGES" names)
mapfile -t A <<<"$a_tars"
mapfile -t B <<<"$b_tars"
ids=(graydebug leaky-app pause coredns)
[ ${#A[@]} -eq 4 ] && [ ${#B[@]} -eq 4 ] && [ ${#names[@]} -eq 4 ] ||
  { echo "PROBLEM: hack/images.sh printed ${#A[@]}/${#B[@]} tarballs and ${#names[@]} names, want 4"; exit 1; }
for i in 0 1 2 3; do
  if cmp -s "${A[$i]}" "${B[$i]}"; then
    ok "${ids[$i]} is reproducible ($(sha256sum <"${A[$i]}" | cut -c1-16))"
  else
    problem "${ids[$i]}: two builds differ (${A[$i]} vs ${B[$i]}): not reproducible"
  fi
done

# --- unpack and check the layouts ---------------------------------------------------------
for i in 0 1 2 3; do
  d="$WORK/unpacked/${ids[$i]}"
  while read -r line; do [ -n "$line" ] && problem "$line"; done < <(python3 "$REPO/tests/images/unpack.py" "${A[$i]}" "$d")
  [ -f "$d/config.json" ] || { problem "${ids[$i]}: could not unpack ${A[$i]}"; continue; }
  [ "$(cat "$d/name")" = "${names[$i]}" ] || problem "${ids[$i]}: named $(cat "$d/name"), want ${names[$i]}"
  ok "${names[$i]} $(cat "$d/digest") ($(du -k "${A[$i]}" | cut -f1) KiB tarball)"
done
cfg() { jq -c "$2" "$WORK/unpacked/$1/config.json"; }
ROOT="$WORK/unpacked/graydebug/rootfs"

# --- graydebug against the Dockerfile -------------------------------------------------------
df=$(python3 "$REPO/hack/images/oci.py" dockerfile "$REPO/Dockerfile") || { echo "PROBLEM: cannot parse the Dockerfile"; exit 1; }
want_user=$(jq -r .user <<<"$df")
[ "$(cfg graydebug '.config.User')" = "$(jq -c .user <<<"$df")" ] || problem "graydebug: User $(cfg graydebug .config.User), Dockerfile says $want_user"
[ "$(cfg graydebug '.config.Entrypoint')" = "$(jq -c .entrypoint <<<"$df")" ] || problem "graydebug: Entrypoint $(cfg graydebug .config.Entrypoint), Dockerfile says $(jq -c .entrypoint <<<"$df")"
[ "$(cfg graydebug '.config.Cmd // []')" = "$(jq -c .cmd <<<"$df")" ] || problem "graydebug: Cmd $(cfg graydebug .config.Cmd), Dockerfile says $(jq -c .cmd <<<"$df")"
[ "$(cfg graydebug '.config.WorkingDir')" = "$(jq -c .workdir <<<"$df")" ] || problem "graydebug: WorkingDir $(cfg graydebug .config.WorkingDir), want $(jq -c .workdir <<<"$df")"
[ "$(cfg graydebug '.config.Env')" = "$(jq -c .env <<<"$df")" ] || problem "graydebug: Env $(cfg graydebug .config.Env), want $(jq -c .env <<<"$df")"
ep=$(jq -r '.entrypoint[0]' <<<"$df")
[ -x "$ROOT$ep" ] || problem "graydebug: the entrypoint $ep is not an executable in the image"

# COPY destinations: mode, owner and content of the source they are mapped to.
copies=$(DLV="$(tool_bindir dlv)/dlv" LEAKY_APP="${IMAGES_CACHE:-$GRAYDEBUG_CACHE/images}/work/leaky-app" GRAYDEBUG_BIN=$GRAYDEBUG_BIN \
  python3 - "$REPO" <<'PY'
import os, sys
sys.path.insert(0, os.path.join(sys.argv[1], "hack/images"))
import oci, specs
df = oci.parse_dockerfile(os.path.join(sys.argv[1], "Dockerfile"))
for c in df["copies"]:
    uid, gid = specs.owner(c["chown"])
    for src in c["srcs"]:
        host = specs.copy_source(src)
        dest = c["dest"] + os.path.basename(src) if c["dest"].endswith("/") else c["dest"]
        mode = c["chmod"] or "%o" % (os.stat(host).st_mode & 0o7777)
        print(dest, mode, uid, gid, host)
PY
) || problem "graydebug: cannot map the Dockerfile's COPY sources"
ncopies=0
while read -r dest mode uid gid host; do
  ncopies=$((ncopies + 1))
  if [ ! -f "$ROOT$dest" ]; then problem "graydebug: COPY destination $dest is missing"; continue; fi
  got=$(stat -c '%a %u %g' "$ROOT$dest")
  [ "$got" = "$mode $uid $gid" ] || problem "graydebug: $dest has mode/uid/gid $got, want $mode $uid $gid"
  cmp -s "$ROOT$dest" "$host" || problem "graydebug: $dest differs from $host"
done <<<"$copies"
ok "graydebug: $ncopies COPY destinations checked"

# Runtime packages installed (dpkg status inside the image).
npkgs=0
for p in $(jq -r '.packages[]' <<<"$df"); do
  npkgs=$((npkgs + 1))
  st=$(awk -v p="$p" '$1 == "Package:" { cur = $2 } cur == p && $1 == "Status:" { print $2, $3, $4; exit }' "$ROOT/var/lib/dpkg/status")
  [ "$st" = "install ok installed" ] || problem "graydebug: package $p is not installed in the image (dpkg status: '${st:-absent}')"
done
ok "graydebug: $npkgs runtime packages in dpkg status"

# Shared libraries of every ELF under /usr/local/bin, resolved inside the image.
is_elf() { [ "$(head -c4 "$1" | od -An -c | tr -d ' ')" = '177ELF' ]; }
nelf=0
for f in "$ROOT"/usr/local/bin/*; do
  is_elf "$f" || continue
  nelf=$((nelf + 1))
  b=/usr/local/bin/$(basename "$f")
  out=$(timeout 60 chroot "$ROOT" /usr/bin/ldd "$b" 2>&1)
  rc=$?
  if [ $rc -ne 0 ] && ! grep -q 'not a dynamic executable' <<<"$out"; then
    problem "graydebug: ldd $b failed in the image: $(head -1 <<<"$out")"
  fi
  while read -r lib; do problem "graydebug: $b needs $lib, which the image lacks"; done < <(awk '/not found/ {print $1}' <<<"$out")
done
ok "graydebug: ldd of $nelf ELF binaries in the image"

# The binaries run in the image as its user.
for b in graydebug-webhook graydebug-controller graydebug-agent kubectl-graydebug; do
  out=$(timeout 60 chroot --userspec="$want_user" "$ROOT" "/usr/local/bin/$b" --version 2>&1) ||
    problem "graydebug: $b --version as $want_user in the image failed: $(head -1 <<<"$out")"
done
timeout 60 chroot --userspec="$want_user" "$ROOT" /usr/local/bin/dlv version >/dev/null 2>&1 || problem "graydebug: dlv version fails in the image"
gcflags() { "$(command -v go || echo /usr/local/go/bin/go)" version -m "$1" 2>/dev/null | awk '$2 ~ /^-gcflags=/ {sub(/^-gcflags=/, "", $2); print $0}'; }
grep -q 'all=-N -l' <<<"$(gcflags "$ROOT/usr/local/bin/leaky-app")" || problem "graydebug: /usr/local/bin/leaky-app is not built with -gcflags='all=-N -l'"
ok "graydebug: binaries run as $want_user"

# --- leaky-app ----------------------------------------------------------------------------------
APP="$WORK/unpacked/leaky-app/rootfs"
[ "$(cfg leaky-app '.config.Entrypoint')" = '["/usr/local/bin/leaky-app"]' ] || problem "leaky-app: Entrypoint $(cfg leaky-app .config.Entrypoint)"
[ "$(cfg leaky-app '.config.User // ""')" = '""' ] || problem "leaky-app: User $(cfg leaky-app .config.User), want root (unset)"
timeout 60 chroot "$APP" /usr/local/bin/leaky-app -h >/dev/null 2>&1; [ $? -le 2 ] || problem "leaky-app: the binary does not start in its image (static?)"
grep -q INTERP <<<"$(readelf -l "$APP/usr/local/bin/leaky-app" 2>/dev/null)" && problem "leaky-app: the binary is dynamically linked"
grep -q 'all=-N -l' <<<"$(gcflags "$APP/usr/local/bin/leaky-app")" || problem "leaky-app: not built with -gcflags='all=-N -l'"
grep -q '^root:x:0:0:' "$APP/etc/passwd" && grep -q '^nobody:x:65534:65534:' "$APP/etc/passwd" || problem "leaky-app: /etc/passwd lacks root or nobody"
[ "$(stat -c %a "$APP/tmp" 2>/dev/null)" = 1777 ] || problem "leaky-app: /tmp is not mode 1777"
# ENTRYPOINT + CMD as nobody, in a network namespace of its own (only its loopback is used).
mapfile -t argv < <(jq -r '(.config.Entrypoint + (.config.Cmd // []))[]' "$WORK/unpacked/leaky-app/config.json")
unshare --net sh -c 'ip link set lo up && exec "$@"' sh chroot --userspec=65534:65534 "$APP" "${argv[@]}" >"$WORK/leaky-app.log" 2>&1 &
app_pid=$!
served=""
for _ in $(seq 50); do
  child=$(pgrep -P "$app_pid" 2>/dev/null | head -1)
  pid=${child:-$app_pid}
  if served=$(nsenter --net="/proc/$pid/ns/net" curl -sf --max-time 1 http://127.0.0.1:8080/healthz 2>/dev/null); then break; fi
  sleep 0.2
done
[ "$served" = ok ] || problem "leaky-app: ${argv[*]} as nobody does not serve /healthz on :8080 ($(tail -n 1 "$WORK/leaky-app.log"))"
kill "$app_pid" 2>/dev/null; pkill -P "$app_pid" 2>/dev/null; wait "$app_pid" 2>/dev/null
ok "leaky-app: ${argv[*]} serves as nobody"

# --- pause and coredns ----------------------------------------------------------------------------
P="$WORK/unpacked/pause/rootfs"
[ "$(cfg pause '.config.User')" = '"65535:65535"' ] || problem "pause: User $(cfg pause .config.User), want 65535:65535"
[ "$(cfg pause '.config.Entrypoint')" = '["/pause"]' ] || problem "pause: Entrypoint $(cfg pause .config.Entrypoint)"
grep -q INTERP <<<"$(readelf -l "$P/pause" 2>/dev/null)" && problem "pause: /pause is dynamically linked"
chroot --userspec=65535:65535 "$P" /pause 2>/dev/null &
pp=$!
sleep 0.3
kill -0 "$pp" 2>/dev/null || problem "pause: /pause exited by itself"
kill -TERM "$pp" 2>/dev/null; wait "$pp"; rc=$?
[ $rc -eq 0 ] || problem "pause: exit status $rc on SIGTERM, want 0"
C="$WORK/unpacked/coredns/rootfs"
[ "$(cfg coredns '.config.Entrypoint')" = '["/coredns"]' ] || problem "coredns: Entrypoint $(cfg coredns .config.Entrypoint)"
# Output first, then grep: under pipefail, `cmd | grep -q` fails when grep exits before cmd has
# written everything (cmd gets SIGPIPE), which made this check flaky.
grep -q "CoreDNS-${COREDNS_VERSION#v}" <<<"$(timeout 60 chroot "$C" /coredns -version 2>/dev/null)" || problem "coredns: /coredns -version in its image does not print CoreDNS-${COREDNS_VERSION#v}"
ok "pause and coredns checked"

# --- import into a throwaway containerd -------------------------------------------------------------
CB=$(tool_bindir containerd)
if [ "${IMAGES_TEST_IMPORT:-1}" = 0 ]; then
  echo "skip: containerd import (IMAGES_TEST_IMPORT=0)"
elif [ ! -x "$CB/containerd" ] || [ ! -x "$CB/ctr" ]; then
  echo "skip: containerd import ($CB has no containerd/ctr; make deps)"
else
  T="$WORK/containerd"
  rm -rf "$T" && mkdir -p "$T"
  cat >"$T/config.toml" <<TOML
version = 4
root = "$T/root"
state = "$T/state"
imports = []
# Only the content store, snapshotter and image service: no CRI, NRI or /opt plugins.
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.runtime", "io.containerd.cri.v1.images",
  "io.containerd.nri.v1.nri", "io.containerd.internal.v1.opt", "io.containerd.podsandbox.controller.v1.podsandbox",
  "io.containerd.sandbox.controller.v1.shim"]
[plugins]
  [plugins."io.containerd.server.v1.grpc"]
    address = "$T/c.sock"
  [plugins."io.containerd.server.v1.ttrpc"]
    address = "$T/c.sock.ttrpc"
  [plugins."io.containerd.server.v1.debug"]
    address = ""
TOML
  "$CB/containerd" --config "$T/config.toml" >"$T/containerd.log" 2>&1 &
  cpid=$!
  for _ in $(seq 100); do [ -S "$T/c.sock" ] && "$CB/ctr" --address "$T/c.sock" version >/dev/null 2>&1 && break; sleep 0.1; done
  start=$SECONDS
  if out=$("$IMAGES" import --address "$T/c.sock" --ctr "$CB/ctr" --out "$WORK/a" 2>&1); then
    ok "imported into containerd in $((SECONDS - start)) s"
    listing=$("$CB/ctr" --address "$T/c.sock" -n k8s.io images check 2>/dev/null)
    for n in "${names[@]}"; do
      line=$(awk -v n="$n" '$1 == n' <<<"$listing")
      if [ -z "$line" ]; then problem "import: $n is not in containerd after the import"
      elif ! grep -q 'complete' <<<"$line" || [ "$(awk '{print $NF}' <<<"$line")" != true ]; then
        problem "import: $n is not complete and unpacked: $line"
      fi
    done
  else
    problem "import: hack/images.sh import failed: $(tail -n 1 <<<"$out")"
  fi
  kill -TERM "$cpid" 2>/dev/null
  for _ in $(seq 100); do kill -0 "$cpid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$cpid" 2>/dev/null; wait "$cpid" 2>/dev/null
  if grep -q " $T/" /proc/mounts; then problem "import: mounts under $T are left after containerd stopped"; else rm -rf "$T"; fi
fi

echo "$problems problem(s)"
[ "$problems" -eq 0 ]
