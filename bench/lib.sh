# Helpers for bench/*.bench.sh: timing, medians, and rewriting one section of docs/benchmarks.md.
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
machine() {
  echo "$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(free -g | awk '/Mem:/{print $2}') GiB, $(. /etc/os-release; echo "$PRETTY_NAME")"
}
# write_section NAME FILE: replaces <!-- bench:NAME --> ... <!-- /bench:NAME --> with FILE's text.
write_section() {
  local name=$1 body=$2 doc
  doc=$(bench_doc)
  python3 - "$doc" "$name" "$body" <<'PY'
import re, sys
doc, name, body = sys.argv[1], sys.argv[2], open(sys.argv[3]).read().strip()
text = open(doc).read()
start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
block = f"{start}\n{body}\n{end}"
if start in text:
    text = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda m: block, text, flags=re.S)
else:
    text = text.rstrip() + "\n\n" + block + "\n"
open(doc, "w").write(text)
PY
}

# Quick mode (QUICK=1, `make bench-quick`): one run, small counts, and the sections go to a scratch
# copy of docs/benchmarks.md (build/bench-quick/benchmarks.md) so a smoke run never overwrites the
# published numbers. BENCH_DOC overrides the target file.
QUICK=${QUICK:-0}
bench_doc() {
  if [ -n "${BENCH_DOC:-}" ]; then echo "$BENCH_DOC"; return; fi
  if [ "$QUICK" = 1 ]; then
    local d="$REPO/build/bench-quick/benchmarks.md"
    mkdir -p "$(dirname "$d")"
    [ -f "$d" ] || cp "$REPO/docs/benchmarks.md" "$d"
    echo "$d"
    return
  fi
  echo "$REPO/docs/benchmarks.md"
}
# build_go_peer NAME: builds bench/peers/NAME (pinned go.mod) into the cache outside the repo,
# only when its sources or the Go version changed; prints the binary's path.
build_go_peer() {
  local src="$REPO/bench/peers/$1" sum
  (
    . "$REPO/hack/tools/common.sh"
    local out="$GRAYDEBUG_CACHE/bench/$1-peer"
    sum=$( (go version; cat "$src"/go.mod "$src"/go.sum "$src"/*.go) | sha256sum | cut -c1-16)
    if [ ! -x "$out" ] || [ "$(cat "$out.sum" 2>/dev/null)" != "$sum" ]; then
      mkdir -p "$(dirname "$out")"
      echo "bench: building the $1 peer (bench/peers/$1)" >&2
      (cd "$src" && nice go build -trimpath -o "$out.tmp" .) >&2 && mv "$out.tmp" "$out" && echo "$sum" > "$out.sum"
    fi
    echo "$out"
  )
}
# start_bg CMD...: starts CMD in its own session (so Ctrl-C on the terminal reaches the script, whose
# trap then stops it, and stop_bg can stop everything it spawned); appends its PID to BG_PIDS and
# sets BG_PID.
BG_PIDS=()
start_bg() {
  setsid "$@" &
  BG_PID=$!
  BG_PIDS+=("$BG_PID")
}
pid_alive() {  # running and not a zombie
  local st
  st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [ -n "$st" ] && [ "$st" != Z ]
}
# stop_bg PID...: SIGTERM to each process group, SIGKILL after 5 s for any left.
stop_bg() {
  local p i
  for p in "$@"; do kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null || true; done
  for p in "$@"; do
    for i in $(seq 50); do pid_alive "$p" || break; sleep 0.1; done
    kill -KILL -- "-$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  # Forget them, so a later cleanup never signals a reused PID.
  local keep=() b
  for b in "${BG_PIDS[@]}"; do [[ " $* " == *" $b "* ]] || keep+=("$b"); done
  BG_PIDS=("${keep[@]}")
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
anon_kib() { awk '/RssAnon/ {print $2}' "/proc/$1/status"; }  # private part of VmRSS (heap, stacks)
