#!/usr/bin/env bash
# Sanitizer builds of pcmalloc with clang, prefixed-only library (the
# sanitizers keep their own malloc; only pc_* names are tested):
#   asan  ASan + UBSan (-fno-sanitize-recover=undefined): the unit tests
#         that call only pc_* names, and tests/sanitize/san_stress.c
#         (cross-thread frees, thread churn, pc_check while threads run,
#         huge blocks moved by realloc while others map) under several
#         PCMALLOC_CONF settings
#   tsan  ThreadSanitizer: the same, san_stress under several
#         PCMALLOC_CONF settings (one arena, background purging, no
#         thread caches); suppressions in tests/sanitize/tsan.supp
# Builds go to build-san/{asan,tsan} (project tests/sanitize), logs to
# build-san/logs/.
#
# Usage: tests/sanitize.sh [asan|tsan|all] [--seconds N]
#   --seconds N  run time of each san_stress mode (default 2)
# Exit status: 0 clean, 1 a finding or a failing test, 2 build failure.
# The last line starts with "SANITIZE SUMMARY:".
set -uo pipefail
# The whole script is one function, read before it runs: editing the file
# while it runs cannot change what it does.
main() {
cd "$(dirname "$0")/.."
root=$PWD

which=all secs=2 limit=180
while [ $# -gt 0 ]; do
	case $1 in
	asan|tsan|all) which=$1 ;;
	--seconds) secs=$2; shift ;;
	*) echo "usage: $0 [asan|tsan|all] [--seconds N]" >&2; exit 2 ;;
	esac
	shift
done

need=()
command -v clang >/dev/null || need+=(clang)
command -v cmake >/dev/null || need+=(cmake)
[ -f /usr/include/cmocka.h ] || need+=(libcmocka-dev)
if [ ${#need[@]} -gt 0 ]; then
	echo "sanitize: installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get -o DPkg::Lock::Timeout=600 update -qq
	apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${need[@]}" >/dev/null
fi

logs=build-san/logs
reports='WARNING: ThreadSanitizer|ERROR: (Address|Leak)Sanitizer|runtime error:'
reports+='|SUMMARY: UndefinedBehaviorSanitizer'
mkdir -p "$logs"
rm -f "$logs"/*.log
runs=0
failed=()

# build NAME "SANITIZER FLAGS"
build() {
	local dir=build-san/$1 flags="$2 -fno-omit-frame-pointer"
	echo "=== $1: build ($dir)"
	if ! CC=clang cmake -S tests/sanitize -B "$dir" \
	    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPCMALLOC_DEBUG=1 \
	    -DCMAKE_C_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$flags" \
	    >"$logs/build-$1.log" 2>&1 ||
	   ! cmake --build "$dir" --target san_all -j2 \
	    >>"$logs/build-$1.log" 2>&1; then
		tail -30 "$logs/build-$1.log" >&2
		echo "SANITIZE SUMMARY: FAIL ($1 build failed, see" \
		    "$logs/build-$1.log)"
		exit 2
	fi
}

# run NAME CONF COMMAND...: a finding is a non-zero status or a
# sanitizer report in the output.
run() {
	local name=$1 conf=$2
	shift 2
	local log=$logs/$name.log start=$SECONDS st
	runs=$((runs + 1))
	# A hang is a finding too (status 124).
	PCMALLOC_CONF=$conf timeout -k 10 "$limit" "$@" >"$log" 2>&1
	st=$?
	[ $st = 124 ] && echo "sanitize: timed out after ${limit}s" >>"$log"
	if [ $st != 0 ] || grep -qE "$reports" "$log"; then
		failed+=("$name")
		echo "  FAIL $name (status $st, $((SECONDS - start))s," \
		    "PCMALLOC_CONF=$conf): $log"
		grep -m1 -A12 -E "$reports|FAIL|timed out" "$log" |
		    sed -E 's/^/    /; s/ \(BuildId: [0-9a-f]+\)//' | cut -c1-160
	else
		echo "  ok   $name ($((SECONDS - start))s)"
	fi
}

# The san_stress runs of one build: "name|PCMALLOC_CONF" pairs.
stress() {
	local kind=$1
	shift
	for pair in "$@"; do
		local tag=${pair%%|*} conf=${pair#*|}
		run "$kind-stress-$tag" "$conf" \
		    "build-san/$kind/san_stress" all "$secs"
	done
}

if [ "$which" = all ] || [ "$which" = asan ]; then
	build asan "-fsanitize=address,undefined -fno-sanitize-recover=undefined"
	export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1:check_initialization_order=1
	export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
	echo "=== asan: run"
	for t in $(tr ';' ' ' <build-san/asan/unit_tests.txt); do
		run "asan-$t" "" "build-san/asan/$t"
	done
	stress asan "default|" "debug|debug:true" \
	    "decay0|decay_ms:0,narenas:1" "notcache|tcache:false" \
	    "prof|prof:true,prof_sample:4k"
fi

if [ "$which" = all ] || [ "$which" = tsan ]; then
	build tsan "-fsanitize=thread"
	# detect_deadlocks=0: pc_check(), like the fork handlers, holds every
	# allocator lock at once (40 bins per arena, and more: a region's
	# slabs may serve any arena's bins), and TSan's lock-order detector
	# tracks at most 64 held locks: it dies in a CHECK, then hangs.  Data
	# races are still reported; lock-order bugs show as hangs in the
	# stress tests, whose watchdogs fail them.
	export TSAN_OPTIONS="suppressions=$root/tests/sanitize/tsan.supp:detect_deadlocks=0:halt_on_error=0:exitcode=66"
	echo "=== tsan: run"
	# Not unit_faults: it forks with every allocator lock held; it is
	# single-threaded, and the ASan run covers it.
	for t in $(tr ';' ' ' <build-san/tsan/unit_tests.txt); do
		[ "$t" = unit_faults ] && continue
		run "tsan-$t" "" "build-san/tsan/$t"
	done
	stress tsan "default|" "onearena|narenas:1" \
	    "background|background_thread:true,decay_ms:0" \
	    "notcache|tcache:false" "prof|prof:true,prof_sample:4k"
fi

if [ ${#failed[@]} -gt 0 ]; then
	echo "SANITIZE SUMMARY: FAIL: ${#failed[@]} of $runs runs:" \
	    "${failed[*]} (logs in $logs/)"
	exit 1
fi
echo "SANITIZE SUMMARY: ok: $runs runs clean ($which)"
exit 0
}
main "$@"
