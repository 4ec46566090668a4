#!/bin/bash
# The library's writable data that every process touches at start-up stays
# on few pages (compiler.h: PC_BIG_BSS; tcache.c: the state caches).  Each
# page a preloaded process touches first is a page fault, 15 us or more on
# a virtual machine, in every program started under LD_PRELOAD.  Catches:
# a big zero-initialized array added to .bss without PC_BIG_BSS (in an
# x86-64 GCC build; it would spread the small variables start-up writes
# over more pages), and the thread-cache state objects (tcache_new,
# tcache_busy, tcache_dead) leaving .rodata (a thread's first malloc reads
# tcache_new; as zero-filled .bss that read costs a fault, and a write to
# them would no longer crash).
# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"	# LIB, need (a skip is a failure under tests/run.sh)
READELF=${READELF:-readelf}
NM=${NM:-nm}
need "$READELF" "$NM"
bad=0
syms=$("$NM" "$LIB") || { echo "FAIL: nm $LIB"; exit 1; }
for s in tcache_new tcache_busy tcache_dead; do
	type=$(printf '%s\n' "$syms" | awk -v s="$s" '$3 == s { print $2 }')
	if [ "$type" != r ]; then
		echo "FAIL: $s has symbol type '$type', want r (.rodata)"
		bad=1
	fi
done
sections=$("$READELF" -S -W "$LIB") || { echo "FAIL: readelf -S $LIB"; exit 1; }
# The size (hex) of a zero-fill section, empty if there is none.
nobits_size() {
	printf '%s\n' "$sections" |
	    sed -n "s/.* \\$1 *NOBITS *[0-9a-f]* [0-9a-f]* \\([0-9a-f]*\\) .*/\\1/p"
}
bss=$(nobits_size .bss)
lbss=$(nobits_size .lbss)
comment=$("$READELF" -p .comment "$LIB" 2>/dev/null)
if [ -z "$bss" ]; then
	echo "FAIL: no .bss section found"
	bad=1
elif [ -n "$lbss" ]; then
	# 8 KiB: the small variables plus the class tables, two pages.
	if [ $((16#$bss)) -gt 8192 ]; then
		echo "FAIL: .bss is $((16#$bss)) bytes (> 8192): a big array" \
		    "without PC_BIG_BSS?"
		"$NM" -S --size-sort "$LIB" | awk '$3 ~ /^[bB]$/' | tail -5
		bad=1
	else
		echo "ok: .bss $((16#$bss)) bytes, .lbss $((16#$lbss)) bytes"
	fi
elif printf '%s\n' "$comment" | grep -q clang; then
	# clang gives .lbss file contents, so PC_BIG_BSS is empty there.
	echo "ok: clang build, no .lbss (.bss $((16#$bss)) bytes)"
elif ! "$READELF" -h "$LIB" | grep -q 'Machine:.*X86-64'; then
	# Only x86-64 makes .lbss a zero-fill section.
	echo "ok: not x86-64, no .lbss (.bss $((16#$bss)) bytes)"
else
	echo "FAIL: no .lbss section in an x86-64 GCC build: PC_BIG_BSS" \
	    "not applied?"
	bad=1
fi
[ $bad = 0 ] && echo "ok: state caches in .rodata"
exit $bad
