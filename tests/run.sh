#!/usr/bin/env bash
# Build pcmalloc and run the whole test suite: gcc and clang, Release and
# Debug (Debug turns on internal assertions), a soak, the sanitizer builds
# and a minute of fuzzing, the prefixed-only build, then the Windows leg
# (mingw-w64 cross build, tests under wine).  Installs what the tests need
# with apt when it is missing.
# Usage: tests/run.sh [--quick] [--no-windows]
#   --quick       only the gcc Release build and its soak (no sanitizers,
#                 fuzzing or Windows leg)
#   --no-windows  skip the Windows leg
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v cmake >/dev/null || need+=(cmake)
command -v gcc >/dev/null || need+=(gcc)
command -v clang >/dev/null || need+=(clang)
command -v g++ >/dev/null || need+=(g++)
[ -f /usr/include/cmocka.h ] || need+=(libcmocka-dev)
command -v python3 >/dev/null || need+=(python3)
command -v perl >/dev/null || need+=(perl)
command -v sqlite3 >/dev/null || need+=(sqlite3)
command -v pkg-config >/dev/null || need+=(pkg-config)
command -v groff >/dev/null || need+=(groff-base)
# The heap profiler's readers (tests/override/test_prof.sh).
command -v google-pprof >/dev/null || need+=(google-perftools)
command -v go >/dev/null || need+=(golang-go)
# clang's sanitizer and libFuzzer runtimes, for the sanitizer and fuzz legs.
if command -v clang >/dev/null &&
    [ ! -f "$(clang -print-file-name=libclang_rt.fuzzer-x86_64.a)" ]; then
	need+=(libclang-rt-14-dev)
fi
# CPython's own tests, run under LD_PRELOAD by tests/override.
if [ -x /usr/bin/python3 ] && ! /usr/bin/python3 -c 'import test.test_dict' 2>/dev/null; then
	need+=("libpython3.$(/usr/bin/python3 -c 'import sys; print(sys.version_info[1])')-testsuite")
fi
if [ ${#need[@]} -gt 0 ]; then
	echo "tests/run.sh: installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get -o DPkg::Lock::Timeout=600 update -qq
	apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${need[@]}" >/dev/null
fi

# The first configuration runs the stress tests in full; the others run
# their short variants (PC_STRESS_SHORT: a quarter of the work, a fifth of
# the forks), which still preempt fast paths with more threads than cores.
configs=("gcc Release" "clang Debug" "gcc Debug" "clang Release")
windows=1
full=1
for arg in "$@"; do
	case $arg in
	--quick) configs=("gcc Release"); windows=0; full=0 ;;
	--no-windows) windows=0 ;;
	*) echo "usage: tests/run.sh [--quick] [--no-windows]" >&2; exit 2 ;;
	esac
done

# This script installs what the tests need, so a test that would skip for
# want of a tool or a kernel feature fails instead (tests read this).
export PC_TEST_NO_SKIP=1

status=0
npass=0 nfail=0
times=()
t_leg=$SECONDS
# Each leg's result and time, for the closing lines.
leg() {
	local name=$1 rc=$2
	times+=("$name $((SECONDS - t_leg))s $([ "$rc" = 0 ] && echo ok || echo FAIL)")
	t_leg=$SECONDS
	if [ "$rc" = 0 ]; then npass=$((npass + 1)); else nfail=$((nfail + 1)); status=1; fi
}
# ctest, failing on an empty selection and on any skipped test.
run_ctest() {
	local log rc=0
	log=$(mktemp)
	ctest --no-tests=error --output-on-failure "$@" 2>&1 | tee "$log" ||
		rc=1
	if grep -qE '\*\*\*Skipped|Not Run' "$log"; then
		echo "FAIL: skipped tests (a skip is a failure under tests/run.sh):"
		grep -E '\*\*\*Skipped|Not Run' "$log"
		rc=1
	fi
	rm -f "$log"
	return $rc
}
for cfg in "${configs[@]}"; do
	set -- $cfg
	cc=$1 type=$2
	dir=build-test/$cc-$type
	echo "=== $cc $type ==="
	CC=$cc cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE="$type" \
		-DPCMALLOC_BUILD_TESTS=ON -DPCMALLOC_REQUIRE_TESTS=ON >/dev/null
	cmake --build "$dir" -j2 >/dev/null
	rc=0
	if [ "$cfg" = "${configs[0]}" ]; then
		run_ctest --test-dir "$dir" -j2 -LE soak || rc=1
	else
		PC_STRESS_SHORT=1 run_ctest --test-dir "$dir" -j2 -LE soak ||
			rc=1
	fi
	leg "$cc-$type" $rc
	# The soak (a minute of threads, forks and pc_check) runs once.
	if [ "$cfg" = "${configs[0]}" ]; then
		rc=0
		run_ctest --test-dir "$dir" -L soak || rc=1
		leg soak $rc
	fi
done
if [ "$full" = 1 ]; then
	# ASan+UBSan and TSan builds of the prefixed-only library, then a
	# bounded libFuzzer run against a shadow model (tests/fuzz).
	echo "=== sanitizers (tests/sanitize.sh) ==="
	rc=0
	tests/sanitize.sh all || rc=1
	leg sanitizers $rc
	echo "=== fuzzer, 60 s (tests/fuzz/run.sh) ==="
	rc=0
	tests/fuzz/run.sh 60 || rc=1
	leg fuzz $rc
	# The sampler with a tiny gap: most allocations take its slow path.
	echo "=== fuzzer with the heap profiler, 30 s ==="
	rc=0
	PCMALLOC_CONF=prof:true,prof_sample:512 tests/fuzz/run.sh 30 || rc=1
	leg fuzz-prof $rc
fi

# The embedding variant: only the pc_* names are exported.
echo "=== prefixed-only build (PCMALLOC_OVERRIDE=OFF) ==="
dir=build-test/prefixed
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DPCMALLOC_OVERRIDE=OFF \
	-DPCMALLOC_BUILD_TESTS=OFF -DPCMALLOC_BUILD_BENCH=OFF >/dev/null
cmake --build "$dir" -j2 >/dev/null
# nm must work and list the API: an empty table would pass a "nothing
# but pc_*" test without testing anything.
rc=0
if ! syms=$(nm -D --defined-only "$dir/libpcmalloc.so" | awk '{print $3}'); then
	echo "FAIL: nm -D $dir/libpcmalloc.so failed"
	rc=1
elif ! printf '%s\n' "$syms" | grep -qx pc_malloc ||
    ! printf '%s\n' "$syms" | grep -qx pc_free; then
	echo "FAIL: the prefixed-only library does not export pc_malloc/pc_free"
	rc=1
elif bad=$(printf '%s\n' "$syms" | grep -v '^pc_'); then
	echo "FAIL: the prefixed-only library exports: $bad"
	rc=1
else
	echo "prefixed-only library exports only pc_* names" \
		"($(printf '%s\n' "$syms" | wc -l) of them): ok"
fi
leg prefixed-only $rc
if [ "$windows" = 1 ]; then
	echo "=== Windows leg (.ci/windows.sh) ==="
	rc=0
	.ci/windows.sh || rc=1
	leg windows $rc
fi
echo "leg times:"
printf '  %s\n' "${times[@]}"
echo "legs: $npass passed, $nfail failed"
exit $status
