#!/usr/bin/env bash
# Build the pc_* API fuzzer (libFuzzer + ASan + UBSan, prefixed-only
# pcmalloc compiled in) into build-fuzz/ and run it.
#
# Usage: tests/fuzz/run.sh [seconds] [--update-corpus] [--build-only]
#                          [--keep-going] [-- extra libFuzzer flags]
#   seconds          how long to fuzz (default 60)
#   --update-corpus  merge new interesting inputs into tests/fuzz/corpus/
#                    (-merge=1, so only inputs that add coverage)
#   --build-only     build, run the seed corpus once, stop
#   --keep-going     fork mode (-fork=FUZZ_JOBS -ignore_crashes=1): record
#                    every crash and go on, for long runs
# Environment: PCMALLOC_CONF is passed through (e.g. debug:true,
# decay_ms:0, narenas:1, tcache:false); FUZZ_JOBS=n runs n workers
# (default 1); FUZZ_DEBUG=0|1|2 is PC_DEBUG for the library (default 1).
#
# Crashes are written to build-fuzz/crashes/ (reproduce with
# build-fuzz/fuzz_api FILE; PC_FUZZ_TRACE=1 prints the calls,
# PC_FUZZ_SERIAL=1 runs the threads one after the other).
# Exit status: 0 no finding, 1 a finding, 2 build failure.
set -uo pipefail
# The whole script is one function, read before it runs: editing the file
# while it runs cannot change what it does.
main() {
cd "$(dirname "$0")/../.."
root=$PWD

secs=60 update=0 build_only=0 keep_going=0 extra=()
while [ $# -gt 0 ]; do
	case $1 in
	--update-corpus) update=1 ;;
	--build-only) build_only=1 ;;
	--keep-going) keep_going=1 ;;
	--) shift; extra=("$@"); break ;;
	[0-9]*) secs=$1 ;;
	*) echo "usage: $0 [seconds] [--update-corpus] [--build-only]" >&2
	   exit 2 ;;
	esac
	shift
done

out=build-fuzz
mkdir -p "$out"
CC=${CC:-clang}
# clang and its sanitizer/libFuzzer runtime (Debian 12: clang pulls in
# libclang-rt-14-dev); installed like tests/run.sh does when missing.
probe() {
	echo 'int LLVMFuzzerTestOneInput(const char *d, long n)
	    { (void)d; (void)n; return 0; }' >"$out/probe.c" &&
	"$CC" -fsanitize=fuzzer,address,undefined "$out/probe.c" \
	    -o "$out/probe" >/dev/null 2>&1
}
if ! command -v "$CC" >/dev/null || ! probe; then
	echo "fuzz: installing clang libclang-rt-14-dev"
	export DEBIAN_FRONTEND=noninteractive
	apt-get -o DPkg::Lock::Timeout=600 update -qq
	apt-get -o DPkg::Lock::Timeout=600 install -y -qq clang \
	    libclang-rt-14-dev >/dev/null
	if ! probe; then
		echo "FUZZ SUMMARY: FAIL ($CC cannot build with" \
		    "-fsanitize=fuzzer)" >&2
		exit 2
	fi
fi

