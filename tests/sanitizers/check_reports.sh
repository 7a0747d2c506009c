#!/usr/bin/env bash
# CTest fixture of a GRAYDEBUG_SANITIZE build (tests/CMakeLists.txt): `clear` empties the report
# directory before the tests, `check` runs after all of them and fails, printing each report, when
# any process (a test binary or a graydebug binary it spawned) wrote one.
set -euo pipefail
mode=$1 dir=$2
case $mode in
  clear)
    rm -rf "$dir" && mkdir -p "$dir"
    ;;
  check)
    shopt -s nullglob
    reports=("$dir"/*)
    if [ ${#reports[@]} -eq 0 ]; then
      echo "sanitizer reports: none in $dir"
      exit 0
    fi
    echo "sanitizer reports: ${#reports[@]} in $dir"
    for r in "${reports[@]}"; do
      echo "==== $(basename "$r")"
      head -c 20000 "$r"
    done
    exit 1
    ;;
  *)
    echo "usage: $0 clear|check DIR" >&2
    exit 2
    ;;
esac
