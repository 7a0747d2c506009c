# Helpers for bench/*.bench.sh: timing, medians, and rewriting one section of docs/benchmarks.md.
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
machine() {
  echo "$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(free -g | awk '/Mem:/{print $2}') GiB, $(. /etc/os-release; echo "$PRETTY_NAME")"
}
# write_section NAME FILE: replaces <!-- bench:NAME --> ... <!-- /bench:NAME --> with FILE's text.
write_section() {
  local name=$1 body=$2 doc="$REPO/docs/benchmarks.md"
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