# Every library source but the standard-name overrides and other OSes.
srcs=()
for f in src/*.c; do
	case $(basename "$f") in
	override*|os_windows.c) ;;
	*) srcs+=("$f") ;;
	esac
done
bin=$out/fuzz_api
flags=(-std=gnu11 -g -O1 -fno-omit-frame-pointer
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
	-D_GNU_SOURCE -DPCMALLOC_BUILD -DPC_DEBUG="${FUZZ_DEBUG:-1}"
	-ftls-model=initial-exec -Iinclude -Isrc -Wall -Wextra)
echo "fuzz: building $bin"
if ! "$CC" "${flags[@]}" "${srcs[@]}" tests/fuzz/fuzz_api.c -lpthread \
    -o "$bin.tmp" 2>"$out/build.log"; then
	cat "$out/build.log" >&2
	echo "FUZZ SUMMARY: FAIL (build failed, see $out/build.log)" >&2
	exit 2
fi
grep -q warning "$out/build.log" && cat "$out/build.log" >&2
mv "$bin.tmp" "$bin"

# The repository corpus stays read-only; new inputs go to a scratch dir
# (libFuzzer writes to the first corpus directory).
scratch=$out/corpus-scratch
crashes=$out/crashes
# Each run starts from the committed corpus only: inputs an earlier run
# found would make this run's coverage depend on history.
rm -rf "$scratch"
mkdir -p "$scratch" "$crashes"
log=$out/fuzz-$(date +%Y%m%d-%H%M%S).log
before=$(ls "$crashes" | wc -l)

asan=abort_on_error=1:detect_leaks=0:allocator_may_return_null=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-$asan}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
common=(-max_len=4096 -timeout=20 -rss_limit_mb=4096
	-artifact_prefix="$crashes/" -print_final_stats=1)
if [ "$build_only" = 1 ]; then
	"$bin" "${common[@]}" -runs=0 tests/fuzz/corpus 2>&1 | tail -5
	st=${PIPESTATUS[0]}
	[ "$st" = 0 ] && echo "FUZZ SUMMARY: ok (seed corpus passes)" ||
		echo "FUZZ SUMMARY: FAIL (seed corpus, status $st)"
	exit $((st != 0))
fi

jobs=${FUZZ_JOBS:-1}
echo "fuzz: $secs s, $jobs job(s), PCMALLOC_CONF=${PCMALLOC_CONF:-}, log $log"
start=$(date +%s)
if [ "$keep_going" = 1 ]; then
	"$bin" "${common[@]}" -max_total_time="$secs" -fork="$jobs" \
	    -ignore_crashes=1 -ignore_timeouts=0 -ignore_ooms=0 \
	    "${extra[@]}" "$scratch" tests/fuzz/corpus >"$log" 2>&1
	st=$?
elif [ "$jobs" -gt 1 ]; then
	# -fork keeps going after a crash would stop a plain run; we want the
	# first finding, so each job is a plain run of its own.
	pids=()
	for j in $(seq 1 "$jobs"); do
		"$bin" "${common[@]}" -max_total_time="$secs" "${extra[@]}" \
		    "$scratch" tests/fuzz/corpus >"$log.$j" 2>&1 &
		pids+=($!)
	done
	st=0
	for p in "${pids[@]}"; do wait "$p" || st=1; done
	cat "$log".* >"$log"
	rm -f "$log".*
else
	"$bin" "${common[@]}" -max_total_time="$secs" "${extra[@]}" \
	    "$scratch" tests/fuzz/corpus >"$log" 2>&1
	st=$?
fi
elapsed=$(( $(date +%s) - start ))

execs=$(grep -h 'stat::number_of_executed_units' "$log" |
	awk '{s += $2} END {print s + 0}')
if [ "$keep_going" = 1 ]; then	# fork mode: "#N: cov: C ft: F ..."
	execs=$(grep -oE '^#[0-9]+: cov' "$log" | tail -1 | tr -dc 0-9)
	execs=${execs:-0}
fi
cov=$(grep -hE '^#[0-9]+' "$log" | grep -o 'cov: [0-9]*' |
	awk '$2 > m {m = $2} END {print m + 0}')
ft=$(grep -hE '^#[0-9]+' "$log" | grep -o 'ft: [0-9]*' |
	awk '$2 > m {m = $2} END {print m + 0}')
new=$(( $(ls "$crashes" | wc -l) - before ))

if [ "$update" = 1 ]; then
	echo "fuzz: merging new inputs into tests/fuzz/corpus"
	# Edges only (-use_counters=0): hit-count features would keep
	# hundreds of inputs (0.3 MB) for little.
	"$bin" -merge=1 -use_counters=0 -max_len=4096 -timeout=20 \
	    -rss_limit_mb=4096 tests/fuzz/corpus "$scratch" >>"$log" 2>&1
	kb=$(( $(cat tests/fuzz/corpus/* | wc -c) / 1024 ))
	echo "fuzz: tests/fuzz/corpus: $(ls tests/fuzz/corpus | wc -l)" \
	    "files, ${kb} KiB"
	[ "$kb" -gt 200 ] &&
		echo "fuzz: warning: the corpus is over 200 KiB" >&2
fi

if [ "$st" != 0 ] || [ "$new" -gt 0 ]; then
	grep -hE 'fuzz_api: FAIL|ERROR: (AddressSanitizer|libFuzzer)' "$log" |
	    head -10 >&2
	grep -hE 'runtime error|pcmalloc: |SUMMARY: ' "$log" | head -10 >&2
	echo "FUZZ SUMMARY: FAIL after ${elapsed}s: $execs execs, cov $cov," \
	    "$new new crash file(s) in $crashes/ (log $log)"
	exit 1
fi
echo "FUZZ SUMMARY: ok: ${elapsed}s, $execs execs, cov $cov ft $ft," \
    "no findings (log $log)"
exit 0
}
main "$@"
