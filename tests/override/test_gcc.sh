#!/bin/bash
# gcc (driver, cc1 and as all preloaded) compiling a generated C file with
# thousands of functions: the object files must be identical, and the
# linked program must print the same thing.  Catches: corruption in a big,
# allocation-heavy real program (GC'd compiler heap uses mmap + malloc).
. "$(dirname "$0")/common.sh"
CC_PROG=${CC_PROG:-gcc}
need "$CC_PROG"
check_preload_maps
{
	echo '#include <stdio.h>'
	echo '#include <stdlib.h>'
	echo '#include <string.h>'
	for i in $(seq 0 599); do
		echo "static int f$i(int x) { int a[16]; for (int i = 0; i < 16; i++) a[i] = x * $i + i; int s = 0; for (int i = 0; i < 16; i++) s += a[i] ^ (s >> 3); return s + (x % 7 == $((i % 7)) ? $i : -$i); }"
	done
	echo 'static int cmp(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }'
	echo 'int main(void) { static int v[600]; int k = 0;'
	for i in $(seq 0 599); do echo "v[k++] = f$i($i);"; done
	echo 'qsort(v, 600, sizeof(int), cmp); long t = 0; for (int i = 0; i < 600; i++) t = t * 31 + v[i];'
	echo 'printf("%ld %d %d\n", t, v[0], v[599]); return 0; }'
} > "$WORK/big.c"
compile() {
	# $1: ref or pc
	local pre=
	[ "$1" = pc ] && pre="LD_PRELOAD=$LIB"
	env -u LD_PRELOAD $pre timeout "$RUN_TIMEOUT" "$CC_PROG" -O2 -g0 \
		-c "$WORK/big.c" -o "$WORK/big.$1.o" 2> "$WORK/cc.$1.err" ||
		{ cat "$WORK/cc.$1.err"; fail "gcc ($1) failed"; }
	env -u LD_PRELOAD $pre timeout "$RUN_TIMEOUT" "$CC_PROG" \
		"$WORK/big.$1.o" -o "$WORK/big.$1" 2>> "$WORK/cc.$1.err" ||
		{ cat "$WORK/cc.$1.err"; fail "link ($1) failed"; }
}
compile ref
compile pc
if grep -q '^pcmalloc: ' "$WORK/cc.pc.err"; then
	cat "$WORK/cc.pc.err"; fail "pcmalloc reported errors in gcc"
fi
cmp "$WORK/big.ref.o" "$WORK/big.pc.o" || fail "object files differ"
"$WORK/big.ref" > "$WORK/run.ref" && "$WORK/big.pc" > "$WORK/run.pc" ||
	fail "compiled program failed"
cmp "$WORK/run.ref" "$WORK/run.pc" || fail "compiled programs differ"
# and the compiled program itself under pcmalloc
run_compare big_program "$WORK/big.pc"
echo "ok: gcc"
