#!/bin/bash
# The heap profiler end to end, under LD_PRELOAD (docs/profiling.md): the
# profiles prof_sites writes are read by google-pprof (heap_v2 text) and go
# tool pprof (profile.proto and heap_v2 text), which must rank its sites
# and estimate their bytes within sampling error; the live view drops the
# freed site; the peak profile holds the peak; a fork child's profile holds
# the parent's live samples and its own; threads that exited keep their
# samples.  Then a C++ program and python3 under the launcher's --profile.
# google-pprof: package google-perftools; go: package golang-go
# (tests/run.sh installs both).
. "$(dirname "$0")/common.sh"
PROG=${1:?usage: $0 lib prof_sites [cxx_threads] [launcher]}
CXX_PROG=${2:-}
LAUNCHER=${3:-}
need google-pprof go

export GOCACHE=$WORK/gocache GOFLAGS=-mod=mod HOME=${HOME:-$WORK}
mkdir -p "$WORK/out"
PCMALLOC_CONF=prof:true,prof_sample:64k,prof_dump_peak:true,prof_dump_at_exit:true,prof_prefix:$WORK/out/auto \
	LD_PRELOAD=$LIB "$PROG" "$WORK/out" > "$WORK/stdout" 2> "$WORK/stderr" ||
	fail "prof_sites failed: $(cat "$WORK/stderr")"
grep -q "pcmalloc:" "$WORK/stderr" && fail "reports: $(cat "$WORK/stderr")"
ls "$WORK/out" > "$WORK/files"

# bytes SITE FILE: the site's flat bytes in a pprof text/top listing
# (units: B, kB/KB, MB, GB, powers of 1024 in both tools).
bytes() {
	awk -v site="$1" '
	function val(s,   n, u) {
		n = s + 0; u = s; sub(/^[0-9.]+/, "", u)
		if (u == "kB" || u == "KB") n *= 1024
		else if (u == "MB") n *= 1048576
		else if (u == "GB") n *= 1073741824
		return n
	}
	$NF == site { v = $1; if (v ~ /^[0-9.]+$/ && unit != "") v = v unit; print val(v); found = 1; exit }
	/^Total: / { unit = $3 }
	END { if (!found) print 0 }' "$2"
}
# near GOT WANT PERCENT: |GOT - WANT| <= PERCENT% of WANT
near() {
	awk -v g="$1" -v w="$2" -v p="$3" 'BEGIN { d = g - w; if (d < 0) d = -d; exit !(d <= w * p / 100) }'
}
MIB=1048576
check_sites() {	# LISTING WHAT
	big=$(bytes site_big "$1"); small=$(bytes site_small "$1")
	freed=$(bytes site_freed "$1"); thr=$(bytes site_thread "$1")
	echo "$2: site_big=$big site_small=$small site_freed=$freed site_thread=$thr"
	# 64 KiB gaps: site_big has ~1280 samples (sd 3%), site_small ~128
	# (sd 9%), site_thread ~128: 4 sd bounds.
	near "$big" $((80 * MIB)) 12 || fail "$2: site_big $big, not ~80 MiB"
	near "$small" $((8 * MIB)) 36 || fail "$2: site_small $small, not ~8 MiB"
	near "$thr" $((8 * MIB)) 36 || fail "$2: site_thread $thr, not ~8 MiB"
	[ "$freed" = 0 ] || fail "$2: freed site still live ($freed)"
	awk -v b="$big" -v s="$small" 'BEGIN { exit !(b > 5 * s) }' ||
		fail "$2: site_big not ranked far above site_small"
}

google-pprof --text "$PROG" "$WORK/out/final.heap" > "$WORK/gp.txt" 2>&1 ||
	fail "google-pprof: $(cat "$WORK/gp.txt")"
check_sites "$WORK/gp.txt" "google-pprof heap_v2"
go tool pprof -top -sample_index=inuse_space "$PROG" "$WORK/out/final.pb" \
	> "$WORK/go.txt" 2>&1 || fail "go tool pprof: $(cat "$WORK/go.txt")"
check_sites "$WORK/go.txt" "go tool pprof proto"
go tool pprof -top -sample_index=inuse_space "$PROG" "$WORK/out/final.heap" \
	> "$WORK/go2.txt" 2>&1 || fail "go tool pprof: $(cat "$WORK/go2.txt")"
check_sites "$WORK/go2.txt" "go tool pprof heap_v2"

# The allocation view keeps the freed site: 16 MiB, ~256 samples.
go tool pprof -top -sample_index=alloc_space "$PROG" "$WORK/out/final.pb" \
	> "$WORK/alloc.txt" 2>&1 || fail "go tool pprof alloc_space"
