#!/usr/bin/env bash
# CI, Windows leg: cross-build pcmalloc with mingw-w64 and run its tests
# under wine (docs/windows.md).  Installs the toolchain and wine with apt
# when missing, fetches cmocka's source (apt-get source, never vendored),
# builds into build-win/{release,debug}, runs ctest, and exits non-zero if
# anything fails.
#   .ci/windows.sh [--quick]     --quick: the Release build only
# Environment: WINEPREFIX (default /tmp/wineprefix-pcmalloc, reused across
# runs: a prefix is ~700 MB), JOBS (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
jobs=${JOBS:-2}
configs=("Release" "Debug")
[ "${1:-}" = "--quick" ] && configs=("Release")

t0=$SECONDS
step() { echo "=== $* ($((SECONDS - t0)) s)"; }

# ---- Toolchain and wine ---------------------------------------------------
need=()
command -v x86_64-w64-mingw32-gcc >/dev/null || need+=(gcc-mingw-w64-x86-64)
command -v x86_64-w64-mingw32-g++ >/dev/null || need+=(g++-mingw-w64-x86-64)
command -v wine >/dev/null || need+=(wine)
[ -x /usr/lib/wine/wine64 ] || need+=(wine64)
command -v cmake >/dev/null || need+=(cmake)
command -v dpkg-source >/dev/null || need+=(dpkg-dev)
if [ ${#need[@]} -gt 0 ]; then
	step "installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get -o DPkg::Lock::Timeout=600 update -qq
	apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${need[@]}" >/dev/null
fi

# ---- cmocka source ---------------------------------------------------------
# Compiled into the tests by tests/windows/CMakeLists.txt: Debian has no
# mingw build of cmocka, and its installed CMake package is unusable there.
mkdir -p build-win/cmocka
cmocka_src=$(ls -d build-win/cmocka/cmocka-*/ 2>/dev/null | head -1 || true)
if [ -z "$cmocka_src" ] || [ ! -f "$cmocka_src/src/cmocka.c" ]; then
	step "fetching cmocka source"
	if ! grep -rqs '^Types:.*deb-src\|^deb-src ' /etc/apt/sources.list \
	    /etc/apt/sources.list.d/; then
		# A deb-src entry for the mirror already configured.
		if [ -f /etc/apt/sources.list.d/debian.sources ]; then
			sed 's/^Types: deb$/Types: deb-src/' \
			    /etc/apt/sources.list.d/debian.sources \
			    > /etc/apt/sources.list.d/debian-src.sources
		else
			sed -n 's/^deb /deb-src /p' /etc/apt/sources.list \
			    > /etc/apt/sources.list.d/debian-src.list
		fi
		apt-get -o DPkg::Lock::Timeout=600 update -qq
	fi
	(cd build-win/cmocka && apt-get source -qq cmocka 2>&1 |
	    grep -v 'unsandboxed\|^dpkg-source: info' || true)
	cmocka_src=$(ls -d build-win/cmocka/cmocka-*/ | head -1)
fi
cmocka_src=$root/${cmocka_src%/}
[ -f "$cmocka_src/src/cmocka.c" ] || { echo "no cmocka source"; exit 1; }

# ---- Wine: a quiet, display-less prefix with a persistent server ----------
unset DISPLAY WAYLAND_DISPLAY
export WINEPREFIX=${WINEPREFIX:-/tmp/wineprefix-pcmalloc}
export WINEDEBUG=-all,err+module,err+seh	# quiet, but names a missing DLL
# and an unhandled exception: a crashed test loses its buffered stdout
export WINEDLLOVERRIDES="mscoree,mshtml="	# never offer Mono or Gecko
# One run at a time per prefix: each run ends by killing the prefix's
# server.  Holding the lock, any server still up for it is left over.
mkdir -p "$(dirname "$WINEPREFIX")"
exec 9>"$WINEPREFIX.lock"
flock 9
wineserver -k 2>/dev/null || true
if [ ! -f "$WINEPREFIX/system.reg" ]; then
	step "creating wine prefix $WINEPREFIX"
	wineboot --init >/dev/null 2>&1 || true
	wineserver -w
fi
# ctest waits for every process holding a test's output pipe: the server
# and wine's services must already run, started here, outside ctest.
wineserver -p
trap 'wineserver -k 2>/dev/null || true' EXIT
# A crash must return its exception code at once, not start winedbg.
wine reg add 'HKLM\Software\Microsoft\Windows NT\CurrentVersion\AeDebug' \
    /v Debugger /t REG_SZ /d false /f >/dev/null 2>&1
wine cmd /c exit >/dev/null 2>&1

# ---- docs/windows.md's build, as the document gives it ---------------------
# The first sh block under "## Building", run as written but for its paths
# (build-win -> build-win/doc, /opt/pcmalloc-win -> build-win/doc-install),
# so a user following the document builds what CI builds.
status=0
step "docs/windows.md: the build commands as documented"
doc_cmds=$(awk '/^## Building/ { b = 1 } b && /^```sh/ { c = 1; next }
	c && /^```/ { exit } c { print }' docs/windows.md |
	sed 's#build-win#build-win/doc#g; s#/opt/pcmalloc-win#build-win/doc-install#g')
[ -n "$doc_cmds" ] || { echo "FAIL: no build commands in docs/windows.md"; exit 1; }
printf '%s\n' "$doc_cmds"
if ! bash -euc "$doc_cmds" >build-win/doc.log 2>&1 ||
    [ ! -f build-win/doc-install/bin/pcmalloc.dll ]; then
	tail -30 build-win/doc.log
	echo "FAIL: docs/windows.md's build commands"
	status=1
fi

# ---- Build and test --------------------------------------------------------
for type in "${configs[@]}"; do
	dir=build-win/${type,,}
	debug=()
	[ "$type" = Debug ] && debug=(-DPCMALLOC_DEBUG=2)
	step "mingw-w64 $type: configure and build in $dir"
	cmake -S . -B "$dir" \
		-DCMAKE_TOOLCHAIN_FILE="$root/cmake/mingw-w64-x86_64.cmake" \
		-DCMAKE_BUILD_TYPE="$type" "${debug[@]}" \
		-DCMOCKA_SOURCE_DIR="$cmocka_src" -DPCMALLOC_BUILD_TESTS=ON \
		-DCMAKE_CROSSCOMPILING_EMULATOR="$root/.ci/wine-run" \
		>/dev/null
	cmake --build "$dir" -j"$jobs" >/dev/null
	step "mingw-w64 $type: ctest under wine"
	# A skipped test is a failure here: this script installs everything
	# the tests need.
	if ! ctest --test-dir "$dir" -j"$jobs" --output-on-failure \
	    --timeout 300 --no-tests=error 2>&1 | tee "$dir/ctest.log"; then
		status=1
	fi
	# A test that passed only when .ci/wine-run ran it again says so in
	# ctest's log file, not on the console: show it here.
	grep -h 'wine-run:' "$dir/Testing/Temporary/LastTest.log" 2>/dev/null ||
	    true
	if grep -qE '\*\*\*Skipped|Not Run' "$dir/ctest.log"; then
		echo "FAIL: skipped tests:"
		grep -E '\*\*\*Skipped|Not Run' "$dir/ctest.log"
		status=1
	fi
done
step "done, status $status"
exit $status
