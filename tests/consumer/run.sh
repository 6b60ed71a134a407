#!/usr/bin/env bash
# Installs this build into a scratch prefix, then configures, builds and runs the consumer
# project against it with find_package(crashkit). Args: BUILD_DIR SOURCE_DIR [CXXFLAGS]
set -euo pipefail
build="$1"; src="$2"; flags="${3:-}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
cmake -S "$src/tests/consumer" -B "$tmp/consumer" -DCMAKE_PREFIX_PATH="$tmp/prefix" \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$flags" >/dev/null
cmake --build "$tmp/consumer" >/dev/null
"$tmp/consumer/consumer"
test -x "$tmp/prefix/bin/crashkit"
echo "consumer built and ran against the installed package"