freed=$(bytes site_freed "$WORK/alloc.txt")
echo "alloc_space: site_freed=$freed"
near "$freed" $((16 * MIB)) 30 || fail "alloc view: site_freed $freed, not ~16 MiB"

# Folded stacks: frames named by dladdr where the symbol is dynamic, else
# OBJECT+offset, as prof_sites' own (no -rdynamic).  A stack must pass
# through its main: a frame whose call lies inside main, by nm.
base=$(basename "$PROG")
m=$(nm -S "$PROG" | awk '$4 == "main" { print $1 " " $2 }')
[ -n "$m" ] || fail "nm: no main in $PROG"
main_lo=$((0x${m% *}))
main_hi=$((main_lo + 0x${m#* }))
through_main=no
for off in $(tr ';' '\n' < "$WORK/out/final.folded" |
    sed -n "s/^$base+0x\([0-9a-f]*\).*/\1/p" | sort -u); do
	call=$((0x$off - 1))
	[ "$call" -ge "$main_lo" ] && [ "$call" -lt "$main_hi" ] &&
		through_main=yes
done
[ "$through_main" = yes ] ||
	fail "folded: no stack through main: $(head -3 "$WORK/out/final.folded")"

# The peak profile (written at most once a second and at exit) holds
# site_peak; the final one does not.
peak=$(grep '\.peak\.pb$' "$WORK/files" | sort -t. -k3 -n | tail -1)
[ -n "$peak" ] || fail "no peak profile among: $(cat "$WORK/files")"
go tool pprof -top -sample_index=inuse_space "$PROG" "$WORK/out/$peak" \
	> "$WORK/peak.txt" 2>&1 || fail "go tool pprof peak"
p=$(bytes site_peak "$WORK/peak.txt")
echo "peak: site_peak=$p"
awk -v p="$p" -v m=$MIB 'BEGIN { exit !(p >= 36 * m && p <= 60 * m) }' ||
	fail "peak profile: site_peak $p, not ~48 MiB"
[ "$(bytes site_peak "$WORK/go.txt")" = 0 ] || fail "site_peak live at the end"
# prof_dump_at_exit: the exit profile in every format.
for k in heap pb folded; do
	grep -q "^auto\.[0-9]*\.[0-9]*\.$k$" "$WORK/files" ||
		fail "no exit profile .$k among: $(cat "$WORK/files")"
done

# Fork: the child's profile starts from the parent's live samples.
go tool pprof -top -sample_index=inuse_space "$PROG" "$WORK/out/child.pb" \
	> "$WORK/child.txt" 2>&1 || fail "go tool pprof child"
c=$(bytes site_child "$WORK/child.txt"); b=$(bytes site_big "$WORK/child.txt")
echo "child: site_child=$c site_big=$b"
near "$c" $((4 * MIB)) 45 || fail "child: site_child $c, not ~4 MiB"
near "$b" $((80 * MIB)) 12 || fail "child: inherited site_big $b"

# C++ under LD_PRELOAD: operator new's allocations are sampled too.
if [ -n "$CXX_PROG" ]; then
	PCMALLOC_CONF=prof:true,prof_sample:16k,prof_dump_at_exit:true,prof_prefix:$WORK/cxx \
		LD_PRELOAD=$LIB "$CXX_PROG" 8 > /dev/null || fail "C++ program"
	f=$(ls "$WORK"/cxx.*.heap | head -1)
	[ -n "$f" ] || fail "C++: no exit profile"
	google-pprof --text --alloc_space "$CXX_PROG" "$f" > "$WORK/cxx.txt" 2>&1 ||
		fail "google-pprof C++: $(cat "$WORK/cxx.txt")"
	# operator new is libpcmalloc's own (its frame is dropped) or
	# libstdc++'s: either way the program's work() allocated.
	grep -q " work" "$WORK/cxx.txt" ||
		fail "C++: work() not in the profile: $(head -20 "$WORK/cxx.txt")"
fi

# The launcher: --profile PREFIX on a real program.
PY=$(command -v /usr/bin/python3 python3 | head -1)
if [ -n "$LAUNCHER" ] && [ -n "$PY" ]; then
	PCMALLOC_LIB=$LIB "$LAUNCHER" --profile "$WORK/py" python3 -c \
		'x = [str(i) * 10 for i in range(200000)]' ||
		fail "launcher --profile"
	f=$(ls "$WORK"/py.*.pb 2> /dev/null | head -1)
	[ -n "$f" ] || fail "launcher: no profile written"
	go tool pprof -top "$f" > "$WORK/py.txt" 2>&1 ||
		fail "go tool pprof python3: $(cat "$WORK/py.txt")"
fi
echo "PASS"
