#!/usr/bin/env bash
# Verifies the example units with systemd-analyze (works without a running systemd). The
# ExecStart path is pointed at the binary built here, since verify checks that it exists.
# Exit 77 (ctest: skipped) when systemd-analyze is not installed.
set -euo pipefail
superd="$1"
command -v systemd-analyze >/dev/null || { echo "systemd-analyze not installed"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed "s|^ExecStart=.*|ExecStart=$superd|" "$(dirname "$0")/superd.service" > "$tmp/superd.service"
out=$(systemd-analyze verify "$tmp/superd.service" 2>&1) || { echo "$out"; exit 1; }
# verify prints warnings without failing; treat any output about our unit as an error.
if grep -q "superd.service" <<<"$out"; then echo "$out"; exit 1; fi
echo "superd.service verified"
