#!/bin/bash
# GNU sort of a large generated file (small buffer: temp files and merges,
# several threads), with and without pcmalloc preloaded.  Catches: large
# buffer (re)allocation bugs and cross-thread frees in a real program.
. "$(dirname "$0")/common.sh"
need sort awk
check_preload_maps
awk 'BEGIN { x = 1; for (i = 0; i < 300000; i++) {
	x = (x * 1103515245 + 12345) % 2147483648;
	printf "%08x %d line-%d %s\n", x, x % 1000, i, substr("abcdefghijklmnopqrstuvwxyz", 1 + x % 26)
} }' > "$WORK/input.txt"
export LC_ALL=C
run_compare sort_plain sort "$WORK/input.txt"
run_compare sort_small_buffer sort -S 256K --parallel=4 -T "$WORK" "$WORK/input.txt"
run_compare sort_numeric sort -k2,2n -k1,1r --parallel=2 "$WORK/input.txt"
run_compare sort_unique sort -u -t' ' -k4,4 "$WORK/input.txt"
