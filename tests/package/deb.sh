#!/usr/bin/env bash
# Builds the Debian packages with CPack, unpacks them into a scratch root (dpkg -x), checks
# their control fields and files, runs the packaged CLI, and builds tests/consumer against the
# unpacked tree (tests/consumer/run.sh: find_package with points on and off, pkg-config).
# Args: BUILD_DIR SOURCE_DIR
set -euo pipefail
build="$1"; src="$2"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "deb.sh: $*" >&2; exit 1; }

(cd "$build" && cpack -G DEB -B "$tmp/out" >/dev/null)
cli=$(ls "$tmp"/out/crashkit_*.deb) || fail "no crashkit_*.deb"
dev=$(ls "$tmp"/out/libcrashkit-dev_*.deb) || fail "no libcrashkit-dev_*.deb"

[[ $(dpkg-deb -f "$cli" Package) == crashkit ]] || fail "$cli: wrong Package"
[[ $(dpkg-deb -f "$dev" Package) == libcrashkit-dev ]] || fail "$dev: wrong Package"
dpkg-deb -f "$cli" Depends | grep -q libfmt || fail "crashkit: Depends lacks libfmt (shlibdeps)"
dpkg-deb -f "$dev" Depends | grep -q libsystemd-dev || fail "libcrashkit-dev: Depends lacks libsystemd-dev"

# `apt install ./crashkit_*.deb ./libcrashkit-dev_*.deb` resolves (simulated: nothing installed).
apt-get -s -qq install "$cli" "$dev" >"$tmp/apt.log" 2>&1 || { cat "$tmp/apt.log" >&2; fail "apt cannot install the packages"; }

root="$tmp/root"
dpkg -x "$cli" "$root"
dpkg -x "$dev" "$root"
# The CLI package holds the CLI only; the dev package everything to build against.
dpkg-deb -c "$cli" | grep -q "include/" && fail "crashkit package carries headers"
for f in usr/bin/crashkit usr/include/crashkit/supervisor.hpp usr/include/crashkit/crash_point.hpp \
         usr/include/crashkit/harness.hpp usr/include/crashkit/harness/matrix.hpp \
         usr/include/crashkit/testing/gtest.hpp; do
  [[ -e "$root/$f" ]] || fail "missing $f"
done
# The harness's private headers (harness/src) are not installed.
for f in usr/include/crashkit/harness/run_dir.hpp usr/include/crashkit/harness/shell_command.hpp; do
  [[ ! -e "$root/$f" ]] || fail "installed private header $f"
done
for f in libcrashkit_supervisor.a libcrashkit_crash_point.a libcrashkit_crash_point_protocol.a libcrashkit_harness.a \
         libcrashkit_testing.a cmake/crashkit/crashkitConfig.cmake \
         pkgconfig/crashkit-supervisor.pc pkgconfig/crashkit-harness.pc; do
  [[ -n $(find "$root/usr/lib" -path "*/$f") ]] || fail "missing usr/lib/.../$f"
done
"$root/usr/bin/crashkit" --help | grep -q "crash matrix" || fail "packaged crashkit --help"

# Build against the unpacked packages, as a user with them installed would.
for mode in find_package find_package_off pkgconfig; do
  CRASHKIT_PREFIX="$root/usr" "$src/tests/consumer/run.sh" "$mode" "$build" "$src"
done

for d in "$cli" "$dev"; do
  echo "$(basename "$d"): $(stat -c %s "$d") bytes, installed $(dpkg-deb -f "$d" Installed-Size) KiB"
done
