#!/bin/sh
# Build the project (Release) if needed, then run the benchmark harness.
#   bench/run.sh --quick            # ~2 minutes
#   bench/run.sh                    # full mode (see bench/README.md)
#   bench/run.sh --no-build ARGS    # skip the build step
# All other arguments go to bench/run.py (--help lists them).
set -u
cd "$(dirname "$0")/.." || exit 2

build=1
for a in "$@"; do
	[ "$a" = "--no-build" ] && build=0
done

# Build output goes to stderr: stdout is the Markdown report.
if [ "$build" = 1 ]; then
	if [ ! -f build/CMakeCache.txt ]; then
		cmake -S . -B build -DCMAKE_BUILD_TYPE=Release \
			-DPCMALLOC_BUILD_TESTS=OFF >&2 || {
			echo "run.sh: configuring build/ failed" >&2
			exit 2
		}
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
