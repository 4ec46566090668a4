#!/bin/sh
# Build the project (Release) if needed, then run the benchmark harness.
#   bench/run.sh --quick            # ~2 minutes
#   bench/run.sh                    # full mode (see bench/README.md)
#   bench/run.sh --no-build ARGS    # skip the build step
# All other arguments go to bench/run.py (--help lists them).
set -u
cd "$(dirname "$0")/.." || exit 2

build=1
install=1
for a in "$@"; do
	[ "$a" = "--no-build" ] && build=0
	[ "$a" = "--no-install" ] && install=0
done

# The usdlike workload is C++ on TBB (Debian's libtbb-dev): install it when
# missing and allowed (root, apt-get, no --no-install), before the build
# looks for it. Without it the harness skips usdlike with a note.
reconfigure=0
if [ "$build" = 1 ] && [ "$install" = 1 ] &&
	[ ! -f /usr/include/tbb/tbb.h ] && [ ! -f /usr/include/oneapi/tbb.h ] &&
	[ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "run.sh: installing libtbb-dev and g++ (usdlike workload)" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q libtbb-dev g++ \
		>/dev/null 2>&1 ||
		{ apt-get update -q >/dev/null 2>&1 &&
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
			libtbb-dev g++ >/dev/null 2>&1; } ||
		echo "run.sh: could not install libtbb-dev" >&2
	reconfigure=1
fi

# Build output goes to stderr: stdout is the Markdown report.
if [ "$build" = 1 ]; then
	if [ ! -f build/CMakeCache.txt ]; then
		cmake -S . -B build -DCMAKE_BUILD_TYPE=Release \
			-DPCMALLOC_BUILD_TESTS=OFF >&2 || {
			echo "run.sh: configuring build/ failed" >&2
			exit 2
		}
	elif [ "$reconfigure" = 1 ]; then
		cmake -S . -B build >&2	# find the TBB just installed
	elif ! grep -q '^CMAKE_BUILD_TYPE:STRING=Release$' build/CMakeCache.txt; then
		echo "run.sh: WARNING: build/ is not a Release build; pcmalloc" \
			"numbers will not be representative" >&2
	fi
	cmake --build build -j2 >&2 || {
		echo "run.sh: building the project failed" >&2
		exit 2
	}
	# The workloads normally build with the project (build/bench/). If the
	# project was configured without them (PCMALLOC_BUILD_BENCH=OFF) or does
	# not configure, build them on their own in build/bench-only/.
	if [ ! -x build/bench/pcb_spawn ]; then
		cmake -S bench -B build/bench-only -DCMAKE_BUILD_TYPE=Release \
			>&2 && cmake --build build/bench-only -j2 >&2 || {
			echo "run.sh: could not build the benchmark workloads" >&2
			exit 2
		}
	fi
fi

PY=python3
command -v python3 >/dev/null 2>&1 || PY=/usr/bin/python3
exec "$PY" bench/run.py "$@"
