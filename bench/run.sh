#!/usr/bin/env bash
# `make bench`: runs every benchmark in bench/ and rewrites its section of docs/benchmarks.md.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
for b in "$REPO"/bench/*.bench.sh; do
  echo "bench: $(basename "$b")"
  "$b"
done
echo "bench: results in docs/benchmarks.md"
