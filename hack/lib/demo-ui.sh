# Sourced by hack/demo-local.sh and hack/demo-node.sh: numbered steps and marked lines, coloured
# on a terminal.
if [ -t 1 ]; then B=$'\e[1m'; G=$'\e[32m'; Y=$'\e[33m'; RED=$'\e[31m'; R=$'\e[0m'; else B=""; G=""; Y=""; RED=""; R=""; fi
n=0
step() { n=$((n + 1)); printf '\n%s[%d] %s%s\n' "$B" "$n" "$*" "$R"; }
look() { printf '    %s▶ %s%s\n' "$Y" "$*" "$R"; }
ok() { printf '    %s✔ %s%s\n' "$G" "$*" "$R"; }
fail() { printf '    %s✘ %s%s\n' "$RED" "$*" "$R"; exit 1; }
indent() { sed 's/^/      /'; }
