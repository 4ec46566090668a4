#!/bin/bash
# Instructions per malloc+free pair, counted by callgrind, for every
# allocator (pcmalloc, glibc, jemalloc, tcmalloc, mimalloc when present).
#
#   bench/fastpath.sh [ALLOCATOR...]
#
# For each mode of bench/fastpath.c (pair: malloc+free at once; batch: 64
# mallocs then 64 frees; xthread: one thread mallocs, another frees) it runs
# the program at two pair counts N1 < N2 under valgrind --tool=callgrind
# and reports
#     (Ir(mode, N2) - Ir(mode, N1) - [Ir(base, N2) - Ir(base, N1)]) / (N2 - N1)
# where "base" is the same loop with dummy malloc/free: start-up,
# initialisation, the RNG/loop and the thread hand-offs cancel out, leaving
# the allocator's own instructions per pair. Callgrind does not replace
# malloc (unlike memcheck), so the LD_PRELOADed allocator is what runs; the
# script checks that with pcb_probe under valgrind.
# Env: FASTPATH_N1 / FASTPATH_N2 (defaults 102400 / 1126400, multiples of
# 1024), BUILD_DIR (default build).
set -u
cd "$(dirname "$0")/.." || exit 2
BUILD_DIR=${BUILD_DIR:-build}
N1=${FASTPATH_N1:-102400}
N2=${FASTPATH_N2:-1126400}
MODES="pair batch xthread"

command -v valgrind >/dev/null 2>&1 || {
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "installing valgrind..." >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q valgrind \
			>/dev/null 2>&1
	fi
	command -v valgrind >/dev/null 2>&1 ||
		{ echo "fastpath.sh: valgrind not available" >&2; exit 2; }
}

tmp=$(mktemp -d /tmp/pcb-fastpath.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# The binaries: from the cmake build if there, else compiled here.
bin=""
for d in "$BUILD_DIR/bench" "$BUILD_DIR/bench-only"; do
	if [ -x "$d/pcb_fastpath" ] && [ -x "$d/pcb_probe" ]; then
		bin=$d
		break
	fi
done
if [ -z "$bin" ]; then
	bin=$tmp
	cc -O2 -fno-builtin-malloc -fno-builtin-free -o "$tmp/pcb_fastpath" \
		bench/fastpath.c -pthread &&
	cc -O2 -o "$tmp/pcb_probe" bench/probe.c -ldl || exit 2
fi

libdir=/usr/lib/x86_64-linux-gnu
declare -A LIB
names=()
add() { names+=("$1"); LIB[$1]=$2; }
if [ -e "$BUILD_DIR/libpcmalloc.so" ]; then
	add pcmalloc "$(readlink -f "$BUILD_DIR/libpcmalloc.so")"
else
	echo "fastpath.sh: $BUILD_DIR/libpcmalloc.so missing - skipping pcmalloc" >&2
fi
add glibc -
for a in jemalloc:libjemalloc.so.2 tcmalloc:libtcmalloc_minimal.so.4 \
	mimalloc:libmimalloc.so.2; do
	n=${a%%:*} so=${a#*:}
	if [ -e "$libdir/$so" ]; then
		add "$n" "$libdir/$so"
	else
		echo "fastpath.sh: $so not installed - skipping $n" >&2
	fi
done
if [ $# -gt 0 ]; then
	want=" $* "
	keep=()
	for n in "${names[@]}"; do
		[[ $want == *" $n "* ]] && keep+=("$n")
	done
	names=("${keep[@]}")
fi

# ir PRELOAD ARGS... -> total instructions executed (all threads)
ir() {
	local pre=$1
	shift
	local out
	if [ "$pre" = - ]; then
		out=$(env -u LD_PRELOAD valgrind --tool=callgrind --trace-children=no \
			--callgrind-out-file=/dev/null "$bin/pcb_fastpath" "$@" 2>&1)
	else
		out=$(env LD_PRELOAD="$pre" valgrind --tool=callgrind \
			--trace-children=no --callgrind-out-file=/dev/null \
			"$bin/pcb_fastpath" "$@" 2>&1)
	fi
	local n
	n=$(printf '%s\n' "$out" | sed -n 's/.*Collected : *\([0-9]*\).*/\1/p' | tail -1)
	if [ -z "$n" ] || ! printf '%s\n' "$out" | grep -q "fastpath .* done"; then
		echo "fastpath.sh: run failed: LD_PRELOAD=$pre pcb_fastpath $*" >&2
		printf '%s\n' "$out" | tail -5 >&2
		echo "NaN"
		return
	fi
	echo "$n"
}

declare -A BASE
for m in $MODES; do
	echo "fastpath: baseline $m ..." >&2
	a=$(ir - "$m-base" "$N1")
	b=$(ir - "$m-base" "$N2")
	BASE[$m]=$(awk -v a="$a" -v b="$b" 'BEGIN { print b - a }')
done

rows=()
for n in "${names[@]}"; do
	pre=${LIB[$n]}
	# the preload must survive valgrind: ask the program who provides malloc
	if [ "$pre" != - ]; then
		where=$(env LD_PRELOAD="$pre" valgrind --tool=callgrind \
			--callgrind-out-file=/dev/null -q "$bin/pcb_probe" 2>/dev/null |
			sed -n 's/^malloc-from: //p')
		if [ "$(readlink -f "$where")" != "$(readlink -f "$pre")" ]; then
			echo "fastpath.sh: ERROR: under valgrind malloc comes from" \
				"'$where', not $pre - skipping $n" >&2
			continue
		fi
	fi
	row=$n
	for m in $MODES; do
		echo "fastpath: $n $m ..." >&2
		a=$(ir "$pre" "$m" "$N1")
		b=$(ir "$pre" "$m" "$N2")
		v=$(awk -v a="$a" -v b="$b" -v base="${BASE[$m]}" -v d=$((N2 - N1)) \
			'BEGIN { if (a == "NaN" || b == "NaN") print "FAIL";
				 else printf "%.1f", (b - a - base) / d }')
		row="$row|$v"
	done
	rows+=("$row")
done

echo
echo "### Instructions per malloc+free pair (callgrind, sizes 16..256 B," \
	"$((N2 - N1)) pairs)"
echo
echo "| allocator | pair (same thread) | batch of 64 (same thread) | cross-thread (remote free) |"
echo "|---|--:|--:|--:|"
for r in "${rows[@]}"; do
	IFS='|' read -r n p b x <<<"$r"
	echo "| $n | $p | $b | $x |"
done
echo
echo "pair: p = malloc(n); free(p).  batch: 64 mallocs, then 64 frees."
echo "cross-thread: a producer thread mallocs batches of 1024 that a"
echo "consumer thread frees; counts both threads' instructions."
