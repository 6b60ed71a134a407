#!/usr/bin/env bash
# Builds and runs tests/consumer against this build, the way users consume crashkit:
#   run.sh find_package      BUILD SRC [FLAGS]  cmake --install, then find_package(crashkit)
#   run.sh find_package_off  BUILD SRC [FLAGS]  the same with -DCRASHKIT_CRASH_POINTS=OFF
#   run.sh fetchcontent      BUILD SRC [FLAGS]  FetchContent of this source tree
#   run.sh fetchcontent_release BUILD SRC [FLAGS]  the same, the consumer built in Release
#   run.sh pkgconfig         BUILD SRC [FLAGS]  cmake --install, then a plain Makefile
# FLAGS (e.g. -fsanitize=address,undefined) must match the build's. With CRASHKIT_PREFIX set
# (an already installed tree, e.g. unpacked .debs), the installing modes use it instead.
set -euo pipefail
mode="$1"; build="$2"; src="$3"; flags="${4:-}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cons="$src/tests/consumer"
prefix="${CRASHKIT_PREFIX:-}"
installed() {
  if [[ -z $prefix ]]; then
    prefix="$tmp/prefix"
    cmake --install "$build" --prefix "$prefix" >/dev/null
  fi
}

case "$mode" in
  find_package|find_package_off)
    installed
    points=ON; [[ $mode == find_package_off ]] && points=OFF
    cmake -S "$cons" -B "$tmp/b" -DCMAKE_PREFIX_PATH="$prefix" -DCRASHKIT_CRASH_POINTS=$points \
      -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$flags" >/dev/null
    cmake --build "$tmp/b" >/dev/null
    exe="$tmp/b/consumer"
    test -x "$prefix/bin/crashkit"
    # The installed CLI reads the binary's crash-point section: present only when ON.
    listed=$("$prefix/bin/crashkit" points "$exe" | grep -c "consumer.point" || true)
    if [[ $points == ON && $listed != 1 ]] || [[ $points == OFF && $listed != 0 ]]; then
      echo "crash points $points, yet 'crashkit points' lists consumer.point $listed time(s)" >&2
      exit 1
    fi
    ;;
  fetchcontent|fetchcontent_release)
    # Release: crashkit compiled at -O3 by the consumer's build, without the presets'
    # CRASHKIT_WERROR, as a project that vendors it builds it.
    type=; [[ $mode == fetchcontent_release ]] && type=Release
    cmake -S "$cons/fetchcontent" -B "$tmp/b" -DFETCHCONTENT_SOURCE_DIR_CRASHKIT="$src" \
      -DCMAKE_BUILD_TYPE="$type" -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$flags" \
      >/dev/null
    cmake --build "$tmp/b" --target consumer -j2 >/dev/null
    exe="$tmp/b/consumer"
    ;;
  pkgconfig)
    installed
    cp "$cons/main.cpp" "$cons/Makefile" "$tmp/"
    pcdir=$(dirname "$(find "$prefix" -name crashkit-harness.pc)")
    PKG_CONFIG_PATH="$pcdir" CXXFLAGS="$flags" LDFLAGS="$flags" make -s -C "$tmp" >/dev/null
    exe="$tmp/consumer"
    ;;
  *) echo "run.sh: unknown mode '$mode'" >&2; exit 2 ;;
esac
"$exe"
echo "consumer ($mode) built and ran"
